//! The statistics pass: `plan → decode → channel sums` over the training split, once per run.
//! Each worker decodes and sums its own chunks; differential merges one record per channel per
//! chunk, never per pixel, and the totals (and the first error) are broadcast to every worker.
//! A cluster runs the same dataflow over every process (`cluster::compute_stats`).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use timely::dataflow::operators::capture::{Capture, Event, Extract};
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Inspect, OkErr};
use timely::execute::execute_directly;
use timely::worker::Worker;

use crate::error::{BadRecord, Error, Result};
use crate::ops::decode::{Decode, DecodedBatch, OnBadRecord, RecordReader};
use crate::ops::plan::{EpochOrder, plan_source};
use crate::ops::stats::{ChannelStatsOp, ChannelSums, Stats};
use crate::ops::wire::Failed;
use crate::source::Records;

/// Records per plan in the statistics pass: big enough that per-batch overhead vanishes, small
/// enough that two or three workers each get several.
const STATS_CHUNK: usize = 4096;

/// Decoded bytes per plan at most: a chunk is decoded whole before it is summed, and 4096
/// photos at 3x224x224 are 617 MB. Measured on the photo workload before this bound: peak RSS
/// grew from 783 to 1,517 MiB with the data set 4x larger (two workers, two whole chunks).
const STATS_CHUNK_BYTES: usize = 32 << 20;

/// Records per plan for records of `shape`.
fn stats_chunk(shape: crate::source::Shape) -> usize {
    (STATS_CHUNK_BYTES / shape.len().max(1)).clamp(1, STATS_CHUNK)
}

/// Computes exact per-channel statistics of `records` on `workers` timely threads (0 = this
/// thread), through the deterministic counterpart of their transforms
/// ([`Records::for_statistics`]). A bad record fails the pass or is skipped as `policy` says; the records skipped
/// come back too, in [`crate::error::RecordId`] order.
pub fn compute_stats(
    records: &Records,
    workers: usize,
    policy: OnBadRecord,
) -> Result<(Stats, Vec<BadRecord>)> {
    records.check_not_empty()?;
    let records = &records.for_statistics()?;
    let skipped = Arc::new(Mutex::new(Vec::new()));
    let dataflow = stats_dataflow(records, policy, skipped.clone());
    let captured = if workers == 0 {
        execute_directly(dataflow)
    } else {
        let guards =
            timely::execute(timely::Config::process(workers), dataflow).map_err(Error::Dataflow)?;
        first_worker(guards.join())
            .map_err(|e| Error::Dataflow(format!("statistics worker failed: {e}")))?
    };
    let mut skipped = std::mem::take(&mut *skipped.lock().expect("skipped lock"));
    skipped.sort_by(|a, b| a.record.cmp(&b.record));
    Ok((read_stats(records, captured)?, skipped))
}

/// What a statistics worker captures: the merged sums, and the errors.
pub type Captured = (
    std::sync::mpsc::Receiver<Event<u64, Vec<((u32, ChannelSums), u64, isize)>>>,
    std::sync::mpsc::Receiver<Event<u64, Vec<Failed>>>,
);

/// `plan → decode → channel sums`, the totals and any error broadcast to every worker.
pub fn stats_dataflow(
    records: &Records,
    policy: OnBadRecord,
    skipped: Arc<Mutex<Vec<BadRecord>>>,
) -> impl Fn(&mut Worker) -> Captured + Send + Sync + 'static {
    let order = EpochOrder {
        records: records.len(),
        batch_size: stats_chunk(records.shape()),
        drop_last: false,
        shuffle: None,
        blocks: records.blocks(),
        window: records.window(),
    };
    let records = records.clone();
    move |worker: &mut Worker| {
        let (records, order, skipped) = (records.clone(), order.clone(), skipped.clone());
        let me = worker.index();
        worker.dataflow::<u64, _, _>(move |scope| {
            let (ok, err) = plan_source(scope, order, 1, Arc::new(AtomicBool::new(false)))
                .decode(RecordReader::new(records, policy))
                .ok_err::<Vec<DecodedBatch>, _, Vec<Failed>, _, _>(move |r| {
                    r.map_err(|e| Failed::new(e, me))
                });
            let sums = ok
                .inspect(move |b: &DecodedBatch| {
                    skipped
                        .lock()
                        .expect("skipped lock")
                        .extend(b.skipped.iter().cloned())
                })
                .channel_sums()
                .inner
                .broadcast()
                .capture();
            (sums, err.broadcast().capture())
        })
    }
}

/// Worker 0's result: after a broadcast, every worker holds the same totals.
pub fn first_worker<T>(results: Vec<Result<T, String>>) -> Result<T, String> {
    let mut first = None;
    for r in results {
        let r = r?;
        first.get_or_insert(r);
    }
    first.ok_or_else(|| "no workers".to_string())
}

/// The statistics from what a worker captured, or the first error any worker met.
pub fn read_stats(records: &Records, (rx, errors): Captured) -> Result<Stats> {
    let first = errors.try_iter().find_map(|event| match event {
        Event::Messages(_, failed) => failed.into_iter().next(),
        Event::Progress(_) => None,
    });
    if let Some(first) = first {
        return Err(first.into());
    }
    let channels = records.shape().channels;
    let mut sums = vec![ChannelSums::default(); channels];
    let mut seen = vec![0isize; channels];
    for (_time, recs) in rx.extract() {
        for ((channel, s), _time, diff) in recs {
            seen[channel as usize] += diff;
            if diff > 0 {
                sums[channel as usize] = s;
            }
        }
    }
    // No sums at all: every record was skipped as bad, so no chunk gave any.
    if seen.iter().all(|&n| n == 0) {
        return Err(Error::Empty {
            source_name: format!("{} (every record was skipped)", records.origin()),
        });
    }
    if let Some(c) = seen.iter().position(|&n| n != 1) {
        return Err(Error::Dataflow(format!(
            "statistics for channel {c} arrived {} times, expected once",
            seen[c]
        )));
    }
    let images = (sums[0].count as usize) / records.shape().plane();
    if images == 0 {
        return Err(Error::Empty {
            source_name: format!("{} (every record was skipped)", records.origin()),
        });
    }
    Ok(Stats::from_sums(images, records.shape(), &sums))
}
