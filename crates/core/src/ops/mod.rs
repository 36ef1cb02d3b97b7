//! The dataflow's operators, one per file, in flow order: plan → decode (rendering each record
//! through `codec`) → stats → normalize → batch → queue (in one process), or plan → decode →
//! wire → deliver to process 0 (in a cluster); `tickets` is `--workers auto`'s plan source.
//!
//! Each operator is an extension trait on a timely stream over a plain function that does the
//! work; `--workers 0` calls the same functions inline, so both paths give the same bytes.

pub(crate) mod batch;
pub(crate) mod decode;
pub(crate) mod normalize;
pub(crate) mod plan;
pub(crate) mod queue;
pub(crate) mod stats;
pub(crate) mod tickets;
pub(crate) mod wire;
