//! The statistics cache: cached, incremental and fresh statistics are the same numbers, bit for
//! bit, as shards come and go; a change of what makes the pixels misses. (Corrupt entries, an
//! unwritable cache, two writers and what each run records are in the application's tests.)

use std::path::Path;

use flowload_core::{
    Dataset, DatasetOptions, OnBadRecord, Stats, StatsOutcome, StatsSource, StatsStore,
};

use crate::common::transforms;
use crate::fixtures::synthetic_shards as shards;

/// How a pass opens the data and what it does with bad records.
#[derive(Clone, Default)]
struct Opts {
    data: DatasetOptions,
    on_bad_record: OnBadRecord,
}

fn pass(data: &Path, opts: &Opts, store: Option<&StatsStore>) -> StatsOutcome {
    let data = Dataset::open(data.to_str().unwrap(), &opts.data).unwrap();
    Stats::pass(&data.train)
        .workers(2)
        .on_bad_record(opts.on_bad_record)
        .store(store)
        .run()
        .unwrap()
}

/// The statistics through the cache, checked against a fresh pass; where they came from.
fn cached_equals_fresh(data: &Path, opts: &Opts, store: &StatsStore) -> (StatsSource, u32) {
    let cached = pass(data, opts, Some(store));
    let fresh = pass(data, opts, None);
    assert_eq!(fresh.report.source, StatsSource::Computed);
    // Bit for bit: the JSON `--stats FILE` reads, and every float's bits.
    assert_eq!(
        serde_json::to_string(&cached.stats).unwrap(),
        serde_json::to_string(&fresh.stats).unwrap()
    );
    let bits =
        |s: &Stats| -> Vec<u64> { s.mean.iter().chain(&s.std).map(|v| v.to_bits()).collect() };
    assert_eq!(bits(&cached.stats), bits(&fresh.stats));
    assert_eq!(cached.stats.images, fresh.stats.images);
    (cached.report.source, cached.report.decoded)
}

#[test]
fn cached_incremental_and_fresh_statistics_are_identical_as_shards_come_and_go() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, spare) = (tmp.path().join("data"), tmp.path().join("spare"));
    shards(&data, &[("a", 1), ("b", 2), ("c", 3)], 40);
    shards(&spare, &[("d", 4), ("other", 5)], 40);
    let store = StatsStore::at(&tmp.path().join("cache"));
    let opts = Opts::default();
    let check =
        |want: (StatsSource, u32)| assert_eq!(cached_equals_fresh(&data, &opts, &store), want);

    check((StatsSource::Computed, 3));
    check((StatsSource::Cached, 0));
    // A shard added: only it is decoded.
    std::fs::copy(spare.join("d.parquet"), data.join("d.parquet")).unwrap();
    check((StatsSource::Incremental, 1));
    // A shard removed: its sums are retracted, nothing is decoded.
    std::fs::remove_file(data.join("b.parquet")).unwrap();
    check((StatsSource::Cached, 0));
    // A shard rewritten with other images: it alone is decoded again.
    std::fs::copy(spare.join("other.parquet"), data.join("a.parquet")).unwrap();
    check((StatsSource::Incremental, 1));
    // A shard touched, its content unchanged: read again to hash it, not decoded.
    let f = std::fs::File::options()
        .write(true)
        .open(data.join("c.parquet"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    drop(f);
    check((StatsSource::Cached, 0));
    // The removed shard back, as it was: its sums are still in the cache.
    std::fs::copy(spare.join("d.parquet"), data.join("b.parquet")).unwrap();
    check((StatsSource::Cached, 0));
}

#[test]
fn a_change_of_resize_or_of_the_transforms_misses_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    shards(&data, &[("a", 1), ("b", 2)], 30);
    let store = StatsStore::at(&tmp.path().join("cache"));
    // `--resize HxW` is a first `resize:HxW` (as the application's pipeline makes it).
    let with = |resize: Option<&str>, list: &[&str]| {
        let resize = resize.map(|r| format!("resize:{r}"));
        let specs: Vec<&str> = resize
            .iter()
            .map(String::as_str)
            .chain(list.iter().copied())
            .collect();
        Opts {
            data: DatasetOptions {
                train_transforms: transforms(&specs, 0),
                ..DatasetOptions::default()
            },
            on_bad_record: OnBadRecord::Fail,
        }
    };
    let source = |opts: &Opts| pass(&data, opts, Some(&store)).report.source;
    assert_eq!(source(&with(Some("8x8"), &[])), StatsSource::Computed);
    assert_eq!(source(&with(Some("8x8"), &[])), StatsSource::Cached);
    assert_eq!(source(&with(Some("9x9"), &[])), StatsSource::Computed);
    assert_eq!(source(&with(None, &[])), StatsSource::Computed);
    assert_eq!(
        source(&with(None, &["center_crop:6"])),
        StatsSource::Computed
    );
    assert_eq!(source(&with(None, &["center_crop:6"])), StatsSource::Cached);
    // The statistics see a random crop as its centre: the same pixels, so a hit; and a flip
    // does not change them at all.
    assert_eq!(
        source(&with(None, &["random_crop:6", "hflip"])),
        StatsSource::Cached
    );
    // The bad-record policy decides which records count.
    let skip = Opts {
        on_bad_record: OnBadRecord::Skip,
        ..with(None, &["center_crop:6"])
    };
    assert_eq!(source(&skip), StatsSource::Computed);
    for opts in [with(Some("9x9"), &[]), skip] {
        assert_eq!(
            cached_equals_fresh(&data, &opts, &store),
            (StatsSource::Cached, 0)
        );
    }
}
