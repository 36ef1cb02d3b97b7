//! Decode: batch plans → u8 pixel arrays `[B,C,H,W]` and labels, gathered from the split's records.

use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;
use timely::progress::Timestamp;

use super::plan::BatchPlan;
use crate::source::{Shape, Split};

/// A batch of raw records: `pixels` is `rows × C·H·W` bytes, contiguous.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedBatch {
    pub epoch: u32,
    pub index: usize,
    pub shape: Shape,
    pub pixels: Vec<u8>,
    pub labels: Vec<i64>,
}

impl DecodedBatch {
    pub fn rows(&self) -> usize {
        self.labels.len()
    }
}

/// Gathers the planned records: one `memcpy` per image.
pub fn decode(split: &Split, plan: &BatchPlan) -> DecodedBatch {
    let mut pixels = Vec::with_capacity(plan.rows.len() * split.shape.len());
    let mut labels = Vec::with_capacity(plan.rows.len());
    for &row in &plan.rows {
        pixels.extend_from_slice(split.image(row as usize));
        labels.push(split.labels[row as usize]);
    }
    DecodedBatch {
        epoch: plan.epoch,
        index: plan.index,
        shape: split.shape,
        pixels,
        labels,
    }
}

/// Extension trait: `plans.decode(split)`.
///
/// ```
/// use std::sync::Arc;
/// use timely::dataflow::operators::{ToStream, Inspect};
/// use flowload::ops::{decode::Decode, plan::BatchPlan};
/// use flowload::source::SourceSpec;
///
/// let data = SourceSpec::parse("synthetic:images=8,size=4x4").unwrap().open().unwrap();
/// timely::example(move |scope| {
///     vec![BatchPlan { epoch: 0, index: 0, rows: vec![3, 1] }]
///         .to_stream(scope)
///         .container::<Vec<_>>()
///         .decode(data.train.clone())
///         .inspect(|b| assert_eq!(b.pixels.len(), 2 * 16));
/// });
/// ```
pub trait Decode<'scope, T: Timestamp> {
    fn decode(self, split: Arc<Split>) -> StreamVec<'scope, T, DecodedBatch>;
}

impl<'scope, T: Timestamp> Decode<'scope, T> for StreamVec<'scope, T, BatchPlan> {
    fn decode(self, split: Arc<Split>) -> StreamVec<'scope, T, DecodedBatch> {
        self.unary::<CapacityContainerBuilder<Vec<DecodedBatch>>, _, _, _>(
            Pipeline,
            "Decode",
            move |_, _| {
                move |input, output| {
                    input.for_each_stamp(|cap, data| {
                        let mut session = output.session(&cap);
                        for plans in data {
                            for plan in plans.drain(..) {
                                session.give(decode(&split, &plan));
                            }
                        }
                    });
                }
            },
        )
    }
}
