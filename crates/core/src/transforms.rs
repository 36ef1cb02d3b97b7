//! Pixel transforms as the user names them (`random_resized_crop:224`, `hflip`, …): parsing,
//! the output size they give, and each sample's draws from a counter-based generator keyed by
//! `(seed, epoch, record)`, composed into one [`Geometry`] that the augment step renders.
//!
//! The semantics are torchvision's (v2): `RandomResizedCrop`, `RandomCrop`,
//! `RandomHorizontalFlip`, `Resize`, `CenterCrop`, with the same defaults. Every transform a
//! user can name is one entry of [`TRANSFORMS`] (its name, how it is written, its keys and its
//! parser): parsing, the errors and the help texts read that table.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::shape::{MAX_DECODE_BYTES, Shape};

/// A transform a user can name, one entry of [`TRANSFORMS`].
#[derive(Debug)]
pub struct TransformKind {
    /// Its name, before the colon: `random_resized_crop`.
    pub name: &'static str,
    /// How it is written, with its parameters: `random_resized_crop:SIZE[,scale=A-B]…`.
    pub usage: &'static str,
    /// Whether it draws at random, so that an evaluation split may not take it.
    pub random: bool,
    /// The `key=value` parameters it takes after its first argument.
    keys: &'static [&'static str],
    /// Parses its first argument and its keyed parameters.
    parse: fn(&Args) -> std::result::Result<Transform, String>,
}

/// Every transform, in the order help texts list them.
pub const TRANSFORMS: [TransformKind; 5] = [
    TransformKind {
        name: "random_resized_crop",
        usage: "random_resized_crop:SIZE[,scale=A-B][,ratio=A-B]",
        random: true,
        keys: &["scale", "ratio"],
        parse: |a| {
            let scale = match a.value("scale") {
                Some(v) => parse_range(v)
                    .filter(|&(lo, hi)| 0.0 < lo && lo <= hi && hi <= 1.0)
                    .ok_or_else(|| format!("scale '{v}' is not A-B with 0 < A <= B <= 1"))?,
                None => (0.08, 1.0),
            };
            let ratio = match a.value("ratio") {
                Some(v) => parse_range(v)
                    .filter(|&(lo, hi)| 0.0 < lo && lo <= hi)
                    .ok_or_else(|| format!("ratio '{v}' is not A-B with 0 < A <= B (3/4-4/3)"))?,
                None => (3.0 / 4.0, 4.0 / 3.0),
            };
            Ok(Transform::RandomResizedCrop {
                size: a.size()?,
                scale,
                ratio,
            })
        },
    },
    TransformKind {
        name: "random_crop",
        usage: "random_crop:SIZE[,padding=P][,mode=constant|reflect|edge]",
        random: true,
        keys: &["padding", "mode"],
        parse: |a| {
            let padding = match a.value("padding") {
                Some(v) => v
                    .parse()
                    .map_err(|_| format!("padding '{v}' is not a whole number"))?,
                None => 0,
            };
            let mode = match a.value("mode") {
                None | Some("constant") => PadMode::Constant,
                Some("reflect") => PadMode::Reflect,
                Some("edge") => PadMode::Edge,
                Some(m) => return Err(format!("mode '{m}' is not one of constant, reflect, edge")),
            };
            Ok(Transform::RandomCrop {
                size: a.size()?,
                padding,
                mode,
            })
        },
    },
    TransformKind {
        name: "hflip",
        usage: "hflip[:P]",
        random: true,
        keys: &[],
        parse: |a| {
            let p = match a.first {
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| format!("probability '{v}' is not in 0..1"))?,
                None => 0.5,
            };
            Ok(Transform::HFlip { p })
        },
    },
    TransformKind {
        name: "resize",
        usage: "resize:SHORT|HxW",
        random: false,
        keys: &[],
        parse: |a| {
            let s = a.first.ok_or("needs a size: SHORT or HxW")?;
            match s.parse::<usize>() {
                Ok(0) | Err(_) if !s.contains('x') => {
                    Err(format!("size '{s}' is not SHORT or HxW (positive)"))
                }
                Ok(n) => Ok(Transform::ResizeShort(n)),
                Err(_) => Ok(Transform::ResizeExact(a.size()?)),
            }
        },
    },
    TransformKind {
        name: "center_crop",
        usage: "center_crop:SIZE",
        random: false,
        keys: &[],
        parse: |a| Ok(Transform::CenterCrop(a.size()?)),
    },
];

/// Every transform as it is written, `random_resized_crop:SIZE[…], …, center_crop:SIZE`: what
/// the help texts and the unknown-transform error list. `random: Some(false)` lists the
/// deterministic ones alone (what an evaluation split takes).
pub fn transforms_help(random: Option<bool>) -> String {
    TRANSFORMS
        .iter()
        .filter(|k| random.is_none_or(|r| k.random == r))
        .map(|k| k.usage)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One spec's arguments: the first (a size, a probability), and `key=value` pairs.
struct Args<'a> {
    first: Option<&'a str>,
    keyed: Vec<(&'a str, &'a str)>,
}

impl Args<'_> {
    fn value(&self, key: &str) -> Option<&str> {
        self.keyed.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
    /// The first argument as a size: `N` or `HxW`, positive.
    fn size(&self) -> std::result::Result<(usize, usize), String> {
        let s = self
            .first
            .ok_or("needs a size, for example 224 or 224x160")?;
        parse_size(s).ok_or_else(|| format!("size '{s}' is not N or HxW (positive)"))
    }
}

/// How `random_crop` fills the padding, as torchvision's `padding_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum PadMode {
    /// Zeros.
    Constant,
    /// The image mirrored without repeating the edge pixel.
    Reflect,
    /// The edge pixel repeated.
    Edge,
}

/// One transform with its parameters. Sizes are `(height, width)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Transform {
    RandomResizedCrop {
        size: (usize, usize),
        scale: (f64, f64),
        ratio: (f64, f64),
    },
    RandomCrop {
        size: (usize, usize),
        padding: usize,
        mode: PadMode,
    },
    HFlip {
        p: f64,
    },
    /// The shorter side to this length, the longer in proportion (rounded down, as torchvision).
    ResizeShort(usize),
    /// Exactly this size (`resize:HxW`, and `--resize HxW`).
    ResizeExact((usize, usize)),
    CenterCrop((usize, usize)),
}

impl Transform {
    /// Parses one spec, for example `random_resized_crop:224,scale=0.35-1`.
    pub(crate) fn parse(spec: &str) -> Result<Transform> {
        let bad = |detail: String| Error::Config(format!("transform '{spec}': {detail}"));
        let (name, args) = spec.trim().split_once(':').unwrap_or((spec.trim(), ""));
        let kind = TRANSFORMS.iter().find(|k| k.name == name).ok_or_else(|| {
            bad(format!(
                "unknown transform '{name}'; known: {}",
                transforms_help(None)
            ))
        })?;
        let mut args = args.split(',').map(str::trim).filter(|a| !a.is_empty());
        let first = args.next();
        let mut keyed = Vec::new();
        for a in args {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| bad(format!("'{a}' is not key=value")))?;
            keyed.push((k.trim(), v.trim()));
        }
        if let Some((k, _)) = keyed.iter().find(|(k, _)| !kind.keys.contains(k)) {
            return Err(bad(format!(
                "unknown parameter '{k}'{}",
                if kind.keys.is_empty() {
                    String::from(" (it takes none)")
                } else {
                    format!(" (known: {})", kind.keys.join(", "))
                }
            )));
        }
        (kind.parse)(&Args { first, keyed }).map_err(bad)
    }

    /// Whether the transform draws from the generator.
    pub(crate) fn is_random(&self) -> bool {
        match self {
            Transform::RandomResizedCrop { .. } => true,
            Transform::RandomCrop { .. } => true,
            Transform::HFlip { p } => *p > 0.0 && *p < 1.0,
            Transform::ResizeShort(_) | Transform::ResizeExact(_) | Transform::CenterCrop(_) => {
                false
            }
        }
    }
}

impl std::fmt::Display for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = |(h, w): (usize, usize)| {
            if h == w {
                h.to_string()
            } else {
                format!("{h}x{w}")
            }
        };
        match self {
            Transform::RandomResizedCrop {
                size: s,
                scale,
                ratio,
            } => write!(
                f,
                "random_resized_crop:{},scale={}-{},ratio={}-{}",
                size(*s),
                scale.0,
                scale.1,
                ratio.0,
                ratio.1
            ),
            Transform::RandomCrop {
                size: s,
                padding,
                mode,
            } => write!(
                f,
                "random_crop:{},padding={padding},mode={}",
                size(*s),
                format!("{mode:?}").to_lowercase()
            ),
            Transform::HFlip { p } => write!(f, "hflip:{p}"),
            Transform::ResizeShort(n) => write!(f, "resize:{n}"),
            Transform::ResizeExact((h, w)) => write!(f, "resize:{h}x{w}"),
            Transform::CenterCrop(s) => write!(f, "center_crop:{}", size(*s)),
        }
    }
}

fn parse_size(s: &str) -> Option<(usize, usize)> {
    let (h, w) = match s.split_once('x') {
        Some((h, w)) => (h.trim().parse().ok()?, w.trim().parse().ok()?),
        None => {
            let n = s.trim().parse().ok()?;
            (n, n)
        }
    };
    (h > 0 && w > 0).then_some((h, w))
}

/// `A-B`, each a decimal or a fraction `N/D`.
fn parse_range(s: &str) -> Option<(f64, f64)> {
    let num = |t: &str| -> Option<f64> {
        let v = match t.split_once('/') {
            Some((n, d)) => n.trim().parse::<f64>().ok()? / d.trim().parse::<f64>().ok()?,
            None => t.trim().parse().ok()?,
        };
        v.is_finite().then_some(v)
    };
    let (a, b) = s.split_once('-')?;
    Some((num(a)?, num(b)?))
}

/// The transforms of one split, in order, with the seed their draws come from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Transforms {
    pub(crate) list: Vec<Transform>,
    pub(crate) seed: u64,
}

/// A region of the source image, in source pixels; fractional where a resize came before a
/// crop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Region {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// A crop that may reach past the image (`random_crop` with padding), in the pixels of the
/// resampled region: rows `top..top+height`, columns `left..left+width`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PadCrop {
    pub top: i64,
    pub left: i64,
    pub height: usize,
    pub width: usize,
    pub mode: PadMode,
}

/// What one sample's transforms come to: resample `region` of the source image to `size`,
/// then crop with padding, then mirror. Every listed transform composes into this form, so a
/// decoder that can read a region (JPEG) reads only what the output needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Geometry {
    pub region: Region,
    /// `(height, width)` the region is resampled to.
    pub size: (usize, usize),
    pub pad_crop: Option<PadCrop>,
    pub flip: bool,
}

impl Geometry {
    /// The output's `(height, width)`.
    pub(crate) fn output(&self) -> (usize, usize) {
        match self.pad_crop {
            Some(p) => (p.height, p.width),
            None => self.size,
        }
    }
    /// Whether rendering is a plain copy of the whole source (no resampling).
    pub(crate) fn is_identity(&self, source: (usize, usize)) -> bool {
        self.region
            == (Region {
                left: 0.0,
                top: 0.0,
                width: source.1 as f64,
                height: source.0 as f64,
            })
            && self.size == source
    }
}

/// The key of one sample's draws: the same record in the same epoch draws the same numbers on
/// any worker of any process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleKey {
    /// The epoch, from 0.
    pub epoch: u32,
    /// The record's index in its split.
    pub record: u32,
}

impl Transforms {
    /// Parses `specs` in order (see [`TRANSFORMS`]); `seed` keys every random draw with the
    /// epoch and the record. A crop with padding must come after every resample.
    pub fn new(specs: &[String], seed: u64) -> Result<Transforms> {
        let list = specs
            .iter()
            .map(|s| Transform::parse(s))
            .collect::<Result<Vec<_>>>()?;
        let t = Transforms { list, seed };
        t.check_order()?;
        Ok(t)
    }

    /// Whether there is no transform.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether any transform draws at random.
    pub fn is_random(&self) -> bool {
        self.list.iter().any(Transform::is_random)
    }

    /// The random transforms' names, for the error that keeps them off the evaluation split.
    pub fn random_ones(&self) -> Vec<String> {
        self.list
            .iter()
            .filter(|t| t.is_random())
            .map(|t| t.to_string())
            .collect()
    }

    /// A crop with padding renders last, after every resample: only a flip may follow it.
    fn check_order(&self) -> Result<()> {
        let padded = self
            .list
            .iter()
            .position(|t| matches!(t, Transform::RandomCrop { padding, .. } if *padding > 0));
        if let Some(i) = padded
            && let Some(after) = self.list[i + 1..]
                .iter()
                .find(|t| !matches!(t, Transform::HFlip { .. }))
        {
            return Err(Error::Config(format!(
                "transform '{after}' comes after '{}': a crop with padding must be the last crop or resize (hflip may follow)",
                self.list[i]
            )));
        }
        Ok(())
    }

    /// The deterministic counterpart the statistics are computed on: each random crop becomes
    /// the evaluation view of the same size (`random_resized_crop:S` → `resize:S` +
    /// `center_crop:S`; `random_crop:S[,padding=P]` → `center_crop:S`, unpadded) and flips go,
    /// as they do not change per-channel sums.
    pub(crate) fn for_statistics(&self) -> Transforms {
        let mut list = Vec::new();
        for t in &self.list {
            match t {
                Transform::RandomResizedCrop { size, .. } => {
                    list.push(Transform::ResizeShort(size.0.min(size.1)));
                    list.push(Transform::CenterCrop(*size));
                }
                // The crop's centre, without the padding: the same size as the training images
                // whenever the crop fits the image (with padding it usually equals it).
                Transform::RandomCrop { size, .. } => list.push(Transform::CenterCrop(*size)),
                Transform::HFlip { .. } => {}
                other => list.push(other.clone()),
            }
        }
        Transforms {
            list,
            seed: self.seed,
        }
    }

    /// The output size for every input, when the transforms fix it (they end in a crop or an
    /// exact resize).
    pub(crate) fn fixed_size(&self) -> Option<(usize, usize)> {
        // The last transform that sets a size decides; flips set none.
        let last = self
            .list
            .iter()
            .rev()
            .find(|t| !matches!(t, Transform::HFlip { .. }))?;
        match last {
            Transform::RandomResizedCrop { size, .. }
            | Transform::RandomCrop { size, .. }
            | Transform::CenterCrop(size)
            | Transform::ResizeExact(size) => Some(*size),
            // The longer side follows each image's aspect ratio.
            Transform::ResizeShort(_) | Transform::HFlip { .. } => None,
        }
    }

    /// The output size for a `(height, width)` source: the fixed size, or what the transforms
    /// make of this one.
    pub(crate) fn output_size(&self, source: (usize, usize)) -> Result<(usize, usize), String> {
        // Drawn even when the size is fixed: a crop that does not fit the image is an error.
        let drawn = self
            .draw(
                source,
                SampleKey {
                    epoch: 0,
                    record: 0,
                },
            )?
            .output();
        Ok(self.fixed_size().unwrap_or(drawn))
    }

    /// The shape records of `probed` shape come out in: the fixed size the transforms end in,
    /// or what they make of the first record; an error names `origin`.
    pub(crate) fn output_shape(&self, origin: &str, probed: Shape) -> Result<Shape> {
        let (height, width) = self
            .output_size((probed.height, probed.width))
            .map_err(|e| Error::Config(format!("{origin}: the first image: {e}")))?;
        let shape = Shape {
            channels: probed.channels,
            height,
            width,
        };
        // Checked here, where every command passes, before any record is decoded into it.
        if (shape.len() as u64) > MAX_DECODE_BYTES {
            return Err(Error::Config(format!(
                "images of {shape} are {} MiB each, more than the {} MiB a record may take (--resize and the transforms: {})",
                shape.len() >> 20,
                MAX_DECODE_BYTES >> 20,
                self.list
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            )));
        }
        Ok(shape)
    }

    /// One sample's geometry on a `(height, width)` source. The error names the transform and
    /// the size it met (a crop larger than the image without padding).
    pub(crate) fn draw(&self, source: (usize, usize), key: SampleKey) -> Result<Geometry, String> {
        let mut rng = self.rng(key);
        let mut region = Region {
            left: 0.0,
            top: 0.0,
            width: source.1 as f64,
            height: source.0 as f64,
        };
        // The current image: its size, and whether it is mirrored relative to the region.
        let (mut h, mut w) = source;
        let mut flip = false;
        let mut pad_crop = None;
        // The size the region is resampled to, when a padded crop follows it.
        let mut resampled = None;
        let too_big = |t: &Transform, h: usize, w: usize| {
            format!(
                "{t} does not fit the image ({h}x{w} at that point); pad it (random_crop:SIZE,padding=P) or resize first"
            )
        };
        for t in &self.list {
            match *t {
                Transform::RandomResizedCrop { size, scale, ratio } => {
                    let (top, left, ch, cw) = rrc_params(&mut rng, h, w, scale, ratio);
                    crop_into(&mut region, (&mut h, &mut w), flip, (top, left, ch, cw));
                    (h, w) = size;
                }
                Transform::RandomCrop {
                    size: (ch, cw),
                    padding,
                    mode,
                } => {
                    let (ph, pw) = (h + 2 * padding, w + 2 * padding);
                    if ch > ph || cw > pw {
                        return Err(too_big(t, h, w));
                    }
                    let top = rng.random_range(0..=ph - ch);
                    let left = rng.random_range(0..=pw - cw);
                    if padding == 0 {
                        crop_into(&mut region, (&mut h, &mut w), flip, (top, left, ch, cw));
                    } else {
                        let left = if flip { pw - left - cw } else { left };
                        pad_crop = Some(PadCrop {
                            top: top as i64 - padding as i64,
                            left: left as i64 - padding as i64,
                            height: ch,
                            width: cw,
                            mode,
                        });
                        resampled = Some((h, w));
                        (h, w) = (ch, cw);
                    }
                }
                Transform::HFlip { p } => {
                    if p >= 1.0 || (p > 0.0 && rng.random::<f64>() < p) {
                        flip = !flip;
                    }
                }
                Transform::ResizeShort(n) => {
                    (h, w) = if h <= w {
                        (n, (n as u64 * w as u64 / h as u64) as usize)
                    } else {
                        ((n as u64 * h as u64 / w as u64) as usize, n)
                    };
                }
                Transform::ResizeExact(size) => (h, w) = size,
                Transform::CenterCrop((ch, cw)) => {
                    if ch > h || cw > w {
                        return Err(too_big(t, h, w));
                    }
                    // torchvision: int(round((h - ch) / 2)), with Python's ties to even.
                    let top = ((h - ch) as f64 / 2.0).round_ties_even() as usize;
                    let left = ((w - cw) as f64 / 2.0).round_ties_even() as usize;
                    crop_into(&mut region, (&mut h, &mut w), flip, (top, left, ch, cw));
                }
            }
            if h == 0 || w == 0 {
                return Err(format!("{t} leaves an empty image"));
            }
        }
        Ok(Geometry {
            region,
            size: resampled.unwrap_or((h, w)),
            pad_crop,
            flip,
        })
    }

    fn rng(&self, key: SampleKey) -> ChaCha8Rng {
        // A generator of its own, apart from the shuffle's (which is seeded from the seed
        // alone): the seed in the first 8 bytes, a tag in the next, the sample in the stream.
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.seed.to_le_bytes());
        seed[8..16].copy_from_slice(b"augment\0");
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(((key.epoch as u64) << 32) | key.record as u64);
        rng
    }
}

/// Crops `(top, left, height, width)` of the current `h × w` image (mirrored when `flip`) and
/// narrows the source region to it.
fn crop_into(
    region: &mut Region,
    (h, w): (&mut usize, &mut usize),
    flip: bool,
    (top, left, ch, cw): (usize, usize, usize, usize),
) {
    let left = if flip { *w - left - cw } else { left };
    let (sx, sy) = (region.width / *w as f64, region.height / *h as f64);
    *region = Region {
        left: region.left + left as f64 * sx,
        top: region.top + top as f64 * sy,
        width: cw as f64 * sx,
        height: ch as f64 * sy,
    };
    (*h, *w) = (ch, cw);
}

/// torchvision's `RandomResizedCrop.get_params`: ten tries at a random area and aspect ratio,
/// then the whole image clamped to the ratio range, centred. Returns `(top, left, h, w)`.
fn rrc_params(
    rng: &mut ChaCha8Rng,
    height: usize,
    width: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
) -> (usize, usize, usize, usize) {
    let area = (height * width) as f64;
    let (lo, hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * (scale.0 + (scale.1 - scale.0) * rng.random::<f64>());
        let aspect = (lo + (hi - lo) * rng.random::<f64>()).exp();
        let w = (target * aspect).sqrt().round_ties_even() as usize;
        let h = (target / aspect).sqrt().round_ties_even() as usize;
        if 0 < w && w <= width && 0 < h && h <= height {
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return (top, left, h, w);
        }
    }
    let in_ratio = width as f64 / height as f64;
    let (w, h) = if in_ratio < ratio.0 {
        (
            width,
            ((width as f64 / ratio.0).round_ties_even() as usize).max(1),
        )
    } else if in_ratio > ratio.1 {
        (
            ((height as f64 * ratio.1).round_ties_even() as usize).max(1),
            height,
        )
    } else {
        (width, height)
    };
    ((height - h) / 2, (width - w) / 2, h, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(specs: &[&str]) -> Transforms {
        Transforms::new(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>(), 7).unwrap()
    }
    fn key(epoch: u32, record: u32) -> SampleKey {
        SampleKey { epoch, record }
    }

    #[test]
    fn specs_parse_with_torchvision_defaults_and_bad_ones_name_the_problem() {
        assert_eq!(
            Transform::parse("random_resized_crop:224").unwrap(),
            Transform::RandomResizedCrop {
                size: (224, 224),
                scale: (0.08, 1.0),
                ratio: (0.75, 4.0 / 3.0)
            }
        );
        assert_eq!(
            Transform::parse("random_crop:32,padding=4,mode=reflect").unwrap(),
            Transform::RandomCrop {
                size: (32, 32),
                padding: 4,
                mode: PadMode::Reflect
            }
        );
        assert_eq!(
            Transform::parse("hflip").unwrap(),
            Transform::HFlip { p: 0.5 }
        );
        assert_eq!(
            Transform::parse("resize:256").unwrap(),
            Transform::ResizeShort(256)
        );
        assert_eq!(
            Transform::parse("resize:20x30").unwrap(),
            Transform::ResizeExact((20, 30))
        );
        let err = |s: &str| Transform::parse(s).unwrap_err().to_string();
        assert!(
            err("rotate:30").contains("known: random_resized_crop"),
            "{}",
            err("rotate:30")
        );
        assert!(err("random_resized_crop:224,scale=0-2").contains("scale '0-2'"));
        assert!(err("random_crop:32,pad=4").contains("unknown parameter 'pad'"));
        assert!(err("random_crop:32,padding=4,mode=wrap").contains("mode 'wrap'"));
        assert!(err("hflip:2").contains("probability '2'"));
        assert!(err("center_crop").contains("needs a size"));
        assert!(err("resize:0").contains("size '0'"));
        let order = Transforms::new(&["random_crop:32,padding=4".into(), "resize:16".into()], 0)
            .unwrap_err()
            .to_string();
        assert!(order.contains("must be the last crop or resize"), "{order}");
    }

    #[test]
    fn draws_depend_on_seed_epoch_and_record_only() {
        let tr = t(&["random_resized_crop:64", "hflip"]);
        let a = tr.draw((300, 400), key(0, 5)).unwrap();
        assert_eq!(a, tr.draw((300, 400), key(0, 5)).unwrap());
        assert_eq!(a.size, (64, 64));
        let others: Vec<_> = (0..20)
            .map(|e| tr.draw((300, 400), key(e, 5)).unwrap())
            .collect();
        assert!(others.iter().any(|g| g.region != a.region));
        assert!(others.iter().any(|g| g.flip) && others.iter().any(|g| !g.flip));
        let mut other_seed = tr.clone();
        other_seed.seed = 8;
        assert_ne!(other_seed.draw((300, 400), key(0, 5)).unwrap(), a);
    }

    #[test]
    fn rrc_regions_stay_inside_with_area_and_ratio_in_range() {
        let tr = t(&["random_resized_crop:32,scale=0.25-0.5,ratio=3/4-4/3"]);
        for r in 0..500 {
            let g = tr.draw((200, 300), key(1, r)).unwrap();
            let Region {
                left,
                top,
                width,
                height,
            } = g.region;
            assert!(left >= 0.0 && top >= 0.0 && left + width <= 300.0 && top + height <= 200.0);
            let area = width * height / 60000.0;
            // Rounding to whole pixels moves the area a little past the range.
            assert!((0.24..=0.51).contains(&area), "{area}");
            let ratio = width / height;
            assert!((0.74..=1.35).contains(&ratio), "{ratio}");
        }
    }

    #[test]
    fn resize_then_center_crop_composes_into_one_region() {
        let g = t(&["resize:256", "center_crop:224"])
            .draw((400, 600), key(0, 0))
            .unwrap();
        // 400x600 → 256x384, centre 224x224 at (16, 80) → ×1.5625 in the source.
        assert_eq!(g.size, (224, 224));
        assert_eq!(
            g.region,
            Region {
                left: 125.0,
                top: 25.0,
                width: 350.0,
                height: 350.0
            }
        );
        assert!(!g.flip && g.pad_crop.is_none());
        let e = t(&["center_crop:500"])
            .draw((400, 600), key(0, 0))
            .unwrap_err();
        assert!(
            e.contains("center_crop:500") && e.contains("400x600"),
            "{e}"
        );
    }

    #[test]
    fn padded_crop_keeps_the_image_and_offsets_by_the_padding() {
        let tr = t(&["random_crop:32,padding=4", "hflip:1"]);
        for r in 0..50 {
            let g = tr.draw((32, 32), key(0, r)).unwrap();
            assert!(g.flip && g.is_identity((32, 32)));
            let p = g.pad_crop.unwrap();
            assert!((-4..=4).contains(&p.top) && (-4..=4).contains(&p.left));
        }
        assert!(t(&["random_crop:40"]).draw((32, 32), key(0, 0)).is_err());
    }

    #[test]
    fn statistics_see_the_deterministic_counterpart() {
        let tr = t(&["random_resized_crop:224", "hflip"]);
        assert_eq!(
            tr.for_statistics().list,
            vec![
                Transform::ResizeShort(224),
                Transform::CenterCrop((224, 224))
            ]
        );
        assert!(!tr.for_statistics().is_random());
        assert_eq!(
            t(&["random_crop:24,padding=4", "hflip"])
                .for_statistics()
                .list,
            vec![Transform::CenterCrop((24, 24))]
        );
        assert_eq!(tr.fixed_size(), Some((224, 224)));
        assert_eq!(t(&["resize:256"]).fixed_size(), None);
        assert_eq!(t(&["hflip"]).fixed_size(), None);
    }
}
