//! `run`: launch a child with its output captured, and wait for its end.
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

use crate::error::CallError;
use crate::os::cgroup::Scope;
use crate::os::spawner::StdioPlan;
use crate::policy::Approved;
use crate::process::buffer::ByteBuffer;
use crate::process::managed::{Buffers, DRAIN_GRACE, ManagedProcess};
use crate::process::manager::{Launch, ProcessManager};
use crate::types::{Exit, StdioMode};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long `run` waits for a killed leader to die before leaving its
/// reaping to the monitor.
const KILL_REAP_WAIT: Duration = Duration::from_secs(1);

/// What a captured run collected.
#[derive(Debug)]
pub struct Captured {
    /// The child's pid.
    pub pid: u32,
    /// How the leader ended; `None` when it was killed at the deadline and
    /// had not died within a second (`KILL_REAP_WAIT`).
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

/// What to run, and where.
#[derive(Debug)]
pub struct RunRequest<'a> {
    /// The approved command.
    pub cmd: &'a Approved,
    /// The cgroup scope it runs in.
    pub scope: &'a Scope,
    /// Session (or `host`) and guest name, for the record.
    pub owner: &'a str,
    /// The guest name, for the record.
    pub guest: &'a str,
    /// Bytes for stdin (`None`: `/dev/null`).
    pub stdin: Option<Vec<u8>>,
    /// Most bytes kept of each output stream.
    pub cap: usize,
    /// The call's absolute deadline.
    pub deadline: Instant,
}

/// Launches the command and waits for its end (or the deadline), on any
/// executor. The child is tracked by the manager while this runs (shutdown
/// stops it), and killed if the future is dropped early.
pub async fn run_captured(
    manager: &ProcessManager,
    req: RunRequest<'_>,
) -> Result<Captured, CallError> {
    let stdin = req.stdin.filter(|b| !b.is_empty());
    let out = Arc::new(ByteBuffer::capture(req.cap));
    let err = Arc::new(ByteBuffer::capture(req.cap));
    let stdin_buffer = stdin.map(|bytes| {
        let b = Arc::new(ByteBuffer::new(
            bytes.len(),
            crate::process::buffer::Buffering::Lossless,
        ));
        b.push(&bytes);
        b
    });
    let plan = StdioPlan {
        stdin: if stdin_buffer.is_some() {
            StdioMode::Piped
        } else {
            StdioMode::Null
        },
        stdout: StdioMode::Piped,
        stderr: StdioMode::Piped,
    };
    let launch = Launch {
        id: uuid::Uuid::new_v4().to_string(),
        owner: req.owner.to_string(),
        guest: req.guest.to_string(),
        scope: req.scope,
        plan,
        buffers: Buffers {
            stdout: Some(Arc::clone(&out)),
            stderr: Some(Arc::clone(&err)),
            stdin: stdin_buffer,
            close_stdin_when_drained: true,
        },
        deadline: Some(req.deadline),
        audit: None,
    };
    // On a thread that drives its own reactor (a synchronous caller), the
    // call polls the monitor itself and the child's exit wakes it
    // directly; elsewhere the monitor runs on the process core.
    let here = crate::process::core_runtime::on_own_reactor();
    let (guard, monitor) = manager.launch_run(req.cmd, launch, here)?;
    let process = Arc::clone(guard.process());
    let deadline = req.deadline;
    let exit = match monitor {
        Some(mut monitor) => {
            // The monitor ends once the leader is reaped and the pipes are
            // drained: then its exit is known, with nothing more to wait
            // for. Only past the deadline does the call wait on its own.
            let until = tokio::time::Instant::from_std(deadline);
            let ended = tokio::select! {
                biased;
                () = &mut monitor => true,
                () = tokio::time::sleep_until(until) => false,
            };
            if ended {
                process.exit_now()
            } else {
                tokio::select! {
                    // Left running (a leader that would not die, pipes held
                    // by an escapee), the monitor is handed to the core on
                    // drop.
                    exit = wait_to_end(Arc::clone(&process), deadline) => exit,
                    () = &mut monitor => wait_to_end(process, deadline).await,
                }
            }
        }
        None => manager
            .on_core(wait_to_end(process, deadline))
            .await
            .ok_or_else(|| CallError::Io("run: the host is shutting down".into()))?,
    };
    let pid = guard.process().facts().pid;
    let timed_out = guard.process().timed_out() || exit.is_none();
    drop(guard);
    let (stdout, stdout_dropped) = out.take_all();
    let (stderr, stderr_dropped) = err.take_all();
    Ok(Captured {
        pid,
        exit,
        stdout,
        stderr,
        stdout_dropped,
        stderr_dropped,
        timed_out,
    })
}

/// Waits, on the core, for the leader to end and the pipes to drain.
async fn wait_to_end(process: Arc<ManagedProcess>, deadline: Instant) -> Option<Exit> {
    let until = tokio::time::Instant::from_std(deadline);
    let exit = match tokio::time::timeout_at(until, process.exited()).await {
        Ok(exit) => Some(exit),
        // The monitor kills the group at the same deadline.
        Err(_) => tokio::time::timeout(KILL_REAP_WAIT, process.exited())
            .await
            .ok(),
    };
    // After the reap the monitor drains for at most DRAIN_GRACE; a leader
    // that is not reaped keeps its pipes, and the call does not wait.
    let drain = if exit.is_some() {
        DRAIN_GRACE + Duration::from_millis(100)
    } else {
        Duration::ZERO
    };
    let _ = tokio::time::timeout(drain, process.finished()).await;
    exit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::cgroup_limits::CgroupLimits;
    use crate::process::core_runtime::{block_on_here, on_caller_reactor, on_own_reactor};

    fn approved(program: &str, args: &[&str]) -> Approved {
        Approved {
            program: program.into(),
            arg0: program.rsplit('/').next().unwrap_or(program).into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
            cwd: None,
        }
    }

    fn request<'a>(cmd: &'a Approved, scope: &'a Scope) -> RunRequest<'a> {
        RunRequest {
            cmd,
            scope,
            owner: "test",
            guest: "test",
            stdin: Some(b"in".to_vec()),
            cap: 1024,
            deadline: Instant::now() + Duration::from_secs(30),
        }
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
        let manager = ProcessManager::new(Duration::from_secs(1));
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
            run_captured(&manager, request(&cmd, &scope)).await
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
            let manager = ProcessManager::new(Duration::from_secs(1));
            let scope = manager.scope("run-nested", &CgroupLimits::default());
            let cmd = approved("/bin/sh", &["-c", "read line; echo \"$line\""]);
            let captured = block_on_here(async {
                crate::process::core_runtime::block_on(async {
                    assert!(!on_own_reactor(), "a parked thread drives no reactor");
                    run_captured(&manager, request(&cmd, &scope)).await
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
        let manager = ProcessManager::new(Duration::from_secs(1));
        let scope = manager.scope("run-here", &CgroupLimits::default());
        let cmd = approved("/bin/sleep", &["31.4159"]);
        // As the child sees it: argv[0] is the granted name.
        let marker = ["sleep", "31.4159"];
        let pid = block_on_here(async {
            let run = run_captured(&manager, request(&cmd, &scope));
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
        let manager = ProcessManager::new(Duration::from_secs(1));
        let scope = manager.scope("run-caller", &CgroupLimits::default());
        let cmd = approved("/bin/sh", &["-c", "read line; echo \"out $line\"; exit 4"]);
        let captured = caller_runtime()
            .block_on(async {
                tokio::spawn(on_caller_reactor(async move {
                    assert!(on_own_reactor(), "polled by the caller's runtime");
                    let nested = crate::process::core_runtime::block_on(async { on_own_reactor() });
                    assert!(!nested, "a parked thread inside it drives no reactor");
                    run_captured(&manager, request(&cmd, &scope)).await
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
        let manager = ProcessManager::new(Duration::from_secs(1));
        let scope = manager.scope("run-caller-dropped", &CgroupLimits::default());
        let cmd = approved("/bin/sleep", &["27.1828"]);
        let marker = ["sleep", "27.1828"];
        let runtime = caller_runtime();
        let task_manager = Arc::clone(&manager);
        runtime.spawn(on_caller_reactor(async move {
            let _ = run_captured(&task_manager, request(&cmd, &scope)).await;
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
