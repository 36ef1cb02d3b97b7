//! Null sink: pulls every batch, touches it, and counts images and seconds.

use std::time::Instant;

use super::EpochFeed;
use crate::error::Result;
use crate::results::EpochMetrics;
use flowload_core::{BadRecord, Loader};

/// Drains `loader`, one row per epoch (the training columns stay empty). Records skipped in
/// the first epoch are appended to `skipped` (later epochs skip the same ones).
///
/// "Touch" reads every label and one image value per 4 KiB page: enough that a lazy loader
/// could not skip work, little enough that the sink measures the loader, not itself.
pub fn drain(
    loader: &mut Loader,
    epochs: u32,
    clock: super::RunClock,
    skipped: &mut Vec<BadRecord>,
) -> Result<Vec<EpochMetrics>> {
    let per_epoch = loader.batches_per_epoch();
    let mut rows = Vec::with_capacity(epochs as usize);
    let mut checksum = 0f64;
    for epoch in 0..epochs {
        let (mut touch, mut images) = (0.0, 0u64);
        let mut feed = EpochFeed::new(loader, epoch, skipped);
        for _ in 0..per_epoch {
            let batch = feed.next_batch()?;
            let t2 = Instant::now();
            images += batch.rows() as u64;
            checksum += batch.labels().iter().sum::<i64>() as f64;
            checksum += batch
                .images()
                .iter()
                .step_by(1024)
                .map(|&v| v as f64)
                .sum::<f64>();
            touch += t2.elapsed().as_secs_f64();
        }
        rows.push(feed.row(clock, feed.elapsed(), images, touch, None));
    }
    std::hint::black_box(checksum);
    Ok(rows)
}
