//! The application's errors: the loader's ([`flowload_core::Error`]), and what training,
//! models, devices, results directories and reports add. Typed to the binary's edge, where
//! `anyhow` takes over.

use std::path::PathBuf;

/// Errors of a sweep: the loader's, and the application's own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The loader failed: bad data, a bad setting, the dataflow or the cluster.
    #[error(transparent)]
    Core(#[from] flowload_core::Error),
    /// A `--model` file that cannot be trained: missing, not TorchScript, or not fitting the
    /// data (the detail names the input shape given and the output shape got).
    #[error("model {}: {detail}", path.display())]
    Model {
        /// The model file as the grid names it.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A `--device` that is not there or not understood.
    #[error("{0}")]
    Device(String),
    /// libtorch refused an operation.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// Another process is writing this results directory; `holder` is its pid as it wrote it.
    #[error(
        "{}: is being written by another flowload (pid {holder}); wait for it, or give another --out",
        path.display()
    )]
    Locked {
        /// The results directory.
        path: PathBuf,
        /// The pid the lock file holds.
        holder: String,
    },
    /// A new sweep's results directory already holds results.
    #[error(
        "{}: already holds results ({found}); give --resume to complete that sweep, --overwrite to replace it, or another --out",
        path.display()
    )]
    ResultsExist {
        /// The results directory.
        path: PathBuf,
        /// The first few files it holds.
        found: String,
    },
    /// A results file the report cannot use.
    #[error("{}: {detail}", path.display())]
    Report {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
}

/// The application's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A setting no run could use, naming the setting: the loader's [`Error::Config`][c].
    ///
    /// [c]: flowload_core::Error::Config
    pub fn config(message: impl Into<String>) -> Self {
        Error::Core(flowload_core::Error::Config(message.into()))
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Core(flowload_core::Error::io(path, source))
    }

    /// A Parquet error on `path`.
    pub fn parquet(path: impl Into<PathBuf>, source: parquet::errors::ParquetError) -> Self {
        Error::Core(flowload_core::Error::parquet(path, source))
    }
}

impl From<flowload_core::ClusterError> for Error {
    fn from(e: flowload_core::ClusterError) -> Error {
        Error::Core(e.into())
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Error {
        Error::Core(e.into())
    }
}
