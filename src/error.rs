//! The library's error type: every failure names the file (or source) and the record.

use std::path::PathBuf;

/// Errors from loading, validating and streaming data. Bad input is reported here, never by panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no such directory")]
    MissingDir { path: PathBuf },
    #[error("{path}: no IDX data found (expected {expected})")]
    NoIdxFiles { path: PathBuf, expected: String },
    #[error("{path}: bad magic number {found:#010x}, expected {expected:#010x} ({what})")]
    BadMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
        what: &'static str,
    },
    #[error(
        "{path}: truncated: header says {records} records of {record_bytes} bytes, file holds {got_bytes} bytes after the header; record {first_incomplete} is the first incomplete one"
    )]
    Truncated {
        path: PathBuf,
        records: usize,
        record_bytes: usize,
        got_bytes: usize,
        first_incomplete: usize,
    },
    #[error("{path}: {detail}")]
    BadHeader { path: PathBuf, detail: String },
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch {
        images: PathBuf,
        n_images: usize,
        labels: PathBuf,
        n_labels: usize,
    },
    #[error("{path}: record {record}: label {label} is outside 0..{classes}")]
    LabelOutOfRange {
        path: PathBuf,
        record: usize,
        label: i64,
        classes: usize,
    },
    #[error("{file}: row {row}: {reason}")]
    BadRecord {
        file: String,
        row: u64,
        reason: String,
    },
    #[error("{source_name}: the data set is empty")]
    Empty { source_name: String },
    #[error(
        "{source_name}: channel {channel} has zero variance (every pixel is {value}); normalization would divide by zero"
    )]
    ZeroVariance {
        source_name: String,
        channel: usize,
        value: f64,
    },
    #[error("invalid source spec '{spec}': {detail}")]
    BadSpec { spec: String, detail: String },
    #[error("{path}: invalid statistics file: {detail}")]
    BadStats { path: PathBuf, detail: String },
    #[error("{0}")]
    Other(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("dataflow: {0}")]
    Dataflow(String),
    #[error("{0}")]
    Device(String),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{path}: parquet: {detail}")]
    Parquet { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Report { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Hostfile { path: PathBuf, detail: String },
    #[error("cluster: {0}")]
    Cluster(String),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
