//! Charts with plotters, each written as PNG and SVG: loss, accuracy, epoch time split, images/s.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::{Axis, LoadedRun, label, varying};
use crate::error::{Error, Result};
use crate::results::EpochMetrics;
use flowload_core::Workers;

const SIZE: (u32, u32) = (1000, 600);
const WAIT: RGBColor = RGBColor(230, 85, 13);
const COMPUTE: RGBColor = RGBColor(49, 130, 189);

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// The font ships with the binary: PNG text must not depend on the fonts a machine happens to have.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let font: &'static [u8] = include_bytes!("DejaVuSans.ttf");
        plotters::style::register_font("sans-serif", FontStyle::Normal, font)
            .unwrap_or_else(|_| panic!("the bundled DejaVuSans.ttf is a valid font"));
    });
}

#[derive(Clone, Copy, PartialEq)]
enum Chart {
    Loss,
    Accuracy,
    Time,
    Throughput,
}

/// Draws every chart that the runs have data for; returns the files written.
pub fn draw_all(runs: &[LoadedRun], out: &Path) -> Result<Vec<PathBuf>> {
    register_font();
    let trained = runs.iter().any(|r| r.rows.iter().any(|e| e.loss.is_some()));
    let mut files = Vec::new();
    for (name, chart) in [
        ("loss", Chart::Loss),
        ("accuracy", Chart::Accuracy),
        ("time", Chart::Time),
        ("throughput", Chart::Throughput),
    ] {
        if !trained && matches!(chart, Chart::Loss | Chart::Accuracy) {
            continue;
        }
        let png = out.join(format!("{name}.png"));
        let svg = out.join(format!("{name}.svg"));
        let failed = |path: &Path| {
            let path = path.to_path_buf();
            move |e: Box<dyn std::error::Error>| Error::Report {
                path,
                detail: format!("drawing failed: {e}"),
            }
        };
        draw(
            chart,
            BitMapBackend::new(&png, SIZE).into_drawing_area(),
            runs,
        )
        .map_err(failed(&png))?;
        draw(chart, SVGBackend::new(&svg, SIZE).into_drawing_area(), runs).map_err(failed(&svg))?;
        files.extend([png, svg]);
    }
    Ok(files)
}

fn draw<DB: DrawingBackend>(
    chart: Chart,
    root: DrawingArea<DB, Shift>,
    runs: &[LoadedRun],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (vary, common) = varying(runs);
    let labels: Vec<String> = runs.iter().map(|r| label(r, &vary)).collect();
    // What every run shares goes in a subtitle; the legends name only what differs.
    let area = root.titled(
        &format!("the same in every run: {common}"),
        ("sans-serif", 13),
    )?;
    match chart {
        Chart::Loss => lines(
            &area,
            runs,
            &labels,
            "Loss per epoch (train solid, test dashed)",
            "cross-entropy loss",
            SeriesLabelPosition::UpperRight,
            |e| (e.loss, e.test_loss),
        )?,
        Chart::Accuracy => lines(
            &area,
            runs,
            &labels,
            "Accuracy per epoch (train solid, test dashed)",
            "accuracy",
            SeriesLabelPosition::LowerRight,
            |e| (e.accuracy, e.test_accuracy),
        )?,
        Chart::Time => time_split(&area, runs, &labels)?,
        Chart::Throughput => throughput(&area, runs, &vary)?,
    }
    root.present()?;
    Ok(())
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad, hi + pad)
}

/// One colour per run: training solid, test dashed.
fn lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    runs: &[LoadedRun],
    labels: &[String],
    title: &str,
    y_desc: &str,
    legend: SeriesLabelPosition,
    metric: impl Fn(&EpochMetrics) -> (Option<f64>, Option<f64>),
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let epochs = runs.iter().map(|r| r.rows.len()).max().unwrap_or(1) as f64;
    let (lo, hi) = bounds(runs.iter().flat_map(|r| {
        // A diverged run's accuracy after it diverged is not the model's: left out of the
        // axis as out of the lines.
        let until = r.diverged().map_or(u32::MAX, |(epoch, _)| epoch);
        r.rows
            .iter()
            .filter(move |e| e.epoch < until)
            .flat_map(|e| {
                let (a, b) = metric(e);
                [a, b].into_iter().flatten()
            })
    }));
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5..epochs + 0.5, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-9 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .draw()?;
    for (i, (run, name)) in runs.iter().zip(labels).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        // A diverged run's points stop where its loss stops being a number (drawing NaN would
        // put it along the axis, as if it were the best), and its legend says so.
        let until = run.diverged().map_or(u32::MAX, |(epoch, _)| epoch);
        let name = match run.divergence() {
            Some(d) => format!("{name} ({d})"),
            None => name.clone(),
        };
        let points = |test: bool| -> Vec<(f64, f64)> {
            run.rows
                .iter()
                .filter(|e| e.epoch < until)
                .filter_map(|e| {
                    let (a, b) = metric(e);
                    (if test { b } else { a })
                        .filter(|v| v.is_finite())
                        .map(|v| (e.epoch as f64, v))
                })
                .collect()
        };
        chart
            .draw_series(LineSeries::new(points(false), color.stroke_width(2)))?
            .label(format!("{name} train"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        let test = points(true);
        // A line needs two epochs: a one-epoch run is a point (filled: train, hollow: test).
        if run.rows.len() == 1 {
            chart.draw_series(
                points(false)
                    .into_iter()
                    .map(|p| Circle::new(p, 5, color.filled())),
            )?;
            chart.draw_series(
                test.iter()
                    .map(|&p| Circle::new(p, 5, color.stroke_width(2))),
            )?;
        }
        if !test.is_empty() {
            chart
                .draw_series(DashedLineSeries::new(test, 8, 5, color.stroke_width(2)))?
                .label(format!("{name} test"))
                .legend(move |(x, y)| {
                    PathElement::new(
                        vec![(x, y), (x + 8, y), (x + 13, y), (x + 20, y)],
                        color.stroke_width(1),
                    )
                });
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(legend)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// One stacked bar per run: mean data wait under mean compute per epoch.
fn time_split<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    runs: &[LoadedRun],
    labels: &[String],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let parts: Vec<(f64, f64)> = runs
        .iter()
        .map(|r| {
            (
                r.mean(|e| e.data_wait_seconds),
                r.mean(|e| e.compute_seconds),
            )
        })
        .collect();
    let top = parts
        .iter()
        .map(|(w, c)| w + c)
        .fold(0.0, f64::max)
        .max(1e-6)
        * 1.15;
    let n = runs.len() as u32;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Epoch time: data wait and compute (mean per epoch)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), 0.0..top)?;
    let formatter = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("seconds per epoch")
        .x_label_formatter(&formatter)
        .x_label_style(("sans-serif", 12))
        .draw()?;
    let bar = |i: u32, from: f64, to: f64, color: RGBColor| {
        let mut r = Rectangle::new(
            [
                (SegmentValue::Exact(i), from),
                (SegmentValue::Exact(i + 1), to),
            ],
            color.filled(),
        );
        r.set_margin(0, 0, 20, 20);
        r
    };
    chart
        .draw_series(
            parts
                .iter()
                .enumerate()
                .map(|(i, (w, _))| bar(i as u32, 0.0, *w, WAIT)),
        )?
        .label("data wait")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], WAIT.filled()));
    chart
        .draw_series(
            parts
                .iter()
                .enumerate()
                .map(|(i, (w, c))| bar(i as u32, *w, w + c, COMPUTE)),
        )?
        .label("compute")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], COMPUTE.filled()));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}

/// Points grouped by x: `(x, median y, lowest y, highest y)`, in x order.
fn spread_by_x(points: &[(f64, f64)]) -> Vec<(f64, f64, f64, f64)> {
    let mut xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    xs.into_iter()
        .map(|x| {
            let ys: Vec<f64> = points
                .iter()
                .filter(|p| (p.0 - x).abs() < 1e-9)
                .map(|p| p.1)
                .collect();
            let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (x, crate::results::median(ys.iter().copied()), lo, hi)
        })
        .collect()
}

/// Median images/s per run against its worker count, one line per combination of the other
/// axes; repetitions of a grid point show as a bar from the lowest to the highest.
fn throughput<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    runs: &[LoadedRun],
    vary: &[Axis],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let others: Vec<Axis> = vary
        .iter()
        .copied()
        .filter(|a| *a != Axis::Workers)
        .collect();
    // x is the workers active per epoch, averaged: the count itself, or where `auto` went.
    let mut groups: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in runs {
        let point = (r.mean(|e| e.workers as f64), r.median_images_per_second());
        let mut name = if others.is_empty() {
            "all runs".to_string()
        } else {
            label(r, &others)
        };
        if r.params.workers == Workers::Auto {
            name.push_str(" (auto)");
        }
        match groups.iter_mut().find(|(g, _)| *g == name) {
            Some((_, pts)) => pts.push(point),
            None => groups.push((name, vec![point])),
        }
    }
    let (w_lo, w_hi) = groups
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold((f64::INFINITY, 0f64), |(lo, hi), w| (lo.min(w), hi.max(w)));
    let top = groups
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Images/s by worker count (median epoch)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(w_lo - 0.5..w_hi + 0.5, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("decode workers")
        .y_desc("images/s")
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-9 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (i, (name, pts)) in groups.into_iter().enumerate() {
        // Repetitions of a point: the line joins medians, a bar spans lowest to highest.
        let spread = spread_by_x(&pts);
        let color = Palette99::pick(i).to_rgba();
        chart.draw_series(spread.iter().filter(|s| s.2 < s.3).map(|&(x, _, lo, hi)| {
            PathElement::new(vec![(x, lo), (x, hi)], color.stroke_width(3))
        }))?;
        let pts: Vec<(f64, f64)> = spread.iter().map(|s| (s.0, s.1)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 5, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    Ok(())
}
