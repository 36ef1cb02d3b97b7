//! The cluster's loader: `gated plan → decode → wire → deliver` on every process. Process 0's
//! [`ClusterLoader`] receives the batches in order for its trainer; the others [`serve`] their
//! share. (The statistics pass runs across the processes too: `loader::stats`.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};
use timely::communication::WorkerGuards;
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::{Inspect, Probe};
use timely::scheduling::SyncActivator;

use super::Workers;
use super::tune::{BuildTuner, Limits, Tuning};
use super::{BatchStream, Cursor, LoaderConfig, batch_priority, check_config, stopped_early};
use crate::cluster::failure::FailureLog;
use crate::cluster::{ClusterSpec, Session};
use crate::error::{ClusterError, Error, Result};
use crate::ops::batch::{self, Batch};
use crate::ops::decode::{Decode, DecodedBatch, RecordReader};
use crate::ops::normalize::Normalizer;
use crate::ops::plan::{Gate, gated_plan_source, owner};
use crate::ops::tickets::{Share, Tickets, gated_ticket_source};
use crate::ops::wire::{Deliver, Handoff, ToWire};
use crate::source::Records;

/// In a cluster each worker may run `CLUSTER_SLACK × prefetch` batches ahead of the trainer,
/// not `prefetch` as in one process: a worker learns that the trainer took a batch from progress
/// messages that cross the network, and with too small a window it waits for them. Measured on
/// PNG-in-Parquet Fashion-MNIST, 2 processes × 1 worker: 196k images/s with a window of 2 per
/// worker, 230k with 8; one process with 2 workers, 250k.
const CLUSTER_SLACK: usize = 4;

/// How often the trainer, waiting for a batch, looks for a lost process.
const LOST_POLL: Duration = Duration::from_millis(50);

/// A process's `--workers auto` controller, fed by every worker of the process.
type SharedTuner = Arc<Mutex<BuildTuner>>;

/// Process 0's loader: the same batches as one process with `processes × threads` workers,
/// built by the workers of every process and delivered here.
pub(crate) struct ClusterLoader {
    queue: Option<Receiver<Result<Batch>>>,
    wake: Arc<Mutex<Option<SyncActivator>>>,
    cancel: Arc<AtomicBool>,
    guards: Option<WorkerGuards<()>>,
    spec: ClusterSpec,
    failures: FailureLog,
    /// Decode threads per process: with `spec`, which process owes a batch.
    threads: usize,
    cursor: Cursor,
    /// `--workers auto`: this process's controller (each process tunes its own).
    tuner: Option<SharedTuner>,
}

impl ClusterLoader {
    /// `threads`: decode threads per process, as process 0 announced them (the fixed count,
    /// or at `auto` what every process starts, of which its controller keeps some active).
    pub(crate) fn new(
        records: Records,
        normalizer: Normalizer,
        config: LoaderConfig,
        session: Session,
        threads: usize,
    ) -> Result<ClusterLoader> {
        check_cluster_config(&records, &config, threads)?;
        let (tx, queue) = bounded(config.prefetch.max(1));
        let wake = Arc::new(Mutex::new(None));
        let cancel = Arc::new(AtomicBool::new(false));
        let handoff = Handoff {
            queue: tx,
            wake: wake.clone(),
            cancel: cancel.clone(),
            threads_per_process: threads,
        };
        let (spec, failures) = (session.spec.clone(), session.failures.clone());
        let cursor = Cursor::new(&config);
        let (guards, tuner) =
            run_epochs(records, normalizer, config, session, Some(handoff), threads)?;
        Ok(ClusterLoader {
            queue: Some(queue),
            wake,
            cancel,
            guards: Some(guards),
            spec,
            failures,
            threads,
            cursor,
            tuner,
        })
    }

    /// Ends the run with `error`, leaving the workers: they may wait on the lost or hung
    /// process, so joining them could hang too.
    fn abandon(&mut self, error: Error) -> Option<Result<Batch>> {
        self.queue = None;
        self.cursor.stop();
        std::mem::forget(self.guards.take());
        Some(Err(error))
    }
}

impl Iterator for ClusterLoader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        let (epoch, index) = self.cursor.advance()?;
        let received = match &self.queue {
            Some(q) => receive(q, &self.failures, self.spec.stall_timeout),
            None => Err(Received::Disconnected),
        };
        match received {
            Ok(batch) => {
                if let Some(w) = self.wake.lock().expect("wake lock").as_ref() {
                    // The deliver operator may be holding a batch for the freed slot.
                    let _ = w.activate();
                }
                Some(batch)
            }
            // A broken connection ends the run now: the batches still queued could only be
            // trained on for nothing, and they can take long on a busy host.
            Err(Received::Lost(lost)) => self.abandon(lost.into()),
            // Dying processes close their sockets and are noticed above; one that hangs is
            // noticed here, by the batch it owes.
            Err(Received::Stalled) => {
                let owner = match &self.tuner {
                    // At `auto`, a process owns every `processes`-th run position.
                    Some(_) => {
                        (epoch as usize * self.cursor.per_epoch() + index) % self.spec.processes
                    }
                    None => owner(index, self.threads * self.spec.processes) / self.threads,
                };
                let stalled = ClusterError::Stalled {
                    process: self.spec.peer(owner),
                    seconds: self.spec.stall_timeout.as_secs_f64(),
                    epoch,
                    batch: index,
                };
                self.abandon(stalled.into())
            }
            Err(Received::Disconnected) => {
                self.queue = None;
                self.cursor.stop();
                let results = match self.guards.take().map(|g| join_cluster(g, &self.failures)) {
                    Some(Err(e)) => return Some(Err(e)),
                    Some(Ok(results)) => results,
                    None => Vec::new(),
                };
                Some(Err(stopped_early(
                    format!("the cluster stopped before epoch {epoch} batch {index}"),
                    results,
                )))
            }
        }
    }
}

impl BatchStream for ClusterLoader {
    fn batches_per_epoch(&self) -> usize {
        self.cursor.per_epoch()
    }
    fn workers(&self) -> usize {
        match &self.tuner {
            Some(t) => t.lock().unwrap_or_else(|e| e.into_inner()).active(),
            None => self.threads,
        }
    }
    fn tuning(&self) -> Option<Tuning> {
        let t = self.tuner.as_ref()?;
        Some(t.lock().unwrap_or_else(|e| e.into_inner()).tuning())
    }
}

impl Drop for ClusterLoader {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.queue = None;
        if let Some(g) = self.guards.take() {
            if self.cursor.finished() {
                let _ = join_cluster(g, &self.failures);
            } else {
                // Stopped early: the other processes are still sending this run, and waiting
                // for them could take the whole run. The threads end with the process; the
                // others see it close its connections.
                std::mem::forget(g);
            }
        }
    }
}

/// Processes 1.. of a cluster: builds this process's share of the batches of a run, sends them
/// to process 0, and returns once the run is over.
/// `threads` as in [`ClusterLoader::new`]. Returns where this process's `--workers auto`
/// settled.
pub(crate) fn serve(
    records: Records,
    normalizer: Normalizer,
    config: LoaderConfig,
    session: Session,
    threads: usize,
) -> Result<Option<Tuning>> {
    check_cluster_config(&records, &config, threads)?;
    let failures = session.failures.clone();
    let (guards, tuner) = run_epochs(records, normalizer, config, session, None, threads)?;
    for r in join_cluster(guards, &failures)? {
        r.map_err(|e| Error::Dataflow(format!("worker failed: {e}")))?;
    }
    Ok(tuner.map(|t| t.lock().unwrap_or_else(|e| e.into_inner()).tuning()))
}

/// [`check_config`], and a cluster's workers are decode threads: at least one per process, and
/// a fixed count is the count announced. A cluster runs whole runs of one rank: its processes
/// share the building of every batch, which a rank's slice has not been made to fit. It may
/// start part-way (`start_at`: a checkpoint's position), every process from the same batch.
fn check_cluster_config(records: &Records, config: &LoaderConfig, threads: usize) -> Result<()> {
    check_config(records, config)?;
    if config.order.shard.world != 1 {
        return Err(Error::Config(
            "a cluster loader runs a whole run for one rank: shard is not supported in cluster mode".into(),
        ));
    }
    match config.workers {
        Workers::Fixed(n) if n >= 1 && n == threads => Ok(()),
        Workers::Auto if threads >= 1 => Ok(()),
        Workers::Fixed(n) if n >= 1 => Err(ClusterError::Protocol(format!(
            "process 0 announced {threads} decode threads, this run has {n}"
        ))
        .into()),
        _ => Err(Error::Config(
            "in a cluster, --workers counts the decode threads of each process: at least 1".into(),
        )),
    }
}

/// Starts `gated plan → decode → wire → deliver` on this process's workers. Worker 0 of
/// process 0 gets the `handoff` to the trainer.
///
/// At `auto`, this process builds its share of the run positions (`seq mod processes`), handed
/// to its active workers by a dispenser whose window is `CLUSTER_SLACK × prefetch` per active
/// worker, and its own [`BuildTuner`] sets how many are active.
fn run_epochs(
    records: Records,
    normalizer: Normalizer,
    config: LoaderConfig,
    session: Session,
    handoff: Option<Handoff>,
    threads: usize,
) -> Result<(WorkerGuards<()>, Option<SharedTuner>)> {
    let schema = batch::schema(records.shape());
    let first = config.first();
    let window = (config.prefetch.max(1) * CLUSTER_SLACK * threads * session.spec.processes) as u64;
    let handoff = Arc::new(Mutex::new(handoff));
    let share = Share {
        process: session.spec.process,
        processes: session.spec.processes,
    };
    let auto = (config.workers == Workers::Auto).then(|| {
        let total = (config.order.batches_per_epoch() * config.epochs as usize) as u64;
        let per_worker = config.prefetch.max(1) * CLUSTER_SLACK;
        // The memory limit counts `prefetch + 1` batches per worker; here each may have
        // `per_worker` out.
        let memory = config.limits.memory * (config.prefetch.max(1) + 1) / per_worker;
        let limits = Limits {
            cores: config.limits.cores.min(threads),
            memory: memory.clamp(1, threads),
        };
        (
            Arc::new(Tickets::new(
                share.before(first),
                share.tickets(total),
                threads,
                per_worker,
            )),
            Arc::new(Mutex::new(BuildTuner::new(limits))),
        )
    });
    let tuner = auto.as_ref().map(|(_, t)| t.clone());
    let guards = session.execute(threads, move |worker| {
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
        let auto = auto.clone();
        let me = worker.index() % threads;
        worker.dataflow::<u64, _, _>(move |scope| {
            let reader = RecordReader::new(records, config.on_bad_record);
            let decoded = match auto {
                None => gated_plan_source(scope, order.clone(), config.epochs, first, gate)
                    .decode(reader),
                Some((tickets, tuner)) => {
                    gated_ticket_source(scope, order.clone(), tickets.clone(), share, probe.clone())
                        .decode(reader)
                        .inspect(built(tickets, tuner, me))
                }
            };
            decoded
                .to_wire(&order, config.wire, normalizer.clone(), schema.clone())
                .deliver(order, normalizer, schema, handoff, first)
                .probe_with(&probe);
        });
    })?;
    Ok((guards, tuner))
}

/// What an auto worker does with each batch it has built: tell its process's tuner how long
/// the batch took (from its ticket, or from the worker's previous batch if later) and how long
/// the workers sat parked, and set the active count the tuner answers.
fn built(
    tickets: Arc<Tickets>,
    tuner: SharedTuner,
    worker: usize,
) -> impl FnMut(&Result<DecodedBatch>) + 'static {
    let mut previous: Option<Instant> = None;
    move |_| {
        let (_, secs) = tickets.built(worker, &mut previous);
        let parked = tickets.take_parked();
        let mut t = tuner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = t.built(secs, parked) {
            tickets.set_active(n);
        }
    }
}

/// Joins a session's workers. A lost connection makes timely's threads panic, so the join
/// happens behind `catch_unwind` and the error names the process that was lost.
pub(crate) fn join_cluster<T: Send + 'static>(
    guards: WorkerGuards<T>,
    failures: &FailureLog,
) -> Result<Vec<Result<T, String>>> {
    let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guards.join()));
    if let Some(lost) = failures.failure() {
        return Err(lost.into());
    }
    joined.map_err(|_| Error::Dataflow("a network thread failed".into()))
}

/// Why [`receive`] has no batch.
enum Received {
    Stalled,
    Lost(ClusterError),
    Disconnected,
}

/// The next batch of a cluster run, unless a process was lost (checked before each batch and
/// every [`LOST_POLL`] while waiting) or none came for the stall timeout.
fn receive(
    queue: &Receiver<Result<Batch>>,
    failures: &FailureLog,
    stall_timeout: Duration,
) -> std::result::Result<Result<Batch>, Received> {
    let deadline = Instant::now() + stall_timeout;
    loop {
        if let Some(lost) = failures.failure() {
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
