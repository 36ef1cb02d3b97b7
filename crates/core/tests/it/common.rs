//! Helpers for the integration tests: synthetic data, IDX fixtures, loaders that record every
//! batch, free ports, and the photo workload. The application's tests include this file too
//! (`tests/it/common.rs`), so that both crates' tests share one copy.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use flowload_core::testing::encode_idx;
use flowload_core::{Dataset, DatasetOptions, Loader, Records, Stats, Transforms, Workers};

/// The data set `spec` names, with no transforms.
pub fn open(spec: &str) -> Dataset {
    Dataset::open(spec, &DatasetOptions::default()).unwrap()
}

/// The data set `spec` names, with these training and test transforms (seed 5).
pub fn with_transforms(spec: &str, train: &[&str], test: &[&str]) -> Dataset {
    let t = |specs: &[&str]| transforms(specs, 5);
    Dataset::open(
        spec,
        &DatasetOptions {
            train_transforms: t(train),
            test_transforms: t(test),
            ..Default::default()
        },
    )
    .unwrap()
}

/// `specs` parsed, with `seed`.
pub fn transforms(specs: &[&str], seed: u64) -> Transforms {
    Transforms::new(
        &specs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        seed,
    )
    .unwrap()
}

/// Writes the data set's train (and test) split as raw IDX files into `dir`.
pub fn write_idx(dir: &Path, data: &Dataset) {
    let (images, labels) = encode_idx(data.train.as_raw().expect("raw records"));
    std::fs::write(dir.join("train-images-idx3-ubyte"), images).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels).unwrap();
    if let Some(test) = &data.test {
        let (images, labels) = encode_idx(test.as_raw().expect("raw records"));
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), images).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels).unwrap();
    }
}

/// Every batch of a run as (epoch, index, labels, image bits).
pub type Seen = Vec<(u32, usize, Vec<i64>, Vec<u32>)>;

/// A loader over all of `records`, prefetch 2, failing on bad records; `auto` may use 3
/// threads, whatever the machine has.
pub fn loader(
    records: &Records,
    workers: impl Into<Workers>,
    shuffle: Option<u64>,
    batch_size: usize,
    drop_last: bool,
    epochs: u32,
) -> flowload_core::LoaderBuilder {
    Loader::builder(records.clone())
        .batch_size(batch_size)
        .shuffle(shuffle)
        .drop_last(drop_last)
        .epochs(epochs)
        .workers(workers)
        .auto_cores(3)
}

/// Streams `records` through a normalizing loader and records every batch.
pub fn seen(
    records: &Records,
    workers: impl Into<Workers>,
    shuffle: Option<u64>,
    batch_size: usize,
    drop_last: bool,
    epochs: u32,
) -> Seen {
    let stats = Stats::pass(records).workers(1).run().unwrap().stats;
    loader(records, workers, shuffle, batch_size, drop_last, epochs)
        .normalize(&stats)
        .build()
        .unwrap()
        .map(seen_batch)
        .collect()
}

/// One loader item as [`Seen`] records it (panicking on an error).
pub fn seen_batch(
    b: flowload_core::Result<flowload_core::Batch>,
) -> (u32, usize, Vec<i64>, Vec<u32>) {
    let b = b.unwrap();
    (
        b.epoch,
        b.index,
        b.labels().to_vec(),
        b.images().iter().map(|v| v.to_bits()).collect(),
    )
}

/// A whole Parquet file as one record batch.
pub fn read_parquet(path: &Path) -> arrow::record_batch::RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let batches: Vec<_> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// `n` ports that are free on 127.0.0.1 now (held together while they are found, so they differ).
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// Every temporary file under `dir` (hidden, ending in `.tmp`: left behind by a writer), as
/// paths relative to `dir`.
pub fn hidden_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if e.file_name().to_string_lossy().starts_with('.')
                && e.file_name().to_string_lossy().ends_with(".tmp")
            {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found
}

/// The training JPEGs of a photo workload under `dir`, in file order.
pub fn jpegs(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = glob::glob(&format!("{}/train/*/*.jpg", dir.display()))
        .unwrap()
        .map(|p| p.unwrap())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// The repository's root (where `scripts/` is), from either crate's tests.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|p| p.join("scripts").join("make_photos.py").exists())
        .expect("the repository's scripts/ above the crate")
        .to_path_buf()
}

/// The venv that scripts/env.sh sets up; its python has duckdb, pyarrow and scikit-image.
pub fn python() -> String {
    std::env::var("FLOWLOAD_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap();
        format!("{home}/.cache/flowload/torch-2.11.0/bin/python")
    })
}

/// A small photo workload under `dir` (`train/` and `test/`, 8 classes of real photographs),
/// made by scripts/make_photos.py; `cifar` makes 32x32 PNGs instead of photo-sized JPEGs.
pub fn photos(dir: &Path, train: usize, test: usize, cifar: bool) {
    let script = repo_root().join("scripts").join("make_photos.py");
    let (train, test) = (train.to_string(), test.to_string());
    let mut args = vec![
        script.to_str().unwrap(),
        dir.to_str().unwrap(),
        "--train",
        &train,
        "--test",
        &test,
    ];
    if cifar {
        args.push("--cifar");
    }
    let o = Command::new(python())
        .args(&args)
        .output()
        .expect("the venv python from scripts/env.sh (set FLOWLOAD_PYTHON to use another)");
    assert!(
        o.status.success(),
        "make_photos.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
