//! The worker-thread loader: `plan → decode → normalize → batch → queue` on N timely worker
//! threads. Worker w builds every batch i with `i mod N = w` into its own bounded queue, and the
//! consumer reads the queues in that rotation, so the sequence does not depend on N.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, bounded};
use timely::communication::WorkerGuards;

use super::{BatchStream, Cursor, LoaderConfig, batch_priority, check_config, stopped_early};
use crate::error::{Error, Result};
use crate::ops::batch::{self, Batch, ToArrow};
use crate::ops::decode::{Decode, RecordReader};
use crate::ops::normalize::{Normalize, Normalizer};
use crate::ops::plan::{owner, plan_source};
use crate::ops::queue::IntoQueue;
use crate::source::Records;

pub(crate) struct ThreadLoader {
    queues: Vec<Receiver<Result<Batch>>>,
    cancel: Arc<AtomicBool>,
    guards: Option<WorkerGuards<()>>,
    cursor: Cursor,
    workers: usize,
}

impl ThreadLoader {
    /// `workers` threads (at least one).
    pub(crate) fn new(
        records: Records,
        normalizer: Normalizer,
        config: LoaderConfig,
        workers: usize,
    ) -> Result<Self> {
        check_config(&records, &config)?;
        let cursor = Cursor::new(&config);
        let first = config.first();
        let schema = batch::schema(records.shape());
        let policy = config.on_bad_record;
        let prefetch = config.prefetch.max(1);
        let (senders, queues): (Vec<Sender<_>>, Vec<_>) =
            (0..workers.max(1)).map(|_| bounded(prefetch)).unzip();
        // Each worker takes its sender out, so the sender dies with that worker's dataflow: a
        // worker that stops early disconnects its queue instead of leaving the consumer waiting
        // on a channel that the shared closure keeps open.
        let senders = Arc::new(Mutex::new(
            senders.into_iter().map(Some).collect::<Vec<_>>(),
        ));
        // The loader's stopper is its cancel switch: stopping it ends the sources and the queues
        // as dropping the loader does, and the decoders at their next record.
        let cancel = config.stopper.flag().clone();
        let guards = {
            let cancel = cancel.clone();
            timely::execute(timely::Config::process(queues.len()), move |worker| {
                batch_priority();
                let tx = senders.lock().expect("sender lock")[worker.index()]
                    .take()
                    .expect("one sender per worker");
                let (records, order, normalizer, schema, cancel, stopper) = (
                    records.clone(),
                    config.order.clone(),
                    normalizer.clone(),
                    schema.clone(),
                    cancel.clone(),
                    config.stopper.clone(),
                );
                worker.dataflow::<u64, _, _>(move |scope| {
                    plan_source(scope, order, config.epochs, first, cancel.clone())
                        .decode(RecordReader::new(records, policy).stopped_by(stopper))
                        .normalize(normalizer)
                        .to_arrow(schema)
                        .into_queue(tx, cancel);
                });
            })
            .map_err(Error::Dataflow)?
        };
        Ok(ThreadLoader {
            queues,
            cancel,
            guards: Some(guards),
            cursor,
            workers: workers.max(1),
        })
    }
}

impl Iterator for ThreadLoader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        let (epoch, index) = self.cursor.advance()?;
        let w = owner(index, self.queues.len());
        match self.queues[w].recv() {
            Ok(batch) => Some(batch),
            Err(_) => {
                self.cancel.store(true, Ordering::Relaxed);
                self.queues.clear();
                let results = self.guards.take().map(|g| g.join()).unwrap_or_default();
                self.cursor.stop();
                Some(Err(stopped_early(
                    format!("worker {w} stopped before epoch {epoch} batch {index}"),
                    results,
                )))
            }
        }
    }
}

impl BatchStream for ThreadLoader {
    fn batches_per_epoch(&self) -> usize {
        self.cursor.per_epoch()
    }
    fn workers(&self) -> usize {
        self.workers
    }
}

impl Drop for ThreadLoader {
    fn drop(&mut self) {
        // Order matters: stop the sources, then drop the queues so that a worker blocked on a
        // full queue wakes up, then wait for the threads.
        self.cancel.store(true, Ordering::Relaxed);
        self.queues.clear();
        if let Some(g) = self.guards.take() {
            let _ = g.join();
        }
    }
}
