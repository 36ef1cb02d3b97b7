//! The shape of one image, channels first, and the most one record may take.

use serde::{Deserialize, Serialize};

/// The most memory one record may take: its decoder's allocations, and its pixels after the
/// transforms. A record's header is untrusted, so a forged 60000x60000 PNG is a bad record, not
/// a 10 GB allocation; and a `--resize` or transform list that would make records larger is
/// refused before any is decoded.
pub const MAX_DECODE_BYTES: u64 = 256 << 20;

/// Image shape, channels first, as PyTorch lays out a `[C,H,W]` tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Colour channels: 1 (gray) or 3 (RGB).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl Shape {
    /// Pixels per channel plane.
    pub fn plane(&self) -> usize {
        self.height * self.width
    }
    /// Values per image, `C·H·W`.
    pub fn len(&self) -> usize {
        self.channels * self.plane()
    }
    /// Whether an image of this shape holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether one record of this shape fits in [`MAX_DECODE_BYTES`].
    pub fn fits_a_record(&self) -> bool {
        (self.len() as u64) <= MAX_DECODE_BYTES
    }
}

/// `3x32x32`: channels × height × width, as error messages and tables show a shape.
impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}
