//! A Python run's epochs as flowload's results: `<out>/runs/run-NNNN.parquet`, the binary's
//! own run file (the `flowload-results` crate), so that `flowload report`, DuckDB and pandas
//! read a Python run as they read a binary run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flowload_core::{Error, PassReport, Records, StatsStore};
use flowload_results::{EpochMetrics, MetricsWriter, Provenance, RunParams, run_path};

/// What the training loop measured of an epoch and told the loader (`Loader.record`): the
/// columns only it knows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Recorded {
    pub(crate) loss: Option<f64>,
    pub(crate) accuracy: Option<f64>,
    pub(crate) test_loss: Option<f64>,
    pub(crate) test_accuracy: Option<f64>,
    pub(crate) eval_seconds: Option<f64>,
}

impl Recorded {
    /// `self` with the values `other` has.
    pub(crate) fn update(&mut self, other: Recorded) {
        let keep = |a: &mut Option<f64>, b: Option<f64>| *a = b.or(*a);
        keep(&mut self.loss, other.loss);
        keep(&mut self.accuracy, other.accuracy);
        keep(&mut self.test_loss, other.test_loss);
        keep(&mut self.test_accuracy, other.test_accuracy);
        keep(&mut self.eval_seconds, other.eval_seconds);
    }
}

/// An epoch iterated from Python, as it ended.
#[derive(Clone, Debug)]
pub(crate) struct EpochDone {
    /// Its row, in the results' units: epochs from 1, seconds since the loader was made.
    pub(crate) row: EpochMetrics,
    /// Batches given, those of a resumed epoch's first part included.
    pub(crate) batches: usize,
    /// Whether it ran to its end (not broken off, interrupted or failed).
    pub(crate) finished: bool,
}

/// The statistics pass's figures, for every row: how long it took and where the sums came from.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PassFigures {
    pub(crate) seconds: f64,
    pub(crate) report: PassReport,
}

/// The rows to write: the finished epochs, each with what the loop recorded for it.
pub(crate) fn rows(done: &[EpochDone], recorded: &BTreeMap<u32, Recorded>) -> Vec<EpochMetrics> {
    done.iter()
        .filter(|d| d.finished)
        .map(|d| with_recorded(&d.row, recorded))
        .collect()
}

/// `row` with the loop's figures for its epoch.
pub(crate) fn with_recorded(
    row: &EpochMetrics,
    recorded: &BTreeMap<u32, Recorded>,
) -> EpochMetrics {
    let mut row = row.clone();
    if let Some(r) = recorded.get(&row.epoch) {
        row.loss = r.loss;
        row.accuracy = r.accuracy;
        row.test_loss = r.test_loss;
        row.test_accuracy = r.test_accuracy;
        row.eval_seconds = r.eval_seconds.unwrap_or(row.eval_seconds);
    }
    row
}

/// Writes `rows` as the run of `params` (its number `run`, or the next free one when `run` is
/// `None`) into `out`, with the loader's settings `config_json`.
/// Never replaces a run file: a given number that exists is refused, and two processes that
/// pick the same free number both get one of their own.
pub(crate) fn write(
    out: &Path,
    run: Option<u32>,
    params: &RunParams,
    config_json: &str,
    records: &Records,
    store: Option<&StatsStore>,
    rows: &[EpochMetrics],
) -> flowload_core::Result<PathBuf> {
    if rows.is_empty() {
        return Err(Error::Config(
            "write_results: no epoch has run to its end yet, so there is no row to write".into(),
        ));
    }
    if let Some(0) = run {
        return Err(Error::Config(
            "write_results: run numbers start at 1 (runs/run-0001.parquet)".into(),
        ));
    }
    let made_from = Provenance {
        data: records.content_key(store),
        model: None,
    };
    loop {
        let number = match run {
            Some(n) => n,
            None => next_free(out)?,
        };
        let params = RunParams {
            run: number,
            ..params.clone()
        };
        let path = run_path(out, number);
        let mut writer = MetricsWriter::try_new(&path, &params, config_json, made_from)?;
        writer.write(rows)?;
        match writer.close_new() {
            Ok(path) => return Ok(path),
            // Another writer took this number between our look and our rename: take the next.
            Err(Error::Io { source, .. })
                if run.is_none() && source.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Config(format!(
                    "write_results: {} exists; give another run number, or run=None for the next free one",
                    path.display()
                )));
            }
            Err(e) => return Err(e),
        }
    }
}

/// One more than the highest `runs/run-NNNN.parquet` under `out`; 1 for none.
fn next_free(out: &Path) -> flowload_core::Result<u32> {
    let dir = out.join("runs");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(1),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut highest = 0;
    for entry in entries {
        let name = entry.map_err(|e| Error::io(&dir, e))?.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_prefix("run-"))
            .and_then(|n| n.strip_suffix(".parquet"))
            .and_then(|n| n.parse::<u32>().ok());
        highest = highest.max(number.unwrap_or(0));
    }
    Ok(highest + 1)
}
