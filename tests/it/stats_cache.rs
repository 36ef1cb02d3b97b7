//! The statistics cache through the binary: a corrupt entry is recomputed with a warning, an
//! unwritable cache is a warning, two runs at once lose nothing, a pass that fails keeps what
//! it finished, and each run's Parquet says where its statistics came from. (Cached against
//! fresh statistics are compared in flowload-core's tests.)

use std::path::{Path, PathBuf};

use flowload::results::read_run;
use flowload_core::StatsSource;

use crate::common;
use crate::fixtures::{each_channel, forge, synthetic_shards as shards};

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
    let s = |v: &str, n, d| (Some(v.parse::<StatsSource>().unwrap()), n, d);
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
    use flowload_core::Shape;
    use flowload_core::testing::encode_png;
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

/// A cache entry forged with a valid checksum (a sum of squares of 0: the zero-variance trap)
/// is corrupt: the warning names its file, and the statistics are the data's.
#[test]
fn a_forged_entry_is_named_and_recomputed() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, cache) = (tmp.path().join("data"), tmp.path().join("cache"));
    shards(&data, &[("a", 1), ("b", 2)], 30);
    let (first, _) = stats_cli(&data, &cache);
    let forged = forge(&cache, |v| each_channel(v, &|c| c["sumsq"] = 0.into()));
    assert!(forged >= 3, "{forged}");
    let (again, err) = stats_cli(&data, &cache);
    assert_eq!(figures(&again), figures(&first));
    assert!(
        again.contains("computed: 2 of 2 shard(s) decoded"),
        "{again}"
    );
    assert!(
        err.contains("is corrupt") && err.contains("cannot come from pixels"),
        "{err}"
    );
    let named = std::fs::read_dir(cache.join("v1").join("parts"))
        .unwrap()
        .flatten()
        .any(|e| err.contains(&e.path().display().to_string()));
    assert!(named, "the warning names the file: {err}");
}
