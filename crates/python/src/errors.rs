//! flowload-core's errors as Python exceptions: each variant raises the `flowload.Error`
//! subclass a Python user would catch for it, with the message the binary prints.

use flowload_core::Error;
use pyo3::PyErr;

pyo3::import_exception!(flowload._errors, ConfigError);
pyo3::import_exception!(flowload._errors, DataError);
pyo3::import_exception!(flowload._errors, DataNotFoundError);
pyo3::import_exception!(flowload._errors, LoaderError);

/// The exception for `e`: settings are `ConfigError` (a `ValueError`), bad data `DataError`
/// (a `ValueError`), data that cannot be found or read `DataNotFoundError` (an `OSError`), and
/// a loader that stopped `LoaderError` (a `RuntimeError`).
pub(crate) fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::Config(_)
        | Error::BadSpec { .. }
        | Error::BadStats { .. }
        | Error::ClassCount { .. }
        | Error::Empty { .. }
        | Error::ZeroVariance { .. }
        | Error::Hostfile { .. } => ConfigError::new_err(message),
        Error::Io { .. }
        | Error::MissingDir { .. }
        | Error::NoData { .. }
        | Error::NoIdxFiles { .. }
        | Error::MissingShard { .. } => DataNotFoundError::new_err(message),
        Error::BadRecord(_)
        | Error::BadMagic { .. }
        | Error::Truncated { .. }
        | Error::BadHeader { .. }
        | Error::CountMismatch { .. }
        | Error::LabelOutOfRange { .. }
        | Error::Parquet { .. }
        | Error::ParquetRead { .. }
        | Error::ParquetLayout { .. }
        | Error::Arrow(_) => DataError::new_err(message),
        _ => LoaderError::new_err(message),
    }
}

/// A setting the Python layer refuses itself.
pub(crate) fn config(message: impl Into<String>) -> PyErr {
    ConfigError::new_err(message.into())
}
