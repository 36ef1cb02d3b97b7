//! Every `pipelines/*.toml` parses, and runs end to end on a tiny synthetic input.

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
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join(&p.data);
        assert!(
            p.data.starts_with("synthetic")
                || data.is_dir()
                || p.data.starts_with("/usr/share/datasets"),
            "{}: {}",
            f.display(),
            p.data
        );
    }
}

#[test]
fn every_pipeline_runs_on_a_tiny_input() {
    for f in pipeline_files() {
        let out = tempfile::tempdir().unwrap();
        let o = common::flowload(&[
            "run",
            f.to_str().unwrap(),
            "--data",
            "synthetic:images=64,size=28x28,classes=10,seed=1,test=16",
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
