//! flowload-core: training data as a streaming dataflow, without libtorch.
//!
//! The front door is three steps, each one type:
//!
//! 1. [`Dataset::open`] a data set: a directory of IDX files, Parquet shards, an image folder,
//!    or `synthetic:…` ([`FORMATS`]), with its transforms ([`DatasetOptions`]);
//! 2. [`Stats::pass`] over its training split for per-channel statistics, through the
//!    statistics cache ([`StatsStore`]) when given one;
//! 3. [`Loader::builder`] over its records: batch size, shuffle, epochs, workers,
//!    normalization, bad records, prefetch, a cluster; then `build()` gives the batches in
//!    order, the same for every worker count and process layout.
//!
//! ```
//! use flowload_core::{Dataset, DatasetOptions, Loader, Stats, Transforms, Workers};
//!
//! let options = DatasetOptions {
//!     train_transforms: Transforms::new(&["random_crop:24,padding=2".into(), "hflip".into()], 0)?,
//!     ..DatasetOptions::default()
//! };
//! let data = Dataset::open("synthetic:images=200,channels=3,size=24x24", &options)?;
//! let stats = Stats::pass(&data.train).workers(2).run()?.stats;
//! let loader = Loader::builder(data.train.clone())
//!     .batch_size(64)
//!     .shuffle(0)
//!     .epochs(3)
//!     .workers(Workers::Auto)
//!     .normalize(&stats)
//!     .build()?;
//! for batch in loader {
//!     let batch = batch?; // an Arrow RecordBatch: image FixedSizeList<f32>[C·H·W], label i64
//!     assert_eq!(batch.shape.len(), 3 * 24 * 24);
//! }
//! # Ok::<(), flowload_core::Error>(())
//! ```
//!
//! Inside, in flow order: a source (`source`) → transforms and codecs (`transforms`, `codec`)
//! → timely operators (`ops`: plan → decode → stats → normalize → batch → queue or wire) → a
//! loader mode (`loader`), one process or across a [`cluster`]. Statistics are exact integer
//! sums per part, kept in an on-disk cache (`stats`) under content keys (`content`).
//! [`Dataset::convert`] writes any data set as Parquet shards. [`testing`] opens a few
//! internals to tests, fuzz targets and benchmarks.

pub mod cluster;
mod codec;
mod content;
mod convert;
mod error;
mod fs;
mod loader;
mod machine;
mod ops;
mod position;
mod shape;
mod source;
mod stats;
pub mod testing;
mod transforms;

/// The README's Rust blocks, run as doctests: its example of the loader stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

pub use content::file_key;
pub use convert::ConvertOptions;
pub use error::{BadRecord, ClusterError, Error, OnBadRecord, Peer, RecordId, Result};
pub use fs::{AtomicFile, listing};
pub use loader::stats::{PassReport, StatsOutcome, StatsPass, StatsSource};
pub use loader::{Limits, Loader, LoaderBuilder, Position, Settled, Tuning, Workers};
pub use machine::{cores, physical_memory};
pub use ops::batch::Batch;
pub use ops::decode::Stopper;
pub use ops::wire::WireFormat;
pub use shape::{MAX_DECODE_BYTES, Shape};
pub use source::{Dataset, DatasetOptions, FORMATS, Records, SourceFormat, Split, formats_help};
pub use stats::{CACHE_ENV, CacheSetting, Stats, StatsStore};
pub use transforms::{TRANSFORMS, TransformKind, Transforms, transforms_help};
