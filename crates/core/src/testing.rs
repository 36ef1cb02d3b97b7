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

/// The IDX fuzz target's harness, kept here so that its regression tests replay exactly what
/// it ran: the first byte says where the images file ends and the labels file (10 classes)
/// begins, and the two are parsed as opening an IDX directory does. `None` for empty input.
pub fn fuzz_idx(data: &[u8]) -> Option<Result<Split>> {
    let (&cut, rest) = data.split_first()?;
    let (images, labels) = rest.split_at((cut as usize * rest.len()) / 256);
    Some(crate::source::idx::parse_bytes(images, labels, 10))
}

/// The decode fuzz target's harness, kept here for the same reason: two bytes choose the
/// expected shape and whether to resize to it, and the rest is the record, rendered into a
/// buffer of that shape. `None` for input shorter than two bytes.
pub fn fuzz_decode(data: &[u8]) -> Option<std::result::Result<(), String>> {
    let [mode, size, bytes @ ..] = data else {
        return None;
    };
    let shape = Shape {
        channels: if mode & 1 == 0 { 1 } else { 3 },
        height: 1 + (size & 0x0f) as usize,
        width: 1 + (size >> 4) as usize,
    };
    let mut out = vec![0u8; shape.len()];
    // Bit 1: resize to the shape (any size accepted), else the image must have it.
    let transforms = if mode & 2 != 0 {
        let resize = format!("resize:{}x{}", shape.height, shape.width);
        Transforms::new(&[resize], 0).expect("a resize to at least 1x1 parses")
    } else {
        Transforms::default()
    };
    let key = SampleKey {
        epoch: 0,
        record: 0,
    };
    Some(Augmenter::new().render(bytes, &transforms, key, shape, &mut out))
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
