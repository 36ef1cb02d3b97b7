//! Fuzz target: the record decoder (PNG/JPEG bytes → `[C,H,W]` pixels) on arbitrary bytes.
#![no_main]

use flowload_core::testing::{Augmenter, SampleKey};
use flowload_core::{Shape, Transforms};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Two bytes choose the expected shape and whether to resize; the rest is the record.
    let [mode, size, bytes @ ..] = data else { return };
    let shape = Shape {
        channels: if mode & 1 == 0 { 1 } else { 3 },
        height: 1 + (size & 0x0f) as usize,
        width: 1 + (size >> 4) as usize,
    };
    let mut out = vec![0u8; shape.len()];
    // Bit 1: resize to the shape (any size accepted), else the image must have it.
    let transforms = if mode & 2 != 0 {
        Transforms::new(&[format!("resize:{}x{}", shape.height, shape.width)], 0).unwrap()
    } else {
        Transforms::default()
    };
    let key = SampleKey { epoch: 0, record: 0 };
    let _ = Augmenter::new().render(bytes, &transforms, key, shape, &mut out);
});
