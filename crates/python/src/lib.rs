//! flowload's Python extension, `flowload._flowload`: the loader of flowload-core behind a thin
//! pyo3 layer. `flowload/__init__.py` is the Python face; this crate links no libtorch (torch
//! takes the batches through DLPack).

mod batch;
mod dlpack;
mod errors;
mod loader;
mod results;

use pyo3::prelude::*;

#[pymodule]
mod _flowload {
    #[pymodule_export]
    use crate::batch::{PyArray, PyBatch};
    #[pymodule_export]
    use crate::loader::PyLoader;

    use pyo3::prelude::*;

    /// The data formats flowload reads, and where it looks for each.
    #[pyfunction]
    fn formats_help() -> String {
        flowload_core::formats_help()
    }

    /// The transforms flowload applies, with their arguments.
    #[pyfunction]
    fn transforms_help() -> String {
        flowload_core::transforms_help(None)
    }
}
