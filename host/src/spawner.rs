//! How a process is started: the one module of the host that creates
//! operating-system processes. Clippy enforces this (`clippy.toml` at the workspace root).
//!
//! Children are started with `posix_spawn` (std's fast path: no `pre_exec`
//! hook, so a large host never pays for `fork`). Every child gets:
//! - its own process group, so signals reach everything it starts;
//! - an environment holding only what the policy built;
//! - the canonical program path, with `argv[0]` set to the granted name;
//! - default signal dispositions and an empty signal mask (std resets
//!   SIGPIPE, which Rust ignores, to its default in the child);
//! - only fds 0–2: every other fd the host holds is close-on-exec;
//! - its cgroup, where the host has cgroups (see below).
//!
//! Placement in the cgroup: glibc 2.39's `pidfd_spawn` with
//! `posix_spawnattr_setcgroup_np`, or `clone3` with `CLONE_INTO_CGROUP`,
//! would start the child inside it. Neither is reachable through `std`'s
//! `posix_spawn` path, and leaving that path costs a `fork` from a large
//! host; so the child is moved right after `posix_spawn` returns, followed
//! by anything it has forked by then. In that window (tens of µs; the
//! `wasmproc_host::cgroup` trace event `window_us` measures it) a child
//! forked and orphaned before the move would stay outside the cgroup; the
//! host is a subreaper, so such an orphan comes back to it and is killed
//! when the host's processes stop (`subreaper.rs`).

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "this is the one module that starts processes"
)]

use crate::cgroup::ProcessCgroup;
use crate::policy::Approved;
use crate::process_types::StdioMode;
use crate::subreaper::reaper;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};

/// The `std` form of a stream's mode.
fn to_std(mode: StdioMode) -> Stdio {
    match mode {
        StdioMode::Null => Stdio::null(),
        StdioMode::Piped => Stdio::piped(),
        StdioMode::Inherit => Stdio::inherit(),
    }
}

/// The three standard streams of a child.
#[derive(Debug, Clone, Copy)]
pub struct StdioPlan {
    /// Its stdin.
    pub stdin: StdioMode,
    /// Its stdout.
    pub stdout: StdioMode,
    /// Its stderr.
    pub stderr: StdioMode,
}

/// Starts an approved command in a new process group, in `cgroup` if given.
pub(crate) fn spawn(
    cmd: &Approved,
    stdio: StdioPlan,
    cgroup: Option<&ProcessCgroup>,
) -> io::Result<Child> {
    let mut command = Command::new(&cmd.program);
    command
        .arg0(&cmd.arg0)
        .args(&cmd.args)
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .stdin(to_std(stdio.stdin))
        .stdout(to_std(stdio.stdout))
        .stderr(to_std(stdio.stderr));
    if let Some(dir) = &cmd.cwd {
        command.current_dir(dir);
    }
    let spawn_thread = (HELD_PIPES.load(Ordering::Relaxed) >= SPAWN_THREAD_FROM_PIPES)
        .then(SpawnThread::get)
        .flatten();
    let mut child = match spawn_thread {
        Some(thread) => thread.spawn(command, stdio)?,
        None => spawn_registered(command)?,
    };
    if let Some(cgroup) = cgroup
        && let Err(e) = cgroup.adopt(child.id())
    {
        abandon(&mut child);
        return Err(io::Error::new(
            e.kind(),
            format!("cannot move the child into its cgroup: {e}"),
        ));
    }
    Ok(child)
}

/// Pipes of children the host holds right now (kept by the caller through
/// [`pipes_opened`] and [`pipes_closed`]).
static HELD_PIPES: AtomicUsize = AtomicUsize::new(0);

/// From how many held pipes on children start from the spawn thread: below
/// it the fd table the kernel copies at a spawn is small anyway, and an
/// inline spawn saves two thread hand-offs.
const SPAWN_THREAD_FROM_PIPES: usize = 256;

/// Counts `n` child pipes the host now holds.
pub(crate) fn pipes_opened(n: usize) {
    HELD_PIPES.fetch_add(n, Ordering::Relaxed);
}

/// Counts `n` child pipes the host closed.
pub(crate) fn pipes_closed(n: usize) {
    HELD_PIPES.fetch_sub(n, Ordering::Relaxed);
}

/// Starts `command` from the calling thread and registers the child with
/// the subreaper.
fn spawn_registered(mut command: Command) -> io::Result<Child> {
    mark_inherited_fds_cloexec();
    let _registering = reaper().spawning();
    let child = command.spawn()?;
    reaper().register(child.id(), true);
    Ok(child)
}

/// Kills and reaps a child the host will not manage after all.
fn abandon(child: &mut Child) {
    // SAFETY: killpg has no memory-safety preconditions; the leader is not
    // reaped yet, so the group id is still this child's.
    unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
    let _ = child.wait();
    reaper().release(child.id());
}

/// The thread children are spawned from once the host holds many pipes. It
/// has an fd table of its own
/// (`unshare(CLONE_FILES)` when it starts, keeping only fds 0–2 and its
/// socket), so the kernel's copy of the spawner's fd table at each spawn
/// stays a handful of entries however many pipes and pidfds the host holds
/// for live processes: a start costs the same at 10 and at 10,000 live
/// processes. Each child's pipes go back to the host's table over a socket
/// pair (`SCM_RIGHTS`). Children of the thread are children of the host:
/// any thread reaps them.
#[derive(Debug)]
struct SpawnThread {
    link: Mutex<SpawnLink>,
}

#[derive(Debug)]
struct SpawnLink {
    jobs: mpsc::Sender<Command>,
    replies: mpsc::Receiver<io::Result<Child>>,
    /// The host's end; the thread holds the other.
    socket: UnixStream,
}

impl SpawnThread {
    /// The spawn thread, started on first use; `None` where it cannot run
    /// (children are then spawned from the calling thread).
    fn get() -> Option<&'static Self> {
        static THREAD: OnceLock<Option<SpawnThread>> = OnceLock::new();
        THREAD
            .get_or_init(|| {
                Self::start()
                    .inspect_err(|e| tracing::warn!(error = %e, "no spawn thread; spawning inline"))
                    .ok()
            })
            .as_ref()
    }

    fn start() -> io::Result<Self> {
        let (host_end, thread_end) = UnixStream::pair()?;
        let (jobs, job_queue) = mpsc::channel::<Command>();
        let (reply, replies) = mpsc::channel();
        let (ready, started) = mpsc::channel();
        std::thread::Builder::new()
            .name("wasmproc-spawn".into())
            .spawn(move || {
                let owned = own_fd_table(thread_end.as_raw_fd());
                let failed = owned.is_err();
                let _ = ready.send(owned);
                if failed {
                    return;
                }
                for command in job_queue {
                    let result = spawn_registered(command)
                        .and_then(|child| hand_over_pipes(child, &thread_end));
                    if reply.send(result).is_err() {
                        return;
                    }
                }
            })?;
        started
            .recv()
            .map_err(|_| io::Error::other("the spawn thread ended at start"))??;
        Ok(Self {
            link: Mutex::new(SpawnLink {
                jobs,
                replies,
                socket: host_end,
            }),
        })
    }

    /// Spawns `command` on the thread and puts the child's pipes, received
    /// in the host's fd table, back into it.
    fn spawn(&self, command: Command, plan: StdioPlan) -> io::Result<Child> {
        let link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        let gone = || io::Error::other("the spawn thread ended");
        link.jobs.send(command).map_err(|_| gone())?;
        let mut child = link.replies.recv().map_err(|_| gone())??;
        let fds = match crate::fd_pass::recv_fds(&link.socket) {
            Ok(fds) => fds,
            Err(e) => {
                abandon(&mut child);
                return Err(e);
            }
        };
        let mut fds = fds.into_iter();
        let mut next = |mode: StdioMode| (mode == StdioMode::Piped).then(|| fds.next()).flatten();
        child.stdin = next(plan.stdin).map(ChildStdin::from);
        child.stdout = next(plan.stdout).map(ChildStdout::from);
        child.stderr = next(plan.stderr).map(ChildStderr::from);
        Ok(child)
    }
}

/// Gives the calling thread an fd table of its own holding only fds 0–2
/// and `keep`.
fn own_fd_table(keep: RawFd) -> io::Result<()> {
    // SAFETY: unshare(CLONE_FILES) only copies this thread's fd table.
    if unsafe { libc::unshare(libc::CLONE_FILES) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let close = |first: RawFd, last: RawFd| {
        if first > last {
            return Ok(());
        }
        // SAFETY: closes fds of this thread's private table only.
        let rc = unsafe { libc::syscall(libc::SYS_close_range, first as u32, last as u32, 0u32) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    close(3, keep - 1)?;
    close(keep + 1, RawFd::MAX)
}

/// Sends the child's pipes (stdin, stdout, stderr, those that exist) to the
/// host's fd table and closes them in the spawn thread's.
fn hand_over_pipes(mut child: Child, socket: &UnixStream) -> io::Result<Child> {
    let pipes: Vec<OwnedFd> = [
        child.stdin.take().map(OwnedFd::from),
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    ]
    .into_iter()
    .flatten()
    .collect();
    let raw: Vec<RawFd> = pipes.iter().map(AsRawFd::as_raw_fd).collect();
    if let Err(e) = crate::fd_pass::send_fds(socket, &raw) {
        abandon(&mut child);
        return Err(e);
    }
    Ok(child)
}

/// Marks every fd above 2 close-on-exec, so a child gets only 0–2.
///
/// Fds the host opens itself are close-on-exec already (Rust, tokio and
/// wasmtime open them that way); this catches fds the host *inherited*
/// without the flag (a build tool's jobserver pipe, a parent's leaked
/// socket) and any a C library opened without it. One `close_range` call,
/// so it costs microseconds and needs no code in the child. The fds stay
/// open in the host. A non-close-on-exec fd opened by another thread between
/// this call and the spawn can still leak; that is the remaining window.
fn mark_inherited_fds_cloexec() {
    // SAFETY: close_range with the CLOEXEC flag only changes fd flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return;
    }
    // Kernels before 5.11: set the flag fd by fd.
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: fcntl on an fd number; a stale number just fails.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

/// Starts the watchdog: `awk` blocked reading its stdin (the host's end of
/// a lifeline pipe, never written to). At end of input (the host exited or
/// was killed) it reads the table of live process groups from its stdout,
/// which is the host's table file, and SIGKILLs every group listed. Each
/// table line holds the group id twice; a line whose halves differ (a write
/// torn by the host's death) is ignored. It leads its own process group so a
/// terminal's Ctrl-C reaches the host, which then shuts down in order, and
/// not the watchdog.
///
/// With a cgroup subtree (`cgroup`), it then writes its `cgroup.kill` and
/// removes the subtree's cgroups, deepest first.
pub(crate) fn spawn_watchdog(
    awk: &Path,
    table: OwnedFd,
    cgroup: Option<&Path>,
) -> io::Result<Child> {
    mark_inherited_fds_cloexec();
    const SCRIPT: &str = r#"
        END {
            groups = ""
            while ((getline line < "/proc/self/fd/1") > 0) {
                split(line, half, " ")
                if (half[1] + 0 > 0 && half[1] == half[2]) groups = groups " -" (half[1] + 0)
            }
            if (groups != "") system("kill -s KILL --" groups " >/dev/null 2>&1")
            if (ENVIRON["CG"] != "") {
                system("echo 1 > \"$CG/cgroup.kill\" 2>/dev/null")
                for (i = 0; i < 250; i++) {
                    if (system("rmdir \"$CG\"/*/*/ \"$CG\"/*/ \"$CG\" 2>/dev/null; test ! -d \"$CG\"") == 0) break
                    system("sleep 0.02")
                }
            }
        }"#;
    let mut command = Command::new(awk);
    command.arg(SCRIPT).env_clear().env("PATH", "/usr/bin:/bin");
    if let Some(dir) = cgroup {
        command.env("CG", dir);
    }
    let _registering = reaper().spawning();
    let child = command
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(table))
        .stderr(Stdio::null())
        .spawn()?;
    reaper().register(child.id(), false);
    Ok(child)
}
