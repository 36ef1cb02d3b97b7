//! Shared helpers for the application's integration tests: the loader tests' helpers
//! (flowload-core's `tests/it/common.rs`, included here so that both crates share one copy),
//! and a command builder for the `flowload` binary.
#![allow(dead_code)]

use std::process::{Command, Output};

#[path = "../../crates/core/tests/it/common.rs"]
mod shared;
pub use shared::*;

/// Runs the `flowload` binary with `args`, with a statistics cache of its own that is gone
/// afterwards (so that no test sees another's, nor the user's); tests of the cache give
/// `--stats-cache DIR`.
pub fn flowload(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_flowload"))
        .args(args)
        .env(flowload_core::CACHE_ENV, cache.path())
        .output()
        .expect("flowload runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
