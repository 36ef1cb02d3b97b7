//! JPEG through libjpeg-turbo's TurboJPEG 3 API: the header alone, or one region of the image
//! at a DCT-domain scale (1/2, 1/4, 1/8), so that a crop reads only the rows and columns it
//! needs.
//!
//! The `turbojpeg` crate wraps decompression but not the cropping region
//! (`tj3SetCroppingRegion`), so this file calls its raw bindings (`turbojpeg::raw`) for that.

use std::ffi::CStr;

use turbojpeg::raw;

use crate::shape::MAX_DECODE_BYTES;

/// iMCU width per subsampling (444, 422, 420, gray, 440, 411, 441): `tjMCUWidth` of
/// turbojpeg.h, a `static` table there that the library does not export.
const MCU_WIDTH: [usize; 7] = [8, 16, 16, 8, 8, 32, 8];

/// What a JPEG header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub width: usize,
    pub height: usize,
    /// 1 for grayscale, 3 for colour.
    pub channels: usize,
    /// Width of one iMCU column at full scale; `None` when the crop cannot be used (unusual
    /// subsampling, lossless JPEG).
    mcu_width: Option<usize>,
}

/// Part of a JPEG to decode: a DCT scale of `1/denom` (1, 2, 4 or 8), and the rows and
/// columns of the scaled image to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The DCT scale's denominator: 1, 2, 4 or 8.
    pub denom: usize,
    /// The first column kept, in the scaled image.
    pub left: usize,
    /// The first row kept, in the scaled image.
    pub top: usize,
    /// Columns kept.
    pub width: usize,
    /// Rows kept.
    pub height: usize,
}

impl Header {
    /// The scaled image's size at `1/denom`: libjpeg rounds up.
    pub fn scaled(&self, denom: usize) -> (usize, usize) {
        (self.height.div_ceil(denom), self.width.div_ceil(denom))
    }

    /// The left edge a crop at `1/denom` may start at: a multiple of the scaled iMCU width.
    /// Without a usable iMCU width the whole width is decoded.
    pub fn align_left(&self, left: usize, denom: usize) -> usize {
        match self.mcu_width {
            Some(m) => {
                let m = m.div_ceil(denom);
                left / m * m
            }
            None => 0,
        }
    }

    pub fn can_crop(&self) -> bool {
        self.mcu_width.is_some()
    }
}

/// One worker's TurboJPEG decompressor.
pub struct JpegDecoder {
    handle: raw::tjhandle,
}

// SAFETY: a TurboJPEG handle has no thread affinity; it is used by one thread at a time, which
// `&mut self` on every call guarantees.
unsafe impl Send for JpegDecoder {}

impl Drop for JpegDecoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { raw::tj3Destroy(self.handle) };
    }
}

impl JpegDecoder {
    /// A decompressor that stops on warnings and refuses images over the record cap.
    pub fn new() -> Result<JpegDecoder, String> {
        let mut d = JpegDecoder {
            handle: Self::handle()?,
        };
        d.configure()?;
        Ok(d)
    }

    fn handle() -> Result<raw::tjhandle, String> {
        // SAFETY: plain constructor; a null handle is checked below.
        let handle = unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as libc::c_int) };
        if handle.is_null() {
            return Err("cannot start the JPEG decoder".into());
        }
        Ok(handle)
    }

    fn configure(&mut self) -> Result<(), String> {
        // A truncated or corrupt JPEG is an error, not an image padded with grey: libjpeg only
        // warns about them.
        self.set(raw::TJPARAM_TJPARAM_STOPONWARNING, 1)?;
        // The header is untrusted: a forged 60000x60000 JPEG is a bad record, not 10 GB.
        self.set(
            raw::TJPARAM_TJPARAM_MAXPIXELS,
            (MAX_DECODE_BYTES / 3).min(i32::MAX as u64) as libc::c_int,
        )
    }

    fn error(&self) -> String {
        // SAFETY: tj3GetErrorStr returns a NUL-terminated string owned by the handle.
        let msg = unsafe { CStr::from_ptr(raw::tj3GetErrorStr(self.handle)) };
        msg.to_string_lossy().trim().replace('\n', " ")
    }

    /// The error of a failed call, after which the handle is replaced: a header left half read
    /// by a warning would otherwise be read on by the next call, which then fails with the
    /// same message (measured: one mutated JFIF field failed every later record of a worker).
    fn check(&mut self, rc: libc::c_int) -> Result<(), String> {
        if rc == 0 {
            return Ok(());
        }
        let message = format!("cannot decode JPEG: {}", self.error());
        let fresh = Self::handle()?;
        // SAFETY: the old handle came from tj3Init and is destroyed once, replaced at once.
        unsafe { raw::tj3Destroy(self.handle) };
        self.handle = fresh;
        self.configure()?;
        Err(message)
    }

    fn set(&mut self, param: raw::TJPARAM, value: libc::c_int) -> Result<(), String> {
        // SAFETY: valid handle, a parameter from the bindings.
        let rc = unsafe { raw::tj3Set(self.handle, param as libc::c_int, value) };
        if rc == 0 {
            Ok(())
        } else {
            Err(format!("cannot set up the JPEG decoder: {}", self.error()))
        }
    }

    fn get(&self, param: raw::TJPARAM) -> libc::c_int {
        // SAFETY: valid handle, a parameter from the bindings.
        unsafe { raw::tj3Get(self.handle, param as libc::c_int) }
    }

    /// Reads the header of `bytes`.
    pub fn header(&mut self, bytes: &[u8]) -> Result<Header, String> {
        // SAFETY: the pointer and length describe `bytes`, which outlives the call.
        let rc = unsafe {
            raw::tj3DecompressHeader(self.handle, bytes.as_ptr(), bytes.len() as raw::size_t)
        };
        self.check(rc)?;
        let width = self.get(raw::TJPARAM_TJPARAM_JPEGWIDTH);
        let height = self.get(raw::TJPARAM_TJPARAM_JPEGHEIGHT);
        let subsamp = self.get(raw::TJPARAM_TJPARAM_SUBSAMP);
        let colorspace = self.get(raw::TJPARAM_TJPARAM_COLORSPACE);
        let lossless = self.get(raw::TJPARAM_TJPARAM_LOSSLESS) == 1;
        if width <= 0 || height <= 0 {
            return Err(format!("cannot decode JPEG: header says {height}x{width}"));
        }
        let channels = match colorspace as raw::TJCS {
            raw::TJCS_TJCS_GRAY => 1,
            raw::TJCS_TJCS_RGB | raw::TJCS_TJCS_YCbCr => 3,
            _ => {
                return Err("CMYK/YCCK JPEGs are not supported (convert them to RGB)".to_string());
            }
        };
        let mcu_width = usize::try_from(subsamp)
            .ok()
            .and_then(|s| MCU_WIDTH.get(s).copied())
            .filter(|_| !lossless);
        Ok(Header {
            width: width as usize,
            height: height as usize,
            channels,
            mcu_width,
        })
    }

    /// Decodes `window` of the image whose header was read last into `out`, as `channels`
    /// interleaved channels (1: gray, 3: RGB; a gray JPEG becomes RGB as PIL's
    /// `convert("RGB")` makes it), row after row.
    pub fn decode(
        &mut self,
        bytes: &[u8],
        header: &Header,
        window: Window,
        channels: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let scaling = raw::tjscalingfactor {
            num: 1,
            denom: window.denom as libc::c_int,
        };
        // SAFETY: valid handle; the factor is one the library supports (1/1, 1/2, 1/4, 1/8).
        self.check(unsafe { raw::tj3SetScalingFactor(self.handle, scaling) })?;
        let (sh, sw) = header.scaled(window.denom);
        let whole =
            window.left == 0 && window.top == 0 && (window.height, window.width) == (sh, sw);
        let region = if whole {
            raw::tjregion {
                x: 0,
                y: 0,
                w: 0,
                h: 0,
            }
        } else {
            raw::tjregion {
                x: window.left as libc::c_int,
                y: window.top as libc::c_int,
                w: window.width as libc::c_int,
                h: window.height as libc::c_int,
            }
        };
        // SAFETY: valid handle; the header was read; the region was checked against it.
        self.check(unsafe { raw::tj3SetCroppingRegion(self.handle, region) })?;
        let format = if channels == 1 {
            raw::TJPF_TJPF_GRAY
        } else {
            raw::TJPF_TJPF_RGB
        };
        // Grown, never cleared (the decoder writes every byte of the window), then cut to size.
        let len = window.width * window.height * channels;
        if out.len() < len {
            out.resize(len, 0);
        }
        out.truncate(len);
        // SAFETY: `out` holds exactly width × height × channels bytes, the pitch is one row.
        let rc = unsafe {
            raw::tj3Decompress8(
                self.handle,
                bytes.as_ptr(),
                bytes.len() as raw::size_t,
                out.as_mut_ptr(),
                (window.width * channels) as libc::c_int,
                format as libc::c_int,
            )
        };
        self.check(rc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode(&pixels, w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    fn whole(h: &Header) -> Window {
        Window {
            denom: 1,
            left: 0,
            top: 0,
            width: h.width,
            height: h.height,
        }
    }

    #[test]
    fn a_failed_record_leaves_the_decoder_fit_for_the_next() {
        let good = jpeg(40, 24);
        // A JFIF revision libjpeg does not know: a warning, which stops this record only.
        let mut warned = good.clone();
        assert_eq!(&warned[6..11], b"JFIF\0");
        warned[11] = 0x75;
        let truncated = good[..good.len() / 2].to_vec();
        let mut d = JpegDecoder::new().unwrap();
        let mut out = Vec::new();
        for bad in [&warned, &truncated] {
            let failed = d
                .header(bad)
                .and_then(|h| d.decode(bad, &h, whole(&h), 3, &mut out));
            assert!(failed.is_err());
            let h = d.header(&good).unwrap();
            assert_eq!((h.width, h.height, h.channels), (40, 24, 3));
            d.decode(&good, &h, whole(&h), 3, &mut out).unwrap();
            assert_eq!(out.len(), 40 * 24 * 3);
        }
    }
}
