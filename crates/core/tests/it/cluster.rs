//! Cluster mode in the library: two processes (threads of the test, on local ports) give the
//! batches and statistics of one, each decoding only its share of the shards; errors between
//! processes are typed and name the process. (Processes of the binary — kills, stalls,
//! `cluster-local` — are in the application's tests.)

use std::time::Duration;

use flowload_core::cluster::{
    Announce, ClusterSpec, FollowerCluster, FollowerProcess, Role, TrainerCluster, TrainerProcess,
};
use flowload_core::{
    ClusterError, ConvertOptions, Error, LoaderBuilder, Position, Records, Stats, StatsOutcome,
    StatsSource, StatsStore, Tuning, WireFormat, Workers,
};

use crate::common::{self, Seen, free_ports};

/// The loader both processes run: batches of 16, shuffled, 3 epochs, 2 cores for `auto`.
fn loader(records: &Records, workers: Workers, wire: WireFormat) -> LoaderBuilder {
    common::loader(records, workers, Some(3), 16, false, 3)
        .wire(wire)
        .auto_cores(2)
}

/// The two roles of a cluster of two on free local ports, and their addresses.
fn roles(connect_timeout: Duration) -> (TrainerProcess, FollowerProcess, Vec<String>) {
    let addresses: Vec<String> = free_ports(2)
        .unwrap()
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let role = |i| {
        ClusterSpec::new(2, i, addresses.clone(), connect_timeout)
            .unwrap()
            .role()
    };
    let (Role::Trainer(trainer), Role::Follower(follower)) = (role(0), role(1)) else {
        panic!("process 0 trains, process 1 follows")
    };
    (trainer, follower, addresses)
}

/// Two cluster processes as two threads of this test: process 0 computes the statistics and
/// collects every batch; process 1 follows its announcements. One decode thread per process.
fn two_processes(records: &Records, wire: WireFormat) -> (Stats, Seen) {
    let (stats, seen, _) =
        two_processes_with(records, wire, Workers::Fixed(1), 1, Position::default());
    (stats, seen)
}

/// [`two_processes`] with `workers` and `threads` per process, from `start` (announced by
/// process 0, as a resumed run's is); also what process 0's loader said of its tuning.
fn two_processes_with(
    records: &Records,
    wire: WireFormat,
    workers: Workers,
    threads: usize,
    start: Position,
) -> (Stats, Seen, Option<Tuning>) {
    let (trainer, follower, _) = roles(Duration::from_secs(20));
    std::thread::scope(|s| {
        let mut c1 = FollowerCluster::bind(&follower, 7).unwrap();
        s.spawn(move || {
            let mut stats = None;
            loop {
                let session = c1.next_session().unwrap();
                match session.announce {
                    Announce::Stats { .. } => {
                        stats = Some(Stats::pass(records).cluster(session).run().unwrap().stats)
                    }
                    Announce::Epochs { threads, start, .. } => {
                        let tuning = loader(records, workers, wire)
                            .start_at(start)
                            .normalize(stats.as_ref())
                            .cluster(session)
                            .serve()
                            .unwrap();
                        // Process 1 tunes its own workers at auto, and only then.
                        assert_eq!(tuning.is_some(), workers == Workers::Auto);
                        if let Some(t) = tuning {
                            assert!((1..=threads as usize).contains(&t.active), "{t:?}");
                        }
                    }
                    Announce::Done => return,
                }
            }
        });
        let mut c0 = TrainerCluster::bind(&trainer, 7).unwrap();
        let session = c0.open(Announce::Stats { run: 1, threads: 1 }).unwrap();
        let stats = Stats::pass(records).cluster(session).run().unwrap().stats;
        let announce = Announce::Epochs {
            run: 1,
            threads: threads as u32,
            start,
        };
        let session = c0.open(announce).unwrap();
        let mut loader = loader(records, workers, wire)
            .start_at(start)
            .normalize(&stats)
            .cluster(session)
            .build()
            .unwrap();
        let seen: Seen = loader.by_ref().map(common::seen_batch).collect();
        let tuning = loader.tuning();
        drop(loader);
        c0.finish().unwrap();
        (stats, seen, tuning)
    })
}

/// The statistics pass alone, over two cluster processes (threads of this test) with a cache
/// each: what each process got.
fn two_process_stats(records: &Records, caches: [&StatsStore; 2]) -> [StatsOutcome; 2] {
    let (trainer, follower, _) = roles(Duration::from_secs(20));
    std::thread::scope(|s| {
        let mut c1 = FollowerCluster::bind(&follower, 7).unwrap();
        let follower = s.spawn(move || {
            let session = c1.next_session().unwrap();
            assert!(matches!(session.announce, Announce::Stats { .. }));
            let got = Stats::pass(records)
                .store(Some(caches[1]))
                .cluster(session)
                .run();
            assert!(matches!(
                c1.next_session().unwrap().announce,
                Announce::Done
            ));
            got.unwrap()
        });
        let mut c0 = TrainerCluster::bind(&trainer, 7).unwrap();
        let session = c0.open(Announce::Stats { run: 1, threads: 2 }).unwrap();
        let got = Stats::pass(records)
            .store(Some(caches[0]))
            .cluster(session)
            .run();
        c0.finish().unwrap();
        [got.unwrap(), follower.join().unwrap()]
    })
}

#[test]
fn each_process_decodes_only_the_shards_it_owns_and_every_process_gets_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    common::open("synthetic:images=250,channels=3,size=8x8,seed=6")
        .convert(
            &shards,
            &ConvertOptions {
                shard_rows: 50,
                ..ConvertOptions::default()
            },
        )
        .unwrap();
    let data = common::open(shards.to_str().unwrap());
    let single = Stats::pass(&data.train).workers(1).run().unwrap().stats;
    let caches = [0, 1].map(|i| StatsStore::at(&dir.path().join(format!("cache{i}"))));
    let report = |o: &StatsOutcome| (o.report.source, o.report.decoded, o.report.parts);
    // Five shards: process 0 owns 0, 2 and 4, process 1 owns 1 and 3; together they decode
    // each once, and both receive the totals.
    let first = two_process_stats(&data.train, [&caches[0], &caches[1]]);
    for o in &first {
        assert_eq!(o.stats, single);
        assert_eq!(report(o), (StatsSource::Computed, 5, 5));
    }
    // Every process cached every shard (the others' arrive with the totals).
    let second = two_process_stats(&data.train, [&caches[0], &caches[1]]);
    for o in &second {
        assert_eq!(o.stats, single);
        assert_eq!(report(o), (StatsSource::Cached, 0, 5));
    }
    // Process 1 loses its cache: it decodes its own two shards again, process 0 none.
    std::fs::remove_dir_all(dir.path().join("cache1")).unwrap();
    let third = two_process_stats(&data.train, [&caches[0], &caches[1]]);
    for o in &third {
        assert_eq!(o.stats, single);
        assert_eq!(report(o), (StatsSource::Incremental, 2, 5));
    }
}

/// A cluster run started part-way (a checkpoint's position, announced by process 0) gives the
/// rest of the run of one process, at a fixed count and at `auto`.
#[test]
fn a_cluster_started_part_way_gives_the_rest_of_the_run_of_one_process() {
    let data = common::open("synthetic:images=300,channels=3,size=6x6,seed=4");
    let reference = common::seen(&data.train, 1, Some(3), 16, false, 3);
    let start = Position { epoch: 1, batch: 5 };
    let rest = &reference[19 + 5..];
    for (workers, threads) in [(Workers::Fixed(1), 1), (Workers::Auto, 2)] {
        let (_, seen, _) =
            two_processes_with(&data.train, WireFormat::Raw, workers, threads, start);
        assert!(
            seen[..] == *rest,
            "{workers:?}: {} batches, {} expected",
            seen.len(),
            rest.len()
        );
    }
}

/// `--workers auto` in a cluster: each process tunes its own active threads (2 each here), and
/// the batches are those of one process.
#[test]
fn auto_workers_in_two_processes_give_the_batches_of_one_process() {
    let data = common::open("synthetic:images=600,channels=3,size=6x6,seed=4,work=20");
    let reference = common::seen(&data.train, 1, Some(3), 16, false, 3);
    for wire in [WireFormat::Raw, WireFormat::Arrow] {
        let (_, seen, tuning) =
            two_processes_with(&data.train, wire, Workers::Auto, 2, Position::default());
        assert!(seen == reference, "{wire:?}: batches differ");
        let tuning = tuning.expect("process 0 tunes its workers");
        assert!((1..=2).contains(&tuning.active), "{tuning:?}");
    }
}

#[test]
fn two_processes_of_one_worker_give_the_batches_and_stats_of_one_process_of_two() {
    let data = common::open("synthetic:images=300,channels=3,size=6x6,seed=4");
    let reference = common::seen(&data.train, 2, Some(3), 16, false, 3);
    assert_eq!(reference.len(), 3 * 19);
    for wire in [WireFormat::Raw, WireFormat::Arrow] {
        let (stats, seen) = two_processes(&data.train, wire);
        assert_eq!(
            stats,
            Stats::pass(&data.train).workers(1).run().unwrap().stats,
            "{wire:?}"
        );
        assert_eq!(seen.len(), reference.len(), "{wire:?}");
        assert!(seen == reference, "{wire:?}: batches differ");
    }
}

#[test]
fn augmented_photos_give_the_same_batches_in_two_processes_as_in_one() {
    let dir = tempfile::tempdir().unwrap();
    common::photos(dir.path(), 40, 8, false);
    let data = common::with_transforms(
        dir.path().to_str().unwrap(),
        &["random_resized_crop:40", "hflip"],
        &["resize:44", "center_crop:40"],
    );
    let reference = common::seen(&data.train, 2, Some(3), 16, false, 3);
    let (_, seen) = two_processes(&data.train, WireFormat::Raw);
    assert!(seen == reference, "augmented batches differ across layouts");
}

#[test]
fn cluster_errors_are_typed_and_name_the_process() {
    let (trainer, follower, addresses) = roles(Duration::from_secs(1));
    // Nobody joins: the timeout names process 1.
    let mut alone = TrainerCluster::bind(&trainer, 7).unwrap();
    match alone.open(Announce::Epochs {
        run: 1,
        threads: 1,
        start: Position::default(),
    }) {
        Err(Error::Cluster(ClusterError::ConnectTimeout { missing, me, .. })) => {
            assert_eq!((missing[0].index, me.index), (1, 0));
            assert_eq!(missing[0].address, addresses[1]);
        }
        Err(e) => panic!("expected a connect timeout, got {e:?}"),
        Ok(_) => panic!("expected a connect timeout, got a session"),
    }
    drop(alone);
    // Another configuration: process 0 refuses process 1, and each says so in a typed error.
    let mut c0 = TrainerCluster::bind(&trainer, 7).unwrap();
    let mut c1 = FollowerCluster::bind(&follower, 8).unwrap();
    std::thread::scope(|s| {
        let joined = s.spawn(move || c1.next_session().map(drop));
        let opened = c0
            .open(Announce::Epochs {
                run: 1,
                threads: 1,
                start: Position::default(),
            })
            .map(drop);
        match joined.join().unwrap() {
            Err(Error::Cluster(ClusterError::Refused { by, reason, .. })) => {
                assert_eq!(by.index, 0);
                assert!(reason.contains("another configuration"), "{reason}");
            }
            other => panic!("expected process 1 to be refused, got {other:?}"),
        }
        assert!(
            matches!(
                opened,
                Err(Error::Cluster(
                    ClusterError::Refused { .. } | ClusterError::ConnectTimeout { .. }
                ))
            ),
            "{opened:?}"
        );
    });
}
