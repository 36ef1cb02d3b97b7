//! `flowload._flowload.Loader`: one loader over a data set, iterated epoch by epoch from Python.
//!
//! A thread of its own (the feeder) drives the core's [`Loader`] and hands each batch over a
//! channel of one, so that the Python thread waits with the GIL released and wakes every
//! [`SIGNAL_POLL`] to let Ctrl-C through. The core loader runs on as one long run across
//! epochs (the DataLoader's `persistent_workers`): the next epoch's first batches are built
//! while the trainer finishes this one. Asking for another position — `set_epoch`, a loaded
//! state, an epoch left part-way — starts it again there ([`LoaderBuilder::start_at`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use flowload_core::{
    Batch, CacheSetting, Dataset, DatasetOptions, Loader, LoaderBuilder, OnBadRecord, Position,
    Records, Stats, Stopper, Transforms, Workers, cores,
};
use flowload_results::{EpochMetrics, OptimizerKind, RunParams};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::batch::PyBatch;
use crate::errors::{self, LoaderError, to_py};
use crate::results::{self, EpochDone, PassFigures, Recorded};

/// How often a waiting `next` looks for Ctrl-C: well under the second a user waits for it.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Epochs the core loader's one long run is given: more than any training runs.
const RUN_EPOCHS: u32 = u32::MAX;

/// Pixels as they reach the trainer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dtype {
    /// Normalized (or `x/255`) f32, `[B,C,H,W]`.
    Float32,
    /// The decoded and augmented u8 pixels, `[B,C,H,W]`, normalized by the trainer.
    Uint8,
}

impl Dtype {
    /// Its name, as `dtype=` takes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dtype::Float32 => "float32",
            Dtype::Uint8 => "uint8",
        }
    }

    fn parse(name: &str) -> PyResult<Dtype> {
        [Dtype::Float32, Dtype::Uint8]
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| {
                errors::config(format!(
                    "dtype: '{name}' is not one flowload gives: float32 (normalized) or uint8 (raw pixels)"
                ))
            })
    }
}

/// The settings that decide which batches a loader gives; the worker count and prefetch do not.
#[derive(Clone, Debug)]
struct Settings {
    data: String,
    split: String,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
    augment: Vec<String>,
    dtype: Dtype,
    rank: usize,
    world_size: usize,
    workers: Workers,
    prefetch: usize,
    on_bad_record: OnBadRecord,
}

/// The feeder: its thread, the batches it hands over, and the run position of the next one.
struct Stream {
    rx: Receiver<(flowload_core::Result<Batch>, usize)>,
    thread: Option<JoinHandle<()>>,
    next: (u32, usize),
    stopper: Stopper,
}

impl Stream {
    /// Stops the feeder: its workers give up their batches at the next record, the feeder sees
    /// the channel closed, and dropping the core loader joins the workers.
    fn stop(mut self) -> Option<String> {
        self.stopper.stop();
        drop(self.rx);
        let joined = self.thread.take().map(JoinHandle::join);
        match joined {
            Some(Err(panic)) => Some(panic_text(&panic)),
            _ => None,
        }
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// One epoch as the trainer sees it, for `loader.metrics`.
#[derive(Clone, Debug)]
struct EpochRun {
    epoch: u32,
    yielded: usize,
    images: usize,
    started: Instant,
    wait: Duration,
    workers: usize,
    skipped: usize,
}

/// The loader behind `flowload.Loader` (see its docstring in `flowload/__init__.py`).
#[pyclass(module = "flowload._flowload", name = "Loader")]
pub(crate) struct PyLoader {
    settings: Settings,
    records: Records,
    stats: Option<Stats>,
    per_epoch: usize,
    /// Where the next `begin` starts: `(epoch, batches to skip)`.
    resume: (u32, usize),
    stream: Option<Stream>,
    run: Option<EpochRun>,
    /// Every epoch iterated, as it ended: `metrics`, and the rows of `write_results`.
    done: Vec<EpochDone>,
    /// What the loop told `record`, by the results' epoch (from 1).
    recorded: BTreeMap<u32, Recorded>,
    /// The statistics pass, for every row.
    pass: PassFigures,
    /// The statistics cache: what `write_results` keys the data through.
    cache: CacheSetting,
    /// When the loader was made: the rows' `run_seconds` count from here.
    created: Instant,
    /// The process that made this loader: its threads exist there only.
    pid: u32,
    closed: bool,
}

#[pymethods]
impl PyLoader {
    #[new]
    #[pyo3(signature = (data, *, batch_size, shuffle, seed, drop_last, augment, normalize,
        workers, dtype, rank, world_size, split, on_bad_record, prefetch, stats_cache))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        data: String,
        batch_size: usize,
        shuffle: bool,
        seed: u64,
        drop_last: bool,
        augment: Vec<String>,
        normalize: bool,
        workers: String,
        dtype: String,
        rank: usize,
        world_size: usize,
        split: String,
        on_bad_record: String,
        prefetch: usize,
        stats_cache: Option<String>,
    ) -> PyResult<Self> {
        let workers: Workers = workers
            .parse()
            .map_err(|e: String| errors::config(format!("workers: {e}")))?;
        let on_bad_record: OnBadRecord = on_bad_record
            .parse()
            .map_err(|e: String| errors::config(format!("on_bad_record: {e}")))?;
        let dtype = Dtype::parse(&dtype)?;
        if dtype == Dtype::Uint8 && normalize {
            return Err(errors::config(
                "dtype='uint8' gives raw pixels: normalize them on the device with flowload.normalize(images, loader.stats), and pass normalize=False",
            ));
        }
        if split != "train" && split != "test" {
            return Err(errors::config(format!(
                "split: '{split}' is not a split: give train or test"
            )));
        }
        let settings = Settings {
            data,
            split,
            batch_size,
            shuffle,
            seed,
            drop_last,
            augment,
            dtype,
            rank,
            world_size,
            workers,
            prefetch,
            on_bad_record,
        };
        // As the binary's `--stats-cache DIR` / `--no-stats-cache`, else FLOWLOAD_STATS_CACHE.
        let off = stats_cache.as_deref() == Some("off");
        let cache = CacheSetting::from_flags(stats_cache.filter(|_| !off).map(Into::into), off);
        let created = Instant::now();
        let opened = py.detach(|| open(&settings, normalize, &cache));
        let (records, stats, pass) = opened.map_err(to_py)?;
        // Refuse what the core would refuse (rank, batch size) now, not at the first batch.
        check_settings(&settings, &records, stats.as_ref()).map_err(to_py)?;
        let per_epoch = builder(&settings, &records, stats.as_ref()).batches_per_epoch();
        Ok(PyLoader {
            settings,
            records,
            stats,
            per_epoch,
            resume: (0, 0),
            stream: None,
            run: None,
            done: vec![],
            recorded: BTreeMap::new(),
            pass,
            cache,
            created,
            pid: std::process::id(),
            closed: false,
        })
    }

    /// Batches per epoch.
    fn __len__(&self) -> usize {
        self.per_epoch
    }

    /// Starts the next epoch: the one after the last started, or the one `set_epoch` or
    /// `load_state` asked for, from the batch it asked for. Returns the epoch.
    fn begin(&mut self, py: Python<'_>) -> PyResult<u32> {
        self.usable()?;
        self.end_run(false);
        let (epoch, skip) = self.resume;
        let reuse = self
            .stream
            .as_ref()
            .is_some_and(|s| s.next == (epoch, skip));
        if !reuse {
            if let Some(old) = self.stream.take() {
                py.detach(|| old.stop());
            }
            self.stream = Some(self.start(epoch, skip)?);
        }
        self.run = Some(EpochRun {
            epoch,
            yielded: skip,
            images: 0,
            started: Instant::now(),
            wait: Duration::ZERO,
            workers: 0,
            skipped: 0,
        });
        self.resume = (epoch.saturating_add(1), 0);
        Ok(epoch)
    }

    /// The epoch's next batch, or `None` at its end.
    fn next(&mut self, py: Python<'_>) -> PyResult<Option<PyBatch>> {
        self.usable()?;
        let Some(run) = self.run.as_ref() else {
            return Ok(None);
        };
        if run.yielded >= self.per_epoch {
            self.end_run(true);
            return Ok(None);
        }
        let stream = self.stream.as_mut().expect("an epoch has a stream");
        let asked = Instant::now();
        let received = loop {
            let rx = &stream.rx;
            match py.detach(|| rx.recv_timeout(SIGNAL_POLL)) {
                Ok(item) => break Ok(item),
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(interrupt) = py.check_signals() {
                        break Err(interrupt);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let at = stream.next;
                    let why = self.stream.take().and_then(|s| py.detach(|| s.stop()));
                    self.end_run(false);
                    return Err(LoaderError::new_err(format!(
                        "the loader's feeder thread stopped before epoch {} batch {}: {}",
                        at.0,
                        at.1,
                        why.unwrap_or_else(|| "no panic reported".into())
                    )));
                }
            }
        };
        let waited = asked.elapsed();
        let (batch, workers) = match received {
            Ok((Ok(batch), workers)) => (batch, workers),
            Ok((Err(e), _)) => {
                self.abandon(py);
                return Err(to_py(e));
            }
            Err(interrupt) => {
                // Ctrl-C: stop every thread before the KeyboardInterrupt goes up.
                self.abandon(py);
                return Err(interrupt);
            }
        };
        let stream = self.stream.as_mut().expect("still running");
        stream.next = if batch.index + 1 == self.per_epoch {
            (batch.epoch.saturating_add(1), 0)
        } else {
            (batch.epoch, batch.index + 1)
        };
        let run = self.run.as_mut().expect("an epoch is running");
        run.yielded += 1;
        run.images += batch.rows();
        run.wait += waited;
        run.workers = workers;
        run.skipped += batch.skipped.len();
        Ok(Some(PyBatch::new(batch, self.settings.dtype)))
    }

    /// The next `begin` starts epoch `epoch` at its first batch.
    fn set_epoch(&mut self, epoch: u32) {
        self.resume = (epoch, 0);
    }

    /// `(epoch, batches given in it)`: where the trainer is. Between epochs, the next one at 0.
    fn position(&self) -> (u32, usize) {
        match &self.run {
            Some(run) if run.yielded < self.per_epoch => (run.epoch, run.yielded),
            Some(run) => (run.epoch.saturating_add(1), 0),
            None => self.resume,
        }
    }

    /// The next `begin` starts at batch `batches` of epoch `epoch`: a loaded state.
    fn resume_at(&mut self, epoch: u32, batches: usize) -> PyResult<()> {
        if batches > self.per_epoch {
            return Err(errors::config(format!(
                "the state says {batches} batches of epoch {epoch} were given, but an epoch has {}",
                self.per_epoch
            )));
        }
        self.end_run(false);
        self.resume = if batches == self.per_epoch {
            (epoch.saturating_add(1), 0)
        } else {
            (epoch, batches)
        };
        Ok(())
    }

    /// What decides the batches, as `{name: value}` strings: a state is for these only.
    fn fingerprint<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.settings;
        let d = PyDict::new(py);
        let shape = self.records.shape();
        d.set_item("data", self.records.origin())?;
        d.set_item("split", &s.split)?;
        d.set_item("records", self.records.len())?;
        d.set_item(
            "shape",
            format!("{}x{}x{}", shape.channels, shape.height, shape.width),
        )?;
        d.set_item("batch_size", s.batch_size)?;
        d.set_item("shuffle", s.shuffle)?;
        d.set_item("seed", s.seed)?;
        d.set_item("drop_last", s.drop_last)?;
        d.set_item(
            "augment",
            Transforms::new(&s.augment, s.seed)
                .map_err(to_py)?
                .canonical(),
        )?;
        d.set_item(
            "normalize",
            self.stats
                .as_ref()
                .map(|st| format!("mean {:?} std {:?}", st.mean, st.std)),
        )?;
        d.set_item("dtype", s.dtype.name())?;
        d.set_item("rank", s.rank)?;
        d.set_item("world_size", s.world_size)?;
        Ok(d)
    }

    /// `{"mean": [...], "std": [...], "images": n}`, or `None` without normalization.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(st) = &self.stats else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("mean", st.mean.clone())?;
        d.set_item("std", st.std.clone())?;
        d.set_item("images", st.images)?;
        Ok(Some(d))
    }

    /// Each finished (or abandoned) epoch's figures, oldest first, with what `record` added.
    #[getter]
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.done
            .iter()
            .map(|done| {
                let row = results::with_recorded(&done.row, &self.recorded);
                let d = PyDict::new(py);
                d.set_item("epoch", row.epoch - 1)?;
                d.set_item("batches", done.batches)?;
                d.set_item("images", row.images)?;
                d.set_item("seconds", row.epoch_seconds)?;
                d.set_item("images_per_second", row.images_per_second)?;
                d.set_item("data_wait_seconds", row.data_wait_seconds)?;
                d.set_item(
                    "data_wait_fraction",
                    row.data_wait_seconds / row.epoch_seconds.max(1e-9),
                )?;
                d.set_item("workers", row.workers)?;
                d.set_item("skipped", row.skipped_records)?;
                d.set_item("finished", done.finished)?;
                for (key, value) in [
                    ("loss", row.loss),
                    ("accuracy", row.accuracy),
                    ("test_loss", row.test_loss),
                    ("test_accuracy", row.test_accuracy),
                ] {
                    if let Some(v) = value {
                        d.set_item(key, v)?;
                    }
                }
                Ok(d)
            })
            .collect()
    }

    /// Adds the loop's own figures to epoch `epoch` (default: the one being iterated, else the
    /// last): they go into `metrics` and the results' columns of the same names.
    #[pyo3(signature = (epoch=None, *, loss=None, accuracy=None, test_loss=None,
        test_accuracy=None, eval_seconds=None))]
    fn record(
        &mut self,
        epoch: Option<u32>,
        loss: Option<f64>,
        accuracy: Option<f64>,
        test_loss: Option<f64>,
        test_accuracy: Option<f64>,
        eval_seconds: Option<f64>,
    ) -> PyResult<()> {
        let epoch = epoch
            .or_else(|| self.run.as_ref().map(|r| r.epoch))
            .or_else(|| self.done.last().map(|d| d.row.epoch - 1))
            .ok_or_else(|| errors::config("record: no epoch has been iterated yet; give epoch="))?;
        self.recorded
            .entry(epoch.saturating_add(1))
            .or_default()
            .update(Recorded {
                loss,
                accuracy,
                test_loss,
                test_accuracy,
                eval_seconds,
            });
        Ok(())
    }

    /// Writes the finished epochs as flowload's run file `<out>/runs/run-NNNN.parquet`; returns
    /// its path.
    #[pyo3(signature = (out, *, run, model, optimizer, lr, device))]
    #[allow(clippy::too_many_arguments)]
    fn write_results(
        &self,
        py: Python<'_>,
        out: PathBuf,
        run: Option<u32>,
        model: String,
        optimizer: Option<String>,
        lr: Option<f64>,
        device: String,
    ) -> PyResult<PathBuf> {
        let s = &self.settings;
        let config = serde_json::json!({
            "source": "python",
            "data": s.data,
            "split": s.split,
            "batch_size": s.batch_size,
            "shuffle": s.shuffle,
            "seed": s.seed,
            "drop_last": s.drop_last,
            "augment": s.augment,
            "normalize": self.stats.is_some(),
            "dtype": s.dtype.name(),
            "workers": s.workers.to_string(),
            "prefetch": s.prefetch,
            "on_bad_record": s.on_bad_record.name(),
            "rank": s.rank,
            "world_size": s.world_size,
            "model": model,
            "optimizer": optimizer,
            "lr": lr,
            "device": device,
        });
        // The run's number is `write`'s to choose.
        let params = RunParams {
            run: 0,
            model,
            optimizer: optimizer
                .and_then(|name| name.parse().ok())
                .unwrap_or(OptimizerKind::Other),
            lr: lr.unwrap_or(f64::NAN),
            batch_size: s.batch_size,
            workers: s.workers,
            device,
            normalize: self.stats.is_some(),
            seed: s.seed,
            processes: s.world_size as u32,
            repeat: 1,
        };
        let (config, rows) = (
            config.to_string(),
            results::rows(&self.done, &self.recorded),
        );
        py.detach(|| {
            let store = self.cache.open();
            results::write(
                &out,
                run,
                &params,
                &config,
                &self.records,
                store.as_ref(),
                &rows,
            )
        })
        .map_err(to_py)
    }

    /// `(channels, height, width)` of every image.
    #[getter]
    fn shape(&self) -> (usize, usize, usize) {
        let s = self.records.shape();
        (s.channels, s.height, s.width)
    }

    /// Records in the split (before sharding).
    #[getter]
    fn records(&self) -> usize {
        self.records.len()
    }

    /// Decode threads per the setting (`auto` resolves as it runs).
    #[getter]
    fn workers_setting(&self) -> String {
        self.settings.workers.to_string()
    }

    /// Stops the workers; the loader cannot be iterated again. Tensors already handed out stay
    /// valid.
    fn close(&mut self, py: Python<'_>) {
        if std::process::id() != self.pid {
            self.forget_in_child();
            return;
        }
        self.end_run(false);
        if let Some(s) = self.stream.take() {
            py.detach(|| s.stop());
        }
        self.closed = true;
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.closed
    }
}

impl PyLoader {
    fn usable(&mut self) -> PyResult<()> {
        if std::process::id() != self.pid {
            self.forget_in_child();
            return Err(LoaderError::new_err(format!(
                "this flowload.Loader was made in process {} and used in process {} after a fork: its worker threads exist only in the first. Make the Loader in the process that iterates it (flowload decodes on its own threads: it needs no DataLoader worker processes)",
                self.pid,
                std::process::id()
            )));
        }
        if self.closed {
            return Err(LoaderError::new_err(
                "this flowload.Loader is closed: make a new one",
            ));
        }
        Ok(())
    }

    /// After a fork the feeder and the workers are not in this process: joining them would
    /// wait forever, so their handles are let go without a join.
    fn forget_in_child(&mut self) {
        if let Some(s) = self.stream.take() {
            std::mem::forget(s);
        }
    }

    fn start(&self, epoch: u32, skip: usize) -> PyResult<Stream> {
        let builder = builder(&self.settings, &self.records, self.stats.as_ref())
            .epochs(RUN_EPOCHS)
            .start_at(Position { epoch, batch: skip });
        // One batch handed over at a time: the core's queues hold the prefetched ones.
        let stopper = builder.stopper();
        let (tx, rx) = bounded(1);
        let thread = std::thread::Builder::new()
            .name("flowload-feeder".into())
            .spawn(move || feed(builder, tx))
            .map_err(|e| LoaderError::new_err(format!("cannot start the feeder thread: {e}")))?;
        Ok(Stream {
            rx,
            thread: Some(thread),
            next: (epoch, skip),
            stopper,
        })
    }

    /// Ends the epoch being iterated, recording its figures; `finished` when it ran to its end.
    fn end_run(&mut self, finished: bool) {
        let Some(run) = self.run.take() else { return };
        let seconds = run.started.elapsed().as_secs_f64();
        let wait = run.wait.as_secs_f64();
        let mut row = EpochMetrics::missing();
        row.epoch = run.epoch.saturating_add(1);
        row.epoch_seconds = seconds;
        row.run_seconds = self.created.elapsed().as_secs_f64();
        row.images = run.images as u64;
        row.workers = run.workers as u32;
        row.skipped_records = run.skipped as u64;
        row.images_per_second = run.images as f64 / seconds.max(1e-9);
        row.data_wait_seconds = wait;
        row.compute_seconds = (seconds - wait).max(0.0);
        row.stats_seconds = self.pass.seconds;
        row.stats_source = Some(self.pass.report.source);
        row.stats_shards = self.pass.report.parts;
        row.stats_shards_decoded = self.pass.report.decoded;
        // flowload writes no checkpoint of a Python run: the loop's own state is the loop's.
        row.checkpoint_seconds = 0.0;
        row.checkpoint_share = 0.0;
        self.done.push(EpochDone {
            row,
            batches: run.yielded,
            finished,
        });
    }

    /// Drops the stream after an error or an interrupt: no thread is left running.
    fn abandon(&mut self, py: Python<'_>) {
        self.end_run(false);
        if let Some(s) = self.stream.take() {
            py.detach(|| s.stop());
        }
    }
}

impl Drop for PyLoader {
    fn drop(&mut self) {
        if std::process::id() != self.pid {
            self.forget_in_child();
        } else if let Some(s) = self.stream.take() {
            s.stop();
        }
    }
}

/// The feeder thread: builds the core loader here (it need not be `Send`) and hands its batches
/// over until the run ends or the receiver is gone.
fn feed(builder: LoaderBuilder, tx: Sender<(flowload_core::Result<Batch>, usize)>) {
    let mut loader: Loader = match builder.build() {
        Ok(l) => l,
        Err(e) => {
            let _ = tx.send((Err(e), 0));
            return;
        }
    };
    while let Some(item) = loader.next() {
        let failed = item.is_err();
        if tx.send((item, loader.workers())).is_err() || failed {
            return;
        }
    }
}

/// What the core refuses (a batch size of 0, no batch, a rank without rows): checked by making,
/// and at once dropping, an inline loader, which builds nothing until asked.
fn check_settings(
    s: &Settings,
    records: &Records,
    stats: Option<&Stats>,
) -> flowload_core::Result<()> {
    builder(s, records, stats)
        .epochs(1)
        .workers(0)
        .build()
        .map(drop)
}

/// Opens the split and, when asked, its statistics (through the cache).
fn open(
    s: &Settings,
    normalize: bool,
    cache: &CacheSetting,
) -> flowload_core::Result<(Records, Option<Stats>, PassFigures)> {
    let t = Transforms::new(&s.augment, s.seed)?;
    let options = DatasetOptions {
        train_transforms: t.clone(),
        test_transforms: t,
        ..DatasetOptions::default()
    };
    let records = if s.split == "train" {
        Dataset::open(&s.data, &options)?.train
    } else {
        match Dataset::open(&s.data, &options)?.test {
            Some(test) => test,
            None => {
                return Err(flowload_core::Error::Config(format!(
                    "split='test': {} has no test split",
                    s.data
                )));
            }
        }
    };
    if !normalize {
        return Ok((records, None, PassFigures::default()));
    }
    let started = Instant::now();
    let store = cache.open();
    let outcome = Stats::pass(&records)
        .workers(cores())
        .on_bad_record(s.on_bad_record)
        .store(store.as_ref())
        .run()?;
    outcome.stats.check_variance(records.origin())?;
    let pass = PassFigures {
        seconds: started.elapsed().as_secs_f64(),
        report: outcome.report,
    };
    Ok((records, Some(outcome.stats), pass))
}

fn builder(s: &Settings, records: &Records, stats: Option<&Stats>) -> LoaderBuilder {
    let b = Loader::builder(records.clone())
        .batch_size(s.batch_size)
        .shuffle(s.shuffle.then_some(s.seed))
        .drop_last(s.drop_last)
        .workers(s.workers)
        .prefetch(s.prefetch)
        .on_bad_record(s.on_bad_record)
        .shard(s.rank, s.world_size)
        .normalize(stats);
    match s.dtype {
        Dtype::Float32 => b,
        Dtype::Uint8 => b.raw_pixels(true),
    }
}
