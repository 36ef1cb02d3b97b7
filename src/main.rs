//! The `flowload` binary: parse arguments, run, map errors to an exit code.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use flowload::cli::{Cli, Command, ReportArgs, RunArgs, StatsArgs};
use flowload::pipeline::compute_stats;
use flowload::report;
use flowload::source::SourceSpec;
use flowload::sweep::{SweepOptions, format_table, run_sweep};

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("flowload: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Stats(args) => stats(args),
        Command::Run(args) => sweep(*args),
        Command::Report(args) => report(args),
    }
}

fn stats(args: StatsArgs) -> anyhow::Result<()> {
    let data = SourceSpec::parse(&args.source)?.open()?;
    let started = Instant::now();
    let stats = compute_stats(&Arc::clone(&data.train), args.workers)?;
    let seconds = started.elapsed().as_secs_f64();
    stats.check_variance(&data.train.origin)?;
    if args.json {
        println!("{}", serde_json::to_string(&stats)?);
        return Ok(());
    }
    println!(
        "{}: {} training images, {}x{}x{} (CxHxW)",
        data.train.origin, stats.images, stats.channels, stats.height, stats.width
    );
    for (c, (m, s)) in stats.mean.iter().zip(&stats.std).enumerate() {
        println!("channel {c}: mean {m:.6}  std {s:.6}");
    }
    println!(
        "torchvision: Normalize(mean={:?}, std={:?})",
        stats
            .mean
            .iter()
            .map(|m| (m * 1e4).round() / 1e4)
            .collect::<Vec<_>>(),
        stats
            .std
            .iter()
            .map(|s| (s * 1e4).round() / 1e4)
            .collect::<Vec<_>>()
    );
    println!(
        "statistics pass: {seconds:.3} s on {} worker(s)",
        args.workers
    );
    Ok(())
}

fn sweep(args: RunArgs) -> anyhow::Result<()> {
    let pipeline = args.pipeline()?;
    let out = pipeline.out_dir();
    let options = SweepOptions {
        resume: args.resume,
    };
    let sweep = run_sweep(&pipeline, options, |report, total| {
        println!("{}", report.summary_line(total))
    })?;
    println!();
    print!("{}", format_table(&sweep.runs));
    println!();
    println!(
        "metrics: {}  summary: {}",
        out.join("runs").join("*.parquet").display(),
        out.join("summary.json").display()
    );
    if args.report {
        print_report(&out, &out.join("report"))?;
    }
    Ok(())
}

fn report(args: ReportArgs) -> anyhow::Result<()> {
    let out = args.out.clone().unwrap_or_else(|| args.dir.join("report"));
    print_report(&args.dir, &out)
}

fn print_report(dir: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()> {
    let report = report::build(dir, out)?;
    for (file, why) in &report.problems {
        eprintln!(
            "flowload: warning: {}: {why} (left out of the report)",
            file.display()
        );
    }
    println!("report of {} runs in {}:", report.runs, dir.display());
    for v in &report.verdicts {
        println!("  {}", v.text);
    }
    for f in &report.files {
        println!("  wrote {}", f.display());
    }
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
