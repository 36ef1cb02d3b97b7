//! One batch in Python: its images and labels as DLPack arrays (`torch.from_dlpack`,
//! `numpy.from_dlpack`), and the whole batch through the Arrow PyCapsule interface
//! (`pyarrow.record_batch(batch)`, polars, DuckDB). Neither copies: each export holds the
//! batch's Arrow buffers until its consumer lets them go.

use std::ffi::CString;

use arrow::array::{Array, FixedSizeListArray, StructArray};
use arrow::buffer::Buffer;
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use flowload_core::Batch;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::dlpack::{self, DLDataType};
use crate::errors::LoaderError;
use crate::loader::Dtype;

/// A batch handed to Python.
#[pyclass(module = "flowload._flowload", name = "Batch", frozen)]
pub(crate) struct PyBatch {
    batch: Batch,
    dtype: Dtype,
}

impl PyBatch {
    pub(crate) fn new(batch: Batch, dtype: Dtype) -> PyBatch {
        PyBatch { batch, dtype }
    }
}

#[pymethods]
impl PyBatch {
    /// The images, `[B, C, H, W]` float32 (uint8 for `dtype="uint8"`), as a DLPack array.
    #[getter]
    fn images(&self) -> PyArray {
        let list = self
            .batch
            .record
            .column(0)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .expect("column 0 is the image list");
        let (size, dtype) = match self.dtype {
            Dtype::Float32 => (4, dlpack::FLOAT32),
            Dtype::Uint8 => (1, dlpack::UINT8),
        };
        let len = self.batch.shape.len();
        let values = list.values().to_data();
        let buffer = values.buffers()[0].slice_with_length(
            (values.offset() + list.offset() * len) * size,
            list.len() * len * size,
        );
        let s = self.batch.shape;
        PyArray {
            buffer,
            shape: vec![self.batch.rows(), s.channels, s.height, s.width],
            dtype,
        }
    }

    /// The labels, `[B]` int64, as a DLPack array.
    #[getter]
    fn labels(&self) -> PyArray {
        let labels = self.batch.record.column(1).to_data();
        let rows = self.batch.rows();
        PyArray {
            buffer: labels.buffers()[0].slice_with_length(labels.offset() * 8, rows * 8),
            shape: vec![rows],
            dtype: dlpack::INT64,
        }
    }

    /// Its epoch, from 0.
    #[getter]
    fn epoch(&self) -> u32 {
        self.batch.epoch
    }

    /// Its place in the epoch, from 0.
    #[getter]
    fn index(&self) -> usize {
        self.batch.index
    }

    /// Records left out of it under `on_bad_record="skip"`, each as "file: row N: reason".
    #[getter]
    fn skipped(&self) -> Vec<String> {
        self.batch.skipped.iter().map(ToString::to_string).collect()
    }

    fn __len__(&self) -> usize {
        self.batch.rows()
    }

    /// The Arrow PyCapsule interface: the schema (`image` fixed-size list, `label` int64, the
    /// image shape in the metadata as `flowload.shape`).
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        schema_capsule(py, &self.batch)
    }

    /// The Arrow PyCapsule interface: `(schema, array)` capsules of the batch as a struct
    /// array, which pyarrow, polars and DuckDB import without a copy.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
        // A consumer may ask for another schema; flowload has only its own, which the
        // consumer may then cast.
        let _ = requested_schema;
        let array = StructArray::from(self.batch.record.clone()).into_data();
        let array = FFI_ArrowArray::new(&array);
        let array = PyCapsule::new(py, array, Some(CString::from(c"arrow_array")))?;
        Ok((schema_capsule(py, &self.batch)?, array))
    }

    fn __repr__(&self) -> String {
        let s = self.batch.shape;
        format!(
            "flowload.Batch(epoch={}, index={}, images=[{}, {}, {}, {}] {})",
            self.batch.epoch,
            self.batch.index,
            self.batch.rows(),
            s.channels,
            s.height,
            s.width,
            self.dtype.name()
        )
    }
}

fn schema_capsule<'py>(py: Python<'py>, batch: &Batch) -> PyResult<Bound<'py, PyCapsule>> {
    let schema = FFI_ArrowSchema::try_from(batch.record.schema().as_ref())
        .map_err(|e| LoaderError::new_err(format!("cannot export the batch schema: {e}")))?;
    PyCapsule::new(py, schema, Some(CString::from(c"arrow_schema")))
}

/// A CPU array in a batch's buffer, exported through DLPack.
#[pyclass(module = "flowload._flowload", name = "Array", frozen)]
pub(crate) struct PyArray {
    buffer: Buffer,
    shape: Vec<usize>,
    dtype: DLDataType,
}

#[pymethods]
impl PyArray {
    /// The DLPack protocol: a "dltensor" capsule over this array's buffer, kept alive until
    /// the consumer's deleter runs. CPU memory needs no stream; no copy is ever made.
    #[pyo3(signature = (*, stream=None, max_version=None, dl_device=None, copy=None))]
    fn __dlpack__(
        &self,
        py: Python<'_>,
        stream: Option<Bound<'_, PyAny>>,
        max_version: Option<Bound<'_, PyAny>>,
        dl_device: Option<(i32, i32)>,
        copy: Option<bool>,
    ) -> PyResult<Py<PyAny>> {
        let _ = (stream, max_version);
        if dl_device.is_some_and(|d| d != (1, 0)) {
            return Err(pyo3::exceptions::PyBufferError::new_err(
                "flowload's arrays are in CPU memory: copy them to a device after import",
            ));
        }
        if copy == Some(true) {
            return Err(pyo3::exceptions::PyBufferError::new_err(
                "flowload exports without a copy: call .clone() on the tensor for one",
            ));
        }
        dlpack::capsule(py, self.buffer.clone(), &self.shape, self.dtype)
    }

    /// `(kDLCPU, 0)`.
    fn __dlpack_device__(&self) -> (i32, i32) {
        (1, 0)
    }

    /// Its shape.
    #[getter]
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
}
