//! The dataflow's operators, one per file, in flow order: plan → decode (+ augment) → stats →
//! normalize → batch → queue (in one process), or plan → decode (+ augment) → wire → deliver to
//! process 0 (in a cluster).
//!
//! Each operator is an extension trait on a timely stream over a plain function that does the
//! work; `--workers 0` calls the same functions inline, so both paths give the same bytes.

pub mod augment;
pub mod batch;
pub mod decode;
pub mod normalize;
pub mod plan;
pub mod queue;
pub mod stats;
pub mod tickets;
pub mod wire;
