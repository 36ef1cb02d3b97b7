//! Image bytes ↔ pixels: telling PNG from JPEG, decoding a PNG whole, reading a shape from a
//! header, and encoding PNG for `flowload convert`. JPEGs are decoded region by region in
//! [`super::jpeg`].

use crate::source::Shape;

use super::jpeg::JpegDecoder;

/// The encodings an encoded record may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
}

/// Tells the encoding from the first bytes.
pub fn format_of(bytes: &[u8]) -> Result<Format, String> {
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Png) => Ok(Format::Png),
        Ok(image::ImageFormat::Jpeg) => Ok(Format::Jpeg),
        Ok(other) => Err(format!(
            "{other:?} images are not supported (PNG or JPEG only)"
        )),
        Err(_) => Err("not a PNG or JPEG image".to_string()),
    }
}

/// Decodes a whole PNG into `out` as `channels` interleaved channels (an alpha channel is
/// dropped); returns `(height, width)`. The image must have that many colour channels.
pub fn decode_png(
    bytes: &[u8],
    channels: usize,
    out: &mut Vec<u8>,
) -> Result<(usize, usize), String> {
    let img = reader(bytes, image::ImageFormat::Png)
        .decode()
        .map_err(|e| format!("cannot decode Png: {e}"))?;
    check_channels(color_channels(img.color()), channels)?;
    let (h, w) = (img.height() as usize, img.width() as usize);
    out.clear();
    match channels {
        1 => out.extend_from_slice(img.to_luma8().as_raw()),
        _ => out.extend_from_slice(img.to_rgb8().as_raw()),
    }
    Ok((h, w))
}

/// The colour channels of an image's colour type, alpha left out.
fn color_channels(color: image::ColorType) -> usize {
    let c = color.channel_count() as usize;
    if color.has_alpha() { c - 1 } else { c }
}

/// An image with `found` colour channels in a data set of `want`.
pub fn check_channels(found: usize, want: usize) -> Result<(), String> {
    if found == want {
        Ok(())
    } else {
        Err(format!(
            "has {found} colour channel(s), the data set has {want}"
        ))
    }
}

/// The most memory one record's decoder may allocate.
pub const MAX_DECODE_BYTES: u64 = 256 << 20;

/// A decoder with a memory cap: a record's header is untrusted, and a forged 60000x60000 PNG
/// must be a bad record, not a 10 GB allocation.
fn reader(bytes: &[u8], format: image::ImageFormat) -> image::ImageReader<std::io::Cursor<&[u8]>> {
    let mut r = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    r.limits(limits);
    r
}

/// Reads an image's header for its shape (the first image's, which sets the data set's).
pub fn probe_shape(bytes: &[u8]) -> Result<Shape, String> {
    match format_of(bytes)? {
        Format::Jpeg => {
            let h = JpegDecoder::new()?.header(bytes)?;
            Ok(Shape {
                channels: h.channels,
                height: h.height,
                width: h.width,
            })
        }
        Format::Png => {
            use image::ImageDecoder;
            let d = image::codecs::png::PngDecoder::new(std::io::Cursor::new(bytes))
                .map_err(|e| format!("cannot decode the first image: {e}"))?;
            let (w, h) = d.dimensions();
            Ok(Shape {
                channels: color_channels(d.color_type()),
                height: h as usize,
                width: w as usize,
            })
        }
    }
}

/// Encodes `[C,H,W]` pixels as PNG (gray for 1 channel, RGB for 3): `flowload convert`'s writer.
pub fn encode_png(pixels: &[u8], shape: Shape) -> Vec<u8> {
    use image::ImageEncoder;
    let plane = shape.plane();
    let (data, color) = match shape.channels {
        1 => (pixels.to_vec(), image::ExtendedColorType::L8),
        _ => {
            let mut hwc = Vec::with_capacity(3 * plane);
            for i in 0..plane {
                hwc.extend([pixels[i], pixels[plane + i], pixels[2 * plane + i]]);
            }
            (hwc, image::ExtendedColorType::Rgb8)
        }
    };
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&data, shape.width as u32, shape.height as u32, color)
        .expect("encoding to memory cannot fail for a valid shape");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips_gray_and_rgb() {
        for channels in [1, 3] {
            let shape = Shape {
                channels,
                height: 3,
                width: 2,
            };
            let pixels: Vec<u8> = (0..shape.len() as u8).map(|v| v * 7).collect();
            let png = encode_png(&pixels, shape);
            let mut out = Vec::new();
            assert_eq!(decode_png(&png, channels, &mut out).unwrap(), (3, 2));
            // Interleaved out, channels first in.
            for c in 0..channels {
                for i in 0..6 {
                    assert_eq!(out[i * channels + c], pixels[c * 6 + i]);
                }
            }
            assert_eq!(probe_shape(&png).unwrap(), shape);
            assert!(
                decode_png(&png, 4 - channels, &mut out)
                    .unwrap_err()
                    .contains("colour channel")
            );
        }
        assert!(
            format_of(b"hello")
                .unwrap_err()
                .contains("not a PNG or JPEG")
        );
    }
}
