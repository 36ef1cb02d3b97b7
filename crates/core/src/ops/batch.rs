//! Batch: normalized values → an Arrow `RecordBatch` (`image: FixedSizeList<Float32>[C·H·W]`, or
//! `<UInt8>` for raw pixels, and `label: Int64`).

use std::sync::Arc;

use arrow::array::{Array, FixedSizeListArray, Float32Array, Int64Array, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;
use timely::progress::Timestamp;

use std::ptr::NonNull;

use arrow::buffer::{Buffer, ScalarBuffer};

use super::normalize::{BufferPool, NormalizedBatch, Values};
use crate::error::BadRecord;
use crate::error::Result;
use crate::shape::Shape;

/// A batch ready for training: its place in the run and the Arrow record batch.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Its epoch, from 0.
    pub epoch: u32,
    /// Its place in the epoch, from 0.
    pub index: usize,
    /// Each image's shape.
    pub shape: Shape,
    /// `image: FixedSizeList<Float32>[C·H·W]` (`<UInt8>` from a
    /// [`crate::LoaderBuilder::raw_pixels`] loader) and `label: Int64`, the shape in the
    /// schema's metadata as `flowload.shape`.
    pub record: RecordBatch,
    /// Records of this batch left out under `--on-bad-record skip`.
    pub skipped: Vec<BadRecord>,
    /// Bytes this batch took on the wire from another process; 0 when built in this one.
    pub wire_bytes: u64,
}

impl Batch {
    /// Images in the batch.
    pub fn rows(&self) -> usize {
        self.record.num_rows()
    }

    /// All image values, `[rows, C, H, W]` row-major: one contiguous buffer, no copy.
    ///
    /// Panics on a batch of raw pixels ([`crate::LoaderBuilder::raw_pixels`]): read those with
    /// [`Batch::pixels`].
    pub fn images(&self) -> &[f32] {
        let (list, len) = self.image_list();
        let values = list
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .expect("images() of a raw-pixel batch: read it with pixels()");
        &values.values()[list.offset() * len..(list.offset() + list.len()) * len]
    }

    /// The raw u8 pixels, `[rows, C, H, W]`, of a [`crate::LoaderBuilder::raw_pixels`] batch;
    /// `None` for a batch of f32 values.
    pub fn pixels(&self) -> Option<&[u8]> {
        let (list, len) = self.image_list();
        let values = list.values().as_any().downcast_ref::<UInt8Array>()?;
        Some(&values.values()[list.offset() * len..(list.offset() + list.len()) * len])
    }

    fn image_list(&self) -> (&FixedSizeListArray, usize) {
        let list = self
            .record
            .column(0)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .expect("column 0 is the image list");
        (list, self.shape.len())
    }

    /// The labels, one per image.
    pub fn labels(&self) -> &[i64] {
        self.record
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("column 1 is the label")
            .values()
    }
}

/// The batch schema; the image shape rides along in the metadata as `flowload.shape`.
pub(crate) fn schema(shape: Shape) -> SchemaRef {
    schema_of(shape, DataType::Float32)
}

/// The schema with image values of type `values`.
fn schema_of(shape: Shape, values: DataType) -> SchemaRef {
    let item = Arc::new(Field::new("item", values, false));
    let meta = [(
        "flowload.shape".to_string(),
        format!("[{},{},{}]", shape.channels, shape.height, shape.width),
    )];
    Arc::new(
        Schema::new(vec![
            Field::new(
                "image",
                DataType::FixedSizeList(item, shape.len() as i32),
                false,
            ),
            Field::new("label", DataType::Int64, false),
        ])
        .with_metadata(
            meta.into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        ),
    )
}

/// A batch's values that go back to their pool when Arrow drops the last reference.
struct Recycled {
    values: Vec<f32>,
    pool: BufferPool,
}

impl Drop for Recycled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.values));
    }
}

/// Wraps the values in Arrow without copying: `Vec<f32>` becomes the array's buffer as is, and
/// goes back to its pool when the batch is dropped.
pub(crate) fn to_arrow(schema: &SchemaRef, batch: NormalizedBatch) -> Result<Batch> {
    let (schema, values): (SchemaRef, Arc<dyn Array>) = match (batch.values, batch.pool) {
        (Values::F32(values), Some(pool)) => {
            let len = values.len();
            let owner = Arc::new(Recycled { values, pool });
            let ptr = NonNull::from(owner.values.as_slice()).cast::<u8>();
            // SAFETY: `ptr` points at `len` initialized f32 values owned by `owner`, which the
            // buffer keeps alive and which nothing else mutates until it is dropped.
            let buffer = unsafe { Buffer::from_custom_allocation(ptr, len * 4, owner) };
            let values = Float32Array::new(ScalarBuffer::new(buffer, 0, len), None);
            (schema.clone(), Arc::new(values))
        }
        (Values::F32(values), None) => (schema.clone(), Arc::new(Float32Array::from(values))),
        // Raw pixels are a quarter of the f32 values: Arrow takes the Vec as it is.
        (Values::U8(pixels), _) => (
            schema_of(batch.shape, DataType::UInt8),
            Arc::new(UInt8Array::from(pixels)),
        ),
    };
    let DataType::FixedSizeList(item, size) = schema.field(0).data_type() else {
        unreachable!("schema() builds a FixedSizeList")
    };
    let images = FixedSizeListArray::try_new(item.clone(), *size, values, None)?;
    let labels = Int64Array::from(batch.labels);
    let record = RecordBatch::try_new(schema.clone(), vec![Arc::new(images), Arc::new(labels)])?;
    Ok(Batch {
        epoch: batch.epoch,
        index: batch.index,
        shape: batch.shape,
        record,
        skipped: batch.skipped,
        wire_bytes: 0,
    })
}

/// Extension trait: `normalized.to_arrow(schema)`. Errors — a bad record under the `fail`
/// policy, or an Arrow error — travel on to the consumer as `Err`, never as a worker panic.
pub(crate) trait ToArrow<'scope, T: Timestamp> {
    fn to_arrow(self, schema: SchemaRef) -> StreamVec<'scope, T, Result<Batch>>;
}

impl<'scope, T: Timestamp> ToArrow<'scope, T> for StreamVec<'scope, T, Result<NormalizedBatch>> {
    fn to_arrow(self, schema: SchemaRef) -> StreamVec<'scope, T, Result<Batch>> {
        self.unary::<CapacityContainerBuilder<Vec<Result<Batch>>>, _, _, _>(
            Pipeline,
            "Batch",
            move |_, _| {
                move |input, output| {
                    input.for_each_stamp(|cap, data| {
                        let mut session = output.session(&cap);
                        for batches in data {
                            for batch in batches.drain(..) {
                                session.give(batch.and_then(|b| to_arrow(&schema, b)));
                            }
                        }
                    });
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_buffer_is_shared_not_copied() {
        let shape = Shape {
            channels: 1,
            height: 2,
            width: 2,
        };
        let values: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let ptr = values.as_ptr();
        let nb = NormalizedBatch {
            epoch: 1,
            index: 2,
            shape,
            values: Values::F32(values),
            labels: vec![4, 5],
            skipped: vec![],
            pool: None,
        };
        let b = to_arrow(&schema(shape), nb).unwrap();
        assert_eq!(b.rows(), 2);
        assert_eq!(b.images().as_ptr(), ptr);
        assert_eq!(b.images()[7], 7.0);
        assert_eq!(b.labels(), &[4, 5]);
        assert_eq!(b.record.schema().metadata()["flowload.shape"], "[1,2,2]");
    }

    #[test]
    fn a_dropped_batch_gives_its_buffer_to_the_next() {
        use crate::ops::decode::DecodedBatch;
        use crate::ops::normalize::Normalizer;
        let shape = Shape {
            channels: 1,
            height: 2,
            width: 2,
        };
        let decoded = |v: u8| DecodedBatch {
            epoch: 0,
            index: 0,
            shape,
            pixels: vec![v; 8],
            labels: vec![0, 1],
            skipped: vec![],
        };
        let normalizer = Normalizer::new(None, 1);
        let first = to_arrow(&schema(shape), normalizer.apply(decoded(51))).unwrap();
        let ptr = first.images().as_ptr();
        assert_eq!(first.images(), &[0.2; 8]);
        // While the first batch lives, the second gets another buffer; once it is dropped, the
        // third reuses the first's, with its own values.
        let second = to_arrow(&schema(shape), normalizer.clone().apply(decoded(0))).unwrap();
        assert_ne!(second.images().as_ptr(), ptr);
        drop(first);
        let third = to_arrow(&schema(shape), normalizer.apply(decoded(255))).unwrap();
        assert_eq!(third.images().as_ptr(), ptr);
        assert_eq!(third.images(), &[1.0; 8]);
        assert_eq!(second.images(), &[0.0; 8]);
    }
}
