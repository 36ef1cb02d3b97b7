//! Metrics in Parquet: read back with the `parquet` crate (every column, every row), and with
//! Python (DuckDB and pyarrow), to prove the results open in any tool.

use crate::common;

use std::process::Command;

use arrow::array::{Array, BooleanArray, Float64Array, StringArray, UInt32Array, UInt64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use flowload::results::{self, read_run, run_path};

fn sweep(out: &std::path::Path) {
    let o = common::flowload(&[
        "run",
        "--data",
        "synthetic:images=200,size=16x16,classes=3,seed=2,test=40",
        "--workers",
        "0,1",
        "--normalize",
        "false,true",
        "--batch-size",
        "64",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--seed",
        "9",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
}

#[test]
fn every_column_and_row_round_trips() {
    let out = tempfile::tempdir().unwrap();
    sweep(out.path());
    // Written with the mode `File::create` gives (0666 less the umask), not a temporary
    // file's 0600: others may read results the umask lets them read.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let plain = out.path().join("plain");
    std::fs::File::create(&plain).unwrap();
    for written in [
        out.path().join("summary.json"),
        run_path(out.path(), 1),
        results::model_path(out.path(), 1),
    ] {
        assert_eq!(mode(&written), mode(&plain), "{}", written.display());
    }
    for run in 1..=4u32 {
        let path = run_path(out.path(), run);
        let file = std::fs::File::open(&path).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(builder.schema().fields(), results::schema().fields());
        let kv = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap()
            .clone();
        let config = kv
            .iter()
            .find(|k| k.key == results::CONFIG_KEY)
            .unwrap()
            .value
            .clone()
            .unwrap();
        let config: serde_json::Value = serde_json::from_str(&config).unwrap();
        assert_eq!(config["epochs"], 2);
        assert_eq!(config["grid"]["workers"], serde_json::json!([0, 1]));
        let batches: Vec<_> = builder.build().unwrap().map(|b| b.unwrap()).collect();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
        let b = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let col = |n: &str| b.column_by_name(n).unwrap().clone();
        let u32s = |n: &str| {
            col(n)
                .as_any()
                .downcast_ref::<UInt32Array>()
                .unwrap()
                .values()
                .to_vec()
        };
        let f64s = |n: &str| {
            col(n)
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap()
                .clone()
        };
        assert_eq!(u32s("run"), vec![run; 2]);
        assert_eq!(u32s("batch_size"), vec![64; 2]);
        assert_eq!(u32s("workers"), vec![(run - 1) / 2; 2]);
        // Epochs count from 1, as the run line, the table and the verdicts count them.
        assert_eq!(u32s("epoch"), vec![1, 2]);
        assert_eq!(f64s("lr").values().to_vec(), vec![0.01; 2]);
        let device = col("device");
        let device = device.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((device.value(0), device.value(1)), ("cpu", "cpu"));
        let normalize = col("normalize");
        let normalize = normalize.as_any().downcast_ref::<BooleanArray>().unwrap();
        assert_eq!(normalize.value(0), run % 2 == 0);
        assert_eq!(
            col("seed")
                .as_any()
                .downcast_ref::<UInt64Array>()
                .unwrap()
                .values()
                .to_vec(),
            vec![9; 2]
        );
        assert_eq!(
            col("images")
                .as_any()
                .downcast_ref::<UInt64Array>()
                .unwrap()
                .values()
                .to_vec(),
            vec![200; 2]
        );
        for name in ["loss", "test_loss"] {
            let v = f64s(name);
            assert_eq!(v.null_count(), 0, "{name}");
            assert!(
                v.values().iter().all(|x| x.is_finite() && *x > 0.0),
                "{name}"
            );
        }
        for name in ["accuracy", "test_accuracy"] {
            assert!(
                f64s(name).values().iter().all(|x| (0.0..=1.0).contains(x)),
                "{name}"
            );
        }
        for name in [
            "epoch_seconds",
            "run_seconds",
            "images_per_second",
            "compute_seconds",
            "eval_seconds",
        ] {
            assert!(f64s(name).values().iter().all(|x| *x > 0.0), "{name}");
        }
        let run_s = f64s("run_seconds");
        assert!(run_s.value(1) > run_s.value(0));
        let stats_s = f64s("stats_seconds");
        assert_eq!(
            stats_s.value(0) > 0.0,
            run % 2 == 0,
            "statistics are computed only when normalizing"
        );
        assert!(f64s("data_wait_seconds").values().iter().all(|x| *x >= 0.0));
        // The library's own reader gives the same rows.
        let back = read_run(&path).unwrap();
        assert_eq!(back.params.run, run);
        assert_eq!(back.rows.len(), 2);
        assert_eq!(back.rows[1].loss, Some(f64s("loss").value(1)));
    }
    // Losses are equal for equal (normalize) across worker counts: runs 1 and 3, 2 and 4.
    assert_eq!(
        read_run(&run_path(out.path(), 1)).unwrap().rows[1].loss,
        read_run(&run_path(out.path(), 3)).unwrap().rows[1].loss
    );
}

#[test]
fn duckdb_and_pyarrow_read_the_sweep_with_one_glob() {
    let out = tempfile::tempdir().unwrap();
    sweep(out.path());
    let script = r#"
import sys, duckdb, pyarrow.parquet as pq, glob, json
root = sys.argv[1]
rows = duckdb.sql(f"select run, count(*) n, max(epoch) e, bool_and(loss > 0) ok from read_parquet('{root}/runs/*.parquet') group by run order by run").fetchall()
first = sorted(glob.glob(f"{root}/runs/*.parquet"))[0]
t = pq.read_table(first)
meta = json.loads(pq.read_metadata(first).metadata[b"flowload.config"])
print(json.dumps({"rows": rows, "columns": t.column_names, "epochs": meta["epochs"]}))
"#;
    let o = Command::new(common::python())
        .args(["-c", script, out.path().to_str().unwrap()])
        .output()
        .expect("the venv python from scripts/env.sh (set FLOWLOAD_PYTHON to use another)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["rows"],
        serde_json::json!([
            [1, 2, 2, true],
            [2, 2, 2, true],
            [3, 2, 2, true],
            [4, 2, 2, true]
        ])
    );
    assert_eq!(v["epochs"], 2);
    let columns: Vec<String> = serde_json::from_value(v["columns"].clone()).unwrap();
    let expected: Vec<String> = results::schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(columns, expected);
}
