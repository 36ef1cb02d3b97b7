//! IDX source: the MNIST / Fashion-MNIST file format, gzipped or raw, `train-*`/`t10k-*` pairs.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Dataset, DatasetOptions, Records, SourceFormat, Split};
use crate::error::{Error, Result};
use crate::shape::Shape;

/// Fashion-MNIST and MNIST both have ten classes; labels at or above this are bad records.
pub(crate) const FASHION_MNIST_CLASSES: usize = 10;

const IMAGES_MAGIC: u32 = 0x0000_0803; // unsigned bytes, 3 dimensions
const LABELS_MAGIC: u32 = 0x0000_0801; // unsigned bytes, 1 dimension

/// IDX files in a directory, as [`super::FORMATS`] lists them.
pub(crate) const FORMAT: SourceFormat = SourceFormat {
    name: "IDX files",
    looks_for: "train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]",
    help: "a directory of IDX files",
    by_spec: |_| false,
    at_path: Some(has_idx),
    open,
};

/// Whether `dir` holds an IDX training pair (the cheap test `SourceSpec::parse` uses).
fn has_idx(dir: &Path) -> bool {
    find_pair(dir, "train").is_ok_and(|p| p.is_some())
}

/// Opens the IDX directory `spec` with `opts`' class count (10 when not given) and transforms.
fn open(spec: &str, opts: &DatasetOptions) -> Result<Dataset> {
    open_dir(
        Path::new(spec),
        opts.classes.unwrap_or(FASHION_MNIST_CLASSES),
    )?
    .with_raw_transforms(opts)
}

/// Opens `dir`, which must hold `train-images*idx3*` and `train-labels*idx1*`, and optionally the
/// `t10k-` pair as the test split.
pub(crate) fn open_dir(dir: &Path, classes: usize) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(Error::MissingDir { path: dir.into() });
    }
    let train = find_pair(dir, "train")?.ok_or_else(|| Error::NoIdxFiles {
        path: dir.into(),
        expected: "train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]".into(),
    })?;
    let train = read_split(&train.0, &train.1, classes)?;
    let test = match find_pair(dir, "t10k")? {
        Some((images, labels)) => Some(Arc::new(read_split(&images, &labels, classes)?)),
        None => None,
    };
    let name = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    Ok(Dataset {
        name,
        train: train.into(),
        test: test.map(|t| Records(super::Kind::Raw(t))),
    })
}

/// Finds `<prefix>-images…idx3…` and `<prefix>-labels…idx1…` (both spellings seen in the wild:
/// `train-images-idx3-ubyte.gz` and `train-images.idx3-ubyte`). A lone half of a pair is an error.
fn find_pair(dir: &Path, prefix: &str) -> Result<Option<(PathBuf, PathBuf)>> {
    let mut images = None;
    let mut labels = None;
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort(); // deterministic pick if both .gz and raw copies exist: raw sorts first
    for path in names {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(&format!("{prefix}-images")) && name.contains("idx3") {
            images.get_or_insert(path);
        } else if name.starts_with(&format!("{prefix}-labels")) && name.contains("idx1") {
            labels.get_or_insert(path);
        }
    }
    match (images, labels) {
        (Some(i), Some(l)) => Ok(Some((i, l))),
        (None, None) => Ok(None),
        (Some(i), None) => Err(Error::NoIdxFiles {
            path: dir.into(),
            expected: format!("a labels file to go with {}", i.display()),
        }),
        (None, Some(l)) => Err(Error::NoIdxFiles {
            path: dir.into(),
            expected: format!("an images file to go with {}", l.display()),
        }),
    }
}

/// Reads one images/labels pair and validates magic numbers, dimensions, counts and labels.
pub(crate) fn read_split(images: &Path, labels: &Path, classes: usize) -> Result<Split> {
    let img = read_maybe_gz(images)?;
    let lab = read_maybe_gz(labels)?;
    parse_split(images, img, labels, lab, classes)
}

/// Parses an images file and a labels file already in memory (raw or gzipped), as
/// [`read_split`] does: the IDX fuzz target's entry point.
pub(crate) fn parse_bytes(images: &[u8], labels: &[u8], classes: usize) -> Result<Split> {
    let (img, lab) = (
        FileBytes::from_raw(images.to_vec()),
        FileBytes::from_raw(labels.to_vec()),
    );
    parse_split(
        Path::new("<images>"),
        img,
        Path::new("<labels>"),
        lab,
        classes,
    )
}

fn parse_split(
    images: &Path,
    img: FileBytes,
    labels: &Path,
    lab: FileBytes,
    classes: usize,
) -> Result<Split> {
    let (dims, payload) = parse_header(images, &img.bytes, IMAGES_MAGIC, "images, idx3", 3)?;
    let (n, h, w) = (dims[0], dims[1], dims[2]);
    if h == 0 || w == 0 {
        return Err(Error::BadHeader {
            path: images.into(),
            detail: format!("image size {h}x{w} has a zero dimension"),
        });
    }
    check_payload(images, payload, n, h * w, img.gzip_error.as_deref())?;
    let (ldims, lpayload) = parse_header(labels, &lab.bytes, LABELS_MAGIC, "labels, idx1", 1)?;
    check_payload(labels, lpayload, ldims[0], 1, lab.gzip_error.as_deref())?;
    if ldims[0] != n {
        return Err(Error::CountMismatch {
            images: images.into(),
            n_images: n,
            labels: labels.into(),
            n_labels: ldims[0],
        });
    }
    if n == 0 {
        return Err(Error::Empty {
            source_name: images.display().to_string(),
        });
    }
    if let Some((record, &label)) = lpayload
        .iter()
        .enumerate()
        .find(|(_, l)| **l as usize >= classes)
    {
        return Err(Error::LabelOutOfRange {
            path: labels.into(),
            record,
            label: label as i64,
            classes,
        });
    }
    let header_len = img.bytes.len() - payload.len();
    let mut pixels = img.bytes;
    pixels.drain(..header_len); // one memmove instead of a second 47 MB buffer
    Ok(Split {
        origin: images.display().to_string(),
        shape: Shape {
            channels: 1,
            height: h,
            width: w,
        },
        pixels,
        labels: lpayload.iter().map(|&l| l as i64).collect(),
        classes,
        work: 0,
    })
}

struct FileBytes {
    bytes: Vec<u8>,
    /// Set when a gzip stream ended early; `bytes` then holds what was decompressed before it.
    gzip_error: Option<String>,
}

fn read_maybe_gz(path: &Path) -> Result<FileBytes> {
    Ok(FileBytes::from_raw(
        fs::read(path).map_err(|e| Error::io(path, e))?,
    ))
}

impl FileBytes {
    /// Gunzips when the bytes start with the gzip magic.
    fn from_raw(raw: Vec<u8>) -> FileBytes {
        if raw.starts_with(&[0x1f, 0x8b]) {
            let mut bytes = Vec::with_capacity(raw.len() * 4);
            let gzip_error = flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut bytes)
                .err()
                .map(|e| e.to_string());
            FileBytes { bytes, gzip_error }
        } else {
            FileBytes {
                bytes: raw,
                gzip_error: None,
            }
        }
    }
}

fn parse_header<'a>(
    path: &Path,
    bytes: &'a [u8],
    magic: u32,
    what: &'static str,
    ndims: usize,
) -> Result<(Vec<usize>, &'a [u8])> {
    let header = 4 + 4 * ndims;
    if bytes.len() < 4 {
        return Err(Error::BadHeader {
            path: path.into(),
            detail: format!(
                "file is {} bytes, too short for an IDX magic number",
                bytes.len()
            ),
        });
    }
    let found = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes"));
    if found != magic {
        return Err(Error::BadMagic {
            path: path.into(),
            found,
            expected: magic,
            what,
        });
    }
    if bytes.len() < header {
        return Err(Error::BadHeader {
            path: path.into(),
            detail: format!("header needs {header} bytes, file has {}", bytes.len()),
        });
    }
    let dims = (0..ndims)
        .map(|d| {
            u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().expect("4 bytes")) as usize
        })
        .collect();
    Ok((dims, &bytes[header..]))
}

fn check_payload(
    path: &Path,
    payload: &[u8],
    records: usize,
    record_bytes: usize,
    gzip_error: Option<&str>,
) -> Result<()> {
    // Found by fuzzing: header dimensions are untrusted, and their product can overflow.
    let Some(want) = records.checked_mul(record_bytes) else {
        return Err(Error::BadHeader {
            path: path.into(),
            detail: format!(
                "header announces {records} records of {record_bytes} bytes, more than can exist"
            ),
        });
    };
    if payload.len() < want {
        return Err(Error::Truncated {
            path: path.into(),
            records,
            record_bytes,
            got_bytes: payload.len(),
            first_incomplete: payload.len() / record_bytes,
        });
    }
    if let Some(e) = gzip_error {
        return Err(Error::BadHeader {
            path: path.into(),
            detail: format!("gzip stream is corrupt: {e}"),
        });
    }
    if payload.len() > want {
        return Err(Error::BadHeader {
            path: path.into(),
            detail: format!(
                "{} bytes follow the {records} records the header announces",
                payload.len() - want
            ),
        });
    }
    Ok(())
}

/// Encodes a split as IDX bytes (uncompressed): the test suite's and `data/`'s writer.
pub(crate) fn encode(split: &Split) -> (Vec<u8>, Vec<u8>) {
    let s = split.shape;
    let mut images = Vec::with_capacity(16 + split.pixels.len());
    images.extend_from_slice(&IMAGES_MAGIC.to_be_bytes());
    for d in [split.len(), s.height, s.width] {
        images.extend_from_slice(&(d as u32).to_be_bytes());
    }
    images.extend_from_slice(&split.pixels);
    let mut labels = Vec::with_capacity(8 + split.len());
    labels.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    labels.extend_from_slice(&(split.len() as u32).to_be_bytes());
    labels.extend(split.labels.iter().map(|&l| l as u8));
    (images, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Split {
        Split {
            origin: "tiny".into(),
            shape: Shape {
                channels: 1,
                height: 2,
                width: 3,
            },
            pixels: (0..12).collect(),
            labels: vec![3, 7],
            classes: 10,
            work: 0,
        }
    }

    #[test]
    fn encode_then_read_round_trips_raw_and_gzipped() {
        let dir = tempfile::tempdir().unwrap();
        let (img, lab) = encode(&tiny());
        fs::write(dir.path().join("train-images-idx3-ubyte"), &img).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &lab).unwrap();
        fs::write(
            dir.path().join("train-labels-idx1-ubyte.gz"),
            gz.finish().unwrap(),
        )
        .unwrap();
        let ds = open_dir(dir.path(), 10).unwrap();
        let train = ds.train.as_raw().unwrap();
        assert_eq!(train.pixels, tiny().pixels);
        assert_eq!(train.labels, vec![3, 7]);
        assert_eq!(train.shape.plane(), 6);
        assert!(ds.test.is_none());
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (mut img, lab) = encode(&tiny());
        img.push(0);
        fs::write(dir.path().join("train-images-idx3-ubyte"), &img).unwrap();
        fs::write(dir.path().join("train-labels-idx1-ubyte"), &lab).unwrap();
        let err = open_dir(dir.path(), 10).unwrap_err().to_string();
        assert!(err.contains("1 bytes follow"), "{err}");
    }
}
