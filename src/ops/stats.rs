//! Stats: exact per-channel count / sum / sum of squares, per part of the data set, merged by
//! differential into per-channel totals.

use std::path::Path;

use std::sync::Arc;

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Multiply, Semigroup};
use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

use super::decode::DecodedBatch;
use crate::error::{Error, Result};
use crate::source::Shape;

/// Exact sums over u8 pixels of one channel. Integers, so the merge order (worker count,
/// batch size) cannot change the result. It is differential's difference type: records of
/// `(channel, ChannelSums)` accumulate by addition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChannelSums {
    pub count: i64,
    pub sum: i64,
    pub sumsq: i128,
}

impl IsZero for ChannelSums {
    fn is_zero(&self) -> bool {
        *self == ChannelSums::default()
    }
}
impl Semigroup for ChannelSums {
    fn plus_equals(&mut self, r: &Self) {
        self.count += r.count;
        self.sum += r.sum;
        self.sumsq += r.sumsq;
    }
}
impl Monoid for ChannelSums {
    fn zero() -> Self {
        ChannelSums::default()
    }
}
impl Abelian for ChannelSums {
    fn negate(&mut self) {
        self.count = -self.count;
        self.sum = -self.sum;
        self.sumsq = -self.sumsq;
    }
}

/// `explode` multiplies a part's sums by the part's difference: +1 adds it, −1 retracts it.
impl Multiply<isize> for ChannelSums {
    type Output = ChannelSums;
    fn multiply(self, r: &isize) -> ChannelSums {
        ChannelSums {
            count: self.count * *r as i64,
            sum: self.sum * *r as i64,
            sumsq: self.sumsq * *r as i128,
        }
    }
}

impl ChannelSums {
    /// Sums one channel plane (or many planes of one channel). A histogram first keeps the inner
    /// loop to one increment per pixel; the squares are taken 256 times, not once per pixel.
    pub fn of_histogram(hist: &[u64; 256]) -> Self {
        let mut s = ChannelSums::default();
        for (v, &n) in hist.iter().enumerate() {
            s.count += n as i64;
            s.sum += (v as u64 * n) as i64;
            s.sumsq += (v as u128 * v as u128 * n as u128) as i128;
        }
        s
    }

    /// Mean and population standard deviation on the 0..1 scale (after ToTensor's /255).
    /// The variance is taken from the exact integers: `(n·Σx² − (Σx)²) / n²`.
    pub fn mean_std(&self) -> (f64, f64) {
        let n = self.count as i128;
        let var_num = n * self.sumsq - (self.sum as i128) * (self.sum as i128);
        let mean = self.sum as f64 / self.count as f64 / 255.0;
        let var = var_num as f64 / (n as f64 * n as f64);
        (mean, var.max(0.0).sqrt() / 255.0)
    }
}

/// Per-channel sums of one decoded batch.
pub fn batch_sums(batch: &DecodedBatch) -> Vec<ChannelSums> {
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

/// A part of a data set (`crate::source::Part`) as the statistics see it: its name and a key
/// of its content. A part whose content changes is another part.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartId {
    pub name: String,
    pub content: u128,
}

/// What the statistics keep per part: the channel sums, the largest label among its records
/// (a cached part is valid only for a class count above it), and the records skipped as bad.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartSums {
    pub channels: Vec<ChannelSums>,
    pub max_label: i64,
    pub skipped: u64,
}

impl PartSums {
    /// The sums of one decoded batch.
    pub fn of_batch(batch: &DecodedBatch) -> Self {
        PartSums {
            channels: batch_sums(batch),
            max_label: batch.labels.iter().copied().max().unwrap_or(-1),
            skipped: batch.skipped.len() as u64,
        }
    }

    /// Adds `other`'s records to these.
    pub fn merge(&mut self, other: &PartSums) {
        if self.channels.is_empty() {
            self.channels = vec![ChannelSums::default(); other.channels.len()];
        }
        for (s, o) in self.channels.iter_mut().zip(&other.channels) {
            s.plus_equals(o);
        }
        self.max_label = self.max_label.max(other.max_label);
        self.skipped += other.skipped;
    }
}

/// Extension trait: `batches.part_sums(parts)` gives one `(part, sums)` record per part, the
/// sums of every batch of that part, from every worker. Batch `i` belongs to `parts[i]`.
pub trait PartSumsOp<'scope> {
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
                            let sums = PartSums::of_batch(&batch);
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
pub trait ChannelTotalsOp<'scope> {
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

/// Statistics of a training split, the numbers torchvision's `Normalize(mean, std)` takes.
/// Serialized as `flowload stats --json` prints it and `--stats FILE` reads it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    pub images: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Stats {
    pub fn from_sums(images: usize, shape: Shape, sums: &[ChannelSums]) -> Self {
        let (mean, std) = sums.iter().map(ChannelSums::mean_std).unzip();
        Stats {
            images,
            channels: shape.channels,
            height: shape.height,
            width: shape.width,
            mean,
            std,
        }
    }

    pub fn shape(&self) -> Shape {
        Shape {
            channels: self.channels,
            height: self.height,
            width: self.width,
        }
    }

    /// Normalizing divides by the std: a zero-variance channel is an error that names it.
    pub fn check_variance(&self, source_name: &str) -> Result<()> {
        match self.std.iter().position(|&s| s.is_nan() || s <= 0.0) {
            Some(channel) => Err(Error::ZeroVariance {
                source_name: source_name.into(),
                channel,
                value: (self.mean[channel] * 255.0).round(),
            }),
            None => Ok(()),
        }
    }

    /// Reads a `--stats FILE` written by `flowload stats --json`, and checks it fits `shape`.
    pub fn load(path: &Path, shape: Shape) -> Result<Self> {
        let bad = |detail: String| Error::BadStats {
            path: path.into(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let stats: Stats = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if stats.mean.len() != stats.channels || stats.std.len() != stats.channels {
            return Err(bad(format!(
                "{} channels but {} means and {} stds",
                stats.channels,
                stats.mean.len(),
                stats.std.len()
            )));
        }
        if stats.shape() != shape {
            return Err(bad(format!(
                "statistics are for {} images, the data is {shape}",
                stats.shape()
            )));
        }
        // A std of 0 (or below, or not a number) would divide by zero: the file is wrong, not
        // the data.
        if let Some(channel) = stats.std.iter().position(|&s| !(s > 0.0 && s.is_finite())) {
            return Err(bad(format!(
                "channel {channel} has std {}; normalizing divides by it, so it must be positive",
                stats.std[channel]
            )));
        }
        if let Some(channel) = stats.mean.iter().position(|m| !m.is_finite()) {
            return Err(bad(format!(
                "channel {channel} has mean {}",
                stats.mean[channel]
            )));
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_match_the_textbook_formula() {
        let mut hist = [0u64; 256];
        hist[0] = 1;
        hist[255] = 3;
        let (m, s) = ChannelSums::of_histogram(&hist).mean_std();
        assert!((m - 0.75).abs() < 1e-12);
        assert!((s - (0.75f64 * 0.25).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn zero_variance_names_the_channel() {
        let shape = Shape {
            channels: 3,
            height: 1,
            width: 1,
        };
        let stats = Stats::from_sums(
            2,
            shape,
            &[
                ChannelSums {
                    count: 2,
                    sum: 3,
                    sumsq: 5,
                },
                ChannelSums {
                    count: 2,
                    sum: 20,
                    sumsq: 200,
                },
                ChannelSums {
                    count: 2,
                    sum: 1,
                    sumsq: 1,
                },
            ],
        );
        let e = stats.check_variance("src").unwrap_err().to_string();
        assert!(e.contains("channel 1"), "{e}");
        assert!(e.contains("every pixel is 10"), "{e}");
    }
}
