//! flowload-core's integration tests: one crate, one module per concern, through the loader's
//! front door (and `flowload_core::testing` where a test needs an internal). They link no
//! libtorch.

// The crate's `unreachable_pub` lint is for its library; test helpers are `pub` so that the
// application's tests can include them too.
#![allow(unreachable_pub)]

mod augment;
mod cluster;
mod common;
mod encoded_inputs;
mod fixtures;
mod fuzz_regressions;
mod resume_and_shard;
mod same_batches;
mod stats_cache;
mod stats_oracle;
