//! The Landlock ruleset of one grant: built in the host, before any start,
//! with the `landlock` crate (which drops what the kernel's ABI lacks); the
//! child only enforces it.

use super::public::{PUBLIC_ONLY_DIRS, public_paths};
use crate::policy::{Ports, ProgramAccess};
use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, NetPort, PathBeneath, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetError, Scope, path_beneath_rules,
};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// The ABI whose access rights are asked for: the newest this code knows.
/// The crate keeps only what the running kernel has.
const ASKED_ABI: ABI = ABI::V9;

/// System directories every program may read and execute beneath. `/etc`
/// is granted by its public parts only (`public.rs`).
pub(crate) const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/opt",
];

/// Devices every program may read and write.
const DEVICES_RW: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"];
/// Devices every program may read.
const DEVICES_R: &[&str] = &["/dev/urandom", "/dev/random"];

/// Where a confined program may go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Grant {
    /// The program's canonical path: its directory is readable.
    pub program: PathBuf,
    /// Read-and-write directories: the session's roots and its TMPDIR.
    pub writable: Vec<PathBuf>,
    /// What the grant adds.
    pub access: ProgramAccess,
}

/// Builds the ruleset; `None` where the kernel has no Landlock.
pub(crate) fn build(grant: &Grant) -> Result<Option<OwnedFd>, RulesetError> {
    let read = AccessFs::from_read(ASKED_ABI);
    let all = AccessFs::from_all(ASKED_ABI);
    let device = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev;
    let mut net: BitFlags<AccessNet> = BitFlags::EMPTY;
    if grant.access.connect != Ports::Any {
        net |= AccessNet::ConnectTcp;
    }
    if grant.access.bind != Ports::Any {
        net |= AccessNet::BindTcp;
    }
    let mut ruleset = Ruleset::default().handle_access(all)?;
    if !net.is_empty() {
        ruleset = ruleset.handle_access(net)?;
    }
    let ruleset = ruleset.scope(Scope::from_all(ASKED_ABI))?;
    // Its install directory; a program right under `/` gets itself only.
    let program_dir = match grant.program.parent() {
        Some(dir) if dir != Path::new("/") => dir,
        _ => grant.program.as_path(),
    };
    let mut created: RulesetCreated = ruleset
        .create()?
        .add_rules(path_beneath_rules(SYSTEM_DIRS, read))?
        // The public parts of /etc, and the listing of its directories
        // (names, never contents, of what is not public).
        .add_rules(public_paths().iter().map(|p| {
            let access = if p.is_dir {
                read
            } else {
                read & AccessFs::from_file(ASKED_ABI)
            };
            Ok::<_, RulesetError>(PathBeneath::new(&p.fd, access))
        }))?
        .add_rules(path_beneath_rules(PUBLIC_ONLY_DIRS, AccessFs::ReadDir))?
        .add_rules(path_beneath_rules([program_dir], read))?
        // Other processes' entries are shielded by the ptrace restriction
        // of the domain (environ, maps, mem, fds).
        .add_rules(path_beneath_rules(["/proc"], read))?
        .add_rules(path_beneath_rules(DEVICES_RW, device))?
        .add_rules(path_beneath_rules(DEVICES_R, AccessFs::ReadFile))?
        .add_rules(path_beneath_rules(&grant.access.read, read))?
        .add_rules(path_beneath_rules(&grant.access.write, all))?
        .add_rules(path_beneath_rules(&grant.writable, all))?;
    for (ports, access) in [
        (&grant.access.connect, AccessNet::ConnectTcp),
        (&grant.access.bind, AccessNet::BindTcp),
    ] {
        if let Ports::List(list) = ports {
            for port in list {
                created = created.add_rule(NetPort::new(*port, access))?;
            }
        }
    }
    Ok(created.into())
}
