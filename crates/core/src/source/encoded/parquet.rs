//! Parquet source: Hugging Face style shards (`image: {bytes, path}` or binary, `label: int`),
//! indexed by row group at open, read one row group at a time while streaming.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, BinaryArray, Int64Array, RecordBatch, StructArray};
use arrow::datatypes::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};

use std::borrow::Cow;
use std::collections::VecDeque;

use super::{EncodedSplit, Record, RecordStore, StoreReader};
use crate::codec::probe_shape;
use crate::error::{Error, RecordId, Result};
use crate::shape::Shape;
use crate::source::{Dataset, DatasetOptions, Kind, Records, SourceFormat};
use crate::source::{Part, SHUFFLE_WINDOW, SHUFFLE_WINDOW_BYTES};
use crate::transforms::Transforms;

/// One shard: its path and footer, parsed once.
#[derive(Debug)]
struct Shard {
    pub path: PathBuf,
    meta: ArrowReaderMetadata,
    image_root: usize,
    label_root: usize,
}

/// One row group of one shard, and where its rows sit in the split's record numbering.
#[derive(Clone, Debug)]
struct RowGroupRef {
    shard: Arc<Shard>,
    index: usize,
    rows: usize,
    /// Uncompressed bytes, as the footer says: what the group takes in memory once read.
    bytes: usize,
    /// Split-wide index of the row group's first row.
    first: usize,
    /// Index of the row group's first row within its shard, for error messages.
    shard_row: usize,
}

/// A row group's two columns, in memory while a worker needs them.
#[derive(Debug)]
struct RowGroupData {
    images: BinaryArray,
    /// Validity of the `image` struct itself (a null struct is a null image).
    struct_valid: Option<arrow::buffer::NullBuffer>,
    labels: Int64Array,
}

impl RowGroupData {
    fn image(&self, i: usize) -> Option<&[u8]> {
        let struct_ok = self.struct_valid.as_ref().is_none_or(|n| n.is_valid(i));
        (struct_ok && self.images.is_valid(i)).then(|| self.images.value(i))
    }
    fn label(&self, i: usize) -> Option<i64> {
        self.labels.is_valid(i).then(|| self.labels.value(i))
    }
}

fn err(path: &Path, detail: impl Into<String>) -> Error {
    Error::ParquetLayout {
        path: path.into(),
        detail: detail.into(),
    }
}

/// Finds the column roots and checks their types.
fn open_shard(path: &Path, image_column: &str, label_column: &str) -> Result<Shard> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = ArrowReaderMetadata::load(&file, Default::default())
        .map_err(|e| Error::parquet(path, e))?;
    let schema = meta.schema().clone();
    let find = |name: &str| {
        schema.index_of(name).map_err(|_| {
            let have: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            err(
                path,
                format!("no column '{name}' (columns: {})", have.join(", ")),
            )
        })
    };
    let (image_root, label_root) = (find(image_column)?, find(label_column)?);
    let is_binary = |t: &DataType| {
        matches!(
            t,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        )
    };
    match schema.field(image_root).data_type() {
        t if is_binary(t) => {}
        DataType::Struct(fields)
            if fields
                .find("bytes")
                .is_some_and(|(_, f)| is_binary(f.data_type())) => {}
        other => {
            return Err(err(
                path,
                format!(
                    "column '{image_column}' is {other}; expected binary image bytes or a struct with a binary 'bytes' field"
                ),
            ));
        }
    }
    if !schema.field(label_root).data_type().is_integer() {
        return Err(err(
            path,
            format!(
                "column '{label_column}' is {}, expected an integer label",
                schema.field(label_root).data_type()
            ),
        ));
    }
    Ok(Shard {
        path: path.into(),
        meta,
        image_root,
        label_root,
    })
}

/// Reads the given root columns of one row group, as one record batch (columns in file order).
fn read_columns(group: &RowGroupRef, roots: &[usize]) -> Result<RecordBatch> {
    let shard = &group.shard;
    let path = &shard.path;
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, shard.meta.clone());
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
    let reader = builder
        .with_row_groups(vec![group.index])
        .with_projection(mask)
        .with_batch_size(group.rows.max(1))
        .build()
        .map_err(|e| Error::parquet(path, e))?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|source| Error::ParquetRead {
            path: path.into(),
            what: format!("row group {}", group.index),
            source,
        })?;
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| err(path, format!("row group {} is empty", group.index)))?;
    Ok(arrow::compute::concat_batches(&schema, &batches)?)
}

fn labels_of(column: &arrow::array::ArrayRef) -> Result<Int64Array> {
    Ok(arrow::compute::cast(column, &DataType::Int64)?
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("cast to Int64")
        .clone())
}

/// Reads one row group's label column alone: the class-count scan at open need not read images.
fn read_labels(group: &RowGroupRef) -> Result<Int64Array> {
    labels_of(read_columns(group, &[group.shard.label_root])?.column(0))
}

/// Reads one row group's image and label columns.
fn read_row_group(group: &RowGroupRef) -> Result<RowGroupData> {
    let shard = &group.shard;
    let path = &shard.path;
    let batch = read_columns(group, &[shard.image_root, shard.label_root])?;
    // Projection keeps the columns in file order.
    let (img_pos, label_pos) = if shard.image_root < shard.label_root {
        (0, 1)
    } else {
        (1, 0)
    };
    let image = batch.column(img_pos);
    let (bytes, struct_valid) = match image.data_type() {
        DataType::Struct(_) => {
            let s = image
                .as_any()
                .downcast_ref::<StructArray>()
                .expect("struct type");
            (
                s.column_by_name("bytes").expect("checked at open").clone(),
                s.nulls().cloned(),
            )
        }
        _ => (image.clone(), None),
    };
    let images = arrow::compute::cast(&bytes, &DataType::Binary)?
        .as_any()
        .downcast_ref::<BinaryArray>()
        .expect("cast to Binary")
        .clone();
    let labels = labels_of(batch.column(label_pos))?;
    if images.len() != group.rows {
        return Err(err(
            path,
            format!(
                "row group {} has {} rows, its footer says {}",
                group.index,
                images.len(),
                group.rows
            ),
        ));
    }
    Ok(RowGroupData {
        images,
        struct_valid,
        labels,
    })
}

/// Parquet shards, as [`crate::source::FORMATS`] lists them.
pub(crate) const FORMAT: SourceFormat = SourceFormat {
    name: "Parquet shards",
    looks_for: "*.parquet, or data/*.parquet",
    help: "Parquet shards (a .parquet file, a directory of them, or a glob)",
    by_spec: |spec| spec.contains(['*', '?', '[']),
    at_path: Some(|path| {
        if path.is_file() {
            path.extension().is_some_and(|e| e == "parquet")
        } else {
            files_of(&path.to_string_lossy()).is_ok_and(|f| !f.is_empty())
        }
    }),
    open,
};

/// Opens the shards `spec` names: `test-*` shards are the test split, the rest the training
/// split.
fn open(spec: &str, opts: &DatasetOptions) -> Result<Dataset> {
    let files = files_of(spec)?;
    check_complete(&files)?;
    let (train, test) = split_by_name(files);
    if train.is_empty() {
        return Err(Error::BadSpec {
            spec: spec.into(),
            detail: "no training shards (*.parquet not named test-*)".into(),
        });
    }
    let train = open_split(&train, opts, &opts.train_transforms, None, None)?;
    let test = if test.is_empty() {
        None
    } else {
        let split = open_split(
            &test,
            opts,
            &opts.test_transforms,
            Some(train.probed),
            Some(train.classes),
        )?;
        Some(Records(Kind::Encoded(Arc::new(split))))
    };
    Ok(Dataset {
        name: Path::new(spec)
            .file_name()
            .map_or_else(|| spec.to_string(), |n| n.to_string_lossy().into_owned()),
        train: Records(Kind::Encoded(Arc::new(train))),
        test,
    })
}

/// The Parquet files a path names: a file, a directory (searched, with its `data/`, for
/// `*.parquet`), or a glob.
pub(crate) fn files_of(spec: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if spec.contains(['*', '?', '[']) {
        let paths = glob::glob(spec).map_err(|e| Error::BadSpec {
            spec: spec.into(),
            detail: e.to_string(),
        })?;
        files.extend(paths.filter_map(|p| p.ok()));
    } else {
        let path = Path::new(spec);
        if path.is_file() {
            files.push(path.into());
        } else {
            for dir in [path.to_path_buf(), path.join("data")] {
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    files.extend(
                        entries
                            .filter_map(|e| e.ok().map(|e| e.path()))
                            .filter(|p| p.extension().is_some_and(|e| e == "parquet")),
                    );
                }
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Splits shard files into train and test by the usual names (`train-*`, `test-*`); files
/// named neither are training data when no file is named `train-*`.
pub(crate) fn split_by_name(files: Vec<PathBuf>) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let name = |p: &PathBuf| {
        p.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    };
    let test: Vec<PathBuf> = files
        .iter()
        .filter(|p| name(p).starts_with("test"))
        .cloned()
        .collect();
    let named_train: Vec<PathBuf> = files
        .iter()
        .filter(|p| name(p).starts_with("train"))
        .cloned()
        .collect();
    let train = if named_train.is_empty() {
        files
            .into_iter()
            .filter(|p| !name(p).starts_with("test"))
            .collect()
    } else {
        named_train
    };
    (train, test)
}

/// Indexes `files` as one split: footers and row-group sizes, the shape from the first image,
/// and the class count.
pub(crate) fn open_split(
    files: &[PathBuf],
    opts: &DatasetOptions,
    transforms: &Transforms,
    probed_hint: Option<Shape>,
    classes_hint: Option<usize>,
) -> Result<EncodedSplit> {
    let image_column = opts.image_column.clone().unwrap_or_else(|| "image".into());
    let label_column = opts.label_column.clone().unwrap_or_else(|| "label".into());
    let mut row_groups = Vec::new();
    let mut first = 0;
    for path in files {
        let shard = Arc::new(open_shard(path, &image_column, &label_column)?);
        let mut shard_row = 0;
        for (index, rg) in shard.meta.metadata().row_groups().iter().enumerate() {
            let rows = rg.num_rows() as usize;
            if rows > 0 {
                row_groups.push(RowGroupRef {
                    shard: shard.clone(),
                    index,
                    rows,
                    bytes: rg.total_byte_size().max(0) as usize,
                    first,
                    shard_row,
                });
                first += rows;
                shard_row += rows;
            }
        }
    }
    let origin = match files {
        [one] => one.display().to_string(),
        [first, ..] => format!("{} (+{} shards)", first.display(), files.len() - 1),
        [] => String::from("(no files)"),
    };
    if row_groups.is_empty() {
        return Err(Error::Empty {
            source_name: origin,
        });
    }
    let probed = match probed_hint {
        Some(s) => s,
        None => first_shape(&row_groups)?,
    };
    let label_column = opts.label_column.as_deref().unwrap_or("label");
    let classes = match opts.classes.or(classes_hint) {
        Some(c) => c,
        None => match class_label(&row_groups[0].shard, label_column) {
            Some(c) => c,
            None => classes_from_labels(&row_groups)?,
        },
    };
    Ok(EncodedSplit {
        shape: transforms.output_shape(&origin, probed)?,
        origin,
        probed,
        transforms: transforms.clone(),
        classes,
        store: Arc::new(ParquetStore {
            row_groups,
            columns: format!("parquet image={image_column} label={label_column}"),
        }),
    })
}

/// Hugging Face style Parquet shards, read one row group at a time.
#[derive(Debug)]
struct ParquetStore {
    row_groups: Vec<RowGroupRef>,
    /// The columns read, as the statistics cache's key names them.
    columns: String,
}

impl RecordStore for ParquetStore {
    fn len(&self) -> usize {
        self.row_groups.last().map_or(0, |g| g.first + g.rows)
    }
    fn blocks(&self) -> Vec<usize> {
        self.row_groups.iter().map(|g| g.rows).collect()
    }
    fn window(&self) -> usize {
        let bytes: usize = self.row_groups.iter().map(|g| g.bytes).sum();
        let per_row = bytes / self.len().max(1);
        (SHUFFLE_WINDOW_BYTES / per_row.max(1)).clamp(1, SHUFFLE_WINDOW)
    }
    fn parts(&self) -> Vec<Part> {
        // One part per shard; a shard's row groups are consecutive.
        let mut parts: Vec<Part> = Vec::new();
        for g in &self.row_groups {
            match parts.last_mut() {
                Some(p) if p.files[0] == g.shard.path => p.rows.end = g.first + g.rows,
                _ => parts.push(Part {
                    name: g.shard.path.display().to_string(),
                    rows: g.first..g.first + g.rows,
                    files: vec![g.shard.path.clone()],
                }),
            }
        }
        parts
    }
    fn reading(&self) -> String {
        self.columns.clone()
    }
    fn reader(&self) -> Box<dyn StoreReader> {
        // A batch's rows come from one or two shuffle windows, so memory stays bounded by the
        // window, not by the data set.
        let smallest = self
            .row_groups
            .iter()
            .map(|g| g.rows)
            .min()
            .unwrap_or(1)
            .max(1);
        Box::new(ParquetReader {
            row_groups: self.row_groups.clone(),
            cache: VecDeque::new(),
            capacity: 2 * self.window().div_ceil(smallest) + 2,
        })
    }
}

/// A worker's view of the shards: the row groups it read last, most recent first.
struct ParquetReader {
    row_groups: Vec<RowGroupRef>,
    cache: VecDeque<(usize, RowGroupData)>,
    capacity: usize,
}

impl StoreReader for ParquetReader {
    fn get(&mut self, index: usize) -> Result<Record<'_>> {
        let g = self
            .row_groups
            .partition_point(|g| g.first + g.rows <= index);
        match self.cache.iter().position(|(i, _)| *i == g) {
            Some(0) => {}
            Some(pos) => {
                let hit = self.cache.remove(pos).expect("position is valid");
                self.cache.push_front(hit);
            }
            None => {
                let data = read_row_group(&self.row_groups[g])?;
                self.cache.push_front((g, data));
                self.cache.truncate(self.capacity);
            }
        }
        let group = &self.row_groups[g];
        let data = &self.cache[0].1;
        let i = index - group.first;
        Ok(Record {
            id: RecordId {
                file: group.shard.path.display().to_string(),
                row: (group.shard_row + i) as u64,
            },
            bytes: data
                .image(i)
                .map(Cow::Borrowed)
                .ok_or_else(|| "null image".to_string()),
            label: data.label(i),
        })
    }
}

/// The class count of a Hugging Face `ClassLabel` feature, from the `huggingface` schema
/// metadata that `datasets` (and `flowload convert`) write: its `names`, or `num_classes`.
fn class_label(shard: &Shard, label_column: &str) -> Option<usize> {
    let meta = shard.meta.schema().metadata().get("huggingface")?;
    let json: serde_json::Value = serde_json::from_str(meta).ok()?;
    let feature = json.get("info")?.get("features")?.get(label_column)?;
    if feature.get("_type")?.as_str()? != "ClassLabel" {
        return None;
    }
    match feature.get("names").and_then(|n| n.as_array()) {
        Some(names) => Some(names.len()),
        None => feature.get("num_classes")?.as_u64().map(|n| n as usize),
    }
}

/// The class count from the labels themselves: the largest label + 1, accepted only when every
/// class from 0 to it occurs. One corrupt label of 1000 among 0..9 would otherwise train a
/// 1001-class network; then the error names the row with the largest label and a missing class.
fn classes_from_labels(groups: &[RowGroupRef]) -> Result<usize> {
    let mut seen = std::collections::HashSet::new();
    // The largest label, and where it is.
    let mut max: Option<(i64, &RowGroupRef, usize)> = None;
    for g in groups {
        for (i, label) in read_labels(g)?.iter().enumerate() {
            let Some(label) = label else { continue };
            seen.insert(label);
            if max.is_none_or(|(m, _, _)| label > m) {
                max = Some((label, g, i));
            }
        }
    }
    let Some((max, group, i)) = max.filter(|(m, _, _)| *m >= 0) else {
        return Ok(1); // every label is null or negative: every record is a bad record
    };
    match (0..max).find(|c| !seen.contains(c)) {
        None => Ok(max as usize + 1),
        Some(missing) => Err(Error::ClassCount {
            record: RecordId {
                file: group.shard.path.display().to_string(),
                row: (group.shard_row + i) as u64,
            },
            label: max,
            missing,
        }),
    }
}

/// `train-00001-of-00003.parquet` → `("train", 1, 3)`: the prefix, the shard's index and the
/// set's count, for a name of a numbered shard set; `None` for any other name.
pub(crate) fn numbered_shard(name: &str) -> Option<(&str, usize, usize)> {
    let (head, count) = name.strip_suffix(".parquet")?.rsplit_once("-of-")?;
    let (prefix, index) = head.rsplit_once('-')?;
    let number = |d: &str| {
        (!d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .then(|| d.parse::<usize>().ok())
            .flatten()
    };
    Some((prefix, number(index)?, number(count)?))
}

/// Checks that every shard of a numbered set is there: `train-00001-of-00003.parquet` needs
/// `00000` and `00002` of `00003` beside it, and one set must not be mixed with another
/// (`-of-00006` beside `-of-00003`).
pub(crate) fn check_complete(files: &[PathBuf]) -> Result<()> {
    use std::collections::BTreeMap;
    // (directory, prefix) → count → indices present
    let mut sets: BTreeMap<(PathBuf, String), BTreeMap<usize, Vec<usize>>> = BTreeMap::new();
    for f in files {
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        let Some((prefix, index, count)) = numbered_shard(&name) else {
            continue;
        };
        let dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
        sets.entry((dir, prefix.to_string()))
            .or_default()
            .entry(count)
            .or_default()
            .push(index);
    }
    for ((dir, prefix), counts) in sets {
        if counts.len() > 1 {
            let of: Vec<String> = counts.keys().map(|c| format!("-of-{c:05}")).collect();
            return Err(Error::BadSpec {
                spec: dir
                    .join(format!("{prefix}-*.parquet"))
                    .display()
                    .to_string(),
                detail: format!(
                    "shards of different sets are mixed ({}): convert into an empty directory",
                    of.join(", ")
                ),
            });
        }
        for (count, indices) in counts {
            if let Some(missing) = (0..count).find(|i| !indices.contains(i)) {
                return Err(Error::MissingShard {
                    path: dir.join(format!("{prefix}-{missing:05}-of-{count:05}.parquet")),
                    count,
                });
            }
        }
    }
    Ok(())
}

fn first_shape(groups: &[RowGroupRef]) -> Result<Shape> {
    for g in groups {
        let data = read_row_group(g)?;
        if let Some((i, bytes)) = (0..g.rows).find_map(|i| data.image(i).map(|b| (i, b))) {
            return probe_shape(bytes).map_err(|e| err(&g.shard.path, format!("row {}: {e}", i)));
        }
    }
    Err(err(&groups[0].shard.path, "every image is null"))
}
