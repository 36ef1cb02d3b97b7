//! A sweep: every run of a pipeline's grid, each one `stats → loader → sink → Parquet`. The
//! grid and `--resume` are driven here; one run is [`run`], both sides of a cluster's session
//! protocol are [`cluster`], the checks made before anything is written are [`validate`], and
//! what identifies a run's inputs is [`identity`].

mod cluster;
mod identity;
mod run;
mod validate;

use std::path::Path;

use serde::Serialize;

use flowload_core::cluster::TrainerProcess;
use flowload_core::{
    BadRecord, CacheSetting, ClusterError, Dataset, Loader, LoaderBuilder, OnBadRecord, Records,
    Stats, StatsStore, Tuning, WireFormat, Workers, cores,
};

use cluster::Announcer;
pub use cluster::serve_sweep;
use identity::Identity;

use crate::config::checkpoint_interval;
use crate::config::{RunParams, SinkKind, SweepConfig};
use crate::error::{Error, Result};
use crate::results::{
    EpochMetrics, Existing, MetricsWriter, Provenance, ResultsDir, model_path, read_run, run_path,
    write_skipped, write_summary,
};
use crate::sink::checkpoint::{self, Checkpoint, Schedule, checkpoint_dir};
use crate::sink::train::{device_name, parse_device};

/// The outcome of one run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub params: RunParams,
    /// Statistics used for normalization (`None` when it is off).
    pub stats: Option<Stats>,
    pub epochs: Vec<EpochMetrics>,
    /// True when `--resume` found this run complete and did not run it again.
    pub resumed: bool,
    /// `--workers auto`: where the count settled and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers_settled: Option<Tuning>,
    /// Records left out under `--on-bad-record skip` (each listed once in `skipped.parquet`).
    #[serde(skip)]
    pub skipped: Vec<BadRecord>,
    pub skipped_records: usize,
}

/// Everything a sweep produced, as written to `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct SweepReport {
    pub pipeline: SweepConfig,
    pub dataset: String,
    pub runs: Vec<RunReport>,
}

#[derive(Clone, Debug, Default)]
pub struct SweepOptions {
    /// What to do with results already in the output directory: refuse them, resume them
    /// (skip the runs whose Parquet file is complete and made with this config), or replace them.
    pub existing: Existing,
    /// Cluster mode: this process is the cluster's trainer; `None` runs in one process.
    pub cluster: Option<TrainerProcess>,
    /// How batches travel between the processes of a cluster.
    pub wire: WireFormat,
    /// Where the statistics cache is (`--stats-cache`, `--no-stats-cache`).
    pub stats_cache: CacheSetting,
    /// Keep a completed run's checkpoint (`--keep-checkpoints`).
    pub keep_checkpoints: bool,
    /// Where the sweep says what it resumed from, and why a checkpoint was not used, as it
    /// happens (the binary prints to stderr); `None` keeps quiet.
    pub notify: Option<fn(&str)>,
}

/// What every process of a sweep opens before its first run.
pub(crate) struct Prepared {
    data: Dataset,
    given_stats: Option<Stats>,
    config_json: String,
    runs: Vec<RunParams>,
    store: Option<StatsStore>,
    /// What the data is, by content: a run made from other data is not complete for
    /// `--resume`, and a process with other data is not let into a cluster.
    identity: Identity,
}

/// Opens the data (and the test data, and `--stats`), checks what can be checked before
/// anything is written, and lists the runs; `processes` is the cluster's size (1 outside one).
fn prepare(pipeline: &SweepConfig, processes: usize, cache: &CacheSetting) -> Result<Prepared> {
    let (data, given_stats, runs) = open_checked(pipeline, processes)?;
    let store = cache.open();
    let identity = Identity::of(&data, store.as_ref());
    Ok(Prepared {
        data,
        given_stats,
        config_json: serde_json::to_string(pipeline).expect("pipeline serializes"),
        runs,
        store,
        identity,
    })
}

/// The data, `--stats` and the runs, once every check that needs no run has passed.
fn open_checked(
    pipeline: &SweepConfig,
    processes: usize,
) -> Result<(Dataset, Option<Stats>, Vec<RunParams>)> {
    pipeline.validate()?;
    let opts = pipeline.dataset_options()?;
    let mut data = Dataset::open(&pipeline.data, &opts)?;
    if let Some(test) = &pipeline.test_data {
        data.test = Some(Dataset::open_test(test, &opts)?);
    }
    if let Some(test) = &data.test {
        validate::check_test_split(&data.train, test)?;
    }
    let given_stats = match &pipeline.stats {
        Some(path) => Some(Stats::load(path, data.train.shape())?),
        None => None,
    };
    let mut runs = pipeline.runs();
    validate::check_sizes_here(pipeline, &data, &runs)?;
    if processes > 1 {
        if runs.iter().any(|r| r.workers == Workers::Fixed(0)) {
            return Err(Error::config(
                "in a cluster, --workers counts the decode threads of each process and must be at least 1 (the grid has 0)",
            ));
        }
        for r in &mut runs {
            r.processes = processes as u32;
        }
    }
    Ok((data, given_stats, runs))
}

/// Everything a sweep of `pipeline` on `processes` processes checks before it writes or
/// connects anything, and nothing else: `cluster-local` asks it once, so that a bad setting is
/// one message, not one per process.
pub fn check(pipeline: &SweepConfig, processes: usize) -> Result<()> {
    let (data, _, _) = open_checked(pipeline, processes)?;
    validate::check_models(pipeline, &data)
}

impl Prepared {
    /// Identifies this configuration to the other processes of a cluster.
    fn fingerprint(&self, wire: WireFormat) -> u32 {
        self.identity
            .fingerprint(&self.config_json, wire, &self.data)
    }

    /// Run `run` of the grid, as process 0 announced it.
    fn run(&self, run: u32) -> Result<&RunParams> {
        self.runs
            .get((run as usize).wrapping_sub(1))
            .ok_or_else(|| {
                ClusterError::Protocol(format!(
                    "process 0 announced run {run}, the grid has {}",
                    self.runs.len()
                ))
                .into()
            })
    }
}

/// A run's loader settings from the pipeline: process 0's loader, a follower's share and the
/// memory check all start here. `auto` may use the cores the trainer leaves: none for the null
/// sink, one for a GPU trainer's thread, `--torch-threads` (or libtorch's count) for a CPU
/// trainer, and none on a process without the trainer (`trainer_here` false); and the workers
/// whose batches in flight fit in `prefetch_memory_mib` (default a quarter of memory).
fn loader_settings(
    pipeline: &SweepConfig,
    params: &RunParams,
    train: &Records,
    trainer_here: bool,
) -> LoaderBuilder {
    let trainer = match pipeline.sink {
        _ if !trainer_here => 0,
        SinkKind::Null => 0,
        SinkKind::Train if params.device.starts_with("cuda") => 1,
        SinkKind::Train => pipeline
            .torch_threads
            .unwrap_or_else(|| tch::get_num_threads().max(1) as usize),
    };
    let loader = Loader::builder(train.clone())
        .batch_size(params.batch_size)
        .shuffle(pipeline.shuffle.then_some(pipeline.seed))
        .drop_last(pipeline.drop_last)
        .epochs(pipeline.epochs)
        .workers(params.workers)
        .prefetch(pipeline.prefetch)
        .on_bad_record(pipeline.on_bad_record)
        .auto_cores(cores().saturating_sub(trainer).max(1));
    match pipeline.prefetch_memory_mib {
        Some(mib) => loader.auto_memory(mib.saturating_mul(1 << 20)),
        None => loader,
    }
}

/// Runs every point of the grid, calling `on_run` after each (the CLI prints a line there).
/// In a cluster this is process 0's part; the others call [`serve_sweep`].
pub fn run_sweep(
    pipeline: &SweepConfig,
    options: SweepOptions,
    on_run: impl FnMut(&RunReport, usize),
) -> Result<SweepReport> {
    // Resolve devices first: `--device cuda` without CUDA fails before any work is done.
    let devices = pipeline
        .grid
        .device
        .iter()
        .map(|d| Ok((d.clone(), device_name(parse_device(d)?))))
        .collect::<Result<Vec<_>>>()?;
    let processes = options.cluster.as_ref().map_or(1, |c| c.spec().processes);
    let mut prepared = prepare(pipeline, processes, &options.stats_cache)?;
    validate::check_models(pipeline, &prepared.data)?;
    prepared.identity = prepared.identity.clone().with_models(pipeline)?;
    // Own the directory before the other processes are let in: a refusal ends the sweep here.
    let owned = ResultsDir::claim(&pipeline.out_dir(), options.existing, prepared.runs.len())?;
    for p in &mut prepared.runs {
        p.device = devices
            .iter()
            .find(|(spec, _)| *spec == p.device)
            .expect("resolved above")
            .1
            .clone();
    }
    match run_grid(pipeline, &options, &prepared, owned.path(), on_run) {
        Ok(sweep) => Ok(sweep),
        Err(e) => {
            // A sweep refused before it wrote a run (its first statistics pass found a
            // setting no run can use) leaves nothing behind.
            owned.abandon();
            Err(e)
        }
    }
}

/// The runs of a prepared sweep into its claimed directory `out`.
fn run_grid(
    pipeline: &SweepConfig,
    options: &SweepOptions,
    prepared: &Prepared,
    out: &Path,
    mut on_run: impl FnMut(&RunReport, usize),
) -> Result<SweepReport> {
    if let Some(n) = pipeline.torch_threads {
        tch::set_num_threads(n as i32);
    }
    let mut announcer = match &options.cluster {
        Some(trainer) => Some(Announcer::bind(trainer, prepared, options.wire)?),
        None => None,
    };
    let total = prepared.runs.len();
    let mut reports = Vec::with_capacity(total);
    let mut all_skipped: Vec<(u32, BadRecord)> = Vec::new();
    for params in &prepared.runs {
        let path = run_path(out, params.run);
        let made_from = prepared.identity.provenance(&params.model);
        let done = (options.existing == Existing::Resume)
            .then(|| completed(&path, params, pipeline, made_from))
            .flatten();
        let report = match done {
            Some(epochs) => RunReport {
                params: params.clone(),
                stats: None,
                skipped_records: epochs.first().map_or(0, |e| e.skipped_records as usize),
                epochs,
                resumed: true,
                workers_settled: None,
                skipped: Vec::new(),
            },
            None => {
                let dir = checkpoint_dir(out, params.run);
                let identity = checkpoint::Identity {
                    params: params.clone(),
                    config_json: prepared.config_json.clone(),
                    data: made_from.data,
                    model: made_from.model,
                };
                let resume = (options.existing == Existing::Resume)
                    .then(|| usable_checkpoint(&dir, &identity, pipeline, options.notify))
                    .flatten();
                // In a cluster, process 0 checkpoints: it trains, and announces the position
                // a resumed run's followers start from.
                let every = checkpoint_interval(&pipeline.checkpoint_every)?
                    .filter(|_| pipeline.sink == SinkKind::Train);
                let schedule = every.map(|every| Schedule {
                    dir: dir.clone(),
                    every,
                    identity,
                    last: std::time::Instant::now(),
                });
                let mut writer =
                    MetricsWriter::try_new(&path, params, &prepared.config_json, made_from)?;
                let report = run::run_one(
                    pipeline,
                    prepared,
                    params,
                    &model_path(out, params.run),
                    announcer.as_mut(),
                    schedule,
                    resume.as_ref(),
                    |row| Ok(writer.write(std::slice::from_ref(row))?),
                )?;
                writer.close()?;
                if !options.keep_checkpoints && dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                    let _ = std::fs::remove_dir(out.join("checkpoints"));
                }
                all_skipped.extend(report.skipped.iter().map(|s| (params.run, s.clone())));
                if pipeline.on_bad_record == OnBadRecord::Skip {
                    write_skipped(out, &all_skipped)?;
                }
                report
            }
        };
        on_run(&report, total);
        reports.push(report);
    }
    if let Some(a) = announcer {
        a.finish()?;
    }
    let sweep = SweepReport {
        pipeline: pipeline.clone(),
        dataset: prepared.data.train.origin().to_string(),
        runs: reports,
    };
    write_summary(out, &sweep)?;
    Ok(sweep)
}

/// The newest checkpoint in `dir` if it was made by this very run (its grid point, the config
/// by `--resume`'s rule, the data and the model); `None` means start the run over. What is not
/// used, and why, is said through `notify`, as is where the run goes on from.
fn usable_checkpoint(
    dir: &Path,
    identity: &checkpoint::Identity,
    pipeline: &SweepConfig,
    notify: Option<fn(&str)>,
) -> Option<Checkpoint> {
    let say = |text: &str| {
        if let Some(notify) = notify {
            notify(text)
        }
    };
    let (found, warnings) = checkpoint::read(dir);
    for w in &warnings {
        say(&format!("warning: {w}"));
    }
    let run = identity.params.run;
    let Some(c) = found else {
        if !warnings.is_empty() {
            say(&format!("run {run} starts over from epoch 1"));
        }
        return None;
    };
    // The worker count changes no number (the batches are the same at any count): a run
    // stopped at one goes on at another.
    let mut theirs = c.meta.identity.clone();
    theirs.params.workers = identity.params.workers;
    let made_from = Provenance {
        data: identity.data,
        model: identity.model,
    };
    let differs = differences(&theirs, &identity.params, made_from, pipeline);
    if !differs.is_empty() {
        say(&format!(
            "checkpoint {} was made with another {}: run {run} starts over from epoch 1",
            c.path.display(),
            differs.join(", ")
        ));
        return None;
    }
    let p = c.meta.position;
    say(&format!(
        "run {run} goes on from its checkpoint {}: epoch {} batch {} ({} epoch(s) done)",
        c.path.display(),
        p.epoch + 1,
        p.batch,
        c.meta.rows.len()
    ));
    Some(c)
}

/// What makes `theirs` (a run file's or a checkpoint's) another run than `params` of
/// `pipeline` made from `made_from`, by `--resume`'s rule: the grid point, the config (every
/// key that changes a run's numbers), the data, the model file. Empty for the same run.
fn differences(
    theirs: &checkpoint::Identity,
    params: &RunParams,
    made_from: Provenance,
    pipeline: &SweepConfig,
) -> Vec<&'static str> {
    let same_config = serde_json::from_str::<SweepConfig>(&theirs.config_json)
        .is_ok_and(|made_with| made_with.same_runs_as(pipeline));
    [
        (theirs.params != *params, "grid point"),
        (!same_config, "config"),
        (theirs.data != made_from.data, "data"),
        (theirs.model != made_from.model, "model file"),
    ]
    .into_iter()
    .filter_map(|(differs, what)| differs.then_some(what))
    .collect()
}

/// The rows of `path` if it holds this exact run, on this data, complete; `None` means run it
/// (again).
fn completed(
    path: &Path,
    params: &RunParams,
    pipeline: &SweepConfig,
    made_from: Provenance,
) -> Option<Vec<EpochMetrics>> {
    let file = read_run(path).ok()?;
    let theirs = checkpoint::Identity {
        params: file.params,
        config_json: file.config_json?,
        data: file.data_key?,
        model: file.model_key,
    };
    (differences(&theirs, params, made_from, pipeline).is_empty()
        && file.rows.len() == pipeline.epochs as usize)
        .then_some(file.rows)
}
