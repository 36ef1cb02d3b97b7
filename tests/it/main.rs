//! The integration tests: one crate, one module per concern, so that libtorch is linked once.

mod augment;
mod auto;
mod bad_input;
mod cluster;
mod common;
mod encoded_inputs;
mod fuzz_regressions;
mod models;
mod parquet_roundtrip;
mod pipelines;
mod report;
mod results_dir;
mod resume;
mod same_batches;
mod stats_cache;
mod stats_oracle;
mod train;
