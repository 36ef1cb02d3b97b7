//! Encoded inputs through the binary: `convert` round-trips and trains as the source it came
//! from; every corrupt-record case fails, naming the shard and row, or is skipped and listed;
//! mismatched sizes and unclear class counts are named. (The loader's own view of Parquet
//! shards and image folders is in flowload-core's tests.)

use crate::common;
use crate::fixtures::{corrupt, png, shard_with_labels};

use std::path::Path;

use arrow::array::StringArray;
use flowload_core::{Records, Shape};

fn batches(records: &Records, workers: usize, shuffle: Option<u64>) -> common::Seen {
    common::seen(records, workers, shuffle, 32, false, 2)
}

#[test]
fn convert_round_trips_fashion_mnist_shaped_data() {
    let data = common::open("synthetic:images=130,channels=1,size=28x28,classes=10,seed=2,test=30");
    let idx_dir = tempfile::tempdir().unwrap();
    common::write_idx(idx_dir.path(), &data);
    let out = tempfile::tempdir().unwrap();
    let o = common::flowload(&[
        "convert",
        idx_dir.path().to_str().unwrap(),
        "--to",
        "parquet",
        out.path().to_str().unwrap(),
        "--row-group-size",
        "50",
        "--shard-rows",
        "100",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for n in [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
        "test-00000-of-00001.parquet",
    ] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    let back = common::open(out.path().to_str().unwrap());
    assert_eq!(batches(&back.train, 1, None), batches(&data.train, 0, None));
    let (t0, t1) = (back.test.unwrap(), data.test.unwrap());
    assert_eq!(batches(&t0, 0, None), batches(&t1, 0, None));
    // And it trains exactly like the IDX source: in file order, the same losses bit for bit.
    let run = |src: &str, out: &Path| {
        let o = common::flowload(&[
            "run",
            "--data",
            src,
            "--epochs",
            "2",
            "--device",
            "cpu",
            "--batch-size",
            "26",
            "--no-shuffle",
            "--workers",
            "0,2",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        (1..=2)
            .flat_map(|run| {
                flowload::results::read_run(&flowload::results::run_path(out, run))
                    .unwrap()
                    .rows
            })
            .map(|r| {
                (
                    r.images,
                    r.loss.unwrap().to_bits(),
                    r.test_loss.unwrap().to_bits(),
                )
            })
            .collect::<Vec<_>>()
    };
    let runs = tempfile::tempdir().unwrap();
    let from_idx = run(idx_dir.path().to_str().unwrap(), &runs.path().join("idx"));
    let from_parquet = run(out.path().to_str().unwrap(), &runs.path().join("parquet"));
    assert_eq!(from_idx.len(), 4);
    assert_eq!(from_idx, from_parquet);
}

#[test]
fn mismatched_sizes_are_named_unless_resized() {
    let dir = tempfile::tempdir().unwrap();
    let s8 = Shape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let s9 = Shape {
        channels: 1,
        height: 9,
        width: 7,
    };
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    std::fs::write(dir.path().join("a/0.png"), png(&[10; 64], s8)).unwrap();
    std::fs::write(dir.path().join("a/1.png"), png(&[200; 63], s9)).unwrap();
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    std::fs::write(dir.path().join("b/2.png"), png(&[90; 64], s8)).unwrap();
    let d = dir.path().to_str().unwrap();
    let o = common::flowload(&["stats", d]);
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(
        err.contains("a/1.png")
            && err.contains("is 9x7, the data set is 8x8")
            && err.contains("--resize"),
        "{err}"
    );
    let o = common::flowload(&["stats", d, "--resize", "8x8", "--json"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(common::stdout(&o).contains("\"images\":3"));
}

#[test]
fn corrupt_records_fail_by_default_naming_shard_and_row() {
    let c = corrupt();
    let out = c.parquet.join("out");
    let o = common::flowload(&[
        "run",
        "--data",
        c.parquet.to_str().unwrap(),
        "--classes",
        "2",
        "--sink",
        "null",
        "--no-shuffle",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(
        err.contains("train-00000-of-00001.parquet: row 1: not a PNG or JPEG image"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
    // The failed run leaves no temporary file behind.
    assert_eq!(common::hidden_files(&out), Vec::<String>::new());
    // In a cluster, batch 1 of one-record batches is process 1's: its error reaches the
    // trainer with the same words.
    let o = common::flowload(&[
        "cluster-local",
        "--processes",
        "2",
        "run",
        "--data",
        c.parquet.to_str().unwrap(),
        "--classes",
        "2",
        "--sink",
        "null",
        "--no-shuffle",
        "--normalize",
        "false",
        "--batch-size",
        "1",
        "--workers",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(
        err.contains("train-00000-of-00001.parquet: row 1: not a PNG or JPEG image"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(common::hidden_files(&out), Vec::<String>::new());
    let o = common::flowload(&["stats", c.folder.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(
        err.contains("b/3.png") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn corrupt_records_are_counted_and_listed_when_skipped() {
    let c = corrupt();
    let out = c.parquet.join("out");
    // One process at workers 0 and 2, then two processes of one worker: the same count.
    let two = c.parquet.join("two");
    for (command, workers, dir) in [
        (vec!["run"], "0,2", &out),
        (vec!["cluster-local", "--processes", "2", "run"], "1", &two),
    ] {
        let mut args = command;
        args.extend([
            "--data",
            c.parquet.to_str().unwrap(),
            "--classes",
            "2",
            "--sink",
            "null",
            "--workers",
            workers,
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--on-bad-record",
            "skip",
            "--out",
            dir.to_str().unwrap(),
        ]);
        let o = common::flowload(&args);
        assert!(o.status.success(), "{}", common::stderr(&o));
        assert!(
            common::stdout(&o).contains("skipped 5 bad records"),
            "{}",
            common::stdout(&o)
        );
    }
    for run in [1, 2] {
        let rows = flowload::results::read_run(&flowload::results::run_path(&out, run))
            .unwrap()
            .rows;
        assert!(
            rows.iter().all(|r| r.skipped_records == 5 && r.images == 4),
            "{rows:?}"
        );
    }
    // skipped.parquet lists each bad record once per run, with its reason.
    let b = common::read_parquet(&out.join("skipped.parquet"));
    assert_eq!(b.num_rows(), 10);
    let reasons = b
        .column_by_name("reason")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .clone();
    let rows = b
        .column_by_name("row")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::UInt64Array>()
        .unwrap()
        .clone();
    let mut listed: Vec<(u64, String)> = (0..5)
        .map(|i| (rows.value(i), reasons.value(i).to_string()))
        .collect();
    listed.sort();
    let expect = [
        (1, "not a PNG or JPEG"),
        (3, "cannot decode"),
        (4, "1 colour channel(s), the data set has 3"),
        (5, "label 7 is outside 0..2"),
        (7, "null image"),
    ];
    for ((row, reason), (want_row, want)) in listed.iter().zip(expect) {
        assert_eq!(*row, want_row);
        assert!(reason.contains(want), "row {row}: {reason}");
    }
    // The folder's unreadable file, skipped.
    let o = common::flowload(&[
        "stats",
        c.folder.to_str().unwrap(),
        "--on-bad-record",
        "skip",
        "--json",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(common::stdout(&o).contains("\"images\":3"));
    assert!(common::stderr(&o).contains("b/3.png") && common::stderr(&o).contains("cannot read"));
}

#[test]
fn the_parquet_class_count_is_not_guessed_from_a_corrupt_label() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // 0..9 and one label of 1000: not a 1001-class data set.
    let mut labels: Vec<i64> = (0..10).collect();
    labels[6] = 1000;
    labels.push(3);
    shard_with_labels(dir.path(), labels);
    let o = common::flowload(&["stats", d]);
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(
        err.contains("train-00000-of-00001.parquet: row 6 holds label 1000")
            && err.contains("class 6 never occurs")
            && err.contains("--classes"),
        "{err}"
    );
    // 2^40 is an error too, not an allocation inside libtorch.
    shard_with_labels(dir.path(), vec![0, 1, 1 << 40, 1]);
    let o = common::flowload(&[
        "run",
        "--data",
        d,
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(
        err.contains("label 1099511627776") && !err.contains("panicked"),
        "{err}"
    );
    // With --classes the class count is given, and the label outside it is a bad record.
    let o = common::flowload(&["stats", d, "--classes", "2", "--on-bad-record", "skip"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(common::stderr(&o).contains("row 2: label 1099511627776 is outside 0..2"));
    // Every class 0..max present: max + 1.
    shard_with_labels(dir.path(), vec![2, 0, 1, 1]);
    let data = common::open(d);
    assert_eq!(data.train.classes(), 3);
}

#[test]
fn convert_keeps_the_class_count_in_hugging_face_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shards");
    // Five classes declared, labels 0..1 only: the metadata keeps 5.
    let o = common::flowload(&[
        "convert",
        "synthetic:images=4,size=4x4,classes=5,seed=1",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let data = common::open(out.to_str().unwrap());
    assert_eq!(data.train.classes(), 5);
}

#[test]
fn convert_refuses_a_directory_with_files_and_overwrite_replaces_its_shards() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shards");
    let o = out.to_str().unwrap();
    let src = "synthetic:images=600,size=4x4,seed=2,test=100";
    let convert = |extra: &[&str]| common::flowload(&[&["convert", src, o][..], extra].concat());
    assert!(convert(&["--shard-rows", "100"]).status.success());
    let r = convert(&[]);
    assert_eq!(r.status.code(), Some(1));
    let err = common::stderr(&r);
    assert!(
        err.contains("is not empty") && err.contains("--overwrite") && err.contains("mix"),
        "{err}"
    );
    let r = convert(&["--overwrite"]);
    assert!(r.status.success(), "{}", common::stderr(&r));
    let stats = common::flowload(&["stats", o, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(json["images"], 600, "{}", common::stderr(&stats));
    // Something that is not a shard stops --overwrite before it removes anything.
    std::fs::write(out.join("README.md"), "mine").unwrap();
    let r = convert(&["--overwrite"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(common::stderr(&r).contains("README.md"));
    assert!(out.join("train-00000-of-00001.parquet").exists());
}

#[test]
fn a_missing_or_mixed_shard_of_a_numbered_set_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shards");
    let o = out.to_str().unwrap();
    let convert = common::flowload(&[
        "convert",
        "synthetic:images=600,size=4x4,seed=2",
        o,
        "--shard-rows",
        "100",
    ]);
    assert!(convert.status.success());
    std::fs::remove_file(out.join("train-00003-of-00006.parquet")).unwrap();
    let r = common::flowload(&["stats", o]);
    assert_eq!(r.status.code(), Some(1));
    let err = common::stderr(&r);
    assert!(
        err.contains("train-00003-of-00006.parquet") && err.contains("missing"),
        "{err}"
    );
    // Another conversion's shard beside the set.
    std::fs::copy(
        out.join("train-00000-of-00006.parquet"),
        out.join("train-00003-of-00006.parquet"),
    )
    .unwrap();
    std::fs::copy(
        out.join("train-00000-of-00006.parquet"),
        out.join("train-00000-of-00002.parquet"),
    )
    .unwrap();
    let r = common::flowload(&["stats", o]);
    assert_eq!(r.status.code(), Some(1));
    let err = common::stderr(&r);
    assert!(
        err.contains("-of-00002") && err.contains("-of-00006"),
        "{err}"
    );
}

#[test]
fn a_folder_without_class_directories_names_the_kinds_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("loose.png"), b"x").unwrap();
    let o = common::flowload(&["stats", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(
        err.contains("no data found") && err.contains("image folder") && err.contains("Parquet"),
        "{err}"
    );
}

/// A bad record of the test split skipped is counted apart (the test accuracy is over the
/// others), in its own column and in the run's line, and listed with the training ones.
#[test]
fn test_records_skipped_as_bad_are_counted_in_their_own_column_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("f");
    // 16x16: the seed's network needs at least that.
    let shape = Shape {
        channels: 1,
        height: 16,
        width: 16,
    };
    for (file, v) in [
        ("train/a/0.png", 10u8),
        ("train/a/1.png", 20),
        ("train/b/2.png", 200),
        ("train/b/3.png", 220),
        ("test/a/4.png", 15),
        ("test/b/5.png", 210),
    ] {
        let p = root.join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, png(&[v; 256], shape)).unwrap();
    }
    std::fs::write(root.join("test/b/6.png"), b"not an image").unwrap();
    let out = dir.path().join("out");
    let o = common::flowload(&[
        "run",
        "--data",
        root.to_str().unwrap(),
        "--on-bad-record",
        "skip",
        "--epochs",
        "2",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let line = common::stdout(&o);
    assert!(
        line.contains("skipped 0 bad records, and 1 of the test split"),
        "{line}"
    );
    let rows = flowload::results::read_run(&flowload::results::run_path(&out, 1))
        .unwrap()
        .rows;
    assert!(
        rows.iter()
            .all(|r| r.skipped_records == 0 && r.test_skipped_records == 1),
        "{rows:?}"
    );
    let listed = common::read_parquet(&out.join("skipped.parquet"));
    assert_eq!(listed.num_rows(), 1);
}
