//! Queue: the dataflow's exit, handing finished batches to the consumer through a bounded channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::Sender;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;
use timely::progress::Timestamp;

use super::batch::Batch;
use crate::error::Result;

/// Extension trait: `batches.into_queue(tx, cancel)`.
pub trait IntoQueue<T: Timestamp> {
    /// Sends every batch into `tx`, blocking while the queue is full. Blocking the worker thread
    /// is the back-pressure: this worker's dataflow exchanges nothing with the others, so a parked
    /// worker stalls only itself, and it burns no CPU that the trainer could use (a spinning
    /// source would). When the consumer has gone, `cancel` tells the source to stop.
    fn into_queue(self, tx: Sender<Result<Batch>>, cancel: Arc<AtomicBool>);
}

impl<T: Timestamp> IntoQueue<T> for StreamVec<'_, T, Result<Batch>> {
    fn into_queue(self, tx: Sender<Result<Batch>>, cancel: Arc<AtomicBool>) {
        self.sink(Pipeline, "Queue", move |(input, _frontier)| {
            input.for_each_stamp(|_cap, data| {
                for batches in data {
                    for batch in batches.drain(..) {
                        if cancel.load(Ordering::Relaxed) || tx.send(batch).is_err() {
                            cancel.store(true, Ordering::Relaxed);
                        }
                    }
                }
            });
        });
    }
}
