//! `flowload report`: the files exist and are valid, the verdicts equal numbers computed from
//! the Parquet directly, bad files are named, and headless Chromium renders the page.

use crate::common;

use std::path::Path;
use std::process::Command;

use arrow::array::{Array, BooleanArray, Float64Array, UInt32Array};

use flowload::report::{self, Axis};

/// A 2×2 sweep (workers 0,1 × normalize off/on), 3 epochs, with `--report`.
fn sweep(out: &Path) -> String {
    let o = common::flowload(&[
        "run",
        "--data",
        "synthetic:images=240,size=16x16,classes=3,seed=4,test=60",
        "--workers",
        "0,1",
        "--normalize",
        "false,true",
        "--batch-size",
        "40",
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
        "--report",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    common::stdout(&o)
}

#[test]
fn report_files_exist_and_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = sweep(dir.path());
    assert!(stdout.contains("report of 4 runs"), "{stdout}");
    let rep = dir.path().join("report");
    for chart in ["loss", "accuracy", "time", "throughput"] {
        let png = image::open(rep.join(format!("{chart}.png")))
            .unwrap_or_else(|e| panic!("{chart}.png: {e}"));
        assert_eq!((png.width(), png.height()), (1000, 600));
        let rgb = png.to_rgb8();
        let distinct: std::collections::HashSet<_> = rgb.pixels().map(|p| p.0).collect();
        assert!(distinct.len() > 4, "{chart}.png is nearly blank");
        let svg = std::fs::read_to_string(rep.join(format!("{chart}.svg"))).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{chart}.svg: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert!(
            doc.descendants().any(|n| n.has_tag_name("text")),
            "{chart}.svg has no text"
        );
    }
    let html = std::fs::read_to_string(rep.join("report.html")).unwrap();
    for run in 1..=4 {
        assert!(
            html.contains(&format!("<tr data-run=\"{run}\">")),
            "run {run} missing from the table"
        );
    }
    assert_eq!(html.matches("<details>").count(), 4, "one config per run");
    assert!(
        html.contains("&quot;epochs&quot;: 3"),
        "the effective config is shown"
    );
    assert!(html.contains("workers=1 vs 0") && html.contains("normalize=true vs false"));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "self-contained"
    );
    assert_eq!(html.matches("<svg").count(), 4, "every chart inlined");
}

/// Mean final-epoch test accuracy and mean epoch seconds per value of `key`, read with the
/// parquet crate straight from the files.
fn direct(dir: &Path, key: &str) -> Vec<(String, f64, f64)> {
    let mut groups: std::collections::BTreeMap<String, (Vec<f64>, Vec<f64>)> = Default::default();
    for entry in std::fs::read_dir(dir.join("runs")).unwrap() {
        let path = entry.unwrap().path();
        let b = common::read_parquet(&path);
        let col = |n: &str| b.column_by_name(n).unwrap().clone();
        let value = match key {
            "workers" => col("workers")
                .as_any()
                .downcast_ref::<UInt32Array>()
                .unwrap()
                .value(0)
                .to_string(),
            _ => col("normalize")
                .as_any()
                .downcast_ref::<BooleanArray>()
                .unwrap()
                .value(0)
                .to_string(),
        };
        let ta = col("test_accuracy");
        let ta = ta.as_any().downcast_ref::<Float64Array>().unwrap();
        let es = col("epoch_seconds");
        let es = es.as_any().downcast_ref::<Float64Array>().unwrap();
        let g = groups.entry(value).or_default();
        g.0.push(ta.value(ta.len() - 1));
        g.1.push(es.values().iter().sum::<f64>() / es.len() as f64);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    groups
        .into_iter()
        .map(|(k, (a, t))| (k, mean(&a), mean(&t)))
        .collect()
}

#[test]
fn verdict_numbers_equal_numbers_from_the_parquet() {
    let dir = tempfile::tempdir().unwrap();
    sweep(dir.path());
    let loaded = report::load(dir.path()).unwrap();
    let verdicts = report::verdicts(&loaded.runs);
    assert_eq!(verdicts.len(), 2, "{verdicts:?}");
    for (axis, key) in [(Axis::Workers, "workers"), (Axis::Normalize, "normalize")] {
        let v = verdicts.iter().find(|v| v.axis == axis).unwrap();
        let d = direct(dir.path(), key);
        assert_eq!(
            (v.baseline.as_str(), v.value.as_str()),
            (d[0].0.as_str(), d[1].0.as_str())
        );
        assert_eq!((v.runs, v.baseline_runs, v.epoch), (2, 2, 3));
        let points = 100.0 * (d[1].1 - d[0].1);
        assert!(
            (v.accuracy_points.unwrap() - points).abs() < 1e-9,
            "{key}: {:?} vs {points}",
            v.accuracy_points
        );
        let change = d[1].2 / d[0].2 - 1.0;
        assert!(
            (v.epoch_time_change.unwrap() - change).abs() < 1e-9,
            "{key}: {:?} vs {change}",
            v.epoch_time_change
        );
        assert!(
            v.text
                .contains(&format!("{:.1} points at epoch 3", points.abs())),
            "{}",
            v.text
        );
    }
}

#[test]
fn a_corrupt_file_is_named_and_the_rest_reported() {
    let dir = tempfile::tempdir().unwrap();
    sweep(dir.path());
    let bad = dir.path().join("runs").join("run-0099.parquet");
    std::fs::write(&bad, b"PAR1 this is not a parquet file").unwrap();
    let truncated = dir.path().join("runs").join("run-0098.parquet");
    let good = std::fs::read(dir.path().join("runs").join("run-0001.parquet")).unwrap();
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let o = common::flowload(&["report", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let err = common::stderr(&o);
    assert!(
        err.contains("run-0099.parquet") && err.contains("run-0098.parquet"),
        "{err}"
    );
    assert!(common::stdout(&o).contains("report of 4 runs"));
    let html = std::fs::read_to_string(dir.path().join("report").join("report.html")).unwrap();
    assert!(html.contains("run-0099.parquet") && html.contains("Files not read"));
}

#[test]
fn an_empty_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = common::flowload(&["report", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(
        err.contains(dir.path().to_str().unwrap()) && err.contains("no run files"),
        "{err}"
    );
}

#[test]
fn older_files_with_a_subset_of_columns_are_read() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("old").join("runs")).unwrap();
    // An "older" layout: fewer columns, i64 instead of u32, only the config in the metadata.
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("run", arrow::datatypes::DataType::Int64, false),
        arrow::datatypes::Field::new("epoch", arrow::datatypes::DataType::Int64, false),
        arrow::datatypes::Field::new("loss", arrow::datatypes::DataType::Float64, true),
        arrow::datatypes::Field::new("epoch_seconds", arrow::datatypes::DataType::Float64, false),
    ]));
    let batch = arrow::record_batch::RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(arrow::array::Int64Array::from(vec![1, 1])),
            Arc::new(arrow::array::Int64Array::from(vec![0, 1])),
            Arc::new(Float64Array::from(vec![0.9, 0.5])),
            Arc::new(Float64Array::from(vec![2.0, 2.0])),
        ],
    )
    .unwrap();
    let f = std::fs::File::create(dir.path().join("old").join("runs").join("run-0001.parquet"))
        .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            "flowload.config".into(),
            "{\"name\":\"old\"}".to_string(),
        )]))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    sweep(&dir.path().join("new"));
    let loaded = report::load(dir.path()).unwrap();
    assert_eq!(loaded.runs.len(), 5, "{:?}", loaded.problems);
    let old = loaded.runs.iter().find(|r| r.sweep == "old").unwrap();
    assert_eq!(old.rows[1].loss, Some(0.5));
    // Written counting epochs from 0 (no `flowload.epochs_from`): read as 1 and 2, as new
    // files count them.
    assert_eq!(
        old.rows.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let new = loaded.runs.iter().find(|r| r.sweep != "old").unwrap();
    assert_eq!(new.rows.first().map(|r| r.epoch), Some(1));
    let out = dir.path().join("rep");
    let r = report::build(dir.path(), &out).unwrap();
    assert!(
        r.verdicts.iter().any(|v| v.axis == Axis::Sweep),
        "two sweeps are compared"
    );
}

fn chromium() -> String {
    std::env::var("FLOWLOAD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

#[test]
fn headless_chromium_renders_the_page() {
    let dir = tempfile::tempdir().unwrap();
    sweep(dir.path());
    let html = dir.path().join("report").join("report.html");
    let shot = dir.path().join("shot.png");
    let profile = tempfile::tempdir().unwrap();
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ];
    let profile_flag = format!("--user-data-dir={}", profile.path().display());
    let url = format!("file://{}", html.display());
    let run = |extra: &[String]| {
        let o = Command::new(chromium())
            .args(flags)
            .arg(&profile_flag)
            .args(extra)
            .arg(&url)
            .output()
            .expect("Chromium, installed by scripts/env.sh (set FLOWLOAD_CHROMIUM to use another)");
        assert!(
            o.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    run(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1200,1600".into(),
    ]);
    let img = image::open(&shot).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (1200, 1600));
    let dark = img
        .pixels()
        .filter(|p| p.0.iter().all(|&c| c < 100))
        .count();
    let distinct: std::collections::HashSet<_> = img.pixels().map(|p| p.0).collect();
    assert!(
        dark > 1000 && distinct.len() > 20,
        "the screenshot looks blank ({dark} dark pixels, {} colours)",
        distinct.len()
    );
    // The DOM after scripts ran: the title, the table, and the sort script's mark.
    let dom = String::from_utf8(run(&["--dump-dom".into()]).stdout).unwrap();
    assert!(
        dom.contains(&format!(
            "<title>flowload report: {}</title>",
            dir.path().display()
        )),
        "{}",
        &dom[..dom.len().min(400)]
    );
    assert!(
        dom.contains("data-ready=\"sortable\""),
        "the page script did not run"
    );
    assert_eq!(dom.matches("<tr data-run=").count(), 4);
    // Keep a copy to look at by hand.
    let _ = std::fs::copy(
        &shot,
        std::env::temp_dir().join("flowload-report-screenshot.png"),
    );
}

#[test]
fn a_parquet_file_that_is_not_flowloads_is_skipped_by_name_and_no_verdict_is_nan() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    sweep(&dir.path().join("ours"));
    // Someone else's table with run, epoch and loss columns (and a batch_size of 0).
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("run", arrow::datatypes::DataType::Int64, false),
        arrow::datatypes::Field::new("epoch", arrow::datatypes::DataType::Int64, false),
        arrow::datatypes::Field::new("loss", arrow::datatypes::DataType::Float64, true),
        arrow::datatypes::Field::new("batch_size", arrow::datatypes::DataType::Int64, false),
    ]));
    let batch = arrow::record_batch::RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(arrow::array::Int64Array::from(vec![1])),
            Arc::new(arrow::array::Int64Array::from(vec![0])),
            Arc::new(Float64Array::from(vec![0.9])),
            Arc::new(arrow::array::Int64Array::from(vec![0])),
        ],
    )
    .unwrap();
    let foreign = dir.path().join("theirs.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&foreign).unwrap(),
        schema,
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let out = common::flowload(&["report", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let (text, err) = (common::stdout(&out), common::stderr(&out));
    assert!(
        err.contains("theirs.parquet") && err.contains("not a flowload run file"),
        "{err}"
    );
    assert!(
        !text.contains("NaN") && !text.contains("batch_size="),
        "{text}"
    );
}

/// A run that diverges (its loss NaN) is not drawn along the bottom of the loss chart as if it
/// were the best, its legend says where it diverged, and the verdicts do not rank its accuracy.
#[test]
fn a_diverged_run_is_left_out_of_the_lines_and_the_ranking() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let o = common::flowload(&[
        "run",
        "--data",
        "synthetic:images=240,size=16x16,classes=3,seed=4,test=60",
        "--lr",
        "1e30,0.01",
        "--batch-size",
        "40",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
        "--report",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let loaded = report::load(out).unwrap();
    let diverged: Vec<_> = loaded.runs.iter().filter_map(|r| r.diverged()).collect();
    assert_eq!(diverged.len(), 1, "the lr=1e30 run diverges");
    let (epoch, what) = diverged[0];
    let stdout = common::stdout(&o);
    let said = format!("accuracy not compared (lr=1e30: loss {what} from epoch {epoch})");
    assert!(stdout.contains(&said), "{stdout}");
    assert!(
        !stdout.contains("accuracy +") && !stdout.contains("accuracy −"),
        "{stdout}"
    );
    // The chart's legend names it; its points stop where the loss stopped being a number.
    let svg = std::fs::read_to_string(out.join("report").join("loss.svg")).unwrap();
    assert!(
        svg.contains(&format!("loss {what} from epoch {epoch}")),
        "legend"
    );
    assert!(
        !svg.contains("NaN,") && !svg.contains(",NaN"),
        "no NaN coordinate"
    );
}
