//! Checkpoints: a training run killed with `kill -9` anywhere goes on from its checkpoint under
//! `--resume`, and ends with the rows and the model of a run never killed, bit for bit on the
//! CPU: at another worker count, with each optimizer, with a TorchScript BatchNorm model and
//! one with dropout. A corrupt checkpoint falls back to the one before, or to epoch 1; one of
//! another config is not used; a completed run's is removed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowload::results::{EpochMetrics, model_path, read_run, run_path};
use tch::Tensor;

use crate::common;
use crate::models::{models, subset};

/// A run of 4 epochs of 40 batches on 2,000 images, augmented, one libtorch thread.
fn args(data: &Path, out: &Path, model: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "run",
        "--data",
        data.to_str().unwrap(),
        "--model",
        model,
        "--epochs",
        "4",
        "--batch-size",
        "50",
        "--augment",
        "random_crop:28,padding=2",
        "--augment",
        "hflip",
        "--device",
        "cpu",
        "--torch-threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run(args: &[String]) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = common::flowload(&refs);
    assert!(o.status.success(), "{}", common::stderr(&o));
    o
}

/// What must match bit for bit: each epoch's training and test figures, and the model's tensors.
/// Each epoch's loss, accuracy, test loss and test accuracy; the saved model's tensors by name.
type Outcome = (Vec<[Option<f64>; 4]>, Vec<(String, Tensor)>);

fn outcome(out: &Path) -> Outcome {
    let rows: Vec<EpochMetrics> = read_run(&run_path(out, 1)).unwrap().rows;
    let figures = rows
        .iter()
        .map(|r| [r.loss, r.accuracy, r.test_loss, r.test_accuracy])
        .collect();
    let mut tensors = match Tensor::load_multi(model_path(out, 1)) {
        Ok(t) => t,
        // A TorchScript model is saved as TorchScript: compare its parameters.
        Err(_) => tch::CModule::load(model_path(out, 1))
            .unwrap()
            .named_parameters()
            .unwrap(),
    };
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    (figures, tensors)
}

fn same(a: &Outcome, b: &Outcome) {
    assert_eq!(a.0, b.0, "the epochs' figures differ");
    assert_eq!(a.1.len(), b.1.len());
    for ((n1, t1), (n2, t2)) in a.1.iter().zip(&b.1) {
        assert_eq!(n1, n2);
        assert!(t1.equal(t2), "the saved model's {n1} differs");
    }
}

/// Whether the run in `out` started over: no epoch says it went on from a checkpoint.
fn started_over(out: &Path) -> bool {
    let rows = read_run(&run_path(out, 1)).unwrap().rows;
    rows.iter().all(|r| r.resumed_from.is_none())
}

/// Starts `args`, waits for its first checkpoint and then `after`, and kills it with SIGKILL.
fn kill_after_first_checkpoint(args: &[String], out: &Path, after: Duration) {
    let cache = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowload"))
        .args(args)
        .env(flowload_core::CACHE_ENV, cache.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = out.join("checkpoints/run-0001/state.pt");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !state.exists() {
        assert!(Instant::now() < deadline, "no checkpoint was written");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first checkpoint"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(after);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before it was killed: kill it sooner"
    );
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
    assert!(!run_path(out, 1).exists(), "the killed run has no run file");
}

struct Case {
    name: &'static str,
    model: &'static str,
    flags: &'static [&'static str],
    workers: &'static str,
    resume_workers: &'static str,
    after_ms: u64,
}

#[test]
fn a_run_killed_anywhere_resumes_to_the_rows_and_model_of_a_run_never_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    subset(&data, 2000, 300);
    models(&tmp.path().join("models"), &["--seed", "5"]);
    let resnet = tmp.path().join("models/small_resnet.pt");
    // Dropout draws from libtorch's generator, which the trainer seeds per step.
    let dropout = tmp.path().join("models/dropout.pt");
    let o = Command::new(common::python())
        .args(["-c", "import sys, torch; from torch import nn; torch.manual_seed(1); torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 10))).save(sys.argv[1])"])
        .arg(&dropout)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    let cases = [
        // Killed just after the first checkpoint: inside epoch 1.
        Case {
            name: "adam",
            model: "seed",
            flags: &["--optimizer", "adam", "--lr", "0.001"],
            workers: "0",
            resume_workers: "2",
            after_ms: 0,
        },
        Case {
            name: "sgd",
            model: "seed",
            flags: &[
                "--optimizer",
                "sgd",
                "--lr",
                "0.05",
                "--momentum",
                "0.9",
                "--weight-decay",
                "0.0005",
            ],
            workers: "1",
            resume_workers: "auto",
            after_ms: 450,
        },
        Case {
            name: "adamw",
            model: "seed",
            flags: &[
                "--optimizer",
                "adamw",
                "--lr",
                "0.001",
                "--weight-decay",
                "0.01",
            ],
            workers: "auto",
            resume_workers: "0",
            after_ms: 900,
        },
        Case {
            name: "resnet",
            model: "resnet",
            flags: &["--optimizer", "sgd", "--lr", "0.02", "--momentum", "0.9"],
            workers: "2",
            resume_workers: "1",
            after_ms: 700,
        },
        Case {
            name: "dropout",
            model: "dropout",
            flags: &["--optimizer", "adam", "--lr", "0.001"],
            workers: "1",
            resume_workers: "2",
            after_ms: 300,
        },
    ];
    for case in cases {
        let model: PathBuf = match case.model {
            "resnet" => resnet.clone(),
            "dropout" => dropout.clone(),
            _ => "seed".into(),
        };
        let model = model.to_str().unwrap();
        let (reference, killed) = (
            tmp.path().join(format!("{}-ref", case.name)),
            tmp.path().join(format!("{}-killed", case.name)),
        );
        let with = |workers: &'static str, every: &'static str| -> Vec<&'static str> {
            let mut f = case.flags.to_vec();
            f.extend(["--workers", workers, "--checkpoint-every", every]);
            f
        };
        // Every checkpoint setting trains the same numbers: the reference has none.
        let ref_args = args(&data, &reference, model, &with(case.workers, "0"));
        run(&ref_args);
        let kill_args = args(&data, &killed, model, &with(case.workers, "0.01"));
        kill_after_first_checkpoint(&kill_args, &killed, Duration::from_millis(case.after_ms));
        let mut resume_args = args(&data, &killed, model, &with(case.resume_workers, "0.01"));
        resume_args.push("--resume".into());
        let o = run(&resume_args);
        let said = common::stderr(&o);
        assert!(
            said.contains("goes on from its checkpoint"),
            "{}: {said}",
            case.name
        );
        same(&outcome(&reference), &outcome(&killed));
        let rows = read_run(&run_path(&killed, 1)).unwrap().rows;
        let resumed: Vec<_> = rows.iter().filter_map(|r| r.resumed_from.clone()).collect();
        assert_eq!(
            resumed.len(),
            1,
            "{}: one epoch says where it resumed: {resumed:?}",
            case.name
        );
        // Every epoch wrote checkpoints; one rebuilt from a checkpoint's rows lacks the
        // write of that very checkpoint, and may show none.
        for r in &rows {
            assert!(r.checkpoint_seconds >= 0.0, "{}: {r:?}", case.name);
        }
        let after = rows.iter().skip_while(|r| r.resumed_from.is_none());
        for r in after {
            assert!(
                r.checkpoint_seconds > 0.0 && r.checkpoint_share > 0.0,
                "{}: {r:?}",
                case.name
            );
        }
        assert!(
            read_run(&run_path(&reference, 1))
                .unwrap()
                .rows
                .iter()
                .all(|r| r.checkpoint_seconds == 0.0)
        );
        // The completed run's checkpoint is gone.
        assert!(!killed.join("checkpoints").exists(), "{}", case.name);
        eprintln!(
            "{}: resumed from {resumed:?}, the same rows and model",
            case.name
        );
    }
}

#[test]
fn a_corrupt_checkpoint_falls_back_and_one_of_another_config_is_not_used() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    subset(&data, 1000, 200);
    let reference = tmp.path().join("ref");
    run(&args(
        &data,
        &reference,
        "seed",
        &["--checkpoint-every", "0"],
    ));
    let out = tmp.path().join("out");
    let a = args(
        &data,
        &out,
        "seed",
        &["--checkpoint-every", "0.01", "--keep-checkpoints"],
    );
    run(&a);
    let dir = out.join("checkpoints/run-0001");
    assert!(dir.join("state.pt").exists() && dir.join("previous.pt").exists());
    // As if killed after the last checkpoint, before the run file and the model were in place.
    let forget = || {
        std::fs::remove_file(run_path(&out, 1)).unwrap();
        std::fs::remove_file(model_path(&out, 1)).unwrap();
    };
    let mut resume = a.clone();
    resume.push("--resume".into());

    // Stopped after the last epoch's checkpoint: nothing is left to train.
    forget();
    let said = common::stderr(&run(&resume));
    assert!(said.contains("epoch 5 batch 0 (4 epoch(s) done)"), "{said}");
    same(&outcome(&reference), &outcome(&out));

    // state.pt cut short: a warning names it, and previous.pt is used.
    forget();
    let state = std::fs::read(dir.join("state.pt")).unwrap();
    std::fs::write(dir.join("state.pt"), &state[..state.len() / 2]).unwrap();
    let said = common::stderr(&run(&resume));
    assert!(said.contains("state.pt is not usable"), "{said}");
    assert!(said.contains("previous.pt"), "{said}");
    same(&outcome(&reference), &outcome(&out));

    // A byte flipped in a tensor: the checksum finds it.
    forget();
    let mut flipped = std::fs::read(dir.join("state.pt")).unwrap();
    let at = flipped.len() / 3;
    flipped[at] ^= 0x10;
    std::fs::write(dir.join("state.pt"), &flipped).unwrap();
    std::fs::write(dir.join("previous.pt"), b"not a checkpoint").unwrap();
    let said = common::stderr(&run(&resume));
    assert!(
        said.contains("state.pt is not usable") && said.contains("previous.pt is not usable"),
        "{said}"
    );
    assert!(said.contains("starts over from epoch 1"), "{said}");
    same(&outcome(&reference), &outcome(&out));
    assert!(started_over(&out));

    // Another config (weight decay): not used, and it says why.
    forget();
    let mut other = args(
        &data,
        &out,
        "seed",
        &["--checkpoint-every", "0.01", "--weight-decay", "0.001"],
    );
    other.push("--resume".into());
    let said = common::stderr(&run(&other));
    assert!(
        said.contains("made with another config") && said.contains("starts over"),
        "{said}"
    );
    assert!(started_over(&out));
    assert!(
        !out.join("checkpoints").exists(),
        "removed once the run completed"
    );
}
