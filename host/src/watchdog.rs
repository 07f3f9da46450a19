//! Out-of-process cleanup for when the host dies without shutting down.
//!
//! `PR_SET_PDEATHSIG` needs code in the child (so `fork` instead of
//! `posix_spawn`), fires when the spawning *thread* exits, and reaches only
//! the direct child, not the grandchildren in its group. Instead, a tiny
//! watchdog process holds the list of live process groups; the host writes
//! `+PGID` after each spawn and `-PGID` just before reaping a group leader.
//! When the host exits for any reason, including SIGKILL, the kernel closes
//! the pipe and the watchdog kills every group still listed. A group leader
//! is reaped only after its `-PGID` line is written, so the watchdog never
//! signals a recycled process-group id.

use crate::spawner;
use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin};
use std::sync::Mutex;

/// The watchdog process and the pipe to it.
#[derive(Debug)]
pub(crate) struct Watchdog {
    pipe: Mutex<Option<ChildStdin>>,
    process: Mutex<Option<Child>>,
}

const AWK_PATHS: &[&str] = &["/usr/bin/awk", "/bin/awk", "/usr/bin/mawk", "/usr/bin/gawk"];

impl Watchdog {
    /// Starts the watchdog. Without `awk` on the machine the host still
    /// works, but children may outlive a host that is SIGKILLed; this is
    /// logged as a warning.
    pub(crate) fn start() -> Self {
        let awk = AWK_PATHS.iter().map(Path::new).find(|p| p.is_file());
        let started = awk.map(spawner::spawn_watchdog);
        match started {
            Some(Ok(mut child)) => Self {
                pipe: Mutex::new(child.stdin.take()),
                process: Mutex::new(Some(child)),
            },
            failure => {
                let why = match failure {
                    Some(Err(e)) => e.to_string(),
                    _ => "no awk found".to_string(),
                };
                tracing::warn!(%why, "watchdog not started: children may outlive a killed host");
                Self {
                    pipe: Mutex::new(None),
                    process: Mutex::new(None),
                }
            }
        }
    }

    /// Records a new process group.
    pub(crate) fn track(&self, pgid: u32) {
        self.send(&format!("+{pgid}\n"));
    }

    /// Forgets a process group; call before reaping its leader.
    pub(crate) fn untrack(&self, pgid: u32) {
        self.send(&format!("-{pgid}\n"));
    }

    fn send(&self, line: &str) {
        let mut pipe = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pipe.as_mut()
            && let Err(e) = p.write_all(line.as_bytes())
        {
            tracing::warn!(error = %e, "watchdog lost: children may outlive a killed host");
            *pipe = None;
        }
    }

    /// Closes the pipe and reaps the watchdog. Call after every child has
    /// been reaped, so it has nothing left to kill.
    pub(crate) fn stop(&self) {
        self.pipe.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut child) = self
            .process
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = child.wait();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}
