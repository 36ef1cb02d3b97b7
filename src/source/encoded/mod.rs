//! Encoded records: PNG/JPEG bytes in Parquet shards or files in an image folder, decoded batch
//! by batch. A split holds only an index of its records; a [`RecordStore`] (Parquet or folder)
//! knows where their bytes live, and a worker's [`StoreReader`] fetches them.
//!
//! Dependencies point one way: `parquet` and `folder` implement the store and use `image` to
//! probe shapes; this module names neither of them in its types.

pub mod folder;
pub mod image;
pub mod jpeg;
pub mod parquet;

use std::borrow::Cow;
use std::fmt::Debug;
use std::sync::Arc;

use super::transforms::Transforms;
use super::{Part, Shape};
use crate::error::{RecordId, Result};

/// Options shared by the encoded sources.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct EncodedOptions {
    /// `--resize HxW`: decode every image to this size instead of requiring one size. It is
    /// also the first of both splits' transforms.
    pub resize: Option<(usize, usize)>,
    /// The training split's transforms (`train_transforms`, `--augment`).
    pub train_transforms: Transforms,
    /// The test split's (`test_transforms`, `--test-transforms`): deterministic only.
    pub test_transforms: Transforms,
    /// Parquet column names; default `image` and `label`.
    pub image_column: Option<String>,
    pub label_column: Option<String>,
    /// The class count; default: the largest label + 1 (Parquet), the class folders (ImageFolder).
    pub classes: Option<usize>,
}

/// Where a split's encoded records live.
pub trait RecordStore: Debug + Send + Sync {
    /// Records in the split.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Blocks that the per-epoch shuffle keeps together (Parquet row groups, which are read
    /// whole); one block means records can be read in any order.
    fn blocks(&self) -> Vec<usize>;
    /// Rows per shuffle window: [`super::SHUFFLE_WINDOW`], fewer for large records.
    fn window(&self) -> usize {
        super::SHUFFLE_WINDOW
    }
    /// The parts the statistics cache keeps sums for (shards, class directories), in record
    /// order, each with the files it reads.
    fn parts(&self) -> Vec<Part>;
    /// How records are read beyond their bytes (the columns taken), for the cache's key.
    fn reading(&self) -> String;
    /// A reader for one worker, with whatever it caches.
    fn reader(&self) -> Box<dyn StoreReader>;
}

/// One worker's access to a [`RecordStore`].
pub trait StoreReader: Send {
    /// Record `index` of the split (`0..len`). The error is the store's own failure (a shard
    /// that cannot be read); a record that is there but unusable is an `Err` in [`Record::bytes`].
    fn get(&mut self, index: usize) -> Result<Record<'_>>;
}

/// One record as the store has it: where it lives, its bytes and its label.
#[derive(Debug)]
pub struct Record<'a> {
    pub id: RecordId,
    /// The encoded image, or why there is none (a null cell, an unreadable file).
    pub bytes: std::result::Result<Cow<'a, [u8]>, String>,
    /// `None` for a null label.
    pub label: Option<i64>,
}

/// A split whose records are encoded images, decoded batch by batch by the decode operator.
/// Only the record index lives in memory; the bytes stay on disk until a worker needs them.
#[derive(Clone, Debug)]
pub struct EncodedSplit {
    pub origin: String,
    /// Every record's shape after its transforms.
    pub shape: Shape,
    /// The first image's own shape, which `shape` was worked out from.
    pub probed: Shape,
    /// What each record goes through after decoding (`--resize` first, when given).
    pub transforms: Transforms,
    pub classes: usize,
    pub store: Arc<dyn RecordStore>,
}

impl EncodedSplit {
    pub fn len(&self) -> usize {
        self.store.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn blocks(&self) -> Vec<usize> {
        self.store.blocks()
    }

    /// The same records through other transforms, with the shape they give.
    pub fn with_transforms(&self, transforms: Transforms) -> Result<EncodedSplit> {
        Ok(EncodedSplit {
            shape: transforms.output_shape(&self.origin, self.probed)?,
            transforms,
            ..self.clone()
        })
    }
}
