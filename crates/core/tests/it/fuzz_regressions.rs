//! Inputs the fuzzers (fuzz/) found crashing, kept as regression tests: each must now give a
//! clean error (or a result), never a panic. The harness logic mirrors fuzz/fuzz_targets/.

use std::path::Path;

use flowload_core::testing::{Augmenter, SampleKey, parse_idx};
use flowload_core::{Shape, Transforms};

fn inputs(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fuzz_inputs");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

/// As fuzz_targets/idx.rs: the first byte splits images from labels.
fn idx_harness(data: &[u8]) -> Result<(), String> {
    let Some((&cut, rest)) = data.split_first() else {
        return Ok(());
    };
    let (images, labels) = rest.split_at((cut as usize * rest.len()) / 256);
    parse_idx(images, labels, 10)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn idx_crashes_are_clean_errors() {
    let found = inputs("idx-");
    assert!(!found.is_empty());
    for (name, data) in found {
        let outcome = std::panic::catch_unwind(|| idx_harness(&data));
        let err = outcome
            .unwrap_or_else(|_| panic!("{name} panics again"))
            .unwrap_err();
        assert!(
            err.contains("<images>") || err.contains("<labels>"),
            "{name}: {err}"
        );
    }
}

#[test]
fn the_count_overflow_says_what_is_wrong() {
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fuzz_inputs/idx-count-overflow.bin"),
    )
    .unwrap();
    let err = idx_harness(&data).unwrap_err();
    assert!(err.contains("more than can exist"), "{err}");
}

#[test]
fn decode_crashes_are_clean_errors() {
    for (name, data) in inputs("decode-") {
        let [mode, size, bytes @ ..] = &data[..] else {
            continue;
        };
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
        let key = SampleKey {
            epoch: 0,
            record: 0,
        };
        let outcome = std::panic::catch_unwind(move || {
            Augmenter::new()
                .render(bytes, &transforms, key, shape, &mut out)
                .map(|_| ())
        });
        assert!(outcome.is_ok(), "{name} panics again");
    }
}
