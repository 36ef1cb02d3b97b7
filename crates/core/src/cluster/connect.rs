//! Sessions: the connections of one timely computation across the cluster.
//!
//! Each process listens on its hostfile address for the whole invocation. Per session, process
//! p connects to every lower process and accepts every higher one (timely's topology), each
//! side checks that the other runs the same configuration, and the sockets go to timely's TCP
//! allocator (`initialize_networking_from_sockets`). Doing the handshake here rather than in
//! `Config::Cluster` gives bounded waits with errors that name the missing process, a clear
//! message for a port in use, and process 0's announcement of what the session is for.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::{AllocatorBuilder, ProcessBuilder};
use timely::communication::{Hooks, WorkerGuards};
use timely::worker::Worker;

use super::failure::FailureLog;
use super::{ClusterSpec, FollowerProcess, TrainerProcess};
use crate::error::{ClusterError, Error, Result};
use crate::position::Position;

/// What process 0 says a session is for; every process then builds the same dataflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Announce {
    /// The statistics pass of run `run` (1-based, as in the grid), on `threads` workers per
    /// process.
    Stats {
        /// The run, 1-based as in the grid.
        run: u32,
        /// Workers per process.
        threads: u32,
    },
    /// The epochs of run `run`, on `threads` decode threads per process: every process must
    /// start as many (timely's cluster numbers workers process by process), and at
    /// `--workers auto` process 0's core count decides it.
    Epochs {
        /// The run, 1-based as in the grid.
        run: u32,
        /// Decode threads per process.
        threads: u32,
        /// Where the run starts: its first batch, or where a checkpoint left it.
        start: Position,
    },
    /// The sweep is over: exit.
    Done,
}

const MAGIC: [u8; 8] = *b"flowload";
/// The longest wait for a process to join a session after the first (see `Cluster::wait`).
const LATER_SESSIONS: Duration = Duration::from_secs(5);
/// Handshake messages are a few dozen bytes; anything longer is not a flowload process.
const MAX_MESSAGE: u32 = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Hello {
    magic: [u8; 8],
    version: String,
    from: u32,
    processes: u32,
    fingerprint: u32,
    session: u64,
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    /// Accepted; process 0 adds what the session is for.
    Welcome(Option<Announce>),
    Refused(String),
}

/// This process's place in the cluster and its listening socket, for the whole invocation.
struct Cluster {
    spec: ClusterSpec,
    fingerprint: u32,
    listener: TcpListener,
    session: u64,
}

/// Process 0's side of the cluster: it announces every session.
pub struct TrainerCluster(Cluster);

/// A follower's side of the cluster: it joins the sessions process 0 announces.
pub struct FollowerCluster(Cluster);

/// One session's connections, ready to run a timely computation.
pub struct Session {
    /// Where this process sits in the cluster.
    pub spec: ClusterSpec,
    /// What process 0 said the session is for.
    pub announce: Announce,
    sockets: Vec<Option<TcpStream>>,
    /// Where the session's network threads record a lost connection.
    pub(crate) failures: FailureLog,
}

impl TrainerCluster {
    /// Listens on process 0's address. `fingerprint` identifies the configuration: processes
    /// started with different pipelines, flags or data refuse each other.
    pub fn bind(process: &TrainerProcess, fingerprint: u32) -> Result<TrainerCluster> {
        Cluster::bind(process.spec().clone(), fingerprint).map(TrainerCluster)
    }

    /// Starts a session for `announce`, once every other process has joined.
    pub fn open(&mut self, announce: Announce) -> Result<Session> {
        let sockets = self.0.connect(Some(announce))?.1;
        Ok(self.0.session_of(announce, sockets))
    }

    /// Tells the others that the sweep is over.
    pub fn finish(mut self) -> Result<()> {
        self.open(Announce::Done).map(drop)
    }
}

impl FollowerCluster {
    /// Listens on this process's address; see [`TrainerCluster::bind`].
    pub fn bind(process: &FollowerProcess, fingerprint: u32) -> Result<FollowerCluster> {
        Cluster::bind(process.spec().clone(), fingerprint).map(FollowerCluster)
    }

    /// Waits for process 0's next session (without a deadline: between runs the trainer
    /// evaluates and writes results; a process that dies closes its socket instead).
    pub fn next_session(&mut self) -> Result<Session> {
        let cluster = &mut self.0;
        let (announce, sockets) = cluster.connect(None)?;
        let announce = announce.ok_or_else(|| {
            ClusterError::Protocol(format!("{} announced nothing", cluster.spec.name(0)))
        })?;
        Ok(cluster.session_of(announce, sockets))
    }
}

impl Cluster {
    fn bind(spec: ClusterSpec, fingerprint: u32) -> Result<Cluster> {
        let me = spec.process;
        let address = &spec.addresses[me];
        let listener = TcpListener::bind(address).map_err(|e| {
            let hint = match e.kind() {
                ErrorKind::AddrInUse => {
                    "the port is in use (another flowload, or another program): pick a free port in the hostfile"
                }
                ErrorKind::AddrNotAvailable => {
                    "this host does not have that address: is --process-id right for this machine?"
                }
                _ => "check the hostfile line for this process",
            };
            ClusterError::Network {
                process: spec.peer(me),
                detail: format!("cannot listen on {address}: {e}; {hint}"),
            }
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ClusterError::Network {
                process: spec.peer(me),
                detail: format!("listener on {address}: {e}"),
            })?;
        Ok(Cluster {
            spec,
            fingerprint,
            listener,
            session: 0,
        })
    }

    fn session_of(&self, announce: Announce, sockets: Vec<Option<TcpStream>>) -> Session {
        Session {
            spec: self.spec.clone(),
            announce,
            sockets,
            failures: FailureLog::start(self.spec.clone()),
        }
    }

    /// How long to wait for the others in this session: `--connect-timeout` for the first,
    /// when processes may still be starting; at most [`LATER_SESSIONS`] afterwards, when they
    /// are all up and waiting, so that one that died between runs is noticed soon.
    fn wait(&self) -> Duration {
        if self.session <= 1 {
            self.spec.connect_timeout
        } else {
            self.spec.connect_timeout.min(LATER_SESSIONS)
        }
    }

    fn hello(&self) -> Hello {
        Hello {
            magic: MAGIC,
            version: env!("CARGO_PKG_VERSION").into(),
            from: self.spec.process as u32,
            processes: self.spec.processes as u32,
            fingerprint: self.fingerprint,
            session: self.session,
        }
    }

    /// One session's sockets: connect down, accept up. Returns process 0's announcement.
    fn connect(
        &mut self,
        mut announce: Option<Announce>,
    ) -> Result<(Option<Announce>, Vec<Option<TcpStream>>)> {
        self.session += 1;
        let (me, n) = (self.spec.process, self.spec.processes);
        let mut sockets: Vec<Option<TcpStream>> = (0..n).map(|_| None).collect();
        for (q, slot) in sockets.iter_mut().enumerate().take(me) {
            let mut stream = self.dial(q)?;
            let lost = |e: std::io::Error| ClusterError::Gone {
                process: self.spec.peer(q),
                detail: format!(
                    "closed the connection during the handshake ({e}): it stopped or refused this process"
                ),
            };
            write_message(&mut stream, &self.hello()).map_err(lost)?;
            match read_message::<Reply>(&mut stream).map_err(lost)? {
                Reply::Welcome(a) if q == 0 => announce = a,
                Reply::Welcome(_) => {}
                Reply::Refused(reason) => {
                    return Err(ClusterError::Refused {
                        by: self.spec.peer(q),
                        whom: self.spec.name(me),
                        reason,
                    }
                    .into());
                }
            }
            if announce == Some(Announce::Done) {
                return Ok((announce, Vec::new()));
            }
            *slot = Some(stream);
        }
        let deadline = Instant::now() + self.wait();
        let mut missing: Vec<usize> = (me + 1..n).collect();
        while !missing.is_empty() {
            match self.listener.accept() {
                Ok((mut stream, peer)) => {
                    let from = self.admit(&mut stream, peer, &missing, announce, deadline)?;
                    missing.retain(|&r| r != from);
                    sockets[from] = Some(stream);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(ClusterError::ConnectTimeout {
                            missing: missing.iter().map(|&r| self.spec.peer(r)).collect(),
                            me: self.spec.peer(me),
                            seconds: self.wait().as_secs_f64(),
                        }
                        .into());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    return Err(ClusterError::Network {
                        process: self.spec.peer(me),
                        detail: format!("accepting connections: {e}"),
                    }
                    .into());
                }
            }
        }
        if announce == Some(Announce::Done) {
            return Ok((announce, Vec::new()));
        }
        Ok((announce, sockets))
    }

    /// Checks a connecting process's hello and answers it; returns its process index.
    fn admit(
        &self,
        stream: &mut TcpStream,
        peer: SocketAddr,
        missing: &[usize],
        announce: Option<Announce>,
        deadline: Instant,
    ) -> Result<usize> {
        let me = self.spec.peer(self.spec.process);
        let io = |e: std::io::Error| ClusterError::Network {
            process: me.clone(),
            detail: format!(
                "handshake with {peer} failed: {e} (is something other than flowload connecting?)"
            ),
        };
        stream.set_nonblocking(false).map_err(io)?;
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        stream.set_read_timeout(Some(wait)).map_err(io)?;
        let hello: Hello = read_message(stream).map_err(io)?;
        let from = hello.from as usize;
        let mine = self.hello();
        let problem = if hello.magic != MAGIC {
            Some(format!("{peer} is not a flowload process"))
        } else if hello.version != mine.version {
            Some(format!(
                "flowload {} and {} cannot work together",
                hello.version, mine.version
            ))
        } else if hello.processes != mine.processes {
            Some(format!(
                "one side has --processes {}, the other {}",
                hello.processes, mine.processes
            ))
        } else if !missing.contains(&from) {
            Some(format!(
                "{peer} says it is process {from}, which is not expected here (two processes with one --process-id?)"
            ))
        } else if hello.fingerprint != mine.fingerprint {
            Some(format!(
                "process {from} runs another configuration (fingerprint {:08x}, here {:08x}): start every process with the same pipeline, flags and data",
                hello.fingerprint, mine.fingerprint
            ))
        } else if hello.session != mine.session {
            Some(format!(
                "process {from} is at session {}, this process at {}: restart every process together",
                hello.session, mine.session
            ))
        } else {
            None
        };
        if let Some(reason) = problem {
            let _ = write_message(stream, &Reply::Refused(reason.clone()));
            return Err(ClusterError::Refused {
                by: me,
                whom: "a connection".into(),
                reason,
            }
            .into());
        }
        let reply = Reply::Welcome(if self.spec.process == 0 {
            announce
        } else {
            None
        });
        write_message(stream, &reply).map_err(io)?;
        stream.set_read_timeout(None).map_err(io)?;
        Ok(from)
    }

    /// Connects to process `q`, retrying while it is not listening yet, up to the timeout.
    fn dial(&self, q: usize) -> Result<TcpStream> {
        let address = &self.spec.addresses[q];
        let deadline = Instant::now() + self.wait();
        let mut last = String::from("not tried");
        loop {
            let targets: Vec<SocketAddr> = match address.to_socket_addrs() {
                Ok(t) => t.collect(),
                Err(e) => {
                    return Err(ClusterError::Network {
                        process: self.spec.peer(q),
                        detail: format!("cannot resolve the address: {e}"),
                    }
                    .into());
                }
            };
            for target in &targets {
                let left = deadline.saturating_duration_since(Instant::now());
                match TcpStream::connect_timeout(
                    target,
                    left.clamp(Duration::from_millis(10), Duration::from_secs(1)),
                ) {
                    Ok(stream) => {
                        stream
                            .set_nodelay(true)
                            .map_err(|e| ClusterError::Network {
                                process: self.spec.peer(q),
                                detail: e.to_string(),
                            })?;
                        return Ok(stream);
                    }
                    // Every process listens from its start to its end: after the first
                    // session, a refusal means the process is gone, not that it is late.
                    Err(e) if self.session > 1 && e.kind() == ErrorKind::ConnectionRefused => {
                        return Err(ClusterError::Gone {
                            process: self.spec.peer(q),
                            detail: format!("is no longer listening ({e}): it stopped"),
                        }
                        .into());
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::Unreachable {
                    process: self.spec.peer(q),
                    seconds: self.wait().as_secs_f64(),
                    last,
                }
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Session {
    /// The threads per process process 0 announced for this session (none when it announced
    /// the end).
    pub(crate) fn threads(&self) -> usize {
        match self.announce {
            Announce::Stats { threads, .. } | Announce::Epochs { threads, .. } => threads as usize,
            Announce::Done => 0,
        }
    }

    /// Runs `func` on `threads` workers in this process, as part of the cluster's computation.
    pub(crate) fn execute<T, F>(self, threads: usize, func: F) -> Result<WorkerGuards<T>>
    where
        T: Send + 'static,
        F: Fn(&mut Worker) -> T + Send + Sync + 'static,
    {
        let hooks = Hooks::default();
        let local = ProcessBuilder::new_typed_vector(threads, hooks.refill.clone(), None);
        let mut sockets = self.sockets;
        for s in sockets.iter_mut().flatten() {
            s.set_nodelay(true).ok();
        }
        let (builders, guard) =
            initialize_networking_from_sockets(local, sockets, self.spec.process, threads, hooks)
                .map_err(|e| ClusterError::Network {
                process: self.spec.peer(self.spec.process),
                detail: format!("starting the network threads: {e}"),
            })?;
        timely::execute::execute_from(
            builders.into_iter().map(AllocatorBuilder::Tcp).collect(),
            Box::new(guard),
            timely::WorkerConfig::default(),
            func,
        )
        .map_err(Error::Dataflow)
    }
}

fn write_message<T: Serialize>(stream: &mut TcpStream, message: &T) -> std::io::Result<()> {
    let bytes = bincode::serialize(message).map_err(std::io::Error::other)?;
    stream.write_all(&(bytes.len() as u32).to_le_bytes())?;
    stream.write_all(&bytes)?;
    stream.flush()
}

fn read_message<T: for<'de> Deserialize<'de>>(stream: &mut TcpStream) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_MESSAGE {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("a {len}-byte handshake message"),
        ));
    }
    let mut bytes = vec![0u8; len as usize];
    stream.read_exact(&mut bytes)?;
    bincode::deserialize(&bytes).map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))
}
