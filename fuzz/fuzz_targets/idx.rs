//! Fuzz target: the IDX parser (headers, counts, gzip, labels) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte says where the images file ends and the labels file begins.
    if let Some(Ok(split)) = flowload_core::testing::fuzz_idx(data) {
        assert_eq!(split.pixels.len(), split.len() * split.shape.len());
        assert!(split.labels.iter().all(|&l| (0..10).contains(&l)));
    }
});
