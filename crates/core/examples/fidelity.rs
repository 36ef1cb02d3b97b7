//! Renders `random_resized_crop:S` of every JPEG under a directory through flowload's fused
//! decode (a region at a DCT scale) and its unfused reference (the whole JPEG at full scale),
//! for scripts/fidelity.py to compare with torchvision's `resized_crop(..., antialias=True)`
//! on the same crop boxes.
//!
//! `cargo run --release -p flowload-core --example fidelity -- PHOTO_DIR OUT_DIR [PHOTOS [DRAWS]]`
//! writes OUT_DIR/samples.jsonl (one line per sample: file, size, box) and, per sample,
//! `<n>.fused` and `<n>.full`, the `[3,S,S]` u8 pixels.

use flowload_core::testing::{Augmenter, SampleKey, first_region};
use flowload_core::{Shape, Transforms};

fn main() {
    let mut args = std::env::args().skip(1);
    let (dir, out) = (
        args.next().expect("PHOTO_DIR"),
        args.next().expect("OUT_DIR"),
    );
    let photos: usize = args.next().map_or(48, |n| n.parse().expect("PHOTOS"));
    let draws: u32 = args.next().map_or(4, |n| n.parse().expect("DRAWS"));
    let mut files: Vec<_> = glob::glob(&format!("{dir}/**/*.jpg"))
        .expect("a glob")
        .filter_map(|p| p.ok())
        .collect();
    files.sort();
    files.truncate(photos);
    std::fs::create_dir_all(&out).expect("OUT_DIR");
    let mut lines = String::new();
    let (mut fused, mut full) = (Augmenter::new(), Augmenter::unfused());
    let mut n = 0;
    for size in [64usize, 128, 224] {
        let t = Transforms::new(&[format!("random_resized_crop:{size}")], 0).expect("a transform");
        let shape = Shape {
            channels: 3,
            height: size,
            width: size,
        };
        for (record, file) in files.iter().enumerate() {
            let bytes = std::fs::read(file).expect("a readable photo");
            let (w, h) = image::image_dimensions(file).expect("a JPEG header");
            for epoch in 0..draws {
                let key = SampleKey {
                    epoch,
                    record: record as u32,
                };
                let (top, left, bh, bw) =
                    first_region(&t, (h as usize, w as usize), key).expect("a crop");
                let mut a = vec![0u8; shape.len()];
                let mut b = vec![0u8; shape.len()];
                fused.render(&bytes, &t, key, shape, &mut a).expect("fused");
                full.render(&bytes, &t, key, shape, &mut b).expect("full");
                std::fs::write(format!("{out}/{n}.fused"), &a).expect("written");
                std::fs::write(format!("{out}/{n}.full"), &b).expect("written");
                lines.push_str(&format!(
                    "{{\"n\":{n},\"file\":{:?},\"size\":{size},\"top\":{top},\"left\":{left},\"height\":{bh},\"width\":{bw}}}\n",
                    file.display().to_string()
                ));
                n += 1;
            }
        }
    }
    std::fs::write(format!("{out}/samples.jsonl"), lines).expect("written");
    println!("{n} samples in {out}");
    timing(&files, draws);
}

/// What the DCT-scale rule costs: `random_resized_crop:64` of every photo, on this thread,
/// with each headroom, interleaved over 5 rounds (a slow spell hits each alike), median
/// images/s.
fn timing(files: &[std::path::PathBuf], draws: u32) {
    let photos: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("read"))
        .collect();
    let shape = Shape {
        channels: 3,
        height: 64,
        width: 64,
    };
    let t = Transforms::new(&["random_resized_crop:64".into()], 0).expect("a transform");
    let mut out = vec![0u8; shape.len()];
    let headrooms = [2, 3, 4];
    let mut rates = vec![Vec::new(); headrooms.len()];
    for _round in 0..5 {
        for (i, &headroom) in headrooms.iter().enumerate() {
            let mut augmenter = Augmenter::with_dct_headroom(headroom);
            let started = std::time::Instant::now();
            for epoch in 0..draws {
                for (record, bytes) in photos.iter().enumerate() {
                    let key = SampleKey {
                        epoch,
                        record: record as u32,
                    };
                    augmenter
                        .render(bytes, &t, key, shape, &mut out)
                        .expect("render");
                }
            }
            rates[i].push((photos.len() * draws as usize) as f64 / started.elapsed().as_secs_f64());
        }
    }
    for (headroom, mut r) in headrooms.into_iter().zip(rates) {
        r.sort_by(f64::total_cmp);
        println!(
            "headroom {headroom}: random_resized_crop:64 at {:.0} images/s on one thread (median of 5, {:.0}-{:.0})",
            r[2], r[0], r[4]
        );
    }
}
