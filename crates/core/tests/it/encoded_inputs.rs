//! Encoded inputs: Parquet shards and image folders made from synthetic images give the same
//! batches and statistics as the synthetic source, in the loader's order, and a bad record is
//! a typed error naming its shard and row. (The binary's side — `convert`, skips, messages —
//! is in the application's tests.)

use flowload_core::testing::{blocks, format_of_spec};
use flowload_core::{Dataset, DatasetOptions, Error, Loader, Records, Shape, Split, Stats};

use crate::common;
use crate::fixtures::{corrupt, png, write_folder, write_shards};

fn stats(records: &Records, workers: usize) -> Stats {
    Stats::pass(records).workers(workers).run().unwrap().stats
}

fn batches(records: &Records, workers: usize, shuffle: Option<u64>) -> common::Seen {
    common::seen(records, workers, shuffle, 32, false, 2)
}

const RGB: &str = "synthetic:images=150,channels=3,size=8x8,classes=4,seed=21,test=0";

#[test]
fn parquet_shards_give_the_synthetic_batches_and_stats() {
    let data = common::open(RGB);
    let raw = data.train.as_raw().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_shards(dir.path(), "train", raw, 64, 20);
    let spec = dir.path().to_str().unwrap();
    assert_eq!(format_of_spec(spec).unwrap(), "Parquet shards");
    let pq = common::open(spec).train;
    assert_eq!((pq.len(), pq.shape(), pq.classes()), (150, raw.shape, 4));
    assert_eq!(
        blocks(&pq),
        vec![20, 20, 20, 4, 20, 20, 20, 4, 20, 2],
        "row groups of 20 in shards of 64, 64 and 22"
    );
    // Statistics (3 channels) equal the synthetic ones, which stats_oracle.rs checks
    // against a two-pass recomputation.
    for w in [0, 2, 3] {
        assert_eq!(stats(&pq, w), stats(&data.train, 1), "workers={w}");
    }
    // File order: the same batches, bit for bit.
    assert_eq!(batches(&pq, 2, None), batches(&data.train, 0, None));
    // Shuffled: the same sequence at every worker count.
    let reference = batches(&pq, 0, Some(3));
    for w in [1, 2, 3] {
        assert_eq!(batches(&pq, w, Some(3)), reference, "workers={w}");
    }
    assert_ne!(reference, batches(&pq, 0, Some(4)));
}

#[test]
fn an_image_folder_gives_the_synthetic_batches_in_class_order() {
    let data = common::open(RGB);
    let raw = data.train.as_raw().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path(), raw);
    let spec = dir.path().to_str().unwrap();
    assert_eq!(format_of_spec(spec).unwrap(), "an image folder");
    let folder = common::open(spec).train;
    assert_eq!(stats(&folder, 2), stats(&data.train, 1));
    // ImageFolder order is (class, file name): the synthetic records sorted the same way.
    let mut order: Vec<usize> = (0..raw.len()).collect();
    order.sort_by_key(|&i| (raw.labels[i], i));
    let sorted = Split {
        origin: "sorted".into(),
        shape: raw.shape,
        pixels: order.iter().flat_map(|&i| raw.image(i).to_vec()).collect(),
        labels: order.iter().map(|&i| raw.labels[i]).collect(),
        classes: 4,
        work: 0,
    };
    assert_eq!(batches(&folder, 2, None), batches(&sorted.into(), 0, None));
    assert_eq!(batches(&folder, 3, Some(5)), batches(&folder, 0, Some(5)));
}

#[test]
fn a_bad_record_is_a_typed_error_naming_its_shard_and_row() {
    let c = corrupt();
    let opts = DatasetOptions {
        classes: Some(2),
        ..Default::default()
    };
    let data = Dataset::open(c.parquet.to_str().unwrap(), &opts).unwrap();
    let e = Stats::pass(&data.train).workers(1).run().unwrap_err();
    let Error::BadRecord(bad) = e else {
        panic!("expected a bad record, got {e:?}")
    };
    assert!(
        bad.record.file.ends_with("train-00000-of-00001.parquet"),
        "{bad:?}"
    );
    assert_eq!(bad.record.row, 1);
    assert_eq!(bad.reason, "not a PNG or JPEG image");
}

#[test]
fn an_image_folder_follows_torchvision_nested_files_count_and_an_empty_class_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("f");
    let shape = Shape {
        channels: 1,
        height: 2,
        width: 2,
    };
    for (file, v) in [
        ("a/1.png", 1u8),
        ("a/sub/0.png", 2),
        ("a/0.png", 3),
        ("b/x.png", 4),
    ] {
        let p = root.join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, png(&[v; 4], shape)).unwrap();
    }
    let data = common::open(root.to_str().unwrap());
    // torchvision: sorted(os.walk(...)) then sorted files: a/0, a/1, a/sub/0, b/x.
    let b = Loader::builder(data.train.clone())
        .batch_size(4)
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    // Unnormalized, a value is x/255: the first pixel of each image, back in 0..255.
    let firsts: Vec<u8> = b
        .images()
        .chunks(4)
        .map(|px| (px[0] * 255.0).round() as u8)
        .collect();
    assert_eq!(data.train.len(), 4);
    assert_eq!(b.labels(), [0, 0, 0, 1]);
    assert_eq!(firsts, vec![3, 1, 2, 4]);
    std::fs::create_dir_all(root.join("c")).unwrap();
    let e = Dataset::open(root.to_str().unwrap(), &DatasetOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("found no image") && e.contains(" c"), "{e}");
}
