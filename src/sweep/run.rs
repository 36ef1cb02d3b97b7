//! One run: statistics (once, reused by every epoch), then the loader into the sink, in one
//! process or as a cluster's process 0.

use std::path::Path;
use std::time::Instant;

use flowload_core::{PassReport, Stats, StatsSource, cores};

use super::cluster::Announcer;
use super::{Prepared, RunReport, loader_settings};
use crate::config::{RunParams, SinkKind, SweepConfig};
use crate::error::Result;
use crate::results::EpochMetrics;
use crate::sink::checkpoint::{Checkpoint, Schedule};
use crate::sink::train::{Trainer, parse_device};
use crate::sink::{RunClock, null};

/// Images per evaluation batch; evaluation needs no gradients, so bigger is just faster.
const EVAL_BATCH: usize = 1000;

/// Runs `params`: its statistics pass (unless normalization is off or `--stats` gave them),
/// then its epochs into the sink, whose trained model goes to `model_out`. In a cluster,
/// `announcer` opens a session for each. `on_epoch` receives each epoch's row as soon as it is
/// measured. The training sink checkpoints on `schedule`, and goes on from `resume`: a
/// checkpoint of this very run.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_one(
    pipeline: &SweepConfig,
    prepared: &Prepared,
    params: &RunParams,
    model_out: &Path,
    mut announcer: Option<&mut Announcer>,
    schedule: Option<Schedule>,
    resume: Option<&Checkpoint>,
    on_epoch: impl FnMut(&EpochMetrics) -> Result<()>,
) -> Result<RunReport> {
    let train = &prepared.data.train;
    let run_start = Instant::now();
    // Threads where a count must be known first: a statistics pass has no trainer beside it,
    // and a cluster's processes must agree; `auto` uses every core.
    let threads = params.workers.resolve(cores());
    let (stats, pass) = match (params.normalize, &prepared.given_stats) {
        (false, _) => (None, PassReport::default()),
        (true, Some(s)) => (
            Some(s.clone()),
            PassReport {
                source: StatsSource::File,
                ..PassReport::default()
            },
        ),
        // Records the statistics pass skips are skipped again, and listed, by the epochs.
        (true, None) => {
            let mut pass = Stats::pass(train)
                .workers(threads)
                .on_bad_record(pipeline.on_bad_record)
                .store(prepared.store.as_ref());
            if let Some(a) = announcer.as_mut() {
                pass = pass.cluster(a.stats(params.run, threads)?);
            }
            let o = pass.run()?;
            (Some(o.stats), o.report)
        }
    };
    let stats_seconds = if pass.source.passed() {
        run_start.elapsed().as_secs_f64()
    } else {
        0.0
    };
    if let Some(s) = &stats {
        s.check_variance(train.origin())?;
    }
    let resume = resume.filter(|_| pipeline.sink == SinkKind::Train);
    // A checkpoint made at the last epoch's end (the run was stopped before its file was in
    // place) leaves nothing to load: the loader is built from the start, and dropped unused.
    let start = resume
        .map(|c| c.meta.position)
        .filter(|p| p.epoch < pipeline.epochs)
        .unwrap_or_default();
    let mut loader = loader_settings(pipeline, params, train, true)
        .normalize(stats.as_ref())
        .start_at(start);
    if let Some(a) = announcer {
        loader = loader
            .wire(a.wire)
            .cluster(a.epochs(params.run, threads, start)?);
    }
    let mut loader = loader.build()?;
    let clock = RunClock {
        start: run_start,
        before: resume.map_or(0.0, |c| c.meta.run_seconds),
        stats_seconds,
        stats_pass: pass,
    };
    let mut skipped = Vec::new();
    let epochs = match pipeline.sink {
        SinkKind::Null => {
            let rows = null::drain(&mut loader, pipeline.epochs, clock, &mut skipped)?;
            rows.iter().try_for_each(on_epoch)?;
            rows
        }
        SinkKind::Train => {
            // The test split is normalized with the training statistics, as torchvision users do.
            let test = match &prepared.data.test {
                Some(split) => flowload_core::Loader::builder(split.clone())
                    .batch_size(EVAL_BATCH)
                    .normalize(stats.as_ref())
                    .on_bad_record(pipeline.on_bad_record)
                    .collect_in_order()?,
                None => Vec::new(),
            };
            let device = parse_device(&params.device)?;
            let mut trainer = Trainer::new(
                params,
                train.shape(),
                train.classes(),
                device,
                (pipeline.momentum, pipeline.weight_decay),
                resume,
            )?;
            let rows = trainer.fit(
                &mut loader,
                pipeline.epochs,
                &test,
                clock,
                &mut skipped,
                schedule,
                resume,
                on_epoch,
            )?;
            // Written whole or not at all, before the run's file: a complete run has its model.
            let (file, model) = flowload_core::AtomicFile::create(model_out)?;
            trainer.save(model.tmp_path())?;
            model.commit(file)?;
            skipped.extend(test.iter().flat_map(|b| b.skipped.iter().cloned()));
            rows
        }
    };
    let workers_settled = loader.tuning();
    drop(loader);
    Ok(RunReport {
        params: params.clone(),
        workers_settled,
        stats,
        skipped_records: epochs.first().map_or(0, |e| e.skipped_records as usize),
        epochs,
        resumed: false,
        skipped,
    })
}
