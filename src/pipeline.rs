//! The one place the operators are wired together: the statistics pass, and the epoch stream
//! `plan → decode → normalize → batch → queue` that a [`Loader`] hands to the consumer — or, in
//! a cluster, `gated plan → decode → wire → deliver` across processes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use timely::communication::WorkerGuards;
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::capture::{Capture, Extract};
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Inspect, OkErr, Probe};
use timely::execute::execute_directly;
use timely::scheduling::SyncActivator;
use timely::worker::Worker;

use crate::cluster::{self, ClusterSpec, Session};

use crate::error::{Error, Result};
use crate::ops::batch::{self, Batch, ToArrow};
use crate::ops::decode::{Decode, DecodedBatch, OnBadRecord, RecordReader, Skipped};
use crate::ops::normalize::{Normalize, Normalizer};
use crate::ops::plan::{EpochOrder, Gate, gated_plan_source, owner, plan_source};
use crate::ops::queue::IntoQueue;
use crate::ops::stats::{ChannelStatsOp, ChannelSums, Stats};
use crate::ops::wire::{Deliver, Handoff, ToWire, WireFormat};
use crate::source::Records;

/// In a cluster each worker may run `CLUSTER_SLACK × prefetch` batches ahead of the trainer,
/// not `prefetch` as in one process: a worker learns that the trainer took a batch from progress
/// messages that cross the network, and with too small a window it waits for them. Measured on
/// PNG-in-Parquet Fashion-MNIST, 2 processes × 1 worker: 196k images/s with a window of 2 per
/// worker, 230k with 8; one process with 2 workers, 250k.
const CLUSTER_SLACK: usize = 4;

/// Records per plan in the statistics pass: big enough that per-batch overhead vanishes, small
/// enough that two or three workers each get several.
const STATS_CHUNK: usize = 4096;

/// Computes exact per-channel statistics of `records` on `workers` timely threads (0 = this
/// thread), failing on the first bad record.
pub fn compute_stats(records: &Records, workers: usize) -> Result<Stats> {
    Ok(compute_stats_with(records, workers, OnBadRecord::Fail)?.0)
}

/// [`compute_stats`] with a bad-record policy; also returns the records it skipped.
///
/// Each worker decodes and sums its own chunks locally; differential merges one record per
/// channel per chunk, never per pixel.
pub fn compute_stats_with(
    records: &Records,
    workers: usize,
    policy: OnBadRecord,
) -> Result<(Stats, Vec<Skipped>)> {
    records.check_not_empty()?;
    let skipped = Arc::new(Mutex::new(Vec::new()));
    let dataflow = stats_dataflow(records, policy, skipped.clone());
    let captured = if workers == 0 {
        execute_directly(dataflow)
    } else {
        let guards =
            timely::execute(timely::Config::process(workers), dataflow).map_err(Error::Dataflow)?;
        first_worker(guards.join())
            .map_err(|e| Error::Dataflow(format!("statistics worker failed: {e}")))?
    };
    let mut skipped = std::mem::take(&mut *skipped.lock().expect("skipped lock"));
    skipped.sort_by(|a, b| (&a.source, a.row).cmp(&(&b.source, b.row)));
    Ok((read_stats(records, captured)?, skipped))
}

/// The statistics of `records` over a whole cluster: each process sums the chunks of its
/// workers, and every process receives the same totals. Runs on `threads` workers here.
pub fn compute_stats_in(
    records: &Records,
    session: Session,
    threads: usize,
    policy: OnBadRecord,
) -> Result<Stats> {
    records.check_not_empty()?;
    let spec = session.spec.clone();
    let dataflow = stats_dataflow(records, policy, Arc::new(Mutex::new(Vec::new())));
    let guards = session.execute(threads.max(1), dataflow)?;
    let captured = first_worker(join_cluster(guards, &spec)?)
        .map_err(|e| Error::Dataflow(format!("statistics worker failed: {e}")))?;
    read_stats(records, captured)
}

type Captured = (
    std::sync::mpsc::Receiver<
        timely::dataflow::operators::capture::Event<u64, Vec<((u32, ChannelSums), u64, isize)>>,
    >,
    std::sync::mpsc::Receiver<timely::dataflow::operators::capture::Event<u64, Vec<String>>>,
);

/// `plan → decode → channel sums`, the totals and any error broadcast to every worker.
fn stats_dataflow(
    records: &Records,
    policy: OnBadRecord,
    skipped: Arc<Mutex<Vec<Skipped>>>,
) -> impl Fn(&mut Worker) -> Captured + Send + Sync + 'static {
    let order = EpochOrder {
        records: records.len(),
        batch_size: STATS_CHUNK,
        drop_last: false,
        shuffle: None,
        blocks: records.blocks(),
    };
    let records = records.clone();
    move |worker: &mut Worker| {
        let (records, order, skipped) = (records.clone(), order.clone(), skipped.clone());
        worker.dataflow::<u64, _, _>(move |scope| {
            let (ok, err) = plan_source(scope, order, 1, Arc::new(AtomicBool::new(false)))
                .decode(RecordReader::new(records, policy))
                .ok_err::<Vec<DecodedBatch>, _, Vec<String>, _, _>(|r| {
                    r.map_err(|e| e.to_string())
                });
            let sums = ok
                .inspect(move |b: &DecodedBatch| {
                    skipped
                        .lock()
                        .expect("skipped lock")
                        .extend(b.skipped.iter().cloned())
                })
                .channel_sums()
                .inner
                .broadcast()
                .capture();
            (sums, err.broadcast().capture())
        })
    }
}

/// Worker 0's result: after a broadcast, every worker holds the same totals.
fn first_worker<T>(results: Vec<Result<T, String>>) -> Result<T, String> {
    let mut first = None;
    for r in results {
        let r = r?;
        first.get_or_insert(r);
    }
    first.ok_or_else(|| "no workers".to_string())
}

fn read_stats(records: &Records, (rx, errors): Captured) -> Result<Stats> {
    if let Some(first) = errors.extract().into_iter().flat_map(|(_, e)| e).next() {
        return Err(Error::Other(first));
    }
    let channels = records.shape().channels;
    let mut sums = vec![ChannelSums::default(); channels];
    let mut seen = vec![0isize; channels];
    for (_time, recs) in rx.extract() {
        for ((channel, s), _time, diff) in recs {
            seen[channel as usize] += diff;
            if diff > 0 {
                sums[channel as usize] = s;
            }
        }
    }
    if let Some(c) = seen.iter().position(|&n| n != 1) {
        return Err(Error::Dataflow(format!(
            "statistics for channel {c} arrived {} times, expected once",
            seen[c]
        )));
    }
    let images = (sums[0].count as usize) / records.shape().plane();
    if images == 0 {
        return Err(Error::Empty {
            source_name: format!("{} (every record was skipped)", records.origin()),
        });
    }
    Ok(Stats::from_sums(images, records.shape(), &sums))
}

/// Joins a session's workers. A lost connection makes timely's threads panic, so the join
/// happens behind `catch_unwind` and the error names the process that was lost.
fn join_cluster<T: Send + 'static>(
    guards: WorkerGuards<T>,
    spec: &ClusterSpec,
) -> Result<Vec<Result<T, String>>> {
    let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guards.join()));
    if let Some(lost) = cluster::failure(spec) {
        return Err(lost);
    }
    joined.map_err(|_| Error::Cluster("a network thread failed".into()))
}

/// Marks the calling (worker) thread as a batch thread for the Linux scheduler.
///
/// Measured on 2 cores: without it, every `recv` that frees a queue slot wakes the parked
/// worker, the kernel preempts the trainer in favour of the freshly woken thread, and the
/// trainer waits ~0.8 ms (one batch build) inside `recv` although the queue was full —
/// about 1.5% of a Fashion-MNIST epoch. `SCHED_BATCH` threads do not preempt on wake-up; the
/// worker builds its batch in its fair share of CPU while the trainer computes.
fn batch_priority() {
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

/// How batches are produced.
#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub order: EpochOrder,
    pub epochs: u32,
    /// 0: the consumer's thread builds each batch when asked (PyTorch's `num_workers=0`).
    /// N ≥ 1: N timely worker threads build batches ahead, into queues of `prefetch` each.
    pub workers: usize,
    pub prefetch: usize,
    pub on_bad_record: OnBadRecord,
    /// How batches built in other processes travel to the trainer (cluster mode only).
    pub wire: WireFormat,
}

/// Batches of a run, in order: epoch 0 batch 0, 0/1, …, then epoch 1. The sequence depends on
/// the seed alone, never on the worker count.
pub struct Loader {
    mode: Mode,
    per_epoch: usize,
    total: usize,
    next: usize,
}

enum Mode {
    Inline {
        reader: RecordReader,
        order: EpochOrder,
        normalizer: Normalizer,
        schema: SchemaRef,
        permutation: Option<(u32, Vec<u32>)>,
    },
    Workers {
        queues: Vec<Receiver<Result<Batch>>>,
        cancel: Arc<AtomicBool>,
        guards: Option<WorkerGuards<()>>,
    },
    Cluster {
        queue: Option<Receiver<Result<Batch>>>,
        wake: Arc<Mutex<Option<SyncActivator>>>,
        cancel: Arc<AtomicBool>,
        guards: Option<WorkerGuards<()>>,
        spec: ClusterSpec,
        /// Decode threads per process: with `spec`, which process owes a batch.
        threads: usize,
    },
}

impl Loader {
    pub fn new(records: Records, normalizer: Normalizer, config: LoaderConfig) -> Result<Loader> {
        check_config(&records, &config)?;
        let per_epoch = config.order.batches_per_epoch();
        let total = per_epoch * config.epochs as usize;
        let schema = batch::schema(records.shape());
        let policy = config.on_bad_record;
        let mode = if config.workers == 0 {
            Mode::Inline {
                reader: RecordReader::new(records, policy),
                order: config.order,
                normalizer,
                schema,
                permutation: None,
            }
        } else {
            let prefetch = config.prefetch.max(1);
            let (senders, queues): (Vec<Sender<_>>, Vec<_>) =
                (0..config.workers).map(|_| bounded(prefetch)).unzip();
            // Each worker takes its sender out, so the sender dies with that worker's dataflow:
            // a worker that stops early disconnects its queue instead of leaving the consumer
            // waiting on a channel that the shared closure keeps open.
            let senders = Arc::new(Mutex::new(
                senders.into_iter().map(Some).collect::<Vec<_>>(),
            ));
            let cancel = Arc::new(AtomicBool::new(false));
            let guards = {
                let cancel = cancel.clone();
                timely::execute(timely::Config::process(config.workers), move |worker| {
                    batch_priority();
                    let tx = senders.lock().expect("sender lock")[worker.index()]
                        .take()
                        .expect("one sender per worker");
                    let (records, order, normalizer, schema, cancel) = (
                        records.clone(),
                        config.order.clone(),
                        normalizer.clone(),
                        schema.clone(),
                        cancel.clone(),
                    );
                    worker.dataflow::<u64, _, _>(move |scope| {
                        plan_source(scope, order, config.epochs, cancel.clone())
                            .decode(RecordReader::new(records, policy))
                            .normalize(normalizer)
                            .to_arrow(schema)
                            .into_queue(tx, cancel);
                    });
                })
                .map_err(Error::Dataflow)?
            };
            Mode::Workers {
                queues,
                cancel,
                guards: Some(guards),
            }
        };
        Ok(Loader {
            mode,
            per_epoch,
            total,
            next: 0,
        })
    }

    /// Process 0 of a cluster: the same batches as [`Loader::new`] with `processes × threads`
    /// workers, built by the workers of every process and delivered here.
    pub fn cluster(
        records: Records,
        normalizer: Normalizer,
        config: LoaderConfig,
        session: Session,
    ) -> Result<Loader> {
        check_cluster_config(&records, &config)?;
        let (tx, queue) = bounded(config.prefetch.max(1));
        let wake = Arc::new(Mutex::new(None));
        let cancel = Arc::new(AtomicBool::new(false));
        let handoff = Handoff {
            queue: tx,
            wake: wake.clone(),
            cancel: cancel.clone(),
            threads_per_process: config.workers,
        };
        let (spec, threads) = (session.spec.clone(), config.workers);
        let per_epoch = config.order.batches_per_epoch();
        let total = per_epoch * config.epochs as usize;
        let guards = run_cluster_epochs(records, normalizer, config, session, Some(handoff))?;
        Ok(Loader {
            mode: Mode::Cluster {
                queue: Some(queue),
                wake,
                cancel,
                guards: Some(guards),
                spec,
                threads,
            },
            per_epoch,
            total,
            next: 0,
        })
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.per_epoch
    }
}

/// Processes 1.. of a cluster: builds this process's share of the batches of a run, sends them
/// to process 0, and returns once the run is over.
pub fn serve(
    records: Records,
    normalizer: Normalizer,
    config: LoaderConfig,
    session: Session,
) -> Result<()> {
    check_cluster_config(&records, &config)?;
    let spec = session.spec.clone();
    let guards = run_cluster_epochs(records, normalizer, config, session, None)?;
    for r in join_cluster(guards, &spec)? {
        r.map_err(|e| Error::Dataflow(format!("worker failed: {e}")))?;
    }
    Ok(())
}

/// What every loader needs: records, and batches of at least one.
fn check_config(records: &Records, config: &LoaderConfig) -> Result<()> {
    records.check_not_empty()?;
    if config.order.batch_size == 0 {
        return Err(Error::Config("batch size must be at least 1".into()));
    }
    Ok(())
}

/// [`check_config`], and a cluster's workers are decode threads: at least one per process.
fn check_cluster_config(records: &Records, config: &LoaderConfig) -> Result<()> {
    check_config(records, config)?;
    if config.workers == 0 {
        return Err(Error::Config(
            "in a cluster, --workers counts the decode threads of each process: at least 1".into(),
        ));
    }
    Ok(())
}

/// Starts `gated plan → decode → wire → deliver` on this process's workers. Worker 0 of
/// process 0 gets the `handoff` to the trainer.
fn run_cluster_epochs(
    records: Records,
    normalizer: Normalizer,
    config: LoaderConfig,
    session: Session,
    handoff: Option<Handoff>,
) -> Result<WorkerGuards<()>> {
    let schema = batch::schema(records.shape());
    let threads = config.workers;
    let window = (config.prefetch.max(1) * CLUSTER_SLACK * threads * session.spec.processes) as u64;
    let handoff = Arc::new(Mutex::new(handoff));
    session.execute(threads, move |worker| {
        batch_priority();
        let handoff = if worker.index() == 0 {
            handoff.lock().expect("handoff lock").take()
        } else {
            None
        };
        let (records, order, normalizer, schema) = (
            records.clone(),
            config.order.clone(),
            normalizer.clone(),
            schema.clone(),
        );
        let probe = ProbeHandle::new();
        let gate = Gate {
            probe: probe.clone(),
            window,
        };
        worker.dataflow::<u64, _, _>(move |scope| {
            gated_plan_source(scope, order.clone(), config.epochs, gate)
                .decode(RecordReader::new(records, config.on_bad_record))
                .to_wire(&order, config.wire, normalizer.clone(), schema.clone())
                .deliver(order, normalizer, schema, handoff)
                .probe_with(&probe);
        });
    })
}

impl Iterator for Loader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.total {
            return None;
        }
        let (epoch, index) = (
            (self.next / self.per_epoch) as u32,
            self.next % self.per_epoch,
        );
        self.next += 1;
        match &mut self.mode {
            Mode::Inline {
                reader,
                order,
                normalizer,
                schema,
                permutation,
            } => {
                if permutation.as_ref().is_none_or(|(e, _)| *e != epoch) {
                    *permutation = Some((epoch, order.permutation(epoch)));
                }
                let (_, perm) = permutation.as_ref().expect("set above");
                let plan = order.plan(epoch, perm, index);
                Some(
                    reader
                        .decode(&plan)
                        .and_then(|b| batch::to_arrow(schema, normalizer.apply(b))),
                )
            }
            Mode::Workers {
                queues,
                cancel,
                guards,
            } => {
                let w = owner(index, queues.len());
                match queues[w].recv() {
                    Ok(batch) => Some(batch),
                    Err(_) => {
                        cancel.store(true, Ordering::Relaxed);
                        queues.clear();
                        let results = guards.take().map(|g| g.join()).unwrap_or_default();
                        self.next = self.total;
                        Some(Err(stopped_early(
                            format!("worker {w} stopped before epoch {epoch} batch {index}"),
                            results,
                        )))
                    }
                }
            }
            Mode::Cluster {
                queue,
                wake,
                guards,
                spec,
                threads,
                ..
            } => {
                let abandoned = match queue.as_ref().map(|q| receive(q, spec)) {
                    Some(Ok(batch)) => {
                        if let Some(w) = wake.lock().expect("wake lock").as_ref() {
                            // The deliver operator may be holding a batch for the freed slot.
                            let _ = w.activate();
                        }
                        return Some(batch);
                    }
                    // A broken connection ends the run now: the batches still queued could only
                    // be trained on for nothing, and they can take long on a busy host.
                    Some(Err(Received::Lost(lost))) => lost,
                    // Dying processes close their sockets and are noticed above; one that hangs
                    // is noticed here, by the batch it owes.
                    Some(Err(Received::Stalled)) => {
                        let owner = owner(index, *threads * spec.processes) / *threads;
                        Error::Cluster(format!(
                            "no batch for {} s: epoch {epoch} batch {index} is {}'s to build, and it sent nothing (is it stopped or hung?)",
                            spec.stall_timeout.as_secs_f64(),
                            spec.name(owner)
                        ))
                    }
                    Some(Err(Received::Disconnected)) | None => {
                        *queue = None;
                        self.next = self.total;
                        let results = match guards.take().map(|g| join_cluster(g, spec)) {
                            Some(Err(e)) => return Some(Err(e)),
                            Some(Ok(results)) => results,
                            None => Vec::new(),
                        };
                        return Some(Err(stopped_early(
                            format!("the cluster stopped before epoch {epoch} batch {index}"),
                            results,
                        )));
                    }
                };
                *queue = None;
                self.next = self.total;
                // The workers may wait on the lost or hung process: joining them could hang too.
                std::mem::forget(guards.take());
                Some(Err(abandoned))
            }
        }
    }
}

/// Why [`receive`] has no batch.
enum Received {
    Stalled,
    Lost(Error),
    Disconnected,
}

/// How often the trainer, waiting for a batch, looks for a lost process.
const LOST_POLL: Duration = Duration::from_millis(50);

/// The next batch of a cluster run, unless a process was lost (checked before each batch and
/// every [`LOST_POLL`] while waiting) or none came for the stall timeout.
fn receive(
    queue: &Receiver<Result<Batch>>,
    spec: &ClusterSpec,
) -> std::result::Result<Result<Batch>, Received> {
    let deadline = Instant::now() + spec.stall_timeout;
    loop {
        if let Some(lost) = cluster::failure(spec) {
            return Err(Received::Lost(lost));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Received::Stalled);
        }
        match queue.recv_timeout(left.min(LOST_POLL)) {
            Ok(batch) => return Ok(batch),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err(Received::Disconnected),
        }
    }
}

/// The loader's error when its workers stopped before `what`, with their panics if any.
fn stopped_early(what: String, results: Vec<Result<(), String>>) -> Error {
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

impl Drop for Loader {
    fn drop(&mut self) {
        if let Mode::Cluster {
            queue,
            cancel,
            guards,
            spec,
            ..
        } = &mut self.mode
        {
            cancel.store(true, Ordering::Relaxed);
            *queue = None;
            if let Some(g) = guards.take() {
                if self.next >= self.total {
                    let _ = join_cluster(g, spec);
                } else {
                    // Stopped early: the other processes are still sending this run, and
                    // waiting for them could take the whole run. The threads end with the
                    // process; the others see it close its connections.
                    std::mem::forget(g);
                }
            }
        }
        if let Mode::Workers {
            queues,
            cancel,
            guards,
        } = &mut self.mode
        {
            // Order matters: stop the sources, then drop the queues so that a worker blocked on
            // a full queue wakes up, then wait for the threads.
            cancel.store(true, Ordering::Relaxed);
            queues.clear();
            if let Some(g) = guards.take() {
                let _ = g.join();
            }
        }
    }
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
    };
    let config = LoaderConfig {
        order,
        epochs: 1,
        workers: 0,
        prefetch: 1,
        on_bad_record,
        wire: WireFormat::Raw,
    };
    Loader::new(records.clone(), normalizer.clone(), config)?.collect()
}
