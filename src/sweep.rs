//! A sweep: every run of a pipeline's grid, each one `stats → loader → sink`, with a summary.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::config::{Pipeline, RunParams, SinkKind};
use crate::error::{Error, Result};
use crate::ops::normalize::Normalizer;
use crate::ops::plan::EpochOrder;
use crate::ops::stats::Stats;
use crate::pipeline::{Loader, LoaderConfig, compute_stats};
use crate::sink::{self, EpochReport};
use crate::source::{Dataset, SourceSpec};

/// The outcome of one run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    #[serde(flatten)]
    pub params: RunParams,
    pub seed: u64,
    pub images_per_epoch: usize,
    /// Seconds of the statistics pass; 0 when normalization is off or `--stats` supplied them.
    pub stats_seconds: f64,
    pub stats: Option<Stats>,
    pub epochs: Vec<EpochReport>,
}

impl RunReport {
    /// Median over epochs, so one slow epoch (page cache, a noisy neighbour) does not dominate.
    pub fn median_images_per_second(&self) -> f64 {
        let mut v: Vec<f64> = self
            .epochs
            .iter()
            .map(EpochReport::images_per_second)
            .collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    pub fn summary_line(&self, total_runs: usize) -> String {
        let p = &self.params;
        let secs: f64 = self.epochs.iter().map(|e| e.seconds).sum();
        let wait: f64 = self.epochs.iter().map(|e| e.data_wait_seconds).sum();
        format!(
            "run {}/{}  workers={} batch_size={} normalize={}  {} images x {} epochs in {:.3} s (data wait {:.3} s, stats {:.3} s)  median {:.0} images/s",
            p.run,
            total_runs,
            p.workers,
            p.batch_size,
            p.normalize,
            self.images_per_epoch,
            self.epochs.len(),
            secs,
            wait,
            self.stats_seconds,
            self.median_images_per_second()
        )
    }
}

/// Everything a sweep produced, as written to `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct SweepReport {
    pub pipeline: Pipeline,
    pub dataset: String,
    pub runs: Vec<RunReport>,
}

/// Runs every point of the grid, calling `on_run` after each (the CLI prints a line there).
pub fn run_sweep(
    pipeline: &Pipeline,
    mut on_run: impl FnMut(&RunReport, usize),
) -> Result<SweepReport> {
    pipeline.validate()?;
    let data = SourceSpec::parse(&pipeline.data)?.open()?;
    let given_stats = match &pipeline.stats {
        Some(path) => Some(Stats::load(path, data.train.shape)?),
        None => None,
    };
    let runs = pipeline.runs();
    let mut reports = Vec::with_capacity(runs.len());
    for params in &runs {
        let report = run_one(pipeline, &data, params, given_stats.as_ref())?;
        on_run(&report, runs.len());
        reports.push(report);
    }
    let sweep = SweepReport {
        pipeline: pipeline.clone(),
        dataset: data.train.origin.clone(),
        runs: reports,
    };
    write_summary(&pipeline.out_dir(), &sweep)?;
    Ok(sweep)
}

/// One run: statistics (once, reused by every epoch), then the loader into the sink.
pub fn run_one(
    pipeline: &Pipeline,
    data: &Dataset,
    params: &RunParams,
    given_stats: Option<&Stats>,
) -> Result<RunReport> {
    let train = &data.train;
    let started = Instant::now();
    let stats = match (params.normalize, given_stats) {
        (false, _) => None,
        (true, Some(s)) => Some(s.clone()),
        (true, None) => Some(compute_stats(train, params.workers)?),
    };
    let stats_seconds = if params.normalize && given_stats.is_none() {
        started.elapsed().as_secs_f64()
    } else {
        0.0
    };
    if let Some(s) = &stats {
        s.check_variance(&train.origin)?;
    }
    let normalizer = Normalizer::new(stats.as_ref(), train.shape.channels);
    let loader = Loader::new(
        Arc::clone(train),
        normalizer,
        LoaderConfig {
            order: EpochOrder {
                records: train.len(),
                batch_size: params.batch_size,
                drop_last: pipeline.drop_last,
                shuffle: pipeline.shuffle.then_some(pipeline.seed),
            },
            epochs: pipeline.epochs,
            workers: params.workers,
            prefetch: pipeline.prefetch,
        },
    )?;
    let epochs = match pipeline.sink {
        SinkKind::Null => sink::null::drain(loader)?,
    };
    Ok(RunReport {
        params: params.clone(),
        seed: pipeline.seed,
        images_per_epoch: epochs.first().map_or(0, |e| e.images as usize),
        stats_seconds,
        stats,
        epochs,
    })
}

/// Writes `summary.json` atomically: a reader never sees half a file.
fn write_summary(dir: &Path, sweep: &SweepReport) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join("summary.json");
    let tmp = dir.join(".summary.json.tmp");
    let text = serde_json::to_string_pretty(sweep).expect("reports serialize");
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
}
