//! Encoded inputs: Parquet shards and image folders made from synthetic images (encoded here,
//! with the `image` and `parquet` crates) give the same batches and statistics as the
//! synthetic source; `convert` round-trips; every corrupt-record case fails or is skipped.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray, StructArray};
use arrow::datatypes::{DataType, Field, Fields, Schema};
use image::ImageEncoder;

use flowload::loader::compute_stats;
use flowload::ops::decode::OnBadRecord;
use flowload::source::{Records, Shape, SourceSpec, Split};

/// `[C,H,W]` → PNG with the `image` crate (gray or RGB).
fn png(pixels: &[u8], shape: Shape) -> Vec<u8> {
    let plane = shape.plane();
    let (data, color) = if shape.channels == 1 {
        (pixels.to_vec(), image::ExtendedColorType::L8)
    } else {
        (
            (0..plane)
                .flat_map(|i| [pixels[i], pixels[plane + i], pixels[2 * plane + i]])
                .collect(),
            image::ExtendedColorType::Rgb8,
        )
    };
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&data, shape.width as u32, shape.height as u32, color)
        .unwrap();
    out
}

fn jpeg_gray(h: u32, w: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut out)
        .write_image(
            &vec![128u8; (h * w) as usize],
            w,
            h,
            image::ExtendedColorType::L8,
        )
        .unwrap();
    out
}

/// Writes one HF-layout shard: `image: {bytes, path}` and `label`, `row_group` rows per group.
fn write_shard(path: &Path, images: Vec<Option<Vec<u8>>>, labels: Vec<i64>, row_group: usize) {
    let fields = Fields::from(vec![
        Field::new("bytes", DataType::Binary, true),
        Field::new("path", DataType::Utf8, true),
    ]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("image", DataType::Struct(fields.clone()), true),
        Field::new("label", DataType::Int64, true),
    ]));
    let nulls =
        arrow::buffer::NullBuffer::from(images.iter().map(|i| i.is_some()).collect::<Vec<_>>());
    let bytes: BinaryArray = images.iter().map(|i| i.as_deref()).collect();
    let names: StringArray = (0..images.len())
        .map(|i| Some(format!("{i}.png")))
        .collect();
    let image = StructArray::new(
        fields,
        vec![Arc::new(bytes) as ArrayRef, Arc::new(names) as ArrayRef],
        Some(nulls),
    );
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(image), Arc::new(Int64Array::from(labels))],
    )
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        schema,
        Some(props),
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Shards of `split` under `dir/name-*.parquet`, `per_shard` rows each.
fn write_shards(dir: &Path, name: &str, split: &Split, per_shard: usize, row_group: usize) {
    let n = split.len();
    let shards = n.div_ceil(per_shard);
    for s in 0..shards {
        let rows = s * per_shard..((s + 1) * per_shard).min(n);
        let images = rows
            .clone()
            .map(|i| Some(png(split.image(i), split.shape)))
            .collect();
        let labels = split.labels[rows].to_vec();
        write_shard(
            &dir.join(format!("{name}-{s:05}-of-{shards:05}.parquet")),
            images,
            labels,
            row_group,
        );
    }
}

/// `root/<class>/<index>.png`, class names `c0`, `c1`, … (sorted as the labels are).
fn write_folder(root: &Path, split: &Split) {
    for i in 0..split.len() {
        let dir = root.join(format!("c{}", split.labels[i]));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{i:05}.png")),
            png(split.image(i), split.shape),
        )
        .unwrap();
    }
}

fn batches(records: &Records, workers: usize, shuffle: Option<u64>) -> common::Seen {
    common::seen(records, workers, shuffle, 32, false, 2)
}

const RGB: &str = "synthetic:images=150,channels=3,size=8x8,classes=4,seed=21,test=0";

#[test]
fn parquet_shards_give_the_synthetic_batches_and_stats() {
    let data = common::synthetic(RGB);
    let raw = data.train.as_raw().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_shards(dir.path(), "train", raw, 64, 20);
    let pq = SourceSpec::parse(dir.path().to_str().unwrap()).unwrap();
    assert!(matches!(pq, SourceSpec::Parquet(_)), "{pq:?}");
    let pq = pq.open().unwrap().train;
    assert_eq!((pq.len(), pq.shape(), pq.classes()), (150, raw.shape, 4));
    assert_eq!(
        pq.blocks(),
        vec![20, 20, 20, 4, 20, 20, 20, 4, 20, 2],
        "row groups of 20 in shards of 64, 64 and 22"
    );
    // Statistics (3 channels) equal the synthetic ones, which tests/stats_oracle.rs checks
    // against a two-pass recomputation.
    for w in [0, 2, 3] {
        assert_eq!(
            compute_stats(&pq, w, OnBadRecord::Fail).unwrap().0,
            compute_stats(&data.train, 1, OnBadRecord::Fail).unwrap().0,
            "workers={w}"
        );
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
    let data = common::synthetic(RGB);
    let raw = data.train.as_raw().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path(), raw);
    let spec = SourceSpec::parse(dir.path().to_str().unwrap()).unwrap();
    assert!(matches!(spec, SourceSpec::Folder(_)), "{spec:?}");
    let folder = spec.open().unwrap().train;
    assert_eq!(
        compute_stats(&folder, 2, OnBadRecord::Fail).unwrap().0,
        compute_stats(&data.train, 1, OnBadRecord::Fail).unwrap().0
    );
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
fn convert_round_trips_fashion_mnist_shaped_data() {
    let data =
        common::synthetic("synthetic:images=130,channels=1,size=28x28,classes=10,seed=2,test=30");
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
    let back = SourceSpec::parse(out.path().to_str().unwrap())
        .unwrap()
        .open()
        .unwrap();
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

/// A shard with every corrupt Parquet case, and a folder with an unreadable file.
struct Corrupt {
    _dir: tempfile::TempDir,
    parquet: PathBuf,
    folder: PathBuf,
}

fn corrupt() -> Corrupt {
    let dir = tempfile::tempdir().unwrap();
    let shape = Shape {
        channels: 3,
        height: 4,
        width: 4,
    };
    let good = |v: u8| {
        Some(png(
            &(0..48).map(|i| v.wrapping_add(i)).collect::<Vec<_>>(),
            shape,
        ))
    };
    let truncated = good(7).map(|b| b[..b.len() / 2].to_vec());
    let parquet = dir.path().join("pq");
    std::fs::create_dir_all(&parquet).unwrap();
    write_shard(
        &parquet.join("train-00000-of-00001.parquet"),
        vec![
            good(1),
            Some(b"definitely not an image".to_vec()),
            good(2),
            truncated,
            Some(jpeg_gray(4, 4)),
            good(3),
            good(4),
            None,
            good(5),
        ],
        vec![0, 1, 1, 0, 1, 7, 0, 1, 1],
        4,
    );
    let folder = dir.path().join("folder");
    for (class, name, bytes) in [
        ("a", "0.png", good(1)),
        ("a", "1.png", good(9)),
        ("b", "2.png", good(4)),
    ] {
        std::fs::create_dir_all(folder.join(class)).unwrap();
        std::fs::write(folder.join(class).join(name), bytes.unwrap()).unwrap();
    }
    // Unreadable even for root: a link to nowhere.
    std::os::unix::fs::symlink("/nonexistent/flowload.png", folder.join("b").join("3.png"))
        .unwrap();
    Corrupt {
        _dir: dir,
        parquet,
        folder,
    }
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
fn a_bad_record_is_a_typed_error_naming_its_shard_and_row() {
    let c = corrupt();
    let opts = flowload::source::EncodedOptions {
        classes: Some(2),
        ..Default::default()
    };
    let data = SourceSpec::parse(c.parquet.to_str().unwrap())
        .unwrap()
        .open_with(&opts)
        .unwrap();
    let e = compute_stats(&data.train, 1, OnBadRecord::Fail).unwrap_err();
    let flowload::Error::BadRecord(bad) = e else {
        panic!("expected a bad record, got {e:?}")
    };
    assert!(
        bad.record.file.ends_with("train-00000-of-00001.parquet"),
        "{bad:?}"
    );
    assert_eq!(bad.record.row, 1);
    assert_eq!(bad.reason, "not a PNG or JPEG image");
}

/// Ten 2x2 gray PNGs with the given labels, as one shard without class metadata.
fn shard_with_labels(dir: &Path, labels: Vec<i64>) -> PathBuf {
    let shape = Shape {
        channels: 1,
        height: 2,
        width: 2,
    };
    let images = (0..labels.len())
        .map(|i| Some(png(&[i as u8; 4], shape)))
        .collect();
    let path = dir.join("train-00000-of-00001.parquet");
    write_shard(&path, images, labels, 4);
    path
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
    let data = SourceSpec::parse(d).unwrap().open().unwrap();
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
    let data = SourceSpec::parse(out.to_str().unwrap())
        .unwrap()
        .open()
        .unwrap();
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
    let data = SourceSpec::parse(root.to_str().unwrap())
        .unwrap()
        .open()
        .unwrap();
    // torchvision: sorted(os.walk(...)) then sorted files: a/0, a/1, a/sub/0, b/x.
    let mut reader =
        flowload::ops::decode::RecordReader::new(data.train.clone(), OnBadRecord::Fail);
    let plan = flowload::ops::plan::BatchPlan {
        epoch: 0,
        index: 0,
        rows: vec![0, 1, 2, 3],
    };
    let b = reader.decode(&plan).unwrap();
    let firsts: Vec<u8> = b.pixels.chunks(4).map(|px| px[0]).collect();
    assert_eq!(data.train.len(), 4);
    assert_eq!(b.labels, vec![0, 0, 0, 1]);
    assert_eq!(firsts, vec![3, 1, 2, 4]);
    std::fs::create_dir_all(root.join("c")).unwrap();
    let e = SourceSpec::parse(root.to_str().unwrap())
        .unwrap()
        .open()
        .unwrap_err()
        .to_string();
    assert!(e.contains("found no image") && e.contains(" c"), "{e}");
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
