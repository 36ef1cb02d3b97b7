//! The application's integration tests: one crate, one module per concern, so that libtorch
//! is linked once. They run the binary (sweeps, training, reports, the command line); the
//! loader's own tests are flowload-core's.

mod augment;
mod auto;
mod bad_input;
mod checkpoints;
mod cluster;
mod common;
mod encoded_inputs;
#[path = "../../crates/core/tests/it/fixtures.rs"]
mod fixtures;
mod layout;
mod models;
mod parquet_roundtrip;
mod pipelines;
mod report;
mod results_dir;
mod resume;
mod stats_cache;
mod stats_oracle;
mod train;
