//! `flowload report`: a results directory → charts (PNG and SVG), a self-contained `report.html`,
//! and a verdict per grid axis computed from the data.

pub mod charts;
pub mod html;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::RunParams;
use crate::error::{Error, Result};
use crate::results::{EpochMetrics, median, read_run};

/// One run file as the report sees it.
#[derive(Clone, Debug)]
pub struct LoadedRun {
    pub file: PathBuf,
    /// The sweep directory's name (the parent of `runs/`), to tell sweeps apart.
    pub sweep: String,
    pub params: RunParams,
    pub config_json: Option<String>,
    pub rows: Vec<EpochMetrics>,
}

impl LoadedRun {
    pub fn last(&self) -> &EpochMetrics {
        self.rows.last().expect("load() keeps runs with rows only")
    }
    /// Median epoch images/s, as the run's summary line reports it.
    pub fn median_images_per_second(&self) -> f64 {
        median(self.rows.iter().map(|e| e.images_per_second))
    }
    pub fn mean(&self, f: impl Fn(&EpochMetrics) -> f64) -> f64 {
        self.rows.iter().map(&f).sum::<f64>() / self.rows.len() as f64
    }
    /// Where the run diverged: the first epoch whose training or test loss is not a finite
    /// number, and `NaN` or `inf`; `None` for a run that did not. Its metrics from there on are
    /// not drawn, and its accuracy is not ranked.
    pub fn diverged(&self) -> Option<(u32, &'static str)> {
        self.rows.iter().find_map(|e| {
            let bad = [e.loss, e.test_loss]
                .into_iter()
                .flatten()
                .find(|v| !v.is_finite())?;
            Some((e.epoch, if bad.is_nan() { "NaN" } else { "inf" }))
        })
    }

    /// [`LoadedRun::diverged`] as a legend and a verdict say it: `loss NaN from epoch 3`.
    pub fn divergence(&self) -> Option<String> {
        self.diverged()
            .map(|(epoch, what)| format!("loss {what} from epoch {epoch}"))
    }

    /// The value of a grid axis, as text.
    pub fn axis(&self, axis: Axis) -> String {
        let p = &self.params;
        match axis {
            Axis::Sweep => self.sweep.clone(),
            Axis::Model => p.model.clone(),
            Axis::Optimizer => p.optimizer.name().into(),
            Axis::Lr if p.lr.is_nan() => "?".into(), // an older file without the column
            Axis::Lr => crate::config::number(p.lr),
            Axis::BatchSize => p.batch_size.to_string(),
            Axis::Workers => p.workers.to_string(),
            Axis::Device => p.device.clone(),
            Axis::Normalize => p.normalize.to_string(),
            Axis::Seed => p.seed.to_string(),
        }
    }
}

/// What varies between runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    Sweep,
    Model,
    Optimizer,
    Lr,
    BatchSize,
    Workers,
    Device,
    Normalize,
    Seed,
}

impl Axis {
    pub const ALL: [Axis; 9] = [
        Axis::Sweep,
        Axis::Model,
        Axis::Optimizer,
        Axis::Lr,
        Axis::BatchSize,
        Axis::Workers,
        Axis::Device,
        Axis::Normalize,
        Axis::Seed,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Axis::Sweep => "sweep",
            Axis::Model => "model",
            Axis::Optimizer => "optimizer",
            Axis::Lr => "lr",
            Axis::BatchSize => "batch_size",
            Axis::Workers => "workers",
            Axis::Device => "device",
            Axis::Normalize => "normalize",
            Axis::Seed => "seed",
        }
    }
}

/// The runs of a directory, and the files that could not be read (named, with the reason).
#[derive(Clone, Debug)]
pub struct Loaded {
    pub runs: Vec<LoadedRun>,
    pub problems: Vec<(PathBuf, String)>,
}

/// Reads every `*.parquet` under `dir` (one sweep or several). A file that cannot be read is
/// listed in `problems` and the rest are reported; no readable run at all is an error.
pub fn load(dir: &Path) -> Result<Loaded> {
    if !dir.is_dir() {
        return Err(flowload_core::Error::MissingDir { path: dir.into() }.into());
    }
    let mut files = Vec::new();
    collect_parquet(dir, &mut files)?;
    files.sort();
    let mut loaded = Loaded {
        runs: Vec::new(),
        problems: Vec::new(),
    };
    for file in files {
        match read_run(&file) {
            Ok(run) if run.rows.is_empty() => {
                loaded.problems.push((file, "holds no epochs".into()))
            }
            Ok(run) => {
                let sweep = file
                    .parent()
                    .filter(|p| p.file_name().is_some_and(|n| n == "runs"))
                    .and_then(Path::parent)
                    .or(file.parent())
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                loaded.runs.push(LoadedRun {
                    file,
                    sweep,
                    params: run.params,
                    config_json: run.config_json,
                    rows: run.rows,
                });
            }
            Err(e) => {
                let why = e.to_string();
                let prefix = format!("{}: ", file.display());
                let why = why.strip_prefix(&prefix).unwrap_or(&why).to_string();
                loaded.problems.push((file, why));
            }
        }
    }
    if loaded.runs.is_empty() {
        let detail = match loaded.problems.first() {
            Some((f, why)) => format!(
                "no readable run file (first problem: {}: {why})",
                f.display()
            ),
            None => "no run files (*.parquet) found".into(),
        };
        return Err(Error::Report {
            path: dir.into(),
            detail,
        });
    }
    Ok(loaded)
}

fn collect_parquet(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_dir() {
            collect_parquet(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "parquet")
            && !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The axes whose value differs between runs, and a title made of the ones that do not.
pub fn varying(runs: &[LoadedRun]) -> (Vec<Axis>, String) {
    let mut vary = Vec::new();
    let mut same = Vec::new();
    for axis in Axis::ALL {
        let first = runs[0].axis(axis);
        if runs.iter().all(|r| r.axis(axis) == first) {
            same.push(format!("{}={first}", axis.name()));
        } else {
            vary.push(axis);
        }
    }
    (vary, same.join(" "))
}

/// A run's legend label: the values of the varying axes (the run number when nothing varies).
pub fn label(run: &LoadedRun, vary: &[Axis]) -> String {
    if vary.is_empty() {
        return format!("run {}", run.params.run);
    }
    vary.iter()
        .map(|a| format!("{}={}", a.name(), run.axis(*a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One comparison along a grid axis: `value` against the `baseline` value, each side the mean
/// over its runs.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub axis: Axis,
    pub value: String,
    pub baseline: String,
    pub runs: usize,
    pub baseline_runs: usize,
    /// Mean final-epoch test accuracy difference in points (×100); train accuracy when the
    /// runs have no test split; `None` for the null sink.
    pub accuracy_points: Option<f64>,
    pub accuracy_is_test: bool,
    /// The last epoch (1-based) of the runs compared.
    pub epoch: u32,
    /// Relative change of the mean epoch time: −0.23 is 23% faster; `None` when a run did not
    /// record its epoch time.
    pub epoch_time_change: Option<f64>,
    /// The change of the mean epoch's data wait and compute, in seconds, each with what the
    /// repetitions say of it.
    pub data_wait: Effect,
    pub compute: Effect,
    /// Repetitions of each grid point compared (the fewest of any).
    pub repetitions: usize,
    pub text: String,
}

/// A difference in seconds per epoch, and whether it stands out of the noise.
#[derive(Clone, Debug, Serialize)]
pub struct Effect {
    pub seconds: f64,
    /// The largest spread (highest − lowest) of this measure between repetitions of one grid
    /// point, over the points compared; `None` with one repetition.
    pub spread: Option<f64>,
    pub finding: Finding,
}

/// What the repetitions allow one to say of a difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// Larger than the spread between repetitions.
    Effect,
    /// No larger than the spread between repetitions: not an effect.
    WithinNoise,
    /// One repetition: there is no spread to compare with.
    CannotTell,
    /// Beyond the spread, but under 1% of the baseline's epoch time: too small to matter
    /// (a null sink's compute, a few timer ticks).
    Negligible,
}

/// A difference beyond the noise but below this share of the baseline's epoch is negligible.
const NEGLIGIBLE: f64 = 0.01;

impl Effect {
    fn new(seconds: f64, spread: Option<f64>, baseline_epoch: f64) -> Effect {
        let finding = match spread {
            None => Finding::CannotTell,
            Some(s) if seconds.abs() <= s => Finding::WithinNoise,
            Some(_) if seconds.abs() < NEGLIGIBLE * baseline_epoch => Finding::Negligible,
            Some(_) => Finding::Effect,
        };
        Effect {
            seconds,
            spread,
            finding,
        }
    }

    fn describe(&self, what: &str) -> String {
        let sign = if self.seconds >= 0.0 { "+" } else { "−" };
        let d = format!("{what} {sign}{:.3} s", self.seconds.abs());
        match (self.finding, self.spread) {
            (Finding::Effect, Some(s)) => format!("{d} (beyond the {s:.3} s spread)"),
            (Finding::WithinNoise, Some(s)) => {
                format!("{d}, within noise (repetitions spread {s:.3} s)")
            }
            (Finding::Negligible, _) => format!("{d}, negligible (under 1% of the epoch)"),
            _ => d,
        }
    }
}

/// A grid point: every axis's value, so that its repetitions share it.
fn point_key(run: &LoadedRun) -> Vec<String> {
    Axis::ALL.iter().map(|a| run.axis(*a)).collect()
}

/// Per epoch, the mean over a run's epochs.
fn per_epoch(run: &LoadedRun) -> (f64, f64) {
    (
        run.mean(|e| e.data_wait_seconds),
        run.mean(|e| e.compute_seconds),
    )
}

/// The largest spread of data wait and of compute between repetitions of one grid point among
/// `runs`, and the fewest repetitions of any point; `None` spreads when no point has two.
fn noise(runs: &[&LoadedRun]) -> (Option<f64>, Option<f64>, usize) {
    // Each grid point, with (data wait, compute) per epoch of each of its repetitions.
    type Point = (Vec<String>, Vec<(f64, f64)>);
    let mut points: Vec<Point> = Vec::new();
    for r in runs {
        let key = point_key(r);
        match points.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(per_epoch(r)),
            None => points.push((key, vec![per_epoch(r)])),
        }
    }
    let fewest = points.iter().map(|(_, v)| v.len()).min().unwrap_or(0);
    let spread = |f: fn(&(f64, f64)) -> f64| {
        points
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(_, v)| {
                let lo = v.iter().map(f).fold(f64::INFINITY, f64::min);
                let hi = v.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
                hi - lo
            })
            .reduce(f64::max)
    };
    (spread(|p| p.0), spread(|p| p.1), fewest)
}

/// Orders axis values numerically when they are numbers (`false` < `true` too), else as text.
fn value_order(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |v: &str| match (v.parse::<f64>(), v) {
        (Ok(x), _) if x.is_finite() => Some(x),
        (_, "false") => Some(0.0),
        (_, "true") => Some(1.0),
        _ => None,
    };
    match (key(a), key(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// A verdict for every value of every axis that varies, against the axis's smallest value.
pub fn verdicts(runs: &[LoadedRun]) -> Vec<Verdict> {
    let (vary, _) = varying(runs);
    let mut out = Vec::new();
    for axis in vary {
        let mut values: Vec<String> = runs.iter().map(|r| r.axis(axis)).collect();
        values.sort_by(|a, b| value_order(a, b));
        values.dedup();
        let group = |v: &str| {
            runs.iter()
                .filter(|r| r.axis(axis) == v)
                .collect::<Vec<_>>()
        };
        let base = group(&values[0]);
        for value in &values[1..] {
            let runs_v = group(value);
            let all: Vec<&LoadedRun> = base.iter().chain(&runs_v).copied().collect();
            let has_test = all.iter().all(|r| r.last().test_accuracy.is_some());
            let acc = |rs: &[&LoadedRun]| -> Option<f64> {
                let v: Option<Vec<f64>> = rs
                    .iter()
                    .map(|r| {
                        if has_test {
                            r.last().test_accuracy
                        } else {
                            r.last().accuracy
                        }
                    })
                    .collect();
                v.map(|v| v.iter().sum::<f64>() / v.len() as f64)
            };
            let time = |rs: &[&LoadedRun]| {
                rs.iter().map(|r| r.mean(|e| e.epoch_seconds)).sum::<f64>() / rs.len() as f64
            };
            // A run whose loss is not a number has no accuracy worth ranking.
            let diverged: Vec<String> = all
                .iter()
                .filter_map(|r| {
                    r.divergence()
                        .map(|d| format!("{}={}: {d}", axis.name(), r.axis(axis)))
                })
                .collect();
            let points = acc(&runs_v)
                .zip(acc(&base))
                .map(|(a, b)| 100.0 * (a - b))
                .filter(|p| p.is_finite() && diverged.is_empty());
            let change = Some(time(&runs_v) / time(&base) - 1.0).filter(|c| c.is_finite());
            let mean_of = |rs: &[&LoadedRun], f: fn(&LoadedRun) -> f64| {
                rs.iter().map(|r| f(r)).sum::<f64>() / rs.len() as f64
            };
            let (wait_spread, compute_spread, repetitions) = noise(&all);
            let base_epoch = time(&base);
            let data_wait = Effect::new(
                mean_of(&runs_v, |r| per_epoch(r).0) - mean_of(&base, |r| per_epoch(r).0),
                wait_spread,
                base_epoch,
            );
            let compute = Effect::new(
                mean_of(&runs_v, |r| per_epoch(r).1) - mean_of(&base, |r| per_epoch(r).1),
                compute_spread,
                base_epoch,
            );
            let epoch = all.iter().map(|r| r.last().epoch).max().unwrap_or(0);
            let mut text = format!("{}={value} vs {}: ", axis.name(), values[0]);
            if !diverged.is_empty() {
                text.push_str(&format!(
                    "accuracy not compared ({}), ",
                    diverged.join("; ")
                ));
            }
            if let Some(p) = points {
                text.push_str(&format!(
                    "{} accuracy {}{:.1} points at epoch {epoch}, ",
                    if has_test { "test" } else { "train" },
                    if p >= 0.0 { "+" } else { "−" },
                    p.abs()
                ));
            }
            // The loader's share and the trainer's share, each judged against the repetitions:
            // a difference that run order or a noisy machine could make is not a finding.
            match change {
                Some(change) => {
                    text.push_str(&format!(
                        "per epoch {}; {}; epoch time {}{:.0}%",
                        data_wait.describe("data wait"),
                        compute.describe("compute"),
                        if change >= 0.0 { "+" } else { "−" },
                        100.0 * change.abs()
                    ));
                    let finding = match (data_wait.finding, compute.finding) {
                        (Finding::CannotTell, _) | (_, Finding::CannotTell) => {
                            ": cannot tell an effect from noise with one repetition (--repeat 3 measures the noise)"
                        }
                        (
                            Finding::WithinNoise | Finding::Negligible,
                            Finding::WithinNoise | Finding::Negligible,
                        ) => ", within noise",
                        _ => "",
                    };
                    text.push_str(finding);
                }
                None => text.push_str("epoch time not recorded in every run"),
            }
            text.push_str(&format!(
                " (mean over {} vs {} runs{})",
                runs_v.len(),
                base.len(),
                if repetitions > 1 {
                    format!(", {repetitions} repetitions each")
                } else {
                    String::new()
                }
            ));
            out.push(Verdict {
                axis,
                value: value.clone(),
                baseline: values[0].clone(),
                runs: runs_v.len(),
                baseline_runs: base.len(),
                accuracy_points: points,
                accuracy_is_test: has_test,
                epoch,
                epoch_time_change: change,
                data_wait,
                compute,
                repetitions,
                text,
            });
        }
    }
    out
}

/// What `build` wrote.
#[derive(Clone, Debug)]
pub struct Report {
    pub files: Vec<PathBuf>,
    pub problems: Vec<(PathBuf, String)>,
    pub verdicts: Vec<Verdict>,
    pub runs: usize,
}

/// Reads `dir` and writes the charts and `report.html` into `out`.
pub fn build(dir: &Path, out: &Path) -> Result<Report> {
    let loaded = load(dir)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let verdicts = verdicts(&loaded.runs);
    let mut files = charts::draw_all(&loaded.runs, out)?;
    files.push(html::write(dir, &loaded, &verdicts, out)?);
    Ok(Report {
        files,
        problems: loaded.problems,
        verdicts,
        runs: loaded.runs.len(),
    })
}
