//! The cluster's loader: `gated plan → decode → wire → deliver` on every process. Process 0's
//! [`ClusterLoader`] receives the batches in order for its trainer; the others [`serve`] their
//! share. The statistics pass runs across the processes too ([`compute_stats`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};
use timely::communication::WorkerGuards;
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::Probe;
use timely::scheduling::SyncActivator;

use super::failure::FailureLog;
use super::{ClusterSpec, Session};
use crate::error::{ClusterError, Error, Result};
use crate::loader::stats::{Owner, PassPlan, StatsOutcome, first_worker, pass_dataflow};
use crate::loader::{
    BatchStream, Cursor, LoaderConfig, batch_priority, check_config, stopped_early,
};
use crate::ops::batch::{self, Batch};
use crate::ops::decode::{Decode, OnBadRecord, RecordReader};
use crate::ops::normalize::Normalizer;
use crate::ops::plan::{Gate, gated_plan_source, owner};
use crate::ops::wire::{Deliver, Handoff, ToWire};
use crate::source::Records;
use crate::stats_store::StatsStore;

/// In a cluster each worker may run `CLUSTER_SLACK × prefetch` batches ahead of the trainer,
/// not `prefetch` as in one process: a worker learns that the trainer took a batch from progress
/// messages that cross the network, and with too small a window it waits for them. Measured on
/// PNG-in-Parquet Fashion-MNIST, 2 processes × 1 worker: 196k images/s with a window of 2 per
/// worker, 230k with 8; one process with 2 workers, 250k.
const CLUSTER_SLACK: usize = 4;

/// How often the trainer, waiting for a batch, looks for a lost process.
const LOST_POLL: Duration = Duration::from_millis(50);

/// The statistics of `records` over a whole cluster: each process contributes the parts it
/// owns, from its own cache or decoded by its workers, and every process receives the same
/// totals. Runs on `threads` workers here.
pub fn compute_stats(
    records: &Records,
    session: Session,
    threads: usize,
    policy: OnBadRecord,
    store: Option<&StatsStore>,
) -> Result<StatsOutcome> {
    let owner = Owner {
        process: session.spec.process,
        processes: session.spec.processes,
    };
    let plan = Arc::new(PassPlan::new(records, policy, store, owner)?);
    let failures = session.failures.clone();
    let dataflow = pass_dataflow(plan.clone(), policy, Arc::new(Mutex::new(Vec::new())));
    let guards = session.execute(threads.max(1), dataflow)?;
    let captured = first_worker(join_cluster(guards, &failures)?)
        .map_err(|e| Error::Dataflow(format!("statistics worker failed: {e}")))?;
    plan.finish(captured, Vec::new(), store)
}

/// Process 0's loader: the same batches as one process with `processes × threads` workers,
/// built by the workers of every process and delivered here.
pub struct ClusterLoader {
    queue: Option<Receiver<Result<Batch>>>,
    wake: Arc<Mutex<Option<SyncActivator>>>,
    cancel: Arc<AtomicBool>,
    guards: Option<WorkerGuards<()>>,
    spec: ClusterSpec,
    failures: FailureLog,
    /// Decode threads per process: with `spec`, which process owes a batch.
    threads: usize,
    cursor: Cursor,
}

impl ClusterLoader {
    pub fn new(
        records: Records,
        normalizer: Normalizer,
        config: LoaderConfig,
        session: Session,
    ) -> Result<ClusterLoader> {
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
        let (spec, failures) = (session.spec.clone(), session.failures.clone());
        let (threads, cursor) = (config.workers, Cursor::new(&config));
        let guards = run_epochs(records, normalizer, config, session, Some(handoff))?;
        Ok(ClusterLoader {
            queue: Some(queue),
            wake,
            cancel,
            guards: Some(guards),
            spec,
            failures,
            threads,
            cursor,
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
                let owner = owner(index, self.threads * self.spec.processes) / self.threads;
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
pub fn serve(
    records: Records,
    normalizer: Normalizer,
    config: LoaderConfig,
    session: Session,
) -> Result<()> {
    check_cluster_config(&records, &config)?;
    let failures = session.failures.clone();
    let guards = run_epochs(records, normalizer, config, session, None)?;
    for r in join_cluster(guards, &failures)? {
        r.map_err(|e| Error::Dataflow(format!("worker failed: {e}")))?;
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
fn run_epochs(
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

/// Joins a session's workers. A lost connection makes timely's threads panic, so the join
/// happens behind `catch_unwind` and the error names the process that was lost.
fn join_cluster<T: Send + 'static>(
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
