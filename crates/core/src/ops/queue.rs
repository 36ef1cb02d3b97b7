//! Queue: the dataflow's exit, handing finished batches to the consumer through a bounded channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crossbeam_channel::Sender;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;
use timely::progress::Timestamp;

use super::batch::Batch;
use super::tickets::Tickets;
use crate::error::Result;

/// A batch built under `--workers auto`: its ticket (run position), the seconds its worker
/// spent building it, and the batch.
pub(crate) type Built = (u64, f64, Result<Batch>);

/// Extension trait: `batches.into_queue(tx, cancel)`.
pub(crate) trait IntoQueue<T: Timestamp> {
    /// Sends every batch into `tx`, blocking while the queue is full. Blocking the worker thread
    /// is the back-pressure: this worker's dataflow exchanges nothing with the others, so a parked
    /// worker stalls only itself, and it burns no CPU that the trainer could use (a spinning
    /// source would). When the consumer has gone, `cancel` tells the source to stop.
    fn into_queue(self, tx: Sender<Result<Batch>>, cancel: Arc<AtomicBool>);

    /// `--workers auto`: sends every batch, with its ticket and build time, into the one queue
    /// all workers share (the consumer puts them back in order). Never blocks: the tickets
    /// bound what is out. A batch's build time runs from when its ticket was taken, or from
    /// this worker's previous batch if that was later (a ticket taken early waited for it).
    fn into_ticket_queue(self, tx: Sender<Built>, tickets: Arc<Tickets>, worker: usize);
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

    fn into_ticket_queue(self, tx: Sender<Built>, tickets: Arc<Tickets>, worker: usize) {
        let mut previous: Option<Instant> = None;
        self.sink(Pipeline, "TicketQueue", move |(input, _frontier)| {
            input.for_each_stamp(|_cap, data| {
                for batches in data {
                    for batch in batches.drain(..) {
                        let (ticket, secs) = tickets.built(worker, &mut previous);
                        if tx.send((ticket, secs, batch)).is_err() {
                            tickets.cancel();
                        }
                    }
                }
            });
        });
    }
}
