//! Batch order and contents: identical for every worker count under one seed, different under
//! another; normalized batches have per-channel mean ≈ 0 and std ≈ 1.

use flowload_core::{Dataset, Loader, Workers};

use crate::common::{self, Seen};

fn collect(
    data: &Dataset,
    workers: impl Into<Workers>,
    seed: Option<u64>,
    batch_size: usize,
    drop_last: bool,
) -> Seen {
    common::seen(&data.train, workers, seed, batch_size, drop_last, 3)
}

#[test]
fn batch_sequence_is_identical_for_workers_0_1_2_3() {
    let data = common::open("synthetic:images=230,channels=3,size=6x6,seed=1");
    let reference = collect(&data, 0, Some(7), 32, false);
    assert_eq!(
        reference.len(),
        3 * 8,
        "230/32 rounds up to 8 batches per epoch"
    );
    assert_eq!(
        reference[7].2.len(),
        230 - 7 * 32,
        "the last partial batch is kept"
    );
    for workers in [1, 2, 3] {
        assert_eq!(
            collect(&data, workers, Some(7), 32, false),
            reference,
            "workers={workers}"
        );
    }
    assert_eq!(
        collect(&data, Workers::Auto, Some(7), 32, false),
        reference,
        "workers=auto"
    );
}

/// `auto` changes its count while it runs; the batches do not change with it.
#[test]
fn auto_workers_change_count_mid_run_and_give_the_same_batches() {
    // 50 µs of work per image, 16 per batch: the consumer, which only collects, waits for
    // data, so the controller adds workers up to its 3-thread limit.
    let data = common::open("synthetic:images=1600,size=6x6,seed=4,work=50");
    let run = |workers: Workers| {
        let mut loader = common::loader(&data.train, workers, Some(9), 16, false, 3)
            .build()
            .unwrap();
        let seen: Seen = loader.by_ref().map(common::seen_batch).collect();
        (seen, loader.workers(), loader.tuning())
    };
    let (fixed, _, none) = run(Workers::Fixed(1));
    assert!(none.is_none(), "a fixed count is not tuned");
    let (auto, active, tuning) = run(Workers::Auto);
    assert_eq!(auto, fixed, "the same batches, in the same order");
    let tuning = tuning.expect("auto reports its tuning");
    // It added a worker at least once (and may have taken it back on a loaded machine).
    assert!(tuning.changes >= 1, "{tuning:?}");
    assert_eq!(tuning.active, active);
}

#[test]
fn another_seed_gives_another_sequence_and_epochs_differ() {
    let data = common::open("synthetic:images=100,size=5x5,seed=1");
    let a = collect(&data, 2, Some(7), 25, false);
    let b = collect(&data, 2, Some(8), 25, false);
    assert_ne!(a, b);
    assert_ne!(
        a[0].2, a[4].2,
        "epoch 1 is shuffled differently from epoch 0"
    );
    // Same records in every epoch, whatever the order.
    let mut e0: Vec<i64> = a[..4].iter().flat_map(|s| s.2.clone()).collect();
    let mut e1: Vec<i64> = a[4..8].iter().flat_map(|s| s.2.clone()).collect();
    e0.sort();
    e1.sort();
    assert_eq!(e0, e1);
}

#[test]
fn no_shuffle_reads_file_order_and_drop_last_drops() {
    let data = common::open("synthetic:images=50,size=5x5,seed=1");
    let seen = collect(&data, 2, None, 16, true);
    assert_eq!(seen.len(), 3 * 3);
    let labels: Vec<i64> = seen[..3].iter().flat_map(|s| s.2.clone()).collect();
    assert_eq!(labels, data.train.as_raw().unwrap().labels[..48].to_vec());
}

#[test]
fn normalized_batches_have_zero_mean_unit_std_per_channel() {
    let data = common::open("synthetic:images=400,channels=3,size=8x8,seed=2");
    let plane = data.train.shape().plane();
    let seen = collect(&data, 2, Some(1), 64, false);
    // Epoch 0 covers every record exactly once.
    let epoch0: Vec<f32> = seen
        .iter()
        .filter(|s| s.0 == 0)
        .flat_map(|s| s.3.iter().map(|&b| f32::from_bits(b)))
        .collect();
    for c in 0..3 {
        let vals: Vec<f64> = epoch0
            .chunks_exact(3 * plane)
            .flat_map(|img| img[c * plane..(c + 1) * plane].iter().map(|&v| v as f64))
            .collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let std = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64).sqrt();
        assert!(mean.abs() < 1e-5, "channel {c} mean {mean}");
        assert!((std - 1.0).abs() < 1e-5, "channel {c} std {std}");
    }
}

#[test]
fn dropping_the_loader_early_stops_the_workers() {
    let data = common::open("synthetic:images=2000,size=8x8,seed=2");
    for workers in [Workers::Fixed(3), Workers::Auto] {
        let mut loader = Loader::builder(data.train.clone())
            .batch_size(10)
            .shuffle(1)
            .epochs(100)
            .workers(workers)
            .prefetch(1)
            .auto_cores(3)
            .build()
            .unwrap();
        assert!(loader.next().unwrap().is_ok());
        // Must return: fixed workers are blocked on full queues until the queues go away, auto
        // workers are parked on a full window until the tickets are cancelled.
        drop(loader);
    }
}

#[test]
fn augmented_raw_batches_are_identical_for_workers_0_1_2_3() {
    let data = Dataset::open(
        "synthetic:images=130,channels=3,size=8x8,seed=2",
        &flowload_core::DatasetOptions {
            train_transforms: common::transforms(
                &["random_crop:8,padding=2,mode=reflect", "hflip"],
                7,
            ),
            ..Default::default()
        },
    )
    .unwrap();
    let reference = collect(&data, 0, Some(7), 32, false);
    for workers in [1, 2, 3] {
        assert!(
            collect(&data, workers, Some(7), 32, false) == reference,
            "workers={workers}"
        );
    }
    // The crops differ from the images as stored, and from epoch to epoch.
    let plain = common::open("synthetic:images=130,channels=3,size=8x8,seed=2");
    assert_eq!(reference[0].2, collect(&plain, 0, Some(7), 32, false)[0].2);
    let file_order = collect(&data, 1, None, 130, false);
    assert_ne!(file_order[0].3, file_order[1].3);
}
