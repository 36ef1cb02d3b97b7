//! Shared helpers for the integration tests: synthetic data, IDX fixtures, and a command builder.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use flowload::source::idx;
use flowload::source::{Dataset, SourceSpec};

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

/// Runs the `flowload` binary with `args`.
pub fn flowload(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowload"))
        .args(args)
        .output()
        .expect("flowload runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
