//! The daemons the host supervises (cargo feature `daemon`).
//!
//! A host that runs a supervisor (`wasmproc serve`) declares its daemons in
//! its own configuration; a guest cannot declare new ones. Through this
//! module a guest sees the daemons the host grants it (`daemons` of its
//! plugin entry): `observe` allows [`status`] and [`recent_output`],
//! `control` also allows [`start`], [`stop`] and [`restart`]. A refusal is
//! [`Error::Denied`]; a name the host does not declare is
//! [`Error::NotFound`], holding the name.
//!
//! A guest that calls any of these functions imports the `daemon` interface
//! (WIT world `supervised-guest`) and instantiates only on hosts that
//! provide it. A guest that never calls them does not import it, even with
//! the feature on.
//!
//! ```no_run
//! use wasmproc_guest::daemon::{self, DaemonState};
//!
//! for name in daemon::list() {
//!     let status = daemon::status(&name)?;
//!     if status.state == DaemonState::Failed {
//!         daemon::start(&name)?;
//!     }
//! }
//! # Ok::<(), wasmproc_guest::Error>(())
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::bindings::wasmproc::process::daemon as host;
use crate::{Error, ExitStatus};

/// Where a declared daemon is in its life.
///
/// [`Display`](fmt::Display) writes the WIT name, e.g. `backoff`.
///
/// ```no_run
/// use wasmproc_guest::daemon::{self, DaemonState};
///
/// let up = daemon::status("web")?.state == DaemonState::Running;
/// # Ok::<(), wasmproc_guest::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DaemonState {
    /// Not running, and not meant to be (never started, or stopped).
    Stopped,
    /// Being started.
    Starting,
    /// Running.
    Running,
    /// Waiting out a restart delay after it ended.
    Backoff,
    /// Being stopped: stop signal sent, waiting for the grace period.
    Stopping,
    /// Ended and not restarted, as its restart policy says.
    Exited,
    /// Hit its start limit; stays here until started again.
    Failed,
}

/// A snapshot of one daemon, from [`status`].
///
/// ```no_run
/// use wasmproc_guest::daemon;
///
/// let status = daemon::status("web")?;
/// println!("{} is {} ({} restarts)", status.name, status.state, status.restarts);
/// if let Some(why) = &status.reason {
///     println!("last restart: {why}");
/// }
/// # Ok::<(), wasmproc_guest::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DaemonStatus {
    /// The declared name.
    pub name: String,
    /// Where the daemon is in its life.
    pub state: DaemonState,
    /// The operating-system pid of the running instance.
    pub pid: Option<u32>,
    /// When the running instance started.
    pub started_at: Option<SystemTime>,
    /// Restarts since the host started (or since the last reset).
    pub restarts: u32,
    /// How the previous instance ended.
    pub last_exit: Option<ExitStatus>,
    /// Whether the readiness probe passes (without a readiness probe:
    /// whether the daemon is running).
    pub ready: bool,
    /// Whether the liveness probe passes (true without a probe).
    pub live: bool,
    /// Why the daemon failed or was last restarted, if it was.
    pub reason: Option<String>,
}

/// The newest bytes a daemon wrote, from [`recent_output`].
///
/// The host keeps them in ring buffers, so older bytes are dropped and
/// counted in [`dropped`](DaemonOutput::dropped).
///
/// ```no_run
/// use wasmproc_guest::daemon;
///
/// let output = daemon::recent_output("web", 4096)?;
/// print!("{}", String::from_utf8_lossy(&output.stderr));
/// # Ok::<(), wasmproc_guest::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DaemonOutput {
    /// The newest stdout bytes, at most the requested size.
    pub stdout: Vec<u8>,
    /// The newest stderr bytes, at most the requested size.
    pub stderr: Vec<u8>,
    /// Bytes written but no longer held (stdout and stderr together).
    pub dropped: u64,
}

/// The names of the declared daemons this guest may observe.
///
/// ```no_run
/// for name in wasmproc_guest::daemon::list() {
///     println!("{name}");
/// }
/// ```
pub fn list() -> Vec<String> {
    host::list()
}

/// The status of the daemon called `name`.
///
/// Fails with [`Error::Denied`] unless the policy names the daemon under
/// `observe` or `control`, and with [`Error::NotFound`] if the host declares
/// no such daemon.
///
/// ```no_run
/// let status = wasmproc_guest::daemon::status("web")?;
/// println!("web: {} ready={}", status.state, status.ready);
/// # Ok::<(), wasmproc_guest::Error>(())
/// ```
pub fn status(name: &str) -> Result<DaemonStatus, Error> {
    Ok(host::status(name)?.into())
}

/// Starts a stopped, exited or failed daemon (resetting a failed one's start
/// limit). Starting a running daemon changes nothing.
///
/// Needs `control`; otherwise [`Error::Denied`].
///
/// ```no_run
/// wasmproc_guest::daemon::start("worker")?;
/// # Ok::<(), wasmproc_guest::Error>(())
/// ```
pub fn start(name: &str) -> Result<(), Error> {
    Ok(host::start(name)?)
}

/// Stops a daemon: its stop signal to the group, `SIGKILL` after its grace
/// period. It stays stopped until started again.
///
/// Needs `control`; otherwise [`Error::Denied`].
///
/// ```no_run
/// wasmproc_guest::daemon::stop("worker")?;
/// # Ok::<(), wasmproc_guest::Error>(())
/// ```
pub fn stop(name: &str) -> Result<(), Error> {
    Ok(host::stop(name)?)
}

/// Stops and starts a daemon again, without a restart delay.
///
/// Needs `control`; otherwise [`Error::Denied`].
///
/// ```no_run
/// wasmproc_guest::daemon::restart("worker")?;
/// # Ok::<(), wasmproc_guest::Error>(())
/// ```
pub fn restart(name: &str) -> Result<(), Error> {
    Ok(host::restart(name)?)
}

/// The newest output of the running (or last) instance of a daemon, at most
/// `max_bytes` per stream.
///
/// Needs `observe` or `control`; otherwise [`Error::Denied`].
///
/// ```no_run
/// let output = wasmproc_guest::daemon::recent_output("web", 1024)?;
/// print!("{}", String::from_utf8_lossy(&output.stdout));
/// # Ok::<(), wasmproc_guest::Error>(())
/// ```
pub fn recent_output(name: &str, max_bytes: u32) -> Result<DaemonOutput, Error> {
    Ok(host::recent_output(name, max_bytes)?.into())
}

impl fmt::Display for DaemonState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DaemonState::Stopped => "stopped",
            DaemonState::Starting => "starting",
            DaemonState::Running => "running",
            DaemonState::Backoff => "backoff",
            DaemonState::Stopping => "stopping",
            DaemonState::Exited => "exited",
            DaemonState::Failed => "failed",
        })
    }
}

impl From<host::DaemonState> for DaemonState {
    fn from(state: host::DaemonState) -> Self {
        match state {
            host::DaemonState::Stopped => DaemonState::Stopped,
            host::DaemonState::Starting => DaemonState::Starting,
            host::DaemonState::Running => DaemonState::Running,
            host::DaemonState::Backoff => DaemonState::Backoff,
            host::DaemonState::Stopping => DaemonState::Stopping,
            host::DaemonState::Exited => DaemonState::Exited,
            host::DaemonState::Failed => DaemonState::Failed,
        }
    }
}

impl From<host::DaemonStatus> for DaemonStatus {
    fn from(status: host::DaemonStatus) -> Self {
        DaemonStatus {
            name: status.name,
            state: status.state.into(),
            pid: status.pid,
            started_at: status
                .started_at_ms
                .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
            restarts: status.restarts,
            last_exit: status.last_exit.map(ExitStatus::from),
            ready: status.ready,
            live: status.live,
            reason: status.reason,
        }
    }
}

impl From<host::DaemonOutput> for DaemonOutput {
    fn from(output: host::DaemonOutput) -> Self {
        DaemonOutput {
            stdout: output.stdout,
            stderr: output.stderr,
            dropped: output.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit;

    #[test]
    fn status_converts_every_field() {
        let status = DaemonStatus::from(host::DaemonStatus {
            name: "web".into(),
            state: host::DaemonState::Backoff,
            pid: None,
            started_at_ms: Some(1_500),
            restarts: 3,
            last_exit: Some(wit::ExitStatus::Signaled(9)),
            ready: false,
            live: true,
            reason: Some("exited with status 1".into()),
        });
        assert_eq!(status.name, "web");
        assert_eq!(status.state, DaemonState::Backoff);
        assert_eq!(status.state.to_string(), "backoff");
        assert_eq!(
            status.started_at,
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_500))
        );
        assert_eq!(status.last_exit.and_then(|e| e.signal()), Some(9));
        assert_eq!(
            (status.restarts, status.ready, status.live),
            (3, false, true)
        );
        assert_eq!(status.reason.as_deref(), Some("exited with status 1"));
    }

    #[test]
    fn wit_error_maps_onto_the_sdk_error() {
        let error = Error::from(wit::Error::NotFound("ghost".into()));
        assert_eq!(error, Error::NotFound("ghost".into()));
    }
}
