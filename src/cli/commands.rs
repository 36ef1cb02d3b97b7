//! The subcommands, one function each: open what the arguments name, run the library, and
//! print what the user reads (through [`super::console`] for a sweep).

use std::time::Instant;

use clap::Parser as _;

use flowload::report;
use flowload::results::Existing;
use flowload::sweep::{SweepOptions, check, run_sweep, serve_sweep};
use flowload_core::cluster::Role;
use flowload_core::{ConvertOptions, Stats, cores};

use super::console::{format_table, summary_line};
use super::{Cli, ClusterLocalArgs, Command, ConvertArgs, ReportArgs, RunArgs, StatsArgs};

/// `cluster-local` ends with the exit code of the process that failed.
#[derive(Debug)]
pub(crate) struct ChildFailed(pub(crate) u8);

impl std::fmt::Display for ChildFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a cluster process exited with status {}", self.0)
    }
}

impl std::error::Error for ChildFailed {}

pub(crate) fn cluster_local(args: ClusterLocalArgs) -> anyhow::Result<()> {
    // The command as each process will parse it: a bad flag or setting is reported here,
    // once, instead of by every process at the same time.
    let command = std::iter::once("flowload".to_string()).chain(args.command.iter().cloned());
    if let Ok(Cli {
        command: Command::Run(run),
    }) = Cli::try_parse_from(command)
    {
        check(&run.pipeline()?, args.processes)?;
    }
    let exe = std::env::current_exe()?;
    // Every process notices a lost peer within its own bounds; this only stops stragglers.
    let grace = std::time::Duration::from_secs(30);
    match super::cluster_local::run_local(&exe, args.processes, &args.command, grace)? {
        0 => Ok(()),
        code => Err(ChildFailed(code.clamp(1, 255) as u8).into()),
    }
}

pub(crate) fn stats(args: StatsArgs) -> anyhow::Result<()> {
    let (data, on_bad_record) = args.source_args.open(&args.source)?;
    let started = Instant::now();
    let store = args.cache.setting().open();
    // `auto`: a statistics pass has no trainer beside it, so every core.
    let workers = args.workers.resolve(cores());
    let outcome = Stats::pass(&data.train)
        .workers(workers)
        .on_bad_record(on_bad_record)
        .store(store.as_ref())
        .run()?;
    let seconds = started.elapsed().as_secs_f64();
    let (stats, pass) = (outcome.stats, outcome.report);
    stats.check_variance(data.train.origin())?;
    for s in &outcome.skipped {
        eprintln!("flowload: skipped {s}");
    }
    let unlisted = outcome.skipped_total - outcome.skipped.len() as u64;
    if unlisted > 0 {
        eprintln!(
            "flowload: skipped {unlisted} bad record(s) in cached shards (listed when they were decoded; --no-stats-cache lists them again)"
        );
    }
    if args.json {
        println!("{}", serde_json::to_string(&stats)?);
        return Ok(());
    }
    println!(
        "{}: {} training images, {} (CxHxW)",
        data.train.origin(),
        stats.images,
        stats.shape()
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
        "statistics pass: {seconds:.3} s on {} worker(s), {}: {} of {} shard(s) decoded",
        workers,
        pass.source.name(),
        pass.decoded,
        pass.parts
    );
    Ok(())
}

pub(crate) fn sweep(args: RunArgs) -> anyhow::Result<()> {
    let pipeline = args.pipeline()?;
    let out = pipeline.out_dir();
    let trainer = match args.cluster()?.map(|spec| spec.role()) {
        None => None,
        Some(Role::Trainer(process)) => Some(process),
        Some(Role::Follower(process)) => {
            let (spec, started) = (process.spec().clone(), Instant::now());
            let cache = args.cache.setting();
            serve_sweep(
                &pipeline,
                &process,
                args.wire,
                &cache,
                |params, total, tuning| {
                    let auto = tuning.map_or(String::new(), |t| format!(", {}", t.describe()));
                    eprintln!(
                        "process {}/{}: built run {}/{}{auto} ({:.1} s so far)",
                        spec.process,
                        spec.processes,
                        params.run,
                        total,
                        started.elapsed().as_secs_f64()
                    )
                },
            )?;
            return Ok(());
        }
    };
    let options = SweepOptions {
        existing: match (args.resume, args.overwrite) {
            (true, _) => Existing::Resume,
            (false, true) => Existing::Overwrite,
            (false, false) => Existing::Refuse,
        },
        cluster: trainer,
        wire: args.wire,
        stats_cache: args.cache.setting(),
        keep_checkpoints: args.keep_checkpoints,
        notify: Some(|note| eprintln!("flowload: {note}")),
    };
    let sweep = run_sweep(&pipeline, options, |report, total| {
        println!("{}", summary_line(report, total))
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

pub(crate) fn convert(args: ConvertArgs) -> anyhow::Result<()> {
    let (data, on_bad_record) = args.source_args.open(&args.source)?;
    let started = Instant::now();
    let files = data.convert(
        &args.out,
        &ConvertOptions {
            row_group_size: args.row_group_size,
            shard_rows: args.shard_rows,
            on_bad_record,
            overwrite: args.overwrite,
        },
    )?;
    for f in &files {
        println!("wrote {}", f.display());
    }
    println!("converted in {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}

pub(crate) fn report(args: ReportArgs) -> anyhow::Result<()> {
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
