//! The results directory, in one place: the run files (the `flowload-results` crate, which the
//! Python package shares: their columns, their writer and reader), `skipped.parquet`,
//! `summary.json`, and the lock of the sweep writing them.
//!
//! ```text
//! <out>/summary.json             the sweep: effective config, every run's report
//! <out>/runs/run-NNNN.parquet    one row per epoch of run NNNN
//! <out>/models/run-NNNN.pt       run NNNN's trained model (the training sink)
//! <out>/skipped.parquet          records left out under --on-bad-record skip
//! <out>/.flowload.lock           held by the sweep writing <out>, with its pid
//! ```

pub mod dir;
pub mod skipped;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use dir::{Existing, ResultsDir};
pub use flowload_results::{
    CONFIG_KEY, EpochMetrics, MetricsWriter, Provenance, RUN_KEY, RunFile, model_path, read_run,
    run_path, schema,
};
pub use skipped::write_skipped;

/// Writes `<dir>/summary.json` atomically: a reader never sees half a file.
pub fn write_summary(dir: &Path, summary: &impl Serialize) -> crate::Result<PathBuf> {
    let text = serde_json::to_string_pretty(summary).expect("reports serialize");
    Ok(flowload_core::AtomicFile::write(
        &dir.join("summary.json"),
        text.as_bytes(),
    )?)
}

/// The median (the mean of the middle two for an even count; 0 for none): how a run's
/// images/s is summed up, in its line and in the report.
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
