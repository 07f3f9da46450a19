//! Kernel confinement of granted programs: what a started program may
//! touch after `execve`.
//!
//! Every program the host starts for a guest, a daemon or an exec probe
//! runs under:
//! - a Landlock domain (built in `ruleset.rs`): read and execute beneath the
//!   system directories (of `/etc`, only what any user may read:
//!   `public.rs`) and the program's own directory, read `/proc`
//!   (other processes' private entries are shielded by the domain's ptrace
//!   restriction), read and write beneath the session's working-directory
//!   roots and its private `TMPDIR`, a few devices; TCP connect and bind to
//!   the granted ports only; signals and abstract unix sockets only within
//!   the domain;
//! - `no_new_privs`, so setuid and file capabilities grant nothing;
//! - a seccomp filter (`seccomp.rs`) refusing sockets of other families.
//!
//! The host builds each ruleset once per grant and session ([`Confiner`])
//! before any start; the child only calls `prctl`,
//! `landlock_restrict_self` and `seccomp`, all inherited by everything it
//! starts. Where the kernel lacks a part, [`Support::summary`] says which.

mod kernel;
mod public;
mod ruleset;
mod seccomp;
mod tmpdir;

pub use kernel::{OFF_VAR, Support, support};
pub(crate) use seccomp::SockFprog;

use crate::error::CallError;
use crate::manifest::Manifest;
use crate::policy::{Policy, ProgramAccess};
use ruleset::Grant;
use seccomp::SocketFilter;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tmpdir::PrivateTmp;

/// The confinement of one session (a guest's, a daemon's): its writable
/// roots, the grants' additions, its private `TMPDIR` (removed with it),
/// and the rulesets built so far, one per program.
#[derive(Debug, Default)]
pub struct Confiner {
    roots: Vec<PathBuf>,
    access: HashMap<PathBuf, ProgramAccess>,
    require: bool,
    tmp: PrivateTmp,
    prepared: Mutex<HashMap<PathBuf, Arc<Prepared>>>,
}

/// What the child of one start enforces, built before the start.
#[derive(Debug)]
pub(crate) struct Prepared {
    ruleset: Option<OwnedFd>,
    filter: Option<SockFprog>,
    /// The session's private temporary directory (the child's `TMPDIR`).
    pub(crate) tmpdir: Option<PathBuf>,
}

impl Prepared {
    /// The Landlock ruleset fd (-1: none).
    pub(crate) fn ruleset_fd(&self) -> std::ffi::c_int {
        self.ruleset.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// The seccomp program (null: none).
    pub(crate) fn filter(&self) -> *const SockFprog {
        self.filter
            .as_ref()
            .map_or(std::ptr::null(), std::ptr::from_ref)
    }
}

impl Confiner {
    /// The confinement of programs granted by `policy`: its roots are
    /// writable, each program gets its `fs` and `net` additions (narrowed
    /// to what the plugin's `manifest` declares, where it carries one).
    pub fn for_policy(policy: &Policy, manifest: Option<&Manifest>) -> Self {
        let access = policy
            .programs()
            .iter()
            .map(|grant| {
                let mut access = grant.access.clone();
                if let Some(m) = manifest {
                    access = access.intersect(&m.access_for(&grant.name));
                }
                (grant.path.clone(), access)
            })
            .collect();
        Self {
            roots: policy.dir_roots().to_vec(),
            access,
            require: policy.requires_confinement(),
            ..Self::default()
        }
    }

    /// The same, refusing programs the kernel cannot confine fully
    /// (`serve --require-confinement`) when `require` is set.
    pub fn require(mut self, require: bool) -> Self {
        self.require |= require;
        self
    }

    /// What `program` may touch beyond the defaults.
    pub fn access(&self, program: &Path) -> ProgramAccess {
        self.access.get(program).cloned().unwrap_or_default()
    }

    /// The session's private temporary directory, if made yet.
    pub fn tmpdir(&self) -> Option<PathBuf> {
        self.tmp.path()
    }

    /// The confinement of `program`, built at its first start in this
    /// session. Refuses the start if confinement is required and the
    /// kernel cannot give all of it.
    pub(crate) fn prepare(&self, program: &Path) -> Result<Arc<Prepared>, CallError> {
        let support = support();
        if self.require && !support.is_complete() {
            return Err(CallError::Denied(format!(
                "require_confinement is set and the program would run less confined than granted: {}",
                support.summary()
            )));
        }
        let mut prepared = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = prepared.get(program) {
            return Ok(Arc::clone(p));
        }
        let built = Arc::new(self.build(program, support)?);
        prepared.insert(program.to_path_buf(), Arc::clone(&built));
        Ok(built)
    }

    fn build(&self, program: &Path, support: &Support) -> Result<Prepared, CallError> {
        if support.switched_off {
            return Ok(Prepared {
                ruleset: None,
                filter: None,
                tmpdir: None,
            });
        }
        let failed = |what: &str, e: String| {
            CallError::SpawnFailed(format!(
                "cannot prepare the confinement of {}: {what}: {e}",
                program.display()
            ))
        };
        let tmpdir = self
            .tmp
            .get()
            .map_err(|e| failed("private TMPDIR", e.to_string()))?;
        let access = self.access(program);
        let mut writable = self.roots.clone();
        writable.push(tmpdir.clone());
        let tcp = !access.connect.is_none() || !access.bind.is_none();
        let grant = Grant {
            program: program.to_path_buf(),
            writable,
            access,
        };
        let ruleset =
            ruleset::build(&grant).map_err(|e| failed("Landlock ruleset", e.to_string()))?;
        let filter = if support.seccomp {
            Some(
                SocketFilter::get(tcp)
                    .map_err(|e| failed("seccomp", e))?
                    .fprog(),
            )
        } else {
            None
        };
        Ok(Prepared {
            ruleset,
            filter,
            tmpdir: Some(tmpdir),
        })
    }
}
