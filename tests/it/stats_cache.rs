//! The statistics cache: cached, incremental and fresh statistics are the same numbers, bit for
//! bit; a change of what makes the pixels misses; a corrupt entry is recomputed with a warning;
//! two runs at once lose nothing; each run's Parquet says where its statistics came from.

use std::path::{Path, PathBuf};

use flowload::config::SweepConfig;
use flowload::loader::stats::{StatsOutcome, StatsSource, statistics};
use flowload::ops::decode::OnBadRecord;
use flowload::results::read_run;
use flowload::source::SourceSpec;
use flowload::stats_store::StatsStore;

use crate::common;

/// Shards of `images` synthetic images each (seeds `seeds`), named `<name>.parquet` in `dir`.
fn shards(dir: &Path, named: &[(&str, u64)], images: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, seed) in named {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let spec = format!("synthetic:images={images},channels=3,size=12x10,classes=4,seed={seed}");
        let o = common::flowload(&["convert", &spec, out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        std::fs::rename(
            out.join("train-00000-of-00001.parquet"),
            dir.join(format!("{name}.parquet")),
        )
        .unwrap();
    }
}

fn pass(data: &Path, opts: &SweepConfig, store: Option<&StatsStore>) -> StatsOutcome {
    let data = SourceSpec::parse(data.to_str().unwrap())
        .unwrap()
        .open_with(&opts.encoded_options().unwrap())
        .unwrap();
    statistics(&data.train, 2, opts.on_bad_record, store).unwrap()
}

/// The statistics through the cache, checked against a fresh pass; where they came from.
fn cached_equals_fresh(data: &Path, opts: &SweepConfig, store: &StatsStore) -> (StatsSource, u32) {
    let cached = pass(data, opts, Some(store));
    let fresh = pass(data, opts, None);
    assert_eq!(fresh.report.source, StatsSource::Computed);
    // Bit for bit: the JSON `--stats FILE` reads, and every float's bits.
    assert_eq!(
        serde_json::to_string(&cached.stats).unwrap(),
        serde_json::to_string(&fresh.stats).unwrap()
    );
    let bits = |s: &flowload::Stats| -> Vec<u64> {
        s.mean.iter().chain(&s.std).map(|v| v.to_bits()).collect()
    };
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
    let opts = SweepConfig::default();
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
    let with = |resize: Option<&str>, transforms: &[&str]| SweepConfig {
        resize: resize.map(String::from),
        train_transforms: transforms.iter().map(|t| t.to_string()).collect(),
        ..SweepConfig::default()
    };
    let source = |opts: &SweepConfig| pass(&data, opts, Some(&store)).report.source;
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
    let skip = SweepConfig {
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

/// Every file of the cache under `dir`.
fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                found.push(e.path());
            }
        }
    }
    found
}

fn stats_cli(data: &Path, cache: &Path) -> (String, String) {
    let o = common::flowload(&[
        "stats",
        data.to_str().unwrap(),
        "--workers",
        "2",
        "--stats-cache",
        cache.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    (common::stdout(&o), common::stderr(&o))
}

/// The lines of `flowload stats` output that hold numbers, not timings.
fn figures(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| !l.starts_with("statistics pass"))
        .collect()
}

#[test]
fn a_corrupt_entry_is_recomputed_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, cache) = (tmp.path().join("data"), tmp.path().join("cache"));
    shards(&data, &[("a", 1), ("b", 2)], 30);
    let (first, err) = stats_cli(&data, &cache);
    assert!(
        first.contains("computed: 2 of 2 shard(s) decoded"),
        "{first}"
    );
    assert!(!err.contains("warning"), "{err}");
    // Every file the cache holds: one changed byte, one cut short, one emptied.
    let files = cache_files(&cache);
    assert!(files.len() >= 4, "{files:?}");
    for (i, f) in files.iter().enumerate() {
        let mut bytes = std::fs::read(f).unwrap();
        match i % 3 {
            0 => {
                let at = bytes.iter().position(|b| b.is_ascii_digit()).unwrap();
                bytes[at] = if bytes[at] == b'9' {
                    b'8'
                } else {
                    bytes[at] + 1
                };
            }
            1 => bytes.truncate(bytes.len() / 2),
            _ => bytes.clear(),
        }
        std::fs::write(f, bytes).unwrap();
    }
    let (second, err) = stats_cli(&data, &cache);
    assert!(
        err.contains("warning: statistics cache") && err.contains("corrupt"),
        "{err}"
    );
    assert!(
        second.contains("computed: 2 of 2 shard(s) decoded"),
        "{second}"
    );
    assert_eq!(figures(&second), figures(&first));
    // Recomputed and written again: the next run hits, without a warning.
    let (third, err) = stats_cli(&data, &cache);
    assert!(third.contains("cached: 0 of 2 shard(s) decoded"), "{third}");
    assert!(!err.contains("warning"), "{err}");
    assert_eq!(figures(&third), figures(&first));
}

#[test]
fn an_unwritable_cache_is_a_warning_and_the_statistics_are_still_right() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    shards(&data, &[("a", 1)], 20);
    // A file where the cache directory should be: nothing can be written under it.
    let cache = tmp.path().join("not-a-dir");
    std::fs::write(&cache, b"").unwrap();
    let (out, err) = stats_cli(&data, &cache);
    assert!(err.contains("warning: statistics cache"), "{err}");
    assert_eq!(
        err.matches("warning").count(),
        1,
        "one warning, not one per file: {err}"
    );
    let fresh = common::flowload(&["stats", data.to_str().unwrap(), "--no-stats-cache"]);
    assert_eq!(figures(&out), figures(&common::stdout(&fresh)));
}

#[test]
fn two_runs_at_once_against_one_cache_lose_nothing_and_corrupt_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, cache) = (tmp.path().join("data"), tmp.path().join("cache"));
    shards(&data, &[("a", 1), ("b", 2), ("c", 3), ("d", 4)], 60);
    for round in 0..3 {
        let children: Vec<_> = (0..2)
            .map(|_| {
                std::process::Command::new(env!("CARGO_BIN_EXE_flowload"))
                    .args(["stats", data.to_str().unwrap(), "--json", "--stats-cache"])
                    .arg(&cache)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        for o in &outs {
            assert!(o.status.success(), "round {round}: {}", common::stderr(o));
            assert!(
                !common::stderr(o).contains("warning"),
                "{}",
                common::stderr(o)
            );
        }
        assert_eq!(common::stdout(&outs[0]), common::stdout(&outs[1]));
        // A shard added between rounds: both runs decode it at once.
        if round == 0 {
            shards(&data, &[("e", 5)], 60);
        }
    }
    assert!(common::hidden_files(&cache).is_empty());
    let (out, err) = stats_cli(&data, &cache);
    assert!(out.contains("cached: 0 of 5 shard(s) decoded"), "{out}");
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn each_run_says_where_its_statistics_came_from() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, cache, out) = (
        tmp.path().join("data"),
        tmp.path().join("cache"),
        tmp.path().join("out"),
    );
    shards(&data, &[("a", 1), ("b", 2), ("c", 3)], 30);
    let sweep = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--data",
            data.to_str().unwrap(),
            "--sink",
            "null",
            "--workers",
            "1,2",
            "--normalize",
            "false,true",
            "--batch-size",
            "16",
            "--out",
            out.to_str().unwrap(),
            "--overwrite",
            "--stats-cache",
            cache.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = common::flowload(&args);
        assert!(o.status.success(), "{}", common::stderr(&o));
        (1..=4)
            .map(|run| {
                let row = read_run(&out.join(format!("runs/run-{run:04}.parquet")))
                    .unwrap()
                    .rows[0]
                    .clone();
                (row.stats_source, row.stats_shards, row.stats_shards_decoded)
            })
            .collect::<Vec<_>>()
    };
    let s = |v: &str, n, d| (v.to_string(), n, d);
    // The grid is workers × normalize: runs 2 and 4 normalize. The first pays for the pass.
    assert_eq!(
        sweep(&[]),
        vec![
            s("off", 0, 0),
            s("computed", 3, 3),
            s("off", 0, 0),
            s("cached", 3, 0)
        ]
    );
    shards(&data, &[("d", 4)], 30);
    assert_eq!(
        sweep(&[]),
        vec![
            s("off", 0, 0),
            s("incremental", 4, 1),
            s("off", 0, 0),
            s("cached", 4, 0)
        ]
    );
    let stats = tmp.path().join("stats.json");
    let o = common::flowload(&["stats", data.to_str().unwrap(), "--json"]);
    std::fs::write(&stats, common::stdout(&o)).unwrap();
    assert_eq!(
        sweep(&["--stats", stats.to_str().unwrap()]),
        vec![
            s("off", 0, 0),
            s("file", 0, 0),
            s("off", 0, 0),
            s("file", 0, 0)
        ]
    );
}

#[test]
fn a_pass_that_fails_keeps_the_shards_it_finished() {
    use flowload::source::Shape;
    use flowload::source::encoded::image::encode_png;
    let tmp = tempfile::tempdir().unwrap();
    let (data, cache) = (tmp.path().join("folder"), tmp.path().join("cache"));
    let shape = Shape {
        channels: 3,
        height: 6,
        width: 5,
    };
    let png = |v: u8| encode_png(&vec![v; shape.len()], shape);
    for (class, values) in [("a", 10..20), ("b", 20..30), ("c", 30..40)] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for v in values {
            std::fs::write(data.join(class).join(format!("{v}.png")), png(v)).unwrap();
        }
    }
    std::fs::write(data.join("b").join("25.png"), b"not an image").unwrap();
    let o = common::flowload(&[
        "stats",
        data.to_str().unwrap(),
        "--stats-cache",
        cache.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        common::stderr(&o).contains("25.png"),
        "{}",
        common::stderr(&o)
    );
    // The bad record fixed: the two class directories decoded before are kept.
    std::fs::write(data.join("b").join("25.png"), png(25)).unwrap();
    let (out, _) = stats_cli(&data, &cache);
    assert!(
        out.contains("incremental: 1 of 3 shard(s) decoded"),
        "{out}"
    );
    let fresh = common::flowload(&["stats", data.to_str().unwrap(), "--no-stats-cache"]);
    assert_eq!(figures(&out), figures(&common::stdout(&fresh)));
}
