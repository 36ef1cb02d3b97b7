//! Internals opened to tests, fuzz targets, examples and benchmarks: encoders that make
//! fixtures, the decoders a fuzz target drives, and the constants tests check against. Not
//! part of the loader's API: use [`crate::Dataset`], [`crate::Stats`] and [`crate::Loader`].

use std::sync::Arc;

use crate::error::Result;
use crate::shape::Shape;
use crate::source::{Kind, Records, Split};
use crate::transforms::Transforms;

pub use crate::codec::Augmenter;
pub use crate::codec::jpeg::{JpegDecoder, Window};
pub use crate::codec::png::encode_png;
pub use crate::source::{SHUFFLE_WINDOW, SHUFFLE_WINDOW_BYTES};
pub use crate::transforms::SampleKey;

/// Parses an IDX images file and labels file held in memory (raw or gzipped), as opening an
/// IDX directory does: the IDX fuzz target's entry point.
pub fn parse_idx(images: &[u8], labels: &[u8], classes: usize) -> Result<Split> {
    crate::source::idx::parse_bytes(images, labels, classes)
}

/// A raw split as IDX files: `(images, labels)`, uncompressed.
pub fn encode_idx(split: &Split) -> (Vec<u8>, Vec<u8>) {
    crate::source::idx::encode(split)
}

/// The same encoded records through other transforms (the reference a fused decode is
/// compared with); `None` for records that are not encoded.
pub fn with_transforms(records: &Records, transforms: Transforms) -> Option<Result<Records>> {
    match &records.0 {
        Kind::Encoded(e) => Some(
            e.with_transforms(transforms)
                .map(|e| Records(Kind::Encoded(Arc::new(e)))),
        ),
        Kind::Raw(_) | Kind::Transformed(_) => None,
    }
}

/// The shape `transforms` give a `source`-shaped image (the first record's, for a data set).
pub fn output_shape(transforms: &Transforms, source: Shape) -> Result<Shape> {
    transforms.output_shape("test", source)
}

/// The name of the format `spec` names, as [`crate::FORMATS`] lists it: what opening the spec
/// would read it as.
pub fn format_of_spec(spec: &str) -> Result<&'static str> {
    crate::source::SourceSpec::parse(spec).map(|s| s.format_name())
}

/// The blocks the per-epoch shuffle keeps together (Parquet row groups), in file order.
pub fn blocks(records: &Records) -> Vec<usize> {
    records.blocks()
}

/// Rows a shuffle window of `records` holds: [`SHUFFLE_WINDOW`], fewer for large records.
pub fn shuffle_window(records: &Records) -> usize {
    records.window()
}

/// `pass`, calling `hook` with a part's name just before its first record is read: a test
/// changes a part's files there, deterministically, while the pass runs.
pub fn before_part<'a>(
    mut pass: crate::StatsPass<'a>,
    hook: impl Fn(&str) + Send + Sync + 'static,
) -> crate::StatsPass<'a> {
    pass.before_part = Some(Arc::new(hook));
    pass
}

/// The region of the source `(height, width)` that sample `key` of `transforms` resamples
/// first, as `(top, left, height, width)` in source pixels: for a `random_resized_crop` alone,
/// the crop box torchvision's `resized_crop` takes (the fidelity measurement compares them).
pub fn first_region(
    transforms: &Transforms,
    source: (usize, usize),
    key: SampleKey,
) -> std::result::Result<(f64, f64, f64, f64), String> {
    let r = transforms.draw(source, key)?.region;
    Ok((r.top, r.left, r.height, r.width))
}
