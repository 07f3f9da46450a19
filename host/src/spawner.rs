//! How a process is started: the one module of the host that creates
//! operating-system processes. Clippy enforces this (`host/clippy.toml`).
//!
//! Children are started with `posix_spawn` (std's fast path: no `pre_exec`
//! hook, so a large host never pays for `fork`). Every child gets:
//! - its own process group, so signals reach everything it starts;
//! - an environment holding only what the policy built;
//! - the canonical program path, with `argv[0]` set to the granted name;
//! - default signal dispositions and an empty signal mask (std resets
//!   SIGPIPE, which Rust ignores, to its default in the child);
//! - only fds 0–2: every other fd the host holds is close-on-exec.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "this is the one module that starts processes"
)]

use crate::policy::Approved;
use std::io;
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

/// Starts an approved command in a new process group.
pub(crate) fn spawn(cmd: &Approved, stdio: StdioPlan) -> io::Result<Child> {
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
    command.spawn()
}

/// Starts the watchdog: `awk` reading `+PGID`/`-PGID` lines on stdin; at
/// end of input (the host exited or was killed) it SIGKILLs every group
/// still listed. It leads its own process group so a terminal's Ctrl-C
/// reaches the host, which then shuts down in order, and not the watchdog.
pub(crate) fn spawn_watchdog(awk: &Path) -> io::Result<Child> {
    const SCRIPT: &str = r#"
        substr($0, 1, 1) == "+" { live[substr($0, 2)] = 1; next }
        substr($0, 1, 1) == "-" { delete live[substr($0, 2)]; next }
        END {
            groups = ""
            for (g in live) groups = groups " -" g
            if (groups != "") system("kill -KILL --" groups " 2>/dev/null")
        }"#;
    Command::new(awk)
        .arg(SCRIPT)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}
