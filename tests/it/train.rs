//! The training sink: loss goes down, accuracy rises, CPU results are bit-for-bit repeatable,
//! and an explicit CUDA device without CUDA is a clear error.

use crate::common;

use flowload::config::{SinkKind, SweepConfig};
use flowload::results::Existing;
use flowload::sweep::{SweepOptions, run_sweep};
use flowload_core::Workers;

fn pipeline(out: &std::path::Path) -> SweepConfig {
    let mut p = SweepConfig {
        data: "synthetic:images=1200,channels=1,size=16x16,classes=4,seed=11,test=300".into(),
        epochs: 4,
        seed: 5,
        sink: SinkKind::Train,
        out: Some(out.into()),
        ..SweepConfig::default()
    };
    p.grid.batch_size = vec![50];
    p.grid.device = vec!["cpu".into()];
    p
}

#[test]
fn loss_goes_down_and_accuracy_passes_ninety_percent() {
    let out = tempfile::tempdir().unwrap();
    let sweep = run_sweep(&pipeline(out.path()), SweepOptions::default(), |_, _| {}).unwrap();
    let rows = &sweep.runs[0].epochs;
    assert_eq!(rows.len(), 4);
    let losses: Vec<f64> = rows.iter().map(|r| r.loss.unwrap()).collect();
    assert!(losses[3] < losses[0] * 0.5, "{losses:?}");
    assert!(rows[3].accuracy.unwrap() > 0.9, "{:?}", rows[3]);
    assert!(rows[3].test_accuracy.unwrap() > 0.9, "{:?}", rows[3]);
    assert!(
        rows.iter()
            .all(|r| r.images == 1200 && r.test_loss.is_some())
    );
}

#[test]
fn same_seed_same_losses_bit_for_bit_at_any_worker_count() {
    let out = tempfile::tempdir().unwrap();
    let mut p = pipeline(out.path());
    p.epochs = 2;
    p.grid.workers = vec![0.into(), 1.into(), 2.into(), Workers::Auto];
    let losses = |p: &SweepConfig| -> Vec<Vec<u64>> {
        let options = SweepOptions {
            existing: Existing::Overwrite,
            ..SweepOptions::default()
        };
        run_sweep(p, options, |_, _| {})
            .unwrap()
            .runs
            .iter()
            .map(|r| {
                r.epochs
                    .iter()
                    .flat_map(|e| [e.loss.unwrap().to_bits(), e.test_loss.unwrap().to_bits()])
                    .collect()
            })
            .collect()
    };
    let a = losses(&p);
    assert_eq!(a[0], a[1], "workers 0 vs 1");
    assert_eq!(a[0], a[2], "workers 0 vs 2");
    assert_eq!(a[0], a[3], "workers 0 vs auto");
    assert_eq!(a, losses(&p), "a second sweep");
    p.seed = 6;
    assert_ne!(a[0], losses(&p)[0], "another seed");
}

#[test]
fn explicit_cuda_without_cuda_is_a_clear_error() {
    if tch::Cuda::is_available() {
        return; // this machine has a GPU: the error cannot happen here
    }
    for device in ["cuda", "cuda:1"] {
        let o = common::flowload(&[
            "run",
            "--data",
            "synthetic:images=20,size=16x16",
            "--device",
            device,
        ]);
        assert_eq!(o.status.code(), Some(1));
        let err = common::stderr(&o);
        assert!(
            err.contains(&format!("--device {device}")) && err.contains("not available"),
            "{err}"
        );
    }
    let o = common::flowload(&[
        "run",
        "--data",
        "synthetic:images=20,size=16x16",
        "--device",
        "gpu",
    ]);
    assert!(common::stderr(&o).contains("expected auto, cpu, cuda or cuda:N"));
}
