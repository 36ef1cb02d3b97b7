//! Shared helpers for the integration tests: synthetic data, IDX fixtures, and a command builder.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use flowload::config::Workers;
use flowload::loader::{self, Limits, LoaderConfig, compute_stats};
use flowload::ops::decode::OnBadRecord;
use flowload::ops::normalize::Normalizer;
use flowload::ops::plan::EpochOrder;
use flowload::source::idx;
use flowload::source::{Dataset, Records, SourceSpec};

pub fn synthetic(spec: &str) -> Dataset {
    SourceSpec::parse(spec).unwrap().open().unwrap()
}

/// Writes the data set's train (and test) split as raw IDX files into `dir`.
pub fn write_idx(dir: &Path, data: &Dataset) {
    let (images, labels) = idx::encode(data.train.as_raw().expect("raw records"));
    std::fs::write(dir.join("train-images-idx3-ubyte"), images).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels).unwrap();
    if let Some(test) = &data.test {
        let (images, labels) = idx::encode(test.as_raw().expect("raw records"));
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), images).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels).unwrap();
    }
}

/// Runs the `flowload` binary with `args`, with a statistics cache of its own that is gone
/// afterwards (so that no test sees another's, nor the user's); tests of the cache give
/// `--stats-cache DIR`.
pub fn flowload(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_flowload"))
        .args(args)
        .env(flowload::stats_store::CACHE_ENV, cache.path())
        .output()
        .expect("flowload runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every batch of a run as (epoch, index, labels, image bits).
pub type Seen = Vec<(u32, usize, Vec<i64>, Vec<u32>)>;

/// Streams `records` through a normalizing loader and records every batch.
pub fn seen(
    records: &Records,
    workers: impl Into<Workers>,
    shuffle: Option<u64>,
    batch_size: usize,
    drop_last: bool,
    epochs: u32,
) -> Seen {
    let stats = compute_stats(records, 1, OnBadRecord::Fail).unwrap().0;
    loader::new(
        records.clone(),
        Normalizer::new(Some(&stats), records.shape().channels),
        loader_config(records, workers, shuffle, batch_size, drop_last, epochs),
    )
    .unwrap()
    .map(seen_batch)
    .collect()
}

/// A loader over all of `records`, prefetch 2, failing on bad records.
pub fn loader_config(
    records: &Records,
    workers: impl Into<Workers>,
    shuffle: Option<u64>,
    batch_size: usize,
    drop_last: bool,
    epochs: u32,
) -> LoaderConfig {
    LoaderConfig {
        order: EpochOrder {
            records: records.len(),
            batch_size,
            drop_last,
            shuffle,
            blocks: records.blocks(),
            window: records.window(),
        },
        epochs,
        workers: workers.into(),
        // What `--workers auto` may use here: 3 threads, whatever the machine has.
        limits: Limits {
            cores: 3,
            memory: 64,
        },
        prefetch: 2,
        on_bad_record: OnBadRecord::Fail,
        wire: Default::default(),
    }
}

/// One loader item as [`Seen`] records it (panicking on an error).
pub fn seen_batch(
    b: flowload::Result<flowload::ops::batch::Batch>,
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
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/make_photos.py");
    let (train, test) = (train.to_string(), test.to_string());
    let mut args = vec![
        script,
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
    assert!(o.status.success(), "make_photos.py: {}", stderr(&o));
}
