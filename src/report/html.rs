//! `report.html`: one self-contained page (charts inlined as SVG, no network) with the verdicts,
//! a runs table sortable by any column, and each run's effective config.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Loaded, Verdict, varying};
use crate::error::{Error, Result};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "–".into(),
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:13px}\
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee;cursor:pointer;user-select:none}\
th:hover{background:#ddd}td.t{text-align:left}.chart svg{max-width:100%;height:auto}.problem{color:#a00}\
pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}";

/// Click a header to sort by it; a second click reverses. Sets `data-ready` once wired, which
/// the headless-browser test reads from the rendered DOM.
const SCRIPT: &str = r#"
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var asc = th.dataset.dir !== 'asc';
      table.querySelectorAll('th').forEach(function (h) { delete h.dataset.dir; });
      th.dataset.dir = asc ? 'asc' : 'desc';
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v || a.cells[col].textContent, y = b.cells[col].dataset.v || b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.body.dataset.ready = 'sortable';
"#;

/// Writes `out/report.html` from the loaded runs, inlining the SVG charts already in `out`.
pub fn write(dir: &Path, loaded: &Loaded, verdicts: &[Verdict], out: &Path) -> Result<PathBuf> {
    let runs = &loaded.runs;
    let (_, common) = varying(runs);
    let mut h = String::new();
    let title = format!("flowload report: {}", dir.display());
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n<p>{} runs; the same in every run: {}</p>\n",
        esc(&title),
        esc(&title),
        runs.len(),
        esc(&common)
    );
    if !loaded.problems.is_empty() {
        h.push_str("<h2>Files not read</h2><ul>\n");
        for (file, why) in &loaded.problems {
            let _ = writeln!(
                h,
                "<li class=\"problem\">{}: {}</li>",
                esc(&file.display().to_string()),
                esc(why)
            );
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2>Verdicts</h2><ul id=\"verdicts\">\n");
    if verdicts.is_empty() {
        h.push_str("<li>Nothing varies between these runs.</li>\n");
    }
    for v in verdicts {
        let _ = writeln!(h, "<li>{}</li>", esc(&v.text));
    }
    h.push_str("</ul>\n<h2>Charts</h2>\n");
    for name in ["loss", "accuracy", "time", "throughput"] {
        let path = out.join(format!("{name}.svg"));
        if let Ok(svg) = std::fs::read_to_string(&path) {
            let svg = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
            let _ = writeln!(h, "<div class=\"chart\" id=\"chart-{name}\">{svg}</div>");
        }
    }
    h.push_str("<h2>Runs</h2>\n<table class=\"sortable\" id=\"runs\"><thead><tr>");
    let headers = [
        "sweep",
        "run",
        "lr",
        "batch_size",
        "workers",
        "device",
        "normalize",
        "seed",
        "epochs",
        "loss",
        "accuracy",
        "test_loss",
        "test_accuracy",
        "epoch_s",
        "data_wait_s",
        "compute_s",
        "images/s",
    ];
    for col in headers {
        let _ = write!(h, "<th>{col}</th>");
    }
    h.push_str("</tr></thead><tbody>\n");
    for r in runs {
        let (p, last) = (&r.params, r.last());
        let cells = [
            (esc(&r.sweep), true),
            (p.run.to_string(), false),
            (crate::config::number(p.lr), false),
            (p.batch_size.to_string(), false),
            (p.workers.to_string(), false),
            (esc(&p.device), true),
            (p.normalize.to_string(), true),
            (p.seed.to_string(), false),
            (r.rows.len().to_string(), false),
            (num(last.loss, 4), false),
            (num(last.accuracy, 4), false),
            (num(last.test_loss, 4), false),
            (num(last.test_accuracy, 4), false),
            (num(Some(r.mean(|e| e.epoch_seconds)), 3), false),
            (num(Some(r.mean(|e| e.data_wait_seconds)), 3), false),
            (num(Some(r.mean(|e| e.compute_seconds)), 3), false),
            (num(Some(r.median_images_per_second()), 0), false),
        ];
        let _ = write!(h, "<tr data-run=\"{}\">", p.run);
        for (text, is_text) in cells {
            let _ = write!(
                h,
                "<td{}>{text}</td>",
                if is_text { " class=\"t\"" } else { "" }
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n<h2>Effective config of each run</h2>\n");
    for r in runs {
        let config = r
            .config_json
            .as_deref()
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
            .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
            .unwrap_or_else(|| "(this file carries no flowload.config metadata)".into());
        let _ = writeln!(
            h,
            "<details><summary>{} run {}: {}</summary><pre>{}</pre></details>",
            esc(&r.sweep),
            r.params.run,
            esc(&r.file.display().to_string()),
            esc(&config)
        );
    }
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body></html>\n");
    let path = out.join("report.html");
    std::fs::write(&path, h).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}
