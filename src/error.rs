//! The library's error type: every failure names the file (or source), the record, the setting
//! or the process. Errors stay typed through the dataflow; the ones that cross processes
//! ([`BadRecord`], [`ClusterError`]) are `Clone + Serialize`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a record lives: the one way flowload names a record, in errors and `skipped.parquet`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordId {
    /// The Parquet shard or the image file.
    pub file: String,
    /// The record's row within `file`: its row in the Parquet shard (0-based), or 0 for an image
    /// file, which holds one record.
    pub row: u64,
}

impl std::fmt::Display for RecordId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: row {}", self.file, self.row)
    }
}

/// A record that cannot be used, and why: the error under `--on-bad-record fail`, an entry of
/// the skip list under `skip`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{record}: {reason}")]
pub struct BadRecord {
    pub record: RecordId,
    /// What is wrong with it, for a person: "not a PNG or JPEG image", "null label", …
    pub reason: String,
}

/// A process of a cluster, as errors name it: `process 1 (10.0.0.2:2101)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub index: usize,
    /// Its `host:port` from the hostfile.
    pub address: String,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} ({})", self.index, self.address)
    }
}

/// What went wrong between the processes of a cluster, naming the process concerned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A process's connection broke during a session: it stopped, or its host or the network
    /// went away. `detail` is what the socket said.
    #[error("lost {process}: {detail} (the process stopped, or its host or the network went away)")]
    Lost { process: Peer, detail: String },
    /// A process owed the trainer a batch and sent nothing for the stall timeout: it is
    /// stopped (`kill -STOP`) or hung.
    #[error(
        "no batch for {seconds} s: epoch {epoch} batch {batch} is {process}'s to build, and it sent nothing (is it stopped or hung?)"
    )]
    Stalled {
        process: Peer,
        seconds: f64,
        epoch: u32,
        batch: usize,
    },
    /// A process turned a connection down: another configuration, version, process count or
    /// session, or a stranger on the port.
    #[error("{by} refused {whom}: {reason}")]
    Refused {
        by: Peer,
        /// The process (or the address) that was refused.
        whom: String,
        reason: String,
    },
    /// Processes that did not connect within `--connect-timeout`.
    #[error(
        "{} did not connect to {me} within {seconds} s: is it running, with the same hostfile and command?",
        names(missing)
    )]
    ConnectTimeout {
        missing: Vec<Peer>,
        me: Peer,
        seconds: f64,
    },
    /// This process could not reach another one in time, or at all.
    #[error(
        "cannot connect to {process} within {seconds} s (last error: {last}): is it running, with the same hostfile?"
    )]
    Unreachable {
        process: Peer,
        seconds: f64,
        last: String,
    },
    /// A process that was there for an earlier session is gone.
    #[error("{process} {detail}")]
    Gone { process: Peer, detail: String },
    /// The network could not be set up here: listening, resolving, accepting, threads.
    #[error("{process}: {detail}")]
    Network { process: Peer, detail: String },
    /// Process 0 announced what this process cannot follow (a run the grid lacks, epochs before
    /// their statistics).
    #[error("{0}")]
    Protocol(String),
}

fn names(peers: &[Peer]) -> String {
    peers
        .iter()
        .map(Peer::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Errors from loading, validating and streaming data. Bad input is reported here, never by panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A data source names a path that does not exist.
    #[error("{}: no such directory", path.display())]
    MissingDir { path: PathBuf },
    /// A directory holds no data set of any kind flowload reads.
    #[error(
        "{}: no data found: looked for IDX files (train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]), Parquet shards (*.parquet, or data/*.parquet), and an image folder (<class>/*.png|jpg|jpeg, or train/<class>/...)",
        path.display()
    )]
    NoData { path: PathBuf },
    /// A directory holds no IDX files under the expected names.
    #[error("{}: no IDX data found (expected {expected})", path.display())]
    NoIdxFiles { path: PathBuf, expected: String },
    /// An IDX file's magic number is not the one its name promises.
    #[error("{}: bad magic number {found:#010x}, expected {expected:#010x} ({what})", path.display())]
    BadMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
        what: &'static str,
    },
    /// An IDX file is shorter than its header says.
    #[error(
        "{}: truncated: header says {records} records of {record_bytes} bytes, file holds {got_bytes} bytes after the header; record {first_incomplete} is the first incomplete one",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        records: usize,
        record_bytes: usize,
        got_bytes: usize,
        first_incomplete: usize,
    },
    /// An IDX header (or an image folder's first image) is not what a data set needs.
    #[error("{}: {detail}", path.display())]
    BadHeader { path: PathBuf, detail: String },
    /// An IDX images file and its labels file disagree on the record count.
    #[error("{} holds {n_images} images but {} holds {n_labels} labels", images.display(), labels.display())]
    CountMismatch {
        images: PathBuf,
        n_images: usize,
        labels: PathBuf,
        n_labels: usize,
    },
    /// An IDX label is not a valid class.
    #[error("{}: record {record}: label {label} is outside 0..{classes}", path.display())]
    LabelOutOfRange {
        path: PathBuf,
        record: usize,
        label: i64,
        classes: usize,
    },
    /// An encoded record could not be decoded (`--on-bad-record fail`).
    #[error(transparent)]
    BadRecord(#[from] BadRecord),
    /// The class count of Parquet labels is unclear: the largest label is at `record`, and
    /// class `missing` below it never occurs.
    #[error(
        "{record} holds label {label}, the largest, but class {missing} never occurs: is the label corrupt? Give the class count with --classes K (labels outside 0..K are then bad records)"
    )]
    ClassCount {
        record: RecordId,
        label: i64,
        missing: i64,
    },
    /// A numbered set of Parquet shards (`-of-N`) lacks one.
    #[error("{}: missing: the set has {count} shards, this one is not there", path.display())]
    MissingShard { path: PathBuf, count: usize },
    /// A split has no records (or every record was skipped).
    #[error("{source_name}: the data set is empty")]
    Empty { source_name: String },
    /// A channel's statistics have zero variance: normalizing would divide by zero.
    #[error(
        "{source_name}: channel {channel} has zero variance (every pixel is {value}); normalization would divide by zero"
    )]
    ZeroVariance {
        source_name: String,
        channel: usize,
        value: f64,
    },
    /// A data source as written on the command line or in a pipeline cannot be used.
    #[error("invalid source spec '{spec}': {detail}")]
    BadSpec { spec: String, detail: String },
    /// A `--stats` file cannot be used.
    #[error("{}: invalid statistics file: {detail}", path.display())]
    BadStats { path: PathBuf, detail: String },
    /// A setting no run could use; the message names the setting.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The dataflow itself failed: a worker panicked or stopped early.
    #[error("dataflow: {0}")]
    Dataflow(String),
    /// A `--model` file that cannot be trained: missing, not TorchScript, or not fitting the
    /// data (the detail names the input shape given and the output shape got).
    #[error("model {}: {detail}", path.display())]
    Model { path: PathBuf, detail: String },
    /// A `--device` that is not there or not understood.
    #[error("{0}")]
    Device(String),
    /// libtorch refused an operation.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// The Parquet library failed on a file (reading its footer, writing it).
    #[error("{}: parquet: {source}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Reading rows of a Parquet file failed; `what` says which (`row group 3`).
    #[error("{}: parquet: {what}: {source}", path.display())]
    ParquetRead {
        path: PathBuf,
        what: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A Parquet file does not have the layout flowload needs (columns, types, row counts).
    #[error("{}: parquet: {detail}", path.display())]
    ParquetLayout { path: PathBuf, detail: String },
    /// Another process is writing this results directory; `holder` is its pid as it wrote it.
    #[error(
        "{}: is being written by another flowload (pid {holder}); wait for it, or give another --out",
        path.display()
    )]
    Locked { path: PathBuf, holder: String },
    /// A new sweep's results directory already holds results.
    #[error(
        "{}: already holds results ({found}); give --resume to complete that sweep, --overwrite to replace it, or another --out",
        path.display()
    )]
    ResultsExist { path: PathBuf, found: String },
    /// A results file the report cannot use.
    #[error("{}: {detail}", path.display())]
    Report { path: PathBuf, detail: String },
    /// A hostfile line that is not `host:port`, or too few lines.
    #[error("{}: {detail}", path.display())]
    Hostfile { path: PathBuf, detail: String },
    /// A batch built on another process of the cluster failed there for a reason other than a
    /// bad record (which arrives as [`Error::BadRecord`]); `message` names the file.
    #[error("{message} (reported by global worker {worker})")]
    Remote { worker: usize, message: String },
    /// A cluster failure, naming the process.
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// Arrow refused to build or convert an array.
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

    pub(crate) fn parquet(path: impl Into<PathBuf>, source: parquet::errors::ParquetError) -> Self {
        Error::Parquet {
            path: path.into(),
            source,
        }
    }
}
