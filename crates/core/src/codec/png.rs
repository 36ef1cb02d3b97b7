//! PNG: decoding a whole image with a memory cap, reading a shape from its header, and
//! encoding `[C,H,W]` pixels for `flowload convert`.

use super::check_channels;
use crate::shape::{MAX_DECODE_BYTES, Shape};

/// Decodes a whole PNG into `out` as `channels` interleaved channels (an alpha channel is
/// dropped); returns `(height, width)`. The image must have that many colour channels.
pub(crate) fn decode_png(
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

/// A decoder with a memory cap: a record's header is untrusted, and a forged 60000x60000 PNG
/// must be a bad record, not a 10 GB allocation.
fn reader(bytes: &[u8], format: image::ImageFormat) -> image::ImageReader<std::io::Cursor<&[u8]>> {
    let mut r = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    r.limits(limits);
    r
}

/// A PNG's shape, from its header.
pub(crate) fn probe_shape(bytes: &[u8]) -> Result<Shape, String> {
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
            assert_eq!(super::super::probe_shape(&png).unwrap(), shape);
            assert!(
                decode_png(&png, 4 - channels, &mut out)
                    .unwrap_err()
                    .contains("colour channel")
            );
        }
        assert!(
            super::super::format_of(b"hello")
                .unwrap_err()
                .contains("not a PNG or JPEG")
        );
    }
}
