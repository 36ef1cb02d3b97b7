//! flowload: training data as a streaming dataflow.
//!
//! The flow, in module order: [`source`] (IDX, synthetic) → [`ops`] (`plan → decode → stats →
//! normalize → batch → queue`, one timely operator per file) → wired in [`pipeline`] → consumed
//! by a [`sink`] (training the seed's [`model`], or null; metrics to Parquet); [`sweep`] runs a [`config`] grid of such runs, and
//! [`report`] turns results into charts and a page. [`cluster`] spreads the decode workers over
//! several processes, with the trainer on process 0.

pub mod cli;
pub mod cluster;
pub mod config;
pub mod error;
pub mod model;
pub mod ops;
pub mod pipeline;
pub mod report;
pub mod sink;
pub mod source;
pub mod sweep;

pub use error::{Error, Result};
