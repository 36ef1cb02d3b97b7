//! Every `pipelines/*.toml` parses, and runs end to end on a tiny input (synthetic images as
//! PNG shards, so that pipelines with transforms run too).

use crate::common;

use std::path::{Path, PathBuf};

use flowload::config::SweepConfig;

fn pipeline_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_pipeline_parses_and_names_existing_or_synthetic_data() {
    let files = pipeline_files();
    assert!(!files.is_empty());
    for f in files {
        let p = SweepConfig::load(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        p.validate().unwrap();
        assert_eq!(p.name, f.file_stem().unwrap().to_string_lossy());
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        // Data that a script makes is named with the script's command in the pipeline's text.
        let text = std::fs::read_to_string(&f).unwrap();
        let made = text
            .split_whitespace()
            .map(|w| w.trim_matches('`'))
            .any(|w| w.starts_with("scripts/") && root.join(w).is_file())
            && text.contains(&format!(".py {}", p.data));
        assert!(
            p.data.starts_with("synthetic")
                || root.join(&p.data).is_dir()
                || p.data.starts_with("/usr/share/datasets")
                || made,
            "{}: {}",
            f.display(),
            p.data
        );
    }
}

#[test]
fn every_pipeline_runs_on_a_tiny_input() {
    let shards = tempfile::tempdir().unwrap();
    let o = common::flowload(&[
        "convert",
        "synthetic:images=64,channels=3,size=28x28,classes=10,seed=1,test=16",
        "--to",
        "parquet",
        shards.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    for f in pipeline_files() {
        let out = tempfile::tempdir().unwrap();
        let o = common::flowload(&[
            "run",
            f.to_str().unwrap(),
            "--data",
            shards.path().to_str().unwrap(),
            "--epochs",
            "1",
            "--out",
            out.path().to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "{}: {}",
            f.display(),
            common::stderr(&o)
        );
        let runs = SweepConfig::load(&f).unwrap().runs().len();
        let stdout = common::stdout(&o);
        assert_eq!(
            stdout
                .lines()
                .filter(|l| l.starts_with("run ") && l.contains(&format!("/{runs} ")))
                .count(),
            runs,
            "{stdout}"
        );
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.path().join("summary.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(summary["runs"].as_array().unwrap().len(), runs);
        assert_eq!(summary["runs"][0]["epochs"][0]["images"], 64);
    }
}
