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
