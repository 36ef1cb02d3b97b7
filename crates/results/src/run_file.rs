//! One run's file, `runs/run-NNNN.parquet`: the seed's RunManager table for that run, with the
//! sweep's effective config and the run's grid point in the file's metadata.
//!
//! Lifecycle as arrow-rs's `ArrowWriter`: [`MetricsWriter::try_new`] → [`MetricsWriter::write`] →
//! [`MetricsWriter::close`]. Rows go to a hidden temporary file that `close` renames into place,
//! so a crash or `kill -9` in run k leaves runs 1..k−1 whole and no half-written run behind; a
//! writer dropped without `close` (an error) removes its temporary file.

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use flowload_core::{AtomicFile, Error, Result};

use crate::columns::{EpochMetrics, from_record_batch, schema, to_record_batch};
use crate::params::RunParams;

/// Key-value metadata keys: the sweep's effective config, this run's point of the grid, the
/// data's content key and the model file's (32 hex digits, see `stats_store::fingerprint`).
/// This one: the sweep's effective config as JSON (a Python run's: the loader's settings).
pub const CONFIG_KEY: &str = "flowload.config";
/// The run's grid point ([`RunParams`]) as JSON.
pub const RUN_KEY: &str = "flowload.run";
/// The data's content key, 32 hex digits.
pub const DATA_KEY: &str = "flowload.data";
/// The TorchScript model file's content key; absent for the seed's network.
pub const MODEL_KEY: &str = "flowload.model";
/// The number of a run's first epoch in the `epoch` column: `1`, as every other place counts
/// them (the run line, the table, the verdicts, the seed's RunManager). Files without it were
/// written counting from 0, and are read shifted by one.
pub const EPOCHS_FROM_KEY: &str = "flowload.epochs_from";

/// What a run was made from besides its config: the data's content key, and the model file's
/// (`None` for the seed's network).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// The data's content key (`flowload_core::Dataset::content_key`).
    pub data: u128,
    /// The model file's content key; `None` for the seed's network and a Python run.
    pub model: Option<u128>,
}

/// The file of run `run` under `dir`: `dir/runs/run-0001.parquet`, so that
/// `read_parquet('results/*/runs/*.parquet')` reads every sweep at once.
pub fn run_path(dir: &Path, run: u32) -> PathBuf {
    dir.join("runs").join(format!("run-{run:04}.parquet"))
}

/// Where run `run`'s trained model goes: `dir/models/run-0001.pt`.
pub fn model_path(dir: &Path, run: u32) -> PathBuf {
    dir.join("models").join(format!("run-{run:04}.pt"))
}

/// Writes one run's rows to a temporary file, renamed into place by [`MetricsWriter::close`].
pub struct MetricsWriter {
    writer: ArrowWriter<File>,
    file: AtomicFile,
    params: RunParams,
}

impl MetricsWriter {
    /// Starts the file of one run: its rows go to a temporary file until [`MetricsWriter::close`].
    pub fn try_new(
        path: &Path,
        params: &RunParams,
        config_json: &str,
        made_from: Provenance,
    ) -> Result<Self> {
        let (out, file) = AtomicFile::create(path)?;
        let run_json = serde_json::to_string(params).expect("params serialize");
        let mut meta = vec![
            KeyValue::new(CONFIG_KEY.into(), config_json.to_string()),
            KeyValue::new(RUN_KEY.into(), run_json),
            KeyValue::new(DATA_KEY.into(), format!("{:032x}", made_from.data)),
            KeyValue::new(EPOCHS_FROM_KEY.to_string(), "1".to_string()),
        ];
        if let Some(model) = made_from.model {
            meta.push(KeyValue::new(MODEL_KEY.into(), format!("{model:032x}")));
        }
        let props = WriterProperties::builder()
            .set_key_value_metadata(Some(meta))
            .build();
        let writer = ArrowWriter::try_new(out, schema(), Some(props))
            .map_err(|e| Error::parquet(file.tmp_path(), e))?;
        Ok(MetricsWriter {
            writer,
            file,
            params: params.clone(),
        })
    }

    /// Appends epochs' rows.
    pub fn write(&mut self, rows: &[EpochMetrics]) -> Result<()> {
        let batch = to_record_batch(&self.params, rows)?;
        self.writer
            .write(&batch)
            .map_err(|e| Error::parquet(self.file.tmp_path(), e))
    }

    /// Finishes the file, flushes it to disk, and renames it into place.
    pub fn close(self) -> Result<PathBuf> {
        let (out, file) = self.finish()?;
        file.commit(out)
    }

    /// As [`MetricsWriter::close`], but never replaces a run file: where one exists, an
    /// [`Error::Io`] of kind `AlreadyExists` (see [`AtomicFile::commit_new`]).
    pub fn close_new(self) -> Result<PathBuf> {
        let (out, file) = self.finish()?;
        file.commit_new(out)
    }

    fn finish(self) -> Result<(File, AtomicFile)> {
        let out = self
            .writer
            .into_inner()
            .map_err(|e| Error::parquet(self.file.tmp_path(), e))?;
        Ok((out, self.file))
    }
}

/// A run file read back: its grid point, the sweep config it was made with, and its rows.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFile {
    /// The run's grid point.
    pub params: RunParams,
    /// The sweep's effective config (`flowload.config` metadata), when the file has it.
    pub config_json: Option<String>,
    /// The data's content key (`flowload.data`), when the file has it.
    pub data_key: Option<u128>,
    /// The model file's content key (`flowload.model`); `None` for the seed's network.
    pub model_key: Option<u128>,
    /// One row per epoch, in file order.
    pub rows: Vec<EpochMetrics>,
}

/// Reads a run file: a Parquet file with flowload's metadata. Tolerant of older layouts: only
/// `run` and `epoch` are required; a missing
/// measurement reads as NaN (or `None` where the column is nullable), a missing parameter as
/// the `flowload.run` metadata or the default; any numeric type is accepted.
pub fn read_run(path: &Path) -> Result<RunFile> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(path, e))?;
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
    // Every flowload has written these keys: a file without them is someone else's Parquet,
    // however much its columns look like ours.
    if meta(RUN_KEY).is_none() && meta(CONFIG_KEY).is_none() {
        return Err(Error::ParquetLayout {
            path: path.into(),
            detail: format!("not a flowload run file (no {RUN_KEY} or {CONFIG_KEY} metadata)"),
        });
    }
    let mut params: RunParams = meta(RUN_KEY)
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default();
    // Older files numbered epochs from 0.
    let shift = u32::from(meta(EPOCHS_FROM_KEY).is_none());
    let reader = builder.build().map_err(|e| Error::parquet(path, e))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|source| Error::ParquetRead {
            path: path.into(),
            what: "reading rows".into(),
            source,
        })?;
        let read = from_record_batch(&batch, &params).map_err(|detail| Error::ParquetLayout {
            path: path.into(),
            detail,
        })?;
        for (p, mut row) in read {
            params = p;
            row.epoch += shift;
            rows.push(row);
        }
    }
    Ok(RunFile {
        params,
        config_json: meta(CONFIG_KEY),
        data_key: meta(DATA_KEY).and_then(|k| u128::from_str_radix(&k, 16).ok()),
        model_key: meta(MODEL_KEY).and_then(|k| u128::from_str_radix(&k, 16).ok()),
        rows,
    })
}
