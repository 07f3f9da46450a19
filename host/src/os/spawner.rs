//! How a process is started: the one module of the host that creates
//! operating-system processes. Clippy enforces this (`clippy.toml` at the workspace root).
//!
//! Children are started the way glibc's `posix_spawn` starts them, with
//! the memory of the host shared until `execve` (no `fork`, so a large host
//! never pays for copying its memory map), a few system calls in the child,
//! then `execve`. Where the kernel allows it (x86-64, Linux 5.7, no seccomp
//! filter refusing it) the start is `clone3` with `CLONE_VM | CLONE_VFORK |
//! CLONE_FILES | CLONE_CLEAR_SIGHAND | CLONE_PIDFD | CLONE_INTO_CGROUP`;
//! elsewhere it is `clone` with the first three, and the child resets the
//! signal handlers itself, one `sigaction` per signal, as `posix_spawn`
//! does. Every child gets:
//! - its own process group, so signals reach everything it starts;
//! - an environment holding only what the policy built;
//! - the canonical program path, with `argv[0]` set to the granted name;
//! - the default disposition for every signal, whether the host handles
//!   it or ignores it (SIGPIPE, which Rust ignores, and any signal the
//!   host inherited ignored, such as SIGINT and SIGQUIT in a background
//!   job of a shell), and an empty signal mask: a stop signal always
//!   reaches a child that does not set it aside itself;
//! - only fds 0–2: the child closes every other fd before `execve`;
//! - its cgroup, where the host has cgroups (see below);
//! - its confinement (`crate::os::confine`), prepared before the start: the
//!   child sets `no_new_privs`, enforces the Landlock ruleset (while the
//!   ruleset's fd is still in the fd table it shares with the host),
//!   installs the seccomp filter and drops every capability, before
//!   anything else it does could be affected by them.
//!
//! The child also shares the host's fd table at first (`CLONE_FILES`),
//! then makes its own with `close_range(LOW, ~0, CLOSE_RANGE_UNSHARE)`,
//! which copies only the fds below `LOW`. The kernel therefore copies a
//! handful of fd entries at each start, however many pipes and pidfds the
//! host holds for live processes (`posix_spawn` copies the whole table:
//! 8–14 ms per start with 19,000 fds open), and no start waits for another
//! thread. `LOW` is kept small by reserving, at the first start, a few low
//! fd numbers ([`Lane`]): a child's pipe ends are `dup3`'d there just for
//! its start, and the child `dup2`s them onto 0–2.
//!
//! Placement in the cgroup: with `CLONE_INTO_CGROUP` the child is born in
//! its cgroup, so nothing it forks is ever outside it. Where the kernel
//! cannot do that, the child is moved right after the start returns,
//! followed by anything it has forked by then. In that window (tens of µs;
//! the `wasmproc_host::cgroup` trace event `window_us` measures it) a child
//! forked and orphaned before the move would stay outside the cgroup; the
//! host is a subreaper, so such an orphan comes back to it and is killed
//! when the host's processes stop (`subreaper.rs`).

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "this is the one module that starts processes"
)]

use crate::os::cgroup::ProcessCgroup;
use crate::os::confine::{Prepared, SockFprog};
use crate::os::subreaper::reaper;
use crate::policy::Approved;
use crate::types::StdioMode;
use std::ffi::{CString, OsStr, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, TryLockError};

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

/// A started child: its pid (which is also its process-group id) and the
/// host's ends of its piped streams. The caller reaps it.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// The child's pid.
    pub pid: u32,
    /// A pidfd for it, made by the start itself where the kernel can
    /// (`clone3` with `CLONE_PIDFD`); otherwise the caller opens one.
    pub pidfd: Option<OwnedFd>,
    /// The writing end of its stdin, if piped.
    pub stdin: Option<OwnedFd>,
    /// The reading end of its stdout, if piped.
    pub stdout: Option<OwnedFd>,
    /// The reading end of its stderr, if piped.
    pub stderr: Option<OwnedFd>,
}

/// Starts an approved command in a new process group, in `cgroup` if
/// given, unconfined.
#[cfg(test)]
pub(crate) fn spawn(
    cmd: &Approved,
    stdio: StdioPlan,
    cgroup: Option<&ProcessCgroup>,
) -> io::Result<Spawned> {
    spawn_confined(cmd, stdio, cgroup, None)
}

/// Starts an approved command in a new process group, in `cgroup` if
/// given, under `confinement` if given.
pub(crate) fn spawn_confined(
    cmd: &Approved,
    stdio: StdioPlan,
    cgroup: Option<&ProcessCgroup>,
    confinement: Option<&Prepared>,
) -> io::Result<Spawned> {
    let mut image = ExecImage::new(cmd, confinement.and_then(|c| c.tmpdir.as_deref()))?;
    if let Some(c) = confinement {
        image.confine = Some(ChildConfine {
            ruleset_fd: c.ruleset_fd(),
            filter: c.filter(),
        });
    }
    // Unopenable, the cgroup is still joined after the start (adopt).
    let cgroup_dir = cgroup.and_then(|c| c.open_dir().ok());
    let (spawned, placed) = Launcher::get()?.start(&image, stdio, cgroup_dir.as_ref())?;
    drop(cgroup_dir);
    if let Some(cgroup) = cgroup
        && !placed
        && let Err(e) = cgroup.adopt(spawned.pid)
    {
        abandon(spawned.pid);
        return Err(io::Error::new(
            e.kind(),
            format!("cannot move the child into its cgroup: {e}"),
        ));
    }
    Ok(spawned)
}

/// Kills and reaps a child the host will not manage after all.
fn abandon(pid: u32) {
    // SAFETY: killpg has no memory-safety preconditions; the leader is not
    // reaped yet, so the group id is still this child's.
    unsafe { libc::killpg(pid as libc::pid_t, libc::SIGKILL) };
    let _ = crate::sys::process::wait_pid(pid);
    reaper().release(pid);
}

/// What `execve` gets, built before the start (the child allocates
/// nothing): the program path, `argv` and `envp` as C strings, their
/// pointer arrays, the working directory, and the confinement.
struct ExecImage {
    program: CString,
    cwd: Option<CString>,
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    confine: Option<ChildConfine>,
}

/// What the child enforces before `execve`: the Landlock ruleset's fd
/// (-1: none) and the seccomp program (null: none). `no_new_privs` comes
/// with both.
#[derive(Clone, Copy)]
struct ChildConfine {
    ruleset_fd: c_int,
    filter: *const SockFprog,
}

/// A C string of `what`, refusing interior NUL bytes.
fn c_string(what: &str, bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the {what} holds a NUL byte"),
        )
    })
}

impl ExecImage {
    /// The image of `cmd`, with `TMPDIR` set to `tmpdir` if given.
    fn new(cmd: &Approved, tmpdir: Option<&Path>) -> io::Result<Self> {
        let program = c_string("program path", cmd.program.as_os_str().as_bytes())?;
        let cwd = match &cmd.cwd {
            Some(dir) => Some(c_string("working directory", dir.as_os_str().as_bytes())?),
            None => None,
        };
        let arg0 = OsStr::new(&cmd.arg0);
        let mut args = Vec::with_capacity(cmd.args.len() + 1);
        for arg in std::iter::once(arg0).chain(cmd.args.iter().map(OsStr::new)) {
            args.push(c_string("argument list", arg.as_bytes())?);
        }
        let mut env = Vec::with_capacity(cmd.env.len() + 1);
        let pairs = cmd
            .env
            .iter()
            .filter(|(key, _)| tmpdir.is_none() || key != "TMPDIR")
            .map(|(k, v)| (OsStr::new(k), OsStr::new(v)))
            .chain(tmpdir.map(|t| (OsStr::new("TMPDIR"), t.as_os_str())));
        for (key, value) in pairs {
            let mut pair = key.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            env.push(c_string("environment", &pair)?);
        }
        let pointers = |strings: &[CString]| {
            let mut p: Vec<_> = strings.iter().map(|s| s.as_ptr()).collect();
            p.push(std::ptr::null());
            p
        };
        let (argv, envp) = (pointers(&args), pointers(&env));
        args.extend(env);
        Ok(Self {
            program,
            cwd,
            _strings: args,
            argv,
            envp,
            confine: None,
        })
    }
}

/// Starts that may run at once, each with its own reserved fds.
const LANES: usize = 4;
/// Stack of the child until `execve` (it runs a few system calls only).
const CHILD_STACK_BYTES: usize = 64 * 1024;

/// One start at a time: three reserved fd numbers (for the child's stdin,
/// stdout and stderr, holding `/dev/null` between starts) and the child's
/// stack.
#[derive(Debug)]
struct Lane {
    slots: [OwnedFd; 3],
    stack: Box<[u8]>,
}

/// The reserved low fds and the lanes.
#[derive(Debug)]
struct Launcher {
    /// `/dev/null`, for streams that are not piped or inherited.
    null: OwnedFd,
    lanes: [Mutex<Lane>; LANES],
    /// One above the highest reserved fd: the child copies fds below it.
    copy_below: u32,
    /// Whether the kernel has `close_range` (5.9), with which the child
    /// closes every fd above 2 itself.
    close_range_works: bool,
}

/// A close-on-exec duplicate of `fd` numbered 3 or above.
fn dup_low(fd: &OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd or -1.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Points `slot` at what `fd` refers to (`dup3`, close-on-exec).
fn dup_into(fd: RawFd, slot: &OwnedFd) -> io::Result<()> {
    loop {
        // SAFETY: dup3 between two fds the host owns.
        if unsafe { libc::dup3(fd, slot.as_raw_fd(), libc::O_CLOEXEC) } >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        // EBUSY: another thread's open raced on this number (Linux dup2).
        if !matches!(err.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) {
            return Err(err);
        }
    }
}

/// A pipe: (read end, write end), both close-on-exec.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fresh fds into `fds` or fails.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fds nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl Launcher {
    /// The launcher, set up at the first start.
    fn get() -> io::Result<&'static Self> {
        static LAUNCHER: OnceLock<Result<Launcher, String>> = OnceLock::new();
        LAUNCHER
            .get_or_init(|| Self::new().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| io::Error::other(format!("cannot prepare the spawner: {e}")))
    }

    fn new() -> io::Result<Self> {
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        let null = dup_low(&OwnedFd::from(opened))?;
        let lane = || -> io::Result<Mutex<Lane>> {
            Ok(Mutex::new(Lane {
                slots: [dup_low(&null)?, dup_low(&null)?, dup_low(&null)?],
                stack: vec![0u8; CHILD_STACK_BYTES].into_boxed_slice(),
            }))
        };
        let lanes = [lane()?, lane()?, lane()?, lane()?];
        let highest = lanes
            .iter()
            .flat_map(|l| {
                let lane = l.lock().unwrap_or_else(|e| e.into_inner());
                lane.slots
                    .iter()
                    .map(AsRawFd::as_raw_fd)
                    .collect::<Vec<_>>()
            })
            .chain([null.as_raw_fd()])
            .max()
            .unwrap_or(2);
        // SAFETY: closes nothing (the range holds no fd); fails only
        // where the system call is missing.
        let close_range_works =
            unsafe { libc::syscall(libc::SYS_close_range, u32::MAX, u32::MAX, 0u32) } == 0;
        Ok(Self {
            null,
            lanes,
            copy_below: highest as u32 + 1,
            close_range_works,
        })
    }

    /// A free lane, or the first one once it is free.
    fn lane(&self) -> MutexGuard<'_, Lane> {
        for lane in &self.lanes {
            match lane.try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.lanes[0].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `image` with `stdio` (inside the cgroup `cgroup_dir` where
    /// the kernel can: then `placed` is true) and registers it with the
    /// subreaper.
    fn start(
        &self,
        image: &ExecImage,
        stdio: StdioPlan,
        cgroup_dir: Option<&OwnedFd>,
    ) -> io::Result<(Spawned, bool)> {
        let mut lane = self.lane();
        let mut host_ends: [Option<OwnedFd>; 3] = [None, None, None];
        // What the child puts on 0, 1 and 2 (-1: the host's own, inherited).
        let mut sources: [c_int; 3] = [-1; 3];
        let modes = [stdio.stdin, stdio.stdout, stdio.stderr];
        let prepared = (|| {
            for (n, mode) in modes.into_iter().enumerate() {
                sources[n] = match mode {
                    StdioMode::Inherit => -1,
                    StdioMode::Null => self.null.as_raw_fd(),
                    StdioMode::Piped => {
                        let (read, write) = pipe()?;
                        let (child_end, host_end) =
                            if n == 0 { (read, write) } else { (write, read) };
                        dup_into(child_end.as_raw_fd(), &lane.slots[n])?;
                        host_ends[n] = Some(host_end);
                        lane.slots[n].as_raw_fd()
                    }
                };
            }
            Ok::<(), io::Error>(())
        })();
        let started = prepared.and_then(|()| {
            if !self.close_range_works {
                mark_inherited_fds_cloexec();
            }
            let _registering = reaper().registering();
            let started = clone_exec(
                image,
                sources,
                self.copy_below,
                &mut lane.stack,
                cgroup_dir.map(AsRawFd::as_raw_fd),
            )?;
            reaper().register(started.pid, true);
            Ok(started)
        });
        // The child has its own copies now: the host must not hold the
        // child's ends, or it would never see end-of-file. Only the slots
        // a pipe end was put in hold anything but `/dev/null`.
        let mut reset = Ok(());
        for (slot, source) in lane.slots.iter().zip(sources) {
            if source == slot.as_raw_fd() {
                reset = reset.and(dup_into(self.null.as_raw_fd(), slot));
            }
        }
        let Started { pid, pidfd, placed } = started?;
        if let Err(e) = reset {
            abandon(pid);
            return Err(e);
        }
        let [stdin, stdout, stderr] = host_ends;
        let spawned = Spawned {
            pid,
            pidfd,
            stdin,
            stdout,
            stderr,
        };
        Ok((spawned, placed))
    }
}

/// What the child reads (and writes back: the errno of the step that
/// failed). It shares the host's memory until `execve`.
#[repr(C)]
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    sources: [c_int; 3],
    copy_below: u32,
    /// Whether to confine the child, and with what.
    confined: bool,
    /// Whether the confined child has capabilities to drop, ambient ones
    /// among them.
    drop_capabilities: bool,
    drop_ambient: bool,
    ruleset_fd: c_int,
    filter: *const SockFprog,
    /// Signals to set back to the default: the host's ignored ones
    /// (bit `n - 1` for signal `n`), where the start cleared the handlers.
    reset_ignored: u64,
    /// Whether to set every signal back instead (`clone`, which clears no
    /// handler).
    reset_all: bool,
    error: c_int,
}

/// A child that has called `execve`.
struct Started {
    pid: u32,
    /// Its pidfd, if the kernel made one with the start.
    pidfd: Option<OwnedFd>,
    /// Whether it was started inside the cgroup asked for.
    placed: bool,
}

/// Starts the child: `clone3` where the kernel allows it (see
/// [`clone3_exec`]), `clone` otherwise. Returns once the child has called
/// `execve` or failed before it (its errno, the child reaped).
fn clone_exec(
    image: &ExecImage,
    sources: [c_int; 3],
    copy_below: u32,
    stack: &mut [u8],
    cgroup_dir: Option<RawFd>,
) -> io::Result<Started> {
    let mut args = ChildArgs {
        program: image.program.as_ptr(),
        argv: image.argv.as_ptr(),
        envp: image.envp.as_ptr(),
        cwd: image.cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        sources,
        copy_below,
        confined: image.confine.is_some(),
        drop_capabilities: host_capabilities().any,
        drop_ambient: host_capabilities().ambient,
        ruleset_fd: image.confine.map_or(-1, |c| c.ruleset_fd),
        filter: image.confine.map_or(std::ptr::null(), |c| c.filter),
        reset_ignored: crate::os::ignored_signals::ignored_signals(),
        reset_all: false,
        error: 0,
    };
    let mut saved = empty_sigset();
    // No handler of the host may run in the child while it shares the
    // host's memory: every signal is blocked across the clone (internal
    // glibc signals too, hence the raw system call).
    // SAFETY: a full set, then the saved one, for this thread's mask.
    unsafe {
        let mut all = empty_sigset();
        libc::sigfillset(&mut all);
        set_sigmask(&all, &mut saved);
    }
    let started = match clone3_exec(&mut args, stack, cgroup_dir) {
        Some(started) => started,
        None => {
            args.reset_all = true;
            clone2_exec(&mut args, stack).map(|pid| Started {
                pid,
                pidfd: None,
                placed: false,
            })
        }
    };
    // SAFETY: restores this thread's mask.
    unsafe { set_sigmask(&saved, std::ptr::null_mut()) };
    let started = started?;
    // SAFETY: the child wrote it (shared memory) before this thread resumed.
    let error = unsafe { std::ptr::read_volatile(&raw const args.error) };
    if error != 0 {
        drop(started.pidfd);
        let _ = crate::sys::process::wait_pid(started.pid);
        return Err(io::Error::from_raw_os_error(error));
    }
    Ok(started)
}

/// The top of `stack`, 16-byte aligned: the stack grows down.
fn stack_top(stack: &mut [u8]) -> usize {
    stack.as_mut_ptr_range().end as usize & !15
}

/// `clone(CLONE_VM | CLONE_VFORK | CLONE_FILES)`: the start where
/// `clone3` is not available. The child resets the host's handlers itself.
fn clone2_exec(args: &mut ChildArgs, stack: &mut [u8]) -> io::Result<u32> {
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES | libc::SIGCHLD;
    // SAFETY: the child runs `child_main` on `stack`, which outlives it
    // (CLONE_VFORK suspends this thread until the child has exec'd or
    // exited); `args` lives on the caller's frame for as long.
    let pid = unsafe {
        libc::clone(
            child_main,
            stack_top(stack) as *mut c_void,
            flags,
            std::ptr::from_mut(args).cast::<c_void>(),
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid as u32)
}

/// `struct clone_args` of `clone3(2)`, up to `cgroup` (version 2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_CLEAR_SIGHAND` (Linux 5.5): the child starts with every handled
/// signal back at its default.
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// Whether `clone3` has failed in a way that will not change (an old
/// kernel, or a seccomp filter such as a container runtime's): every later
/// start uses `clone`.
static CLONE3_UNAVAILABLE: AtomicBool = AtomicBool::new(false);

#[cfg(test)]
thread_local! {
    /// Makes this thread's starts use `clone`, to test that path.
    static FORCE_CLONE2: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `CLONE_INTO_CGROUP` (Linux 5.7): the child starts inside a cgroup.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Whether the kernel does not know `CLONE_INTO_CGROUP`: children are then
/// moved into their cgroup right after the start.
static INTO_CGROUP_UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// `clone3(CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_CLEAR_SIGHAND |
/// CLONE_PIDFD)`: the kernel resets the host's signal handlers in the
/// child (sparing it a `sigaction` call per signal, which `posix_spawn`
/// makes) and returns a pidfd with the pid. With `cgroup_dir`, also
/// `CLONE_INTO_CGROUP`: the child is born in its cgroup, so nothing it
/// forks can ever be outside it; if the kernel refuses that, the start is
/// made without it (and the caller moves the child). `None` where `clone3`
/// or one of its flags is not available: the caller falls back to `clone`.
fn clone3_exec(
    args: &mut ChildArgs,
    stack: &mut [u8],
    cgroup_dir: Option<RawFd>,
) -> Option<io::Result<Started>> {
    if !cfg!(target_arch = "x86_64") || CLONE3_UNAVAILABLE.load(Ordering::Relaxed) {
        return None;
    }
    #[cfg(test)]
    if FORCE_CLONE2.get() {
        return None;
    }
    let base = stack.as_mut_ptr() as u64;
    let mut pidfd: c_int = -1;
    let mut clone_args = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES | libc::CLONE_PIDFD) as u64
            | CLONE_CLEAR_SIGHAND,
        pidfd: (&raw mut pidfd) as u64,
        exit_signal: libc::SIGCHLD as u64,
        stack: base,
        stack_size: stack_top(stack) as u64 - base,
        ..CloneArgs::default()
    };
    let into = cgroup_dir.filter(|_| !INTO_CGROUP_UNAVAILABLE.load(Ordering::Relaxed));
    if let Some(fd) = into {
        clone_args.flags |= CLONE_INTO_CGROUP;
        clone_args.cgroup = fd as u64;
    }
    let child_args = std::ptr::from_mut(args).cast::<c_void>();
    // SAFETY: as for `clone2_exec`: the child runs `child_main` on `stack`
    // and this thread waits (CLONE_VFORK) until it has exec'd or exited.
    let mut rc = unsafe { raw_clone3(&mut clone_args, child_main, child_args) };
    let mut placed = into.is_some();
    // The cgroup refused (EINVAL: a kernel before 5.7; EOPNOTSUPP, EBUSY:
    // a cgroup that cannot take processes this way; EACCES, EPERM, ENOSYS,
    // EBADF: not allowed here): the start is made without it, and the
    // caller moves the child. A shortage (EAGAIN, ENOMEM) stays an error.
    let refused = |rc: i64| {
        let errno = -rc as c_int;
        matches!(
            errno,
            libc::EINVAL
                | libc::EOPNOTSUPP
                | libc::EBUSY
                | libc::EACCES
                | libc::EPERM
                | libc::ENOSYS
                | libc::EBADF
        )
    };
    if rc < 0 && placed && refused(rc) {
        if rc == -i64::from(libc::EINVAL) {
            INTO_CGROUP_UNAVAILABLE.store(true, Ordering::Relaxed);
        }
        tracing::debug!(
            errno = -rc,
            "clone3 into the cgroup refused; moving the child instead"
        );
        clone_args.flags &= !CLONE_INTO_CGROUP;
        clone_args.cgroup = 0;
        placed = false;
        // SAFETY: as above.
        rc = unsafe { raw_clone3(&mut clone_args, child_main, child_args) };
    }
    if rc < 0 {
        let errno = -rc as c_int;
        // ENOSYS: no clone3 (before 5.3, or filtered); EINVAL: a flag it
        // does not know (CLONE_CLEAR_SIGHAND before 5.5); EPERM: filtered.
        if matches!(errno, libc::ENOSYS | libc::EINVAL | libc::EPERM) {
            CLONE3_UNAVAILABLE.store(true, Ordering::Relaxed);
            return None;
        }
        return Some(Err(io::Error::from_raw_os_error(errno)));
    }
    // SAFETY: the kernel stored a fresh pidfd that nothing else owns.
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
    Some(Ok(Started {
        pid: rc as u32,
        pidfd,
        placed,
    }))
}

/// The `clone3` system call, the child running `child(arg)` on the stack
/// in `args` (`child` must not return). Returns the child's pid, or
/// `-errno`. There is no glibc wrapper: the child must not return through
/// a function frame of the parent's.
///
/// # Safety
/// As for `clone`: `args` names a stack that outlives the child, and
/// `arg` stays valid for it.
#[cfg(target_arch = "x86_64")]
unsafe fn raw_clone3(
    args: &mut CloneArgs,
    child: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
) -> i64 {
    let rc: i64;
    // SAFETY: the kernel keeps every register but rax, rcx and r11 across
    // the system call. The child (rax = 0) starts on the 16-byte aligned
    // top of its new stack and calls `child(arg)`, which ends it.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => rc,
            in("rdi") std::ptr::from_mut(args),
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") child,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    rc
}

/// Other architectures start children with `clone` (see [`clone3_exec`]).
#[cfg(not(target_arch = "x86_64"))]
unsafe fn raw_clone3(
    _: &mut CloneArgs,
    _: extern "C" fn(*mut c_void) -> c_int,
    _: *mut c_void,
) -> i64 {
    -i64::from(libc::ENOSYS)
}

fn empty_sigset() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is valid; sigemptyset makes it empty.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        set
    }
}

/// `rt_sigprocmask(SIG_SETMASK)`, without glibc's filter of its internal
/// signals.
///
/// # Safety
/// `old` is null or valid for writes.
unsafe fn set_sigmask(set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int {
    // SAFETY: the kernel reads 8 bytes of `set` and writes 8 of `old`.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, set, old, 8) as c_int }
}

/// The child until `execve`: it may only make system calls (it shares the
/// host's memory and, at first, its fd table). On failure it stores the
/// errno and exits with 127.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive until this returns.
    let args = unsafe { &mut *arg.cast::<ChildArgs>() };
    // SAFETY: only system calls on the data in `args`.
    let error = unsafe { child_steps(args) };
    // SAFETY: a plain store into the shared `args`, read after the vfork.
    unsafe { std::ptr::write_volatile(&raw mut args.error, error.max(1)) };
    // SAFETY: ends the child without running anything of the host's.
    unsafe { libc::_exit(127) }
}

fn errno() -> c_int {
    // SAFETY: the thread's errno location is always valid.
    unsafe { *libc::__errno_location() }
}

/// The steps of the child; returns the errno of the one that failed.
///
/// # Safety
/// Runs in the vfork child only: the pointers in `args` are valid.
unsafe fn child_steps(args: &ChildArgs) -> c_int {
    // SAFETY: every call below is a system call (or glibc's thin wrapper
    // of one) on valid pointers; none allocates or takes a lock.
    unsafe {
        // Every signal the host handles or ignores goes back to the
        // default: handlers (which `clone3` has reset already where it was
        // used) and ignored signals, which `execve` would keep (see
        // `ignored_signals.rs`). The child has its own copy of the
        // dispositions. After `clone3`, one call per ignored signal; after
        // `clone`, one query per signal, a second call only where one is
        // not the default.
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for sig in 1..=libc::SIGRTMAX() {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            if !args.reset_all {
                if sig <= 64 && args.reset_ignored & (1 << (sig - 1)) != 0 {
                    libc::sigaction(sig, &default, std::ptr::null_mut());
                }
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            if old.sa_sigaction != libc::SIG_DFL {
                libc::sigaction(sig, &default, std::ptr::null_mut());
            }
        }
        if libc::setpgid(0, 0) != 0 {
            return errno();
        }
        // The confinement, while the ruleset's fd is still in the table
        // shared with the host (the unsharing below drops it).
        if args.confined {
            if libc::syscall(
                libc::SYS_prctl,
                libc::PR_SET_NO_NEW_PRIVS,
                1u64,
                0u64,
                0u64,
                0u64,
            ) != 0
            {
                return errno();
            }
            if args.ruleset_fd >= 0
                && libc::syscall(libc::SYS_landlock_restrict_self, args.ruleset_fd, 0u32) != 0
            {
                return errno();
            }
            if !args.filter.is_null()
                && libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0u32,
                    args.filter,
                ) != 0
            {
                return errno();
            }
            if args.drop_capabilities {
                let dropped = drop_capabilities(args.drop_ambient);
                if dropped != 0 {
                    return dropped;
                }
            }
        }
        // An fd table of its own holding only the fds below `copy_below`
        // (the host's 0-2 and the reserved ones), not a copy of the host's.
        let unshared = libc::syscall(
            libc::SYS_close_range,
            args.copy_below,
            u32::MAX,
            libc::CLOSE_RANGE_UNSHARE,
        );
        // Kernels before 5.9: a full copy.
        if unshared != 0 && libc::unshare(libc::CLONE_FILES) != 0 {
            return errno();
        }
        for (target, source) in (0..3).zip(args.sources) {
            if source >= 0 && libc::dup2(source, target) < 0 {
                return errno();
            }
        }
        // Only 0-2 go on. Before 5.9 this fails and close-on-exec (set on
        // every fd above 2 just before the start) closes them at execve.
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        if !args.cwd.is_null() && libc::chdir(args.cwd) != 0 {
            return errno();
        }
        let none = empty_sigset();
        set_sigmask(&none, std::ptr::null_mut());
        libc::execve(args.program, args.argv, args.envp);
        errno()
    }
}

/// `struct __user_cap_header_struct` of `capset(2)`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

/// `struct __user_cap_data_struct` of `capset(2)`.
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: two `CapData`, 64 capabilities.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Drops every capability for good. A host running as root otherwise
/// hands its children capabilities that reach around Landlock
/// (`CAP_PERFMON` reads any process's `environ` and `maps`;
/// `CAP_SYS_MODULE` loads kernel code).
///
/// The effective, permitted and inheritable sets are emptied, and the
/// ambient set where the host has one (`ambient`). That is for good
/// because `no_new_privs` is already set: an `execve` (as root, of a
/// setuid binary, of a file with capabilities) then grants at most the
/// permitted set the program had, which is empty (the kernel's
/// `cap_bprm_creds_from_file`). The bounding set is left as it is: under
/// `no_new_privs` with nothing permitted it bounds nothing, and emptying
/// it takes one system call per capability, which cost more than the rest
/// of the confinement together. Returns 0 or the errno of `capset`. Only
/// system calls: it runs in the child before `execve`.
fn drop_capabilities(ambient: bool) -> c_int {
    // SAFETY: prctl and capset on integers and on structures on this stack.
    unsafe {
        if ambient {
            libc::syscall(
                libc::SYS_prctl,
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0u64,
                0u64,
                0u64,
            );
        }
        let header = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let none = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capset, &raw const header, none.as_ptr()) != 0 {
            return errno();
        }
    }
    0
}

/// Whether this process has capabilities to drop: any permitted,
/// inheritable or ambient one (`/proc/self/status`). A host without any
/// (not root, no file capabilities) starts confined children without the
/// `capset` call. Read once: a process gains none later.
fn host_capabilities() -> HostCapabilities {
    static FOUND: OnceLock<HostCapabilities> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let set = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(":\t"))
                .is_none_or(|hex| u64::from_str_radix(hex.trim(), 16) != Ok(0))
        };
        HostCapabilities {
            any: set("CapPrm") || set("CapInh") || set("CapAmb"),
            ambient: set("CapAmb"),
        }
    })
}

/// The capabilities of the host that its confined children must drop.
#[derive(Debug, Clone, Copy)]
struct HostCapabilities {
    /// Any permitted, inheritable or ambient capability.
    any: bool,
    /// Any ambient capability.
    ambient: bool,
}

/// Marks every fd above 2 close-on-exec: the defence for the watchdog,
/// which `std` starts, and, before each start, for the managed children on
/// kernels before 5.9 (elsewhere they close every fd above 2 themselves).
///
/// Fds the host opens itself are close-on-exec already (Rust, tokio and
/// wasmtime open them that way); this catches fds the host *inherited*
/// without the flag (a build tool's jobserver pipe, a parent's leaked
/// socket) and any a C library opened without it. One `close_range` call,
/// so it costs microseconds. The fds stay open in the host.
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
    let _registering = reaper().registering();
    let child = command
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(table))
        .stderr(Stdio::null())
        .spawn()?;
    reaper().register(child.id(), false);
    Ok(child)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::Duration;

    fn approved(program: &str, args: &[&str]) -> Approved {
        Approved {
            program: program.into(),
            arg0: Path::new(program)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec![("ONLY".into(), "this".into())],
            cwd: None,
        }
    }

    fn piped_out() -> StdioPlan {
        StdioPlan {
            stdin: StdioMode::Null,
            stdout: StdioMode::Piped,
            stderr: StdioMode::Null,
        }
    }

    /// Reads the child's stdout to end-of-file (within 10 s) and reaps it.
    fn output(spawned: Spawned) -> String {
        let mut out = std::fs::File::from(spawned.stdout.expect("stdout piped"));
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            let _ = done.send(text);
        });
        let text = result
            .recv_timeout(Duration::from_secs(10))
            .expect("end-of-file: the host holds no end of the child's pipe");
        let status = crate::sys::process::wait_pid(spawned.pid).unwrap();
        reaper().release(spawned.pid);
        assert!(status.success(), "{status:?}");
        text
    }

    /// The value of a `/proc/<pid>/status` field, as the child saw it.
    fn field<'a>(status: &'a str, name: &str) -> &'a str {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(":"))
            .unwrap_or_else(|| panic!("no {name} in {status}"))
            .trim()
    }

    /// A handler and a blocked signal in the host, a high fd without
    /// close-on-exec: the child (and so what it starts) has an empty mask,
    /// SIGPIPE not ignored, its own group, the given environment, and only
    /// fds 0-2. Returns whether the starts made pidfds.
    fn assert_child_state() -> bool {
        extern "C" fn on_usr2(_: c_int) {}
        // SAFETY: installs an empty handler; blocks SIGUSR2 in this thread.
        let leaked = unsafe {
            libc::signal(libc::SIGUSR2, on_usr2 as *const () as libc::sighandler_t);
            let mut set = empty_sigset();
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            libc::fcntl(0, libc::F_DUPFD, 900)
        };
        assert!(leaked >= 900);
        let mut pidfds = true;
        let mut run = |program: &str, args: &[&str]| {
            let mut spawned = spawn(&approved(program, args), piped_out(), None).unwrap();
            pidfds &= spawned.pidfd.take().is_some();
            (spawned.pid, output(spawned))
        };
        let (pid, status) = run("/bin/cat", &["/proc/self/status"]);
        let (_, fds) = run("/bin/ls", &["/proc/self/fd"]);
        let (_, env) = run("/usr/bin/env", &[]);
        // SAFETY: closes the fd this test opened, and unblocks SIGUSR2.
        unsafe {
            libc::close(leaked);
            let mut set = empty_sigset();
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
        assert_eq!(
            field(&status, "SigBlk").trim_start_matches('0'),
            "",
            "{status}"
        );
        let sigpipe_bit = 1u64 << (libc::SIGPIPE - 1);
        let ignored = u64::from_str_radix(field(&status, "SigIgn"), 16).unwrap();
        assert_eq!(ignored & sigpipe_bit, 0, "SIGPIPE ignored in the child");
        assert_eq!(
            field(&status, "NSpgid"),
            pid.to_string(),
            "leads its own group"
        );
        // `ls` opens one directory fd (3) to list the others.
        assert_eq!(fds, "0\n1\n2\n3\n");
        assert_eq!(env, "ONLY=this\n");
        pidfds
    }

    #[test]
    fn spawner_child_state_good() {
        let pidfds = assert_child_state();
        if cfg!(target_arch = "x86_64") {
            assert!(
                pidfds,
                "no pidfd from the start: clone3 was not used (unavailable: {})",
                CLONE3_UNAVAILABLE.load(Ordering::Relaxed)
            );
        }
    }

    #[test]
    fn spawner_child_state_without_clone3_good() {
        // The path of kernels and sandboxes without clone3: the child
        // resets the handlers itself, and the caller opens the pidfd.
        FORCE_CLONE2.set(true);
        let pidfds = assert_child_state();
        FORCE_CLONE2.set(false);
        assert!(!pidfds, "clone made a pidfd");
    }

    #[test]
    fn spawner_child_born_in_its_cgroup_good() {
        // With clone3, the child's very first look at its cgroup finds the
        // one it was started for (nothing it could fork escapes a move);
        // with clone, it is moved there before the start returns.
        let manager = crate::process::manager::ProcessManager::new(Duration::from_secs(1));
        let cgroup = || {
            manager
                .host_scope()
                .process()
                .unwrap()
                .expect("this test needs cgroup v2 containment (root, cgroup2)")
        };
        let ends_in = |text: &str, cgroup: &ProcessCgroup| {
            let name = cgroup.dir().file_name().unwrap().to_string_lossy();
            text.trim_end().ends_with(&format!("/{name}"))
        };
        let born = cgroup();
        let cat = ExecImage::new(&approved("/bin/cat", &["/proc/self/cgroup"]), None).unwrap();
        let dir = born.open_dir().unwrap();
        let (spawned, placed) = Launcher::get()
            .unwrap()
            .start(&cat, piped_out(), Some(&dir))
            .unwrap();
        assert!(
            placed || !cfg!(target_arch = "x86_64"),
            "not started inside the cgroup (clone3 unavailable: {}, into-cgroup unavailable: {})",
            CLONE3_UNAVAILABLE.load(Ordering::Relaxed),
            INTO_CGROUP_UNAVAILABLE.load(Ordering::Relaxed)
        );
        let seen = output(spawned);
        if placed {
            assert!(ends_in(&seen, &born), "the child saw {seen:?}");
        }
        born.remove();

        let moved = cgroup();
        FORCE_CLONE2.set(true);
        let sleeper = spawn(&approved("/bin/sleep", &["30"]), piped_out(), Some(&moved));
        FORCE_CLONE2.set(false);
        let sleeper = sleeper.unwrap();
        let seen = std::fs::read_to_string(format!("/proc/{}/cgroup", sleeper.pid)).unwrap();
        abandon(sleeper.pid);
        assert!(ends_in(&seen, &moved), "the child is in {seen:?}");
        moved.remove();
    }

    #[test]
    fn spawner_exec_failure_reported_bad() {
        // A program that is not there, and a working directory that is
        // not there: the error is the child's errno, and no child is left.
        let missing = spawn(&approved("/nonexistent/program", &[]), piped_out(), None);
        let err = missing.expect_err("no such program");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
        let mut in_missing_dir = approved("/bin/true", &[]);
        in_missing_dir.cwd = Some("/nonexistent/dir".into());
        let err = spawn(&in_missing_dir, piped_out(), None).expect_err("no such directory");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
        let nul = Approved {
            args: vec!["a\0b".into()],
            ..approved("/bin/true", &[])
        };
        let err = spawn(&nul, piped_out(), None).expect_err("NUL byte");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }

    #[test]
    fn spawner_concurrent_starts_keep_their_pipes_ugly() {
        // More concurrent starts than lanes: each child's output reaches
        // its own pipe, and every pipe ends.
        let workers: Vec<_> = (0..LANES * 3)
            .map(|i| {
                std::thread::spawn(move || {
                    for j in 0..10 {
                        let word = format!("{i}-{j}");
                        let cmd = approved("/bin/echo", &[&word]);
                        let spawned = spawn(&cmd, piped_out(), None).unwrap();
                        assert_eq!(output(spawned), format!("{word}\n"));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    }
}
