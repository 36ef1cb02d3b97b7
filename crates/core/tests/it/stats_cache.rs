//! The statistics cache: cached, incremental and fresh statistics are the same numbers, bit for
//! bit, as shards come and go; a change of what makes the pixels misses. (Corrupt entries, an
//! unwritable cache, two writers and what each run records are in the application's tests.)

use std::path::Path;

use flowload_core::{
    Dataset, DatasetOptions, OnBadRecord, Stats, StatsOutcome, StatsSource, StatsStore,
};

use crate::common::transforms;
use crate::fixtures::{each_channel, forge, synthetic_shards as shards};

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

/// A shard whose files change under a running pass (the statistics pass paused
/// deterministically just before the shard is read, its file overwritten, and restored byte
/// for byte after the pass): the sums of what was read are not kept under the key of what was
/// hashed, so the next pass through the cache gives the statistics of the data as it is.
#[test]
fn a_part_changed_while_the_pass_reads_it_is_not_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, spare) = (tmp.path().join("data"), tmp.path().join("spare"));
    shards(&data, &[("a", 1), ("b", 2), ("c", 3)], 40);
    shards(&spare, &[("other", 9)], 40);
    let store = StatsStore::at(&tmp.path().join("cache"));
    let open = || Dataset::open(data.to_str().unwrap(), &DatasetOptions::default()).unwrap();
    let (b, other) = (data.join("b.parquet"), spare.join("other.parquet"));
    let original = std::fs::read(&b).unwrap();
    let dataset = open();
    let hooked = flowload_core::testing::before_part(
        Stats::pass(&dataset.train).workers(1).store(Some(&store)),
        {
            let (b, other) = (b.clone(), other.clone());
            move |name| {
                if name.ends_with("b.parquet") {
                    std::fs::copy(&other, &b).unwrap();
                }
            }
        },
    );
    let during = hooked.run().unwrap();
    std::fs::write(&b, &original).unwrap();
    let fresh = pass(&data, &Opts::default(), None);
    // The pass saw the other images: its statistics are not the data's as restored...
    assert_ne!(during.stats, fresh.stats);
    // ...and the cache did not keep them: the next pass decodes b again, the others not.
    let next = pass(&data, &Opts::default(), Some(&store));
    assert_eq!(next.stats, fresh.stats);
    assert_eq!(
        (next.report.source, next.report.decoded),
        (StatsSource::Incremental, 1)
    );
    assert_eq!(
        pass(&data, &Opts::default(), Some(&store)).report.source,
        StatsSource::Cached
    );
}

/// Sums that left records out are not a pass's under `fail`, whatever ran before: a failed
/// pass (which keeps the chunks it finished), then a `skip` pass, then `fail` again must fail
/// as a fresh pass does, naming the record.
#[test]
fn statistics_that_skipped_records_do_not_pass_under_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shard");
    std::fs::create_dir_all(&dir).unwrap();
    // Two chunks' worth of 2x2 images (a chunk is 4096 records); rows 17 and 100, both in the
    // first chunk, are not images: the second chunk's sums alone complete without error.
    let shape = flowload_core::Shape {
        channels: 1,
        height: 2,
        width: 2,
    };
    let images = (0..4200)
        .map(|i| match i {
            17 | 100 => Some(b"not an image".to_vec()),
            _ => Some(crate::fixtures::png(&[(i % 251) as u8; 4], shape)),
        })
        .collect();
    let labels = (0..4200).map(|i| i % 3).collect();
    crate::fixtures::write_shard(
        &dir.join("train-00000-of-00001.parquet"),
        images,
        labels,
        500,
    );
    let store = StatsStore::at(&tmp.path().join("cache"));
    let skip = Opts {
        on_bad_record: OnBadRecord::Skip,
        ..Opts::default()
    };
    let run = |opts: &Opts| {
        let data = Dataset::open(dir.to_str().unwrap(), &opts.data).unwrap();
        Stats::pass(&data.train)
            .workers(2)
            .on_bad_record(opts.on_bad_record)
            .store(Some(&store))
            .run()
    };
    let fails = |why: &str| {
        let e = run(&Opts::default()).unwrap_err().to_string();
        assert!(e.contains("row 17") || e.contains("row 100"), "{why}: {e}");
    };
    fails("a fresh pass");
    let skipped = run(&skip).unwrap();
    assert_eq!(skipped.skipped_total, 2);
    assert_eq!(skipped.stats.images, 4198);
    fails("after the skip pass");
    // And the skip pass's sums are still good for `skip`.
    assert_eq!(run(&skip).unwrap().report.source, StatsSource::Cached);
}

/// An entry with a valid checksum whose sums no pixels could give (a sum of squares of 0, a
/// sum beyond 255 per pixel) is corrupt: recomputed, never the zero-variance error or a
/// silently shifted mean.
#[test]
fn a_forged_entry_with_a_valid_checksum_is_recomputed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    shards(&data, &[("a", 1), ("b", 2)], 30);
    let cache = tmp.path().join("cache");
    let store = StatsStore::at(&cache);
    let fresh = pass(&data, &Opts::default(), None);
    for forgery in [
        |c: &mut serde_json::Value| c["sumsq"] = 0.into(),
        |c: &mut serde_json::Value| c["sum"] = (c["count"].as_i64().unwrap() * 256).into(),
    ] {
        pass(&data, &Opts::default(), Some(&store));
        let forged = forge(&cache, |v| each_channel(v, &forgery));
        assert!(forged >= 3, "{forged} files");
        let again = pass(&data, &Opts::default(), Some(&store));
        assert_eq!(again.stats, fresh.stats);
        assert_eq!(again.report.source, StatsSource::Computed);
    }
    // Counts that do not match the part's records (a sum of fewer images) are not its sums.
    pass(&data, &Opts::default(), Some(&store));
    forge(&cache, |v| {
        each_channel(v, &|c| {
            c["count"] = (c["count"].as_i64().unwrap() - 120).into()
        })
    });
    let again = pass(&data, &Opts::default(), Some(&store));
    assert_eq!(again.stats, fresh.stats);
}
