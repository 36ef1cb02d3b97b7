//! `flowload cluster-local`: one command as N processes on 127.0.0.1, for trying cluster mode
//! on one machine (and for the tests).
//!
//! The processes are its own: each reads the hostfile from a pipe (nothing is left on disk),
//! SIGTERM, SIGINT and SIGHUP are passed on to them, and the kernel kills them when
//! `cluster-local` dies, even by SIGKILL (`PR_SET_PDEATHSIG`).

use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The signals passed on to the processes.
const FORWARDED: [i32; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

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
    let hostfile: String = ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect();
    let signal = Arc::new(AtomicUsize::new(0));
    for sig in FORWARDED {
        signal_hook::flag::register_usize(sig, signal.clone(), sig as usize)
            .context("cluster-local: installing a signal handler")?;
    }
    let mut children: Vec<Child> = Vec::with_capacity(processes);
    for i in 0..processes {
        let child = spawn(exe, args, processes, i, &hostfile)
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
    let mut forwarded = 0;
    while status.iter().any(Option::is_none) {
        let sig = signal.swap(0, Ordering::Relaxed);
        if sig != 0 {
            // Pass it on, then wait as after a failure: they stop, or are killed after `grace`.
            for (i, c) in children.iter().enumerate() {
                if status[i].is_none() {
                    // SAFETY: kill(2) on a child's pid that has not been reaped, so still ours.
                    unsafe { libc::kill(c.id() as i32, sig as i32) };
                }
            }
            forwarded = sig;
            failed_at.get_or_insert_with(Instant::now);
        }
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
    if forwarded != 0 {
        eprintln!("flowload: cluster-local: stopped by signal {forwarded}");
        return Ok(128 + forwarded as i32);
    }
    if status[0].is_some_and(|s| !s.success()) {
        return Ok(code(&status[0]));
    }
    Ok(status
        .iter()
        .find(|s| s.is_some_and(|s| !s.success()))
        .map_or(0, code))
}

/// Starts process `i` of `processes`, hands it the hostfile on its standard input, and has
/// the kernel kill it when this process dies.
fn spawn(exe: &Path, args: &[String], processes: usize, i: usize, hostfile: &str) -> Result<Child> {
    let mut command = Command::new(exe);
    command
        .args(args)
        .args(["--processes", &processes.to_string()])
        .args(["--process-id", &i.to_string()])
        .args(["--hostfile", "/dev/stdin"])
        .stdin(Stdio::piped());
    let parent = std::process::id() as i32;
    // SAFETY: prctl(2), getppid(2) and _exit(2) are async-signal-safe, as a pre_exec closure
    // requires.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then no signal will come.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(hostfile.as_bytes())?;
    Ok(child)
}
