//! A results directory holds one sweep: a second writer is refused with the holder's pid, a
//! directory with results is refused without `--resume` or `--overwrite`, and `--overwrite`
//! replaces the old sweep whole.

use std::path::Path;

use flowload::results::{Existing, ResultsDir, read_run, run_path};

use crate::common::{self, flowload, stderr, stdout};

const DATA: &str = "synthetic:images=200,size=16x16,seed=5,test=20";

fn run(out: &Path, extra: &[&str]) -> std::process::Output {
    let base = [
        "run",
        "--data",
        DATA,
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--sink",
        "null",
        "--out",
        out.to_str().unwrap(),
    ];
    flowload(&[&base[..], extra].concat())
}

#[test]
fn a_second_writer_is_refused_naming_the_directory_and_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("X");
    // This test process holds the directory, as a running sweep would.
    let held = ResultsDir::claim(&out, Existing::Refuse, 1).unwrap();
    let o = run(&out, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(out.to_str().unwrap())
            && err.contains(&format!("pid {}", std::process::id()))
            && err.contains("another flowload"),
        "{err}"
    );
    assert!(
        !out.join("runs").exists(),
        "the refused sweep wrote nothing"
    );
    drop(held);
    assert!(run(&out, &[]).status.success());
}

#[test]
fn two_sweeps_started_together_on_one_directory_never_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("X");
    let spawn = |lr: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_flowload"))
            .env(flowload_core::CACHE_ENV, "off")
            .args(["run", "--data", DATA, "--epochs", "3", "--device", "cpu"])
            .args(["--lr", lr, "--out", out.to_str().unwrap()])
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn("0.01,0.001").unwrap());
        let b = s.spawn(|| spawn("0.005").unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    let ok = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "a: {}\nb: {}", stderr(&a), stderr(&b));
    let loser = if a.status.success() { &b } else { &a };
    let err = stderr(loser);
    assert!(
        err.contains("another flowload") || err.contains("already holds results"),
        "{err}"
    );
    // What is there is the winner's sweep, whole.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let runs = summary["runs"].as_array().unwrap().len();
    assert_eq!(runs, if a.status.success() { 2 } else { 1 });
    for r in 1..=runs as u32 {
        assert_eq!(read_run(&run_path(&out, r)).unwrap().rows.len(), 3);
    }
    assert!(!run_path(&out, runs as u32 + 1).exists());
}

#[test]
fn results_are_refused_then_overwritten_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("X");
    assert!(run(&out, &["--workers", "0,1,2"]).status.success());
    assert!(run_path(&out, 3).exists());
    let o = run(&out, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("already holds results")
            && err.contains("--resume")
            && err.contains("--overwrite"),
        "{err}"
    );
    // --resume with a smaller grid: runs 2 and 3 belong to the other sweep.
    let o = run(&out, &["--resume"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("run-0002.parquet") && err.contains("beyond this grid's 1 run(s)"),
        "{err}"
    );
    let o = run(&out, &["--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run_path(&out, 1).exists());
    assert!(!run_path(&out, 2).exists() && !run_path(&out, 3).exists());
    // The same command twice in a row works with --overwrite (the README's main command).
    let o = run(&out, &["--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("run 1/1"));
    assert_eq!(common::hidden_files(&out), Vec::<String>::new());
}

#[test]
fn overwrite_never_removes_files_flowload_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("X");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let o = run(&out, &["--overwrite"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("notes.txt"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
}
