//! Fuzz target: the record decoder (PNG/JPEG bytes → `[C,H,W]` pixels) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Two bytes choose the expected shape and whether to resize; the rest is the record.
    let _ = flowload_core::testing::fuzz_decode(data);
});
