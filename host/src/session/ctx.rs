//! The process capability for one guest session: [`ProcessCtx`] holds the
//! guest's policy, quotas and a handle on the shared [`ProcessManager`], and
//! implements each operation. `wit/adapter.rs` adapts it to the WIT bindings.

use crate::audit::{Audit, AuditEvent};
use crate::deadline::Deadline;
use crate::error::CallError;
use crate::policy::{Approved, CommandRequest, Operation, Policy};
use crate::process::buffer::{Buffering, Chunk};
use crate::process::capture::Output;
use crate::process::managed::{
    self, Buffers, Process, ProcessSnapshot, StopPlan, Stream, StreamError,
};
use crate::process::manager::ProcessManager;
use crate::process::spec::Spec;
use crate::session::admission::Admission;
use crate::session::quota::RateBucket;
use crate::types::StdioMode;
use crate::types::{Exit, Signal};
use std::sync::Arc;
use std::time::Duration;

/// Largest chunk one `read` returns.
const MAX_READ_BYTES: usize = 4 << 20;

/// A command as a guest asked for it.
#[derive(Debug, Clone, Default)]
pub struct CommandSpec {
    /// Program name or path.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Variables to set.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<String>,
    /// Bytes for stdin.
    pub stdin: Option<Vec<u8>>,
    /// Timeout in ms.
    pub timeout_ms: Option<u64>,
}

impl CommandSpec {
    /// A command running `program` (a name or a path) with no arguments,
    /// no variables, the host's working directory, no stdin and the
    /// policy's default timeout.
    ///
    /// ```
    /// use wasmproc_host::session::CommandSpec;
    ///
    /// let spec = CommandSpec::new("git").args(["log", "-n", "1"]).env("LANG", "C");
    /// assert_eq!(spec.args, ["log", "-n", "1"]);
    /// ```
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            ..Self::default()
        }
    }

    /// Adds arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets a variable.
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Sets the working directory.
    #[must_use]
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Feeds `bytes` to its stdin.
    #[must_use]
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Sets its timeout, in milliseconds (as a guest gives it).
    #[must_use]
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = Some(ms);
        self
    }
}

/// Stdio and buffering of a background process.
#[derive(Debug, Clone, Copy)]
pub struct StartSpec {
    /// Stdin mode.
    pub stdin: StdioMode,
    /// Stdout mode.
    pub stdout: StdioMode,
    /// Stderr mode.
    pub stderr: StdioMode,
    /// Buffering of piped output.
    pub buffering: Buffering,
    /// Buffer size per piped stream.
    pub buffer_bytes: Option<u64>,
}

impl Default for StartSpec {
    fn default() -> Self {
        Self {
            stdin: StdioMode::Null,
            stdout: StdioMode::Piped,
            stderr: StdioMode::Piped,
            buffering: Buffering::Lossless,
            buffer_bytes: None,
        }
    }
}

/// One guest session's process capability.
///
/// Dropping it stops every process the session started.
#[derive(Debug)]
pub struct ProcessCtx {
    guest: String,
    session: String,
    admission: Arc<Admission>,
    policy: Arc<Policy>,
    manager: Arc<ProcessManager>,
    audit: Audit,
    /// The guest's rate bucket: every `run` and `start`, and every refused
    /// call of any operation, takes a token.
    start_rate: std::sync::Mutex<RateBucket>,
    /// When the guest's `guest_time` runs out ([`Deadline::NEVER`]: no limit). No
    /// blocking call outlives it.
    guest_deadline: Deadline,
    /// The session's cgroup; dropped after the processes are stopped.
    scope: crate::os::cgroup::Scope,
}

/// Makes a [`ProcessCtx`]: [`ProcessCtx::builder`], then the optional
/// settings, then [`build`](ProcessCtxBuilder::build).
#[derive(Debug)]
pub struct ProcessCtxBuilder {
    admission: Arc<Admission>,
    manager: Arc<ProcessManager>,
    guest: String,
    audit: Audit,
    guest_deadline: Option<Deadline>,
}

impl ProcessCtxBuilder {
    /// The guest's name for audit records (default `guest`; ownership is
    /// by session, so two guests of one name stay apart).
    pub fn guest(mut self, name: impl Into<String>) -> Self {
        self.guest = name.into();
        self
    }

    /// Where decisions and process events are recorded (default: the
    /// log, [`Audit::new`]).
    pub fn audit(mut self, audit: Audit) -> Self {
        self.audit = audit;
        self
    }

    /// When the guest's time ends (default: `guest_time` of the policy,
    /// counted from [`build`](Self::build)); a runtime passes the instant
    /// it fixed when it instantiated the guest, so every limit on the
    /// guest's time uses one instant.
    pub fn guest_deadline(mut self, deadline: Deadline) -> Self {
        self.guest_deadline = Some(deadline);
        self
    }

    /// The session: its cgroup scope, confinement and quotas.
    pub fn build(self) -> ProcessCtx {
        let Self {
            admission,
            manager,
            guest,
            audit,
            guest_deadline,
        } = self;
        let policy = Arc::clone(admission.policy_arc());
        let limits = policy.limits();
        let start_rate = std::sync::Mutex::new(RateBucket::new(
            limits.starts_per_second,
            limits.start_burst,
        ));
        let guest_deadline = guest_deadline.unwrap_or_else(|| limits.guest_deadline());
        for warning in policy.warnings() {
            audit.record(AuditEvent::new(&guest, "policy-warning").reason(warning.clone()));
        }
        let pids_controller = crate::sys::containment::Containment::detect()
            .require("pids")
            .is_ok();
        let cgroup_limits = limits
            .cgroup
            .with_default_pids(limits.max_descendants, pids_controller);
        let mut scope = manager.scope("guest", &cgroup_limits);
        scope.set_confiner(crate::os::confine::Confiner::for_policy(
            &policy,
            admission.manifest(),
        ));
        let session = uuid::Uuid::new_v4().to_string();
        manager
            .descendants
            .register(&session, &guest, limits.max_descendants, audit.clone());
        ProcessCtx {
            guest,
            session,
            admission,
            policy,
            manager,
            audit,
            start_rate,
            guest_deadline,
            scope,
        }
    }
}

impl ProcessCtx {
    /// Starts making the session of a guest admitted by `admission`, whose
    /// processes `manager` owns.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wasmproc_host::{Admission, Policy, ProcessCtx, ProcessManager};
    ///
    /// let policy = Arc::new(Policy::builder().allow_program("true").build()?);
    /// let manager = ProcessManager::builder().build();
    /// let ctx = ProcessCtx::builder(Arc::new(Admission::policy_only(policy)?), manager)
    ///     .guest("example")
    ///     .build();
    /// assert_eq!(ctx.guest(), "example");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(admission: Arc<Admission>, manager: Arc<ProcessManager>) -> ProcessCtxBuilder {
        ProcessCtxBuilder {
            admission,
            manager,
            guest: "guest".to_string(),
            audit: Audit::new(),
            guest_deadline: None,
        }
    }

    /// The guest's name.
    pub fn guest(&self) -> &str {
        &self.guest
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Stops every process the session started (SIGTERM, the policy's
    /// `kill_grace`, SIGKILL) and returns once they are reaped. Dropping
    /// the session without it kills them at once.
    pub async fn shutdown(&self) {
        self.manager
            .stop_owner(&self.session, self.policy.limits().kill_grace)
            .await;
    }

    /// The policy and the plugin's manifest this session was admitted by.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    fn event(&self, op: &str) -> AuditEvent {
        AuditEvent::new(&self.guest, op)
    }

    /// Checks a command: first the rate bucket (every call draws from it,
    /// refused or not, so refusals are not free), then `precheck` (the
    /// call's own validation), both gates (the plugin's manifest and the
    /// policy) and the live-process quota. Every refusal is audited, with
    /// capped fields and the gate that refused.
    fn admit(
        &mut self,
        op: Operation,
        cmd: &CommandSpec,
        precheck: Result<(), CallError>,
    ) -> Result<Approved, CallError> {
        let limits = self.policy.limits();
        let request = CommandRequest {
            program: &cmd.program,
            args: &cmd.args,
            env: &cmd.env,
            cwd: cmd.cwd.as_deref(),
        };
        let (decided, gate) = if self.take_token() {
            match precheck {
                Err(e) => (Err(e), None),
                Ok(()) => match self.admission.admit(op, request) {
                    Ok(approved) => (Ok(approved), None),
                    Err(refusal) => (Err(refusal.error), refusal.gate),
                },
            }
        } else {
            (
                Err(CallError::LimitReached(format!(
                    "more than {} starts per second (starts_per_second, start_burst = {}; refused calls count too)",
                    limits.starts_per_second, limits.start_burst
                ))),
                None,
            )
        };
        let decided = decided.and_then(|approved| {
            if self.manager.registry.live(&self.session) >= limits.max_live_processes as usize {
                return Err(CallError::LimitReached(format!(
                    "{} processes running (max_live_processes)",
                    limits.max_live_processes
                )));
            }
            if let Some(over) = self.manager.descendants.over(&self.session) {
                return Err(CallError::LimitReached(format!(
                    "{} live descendants of the guest's processes (max_descendants = {})",
                    over.live, over.max
                )));
            }
            Ok(approved)
        });
        let mut event = self.event(op.name()).program(&cmd.program, &cmd.args);
        if let Some(gate) = gate {
            event = event.gate(gate.name());
        }
        match &decided {
            Ok(_) => self.audit.record(
                event
                    .allowed()
                    .confinement(crate::os::confine::support().summary()),
            ),
            Err(e) => self.audit.record(event.refused(e.kind(), e.to_string())),
        }
        decided
    }

    /// Refuses stdin above `max_stream_buffer_bytes`, for `run` and `start`.
    fn check_stdin(&self, stdin: Option<&Vec<u8>>) -> Result<(), CallError> {
        let max = self.policy.limits().max_stream_buffer_bytes;
        let len = stdin.map_or(0, Vec::len) as u64;
        if len > max {
            return Err(CallError::Invalid(format!(
                "{len} bytes of stdin are above max_stream_buffer_bytes = {max}"
            )));
        }
        Ok(())
    }

    /// The timeout of a command: the `requested_ms` the guest gave, else
    /// `default`; refused above the policy's `max_timeout`.
    fn timeout(
        &self,
        requested_ms: Option<u64>,
        default: Option<Duration>,
    ) -> Result<Option<Duration>, CallError> {
        let max = self.policy.limits().max_timeout;
        match requested_ms.map(Duration::from_millis) {
            Some(timeout) if timeout > max => Err(CallError::Invalid(format!(
                "timeout of {} ms is above the maximum of {} (max_timeout)",
                timeout.as_millis(),
                humantime::format_duration(max)
            ))),
            Some(timeout) => Ok(Some(timeout)),
            None => Ok(default),
        }
    }

    /// The absolute deadline of a blocking call that may take `wanted`,
    /// fixed now: never past the guest's own time limit.
    fn call_deadline(&self, wanted: Duration) -> Deadline {
        Deadline::after(wanted).min(self.guest_deadline)
    }

    /// Until when a `wait`, `read` or `write` may block: what the guest
    /// asked for, at most `max_call_wait` and the guest's remaining time.
    fn call_wait(&self, requested_ms: Option<u64>) -> Deadline {
        let max = self.policy.limits().max_call_wait;
        let wanted = requested_ms.map_or(max, |ms| Duration::from_millis(ms).min(max));
        self.call_deadline(wanted)
    }

    /// `run`: executes a command to completion and captures its output.
    /// The call's deadline is fixed when it starts: its timeout, capped by
    /// the guest's remaining time; at the deadline the group is killed and
    /// the call returns `timed-out`.
    pub async fn run(&mut self, cmd: CommandSpec) -> Result<Output, CallError> {
        let timeout = self.timeout(
            cmd.timeout_ms,
            Some(self.policy.limits().default_run_timeout),
        );
        // One deadline for the whole call, fixed before anything else.
        let deadline = self.call_deadline(timeout.clone().ok().flatten().unwrap_or(Duration::MAX));
        let precheck = timeout
            .map(drop)
            .and_then(|()| self.check_stdin(cmd.stdin.as_ref()));
        let approved = self.admit(Operation::Run, &cmd, precheck)?;
        let spec = Spec::new(&approved, &self.scope)
            .owner(&self.session, &self.guest)
            .capture(
                self.policy.limits().max_capture_bytes as usize,
                cmd.stdin.clone(),
            )
            .deadline(deadline);
        let output = self
            .manager
            .output(spec)
            .await
            .inspect_err(|e| self.audit_failure("run", &cmd, e))?;
        let mut event = self
            .event("exit")
            .program(&approved.program.to_string_lossy(), &cmd.args);
        event.pid = Some(output.pid);
        match output.exit {
            Some(exit) if !output.timed_out => {
                self.audit.record(event.exit(exit));
                Ok(output)
            }
            exit => {
                let event = match exit {
                    Some(exit) => event.exit(exit),
                    None => event,
                };
                self.audit.record(event.reason("timed out".into()));
                Err(CallError::TimedOut)
            }
        }
    }

    fn audit_failure(&self, op: &str, cmd: &CommandSpec, err: &CallError) {
        self.audit.record(
            self.event(op)
                .program(&cmd.program, &cmd.args)
                .reason(err.to_string()),
        );
    }

    /// `start`: starts a command in the background; returns its id.
    pub fn start(&mut self, cmd: CommandSpec, spec: StartSpec) -> Result<String, CallError> {
        let limits = self.policy.limits().clone();
        let timeout = self.timeout(cmd.timeout_ms, None);
        let deadline = Deadline::after_opt(timeout.clone().ok().flatten());
        let capacity = spec
            .buffer_bytes
            .unwrap_or(limits.default_stream_buffer_bytes);
        let precheck = timeout.map(drop).and_then(|()| {
            let inherits = [spec.stdin, spec.stdout, spec.stderr].contains(&StdioMode::Inherit);
            if inherits && !self.policy.allows_inherit_stdio() {
                return Err(CallError::Denied(
                    "inheriting the host's stdio is not granted (stdio.allow_inherit)".into(),
                ));
            }
            if capacity == 0 || capacity > limits.max_stream_buffer_bytes {
                return Err(CallError::Invalid(format!(
                    "buffer of {capacity} bytes is outside 1..={} (max_stream_buffer_bytes)",
                    limits.max_stream_buffer_bytes
                )));
            }
            self.check_stdin(cmd.stdin.as_ref())
        });
        let approved = self.admit(Operation::Start, &cmd, precheck)?;
        let initial_stdin = cmd.stdin.clone().unwrap_or_default();
        let stdin_piped = spec.stdin == StdioMode::Piped || !initial_stdin.is_empty();
        let piped_outputs = [spec.stdout, spec.stderr]
            .iter()
            .filter(|m| **m == StdioMode::Piped)
            .count() as u64;
        let stdin_bytes = if stdin_piped {
            capacity.max(initial_stdin.len() as u64)
        } else {
            0
        };
        // Only an admitted request may evict ended records to make room.
        self.manager
            .registry
            .reserve(
                &self.session,
                limits.max_registry_entries as usize,
                piped_outputs * capacity + stdin_bytes,
                limits.max_buffered_bytes,
            )
            .inspect_err(|e| self.audit_failure("start", &cmd, e))?;
        let stdin_mode = if stdin_piped {
            StdioMode::Piped
        } else {
            spec.stdin
        };
        let output = |mode: StdioMode| {
            (mode == StdioMode::Piped).then(|| managed::buffer(capacity as usize, spec.buffering))
        };
        let buffers = Buffers {
            stdout: output(spec.stdout),
            stderr: output(spec.stderr),
            stdin: stdin_piped.then(|| {
                let size = (capacity as usize).max(initial_stdin.len());
                let b = managed::buffer(size, Buffering::Lossless);
                b.push(&initial_stdin);
                b
            }),
            close_stdin_when_drained: spec.stdin != StdioMode::Piped,
        };
        let id = uuid::Uuid::new_v4().to_string();
        let process_spec = Spec::new(&approved, &self.scope)
            .id(&id)
            .owner(&self.session, &self.guest)
            .stdio(stdin_mode, spec.stdout, spec.stderr)
            .buffers(buffers)
            .deadline(deadline)
            .audit(self.audit.clone())
            .live(self.manager.registry.count_live(&self.session));
        let process = self
            .manager
            .spawn(process_spec)
            .inspect_err(|e| self.audit_failure("start", &cmd, e))?;
        let pid = process.facts().pid;
        self.manager.registry.insert(process);
        self.audit.record(
            self.event("started")
                .program(&approved.program.to_string_lossy(), &approved.args)
                .process(&id, pid)
                .confinement(crate::os::confine::support().summary()),
        );
        Ok(id)
    }

    fn find(&self, id: &str) -> Result<Arc<Process>, CallError> {
        self.manager
            .registry
            .get(&self.session, id)
            .ok_or_else(|| CallError::NotFound(id.to_string()))
    }

    /// Takes a token from the guest's rate bucket, if one is there.
    fn take_token(&self) -> bool {
        self.start_rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_take()
    }

    /// A refused call draws from the rate bucket, so refusals are not free:
    /// a guest that keeps making them runs out of starts.
    fn refused<T>(&self, result: Result<T, CallError>) -> Result<T, CallError> {
        if result.is_err() {
            self.take_token();
        }
        result
    }

    /// Refuses an id not of the form this host issues before it is looked
    /// up or recorded (the refusal of an audited call is recorded without
    /// it), then finds the process.
    fn find_checked(&self, id: &str) -> Result<Arc<Process>, CallError> {
        check_id(id)?;
        self.find(id)
    }

    /// Audits an id-taking call: the refusal of a malformed id without the
    /// id, anything else with it. A refusal draws from the rate bucket.
    fn audited<T>(&self, op: &str, id: &str, result: Result<T, CallError>) -> Result<T, CallError> {
        let mut event = self.event(op);
        let well_formed = well_formed_id(id);
        if well_formed {
            event.id = Some(id.to_string());
        }
        match &result {
            Ok(_) => self.audit.record(event.allowed()),
            Err(e) if well_formed => self.audit.record(event.refused(e.kind(), e.to_string())),
            Err(e) => self.audit.record(event.refused(
                e.kind(),
                format!("not an id this host issues ({} bytes)", id.len()),
            )),
        }
        self.refused(result)
    }

    /// `kill`: SIGTERM, grace, SIGKILL; returns once reaped, or with an
    /// error at the call's deadline.
    pub async fn kill(&mut self, id: &str) -> Result<(), CallError> {
        let grace = self.policy.limits().kill_grace;
        let plan = StopPlan::graceful(Signal::Term, grace).by(self.guest_deadline);
        let result = match self.find_checked(id) {
            Ok(p) => p
                .stop(plan)
                .await
                .map(|_| ())
                .map_err(|e| CallError::Io(format!("kill: {e}"))),
            Err(e) => Err(e),
        };
        self.audited("kill", id, result)
    }

    /// `signal`: sends a signal to a running process's group.
    pub fn signal(&mut self, id: &str, signal: Signal) -> Result<(), CallError> {
        let result = self
            .find_checked(id)
            .and_then(|p| p.signal(signal).map_err(|e| CallError::io("signal", e)));
        self.audited("signal", id, result)
    }

    /// `list`: this session's ids in start order.
    pub fn list(&self) -> Vec<String> {
        self.manager.registry.ids(&self.session)
    }

    /// `get`: a snapshot of one of this session's processes.
    pub fn get(&self, id: &str) -> Result<ProcessSnapshot, CallError> {
        self.refused(self.find_checked(id).map(|p| p.snapshot()))
    }

    /// `wait`: waits for a process to end, at most the given time.
    pub async fn wait(&self, id: &str, timeout_ms: Option<u64>) -> Result<Option<Exit>, CallError> {
        let p = self.refused(self.find_checked(id))?;
        Ok(p.wait(self.call_wait(timeout_ms)).await)
    }

    /// `read`: reads a piped output stream at a cursor.
    pub async fn read(
        &self,
        id: &str,
        stream: Stream,
        cursor: u64,
        max: u32,
        timeout_ms: u64,
    ) -> Result<Chunk, CallError> {
        let p = self.refused(self.find_checked(id))?;
        let max = (max as usize).clamp(1, MAX_READ_BYTES);
        p.read(stream, cursor, max, self.call_wait(Some(timeout_ms)))
            .await
            .map_err(stream_error)
    }

    /// `write`: queues bytes for a piped stdin; returns how many were taken.
    pub async fn write(&self, id: &str, data: &[u8], timeout_ms: u64) -> Result<u64, CallError> {
        let p = self.refused(self.find_checked(id))?;
        p.write(data, self.call_wait(Some(timeout_ms)))
            .await
            .map(|n| n as u64)
            .map_err(stream_error)
    }

    /// `close-stdin`: closes a piped stdin after the queued bytes.
    pub fn close_stdin(&self, id: &str) -> Result<(), CallError> {
        let result = self.find_checked(id);
        self.refused(result.and_then(|p| p.close_stdin().map_err(stream_error)))
    }

    /// `remove`: forgets an ended process's record (audited).
    pub fn remove(&self, id: &str) -> Result<(), CallError> {
        let result = check_id(id).and_then(|()| self.manager.registry.remove(&self.session, id));
        self.audited("remove", id, result)
    }
}

/// Whether `id` has the form of the ids this host issues: a hyphenated
/// lowercase UUID (36 bytes).
fn well_formed_id(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// Refuses an id not of the form this host issues, before any lookup: no
/// process has it, so the guest is told `not-found`, as for any id it does
/// not hold.
fn check_id(id: &str) -> Result<(), CallError> {
    if well_formed_id(id) {
        return Ok(());
    }
    Err(CallError::NotFound(id.to_string()))
}

/// A stream error as the guest sees it.
fn stream_error(e: StreamError) -> CallError {
    match e {
        StreamError::ShuttingDown => CallError::Io(e.to_string()),
        _ => CallError::Invalid(e.to_string()),
    }
}

impl Drop for ProcessCtx {
    /// Kills every process the session still has at once, waiting for
    /// nothing (their monitors reap them); [`ProcessCtx::shutdown`] first
    /// stops them gracefully.
    fn drop(&mut self) {
        self.manager.kill_owner(&self.session);
        self.manager.descendants.forget(&self.session);
        self.audit.settle(&self.guest);
    }
}

/// The futures of the async calls are `Send` (wasmtime's async host
/// functions need that): checked at compile time.
const _: () = {
    fn send<T: Send>(_: &T) {}
    #[allow(dead_code, reason = "only type-checked")]
    fn calls_are_send(ctx: &mut ProcessCtx) {
        send(&ctx.run(CommandSpec::default()));
        send(&ctx.wait("", None));
        send(&ctx.read("", Stream::Stdout, 0, 1, 0));
        send(&ctx.write("", b"", 0));
        send(&ctx.kill(""));
    }
};
