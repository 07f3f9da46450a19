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
use crate::subreaper::reaper;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Where a child's standard stream goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StdioKind {
    /// `/dev/null`.
    Null,
    /// A pipe to the host.
    Piped,
    /// The host's own stream.
    Inherit,
}

impl StdioKind {
    fn to_std(self) -> Stdio {
        match self {
            Self::Null => Stdio::null(),
            Self::Piped => Stdio::piped(),
            Self::Inherit => Stdio::inherit(),
        }
    }
}

/// The three standard streams of a child.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StdioPlan {
    pub stdin: StdioKind,
    pub stdout: StdioKind,
    pub stderr: StdioKind,
}

/// Starts an approved command in a new process group, in `cgroup` if given.
pub(crate) fn spawn(
    cmd: &Approved,
    stdio: StdioPlan,
    cgroup: Option<&ProcessCgroup>,
) -> io::Result<Child> {
    mark_inherited_fds_cloexec();
    let mut command = Command::new(&cmd.program);
    command
        .arg0(&cmd.arg0)
        .args(&cmd.args)
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .stdin(stdio.stdin.to_std())
        .stdout(stdio.stdout.to_std())
        .stderr(stdio.stderr.to_std());
    if let Some(dir) = &cmd.cwd {
        command.current_dir(dir);
    }
    let mut child = {
        let _registering = reaper().spawning();
        let child = command.spawn()?;
        reaper().register(child.id(), true);
        child
    };
    if let Some(cgroup) = cgroup
        && let Err(e) = cgroup.adopt(child.id())
    {
        // SAFETY: killpg has no memory-safety preconditions; the leader is
        // not reaped yet, so the group id is still this child's.
        unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = child.wait();
        reaper().release(child.id());
        return Err(io::Error::new(
            e.kind(),
            format!("cannot move the child into its cgroup: {e}"),
        ));
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
