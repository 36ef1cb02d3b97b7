//! The `flowload` binary: parse arguments, run, map errors to an exit code.

mod cli;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use cli::commands::{self, ChildFailed};
use cli::{Cli, Command};

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
            // One write: the processes of `cluster-local` share a terminal, and a line written
            // in pieces is spliced with theirs.
            let line = format!("flowload: error: {}\n", message(&e));
            let _ = std::io::stderr().write_all(line.as_bytes());
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Stats(args) => commands::stats(args),
        Command::Run(args) => commands::sweep(*args),
        Command::Report(args) => commands::report(args),
        Command::Convert(args) => commands::convert(args),
        Command::ClusterLocal(args) => commands::cluster_local(args),
    }
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
