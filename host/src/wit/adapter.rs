//! The WIT bindings of `wasmproc:process/process`, implemented by
//! [`ProcessCtx`]: conversions between WIT types and the library's.
//!
//! The async trait ([`ProcessHost`]) is the implementation; the sync one
//! ([`sync::ProcessHost`]) is a thin wrapper that blocks on it.

use crate::error::CallError;
use crate::process::buffer::{Buffering, StreamStats};
use crate::process::core_runtime::block_on;
use crate::process::managed::{Exit, ProcState};
use crate::session::ctx::{CommandSpec, ProcessCtx, StartSpec, StdioMode};
use crate::wit::bindings::ProcessHost;
use crate::wit::bindings::sync;
use crate::wit::bindings::types::Error as WitError;
use crate::wit::bindings::types::{
    self, Buffering as WitBuffering, Chunk as WitChunk, Command, Error, ExitStatus, Output,
    OutputStream, ProcessInfo, Signal, StartOptions, State, StdioMode as WitStdio,
    StreamStats as WitStats,
};

impl types::Host for ProcessCtx {}

fn command(cmd: Command) -> CommandSpec {
    CommandSpec {
        program: cmd.program,
        args: cmd.args,
        env: cmd.env,
        cwd: cmd.cwd,
        stdin: cmd.stdin,
        timeout_ms: cmd.timeout_ms,
    }
}

/// The WIT form of how a process ended (also used by the daemon interface).
impl From<Exit> for ExitStatus {
    fn from(exit: Exit) -> Self {
        match exit {
            Exit::Code(c) => ExitStatus::Exited(c),
            Exit::Signal(s) => ExitStatus::Signaled(s),
        }
    }
}

fn stdio(mode: WitStdio) -> StdioMode {
    match mode {
        WitStdio::Null => StdioMode::Null,
        WitStdio::Piped => StdioMode::Piped,
        WitStdio::Inherit => StdioMode::Inherit,
    }
}

fn stats(s: StreamStats) -> WitStats {
    WitStats {
        received: s.received,
        dropped: s.dropped,
    }
}

/// The library's form of a WIT signal.
fn host_signal(sig: Signal) -> crate::types::Signal {
    use crate::types::Signal as S;
    match sig {
        Signal::Terminate => S::Term,
        Signal::Kill => S::Kill,
        Signal::Interrupt => S::Int,
        Signal::Hangup => S::Hup,
        Signal::Quit => S::Quit,
        Signal::User1 => S::Usr1,
        Signal::User2 => S::Usr2,
    }
}

impl ProcessHost for ProcessCtx {
    async fn run(&mut self, cmd: Command) -> Result<Output, Error> {
        let out = ProcessCtx::run(self, command(cmd)).await?;
        Ok(Output {
            status: out.exit.into(),
            stdout: out.stdout,
            stderr: out.stderr,
            stdout_dropped: out.stdout_dropped,
            stderr_dropped: out.stderr_dropped,
        })
    }

    fn start(&mut self, cmd: Command, options: StartOptions) -> Result<String, Error> {
        let spec = StartSpec {
            stdin: stdio(options.stdin),
            stdout: stdio(options.stdout),
            stderr: stdio(options.stderr),
            buffering: match options.buffering {
                WitBuffering::Lossless => Buffering::Lossless,
                WitBuffering::Ring => Buffering::Ring,
            },
            buffer_bytes: options.buffer_bytes,
        };
        Ok(ProcessCtx::start(self, command(cmd), spec)?)
    }

    async fn kill(&mut self, id: String) -> Result<(), Error> {
        Ok(ProcessCtx::kill(self, &id).await?)
    }

    fn list(&mut self) -> Vec<String> {
        ProcessCtx::list(self)
    }

    fn get(&mut self, id: String) -> Result<ProcessInfo, Error> {
        let s = ProcessCtx::get(self, &id)?;
        Ok(ProcessInfo {
            id: s.facts.id,
            pid: s.facts.pid,
            program: s.facts.program,
            args: s.facts.args,
            started_at_ms: s.facts.started_at_ms,
            state: match s.state {
                ProcState::Running => State::Running,
                ProcState::Exited => State::Exited,
                ProcState::Killed => State::Killed,
            },
            exit: s.exit.map(ExitStatus::from),
            stdout: stats(s.stdout),
            stderr: stats(s.stderr),
            memory_peak_bytes: s.usage.and_then(|u| u.memory_peak_bytes),
            cpu_time_us: s.usage.and_then(|u| u.cpu_time_us),
        })
    }

    async fn wait(
        &mut self,
        id: String,
        timeout_ms: Option<u64>,
    ) -> Result<Option<ExitStatus>, Error> {
        Ok(ProcessCtx::wait(self, &id, timeout_ms)
            .await?
            .map(ExitStatus::from))
    }

    fn send_signal(&mut self, id: String, sig: Signal) -> Result<(), Error> {
        Ok(ProcessCtx::signal(self, &id, host_signal(sig))?)
    }

    async fn read(
        &mut self,
        id: String,
        stream: OutputStream,
        cursor: u64,
        max_bytes: u32,
        timeout_ms: u64,
    ) -> Result<WitChunk, Error> {
        let chunk = ProcessCtx::read(
            self,
            &id,
            stream == OutputStream::Stdout,
            cursor,
            max_bytes,
            timeout_ms,
        )
        .await?;
        Ok(WitChunk {
            data: chunk.data,
            next: chunk.next,
            ended: chunk.ended,
            dropped: chunk.dropped,
        })
    }

    async fn write(&mut self, id: String, data: Vec<u8>, timeout_ms: u64) -> Result<u64, Error> {
        Ok(ProcessCtx::write(self, &id, &data, timeout_ms).await?)
    }

    fn close_stdin(&mut self, id: String) -> Result<(), Error> {
        Ok(ProcessCtx::close_stdin(self, &id)?)
    }

    fn remove(&mut self, id: String) -> Result<(), Error> {
        Ok(ProcessCtx::remove(self, &id)?)
    }
}

/// The synchronous interface: each call forwards to the async
/// implementation above, blocking on it where it waits.
impl sync::ProcessHost for ProcessCtx {
    fn run(&mut self, cmd: Command) -> Result<Output, Error> {
        block_on(ProcessHost::run(self, cmd))
    }

    fn start(&mut self, cmd: Command, options: StartOptions) -> Result<String, Error> {
        ProcessHost::start(self, cmd, options)
    }

    fn kill(&mut self, id: String) -> Result<(), Error> {
        block_on(ProcessHost::kill(self, id))
    }

    fn list(&mut self) -> Vec<String> {
        ProcessHost::list(self)
    }

    fn get(&mut self, id: String) -> Result<ProcessInfo, Error> {
        ProcessHost::get(self, id)
    }

    fn wait(&mut self, id: String, timeout_ms: Option<u64>) -> Result<Option<ExitStatus>, Error> {
        block_on(ProcessHost::wait(self, id, timeout_ms))
    }

    fn send_signal(&mut self, id: String, sig: Signal) -> Result<(), Error> {
        ProcessHost::send_signal(self, id, sig)
    }

    fn read(
        &mut self,
        id: String,
        stream: OutputStream,
        cursor: u64,
        max_bytes: u32,
        timeout_ms: u64,
    ) -> Result<WitChunk, Error> {
        block_on(ProcessHost::read(
            self, id, stream, cursor, max_bytes, timeout_ms,
        ))
    }

    fn write(&mut self, id: String, data: Vec<u8>, timeout_ms: u64) -> Result<u64, Error> {
        block_on(ProcessHost::write(self, id, data, timeout_ms))
    }

    fn close_stdin(&mut self, id: String) -> Result<(), Error> {
        ProcessHost::close_stdin(self, id)
    }

    fn remove(&mut self, id: String) -> Result<(), Error> {
        ProcessHost::remove(self, id)
    }
}

/// The WIT error a guest receives for a failed call.
impl From<CallError> for WitError {
    fn from(err: CallError) -> Self {
        match err {
            CallError::Denied(s) => WitError::Denied(s),
            CallError::NotFound(s) => WitError::NotFound(s),
            CallError::Invalid(s) => WitError::Invalid(s),
            CallError::LimitReached(s) => WitError::LimitReached(s),
            CallError::SpawnFailed(s) => WitError::SpawnFailed(s),
            CallError::TimedOut => WitError::TimedOut,
            CallError::Io(s) => WitError::Io(s),
        }
    }
}
