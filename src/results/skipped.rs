//! `skipped.parquet`: every record a sweep left out under `--on-bad-record skip`, with the run,
//! the shard or file, the row, and the reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;

use crate::error::{Error, Result};
use flowload_core::AtomicFile;
use flowload_core::BadRecord;

/// Writes `dir/skipped.parquet` atomically.
pub fn write_skipped(dir: &Path, skipped: &[(u32, BadRecord)]) -> Result<PathBuf> {
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
                    .map(|s| Some(s.1.record.file.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(
                skipped
                    .iter()
                    .map(|s| s.1.record.row)
                    .collect::<UInt64Array>(),
            ),
            Arc::new(
                skipped
                    .iter()
                    .map(|s| Some(s.1.reason.as_str()))
                    .collect::<StringArray>(),
            ),
        ],
    )?;
    let (out, file) = AtomicFile::create(&dir.join("skipped.parquet"))?;
    let parquet = |e| Error::parquet(file.tmp_path(), e);
    let mut writer = ArrowWriter::try_new(out, schema, None).map_err(parquet)?;
    writer.write(&batch).map_err(parquet)?;
    let out = writer.into_inner().map_err(parquet)?;
    Ok(file.commit(out)?)
}
