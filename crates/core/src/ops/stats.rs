//! Stats: the operators of the statistics pass. Each decoded batch's per-channel sums go into
//! a differential collection with one record per part; the totals per channel are that
//! collection's aggregate, so a part added (+1) or retracted (−1) moves them by its sums.

use std::sync::Arc;

use differential_dataflow::{AsCollection, VecCollection};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

use super::decode::DecodedBatch;
use crate::stats::{ChannelSums, PartId, PartSums};

/// Per-channel sums of one decoded batch.
pub(crate) fn batch_sums(batch: &DecodedBatch) -> Vec<ChannelSums> {
    let plane = batch.shape.plane();
    let mut hists = vec![[0u64; 256]; batch.shape.channels];
    for image in batch.pixels.chunks_exact(batch.shape.len()) {
        for (c, hist) in hists.iter_mut().enumerate() {
            for &p in &image[c * plane..(c + 1) * plane] {
                hist[p as usize] += 1;
            }
        }
    }
    hists.iter().map(ChannelSums::of_histogram).collect()
}

/// The sums a part keeps of one decoded batch.
pub(crate) fn part_sums(batch: &DecodedBatch) -> PartSums {
    PartSums {
        channels: batch_sums(batch),
        max_label: batch.labels.iter().copied().max().unwrap_or(-1),
        skipped: batch.skipped.len() as u64,
    }
}

/// Extension trait: `batches.part_sums(parts)` gives one `(part, sums)` record per part, the
/// sums of every batch of that part, from every worker. Batch `i` belongs to `parts[i]`.
pub(crate) trait PartSumsOp<'scope> {
    fn part_sums(self, parts: Arc<Vec<PartId>>) -> VecCollection<'scope, u64, (PartId, PartSums)>;
}

impl<'scope> PartSumsOp<'scope> for StreamVec<'scope, u64, DecodedBatch> {
    fn part_sums(self, parts: Arc<Vec<PartId>>) -> VecCollection<'scope, u64, (PartId, PartSums)> {
        type Out = ((PartId, (usize, PartSums)), u64, isize);
        self.unary::<CapacityContainerBuilder<Vec<Out>>, _, _, _>(Pipeline, "PartSums", |_, _| {
            move |input, output| {
                input.for_each_stamp(|cap, data| {
                    // Our source always stamps its messages; an empty stamp carries no time.
                    let Some(&time) = cap.least() else { return };
                    let mut session = output.session(&cap);
                    for batches in data {
                        for batch in batches.drain(..) {
                            // One record per batch: differential merges a few records per
                            // part, never one per pixel.
                            let sums = part_sums(&batch);
                            session.give((
                                (parts[batch.index].clone(), (batch.index, sums)),
                                time,
                                1,
                            ));
                        }
                    }
                });
            }
        })
        .as_collection()
        .reduce(|_part, batches, out| {
            let mut total = PartSums::default();
            for ((_, sums), n) in batches {
                for _ in 0..*n {
                    total.merge(sums);
                }
            }
            out.push((total, 1));
        })
    }
}

/// Extension trait: `parts.channel_totals()` gives one `(channel, sums)` record per channel,
/// the sums of every part in the collection. A part added (+1) adds its sums; a part retracted
/// (−1) subtracts them.
pub(crate) trait ChannelTotalsOp<'scope> {
    fn channel_totals(self) -> VecCollection<'scope, u64, (u32, ChannelSums)>;
}

impl<'scope> ChannelTotalsOp<'scope> for VecCollection<'scope, u64, (PartId, PartSums)> {
    fn channel_totals(self) -> VecCollection<'scope, u64, (u32, ChannelSums)> {
        // The sums move into the difference, so differential's `count` adds (and subtracts) them.
        self.explode(|(_, sums)| {
            sums.channels
                .into_iter()
                .enumerate()
                .map(|(c, s)| (c as u32, s))
                .collect::<Vec<_>>()
        })
        .count()
    }
}
