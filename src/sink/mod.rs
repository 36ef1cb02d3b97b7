//! Sinks: where batches end up. `null` measures the loader alone.

pub mod null;

use serde::Serialize;

/// What one epoch cost, as the consumer saw it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpochReport {
    pub epoch: u32,
    pub images: u64,
    pub batches: u64,
    pub seconds: f64,
    /// Time the consumer was blocked waiting for the next batch; with `workers = 0` this is the
    /// time spent building batches inline.
    pub data_wait_seconds: f64,
}

impl EpochReport {
    pub fn images_per_second(&self) -> f64 {
        self.images as f64 / self.seconds
    }
}
