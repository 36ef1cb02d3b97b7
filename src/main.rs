//! The `flowload` binary: parse arguments, run, map errors to an exit code.

mod cli;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use cli::{Cli, ClusterLocalArgs, Command, ConvertArgs, ReportArgs, RunArgs, StatsArgs};
use flowload::cluster::Role;
use flowload::loader::stats::statistics;
use flowload::report;
use flowload::results::Existing;
use flowload::sweep::{SweepOptions, format_table, run_sweep, serve_sweep};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Die quietly on a closed pipe (`flowload run ... | head`), as Unix tools do, instead of
    // panicking inside println!. Not in a cluster: there a peer that dies closes a socket, and
    // SIGPIPE would kill this process silently instead of letting it name the lost peer.
    let cluster = match &cli.command {
        Command::Run(args) => args.processes > 1,
        Command::ClusterLocal(_) => true,
        _ => false,
    };
    #[cfg(unix)]
    if !cluster {
        // SAFETY: restoring the default disposition of one signal before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<ChildFailed>().is_some() => {
            ExitCode::from(e.downcast_ref::<ChildFailed>().map_or(1, |c| c.0))
        }
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("flowload: error: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Stats(args) => stats(args),
        Command::Run(args) => sweep(*args),
        Command::Report(args) => report(args),
        Command::Convert(args) => convert(args),
        Command::ClusterLocal(args) => cluster_local(args),
    }
}

/// `cluster-local` ends with the exit code of the process that failed.
#[derive(Debug)]
struct ChildFailed(u8);

impl std::fmt::Display for ChildFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a cluster process exited with status {}", self.0)
    }
}

impl std::error::Error for ChildFailed {}

fn cluster_local(args: ClusterLocalArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    // Every process notices a lost peer within its own bounds; this only stops stragglers.
    let grace = std::time::Duration::from_secs(30);
    match cli::cluster_local::run_local(&exe, args.processes, &args.command, grace)? {
        0 => Ok(()),
        code => Err(ChildFailed(code.clamp(1, 255) as u8).into()),
    }
}

fn stats(args: StatsArgs) -> anyhow::Result<()> {
    let (data, on_bad_record) = args.source_args.open(&args.source)?;
    let started = Instant::now();
    let store = args.cache.setting().open();
    // `auto`: a statistics pass has no trainer beside it, so every core.
    let workers = args.workers.resolve(flowload::sweep::cores());
    let outcome = statistics(&data.train, workers, on_bad_record, store.as_ref())?;
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

fn sweep(args: RunArgs) -> anyhow::Result<()> {
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

fn convert(args: ConvertArgs) -> anyhow::Result<()> {
    let (data, on_bad_record) = args.source_args.open(&args.source)?;
    let started = Instant::now();
    let files = flowload::sink::shards::convert(
        &data,
        &args.out,
        args.row_group_size,
        args.shard_rows,
        on_bad_record,
        args.overwrite,
    )?;
    for f in &files {
        println!("wrote {}", f.display());
    }
    println!("converted in {:.2} s", started.elapsed().as_secs_f64());
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

/// The error and its causes, each once: a cause whose text the message already holds (an I/O
/// error that a variant prints with its path) is not repeated.
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
