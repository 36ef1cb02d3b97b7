//! Image bytes ↔ pixels: decoding one PNG or JPEG into `[C,H,W]` u8, probing a shape, and
//! encoding PNG for `flowload convert`.

use image::imageops::FilterType;

use crate::source::Shape;

/// Decodes `bytes` as PNG or JPEG into `out` (`C·H·W` bytes, channels first).
///
/// The image must have `shape.channels` channels (an alpha channel is dropped), and
/// `shape.height × shape.width` pixels unless `resize` is set. Errors are plain text; the
/// caller adds the record's name.
pub fn decode_image(
    bytes: &[u8],
    shape: Shape,
    resize: bool,
    out: &mut [u8],
) -> Result<(), String> {
    let format = image::guess_format(bytes).map_err(|_| "not a PNG or JPEG image".to_string())?;
    if !matches!(format, image::ImageFormat::Png | image::ImageFormat::Jpeg) {
        return Err(format!(
            "{format:?} images are not supported (PNG or JPEG only)"
        ));
    }
    let img = reader(bytes, format)
        .decode()
        .map_err(|e| format!("cannot decode {format:?}: {e}"))?;
    let channels = img.color().channel_count() as usize;
    let color = if img.color().has_alpha() {
        channels - 1
    } else {
        channels
    };
    if color != shape.channels {
        return Err(format!(
            "has {color} colour channel(s), the data set has {}",
            shape.channels
        ));
    }
    let (w, h) = (img.width() as usize, img.height() as usize);
    let img = if (h, w) == (shape.height, shape.width) {
        img
    } else if resize {
        img.resize_exact(
            shape.width as u32,
            shape.height as u32,
            FilterType::Triangle,
        )
    } else {
        return Err(format!(
            "is {h}x{w}, the data set is {}x{} (use --resize HxW to resize)",
            shape.height, shape.width
        ));
    };
    let plane = shape.plane();
    match shape.channels {
        1 => out[..plane].copy_from_slice(img.to_luma8().as_raw()),
        _ => {
            let rgb = img.to_rgb8();
            for (i, px) in rgb.as_raw().chunks_exact(3).enumerate() {
                out[i] = px[0];
                out[plane + i] = px[1];
                out[2 * plane + i] = px[2];
            }
        }
    }
    Ok(())
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

/// Reads just enough of the first decodable image to learn the data set's shape.
pub fn probe_shape(bytes: &[u8]) -> Result<Shape, String> {
    let format = image::guess_format(bytes).map_err(|_| "not a PNG or JPEG image".to_string())?;
    let img = reader(bytes, format)
        .decode()
        .map_err(|e| format!("cannot decode the first image: {e}"))?;
    let c = img.color().channel_count() as usize;
    Ok(Shape {
        channels: if img.color().has_alpha() { c - 1 } else { c },
        height: img.height() as usize,
        width: img.width() as usize,
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
    fn png_round_trips_gray_and_rgb_channels_first() {
        for channels in [1, 3] {
            let shape = Shape {
                channels,
                height: 3,
                width: 2,
            };
            let pixels: Vec<u8> = (0..shape.len() as u8).map(|v| v * 7).collect();
            let png = encode_png(&pixels, shape);
            let mut out = vec![0; shape.len()];
            decode_image(&png, shape, false, &mut out).unwrap();
            assert_eq!(out, pixels);
            assert_eq!(probe_shape(&png).unwrap(), shape);
        }
    }

    #[test]
    fn a_forged_huge_header_is_an_error_not_an_allocation() {
        let shape = Shape {
            channels: 3,
            height: 2,
            width: 2,
        };
        let mut png = encode_png(&[1; 12], shape);
        // IHDR data sits at bytes 16..29 (width, height, ...), its CRC at 29..33.
        png[16..20].copy_from_slice(&60_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&60_000u32.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&png[12..29]);
        png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        let big = Shape {
            channels: 3,
            height: 60_000,
            width: 60_000,
        };
        let err = decode_image(&png, big, false, &mut []).unwrap_err();
        assert!(err.contains("cannot decode"), "{err}");
        assert!(probe_shape(&png).is_err());
    }

    #[test]
    fn wrong_size_channels_and_garbage_are_errors() {
        let shape = Shape {
            channels: 1,
            height: 3,
            width: 2,
        };
        let png = encode_png(&[9; 6], shape);
        let mut out = vec![0; 12];
        let rgb = Shape {
            channels: 3,
            height: 2,
            width: 2,
        };
        assert!(
            decode_image(&png, rgb, false, &mut out)
                .unwrap_err()
                .contains("1 colour channel")
        );
        let big = Shape {
            channels: 1,
            height: 4,
            width: 3,
        };
        assert!(
            decode_image(&png, big, false, &mut out)
                .unwrap_err()
                .contains("--resize")
        );
        decode_image(&png, big, true, &mut out).unwrap();
        assert!(
            decode_image(b"hello", shape, false, &mut out)
                .unwrap_err()
                .contains("not a PNG or JPEG")
        );
        assert!(decode_image(&png[..png.len() / 2], shape, false, &mut out).is_err());
    }
}
