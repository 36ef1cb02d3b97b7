//! Convert (`flowload convert`): any source written as Hugging Face–layout Parquet shards,
//! `image: {bytes: binary, path: utf8}` and `label: int64`. Encoded images keep their bytes as
//! they are (a JPEG stays the same JPEG); raw pixels, and images given transforms or
//! `--resize`, are written as PNG.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray, StructArray};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::codec::png::encode_png;
use crate::codec::{Format, format_of};
use crate::error::OnBadRecord;
use crate::error::{Error, Result};
use crate::fs::{AtomicFile, listing};
use crate::ops::decode::RecordReader;
use crate::ops::plan::BatchPlan;
use crate::source::encoded::parquet::numbered_shard;
use crate::source::{Dataset, Kind, Records};
use crate::transforms::{Transform, Transforms};

fn image_fields() -> Fields {
    Fields::from(vec![
        Field::new("bytes", DataType::Binary, true),
        Field::new("path", DataType::Utf8, true),
    ])
}

/// The Hugging Face `datasets` image layout, with the class count as a `ClassLabel` feature in
/// the `huggingface` schema metadata, as `datasets` writes it (names `"0"`..`"K-1"`).
pub(crate) fn schema(classes: usize) -> SchemaRef {
    let names: Vec<String> = (0..classes).map(|c| c.to_string()).collect();
    let features = serde_json::json!({
        "info": {"features": {
            "image": {"_type": "Image"},
            "label": {"_type": "ClassLabel", "names": names},
        }}
    });
    Arc::new(
        Schema::new(vec![
            Field::new("image", DataType::Struct(image_fields()), true),
            Field::new("label", DataType::Int64, true),
        ])
        .with_metadata([("huggingface".to_string(), features.to_string())]),
    )
}

/// Whether `name` is a shard that `convert` writes: `train-00000-of-00003.parquet`.
fn is_shard_name(name: &str) -> bool {
    numbered_shard(name).is_some_and(|(prefix, _, _)| prefix == "train" || prefix == "test")
}

/// Makes `out` ready for a conversion: an empty (or new) directory, or with `overwrite`, one
/// whose shards from an earlier conversion are removed first. Anything else in it is an error,
/// and then nothing is removed.
fn prepare_out(out: &Path, overwrite: bool) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut entries: Vec<String> = std::fs::read_dir(out)
        .map_err(|e| Error::io(out, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    if entries.is_empty() {
        return Ok(());
    }
    if !overwrite {
        return Err(Error::Config(format!(
            "convert: {} is not empty ({}): converting into it would mix two data sets; give --overwrite to replace its shards, or another directory",
            out.display(),
            listing(entries.iter().map(String::as_str))
        )));
    }
    let foreign: Vec<&String> = entries.iter().filter(|n| !is_shard_name(n)).collect();
    if !foreign.is_empty() {
        return Err(Error::Config(format!(
            "convert --overwrite: {} holds files that are not shards ({}); nothing was removed: choose another directory",
            out.display(),
            listing(foreign.iter().map(|n| n.as_str()))
        )));
    }
    for name in &entries {
        let p = out.join(name);
        std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

/// How [`Dataset::convert`] writes shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvertOptions {
    /// Rows per row group, the unit a streaming reader holds in memory. Default 1000.
    pub row_group_size: usize,
    /// Rows per shard file; 0 writes one shard per split. Default 0.
    pub shard_rows: usize,
    /// What to do with a record that cannot be decoded. Default `fail`.
    pub on_bad_record: OnBadRecord,
    /// Replace the shards of an earlier conversion in the output directory. Default false:
    /// the directory must be empty or new.
    pub overwrite: bool,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            row_group_size: 1000,
            shard_rows: 0,
            on_bad_record: OnBadRecord::Fail,
            overwrite: false,
        }
    }
}

impl Dataset {
    /// Writes the splits under `out` as `train-00000-of-0000N.parquet` (and `test-…`). Each
    /// file is written under a temporary name and renamed when complete. `out` must be empty,
    /// or with `overwrite` hold only shards, which are removed first. Returns the files written.
    pub fn convert(&self, out: &Path, options: &ConvertOptions) -> Result<Vec<PathBuf>> {
        if options.row_group_size == 0 {
            return Err(Error::Config("--row-group-size must be at least 1".into()));
        }
        prepare_out(out, options.overwrite)?;
        let mut written = Vec::new();
        let splits = [("train", Some(&self.train)), ("test", self.test.as_ref())];
        for (name, records) in splits {
            let Some(records) = records else { continue };
            written.extend(write_split(name, records, out, options)?);
        }
        Ok(written)
    }
}

fn write_split(
    name: &str,
    records: &Records,
    out: &Path,
    options: &ConvertOptions,
) -> Result<Vec<PathBuf>> {
    let (row_group_size, shard_rows) = (options.row_group_size, options.shard_rows);
    let n = records.len();
    let per_shard = if shard_rows == 0 {
        n.max(1)
    } else {
        shard_rows
    };
    let shards = n.div_ceil(per_shard).max(1);
    let shape = records.shape();
    // Encoded images without transforms are copied byte for byte, once decoded to check them;
    // they may differ in size (ImageNet's do), so the check resizes each to one size.
    let (checked, copy) = match &records.0 {
        Kind::Encoded(e) if e.transforms.is_empty() => {
            let resize = Transforms {
                list: vec![Transform::ResizeExact((shape.height, shape.width))],
                seed: 0,
                view_of: None,
            };
            (
                Records(Kind::Encoded(Arc::new(e.with_transforms(resize)?))),
                true,
            )
        }
        _ => (records.clone(), false),
    };
    let mut reader = RecordReader::new(checked, options.on_bad_record);
    let mut written = Vec::new();
    for shard in 0..shards {
        let path = out.join(format!("{name}-{shard:05}-of-{shards:05}.parquet"));
        let (file, atomic) = AtomicFile::create(&path)?;
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(row_group_size))
            .build();
        let pq = |e| Error::parquet(atomic.tmp_path(), e);
        let mut writer =
            ArrowWriter::try_new(file, schema(records.classes()), Some(props)).map_err(pq)?;
        let (start, end) = (shard * per_shard, ((shard + 1) * per_shard).min(n));
        for chunk_start in (start..end).step_by(row_group_size) {
            // One record at a time: a skipped record leaves a gap, and each kept image is named
            // by its own index in the split.
            let (mut images, mut names, mut labels) = (Vec::new(), Vec::new(), Vec::new());
            for r in chunk_start..(chunk_start + row_group_size).min(end) {
                let plan = BatchPlan {
                    epoch: 0,
                    index: r,
                    rows: vec![r as u32],
                };
                let decoded = reader.decode(&plan)?;
                if decoded.rows() != 1 {
                    continue;
                }
                let original = if copy { reader.encoded_bytes(r)? } else { None };
                let bytes = original.unwrap_or_else(|| encode_png(&decoded.pixels, shape));
                let ext = match format_of(&bytes) {
                    Ok(Format::Jpeg) => "jpg",
                    _ => "png",
                };
                names.push(format!("{name}/{r:06}.{ext}"));
                images.push(bytes);
                labels.push(decoded.labels[0]);
            }
            let image = StructArray::new(
                image_fields(),
                vec![
                    Arc::new(BinaryArray::from_iter_values(images.iter())) as ArrayRef,
                    Arc::new(StringArray::from_iter_values(names.iter())) as ArrayRef,
                ],
                None,
            );
            let batch = RecordBatch::try_new(
                schema(records.classes()),
                vec![Arc::new(image), Arc::new(Int64Array::from(labels))],
            )?;
            writer.write(&batch).map_err(pq)?;
        }
        let file = writer.into_inner().map_err(pq)?;
        written.push(atomic.commit(file)?);
    }
    Ok(written)
}
