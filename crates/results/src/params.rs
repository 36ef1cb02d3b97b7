//! The grid point a run records: which model, optimizer, learning rate, batch size, workers,
//! device, normalization and seed made its rows.

use serde::{Deserialize, Serialize};

use flowload_core::Workers;

/// The optimizer a run trained with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (betas 0.9, 0.999, eps 1e-8), the seed's.
    #[default]
    Adam,
    /// AdamW: Adam with decoupled weight decay.
    Adamw,
    /// SGD, with `momentum` (no dampening, not Nesterov).
    Sgd,
    /// One the training loop chose, outside flowload: a run written from Python whose
    /// optimizer is none of the above, or was not named. flowload's sink cannot train with it.
    #[cfg_attr(feature = "clap", value(skip))]
    Other,
}

impl OptimizerKind {
    /// Every optimizer, in the order of the `optimizer` column's documentation.
    pub const ALL: [OptimizerKind; 4] = [
        OptimizerKind::Adam,
        OptimizerKind::Adamw,
        OptimizerKind::Sgd,
        OptimizerKind::Other,
    ];

    /// Its name in a pipeline, on the command line and in the `optimizer` column.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Adam => "adam",
            OptimizerKind::Adamw => "adamw",
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Other => "other",
        }
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = String;

    /// An optimizer by its [`OptimizerKind::name`], in any case.
    fn from_str(s: &str) -> Result<Self, String> {
        OptimizerKind::ALL
            .into_iter()
            .find(|o| o.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = OptimizerKind::ALL.iter().map(|o| o.name()).collect();
                format!(
                    "'{s}' is not an optimizer: give one of {}",
                    names.join(", ")
                )
            })
    }
}

/// The grid's name for the seed's network.
pub const SEED_MODEL: &str = "seed";

/// One point of the grid, with the sweep's seed: the columns that identify a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunParams {
    /// The run's number in its sweep, from 1: `runs/run-NNNN.parquet`.
    pub run: u32,
    /// `seed`, or the TorchScript file as the grid names it.
    #[serde(default = "seed_model")]
    pub model: String,
    /// The optimizer it trained with.
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// The learning rate; NaN where a file does not say.
    pub lr: f64,
    /// Images per batch (per step, over every process).
    pub batch_size: usize,
    /// Decode workers as set: a count, or `auto`.
    pub workers: Workers,
    /// As given in the grid (`auto`) until the sweep resolves it to the device used (`cpu`, `cuda:0`).
    pub device: String,
    /// Whether the images were normalized with per-channel statistics.
    pub normalize: bool,
    /// The seed of shuffling, augmentation and the model's initialization.
    pub seed: u64,
    /// Processes that built the batches (`--processes`; 1 outside a cluster).
    #[serde(default = "one")]
    pub processes: u32,
    /// Which repetition of its grid point this run is (`--repeat`), from 1.
    #[serde(default = "one")]
    pub repeat: u32,
}

fn one() -> u32 {
    1
}

fn seed_model() -> String {
    SEED_MODEL.into()
}

/// What a run file without the `flowload.run` metadata reads as, before its columns are read.
impl Default for RunParams {
    fn default() -> Self {
        RunParams {
            run: 0,
            model: SEED_MODEL.into(),
            optimizer: OptimizerKind::Adam,
            lr: f64::NAN,
            batch_size: 0,
            workers: Workers::Fixed(0),
            device: "?".into(),
            normalize: false,
            seed: 0,
            processes: 1,
            repeat: 1,
        }
    }
}
