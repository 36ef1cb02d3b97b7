//! What the binary prints of a sweep: each run's line, and the RunManager's table.

use std::fmt::Write as _;

use flowload::config::number;
use flowload::results::median;
use flowload::sweep::RunReport;
use flowload_core::Workers;

/// A run's line: its grid point, then what it measured, or that `--resume` skipped it.
pub(crate) fn summary_line(report: &RunReport, total_runs: usize) -> String {
    let p = &report.params;
    let mut s = format!("run {}/{} ", p.run, total_runs);
    // The model and optimizer only when not the seed's, so the seed's sweeps read as before.
    if p.model != flowload::config::SEED_MODEL || p.optimizer != Default::default() {
        let _ = write!(s, " model={} optimizer={}", p.model, p.optimizer.name());
    }
    let _ = write!(
        s,
        " lr={} batch_size={} workers={} device={} normalize={}",
        number(p.lr),
        p.batch_size,
        p.workers,
        p.device,
        p.normalize
    );
    if report.resumed {
        s.push_str("  already complete, skipped (--resume)");
        return s;
    }
    let Some(last) = report.epochs.last() else {
        return s;
    };
    let n = report.epochs.len() as f64;
    let secs: f64 = report.epochs.iter().map(|e| e.epoch_seconds).sum();
    let wait: f64 = report.epochs.iter().map(|e| e.data_wait_seconds).sum();
    let _ = write!(s, "  {} epochs", report.epochs.len());
    if let (Some(loss), Some(acc)) = (last.loss, last.accuracy) {
        let _ = write!(s, ", loss {loss:.4} acc {acc:.4}");
    }
    if let Some(ta) = last.test_accuracy {
        let _ = write!(s, " test acc {ta:.4}");
    }
    if let Some(t) = &report.workers_settled {
        let _ = write!(s, "  {}", t.describe());
    }
    let test_skipped = last.test_skipped_records;
    match (report.skipped_records, test_skipped) {
        (0, 0) => {}
        (n, 0) => {
            let _ = write!(s, "  skipped {n} bad records");
        }
        (n, t) => {
            let _ = write!(s, "  skipped {n} bad records, and {t} of the test split");
        }
    }
    let _ = write!(
        s,
        "  epoch {:.3} s (data wait {:.1}%)  {:.0} images/s  stats {:.3} s",
        secs / n,
        100.0 * wait / secs,
        median(report.epochs.iter().map(|e| e.images_per_second)),
        last.stats_seconds
    );
    if let Some(source) = last.stats_source.filter(|s| s.passed()) {
        let _ = write!(
            s,
            " ({}, {}/{} shards decoded)",
            source.name(),
            last.stats_shards_decoded,
            last.stats_shards
        );
    }
    s
}

/// The RunManager's table: one line per (run, epoch).
pub(crate) fn format_table(runs: &[RunReport]) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let mut t = String::from(
        "run  lr      batch  workers  device  normalize  epoch  loss    accuracy  test_loss  test_acc  epoch_s  wait_s  compute_s  images/s   run_s\n",
    );
    for r in runs {
        let p = &r.params;
        for e in &r.epochs {
            let _ = writeln!(
                t,
                "{:<4} {:<7} {:<6} {:<8} {:<7} {:<10} {:<6} {:<7} {:<9} {:<10} {:<9} {:<8.3} {:<7.3} {:<10.3} {:<10.0} {:.2}",
                p.run,
                number(p.lr),
                p.batch_size,
                match p.workers {
                    Workers::Auto => format!("auto={}", e.workers),
                    Workers::Fixed(n) => n.to_string(),
                },
                p.device,
                p.normalize,
                e.epoch,
                opt(e.loss),
                opt(e.accuracy),
                opt(e.test_loss),
                opt(e.test_accuracy),
                e.epoch_seconds,
                e.data_wait_seconds,
                e.compute_seconds,
                e.images_per_second,
                e.run_seconds
            );
        }
    }
    t
}
