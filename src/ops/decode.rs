//! Decode: batch plans → u8 pixel arrays `[B,C,H,W]` and labels. Raw records are gathered;
//! encoded ones (PNG/JPEG in Parquet or files) are read and decoded, bad ones failed or skipped.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;
use timely::progress::Timestamp;

use super::plan::{BatchPlan, SHUFFLE_WINDOW};
use crate::error::{Error, Result};
use crate::source::encoded::{EncodedSplit, Store, decode_image};
use crate::source::parquet::{RowGroupData, read_row_group};
use crate::source::{Records, Shape};

/// What to do with a record that cannot be decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OnBadRecord {
    /// Stop with an error naming the shard or file and the row.
    #[default]
    Fail,
    /// Leave the record out, count it, and list it in `skipped.parquet`.
    Skip,
}

/// A record left out under `--on-bad-record skip`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The shard or image file.
    pub source: String,
    /// The row within the shard, or the record's index in an image folder.
    pub row: u64,
    pub reason: String,
}

/// A batch of raw records: `pixels` is `rows × C·H·W` bytes, contiguous. Serializable, as
/// batches cross processes in this form (one byte per value, a quarter of normalized f32).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecodedBatch {
    pub epoch: u32,
    pub index: usize,
    pub shape: Shape,
    #[serde(with = "serde_bytes")]
    pub pixels: Vec<u8>,
    pub labels: Vec<i64>,
    /// Records of this batch left out under `--on-bad-record skip`.
    pub skipped: Vec<Skipped>,
}

impl DecodedBatch {
    pub fn rows(&self) -> usize {
        self.labels.len()
    }
}

/// Gathers raw records: one `memcpy` per image.
fn gather(split: &crate::source::Split, plan: &BatchPlan) -> DecodedBatch {
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
        skipped: Vec::new(),
    }
}

/// A worker's decoder: the records, the bad-record policy, and the row groups it has read.
///
/// Row groups are kept in a small LRU: a batch's rows come from one or two shuffle windows
/// (`SHUFFLE_WINDOW`), so memory stays bounded by the window, not by the data set.
pub struct RecordReader {
    records: Records,
    policy: OnBadRecord,
    cache: VecDeque<(usize, Arc<RowGroupData>)>,
    capacity: usize,
}

impl RecordReader {
    pub fn new(records: Records, policy: OnBadRecord) -> Self {
        let capacity = match &records {
            Records::Encoded(e) => match &e.store {
                Store::Parquet { row_groups, .. } => {
                    let smallest = row_groups.iter().map(|g| g.rows).min().unwrap_or(1).max(1);
                    2 * SHUFFLE_WINDOW.div_ceil(smallest) + 2
                }
                Store::Files { .. } => 0,
            },
            Records::Raw(_) => 0,
        };
        RecordReader {
            records,
            policy,
            cache: VecDeque::new(),
            capacity,
        }
    }

    pub fn decode(&mut self, plan: &BatchPlan) -> Result<DecodedBatch> {
        match &self.records {
            Records::Raw(split) => Ok(gather(split, plan)),
            Records::Encoded(split) => {
                let split = Arc::clone(split);
                self.decode_encoded(&split, plan)
            }
        }
    }

    fn row_group(&mut self, index: usize, split: &EncodedSplit) -> Result<Arc<RowGroupData>> {
        if let Some(pos) = self.cache.iter().position(|(i, _)| *i == index) {
            let hit = self.cache.remove(pos).expect("position is valid");
            self.cache.push_front(hit.clone());
            return Ok(hit.1);
        }
        let Store::Parquet { row_groups, .. } = &split.store else {
            unreachable!("only Parquet has row groups")
        };
        let data = Arc::new(read_row_group(&row_groups[index])?);
        self.cache.push_front((index, data.clone()));
        self.cache.truncate(self.capacity.max(1));
        Ok(data)
    }

    fn decode_encoded(&mut self, split: &EncodedSplit, plan: &BatchPlan) -> Result<DecodedBatch> {
        let len = split.shape.len();
        let mut pixels = vec![0u8; plan.rows.len() * len];
        let mut labels = Vec::with_capacity(plan.rows.len());
        let mut skipped = Vec::new();
        for &row in &plan.rows {
            let row = row as usize;
            let out = &mut pixels[labels.len() * len..(labels.len() + 1) * len];
            let (source, at, outcome) = match &split.store {
                Store::Files { paths, labels: l } => {
                    let path = &paths[row];
                    let outcome = std::fs::read(path)
                        .map_err(|e| format!("cannot read: {e}"))
                        .and_then(|bytes| check_and_decode(&bytes, Some(l[row]), split, out));
                    (path.display().to_string(), row as u64, outcome)
                }
                Store::Parquet { row_groups, .. } => {
                    let g = row_groups.partition_point(|g| g.first + g.rows <= row);
                    let group = &row_groups[g];
                    let data = self.row_group(g, split)?;
                    let i = row - group.first;
                    let outcome = match data.image(i) {
                        None => Err("null image".to_string()),
                        Some(bytes) => check_and_decode(bytes, data.label(i), split, out),
                    };
                    (
                        group.shard.path.display().to_string(),
                        (group.shard_row + i) as u64,
                        outcome,
                    )
                }
            };
            match (outcome, self.policy) {
                (Ok(label), _) => labels.push(label),
                (Err(reason), OnBadRecord::Fail) => {
                    return Err(Error::BadRecord {
                        file: source,
                        row: at,
                        reason,
                    });
                }
                (Err(reason), OnBadRecord::Skip) => skipped.push(Skipped {
                    source,
                    row: at,
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
}

/// Checks the label, then decodes the image into `out`; returns the label.
fn check_and_decode(
    bytes: &[u8],
    label: Option<i64>,
    split: &EncodedSplit,
    out: &mut [u8],
) -> Result<i64, String> {
    let label = label.ok_or("null label")?;
    if label < 0 || label as usize >= split.classes {
        return Err(format!("label {label} is outside 0..{}", split.classes));
    }
    decode_image(bytes, split.shape, split.resize, out)?;
    Ok(label)
}

/// Extension trait: `plans.decode(reader)`.
///
/// ```
/// use timely::dataflow::operators::{ToStream, Inspect};
/// use flowload::ops::decode::{Decode, OnBadRecord, RecordReader};
/// use flowload::ops::plan::BatchPlan;
/// use flowload::source::SourceSpec;
///
/// let data = SourceSpec::parse("synthetic:images=8,size=4x4").unwrap().open().unwrap();
/// timely::example(move |scope| {
///     vec![BatchPlan { epoch: 0, index: 0, rows: vec![3, 1] }]
///         .to_stream(scope)
///         .container::<Vec<_>>()
///         .decode(RecordReader::new(data.train.clone(), OnBadRecord::Fail))
///         .inspect(|b| assert_eq!(b.as_ref().unwrap().pixels.len(), 2 * 16));
/// });
/// ```
pub trait Decode<'scope, T: Timestamp> {
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
