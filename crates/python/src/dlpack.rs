//! DLPack export: a batch's buffer handed to torch (`torch.from_dlpack`) or numpy without a
//! copy. The tensor keeps the Arrow buffer alive until the consumer's deleter runs, and only
//! then can the buffer go back to the loader's pool.
//!
//! The ABI is DLPack 0.8's `DLManagedTensor` (the "dltensor" capsule), which torch, numpy, JAX
//! and CuPy all read; its four C structs are written out here rather than taken from a crate,
//! as the crates that have them pin pyo3 versions other than ours.

use std::ffi::{CStr, c_void};

use arrow::buffer::Buffer;
use pyo3::ffi;
use pyo3::prelude::*;

/// `DLDevice`: kDLCPU is 1.
#[repr(C)]
struct DLDevice {
    device_type: i32,
    device_id: i32,
}

/// `DLDataType`: type code (0 int, 1 uint, 2 float), bits, lanes.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct DLDataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

/// The element types flowload hands out.
pub(crate) const FLOAT32: DLDataType = DLDataType {
    code: 2,
    bits: 32,
    lanes: 1,
};
/// Labels.
pub(crate) const INT64: DLDataType = DLDataType {
    code: 0,
    bits: 64,
    lanes: 1,
};
/// Unnormalized pixels (`dtype="uint8"`).
pub(crate) const UINT8: DLDataType = DLDataType {
    code: 1,
    bits: 8,
    lanes: 1,
};

#[repr(C)]
struct DLTensor {
    data: *mut c_void,
    device: DLDevice,
    ndim: i32,
    dtype: DLDataType,
    shape: *mut i64,
    /// Null: compact and row-major.
    strides: *mut i64,
    byte_offset: u64,
}

#[repr(C)]
struct DLManagedTensor {
    dl_tensor: DLTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

/// What one exported tensor owns: the managed tensor first (the consumer holds a pointer to
/// it), then the buffer and the shape it points into.
#[repr(C)]
struct Owned {
    managed: DLManagedTensor,
    buffer: Buffer,
    shape: Vec<i64>,
}

/// The consumer is done: drop the buffer (which may return it to the pool) and the shape.
unsafe extern "C" fn delete(managed: *mut DLManagedTensor) {
    if !managed.is_null() {
        // SAFETY: `managed` is the first field of an `Owned` made by `Box::into_raw` in
        // `capsule`, and DLPack calls the deleter once.
        drop(unsafe { Box::from_raw(managed.cast::<Owned>()) });
    }
}

const NAME: &CStr = c"dltensor";

/// The capsule's destructor: a consumer renames the capsule to "used_dltensor" and owns the
/// tensor from then on; a capsule nobody consumed still owns it, and deletes it.
unsafe extern "C" fn capsule_destructor(capsule: *mut ffi::PyObject) {
    // SAFETY: `capsule` is a live capsule (Python calls this while destroying it).
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, NAME.as_ptr()) == 1 {
            let managed =
                ffi::PyCapsule_GetPointer(capsule, NAME.as_ptr()).cast::<DLManagedTensor>();
            if let Some(deleter) = (*managed).deleter {
                deleter(managed);
            }
        }
    }
}

/// A CPU tensor over `buffer` (whole), of `shape` and `dtype`, as a "dltensor" capsule.
pub(crate) fn capsule(
    py: Python<'_>,
    buffer: Buffer,
    shape: &[usize],
    dtype: DLDataType,
) -> PyResult<Py<PyAny>> {
    let elements: usize = shape.iter().product();
    assert_eq!(
        elements * dtype.bits as usize / 8,
        buffer.len(),
        "a tensor's shape covers its buffer"
    );
    let mut owned = Box::new(Owned {
        managed: DLManagedTensor {
            dl_tensor: DLTensor {
                data: buffer.as_ptr() as *mut c_void,
                device: DLDevice {
                    device_type: 1,
                    device_id: 0,
                },
                ndim: shape.len() as i32,
                dtype,
                shape: std::ptr::null_mut(),
                strides: std::ptr::null_mut(),
                byte_offset: 0,
            },
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(delete),
        },
        buffer,
        shape: shape.iter().map(|&d| d as i64).collect(),
    });
    owned.managed.dl_tensor.shape = owned.shape.as_mut_ptr();
    let raw = Box::into_raw(owned);
    // SAFETY: `raw` points at a live `Owned` whose first field is the managed tensor; the
    // capsule (or its consumer) deletes it exactly once.
    unsafe {
        (*raw).managed.manager_ctx = raw.cast();
        let capsule = ffi::PyCapsule_New(raw.cast(), NAME.as_ptr(), Some(capsule_destructor));
        if capsule.is_null() {
            delete(raw.cast());
            return Err(PyErr::fetch(py));
        }
        Ok(Bound::from_owned_ptr(py, capsule).unbind())
    }
}
