//! Transforms on real photographs (scripts/make_photos.py): the fused decode against the full
//! one, the same augmented batches for every worker count and from a folder or its Parquet,
//! and draws that change with the epoch. (Bad transform settings on the command line are in
//! the application's tests.)

use flowload_core::testing::{Augmenter, SampleKey, with_transforms};
use flowload_core::{ConvertOptions, Shape};

use crate::common::{self, jpegs, transforms};

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
    let data = common::with_transforms(folder, &train, &test);
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
    // The same JPEG bytes in Parquet, through `convert` (without transforms, which would
    // render them), give the same batches.
    let shards = dir.path().join("shards");
    common::open(folder)
        .convert(&shards, &ConvertOptions::default())
        .unwrap();
    let parquet = common::with_transforms(shards.to_str().unwrap(), &train, &test);
    assert!(common::seen(&parquet.train, 2, Some(3), 8, false, 2) == reference);
    // Another seed draws other crops of the same records in the same order.
    let other = with_transforms(&data.train, transforms(&train, 6))
        .expect("photos are encoded")
        .unwrap();
    let moved = common::seen(&other, 1, Some(3), 8, false, 2);
    assert_eq!(moved[0].2, reference[0].2, "the shuffle does not change");
    assert_ne!(moved[0].3, reference[0].3, "the crops do");
}

#[test]
fn draws_differ_across_epochs_and_evaluation_views_do_not() {
    let dir = tempfile::tempdir().unwrap();
    common::photos(dir.path(), 16, 8, false);
    let data = common::with_transforms(
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
