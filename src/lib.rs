//! flowload: training data as a streaming dataflow.
//!
//! The flow, in module order: a [`source`] (IDX, synthetic, Parquet shards, an image folder)
//! → [`ops`] (`plan → decode → stats → normalize → batch → queue`, one timely operator per
//! file) → a [`loader`] (inline, worker threads, or across a [`cluster`]) → a [`sink`]
//! (training the seed's [`model`], or null) → [`results`] (Parquet per run, `summary.json`).
//! A [`sweep`] runs a [`config`] grid of such runs, and [`report`] turns results into charts
//! and a page. The `flowload` binary's command line is not part of this library.

pub mod cluster;
pub mod config;
pub mod error;
pub mod loader;
pub mod model;
pub mod ops;
pub mod report;
pub mod results;
pub mod sink;
pub mod source;
pub mod stats_store;
pub mod sweep;

pub use config::{RunParams, SweepConfig};
pub use error::{BadRecord, ClusterError, Error, RecordId, Result};
pub use loader::{BatchStream, Loader, LoaderConfig};
pub use ops::stats::Stats;
pub use source::{Dataset, Records, Shape, SourceSpec};
