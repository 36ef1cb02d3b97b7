//! The loader's errors: every failure names the file (or source), the record, the setting or
//! the process. Errors stay typed through the dataflow; the ones that cross processes
//! ([`BadRecord`], [`ClusterError`], and a batch's `Failed`) are `Clone + Serialize`. What to
//! do with a bad record, [`OnBadRecord`], is here too, beside the record's error.

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
    /// Where the record lives.
    pub record: RecordId,
    /// What is wrong with it, for a person: "not a PNG or JPEG image", "null label", …
    pub reason: String,
}

/// What to do with a record that cannot be decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadRecord {
    /// Stop with an error naming the shard or file and the row.
    #[default]
    Fail,
    /// Leave the record out, count it, and list it in `skipped.parquet`.
    Skip,
}

impl OnBadRecord {
    /// The policies by name, as flags and pipelines spell them.
    pub const NAMES: [&'static str; 2] = ["fail", "skip"];

    /// `fail` or `skip`.
    pub fn name(self) -> &'static str {
        match self {
            OnBadRecord::Fail => "fail",
            OnBadRecord::Skip => "skip",
        }
    }
}

impl std::str::FromStr for OnBadRecord {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "fail" => Ok(OnBadRecord::Fail),
            "skip" => Ok(OnBadRecord::Skip),
            other => Err(format!(
                "'{other}' is not a bad-record policy: give {}",
                OnBadRecord::NAMES.join(" or ")
            )),
        }
    }
}

/// A process of a cluster, as errors name it: `process 1 (10.0.0.2:2101)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Its index, `--process-id`.
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
    /// went away.
    #[error("lost {process}: {detail} (the process stopped, or its host or the network went away)")]
    Lost {
        /// The process whose connection broke.
        process: Peer,
        /// What the socket said.
        detail: String,
    },
    /// A process owed the trainer a batch and sent nothing for the stall timeout: it is
    /// stopped (`kill -STOP`) or hung.
    #[error(
        "no batch for {seconds} s: epoch {epoch} batch {batch} is {process}'s to build, and it sent nothing (is it stopped or hung?)"
    )]
    Stalled {
        /// The process that owes the batch.
        process: Peer,
        /// The stall timeout.
        seconds: f64,
        /// The batch's epoch (0-based).
        epoch: u32,
        /// The batch's index in its epoch.
        batch: usize,
    },
    /// A process turned a connection down: another configuration, version, process count or
    /// session, or a stranger on the port.
    #[error("{by} refused {whom}: {reason}")]
    Refused {
        /// The process that refused.
        by: Peer,
        /// The process (or the address) that was refused.
        whom: String,
        /// Why, as the refusing process said it.
        reason: String,
    },
    /// Processes that did not connect within `--connect-timeout`.
    #[error(
        "{} did not connect to {me} within {seconds} s: is it running, with the same hostfile and command?",
        names(missing)
    )]
    ConnectTimeout {
        /// The processes that never connected.
        missing: Vec<Peer>,
        /// This process.
        me: Peer,
        /// The connect timeout.
        seconds: f64,
    },
    /// This process could not reach another one in time, or at all.
    #[error(
        "cannot connect to {process} within {seconds} s (last error: {last}): is it running, with the same hostfile?"
    )]
    Unreachable {
        /// The process that could not be reached.
        process: Peer,
        /// The connect timeout.
        seconds: f64,
        /// The last connection error.
        last: String,
    },
    /// A process that was there for an earlier session is gone.
    #[error("{process} {detail}")]
    Gone {
        /// The process that is gone.
        process: Peer,
        /// What happened, as a sentence's predicate.
        detail: String,
    },
    /// The network could not be set up here: listening, resolving, accepting, threads.
    #[error("{process}: {detail}")]
    Network {
        /// This process.
        process: Peer,
        /// What failed.
        detail: String,
    },
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
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A data source names a path that does not exist.
    #[error("{}: no such directory", path.display())]
    MissingDir {
        /// The path as given.
        path: PathBuf,
    },
    /// A directory holds no data set of any kind flowload reads.
    #[error("{}: no data found: looked for {looked_for}", path.display())]
    NoData {
        /// The directory.
        path: PathBuf,
        /// Every format flowload reads, and where it looks for each.
        looked_for: String,
    },
    /// A directory holds no IDX files under the expected names.
    #[error("{}: no IDX data found (expected {expected})", path.display())]
    NoIdxFiles {
        /// The directory.
        path: PathBuf,
        /// The file names looked for.
        expected: String,
    },
    /// An IDX file's magic number is not the one its name promises.
    #[error("{}: bad magic number {found:#010x}, expected {expected:#010x} ({what})", path.display())]
    BadMagic {
        /// The IDX file.
        path: PathBuf,
        /// The magic number in the file.
        found: u32,
        /// The magic number its kind has.
        expected: u32,
        /// The kind: images or labels.
        what: &'static str,
    },
    /// An IDX file is shorter than its header says.
    #[error(
        "{}: truncated: header says {records} records of {record_bytes} bytes, file holds {got_bytes} bytes after the header; record {first_incomplete} is the first incomplete one",
        path.display()
    )]
    Truncated {
        /// The IDX file.
        path: PathBuf,
        /// Records the header announces.
        records: usize,
        /// Bytes per record.
        record_bytes: usize,
        /// Bytes after the header.
        got_bytes: usize,
        /// The first record the file does not hold whole.
        first_incomplete: usize,
    },
    /// An IDX header (or an image folder's first image) is not what a data set needs.
    #[error("{}: {detail}", path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// An IDX images file and its labels file disagree on the record count.
    #[error("{} holds {n_images} images but {} holds {n_labels} labels", images.display(), labels.display())]
    CountMismatch {
        /// The images file.
        images: PathBuf,
        /// Images it holds.
        n_images: usize,
        /// The labels file.
        labels: PathBuf,
        /// Labels it holds.
        n_labels: usize,
    },
    /// An IDX label is not a valid class.
    #[error("{}: record {record}: label {label} is outside 0..{classes}", path.display())]
    LabelOutOfRange {
        /// The labels file.
        path: PathBuf,
        /// The record (0-based).
        record: usize,
        /// Its label.
        label: i64,
        /// The class count.
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
        /// The record with the largest label.
        record: RecordId,
        /// The largest label.
        label: i64,
        /// A class below it that never occurs.
        missing: i64,
    },
    /// A numbered set of Parquet shards (`-of-N`) lacks one.
    #[error("{}: missing: the set has {count} shards, this one is not there", path.display())]
    MissingShard {
        /// The shard that is not there.
        path: PathBuf,
        /// Shards the set has.
        count: usize,
    },
    /// A split has no records (or every record was skipped).
    #[error("{source_name}: the data set is empty")]
    Empty {
        /// The data set as its records name it.
        source_name: String,
    },
    /// A channel's statistics have zero variance: normalizing would divide by zero.
    #[error(
        "{source_name}: channel {channel} has zero variance (every pixel is {value}); normalization would divide by zero"
    )]
    ZeroVariance {
        /// The data set as its records name it.
        source_name: String,
        /// The channel (0-based).
        channel: usize,
        /// The value of every pixel of that channel, 0..255.
        value: f64,
    },
    /// A data source as written on the command line or in a pipeline cannot be used.
    #[error("invalid source spec '{spec}': {detail}")]
    BadSpec {
        /// The spec as written.
        spec: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A `--stats` file cannot be used.
    #[error("{}: invalid statistics file: {detail}", path.display())]
    BadStats {
        /// The statistics file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A setting no run could use; the message names the setting.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The dataflow itself failed: a worker panicked or stopped early.
    #[error("dataflow: {0}")]
    Dataflow(String),
    /// The Parquet library failed on a file (reading its footer, writing it).
    #[error("{}: parquet: {source}", path.display())]
    Parquet {
        /// The Parquet file.
        path: PathBuf,
        /// What the Parquet library said.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Reading rows of a Parquet file failed; `what` says which (`row group 3`).
    #[error("{}: parquet: {what}: {source}", path.display())]
    ParquetRead {
        /// The Parquet file.
        path: PathBuf,
        /// What was being read.
        what: String,
        /// What Arrow said.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A Parquet file does not have the layout flowload needs (columns, types, row counts).
    #[error("{}: parquet: {detail}", path.display())]
    ParquetLayout {
        /// The Parquet file.
        path: PathBuf,
        /// What it lacks.
        detail: String,
    },
    /// A hostfile line that is not `host:port`, or too few lines.
    #[error("{}: {detail}", path.display())]
    Hostfile {
        /// The hostfile.
        path: PathBuf,
        /// The line and what is wrong with it.
        detail: String,
    },
    /// A batch built on another process of the cluster failed there for a reason other than a
    /// bad record (which arrives as [`Error::BadRecord`]); `message` names the file.
    #[error("{message} (reported by global worker {worker})")]
    Remote {
        /// The global index of the worker it failed on.
        worker: usize,
        /// The error's message there.
        message: String,
    },
    /// A cluster failure, naming the process.
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// Arrow refused to build or convert an array.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// The loader's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A Parquet error on `path`.
    pub fn parquet(path: impl Into<PathBuf>, source: parquet::errors::ParquetError) -> Self {
        Error::Parquet {
            path: path.into(),
            source,
        }
    }
}

/// Why a batch could not be built, as it crosses to the trainer's process (or leaves a
/// statistics worker).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Failed {
    /// A record that cannot be decoded (`--on-bad-record fail`): the same typed error as in one
    /// process.
    BadRecord(BadRecord),
    /// Any other failure where the batch was built (a shard that cannot be read): its message,
    /// which names the file, and the global index of the worker it happened on. Its cause stays
    /// on that worker.
    Other { worker: usize, message: String },
}

impl Failed {
    /// `e`, as it leaves global worker `worker`.
    pub(crate) fn new(e: Error, worker: usize) -> Failed {
        match e {
            Error::BadRecord(b) => Failed::BadRecord(b),
            other => Failed::Other {
                worker,
                message: other.to_string(),
            },
        }
    }
}

impl From<Failed> for Error {
    fn from(f: Failed) -> Error {
        match f {
            Failed::BadRecord(b) => Error::BadRecord(b),
            Failed::Other { worker, message } => Error::Remote { worker, message },
        }
    }
}
