//! The results table's columns, listed once: the Parquet schema, the writer and the reader are
//! all made from [`COLUMNS`]. A run file holds one row per epoch: the run's grid point, then what
//! the epoch measured.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use flowload_core::{StatsSource, Workers};

use flowload_core::Result;

use crate::params::{OptimizerKind, RunParams};

/// One epoch of one run: what the RunManager tracked, plus where the time went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// The epoch, from 1 (files written before flowload counted from 1 are read shifted; see
    /// `run_file::EPOCHS_FROM_KEY`).
    pub epoch: u32,
    /// Sample-weighted mean training loss; `None` for the null sink.
    pub loss: Option<f64>,
    /// Fraction of training images classified right, over the epoch; `None` for the null sink.
    pub accuracy: Option<f64>,
    /// On the test split, normalized with the training statistics; `None` without a test split.
    pub test_loss: Option<f64>,
    /// Fraction of test images classified right; `None` without a test split.
    pub test_accuracy: Option<f64>,
    /// Training time of the epoch: data wait + compute (evaluation excluded).
    pub epoch_seconds: f64,
    /// Wall time since the run started, statistics and evaluation included.
    pub run_seconds: f64,
    /// Images trained on (or pulled, by the null sink and a Python loop) this epoch.
    pub images: u64,
    /// Decode workers active at the epoch's end (per process in a cluster): the run's count,
    /// or where `--workers auto` had got to.
    #[serde(default)]
    pub workers: u32,
    /// Bytes of batches that arrived from other processes (cluster mode; 0 in one process).
    #[serde(default)]
    pub bytes_received: u64,
    /// Training records left out under `--on-bad-record skip` this epoch.
    pub skipped_records: u64,
    /// Test records left out under `--on-bad-record skip`: the test loss and accuracy are over
    /// the others. 0 in files written before the column existed.
    #[serde(default)]
    pub test_skipped_records: u64,
    /// `images / epoch_seconds`.
    pub images_per_second: f64,
    /// Time the trainer was blocked waiting for the next batch (inline batch building at workers 0).
    pub data_wait_seconds: f64,
    /// Time the trainer spent on its batches: the epoch less the data wait.
    pub compute_seconds: f64,
    /// Evaluation on the test split after the epoch (0 where there is none).
    pub eval_seconds: f64,
    /// The once-per-run statistics pass; 0 when normalization is off or `--stats` supplied them,
    /// about 0 when the statistics cache held every part.
    pub stats_seconds: f64,
    /// Where the statistics came from: `computed` (every shard decoded), `cached` (none),
    /// `incremental` (new or changed shards only), `file` (`--stats`), `off` (no normalization).
    /// `None` in a file written before the column existed.
    #[serde(default)]
    pub stats_source: Option<StatsSource>,
    /// Shards of the training data (the parts the cache keeps: Parquet files, class
    /// directories, an in-memory split), and how many the statistics pass decoded.
    #[serde(default)]
    pub stats_shards: u32,
    /// Of [`EpochMetrics::stats_shards`], those the statistics pass decoded.
    #[serde(default)]
    pub stats_shards_decoded: u32,
    /// Where this epoch went on from a checkpoint after the run was stopped: `epoch 3 batch
    /// 41` (the epoch from 1, and batches of it trained before the stop); `None` in an epoch
    /// trained in one go. The epoch's timings add the parts before and after the stop; the
    /// time the run was down is in none of them.
    #[serde(default)]
    pub resumed_from: Option<String>,
    /// Seconds spent writing checkpoints in this epoch, the one at its end included (0 with
    /// checkpoints off, NaN in a file written before the column existed).
    #[serde(default)]
    pub checkpoint_seconds: f64,
    /// `checkpoint_seconds` as a share of the epoch's training time and its end checkpoint.
    #[serde(default)]
    pub checkpoint_share: f64,
}

impl EpochMetrics {
    /// What an older file without a column reads as: NaN for a measurement, 0 for a count,
    /// `None` where the column is nullable.
    pub fn missing() -> Self {
        EpochMetrics {
            epoch: 0,
            loss: None,
            accuracy: None,
            test_loss: None,
            test_accuracy: None,
            epoch_seconds: f64::NAN,
            run_seconds: f64::NAN,
            images: 0,
            workers: 0,
            bytes_received: 0,
            skipped_records: 0,
            test_skipped_records: 0,
            images_per_second: f64::NAN,
            data_wait_seconds: f64::NAN,
            compute_seconds: f64::NAN,
            eval_seconds: f64::NAN,
            stats_seconds: f64::NAN,
            stats_source: None,
            stats_shards: 0,
            stats_shards_decoded: 0,
            resumed_from: None,
            checkpoint_seconds: f64::NAN,
            checkpoint_share: f64::NAN,
        }
    }
}

/// A column's Parquet type, and how a value of it is held in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    U32,
    U64,
    F64,
    /// A nullable f64: an empty training column of the null sink, a missing test split.
    OptF64,
    Str,
    /// A nullable string: `resumed_from` of an epoch trained in one go.
    OptStr,
    Bool,
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Kind::U32 => DataType::UInt32,
            Kind::U64 => DataType::UInt64,
            Kind::F64 | Kind::OptF64 => DataType::Float64,
            Kind::Str | Kind::OptStr => DataType::Utf8,
            Kind::Bool => DataType::Boolean,
        }
    }
}

/// One cell on its way into or out of a column. Numbers travel as f64 (every count here is far
/// below 2^53), which also lets the reader accept any numeric type an older writer used.
#[derive(Clone, Debug)]
enum Value {
    Num(Option<f64>),
    Str(String),
    Bool(bool),
    /// An empty cell of a nullable string column.
    Null,
}

impl Value {
    fn num(self) -> f64 {
        match self {
            Value::Num(v) => v.unwrap_or(f64::NAN),
            _ => f64::NAN,
        }
    }
    fn count(self) -> u64 {
        match self {
            Value::Num(Some(v)) if v.is_finite() => v as u64,
            _ => 0,
        }
    }
    fn opt(self) -> Option<f64> {
        match self {
            Value::Num(v) => v,
            _ => None,
        }
    }
}

/// A row as the table sees it: the run's grid point and one epoch's measurements.
type Row = (RunParams, EpochMetrics);

/// A column: its name, its kind, and how to get and set its value in a row.
struct Column {
    name: &'static str,
    kind: Kind,
    get: fn(&Row) -> Value,
    set: fn(&mut Row, Value),
}

fn n(v: impl Into<f64>) -> Value {
    Value::Num(Some(v.into()))
}

/// Every column, in file order: the run parameters first, then the epoch's measurements.
#[rustfmt::skip]
static COLUMNS: &[Column] = &[
    Column { name: "run", kind: Kind::U32, get: |r| n(r.0.run), set: |r, v| r.0.run = v.count() as u32 },
    Column { name: "model", kind: Kind::Str, get: |r| Value::Str(r.0.model.clone()), set: |r, v| if let Value::Str(s) = v { r.0.model = s } },
    Column { name: "optimizer", kind: Kind::Str, get: |r| Value::Str(r.0.optimizer.name().into()), set: |r, v| if let Value::Str(s) = v && let Ok(o) = s.parse::<OptimizerKind>() { r.0.optimizer = o } },
    Column { name: "lr", kind: Kind::F64, get: |r| n(r.0.lr), set: |r, v| r.0.lr = v.num() },
    Column { name: "batch_size", kind: Kind::U32, get: |r| n(r.0.batch_size as f64), set: |r, v| r.0.batch_size = v.count() as usize },
    Column { name: "workers", kind: Kind::U32, get: |r| n(r.1.workers), set: |r, v| { r.1.workers = v.count() as u32; r.0.workers = Workers::Fixed(r.1.workers as usize) } },
    Column { name: "workers_mode", kind: Kind::Str, get: |r| Value::Str(r.0.workers.mode().into()), set: |r, v| if let Value::Str(s) = v && s == "auto" { r.0.workers = Workers::Auto } },
    Column { name: "processes", kind: Kind::U32, get: |r| n(r.0.processes), set: |r, v| r.0.processes = v.count() as u32 },
    Column { name: "device", kind: Kind::Str, get: |r| Value::Str(r.0.device.clone()), set: |r, v| if let Value::Str(s) = v { r.0.device = s } },
    Column { name: "normalize", kind: Kind::Bool, get: |r| Value::Bool(r.0.normalize), set: |r, v| if let Value::Bool(b) = v { r.0.normalize = b } },
    Column { name: "repeat", kind: Kind::U32, get: |r| n(r.0.repeat), set: |r, v| r.0.repeat = (v.count() as u32).max(1) },
    Column { name: "seed", kind: Kind::U64, get: |r| n(r.0.seed as f64), set: |r, v| r.0.seed = v.count() },
    Column { name: "epoch", kind: Kind::U32, get: |r| n(r.1.epoch), set: |r, v| r.1.epoch = v.count() as u32 },
    Column { name: "loss", kind: Kind::OptF64, get: |r| Value::Num(r.1.loss), set: |r, v| r.1.loss = v.opt() },
    Column { name: "accuracy", kind: Kind::OptF64, get: |r| Value::Num(r.1.accuracy), set: |r, v| r.1.accuracy = v.opt() },
    Column { name: "test_loss", kind: Kind::OptF64, get: |r| Value::Num(r.1.test_loss), set: |r, v| r.1.test_loss = v.opt() },
    Column { name: "test_accuracy", kind: Kind::OptF64, get: |r| Value::Num(r.1.test_accuracy), set: |r, v| r.1.test_accuracy = v.opt() },
    Column { name: "epoch_seconds", kind: Kind::F64, get: |r| n(r.1.epoch_seconds), set: |r, v| r.1.epoch_seconds = v.num() },
    Column { name: "run_seconds", kind: Kind::F64, get: |r| n(r.1.run_seconds), set: |r, v| r.1.run_seconds = v.num() },
    Column { name: "images", kind: Kind::U64, get: |r| n(r.1.images as f64), set: |r, v| r.1.images = v.count() },
    Column { name: "bytes_received", kind: Kind::U64, get: |r| n(r.1.bytes_received as f64), set: |r, v| r.1.bytes_received = v.count() },
    Column { name: "skipped_records", kind: Kind::U64, get: |r| n(r.1.skipped_records as f64), set: |r, v| r.1.skipped_records = v.count() },
    Column { name: "test_skipped_records", kind: Kind::U64, get: |r| n(r.1.test_skipped_records as f64), set: |r, v| r.1.test_skipped_records = v.count() },
    Column { name: "images_per_second", kind: Kind::F64, get: |r| n(r.1.images_per_second), set: |r, v| r.1.images_per_second = v.num() },
    Column { name: "data_wait_seconds", kind: Kind::F64, get: |r| n(r.1.data_wait_seconds), set: |r, v| r.1.data_wait_seconds = v.num() },
    Column { name: "compute_seconds", kind: Kind::F64, get: |r| n(r.1.compute_seconds), set: |r, v| r.1.compute_seconds = v.num() },
    Column { name: "eval_seconds", kind: Kind::F64, get: |r| n(r.1.eval_seconds), set: |r, v| r.1.eval_seconds = v.num() },
    Column { name: "stats_seconds", kind: Kind::F64, get: |r| n(r.1.stats_seconds), set: |r, v| r.1.stats_seconds = v.num() },
    Column { name: "stats_source", kind: Kind::Str, get: |r| Value::Str(r.1.stats_source.map_or("", StatsSource::name).into()), set: |r, v| if let Value::Str(s) = v { r.1.stats_source = s.parse().ok() } },
    Column { name: "stats_shards", kind: Kind::U32, get: |r| n(r.1.stats_shards), set: |r, v| r.1.stats_shards = v.count() as u32 },
    Column { name: "stats_shards_decoded", kind: Kind::U32, get: |r| n(r.1.stats_shards_decoded), set: |r, v| r.1.stats_shards_decoded = v.count() as u32 },
    Column { name: "resumed_from", kind: Kind::OptStr, get: |r| r.1.resumed_from.clone().map_or(Value::Null, Value::Str), set: |r, v| r.1.resumed_from = match v { Value::Str(s) => Some(s), _ => None } },
    Column { name: "checkpoint_seconds", kind: Kind::F64, get: |r| n(r.1.checkpoint_seconds), set: |r, v| r.1.checkpoint_seconds = v.num() },
    Column { name: "checkpoint_share", kind: Kind::F64, get: |r| n(r.1.checkpoint_share), set: |r, v| r.1.checkpoint_share = v.num() },
];

/// Columns a file must have to be read as a run file at all.
const REQUIRED: [&str; 2] = ["run", "epoch"];

/// The table's schema, in [`COLUMNS`] order.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(
        COLUMNS
            .iter()
            .map(|c| {
                Field::new(
                    c.name,
                    c.kind.data_type(),
                    matches!(c.kind, Kind::OptF64 | Kind::OptStr),
                )
            })
            .collect::<Vec<_>>(),
    ))
}

/// One run's rows as a record batch of [`schema`].
pub(crate) fn to_record_batch(params: &RunParams, rows: &[EpochMetrics]) -> Result<RecordBatch> {
    let rows: Vec<Row> = rows.iter().map(|e| (params.clone(), e.clone())).collect();
    let columns = COLUMNS
        .iter()
        .map(|c| {
            let values = rows.iter().map(c.get);
            let nums = || values.clone().map(|v| v.opt());
            let array: ArrayRef = match c.kind {
                Kind::U32 => Arc::new(nums().map(|v| v.map(|v| v as u32)).collect::<UInt32Array>()),
                Kind::U64 => Arc::new(nums().map(|v| v.map(|v| v as u64)).collect::<UInt64Array>()),
                Kind::F64 | Kind::OptF64 => Arc::new(nums().collect::<Float64Array>()),
                Kind::Str | Kind::OptStr => Arc::new(
                    values
                        .clone()
                        .map(|v| match v {
                            Value::Str(s) => Some(s),
                            _ => None,
                        })
                        .collect::<StringArray>(),
                ),
                Kind::Bool => Arc::new(
                    values
                        .clone()
                        .map(|v| match v {
                            Value::Bool(b) => Some(b),
                            _ => None,
                        })
                        .collect::<BooleanArray>(),
                ),
            };
            array
        })
        .collect();
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// Reads a record batch back into rows. Tolerant of older layouts: only `run` and `epoch` are
/// required; a missing column keeps `defaults`' value (or [`EpochMetrics`]'s missing value),
/// and any numeric type is accepted. The error is the problem with the batch, as text.
pub(crate) fn from_record_batch(
    batch: &RecordBatch,
    defaults: &RunParams,
) -> std::result::Result<Vec<Row>, String> {
    for name in REQUIRED {
        if batch.column_by_name(name).is_none() {
            return Err(format!("column '{name}' is missing"));
        }
    }
    let mut rows: Vec<Row> = (0..batch.num_rows())
        .map(|_| (defaults.clone(), EpochMetrics::missing()))
        .collect();
    for c in COLUMNS {
        let Some(col) = batch.column_by_name(c.name) else {
            continue;
        };
        let cast = |t: &DataType| {
            arrow::compute::cast(col, t).map_err(|e| format!("column '{}': {e}", c.name))
        };
        let values: Vec<Value> = match c.kind {
            Kind::Str | Kind::OptStr => {
                let a = cast(&DataType::Utf8)?;
                let a = a
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("cast to Utf8");
                (0..a.len())
                    .map(|i| match a.is_valid(i) {
                        true => Value::Str(a.value(i).to_string()),
                        false => Value::Null,
                    })
                    .collect()
            }
            Kind::Bool => {
                let a = cast(&DataType::Boolean)?;
                let a = a
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .expect("cast to Boolean");
                (0..a.len()).map(|i| Value::Bool(a.value(i))).collect()
            }
            _ => {
                let a = cast(&DataType::Float64)?;
                let a = a
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .expect("cast to Float64");
                (0..a.len())
                    .map(|i| Value::Num(a.is_valid(i).then(|| a.value(i))))
                    .collect()
            }
        };
        for (row, v) in rows.iter_mut().zip(values) {
            (c.set)(row, v);
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_a_record_batch() {
        let params = RunParams {
            run: 3,
            model: "models/small_resnet.pt".into(),
            optimizer: OptimizerKind::Sgd,
            lr: 0.01,
            batch_size: 100,
            workers: Workers::Auto,
            device: "cpu".into(),
            normalize: true,
            seed: 7,
            processes: 2,
            repeat: 3,
        };
        let mut row = EpochMetrics::missing();
        row.epoch = 4;
        row.loss = Some(0.5);
        row.images = 600;
        row.workers = 2;
        row.epoch_seconds = 1.25;
        let batch = to_record_batch(&params, &[row.clone()]).unwrap();
        assert_eq!(batch.num_columns(), COLUMNS.len());
        let back = from_record_batch(&batch, &RunParams::default()).unwrap();
        assert_eq!(back[0].0, params);
        assert_eq!(back[0].1.loss, row.loss);
        assert_eq!(back[0].1.images, 600);
        assert_eq!(back[0].1.workers, 2);
        assert_eq!(back[0].1.epoch, 4);
        assert!(back[0].1.run_seconds.is_nan());
    }
}
