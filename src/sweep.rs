//! A sweep: every run of a pipeline's grid, each one `stats → loader → sink → Parquet`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::cluster::{self, Announce, ClusterLoader, FollowerCluster, FollowerProcess};
use crate::cluster::{TrainerCluster, TrainerProcess};
use crate::config::{RunParams, SinkKind, SweepConfig, Workers};
use crate::error::{BadRecord, ClusterError, Error, Result};
use crate::loader::stats::{PassReport, StatsSource};
use crate::loader::{self, Limits, Loader, LoaderConfig, Tuning, batches_in_order};
use crate::ops::decode::OnBadRecord;
use crate::ops::normalize::Normalizer;
use crate::ops::plan::EpochOrder;
use crate::ops::stats::Stats;
use crate::ops::wire::WireFormat;
use crate::results::{
    AtomicFile, EpochMetrics, Existing, MetricsWriter, Provenance, ResultsDir, median, model_path,
    read_run, run_path, write_skipped, write_summary,
};
use crate::sink::train::{Trainer, device_name, parse_device};
use crate::sink::{RunClock, null};
use crate::source::encoded::image::MAX_DECODE_BYTES;
use crate::source::{Dataset, Records, SourceSpec};
use crate::stats_store::fingerprint::{data_key, file_key, part_ids};
use crate::stats_store::{CacheSetting, StatsStore};

/// Images per evaluation batch; evaluation needs no gradients, so bigger is just faster.
const EVAL_BATCH: usize = 1000;

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

impl RunReport {
    pub fn summary_line(&self, total_runs: usize) -> String {
        let p = &self.params;
        let mut s = format!("run {}/{} ", p.run, total_runs);
        // The model and optimizer only when not the seed's, so the seed's sweeps read as before.
        if p.model != crate::config::SEED_MODEL || p.optimizer != Default::default() {
            let _ = write!(s, " model={} optimizer={}", p.model, p.optimizer.name());
        }
        let _ = write!(
            s,
            " lr={} batch_size={} workers={} device={} normalize={}",
            p.lr, p.batch_size, p.workers, p.device, p.normalize
        );
        if self.resumed {
            s.push_str("  already complete, skipped (--resume)");
            return s;
        }
        let Some(last) = self.epochs.last() else {
            return s;
        };
        let n = self.epochs.len() as f64;
        let secs: f64 = self.epochs.iter().map(|e| e.epoch_seconds).sum();
        let wait: f64 = self.epochs.iter().map(|e| e.data_wait_seconds).sum();
        let _ = write!(s, "  {} epochs", self.epochs.len());
        if let (Some(loss), Some(acc)) = (last.loss, last.accuracy) {
            let _ = write!(s, ", loss {loss:.4} acc {acc:.4}");
        }
        if let Some(ta) = last.test_accuracy {
            let _ = write!(s, " test acc {ta:.4}");
        }
        if let Some(t) = &self.workers_settled {
            let _ = write!(s, "  {}", t.describe());
        }
        if self.skipped_records > 0 {
            let _ = write!(s, "  skipped {} bad records", self.skipped_records);
        }
        let _ = write!(
            s,
            "  epoch {:.3} s (data wait {:.1}%)  {:.0} images/s  stats {:.3} s",
            secs / n,
            100.0 * wait / secs,
            median(self.epochs.iter().map(|e| e.images_per_second)),
            last.stats_seconds
        );
        match last.stats_source.as_str() {
            "computed" | "cached" | "incremental" => {
                let _ = write!(
                    s,
                    " ({}, {}/{} shards decoded)",
                    last.stats_source, last.stats_shards_decoded, last.stats_shards
                );
            }
            _ => {}
        }
        s
    }
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
}

/// What every process of a sweep opens before its first run.
struct Prepared {
    data: Dataset,
    given_stats: Option<Stats>,
    config_json: String,
    runs: Vec<RunParams>,
    store: Option<StatsStore>,
    /// The data's content key, training and test parts: a run made from other data is not
    /// complete for `--resume`, and a process with other data is not let into a cluster.
    data_key: u128,
}

/// Opens the data (and the test data, and `--stats`) and lists the runs; `processes` is the
/// cluster's size (1 outside a cluster).
fn prepare(pipeline: &SweepConfig, processes: usize, cache: &CacheSetting) -> Result<Prepared> {
    pipeline.validate()?;
    let opts = pipeline.encoded_options()?;
    let mut data = SourceSpec::parse(&pipeline.data)?.open_with(&opts)?;
    if let Some(test) = &pipeline.test_data {
        data.test = Some(SourceSpec::parse(test)?.open_as_test(&opts)?);
    }
    if let Some(test) = &data.test {
        check_test_split(&data.train, test)?;
    }
    let given_stats = match &pipeline.stats {
        Some(path) => Some(Stats::load(path, data.train.shape())?),
        None => None,
    };
    let mut runs = pipeline.runs();
    check_sizes(pipeline, &data, &runs)?;
    if processes > 1 {
        if runs.iter().any(|r| r.workers == Workers::Fixed(0)) {
            return Err(Error::Config(
                "in a cluster, --workers counts the decode threads of each process and must be at least 1 (the grid has 0)".into(),
            ));
        }
        for r in &mut runs {
            r.processes = processes as u32;
        }
    }
    let store = cache.open();
    let ids = |r: &Records| -> Vec<_> {
        part_ids(r, store.as_ref())
            .into_iter()
            .map(|(_, id)| id)
            .collect()
    };
    let test_ids = data.test.as_ref().map(ids).unwrap_or_default();
    let data_key = data_key(&ids(&data.train), &test_ids);
    Ok(Prepared {
        data,
        given_stats,
        config_json: serde_json::to_string(pipeline).expect("pipeline serializes"),
        runs,
        store,
        data_key,
    })
}

/// Each TorchScript model of the grid fits the data (see [`crate::model::check_contract`]), and
/// its content key, which each run file records. Checked before the results directory is
/// touched, so that a bad model leaves nothing behind. Only the training sink loads models.
fn check_models(
    pipeline: &SweepConfig,
    data: &Dataset,
) -> Result<std::collections::HashMap<String, u128>> {
    let mut keys = std::collections::HashMap::new();
    if pipeline.sink != SinkKind::Train {
        return Ok(keys);
    }
    for spec in &pipeline.grid.model {
        if spec == crate::config::SEED_MODEL || keys.contains_key(spec) {
            continue;
        }
        crate::model::check_contract(spec, data.train.shape(), data.train.classes())?;
        let key = file_key(Path::new(spec)).map_err(|e| Error::Model {
            path: spec.into(),
            detail: e.to_string(),
        })?;
        keys.insert(spec.clone(), key);
    }
    Ok(keys)
}

/// The test split must fit the network the training split builds: the same image shape, and
/// no class the training data does not have.
fn check_test_split(train: &Records, test: &Records) -> Result<()> {
    if test.shape() != train.shape() {
        return Err(Error::Config(format!(
            "test data {} is {}, the training data {} is {} (use --resize, or test_transforms that end in the training size)",
            test.origin(),
            test.shape(),
            train.origin(),
            train.shape()
        )));
    }
    if test.classes() > train.classes() {
        return Err(Error::Config(format!(
            "test data {} has {} classes, the training data {} has {}: the network cannot predict the others (give --classes to both)",
            test.origin(),
            test.classes(),
            train.origin(),
            train.classes()
        )));
    }
    Ok(())
}

/// Every run has batches, and its batches fit in memory: checked before the first batch, so
/// that a bad setting is a message, not an empty run or an out-of-memory abort.
fn check_sizes(pipeline: &SweepConfig, data: &Dataset, runs: &[RunParams]) -> Result<()> {
    let (train, shape) = (&data.train, data.train.shape());
    if shape.len() as u64 > MAX_DECODE_BYTES {
        return Err(Error::Config(format!(
            "images of {shape} are {} MiB each, more than the {} MiB a record may take{}",
            shape.len() >> 20,
            MAX_DECODE_BYTES >> 20,
            if pipeline.resize.is_some() || !pipeline.train_transforms.is_empty() {
                " (--resize, train_transforms)"
            } else {
                ""
            }
        )));
    }
    let memory = physical_memory();
    for p in runs {
        let order = loader_config(pipeline, p, train, WireFormat::Raw).order;
        if order.batches_per_epoch() == 0 {
            return Err(Error::Config(format!(
                "batch size {} with --drop-last leaves no batch: {} has {} training images",
                p.batch_size,
                train.origin(),
                train.len()
            )));
        }
        // u8 and f32 copies of every batch in flight: the queues, and one being built per worker;
        // and the training sink holds the whole test split, normalized, for its evaluations.
        // `auto` starts at one worker and adds none beyond its memory budget.
        let workers = match p.workers {
            Workers::Fixed(n) => n.max(1),
            Workers::Auto => 1,
        };
        let in_flight = (pipeline.prefetch.max(1) + 1) * workers + 1;
        let test = match (&data.test, pipeline.sink) {
            (Some(t), SinkKind::Train) => t.len() as u64 * shape.len() as u64 * 4,
            _ => 0,
        };
        let bytes = (p.batch_size.min(train.len()) as u64)
            .saturating_mul(shape.len() as u64 * 5)
            .saturating_mul(in_flight as u64)
            .saturating_add(test);
        if memory.is_some_and(|m| bytes > m) {
            return Err(Error::Config(format!(
                "batch size {} of {shape} images with {} worker(s) and prefetch {}{} holds about {} GiB in memory; this machine has {} GiB",
                p.batch_size,
                p.workers,
                pipeline.prefetch,
                if test > 0 { ", and the test split" } else { "" },
                bytes >> 30,
                memory.unwrap_or(0) >> 30
            )));
        }
    }
    Ok(())
}

/// The machine's physical memory in bytes, where the system says.
fn physical_memory() -> Option<u64> {
    // SAFETY: sysconf reads system constants; it has no preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && size > 0).then(|| pages as u64 * size as u64)
}

impl Prepared {
    /// Identifies the configuration across processes: the pipeline, the wire format, and the
    /// data (its content key, size and shape).
    fn fingerprint(&self, wire: WireFormat) -> u32 {
        let mut h = crc32fast::Hasher::new();
        h.update(self.config_json.as_bytes());
        let shape = self.data.train.shape();
        h.update(
            format!(
                "{wire:?} {} {shape} {} {:032x}",
                self.data.train.len(),
                self.data.train.classes(),
                self.data_key
            )
            .as_bytes(),
        );
        h.finalize()
    }

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

/// Runs every point of the grid, calling `on_run` after each (the CLI prints a line there).
/// In a cluster this is process 0's part; the others call [`serve_sweep`].
pub fn run_sweep(
    pipeline: &SweepConfig,
    options: SweepOptions,
    mut on_run: impl FnMut(&RunReport, usize),
) -> Result<SweepReport> {
    // Resolve devices first: `--device cuda` without CUDA fails before any work is done.
    let devices = pipeline
        .grid
        .device
        .iter()
        .map(|d| Ok((d.clone(), device_name(parse_device(d)?))))
        .collect::<Result<Vec<_>>>()?;
    let processes = options.cluster.as_ref().map_or(1, |c| c.spec().processes);
    let prepared = prepare(pipeline, processes, &options.stats_cache)?;
    let model_keys = check_models(pipeline, &prepared.data)?;
    // Own the directory before the other processes are let in: a refusal ends the sweep here.
    let owned = ResultsDir::claim(&pipeline.out_dir(), options.existing, prepared.runs.len())?;
    let out = owned.path();
    if let Some(n) = pipeline.torch_threads {
        tch::set_num_threads(n as i32);
    }
    let mut cluster = match &options.cluster {
        Some(trainer) => Some(TrainerCluster::bind(
            trainer,
            prepared.fingerprint(options.wire),
        )?),
        None => None,
    };
    let Prepared {
        data,
        given_stats,
        config_json,
        mut runs,
        store,
        data_key,
    } = prepared;
    for p in &mut runs {
        p.device = devices
            .iter()
            .find(|(spec, _)| *spec == p.device)
            .expect("resolved above")
            .1
            .clone();
    }
    let mut reports = Vec::with_capacity(runs.len());
    let mut all_skipped: Vec<(u32, BadRecord)> = Vec::new();
    for params in &runs {
        let path = run_path(out, params.run);
        let report = match (options.existing == Existing::Resume)
            .then(|| {
                let made_from = Provenance {
                    data: data_key,
                    model: model_keys.get(&params.model).copied(),
                };
                completed(&path, params, pipeline, made_from)
            })
            .flatten()
        {
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
                let made_from = Provenance {
                    data: data_key,
                    model: model_keys.get(&params.model).copied(),
                };
                let mut writer = MetricsWriter::try_new(&path, params, &config_json, made_from)?;
                let report = run_one(
                    pipeline,
                    &data,
                    params,
                    given_stats.as_ref(),
                    store.as_ref(),
                    &model_path(out, params.run),
                    cluster.as_mut().map(|c| (c, options.wire)),
                    |row| writer.write(std::slice::from_ref(row)),
                )?;
                writer.close()?;
                all_skipped.extend(report.skipped.iter().map(|s| (params.run, s.clone())));
                if pipeline.on_bad_record == OnBadRecord::Skip {
                    write_skipped(out, &all_skipped)?;
                }
                report
            }
        };
        on_run(&report, runs.len());
        reports.push(report);
    }
    if let Some(c) = cluster {
        c.finish()?;
    }
    let sweep = SweepReport {
        pipeline: pipeline.clone(),
        dataset: data.train.origin().to_string(),
        runs: reports,
    };
    write_summary(out, &sweep)?;
    Ok(sweep)
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
    let made_with: SweepConfig = serde_json::from_str(file.config_json.as_deref()?).ok()?;
    (file.params == *params
        && file.data_key == Some(made_from.data)
        && file.model_key == made_from.model
        && made_with.same_runs_as(pipeline)
        && file.rows.len() == pipeline.epochs as usize)
        .then_some(file.rows)
}

/// Processes 1.. of a cluster: follows process 0's announcements — each run's statistics pass
/// and epochs — building this process's share of the batches, until process 0 says done.
/// `on_run` is called after each run this process served, with where `--workers auto` settled
/// here.
pub fn serve_sweep(
    pipeline: &SweepConfig,
    process: &FollowerProcess,
    wire: WireFormat,
    cache: &CacheSetting,
    mut on_run: impl FnMut(&RunParams, usize, Option<Tuning>),
) -> Result<()> {
    let prepared = prepare(pipeline, process.spec().processes, cache)?;
    let mut cluster = FollowerCluster::bind(process, prepared.fingerprint(wire))?;
    let train = &prepared.data.train;
    let mut stats: Option<(u32, Stats)> = None;
    loop {
        let session = cluster.next_session()?;
        match session.announce {
            Announce::Done => return Ok(()),
            Announce::Stats { run, threads } => {
                prepared.run(run)?;
                let s = cluster::compute_stats(
                    train,
                    session,
                    threads as usize,
                    pipeline.on_bad_record,
                    prepared.store.as_ref(),
                )?;
                stats = Some((run, s.stats));
            }
            Announce::Epochs { run, threads } => {
                let p = prepared.run(run)?;
                // Only `--wire arrow` normalizes here; `raw` leaves it to process 0.
                let run_stats = match (&prepared.given_stats, &stats) {
                    (Some(s), _) => Some(s),
                    (None, Some((r, s))) if *r == run => Some(s),
                    _ => None,
                };
                if p.normalize && wire == WireFormat::Arrow && run_stats.is_none() {
                    return Err(ClusterError::Protocol(format!(
                        "run {run}: epochs announced before the statistics pass"
                    ))
                    .into());
                }
                let normalizer =
                    Normalizer::new(run_stats.filter(|_| p.normalize), train.shape().channels);
                // This process has no trainer: auto may use every core it has, up to the
                // threads announced.
                let mut config = loader_config(pipeline, p, train, wire);
                config.limits = auto_limits(pipeline, p, train, false);
                let tuning =
                    cluster::serve(train.clone(), normalizer, config, session, threads as usize)?;
                on_run(p, prepared.runs.len(), tuning);
            }
        }
    }
}

fn loader_config(
    pipeline: &SweepConfig,
    params: &RunParams,
    train: &Records,
    wire: WireFormat,
) -> LoaderConfig {
    LoaderConfig {
        order: EpochOrder {
            records: train.len(),
            batch_size: params.batch_size,
            drop_last: pipeline.drop_last,
            shuffle: pipeline.shuffle.then_some(pipeline.seed),
            blocks: train.blocks(),
            window: train.window(),
        },
        epochs: pipeline.epochs,
        workers: params.workers,
        limits: auto_limits(pipeline, params, train, true),
        prefetch: pipeline.prefetch,
        on_bad_record: pipeline.on_bad_record,
        wire,
    }
}

/// The cores of this machine the process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What `--workers auto` may use: the cores the trainer leaves (the null sink takes none; a
/// GPU trainer's thread, one; a CPU trainer, `--torch-threads` or libtorch's count; none on a
/// process without the trainer), and the workers whose batches in flight fit in
/// `prefetch_memory_mib` (default a quarter of memory).
fn auto_limits(
    pipeline: &SweepConfig,
    params: &RunParams,
    train: &Records,
    trainer_here: bool,
) -> Limits {
    let trainer = match pipeline.sink {
        _ if !trainer_here => 0,
        SinkKind::Null => 0,
        SinkKind::Train if params.device.starts_with("cuda") => 1,
        SinkKind::Train => pipeline
            .torch_threads
            .unwrap_or_else(|| tch::get_num_threads().max(1) as usize),
    };
    let budget = match pipeline.prefetch_memory_mib {
        Some(mib) => mib.saturating_mul(1 << 20),
        None => physical_memory().map_or(4 << 30, |m| m / 4),
    };
    // As `check_sizes` counts: u8 and f32 copies of `prefetch + 1` batches per worker.
    let per_worker = (params.batch_size.min(train.len()).max(1) as u64)
        .saturating_mul(train.shape().len() as u64 * 5)
        .saturating_mul(pipeline.prefetch.max(1) as u64 + 1);
    Limits {
        cores: cores().saturating_sub(trainer).max(1),
        memory: ((budget / per_worker.max(1)) as usize).max(1),
    }
}

/// One run: statistics (once, reused by every epoch), then the loader into the sink; on a
/// cluster, as its trainer, when `cluster` is given. `on_epoch` receives each epoch's row as
/// soon as it is measured.
#[allow(clippy::too_many_arguments)]
pub fn run_one(
    pipeline: &SweepConfig,
    data: &Dataset,
    params: &RunParams,
    given_stats: Option<&Stats>,
    store: Option<&StatsStore>,
    model_out: &Path,
    mut cluster: Option<(&mut TrainerCluster, WireFormat)>,
    on_epoch: impl FnMut(&EpochMetrics) -> Result<()>,
) -> Result<RunReport> {
    let train = &data.train;
    let policy = pipeline.on_bad_record;
    let run_start = Instant::now();
    let file = PassReport {
        source: StatsSource::File,
        ..PassReport::default()
    };
    let (stats, pass) = match (params.normalize, given_stats, cluster.as_mut()) {
        (false, _, _) => (None, PassReport::default()),
        (true, Some(s), _) => (Some(s.clone()), file),
        (true, None, Some((c, _))) => {
            let threads = params.workers.resolve(cores());
            let announce = Announce::Stats {
                run: params.run,
                threads: threads as u32,
            };
            let session = c.open(announce)?;
            let o = cluster::compute_stats(train, session, threads, policy, store)?;
            (Some(o.stats), o.report)
        }
        // Records the statistics pass skips are skipped again, and listed, by the epochs.
        (true, None, None) => {
            let threads = params.workers.resolve(cores());
            let o = loader::stats::statistics(train, threads, policy, store)?;
            (Some(o.stats), o.report)
        }
    };
    let stats_seconds = if params.normalize && given_stats.is_none() {
        run_start.elapsed().as_secs_f64()
    } else {
        0.0
    };
    if let Some(s) = &stats {
        s.check_variance(train.origin())?;
    }
    let normalizer = Normalizer::new(stats.as_ref(), train.shape().channels);
    let mut loader: Loader = match cluster {
        Some((c, wire)) => {
            let config = loader_config(pipeline, params, train, wire);
            let threads = params.workers.resolve(cores());
            let announce = Announce::Epochs {
                run: params.run,
                threads: threads as u32,
            };
            let session = c.open(announce)?;
            Box::new(ClusterLoader::new(
                train.clone(),
                normalizer.clone(),
                config,
                session,
                threads,
            )?)
        }
        None => loader::new(
            train.clone(),
            normalizer.clone(),
            loader_config(pipeline, params, train, WireFormat::Raw),
        )?,
    };
    let clock = RunClock {
        start: run_start,
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
            let test = match &data.test {
                Some(split) => batches_in_order(split, &normalizer, EVAL_BATCH, policy)?,
                None => Vec::new(),
            };
            let device = parse_device(&params.device)?;
            let mut trainer = Trainer::new(
                params,
                train.shape(),
                train.classes(),
                device,
                (pipeline.momentum, pipeline.weight_decay),
            )?;
            let rows = trainer.fit(
                &mut loader,
                pipeline.epochs,
                &test,
                clock,
                &mut skipped,
                on_epoch,
            )?;
            // Written whole or not at all, before the run's file: a complete run has its model.
            let (file, model) = AtomicFile::create(model_out)?;
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

/// The RunManager's table: one line per (run, epoch).
pub fn format_table(runs: &[RunReport]) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let mut t = String::from(
        "run  lr      batch  workers  device  normalize  epoch  loss    accuracy  test_loss  test_acc  epoch_s  wait_s  compute_s  images/s   run_s\n",
    );
    for r in runs {
        let p = &r.params;
        for e in &r.epochs {
            let _ = writeln!(
                t,
                "{:<4} {:<7} {:<6} {:<8} {:<7} {:<10} {:<6} {:<7} {:<9} {:<10} {:<9} {:<8.3} {:<7.3} {:<10.3} {:<10.0} {:.2}",
                p.run,
                p.lr,
                p.batch_size,
                match p.workers {
                    Workers::Auto => format!("auto={}", e.workers),
                    Workers::Fixed(n) => n.to_string(),
                },
                p.device,
                p.normalize,
                e.epoch + 1,
                opt(e.loss),
                opt(e.accuracy),
                opt(e.test_loss),
                opt(e.test_accuracy),
                e.epoch_seconds,
                e.data_wait_seconds,
                e.compute_seconds,
                e.images_per_second,
                e.run_seconds
            );
        }
    }
    t
}
