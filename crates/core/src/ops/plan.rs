//! The source operator: per-epoch seeded order, cut into batch plans, dealt round-robin to workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;
use timely::container::CapacityContainerBuilder;

use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

/// Which records make up which batch, epoch by epoch. Cheap to clone and the same on every worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EpochOrder {
    pub records: usize,
    pub batch_size: usize,
    pub drop_last: bool,
    /// `None` reads records in file order; `Some(seed)` shuffles each epoch from `(seed, epoch)`.
    pub shuffle: Option<u64>,
    /// Sizes of the blocks a streaming source reads whole (Parquet row groups), in file order.
    /// Empty or a single block: a full permutation of the records.
    pub blocks: Vec<usize>,
    /// Rows per shuffle window when there are blocks ([`crate::source::Records::window`]).
    pub window: usize,
    /// This process's slice of every batch, for data-parallel training.
    pub shard: Shard,
}

/// Rank `rank` of `world` takes rows `len·rank/world .. len·(rank+1)/world` of every batch, so
/// that the slices of all ranks, in rank order, are the batch one process would build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Shard {
    pub rank: usize,
    pub world: usize,
}

impl Default for Shard {
    fn default() -> Shard {
        Shard { rank: 0, world: 1 }
    }
}

impl Shard {
    /// This rank's part of a batch's rows.
    pub(crate) fn slice<'a>(&self, rows: &'a [u32]) -> &'a [u32] {
        let len = rows.len();
        &rows[len * self.rank / self.world..len * (self.rank + 1) / self.world]
    }
}

/// One batch to build: its position in the run and the record indices, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BatchPlan {
    pub epoch: u32,
    pub index: usize,
    pub rows: Vec<u32>,
}

impl EpochOrder {
    /// 0 for a batch size of 0, which the loaders refuse ([`crate::loader`]'s `check_config`).
    pub(crate) fn batches_per_epoch(&self) -> usize {
        if self.batch_size == 0 {
            0
        } else if self.drop_last {
            self.records / self.batch_size
        } else {
            self.records.div_ceil(self.batch_size)
        }
    }

    /// The record order of `epoch`. Each epoch has its own ChaCha stream, so any worker can
    /// compute any epoch's order without replaying earlier ones.
    pub(crate) fn permutation(&self, epoch: u32) -> Vec<u32> {
        let Some(seed) = self.shuffle else {
            return (0..self.records as u32).collect();
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(epoch as u64);
        if self.blocks.len() <= 1 {
            let mut order: Vec<u32> = (0..self.records as u32).collect();
            order.shuffle(&mut rng);
            return order;
        }
        let mut starts = Vec::with_capacity(self.blocks.len());
        let mut first = 0u32;
        for &len in &self.blocks {
            starts.push((first, len as u32));
            first += len as u32;
        }
        starts.shuffle(&mut rng);
        let mut order = Vec::with_capacity(self.records);
        let mut window_start = 0;
        for (first, len) in starts {
            order.extend(first..first + len);
            if order.len() - window_start >= self.window {
                order[window_start..].shuffle(&mut rng);
                window_start = order.len();
            }
        }
        order[window_start..].shuffle(&mut rng);
        order
    }

    pub(crate) fn plan(&self, epoch: u32, permutation: &[u32], index: usize) -> BatchPlan {
        let start = index * self.batch_size;
        let end = (start + self.batch_size).min(self.records);
        BatchPlan {
            epoch,
            index,
            rows: self.shard.slice(&permutation[start..end]).to_vec(),
        }
    }
}

/// Batch `index` of every epoch is built by worker `index % peers`; the consumer reads the
/// workers' queues in the same rotation, which is what makes the sequence independent of `peers`.
pub(crate) fn owner(index: usize, peers: usize) -> usize {
    index % peers
}

/// One worker's share of the run: the plans of the batches it owns, epoch by epoch, in order.
struct Planner {
    order: EpochOrder,
    epochs: u32,
    per_epoch: usize,
    me: usize,
    peers: usize,
    epoch: u32,
    permutation: Vec<u32>,
    next: usize,
}

impl Planner {
    /// From run position `start` ([`sequence`]) on: its epoch, and in it the first batch at or
    /// after `start` that this worker owns.
    fn new(order: EpochOrder, epochs: u32, start: u64, me: usize, peers: usize) -> Self {
        let per_epoch = order.batches_per_epoch().max(1);
        let epoch = (start / per_epoch as u64) as u32;
        let first = (start % per_epoch as u64) as usize;
        Planner {
            per_epoch: order.batches_per_epoch(),
            permutation: order.permutation(epoch),
            order,
            epochs,
            me,
            peers,
            epoch,
            next: first + (me + peers - first % peers) % peers,
        }
    }

    /// `(epoch, index)` of the next plan, without computing it; `None` when done.
    fn peek(&mut self) -> Option<(u32, usize)> {
        if self.next >= self.per_epoch {
            // A worker's first batch of an epoch is batch `me`: with fewer batches than that,
            // it owns none in any epoch (and must not walk through them all to find out: a
            // Python loader runs `u32::MAX` epochs).
            if self.epoch.saturating_add(1) >= self.epochs || self.me >= self.per_epoch {
                self.epoch = self.epochs;
                return None;
            }
            self.epoch += 1;
            self.next = self.me;
            self.permutation = self.order.permutation(self.epoch);
        }
        (self.epoch < self.epochs).then_some((self.epoch, self.next))
    }

    fn take(&mut self) -> Option<BatchPlan> {
        let (epoch, index) = self.peek()?;
        self.next += self.peers;
        Some(self.order.plan(epoch, &self.permutation, index))
    }
}

/// Emits this worker's batch plans from run position `start` to the end of epoch `epochs − 1`,
/// one plan per activation, at time = epoch.
///
/// Stops early when `cancel` is set (the consumer went away). Back-pressure comes from the queue
/// operator downstream, which blocks this worker while its queue is full.
pub(crate) fn plan_source<'scope>(
    scope: Scope<'scope, u64>,
    order: EpochOrder,
    epochs: u32,
    start: u64,
    cancel: Arc<AtomicBool>,
) -> StreamVec<'scope, u64, BatchPlan> {
    let mut planner = Planner::new(order, epochs, start, scope.index(), scope.peers());
    source::<_, CapacityContainerBuilder<Vec<BatchPlan>>, _, _>(scope, "Plan", move |cap, info| {
        let activator = scope.activator_for(info.address);
        let mut cap = Some(cap);
        move |output| {
            let Some(c) = cap.as_mut() else { return };
            match planner.take() {
                Some(plan) if !cancel.load(Ordering::Relaxed) => {
                    if plan.epoch as u64 > *c.time() {
                        c.downgrade(&(plan.epoch as u64));
                    }
                    output.session(&*c).give(plan);
                    activator.activate();
                }
                _ => cap = None,
            }
        }
    })
}

/// Emits `plans`, a fixed list, one per activation, each at its time (the times do not
/// decrease): the statistics pass's chunks, stamped with their shard, so that a shard's sums
/// are complete, and kept, as soon as every worker is past it. One at a time, so that each
/// chunk is decoded and summed before the next is read.
pub(crate) fn list_source<'scope>(
    scope: Scope<'scope, u64>,
    plans: Vec<(u64, BatchPlan)>,
) -> StreamVec<'scope, u64, BatchPlan> {
    let mut plans = plans.into_iter();
    source::<_, CapacityContainerBuilder<Vec<BatchPlan>>, _, _>(scope, "Plans", move |cap, info| {
        let activator = scope.activator_for(info.address);
        let mut cap = Some(cap);
        move |output| {
            let Some(c) = cap.as_mut() else { return };
            match plans.next() {
                Some((time, plan)) => {
                    c.downgrade(&time);
                    output.session(&*c).give(plan);
                    activator.activate();
                }
                None => cap = None,
            }
        }
    })
}

/// How far ahead of the trainer a [`gated_plan_source`] may run.
#[derive(Clone)]
pub(crate) struct Gate {
    /// Watches the point where batches are handed to the trainer.
    pub probe: ProbeHandle<u64>,
    /// Batches planned beyond the last one handed over, across all workers.
    pub window: u64,
}

/// The run position of a batch: `epoch · batches_per_epoch + index`, the timestamp that gated
/// dataflows carry so that a probe can tell how far the trainer has got.
pub(crate) fn sequence(order: &EpochOrder, epoch: u32, index: usize) -> u64 {
    epoch as u64 * order.batches_per_epoch() as u64 + index as u64
}

/// Emits this worker's batch plans at time = [`sequence`], each only once the trainer has taken
/// every batch more than `gate.window` positions before it.
///
/// This is back-pressure across processes: a blocked worker thread would stop only itself,
/// while the probe's frontier is shared by every worker of the cluster. While gated the source
/// polls every millisecond instead of spinning, leaving the cores to the trainer.
pub(crate) fn gated_plan_source<'scope>(
    scope: Scope<'scope, u64>,
    order: EpochOrder,
    epochs: u32,
    start: u64,
    gate: Gate,
) -> StreamVec<'scope, u64, BatchPlan> {
    let mut planner = Planner::new(order.clone(), epochs, start, scope.index(), scope.peers());
    source::<_, CapacityContainerBuilder<Vec<BatchPlan>>, _, _>(
        scope,
        "GatedPlan",
        move |cap, info| {
            let activator = scope.activator_for(info.address);
            let mut cap = Some(cap);
            move |output| {
                let Some(c) = cap.as_mut() else { return };
                let Some((epoch, index)) = planner.peek() else {
                    cap = None;
                    return;
                };
                let seq = sequence(&order, epoch, index);
                c.downgrade(&seq);
                if seq >= gate.window && gate.probe.less_equal(&(seq - gate.window)) {
                    activator.activate_after(Duration::from_millis(1));
                    return;
                }
                let plan = planner.take().expect("peeked above");
                output.session(&*c).give(plan);
                activator.activate();
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SHUFFLE_WINDOW;

    fn order(shuffle: Option<u64>, drop_last: bool) -> EpochOrder {
        EpochOrder {
            records: 10,
            batch_size: 4,
            drop_last,
            shuffle,
            blocks: vec![],
            window: SHUFFLE_WINDOW,
            shard: Shard::default(),
        }
    }

    #[test]
    fn last_partial_batch_is_kept_unless_drop_last() {
        let o = order(None, false);
        assert_eq!(o.batches_per_epoch(), 3);
        assert_eq!(o.plan(0, &o.permutation(0), 2).rows, vec![8, 9]);
        assert_eq!(order(None, true).batches_per_epoch(), 2);
    }

    #[test]
    fn the_shards_of_a_batch_in_rank_order_are_the_batch() {
        let whole = order(Some(3), false);
        for world in 1..=4 {
            for index in 0..3 {
                let rows: Vec<u32> = (0..world)
                    .flat_map(|rank| {
                        let o = EpochOrder {
                            shard: Shard { rank, world },
                            ..whole.clone()
                        };
                        o.plan(1, &o.permutation(1), index).rows
                    })
                    .collect();
                assert_eq!(rows, whole.plan(1, &whole.permutation(1), index).rows);
            }
        }
    }

    #[test]
    fn a_planner_started_mid_run_plans_what_the_full_run_plans_from_there() {
        let o = order(Some(9), false);
        for peers in 1..=3 {
            let all = |start: u64| {
                let mut plans: Vec<BatchPlan> = (0..peers)
                    .flat_map(|me| {
                        let mut p = Planner::new(o.clone(), 3, start, me, peers);
                        std::iter::from_fn(move || p.take()).collect::<Vec<_>>()
                    })
                    .collect();
                plans.sort_by_key(|p| (p.epoch, p.index));
                plans
            };
            let full = all(0);
            assert_eq!(full.len(), 9);
            for start in 0..9 {
                assert_eq!(
                    all(start),
                    full[start as usize..],
                    "peers {peers} start {start}"
                );
            }
        }
    }

    #[test]
    fn a_worker_without_batches_ends_at_once_however_many_epochs() {
        // One batch per epoch, three workers: workers 1 and 2 own nothing in 4 billion epochs.
        let o = EpochOrder {
            records: 4,
            ..order(Some(1), false)
        };
        assert_eq!(o.batches_per_epoch(), 1);
        for me in 1..3 {
            assert_eq!(Planner::new(o.clone(), u32::MAX, 0, me, 3).take(), None);
        }
        let mut first = Planner::new(o, u32::MAX, 0, 0, 3);
        let plans: Vec<_> = (0..3).map(|_| first.take().unwrap()).collect();
        assert_eq!(plans.iter().map(|p| p.epoch).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn shuffle_is_a_permutation_that_changes_per_epoch_and_seed() {
        let o = order(Some(5), false);
        let (p0, p1) = (o.permutation(0), o.permutation(1));
        let mut sorted = p0.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<u32>>());
        assert_ne!(p0, p1);
        assert_eq!(p0, o.permutation(0));
        assert_ne!(p0, order(Some(6), false).permutation(0));
    }

    #[test]
    fn block_shuffle_keeps_windows_together_and_covers_every_record() {
        let o = EpochOrder {
            records: 3 * SHUFFLE_WINDOW,
            batch_size: 100,
            drop_last: false,
            shuffle: Some(1),
            blocks: vec![SHUFFLE_WINDOW; 3],
            window: SHUFFLE_WINDOW,
            shard: Shard::default(),
        };
        let p = o.permutation(0);
        let mut sorted = p.clone();
        sorted.sort();
        assert_eq!(sorted, (0..o.records as u32).collect::<Vec<_>>());
        // Each window is one whole block, shuffled inside.
        for w in p.chunks(SHUFFLE_WINDOW) {
            let block = w[0] as usize / SHUFFLE_WINDOW;
            assert!(w.iter().all(|&r| r as usize / SHUFFLE_WINDOW == block));
            assert_ne!(
                w,
                &sorted[block * SHUFFLE_WINDOW..(block + 1) * SHUFFLE_WINDOW]
            );
        }
        assert_ne!(p, o.permutation(1));
    }
}
