//! Loaders: the batches of a run, in order — epoch 0 batch 0, 0/1, …, then epoch 1 — the same
//! sequence for every worker count and process layout. One mode per file:
//!
//! - [`inline`]: the consumer's thread builds each batch when asked (PyTorch's `num_workers=0`);
//! - [`threads`]: N timely worker threads build batches ahead into bounded queues;
//! - [`auto`]: `--workers auto`, the count of active threads tuned by [`tune`] as it runs;
//! - a cluster's trainer receives them from every process (`cluster::loader`).
//!
//! Each is a [`BatchStream`]; a sink takes any of them as a [`Loader`]. The statistics pass,
//! which runs before a loader, is in [`stats`].

pub mod auto;
pub mod inline;
pub mod stats;
pub mod threads;
pub mod tune;

use crate::config::Workers;
use crate::error::{Error, Result};
use crate::ops::batch::Batch;
use crate::ops::decode::OnBadRecord;
use crate::ops::normalize::Normalizer;
use crate::ops::plan::EpochOrder;
use crate::ops::wire::WireFormat;
use crate::source::Records;

pub use auto::AutoLoader;
pub use inline::InlineLoader;
pub use stats::compute_stats;
pub use threads::ThreadLoader;
pub use tune::{Limits, Settled, Tuning};

/// How batches are produced.
#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub order: EpochOrder,
    pub epochs: u32,
    /// 0: the consumer's thread builds each batch when asked (PyTorch's `num_workers=0`).
    /// N ≥ 1: N timely worker threads build batches ahead, into queues of `prefetch` each.
    /// `auto`: up to `limits` threads, of which the controller keeps some active.
    pub workers: Workers,
    /// What `auto` may use (unused at a fixed count).
    pub limits: Limits,
    pub prefetch: usize,
    pub on_bad_record: OnBadRecord,
    /// How batches built in other processes travel to the trainer (cluster mode only).
    pub wire: WireFormat,
}

/// A run's batches in order, whichever mode builds them.
pub trait BatchStream: Iterator<Item = Result<Batch>> {
    fn batches_per_epoch(&self) -> usize;
    /// Decode workers building batches now (per process in a cluster).
    fn workers(&self) -> usize;
    /// Where `--workers auto` is; `None` at a fixed count.
    fn tuning(&self) -> Option<Tuning> {
        None
    }
}

/// What a sink consumes: any loader.
pub type Loader = Box<dyn BatchStream>;

/// The loader for one process: inline at `workers = 0`, worker threads above, tuned at `auto`.
pub fn new(records: Records, normalizer: Normalizer, config: LoaderConfig) -> Result<Loader> {
    Ok(match config.workers {
        Workers::Fixed(0) => Box::new(InlineLoader::new(records, normalizer, config)?),
        Workers::Fixed(n) => Box::new(ThreadLoader::new(records, normalizer, config, n)?),
        Workers::Auto => {
            let limits = config.limits;
            Box::new(AutoLoader::new(records, normalizer, config, limits)?)
        }
    })
}

/// Where a loader is in its run: which batch comes next.
#[derive(Clone, Copy, Debug)]
pub struct Cursor {
    per_epoch: usize,
    total: usize,
    next: usize,
}

impl Cursor {
    pub fn new(config: &LoaderConfig) -> Cursor {
        let per_epoch = config.order.batches_per_epoch();
        Cursor {
            per_epoch,
            total: per_epoch * config.epochs as usize,
            next: 0,
        }
    }
    pub fn per_epoch(&self) -> usize {
        self.per_epoch
    }
    /// The next batch's `(epoch, index)`, or `None` after the last.
    pub fn advance(&mut self) -> Option<(u32, usize)> {
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
    pub fn stop(&mut self) {
        self.next = self.total;
    }
    pub fn finished(&self) -> bool {
        self.next >= self.total
    }
}

/// What every loader needs: records, and batches of at least one.
pub fn check_config(records: &Records, config: &LoaderConfig) -> Result<()> {
    records.check_not_empty()?;
    if config.order.batch_size == 0 {
        return Err(Error::Config("batch size must be at least 1".into()));
    }
    if config.order.batches_per_epoch() == 0 {
        return Err(Error::Config(format!(
            "batch size {} with drop_last leaves no batch: {} has {} records",
            config.order.batch_size,
            records.origin(),
            records.len()
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
pub fn batch_priority() {
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
pub fn stopped_early(what: String, results: Vec<Result<(), String>>) -> Error {
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

/// Every record of `records` once, in file order, built on this thread: the evaluation batches.
pub fn batches_in_order(
    records: &Records,
    normalizer: &Normalizer,
    batch_size: usize,
    on_bad_record: OnBadRecord,
) -> Result<Vec<Batch>> {
    let order = EpochOrder {
        records: records.len(),
        batch_size,
        drop_last: false,
        shuffle: None,
        blocks: records.blocks(),
        window: records.window(),
    };
    let config = LoaderConfig {
        order,
        epochs: 1,
        workers: Workers::Fixed(0),
        limits: Limits {
            cores: 1,
            memory: 1,
        },
        prefetch: 1,
        on_bad_record,
        wire: WireFormat::Raw,
    };
    InlineLoader::new(records.clone(), normalizer.clone(), config)?.collect()
}
