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
    /// The statistics' view of a padded `random_crop` (no user names it): the centre crop of
    /// the image, or where the crop is larger than the image, of the image padded.
    CenterPadCrop {
        size: (usize, usize),
        padding: usize,
        mode: PadMode,
    },
    /// The statistics' view of a non-square `random_resized_crop` (no user names it): the
    /// smallest resize, aspect ratio kept, that covers this size, so that its centre crop fits.
    ResizeCover((usize, usize)),
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
        if let Some((_, (k, _))) = keyed
            .iter()
            .enumerate()
            .find(|(i, (k, _))| keyed[..*i].iter().any(|(seen, _)| seen == k))
        {
            return Err(bad(format!("parameter '{k}' is given twice")));
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
            Transform::ResizeShort(_)
            | Transform::ResizeExact(_)
            | Transform::CenterCrop(_)
            | Transform::CenterPadCrop { .. }
            | Transform::ResizeCover(_) => false,
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
            Transform::CenterPadCrop {
                size: s,
                padding,
                mode,
            } => write!(
                f,
                "center_crop:{},padding={padding},mode={}",
                size(*s),
                format!("{mode:?}").to_lowercase()
            ),
            Transform::ResizeCover((h, w)) => write!(f, "resize_to_cover:{h}x{w}"),
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
    // The `-` between the two, not one of an exponent (`1e-9-1e-8`).
    let cut = s
        .char_indices()
        .find(|&(i, c)| c == '-' && i > 0 && !s[..i].ends_with(['e', 'E']))?
        .0;
    Some((num(&s[..cut])?, num(&s[cut + 1..])?))
}

/// The transforms of one split, in order, with the seed their draws come from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Transforms {
    pub(crate) list: Vec<Transform>,
    pub(crate) seed: u64,
    /// For the statistics' view of a list (`Transforms::for_statistics`), the list it is the
    /// view of, as the user wrote it: its errors name it.
    #[serde(skip)]
    pub(crate) view_of: Option<String>,
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

/// One resample: `region` of the stage's input (the source for the first stage, the previous
/// stage's output for the others) to `size`, reading no pixel outside `bounds`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Stage {
    /// What the crops before the resample left of the input: torchvision crops, then resizes,
    /// so the resampling filter stops at these edges. (Crops after it narrow `region` alone:
    /// torchvision resizes the whole, then crops, so the filter sees past them.)
    pub bounds: Region,
    pub region: Region,
    /// `(height, width)` the region is resampled to.
    pub size: (usize, usize),
}

/// What one sample's transforms come to: resample `region` of the source image to `size`,
/// then each of `then` in turn, then crop with padding, then mirror. Crops compose into the
/// region of the stage they follow, so a decoder that can read a region (JPEG) reads only what
/// the output needs; a resize that follows another resize starts a stage of its own, because
/// two resamples are not one (`resize:8x8` then `resize:64x64` is a blurred upsample, as in
/// torchvision, not a sharp 64x64).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Geometry {
    /// The first stage's bounds, as in [`Stage`].
    pub bounds: Region,
    pub region: Region,
    /// `(height, width)` the region is resampled to.
    pub size: (usize, usize),
    /// Further resamples, each of the previous one's output.
    pub then: Vec<Stage>,
    pub pad_crop: Option<PadCrop>,
    pub flip: bool,
}

impl Geometry {
    /// The `(height, width)` of the last resample's output.
    pub(crate) fn resampled(&self) -> (usize, usize) {
        self.then.last().map_or(self.size, |s| s.size)
    }
    /// The output's `(height, width)`.
    pub(crate) fn output(&self) -> (usize, usize) {
        match self.pad_crop {
            Some(p) => (p.height, p.width),
            None => self.resampled(),
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
            && self.then.is_empty()
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
        let t = Transforms {
            list,
            seed,
            view_of: None,
        };
        t.check_order()?;
        Ok(t)
    }

    /// Each transform in its one written form, every default spelled out (`hflip` is
    /// `hflip:0.5`): two lists that do the same have the same form.
    pub fn canonical(&self) -> Vec<String> {
        self.list.iter().map(ToString::to_string).collect()
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
            match *t {
                Transform::RandomResizedCrop { size, .. } => {
                    // Square: torchvision's evaluation view, `Resize(S)` + `CenterCrop(S)`.
                    list.push(if size.0 == size.1 {
                        Transform::ResizeShort(size.0)
                    } else {
                        Transform::ResizeCover(size)
                    });
                    list.push(Transform::CenterCrop(size));
                }
                // The crop's centre, without the padding where the crop fits the image: the same
                // size as the training images.
                Transform::RandomCrop {
                    size, padding: 0, ..
                } => list.push(Transform::CenterCrop(size)),
                Transform::RandomCrop {
                    size,
                    padding,
                    mode,
                } => list.push(Transform::CenterPadCrop {
                    size,
                    padding,
                    mode,
                }),
                Transform::HFlip { .. } => {}
                ref other => list.push(other.clone()),
            }
        }
        let view_of = (list != self.list).then(|| {
            self.list
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        });
        Transforms {
            list,
            seed: self.seed,
            view_of,
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
            | Transform::CenterPadCrop { size, .. }
            | Transform::CenterCrop(size)
            | Transform::ResizeExact(size) => Some(*size),
            // The longer side follows each image's aspect ratio.
            Transform::ResizeShort(_) | Transform::ResizeCover(_) | Transform::HFlip { .. } => None,
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
        self.draw_stages(source, key)
            .map_err(|e| match &self.view_of {
                Some(list) => {
                    format!("{e} (the statistics view of the training transforms {list})")
                }
                None => e,
            })
    }

    fn draw_stages(&self, source: (usize, usize), key: SampleKey) -> Result<Geometry, String> {
        let mut rng = self.rng(key);
        let whole = |(h, w): (usize, usize)| Region {
            left: 0.0,
            top: 0.0,
            width: w as f64,
            height: h as f64,
        };
        // The current stage: the region of its input, and the current image's size, which is
        // the region resampled (once `resampled`) and cropped; whether it is mirrored.
        let mut region = whole(source);
        let mut bounds = region;
        let (mut h, mut w) = source;
        let mut resampled = false;
        let mut stages: Vec<Stage> = Vec::new();
        let mut flip = false;
        let mut pad_crop = None;
        // The last stage's size, when a padded crop follows it.
        let mut padded_from = None;
        let too_big = |t: &Transform, h: usize, w: usize| {
            format!(
                "{t} does not fit the image ({h}x{w} at that point); pad it (random_crop:SIZE,padding=P) or resize first"
            )
        };
        // A resize to `to`: this stage's resample, or, when the stage has resampled already,
        // the first of a new stage over its output. A resize to the size there is is nothing.
        let mut resize = |to: (usize, usize),
                          (bounds, region): (&mut Region, &mut Region),
                          (h, w): (&mut usize, &mut usize),
                          resampled: &mut bool| {
            if to == (*h, *w) {
                return;
            }
            if *resampled {
                stages.push(Stage {
                    bounds: *bounds,
                    region: *region,
                    size: (*h, *w),
                });
                *region = whole((*h, *w));
                *bounds = *region;
            }
            *resampled = true;
            (*h, *w) = to;
        };
        // A crop before the stage's resample bounds what the filter may read.
        let crop = |region: &mut Region,
                    bounds: &mut Region,
                    (h, w): (&mut usize, &mut usize),
                    flip: bool,
                    resampled: bool,
                    at: (usize, usize, usize, usize)| {
            crop_into(region, (h, w), flip, at);
            if !resampled {
                *bounds = *region;
            }
        };
        for t in &self.list {
            match *t {
                Transform::RandomResizedCrop { size, scale, ratio } => {
                    let at = rrc_params(&mut rng, h, w, scale, ratio);
                    let hw = (&mut h, &mut w);
                    crop(&mut region, &mut bounds, hw, flip, resampled, at);
                    let hw = (&mut h, &mut w);
                    resize(size, (&mut bounds, &mut region), hw, &mut resampled);
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
                        let hw = (&mut h, &mut w);
                        crop(
                            &mut region,
                            &mut bounds,
                            hw,
                            flip,
                            resampled,
                            (top, left, ch, cw),
                        );
                    } else {
                        pad_crop = Some(pad(padding, mode, (top, left, ch, cw), pw, flip));
                        padded_from = Some((h, w));
                        (h, w) = (ch, cw);
                    }
                }
                Transform::CenterPadCrop {
                    size: (ch, cw),
                    padding,
                    mode,
                } => {
                    if ch <= h && cw <= w {
                        let (top, left) = centre((h, w), (ch, cw));
                        let hw = (&mut h, &mut w);
                        crop(
                            &mut region,
                            &mut bounds,
                            hw,
                            flip,
                            resampled,
                            (top, left, ch, cw),
                        );
                    } else {
                        let (ph, pw) = (h + 2 * padding, w + 2 * padding);
                        if ch > ph || cw > pw {
                            return Err(too_big(t, h, w));
                        }
                        let (top, left) = centre((ph, pw), (ch, cw));
                        pad_crop = Some(pad(padding, mode, (top, left, ch, cw), pw, flip));
                        padded_from = Some((h, w));
                        (h, w) = (ch, cw);
                    }
                }
                Transform::HFlip { p } => {
                    if p >= 1.0 || (p > 0.0 && rng.random::<f64>() < p) {
                        flip = !flip;
                    }
                }
                Transform::ResizeShort(n) => {
                    let to = if h <= w {
                        (n, (n as u64 * w as u64 / h as u64) as usize)
                    } else {
                        ((n as u64 * h as u64 / w as u64) as usize, n)
                    };
                    resize(
                        to,
                        (&mut bounds, &mut region),
                        (&mut h, &mut w),
                        &mut resampled,
                    );
                }
                Transform::ResizeCover((th, tw)) => {
                    // The side that needs more scaling gets its target; the other follows the
                    // aspect ratio, rounded down as torchvision's Resize rounds, which keeps it
                    // at least its target.
                    let to = if th as u64 * w as u64 >= tw as u64 * h as u64 {
                        (th, (th as u64 * w as u64 / h as u64) as usize)
                    } else {
                        ((tw as u64 * h as u64 / w as u64) as usize, tw)
                    };
                    resize(
                        to,
                        (&mut bounds, &mut region),
                        (&mut h, &mut w),
                        &mut resampled,
                    );
                }
                Transform::ResizeExact(size) => resize(
                    size,
                    (&mut bounds, &mut region),
                    (&mut h, &mut w),
                    &mut resampled,
                ),
                Transform::CenterCrop((ch, cw)) => {
                    if ch > h || cw > w {
                        return Err(too_big(t, h, w));
                    }
                    let (top, left) = centre((h, w), (ch, cw));
                    let hw = (&mut h, &mut w);
                    crop(
                        &mut region,
                        &mut bounds,
                        hw,
                        flip,
                        resampled,
                        (top, left, ch, cw),
                    );
                }
            }
            if h == 0 || w == 0 {
                return Err(format!("{t} leaves an empty image"));
            }
        }
        stages.push(Stage {
            bounds,
            region,
            size: padded_from.unwrap_or((h, w)),
        });
        let first = stages.remove(0);
        Ok(Geometry {
            bounds: first.bounds,
            region: first.region,
            size: first.size,
            then: stages,
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

/// The top left corner of a centred `crop` of `image`: torchvision's `int(round((h - ch) / 2))`,
/// with Python's ties to even.
fn centre(image: (usize, usize), crop: (usize, usize)) -> (usize, usize) {
    (
        ((image.0 - crop.0) as f64 / 2.0).round_ties_even() as usize,
        ((image.1 - crop.1) as f64 / 2.0).round_ties_even() as usize,
    )
}

/// A crop at `(top, left)` of the image padded by `padding` on every side (`padded_width`
/// wide), as a crop of the unpadded image that reaches past it; mirrored when `flip`.
fn pad(
    padding: usize,
    mode: PadMode,
    (top, left, ch, cw): (usize, usize, usize, usize),
    padded_width: usize,
    flip: bool,
) -> PadCrop {
    let left = if flip { padded_width - left - cw } else { left };
    PadCrop {
        top: top as i64 - padding as i64,
        left: left as i64 - padding as i64,
        height: ch,
        width: cw,
        mode,
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
        assert!(err("random_crop:32,padding=4,padding=8").contains("'padding' is given twice"));
        assert_eq!(
            Transform::parse("random_resized_crop:8,scale=1e-9-1e-8").unwrap(),
            Transform::RandomResizedCrop {
                size: (8, 8),
                scale: (1e-9, 1e-8),
                ratio: (0.75, 4.0 / 3.0)
            }
        );
        assert_eq!(
            t(&["hflip"]).canonical(),
            t(&["hflip:0.5"]).canonical(),
            "two spellings of one transform"
        );
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

    /// Whatever the training transforms accept, their statistics view accepts: a padded crop
    /// larger than the image, a non-square random resized crop.
    #[test]
    fn the_statistics_view_accepts_what_training_accepts() {
        let view = |specs: &[&str], source| {
            let training = t(specs);
            training.draw(source, key(0, 0)).unwrap();
            let g = training.for_statistics().draw(source, key(0, 0)).unwrap();
            (g.output(), g.pad_crop)
        };
        // 32x32 crops of 28x28 images padded by 4: the centre of the padded image.
        let (out, pad) = view(&["random_crop:32,padding=4"], (28, 28));
        assert_eq!(out, (32, 32));
        assert_eq!(pad.map(|p| (p.top, p.left)), Some((-2, -2)));
        // Where the crop fits, its view is the unpadded centre crop, as before.
        assert_eq!(
            view(&["random_crop:24,padding=4"], (28, 28)),
            ((24, 24), None)
        );
        for source in [(300, 400), (400, 300), (100, 30)] {
            assert_eq!(view(&["random_resized_crop:224x112"], source).0, (224, 112));
        }
        // An error of the view names the list the user wrote.
        let e = t(&["random_crop:40,padding=4"])
            .for_statistics()
            .draw((28, 28), key(0, 0))
            .unwrap_err();
        assert!(
            e.contains("statistics view") && e.contains("random_crop:40,padding=4"),
            "{e}"
        );
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
            vec![Transform::CenterPadCrop {
                size: (24, 24),
                padding: 4,
                mode: PadMode::Constant
            }]
        );
        assert_eq!(
            t(&["random_crop:24", "hflip"]).for_statistics().list,
            vec![Transform::CenterCrop((24, 24))]
        );
        assert_eq!(tr.fixed_size(), Some((224, 224)));
        assert_eq!(t(&["resize:256"]).fixed_size(), None);
        assert_eq!(t(&["hflip"]).fixed_size(), None);
    }
}
