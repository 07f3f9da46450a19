//! Guest access to supervised daemons: the WIT `daemon` interface,
//! implemented by [`DaemonCtx`]. A guest reaches only the daemons its
//! [`DaemonAccess`] names; every call is audited. A name not of
//! the form daemon names take is refused before it is looked up, and
//! recorded without it; every refusal draws from the guest's rate bucket.

use super::access::DaemonAccess;
use super::machine::DaemonState;
use super::status::{DaemonStatus, RecentOutput};
use super::supervisor::{DaemonError, Supervisor};
use crate::bindings::wasmproc::process::daemon as wit;
use std::sync::{Arc, Mutex};
use wasmproc_host::CallError;
use wasmproc_host::audit::Audit;
use wasmproc_host::audit::AuditEvent;
use wasmproc_host::error::LinkError;
use wasmproc_host::policy::Policy;
use wasmproc_host::process::Deadline;
use wasmproc_host::wit::types::{Error as WitError, ExitStatus};
use wasmtime::component::{HasData, Linker};

/// Largest `recent-output` a guest may ask for, per stream.
const MAX_RECENT_BYTES: usize = 1 << 20;

/// One guest session's access to the supervisor.
#[derive(Debug)]
pub struct DaemonCtx {
    guest: String,
    policy: Arc<Policy>,
    access: DaemonAccess,
    supervisor: Arc<Supervisor>,
    audit: Audit,
    /// When the guest's `guest_time` runs out: no call waits past it.
    guest_deadline: Deadline,
    /// The guest's rate bucket for daemon calls (`starts_per_second`,
    /// `start_burst`): every refused call takes a token, and a call finding
    /// it empty is refused.
    refusals: Mutex<wasmproc_host::session::RateBucket>,
}

impl DaemonCtx {
    /// Access to the daemons `access` names, for the guest called `guest`
    /// whose limits (its time, its rate of refusals) are `policy`'s.
    pub fn new(
        guest: impl Into<String>,
        policy: Arc<Policy>,
        access: DaemonAccess,
        supervisor: Arc<Supervisor>,
        audit: Audit,
    ) -> Self {
        let limits = policy.limits();
        let guest_deadline = limits.guest_deadline();
        let refusals = Mutex::new(wasmproc_host::session::RateBucket::new(
            limits.starts_per_second,
            limits.start_burst,
        ));
        Self {
            guest: guest.into(),
            policy,
            access,
            supervisor,
            audit,
            guest_deadline,
            refusals,
        }
    }

    /// Takes a token from the guest's bucket, if one is there.
    fn take_token(&self) -> bool {
        self.refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_take()
    }

    fn admit(&self, op: &str, name: &str, control: bool) -> Result<(), CallError> {
        let grants = &self.access;
        let allowed = if control {
            grants.can_control(name)
        } else {
            grants.can_observe(name)
        };
        let well_formed = well_formed_name(name);
        let limits = self.policy.limits();
        let decided = if !well_formed {
            Err(CallError::NotFound(name.to_string()))
        } else if !allowed {
            let table = if control {
                "control"
            } else {
                "observe or control"
            };
            Err(CallError::Denied(format!(
                "daemon `{name}` is not granted (daemons: {table})"
            )))
        } else if !self.supervisor.names().iter().any(|n| n == name) {
            Err(CallError::NotFound(name.to_string()))
        } else {
            Ok(())
        };
        // A refusal costs a token; with none left the call is refused as
        // over the rate, whatever it was.
        let decided = match decided {
            Err(_) if !self.take_token() => Err(CallError::LimitReached(format!(
                "more than {} refused calls per second (starts_per_second, start_burst = {})",
                limits.starts_per_second, limits.start_burst
            ))),
            other => other,
        };
        let mut event = AuditEvent::new(&self.guest, op);
        if well_formed {
            event.id = Some(format!("daemon:{name}"));
        }
        match &decided {
            Ok(()) => self.audit.record(event.allowed()),
            Err(e) if well_formed => self.audit.record(event.refused(e.kind(), e.to_string())),
            Err(e) => self.audit.record(event.refused(
                e.kind(),
                format!("not a daemon name ({} bytes)", name.len()),
            )),
        }
        decided
    }

    /// The declared daemons this guest may observe.
    pub fn list(&self) -> Vec<String> {
        let grants = &self.access;
        self.supervisor
            .names()
            .into_iter()
            .filter(|n| grants.can_observe(n))
            .collect()
    }

    /// `status`.
    pub fn status(&self, name: &str) -> Result<DaemonStatus, CallError> {
        self.admit("daemon-status", name, false)?;
        self.supervisor.status(name).map_err(call_error)
    }

    /// `start`.
    pub fn start(&self, name: &str) -> Result<(), CallError> {
        self.admit("daemon-start", name, true)?;
        self.supervisor.start(name).map_err(call_error)
    }

    /// `stop`: awaits the daemon's end without holding a thread, and never
    /// past the guest's own time limit (the stop goes on without it).
    pub async fn stop(&self, name: &str) -> Result<(), CallError> {
        self.admit("daemon-stop", name, true)?;
        self.supervisor
            .stop_until(name, self.guest_deadline)
            .await
            .map_err(call_error)
    }

    /// `restart`.
    pub fn restart(&self, name: &str) -> Result<(), CallError> {
        self.admit("daemon-restart", name, true)?;
        self.supervisor.restart(name).map_err(call_error)
    }

    /// `recent-output`.
    pub fn recent_output(&self, name: &str, max_bytes: u32) -> Result<RecentOutput, CallError> {
        self.admit("daemon-output", name, false)?;
        let max = (max_bytes as usize).min(MAX_RECENT_BYTES);
        self.supervisor.recent_output(name, max).map_err(call_error)
    }
}

impl Drop for DaemonCtx {
    fn drop(&mut self) {
        self.audit.settle(&self.guest);
    }
}

/// Whether `name` has the form every daemon name takes (see the config's
/// rules): at most 64 bytes of ASCII letters, digits, `-`, `_` and `.`.
fn well_formed_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn call_error(e: DaemonError) -> CallError {
    match e {
        DaemonError::NotFound(n) => CallError::NotFound(n),
        DaemonError::TimedOut(_) => CallError::TimedOut,
        other => CallError::Io(other.to_string()),
    }
}

/// Implemented by a store's data type to hand out its guest's [`DaemonCtx`].
pub trait DaemonView: Send {
    /// The daemon access of this store's guest.
    fn daemon_ctx(&mut self) -> &mut DaemonCtx;
}

impl DaemonView for DaemonCtx {
    fn daemon_ctx(&mut self) -> &mut DaemonCtx {
        self
    }
}

/// A [`Runtime<T>`](wasmproc_host::Runtime) guest's store reaches the
/// daemon access its embedder data carries: with `Runtime<DaemonCtx>`, each
/// guest's [`DaemonCtx`] is the data it was run with
/// ([`Runtime::run_async_with`](wasmproc_host::Runtime::run_async_with)).
///
/// The guest's time limit is the one its store fixed at instantiation, so a
/// daemon call never waits past the instant the guest itself is stopped.
impl<T: DaemonView> DaemonView for wasmproc_host::embed::GuestState<T> {
    fn daemon_ctx(&mut self) -> &mut DaemonCtx {
        let deadline = self.guest_deadline();
        let ctx = self.data_mut().daemon_ctx();
        ctx.guest_deadline = deadline;
        ctx
    }
}

/// Registers the `wasmproc:process/daemon` interface on a runtime whose
/// guests carry their [`DaemonCtx`] as embedder data; run each guest with
/// [`Runtime::run_async_with`](wasmproc_host::Runtime::run_async_with) and
/// a `DaemonCtx` built from its name and policy.
pub fn link_daemons<T: DaemonView + 'static>(
    runtime: &mut wasmproc_host::Runtime<T>,
) -> Result<(), LinkError> {
    add_daemon_to_linker(runtime.linker_mut())
}

/// Marker type connecting the generated bindings to [`DaemonCtx`].
#[derive(Debug)]
pub struct HasDaemon;

impl HasData for HasDaemon {
    type Data<'a> = &'a mut DaemonCtx;
}

/// Registers the `wasmproc:process/daemon` interface on `linker`. The
/// process capability ([`add_to_linker_async`](wasmproc_host::add_to_linker_async)) must be
/// registered too, for the shared types.
pub fn add_daemon_to_linker<T: DaemonView + 'static>(
    linker: &mut Linker<T>,
) -> Result<(), LinkError> {
    wit::add_to_linker::<T, HasDaemon>(linker, |state| state.daemon_ctx())
        .map_err(|e| LinkError::new(crate::DAEMON_INTERFACE_NAME, e))
}

fn wit_state(s: DaemonState) -> wit::DaemonState {
    match s {
        DaemonState::Stopped => wit::DaemonState::Stopped,
        DaemonState::Starting => wit::DaemonState::Starting,
        DaemonState::Running => wit::DaemonState::Running,
        DaemonState::Backoff => wit::DaemonState::Backoff,
        DaemonState::Stopping => wit::DaemonState::Stopping,
        DaemonState::Exited => wit::DaemonState::Exited,
        DaemonState::Failed => wit::DaemonState::Failed,
    }
}

fn wit_status(s: DaemonStatus) -> wit::DaemonStatus {
    wit::DaemonStatus {
        name: s.name,
        state: wit_state(s.state),
        pid: s.pid,
        started_at_ms: s.started_at_ms,
        restarts: s.restarts,
        last_exit: s.last_exit.map(ExitStatus::from),
        ready: s.ready,
        live: s.live,
        reason: s.reason,
    }
}

impl wit::Host for DaemonCtx {
    fn list(&mut self) -> Vec<String> {
        DaemonCtx::list(self)
    }

    fn status(&mut self, name: String) -> Result<wit::DaemonStatus, WitError> {
        DaemonCtx::status(self, &name)
            .map(wit_status)
            .map_err(Into::into)
    }

    fn start(&mut self, name: String) -> Result<(), WitError> {
        DaemonCtx::start(self, &name).map_err(Into::into)
    }

    async fn stop(&mut self, name: String) -> Result<(), WitError> {
        DaemonCtx::stop(self, &name).await.map_err(Into::into)
    }

    fn restart(&mut self, name: String) -> Result<(), WitError> {
        DaemonCtx::restart(self, &name).map_err(Into::into)
    }

    fn recent_output(
        &mut self,
        name: String,
        max_bytes: u32,
    ) -> Result<wit::DaemonOutput, WitError> {
        DaemonCtx::recent_output(self, &name, max_bytes)
            .map(|o| wit::DaemonOutput {
                stdout: o.stdout,
                stderr: o.stderr,
                dropped: o.dropped,
            })
            .map_err(Into::into)
    }
}
