//! The statistics oracle: the streaming, differential-merged statistics equal a two-pass
//! recomputation over the same pixels, at every worker count.

use crate::common;

use flowload_core::{Split, Stats};

/// Textbook two-pass mean and population std per channel, in f64, on the 0..1 scale.
fn two_pass(split: &Split) -> (Vec<f64>, Vec<f64>) {
    let (c, plane) = (split.shape.channels, split.shape.plane());
    let values = |ch: usize| {
        split
            .pixels
            .chunks_exact(split.shape.len())
            .flat_map(move |img| {
                img[ch * plane..(ch + 1) * plane]
                    .iter()
                    .map(|&p| p as f64 / 255.0)
            })
    };
    let mean: Vec<f64> = (0..c)
        .map(|ch| values(ch).sum::<f64>() / (split.len() * plane) as f64)
        .collect();
    let std = (0..c)
        .map(|ch| {
            let ss: f64 = values(ch).map(|v| (v - mean[ch]).powi(2)).sum();
            (ss / (split.len() * plane) as f64).sqrt()
        })
        .collect();
    (mean, std)
}

fn check(spec: &str) {
    let data = common::open(spec);
    let (mean, std) = two_pass(data.train.as_raw().unwrap());
    for workers in [0, 1, 2, 3] {
        let s = Stats::pass(&data.train)
            .workers(workers)
            .run()
            .unwrap()
            .stats;
        assert_eq!(s.images, data.train.len());
        assert_eq!(s.mean.len(), data.train.shape().channels);
        for c in 0..mean.len() {
            assert!(
                (s.mean[c] - mean[c]).abs() < 1e-12,
                "workers={workers} c={c} mean {} vs {}",
                s.mean[c],
                mean[c]
            );
            assert!(
                (s.std[c] - std[c]).abs() < 1e-9,
                "workers={workers} c={c} std {} vs {}",
                s.std[c],
                std[c]
            );
        }
    }
}

#[test]
fn one_channel_matches_two_pass_at_every_worker_count() {
    // 9000 images: more than two 4096-image chunks, so several workers each merge several.
    check("synthetic:images=9000,channels=1,size=12x12,seed=3");
}

#[test]
fn three_channels_match_two_pass_and_differ_from_each_other() {
    check("synthetic:images=5000,channels=3,size=8x8,seed=4");
    let data = common::open("synthetic:images=500,channels=3,size=8x8,seed=4");
    let s = Stats::pass(&data.train).workers(2).run().unwrap().stats;
    assert!(
        s.mean[0] < s.mean[1] && s.mean[1] < s.mean[2],
        "{:?}",
        s.mean
    );
}

#[test]
fn fewer_images_than_workers_still_works() {
    check("synthetic:images=2,channels=1,size=4x4,seed=5");
}
