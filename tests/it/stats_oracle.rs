//! `flowload stats --json`: the statistics as one JSON object, the format `--stats FILE` reads.
//! (The statistics themselves are checked against a two-pass oracle in flowload-core's tests.)

use crate::common;

#[test]
fn stats_json_is_one_object_with_the_documented_keys() {
    let out = common::flowload(&[
        "stats",
        "synthetic:images=50,channels=3,size=6x5",
        "--json",
        "--workers",
        "2",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    assert_eq!(text.trim().lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["images"], 50);
    assert_eq!(v["channels"], 3);
    assert_eq!(v["height"], 6);
    assert_eq!(v["width"], 5);
    assert_eq!(v["mean"].as_array().unwrap().len(), 3);
    assert_eq!(v["std"].as_array().unwrap().len(), 3);
}
