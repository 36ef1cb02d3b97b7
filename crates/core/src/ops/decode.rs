//! Decode: batch plans → u8 pixel arrays `[B,C,H,W]` and labels. Raw records are gathered;
//! encoded ones (PNG/JPEG in Parquet or files) are read and decoded, bad ones failed or skipped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;
use timely::progress::Timestamp;

use super::plan::BatchPlan;
use crate::codec::Augmenter;
use crate::error::{BadRecord, Error, OnBadRecord, RecordId, Result};
use crate::shape::Shape;
use crate::source::encoded::{EncodedSplit, StoreReader};
use crate::source::{Kind, Records, TransformedSplit};
use crate::transforms::SampleKey;

/// A batch of raw records: `pixels` is `rows × C·H·W` bytes, contiguous. Serializable, as
/// batches cross processes in this form (one byte per value, a quarter of normalized f32).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct DecodedBatch {
    pub epoch: u32,
    pub index: usize,
    pub shape: Shape,
    #[serde(with = "serde_bytes")]
    pub pixels: Vec<u8>,
    pub labels: Vec<i64>,
    /// Records of this batch left out under `--on-bad-record skip`.
    pub skipped: Vec<BadRecord>,
}

impl DecodedBatch {
    pub(crate) fn rows(&self) -> usize {
        self.labels.len()
    }
}

/// Gathers raw records: one `memcpy` per image.
fn gather(
    split: &crate::source::Split,
    plan: &BatchPlan,
    stopper: &Stopper,
) -> Result<DecodedBatch> {
    let mut pixels = Vec::with_capacity(plan.rows.len() * split.shape.len());
    let mut labels = Vec::with_capacity(plan.rows.len());
    for &row in &plan.rows {
        if split.work > 0 {
            stopper.check(plan)?;
            split.spend_work(row as usize);
        }
        pixels.extend_from_slice(split.image(row as usize));
        labels.push(split.labels[row as usize]);
    }
    Ok(DecodedBatch {
        epoch: plan.epoch,
        index: plan.index,
        shape: split.shape,
        pixels,
        labels,
        skipped: Vec::new(),
    })
}

/// Renders raw records through their transforms; a transform that does not fit a record
/// fails the batch (raw records all have one size, so it fails on the first).
fn transform(
    t: &TransformedSplit,
    augmenter: &mut Augmenter,
    plan: &BatchPlan,
    stopper: &Stopper,
) -> Result<DecodedBatch> {
    let len = t.shape.len();
    let mut pixels = vec![0u8; plan.rows.len() * len];
    let mut labels = Vec::with_capacity(plan.rows.len());
    for (&row, out) in plan.rows.iter().zip(pixels.chunks_exact_mut(len)) {
        stopper.check(plan)?;
        let key = SampleKey {
            epoch: plan.epoch,
            record: row,
        };
        let image = t.split.image(row as usize);
        augmenter
            .render_pixels(image, t.split.shape, &t.transforms, key, t.shape, out)
            .map_err(|reason| BadRecord {
                record: RecordId {
                    file: t.split.origin.clone(),
                    row: row as u64,
                },
                reason,
            })?;
        labels.push(t.split.labels[row as usize]);
    }
    Ok(DecodedBatch {
        epoch: plan.epoch,
        index: plan.index,
        shape: t.shape,
        pixels,
        labels,
        skipped: Vec::new(),
    })
}

/// A worker's decoder: the records, the bad-record policy, and (for encoded records) the
/// worker's own reader of their store and its augmenter.
pub(crate) struct RecordReader {
    records: Records,
    policy: OnBadRecord,
    store: Option<Box<dyn StoreReader>>,
    augmenter: Augmenter,
    stopper: Stopper,
}

/// Abandons the batches a loader is building: every decode loop looks at it before each
/// record, so that a consumer that stops (Ctrl-C in Python) waits for one record, not for a
/// batch. Cheap to clone; all clones are one switch.
#[derive(Clone, Debug, Default)]
pub struct Stopper(Arc<AtomicBool>);

impl Stopper {
    /// Stops the loader's workers at their next record; its batches from then on are errors.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Stopper::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The switch itself, for the parts of a loader that stop with it.
    pub(crate) fn flag(&self) -> &Arc<AtomicBool> {
        &self.0
    }

    fn check(&self, plan: &BatchPlan) -> Result<()> {
        match self.stopped() {
            false => Ok(()),
            true => Err(Error::Dataflow(format!(
                "epoch {} batch {} abandoned: the loader was stopped",
                plan.epoch, plan.index
            ))),
        }
    }
}

impl RecordReader {
    pub(crate) fn new(records: Records, policy: OnBadRecord) -> Self {
        let store = match &records.0 {
            Kind::Encoded(e) => Some(e.store.reader()),
            Kind::Raw(_) | Kind::Transformed(_) => None,
        };
        RecordReader {
            records,
            policy,
            store,
            augmenter: Augmenter::new(),
            stopper: Stopper::default(),
        }
    }

    /// Stops at the next record once `stopper` is stopped.
    pub(crate) fn stopped_by(mut self, stopper: Stopper) -> Self {
        self.stopper = stopper;
        self
    }

    /// Record `row`'s encoded bytes as the store has them (`None` for raw records), through
    /// this reader's own store reader: a record just decoded is served from its cache.
    pub(crate) fn encoded_bytes(&mut self, row: usize) -> Result<Option<Vec<u8>>> {
        let Some(store) = self.store.as_mut() else {
            return Ok(None);
        };
        let record = store.get(row)?;
        let bytes = record.bytes.map_err(|reason| BadRecord {
            record: record.id.clone(),
            reason,
        })?;
        Ok(Some(bytes.into_owned()))
    }

    pub(crate) fn decode(&mut self, plan: &BatchPlan) -> Result<DecodedBatch> {
        match (&self.records.0, &mut self.store) {
            (Kind::Raw(split), _) => gather(split, plan, &self.stopper),
            (Kind::Transformed(t), _) => transform(t, &mut self.augmenter, plan, &self.stopper),
            (Kind::Encoded(split), Some(store)) => decode_encoded(
                split,
                store.as_mut(),
                &mut self.augmenter,
                self.policy,
                plan,
                &self.stopper,
            ),
            (Kind::Encoded(_), None) => unreachable!("encoded records get a store reader"),
        }
    }
}

/// Fetches each record of `plan` from the store, decodes it and renders its transforms; a bad
/// one fails the batch or is skipped, as `policy` says.
fn decode_encoded(
    split: &EncodedSplit,
    store: &mut dyn StoreReader,
    augmenter: &mut Augmenter,
    policy: OnBadRecord,
    plan: &BatchPlan,
    stopper: &Stopper,
) -> Result<DecodedBatch> {
    let len = split.shape.len();
    let mut pixels = vec![0u8; plan.rows.len() * len];
    let mut labels = Vec::with_capacity(plan.rows.len());
    let mut skipped = Vec::new();
    for &row in &plan.rows {
        stopper.check(plan)?;
        let out = &mut pixels[labels.len() * len..(labels.len() + 1) * len];
        let record = store.get(row as usize)?;
        let key = SampleKey {
            epoch: plan.epoch,
            record: row,
        };
        let outcome = record
            .bytes
            .and_then(|bytes| check_and_decode(&bytes, record.label, split, augmenter, key, out));
        match (outcome, policy) {
            (Ok(label), _) => labels.push(label),
            (Err(reason), OnBadRecord::Fail) => {
                return Err(BadRecord {
                    record: record.id,
                    reason,
                }
                .into());
            }
            (Err(reason), OnBadRecord::Skip) => skipped.push(BadRecord {
                record: record.id,
                reason,
            }),
        }
    }
    pixels.truncate(labels.len() * len);
    Ok(DecodedBatch {
        epoch: plan.epoch,
        index: plan.index,
        shape: split.shape,
        pixels,
        labels,
        skipped,
    })
}

/// Checks the label, then decodes the image through its transforms into `out`; returns the
/// label.
fn check_and_decode(
    bytes: &[u8],
    label: Option<i64>,
    split: &EncodedSplit,
    augmenter: &mut Augmenter,
    key: SampleKey,
    out: &mut [u8],
) -> Result<i64, String> {
    let label = label.ok_or("null label")?;
    if label < 0 || label as usize >= split.classes {
        return Err(format!("label {label} is outside 0..{}", split.classes));
    }
    augmenter.render(bytes, &split.transforms, key, split.shape, out)?;
    Ok(label)
}

/// Extension trait: `plans.decode(reader)` (the unit test below shows it on a stream).
pub(crate) trait Decode<'scope, T: Timestamp> {
    fn decode(self, reader: RecordReader) -> StreamVec<'scope, T, Result<DecodedBatch>>;
}

impl<'scope, T: Timestamp> Decode<'scope, T> for StreamVec<'scope, T, BatchPlan> {
    fn decode(self, mut reader: RecordReader) -> StreamVec<'scope, T, Result<DecodedBatch>> {
        self.unary::<CapacityContainerBuilder<Vec<Result<DecodedBatch>>>, _, _, _>(
            Pipeline,
            "Decode",
            move |_, _| {
                move |input, output| {
                    input.for_each_stamp(|cap, data| {
                        let mut session = output.session(&cap);
                        for plans in data {
                            for plan in plans.drain(..) {
                                session.give(reader.decode(&plan));
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
    use timely::dataflow::operators::{Inspect, ToStream};

    use super::*;
    use crate::source::Dataset;

    #[test]
    fn plans_decode_into_their_records_pixels() {
        let data = Dataset::open("synthetic:images=8,size=4x4", &Default::default()).unwrap();
        timely::example(move |scope| {
            vec![BatchPlan {
                epoch: 0,
                index: 0,
                rows: vec![3, 1],
            }]
            .to_stream(scope)
            .container::<Vec<_>>()
            .decode(RecordReader::new(data.train.clone(), OnBadRecord::Fail))
            .inspect(|b| assert_eq!(b.as_ref().unwrap().pixels.len(), 2 * 16));
        });
    }
}
