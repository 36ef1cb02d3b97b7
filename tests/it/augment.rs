//! Transforms on real photographs (scripts/make_photos.py): the fused decode against the full
//! one, the same augmented batches for every worker count and from a folder or its Parquet,
//! draws that change with the epoch, and the errors of bad transform settings.

use std::path::Path;

use flowload::ops::augment::Augmenter;
use flowload::source::transforms::{SampleKey, Transforms};
use flowload::source::{EncodedOptions, Records, Shape, SourceSpec};

use crate::common;

fn transforms(specs: &[&str], seed: u64) -> Transforms {
    Transforms::new(
        &specs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        seed,
    )
    .unwrap()
}

fn open(spec: &str, train: &[&str], test: &[&str]) -> flowload::source::Dataset {
    SourceSpec::parse(spec)
        .unwrap()
        .open_with(&EncodedOptions {
            train_transforms: transforms(train, 5),
            test_transforms: transforms(test, 5),
            ..Default::default()
        })
        .unwrap()
}

fn jpegs(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = glob::glob(&format!("{}/train/*/*.jpg", dir.display()))
        .unwrap()
        .map(|p| p.unwrap())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// The fused path decodes a region at a DCT scale; the reference decodes the whole JPEG at
/// full scale, then crops and resizes. Measured on 16 photos × 8 draws (2026-11-29): a crop
/// without DCT scaling is exact (0); with it (the last two cases, 1/2 to 1/8) the worst image
/// differs by 0.58–0.66 of 255 on average and 10 at its worst pixel. The bounds leave room
/// for other photos.
#[test]
fn fused_decode_stays_within_tolerance_of_the_full_decode() {
    let dir = tempfile::tempdir().unwrap();
    common::photos(dir.path(), 16, 0, false);
    let images = jpegs(dir.path());
    assert_eq!(images.len(), 16);
    let cases: [(&[&str], usize); 4] = [
        (&["random_resized_crop:224", "hflip"], 224),
        (&["resize:256", "center_crop:224"], 224),
        (&["resize:112", "center_crop:112"], 112),
        (&["random_resized_crop:64,scale=0.5-1"], 64),
    ];
    for (specs, size) in cases {
        let t = transforms(specs, 11);
        let shape = Shape {
            channels: 3,
            height: size,
            width: size,
        };
        let (mut fused, mut full) = (Augmenter::new(), Augmenter::unfused());
        let (mut a, mut b) = (vec![0u8; shape.len()], vec![0u8; shape.len()]);
        let (mut worst_mean, mut worst_pixel) = (0f64, 0u8);
        for (i, bytes) in images.iter().enumerate() {
            for epoch in 0..8 {
                let key = SampleKey {
                    epoch,
                    record: i as u32,
                };
                fused.render(bytes, &t, key, shape, &mut a).unwrap();
                full.render(bytes, &t, key, shape, &mut b).unwrap();
                let diffs = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y));
                let sum: u64 = diffs.clone().map(u64::from).sum();
                worst_mean = worst_mean.max(sum as f64 / a.len() as f64);
                worst_pixel = worst_pixel.max(diffs.max().unwrap());
            }
        }
        eprintln!(
            "{specs:?}: worst mean |fused - full| {worst_mean:.3}, worst pixel {worst_pixel}"
        );
        assert!(worst_mean < 1.0, "{specs:?}: mean difference {worst_mean}");
        assert!(
            worst_pixel <= 24,
            "{specs:?}: pixel difference {worst_pixel}"
        );
        if size == 224 {
            assert_eq!(worst_pixel, 0, "{specs:?}: a crop alone is exact");
        }
    }
}

#[test]
fn augmented_batches_are_the_same_for_every_worker_count_folder_or_parquet() {
    let dir = tempfile::tempdir().unwrap();
    common::photos(dir.path(), 40, 8, false);
    let folder = dir.path().to_str().unwrap();
    let train = ["random_resized_crop:48", "hflip"];
    let test = ["resize:56", "center_crop:48"];
    let data = open(folder, &train, &test);
    assert_eq!(data.train.shape().to_string(), "3x48x48");
    assert_eq!(data.test.as_ref().unwrap().shape().to_string(), "3x48x48");
    let reference = common::seen(&data.train, 0, Some(3), 8, false, 2);
    assert_eq!(reference.len(), 2 * 5);
    for workers in [1, 2, 3] {
        assert!(
            common::seen(&data.train, workers, Some(3), 8, false, 2) == reference,
            "workers={workers}"
        );
    }
    // The same JPEG bytes in Parquet, through `flowload convert`, give the same batches.
    let shards = dir.path().join("shards");
    let o = common::flowload(&[
        "convert",
        folder,
        "--to",
        "parquet",
        shards.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let parquet = open(shards.to_str().unwrap(), &train, &test);
    assert!(common::seen(&parquet.train, 2, Some(3), 8, false, 2) == reference);
    // Another seed draws other crops of the same records in the same order.
    let mut other = data.train.clone();
    if let Records::Encoded(e) = &data.train {
        let mut t = e.transforms.clone();
        t.seed = 6;
        other = Records::Encoded(std::sync::Arc::new(e.with_transforms(t).unwrap()));
    }
    let moved = common::seen(&other, 1, Some(3), 8, false, 2);
    assert_eq!(moved[0].2, reference[0].2, "the shuffle does not change");
    assert_ne!(moved[0].3, reference[0].3, "the crops do");
}

#[test]
fn draws_differ_across_epochs_and_evaluation_views_do_not() {
    let dir = tempfile::tempdir().unwrap();
    common::photos(dir.path(), 16, 8, false);
    let data = open(
        dir.path().to_str().unwrap(),
        &["random_resized_crop:32", "hflip"],
        &["resize:36", "center_crop:32"],
    );
    // File order, two epochs: the same records, other crops.
    let seen = common::seen(&data.train, 1, None, 16, false, 2);
    assert_eq!(seen[0].2, seen[1].2);
    assert_ne!(seen[0].3, seen[1].3);
    let test = data.test.unwrap();
    let seen = common::seen(&test, 1, None, 8, false, 2);
    assert_eq!(
        seen[0].3, seen[1].3,
        "the evaluation split is the same every epoch"
    );
}

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
    let data = open(shards.to_str().unwrap(), &[], &[]);
    let per_row = bytes.value_data().len() / arrow::array::Array::len(bytes);
    let window = data.train.window();
    assert!(window < flowload::source::SHUFFLE_WINDOW, "{window}");
    // The footer's sizes count the labels and paths too: within 20% of the images alone.
    let expect = flowload::source::SHUFFLE_WINDOW_BYTES / per_row;
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
