//! Fuzz target: the IDX parser (headers, counts, gzip, labels) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte says where the images file ends and the labels file begins.
    let Some((&cut, rest)) = data.split_first() else { return };
    let cut = (cut as usize * rest.len()) / 256;
    let (images, labels) = rest.split_at(cut);
    if let Ok(split) = flowload_core::testing::parse_idx(images, labels, 10) {
        assert_eq!(split.pixels.len(), split.len() * split.shape.len());
        assert!(split.labels.iter().all(|&l| (0..10).contains(&l)));
    }
});
