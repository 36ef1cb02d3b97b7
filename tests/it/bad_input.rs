//! Bad input: each case exits non-zero, without a panic, with a message naming the file and what is wrong.

use std::fs;
use std::path::Path;

use crate::common::{flowload, open, stderr, write_idx};

/// A valid IDX directory with 20 images of 4x4, which each test then breaks.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_idx(
        dir.path(),
        &open("synthetic:images=20,size=4x4,seed=9,test=0"),
    );
    dir
}

/// Runs `stats` and `run` on `dir` and checks both fail cleanly with every `needle` in stderr.
fn fails_with(dir: &Path, needles: &[&str]) {
    let d = dir.to_str().unwrap();
    let out_dir = dir.join("out");
    for args in [
        vec!["stats", d],
        vec![
            "run",
            "--data",
            d,
            "--epochs",
            "1",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    ] {
        let out = flowload(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: '{n}' not in: {err}");
        }
    }
    // Refused during the first run (its statistics pass): nothing is written, not even the
    // results directory, its lock or an empty runs/.
    assert!(
        !out_dir.exists(),
        "{:?}",
        std::fs::read_dir(&out_dir).map(|d| d.count())
    );
}

fn images(dir: &Path) -> std::path::PathBuf {
    dir.join("train-images-idx3-ubyte")
}
fn labels(dir: &Path) -> std::path::PathBuf {
    dir.join("train-labels-idx1-ubyte")
}

#[test]
fn a_missing_directory_is_named() {
    fails_with(
        Path::new("/nonexistent/flowload-data"),
        &["/nonexistent/flowload-data", "no such directory"],
    );
}

#[test]
fn a_directory_without_idx_files_says_what_it_expected() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(
        dir.path(),
        &[
            "no data found",
            "train-images-idx3-ubyte",
            "Parquet shards",
            "image folder",
        ],
    );
}

#[test]
fn a_wrong_magic_number_names_the_file() {
    let dir = fixture();
    let mut bytes = fs::read(images(dir.path())).unwrap();
    bytes[3] = 0x01;
    fs::write(images(dir.path()), bytes).unwrap();
    fails_with(
        dir.path(),
        &[
            "train-images-idx3-ubyte",
            "bad magic number 0x00000801",
            "expected 0x00000803",
        ],
    );
}

#[test]
fn a_truncated_file_names_the_first_incomplete_record() {
    let dir = fixture();
    let bytes = fs::read(images(dir.path())).unwrap();
    // Header 16 bytes + 20 records of 16 bytes; keep 12.5 records.
    fs::write(images(dir.path()), &bytes[..16 + 12 * 16 + 8]).unwrap();
    fails_with(
        dir.path(),
        &[
            "train-images-idx3-ubyte",
            "truncated",
            "record 12 is the first incomplete",
        ],
    );
}

#[test]
fn a_truncated_gzip_file_is_reported_as_truncated() {
    let dir = fixture();
    let raw = fs::read(images(dir.path())).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    let gz = gz.finish().unwrap();
    fs::remove_file(images(dir.path())).unwrap();
    fs::write(
        dir.path().join("train-images-idx3-ubyte.gz"),
        &gz[..gz.len() / 2],
    )
    .unwrap();
    fails_with(dir.path(), &["train-images-idx3-ubyte.gz", "truncated"]);
}

#[test]
fn an_image_label_count_mismatch_names_both_files() {
    let dir = fixture();
    let mut bytes = fs::read(labels(dir.path())).unwrap();
    bytes[7] = 19; // header says 19 labels
    bytes.pop();
    fs::write(labels(dir.path()), bytes).unwrap();
    fails_with(
        dir.path(),
        &[
            "train-images-idx3-ubyte holds 20 images",
            "train-labels-idx1-ubyte holds 19 labels",
        ],
    );
}

#[test]
fn a_label_outside_the_class_count_names_the_record() {
    let dir = fixture();
    let mut bytes = fs::read(labels(dir.path())).unwrap();
    bytes[8 + 5] = 12;
    fs::write(labels(dir.path()), bytes).unwrap();
    fails_with(
        dir.path(),
        &[
            "train-labels-idx1-ubyte",
            "record 5",
            "label 12 is outside 0..10",
        ],
    );
}

#[test]
fn an_empty_data_set_is_an_error() {
    let dir = fixture();
    let mut img = fs::read(images(dir.path())).unwrap();
    img.truncate(16);
    img[4..8].copy_from_slice(&0u32.to_be_bytes());
    fs::write(images(dir.path()), img).unwrap();
    fs::write(labels(dir.path()), [0, 0, 8, 1, 0, 0, 0, 0]).unwrap();
    fails_with(dir.path(), &["train-images-idx3-ubyte", "empty"]);
}

#[test]
fn a_zero_variance_channel_is_named() {
    let dir = fixture();
    let mut img = fs::read(images(dir.path())).unwrap();
    img[16..].fill(77);
    fs::write(images(dir.path()), img).unwrap();
    fails_with(
        dir.path(),
        &["channel 0 has zero variance", "every pixel is 77"],
    );
}

#[test]
fn zero_variance_is_fine_when_normalization_is_off() {
    let dir = fixture();
    let mut img = fs::read(images(dir.path())).unwrap();
    img[16..].fill(77);
    fs::write(images(dir.path()), img).unwrap();
    let out_dir = dir.path().join("out");
    let out = flowload(&[
        "run",
        "--data",
        dir.path().to_str().unwrap(),
        "--normalize",
        "false",
        "--sink",
        "null",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_bad_stats_file_is_named() {
    let dir = fixture();
    let stats = dir.path().join("stats.json");
    fs::write(
        &stats,
        r#"{"images":1,"channels":3,"height":4,"width":4,"mean":[0.1,0.2,0.3],"std":[1,1,1]}"#,
    )
    .unwrap();
    let out = flowload(&[
        "run",
        "--data",
        dir.path().to_str().unwrap(),
        "--stats",
        stats.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("stats.json") && err.contains("3x4x4") && err.contains("1x4x4"),
        "{err}"
    );
}

#[test]
fn an_unknown_pipeline_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    fs::write(&p, "data = \"synthetic\"\n[grid]\nworkerz = [1]\n").unwrap();
    let out = flowload(&["run", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("p.toml") && err.contains("workerz"), "{err}");
}

#[test]
fn a_zero_batch_size_is_rejected_by_the_flag_parser() {
    let out = flowload(&["run", "--data", "synthetic", "--batch-size", "0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Invalid batch size '0'"),
        "{}",
        stderr(&out)
    );
}

/// Runs `args`; it must fail with status 1, without a panic, with every needle in stderr.
fn refused(args: &[&str], needles: &[&str]) -> String {
    let out = flowload(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: '{n}' not in: {err}");
    }
    err
}

#[test]
fn resize_and_transforms_on_raw_pixels_are_applied_not_ignored() {
    let dir = fixture();
    let d = dir.path().to_str().unwrap();
    let stats = |extra: &[&str]| {
        let mut args = vec!["stats", d, "--json"];
        args.extend(extra);
        let o = flowload(&args);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let plain = stats(&[]);
    let resized = stats(&["--resize", "32x32"]);
    assert_eq!(
        (resized["height"].clone(), resized["width"].clone()),
        (32.into(), 32.into())
    );
    assert_ne!(resized["mean"], plain["mean"]);
    // Statistics see a random crop's evaluation view: the centre crop of the same size.
    let cropped = stats(&["--augment", "random_crop:3", "--augment", "hflip"]);
    assert_eq!(cropped, stats(&["--augment", "center_crop:3"]));
    refused(
        &["stats", d, "--augment", "center_crop:40"],
        &["center_crop:40", "4x4", "does not fit"],
    );
}

#[test]
fn classes_that_disagree_with_a_synthetic_spec_are_refused() {
    refused(
        &[
            "run",
            "--data",
            "synthetic:images=50,size=8x8,classes=10",
            "--classes",
            "5",
        ],
        &["classes 5", "generates 10 classes", "classes=5"],
    );
}

#[test]
fn a_run_without_batches_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    refused(
        &[
            "run",
            "--data",
            "synthetic:images=600,size=8x8",
            "--batch-size",
            "100000",
            "--drop-last",
            "--out",
            out.to_str().unwrap(),
        ],
        &["batch size 100000", "--drop-last", "600 training images"],
    );
    assert!(!out.join("runs").exists());
}

#[test]
fn a_test_split_of_another_shape_or_with_more_classes_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let train = open("synthetic:images=40,size=28x28,seed=1,test=0");
    write_idx(dir.path(), &train);
    // The test split at 14x56: the same pixel count, another shape.
    let test = open("synthetic:images=10,size=14x56,seed=2,test=0");
    let (images, labels) = flowload_core::testing::encode_idx(test.train.as_raw().unwrap());
    fs::write(dir.path().join("t10k-images-idx3-ubyte"), images).unwrap();
    fs::write(dir.path().join("t10k-labels-idx1-ubyte"), labels).unwrap();
    let d = dir.path().to_str().unwrap();
    refused(
        &[
            "run",
            "--data",
            d,
            "--device",
            "cpu",
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ],
        &["1x14x56", "1x28x28", "t10k-images-idx3-ubyte"],
    );
    // Test data with more classes than the training data.
    refused(
        &[
            "run",
            "--data",
            "synthetic:images=40,size=8x8,classes=5",
            "--test-data",
            "synthetic:images=40,size=8x8,classes=12",
            "--device",
            "cpu",
            "--out",
            dir.path().join("o2").to_str().unwrap(),
        ],
        &["has 12 classes", "has 5", "cannot predict"],
    );
}

#[test]
fn a_resize_or_batch_too_big_for_memory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("f");
    fs::create_dir_all(folder.join("a")).unwrap();
    fs::create_dir_all(folder.join("b")).unwrap();
    let png = flowload_core::testing::encode_png(
        &[7; 16],
        flowload_core::Shape {
            channels: 1,
            height: 4,
            width: 4,
        },
    );
    fs::write(folder.join("a/0.png"), &png).unwrap();
    fs::write(folder.join("b/0.png"), &png).unwrap();
    let f = folder.to_str().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    refused(
        &["run", "--data", f, "--resize", "100000x100000", "--out", o],
        &["1x100000x100000", "MiB", "--resize"],
    );
    refused(
        &[
            "run",
            "--data",
            f,
            "--resize",
            "15000x15000",
            "--batch-size",
            "100000",
            "--workers",
            "64",
            "--out",
            o,
        ],
        &["batch size 100000", "GiB in memory", "this machine has"],
    );
}

#[test]
fn a_stats_file_with_zero_std_is_blamed_not_the_data() {
    let dir = fixture();
    let stats = dir.path().join("stats.json");
    fs::write(
        &stats,
        r#"{"images":20,"channels":1,"height":4,"width":4,"mean":[0.28],"std":[0.0]}"#,
    )
    .unwrap();
    let err = refused(
        &[
            "run",
            "--data",
            dir.path().to_str().unwrap(),
            "--stats",
            stats.to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ],
        &[
            "stats.json",
            "invalid statistics file",
            "channel 0 has std 0",
        ],
    );
    assert!(!err.contains("zero variance"), "{err}");
}

#[test]
fn a_toml_type_error_names_the_key_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    fs::write(&p, "data = \"synthetic\"\n\nepochs = \"three\"\n").unwrap();
    refused(
        &["run", p.to_str().unwrap()],
        &["p.toml", "line 3", "epochs"],
    );
}

#[test]
fn an_io_error_is_printed_once() {
    let err = refused(
        &[
            "run",
            "--data",
            "synthetic:images=20,size=4x4",
            "--stats",
            "/nonexistent/stats.json",
        ],
        &["/nonexistent/stats.json", "(os error 2)"],
    );
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
}

#[test]
fn stats_help_names_every_kind_of_source() {
    let out = flowload(&["stats", "--help"]);
    let text = crate::common::stdout(&out);
    assert!(
        text.contains("Parquet") && text.contains("image folder"),
        "{text}"
    );
}

#[test]
fn negative_numbers_reach_the_range_checks_and_settings_beyond_float32_are_refused() {
    let base = [
        "run",
        "--data",
        "synthetic:images=20,size=4x4",
        "--sink",
        "null",
    ];
    let with = |extra: &[&'static str]| -> Vec<&str> { [&base[..], extra].concat() };
    refused(
        &with(&["--weight-decay", "-0.1"]),
        &["weight_decay must be 0 or more"],
    );
    refused(
        &with(&["--momentum", "-0.9", "--optimizer", "sgd"]),
        &["momentum must be 0 or more"],
    );
    refused(
        &with(&["--lr", "0.01,-0.01"]),
        &["learning rates must be positive"],
    );
    // The flag parser's own checks, as clap reports them (status 2).
    for (args, needle) in [
        (with(&["--batch-size", "-5"]), "Invalid batch size '-5'"),
        (with(&["--workers", "-1"]), "'-1' is not a worker count"),
    ] {
        let o = flowload(&args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
    }
    // libtorch aborts when a float32 parameter meets 1e39; the check answers first, and a
    // huge rate is written as a person reads it.
    for lr in ["1e39", "3.5e38"] {
        refused(
            &with(&["--optimizer", "sgd", "--lr", lr]),
            &["grid.lr", "beyond float32's range"],
        );
    }
    refused(
        &with(&["--weight-decay", "1e40"]),
        &["weight_decay: 1e40 is beyond float32's range"],
    );
    let out = tempfile::tempdir().unwrap();
    let mut args = with(&["--lr", "1e30", "--epochs", "1"]);
    args.extend(["--out", out.path().to_str().unwrap()]);
    let o = flowload(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        crate::common::stdout(&o).contains("lr=1e30 "),
        "{}",
        crate::common::stdout(&o)
    );
}

#[test]
fn a_synthetic_spec_too_large_for_a_record_or_for_memory_is_named_not_an_abort() {
    for (spec, needle) in [
        (
            "synthetic:images=100000,channels=3,size=1024x1024",
            "memory",
        ),
        ("synthetic:size=100000x100000", "an image may take"),
        ("synthetic:images=18446744073709551615", "memory"),
    ] {
        refused(&["stats", spec], &[spec, needle]);
    }
}

/// Whatever the training transforms accept, the statistics view accepts: a padded crop larger
/// than the image (CIFAR's recipe on 28x28), a non-square random resized crop, with
/// normalization on (the statistics pass runs through the view).
#[test]
fn the_statistics_view_accepts_what_training_accepts() {
    for augment in [
        &[
            "--augment",
            "random_crop:32,padding=4",
            "--augment",
            "hflip",
        ][..],
        &["--augment", "random_resized_crop:24x12"],
    ] {
        let out = tempfile::tempdir().unwrap();
        let mut args = vec![
            "run",
            "--data",
            "synthetic:images=40,size=28x28,seed=3,test=0",
            "--sink",
            "null",
            "--normalize",
            "true",
            "--out",
            out.path().to_str().unwrap(),
        ];
        args.extend_from_slice(augment);
        let o = flowload(&args);
        assert!(o.status.success(), "{augment:?}: {}", stderr(&o));
        assert!(
            crate::common::stdout(&o).contains("(computed, 1/1 shards decoded)"),
            "{}",
            crate::common::stdout(&o)
        );
    }
}
