//! Sinks: where batches end up. `train` feeds the seed's network, `null` measures the loader
//! alone; both report one [`metrics::EpochMetrics`] row per epoch, which `metrics` writes as Parquet.
//! `shards` writes the records themselves as Parquet (`flowload convert`).

pub mod metrics;
pub mod null;
pub mod shards;
pub mod train;

/// When the run started and what its statistics pass cost: the run-level columns of each
/// epoch's row.
#[derive(Clone, Copy, Debug)]
pub struct RunClock {
    pub start: std::time::Instant,
    pub stats_seconds: f64,
}

/// A sink's view of one epoch of the loader: each batch in turn, with the time spent waiting
/// for it and the records it skipped (listed in epoch 0 only: later epochs skip the same ones).
pub(crate) struct EpochFeed<'a> {
    loader: &'a mut crate::pipeline::Loader,
    epoch: u32,
    skipped: &'a mut Vec<crate::ops::decode::Skipped>,
    pub wait: f64,
    pub skips: u64,
    /// Bytes of this epoch's batches that came from other processes.
    pub bytes: u64,
}

impl<'a> EpochFeed<'a> {
    pub fn new(
        loader: &'a mut crate::pipeline::Loader,
        epoch: u32,
        skipped: &'a mut Vec<crate::ops::decode::Skipped>,
    ) -> Self {
        EpochFeed {
            loader,
            epoch,
            skipped,
            wait: 0.0,
            skips: 0,
            bytes: 0,
        }
    }

    pub fn next_batch(&mut self) -> crate::Result<crate::ops::batch::Batch> {
        let started = std::time::Instant::now();
        let batch = self.loader.next().ok_or_else(|| {
            crate::Error::Dataflow(format!("the loader ended early in epoch {}", self.epoch))
        })??;
        self.wait += started.elapsed().as_secs_f64();
        self.skips += batch.skipped.len() as u64;
        self.bytes += batch.wire_bytes;
        if self.epoch == 0 {
            self.skipped.extend(batch.skipped.iter().cloned());
        }
        Ok(batch)
    }
}
