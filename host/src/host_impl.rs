//! The WIT bindings of `wasmproc:process/process`, implemented by
//! [`ProcessCtx`]: conversions between WIT types and the library's.

use crate::bindings::ProcessHost;
use crate::bindings::types::{
    self, Buffering as WitBuffering, Chunk as WitChunk, Command, Error, ExitStatus, Output,
    OutputStream, ProcessInfo, Signal, StartOptions, State, StdioMode as WitStdio,
    StreamStats as WitStats,
};
use crate::buffer::{Buffering, StreamStats};
use crate::capability::{CommandSpec, ProcessCtx, StartSpec, StdioMode};
use crate::managed::{Exit, ProcState};
use crate::manager::ProcessManager; // interim

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

fn exit_status(exit: Exit) -> ExitStatus {
    match exit {
        Exit::Code(c) => ExitStatus::Exited(c),
        Exit::Signal(s) => ExitStatus::Signaled(s),
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
fn host_signal(sig: Signal) -> crate::process_types::Signal {
    use crate::process_types::Signal as S;
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
    fn run(&mut self, cmd: Command) -> Result<Output, Error> {
        let out = ProcessManager::block_on(ProcessCtx::run(self, command(cmd)))?; // interim
        Ok(Output {
            status: exit_status(out.exit),
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

    fn kill(&mut self, id: String) -> Result<(), Error> {
        Ok(ProcessManager::block_on(ProcessCtx::kill(self, &id))?) // interim
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
            exit: s.exit.map(exit_status),
            stdout: stats(s.stdout),
            stderr: stats(s.stderr),
            memory_peak_bytes: s.usage.and_then(|u| u.memory_peak_bytes),
            cpu_time_us: s.usage.and_then(|u| u.cpu_time_us),
        })
    }

    fn wait(&mut self, id: String, timeout_ms: Option<u64>) -> Result<Option<ExitStatus>, Error> {
        Ok(ProcessManager::block_on(ProcessCtx::wait(self, &id, timeout_ms))?.map(exit_status)) // interim
    }

    fn send_signal(&mut self, id: String, sig: Signal) -> Result<(), Error> {
        Ok(ProcessCtx::signal(self, &id, host_signal(sig))?)
    }

    fn read(
        &mut self,
        id: String,
        stream: OutputStream,
        cursor: u64,
        max_bytes: u32,
        timeout_ms: u64,
    ) -> Result<WitChunk, Error> {
        let chunk = ProcessManager::block_on(ProcessCtx::read(
            self,
            &id,
            stream == OutputStream::Stdout,
            cursor,
            max_bytes,
            timeout_ms,
        ))?; // interim
        Ok(WitChunk {
            data: chunk.data,
            next: chunk.next,
            ended: chunk.ended,
            dropped: chunk.dropped,
        })
    }

    fn write(&mut self, id: String, data: Vec<u8>, timeout_ms: u64) -> Result<u64, Error> {
        Ok(ProcessManager::block_on(ProcessCtx::write(
            self, &id, &data, timeout_ms,
        ))?) // interim
    }

    fn close_stdin(&mut self, id: String) -> Result<(), Error> {
        Ok(ProcessCtx::close_stdin(self, &id)?)
    }

    fn remove(&mut self, id: String) -> Result<(), Error> {
        Ok(ProcessCtx::remove(self, &id)?)
    }
}
