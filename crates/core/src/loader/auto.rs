//! The `--workers auto` loader: `tickets → decode → normalize → batch → queue` on as many
//! timely worker threads as the limits allow, of which the [`Controller`] keeps some active.
//! Any worker may build any batch; the consumer puts them back in run order, so the sequence
//! is the same as at any fixed count.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, unbounded};
use timely::communication::WorkerGuards;

use super::tune::{Controller, Tuning};
use super::{BatchStream, Cursor, LoaderConfig, batch_priority, check_config, stopped_early};
use crate::error::{Error, Result};
use crate::ops::batch::{self, Batch, ToArrow};
use crate::ops::decode::{Decode, RecordReader};
use crate::ops::normalize::{Normalize, Normalizer};
use crate::ops::queue::{Built, IntoQueue};
use crate::ops::tickets::{Tickets, ticket_source};
use crate::source::Records;

pub(crate) struct AutoLoader {
    tickets: Arc<Tickets>,
    queue: Option<Receiver<Built>>,
    /// Batches that arrived before their turn, by ticket: at most the tickets' window.
    early: BTreeMap<u64, (f64, Result<Batch>)>,
    controller: Controller,
    guards: Option<WorkerGuards<()>>,
    cursor: Cursor,
    /// When the last batch was handed out: the trainer's work on it runs from there.
    handed: Option<Instant>,
}

impl AutoLoader {
    /// Up to `config.limits` threads, of which the controller keeps some active.
    pub(crate) fn new(
        records: Records,
        normalizer: Normalizer,
        config: LoaderConfig,
    ) -> Result<Self> {
        check_config(&records, &config)?;
        let limits = config.limits;
        let cursor = Cursor::new(&config);
        let threads = limits.max();
        let total = (cursor.per_epoch() * config.epochs as usize) as u64;
        let tickets = Arc::new(Tickets::new(
            config.first(),
            total,
            threads,
            config.prefetch.max(1) + 1,
        ));
        let schema = batch::schema(records.shape());
        let (tx, queue) = unbounded();
        let policy = config.on_bad_record;
        let guards = {
            let tickets = tickets.clone();
            timely::execute(timely::Config::process(threads), move |worker| {
                batch_priority();
                let (records, order, normalizer, schema, tickets, tx, stopper) = (
                    records.clone(),
                    config.order.clone(),
                    normalizer.clone(),
                    schema.clone(),
                    tickets.clone(),
                    tx.clone(),
                    config.stopper.clone(),
                );
                let me = worker.index();
                worker.dataflow::<u64, _, _>(move |scope| {
                    ticket_source(scope, order, tickets.clone())
                        .decode(RecordReader::new(records, policy).stopped_by(stopper))
                        .normalize(normalizer)
                        .to_arrow(schema)
                        .into_ticket_queue(tx, tickets, me);
                });
            })
            .map_err(Error::Dataflow)?
        };
        Ok(AutoLoader {
            tickets,
            queue: Some(queue),
            early: BTreeMap::new(),
            controller: Controller::new(limits),
            guards: Some(guards),
            cursor,
            handed: None,
        })
    }

    /// Batch `ticket`, and the seconds its worker took to build it.
    fn receive(&mut self, ticket: u64) -> std::result::Result<(f64, Result<Batch>), ()> {
        loop {
            if let Some(b) = self.early.remove(&ticket) {
                return Ok(b);
            }
            let queue = self.queue.as_ref().ok_or(())?;
            let (t, secs, batch) = queue.recv().map_err(|_| ())?;
            self.early.insert(t, (secs, batch));
        }
    }
}

impl Iterator for AutoLoader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        let (epoch, index) = self.cursor.advance()?;
        let ticket = (epoch as usize * self.cursor.per_epoch() + index) as u64;
        let asked = Instant::now();
        let work = self.handed.map_or(0.0, |t| (asked - t).as_secs_f64());
        let Ok((built, batch)) = self.receive(ticket) else {
            self.tickets.cancel();
            self.queue = None;
            let results = self.guards.take().map(|g| g.join()).unwrap_or_default();
            self.cursor.stop();
            return Some(Err(stopped_early(
                format!("the workers stopped before epoch {epoch} batch {index}"),
                results,
            )));
        };
        self.tickets.consumed(ticket + 1);
        let wait = asked.elapsed().as_secs_f64();
        let parked = self.tickets.take_parked();
        if index == 0 {
            // The trainer's time between epochs (evaluation) is not a cost of loading.
            self.controller.restart_window();
        } else if let Some(n) = self.controller.observe(wait, work, parked, built) {
            self.tickets.set_active(n);
        }
        self.handed = Some(Instant::now());
        Some(batch)
    }
}

impl BatchStream for AutoLoader {
    fn batches_per_epoch(&self) -> usize {
        self.cursor.per_epoch()
    }
    fn workers(&self) -> usize {
        self.controller.active()
    }
    fn tuning(&self) -> Option<Tuning> {
        Some(self.controller.tuning())
    }
}

impl Drop for AutoLoader {
    fn drop(&mut self) {
        // Stop handing out tickets (parked workers wake and end), then wait for the threads;
        // nothing blocks on the queue, which is unbounded (the tickets bound it).
        self.tickets.cancel();
        if let Some(g) = self.guards.take() {
            let _ = g.join();
        }
    }
}
