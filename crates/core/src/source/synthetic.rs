//! Synthetic source: seeded images with a learnable class structure and distinct per-channel statistics.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Dataset, DatasetOptions, SourceFormat, Split};
use crate::error::{Error, Result};
use crate::machine::physical_memory;
use crate::shape::{MAX_DECODE_BYTES, Shape};

/// `synthetic:images=N,channels=C,size=HxW,classes=K,seed=S[,test=M]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntheticSpec {
    pub images: usize,
    /// Held-out images for the test split.
    pub test: usize,
    pub shape: Shape,
    pub classes: usize,
    pub seed: u64,
    /// Extra decode work per image, thousands of hash rounds (about 1 µs each here): an
    /// artificially expensive decode for tests and benchmarks. Default 0.
    pub work: u32,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        SyntheticSpec {
            images: 1000,
            test: 200,
            shape: Shape {
                channels: 1,
                height: 28,
                width: 28,
            },
            classes: 10,
            seed: 0,
            work: 0,
        }
    }
}

/// The seeded synthetic source, as [`super::FORMATS`] lists it.
pub(crate) const FORMAT: SourceFormat = SourceFormat {
    name: "synthetic data",
    looks_for: "synthetic:key=value,...",
    help: "`synthetic:images=N,channels=C,size=HxW,classes=K,seed=S`",
    by_spec: |spec| spec == "synthetic" || spec.starts_with("synthetic:"),
    at_path: None,
    open,
};

/// Generates the data set `spec` describes; a class count in `opts` must agree with it.
fn open(spec: &str, opts: &DatasetOptions) -> Result<Dataset> {
    let s = SyntheticSpec::parse(spec, spec.strip_prefix("synthetic:").unwrap_or(""))?;
    match opts.classes {
        Some(k) if k != s.classes => Err(Error::Config(format!(
            "classes {k}: {s} generates {} classes; give the count in the spec (classes={k}) instead",
            s.classes
        ))),
        _ => s.generate().with_raw_transforms(opts),
    }
}

const STREAM_TRAIN: u64 = 0;
const STREAM_TEST: u64 = 1;
const STREAM_TEMPLATES: u64 = 2;

impl SyntheticSpec {
    pub(crate) fn parse(spec: &str, rest: &str) -> Result<Self> {
        let bad = |detail: String| Error::BadSpec {
            spec: spec.into(),
            detail,
        };
        let mut s = SyntheticSpec::default();
        let mut test_given = false;
        for kv in rest.split(',').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| bad(format!("'{kv}' is not key=value")))?;
            let num = |v: &str| {
                v.parse::<usize>()
                    .map_err(|_| bad(format!("{k}: '{v}' is not a non-negative integer")))
            };
            match k {
                "images" => s.images = num(v)?,
                "test" => {
                    s.test = num(v)?;
                    test_given = true;
                }
                "channels" => s.shape.channels = num(v)?,
                "classes" => s.classes = num(v)?,
                "seed" => s.seed = num(v)? as u64,
                "work" => {
                    s.work = u32::try_from(num(v)?)
                        .map_err(|_| bad(format!("work: '{v}' is too large")))?
                }
                "size" => {
                    let (h, w) = v
                        .split_once('x')
                        .ok_or_else(|| bad(format!("size: '{v}' is not HxW")))?;
                    s.shape.height = num(h)?;
                    s.shape.width = num(w)?;
                }
                _ => {
                    return Err(bad(format!(
                        "unknown key '{k}' (known: images, test, channels, size, classes, seed, work)"
                    )));
                }
            }
        }
        if !test_given {
            s.test = s.images / 5;
        }
        if !(s.shape.channels == 1 || s.shape.channels == 3) {
            return Err(bad(format!(
                "channels must be 1 or 3, not {}",
                s.shape.channels
            )));
        }
        if s.shape.height < 4 || s.shape.width < 4 {
            return Err(bad("size must be at least 4x4".into()));
        }
        if !(2..=256).contains(&s.classes) {
            return Err(bad(format!(
                "classes must be in 2..=256, not {}",
                s.classes
            )));
        }
        // The images are generated in memory: each must fit a record, and all must fit the
        // machine, before any byte is allocated.
        let per_image = (s.shape.channels as u64)
            .checked_mul(s.shape.height as u64)
            .and_then(|n| n.checked_mul(s.shape.width as u64))
            .filter(|&n| n <= MAX_DECODE_BYTES)
            .ok_or_else(|| {
                bad(format!(
                    "size {}x{} with {} channel(s) is more than the {} MiB an image may take",
                    s.shape.height,
                    s.shape.width,
                    s.shape.channels,
                    MAX_DECODE_BYTES >> 20
                ))
            })?;
        let total = (s.images as u64)
            .checked_add(s.test as u64)
            .and_then(|n| n.checked_mul(per_image));
        let memory = physical_memory();
        if total.is_none_or(|t| memory.is_some_and(|m| t > m)) {
            return Err(bad(format!(
                "images={} and test={} of {per_image} bytes each are more than this machine's {} GiB of memory",
                s.images,
                s.test,
                memory.unwrap_or(0) >> 30
            )));
        }
        Ok(s)
    }

    /// Generates both splits. Deterministic in the spec: the same spec gives the same bytes.
    pub(crate) fn generate(&self) -> Dataset {
        let templates = self.templates();
        let test = (self.test > 0).then(|| self.split(self.test, STREAM_TEST, &templates).into());
        Dataset {
            name: format!("synthetic-{}", self.seed),
            train: self.split(self.images, STREAM_TRAIN, &templates).into(),
            test,
        }
    }

    /// Each class owns a few bright rectangles per channel; a small CNN separates them easily,
    /// while noise and brightness jitter keep the task from being trivial.
    fn templates(&self) -> Vec<Vec<bool>> {
        let mut rng = rng(self.seed, STREAM_TEMPLATES);
        let (h, w) = (self.shape.height, self.shape.width);
        (0..self.classes * self.shape.channels)
            .map(|_| {
                let mut t = vec![false; h * w];
                for _ in 0..3 {
                    let (y0, x0) = (rng.random_range(0..h - 2), rng.random_range(0..w - 2));
                    let (y1, x1) = (
                        rng.random_range(y0 + 2..=h.min(y0 + h / 2 + 2)),
                        rng.random_range(x0 + 2..=w.min(x0 + w / 2 + 2)),
                    );
                    for y in y0..y1 {
                        t[y * w + x0..y * w + x1].fill(true);
                    }
                }
                t
            })
            .collect()
    }

    fn split(&self, n: usize, stream: u64, templates: &[Vec<bool>]) -> Split {
        let mut rng = rng(self.seed, stream);
        let shape = self.shape;
        let mut pixels = Vec::with_capacity(n * shape.len());
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let label = rng.random_range(0..self.classes);
            let gain: f32 = rng.random_range(0.6..1.4);
            for c in 0..shape.channels {
                // Distinct base levels per channel, so per-channel statistics really differ.
                let base = 30.0 + 40.0 * c as f32;
                let template = &templates[label * shape.channels + c];
                pixels.extend(template.iter().map(|&on| {
                    let signal = if on { 120.0 * gain } else { 0.0 };
                    let noise: f32 = rng.random_range(-30.0..30.0);
                    (base + signal + noise).clamp(0.0, 255.0) as u8
                }));
            }
            labels.push(label as i64);
        }
        Split {
            origin: self.to_string(),
            shape,
            pixels,
            labels,
            classes: self.classes,
            work: self.work,
        }
    }
}

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

impl std::fmt::Display for SyntheticSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "synthetic:images={},channels={},size={}x{},classes={},seed={},test={}",
            self.images,
            self.shape.channels,
            self.shape.height,
            self.shape.width,
            self.classes,
            self.seed,
            self.test
        )?;
        if self.work > 0 {
            write!(f, ",work={}", self.work)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_through_display() {
        let s =
            SyntheticSpec::parse("x", "images=50,channels=3,size=8x9,classes=4,seed=7").unwrap();
        assert_eq!(
            (
                s.images,
                s.test,
                s.shape.channels,
                s.shape.height,
                s.shape.width
            ),
            (50, 10, 3, 8, 9)
        );
        let again = s.to_string();
        assert_eq!(
            SyntheticSpec::parse("x", again.strip_prefix("synthetic:").unwrap()).unwrap(),
            s
        );
    }

    #[test]
    fn a_size_beyond_a_record_or_memory_is_refused_before_generating() {
        let e = |spec: &str| SyntheticSpec::parse("x", spec).unwrap_err().to_string();
        let big = e("images=100000,channels=3,size=1024x1024");
        assert!(
            big.contains("memory") && big.contains("images=100000"),
            "{big}"
        );
        let huge = e("size=100000x100000");
        assert!(huge.contains("an image may take"), "{huge}");
        let many = e("images=18446744073709551615");
        assert!(many.contains("memory"), "{many}");
        SyntheticSpec::parse("x", "images=1000,channels=3,size=64x64").unwrap();
    }

    #[test]
    fn bad_keys_are_named() {
        let e = SyntheticSpec::parse("x", "imgs=5").unwrap_err().to_string();
        assert!(e.contains("unknown key 'imgs'"), "{e}");
        let e = SyntheticSpec::parse("x", "channels=2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("channels must be 1 or 3"), "{e}");
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = SyntheticSpec::parse("x", "images=20,seed=1")
            .unwrap()
            .generate();
        let b = SyntheticSpec::parse("x", "images=20,seed=1")
            .unwrap()
            .generate();
        let c = SyntheticSpec::parse("x", "images=20,seed=2")
            .unwrap()
            .generate();
        let px = |d: &Dataset| d.train.as_raw().unwrap().pixels.clone();
        assert_eq!(px(&a), px(&b));
        assert_ne!(px(&a), px(&c));
        assert_eq!(a.test.as_ref().unwrap().len(), 4);
    }
}
