//! Lost connections: timely reports a broken connection by panicking in the network thread that
//! serves it (`timely:recv-N`/`timely:send-N`, N the remote process), which then poisons the
//! workers' queues so that they panic too. The thread name is the only place that says which
//! process was lost, so a panic hook records it here, and the loader's error names the process;
//! the cascade of worker panics after it says nothing new and is not printed.
//!
//! A panic hook is process-wide, and so is the record it writes. It is reached only through a
//! [`FailureLog`], which a cluster's session hands to the code that runs on it.

use std::sync::{Mutex, Once};

use super::ClusterSpec;
use crate::error::ClusterError;

/// The first failure of a timely network thread since the session began: the remote process's
/// index as the thread name gives it, and the panic message.
static FAILURE: Mutex<Option<(String, String)>> = Mutex::new(None);

/// A session's view of its network threads' failures.
#[derive(Clone, Debug)]
pub(crate) struct FailureLog {
    spec: ClusterSpec,
}

impl FailureLog {
    /// Starts a session's log: installs the hook (once per process) and forgets any failure of
    /// an earlier session.
    pub(crate) fn start(spec: ClusterSpec) -> FailureLog {
        install_panic_hook();
        *FAILURE.lock().unwrap_or_else(|e| e.into_inner()) = None;
        FailureLog { spec }
    }

    /// The recorded network failure, naming the process, if there was one.
    pub(crate) fn failure(&self) -> Option<ClusterError> {
        let (remote, message) = FAILURE.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        let index = remote.parse::<usize>().ok()?;
        let process = if index < self.spec.processes {
            self.spec.peer(index)
        } else {
            crate::error::Peer {
                index,
                address: "?".into(),
            }
        };
        Some(ClusterError::Lost {
            process,
            detail: message,
        })
    }
}

/// Routes the panics of timely's network threads into [`FAILURE`] instead of stderr.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            let remote = name
                .strip_prefix("timely:recv-")
                .or_else(|| name.strip_prefix("timely:send-"));
            if let Some(remote) = remote {
                let mut failure = FAILURE.lock().unwrap_or_else(|e| e.into_inner());
                failure.get_or_insert_with(|| (remote.to_string(), message.to_string()));
            } else if !message.contains("MergeQueue poisoned")
                && !message.contains("Send thread panic")
                && !message.contains("Recv thread panic")
            {
                previous(info);
            }
        }));
    });
}
