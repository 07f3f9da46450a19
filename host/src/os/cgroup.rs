//! Containment with cgroup v2: one cgroup per guest session (and per
//! daemon), one child cgroup per managed process, `cgroup.kill` to end a
//! whole tree, escapees included.
//!
//! The cgroup2 mount and the host's own cgroup are read from
//! `/proc/self/mountinfo` and `/proc/self/cgroup`; no path is assumed. Each
//! [`ProcessManager`](crate::ProcessManager) owns one subtree under the
//! host's cgroup:
//!
//! ```text
//! <host cgroup>/wasmproc-<host pid>-<n>/   one per manager; the watchdog kills it
//!     <scope>/                             one per guest session or daemon
//!         p-<n>/                           one per managed process
//! ```
//!
//! A process cgroup whose process has ended, empty and with no cgroups
//! below it, goes back to its scope for the next process (at most
//! [`IDLE_MAX`] per scope): making and removing a cgroup costs more than
//! the rest of a short run's containment together. Its limits are written
//! again when it is taken, and its CPU time is counted from what it had
//! counted before (`cpu.stat`). Where the memory controller is enabled,
//! cgroups are not reused: `memory.peak` can be reset only through a file
//! held open for the process's whole life, one more fd per live process.
//!
//! Where no cgroup can be created (no cgroup2 mount, no permission, or the
//! setting [`OFF_VAR`]`=off`), containment falls back to process groups and
//! a subreaper; [`Containment::detect`] says which is active and why.

use crate::os::confine::Confiner;
use crate::policy::cgroup_limits::{CgroupLimits, Level};
pub use crate::sys::containment::{Containment, MissingController, OFF_VAR};
use crate::sys::containment::{SUBTREE_PREFIX, enable, write_file};
use nix::errno::Errno;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// How long removal waits for killed processes to leave a cgroup.
const REMOVE_WAIT: Duration = Duration::from_secs(5);
/// The most empty process cgroups a scope keeps for reuse.
pub(crate) const IDLE_MAX: usize = 4;

/// Why a cgroup of a guest session or a process could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CgroupError {
    /// The session's (or daemon's) cgroup.
    #[error("cannot create the guest's cgroup: {0}")]
    Scope(#[source] Arc<io::Error>),
    /// The process's own cgroup.
    #[error("cannot create the process's cgroup: {0}")]
    Process(#[source] Arc<io::Error>),
}

/// Kills every process in `dir` and below, then removes the cgroups,
/// deepest first, waiting for the killed processes to leave.
pub(crate) fn kill_and_remove(dir: &Path) {
    match write_file(&dir.join("cgroup.kill"), "1") {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => tracing::warn!(cgroup = %dir.display(), error = %e, "cgroup.kill failed"),
        Ok(()) => {}
    }
    remove_tree(dir, Instant::now() + REMOVE_WAIT);
}

/// [`kill_and_remove`] without waiting: the kill and one attempt at the
/// removal now, the rest (processes still leaving) on a thread of its own.
pub(crate) fn kill_and_remove_soon(dir: PathBuf) {
    match write_file(&dir.join("cgroup.kill"), "1") {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => tracing::warn!(cgroup = %dir.display(), error = %e, "cgroup.kill failed"),
        Ok(()) => {}
    }
    // An empty scope (its processes stopped first) goes at once.
    if remove_tree_by(&dir, Instant::now()).is_ok() {
        return;
    }
    let removal = std::thread::Builder::new()
        .name("wasmproc-cgroup-removal".into())
        .spawn(move || remove_tree(&dir, Instant::now() + REMOVE_WAIT));
    if let Err(e) = removal {
        tracing::warn!(error = %e, "cannot remove a cgroup");
    }
}

fn remove_tree(dir: &Path, deadline: Instant) {
    if let Err(e) = remove_tree_by(dir, deadline) {
        tracing::warn!(cgroup = %dir.display(), error = %e, "cannot remove cgroup");
    }
}

/// Removes `dir` and the cgroups below it, deepest first, retrying while
/// they are busy (killed processes still leaving) until `deadline`.
fn remove_tree_by(dir: &Path, deadline: Instant) -> io::Result<()> {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree_by(&entry.path(), deadline)?;
            }
        }
    }
    let mut pause = Duration::from_micros(200);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(Errno::EBUSY as i32) && Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Makes `dir` with `limits` written into it; the error names the file.
fn make(dir: &Path, controllers: &[String], limits: &[(&str, String)]) -> io::Result<()> {
    fs::create_dir(dir)?;
    let wanted: Vec<&str> = controllers.iter().map(String::as_str).collect();
    let result = enable(dir, &wanted).and_then(|()| {
        limits.iter().try_for_each(|(file, value)| {
            write_file(&dir.join(file), value)
                .map_err(|e| io::Error::new(e.kind(), format!("{file} = {value}: {e}")))
        })
    });
    if result.is_err() {
        let _ = fs::remove_dir(dir);
    }
    result
}

/// The cgroup subtree of one process manager. Without cgroups it is empty
/// and every scope it hands out is too.
#[derive(Debug)]
pub(crate) struct Hierarchy {
    root: Option<PathBuf>,
    controllers: Vec<String>,
    next: AtomicU64,
}

impl Hierarchy {
    /// Creates this manager's subtree, if the host has cgroups.
    pub(crate) fn new() -> Self {
        let none = Self {
            root: None,
            controllers: Vec::new(),
            next: AtomicU64::new(0),
        };
        let Containment::Cgroup {
            base, controllers, ..
        } = Containment::detect()
        else {
            return none;
        };
        static MANAGERS: AtomicU64 = AtomicU64::new(0);
        static SWEPT: std::sync::Once = std::sync::Once::new();
        // Before this process's first root exists: see `sweep_leftovers`.
        SWEPT.call_once(|| sweep_leftovers(base));
        match make_root(base, controllers, &MANAGERS) {
            Ok(root) => Self {
                root: Some(root),
                controllers: controllers.clone(),
                next: AtomicU64::new(0),
            },
            Err((root, e)) => {
                tracing::warn!(cgroup = %root.display(), error = %e, "cannot create the host's cgroup: children are contained by process groups only");
                none
            }
        }
    }

    /// The subtree's root, for the watchdog.
    pub(crate) fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// A scope (one guest session or daemon) with its limits; its cgroup is
    /// created when the first process starts in it.
    pub(crate) fn scope(self: &Arc<Self>, kind: &str, limits: &CgroupLimits) -> Scope {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Scope {
            hierarchy: Arc::clone(self),
            name: format!("{kind}-{n}"),
            limits: limits.clone(),
            dir: OnceLock::new(),
            next: AtomicU64::new(0),
            confiner: Arc::default(),
            idle: Arc::default(),
        }
    }

    /// Kills everything in the subtree at once, waiting for nothing.
    pub(crate) fn kill(&self) {
        if let Some(root) = &self.root {
            let _ = write_file(&root.join("cgroup.kill"), "1");
        }
    }

    /// Kills everything in the subtree and removes it: at once where
    /// nothing is left in it, else on a thread of its own once the killed
    /// processes have left.
    pub(crate) fn remove_soon(&self) {
        if let Some(root) = &self.root {
            kill_and_remove_soon(root.clone());
        }
    }
}

/// How many names [`make_root`] tries before it gives up.
const ROOT_ATTEMPTS: usize = 8;

/// Makes a manager's root, `wasmproc-<host pid>-<n>` under `base` with the
/// next `n` of `counter`, with `controllers` enabled below it; on failure,
/// the path it last tried.
///
/// This host never uses an `n` twice, so a name that is taken already is a
/// leftover: of an earlier host that had this pid and died before its
/// subtree was removed (SIGKILL, with its watchdog killed too). The first
/// manager of the process removes such leftovers ([`sweep_leftovers`]);
/// one still there (a process still in it) is passed over for the next `n`.
fn make_root(
    base: &Path,
    controllers: &[String],
    counter: &AtomicU64,
) -> Result<PathBuf, (PathBuf, io::Error)> {
    let mut attempt = 1;
    loop {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let root = base.join(format!("{SUBTREE_PREFIX}{}-{n}", std::process::id()));
        match make(&root, controllers, &[]) {
            Ok(()) => return Ok(root),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < ROOT_ATTEMPTS => {
                tracing::debug!(cgroup = %root.display(), "a leftover cgroup has this name: the next is tried");
                attempt += 1;
            }
            Err(e) => return Err((root, e)),
        }
    }
}

/// Removes the empty leftovers of hosts that are gone from `base`: the
/// subtrees named `wasmproc-<pid>-<n>` whose pid is this process's (none
/// of its managers exists yet when this runs) or no process's. Nothing is
/// killed: a cgroup that still holds a process is left where it is (its
/// removal fails, EBUSY), as is everything below it.
fn sweep_leftovers(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    let own = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(leftover_pid) else {
            continue;
        };
        let gone = pid == own || crate::sys::process::pid_gone(pid);
        if gone && let Err(e) = remove_tree_by(&entry.path(), Instant::now()) {
            tracing::debug!(cgroup = %entry.path().display(), error = %e, "a leftover cgroup is not empty: left in place");
        }
    }
}

/// The host pid in a manager root's name (`wasmproc-<pid>-<n>`), if `name`
/// is one.
fn leftover_pid(name: &str) -> Option<u32> {
    let (pid, n) = name.strip_prefix(SUBTREE_PREFIX)?.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse::<u32>()
        .ok()
        .filter(|&pid| pid > 0 && i32::try_from(pid).is_ok())
}

/// One guest session's (or daemon's) cgroup and confinement. Dropping it
/// kills whatever is still in it and removes it, then the session's
/// private `TMPDIR`.
#[derive(Debug)]
pub struct Scope {
    hierarchy: Arc<Hierarchy>,
    name: String,
    limits: CgroupLimits,
    dir: OnceLock<Result<PathBuf, CgroupError>>,
    next: AtomicU64,
    confiner: Arc<Confiner>,
    idle: Arc<Idle>,
}

/// A scope's empty process cgroups, each with the CPU time it had counted
/// when it went idle.
#[derive(Debug, Default)]
struct Idle(Mutex<Vec<(PathBuf, u64)>>);

impl Idle {
    fn take(&self) -> Option<(PathBuf, u64)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Keeps `dir` unless enough are kept already; `false` if not kept.
    fn keep(&self, dir: PathBuf, cpu_us: u64) -> bool {
        let mut idle = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= IDLE_MAX {
            return false;
        }
        idle.push((dir, cpu_us));
        true
    }
}

impl Scope {
    /// Confines this scope's programs by `confiner` (the default: the
    /// default rules, with no working-directory roots).
    pub fn set_confiner(&mut self, confiner: Confiner) {
        self.confiner = Arc::new(confiner);
    }

    /// The confinement of this scope's programs.
    pub fn confiner(&self) -> &Arc<Confiner> {
        &self.confiner
    }

    fn dir(&self) -> Result<Option<&Path>, CgroupError> {
        let Some(root) = &self.hierarchy.root else {
            return Ok(None);
        };
        let made = self.dir.get_or_init(|| {
            let dir = root.join(&self.name);
            match make(
                &dir,
                &self.hierarchy.controllers,
                &self.limits.files(Level::Guest),
            ) {
                // The subtree's root was removed from outside (or by a
                // sweep that raced its making): both are made again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => self.remake(&dir),
                made => made,
            }
            .map(|()| dir)
            .map_err(|e| CgroupError::Scope(Arc::new(e)))
        });
        made.as_ref()
            .map(|d| Some(d.as_path()))
            .map_err(Clone::clone)
    }

    /// A per-process cgroup in this scope, empty and with the scope's
    /// process limits: an idle one if there is one, else a new one (none
    /// without cgroups).
    pub(crate) fn process(&self) -> Result<Option<ProcessCgroup>, CgroupError> {
        let Some(scope) = self.dir()? else {
            return Ok(None);
        };
        let limits = self.limits.files(Level::Process);
        let reusable = !self.hierarchy.controllers.iter().any(|c| c == "memory");
        while let Some((dir, cpu_before)) = self.idle.take() {
            match ProcessCgroup::reuse(&dir, &limits) {
                Ok(opened) => {
                    return Ok(Some(ProcessCgroup {
                        dir,
                        cpu_before,
                        memory: false,
                        opened: Mutex::new(Some(opened)),
                        ended: Default::default(),
                        idle: Arc::downgrade(&self.idle),
                    }));
                }
                Err(e) => {
                    tracing::debug!(cgroup = %dir.display(), error = %e, "idle cgroup not reused");
                    kill_and_remove(&dir);
                }
            }
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = scope.join(format!("p-{n}"));
        match make(&dir, &[], &limits) {
            // The scope's cgroup (or the whole subtree) was removed from
            // outside: it is made again, with its limits, before the
            // process's own.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.remake(scope).and_then(|()| make(&dir, &[], &limits))
            }
            made => made,
        }
        .map_err(|e| CgroupError::Process(Arc::new(e)))?;
        Ok(Some(ProcessCgroup {
            dir,
            cpu_before: 0,
            memory: !reusable,
            opened: Mutex::new(None),
            ended: Default::default(),
            idle: if reusable {
                Arc::downgrade(&self.idle)
            } else {
                Weak::new()
            },
        }))
    }

    /// Makes the subtree's root and this scope's cgroup again where they
    /// are missing.
    fn remake(&self, scope: &Path) -> io::Result<()> {
        let again = |dir: &Path, limits: &[(&str, String)]| match make(
            dir,
            &self.hierarchy.controllers,
            limits,
        ) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            made => made,
        };
        if let Some(root) = &self.hierarchy.root {
            again(root, &[])?;
        }
        tracing::warn!(cgroup = %scope.display(), "a guest's cgroup was removed from outside: made again");
        again(scope, &self.limits.files(Level::Guest))
    }
}

impl Drop for Scope {
    /// Kills what is left in the scope at once (`cgroup.kill`) and removes
    /// its cgroups without waiting: what the killed processes still hold is
    /// removed on a thread of its own once they have left.
    fn drop(&mut self) {
        if let Some(Ok(dir)) = self.dir.get() {
            kill_and_remove_soon(dir.clone());
        }
    }
}

/// Resource use of one process tree, read from its cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Highest memory use seen (`memory.peak`), if the memory controller is
    /// enabled.
    pub memory_peak_bytes: Option<u64>,
    /// CPU time used, user and system (`cpu.stat` `usage_usec`).
    pub cpu_time_us: Option<u64>,
}

/// The cgroup of one managed process (leaf of its scope).
#[derive(Debug)]
pub(crate) struct ProcessCgroup {
    dir: PathBuf,
    /// CPU time the cgroup had counted before this process (reused).
    cpu_before: u64,
    /// Whether the memory controller is enabled (`memory.peak` exists).
    memory: bool,
    /// Its directory, opened when an idle cgroup was found still there,
    /// until the start takes it.
    opened: Mutex<Option<OwnedFd>>,
    /// What the end of its process found (see [`Ended`]).
    ended: Mutex<Ended>,
    /// Where it goes back when its process has ended and it is empty
    /// (dangling where it must not be reused).
    idle: Weak<Idle>,
}

/// What the end of a cgroup's process found: read once each, then used
/// by the kill, the usage and the removal alike.
#[derive(Debug, Default)]
struct Ended {
    /// `cgroup.kill` was written: such a cgroup is never reused (a process
    /// killed with it may still be on its way out).
    killed: bool,
    /// `cgroup.events` said empty, with the leader exited: nothing can
    /// come back in but through a write to `cgroup.procs`, which only an
    /// unconfined process of the host's user can make.
    empty: bool,
    /// `cpu.stat`'s `usage_usec`, read once it was empty: the final count.
    final_cpu_us: Option<u64>,
}

/// The value of `key` in the flat-keyed cgroup file `file` of `dir`
/// (`key value` lines).
fn flat_key(dir: &Path, file: &str, key: &str) -> Option<u64> {
    fs::read_to_string(dir.join(file)).ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Whether a process lives in `dir` or below (`populated 1` in
/// `cgroup.events`); unreadable (removed) counts as populated.
fn populated(dir: &Path) -> bool {
    flat_key(dir, "cgroup.events", "populated") != Some(0)
}

impl ProcessCgroup {
    /// Its directory.
    #[cfg(test)]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its directory, opened for `clone3`'s `CLONE_INTO_CGROUP`, which
    /// starts a child inside it (opened already for a reused one).
    pub(crate) fn open_dir(&self) -> io::Result<OwnedFd> {
        if let Some(fd) = self.opened.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Ok(fd);
        }
        open_dir(&self.dir)
    }

    /// Moves a freshly spawned child in, and then whatever it has forked
    /// already (those children are still its children: an orphan would
    /// have come back to the host, a subreaper).
    pub(crate) fn adopt(&self, pid: u32) -> io::Result<()> {
        let started = Instant::now();
        let procs = self.dir.join("cgroup.procs");
        match write_file(&procs, &pid.to_string()) {
            // It already exited (a zombie): nothing left to move.
            Err(e) if e.raw_os_error() == Some(Errno::ESRCH as i32) => return Ok(()),
            other => other?,
        }
        let mut pending = vec![pid];
        while let Some(parent) = pending.pop() {
            for child in children_of(parent) {
                if write_file(&procs, &child.to_string()).is_ok() {
                    pending.push(child);
                }
            }
        }
        tracing::trace!(
            window_us = started.elapsed().as_micros() as u64,
            pid,
            "child moved into its cgroup"
        );
        Ok(())
    }

    fn ended(&self) -> std::sync::MutexGuard<'_, Ended> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// SIGKILLs every process in the cgroup (a read of `cgroup.events`
    /// first: an empty cgroup, the common case, costs no kill). Empty, its
    /// leader has exited (the leader starts inside), and it stays empty:
    /// later kills, the usage and the removal read nothing more.
    pub(crate) fn kill(&self) -> io::Result<()> {
        let mut ended = self.ended();
        if ended.empty {
            return Ok(());
        }
        if !populated(&self.dir) {
            ended.empty = true;
            return Ok(());
        }
        ended.killed = true;
        write_file(&self.dir.join("cgroup.kill"), "1")
    }

    /// Makes the idle cgroup `dir` ready for a new process: still there
    /// (it may have been removed from outside meanwhile; its directory is
    /// opened for the start) and its process limits written again (a
    /// process may have changed them). It was empty, with no cgroup below,
    /// when it went idle.
    fn reuse(dir: &Path, limits: &[(&str, String)]) -> io::Result<OwnedFd> {
        let opened = open_dir(dir)?;
        for (file, value) in limits {
            write_file(&dir.join(file), value)?;
        }
        Ok(opened)
    }

    /// Memory peak and CPU time of this process's tree so far (after an
    /// empty [`kill`](Self::kill) of an exited leader: in the end).
    pub(crate) fn usage(&self) -> Usage {
        let peak = if self.memory {
            fs::read_to_string(self.dir.join("memory.peak"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
        } else {
            None
        };
        let mut ended = self.ended();
        let cpu = match ended.final_cpu_us {
            Some(us) => Some(us),
            None => {
                let us = flat_key(&self.dir, "cpu.stat", "usage_usec");
                if ended.empty {
                    ended.final_cpu_us = us;
                }
                us
            }
        };
        Usage {
            memory_peak_bytes: peak,
            cpu_time_us: cpu.map(|us| us.saturating_sub(self.cpu_before)),
        }
    }

    /// Done with it: an empty cgroup with no cgroups below it, never killed
    /// through `cgroup.kill`, goes back to its scope for reuse; any other is
    /// killed and removed.
    pub(crate) fn remove(self) {
        let (killed, empty, final_cpu) = {
            let ended = self.ended();
            (ended.killed, ended.empty, ended.final_cpu_us)
        };
        if !empty && populated(&self.dir) {
            kill_and_remove(&self.dir);
            return;
        }
        if let Some(idle) = self.idle.upgrade()
            && !killed
            && flat_key(&self.dir, "cgroup.stat", "nr_descendants") == Some(0)
            && let Some(cpu_us) =
                final_cpu.or_else(|| flat_key(&self.dir, "cpu.stat", "usage_usec"))
            && idle.keep(self.dir.clone(), cpu_us)
        {
            return;
        }
        remove_tree(&self.dir, Instant::now() + REMOVE_WAIT);
    }
}

/// `dir` opened as a directory (never through a symbolic link).
fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)
        .map(Into::into)
}

/// The children of `pid`, from every thread's `children` file.
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// A scope in a subtree of its own, for the OS layer's tests: both are
/// removed when it drops.
#[cfg(test)]
pub(crate) struct TestScope {
    scope: Option<Scope>,
    hierarchy: Arc<Hierarchy>,
}

#[cfg(test)]
pub(crate) fn test_scope() -> TestScope {
    let hierarchy = Arc::new(Hierarchy::new());
    TestScope {
        scope: Some(hierarchy.scope("test", &CgroupLimits::default())),
        hierarchy,
    }
}

#[cfg(test)]
impl std::ops::Deref for TestScope {
    type Target = Scope;
    fn deref(&self) -> &Scope {
        self.scope.as_ref().expect("held until dropped")
    }
}

#[cfg(test)]
impl Drop for TestScope {
    fn drop(&mut self) {
        self.scope.take();
        if let Some(root) = self.hierarchy.root() {
            kill_and_remove(root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup of this test's own under the host's, to stand for `base`;
    /// removed with everything below it when dropped.
    struct TestBase(PathBuf);

    impl TestBase {
        fn new(name: &str) -> Self {
            let Containment::Cgroup { base, .. } = Containment::detect() else {
                panic!("this test needs cgroup v2 containment (root, cgroup2)");
            };
            let dir = base.join(format!(
                "{SUBTREE_PREFIX}test-{name}-{}",
                std::process::id()
            ));
            fs::create_dir(&dir).unwrap();
            Self(dir)
        }

        /// Makes `path` (and its parents) below the base.
        fn make(&self, path: &str) -> PathBuf {
            let dir = self.0.join(path);
            fs::create_dir_all(&dir).unwrap();
            dir
        }
    }

    impl Drop for TestBase {
        fn drop(&mut self) {
            kill_and_remove(&self.0);
        }
    }

    #[test]
    fn cgroup_root_names_parsed_good() {
        assert_eq!(leftover_pid("wasmproc-123-0"), Some(123));
        assert_eq!(leftover_pid("wasmproc-123-17"), Some(123));
        assert_eq!(leftover_pid("wasmproc-host"), None);
        assert_eq!(leftover_pid("wasmproc-probe-123"), None);
        assert_eq!(leftover_pid("wasmproc-test-sweep-123"), None);
        assert_eq!(leftover_pid("wasmproc-0-1"), None);
        assert_eq!(leftover_pid("wasmproc-2147483648-1"), None, "not a pid");
        assert_eq!(leftover_pid("wasmproc-123-"), None);
        assert_eq!(leftover_pid("other-123-0"), None);
    }

    /// A host that died without removing its subtree (SIGKILL, its watchdog
    /// killed too) leaves it behind: the next host removes it where no
    /// process is in it, and touches nothing of a host still running.
    #[test]
    fn cgroup_leftovers_of_gone_hosts_swept_good() {
        let base = TestBase::new("sweep");
        // A pid no process has, from the highest the kernel hands out down.
        let pid_max: u32 = fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gone = (2..pid_max)
            .rev()
            .find(|&pid| crate::sys::process::pid_gone(pid))
            .expect("a free pid");
        let leftover = base.0.join(format!("{SUBTREE_PREFIX}{gone}-3"));
        base.make(&format!("{SUBTREE_PREFIX}{gone}-3/guest-0/p-1"));
        let own = base
            .0
            .join(format!("{SUBTREE_PREFIX}{}-0", std::process::id()));
        base.make(&format!("{SUBTREE_PREFIX}{}-0/guest-0", std::process::id()));
        let running = base.make(&format!("{SUBTREE_PREFIX}1-0/guest-0"));
        let unrelated = base.make("somebody-else");
        sweep_leftovers(&base.0);
        assert!(!leftover.exists(), "a gone host's subtree is removed");
        assert!(!own.exists(), "an earlier host with this pid is gone too");
        assert!(
            running.is_dir(),
            "the subtree of a running host (pid 1) is kept"
        );
        assert!(
            unrelated.is_dir(),
            "cgroups not named as a host's root are kept"
        );
    }

    /// A leftover with the very name a new root would take does not cost
    /// the host its cgroups: the next name is taken.
    #[test]
    fn cgroup_root_name_taken_next_used_good() {
        let base = TestBase::new("taken");
        let own = std::process::id();
        for n in 0..3 {
            base.make(&format!("{SUBTREE_PREFIX}{own}-{n}"));
        }
        let counter = AtomicU64::new(0);
        let root = make_root(&base.0, &[], &counter).unwrap();
        assert_eq!(root, base.0.join(format!("{SUBTREE_PREFIX}{own}-3")));
        assert!(root.join("cgroup.kill").exists(), "a cgroup was made");

        for n in 4..4 + ROOT_ATTEMPTS as u64 {
            base.make(&format!("{SUBTREE_PREFIX}{own}-{n}"));
        }
        let (tried, e) = make_root(&base.0, &[], &counter).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            tried,
            base.0
                .join(format!("{SUBTREE_PREFIX}{own}-{}", 3 + ROOT_ATTEMPTS))
        );
    }

    fn process_cgroup(scope: &Scope) -> ProcessCgroup {
        scope
            .process()
            .unwrap()
            .expect("this test needs cgroup v2 containment (root, cgroup2)")
    }

    #[test]
    fn cgroup_idle_reused_good() {
        let scope = test_scope();
        let first = process_cgroup(&scope);
        let dir = first.dir().to_path_buf();
        first.remove();
        assert!(dir.is_dir(), "an empty cgroup is kept for reuse");
        let second = process_cgroup(&scope);
        assert_eq!(second.dir(), dir, "the idle cgroup is taken again");
        let third = process_cgroup(&scope);
        assert_ne!(third.dir(), dir, "one cgroup serves one process at a time");
        second.remove();
        third.remove();
    }

    #[test]
    fn cgroup_root_removed_before_first_scope_ugly() {
        // The manager's root, removed from outside before a scope made its
        // cgroup: the scope's first process still gets one, in a root made
        // again.
        let scope = test_scope();
        let root = scope.hierarchy.root().unwrap().to_path_buf();
        fs::remove_dir(&root).expect("an empty root is removed");
        let process = process_cgroup(&scope);
        assert!(process.dir().starts_with(&root), "{:?}", process.dir());
        assert!(process.dir().join("cgroup.procs").exists());
        process.remove();
    }

    #[test]
    fn cgroup_idle_removed_from_outside_not_reused_bad() {
        let scope = test_scope();
        let first = process_cgroup(&scope);
        let dir = first.dir().to_path_buf();
        first.remove();
        fs::remove_dir(&dir).expect("an idle cgroup is empty, so it can be removed");
        let second = process_cgroup(&scope);
        assert_ne!(second.dir(), dir, "a removed cgroup is never handed on");
        assert!(second.dir().is_dir());
        second.remove();
    }

    #[test]
    fn cgroup_with_cgroups_below_not_reused_ugly() {
        // A process that made a cgroup below its own (root can) leaves
        // something behind: its cgroup is removed, never handed on.
        let scope = test_scope();
        let first = process_cgroup(&scope);
        let dir = first.dir().to_path_buf();
        fs::create_dir(dir.join("left-behind")).unwrap();
        first.remove();
        assert!(!dir.exists(), "removed with what was below it");
        let second = process_cgroup(&scope);
        assert_ne!(second.dir(), dir);
        second.remove();
    }
}
