//! flowload, the application: a sweep's configuration ([`config`]) → its runs ([`sweep`]) →
//! a sink per run ([`sink`]: training a [`model`] with libtorch, or null) → [`results`]
//! (Parquet per run, `summary.json`) → [`report`] (charts and a page). The loader itself —
//! sources, operators, loaders, statistics, cluster — is the `flowload-core` crate; the
//! `flowload` binary's command line is not part of this library.

pub mod config;
pub mod error;
pub mod model;
pub mod report;
pub mod results;
pub mod sink;
pub mod sweep;

pub use config::{RunParams, SweepConfig};
pub use error::{Error, Result};
