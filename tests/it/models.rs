//! Bring your own model: a TorchScript file trains in flowload as in PyTorch (the same losses,
//! epoch by epoch, from the same file); the trained model is saved and Python's evaluation of it
//! gives flowload's test accuracy; a model that does not fit is a one-line error that leaves
//! nothing behind; `--resume` tells model files apart.

use std::path::{Path, PathBuf};
use std::process::Command;

use flowload::results::{model_path, read_run, run_path};
use flowload_core::{Dataset, Records, Split};

use crate::common;

const MINI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/fashion-mnist-mini");

/// The first `train` and `test` records of the shipped mini set, as IDX files in `dir`.
pub(crate) fn subset(dir: &Path, train: usize, test: usize) {
    let data = common::open(MINI);
    let cut = |r: &Records, n: usize| -> Records {
        let s = r.as_raw().expect("raw records");
        Split {
            origin: s.origin.clone(),
            shape: s.shape,
            pixels: s.pixels[..n * s.shape.len()].to_vec(),
            labels: s.labels[..n].to_vec(),
            classes: s.classes,
            work: s.work,
        }
        .into()
    };
    let cut = Dataset {
        name: data.name.clone(),
        train: cut(&data.train, train),
        test: data.test.as_ref().map(|t| cut(t, test)),
    };
    std::fs::create_dir_all(dir).unwrap();
    common::write_idx(dir, &cut);
}

/// scripts/models.py: `seed.pt` and `small_resnet.pt` for 1x28x28, 10 classes, in `dir`.
pub(crate) fn models(dir: &Path, extra: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/models.py");
    let o = Command::new(common::python())
        .arg(script)
        .arg(dir)
        .args(extra)
        .output()
        .expect("the venv python from scripts/env.sh");
    assert!(o.status.success(), "models.py: {}", common::stderr(&o));
}

fn parity(args: &[&str]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/parity.py");
    let o = Command::new(common::python())
        .arg(script)
        .args(args)
        .output()
        .expect("the venv python");
    assert!(o.status.success(), "parity.py: {}", common::stderr(&o));
    serde_json::from_str(common::stdout(&o).trim()).unwrap()
}

struct Trained {
    losses: Vec<f64>,
    test_accuracy: f64,
    mean: String,
    std: String,
    saved: PathBuf,
}

/// Trains `model` in flowload: 2 epochs, in file order, one libtorch thread.
fn flowload_trains(data: &Path, out: &Path, model: &str, optimizer: &[&str]) -> Trained {
    let mut args = vec![
        "run",
        "--data",
        data.to_str().unwrap(),
        "--model",
        model,
        "--batch-size",
        "100",
        "--epochs",
        "2",
        "--no-shuffle",
        "--device",
        "cpu",
        "--torch-threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(optimizer);
    let o = common::flowload(&args);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let rows = read_run(&run_path(out, 1)).unwrap().rows;
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let stats = &summary["runs"][0]["stats"];
    Trained {
        losses: rows.iter().map(|r| r.loss.unwrap()).collect(),
        test_accuracy: rows.last().unwrap().test_accuracy.unwrap(),
        mean: stats["mean"].to_string(),
        std: stats["std"].to_string(),
        saved: model_path(out, 1),
    }
}

/// The same file trained by PyTorch, and the saved model evaluated by PyTorch; returns the
/// largest relative difference of the epochs' losses.
fn check_parity(data: &Path, out: &Path, model: &str, flags: &[&str], python: &[&str]) -> f64 {
    let ours = flowload_trains(data, out, model, flags);
    let d = data.to_str().unwrap();
    let mut args = vec![
        "train",
        "--model",
        model,
        "--data",
        d,
        "--mean",
        &ours.mean,
        "--std",
        &ours.std,
        "--batch-size",
        "100",
        "--epochs",
        "2",
        "--threads",
        "1",
    ];
    args.extend_from_slice(python);
    let theirs = parity(&args);
    let theirs: Vec<f64> = theirs["loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let worst = ours
        .losses
        .iter()
        .zip(&theirs)
        .map(|(a, b)| ((a - b) / b).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "{model} {flags:?}: flowload {:?}, PyTorch {theirs:?}, largest relative difference {worst:e}",
        ours.losses
    );
    assert!(worst <= 1e-4, "losses differ by {worst:e} (relative)");
    // PyTorch evaluates the saved model: the test accuracy flowload reported.
    let saved = ours.saved.to_str().unwrap();
    let eval = parity(&[
        "evaluate", "--model", saved, "--data", d, "--mean", &ours.mean, "--std", &ours.std,
    ]);
    assert_eq!(eval["test_accuracy"].as_f64().unwrap(), ours.test_accuracy);
    worst
}

#[test]
fn a_torchscript_model_trains_as_in_pytorch_and_its_saved_model_scores_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, dir) = (tmp.path().join("data"), tmp.path().join("models"));
    subset(&data, 2000, 500);
    models(&dir, &["--seed", "3"]);
    let seed = dir.join("seed.pt");
    let resnet = dir.join("small_resnet.pt");
    let out = |n: &str| tmp.path().join(n);
    // Adam (the default) plain and with L2 decay, AdamW, SGD with momentum and weight decay,
    // and the BatchNorm ResNet with Adam.
    let cases: [(&Path, &str, &[&str]); 5] = [
        (&seed, "adam", &["--optimizer", "adam", "--lr", "0.001"]),
        (
            &seed,
            "adam-l2",
            &[
                "--optimizer",
                "adam",
                "--lr",
                "0.001",
                "--weight-decay",
                "0.01",
            ],
        ),
        (
            &seed,
            "adamw",
            &[
                "--optimizer",
                "adamw",
                "--lr",
                "0.001",
                "--weight-decay",
                "0.01",
            ],
        ),
        (
            &seed,
            "sgd",
            &[
                "--optimizer",
                "sgd",
                "--lr",
                "0.05",
                "--momentum",
                "0.9",
                "--weight-decay",
                "0.0005",
            ],
        ),
        (&resnet, "resnet", &["--optimizer", "adam", "--lr", "0.001"]),
    ];
    for (model, name, flags) in cases {
        let worst = check_parity(&data, &out(name), model.to_str().unwrap(), flags, flags);
        // The same kernels in the same order: the training is PyTorch's, bit for bit, and
        // what differs is the last bit of the f64 sums of the epoch's losses, if anything.
        assert!(worst <= 1e-12, "{name}: {worst:e}");
    }
}

#[test]
fn the_seed_network_is_saved_for_python_and_scores_the_same_there() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    subset(&data, 1000, 300);
    let ours = flowload_trains(&data, &tmp.path().join("out"), "seed", &[]);
    let eval = parity(&[
        "evaluate",
        "--model",
        ours.saved.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--mean",
        &ours.mean,
        "--std",
        &ours.std,
    ]);
    assert_eq!(eval["test_accuracy"].as_f64().unwrap(), ours.test_accuracy);
}

#[test]
fn a_model_that_does_not_fit_is_a_one_line_error_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    subset(&data, 200, 50);
    let (rgb, five) = (tmp.path().join("rgb"), tmp.path().join("five"));
    models(&rgb, &["--channels", "3", "--size", "32"]);
    models(&five, &["--classes", "5"]);
    let junk = tmp.path().join("junk.pt");
    std::fs::write(&junk, b"PK\x03\x04 not a model").unwrap();
    let missing = tmp.path().join("missing.pt");
    // Every parameter frozen, and no parameter at all: nothing to train.
    let (frozen, bare) = (tmp.path().join("frozen.pt"), tmp.path().join("bare.pt"));
    // TorchScript reads a class's source: the script is a file, not `-c`.
    let script = tmp.path().join("untrainable.py");
    std::fs::write(
        &script,
        "import sys, torch, torch.nn as nn\n\
         net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).requires_grad_(False)\n\
         torch.jit.script(net).save(sys.argv[1])\n\
         class Bare(nn.Module):\n    def forward(self, x):\n        return x.flatten(1)[:, :10]\n\
         torch.jit.script(Bare()).save(sys.argv[2])\n",
    )
    .unwrap();
    let o = Command::new(common::python())
        .args([
            script.to_str().unwrap(),
            frozen.to_str().unwrap(),
            bare.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    let cases: [(&Path, &[&str]); 7] = [
        (&missing, &["No such file"]),
        (&junk, &["not a TorchScript module"]),
        (tmp.path(), &["is not a file"]),
        (
            &rgb.join("small_resnet.pt"),
            &["[2, 1, 28, 28]", "to have 3 channels"],
        ),
        (
            &five.join("seed.pt"),
            &["returns Float [2, 5]", "[2, 10] (10 classes)"],
        ),
        (&frozen, &["has no trainable parameters"]),
        (&bare, &["has no trainable parameters"]),
    ];
    let out = tmp.path().join("out");
    for (model, words) in cases {
        let o = common::flowload(&[
            "run",
            "--data",
            data.to_str().unwrap(),
            "--model",
            &format!("seed,{}", model.display()),
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
        let err = common::stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(&format!("model {}", model.display())), "{err}");
        for w in words {
            assert!(err.contains(w), "{w}: {err}");
        }
        // Checked before the first run: not even the seed's run was written.
        assert!(!out.exists(), "{err}");
    }
}

#[test]
fn models_and_optimizers_are_grid_axes_recorded_with_the_model_file_for_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, dir, out) = (
        tmp.path().join("data"),
        tmp.path().join("models"),
        tmp.path().join("out"),
    );
    subset(&data, 300, 100);
    models(&dir, &[]);
    let seed_pt = dir.join("seed.pt");
    let run = |extra: &[&str]| {
        let models = format!("seed,{}", seed_pt.display());
        let mut args = vec![
            "run",
            "--data",
            data.to_str().unwrap(),
            "--model",
            &models,
            "--optimizer",
            "adam,sgd",
            "--momentum",
            "0.9",
            "--epochs",
            "1",
            "--batch-size",
            "50",
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = common::flowload(&args);
        assert!(o.status.success(), "{}", common::stderr(&o));
        common::stdout(&o)
    };
    run(&[]);
    let grid: Vec<(String, String)> = (1..=4)
        .map(|r| {
            let p = read_run(&run_path(&out, r)).unwrap().params;
            (p.model, p.optimizer.name().to_string())
        })
        .collect();
    let pt = seed_pt.display().to_string();
    assert_eq!(
        grid,
        [
            ("seed".into(), "adam".into()),
            ("seed".into(), "sgd".into()),
            (pt.clone(), "adam".into()),
            (pt.clone(), "sgd".into())
        ]
    );
    for r in 1..=4 {
        assert!(model_path(&out, r).is_file(), "run {r} saved its model");
    }
    // The report tells the axes apart: its verdicts compare models and optimizers.
    let o = common::flowload(&["report", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let report = common::stdout(&o);
    assert!(report.contains("optimizer=sgd vs adam"), "{report}");
    assert!(report.contains("model="), "{report}");
    let text = run(&["--resume"]);
    assert_eq!(text.matches("already complete").count(), 4, "{text}");
    // Another model file at the same path: runs 3 and 4 are run again, 1 and 2 are not.
    models(&dir, &["--seed", "9"]);
    let text = run(&["--resume"]);
    assert_eq!(text.matches("already complete").count(), 2, "{text}");
    // SGD's momentum without SGD is refused.
    let o = common::flowload(&[
        "run",
        "--data",
        data.to_str().unwrap(),
        "--momentum",
        "0.9",
        "--out",
        tmp.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        common::stderr(&o).contains("momentum is SGD's"),
        "{}",
        common::stderr(&o)
    );
}
