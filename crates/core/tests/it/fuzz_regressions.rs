//! Inputs the fuzzers (fuzz/) found crashing, kept as regression tests: each must now give a
//! clean error (or a result), never a panic. They replay the targets' own harnesses,
//! `testing::fuzz_idx` and `testing::fuzz_decode`.

use std::path::Path;

use flowload_core::Shape;
use flowload_core::testing::{encode_png, fuzz_decode, fuzz_idx};

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

/// As fuzz_targets/idx.rs, with its error as text.
fn idx_harness(data: &[u8]) -> Result<(), String> {
    match fuzz_idx(data) {
        None | Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e.to_string()),
    }
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

/// The decode target's harness on a real PNG and on every truncation of it: the whole record
/// renders, each cut that loses pixels is a clean error, and any crash input kept under
/// `decode-` replays.
#[test]
fn decode_crashes_are_clean_errors() {
    // mode 1: three channels, no resize; size 0x43: 4 high, 5 wide.
    let shape = Shape {
        channels: 3,
        height: 4,
        width: 5,
    };
    let pixels: Vec<u8> = (0..shape.len()).map(|i| (i * 7) as u8).collect();
    let mut whole = vec![1u8, 0x43];
    whole.extend(encode_png(&pixels, shape));
    assert_eq!(fuzz_decode(&whole), Some(Ok(())));
    // Cuts inside the closing 12-byte IEND chunk leave every pixel there, and the decoder
    // accepts them; any cut before it loses pixels and must be refused.
    for cut in 2..whole.len() - 12 {
        let outcome = std::panic::catch_unwind(|| fuzz_decode(&whole[..cut]));
        let outcome = outcome.unwrap_or_else(|_| panic!("a PNG cut at {cut} bytes panics"));
        assert!(
            matches!(outcome, Some(Err(_))),
            "a PNG cut at {cut} of {} bytes decodes",
            whole.len()
        );
    }
    for (name, data) in inputs("decode-") {
        let outcome = std::panic::catch_unwind(move || fuzz_decode(&data));
        assert!(outcome.is_ok(), "{name} panics again");
    }
}
