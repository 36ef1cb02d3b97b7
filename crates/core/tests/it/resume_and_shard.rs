//! A run started mid-way (`start_at`) gives the whole run's batches from there, and the
//! ranks' slices of a batch (`shard`), in rank order, are that batch, at every worker count,
//! augmentation included; settings that cannot work are refused.

use flowload_core::{Error, Position, Workers};

use crate::common::{self, Seen};

fn augmented() -> flowload_core::Dataset {
    common::with_transforms(
        "synthetic:images=90,channels=3,size=8x8,seed=2",
        &["random_crop:8,padding=2", "hflip"],
        &[],
    )
}

fn run(
    data: &flowload_core::Dataset,
    workers: Workers,
    start: (u32, usize),
    shard: (usize, usize),
) -> Seen {
    common::loader(&data.train, workers, Some(4), 12, true, 3)
        .start_at(Position {
            epoch: start.0,
            batch: start.1,
        })
        .shard(shard.0, shard.1)
        .build()
        .unwrap()
        .map(common::seen_batch)
        .collect()
}

const COUNTS: [Workers; 5] = [
    Workers::Fixed(2),
    Workers::Fixed(0),
    Workers::Fixed(1),
    Workers::Fixed(3),
    Workers::Auto,
];

#[test]
fn a_run_started_mid_way_gives_the_rest_of_the_whole_run() {
    let data = augmented();
    let whole = run(&data, Workers::Fixed(0), (0, 0), (0, 1));
    assert_eq!(whole.len(), 3 * 7, "90 / 12 is 7 whole batches per epoch");
    for workers in COUNTS {
        for (epoch, index) in [(0, 3), (1, 0), (1, 5), (2, 6)] {
            let rest = run(&data, workers, (epoch, index), (0, 1));
            let from = epoch as usize * 7 + index;
            assert_eq!(
                rest,
                whole[from..],
                "workers {workers} from {epoch}/{index}"
            );
        }
    }
}

#[test]
fn the_ranks_slices_in_rank_order_are_the_single_process_batch() {
    let data = augmented();
    let whole = run(&data, Workers::Fixed(0), (0, 0), (0, 1));
    for world in [2, 3, 5] {
        let ranks: Vec<Seen> = (0..world)
            .map(|rank| run(&data, COUNTS[rank % COUNTS.len()], (0, 0), (rank, world)))
            .collect();
        for (i, batch) in whole.iter().enumerate() {
            let (mut labels, mut images) = (vec![], vec![]);
            for rank in &ranks {
                assert_eq!((rank[i].0, rank[i].1), (batch.0, batch.1));
                labels.extend_from_slice(&rank[i].2);
                images.extend_from_slice(&rank[i].3);
            }
            assert_eq!(labels, batch.2, "world {world} batch {i}: labels");
            assert!(images == batch.3, "world {world} batch {i}: pixels differ");
        }
    }
    // Resuming a rank mid-run is the same slices from there.
    let rank1 = run(&data, Workers::Fixed(2), (0, 0), (1, 2));
    assert_eq!(run(&data, Workers::Auto, (1, 2), (1, 2)), rank1[9..]);
}

#[test]
fn impossible_starts_and_shards_are_refused_with_the_setting() {
    let data = augmented();
    let build = |start: (u32, usize), shard: (usize, usize), batch: usize, drop_last: bool| {
        common::loader(&data.train, 0, Some(4), batch, drop_last, 3)
            .start_at(Position {
                epoch: start.0,
                batch: start.1,
            })
            .shard(shard.0, shard.1)
            .build()
            .err()
            .map(|e| e.to_string())
    };
    assert_eq!(build((2, 6), (0, 1), 12, true), None);
    let outside = build((3, 0), (0, 1), 12, true).expect("epoch 3 of 3 is refused");
    assert!(
        outside.contains("epoch 3 batch 0 is outside the run"),
        "{outside}"
    );
    let outside = build((0, 7), (0, 1), 12, true).expect("batch 7 of 7 is refused");
    assert!(outside.contains("3 epoch(s) of 7 batches"), "{outside}");
    let rank = build((0, 0), (2, 2), 12, true).expect("rank 2 of 2 is refused");
    assert!(rank.contains("rank 2 of world size 2"), "{rank}");
    assert!(build((0, 0), (0, 0), 12, true).is_some(), "world size 0");
    // 90 records in batches of 4 keep a last batch of 2: 3 ranks cannot share it.
    let last = build((0, 0), (0, 3), 4, false).expect("a last batch of 2 for 3 ranks");
    assert!(
        last.contains("a batch of 2 records cannot be split across 3 ranks"),
        "{last}"
    );
    assert_eq!(
        build((0, 0), (0, 3), 4, true),
        None,
        "drop_last leaves batches of 4"
    );
    assert!(matches!(
        common::loader(&data.train, 0, None, 2, true, 1)
            .shard(0, 3)
            .build()
            .err(),
        Some(Error::Config(_))
    ));
}

/// Raw pixels are the bytes that the f32 values are `x/255` of, batch for batch.
#[test]
fn raw_pixels_are_what_the_values_were_made_from() {
    let data = augmented();
    let raw: Vec<(Vec<u8>, Vec<i64>)> = common::loader(&data.train, 2, Some(4), 12, true, 2)
        .raw_pixels(true)
        .build()
        .unwrap()
        .map(|b| {
            let b = b.unwrap();
            let b = std::panic::AssertUnwindSafe(b);
            assert!(std::panic::catch_unwind(|| b.images().len()).is_err());
            (
                b.pixels().expect("a raw batch").to_vec(),
                b.labels().to_vec(),
            )
        })
        .collect();
    let values: Vec<(Vec<f32>, Vec<i64>)> = common::loader(&data.train, 0, Some(4), 12, true, 2)
        .build()
        .unwrap()
        .map(|b| {
            let b = b.unwrap();
            assert!(b.pixels().is_none());
            (b.images().to_vec(), b.labels().to_vec())
        })
        .collect();
    assert_eq!(raw.len(), values.len());
    for ((pixels, l1), (floats, l2)) in raw.iter().zip(&values) {
        assert_eq!(l1, l2);
        let scaled: Vec<f32> = pixels.iter().map(|&p| p as f32 / 255.0).collect();
        assert!(&scaled == floats);
    }
    let stats = flowload_core::Stats::pass(&data.train).run().unwrap().stats;
    let refused = common::loader(&data.train, 0, None, 12, true, 1)
        .raw_pixels(true)
        .normalize(&stats)
        .build()
        .err()
        .expect("raw pixels are not normalized");
    assert!(refused.to_string().contains("not normalized"), "{refused}");
}

/// A stopped loader gives up the batch it is building at the next record: a batch here is
/// 20,000 images of 20 ms of work each (400 s per worker), so the test ends only if the
/// workers abandon it, at every worker count, and dropping the loader joins their threads.
#[test]
fn a_stopper_abandons_batches_mid_way() {
    let data = common::open("synthetic:images=20000,size=4x4,seed=1,work=20000");
    for workers in COUNTS {
        let builder = common::loader(&data.train, workers, None, 20000, false, 1);
        let stopper = builder.stopper();
        let mut loader = builder.build().unwrap();
        let stopping = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            stopper.stop();
        });
        let error = loader.next().expect("an item").expect_err("abandoned");
        assert!(
            error.to_string().contains("stopped"),
            "workers {workers}: {error}"
        );
        drop(loader);
        stopping.join().unwrap();
    }
}
