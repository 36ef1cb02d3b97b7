//! The one place the operators are wired together: the statistics pass, and the epoch stream
//! `plan → decode → normalize → batch → queue` that a [`Loader`] hands to the consumer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use crossbeam_channel::{Receiver, Sender, bounded};
use timely::dataflow::operators::capture::{Capture, Extract};
use timely::dataflow::operators::{Inspect, OkErr};
use timely::execute::execute_directly;
use timely::worker::Worker;

use crate::error::{Error, Result};
use crate::ops::batch::{self, Batch, ToArrow};
use crate::ops::decode::{Decode, DecodedBatch, OnBadRecord, RecordReader, Skipped};
use crate::ops::normalize::{Normalize, Normalizer};
use crate::ops::plan::{EpochOrder, owner, plan_source};
use crate::ops::queue::IntoQueue;
use crate::ops::stats::{ChannelStatsOp, ChannelSums, Stats};
use crate::source::Records;

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
    let order = EpochOrder {
        records: records.len(),
        batch_size: STATS_CHUNK,
        drop_last: false,
        shuffle: None,
        blocks: records.blocks(),
    };
    let skipped = Arc::new(Mutex::new(Vec::new()));
    let dataflow = {
        let (records, skipped) = (records.clone(), skipped.clone());
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
                    .capture();
                (sums, err.capture())
            })
        }
    };
    let captured = if workers == 0 {
        vec![execute_directly(dataflow)]
    } else {
        timely::execute(timely::Config::process(workers), dataflow)
            .map_err(Error::Dataflow)?
            .join()
            .into_iter()
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| Error::Dataflow(format!("statistics worker failed: {e}")))?
    };
    let channels = records.shape().channels;
    let mut sums = vec![ChannelSums::default(); channels];
    let mut seen = vec![0isize; channels];
    for (rx, errors) in captured {
        if let Some(first) = errors.extract().into_iter().flat_map(|(_, e)| e).next() {
            return Err(Error::Other(first));
        }
        for (_time, recs) in rx.extract() {
            for ((channel, s), _time, diff) in recs {
                seen[channel as usize] += diff;
                if diff > 0 {
                    sums[channel as usize] = s;
                }
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
    let mut skipped = std::mem::take(&mut *skipped.lock().expect("skipped lock"));
    skipped.sort_by(|a, b| (&a.source, a.row).cmp(&(&b.source, b.row)));
    Ok((Stats::from_sums(images, records.shape(), &sums), skipped))
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
        guards: Option<timely::communication::WorkerGuards<()>>,
    },
}

impl Loader {
    pub fn new(records: Records, normalizer: Normalizer, config: LoaderConfig) -> Result<Loader> {
        records.check_not_empty()?;
        if config.order.batch_size == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
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

    pub fn batches_per_epoch(&self) -> usize {
        self.per_epoch
    }
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
                        let why = guards
                            .take()
                            .map(|g| g.join())
                            .unwrap_or_default()
                            .into_iter()
                            .filter_map(|r| r.err())
                            .collect::<Vec<_>>()
                            .join("; ");
                        self.next = self.total;
                        Some(Err(Error::Dataflow(format!(
                            "worker {w} stopped before epoch {epoch} batch {index} ({})",
                            if why.is_empty() {
                                "no panic reported"
                            } else {
                                &why
                            }
                        ))))
                    }
                }
            }
        }
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
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
    };
    Loader::new(records.clone(), normalizer.clone(), config)?.collect()
}
