//! Sinks: where batches end up. `train` feeds the seed's network, `null` measures the loader
//! alone; both report one [`metrics::EpochMetrics`] row per epoch, which `metrics` writes as Parquet.
//! `shards` writes the records themselves as Parquet (`flowload convert`).

pub mod metrics;
pub mod null;
pub mod shards;
pub mod train;
