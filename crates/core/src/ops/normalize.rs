//! Normalize: u8 pixels → f32, `(x/255 − mean_c)/std_c` when on, ToTensor's `x/255` alone when
//! off, or the u8 pixels untouched for a trainer that normalizes them itself.

use std::sync::{Arc, Mutex};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;
use timely::progress::Timestamp;

use super::decode::DecodedBatch;
use crate::error::BadRecord;
use crate::error::Result;
use crate::shape::Shape;
use crate::stats::Stats;

/// A batch's values, `rows × C·H·W`, contiguous: the buffer Arrow and the tensor will share.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Values {
    /// Normalized, or `x/255`.
    F32(Vec<f32>),
    /// The decoded pixels as they are ([`Normalizer::raw`]).
    U8(Vec<u8>),
}

/// A batch ready to become Arrow: its values, labels and place in the run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NormalizedBatch {
    pub epoch: u32,
    pub index: usize,
    pub shape: Shape,
    pub values: Values,
    pub labels: Vec<i64>,
    pub skipped: Vec<BadRecord>,
    /// Where `values` goes back to once the batch is dropped, if anywhere.
    pub pool: Option<BufferPool>,
}

/// Batch buffers kept for reuse. A batch of 100 photos at 3x224x224 is 60 MB of f32, which
/// the allocator maps fresh for every batch and the kernel zeroes page by page on first touch:
/// measured on the photo workload, those page faults took ~15% of a decode worker's time.
/// Buffers come back here when the trainer drops a batch (`ops::batch::to_arrow`).
#[derive(Clone, Debug, Default)]
pub(crate) struct BufferPool(Arc<Mutex<Vec<Vec<f32>>>>);

/// Buffers a pool keeps at most: more than a loader has in flight at its defaults (two per
/// worker queue, one being built per worker, one with the trainer).
const POOL_BUFFERS: usize = 8;

impl BufferPool {
    /// An empty buffer with room for `len` values.
    fn take(&self, len: usize) -> Vec<f32> {
        let mut pool = self.0.lock().expect("buffer pool lock");
        match pool.iter().position(|v| v.capacity() >= len) {
            Some(i) => pool.swap_remove(i),
            None => Vec::with_capacity(len),
        }
    }

    /// Keeps `values` for a later batch.
    pub(crate) fn give(&self, mut values: Vec<f32>) {
        let mut pool = self.0.lock().expect("buffer pool lock");
        if pool.len() < POOL_BUFFERS {
            values.clear();
            pool.push(values);
        }
    }
}

/// A pool is where a buffer goes back to, not part of a batch's value.
impl PartialEq for BufferPool {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Per-channel lookup tables: a u8 pixel has 256 possible values, so the formula is evaluated
/// 256 times per channel and each pixel costs one load. The table holds exactly what
/// `x.float().div(255).sub(mean).div(std)` gives in f32, so results match PyTorch bit for bit.
#[derive(Clone, Debug)]
pub(crate) struct Normalizer {
    tables: Vec<[f32; 256]>,
    /// Shared by every clone: one loader's workers draw from one pool.
    pool: BufferPool,
    /// Pass the u8 pixels through ([`Normalizer::raw`]).
    raw: bool,
}

impl Normalizer {
    /// `None` gives ToTensor alone (`x/255`, the seed's "not_normal" set).
    pub(crate) fn new(stats: Option<&Stats>, channels: usize) -> Self {
        let tables = (0..channels)
            .map(|c| {
                let mut t = [0f32; 256];
                for (x, v) in t.iter_mut().enumerate() {
                    let scaled = x as f32 / 255.0;
                    *v = match stats {
                        Some(s) => (scaled - s.mean[c] as f32) / s.std[c] as f32,
                        None => scaled,
                    };
                }
                t
            })
            .collect();
        Normalizer {
            tables,
            pool: BufferPool::default(),
            raw: false,
        }
    }

    /// Leaves the pixels as u8, for a trainer that normalizes on its device after a copy a
    /// quarter the size (DALI's and FFCV's way).
    pub(crate) fn raw(channels: usize) -> Self {
        Normalizer {
            raw: true,
            ..Normalizer::new(None, channels)
        }
    }

    pub(crate) fn apply(&self, batch: DecodedBatch) -> NormalizedBatch {
        if self.raw {
            return NormalizedBatch {
                epoch: batch.epoch,
                index: batch.index,
                shape: batch.shape,
                values: Values::U8(batch.pixels),
                labels: batch.labels,
                skipped: batch.skipped,
                pool: None,
            };
        }
        let plane = batch.shape.plane();
        let mut values = self.pool.take(batch.pixels.len());
        for image in batch.pixels.chunks_exact(batch.shape.len()) {
            for (channel, table) in image.chunks_exact(plane).zip(&self.tables) {
                values.extend(channel.iter().map(|&p| table[p as usize]));
            }
        }
        NormalizedBatch {
            epoch: batch.epoch,
            index: batch.index,
            shape: batch.shape,
            values: Values::F32(values),
            labels: batch.labels,
            skipped: batch.skipped,
            pool: Some(self.pool.clone()),
        }
    }
}

/// Extension trait: `decoded.normalize(normalizer)`; errors pass through untouched.
pub(crate) trait Normalize<'scope, T: Timestamp> {
    fn normalize(self, normalizer: Normalizer) -> StreamVec<'scope, T, Result<NormalizedBatch>>;
}

impl<'scope, T: Timestamp> Normalize<'scope, T> for StreamVec<'scope, T, Result<DecodedBatch>> {
    fn normalize(self, normalizer: Normalizer) -> StreamVec<'scope, T, Result<NormalizedBatch>> {
        self.unary::<CapacityContainerBuilder<Vec<Result<NormalizedBatch>>>, _, _, _>(
            Pipeline,
            "Normalize",
            move |_, _| {
                move |input, output| {
                    input.for_each_stamp(|cap, data| {
                        let mut session = output.session(&cap);
                        for batches in data {
                            for batch in batches.drain(..) {
                                session.give(batch.map(|b| normalizer.apply(b)));
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
    fn per_channel_tables_apply_the_formula() {
        let shape = Shape {
            channels: 2,
            height: 1,
            width: 2,
        };
        let stats = Stats {
            images: 1,
            channels: 2,
            height: 1,
            width: 2,
            mean: vec![0.5, 0.0],
            std: vec![0.25, 1.0],
        };
        let batch = DecodedBatch {
            epoch: 0,
            index: 0,
            shape,
            pixels: vec![0, 255, 51, 255],
            labels: vec![1],
            skipped: vec![],
        };
        let on = Normalizer::new(Some(&stats), 2).apply(batch.clone());
        assert_eq!(on.values, Values::F32(vec![-2.0, 2.0, 0.2, 1.0]));
        let off = Normalizer::new(None, 2).apply(batch.clone());
        assert_eq!(off.values, Values::F32(vec![0.0, 1.0, 0.2, 1.0]));
        let raw = Normalizer::raw(2).apply(batch);
        assert_eq!(raw.values, Values::U8(vec![0, 255, 51, 255]));
    }
}
