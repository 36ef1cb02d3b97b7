//! Sources: where records come from. IDX files and the seeded synthetic generator give raw
//! pixels in memory; Parquet shards and image folders give encoded images, decoded per batch.

pub mod encoded;
pub mod idx;
pub mod synthetic;
pub mod transforms;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
pub use encoded::{EncodedOptions, EncodedSplit};
use encoded::{folder, parquet};
use transforms::Transforms;

/// Rows shuffled together when a source is read block by block: blocks are taken in a seeded
/// order and grouped into windows of at least this many rows, and each window's rows are
/// permuted. Each worker then holds about two windows of encoded bytes, whatever the data
/// set's size. Sources of large records use fewer rows, to hold [`SHUFFLE_WINDOW_BYTES`].
pub const SHUFFLE_WINDOW: usize = 8192;

/// Encoded bytes a shuffle window holds at most: 8192 rows of 43 KiB photos were 350 MB, and a
/// worker holds two windows. Measured on the photo workload as Parquet, before this bound:
/// peak RSS 572 → 957 MiB (1 worker) and 793 → 1,668 MiB (2) with the data set 4x larger.
pub const SHUFFLE_WINDOW_BYTES: usize = 64 << 20;

/// Image shape, channels first, as PyTorch lays out a `[C,H,W]` tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Shape {
    /// Pixels per channel plane.
    pub fn plane(&self) -> usize {
        self.height * self.width
    }
    /// Values per image, `C·H·W`.
    pub fn len(&self) -> usize {
        self.channels * self.plane()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `3x32x32`: channels × height × width, as error messages and tables show a shape.
impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// One split of a data set (train or test): records as one contiguous u8 buffer, `[N,C,H,W]`.
///
/// Keeping the records in one buffer is the seed's point about storage: gathering a batch is a
/// `memcpy` per image, and no per-record allocation happens while streaming.
#[derive(Debug)]
pub struct Split {
    /// Where the records came from, for error messages (a file path or a synthetic spec).
    pub origin: String,
    pub shape: Shape,
    pub pixels: Vec<u8>,
    pub labels: Vec<i64>,
    pub classes: usize,
    /// Extra CPU work per record when it is gathered, in thousands of rounds of a hash: the
    /// synthetic source's `work=K`, which makes decoding as expensive as a benchmark or test
    /// needs. 0 for real data.
    pub work: u32,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Spends this split's `work` on record `i`: a chain of dependent multiplications that the
    /// compiler cannot skip. On this machine's cores one thousand rounds take about 1 µs.
    pub fn spend_work(&self, i: usize) {
        let mut x = i as u64 | 1;
        for _ in 0..self.work as u64 * 1000 {
            x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
        }
        std::hint::black_box(x);
    }
    /// The `[C,H,W]` pixels of record `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.shape.len();
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// A piece of a split that the statistics cache keeps sums for (`crate::stats_store`): a
/// Parquet shard, an image folder's class directory, or a whole split held in memory (IDX
/// files, a synthetic spec).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The shard's or the directory's path, or the in-memory split's origin.
    pub name: String,
    /// Its records: a contiguous range of the split's numbering.
    pub rows: Range<usize>,
    /// The files its records are read from, in record order. Empty for records in memory,
    /// whose pixels and labels are their own content.
    pub files: Vec<PathBuf>,
}

/// Raw pixels through transforms: each record of `split` is rendered by the augment step.
#[derive(Debug)]
pub struct TransformedSplit {
    pub split: Arc<Split>,
    pub transforms: Transforms,
    /// Every record's shape after the transforms.
    pub shape: Shape,
}

/// A split's records: raw pixels in memory (as they are, or through transforms), or encoded
/// images read and decoded per batch.
#[derive(Clone, Debug)]
pub enum Records {
    Raw(Arc<Split>),
    Transformed(Arc<TransformedSplit>),
    Encoded(Arc<EncodedSplit>),
}

impl Records {
    /// Raw pixels, through `transforms` when there are any.
    pub fn raw(split: Arc<Split>, transforms: &Transforms) -> Result<Records> {
        if transforms.is_empty() {
            return Ok(Records::Raw(split));
        }
        let shape = transforms.output_shape(&split.origin, split.shape)?;
        Ok(Records::Transformed(Arc::new(TransformedSplit {
            split,
            transforms: transforms.clone(),
            shape,
        })))
    }

    pub fn shape(&self) -> Shape {
        match self {
            Records::Raw(s) => s.shape,
            Records::Transformed(t) => t.shape,
            Records::Encoded(s) => s.shape,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Records::Raw(s) => s.len(),
            Records::Transformed(t) => t.split.len(),
            Records::Encoded(s) => s.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn origin(&self) -> &str {
        match self {
            Records::Raw(s) => &s.origin,
            Records::Transformed(t) => &t.split.origin,
            Records::Encoded(s) => &s.origin,
        }
    }
    pub fn classes(&self) -> usize {
        match self {
            Records::Raw(s) => s.classes,
            Records::Transformed(t) => t.split.classes,
            Records::Encoded(s) => s.classes,
        }
    }
    /// Blocks that the per-epoch shuffle keeps together (row groups); one block means a
    /// full permutation.
    pub fn blocks(&self) -> Vec<usize> {
        match self {
            Records::Raw(s) => vec![s.len()],
            Records::Transformed(t) => vec![t.split.len()],
            Records::Encoded(s) => s.blocks(),
        }
    }
    /// Rows per shuffle window (see [`SHUFFLE_WINDOW`]).
    pub fn window(&self) -> usize {
        match self {
            Records::Encoded(s) => s.store.window(),
            _ => SHUFFLE_WINDOW,
        }
    }
    /// The parts the statistics cache keys sums by, in record order; together they cover
    /// every record once.
    pub fn parts(&self) -> Vec<Part> {
        let whole = |s: &Split| {
            vec![Part {
                name: s.origin.clone(),
                rows: 0..s.len(),
                files: Vec::new(),
            }]
        };
        match self {
            Records::Raw(s) => whole(s),
            Records::Transformed(t) => whole(&t.split),
            Records::Encoded(s) => s.store.parts(),
        }
    }
    /// How a record's pixels are read beyond its bytes and transforms (the columns of a
    /// Parquet store), for the statistics cache's key.
    pub fn reading(&self) -> String {
        match self {
            Records::Raw(_) | Records::Transformed(_) => "memory".into(),
            Records::Encoded(s) => s.store.reading(),
        }
    }
    /// The transforms every record goes through (none for raw records).
    pub fn transforms(&self) -> Option<&Transforms> {
        match self {
            Records::Raw(_) => None,
            Records::Transformed(t) => Some(&t.transforms),
            Records::Encoded(s) => Some(&s.transforms),
        }
    }
    /// The raw split, for callers (and tests) that need the pixels themselves; `None` where
    /// the batches are not those pixels (encoded, or transformed).
    pub fn as_raw(&self) -> Option<&Arc<Split>> {
        match self {
            Records::Raw(s) => Some(s),
            Records::Transformed(_) | Records::Encoded(_) => None,
        }
    }
    /// The records as the statistics see them: through the deterministic counterpart of
    /// their transforms (see [`transforms::Transforms::for_statistics`]).
    pub fn for_statistics(&self) -> Result<Records> {
        match self {
            Records::Raw(_) => Ok(self.clone()),
            Records::Transformed(t) => {
                Records::raw(t.split.clone(), &t.transforms.for_statistics())
            }
            Records::Encoded(s) => {
                let t = s.transforms.for_statistics();
                if t == s.transforms {
                    return Ok(self.clone());
                }
                Ok(Records::Encoded(Arc::new(s.with_transforms(t)?)))
            }
        }
    }
    pub(crate) fn check_not_empty(&self) -> Result<()> {
        if self.is_empty() {
            return Err(Error::Empty {
                source_name: self.origin().into(),
            });
        }
        Ok(())
    }
}

impl From<Split> for Records {
    fn from(s: Split) -> Self {
        Records::Raw(Arc::new(s))
    }
}

/// A data set: the training split, and the test split when the source has one.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub train: Records,
    pub test: Option<Records>,
}

impl Dataset {
    /// Puts a raw source's splits through the options' transforms (`--resize` first).
    fn with_raw_transforms(self, opts: &EncodedOptions) -> Result<Dataset> {
        let raw = |r: Records, t: &Transforms| match r {
            Records::Raw(split) => Records::raw(split, t),
            other => Ok(other),
        };
        Ok(Dataset {
            train: raw(self.train, &opts.train_transforms)?,
            test: self
                .test
                .map(|t| raw(t, &opts.test_transforms))
                .transpose()?,
            name: self.name,
        })
    }
}

/// A source as named on the command line: a path (kind detected) or `synthetic:key=value,...`.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    /// A directory with `train-images-idx3-ubyte[.gz]` and friends.
    Idx(PathBuf),
    Synthetic(synthetic::SyntheticSpec),
    /// A `.parquet` file, a directory of shards, or a glob.
    Parquet(String),
    /// `root/<class>/*.png|jpg`.
    Folder(PathBuf),
}

impl SourceSpec {
    pub fn parse(spec: &str) -> Result<Self> {
        if let Some(rest) = spec.strip_prefix("synthetic:") {
            return Ok(SourceSpec::Synthetic(synthetic::SyntheticSpec::parse(
                spec, rest,
            )?));
        }
        if spec == "synthetic" {
            return Ok(SourceSpec::Synthetic(synthetic::SyntheticSpec::default()));
        }
        if spec.contains(['*', '?', '[']) {
            return Ok(SourceSpec::Parquet(spec.into()));
        }
        let path = Path::new(spec);
        if !path.exists() {
            return Err(Error::MissingDir { path: path.into() });
        }
        if path.is_file() {
            if path.extension().is_some_and(|e| e == "parquet") {
                return Ok(SourceSpec::Parquet(spec.into()));
            }
            return Err(Error::BadSpec {
                spec: spec.into(),
                detail: "expected a directory (IDX files, Parquet shards or an image folder), a .parquet file, a glob, or 'synthetic:...'".into(),
            });
        }
        if idx::has_idx(path) {
            return Ok(SourceSpec::Idx(path.into()));
        }
        if !parquet::files_of(spec)?.is_empty() {
            return Ok(SourceSpec::Parquet(spec.into()));
        }
        if folder::looks_like(path) {
            return Ok(SourceSpec::Folder(path.into()));
        }
        Err(Error::NoData { path: path.into() })
    }

    /// Reads (or indexes) the data set and validates what can be validated up front. Encoded
    /// records are checked as they are decoded.
    pub fn open(&self) -> Result<Dataset> {
        self.open_with(&EncodedOptions::default())
    }

    pub fn open_with(&self, opts: &EncodedOptions) -> Result<Dataset> {
        match self {
            SourceSpec::Idx(dir) => {
                idx::open_dir(dir, opts.classes.unwrap_or(idx::FASHION_MNIST_CLASSES))?
                    .with_raw_transforms(opts)
            }
            SourceSpec::Synthetic(s) => match opts.classes {
                Some(k) if k != s.classes => Err(Error::Config(format!(
                    "classes {k}: {self} generates {} classes; give the count in the spec (classes={k}) instead",
                    s.classes
                ))),
                _ => s.generate().with_raw_transforms(opts),
            },
            SourceSpec::Parquet(spec) => {
                let files = parquet::files_of(spec)?;
                parquet::check_complete(&files)?;
                let (train, test) = parquet::split_by_name(files);
                if train.is_empty() {
                    return Err(Error::BadSpec {
                        spec: spec.clone(),
                        detail: "no training shards (*.parquet not named test-*)".into(),
                    });
                }
                let train = parquet::open_split(&train, opts, &opts.train_transforms, None, None)?;
                let test = if test.is_empty() {
                    None
                } else {
                    let split = parquet::open_split(
                        &test,
                        opts,
                        &opts.test_transforms,
                        Some(train.probed),
                        Some(train.classes),
                    )?;
                    Some(Records::Encoded(Arc::new(split)))
                };
                Ok(Dataset {
                    name: Path::new(spec)
                        .file_name()
                        .map_or_else(|| spec.clone(), |n| n.to_string_lossy().into_owned()),
                    train: Records::Encoded(Arc::new(train)),
                    test,
                })
            }
            SourceSpec::Folder(root) => {
                let (train_root, test_root) = (root.join("train"), root.join("test"));
                let split_dirs = train_root.is_dir() && folder::looks_like(&train_root);
                let (train, names) = folder::open_split(
                    if split_dirs { &train_root } else { root },
                    None,
                    opts,
                    &opts.train_transforms,
                )?;
                let test = if split_dirs && test_root.is_dir() {
                    let (t, _) =
                        folder::open_split(&test_root, Some(&names), opts, &opts.test_transforms)?;
                    Some(Records::Encoded(Arc::new(t)))
                } else {
                    None
                };
                Ok(Dataset {
                    name: root.file_name().map_or_else(
                        || root.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    ),
                    train: Records::Encoded(Arc::new(train)),
                    test,
                })
            }
        }
    }

    /// Opens this source's training split as a test split for `train` (`--test-data`), with
    /// the test transforms.
    pub fn open_as_test(&self, opts: &EncodedOptions) -> Result<Records> {
        let opts = EncodedOptions {
            train_transforms: opts.test_transforms.clone(),
            ..opts.clone()
        };
        Ok(self.open_with(&opts)?.train)
    }
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::Idx(p) | SourceSpec::Folder(p) => write!(f, "{}", p.display()),
            SourceSpec::Synthetic(s) => write!(f, "{s}"),
            SourceSpec::Parquet(s) => write!(f, "{s}"),
        }
    }
}
