//! Sinks: where batches end up. `train` feeds the seed's network, `null` measures the loader
//! alone; both report one [`EpochMetrics`] row per epoch, built here, which `results` writes as
//! Parquet.

pub mod checkpoint;
pub mod null;
pub mod optim;
pub mod train;

use std::time::Instant;

use crate::error::{Error, Result};
use crate::results::EpochMetrics;
use checkpoint::Partial;
use flowload_core::{BadRecord, Batch, Loader, PassReport};

/// When the run started and what its statistics pass cost: the run-level columns of each
/// epoch's row.
#[derive(Clone, Copy, Debug)]
pub struct RunClock {
    pub start: Instant,
    /// The run's seconds before a stop it resumed from (0 for a run in one go).
    pub before: f64,
    pub stats_seconds: f64,
    /// Where the statistics came from, and how many parts were decoded for them.
    pub stats_pass: PassReport,
}

/// What the training sink adds to an epoch's row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Trained {
    pub loss: f64,
    pub accuracy: f64,
    /// Loss and accuracy on the test split, when there is one.
    pub test: Option<(f64, f64)>,
    /// Records of the test split skipped as bad: the accuracy is over the others.
    pub test_skipped: u64,
    pub eval_seconds: f64,
}

/// A sink's view of one epoch of the loader: each batch in turn, with the time spent waiting
/// for it and the records it skipped (listed in epoch 0 only: later epochs skip the same ones).
pub(crate) struct EpochFeed<'a> {
    loader: &'a mut Loader,
    epoch: u32,
    skipped: &'a mut Vec<BadRecord>,
    started: Instant,
    /// Training seconds of this epoch before a stop it resumed from.
    before: f64,
    wait: f64,
    skips: u64,
    /// Bytes of this epoch's batches that came from other processes.
    bytes: u64,
}

impl<'a> EpochFeed<'a> {
    /// Starts the epoch's clock.
    pub fn new(loader: &'a mut Loader, epoch: u32, skipped: &'a mut Vec<BadRecord>) -> Self {
        EpochFeed {
            loader,
            epoch,
            skipped,
            started: Instant::now(),
            before: 0.0,
            wait: 0.0,
            skips: 0,
            bytes: 0,
        }
    }

    /// Goes on with an epoch that a checkpoint stopped part-way: its waits, skips and seconds
    /// so far count.
    pub fn carrying(mut self, before: &Partial) -> Self {
        self.before = before.epoch_seconds;
        self.wait = before.data_wait_seconds;
        self.skips = before.skipped_records;
        self.bytes = before.bytes_received;
        self
    }

    /// This epoch's figures so far, for a checkpoint.
    pub fn partial(&self, images: u64, compute_seconds: f64, checkpoint_seconds: f64) -> Partial {
        Partial {
            images,
            epoch_seconds: self.elapsed(),
            data_wait_seconds: self.wait,
            compute_seconds,
            checkpoint_seconds,
            skipped_records: self.skips,
            bytes_received: self.bytes,
        }
    }

    pub fn next_batch(&mut self) -> Result<Batch> {
        let started = Instant::now();
        let batch = self.loader.next().ok_or_else(|| {
            Error::Core(flowload_core::Error::Dataflow(format!(
                "the loader ended early in epoch {}",
                self.epoch
            )))
        })??;
        self.wait += started.elapsed().as_secs_f64();
        self.skips += batch.skipped.len() as u64;
        self.bytes += batch.wire_bytes;
        if self.epoch == 0 {
            self.skipped.extend(batch.skipped.iter().cloned());
        }
        Ok(batch)
    }

    /// The records skipped so far in epoch 0 (`skipped.parquet` lists them), for a checkpoint.
    pub fn skipped_so_far(&self) -> Vec<BadRecord> {
        self.skipped.clone()
    }

    /// Seconds of the epoch: since it started, and before a stop it resumed from.
    pub fn elapsed(&self) -> f64 {
        self.before + self.started.elapsed().as_secs_f64()
    }

    /// The epoch's row: `epoch_seconds` of loading and stepping over `images` images, of which
    /// `compute_seconds` were the sink's own work, and what training measured if it trained.
    pub fn row(
        &self,
        clock: RunClock,
        epoch_seconds: f64,
        images: u64,
        compute_seconds: f64,
        trained: Option<Trained>,
    ) -> EpochMetrics {
        let test = trained.and_then(|t| t.test);
        EpochMetrics {
            epoch: self.epoch + 1,
            loss: trained.map(|t| t.loss),
            accuracy: trained.map(|t| t.accuracy),
            test_loss: test.map(|t| t.0),
            test_accuracy: test.map(|t| t.1),
            epoch_seconds,
            run_seconds: clock.before + clock.start.elapsed().as_secs_f64(),
            images,
            workers: self.loader.workers() as u32,
            bytes_received: self.bytes,
            skipped_records: self.skips,
            test_skipped_records: trained.map_or(0, |t| t.test_skipped),
            images_per_second: images as f64 / epoch_seconds,
            data_wait_seconds: self.wait,
            compute_seconds,
            eval_seconds: trained.map_or(0.0, |t| t.eval_seconds),
            stats_seconds: clock.stats_seconds,
            stats_source: Some(clock.stats_pass.source),
            stats_shards: clock.stats_pass.parts,
            stats_shards_decoded: clock.stats_pass.decoded,
            resumed_from: None,
            checkpoint_seconds: 0.0,
            checkpoint_share: 0.0,
        }
    }
}
