//! Augment: one record's transforms rendered from its encoded bytes into `[C,H,W]` u8, fused
//! with decoding. The transforms' [`Geometry`] is drawn from the header alone, so a JPEG is
//! decoded only over the region the output needs, at the largest DCT scale (1/2, 1/4, 1/8)
//! that keeps at least the output's resolution; one SIMD resample (`fast_image_resize`,
//! bilinear with antialiasing, as torchvision's `antialias=True`) then gives the exact size.
//!
//! The decode operator calls this for every record that has encoded bytes or transforms, on the
//! worker that builds the batch: in a cluster that is before the wire. It is not an operator of
//! its own because the crop must be known before the JPEG is decoded, as in DALI's
//! `decoders.image_random_crop`.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::jpeg::{Header, JpegDecoder, Window};
use super::png::decode_png;
use super::{Format, check_channels, format_of};
use crate::shape::{MAX_DECODE_BYTES, Shape};
use crate::transforms::{Geometry, PadCrop, PadMode, Region, SampleKey, Stage, Transforms};

/// One worker's decoders, resampler and scratch buffers, reused record after record.
pub struct Augmenter {
    jpeg: Option<JpegDecoder>,
    resizer: Resizer,
    /// The decoded region, interleaved channels.
    decoded: Vec<u8>,
    /// The region resampled to the geometry's size, interleaved channels.
    resampled: Vec<u8>,
    /// Where a further stage resamples to (then swapped with `resampled`).
    spare: Vec<u8>,
    /// A stage's bounds copied out, when they are not its whole input.
    bounded: Vec<u8>,
    /// Decode only what the output needs, at a DCT scale that keeps at least this many times
    /// the output's resolution (the default, [`DCT_HEADROOM`]); `None`, every JPEG is decoded
    /// whole at full scale: the reference the fused path is tested against.
    headroom: Option<usize>,
}

impl Default for Augmenter {
    fn default() -> Self {
        Augmenter {
            jpeg: None,
            resizer: Resizer::new(),
            decoded: Vec::new(),
            resampled: Vec::new(),
            spare: Vec::new(),
            bounded: Vec::new(),
            headroom: Some(DCT_HEADROOM),
        }
    }
}

impl Augmenter {
    /// An augmenter that decodes only what each sample needs.
    pub fn new() -> Self {
        Self::default()
    }

    /// An augmenter whose DCT-scaled decodes keep at least `headroom` times the output's
    /// resolution: the measurement behind [`DCT_HEADROOM`] (examples/fidelity.rs).
    pub fn with_dct_headroom(headroom: usize) -> Self {
        Augmenter {
            headroom: Some(headroom.max(1)),
            ..Self::default()
        }
    }

    /// An augmenter that decodes every JPEG whole, then crops and resizes.
    pub fn unfused() -> Self {
        Augmenter {
            headroom: None,
            ..Self::default()
        }
    }

    /// Decodes `bytes` (PNG or JPEG) and renders sample `key` of `transforms` into `out`, the
    /// `[C,H,W]` pixels of `shape`. Errors are plain text; the caller adds the record's name.
    pub fn render(
        &mut self,
        bytes: &[u8],
        transforms: &Transforms,
        key: SampleKey,
        shape: Shape,
        out: &mut [u8],
    ) -> Result<(), String> {
        let channels = shape.channels;
        let (geometry, buffer, first) = match format_of(bytes)? {
            Format::Jpeg => {
                if self.jpeg.is_none() {
                    self.jpeg = Some(JpegDecoder::new()?);
                }
                let jpeg = self.jpeg.as_mut().expect("set above");
                let header = jpeg.header(bytes)?;
                check_channels(header.channels, channels)?;
                let g = transforms.draw((header.height, header.width), key)?;
                check_output(&g, shape, (header.height, header.width))?;
                let window = match self.headroom {
                    Some(headroom) => window_for(&header, &g, headroom),
                    None => whole(&header),
                };
                jpeg.decode(bytes, &header, window, channels, &mut self.decoded)?;
                let d = window.denom as f64;
                let in_window = |r: Region| Region {
                    left: r.left / d - window.left as f64,
                    top: r.top / d - window.top as f64,
                    width: r.width / d,
                    height: r.height / d,
                };
                let first = Stage {
                    bounds: in_window(g.bounds),
                    region: in_window(g.region),
                    size: g.size,
                };
                (g, (window.height, window.width), first)
            }
            Format::Png => {
                let size = decode_png(bytes, channels, &mut self.decoded)?;
                let g = transforms.draw(size, key)?;
                check_output(&g, shape, size)?;
                let first = first_stage(&g);
                (g, size, first)
            }
        };
        self.resample_stages(buffer, first, &geometry, channels, out)
    }

    /// Renders sample `key` of `transforms` from raw `[C,H,W]` pixels of shape `source` into
    /// `out`, the `[C,H,W]` pixels of `shape`.
    pub fn render_pixels(
        &mut self,
        pixels: &[u8],
        source: Shape,
        transforms: &Transforms,
        key: SampleKey,
        shape: Shape,
        out: &mut [u8],
    ) -> Result<(), String> {
        let size = (source.height, source.width);
        let geometry = transforms.draw(size, key)?;
        check_output(&geometry, shape, size)?;
        // Interleave the channels, as a decoder gives them.
        let (plane, channels) = (source.plane(), source.channels);
        self.decoded.clear();
        self.decoded.resize(pixels.len(), 0);
        for (c, src) in pixels.chunks_exact(plane).enumerate() {
            for (i, v) in src.iter().enumerate() {
                self.decoded[i * channels + c] = *v;
            }
        }
        let first = first_stage(&geometry);
        self.resample_stages(size, first, &geometry, channels, out)
    }

    /// Resamples the `first` stage of the decoded buffer (`size` pixels, the first stage's
    /// bounds and region in its coordinates), then each further stage from the previous one's
    /// output, and writes the last into `out` through the padded crop and the mirror.
    fn resample_stages(
        &mut self,
        size: (usize, usize),
        first: Stage,
        g: &Geometry,
        channels: usize,
        out: &mut [u8],
    ) -> Result<(), String> {
        let Augmenter {
            resizer,
            decoded,
            resampled,
            spare,
            bounded,
            ..
        } = self;
        // Where the current image is: still the decoded buffer (no resample so far), or
        // `resampled`.
        let mut in_decoded =
            !resample(resizer, decoded, size, first, channels, bounded, resampled)?;
        let mut size = g.size;
        for stage in &g.then {
            let src = if in_decoded { &*decoded } else { &*resampled };
            if resample(resizer, src, size, *stage, channels, bounded, spare)? {
                std::mem::swap(resampled, spare);
                in_decoded = false;
            }
            size = stage.size;
        }
        let len = size.0 * size.1 * channels;
        let last = if in_decoded {
            &decoded[..len]
        } else {
            &resampled[..len]
        };
        write_planes(last, g, channels, out);
        Ok(())
    }
}

/// The geometry's first stage.
fn first_stage(g: &Geometry) -> Stage {
    Stage {
        bounds: g.bounds,
        region: g.region,
        size: g.size,
    }
}

/// Resamples `stage` of `src` (`size` pixels, interleaved) into `dst`, bilinear with
/// antialiasing (torchvision's `antialias=True`); `false`, writing nothing, when `src` already
/// is exactly the stage's output. Stage bounds smaller than `src` are copied out to `bounded`
/// first, so that the filter reads no pixel past them, as torchvision's resize of a crop does
/// not (measured on the photo workload: reading past them, a random resized crop's outer 2
/// pixels differed from torchvision's by up to 31 of 255, the rest by at most 1).
fn resample(
    resizer: &mut Resizer,
    src: &[u8],
    size: (usize, usize),
    stage: Stage,
    channels: usize,
    bounded: &mut Vec<u8>,
    dst: &mut Vec<u8>,
) -> Result<bool, String> {
    let whole = Region {
        left: 0.0,
        top: 0.0,
        width: size.1 as f64,
        height: size.0 as f64,
    };
    let to = stage.size;
    if stage.region == whole && to == size {
        return Ok(false);
    }
    // The bounds to whole pixels (a DCT-scaled decode puts their edges between pixels).
    let b = stage.bounds;
    let x0 = (b.left.max(0.0).floor() as usize).min(size.1);
    let y0 = (b.top.max(0.0).floor() as usize).min(size.0);
    let x1 = ((b.left + b.width).ceil().max(0.0) as usize).clamp(x0, size.1);
    let y1 = ((b.top + b.height).ceil().max(0.0) as usize).clamp(y0, size.0);
    let (src, size, region) = if (x0, y0, x1, y1) == (0, 0, size.1, size.0) {
        (src, size, stage.region)
    } else {
        let row = (x1 - x0) * channels;
        bounded.clear();
        for y in y0..y1 {
            let start = (y * size.1 + x0) * channels;
            bounded.extend_from_slice(&src[start..start + row]);
        }
        let region = Region {
            left: stage.region.left - x0 as f64,
            top: stage.region.top - y0 as f64,
            ..stage.region
        };
        (&bounded[..], (y1 - y0, x1 - x0), region)
    };
    let pixel = if channels == 1 {
        PixelType::U8
    } else {
        PixelType::U8x3
    };
    let len_in = size.0 * size.1 * channels;
    let src = ImageRef::new(size.1 as u32, size.0 as u32, &src[..len_in], pixel)
        .map_err(|e| format!("resize: {e}"))?;
    // Grown, never cleared: the resampler writes every byte it is given.
    let len = to.0 * to.1 * channels;
    if dst.len() < len {
        dst.resize(len, 0);
    }
    let mut out = Image::from_slice_u8(to.1 as u32, to.0 as u32, &mut dst[..len], pixel)
        .map_err(|e| format!("resize: {e}"))?;
    // Rounding in the scaled coordinates may put an edge a hair outside the buffer.
    let left = region.left.clamp(0.0, size.1 as f64);
    let top = region.top.clamp(0.0, size.0 as f64);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(
            left,
            top,
            region.width.min(size.1 as f64 - left),
            region.height.min(size.0 as f64 - top),
        );
    resizer
        .resize(&src, &mut out, &options)
        .map_err(|e| format!("resize: {e}"))?;
    Ok(true)
}

/// The output must have the data set's size: transforms that do not end in a fixed size leave
/// each image at its own.
fn check_output(g: &Geometry, shape: Shape, source: (usize, usize)) -> Result<(), String> {
    // Every resample's output is held whole (a padded crop is cut from the last), so each
    // must fit in memory too.
    for size in std::iter::once(g.size).chain(g.then.iter().map(|s| s.size)) {
        let bytes = size.0 as u64 * size.1 as u64 * shape.channels as u64;
        if bytes > MAX_DECODE_BYTES {
            return Err(format!(
                "is resized to {}x{} on its way: {} MiB, more than the {} MiB a record may take",
                size.0,
                size.1,
                bytes >> 20,
                MAX_DECODE_BYTES >> 20
            ));
        }
    }
    let (h, w) = g.output();
    if (h, w) == (shape.height, shape.width) {
        return Ok(());
    }
    Err(if g.is_identity(source) {
        format!(
            "is {h}x{w}, the data set is {}x{} (use --resize HxW, or transforms that end in a crop)",
            shape.height, shape.width
        )
    } else {
        format!(
            "is {}x{}, {h}x{w} after its transforms, the data set is {}x{} (end the transforms in a crop to a fixed size)",
            source.0, source.1, shape.height, shape.width
        )
    })
}

/// The whole image at full scale.
fn whole(header: &Header) -> Window {
    Window {
        denom: 1,
        left: 0,
        top: 0,
        width: header.width,
        height: header.height,
    }
}

/// How many times the output's resolution a DCT-scaled decode keeps, at least. Measured on the
/// photo workload (scripts/fidelity.py, 48 photos × 4 draws, 2026-12-01): at
/// `random_resized_crop:64`, 2 puts the fused path 0.26 of 255 from torchvision on average
/// (0.11 unfused) and 17 at its worst pixel; 4 makes it equal the unfused path, but cost 16% of
/// one thread's images/s (1,304 → 1,100, median of 5 interleaved rounds): more than the 5% a
/// tighter rule may cost, so 2 stays. At 128 and 224 the photos are too small to be scaled.
const DCT_HEADROOM: usize = 2;

/// The part of a JPEG to decode for geometry `g`: the largest DCT scale that keeps at least
/// the output's resolution, and the region's bounding box there, widened by the resampling
/// filter's reach so that edge pixels see the same neighbours as in a whole decode.
fn window_for(header: &Header, g: &Geometry, headroom: usize) -> Window {
    let r = g.region;
    let (to_h, to_w) = g.size;
    let denom = [8, 4, 2, 1]
        .into_iter()
        .find(|&d| {
            r.width / d as f64 >= (headroom * to_w) as f64
                && r.height / d as f64 >= (headroom * to_h) as f64
        })
        .unwrap_or(1);
    let d = denom as f64;
    let (sh, sw) = header.scaled(denom);
    if !header.can_crop() {
        return Window {
            denom,
            left: 0,
            top: 0,
            width: sw,
            height: sh,
        };
    }
    // The bilinear filter reaches one output pixel's width into the source: ratio + 1 pixels.
    let reach = |len: f64, to: usize| (len / d / to as f64).max(1.0).ceil() + 1.0;
    let (mx, my) = (reach(r.width, to_w), reach(r.height, to_h));
    let left = ((r.left / d - mx).floor().max(0.0)) as usize;
    let top = ((r.top / d - my).floor().max(0.0)) as usize;
    let right = (((r.left + r.width) / d + mx).ceil() as usize).min(sw);
    let bottom = (((r.top + r.height) / d + my).ceil() as usize).min(sh);
    let left = header.align_left(left, denom);
    Window {
        denom,
        left,
        top,
        width: right - left,
        height: bottom - top,
    }
}

/// Writes the resampled image (interleaved, `g.size`) into `out` as `[C,H,W]`, through the
/// padded crop and the mirror.
///
/// Row by row and plane by plane, from a table of source columns: measured on the photo
/// workload, a per-pixel loop over `Option`s here took 11% of a worker's time.
fn write_planes(src: &[u8], g: &Geometry, channels: usize, out: &mut [u8]) {
    let (sh, sw) = g.resampled();
    let (oh, ow) = g.output();
    let plane = oh * ow;
    match (g.pad_crop, channels) {
        (None, 1) => {
            for (line, row) in out[..plane].chunks_exact_mut(ow).zip(src.chunks_exact(sw)) {
                line.copy_from_slice(row);
                if g.flip {
                    line.reverse();
                }
            }
            return;
        }
        (None, 3) => {
            // The common case, a crop and a flip of RGB: three planes filled in one pass.
            let (r, rest) = out[..3 * plane].split_at_mut(plane);
            let (g_, b) = rest.split_at_mut(plane);
            let rows = src.chunks_exact(3 * sw);
            let lines = r
                .chunks_exact_mut(ow)
                .zip(g_.chunks_exact_mut(ow))
                .zip(b.chunks_exact_mut(ow));
            for (((r, g_), b), row) in lines.zip(rows) {
                let pixels = row.chunks_exact(3);
                let put = |((r, g_), b): ((&mut u8, &mut u8), &mut u8), px: &[u8]| {
                    (*r, *g_, *b) = (px[0], px[1], px[2]);
                };
                let targets = r.iter_mut().zip(g_.iter_mut()).zip(b.iter_mut());
                if g.flip {
                    targets.zip(pixels.rev()).for_each(|(t, px)| put(t, px));
                } else {
                    targets.zip(pixels).for_each(|(t, px)| put(t, px));
                }
            }
            return;
        }
        _ => {}
    }
    let crop = g.pad_crop.unwrap_or(PadCrop {
        top: 0,
        left: 0,
        height: oh,
        width: ow,
        mode: PadMode::Constant,
    });
    // Each output column's source column; constant padding reads the edge, then is zeroed.
    let edge =
        |i: i64, n: usize| pad_index(i, n, crop.mode).unwrap_or(i.clamp(0, n as i64 - 1) as usize);
    let columns: Vec<usize> = (0..ow)
        .map(|x| {
            let x = if g.flip { ow - 1 - x } else { x };
            edge(crop.left + x as i64, sw) * channels
        })
        .collect();
    let blank: Vec<usize> = (0..ow)
        .filter(|&x| {
            let x = if g.flip { ow - 1 - x } else { x };
            pad_index(crop.left + x as i64, sw, crop.mode).is_none()
        })
        .collect();
    for y in 0..oh {
        let row_index = pad_index(crop.top + y as i64, sh, crop.mode);
        let row = &src[edge(crop.top + y as i64, sh) * sw * channels..][..sw * channels];
        for c in 0..channels {
            let line = &mut out[c * plane + y * ow..][..ow];
            if row_index.is_none() {
                line.fill(0);
                continue;
            }
            for (o, &col) in line.iter_mut().zip(&columns) {
                *o = row[col + c];
            }
            for &x in &blank {
                line[x] = 0;
            }
        }
    }
}

/// Where index `i` of a padded axis of length `n` reads from: torchvision's `padding_mode`.
fn pad_index(i: i64, n: usize, mode: PadMode) -> Option<usize> {
    let n = n as i64;
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    match mode {
        PadMode::Constant => None,
        PadMode::Edge => Some(i.clamp(0, n - 1) as usize),
        // Mirrored without repeating the edge; a pad wider than the image bounces again.
        PadMode::Reflect => {
            if n == 1 {
                return Some(0);
            }
            let period = 2 * (n - 1);
            let m = i.rem_euclid(period);
            Some(if m < n { m } else { period - m } as usize)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::png::encode_png;

    fn transforms(specs: &[&str]) -> Transforms {
        Transforms::new(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>(), 3).unwrap()
    }
    const KEY: SampleKey = SampleKey {
        epoch: 0,
        record: 0,
    };

    fn gradient(shape: Shape) -> Vec<u8> {
        (0..shape.len())
            .map(|i| {
                let (c, p) = (i / shape.plane(), i % shape.plane());
                ((p % shape.width) * 7 + (p / shape.width) * 3 + c * 50) as u8
            })
            .collect()
    }

    #[test]
    fn padded_crop_and_flip_match_torchvision_index_rules() {
        assert_eq!(pad_index(-1, 4, PadMode::Reflect), Some(1));
        assert_eq!(pad_index(4, 4, PadMode::Reflect), Some(2));
        assert_eq!(pad_index(-2, 4, PadMode::Edge), Some(0));
        assert_eq!(pad_index(-1, 4, PadMode::Constant), None);
        let shape = Shape {
            channels: 3,
            height: 4,
            width: 5,
        };
        let pixels = gradient(shape);
        let png = encode_png(&pixels, shape);
        let mut out = vec![0; shape.len()];
        // No transform: the pixels as they are.
        Augmenter::new()
            .render(&png, &Transforms::default(), KEY, shape, &mut out)
            .unwrap();
        assert_eq!(out, pixels);
        // A certain flip mirrors every row.
        Augmenter::new()
            .render(&png, &transforms(&["hflip:1"]), KEY, shape, &mut out)
            .unwrap();
        for c in 0..3 {
            for y in 0..4 {
                for x in 0..5 {
                    assert_eq!(out[c * 20 + y * 5 + x], pixels[c * 20 + y * 5 + 4 - x]);
                }
            }
        }
        // A padded crop shows the image shifted, with zeros where it reaches past it.
        let t = transforms(&["random_crop:4x5,padding=2"]);
        for record in 0..20 {
            let key = SampleKey { epoch: 1, record };
            let g = t.draw((4, 5), key).unwrap();
            let p = g.pad_crop.unwrap();
            Augmenter::new()
                .render(&png, &t, key, shape, &mut out)
                .unwrap();
            for y in 0..4i64 {
                for x in 0..5i64 {
                    let (sy, sx) = (y + p.top, x + p.left);
                    let want = if (0..4).contains(&sy) && (0..5).contains(&sx) {
                        pixels[(sy * 5 + sx) as usize]
                    } else {
                        0
                    };
                    assert_eq!(out[(y * 5 + x) as usize], want);
                }
            }
        }
    }

    #[test]
    fn a_crop_too_large_and_a_size_mismatch_are_errors_naming_sizes() {
        let shape = Shape {
            channels: 1,
            height: 6,
            width: 8,
        };
        let png = encode_png(&gradient(shape), shape);
        let mut out = vec![0; 100];
        let small = Shape {
            channels: 1,
            height: 10,
            width: 10,
        };
        let e = Augmenter::new()
            .render(&png, &transforms(&["center_crop:10"]), KEY, small, &mut out)
            .unwrap_err();
        assert!(e.contains("center_crop:10") && e.contains("6x8"), "{e}");
        let e = Augmenter::new()
            .render(&png, &Transforms::default(), KEY, small, &mut out)
            .unwrap_err();
        assert!(e.contains("is 6x8") && e.contains("--resize"), "{e}");
        let e = Augmenter::new()
            .render(&png, &transforms(&["resize:5"]), KEY, small, &mut out)
            .unwrap_err();
        assert!(e.contains("5x6 after its transforms"), "{e}");
        Augmenter::new()
            .render(&png, &transforms(&["resize:10x10"]), KEY, small, &mut out)
            .unwrap();
        // A padded crop of a huge resize would first allocate the whole resized image.
        let huge = transforms(&["resize:30000", "random_crop:10,padding=2"]);
        let e = Augmenter::new()
            .render(&png, &huge, KEY, small, &mut out)
            .unwrap_err();
        assert!(e.contains("is resized to 30000x40000 on its way"), "{e}");
    }

    /// Two resizes are two resamples, as in torchvision: `resize:8x8` then `resize:64x64` is
    /// the 8x8 image upsampled, bit for bit what rendering the 8x8 result again gives, and not
    /// the sharp `resize:64x64` alone. Crops between them stay in their stage.
    #[test]
    fn chained_resizes_resample_at_every_resize() {
        let source = Shape {
            channels: 3,
            height: 48,
            width: 40,
        };
        let pixels: Vec<u8> = (0..source.len())
            .map(|i| ((i * 7919 + i / 40 * 31) % 251) as u8)
            .collect();
        let at = |h, w| Shape {
            channels: 3,
            height: h,
            width: w,
        };
        let render = |pixels: &[u8], from: Shape, specs: &[&str], to: Shape| {
            let mut out = vec![0u8; to.len()];
            Augmenter::new()
                .render_pixels(pixels, from, &transforms(specs), KEY, to, &mut out)
                .unwrap();
            out
        };
        let chained = render(&pixels, source, &["resize:8x8", "resize:24x24"], at(24, 24));
        let small = render(&pixels, source, &["resize:8x8"], at(8, 8));
        assert_eq!(
            chained,
            render(&small, at(8, 8), &["resize:24x24"], at(24, 24))
        );
        assert_ne!(
            chained,
            render(&pixels, source, &["resize:24x24"], at(24, 24))
        );
        // The five steps, stage by stage: a crop joins the resample before it.
        let steps = [
            "resize:30",
            "center_crop:28",
            "resize:10x12",
            "center_crop:9",
            "resize:6",
        ];
        let whole = render(&pixels, source, &steps, at(6, 6));
        let first = render(&pixels, source, &steps[..2], at(28, 28));
        let second = render(&first, at(28, 28), &steps[2..4], at(9, 9));
        assert_eq!(whole, render(&second, at(9, 9), &steps[4..], at(6, 6)));
        // A resize to the size there is resamples nothing.
        assert_eq!(
            render(
                &pixels,
                source,
                &["resize:48x40", "resize:24x24"],
                at(24, 24)
            ),
            render(&pixels, source, &["resize:24x24"], at(24, 24))
        );
    }

    /// torchvision crops, then resizes: the filter must not read past the crop, so a crop then
    /// a resize is bit for bit the resize of the cropped pixels alone.
    #[test]
    fn a_crop_then_a_resize_reads_no_pixel_past_the_crop() {
        let source = Shape {
            channels: 3,
            height: 30,
            width: 26,
        };
        let pixels: Vec<u8> = (0..source.len()).map(|i| (i * 37 % 253) as u8).collect();
        let crop = Shape {
            channels: 3,
            height: 20,
            width: 16,
        };
        let out = Shape {
            channels: 3,
            height: 7,
            width: 9,
        };
        // center_crop:20x16 of 30x26 starts at (5, 5).
        let cropped: Vec<u8> = (0..3)
            .flat_map(|c| (5..25).flat_map(move |y| (5..21).map(move |x| (c, y, x))))
            .map(|(c, y, x)| pixels[c * 780 + y * 26 + x])
            .collect();
        assert_eq!(cropped.len(), crop.len());
        let render = |pixels: &[u8], from: Shape, specs: &[&str]| {
            let mut o = vec![0u8; out.len()];
            Augmenter::new()
                .render_pixels(pixels, from, &transforms(specs), KEY, out, &mut o)
                .unwrap();
            o
        };
        assert_eq!(
            render(&pixels, source, &["center_crop:20x16", "resize:7x9"]),
            render(&cropped, crop, &["resize:7x9"])
        );
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
        let e = Augmenter::new()
            .render(&png, &Transforms::default(), KEY, shape, &mut [0; 12])
            .unwrap_err();
        assert!(e.contains("cannot decode"), "{e}");
    }
}
