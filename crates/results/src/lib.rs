//! flowload's results format, shared by the binary and the Python package: a run's grid point
//! ([`RunParams`]), one row per epoch ([`EpochMetrics`], its columns listed once), and the run
//! file that holds them (`runs/run-NNNN.parquet`, written by [`MetricsWriter`], read by
//! [`read_run`]). DuckDB, pandas, polars and `flowload report` read what either side writes.

pub mod columns;
pub mod params;
pub mod run_file;

pub use columns::{EpochMetrics, schema};
pub use params::{OptimizerKind, RunParams, SEED_MODEL};
pub use run_file::{
    CONFIG_KEY, DATA_KEY, EPOCHS_FROM_KEY, MODEL_KEY, MetricsWriter, Provenance, RUN_KEY, RunFile,
    model_path, read_run, run_path,
};
