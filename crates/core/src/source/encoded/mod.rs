//! Encoded records: PNG/JPEG bytes in Parquet shards or files in an image folder, decoded batch
//! by batch. A split holds only an index of its records; a [`RecordStore`] (Parquet or folder)
//! knows where their bytes live, and a worker's [`StoreReader`] fetches them.
//!
//! Dependencies point one way: `parquet` and `folder` implement the store and use the codec to
//! probe shapes; this module names neither of them in its types.

pub(crate) mod folder;
pub(crate) mod parquet;

use std::borrow::Cow;
use std::fmt::Debug;
use std::sync::Arc;

use super::Part;
use crate::error::{RecordId, Result};
use crate::shape::Shape;
use crate::transforms::Transforms;

/// Where a split's encoded records live.
pub(crate) trait RecordStore: Debug + Send + Sync {
    /// Records in the split.
    fn len(&self) -> usize;
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
pub(crate) trait StoreReader: Send {
    /// Record `index` of the split (`0..len`). The error is the store's own failure (a shard
    /// that cannot be read); a record that is there but unusable is an `Err` in [`Record::bytes`].
    fn get(&mut self, index: usize) -> Result<Record<'_>>;
}

/// One record as the store has it: where it lives, its bytes and its label.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub id: RecordId,
    /// The encoded image, or why there is none (a null cell, an unreadable file).
    pub bytes: std::result::Result<Cow<'a, [u8]>, String>,
    /// `None` for a null label.
    pub label: Option<i64>,
}

/// A split whose records are encoded images, decoded batch by batch by the decode operator.
/// Only the record index lives in memory; the bytes stay on disk until a worker needs them.
#[derive(Clone, Debug)]
pub(crate) struct EncodedSplit {
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
    pub(crate) fn len(&self) -> usize {
        self.store.len()
    }
    pub(crate) fn blocks(&self) -> Vec<usize> {
        self.store.blocks()
    }

    /// The same records through other transforms, with the shape they give.
    pub(crate) fn with_transforms(&self, transforms: Transforms) -> Result<EncodedSplit> {
        Ok(EncodedSplit {
            shape: transforms.output_shape(&self.origin, self.probed)?,
            transforms,
            ..self.clone()
        })
    }
}
