//! A training run's checkpoint: everything the rest of the run depends on, in one file, so that
//! a run killed at any point goes on where it stopped and ends as if never killed.
//!
//! ```text
//! <out>/checkpoints/run-NNNN/state.pt      the newest checkpoint
//! <out>/checkpoints/run-NNNN/previous.pt   the one before: the fallback when state.pt is bad
//! ```
//!
//! The file is a libtorch archive of named tensors (`Tensor::save_multi`):
//! - `model/<name>`: the seed network's variables, or `module`: the TorchScript module's own
//!   archive as bytes (parameters and buffers, BatchNorm's running statistics among them);
//! - `optimizer/<name>`: the optimizer's state by parameter name ([`Optimizer::state`]);
//! - `tally/loss_sum`, `tally/correct`: the partial epoch's sums, as the trainer keeps them;
//! - `meta`: [`Meta`] as JSON bytes: the run's identity, its [`Position`], the partial epoch's
//!   tallies and timings, the finished epochs' rows, and a checksum of every other tensor.
//!
//! It is written to a temporary file and renamed; the previous one is kept as `previous.pt`
//! until the next is in place. No dropout state is needed: the trainer reseeds libtorch's
//! generator from (seed, epoch, batch) before each step.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::config::{RunParams, SEED_MODEL};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::results::EpochMetrics;
use flowload_core::{AtomicFile, BadRecord, Position, Shape};

/// The layout of [`Meta`] and the tensors' names; another version is not read.
const VERSION: u32 = 1;

/// The checkpoint directory of run `run` under the results directory `dir`.
pub fn checkpoint_dir(dir: &Path, run: u32) -> PathBuf {
    dir.join("checkpoints").join(format!("run-{run:04}"))
}

/// What a run (a checkpoint, a run file) was made from, as `--resume` compares it: the run's
/// grid point, the sweep's effective config, and the data's and the model's content keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub params: RunParams,
    pub config_json: String,
    pub data: u128,
    /// `None` for the seed's network.
    pub model: Option<u128>,
}

/// The part of an epoch trained before the checkpoint: its tallies and timings go on from here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    pub images: u64,
    /// Training time so far: data wait + compute + checkpoints (the time the run was down is not
    /// counted).
    pub epoch_seconds: f64,
    pub data_wait_seconds: f64,
    pub compute_seconds: f64,
    pub checkpoint_seconds: f64,
    pub skipped_records: u64,
    pub bytes_received: u64,
}

/// A checkpoint's description, stored as JSON inside it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    pub version: u32,
    pub identity: Identity,
    /// The next batch to train.
    pub position: Position,
    pub partial: Partial,
    /// The run's wall time when the checkpoint was made, statistics and evaluation included.
    pub run_seconds: f64,
    /// The rows of the finished epochs.
    pub rows: Vec<EpochMetrics>,
    /// Records skipped so far in epoch 0 (`skipped.parquet` lists them).
    pub skipped: Vec<BadRecord>,
    /// crc32 of every other tensor's name, kind, shape and bytes, in name order.
    pub checksum: u32,
}

/// A checkpoint read back.
pub struct Checkpoint {
    pub meta: Meta,
    pub path: PathBuf,
    tensors: HashMap<String, Tensor>,
}

impl Checkpoint {
    /// The tensors under `prefix/`, by the rest of their names.
    pub fn group(&self, prefix: &str) -> HashMap<String, Tensor> {
        let prefix = format!("{prefix}/");
        self.tensors
            .iter()
            .filter_map(|(k, t)| Some((k.strip_prefix(&prefix)?.to_string(), t.shallow_clone())))
            .collect()
    }

    /// The model `spec` as this checkpoint kept it, its parameters in `vs`: the TorchScript
    /// module from its archive's bytes, or the seed network made afresh and its variables
    /// copied in.
    pub fn model(
        &self,
        spec: &str,
        vs: &tch::nn::VarStore,
        shape: Shape,
        classes: usize,
    ) -> Result<Model> {
        let bad = |why: String| Error::config(format!("{}: {why}", self.path.display()));
        if spec != SEED_MODEL {
            let bytes = self
                .tensors
                .get("module")
                .ok_or_else(|| bad("no TorchScript module".into()))?;
            return Model::script_from_bytes(spec, Vec::<u8>::try_from(bytes)?, vs);
        }
        let net = Model::new(spec, &vs.root(), shape, classes)?;
        let saved = self.group("model");
        let _guard = tch::no_grad_guard();
        for (name, mut var) in vs.variables() {
            let t = saved
                .get(&name)
                .ok_or_else(|| bad(format!("no model/{name}")))?;
            if t.size() != var.size() {
                return Err(bad(format!(
                    "model/{name} is {:?}, the network's {:?}",
                    t.size(),
                    var.size()
                )));
            }
            var.copy_(t);
        }
        Ok(net)
    }
}

/// Writes `meta` and `tensors` as the run's newest checkpoint in `dir`; returns the file's size.
/// The checksum is computed here.
pub fn write(dir: &Path, mut meta: Meta, tensors: Vec<(String, Tensor)>) -> Result<u64> {
    let mut tensors: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(n, t)| (n, t.detach().to_device(Device::Cpu)))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    meta.version = VERSION;
    meta.checksum = checksum(&tensors)?;
    let json = serde_json::to_vec(&meta).expect("checkpoint meta serializes");
    tensors.push(("meta".into(), Tensor::from_slice(&json)));
    let state = dir.join("state.pt");
    let (file, atomic) = AtomicFile::create(&state)?;
    Tensor::save_multi(&tensors, atomic.tmp_path())?;
    let bytes = std::fs::metadata(atomic.tmp_path())
        .map_err(|e| Error::io(atomic.tmp_path(), e))?
        .len();
    // The newest good one stays until the next is whole: a kill between the two renames leaves
    // previous.pt, which `read` falls back to.
    if state.exists() {
        let previous = dir.join("previous.pt");
        std::fs::rename(&state, &previous).map_err(|e| Error::io(&previous, e))?;
    }
    atomic.commit(file)?;
    Ok(bytes)
}

/// The newest good checkpoint in `dir`, and a warning for each file that is there but cannot be
/// used (cut short, corrupt, another version), naming it. `None` when there is none to use.
pub fn read(dir: &Path) -> (Option<Checkpoint>, Vec<String>) {
    let mut warnings = Vec::new();
    for name in ["state.pt", "previous.pt"] {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        match read_file(&path) {
            Ok(c) => return (Some(c), warnings),
            Err(why) => warnings.push(format!(
                "checkpoint {} is not usable: {why}",
                path.display()
            )),
        }
    }
    (None, warnings)
}

fn read_file(path: &Path) -> std::result::Result<Checkpoint, String> {
    let loaded = Tensor::load_multi(path).map_err(|e| {
        let text = e.to_string();
        let line = text.lines().next().unwrap_or("").to_string();
        format!("libtorch cannot read it ({line})")
    })?;
    let mut tensors: HashMap<String, Tensor> = loaded.into_iter().collect();
    let meta = tensors.remove("meta").ok_or("it holds no meta")?;
    let json = Vec::<u8>::try_from(&meta).map_err(|e| format!("its meta: {e}"))?;
    let meta: Meta = serde_json::from_slice(&json).map_err(|e| format!("its meta: {e}"))?;
    if meta.version != VERSION {
        return Err(format!(
            "version {}, this flowload reads version {VERSION}",
            meta.version
        ));
    }
    let mut sorted: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.shallow_clone()))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let sum = checksum(&sorted).map_err(|e| e.to_string())?;
    if sum != meta.checksum {
        return Err(format!(
            "its tensors' checksum is {sum:08x}, its meta says {:08x}: the file is corrupt",
            meta.checksum
        ));
    }
    Ok(Checkpoint {
        meta,
        path: path.into(),
        tensors,
    })
}

/// crc32 of each tensor's name, kind, shape and bytes, in the given order.
fn checksum(tensors: &[(String, Tensor)]) -> Result<u32> {
    let mut h = crc32fast::Hasher::new();
    for (name, t) in tensors {
        let t = t.to_device(Device::Cpu).contiguous();
        h.update(format!("{name} {:?} {:?}\n", t.kind(), t.size()).as_bytes());
        let bytes = t.reshape([-1]).view_dtype(Kind::Uint8);
        h.update(&Vec::<u8>::try_from(&bytes)?);
    }
    Ok(h.finalize())
}

/// When to checkpoint a run: every `every` of training time (at the first batch boundary after
/// it), and at each epoch's end; where; and what the run is.
pub struct Schedule {
    pub dir: PathBuf,
    pub every: std::time::Duration,
    pub identity: Identity,
    pub last: Instant,
}

impl Schedule {
    /// Whether a checkpoint is due at this batch boundary.
    pub fn due(&self) -> bool {
        self.last.elapsed() >= self.every
    }
}
