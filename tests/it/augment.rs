//! Transforms on the command line: `convert` keeps JPEG bytes as they are, CIFAR-style padded
//! crops train, and bad transform settings are named. (The transforms themselves are tested
//! in flowload-core's tests.)

use flowload_core::testing::{SHUFFLE_WINDOW, SHUFFLE_WINDOW_BYTES, shuffle_window};

use crate::common::{self, jpegs};

#[test]
fn convert_keeps_jpeg_bytes_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    common::photos(dir.path(), 8, 8, false);
    let shards = dir.path().join("shards");
    let o = common::flowload(&[
        "convert",
        dir.path().to_str().unwrap(),
        "--to",
        "parquet",
        shards.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let batch = common::read_parquet(&shards.join("train-00000-of-00001.parquet"));
    let image = batch
        .column_by_name("image")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::StructArray>()
        .unwrap();
    let bytes = image
        .column_by_name("bytes")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::BinaryArray>()
        .unwrap();
    let paths = image
        .column_by_name("path")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    assert_eq!(bytes.value(0), jpegs(dir.path())[0].as_slice());
    assert!(paths.value(0).ends_with(".jpg"), "{}", paths.value(0));
    // Photos are large records: the shuffle window holds 64 MiB of them, not 8192.
    let data = common::open(shards.to_str().unwrap());
    let per_row = bytes.value_data().len() / arrow::array::Array::len(bytes);
    let window = shuffle_window(&data.train);
    assert!(window < SHUFFLE_WINDOW, "{window}");
    // The footer's sizes count the labels and paths too: within 20% of the images alone.
    let expect = SHUFFLE_WINDOW_BYTES / per_row;
    assert!(
        (expect * 8 / 10..=expect * 12 / 10).contains(&window),
        "{window} rows for {per_row} bytes per row"
    );
}

#[test]
fn cifar_style_padded_crops_train_and_bad_settings_are_named() {
    let dir = tempfile::tempdir().unwrap();
    common::photos(dir.path(), 64, 16, true);
    let data = dir.path().to_str().unwrap();
    let out = dir.path().join("out");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--data",
            data,
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--out",
            out.to_str().unwrap(),
            "--overwrite",
        ];
        args.extend(extra);
        common::flowload(&args)
    };
    let o = run(&[
        "--augment",
        "random_crop:32,padding=4,mode=reflect",
        "--augment",
        "hflip",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let acc = summary["runs"][0]["epochs"][0]["test_accuracy"]
        .as_f64()
        .unwrap();
    assert!((0.0..=1.0).contains(&acc), "{summary}");

    let fails = |extra: &[&str], want: &[&str]| {
        let o = run(extra);
        let err = common::stderr(&o);
        assert!(!o.status.success(), "{extra:?} should fail");
        for w in want {
            assert!(err.contains(w), "{extra:?}: '{w}' not in: {err}");
        }
    };
    fails(
        &["--augment", "rotate:30"],
        &["unknown transform 'rotate'", "random_resized_crop:SIZE"],
    );
    fails(
        &["--augment", "random_crop:32,pad=4"],
        &["unknown parameter 'pad'", "padding"],
    );
    fails(
        &["--test-transforms", "hflip"],
        &["test_transforms", "hflip:0.5", "deterministic"],
    );
    fails(
        &["--augment", "random_crop:40"],
        &["random_crop:40", "32x32", "padding"],
    );
    fails(
        &["--augment", "resize:16"],
        &["test data", "3x32x32", "3x16x16"],
    );
}
