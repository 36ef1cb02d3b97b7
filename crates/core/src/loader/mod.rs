//! Loaders: the batches of a run, in order — epoch 0 batch 0, 0/1, …, then epoch 1 — the same
//! sequence for every worker count and process layout. [`Loader::builder`] is the way in; it
//! picks one mode, each in its own file:
//!
//! - `inline`: the consumer's thread builds each batch when asked (PyTorch's `num_workers=0`);
//! - `threads`: N timely worker threads build batches ahead into bounded queues;
//! - `auto`: `--workers auto`, the count of active threads tuned by `tune` as it runs;
//! - `cluster`: a cluster's trainer receives them from every process, which `serve` them.
//!
//! The statistics pass, which runs before a loader when it normalizes, is in `stats`
//! ([`crate::Stats::pass`]).

pub(crate) mod auto;
pub(crate) mod cluster;
pub(crate) mod inline;
pub(crate) mod stats;
pub(crate) mod threads;
pub(crate) mod tune;

use serde::{Deserialize, Serialize};

use crate::cluster::Session;
use crate::error::{Error, OnBadRecord, Result};
use crate::machine::{cores, physical_memory};
use crate::ops::batch::Batch;
use crate::ops::decode::Stopper;
use crate::ops::normalize::Normalizer;
use crate::ops::plan::{EpochOrder, Shard, sequence};
use crate::ops::wire::WireFormat;
pub use crate::position::Position;
use crate::source::Records;
use crate::stats::Stats;

use auto::AutoLoader;
use cluster::ClusterLoader;
use inline::InlineLoader;
use threads::ThreadLoader;
pub use tune::{Limits, Settled, Tuning};

/// A worker count: fixed, or tuned while the run goes (`auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workers {
    /// This many decode threads; 0 builds batches on the consumer's thread.
    Fixed(usize),
    /// Start with one decode thread and tune the count while the run goes.
    Auto,
}

impl Workers {
    /// `fixed` or `auto`: the `workers_mode` column.
    pub fn mode(self) -> &'static str {
        match self {
            Workers::Fixed(_) => "fixed",
            Workers::Auto => "auto",
        }
    }
    /// Threads where a count must be known before the run (a statistics pass, which has no
    /// trainer beside it; a cluster's processes, which must agree): the fixed count, or for
    /// `auto` the `cores` given.
    pub fn resolve(self, cores: usize) -> usize {
        match self {
            Workers::Fixed(n) => n,
            Workers::Auto => cores,
        }
    }
}

impl From<usize> for Workers {
    fn from(n: usize) -> Workers {
        Workers::Fixed(n)
    }
}

impl std::fmt::Display for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Workers::Fixed(n) => f.pad(&n.to_string()),
            Workers::Auto => f.pad("auto"),
        }
    }
}

impl std::str::FromStr for Workers {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "auto" => Ok(Workers::Auto),
            n => n.parse().map(Workers::Fixed).map_err(|_| {
                format!("'{n}' is not a worker count: give a non-negative integer or auto")
            }),
        }
    }
}

impl Serialize for Workers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Workers::Fixed(n) => s.serialize_u64(*n as u64),
            Workers::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Count;
        impl serde::de::Visitor<'_> for Count {
            type Value = Workers;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a worker count: a non-negative integer or \"auto\"")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> std::result::Result<Workers, E> {
                Ok(Workers::Fixed(n as usize))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> std::result::Result<Workers, E> {
                u64::try_from(n)
                    .map(|n| Workers::Fixed(n as usize))
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(n), &self))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<Workers, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Count)
    }
}

/// A run's batches in order, whichever mode builds them: an iterator of `Result<Batch>`.
/// Made by [`Loader::builder`]. Dropping it stops its workers.
///
/// ```
/// use flowload_core::{Dataset, Loader, Stats, Workers};
///
/// let data = Dataset::open("synthetic:images=100,size=8x8", &Default::default())?;
/// let stats = Stats::pass(&data.train).run()?.stats;
/// let loader = Loader::builder(data.train.clone())
///     .batch_size(32)
///     .shuffle(7)
///     .drop_last(true)
///     .epochs(2)
///     .workers(Workers::Fixed(2))
///     .normalize(&stats)
///     .build()?;
/// assert_eq!(loader.batches_per_epoch(), 3);
/// let mut batches = 0;
/// for batch in loader {
///     let batch = batch?;
///     assert_eq!(batch.images().len(), 32 * 8 * 8); // [32, 1, 8, 8], f32, contiguous
///     assert_eq!(batch.labels().len(), 32);
///     batches += 1;
/// }
/// assert_eq!(batches, 6);
/// # Ok::<(), flowload_core::Error>(())
/// ```
pub struct Loader {
    stream: Box<dyn BatchStream>,
}

impl Loader {
    /// Starts a loader over `records` with PyTorch's `DataLoader` defaults: batches of 1, file
    /// order, the last partial batch kept, one epoch, built on the consumer's thread, 2
    /// batches prefetched per worker, `x/255` without normalization, bad records failing.
    pub fn builder(records: Records) -> LoaderBuilder {
        LoaderBuilder {
            records,
            batch_size: 1,
            shuffle: None,
            drop_last: false,
            epochs: 1,
            workers: Workers::Fixed(0),
            prefetch: 2,
            stats: None,
            on_bad_record: OnBadRecord::Fail,
            wire: WireFormat::Raw,
            auto_cores: None,
            auto_memory: None,
            cluster: None,
            shard: Shard::default(),
            start: (0, 0),
            raw_pixels: false,
            stopper: Stopper::default(),
        }
    }

    /// Batches in each epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.stream.batches_per_epoch()
    }

    /// Decode workers building batches now (per process in a cluster).
    pub fn workers(&self) -> usize {
        self.stream.workers()
    }

    /// Where `--workers auto` is; `None` at a fixed count.
    pub fn tuning(&self) -> Option<Tuning> {
        self.stream.tuning()
    }
}

impl Iterator for Loader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        self.stream.next()
    }
}

/// A [`Loader`]'s settings, each with PyTorch's default until set ([`Loader::builder`]).
pub struct LoaderBuilder {
    records: Records,
    batch_size: usize,
    shuffle: Option<u64>,
    drop_last: bool,
    epochs: u32,
    workers: Workers,
    prefetch: usize,
    stats: Option<Stats>,
    on_bad_record: OnBadRecord,
    wire: WireFormat,
    auto_cores: Option<usize>,
    auto_memory: Option<u64>,
    cluster: Option<Session>,
    shard: Shard,
    start: (u32, usize),
    raw_pixels: bool,
    stopper: Stopper,
}

impl LoaderBuilder {
    /// Images per batch (PyTorch's `batch_size`). Default 1.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Shuffles each epoch from `(seed, epoch)` (`shuffle=True` with a seeded generator);
    /// `None` reads records in file order, the default. Parquet shards are shuffled block by
    /// block: row groups in a seeded order, then within windows of rows.
    pub fn shuffle(mut self, seed: impl Into<Option<u64>>) -> Self {
        self.shuffle = seed.into();
        self
    }

    /// Drops each epoch's last partial batch (PyTorch's `drop_last`). Default false.
    pub fn drop_last(mut self, drop: bool) -> Self {
        self.drop_last = drop;
        self
    }

    /// Epochs the loader runs; each has its own order. Default 1.
    pub fn epochs(mut self, n: u32) -> Self {
        self.epochs = n;
        self
    }

    /// Decode workers (PyTorch's `num_workers`): 0 builds each batch on the consumer's thread
    /// when asked, N ≥ 1 runs N threads ahead, [`Workers::Auto`] tunes the count as it runs.
    /// The batches are the same at every count. Default 0.
    pub fn workers(mut self, workers: impl Into<Workers>) -> Self {
        self.workers = workers.into();
        self
    }

    /// Batches each worker builds ahead (PyTorch's `prefetch_factor`). Default 2.
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = n;
        self
    }

    /// Normalizes each channel as `(x/255 − mean)/std` with these statistics; `None` gives
    /// `x/255` alone (ToTensor), the default.
    pub fn normalize<'a>(mut self, stats: impl Into<Option<&'a Stats>>) -> Self {
        self.stats = stats.into().cloned();
        self
    }

    /// What to do with a record that cannot be decoded. Default: fail, naming it.
    pub fn on_bad_record(mut self, policy: OnBadRecord) -> Self {
        self.on_bad_record = policy;
        self
    }

    /// How batches travel from other processes of a cluster. Default raw u8 pixels.
    pub fn wire(mut self, wire: WireFormat) -> Self {
        self.wire = wire;
        self
    }

    /// The cores [`Workers::Auto`] may fill with workers: those the trainer leaves. Default
    /// every core.
    pub fn auto_cores(mut self, cores: usize) -> Self {
        self.auto_cores = Some(cores);
        self
    }

    /// The memory [`Workers::Auto`] may fill with batches in flight, in bytes (each worker has
    /// `prefetch + 1` of [`LoaderBuilder::batch_bytes`]). Default a quarter of the machine's.
    pub fn auto_memory(mut self, bytes: u64) -> Self {
        self.auto_memory = Some(bytes);
        self
    }

    /// Runs across a cluster: `session` is one announced by process 0 for these epochs, and
    /// every process decodes its share with the threads it announced. On process 0,
    /// [`LoaderBuilder::build`] receives the batches in order; the others
    /// [`LoaderBuilder::serve`] them.
    pub fn cluster(mut self, session: Session) -> Self {
        self.cluster = Some(session);
        self
    }

    /// Data-parallel training: this process is rank `rank` of `world_size`, and each of its
    /// batches is its slice of the batch one process would build, rows
    /// `len·rank/world_size .. len·(rank+1)/world_size`. The slices of all ranks, in rank order,
    /// are that batch, augmentation included. `batch_size` stays the global batch. Default
    /// rank 0 of 1.
    pub fn shard(mut self, rank: usize, world_size: usize) -> Self {
        self.shard = Shard {
            rank,
            world: world_size,
        };
        self
    }

    /// Starts the run at `position` instead of its first batch: the batches are the ones the
    /// whole run gives from there, bit for bit. Resuming a run (a checkpoint's position, a
    /// Python loader's state), or one epoch of it (`epochs(epoch + 1)`). Default the start.
    pub fn start_at(mut self, position: Position) -> Self {
        self.start = (position.epoch, position.batch);
        self
    }

    /// Hands out the decoded, augmented pixels as they are — `image: FixedSizeList<UInt8>`, read
    /// with [`Batch::pixels`] — for a trainer that normalizes on its device after a copy a
    /// quarter the size of f32 (DALI's and FFCV's way). Not with [`LoaderBuilder::normalize`],
    /// nor in a cluster. Default false.
    pub fn raw_pixels(mut self, raw: bool) -> Self {
        self.raw_pixels = raw;
        self
    }

    /// The loader's off switch, for another thread: once stopped, its workers give up the
    /// batches they are building at their next record (a consumer that is going away need not
    /// wait for whole batches), and every batch from then on is an error.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Batches per epoch these settings give.
    pub fn batches_per_epoch(&self) -> usize {
        self.order().batches_per_epoch()
    }

    /// Bytes one batch holds while it is built: its u8 pixels and its f32 values.
    pub fn batch_bytes(&self) -> u64 {
        (self.batch_size.min(self.records.len()) as u64)
            .saturating_mul(self.records.shape().len() as u64 * 5)
    }

    /// Starts the loader: its workers begin at once. Errors: no records, a batch size of 0, no
    /// batch at all (`drop_last` with fewer records than a batch), a start outside the run, a
    /// rank without a row of some batch, raw pixels with normalization, or a cluster setting
    /// the session cannot run.
    pub fn build(self) -> Result<Loader> {
        let normalizer = self.normalizer()?;
        let (records, config, cluster) = self.into_parts();
        let stream: Box<dyn BatchStream> = match (cluster, config.workers) {
            (Some(session), _) => {
                let threads = session.threads();
                Box::new(ClusterLoader::new(
                    records, normalizer, config, session, threads,
                )?)
            }
            (None, Workers::Fixed(0)) => Box::new(InlineLoader::new(records, normalizer, config)?),
            (None, Workers::Fixed(n)) => {
                Box::new(ThreadLoader::new(records, normalizer, config, n)?)
            }
            (None, Workers::Auto) => Box::new(AutoLoader::new(records, normalizer, config)?),
        };
        Ok(Loader { stream })
    }

    /// A cluster's processes 1..: builds this process's share of the epochs announced in the
    /// [`LoaderBuilder::cluster`] session, sends them to process 0, and returns once the run
    /// is over, with where `--workers auto` settled here.
    pub fn serve(self) -> Result<Option<Tuning>> {
        let normalizer = self.normalizer()?;
        let (records, config, cluster) = self.into_parts();
        let session = cluster.ok_or_else(|| {
            Error::Config("serving batches needs a cluster session (LoaderBuilder::cluster)".into())
        })?;
        let threads = session.threads();
        cluster::serve(records, normalizer, config, session, threads)
    }

    /// Every record once, in file order, built on this thread: evaluation batches.
    pub fn collect_in_order(self) -> Result<Vec<Batch>> {
        self.shuffle(None)
            .drop_last(false)
            .epochs(1)
            .workers(0)
            .build()?
            .collect()
    }

    fn order(&self) -> EpochOrder {
        EpochOrder {
            records: self.records.len(),
            batch_size: self.batch_size,
            drop_last: self.drop_last,
            shuffle: self.shuffle,
            blocks: self.records.blocks(),
            window: self.records.window(),
            shard: self.shard,
        }
    }

    fn normalizer(&self) -> Result<Normalizer> {
        let channels = self.records.shape().channels;
        if !self.raw_pixels {
            return Ok(Normalizer::new(self.stats.as_ref(), channels));
        }
        if self.stats.is_some() || self.cluster.is_some() {
            return Err(Error::Config(
                "raw pixels are handed out as decoded: not normalized, and not across a cluster (whose wire normalizes)".into(),
            ));
        }
        Ok(Normalizer::raw(channels))
    }

    /// What `auto` may use: the cores given, and the workers whose batches in flight (`prefetch
    /// + 1` each) fit in the memory given.
    fn limits(&self) -> Limits {
        let budget = self
            .auto_memory
            .unwrap_or_else(|| physical_memory().map_or(4 << 30, |m| m / 4));
        let per_worker = self
            .batch_bytes()
            .max(1)
            .saturating_mul(self.prefetch.max(1) as u64 + 1);
        Limits {
            cores: self.auto_cores.unwrap_or_else(cores).max(1),
            memory: ((budget / per_worker) as usize).max(1),
        }
    }

    fn into_parts(self) -> (Records, LoaderConfig, Option<Session>) {
        let order = self.order();
        let config = LoaderConfig {
            start: self.start,
            order,
            epochs: self.epochs,
            workers: self.workers,
            limits: self.limits(),
            prefetch: self.prefetch,
            on_bad_record: self.on_bad_record,
            wire: self.wire,
            stopper: self.stopper,
        };
        (self.records, config, self.cluster)
    }
}

/// How a mode produces batches: what the builder hands it.
#[derive(Clone, Debug)]
pub(crate) struct LoaderConfig {
    pub(crate) order: EpochOrder,
    pub(crate) epochs: u32,
    /// The first batch of the run, `(epoch, index)`.
    pub(crate) start: (u32, usize),
    /// 0: the consumer's thread builds each batch when asked (PyTorch's `num_workers=0`).
    /// N ≥ 1: N timely worker threads build batches ahead, into queues of `prefetch` each.
    /// `auto`: up to `limits` threads, of which the controller keeps some active.
    pub(crate) workers: Workers,
    /// What `auto` may use (unused at a fixed count).
    pub(crate) limits: Limits,
    pub(crate) prefetch: usize,
    pub(crate) on_bad_record: OnBadRecord,
    /// How batches built in other processes travel to the trainer (cluster mode only).
    pub(crate) wire: WireFormat,
    /// Stops the workers mid-batch ([`LoaderBuilder::stopper`]).
    pub(crate) stopper: Stopper,
}

/// A run's batches in order, whichever mode builds them.
pub(crate) trait BatchStream: Iterator<Item = Result<Batch>> {
    fn batches_per_epoch(&self) -> usize;
    /// Decode workers building batches now (per process in a cluster).
    fn workers(&self) -> usize;
    /// Where `--workers auto` is; `None` at a fixed count.
    fn tuning(&self) -> Option<Tuning> {
        None
    }
}

/// Where a loader is in its run: which batch comes next.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor {
    per_epoch: usize,
    total: usize,
    next: usize,
}

impl Cursor {
    pub(crate) fn new(config: &LoaderConfig) -> Cursor {
        let per_epoch = config.order.batches_per_epoch();
        Cursor {
            per_epoch,
            total: per_epoch * config.epochs as usize,
            next: config.first() as usize,
        }
    }
    pub(crate) fn per_epoch(&self) -> usize {
        self.per_epoch
    }
    /// The next batch's `(epoch, index)`, or `None` after the last.
    pub(crate) fn advance(&mut self) -> Option<(u32, usize)> {
        if self.next >= self.total {
            return None;
        }
        let at = (
            (self.next / self.per_epoch) as u32,
            self.next % self.per_epoch,
        );
        self.next += 1;
        Some(at)
    }
    /// Ends the run early: every later call of [`Cursor::advance`] is `None`.
    pub(crate) fn stop(&mut self) {
        self.next = self.total;
    }
    pub(crate) fn finished(&self) -> bool {
        self.next >= self.total
    }
}

impl LoaderConfig {
    /// The run position ([`sequence`]) of the first batch.
    pub(crate) fn first(&self) -> u64 {
        sequence(&self.order, self.start.0, self.start.1)
    }
}

/// What every loader needs: records, batches of at least one, a start inside the run, and
/// a row of every batch for every rank.
pub(crate) fn check_config(records: &Records, config: &LoaderConfig) -> Result<()> {
    records.check_not_empty()?;
    let order = &config.order;
    if order.batch_size == 0 {
        return Err(Error::Config("batch size must be at least 1".into()));
    }
    let per_epoch = order.batches_per_epoch();
    if per_epoch == 0 {
        return Err(Error::Config(format!(
            "batch size {} with drop_last leaves no batch: {} has {} records",
            order.batch_size,
            records.origin(),
            records.len()
        )));
    }
    let (epoch, index) = config.start;
    if index >= per_epoch || epoch >= config.epochs.max(1) {
        return Err(Error::Config(format!(
            "start at epoch {epoch} batch {index} is outside the run: {} epoch(s) of {per_epoch} batches",
            config.epochs
        )));
    }
    let Shard { rank, world } = order.shard;
    if world == 0 || rank >= world {
        return Err(Error::Config(format!(
            "rank {rank} of world size {world}: the rank must be below the world size, which must be at least 1"
        )));
    }
    let last = match records.len() % order.batch_size {
        0 => order.batch_size,
        _ if order.drop_last => order.batch_size,
        partial => partial,
    };
    if last.min(order.batch_size) < world {
        return Err(Error::Config(format!(
            "a batch of {last} records cannot be split across {world} ranks: give a batch size of at least {world}{}",
            if last < order.batch_size {
                " and drop_last, or a record count whose last batch has a row for every rank"
            } else {
                ""
            }
        )));
    }
    Ok(())
}

/// Marks the calling (worker) thread as a batch thread for the Linux scheduler.
///
/// Measured on 2 cores: without it, every `recv` that frees a queue slot wakes the parked
/// worker, the kernel preempts the trainer in favour of the freshly woken thread, and the
/// trainer waits ~0.8 ms (one batch build) inside `recv` although the queue was full —
/// about 1.5% of a Fashion-MNIST epoch. `SCHED_BATCH` threads do not preempt on wake-up; the
/// worker builds its batch in its fair share of CPU while the trainer computes.
pub(crate) fn batch_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: plain syscall on the calling thread (pid 0) with a valid parameter block.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if rc != 0 {
            tracing::debug!("SCHED_BATCH not set: {}", std::io::Error::last_os_error());
        }
    }
}

/// The loader's error when its workers stopped before `what`, with their panics if any.
pub(crate) fn stopped_early(what: String, results: Vec<Result<(), String>>) -> Error {
    let why = results
        .into_iter()
        .filter_map(|r| r.err())
        .collect::<Vec<_>>()
        .join("; ");
    Error::Dataflow(format!(
        "{what} ({})",
        if why.is_empty() {
            "no panic reported"
        } else {
            &why
        }
    ))
}
