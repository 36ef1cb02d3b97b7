//! Both sides of a sweep's session protocol, next to each other. Process 0 announces each run's
//! statistics pass and epochs ([`Announcer`]); processes 1.. follow the announcements, building
//! their share of each ([`serve_sweep`]), until process 0 says the sweep is done.

use flowload_core::cluster::{
    Announce, FollowerCluster, FollowerProcess, Session, TrainerCluster, TrainerProcess,
};
use flowload_core::{CacheSetting, ClusterError, Position, Stats, Tuning, WireFormat};

use super::{Prepared, loader_settings, prepare};
use crate::config::{RunParams, SweepConfig};
use crate::error::Result;

/// Process 0's side: it opens every session of the sweep, each for what it announces.
pub(crate) struct Announcer {
    cluster: TrainerCluster,
    /// How batches travel to process 0.
    pub(crate) wire: WireFormat,
}

impl Announcer {
    /// Listens on process 0's address; processes with another configuration are refused.
    pub(crate) fn bind(
        process: &TrainerProcess,
        prepared: &Prepared,
        wire: WireFormat,
    ) -> Result<Announcer> {
        let fingerprint = prepared.fingerprint(wire);
        Ok(Announcer {
            cluster: TrainerCluster::bind(process, fingerprint)?,
            wire,
        })
    }

    /// The session of run `run`'s statistics pass, on `threads` workers per process.
    pub(crate) fn stats(&mut self, run: u32, threads: usize) -> Result<Session> {
        let threads = threads as u32;
        Ok(self.cluster.open(Announce::Stats { run, threads })?)
    }

    /// The session of run `run`'s epochs, on `threads` decode threads per process, from
    /// `start` (a checkpoint's position, or the first batch).
    pub(crate) fn epochs(&mut self, run: u32, threads: usize, start: Position) -> Result<Session> {
        let threads = threads as u32;
        Ok(self.cluster.open(Announce::Epochs {
            run,
            threads,
            start,
        })?)
    }

    /// Tells the others that the sweep is over.
    pub(crate) fn finish(self) -> Result<()> {
        Ok(self.cluster.finish()?)
    }
}

/// Processes 1.. of a cluster: follows process 0's announcements — each run's statistics pass
/// and epochs — building this process's share of the batches, until process 0 says done.
/// `on_run` is called after each run this process served, with where `--workers auto` settled
/// here.
pub fn serve_sweep(
    pipeline: &SweepConfig,
    process: &FollowerProcess,
    wire: WireFormat,
    cache: &CacheSetting,
    mut on_run: impl FnMut(&RunParams, usize, Option<Tuning>),
) -> Result<()> {
    let prepared = prepare(pipeline, process.spec().processes, cache)?;
    let mut cluster = FollowerCluster::bind(process, prepared.fingerprint(wire))?;
    let train = &prepared.data.train;
    let mut stats: Option<(u32, Stats)> = None;
    loop {
        let session = cluster.next_session()?;
        match session.announce {
            Announce::Done => return Ok(()),
            Announce::Stats { run, .. } => {
                prepared.run(run)?;
                let s = Stats::pass(train)
                    .on_bad_record(pipeline.on_bad_record)
                    .store(prepared.store.as_ref())
                    .cluster(session)
                    .run()?;
                stats = Some((run, s.stats));
            }
            Announce::Epochs { run, start, .. } => {
                let p = prepared.run(run)?;
                // Only `--wire arrow` normalizes here; `raw` leaves it to process 0.
                let run_stats = match (&prepared.given_stats, &stats) {
                    (Some(s), _) => Some(s),
                    (None, Some((r, s))) if *r == run => Some(s),
                    _ => None,
                };
                if p.normalize && wire == WireFormat::Arrow && run_stats.is_none() {
                    return Err(ClusterError::Protocol(format!(
                        "run {run}: epochs announced before the statistics pass"
                    ))
                    .into());
                }
                // This process has no trainer: auto may use every core it has, up to the
                // threads announced.
                let tuning = loader_settings(pipeline, p, train, false)
                    .start_at(start)
                    .normalize(run_stats.filter(|_| p.normalize))
                    .wire(wire)
                    .cluster(session)
                    .serve()?;
                on_run(p, prepared.runs.len(), tuning);
            }
        }
    }
}
