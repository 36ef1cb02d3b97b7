//! Encoded fixtures for the integration tests of both crates (the application's include this
//! file): PNG and JPEG bytes made with the `image` crate, Hugging Face–layout Parquet shards
//! made with the `parquet` crate, image folders, and a shard and folder with every kind of bad
//! record.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray, StructArray};
use arrow::datatypes::{DataType, Field, Fields, Schema};
use image::ImageEncoder;

use flowload_core::{Shape, Split};

/// `[C,H,W]` → PNG with the `image` crate (gray or RGB).
pub fn png(pixels: &[u8], shape: Shape) -> Vec<u8> {
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

pub fn jpeg_gray(h: u32, w: u32) -> Vec<u8> {
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
pub fn write_shard(path: &Path, images: Vec<Option<Vec<u8>>>, labels: Vec<i64>, row_group: usize) {
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
pub fn write_shards(dir: &Path, name: &str, split: &Split, per_shard: usize, row_group: usize) {
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
pub fn write_folder(root: &Path, split: &Split) {
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

/// A shard with every corrupt Parquet case, and a folder with an unreadable file.
pub struct Corrupt {
    _dir: tempfile::TempDir,
    pub parquet: PathBuf,
    pub folder: PathBuf,
}

pub fn corrupt() -> Corrupt {
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

/// Ten 2x2 gray PNGs with the given labels, as one shard without class metadata.
pub fn shard_with_labels(dir: &Path, labels: Vec<i64>) -> PathBuf {
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

/// Shards of `images` synthetic 3x12x10 images each (seeds `named`), as `<name>.parquet` in
/// `dir`, written by the library's `convert`.
pub fn synthetic_shards(dir: &Path, named: &[(&str, u64)], images: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, seed) in named {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let spec = format!("synthetic:images={images},channels=3,size=12x10,classes=4,seed={seed}");
        flowload_core::Dataset::open(&spec, &Default::default())
            .unwrap()
            .convert(&out, &Default::default())
            .unwrap();
        std::fs::rename(
            out.join("train-00000-of-00001.parquet"),
            dir.join(format!("{name}.parquet")),
        )
        .unwrap();
    }
}

/// Rewrites every cache file under `dir` with `edit` applied to its JSON, resealed with a
/// valid checksum: a forged entry, not a corrupt one.
pub fn forge(dir: &Path, edit: impl Fn(&mut serde_json::Value)) -> usize {
    let mut n = 0;
    for kind in ["parts", "sets"] {
        let Ok(entries) = std::fs::read_dir(dir.join("v1").join(kind)) else {
            continue;
        };
        for e in entries.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap();
            let json = text.lines().next().unwrap();
            let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
            edit(&mut v);
            let json = serde_json::to_string(&v).unwrap();
            let sealed = format!("{json}\n{:08x}\n", crc32fast::hash(json.as_bytes()));
            std::fs::write(e.path(), sealed).unwrap();
            n += 1;
        }
    }
    n
}

/// Applies `edit` to every channel's sums of a part or set file's JSON.
pub fn each_channel(v: &mut serde_json::Value, edit: &impl Fn(&mut serde_json::Value)) {
    let sums: Vec<&mut serde_json::Value> = match v.get_mut("sums") {
        Some(sums) => vec![sums],
        None => v["parts"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .map(|p| &mut p[1])
            .collect(),
    };
    for s in sums {
        s["channels"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .for_each(edit);
    }
}
