//! Null sink: pulls every batch, touches it, and counts images and seconds.

use std::time::Instant;

use super::EpochReport;
use crate::error::Result;
use crate::pipeline::Loader;

/// Drains `loader`, one report per epoch.
///
/// "Touch" reads every label and one image value per 4 KiB page: enough that a lazy loader
/// could not skip work, little enough that the sink measures the loader, not itself.
pub fn drain(mut loader: Loader) -> Result<Vec<EpochReport>> {
    let mut reports: Vec<EpochReport> = Vec::new();
    let mut checksum = 0f64;
    let mut start = Instant::now();
    let mut current: Option<EpochReport> = None;
    loop {
        let waited = Instant::now();
        let next = loader.next().transpose()?;
        let wait = waited.elapsed().as_secs_f64();
        let Some(batch) = next else { break };
        if current.as_ref().is_some_and(|r| r.epoch != batch.epoch) {
            let mut done = current.take().expect("checked");
            // The epoch ends where the wait for the next epoch's first batch began.
            done.seconds = (waited - start).as_secs_f64();
            reports.push(done);
            start = waited;
        }
        let report = current.get_or_insert(EpochReport {
            epoch: batch.epoch,
            images: 0,
            batches: 0,
            seconds: 0.0,
            data_wait_seconds: 0.0,
        });
        report.data_wait_seconds += wait;
        report.images += batch.rows() as u64;
        report.batches += 1;
        checksum += batch.labels().iter().sum::<i64>() as f64;
        checksum += batch
            .images()
            .iter()
            .step_by(1024)
            .map(|&v| v as f64)
            .sum::<f64>();
    }
    if let Some(mut done) = current {
        done.seconds = start.elapsed().as_secs_f64();
        reports.push(done);
    }
    std::hint::black_box(checksum);
    Ok(reports)
}
