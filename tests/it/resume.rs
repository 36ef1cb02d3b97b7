//! Crash safety: `kill -9` mid-sweep leaves the completed runs whole and readable, and
//! `--resume` skips them and completes the sweep.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowload::results::{read_run, run_path};

const ARGS: [&str; 12] = [
    "run",
    "--data",
    "synthetic:images=3000,size=28x28,classes=10,seed=3,test=100",
    "--workers",
    "0,1",
    "--normalize",
    "false,true",
    "--epochs",
    "3",
    "--device",
    "cpu",
    "--no-shuffle",
];

#[test]
fn kill_mid_sweep_then_resume() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowload"))
        .env(flowload_core::CACHE_ENV, "off")
        .args(ARGS)
        .args(["--out", o])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for run 1 to be complete on disk (polling a condition, not sleeping for luck).
    let first = run_path(out.path(), 1);
    let deadline = Instant::now() + Duration::from_secs(300);
    while !first.exists() {
        assert!(Instant::now() < deadline, "run 1 never completed");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep exited before it was killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the sweep was killed, not finished");

    // What is there is whole: every visible run file reads back with all its epochs.
    let before = std::fs::read(&first).unwrap();
    assert_eq!(read_run(&first).unwrap().rows.len(), 3);
    let visible: Vec<_> = std::fs::read_dir(out.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(visible.len() < 4, "killed before the last run: {visible:?}");
    for name in &visible {
        assert_eq!(
            read_run(&out.path().join("runs").join(name))
                .unwrap()
                .rows
                .len(),
            3,
            "{name}"
        );
    }

    let again = common::flowload(&[&ARGS[..], &["--out", o, "--resume"]].concat());
    assert!(again.status.success(), "{}", common::stderr(&again));
    let text = common::stdout(&again);
    assert!(
        text.contains("run 1/4") && text.contains("already complete, skipped"),
        "{text}"
    );
    for run in 1..=4 {
        assert_eq!(read_run(&run_path(out.path(), run)).unwrap().rows.len(), 3);
    }
    assert_eq!(
        std::fs::read(&first).unwrap(),
        before,
        "run 1 was not rewritten"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["runs"].as_array().unwrap().len(), 4);
}

#[test]
fn resume_reruns_a_run_made_with_another_config() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let base = [
        "run",
        "--data",
        "synthetic:images=100,size=16x16,seed=1,test=10",
        "--device",
        "cpu",
        "--out",
        o,
    ];
    assert!(
        common::flowload(&[&base[..], &["--epochs", "1"]].concat())
            .status
            .success()
    );
    let again = common::flowload(&[&base[..], &["--epochs", "2", "--resume"]].concat());
    assert!(again.status.success(), "{}", common::stderr(&again));
    assert!(!common::stdout(&again).contains("skipped"));
    assert_eq!(read_run(&run_path(out.path(), 1)).unwrap().rows.len(), 2);
}

#[test]
fn resume_reruns_a_run_whose_resize_changed_and_skips_one_whose_prefetch_changed() {
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    let convert = common::flowload(&[
        "convert",
        "synthetic:images=60,channels=1,size=16x16,seed=2,test=10",
        shards.to_str().unwrap(),
    ]);
    assert!(convert.status.success(), "{}", common::stderr(&convert));
    let out = dir.path().join("results");
    let run = |extra: &[&str]| {
        let base = [
            "run",
            "--data",
            shards.to_str().unwrap(),
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ];
        let o = common::flowload(&[&base[..], extra].concat());
        assert!(o.status.success(), "{}", common::stderr(&o));
        common::stdout(&o)
    };
    let config = || read_run(&run_path(&out, 1)).unwrap().config_json.unwrap();
    run(&["--resize", "20x20"]);
    assert!(config().contains("\"20x20\""), "{}", config());
    let text = run(&["--resize", "24x24", "--resume"]);
    assert!(!text.contains("already complete"), "{text}");
    assert!(config().contains("\"24x24\""), "{}", config());
    let text = run(&["--resize", "24x24", "--prefetch", "4", "--resume"]);
    assert!(text.contains("already complete, skipped"), "{text}");
}

#[test]
fn resume_reruns_a_run_whose_data_gained_or_lost_a_shard() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, spare) = (dir.path().join("shards"), dir.path().join("spare"));
    for (out, seed) in [(&shards, 2), (&spare, 3)] {
        let spec = format!("synthetic:images=60,channels=1,size=16x16,seed={seed},test=10");
        let o = common::flowload(&["convert", &spec, out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", common::stderr(&o));
    }
    let extra = shards.join("train-more.parquet");
    let out = dir.path().join("results");
    let run = || {
        let o = common::flowload(&[
            "run",
            "--data",
            shards.to_str().unwrap(),
            "--sink",
            "null",
            "--out",
            out.to_str().unwrap(),
            "--resume",
        ]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        common::stdout(&o).contains("already complete, skipped")
    };
    let images = || read_run(&run_path(&out, 1)).unwrap().rows[0].images;
    assert!(!run());
    assert!(run());
    assert_eq!(images(), 60);
    std::fs::copy(spare.join("train-00000-of-00001.parquet"), &extra).unwrap();
    assert!(!run(), "a shard was added");
    assert_eq!(images(), 120);
    assert!(run());
    // Touched, not changed: still complete.
    std::fs::File::options()
        .write(true)
        .open(&extra)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    assert!(run(), "a touched shard is the same data");
    std::fs::remove_file(&extra).unwrap();
    assert!(!run(), "a shard was removed");
    assert_eq!(images(), 60);
}
