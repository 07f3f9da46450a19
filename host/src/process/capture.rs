//! `output`: a run to its end, its output captured.
//!
//! The output goes into capture buffers (the first bytes up to a cap are
//! kept, the rest read and counted), so a child never blocks on a full pipe
//! and host memory stays bounded. When the leader exits, whatever is left
//! of its process group is killed (the reap does that).
//!
//! The call has one absolute deadline, fixed by the caller when the call
//! starts; nothing extends it. At the deadline the monitor kills the group;
//! the pipes are drained until the group lets go of them, at most
//! [`DRAIN_GRACE`] after the leader is reaped, then closed, and the call
//! returns, even when a process outside the group (a `setsid` escapee)
//! still holds the pipes and writes to them. A leader that does not die
//! within [`KILL_REAP_WAIT`] of the SIGKILL is left to the monitor, which
//! reaps it in the background.

use crate::deadline::Deadline;
use crate::error::CallError;
use crate::process::managed::{DRAIN_GRACE, Process};
use crate::process::manager::ProcessManager;
use crate::process::spec::Spec;
use crate::types::Exit;
use std::sync::Arc;
use std::time::Duration;

/// How long a run waits for a killed leader to die before leaving its
/// reaping to the monitor.
const KILL_REAP_WAIT: Duration = Duration::from_secs(1);

/// What a run to its end collected: the one output type of the host
/// (a guest's `run`, a daemon's exec probe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The child's pid.
    pub pid: u32,
    /// How the leader ended; `None` when it was killed at the deadline and
    /// had not died within a second.
    pub exit: Option<Exit>,
    /// Its stdout, up to the cap.
    pub stdout: Vec<u8>,
    /// Its stderr, up to the cap.
    pub stderr: Vec<u8>,
    /// Bytes of stdout beyond the cap, not kept.
    pub stdout_dropped: u64,
    /// Bytes of stderr beyond the cap, not kept.
    pub stderr_dropped: u64,
    /// The deadline came before the leader ended.
    pub timed_out: bool,
}

impl ProcessManager {
    /// Runs `spec`'s command to its end (or its deadline) and collects
    /// what its [`Spec::capture`] buffers kept, from any executor. The
    /// child is tracked while this runs (shutdown stops it), and killed if
    /// the future is dropped early.
    pub async fn output(&self, spec: Spec<'_>) -> Result<Output, CallError> {
        let out = spec.buffers.stdout.clone();
        let err = spec.buffers.stderr.clone();
        let deadline = spec.deadline;
        // On a thread that drives its own reactor (a synchronous caller),
        // the call polls the monitor itself and the child's exit wakes it
        // directly; elsewhere the monitor runs on the process core.
        let here = crate::process::core_runtime::on_own_reactor();
        let (guard, monitor) = self.start_run(spec, here)?;
        let process = Arc::clone(guard.process());
        let exit = match monitor {
            Some(mut monitor) => {
                // The monitor ends once the leader is reaped and the pipes
                // are drained: then its exit is known, with nothing more to
                // wait for. Only past the deadline does the call wait on its
                // own.
                let ended = tokio::select! {
                    biased;
                    () = &mut monitor => true,
                    () = deadline.sleep() => false,
                };
                if ended {
                    process.try_wait()
                } else {
                    tokio::select! {
                        // Left running (a leader that would not die, pipes
                        // held by an escapee), the monitor is handed to the
                        // core on drop.
                        exit = wait_to_end(Arc::clone(&process), deadline) => exit,
                        () = &mut monitor => wait_to_end(process, deadline).await,
                    }
                }
            }
            None => self
                .on_core(wait_to_end(process, deadline))
                .await
                .ok_or_else(|| CallError::Io("run: the host is shutting down".into()))?,
        };
        let pid = guard.process().facts().pid;
        let timed_out = guard.process().timed_out() || exit.is_none();
        drop(guard);
        let take = |b: Option<Arc<crate::process::buffer::ByteBuffer>>| {
            b.map(|b| b.take_all()).unwrap_or_default()
        };
        let (stdout, stdout_dropped) = take(out);
        let (stderr, stderr_dropped) = take(err);
        Ok(Output {
            pid,
            exit,
            stdout,
            stderr,
            stdout_dropped,
            stderr_dropped,
            timed_out,
        })
    }
}

/// Waits, on the core, for the leader to end and the pipes to drain.
async fn wait_to_end(process: Arc<Process>, deadline: Deadline) -> Option<Exit> {
    let exit = match process.wait_here(deadline).await {
        Some(exit) => Some(exit),
        // The monitor kills the group at the same deadline.
        None => process.wait_here(Deadline::after(KILL_REAP_WAIT)).await,
    };
    // After the reap the monitor drains for at most DRAIN_GRACE; a leader
    // that is not reaped keeps its pipes, and the call does not wait.
    let drain = if exit.is_some() {
        DRAIN_GRACE + Duration::from_millis(100)
    } else {
        Duration::ZERO
    };
    let _ = tokio::time::timeout(drain, process.drained()).await;
    exit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::cgroup::Scope;
    use crate::policy::Approved;
    use crate::policy::cgroup_limits::CgroupLimits;
    use crate::process::core_runtime::{block_on_here, on_caller_reactor, on_own_reactor};
    use std::time::Instant;

    fn approved(program: &str, args: &[&str]) -> Approved {
        Approved {
            program: program.into(),
            arg0: program.rsplit('/').next().unwrap_or(program).into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
            cwd: None,
        }
    }

    fn request<'a>(cmd: &'a Approved, scope: &'a Scope) -> Spec<'a> {
        Spec::new(cmd, scope)
            .owner("test", "test")
            .capture(1024, Some(b"in".to_vec()))
            .deadline(Deadline::after(Duration::from_secs(30)))
    }

    /// Pids of live or zombie processes whose command line is exactly
    /// `args`.
    fn pids_running(args: &[&str]) -> Vec<u32> {
        let want: Vec<u8> = args
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
            .collect()
    }

    #[test]
    fn run_on_own_reactor_good() {
        let manager = ProcessManager::builder()
            .grace(Duration::from_secs(1))
            .build();
        let scope = manager.scope("run-here", &CgroupLimits::default());
        let cmd = approved(
            "/bin/sh",
            &["-c", "read line; echo \"out $line\"; echo err >&2; exit 3"],
        );
        let captured = block_on_here(async {
            assert!(
                on_own_reactor(),
                "a synchronous caller drives its own reactor"
            );
            manager.output(request(&cmd, &scope)).await
        })
        .expect("run");
        assert!(!on_own_reactor(), "the flag ends with the call");
        assert_eq!(captured.exit, Some(Exit::Code(3)));
        assert_eq!(captured.stdout, b"out in\n");
        assert_eq!(captured.stderr, b"err\n");
        assert!(!captured.timed_out);
    }

    #[test]
    fn run_in_nested_block_on_ugly() {
        // A synchronous host function of an embedder that blocks on a `run`
        // inside a guest's own runtime: the thread is parked, not driving
        // its reactor, so the run must be monitored on the core.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let manager = ProcessManager::builder()
                .grace(Duration::from_secs(1))
                .build();
            let scope = manager.scope("run-nested", &CgroupLimits::default());
            let cmd = approved("/bin/sh", &["-c", "read line; echo \"$line\""]);
            let captured = block_on_here(async {
                crate::process::core_runtime::block_on(async {
                    assert!(!on_own_reactor(), "a parked thread drives no reactor");
                    manager.output(request(&cmd, &scope)).await
                })
            });
            let _ = done.send(captured.map(|c| c.stdout));
        });
        let stdout = finished
            .recv_timeout(Duration::from_secs(10))
            .expect("the nested run finished")
            .expect("run");
        assert_eq!(stdout, b"in\n");
    }

    #[test]
    fn run_cancelled_on_own_reactor_ugly() {
        let manager = ProcessManager::builder()
            .grace(Duration::from_secs(1))
            .build();
        let scope = manager.scope("run-here", &CgroupLimits::default());
        let cmd = approved("/bin/sleep", &["31.4159"]);
        // As the child sees it: argv[0] is the granted name.
        let marker = ["sleep", "31.4159"];
        let pid = block_on_here(async {
            let run = manager.output(request(&cmd, &scope));
            let mut run = std::pin::pin!(run);
            // Started and waiting: then the call is dropped mid-way.
            let started = tokio::time::timeout(Duration::from_millis(500), &mut run).await;
            assert!(started.is_err(), "sleep 31 ended early: {started:?}");
            let pids = pids_running(&marker);
            assert_eq!(pids.len(), 1, "one child running: {pids:?}");
            pids[0]
        });
        // The dropped monitor handed the child to the core: killed, reaped.
        let until = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(Instant::now() < until, "process {pid} was left behind");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A multi-thread tokio runtime of a caller (I/O and time enabled).
    fn caller_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Waits until no process has exactly `args` as its command line.
    fn assert_gone(args: &[&str]) {
        let until = Instant::now() + Duration::from_secs(10);
        while !pids_running(args).is_empty() {
            assert!(Instant::now() < until, "{args:?} was left behind");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn run_on_caller_reactor_good() {
        let manager = ProcessManager::builder()
            .grace(Duration::from_secs(1))
            .build();
        let scope = manager.scope("run-caller", &CgroupLimits::default());
        let cmd = approved("/bin/sh", &["-c", "read line; echo \"out $line\"; exit 4"]);
        let captured = caller_runtime()
            .block_on(async {
                tokio::spawn(on_caller_reactor(async move {
                    assert!(on_own_reactor(), "polled by the caller's runtime");
                    let nested = crate::process::core_runtime::block_on(async { on_own_reactor() });
                    assert!(!nested, "a parked thread inside it drives no reactor");
                    manager.output(request(&cmd, &scope)).await
                }))
                .await
            })
            .unwrap()
            .expect("run");
        assert_eq!(captured.exit, Some(Exit::Code(4)));
        assert_eq!(captured.stdout, b"out in\n");
        // Outside any tokio runtime the flag stays off.
        let outside =
            crate::process::core_runtime::block_on(on_caller_reactor(async { on_own_reactor() }));
        assert!(!outside, "no caller runtime, no caller reactor");
    }

    #[test]
    fn run_on_caller_reactor_runtime_dropped_ugly() {
        // The caller's runtime goes away while its task waits on a child:
        // the dropped monitor hands the child to the core, which kills and
        // reaps it.
        let manager = ProcessManager::builder()
            .grace(Duration::from_secs(1))
            .build();
        let scope = manager.scope("run-caller-dropped", &CgroupLimits::default());
        let cmd = approved("/bin/sleep", &["27.1828"]);
        let marker = ["sleep", "27.1828"];
        let runtime = caller_runtime();
        let task_manager = Arc::clone(&manager);
        runtime.spawn(on_caller_reactor(async move {
            let _ = task_manager.output(request(&cmd, &scope)).await;
        }));
        let until = Instant::now() + Duration::from_secs(10);
        while pids_running(&marker).is_empty() {
            assert!(Instant::now() < until, "the child never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(runtime);
        assert_gone(&marker);
    }
}
