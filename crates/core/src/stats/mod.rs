//! Statistics: exact per-channel sums (count, Σx, Σx²) of a split's parts, the per-channel
//! mean and standard deviation they give, and the cache that keeps each part's sums on disk
//! ([`store`]). The operators that sum batches are `ops::stats`; the pass that runs them is
//! `loader::stats`.

pub(crate) mod store;

use std::path::Path;

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Multiply, Semigroup};
use serde::{Deserialize, Serialize};

use crate::error::{Error, OnBadRecord, Result};
use crate::shape::Shape;

pub use store::{CACHE_ENV, CacheSetting, StatsStore};

/// Exact sums over u8 pixels of one channel. Integers, so the merge order (worker count,
/// batch size) cannot change the result. It is differential's difference type: records of
/// `(channel, ChannelSums)` accumulate by addition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct ChannelSums {
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
    pub(crate) fn of_histogram(hist: &[u64; 256]) -> Self {
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
    pub(crate) fn mean_std(&self) -> (f64, f64) {
        let n = self.count as i128;
        let var_num = n * self.sumsq - (self.sum as i128) * (self.sum as i128);
        let mean = self.sum as f64 / self.count as f64 / 255.0;
        let var = var_num as f64 / (n as f64 * n as f64);
        (mean, var.max(0.0).sqrt() / 255.0)
    }
}

/// A part of a data set (`crate::source::Part`) as the statistics see it: its name and a key
/// of its content. A part whose content changes is another part.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct PartId {
    pub name: String,
    pub content: u128,
}

/// What the statistics keep per part: the channel sums, the largest label among its records
/// (a cached part is valid only for a class count above it), and the records skipped as bad.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct PartSums {
    pub channels: Vec<ChannelSums>,
    pub max_label: i64,
    pub skipped: u64,
}

impl PartSums {
    /// Whether these sums could come from any pixels at all: per channel, `0 ≤ Σx ≤ 255·n`,
    /// `0 ≤ Σx² ≤ 255²·n` and a variance of 0 or more, the same `n` in every channel, and
    /// counts of 0 or more. A cache entry that fails this is corrupt, whatever its checksum.
    pub(crate) fn possible(&self) -> std::result::Result<(), String> {
        let count = self.channels.first().map_or(0, |c| c.count);
        if self.skipped > u64::MAX / 2 || self.max_label < -1 {
            return Err(format!(
                "skipped {} and largest label {} are impossible",
                self.skipped, self.max_label
            ));
        }
        for (c, s) in self.channels.iter().enumerate() {
            let n = s.count as i128;
            let ok = s.count == count
                && n >= 0
                && (0..=255 * n).contains(&(s.sum as i128))
                && (0..=255 * 255 * n).contains(&s.sumsq)
                && n * s.sumsq >= (s.sum as i128) * (s.sum as i128);
            if !ok {
                return Err(format!(
                    "channel {c}'s sums (count {}, sum {}, sum of squares {}) cannot come from pixels",
                    s.count, s.sum, s.sumsq
                ));
            }
        }
        Ok(())
    }

    /// Whether these sums are all of a part of `rows` records of `plane` pixels per channel:
    /// possible, every record either summed or skipped, and none skipped under
    /// [`OnBadRecord::Fail`], where a bad record fails the pass instead.
    pub(crate) fn covers(
        &self,
        rows: usize,
        plane: usize,
        policy: OnBadRecord,
    ) -> std::result::Result<(), String> {
        self.possible()?;
        let count = self.channels.first().map_or(0, |c| c.count) as u64;
        let images = count / plane.max(1) as u64;
        if !count.is_multiple_of(plane.max(1) as u64) || images + self.skipped != rows as u64 {
            return Err(format!(
                "it sums {images} image(s) and skips {} of a part of {rows} record(s)",
                self.skipped
            ));
        }
        if policy == OnBadRecord::Fail && self.skipped > 0 {
            return Err(format!(
                "it skips {} bad record(s), which --on-bad-record fail does not",
                self.skipped
            ));
        }
        Ok(())
    }

    /// Adds `other`'s records to these.
    pub(crate) fn merge(&mut self, other: &PartSums) {
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

/// Statistics of a training split, the numbers torchvision's `Normalize(mean, std)` takes.
/// Serialized as `flowload stats --json` prints it and `--stats FILE` reads it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    /// Images summed.
    pub images: usize,
    /// Channels per image.
    pub channels: usize,
    /// Rows per image.
    pub height: usize,
    /// Columns per image.
    pub width: usize,
    /// Per-channel mean, on the 0..1 scale (after ToTensor's /255).
    pub mean: Vec<f64>,
    /// Per-channel population standard deviation, on the 0..1 scale.
    pub std: Vec<f64>,
}

impl Stats {
    /// The statistics of exact per-channel sums over `images` images of `shape`.
    pub(crate) fn from_sums(images: usize, shape: Shape, sums: &[ChannelSums]) -> Self {
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

    /// The image shape they were taken over.
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
    fn impossible_sums_and_sums_of_another_part_are_refused() {
        let sums = |count, sum, sumsq, skipped| PartSums {
            channels: vec![ChannelSums { count, sum, sumsq }; 2],
            max_label: 3,
            skipped,
        };
        // 2 images of 4 pixels: values 10 and 20, 4 of each per channel.
        let good = sums(8, 120, 2000, 0);
        good.possible().unwrap();
        good.covers(2, 4, OnBadRecord::Fail).unwrap();
        // A forged Σx² of 0 (the zero-variance trap), a Σx beyond 255·n, a negative count.
        for bad in [
            sums(8, 120, 0, 0),
            sums(8, 2041, 2000 * 255, 0),
            sums(-8, 0, 0, 0),
        ] {
            assert!(bad.possible().is_err(), "{bad:?}");
        }
        let mut uneven = good.clone();
        uneven.channels[1].count = 4;
        assert!(uneven.possible().is_err());
        // The count must be the part's records, skips included; and fail skips none.
        assert!(good.covers(3, 4, OnBadRecord::Fail).is_err());
        let one_skipped = sums(8, 120, 2000, 1);
        one_skipped.covers(3, 4, OnBadRecord::Skip).unwrap();
        let e = one_skipped.covers(3, 4, OnBadRecord::Fail).unwrap_err();
        assert!(e.contains("skips 1 bad record"), "{e}");
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
