//! The `--workers auto` source: batches handed out in run order, one at a time, to whichever
//! active worker asks first, within a window of batches ahead of the trainer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, StreamVec};

use super::plan::{BatchPlan, EpochOrder};

/// How long a parked worker sleeps before it looks again for a cancelled run.
const PARK: Duration = Duration::from_millis(50);

/// The dispenser shared by the workers and the consumer. A ticket is a batch's run position
/// (`epoch · batches_per_epoch + index`); tickets go out in order, and only while fewer than
/// `per_worker × active` are out ahead of the consumer, so that what is prefetched is bounded.
pub(crate) struct Tickets {
    state: Mutex<State>,
    changed: Condvar,
    /// Nanoseconds active workers spent parked on a full window (not counting the run's end).
    parked_ns: AtomicU64,
}

struct State {
    next: u64,
    total: u64,
    consumed: u64,
    active: usize,
    per_worker: u64,
    cancelled: bool,
    /// Each worker's tickets in the order it took them, and when: its outputs come out in
    /// that order.
    taken: Vec<VecDeque<(u64, Instant)>>,
}

impl Tickets {
    /// Tickets `first..total` for `workers` threads, of which one is active; `per_worker` is
    /// how many each may have out (prefetch + the one being built).
    pub(crate) fn new(first: u64, total: u64, workers: usize, per_worker: usize) -> Tickets {
        Tickets {
            state: Mutex::new(State {
                next: first,
                total,
                consumed: first,
                active: 1,
                per_worker: per_worker.max(1) as u64,
                cancelled: false,
                taken: vec![VecDeque::new(); workers],
            }),
            changed: Condvar::new(),
            parked_ns: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A worker that panicked while holding the lock leaves valid counters behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next ticket for `worker`, waiting while it is inactive or the window is full;
    /// `None` when the run is over or cancelled.
    pub(crate) fn take(&self, worker: usize) -> Option<u64> {
        let mut s = self.lock();
        loop {
            let active = match s.grant(worker) {
                Take::Ticket(t) => return Some(t),
                Take::Done => return None,
                Take::Wait { active, .. } => active,
            };
            let parked = Instant::now();
            s = self
                .changed
                .wait_timeout(s, PARK)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if active && s.next < s.total {
                self.add_parked(parked.elapsed());
            }
        }
    }

    /// `worker`'s next output: its ticket, and the seconds it took to build — from when the
    /// ticket was taken, or from the worker's previous output (`previous`, updated here) if that
    /// came later: a ticket taken early waited for it.
    pub(crate) fn built(&self, worker: usize, previous: &mut Option<Instant>) -> (u64, f64) {
        // Each plan the source gave makes exactly one output, in order.
        let (ticket, taken) = self.lock().taken[worker]
            .pop_front()
            .expect("one output per ticket taken");
        let now = Instant::now();
        let start = previous.map_or(taken, |p| p.max(taken));
        *previous = Some(now);
        (ticket, (now - start).as_secs_f64())
    }

    /// The consumer has taken every batch before `through` (never moves back: in a cluster,
    /// workers learn it from their probes at different moments).
    pub(crate) fn consumed(&self, through: u64) {
        let mut s = self.lock();
        if through > s.consumed {
            s.consumed = through;
            drop(s);
            self.changed.notify_all();
        }
    }

    /// [`Tickets::take`] without waiting, for a cluster's workers, which must keep stepping to
    /// answer the network.
    pub(crate) fn try_take(&self, worker: usize) -> Take {
        self.lock().grant(worker)
    }

    /// Adds time an active worker spent waiting for a ticket on a full window.
    pub(crate) fn add_parked(&self, d: Duration) {
        self.parked_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn set_active(&self, n: usize) {
        self.lock().active = n.max(1);
        self.changed.notify_all();
    }

    pub(crate) fn cancel(&self) {
        self.lock().cancelled = true;
        self.changed.notify_all();
    }

    /// Seconds the active workers have spent parked on a full window since the last call.
    pub(crate) fn take_parked(&self) -> f64 {
        self.parked_ns.swap(0, Ordering::Relaxed) as f64 * 1e-9
    }
}

/// The plan of any run position, keeping the current epoch's permutation (a worker's tickets
/// only go forward, so each epoch's is made once per worker).
struct Plans {
    order: EpochOrder,
    per_epoch: u64,
    permutation: Option<(u32, Vec<u32>)>,
}

impl Plans {
    fn new(order: EpochOrder) -> Plans {
        Plans {
            per_epoch: order.batches_per_epoch().max(1) as u64,
            order,
            permutation: None,
        }
    }

    fn at(&mut self, seq: u64) -> BatchPlan {
        let (epoch, index) = (
            (seq / self.per_epoch) as u32,
            (seq % self.per_epoch) as usize,
        );
        if self.permutation.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.permutation = Some((epoch, self.order.permutation(epoch)));
        }
        let (_, perm) = self.permutation.as_ref().expect("set above");
        self.order.plan(epoch, perm, index)
    }
}

impl State {
    /// The next ticket for `worker` if it is active and the window has room.
    fn grant(&mut self, worker: usize) -> Take {
        if self.cancelled || self.next >= self.total {
            return Take::Done;
        }
        let active = worker < self.active;
        if active && self.next < self.consumed + self.per_worker * self.active as u64 {
            let t = self.next;
            self.next += 1;
            self.taken[worker].push_back((t, Instant::now()));
            return Take::Ticket(t);
        }
        Take::Wait {
            active,
            next: self.next,
        }
    }
}

/// What [`Tickets::try_take`] gives.
pub(crate) enum Take {
    Ticket(u64),
    /// None now: the worker is inactive, or the window is full; `next` is the next ticket.
    Wait {
        active: bool,
        next: u64,
    },
    Done,
}

/// One process's share of a cluster run: the batches at run positions `seq` with
/// `seq mod processes = process`, as tickets `0, 1, …` of its own dispenser.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Share {
    pub process: usize,
    pub processes: usize,
}

impl Share {
    /// Tickets of this share among `total` batches.
    pub(crate) fn tickets(&self, total: u64) -> u64 {
        let (p, n) = (self.process as u64, self.processes as u64);
        if total > p {
            (total - p).div_ceil(n)
        } else {
            0
        }
    }
    /// The run position of ticket `k`.
    pub(crate) fn seq(&self, k: u64) -> u64 {
        k * self.processes as u64 + self.process as u64
    }
    /// Tickets of this share before run position `seq`.
    pub(crate) fn before(&self, seq: u64) -> u64 {
        let p = self.process as u64;
        if seq > p {
            (seq - p).div_ceil(self.processes as u64)
        } else {
            0
        }
    }
}

/// How often a cluster worker without a ticket looks again: as the gated plan source.
const POLL: Duration = Duration::from_millis(1);

/// A cluster's `--workers auto` source: the plans of this process's share, taken from its
/// dispenser by whichever active worker asks, at time = run position, each only while this
/// process has fewer than its window out ahead of the trainer — whose position is the frontier
/// of `probe`, where batches are handed over. A worker without a ticket holds its capability at
/// the dispenser's next ticket (no worker of this process can emit anything earlier) and polls.
pub(crate) fn gated_ticket_source<'scope>(
    scope: Scope<'scope, u64>,
    order: EpochOrder,
    tickets: std::sync::Arc<Tickets>,
    share: Share,
    probe: timely::dataflow::ProbeHandle<u64>,
) -> StreamVec<'scope, u64, BatchPlan> {
    // This worker's index within its process: timely numbers a cluster's workers process by
    // process.
    let me = scope.index() % (scope.peers() / share.processes).max(1);
    let mut plans = Plans::new(order);
    let mut waiting: Option<Instant> = None;
    source::<_, CapacityContainerBuilder<Vec<BatchPlan>>, _, _>(
        scope,
        "GatedTickets",
        move |cap, info| {
            let activator = scope.activator_for(info.address);
            let mut cap = Some(cap);
            move |output| {
                let Some(c) = cap.as_mut() else { return };
                let trainer = probe.with_frontier(|f| f.iter().min().copied());
                tickets.consumed(share.before(trainer.unwrap_or(u64::MAX)));
                match tickets.try_take(me) {
                    Take::Ticket(k) => {
                        if let Some(t) = waiting.take() {
                            tickets.add_parked(t.elapsed());
                        }
                        let seq = share.seq(k);
                        c.downgrade(&seq);
                        output.session(&*c).give(plans.at(seq));
                        activator.activate();
                    }
                    Take::Wait { active, next } => {
                        let next = share.seq(next);
                        if next > *c.time() {
                            c.downgrade(&next);
                        }
                        match (active, waiting) {
                            (true, Some(t)) => {
                                tickets.add_parked(t.elapsed());
                                waiting = Some(Instant::now());
                            }
                            (true, None) => waiting = Some(Instant::now()),
                            (false, _) => waiting = None,
                        }
                        activator.activate_after(POLL);
                    }
                    Take::Done => cap = None,
                }
            }
        },
    )
}

/// Cancels the run's tickets when dropped by a panicking thread. The auto loader's workers
/// share one queue, so a worker that died would leave the consumer waiting for its ticket while
/// the others park on the window; cancelling ends them all, the queue disconnects, and the
/// consumer reports the panic.
pub(crate) struct CancelOnPanic(pub std::sync::Arc<Tickets>);

impl Drop for CancelOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.cancel();
        }
    }
}

/// Emits the plans of the tickets this worker takes, at time = epoch, until none is left.
/// Blocking in [`Tickets::take`] parks the worker thread: its dataflow exchanges nothing with
/// the others, and it holds no batch while parked (the previous one has gone to the queue).
pub(crate) fn ticket_source<'scope>(
    scope: Scope<'scope, u64>,
    order: EpochOrder,
    tickets: std::sync::Arc<Tickets>,
) -> StreamVec<'scope, u64, BatchPlan> {
    let me = scope.index();
    let mut plans = Plans::new(order);
    // Lives as long as this operator: a panic anywhere in the worker's dataflow drops it.
    let watch = CancelOnPanic(tickets.clone());
    source::<_, CapacityContainerBuilder<Vec<BatchPlan>>, _, _>(
        scope,
        "Tickets",
        move |cap, info| {
            let activator = scope.activator_for(info.address);
            let mut cap = Some(cap);
            move |output| {
                let Some(c) = cap.as_mut() else { return };
                let Some(ticket) = watch.0.take(me) else {
                    cap = None;
                    return;
                };
                let plan = plans.at(ticket);
                if plan.epoch as u64 > *c.time() {
                    c.downgrade(&(plan.epoch as u64));
                }
                output.session(&*c).give(plan);
                activator.activate();
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_window_bounds_tickets_and_a_panicking_worker_cancels_the_rest() {
        let t = Arc::new(Tickets::new(0, 10, 2, 2));
        // One active worker, 2 tickets ahead of the consumer.
        assert_eq!((t.take(0), t.take(0)), (Some(0), Some(1)));
        assert!(matches!(
            t.try_take(0),
            Take::Wait {
                active: true,
                next: 2
            }
        ));
        assert!(matches!(t.try_take(1), Take::Wait { active: false, .. }));
        t.consumed(1);
        assert!(matches!(t.try_take(0), Take::Ticket(2)));
        t.set_active(2);
        assert!(matches!(t.try_take(1), Take::Ticket(3)));
        assert!(matches!(t.try_take(0), Take::Ticket(4)), "2 × 2 ahead of 1");
        assert!(matches!(t.try_take(1), Take::Wait { active: true, .. }));
        // Worker 1 is blocked on the full window when worker 0 panics.
        let waiter = {
            let t = t.clone();
            std::thread::spawn(move || t.take(1))
        };
        let dying = {
            let t = t.clone();
            std::thread::spawn(move || {
                let _watch = CancelOnPanic(t);
                panic!("a worker fails");
            })
        };
        assert!(dying.join().is_err());
        assert_eq!(
            waiter.join().unwrap(),
            None,
            "cancelled: no ticket, no hang"
        );
        assert!(matches!(t.try_take(0), Take::Done));
    }

    #[test]
    fn a_share_numbers_its_tickets_by_run_position() {
        let s = Share {
            process: 1,
            processes: 3,
        };
        assert_eq!(s.tickets(10), 3); // 1, 4, 7
        assert_eq!((s.seq(0), s.seq(2)), (1, 7));
        assert_eq!(
            (s.before(0), s.before(1), s.before(2), s.before(5)),
            (0, 0, 1, 2)
        );
        assert_eq!(s.tickets(1), 0);
    }
}
