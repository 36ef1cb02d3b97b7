//! Cluster mode: decode workers in several processes, the trainer on process 0, batches on
//! timely's own TCP channels.
//!
//! Every process runs the same command with its own `--process-id`. Each run of the sweep is one
//! timely computation over all processes (a *session*, see [`Session`]); global worker
//! `process × threads + thread` builds batch `i` of each epoch when `i mod (processes × threads)`
//! is its index, so the batches are the same ones that one process with that many threads builds.
//! Process 0 announces each session (statistics pass, epochs, or done), which is how the
//! others follow a `--resume` that skipped runs.

pub(crate) mod connect;
pub(crate) mod failure;

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Peer, Result};

pub use connect::{Announce, FollowerCluster, Session, TrainerCluster};

/// Where this process sits in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Processes in the cluster, at least 2.
    pub processes: usize,
    /// This process's index, `0..processes`; process 0 trains.
    pub process: usize,
    /// `host:port` of every process, in process order (the hostfile's first `processes` lines).
    pub addresses: Vec<String>,
    /// How long to wait for the other processes to connect (and to retry connecting to them).
    pub connect_timeout: Duration,
    /// How long process 0 waits for the next batch before it names the process that owes it.
    pub stall_timeout: Duration,
}

/// The default of `--stall-timeout`: far above any batch's decode time, far below forever.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

impl ClusterSpec {
    /// Process `process` of `processes`, at the first `processes` of `addresses`; the stall
    /// timeout is [`STALL_TIMEOUT`] until set.
    pub fn new(
        processes: usize,
        process: usize,
        addresses: Vec<String>,
        connect_timeout: Duration,
    ) -> Result<Self> {
        if processes < 2 {
            return Err(Error::Config(format!(
                "--processes {processes}: a cluster has at least 2 processes"
            )));
        }
        if process >= processes {
            return Err(Error::Config(format!(
                "--process-id {process} is out of range for --processes {processes} (0..{})",
                processes - 1
            )));
        }
        if addresses.len() < processes {
            return Err(Error::Config(format!(
                "{} addresses for {processes} processes",
                addresses.len()
            )));
        }
        Ok(ClusterSpec {
            processes,
            process,
            addresses: addresses[..processes].to_vec(),
            connect_timeout,
            stall_timeout: STALL_TIMEOUT,
        })
    }

    /// The same place, waiting `stall_timeout` for a batch before naming the process owing it.
    pub fn with_stall_timeout(self, stall_timeout: Duration) -> Self {
        ClusterSpec {
            stall_timeout,
            ..self
        }
    }

    /// Process `process` as errors name it: `process 1 (10.0.0.2:2101)`.
    pub fn peer(&self, process: usize) -> Peer {
        Peer {
            index: process,
            address: self.addresses[process].clone(),
        }
    }

    /// `process 1 (10.0.0.2:2101)`: how errors name a process.
    pub fn name(&self, process: usize) -> String {
        self.peer(process).to_string()
    }

    /// This process's role: process 0 trains, the others follow it. The role is a type, so a
    /// process cannot take the other's path.
    pub fn role(self) -> Role {
        if self.process == 0 {
            Role::Trainer(TrainerProcess(self))
        } else {
            Role::Follower(FollowerProcess(self))
        }
    }
}

/// What a process of a cluster does.
#[derive(Clone, Debug)]
pub enum Role {
    /// Process 0: announces every session, receives every batch and trains.
    Trainer(TrainerProcess),
    /// Processes 1..: follow process 0's announcements and build their share of the batches.
    Follower(FollowerProcess),
}

/// Process 0 of a cluster; made only by [`ClusterSpec::role`].
#[derive(Clone, Debug)]
pub struct TrainerProcess(ClusterSpec);

/// A process other than 0; made only by [`ClusterSpec::role`].
#[derive(Clone, Debug)]
pub struct FollowerProcess(ClusterSpec);

impl TrainerProcess {
    /// Where it sits in the cluster.
    pub fn spec(&self) -> &ClusterSpec {
        &self.0
    }
}

impl FollowerProcess {
    /// Where it sits in the cluster.
    pub fn spec(&self) -> &ClusterSpec {
        &self.0
    }
}

/// Reads a hostfile: one `host:port` per line, as timely's `-h` takes; blank lines and `#`
/// comments are ignored. It must list at least `processes` addresses.
pub fn read_hostfile(path: &Path, processes: usize) -> Result<Vec<String>> {
    let bad = |detail: String| Error::Hostfile {
        path: path.into(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut addresses = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let valid = line
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid || line.contains(char::is_whitespace) {
            return Err(bad(format!(
                "line {}: '{line}' is not host:port (for example 10.0.0.2:2101)",
                n + 1
            )));
        }
        if let Some(first) = addresses.iter().position(|a| a == line) {
            return Err(bad(format!(
                "line {}: {line} is listed twice (also for process {first}); every process needs its own port",
                n + 1
            )));
        }
        addresses.push(line.to_string());
    }
    if addresses.len() < processes {
        return Err(bad(format!(
            "{} address(es), but --processes {processes} needs one per process",
            addresses.len()
        )));
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostfile(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn hostfile_skips_comments_and_names_bad_lines() {
        let f = hostfile("# cluster\n10.0.0.1:2101\n\n10.0.0.2:2101  # second\n");
        assert_eq!(
            read_hostfile(f.path(), 2).unwrap(),
            vec!["10.0.0.1:2101", "10.0.0.2:2101"]
        );
        let e = read_hostfile(f.path(), 3).unwrap_err().to_string();
        assert!(
            e.contains("2 address(es)") && e.contains("--processes 3"),
            "{e}"
        );
        let f = hostfile("10.0.0.1:2101\nlocalhost\n");
        let e = read_hostfile(f.path(), 2).unwrap_err().to_string();
        assert!(e.contains("line 2: 'localhost' is not host:port"), "{e}");
        let f = hostfile("a:1\na:1\n");
        let e = read_hostfile(f.path(), 2).unwrap_err().to_string();
        assert!(e.contains("listed twice"), "{e}");
        let f = hostfile("a:99999\n");
        assert!(read_hostfile(f.path(), 1).is_err());
    }

    #[test]
    fn spec_checks_the_process_index() {
        let addrs = vec!["a:1".to_string(), "b:2".to_string()];
        let d = Duration::from_secs(1);
        assert!(ClusterSpec::new(2, 2, addrs.clone(), d).is_err());
        assert!(ClusterSpec::new(1, 0, addrs.clone(), d).is_err());
        assert!(ClusterSpec::new(3, 0, addrs.clone(), d).is_err());
        assert_eq!(
            ClusterSpec::new(2, 1, addrs, d).unwrap().name(1),
            "process 1 (b:2)"
        );
    }
}
