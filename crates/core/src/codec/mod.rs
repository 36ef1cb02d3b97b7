//! Encoded bytes → pixels, in one place: telling PNG from JPEG and reading a shape from a
//! header (here), decoding a PNG whole ([`png`]) or a JPEG region at a DCT scale ([`jpeg`]),
//! and rendering one sample's transforms fused with the decode ([`render`]). Sources probe
//! shapes here; the decode operator renders every record through an [`Augmenter`].

pub(crate) mod jpeg;
pub(crate) mod png;
pub(crate) mod render;

pub use render::Augmenter;

use crate::shape::Shape;
use jpeg::JpegDecoder;

/// The encodings an encoded record may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// PNG, decoded whole.
    Png,
    /// JPEG, decoded over the region a sample needs.
    Jpeg,
}

/// Tells the encoding from the first bytes.
pub(crate) fn format_of(bytes: &[u8]) -> Result<Format, String> {
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Png) => Ok(Format::Png),
        Ok(image::ImageFormat::Jpeg) => Ok(Format::Jpeg),
        Ok(other) => Err(format!(
            "{other:?} images are not supported (PNG or JPEG only)"
        )),
        Err(_) => Err("not a PNG or JPEG image".to_string()),
    }
}

/// An image with `found` colour channels in a data set of `want`.
pub(crate) fn check_channels(found: usize, want: usize) -> Result<(), String> {
    if found == want {
        Ok(())
    } else {
        Err(format!(
            "has {found} colour channel(s), the data set has {want}"
        ))
    }
}

/// Reads an image's header for its shape (the first image's, which sets the data set's).
pub(crate) fn probe_shape(bytes: &[u8]) -> Result<Shape, String> {
    match format_of(bytes)? {
        Format::Jpeg => {
            let h = JpegDecoder::new()?.header(bytes)?;
            Ok(Shape {
                channels: h.channels,
                height: h.height,
                width: h.width,
            })
        }
        Format::Png => png::probe_shape(bytes),
    }
}
