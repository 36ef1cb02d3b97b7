//! Metrics sink: the seed's RunManager table as Parquet, one file per run, written atomically.
//!
//! Lifecycle as arrow-rs's `ArrowWriter`: [`MetricsWriter::try_new`] → [`MetricsWriter::write`] →
//! [`MetricsWriter::close`]. Rows go to a hidden temporary file that `close` renames into place,
//! so a crash or `kill -9` in run k leaves runs 1..k−1 whole and no half-written run behind.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::config::RunParams;
use crate::error::{Error, Result};

/// Key-value metadata keys: the sweep's effective config, and this run's point of the grid.
pub const CONFIG_KEY: &str = "flowload.config";
pub const RUN_KEY: &str = "flowload.run";

/// One epoch of one run: what the RunManager tracked, plus where the time went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: u32,
    /// Sample-weighted mean training loss; `None` for the null sink.
    pub loss: Option<f64>,
    pub accuracy: Option<f64>,
    /// On the test split, normalized with the training statistics; `None` without a test split.
    pub test_loss: Option<f64>,
    pub test_accuracy: Option<f64>,
    /// Training time of the epoch: data wait + compute (evaluation excluded).
    pub epoch_seconds: f64,
    /// Wall time since the run started, statistics and evaluation included.
    pub run_seconds: f64,
    pub images: u64,
    /// Bytes of batches that arrived from other processes (cluster mode; 0 in one process).
    #[serde(default)]
    pub bytes_received: u64,
    /// Records left out under `--on-bad-record skip` this epoch.
    pub skipped_records: u64,
    pub images_per_second: f64,
    /// Time the trainer was blocked waiting for the next batch (inline batch building at workers 0).
    pub data_wait_seconds: f64,
    pub compute_seconds: f64,
    pub eval_seconds: f64,
    /// The once-per-run statistics pass; 0 when normalization is off or `--stats` supplied them.
    pub stats_seconds: f64,
}

/// The table's schema: run parameters first, then the epoch's measurements.
pub fn schema() -> SchemaRef {
    let f = |name: &str, t: DataType, nullable: bool| Field::new(name, t, nullable);
    Arc::new(Schema::new(vec![
        f("run", DataType::UInt32, false),
        f("lr", DataType::Float64, false),
        f("batch_size", DataType::UInt32, false),
        f("workers", DataType::UInt32, false),
        f("processes", DataType::UInt32, false),
        f("device", DataType::Utf8, false),
        f("normalize", DataType::Boolean, false),
        f("seed", DataType::UInt64, false),
        f("epoch", DataType::UInt32, false),
        f("loss", DataType::Float64, true),
        f("accuracy", DataType::Float64, true),
        f("test_loss", DataType::Float64, true),
        f("test_accuracy", DataType::Float64, true),
        f("epoch_seconds", DataType::Float64, false),
        f("run_seconds", DataType::Float64, false),
        f("images", DataType::UInt64, false),
        f("bytes_received", DataType::UInt64, false),
        f("skipped_records", DataType::UInt64, false),
        f("images_per_second", DataType::Float64, false),
        f("data_wait_seconds", DataType::Float64, false),
        f("compute_seconds", DataType::Float64, false),
        f("eval_seconds", DataType::Float64, false),
        f("stats_seconds", DataType::Float64, false),
    ]))
}

/// The file of run `run` under `dir`: `dir/runs/run-0001.parquet`, so that
/// `read_parquet('results/*/runs/*.parquet')` reads every sweep at once.
pub fn run_path(dir: &Path, run: u32) -> PathBuf {
    dir.join("runs").join(format!("run-{run:04}.parquet"))
}

/// Writes one run's rows to a temporary file, renamed into place by [`MetricsWriter::close`].
pub struct MetricsWriter {
    writer: ArrowWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    params: RunParams,
}

impl MetricsWriter {
    pub fn try_new(path: &Path, params: &RunParams, config_json: &str) -> Result<Self> {
        let dir = path.parent().expect("run_path has a parent");
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let name = path
            .file_name()
            .expect("run_path has a name")
            .to_string_lossy();
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let run_json = serde_json::to_string(params).expect("params serialize");
        let props = WriterProperties::builder()
            .set_key_value_metadata(Some(vec![
                KeyValue::new(CONFIG_KEY.into(), config_json.to_string()),
                KeyValue::new(RUN_KEY.into(), run_json),
            ]))
            .build();
        let writer =
            ArrowWriter::try_new(file, schema(), Some(props)).map_err(parquet_err(&tmp))?;
        Ok(MetricsWriter {
            writer,
            tmp,
            path: path.into(),
            params: params.clone(),
        })
    }

    pub fn write(&mut self, rows: &[EpochMetrics]) -> Result<()> {
        let batch = to_record_batch(&self.params, rows)?;
        self.writer.write(&batch).map_err(parquet_err(&self.tmp))
    }

    /// Finishes the file, flushes it to disk, and renames it into place.
    pub fn close(self) -> Result<PathBuf> {
        let file = self.writer.into_inner().map_err(parquet_err(&self.tmp))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(self.path)
    }
}

fn parquet_err(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> Error + '_ {
    move |e| Error::Parquet {
        path: path.into(),
        detail: e.to_string(),
    }
}

fn to_record_batch(p: &RunParams, rows: &[EpochMetrics]) -> Result<RecordBatch> {
    let n = rows.len();
    let f64s = |get: fn(&EpochMetrics) -> f64| -> ArrayRef {
        Arc::new(rows.iter().map(get).collect::<Float64Array>())
    };
    let opt = |get: fn(&EpochMetrics) -> Option<f64>| -> ArrayRef {
        Arc::new(rows.iter().map(get).collect::<Float64Array>())
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from(vec![p.run; n])),
        Arc::new(Float64Array::from(vec![p.lr; n])),
        Arc::new(UInt32Array::from(vec![p.batch_size as u32; n])),
        Arc::new(UInt32Array::from(vec![p.workers as u32; n])),
        Arc::new(UInt32Array::from(vec![p.processes; n])),
        Arc::new(StringArray::from(vec![p.device.as_str(); n])),
        Arc::new(BooleanArray::from(vec![p.normalize; n])),
        Arc::new(UInt64Array::from(vec![p.seed; n])),
        Arc::new(rows.iter().map(|r| r.epoch).collect::<UInt32Array>()),
        opt(|r| r.loss),
        opt(|r| r.accuracy),
        opt(|r| r.test_loss),
        opt(|r| r.test_accuracy),
        f64s(|r| r.epoch_seconds),
        f64s(|r| r.run_seconds),
        Arc::new(rows.iter().map(|r| r.images).collect::<UInt64Array>()),
        Arc::new(
            rows.iter()
                .map(|r| r.bytes_received)
                .collect::<UInt64Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.skipped_records)
                .collect::<UInt64Array>(),
        ),
        f64s(|r| r.images_per_second),
        f64s(|r| r.data_wait_seconds),
        f64s(|r| r.compute_seconds),
        f64s(|r| r.eval_seconds),
        f64s(|r| r.stats_seconds),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// A run file read back: its grid point, the sweep config it was made with, and its rows.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFile {
    pub params: RunParams,
    /// The sweep's effective config (`flowload.config` metadata), when the file has it.
    pub config_json: Option<String>,
    pub rows: Vec<EpochMetrics>,
}

/// Reads a run file. Tolerant of older layouts: only `run` and `epoch` are required; a missing
/// measurement reads as NaN (or `None` where the column is nullable), a missing parameter as
/// the `flowload.run` metadata or the default; any numeric type is accepted.
pub fn read_run(path: &Path) -> Result<RunFile> {
    let bad = |detail: String| Error::Parquet {
        path: path.into(),
        detail,
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_err(path))?;
    let kv = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    let meta = |key: &str| {
        kv.iter()
            .find(|k| k.key == key)
            .and_then(|k| k.value.clone())
    };
    let mut params: RunParams = meta(RUN_KEY)
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_else(|| RunParams {
            run: 0,
            lr: f64::NAN,
            batch_size: 0,
            workers: 0,
            device: "?".into(),
            normalize: false,
            seed: 0,
            processes: 1,
        });
    let reader = builder.build().map_err(parquet_err(path))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let n = batch.num_rows();
        let num = |name: &str| -> Result<Option<Float64Array>> {
            let Some(col) = batch.column_by_name(name) else {
                return Ok(None);
            };
            let col = arrow::compute::cast(col, &DataType::Float64)
                .map_err(|e| bad(format!("column '{name}': {e}")))?;
            Ok(col.as_any().downcast_ref::<Float64Array>().cloned())
        };
        let need = |name: &str| -> Result<Float64Array> {
            num(name)?.ok_or_else(|| bad(format!("column '{name}' is missing")))
        };
        let (run, epoch) = (need("run")?, need("epoch")?);
        let opt = |a: &Option<Float64Array>, i: usize| {
            a.as_ref().and_then(|a| a.is_valid(i).then(|| a.value(i)))
        };
        let val = |a: &Option<Float64Array>, i: usize| opt(a, i).unwrap_or(f64::NAN);
        if n > 0 {
            params.run = run.value(0) as u32;
            let first = |name: &str| -> Result<Option<f64>> { Ok(opt(&num(name)?, 0)) };
            if let Some(v) = first("lr")? {
                params.lr = v;
            }
            if let Some(v) = first("batch_size")? {
                params.batch_size = v as usize;
            }
            if let Some(v) = first("workers")? {
                params.workers = v as usize;
            }
            if let Some(v) = first("seed")? {
                params.seed = v as u64;
            }
            if let Some(v) = first("processes")? {
                params.processes = v as u32;
            }
            if let Some(d) = batch.column_by_name("device").and_then(|c| {
                c.as_any()
                    .downcast_ref::<StringArray>()
                    .map(|a| a.value(0).to_string())
            }) {
                params.device = d;
            }
            if let Some(b) = batch.column_by_name("normalize").and_then(|c| {
                c.as_any()
                    .downcast_ref::<BooleanArray>()
                    .map(|a| a.value(0))
            }) {
                params.normalize = b;
            }
        }
        let cols = [
            "loss",
            "accuracy",
            "test_loss",
            "test_accuracy",
            "epoch_seconds",
            "run_seconds",
            "images",
            "images_per_second",
            "data_wait_seconds",
            "compute_seconds",
            "eval_seconds",
            "stats_seconds",
            "skipped_records",
            "bytes_received",
        ]
        .map(num);
        let [loss, acc, tl, ta, es, rs, im, ips, dw, cs, ev, ss, sk, br] = cols;
        let (loss, acc, tl, ta, es, rs, im, ips, dw, cs, ev, ss, sk, br) = (
            loss?, acc?, tl?, ta?, es?, rs?, im?, ips?, dw?, cs?, ev?, ss?, sk?, br?,
        );
        for i in 0..n {
            rows.push(EpochMetrics {
                epoch: epoch.value(i) as u32,
                loss: opt(&loss, i),
                accuracy: opt(&acc, i),
                test_loss: opt(&tl, i),
                test_accuracy: opt(&ta, i),
                epoch_seconds: val(&es, i),
                run_seconds: val(&rs, i),
                images: opt(&im, i).unwrap_or(0.0) as u64,
                bytes_received: opt(&br, i).unwrap_or(0.0) as u64,
                skipped_records: opt(&sk, i).unwrap_or(0.0) as u64,
                images_per_second: val(&ips, i),
                data_wait_seconds: val(&dw, i),
                compute_seconds: val(&cs, i),
                eval_seconds: val(&ev, i),
                stats_seconds: val(&ss, i),
            });
        }
    }
    Ok(RunFile {
        params,
        config_json: meta(CONFIG_KEY),
        rows,
    })
}

/// Writes `dir/skipped.parquet` (atomically): every record a sweep left out under
/// `--on-bad-record skip`, with the run, the shard or file, the row, and the reason.
pub fn write_skipped(
    dir: &Path,
    skipped: &[(u32, crate::ops::decode::Skipped)],
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join("skipped.parquet");
    let tmp = dir.join(".skipped.parquet.tmp");
    let schema = Arc::new(Schema::new(vec![
        Field::new("run", DataType::UInt32, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("row", DataType::UInt64, false),
        Field::new("reason", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(skipped.iter().map(|s| s.0).collect::<UInt32Array>()),
            Arc::new(
                skipped
                    .iter()
                    .map(|s| Some(s.1.source.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(skipped.iter().map(|s| s.1.row).collect::<UInt64Array>()),
            Arc::new(
                skipped
                    .iter()
                    .map(|s| Some(s.1.reason.as_str()))
                    .collect::<StringArray>(),
            ),
        ],
    )?;
    let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut writer = ArrowWriter::try_new(file, schema, None).map_err(parquet_err(&tmp))?;
    writer.write(&batch).map_err(parquet_err(&tmp))?;
    writer.close().map_err(parquet_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}
