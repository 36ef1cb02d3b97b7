//! The statistics pass: a differential collection of per-part sums, totalled per channel.
//!
//! A data set is made of parts (Parquet shards, class directories, an in-memory split). Each
//! part's sums are one record of the collection. At time 0 the data set's previous version
//! enters, as the statistics cache last saw it; at time 1 that version is retracted and the
//! current one added: the parts the cache knows as records, the others decoded and summed
//! (`plan → decode → part sums`). Parts that did not change cancel out, so the totals change
//! by what was removed, added or rewritten. The totals, and every part, are broadcast to every
//! worker. A cluster runs the same dataflow over every process (`cluster::compute_stats`),
//! each process contributing the parts it owns.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use differential_dataflow::input::Input;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::capture::{Capture, Event};
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Inspect, OkErr};
use timely::execute::execute_directly;
use timely::worker::Worker;
use twox_hash::XxHash3_128;

use super::cluster::join_cluster;
use crate::cluster::Session;
use crate::content::{metadata_key, part_ids};
use crate::error::{BadRecord, Error, Result};
use crate::error::{Failed, OnBadRecord};
use crate::ops::decode::{Decode, DecodedBatch, RecordReader};
use crate::ops::plan::{BatchPlan, list_source};
use crate::ops::stats::{ChannelTotalsOp, PartSumsOp};
use crate::source::{Part, Records};
use crate::stats::{ChannelSums, PartId, PartSums, Stats, StatsStore};

/// Records per plan in the statistics pass: big enough that per-batch overhead vanishes, small
/// enough that two or three workers each get several.
const STATS_CHUNK: usize = 4096;

/// Decoded bytes per plan at most: a chunk is decoded whole before it is summed, and 4096
/// photos at 3x224x224 are 617 MB. Measured on the photo workload before this bound: peak RSS
/// grew from 783 to 1,517 MiB with the data set 4x larger (two workers, two whole chunks).
const STATS_CHUNK_BYTES: usize = 32 << 20;

/// Records per plan for records of `shape`.
fn stats_chunk(shape: crate::shape::Shape) -> usize {
    (STATS_CHUNK_BYTES / shape.len().max(1)).clamp(1, STATS_CHUNK)
}

/// Where a run's statistics came from: the `stats_source` column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatsSource {
    /// Normalization is off: no statistics.
    #[default]
    Off,
    /// `--stats FILE`.
    File,
    /// Every part was decoded.
    Computed,
    /// No part was decoded: every part's sums were in the cache.
    Cached,
    /// Some parts were decoded (new or changed ones), the others came from the cache.
    Incremental,
}

impl StatsSource {
    /// Every source, in the order of the column's documentation.
    pub const ALL: [StatsSource; 5] = [
        StatsSource::Off,
        StatsSource::File,
        StatsSource::Computed,
        StatsSource::Cached,
        StatsSource::Incremental,
    ];

    /// Its name in the `stats_source` column and the run's line.
    pub fn name(self) -> &'static str {
        match self {
            StatsSource::Off => "off",
            StatsSource::File => "file",
            StatsSource::Computed => "computed",
            StatsSource::Cached => "cached",
            StatsSource::Incremental => "incremental",
        }
    }

    /// Whether a pass ran: the sums were computed, cached or both.
    pub fn passed(self) -> bool {
        matches!(
            self,
            StatsSource::Computed | StatsSource::Cached | StatsSource::Incremental
        )
    }
}

impl std::str::FromStr for StatsSource {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        StatsSource::ALL
            .into_iter()
            .find(|source| source.name() == s)
            .ok_or_else(|| format!("'{s}' is not a statistics source"))
    }
}

/// How a statistics pass went: where the sums came from, out of how many parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    /// Where the sums came from.
    pub source: StatsSource,
    /// Parts (shards) in the training split.
    pub parts: u32,
    /// Parts decoded by this pass.
    pub decoded: u32,
}

/// A statistics pass's result.
#[derive(Clone, Debug)]
pub struct StatsOutcome {
    /// The statistics.
    pub stats: Stats,
    /// Records this process decoded and skipped as bad, in [`crate::RecordId`] order.
    pub skipped: Vec<BadRecord>,
    /// Records skipped in every part, the cached ones included.
    pub skipped_total: u64,
    /// Where the sums came from.
    pub report: PassReport,
}

impl Stats {
    /// A statistics pass over `records`: exact per-channel sums through the deterministic
    /// counterpart of their transforms ([`crate::Transforms::for_statistics`]), on this thread
    /// and without a cache until set. A bad record fails the pass, or with
    /// [`OnBadRecord::Skip`] is skipped (and skipped again by the loader, which lists it).
    ///
    /// ```
    /// use flowload_core::{Dataset, Stats};
    ///
    /// let data = Dataset::open("synthetic:images=64,channels=3,size=8x8", &Default::default())?;
    /// let pass = Stats::pass(&data.train).workers(2).run()?;
    /// assert_eq!(pass.stats.mean.len(), 3);
    /// assert!(pass.stats.std.iter().all(|s| *s > 0.0));
    /// # Ok::<(), flowload_core::Error>(())
    /// ```
    pub fn pass(records: &Records) -> StatsPass<'_> {
        StatsPass {
            records,
            workers: 0,
            on_bad_record: OnBadRecord::Fail,
            store: None,
            cluster: None,
            before_part: None,
        }
    }
}

/// A statistics pass's settings ([`Stats::pass`]).
pub struct StatsPass<'a> {
    records: &'a Records,
    workers: usize,
    on_bad_record: OnBadRecord,
    store: Option<&'a StatsStore>,
    cluster: Option<Session>,
    pub(crate) before_part: Option<BeforePart>,
}

impl<'a> StatsPass<'a> {
    /// Timely worker threads that decode and sum; 0 (the default) runs on this thread.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// What to do with a record that cannot be decoded. Default: fail, naming it.
    pub fn on_bad_record(mut self, policy: OnBadRecord) -> Self {
        self.on_bad_record = policy;
        self
    }

    /// Takes the sums of the parts it holds from the statistics cache, decodes only the others,
    /// and adds them to it. Default: no cache.
    pub fn store(mut self, store: Option<&'a StatsStore>) -> Self {
        self.store = store;
        self
    }

    /// Runs across a cluster in the session process 0 announced for it: each process sums the
    /// parts it owns, on the threads announced, and every process gets the same totals.
    pub fn cluster(mut self, session: Session) -> Self {
        self.cluster = Some(session);
        self
    }

    /// Runs the pass.
    pub fn run(self) -> Result<StatsOutcome> {
        let (records, policy, store) = (self.records, self.on_bad_record, self.store);
        let owner = match &self.cluster {
            Some(session) => Owner {
                process: session.spec.process,
                processes: session.spec.processes,
            },
            None => Owner::ALONE,
        };
        let mut plan = PassPlan::new(records, policy, store, owner)?;
        plan.before_part = self.before_part;
        let plan = Arc::new(plan);
        let skipped = Arc::new(Mutex::new(Vec::new()));
        let dataflow = pass_dataflow(plan.clone(), policy, skipped.clone());
        let captured = match self.cluster {
            Some(session) => {
                let (failures, threads) = (session.failures.clone(), session.threads());
                let guards = session.execute(threads.max(1), dataflow)?;
                first_worker(join_cluster(guards, &failures)?)
            }
            None if self.workers == 0 => Ok(execute_directly(dataflow)),
            None => {
                let guards = timely::execute(timely::Config::process(self.workers), dataflow)
                    .map_err(Error::Dataflow)?;
                first_worker(guards.join())
            }
        }
        .map_err(|e| Error::Dataflow(format!("statistics worker failed: {e}")))?;
        let mut skipped = std::mem::take(&mut *skipped.lock().expect("skipped lock"));
        skipped.sort_by(|a, b| a.record.cmp(&b.record));
        plan.finish(captured, skipped, store)
    }
}

/// Which process owns which part: part `i` is decoded (or taken from the cache) by process
/// `i mod processes`, so that every part is summed once in the cluster.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owner {
    pub process: usize,
    pub processes: usize,
}

impl Owner {
    /// One process: it owns every part.
    pub(crate) const ALONE: Owner = Owner {
        process: 0,
        processes: 1,
    };
}

/// What one process knows before the pass: every part, the sums of those it owns that the
/// cache holds, the data set's previous version, and the chunks it must decode.
pub(crate) struct PassPlan {
    /// The records as the statistics see them.
    records: Records,
    owner: Owner,
    /// What turns a part's bytes into pixels: half of every cache key.
    settings: String,
    /// The data set's key in the cache (its directories and the settings).
    set: u128,
    parts: Vec<PartId>,
    /// Sums known for the parts this process owns (`None`: decoded by this pass, or not ours).
    known: Vec<Option<PartSums>>,
    /// The data set's previous version (process 0 only): enters at time 0, leaves at time 1.
    previous: Vec<(PartId, PartSums)>,
    /// This process's chunks to decode, each at time 1 + its part's index, and the part of each.
    chunks: Vec<(u64, BatchPlan)>,
    chunk_parts: Arc<Vec<PartId>>,
    /// Where each part decoded goes as soon as its sums are complete.
    store: Option<StatsStore>,
    /// Each part's records and, for parts read from files, what the files looked like when the
    /// part was keyed: sums are kept only for a part that is whole and whose files did not
    /// change while the pass read them (`git checkout` under a running pass).
    checks: Vec<PartCheck>,
    /// Each part's index in `parts`.
    index: HashMap<PartId, usize>,
    policy: OnBadRecord,
    /// Called with a part's name before its first chunk is decoded ([`crate::testing`]).
    pub(crate) before_part: Option<BeforePart>,
}

/// A callback before a part's first record is read.
pub(crate) type BeforePart = Arc<dyn Fn(&str) + Send + Sync>;

/// What a part's sums must agree with to be kept.
struct PartCheck {
    part: Part,
    /// The metadata key of its files when it was keyed; `None` for a part in memory.
    files: Option<u128>,
    /// Pixels per channel of a record.
    plane: usize,
    /// Set once its change has been reported.
    reported: AtomicBool,
}

impl PassPlan {
    pub(crate) fn new(
        records: &Records,
        policy: OnBadRecord,
        store: Option<&StatsStore>,
        owner: Owner,
    ) -> Result<PassPlan> {
        records.check_not_empty()?;
        let records = records.for_statistics()?;
        // Without a cache nothing is looked up by content: the parts need names only, and their
        // files are not read twice.
        let parts = match store {
            Some(_) => part_ids(&records, store),
            None => records
                .parts()
                .into_iter()
                .map(|part| {
                    let id = PartId {
                        name: part.name.clone(),
                        content: 0,
                    };
                    (part, id)
                })
                .collect(),
        };
        let settings = settings(&records, policy);
        let set = set_key(&parts, &settings);
        let previous = match store {
            Some(s) if owner.process == 0 => s.set(set, &settings),
            _ => Vec::new(),
        };
        let classes = records.classes() as i64;
        let plane = records.shape().plane();
        let chunk = stats_chunk(records.shape());
        let checks: Vec<PartCheck> = parts
            .iter()
            .map(|(part, _)| PartCheck {
                files: (!part.files.is_empty()).then(|| metadata_key(part)),
                part: part.clone(),
                plane,
                reported: AtomicBool::new(false),
            })
            .collect();
        let (mut known, mut chunks, mut chunk_parts) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (part, id)) in parts.iter().enumerate() {
            let ours = i % owner.processes == owner.process;
            // A cached entry must be all of this part's records, under this policy: sums that
            // left records out (an earlier `skip` pass, a pass cut short) are not these.
            let covers = |s: &PartSums| s.covers(part.rows.len(), plane, policy);
            let cached = ours
                .then(|| {
                    previous
                        .iter()
                        .find(|(p, s)| p == id && covers(s).is_ok())
                        .map(|(_, s)| s.clone())
                        .or_else(|| store.and_then(|s| s.part(id, &settings, covers)))
                })
                .flatten()
                // Sums taken with more classes hold records that are bad with fewer.
                .filter(|s| s.max_label < classes);
            if ours && cached.is_none() {
                for start in part.rows.clone().step_by(chunk) {
                    let end = (start + chunk).min(part.rows.end);
                    let plan = BatchPlan {
                        epoch: 0,
                        index: chunks.len(),
                        rows: (start as u32..end as u32).collect(),
                    };
                    chunks.push((1 + i as u64, plan));
                    chunk_parts.push(id.clone());
                }
            }
            known.push(cached);
        }
        let index = parts
            .iter()
            .enumerate()
            .map(|(i, (_, id))| (id.clone(), i))
            .collect();
        Ok(PassPlan {
            records,
            owner,
            settings,
            set,
            parts: parts.into_iter().map(|(_, id)| id).collect(),
            known,
            previous,
            chunks,
            chunk_parts: Arc::new(chunk_parts),
            store: store.cloned(),
            checks,
            index,
            policy,
            before_part: None,
        })
    }

    /// Whether `sums` may be kept as part `id`'s: they cover every record of the part, and the
    /// part's files are as they were when it was keyed. A part whose files changed while the
    /// pass read them is reported once, and its sums are not kept: they were taken of what was
    /// decoded, the key of what was hashed.
    fn keepable(&self, id: &PartId, sums: &PartSums) -> bool {
        let Some(check) = self.index.get(id).map(|&i| &self.checks[i]) else {
            return false;
        };
        if sums
            .covers(check.part.rows.len(), check.plane, self.policy)
            .is_err()
        {
            return false;
        }
        let unchanged = check
            .files
            .is_none_or(|key| metadata_key(&check.part) == key);
        if !unchanged && !check.reported.swap(true, Ordering::Relaxed) {
            eprintln!(
                "flowload: warning: statistics cache: {} changed while the statistics pass read it; its sums are not cached (these statistics are of what was read; run again for the data as it is now)",
                check.part.name
            );
        }
        unchanged
    }

    /// The statistics from what a worker captured, or the first error any worker met; the parts
    /// this process did not find in the cache go into it, and process 0 records the data set's
    /// current version.
    pub(crate) fn finish(
        &self,
        (totals, known, decoded, errors): Captured,
        skipped: Vec<BadRecord>,
        store: Option<&StatsStore>,
    ) -> Result<StatsOutcome> {
        let first = errors.try_iter().find_map(|event| match event {
            Event::Messages(_, failed) => failed.into_iter().next(),
            Event::Progress(_) => None,
        });
        if let Some(first) = first {
            return Err(first.into());
        }
        let stats = self.read_totals(&accumulate(totals))?;
        let decoded = accumulate(decoded);
        let decoded_ids: std::collections::BTreeSet<&PartId> =
            decoded.iter().map(|((id, _), _)| id).collect();
        let mut current: BTreeMap<PartId, PartSums> = accumulate(known)
            .into_iter()
            .chain(decoded.iter().cloned())
            .map(|((id, sums), _)| (id, sums))
            .collect();
        let mut list = Vec::with_capacity(self.parts.len());
        for (i, id) in self.parts.iter().enumerate() {
            let sums = current.remove(id).ok_or_else(|| {
                Error::Dataflow(format!(
                    "statistics: part {} has no sums after the pass",
                    id.name
                ))
            })?;
            // Decoded parts were kept as they completed (`pass_dataflow`); what is left are the
            // parts another process of a cluster had cached, which this one may lack.
            let had = i % self.owner.processes == self.owner.process && self.known[i].is_some();
            if let Some(s) = store
                && !had
                && !decoded_ids.contains(id)
                && s.part(id, &self.settings, |_| Ok(())).is_none()
                && self.keepable(id, &sums)
            {
                s.put_part(id, &self.settings, &sums);
            }
            list.push((id.clone(), sums));
        }
        if let (Some(s), 0) = (store, self.owner.process) {
            // The next pass starts from this version: only parts whose sums may be kept.
            let kept: Vec<(PartId, PartSums)> = list
                .iter()
                .filter(|(id, sums)| self.keepable(id, sums))
                .cloned()
                .collect();
            s.put_set(self.set, &self.settings, &kept);
        }
        let (parts, decoded) = (list.len() as u32, decoded.len() as u32);
        Ok(StatsOutcome {
            stats,
            skipped,
            skipped_total: list.iter().map(|(_, s)| s.skipped).sum(),
            report: PassReport {
                source: match decoded {
                    0 => StatsSource::Cached,
                    d if d == parts => StatsSource::Computed,
                    _ => StatsSource::Incremental,
                },
                parts,
                decoded,
            },
        })
    }

    fn read_totals(&self, totals: &[((u32, ChannelSums), isize)]) -> Result<Stats> {
        let shape = self.records.shape();
        let mut sums = vec![None; shape.channels];
        for ((channel, s), n) in totals {
            let slot = sums.get_mut(*channel as usize).filter(|_| *n == 1);
            match slot {
                Some(slot @ None) => *slot = Some(*s),
                _ => {
                    return Err(Error::Dataflow(format!(
                        "statistics for channel {channel} arrived {n} times, expected once"
                    )));
                }
            }
        }
        // No sums at all: every record was skipped as bad, so no part gave any.
        let empty = || Error::Empty {
            source_name: format!("{} (every record was skipped)", self.records.origin()),
        };
        if sums.iter().all(Option::is_none) {
            return Err(empty());
        }
        let sums: Vec<ChannelSums> = sums
            .into_iter()
            .enumerate()
            .map(|(c, s)| {
                s.ok_or_else(|| Error::Dataflow(format!("no statistics for channel {c}")))
            })
            .collect::<Result<_>>()?;
        let images = (sums[0].count as usize) / shape.plane();
        if images == 0 {
            return Err(empty());
        }
        Ok(Stats::from_sums(images, shape, &sums))
    }
}

/// The settings every cached sum is keyed by, besides the part's content: what turns its bytes
/// into pixels (this build, the shape, the transforms the statistics see, the columns read),
/// and what decides which records count (the bad-record policy; under `skip`, the class count,
/// as labels outside it are skipped).
fn settings(records: &Records, policy: OnBadRecord) -> String {
    let transforms = records.transforms().map_or(String::new(), |t| {
        t.list
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    });
    let mut s = format!(
        "flowload {}; shape {}; transforms [{transforms}]; reading {}; on_bad_record {policy:?}",
        env!("CARGO_PKG_VERSION"),
        records.shape(),
        records.reading()
    );
    if policy == OnBadRecord::Skip {
        s.push_str(&format!("; classes {}", records.classes()));
    }
    s
}

/// A data set's key in the cache: the directories its parts are in (the names of in-memory
/// parts), and the settings. A shard added to a directory keeps the key; that is how the next
/// pass finds the version to update.
fn set_key(parts: &[(crate::source::Part, PartId)], settings: &str) -> u128 {
    let mut places: Vec<String> = parts
        .iter()
        .map(|(part, id)| match part.files.is_empty() {
            true => id.name.clone(),
            false => {
                let dir = Path::new(&part.name).parent().unwrap_or(Path::new("."));
                std::fs::canonicalize(dir)
                    .unwrap_or_else(|_| dir.to_path_buf())
                    .display()
                    .to_string()
            }
        })
        .collect();
    places.sort();
    places.dedup();
    let mut h = XxHash3_128::new();
    h.write(settings.as_bytes());
    for p in places {
        h.write(format!("\n{p}").as_bytes());
    }
    h.finish_128()
}

type Events<D> = std::sync::mpsc::Receiver<Event<u64, Vec<(D, u64, isize)>>>;

/// What a statistics worker captures: the totals, the parts known beforehand and those decoded
/// (from every process), and the errors.
pub(crate) type Captured = (
    Events<(u32, ChannelSums)>,
    Events<(PartId, PartSums)>,
    Events<(PartId, PartSums)>,
    std::sync::mpsc::Receiver<Event<u64, Vec<Failed>>>,
);

/// The pass as a dataflow: the previous version at time 0, the current version from time 1:
/// the parts known at 1, part `i` decoded at `1 + i`. Totals, parts and any error are broadcast
/// to every worker; each process keeps every decoded part as soon as it is complete, so that a
/// pass cut short (a crash, `kill -9`) keeps what it finished.
pub(crate) fn pass_dataflow(
    plan: Arc<PassPlan>,
    policy: OnBadRecord,
    skipped: Arc<Mutex<Vec<BadRecord>>>,
) -> impl Fn(&mut Worker) -> Captured + Send + Sync + 'static {
    move |worker: &mut Worker| {
        let (me, peers) = (worker.index(), worker.peers());
        // Global worker index = process × threads + thread.
        let threads = (peers / plan.owner.processes).max(1);
        let thread = me % threads;
        let ours: Vec<(u64, BatchPlan)> = plan
            .chunks
            .iter()
            .filter(|(_, c)| c.index % threads == thread)
            .cloned()
            .collect();
        let (records, chunk_parts, skipped) = (
            plan.records.clone(),
            plan.chunk_parts.clone(),
            skipped.clone(),
        );
        // One writer per process: its first thread.
        let keep = plan
            .store
            .clone()
            .filter(|_| thread == 0)
            .map(|s| (s, plan.clone()));
        let before_part = plan.before_part.clone().map(|hook| {
            // The first chunk of each part, by its index.
            let mut firsts = HashMap::new();
            for (k, id) in plan.chunk_parts.iter().enumerate() {
                if k == 0 || plan.chunk_parts[k - 1] != *id {
                    firsts.insert(k, id.name.clone());
                }
            }
            (hook, firsts)
        });
        let (mut input, captured) = worker.dataflow::<u64, _, _>(move |scope| {
            let (input, known) = scope.new_collection::<(PartId, PartSums), isize>();
            let mut plans = list_source(scope, ours);
            if let Some((hook, firsts)) = before_part {
                plans = plans.inspect(move |p: &BatchPlan| {
                    if let Some(name) = firsts.get(&p.index) {
                        hook(name)
                    }
                });
            }
            let (ok, err) = plans
                .decode(RecordReader::new(records, policy))
                .ok_err::<Vec<DecodedBatch>, _, Vec<Failed>, _, _>(move |r| {
                    r.map_err(|e| Failed::new(e, me))
                });
            let decoded = ok
                .inspect(move |b: &DecodedBatch| {
                    skipped
                        .lock()
                        .expect("skipped lock")
                        .extend(b.skipped.iter().cloned())
                })
                .part_sums(chunk_parts);
            let totals = known.clone().concat(decoded.clone()).channel_totals();
            let captured = (
                totals.inner.broadcast().capture(),
                known.inner.broadcast().capture(),
                decoded
                    .inner
                    .broadcast()
                    .inspect(move |((id, sums), _time, n)| {
                        if let (Some((store, plan)), true) = (&keep, *n > 0)
                            && plan.keepable(id, sums)
                        {
                            store.put_part(id, &plan.settings, sums);
                        }
                    })
                    .capture(),
                err.broadcast().capture(),
            );
            (input, captured)
        });
        if me == 0 {
            for p in &plan.previous {
                input.insert(p.clone());
            }
        }
        input.advance_to(1);
        if me == 0 {
            for p in &plan.previous {
                input.remove(p.clone());
            }
        }
        if thread == 0 {
            for (id, sums) in plan.parts.iter().zip(&plan.known) {
                if let Some(sums) = sums {
                    input.insert((id.clone(), sums.clone()));
                }
            }
        }
        input.close();
        captured
    }
}

/// The collection a capture saw, every time accumulated: each record with its final count,
/// those that cancelled out left out.
fn accumulate<D: Ord>(rx: Events<D>) -> Vec<(D, isize)> {
    let mut all: BTreeMap<D, isize> = BTreeMap::new();
    for event in rx.try_iter() {
        if let Event::Messages(_, records) = event {
            for (d, _time, n) in records {
                *all.entry(d).or_default() += n;
            }
        }
    }
    all.into_iter().filter(|(_, n)| *n != 0).collect()
}

/// Worker 0's result: after a broadcast, every worker holds the same totals.
pub(crate) fn first_worker<T>(results: Vec<Result<T, String>>) -> Result<T, String> {
    let mut first = None;
    for r in results {
        let r = r?;
        first.get_or_insert(r);
    }
    first.ok_or_else(|| "no workers".to_string())
}
