//! Sources: where records come from (IDX files, a seeded synthetic generator), as in-memory splits.

pub mod idx;
pub mod synthetic;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

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
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// The `[C,H,W]` pixels of record `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.shape.len();
        &self.pixels[i * n..(i + 1) * n]
    }
    pub(crate) fn check_not_empty(&self) -> Result<()> {
        if self.is_empty() {
            return Err(Error::Empty {
                source_name: self.origin.clone(),
            });
        }
        Ok(())
    }
}

/// A data set: the training split, and the test split when the source has one.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub train: Arc<Split>,
    pub test: Option<Arc<Split>>,
}

/// A source as named on the command line: a path (kind detected) or `synthetic:key=value,...`.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    Idx(PathBuf),
    Synthetic(synthetic::SyntheticSpec),
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
        let path = Path::new(spec);
        if !path.exists() {
            return Err(Error::MissingDir { path: path.into() });
        }
        if !path.is_dir() {
            return Err(Error::BadSpec {
                spec: spec.into(),
                detail: "expected a directory of IDX files or 'synthetic:...'".into(),
            });
        }
        Ok(SourceSpec::Idx(path.into()))
    }

    /// Reads (or generates) the data set and validates every record.
    pub fn open(&self) -> Result<Dataset> {
        match self {
            SourceSpec::Idx(dir) => idx::open_dir(dir, idx::FASHION_MNIST_CLASSES),
            SourceSpec::Synthetic(s) => Ok(s.generate()),
        }
    }
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::Idx(p) => write!(f, "{}", p.display()),
            SourceSpec::Synthetic(s) => write!(f, "{s}"),
        }
    }
}
