//! `flowload cluster-local`: one command as N processes on 127.0.0.1, for trying cluster mode
//! on one machine (and for the tests).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Flags that `cluster-local` sets itself.
const OWN_FLAGS: [&str; 3] = ["--processes", "--process-id", "--hostfile"];

/// `n` ports that are free on 127.0.0.1 now (the listeners are held together, so the ports
/// differ; another program may still take one before the processes bind it, which they report).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("finding free ports on 127.0.0.1")?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<Vec<_>>>()
        .context("finding free ports on 127.0.0.1")
}

/// A hostfile in the temporary directory, removed on drop.
struct Hostfile(PathBuf);

impl Drop for Hostfile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `exe run <args>` as `processes` processes on free local ports and waits for them.
/// Returns the exit code to use: process 0's when it failed, else the first failure's, else 0.
///
/// Once one process has failed, the others get `grace` to notice (they do: a lost connection
/// is an error within a bounded time) before they are killed.
pub(crate) fn run_local(
    exe: &Path,
    processes: usize,
    args: &[String],
    grace: Duration,
) -> Result<i32> {
    if processes < 2 {
        bail!("invalid configuration: cluster-local needs --processes 2 or more");
    }
    if args.first().map(String::as_str) != Some("run") {
        bail!(
            "invalid configuration: cluster-local runs a `run` command: flowload cluster-local --processes N run PIPELINE [FLAGS]"
        );
    }
    if let Some(flag) = args.iter().find(|a| {
        OWN_FLAGS
            .iter()
            .any(|f| a.as_str() == *f || a.starts_with(&format!("{f}=")))
    }) {
        bail!("invalid configuration: cluster-local sets {flag} itself; leave it out");
    }
    let ports = free_ports(processes)?;
    let path = std::env::temp_dir().join(format!(
        "flowload-hosts-{}-{}.txt",
        std::process::id(),
        ports[0]
    ));
    let text: String = ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect();
    std::fs::write(&path, text).with_context(|| path.display().to_string())?;
    let hostfile = Hostfile(path);
    let mut children: Vec<Child> = Vec::with_capacity(processes);
    for i in 0..processes {
        let child = Command::new(exe)
            .args(args)
            .args(["--processes", &processes.to_string()])
            .args(["--process-id", &i.to_string()])
            .arg("--hostfile")
            .arg(&hostfile.0)
            .spawn()
            .with_context(|| format!("cluster-local: starting process {i}"));
        match child {
            Ok(c) => children.push(c),
            Err(e) => {
                for c in &mut children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return Err(e);
            }
        }
    }
    let mut status: Vec<Option<ExitStatus>> = vec![None; processes];
    let mut failed_at: Option<Instant> = None;
    while status.iter().any(Option::is_none) {
        for (i, c) in children.iter_mut().enumerate() {
            if status[i].is_some() {
                continue;
            }
            let exited = c
                .try_wait()
                .with_context(|| format!("cluster-local: process {i}"))?;
            if let Some(s) = exited {
                if !s.success() {
                    failed_at.get_or_insert_with(Instant::now);
                }
                status[i] = Some(s);
            }
        }
        if failed_at.is_some_and(|t| t.elapsed() > grace) {
            for (i, c) in children.iter_mut().enumerate() {
                if status[i].is_none() {
                    eprintln!(
                        "flowload: cluster-local: process {i} still running after another failed; killing it"
                    );
                    let _ = c.kill();
                    status[i] = c.wait().ok();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let code = |s: &Option<ExitStatus>| s.and_then(|s| s.code()).unwrap_or(1);
    for (i, s) in status.iter().enumerate() {
        if let Some(s) = s.filter(|s| !s.success()) {
            eprintln!("flowload: cluster-local: process {i} {s}");
        }
    }
    if status[0].is_some_and(|s| !s.success()) {
        return Ok(code(&status[0]));
    }
    Ok(status
        .iter()
        .find(|s| s.is_some_and(|s| !s.success()))
        .map_or(0, code))
}
