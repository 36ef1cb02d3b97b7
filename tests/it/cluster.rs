//! Cluster mode through the binary: `cluster-local` trains to the losses of one process; a
//! lost process, a missing one, a port in use, a bad hostfile or a different configuration end
//! in a bounded time with an error that names the process. (The library's two-process batches
//! and statistics are in flowload-core's tests.)

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::free_ports;

/// Runs the binary; stdout is piped to a thread that forwards it line by line.
fn spawn(args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowload"))
        .env(flowload_core::CACHE_ENV, "off")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

fn hostfile(dir: &Path, ports: &[u16]) -> String {
    let path = dir.join("hosts");
    let text: String = ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Waits for the child with a deadline; returns its exit status, stderr and the time it took.
fn finish(mut child: Child, limit: Duration) -> (std::process::ExitStatus, String, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status, err, started.elapsed());
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!(
                "still running {} s after its peer was lost",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The tests run two at a time on CI's 2 cores, each with two processes: with libtorch's default
/// of one thread per core, its OpenMP threads spin waiting for each other's preempted threads
/// (measured here: two of these tests together took 20–42 s, 4.7 s with one thread each).
const TORCH_THREADS: &str = "1";

const DATA: &str = "synthetic:images=600,channels=1,size=16x16,classes=4,seed=9,test=100";

fn columns(dir: &Path, run: u32, names: &[&str]) -> Vec<Vec<u64>> {
    let batch = common::read_parquet(&dir.join(format!("runs/run-{run:04}.parquet")));
    names
        .iter()
        .map(|n| {
            let col = arrow::compute::cast(
                batch
                    .column_by_name(n)
                    .unwrap_or_else(|| panic!("column {n}")),
                &arrow::datatypes::DataType::Float64,
            )
            .unwrap();
            let col = col
                .as_any()
                .downcast_ref::<arrow::array::Float64Array>()
                .unwrap();
            col.values().iter().map(|v| v.to_bits()).collect()
        })
        .collect()
}

#[test]
fn cluster_local_trains_to_the_losses_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let common_args = [
        "--data",
        DATA,
        "--epochs",
        "3",
        "--batch-size",
        "50",
        "--normalize",
        "false,true",
        "--torch-threads",
        TORCH_THREADS,
        // Per-sample draws: the same crops and flips wherever a batch is built.
        "--augment",
        "random_crop:16,padding=2,mode=reflect",
        "--augment",
        "hflip",
    ];
    let mut args = vec!["run"];
    args.extend(common_args);
    args.extend(["--workers", "2", "--out", one.to_str().unwrap()]);
    let o = common::flowload(&args);
    assert!(o.status.success(), "{}", common::stderr(&o));
    for wire in ["raw", "arrow"] {
        let mut args = vec!["cluster-local", "--processes", "2", "run"];
        args.extend(common_args);
        args.extend([
            "--workers",
            "1",
            "--wire",
            wire,
            "--out",
            two.to_str().unwrap(),
            "--overwrite",
        ]);
        let o = common::flowload(&args);
        assert!(o.status.success(), "{}", common::stderr(&o));
        let trained = ["loss", "accuracy", "test_loss", "test_accuracy", "images"];
        for run in [1, 2] {
            assert_eq!(
                columns(&two, run, &trained),
                columns(&one, run, &trained),
                "{wire}: run {run}: bit for bit"
            );
            let cluster = columns(&two, run, &["processes", "bytes_received"]);
            assert!(cluster[0].iter().all(|&p| f64::from_bits(p) == 2.0));
            // Half the batches come from process 1; arrow's f32 values are 4x raw's bytes.
            let bytes = f64::from_bits(cluster[1][0]);
            let pixels = 300.0 * 256.0;
            match wire {
                "raw" => assert!((pixels..1.2 * pixels).contains(&bytes), "{bytes}"),
                _ => assert!((4.0 * pixels..4.8 * pixels).contains(&bytes), "{bytes}"),
            }
            let local = columns(&one, run, &["processes", "bytes_received"]);
            assert_eq!(f64::from_bits(local[0][0]), 1.0);
            assert_eq!(f64::from_bits(local[1][0]), 0.0);
        }
        let summary = |d: &Path| {
            let s: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap())
                    .unwrap();
            s["runs"][1]["stats"].clone()
        };
        assert_eq!(summary(&two), summary(&one), "global statistics");
        assert!(summary(&one)["mean"][0].as_f64().unwrap() > 0.0);
    }
}

/// Loses process `victim` during the second run; the survivor must stop in bounded time, name
/// the lost process, and leave the first run's results whole.
/// How a process is lost: killed (its sockets close), or stopped (it hangs, sockets open).
#[derive(Clone, Copy, PartialEq)]
enum Loss {
    Kill,
    Stop,
}

fn lose_mid_run(victim: usize, how: Loss) {
    let dir = tempfile::tempdir().unwrap();
    let hosts = hostfile(dir.path(), &free_ports(2).unwrap());
    let out = dir.path().join("out");
    let args = |id: &'static str| {
        vec![
            "run".to_string(),
            "--data".into(),
            "synthetic:images=1000,channels=1,size=16x16,classes=4,seed=9".into(),
            "--epochs".into(),
            "30".into(),
            "--lr".into(),
            "0.01,0.02".into(),
            "--workers".into(),
            "1".into(),
            "--batch-size".into(),
            "50".into(),
            "--normalize".into(),
            "false".into(),
            "--out".into(),
            out.to_str().unwrap().into(),
            "--processes".into(),
            "2".into(),
            "--hostfile".into(),
            hosts.clone(),
            "--process-id".into(),
            id.into(),
            "--torch-threads".into(),
            TORCH_THREADS.into(),
            // A killed process must be noticed by its closed sockets, long before the default
            // stall timeout (60 s); a stopped one only by the stall timeout.
            "--stall-timeout".into(),
            if how == Loss::Stop { "2" } else { "60" }.into(),
        ]
    };
    let a0 = args("0");
    let a1 = args("1");
    let (p0, lines) = spawn(&a0.iter().map(String::as_str).collect::<Vec<_>>());
    let (p1, _) = spawn(&a1.iter().map(String::as_str).collect::<Vec<_>>());
    // Run 1 is complete once process 0 prints its line.
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(300))
            .expect("run 1 ends");
        if line.starts_with("run 1/2") {
            break;
        }
    }
    let (mut dead, survivor) = if victim == 0 { (p0, p1) } else { (p1, p0) };
    if how == Loss::Stop {
        let stop = Command::new("kill")
            .args(["-STOP", &dead.id().to_string()])
            .status()
            .unwrap();
        assert!(stop.success());
    } else {
        dead.kill().unwrap();
        dead.wait().unwrap();
    }
    let (status, err, took) = finish(survivor, Duration::from_secs(30));
    if how == Loss::Stop {
        dead.kill().unwrap(); // SIGKILL ends a stopped process too
        dead.wait().unwrap();
    }
    eprintln!("survivor stopped {took:?} after the loss: {err}");
    assert!(!status.success(), "{err}");
    // A bound for a slow, shared CI host, far below the 60 s that only the stall timeout gives.
    assert!(
        took < Duration::from_secs(20),
        "noticed after {took:?}: {err}"
    );
    assert!(
        err.contains(&format!("process {victim} (127.0.0.1:")),
        "the error names the lost process: {err}"
    );
    // Only a hung process should need the stall timeout; a dead one closes its sockets.
    assert_eq!(err.contains("no batch for 2 s"), how == Loss::Stop, "{err}");
    assert!(!err.contains("panicked"), "no panic output: {err}");
    let run1 = common::read_parquet(&out.join("runs/run-0001.parquet"));
    assert_eq!(run1.num_rows(), 30, "run 1 stays whole");
    assert!(!out.join("runs/run-0002.parquet").exists());
}

#[test]
fn a_killed_decode_process_stops_the_trainer_in_bounded_time() {
    lose_mid_run(1, Loss::Kill);
}

#[test]
fn a_killed_trainer_stops_the_decode_process_in_bounded_time() {
    lose_mid_run(0, Loss::Kill);
}

#[test]
fn a_hung_decode_process_is_named_after_the_stall_timeout() {
    lose_mid_run(1, Loss::Stop);
}

/// `run` of one epoch on [`DATA`] as one of two processes of one worker each, into `out`.
fn one_epoch_of_two(out: &Path) -> Vec<&str> {
    let out = out.to_str().unwrap();
    vec![
        "run",
        "--data",
        DATA,
        "--epochs",
        "1",
        "--workers",
        "1",
        "--out",
        out,
        "--processes",
        "2",
    ]
}

fn run_alone(args: &[&str]) -> (std::process::ExitStatus, String, Duration) {
    let (child, _) = spawn(args);
    finish(child, Duration::from_secs(60))
}

#[test]
fn a_process_that_never_connects_is_named_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = hostfile(dir.path(), &free_ports(2).unwrap());
    let out = dir.path().join("out");
    let alone = |id: &str| {
        let mut a = one_epoch_of_two(&out);
        a.extend([
            "--process-id",
            id,
            "--hostfile",
            &hosts,
            "--connect-timeout",
            "1",
        ]);
        run_alone(&a)
    };
    let (status, err, took) = alone("0");
    assert!(!status.success());
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        err.contains("process 1 (127.0.0.1:") && err.contains("did not connect"),
        "{err}"
    );
    let (status, err, _) = alone("1");
    assert!(!status.success());
    assert!(
        err.contains("cannot connect to process 0 (127.0.0.1:"),
        "{err}"
    );
}

#[test]
fn port_in_use_bad_hostfile_and_other_config_get_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut ports = free_ports(1).unwrap();
    ports.insert(0, taken.local_addr().unwrap().port());
    let hosts = hostfile(dir.path(), &ports);
    let out = dir.path().join("out");
    let mut base = one_epoch_of_two(&out);
    base.extend(["--connect-timeout", "5"]);
    let with = |extra: &[&str]| {
        let mut a = base.clone();
        a.extend(extra);
        common::flowload(&a)
    };
    let o = with(&["--process-id", "0", "--hostfile", &hosts]);
    let err = common::stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("process 0 (127.0.0.1:") && err.contains("port is in use"),
        "{err}"
    );

    let bad = dir.path().join("bad-hosts");
    std::fs::write(&bad, "127.0.0.1:2101\nsecond-machine\n").unwrap();
    let o = with(&["--process-id", "0", "--hostfile", bad.to_str().unwrap()]);
    let err = common::stderr(&o);
    assert!(
        err.contains("bad-hosts: line 2: 'second-machine' is not host:port"),
        "{err}"
    );

    let o = with(&["--process-id", "2", "--hostfile", &hosts]);
    assert!(common::stderr(&o).contains("--process-id 2 is out of range"));
    let o = with(&["--process-id", "0"]);
    assert!(common::stderr(&o).contains("needs --hostfile"));

    // Two processes started with different seeds refuse each other.
    drop(taken);
    let hosts = hostfile(dir.path(), &free_ports(2).unwrap());
    let mut a0 = base.clone();
    a0.extend(["--process-id", "0", "--hostfile", &hosts]);
    let mut a1 = a0.clone();
    let id = a1.len() - 3;
    a1[id] = "1";
    a1.extend(["--seed", "5"]);
    let (c0, _) = spawn(&a0);
    let (c1, _) = spawn(&a1);
    for c in [c0, c1] {
        let (status, err, _) = finish(c, Duration::from_secs(60));
        assert!(!status.success());
        assert!(err.contains("runs another configuration"), "{err}");
    }
}

#[test]
fn a_cluster_needs_at_least_one_worker_per_process() {
    let dir = tempfile::tempdir().unwrap();
    let o = common::flowload(&[
        "cluster-local",
        "--processes",
        "2",
        "run",
        "--data",
        DATA,
        "--workers",
        "0,1",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        common::stderr(&o).contains("must be at least 1"),
        "{}",
        common::stderr(&o)
    );
}

/// A setting every process would refuse is checked once, before any process starts: one
/// message, not one per process spliced together.
#[test]
fn a_bad_setting_under_cluster_local_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        &["--epochs", "0"][..],
        &["--weight-decay", "-1"],
        &["--stats", "/nonexistent/stats.json"],
    ] {
        let mut args = vec![
            "cluster-local",
            "--processes",
            "3",
            "run",
            "--data",
            DATA,
            "--out",
            dir.path().to_str().unwrap(),
        ];
        args.extend_from_slice(bad);
        let o = common::flowload(&args);
        let err = common::stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{bad:?}: {err}");
        assert_eq!(err.matches("flowload: error:").count(), 1, "{bad:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{bad:?}: {err}");
    }
}

/// The live (not zombie) children of `pid`, from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so read after its last ')'.
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        if rest[1].parse::<u32>() == Ok(pid) && rest[0] != "Z" {
            found.push(child);
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(')').unwrap().1.split_whitespace().next() != Some("Z"))
}

/// Starts a long cluster-local sweep and waits until both of its processes run.
fn long_cluster_local(out: &Path) -> (Child, Vec<u32>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowload"))
        .env(flowload_core::CACHE_ENV, "off")
        .args(["cluster-local", "--processes", "2", "run", "--data", DATA])
        .args(["--epochs", "100000", "--torch-threads", TORCH_THREADS])
        .args(["--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let kids = loop {
        let kids = children_of(child.id());
        if kids.len() == 2 {
            break kids;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the processes never started");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (child, kids)
}

fn gone_within(pids: &[u32], limit: Duration) {
    let deadline = Instant::now() + limit;
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            Instant::now() < deadline,
            "still running {} s later: {pids:?}",
            limit.as_secs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn cluster_local_passes_sigterm_on_and_its_processes_die_with_it_even_by_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let hostfiles = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("flowload-hosts-")
            })
            .count()
    };
    let before = hostfiles();
    let (mut child, kids) = long_cluster_local(&dir.path().join("term"));
    assert_eq!(
        hostfiles(),
        before,
        "the hostfile travels on a pipe, not in /tmp"
    );
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status}");
    gone_within(&kids, Duration::from_secs(20));

    let (mut child, kids) = long_cluster_local(&dir.path().join("kill"));
    child.kill().unwrap(); // SIGKILL: nothing of cluster-local runs after it
    child.wait().unwrap();
    gone_within(&kids, Duration::from_secs(20));
}

fn refs(a: &[String]) -> Vec<&str> {
    a.iter().map(String::as_str).collect()
}

/// A cluster run killed with `kill -9` — one of its processes, or `cluster-local` and with it
/// both — goes on from process 0's checkpoint under `cluster-local --resume`, to the rows of
/// the run never killed, bit for bit.
#[test]
fn a_killed_cluster_run_resumes_from_process_0s_checkpoint_to_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &Path, every: &str| -> Vec<String> {
        [
            "cluster-local",
            "--processes",
            "2",
            "run",
            "--data",
            DATA,
            "--epochs",
            "6",
            "--batch-size",
            "20",
            "--workers",
            "1",
            "--device",
            "cpu",
            "--torch-threads",
            TORCH_THREADS,
            "--augment",
            "random_crop:16,padding=2",
            "--augment",
            "hflip",
            "--checkpoint-every",
            every,
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let reference = dir.path().join("reference");
    let o = common::flowload(&refs(&args(&reference, "0")));
    assert!(o.status.success(), "{}", common::stderr(&o));
    let figures = ["loss", "accuracy", "test_loss", "test_accuracy"];
    let want = columns(&reference, 1, &figures);
    for (name, kill_a_process) in [("a process", true), ("cluster-local", false)] {
        let out = dir.path().join(name);
        let a = args(&out, "0.01");
        let (mut child, _) = spawn(&refs(&a));
        let state = out.join("checkpoints/run-0001/state.pt");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !state.exists() {
            assert!(Instant::now() < deadline, "{name}: no checkpoint");
            assert!(child.try_wait().unwrap().is_none(), "{name}: ended first");
            std::thread::sleep(Duration::from_millis(2));
        }
        let kids = children_of(child.id());
        assert!(
            child.try_wait().unwrap().is_none(),
            "{name}: ended before the kill"
        );
        if kill_a_process {
            // SAFETY: kill(2) on a process of this test's cluster.
            unsafe { libc::kill(*kids.last().unwrap() as i32, libc::SIGKILL) };
            let (status, _, _) = finish(child, Duration::from_secs(60));
            assert!(!status.success(), "{name}");
        } else {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        gone_within(&kids, Duration::from_secs(20));
        assert!(!out.join("runs/run-0001.parquet").exists(), "{name}");
        let mut again = a.clone();
        again.push("--resume".into());
        let o = common::flowload(&refs(&again));
        assert!(o.status.success(), "{name}: {}", common::stderr(&o));
        let said = common::stderr(&o);
        assert!(
            said.contains("goes on from its checkpoint"),
            "{name}: {said}"
        );
        assert_eq!(columns(&out, 1, &figures), want, "{name}: the rows differ");
        eprintln!(
            "{name}: {}",
            said.lines().find(|l| l.contains("goes on")).unwrap()
        );
    }
}
