//! flowload: training data as a streaming dataflow.
//!
//! The flow, in module order: [`source`] (IDX, synthetic) → [`ops`] (`plan → decode → stats →
//! normalize → batch → queue`, one timely operator per file) → wired in [`pipeline`] → consumed
//! by a [`sink`]; [`sweep`] runs a [`config`] grid of such runs.

pub mod error;
pub mod source;
pub mod ops;
pub mod pipeline;
pub mod sink;
pub mod config;
pub mod sweep;
pub mod cli;

pub use error::{Error, Result};
