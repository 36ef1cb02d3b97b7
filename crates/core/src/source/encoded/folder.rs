//! Image-folder source, torchvision's ImageFolder: `root/<class>/**/*.png|jpg|jpeg`, labels
//! from the sorted class names, the files of each class at any depth in torchvision's order; a
//! class directory without images is an error, as there; `root/train/` and `root/test/` are
//! the splits when present.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{EncodedSplit, Record, RecordStore, StoreReader};
use crate::codec::probe_shape;
use crate::error::{Error, RecordId, Result};
use crate::source::Part;
use crate::source::{Dataset, DatasetOptions, Kind, Records, SourceFormat};
use crate::transforms::Transforms;

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

/// The class directories of `root`, sorted by name.
pub(crate) fn class_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    Ok(sorted_entries(root)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect())
}

/// Every image file under a class directory, at any depth, in torchvision's order: by the
/// directory's path, then by name (`sorted(os.walk(dir, followlinks=True))`).
fn images_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found: Vec<(String, String, PathBuf)> = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in sorted_entries(&d)? {
            if entry.is_dir() {
                stack.push(entry);
            } else if is_image(&entry) {
                let name = entry
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into();
                found.push((d.to_string_lossy().into_owned(), name, entry));
            }
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, _, p)| p).collect())
}

/// An image folder, as [`crate::source::FORMATS`] lists it.
pub(crate) const FORMAT: SourceFormat = SourceFormat {
    name: "an image folder",
    looks_for: "<class>/*.png|jpg|jpeg, or train/<class>/...",
    help: "an image folder (<class>/*.png|jpg|jpeg, or train/ and test/ of them)",
    by_spec: |_| false,
    at_path: Some(looks_like),
    open,
};

/// Opens the folder `spec`: its class directories, or `train/` and `test/` of them.
fn open(spec: &str, opts: &DatasetOptions) -> Result<Dataset> {
    let root = Path::new(spec);
    let (train_root, test_root) = (root.join("train"), root.join("test"));
    let split_dirs = train_root.is_dir() && looks_like(&train_root);
    let (train, names) = open_split(
        if split_dirs { &train_root } else { root },
        None,
        opts,
        &opts.train_transforms,
    )?;
    let test = if split_dirs && test_root.is_dir() {
        let (t, _) = open_split(&test_root, Some(&names), opts, &opts.test_transforms)?;
        Some(Records(Kind::Encoded(Arc::new(t))))
    } else {
        None
    };
    Ok(Dataset {
        name: root.file_name().map_or_else(
            || root.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        train: Records(Kind::Encoded(Arc::new(train))),
        test,
    })
}

/// Whether `root` looks like an image folder: a class directory holding an image file.
pub(crate) fn looks_like(root: &Path) -> bool {
    let has_images = |d: &Path| sorted_entries(d).is_ok_and(|v| v.iter().any(|p| is_image(p)));
    class_dirs(root).is_ok_and(|dirs| {
        dirs.iter().any(|d| {
            has_images(d) || class_dirs(d).is_ok_and(|sub| sub.iter().any(|s| has_images(s)))
        })
    })
}

/// Indexes one split. `classes` fixes the class names (the test split uses the training
/// split's); a file is listed even when it cannot be read, so that reading it is a counted,
/// named bad record rather than a silent gap.
pub(crate) fn open_split(
    root: &Path,
    classes: Option<&[String]>,
    opts: &DatasetOptions,
    transforms: &Transforms,
) -> Result<(EncodedSplit, Vec<String>)> {
    let dirs = class_dirs(root)?;
    let names: Vec<String> = match classes {
        Some(c) => c.to_vec(),
        None => dirs
            .iter()
            .map(|d| {
                d.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
    };
    let mut paths = Vec::new();
    let mut labels = Vec::new();
    let mut empty = Vec::new();
    let mut parts = Vec::new();
    for dir in &dirs {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Some(label) = names.iter().position(|n| *n == name) else {
            return Err(Error::BadSpec {
                spec: root.display().to_string(),
                detail: format!("class '{name}' is not among the training classes"),
            });
        };
        let files = images_under(dir)?;
        if files.is_empty() {
            empty.push(name);
        }
        labels.extend(std::iter::repeat_n(label as i64, files.len()));
        parts.push(Part {
            name: dir.display().to_string(),
            rows: paths.len()..paths.len() + files.len(),
            files: files.clone(),
        });
        paths.extend(files);
    }
    // torchvision's ImageFolder refuses a class without images ("Found no valid file for the
    // classes …"): it would be a class no record has.
    if !empty.is_empty() {
        return Err(Error::BadSpec {
            spec: root.display().to_string(),
            detail: format!(
                "found no image (png, jpg, jpeg) for the class(es) {}: remove the empty class directories",
                empty.join(", ")
            ),
        });
    }
    if paths.is_empty() {
        return Err(Error::Empty {
            source_name: root.display().to_string(),
        });
    }
    let shape = paths
        .iter()
        .find_map(|p| std::fs::read(p).ok().and_then(|b| probe_shape(&b).ok()));
    let probed = shape.ok_or_else(|| Error::BadHeader {
        path: root.into(),
        detail: "no file in the folder decodes as an image".into(),
    })?;
    let origin = root.display().to_string();
    let split = EncodedSplit {
        shape: transforms.output_shape(&origin, probed)?,
        origin,
        probed,
        transforms: transforms.clone(),
        classes: opts.classes.unwrap_or(names.len()),
        store: Arc::new(FolderStore {
            files: Arc::new((paths, labels)),
            parts: Arc::new(parts),
        }),
    };
    Ok((split, names))
}

/// torchvision's ImageFolder: one file per record, labels from the sorted class directories.
#[derive(Debug)]
struct FolderStore {
    /// Every file of the split, and its label.
    files: Arc<(Vec<PathBuf>, Vec<i64>)>,
    /// One part per class directory.
    parts: Arc<Vec<Part>>,
}

impl RecordStore for FolderStore {
    fn len(&self) -> usize {
        self.files.1.len()
    }
    fn blocks(&self) -> Vec<usize> {
        vec![self.len()] // files are read one by one, in any order
    }
    fn parts(&self) -> Vec<Part> {
        self.parts.to_vec()
    }
    fn reading(&self) -> String {
        "folder".into()
    }
    fn reader(&self) -> Box<dyn StoreReader> {
        Box::new(FolderStore {
            files: self.files.clone(),
            parts: self.parts.clone(),
        })
    }
}

impl StoreReader for FolderStore {
    fn get(&mut self, index: usize) -> Result<Record<'_>> {
        let path = &self.files.0[index];
        Ok(Record {
            // A file holds one record: its row is 0.
            id: RecordId {
                file: path.display().to_string(),
                row: 0,
            },
            bytes: std::fs::read(path)
                .map(Cow::Owned)
                .map_err(|e| format!("cannot read: {e}")),
            label: Some(self.files.1[index]),
        })
    }
}
