//! `--workers auto` and `--repeat`: the columns and lines that say what auto did, its limits,
//! the values it refuses, auto in a cluster, interleaved repetitions, and verdicts that tell an
//! effect from noise.

use crate::common;

use std::path::Path;

use arrow::array::{Array, StringArray, UInt32Array};

use flowload::report::{self, Axis, Finding};
use flowload::results::{read_run, run_path};
use flowload_core::Workers;

/// An expensive decode (30 µs per image) and the null sink: the consumer waits for data.
const EXPENSIVE: &str = "synthetic:images=3000,size=8x8,seed=2,work=30";

fn run(args: &[&str]) -> (String, String, bool) {
    let o = common::flowload(args);
    (common::stdout(&o), common::stderr(&o), o.status.success())
}

/// A column of a run file, as text.
fn column(path: &Path, name: &str) -> Vec<String> {
    let batch = common::read_parquet(path);
    let col = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("{name}"));
    if let Some(s) = col.as_any().downcast_ref::<StringArray>() {
        return (0..s.len()).map(|i| s.value(i).to_string()).collect();
    }
    let u = col.as_any().downcast_ref::<UInt32Array>().expect("u32");
    (0..u.len()).map(|i| u.value(i).to_string()).collect()
}

#[test]
fn auto_in_a_grid_records_its_mode_active_counts_and_where_it_settled() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args = [
        "run",
        "--data",
        EXPENSIVE,
        "--sink",
        "null",
        "--workers",
        "0,1,auto",
        "--batch-size",
        "50",
        "--epochs",
        "2",
        "--out",
        out,
    ];
    let (stdout, stderr, ok) = run(&args);
    assert!(ok, "{stderr}");
    let line = stdout.lines().find(|l| l.starts_with("run 3/3")).unwrap();
    assert!(line.contains("workers=auto"), "{line}");
    assert!(line.contains("workers auto → "), "{line}");
    assert!(
        ["trainer-bound", "core limit", "memory budget", "no gain"]
            .iter()
            .any(|why| line.contains(why)),
        "{line}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    let runs = summary["runs"].as_array().unwrap();
    assert!(
        runs[0].get("workers_settled").is_none(),
        "fixed runs are not tuned"
    );
    let t = &runs[2]["workers_settled"];
    let (active, cores) = (
        t["active"].as_u64().unwrap(),
        t["limits"]["cores"].as_u64().unwrap(),
    );
    assert!(active >= 1 && active <= cores, "{t}");
    assert!(t["settled"].is_string(), "{t}");
    assert_eq!(runs[2]["params"]["workers"], "auto");
    assert_eq!(runs[1]["params"]["workers"], 1);

    // The files: the mode per run, the count active per epoch.
    let auto = run_path(dir.path(), 3);
    assert_eq!(column(&auto, "workers_mode"), ["auto", "auto"]);
    assert_eq!(
        column(&run_path(dir.path(), 1), "workers_mode"),
        ["fixed", "fixed"]
    );
    assert_eq!(column(&run_path(dir.path(), 1), "workers"), ["0", "0"]);
    assert_eq!(column(&run_path(dir.path(), 2), "workers"), ["1", "1"]);
    let read = read_run(&auto).unwrap();
    assert_eq!(read.params.workers, Workers::Auto);
    assert_eq!(read.rows.last().unwrap().workers as u64, active);
    assert!(read.rows.iter().all(|e| e.workers >= 1));

    // `--resume` knows the auto run as the same run.
    let (stdout, stderr, ok) = run(&[&args[..], &["--resume"]].concat());
    assert!(ok, "{stderr}");
    assert_eq!(stdout.matches("already complete").count(), 3, "{stdout}");
}

#[test]
fn a_small_memory_budget_stops_auto_at_one_worker() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().unwrap();
    // 50 images of 64×64, u8 and f32, 3 in flight per worker: 3 MiB, over the 1 MiB budget.
    let (stdout, stderr, ok) = run(&[
        "run",
        "--data",
        "synthetic:images=3000,size=64x64,seed=2,work=30",
        "--sink",
        "null",
        "--workers",
        "auto",
        "--batch-size",
        "50",
        "--epochs",
        "1",
        "--prefetch-memory-mib",
        "1",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let why = if cores >= 2 {
        "memory budget"
    } else {
        "core limit"
    };
    assert!(
        stdout.contains(&format!("workers auto → 1 ({why}")),
        "{stdout}"
    );
}

#[test]
fn bad_worker_counts_are_named() {
    let (_, stderr, ok) = run(&["run", "--data", EXPENSIVE, "--workers", "1,two"]);
    assert!(!ok);
    assert!(stderr.contains("'two' is not a worker count"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("p.toml");
    std::fs::write(
        &toml,
        format!("data = \"{EXPENSIVE}\"\n[grid]\nworkers = [\"many\"]\n"),
    )
    .unwrap();
    let (_, stderr, ok) = run(&["run", toml.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("'many' is not a worker count"), "{stderr}");
    let (_, stderr, ok) = run(&["run", "--data", EXPENSIVE, "--repeat", "0"]);
    assert!(!ok);
    assert!(stderr.contains("repeat must be at least 1"), "{stderr}");
}

/// `--workers 0,1 --repeat R`, 2 epochs, the null sink; the output directory.
fn repeated(dir: &Path, repeat: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "run",
        "--data",
        EXPENSIVE,
        "--sink",
        "null",
        "--workers",
        "0,1",
        "--batch-size",
        "100",
        "--epochs",
        "2",
        "--repeat",
        repeat,
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (stdout, stderr, ok) = run(&args);
    assert!(ok, "{stderr}");
    stdout
}

#[test]
fn repetitions_interleave_and_verdicts_tell_effects_from_noise() {
    let dir = tempfile::tempdir().unwrap();
    repeated(dir.path(), "1", &[]);
    let loaded = report::load(dir.path()).unwrap();
    let v = report::verdicts(&loaded.runs);
    let w = v.iter().find(|v| v.axis == Axis::Workers).unwrap();
    assert_eq!(w.data_wait.finding, Finding::CannotTell, "{}", w.text);
    assert!(w.text.contains("cannot tell"), "{}", w.text);

    // Two more repetitions: the first two runs are kept, four are added, interleaved.
    let stdout = repeated(dir.path(), "3", &["--resume"]);
    assert_eq!(stdout.matches("already complete").count(), 2, "{stdout}");
    let points: Vec<(Workers, u32)> = (1..=6)
        .map(|r| {
            let f = read_run(&run_path(dir.path(), r)).unwrap();
            assert_eq!(
                column(&run_path(dir.path(), r), "repeat")[0],
                f.params.repeat.to_string()
            );
            (f.params.workers, f.params.repeat)
        })
        .collect();
    let (w0, w1) = (Workers::Fixed(0), Workers::Fixed(1));
    assert_eq!(
        points,
        [(w0, 1), (w1, 1), (w0, 2), (w1, 2), (w0, 3), (w1, 3)]
    );

    // The verdict's spread is the repetitions' own, recomputed here from the files.
    let loaded = report::load(dir.path()).unwrap();
    let v = report::verdicts(&loaded.runs);
    let w = v.iter().find(|v| v.axis == Axis::Workers).unwrap();
    assert_eq!(w.repetitions, 3);
    let per_run = |r: u32, f: fn(&flowload::results::EpochMetrics) -> f64| {
        let rows = read_run(&run_path(dir.path(), r)).unwrap().rows;
        rows.iter().map(f).sum::<f64>() / rows.len() as f64
    };
    let spread = |runs: [u32; 3]| {
        let v: Vec<f64> = runs
            .iter()
            .map(|&r| per_run(r, |e| e.data_wait_seconds))
            .collect();
        v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min)
    };
    let expected = spread([1, 3, 5]).max(spread([2, 4, 6]));
    assert!(
        (w.data_wait.spread.unwrap() - expected).abs() < 1e-12,
        "{w:?}"
    );
    let mean = |runs: [u32; 3]| {
        runs.iter()
            .map(|&r| per_run(r, |e| e.data_wait_seconds))
            .sum::<f64>()
            / 3.0
    };
    let diff = mean([2, 4, 6]) - mean([1, 3, 5]);
    assert!((w.data_wait.seconds - diff).abs() < 1e-12);
    let finding = if diff.abs() <= expected {
        Finding::WithinNoise
    } else {
        Finding::Effect
    };
    assert_eq!(w.data_wait.finding, finding, "{}", w.text);
    assert!(!w.text.contains("cannot tell"), "{}", w.text);
}

#[test]
fn auto_runs_in_a_cluster_and_trains_as_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &str| {
        vec![
            "run",
            "--data",
            "synthetic:images=1200,size=16x16,seed=3,work=20",
            "--workers",
            "auto",
            "--batch-size",
            "50",
            "--epochs",
            "2",
            "--device",
            "cpu",
            "--torch-threads",
            "1",
            "--out",
            out,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let one = dir.path().join("one");
    let (_, stderr, ok) = run(&args(one.to_str().unwrap())
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>());
    assert!(ok, "{stderr}");
    let two = dir.path().join("two");
    let mut cluster = vec![
        "cluster-local".to_string(),
        "--processes".into(),
        "2".into(),
    ];
    cluster.extend(args(two.to_str().unwrap()));
    let (stdout, stderr, ok) = run(&cluster.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert!(ok, "{stderr}");
    assert!(stdout.contains("workers auto → "), "{stdout}");
    let losses = |dir: &Path| -> Vec<u64> {
        read_run(&run_path(dir, 1))
            .unwrap()
            .rows
            .iter()
            .map(|e| e.loss.unwrap().to_bits())
            .collect()
    };
    assert_eq!(losses(&one), losses(&two), "the same losses bit for bit");
    let f = read_run(&run_path(&two, 1)).unwrap();
    assert_eq!(f.params.workers, Workers::Auto);
    assert_eq!(f.params.processes, 2);
}
