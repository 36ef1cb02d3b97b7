//! Measures the JPEG decoders flowload could use, on one core, over every `.jpg` under a
//! directory: zune-jpeg through `image`, libjpeg-turbo (TurboJPEG 3) whole, and flowload's
//! fused decode for a random resized crop and for the evaluation view.
//!
//! `cargo run --release -p flowload-core --example jpeg_decoders -- data/photos/train`

use std::time::Instant;

use flowload_core::testing::{Augmenter, JpegDecoder, SampleKey, Window};
use flowload_core::{Shape, Transforms};

fn main() {
    let dir = std::env::args().nth(1).expect("usage: jpeg_decoders DIR");
    let mut files: Vec<_> = glob::glob(&format!("{dir}/**/*.jpg"))
        .expect("a glob")
        .filter_map(|p| p.ok())
        .collect();
    files.sort();
    let images: Vec<Vec<u8>> = files
        .iter()
        .map(|p| std::fs::read(p).expect("readable"))
        .collect();
    let mb = images.iter().map(Vec::len).sum::<usize>() as f64 / (1 << 20) as f64;
    println!("{} JPEGs, {mb:.1} MiB", images.len());
    let time = |name: &str, f: &mut dyn FnMut(usize, &[u8])| {
        let mut rates = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            for (i, b) in images.iter().enumerate() {
                f(i, b);
            }
            rates.push(images.len() as f64 / t.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        println!("| {name} | {:.0} |", rates[1]);
    };
    println!("| decoder (1 core, median of 3 passes) | images/s |\n|---|---:|");
    time("zune-jpeg (image 0.25), whole image to RGB", &mut |_, b| {
        let img =
            image::load_from_memory_with_format(b, image::ImageFormat::Jpeg).expect("decodes");
        std::hint::black_box(img.to_rgb8());
    });
    let mut jpeg = JpegDecoder::new().expect("TurboJPEG starts");
    let mut pixels = Vec::new();
    time(
        "libjpeg-turbo 3.1 (TurboJPEG), whole image to RGB",
        &mut |_, b| {
            let h = jpeg.header(b).expect("a JPEG");
            let whole = Window {
                denom: 1,
                left: 0,
                top: 0,
                width: h.width,
                height: h.height,
            };
            jpeg.decode(b, &h, whole, 3, &mut pixels).expect("decodes");
        },
    );
    let out = Shape {
        channels: 3,
        height: 224,
        width: 224,
    };
    let mut buf = vec![0u8; out.len()];
    let list = |specs: &[&str]| {
        Transforms::new(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>(), 0).expect("valid")
    };
    for (name, specs, mut aug) in [
        (
            "libjpeg-turbo 3.1 (TurboJPEG), whole image, + resize:224x224",
            list(&["resize:224x224"]),
            Augmenter::unfused(),
        ),
        (
            "libjpeg-turbo, whole image, + random_resized_crop:224",
            list(&["random_resized_crop:224"]),
            Augmenter::unfused(),
        ),
        (
            "flowload fused: region + DCT scale, random_resized_crop:224",
            list(&["random_resized_crop:224"]),
            Augmenter::new(),
        ),
        (
            "flowload fused: resize:256 + center_crop:224",
            list(&["resize:256", "center_crop:224"]),
            Augmenter::new(),
        ),
        (
            "flowload fused: resize:224x224 (--resize)",
            list(&["resize:224x224"]),
            Augmenter::new(),
        ),
    ] {
        time(name, &mut |i, b| {
            let key = SampleKey {
                epoch: 0,
                record: i as u32,
            };
            aug.render(b, &specs, key, out, &mut buf).expect("renders");
        });
    }
}
