//! Sources: where records come from. IDX files and the seeded synthetic generator give raw
//! pixels in memory; Parquet shards and image folders give encoded images, decoded per batch.
//! Every format flowload reads is one entry of [`FORMATS`]: opening a spec, the help texts and
//! the "no data found" error all read that table.

pub(crate) mod encoded;
pub(crate) mod idx;
pub(crate) mod synthetic;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::transforms::Transforms;
pub(crate) use encoded::EncodedSplit;
pub(crate) use encoded::{folder, parquet};

/// Rows shuffled together when a source is read block by block: blocks are taken in a seeded
/// order and grouped into windows of at least this many rows, and each window's rows are
/// permuted. Each worker then holds about two windows of encoded bytes, whatever the data
/// set's size. Sources of large records use fewer rows, to hold [`SHUFFLE_WINDOW_BYTES`].
pub const SHUFFLE_WINDOW: usize = 8192;

/// Encoded bytes a shuffle window holds at most: 8192 rows of 43 KiB photos were 350 MB, and a
/// worker holds two windows. Measured on the photo workload as Parquet, before this bound:
/// peak RSS 572 → 957 MiB (1 worker) and 793 → 1,668 MiB (2) with the data set 4x larger.
pub const SHUFFLE_WINDOW_BYTES: usize = 64 << 20;

/// How a data set is opened: its transforms, and what its files do not say themselves.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DatasetOptions {
    /// The training split's transforms (`train_transforms`, `--augment`; `--resize HxW` is a
    /// first `resize:HxW`).
    pub train_transforms: Transforms,
    /// The test split's (`test_transforms`, `--test-transforms`): deterministic only.
    pub test_transforms: Transforms,
    /// Parquet column with the image bytes; default `image`.
    pub image_column: Option<String>,
    /// Parquet column with the label; default `label`.
    pub label_column: Option<String>,
    /// The class count; default: the largest label + 1 (Parquet), the class folders (ImageFolder).
    pub classes: Option<usize>,
}

/// A kind of data set flowload reads, one entry of [`FORMATS`].
#[derive(Debug)]
pub struct SourceFormat {
    /// What a user calls it: `IDX files`.
    pub name: &'static str,
    /// Where in a directory it is looked for: `train-images-idx3-ubyte[.gz] and …`.
    pub looks_for: &'static str,
    /// How a spec names it, for help texts.
    pub help: &'static str,
    /// Whether a spec names this format by its text alone (`synthetic:…`, a glob), before any
    /// path is looked at.
    by_spec: fn(&str) -> bool,
    /// Whether an existing path holds a data set of this format; `None` for formats named by
    /// their spec alone.
    at_path: Option<fn(&Path) -> bool>,
    /// Opens the data set a spec names.
    open: fn(&str, &DatasetOptions) -> Result<Dataset>,
}

/// Every format, in the order a spec is tried: first by its text, then by what its path holds.
pub const FORMATS: [SourceFormat; 4] = [
    synthetic::FORMAT,
    idx::FORMAT,
    parquet::FORMAT,
    folder::FORMAT,
];

/// `IDX files (…), Parquet shards (…), and an image folder (…)`: what a directory is searched
/// for, as the "no data found" error says it.
fn looked_for() -> String {
    let found: Vec<String> = FORMATS
        .iter()
        .filter(|f| f.at_path.is_some())
        .map(|f| format!("{} ({})", f.name, f.looks_for))
        .collect();
    match found.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{}, and {last}", rest.join(", ")),
        _ => found.join(""),
    }
}

/// Every way to name a data set, for help texts: `a directory of IDX files (…), …, or
/// synthetic:…`.
pub fn formats_help() -> String {
    let all: Vec<&str> = FORMATS.iter().map(|f| f.help).collect();
    match all.split_last() {
        Some((last, rest)) => format!("{}, or {last}", rest.join(", ")),
        None => String::new(),
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
    /// Every record's shape.
    pub shape: Shape,
    /// Every record's pixels, `[N,C,H,W]`.
    pub pixels: Vec<u8>,
    /// Every record's label, `0..classes`.
    pub labels: Vec<i64>,
    /// The class count.
    pub classes: usize,
    /// Extra CPU work per record when it is gathered, in thousands of rounds of a hash: the
    /// synthetic source's `work=K`, which makes decoding as expensive as a benchmark or test
    /// needs. 0 for real data.
    pub work: u32,
}

impl Split {
    /// Records in the split.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether it has no record.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Spends this split's `work` on record `i`: a chain of dependent multiplications that the
    /// compiler cannot skip. On this machine's cores one thousand rounds take about 1 µs.
    pub(crate) fn spend_work(&self, i: usize) {
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

/// A piece of a split that the statistics cache keeps sums for (`crate::stats::store`): a
/// Parquet shard, an image folder's class directory, or a whole split held in memory (IDX
/// files, a synthetic spec).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Part {
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
pub(crate) struct TransformedSplit {
    pub split: Arc<Split>,
    pub transforms: Transforms,
    /// Every record's shape after the transforms.
    pub shape: Shape,
}

/// A split's records: raw pixels in memory (as they are, or through transforms), or encoded
/// images read and decoded per batch. Cheap to clone: the records are shared.
#[derive(Clone, Debug)]
pub struct Records(pub(crate) Kind);

/// Where a split's pixels come from.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// Raw pixels in memory, as they are.
    Raw(Arc<Split>),
    /// Raw pixels in memory, through transforms.
    Transformed(Arc<TransformedSplit>),
    /// Encoded images, read and decoded per batch.
    Encoded(Arc<EncodedSplit>),
}

impl Records {
    /// Raw pixels, through `transforms` when there are any.
    pub(crate) fn raw(split: Arc<Split>, transforms: &Transforms) -> Result<Records> {
        if transforms.is_empty() {
            return Ok(Records(Kind::Raw(split)));
        }
        let shape = transforms.output_shape(&split.origin, split.shape)?;
        Ok(Records(Kind::Transformed(Arc::new(TransformedSplit {
            split,
            transforms: transforms.clone(),
            shape,
        }))))
    }

    /// Every record's shape, after its transforms.
    pub fn shape(&self) -> Shape {
        match &self.0 {
            Kind::Raw(s) => s.shape,
            Kind::Transformed(t) => t.shape,
            Kind::Encoded(s) => s.shape,
        }
    }
    /// Records in the split.
    pub fn len(&self) -> usize {
        match &self.0 {
            Kind::Raw(s) => s.len(),
            Kind::Transformed(t) => t.split.len(),
            Kind::Encoded(s) => s.len(),
        }
    }
    /// Whether it has no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Where the records come from, as errors name them: a path or a synthetic spec.
    pub fn origin(&self) -> &str {
        match &self.0 {
            Kind::Raw(s) => &s.origin,
            Kind::Transformed(t) => &t.split.origin,
            Kind::Encoded(s) => &s.origin,
        }
    }
    /// The class count: labels are `0..classes`.
    pub fn classes(&self) -> usize {
        match &self.0 {
            Kind::Raw(s) => s.classes,
            Kind::Transformed(t) => t.split.classes,
            Kind::Encoded(s) => s.classes,
        }
    }
    /// Blocks that the per-epoch shuffle keeps together (row groups); one block means a
    /// full permutation.
    pub(crate) fn blocks(&self) -> Vec<usize> {
        match &self.0 {
            Kind::Raw(s) => vec![s.len()],
            Kind::Transformed(t) => vec![t.split.len()],
            Kind::Encoded(s) => s.blocks(),
        }
    }
    /// Rows per shuffle window (see [`SHUFFLE_WINDOW`]).
    pub(crate) fn window(&self) -> usize {
        match &self.0 {
            Kind::Encoded(s) => s.store.window(),
            _ => SHUFFLE_WINDOW,
        }
    }
    /// The parts the statistics cache keys sums by, in record order; together they cover
    /// every record once.
    pub(crate) fn parts(&self) -> Vec<Part> {
        let whole = |s: &Split| {
            vec![Part {
                name: s.origin.clone(),
                rows: 0..s.len(),
                files: Vec::new(),
            }]
        };
        match &self.0 {
            Kind::Raw(s) => whole(s),
            Kind::Transformed(t) => whole(&t.split),
            Kind::Encoded(s) => s.store.parts(),
        }
    }
    /// How a record's pixels are read beyond its bytes and transforms (the columns of a
    /// Parquet store), for the statistics cache's key.
    pub(crate) fn reading(&self) -> String {
        match &self.0 {
            Kind::Raw(_) | Kind::Transformed(_) => "memory".into(),
            Kind::Encoded(s) => s.store.reading(),
        }
    }
    /// The transforms every record goes through (none for raw records).
    pub(crate) fn transforms(&self) -> Option<&Transforms> {
        match &self.0 {
            Kind::Raw(_) => None,
            Kind::Transformed(t) => Some(&t.transforms),
            Kind::Encoded(s) => Some(&s.transforms),
        }
    }
    /// The raw split, for callers (and tests) that need the pixels themselves; `None` where
    /// the batches are not those pixels (encoded, or transformed).
    pub fn as_raw(&self) -> Option<&Arc<Split>> {
        match &self.0 {
            Kind::Raw(s) => Some(s),
            Kind::Transformed(_) | Kind::Encoded(_) => None,
        }
    }
    /// The records as the statistics see them: through the deterministic counterpart of
    /// their transforms (see [`transforms::Transforms::for_statistics`]).
    pub(crate) fn for_statistics(&self) -> Result<Records> {
        match &self.0 {
            Kind::Raw(_) => Ok(self.clone()),
            Kind::Transformed(t) => Records::raw(t.split.clone(), &t.transforms.for_statistics()),
            Kind::Encoded(s) => {
                let t = s.transforms.for_statistics();
                if t == s.transforms {
                    return Ok(self.clone());
                }
                Ok(Records(Kind::Encoded(Arc::new(s.with_transforms(t)?))))
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
        Records(Kind::Raw(Arc::new(s)))
    }
}

/// A data set: the training split, and the test split when the source has one.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Its name: the directory's or the file's, or the synthetic spec.
    pub name: String,
    /// The training split.
    pub train: Records,
    /// The test split, when the source has one (`t10k-*`, `test-*` shards, `test/`).
    pub test: Option<Records>,
}

impl Dataset {
    /// Puts a raw source's splits through the options' transforms (`--resize` first).
    pub(crate) fn with_raw_transforms(self, opts: &DatasetOptions) -> Result<Dataset> {
        let raw = |r: Records, t: &Transforms| match &r.0 {
            Kind::Raw(split) => Records::raw(split.clone(), t),
            _ => Ok(r.clone()),
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

/// A source as named on the command line or in a pipeline: its spec and its format.
#[derive(Clone, Debug)]
pub(crate) struct SourceSpec {
    spec: String,
    format: &'static SourceFormat,
}

impl SourceSpec {
    /// Which format `spec` names: by its text (`synthetic:…`, a glob), else by what its path
    /// holds, in [`FORMATS`] order.
    pub(crate) fn parse(spec: &str) -> Result<Self> {
        let named = |format: &'static SourceFormat| SourceSpec {
            spec: spec.into(),
            format,
        };
        if let Some(f) = FORMATS.iter().find(|f| (f.by_spec)(spec)) {
            return Ok(named(f));
        }
        let path = Path::new(spec);
        if !path.exists() {
            return Err(Error::MissingDir { path: path.into() });
        }
        if let Some(f) = FORMATS
            .iter()
            .find(|f| f.at_path.is_some_and(|holds| holds(path)))
        {
            return Ok(named(f));
        }
        if path.is_file() {
            return Err(Error::BadSpec {
                spec: spec.into(),
                detail: format!("expected {}", formats_help()),
            });
        }
        Err(Error::NoData {
            path: path.into(),
            looked_for: looked_for(),
        })
    }

    /// The format's name, as [`FORMATS`] lists it.
    pub(crate) fn format_name(&self) -> &'static str {
        self.format.name
    }

    /// Reads (or indexes) the data set and validates what can be validated up front. Encoded
    /// records are checked as they are decoded.
    pub(crate) fn open(&self, opts: &DatasetOptions) -> Result<Dataset> {
        (self.format.open)(&self.spec, opts)
    }
}

impl Dataset {
    /// Opens the data set `spec` names: a directory of IDX files, Parquet shards (a file, a
    /// directory or a glob), an image folder, or `synthetic:…` (see [`FORMATS`]), with `opts`'
    /// transforms. What can be checked up front is (headers, shapes, counts); encoded records
    /// are checked as they are decoded.
    pub fn open(spec: &str, opts: &DatasetOptions) -> Result<Dataset> {
        SourceSpec::parse(spec)?.open(opts)
    }

    /// Opens `spec`'s training split as a test split (`--test-data`), with `opts`' test
    /// transforms.
    pub fn open_test(spec: &str, opts: &DatasetOptions) -> Result<Records> {
        let opts = DatasetOptions {
            train_transforms: opts.test_transforms.clone(),
            ..opts.clone()
        };
        Ok(Dataset::open(spec, &opts)?.train)
    }
}
