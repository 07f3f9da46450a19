//! What containment this machine offers: the cgroup2 mount, the host's own
//! cgroup, whether a child cgroup can be made and killed, and which
//! controllers are enabled for the host's subtrees. Read once, by
//! [`Containment::detect`]; the policy asks it when a limit names a
//! controller, the OS layer when it makes cgroups.

use nix::errno::Errno;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The environment variable that turns cgroup containment off when set to
/// `off` (read once, when the first process manager starts).
pub const OFF_VAR: &str = "WASMPROC_CGROUPS";
/// The controllers the host enables for its children, when offered.
const WANTED: &[&str] = &["pids", "memory", "cpu"];

/// The name prefix of every subtree a host creates.
pub(crate) const SUBTREE_PREFIX: &str = "wasmproc-";

/// Which containment is active for the processes the host starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Containment {
    /// A cgroup v2 per guest session and per process, ended with
    /// `cgroup.kill`.
    Cgroup {
        /// The host's own cgroup, under which each manager makes its subtree.
        base: PathBuf,
        /// Controllers enabled for the host's subtrees (of pids, memory, cpu).
        controllers: Vec<String>,
        /// Controllers the host's cgroup offers (`cgroup.controllers`).
        offered: Vec<String>,
    },
    /// Process groups and a subreaper: a child that leaves its group
    /// (`setsid`) is not reached by kills, and no resource limits apply.
    ProcessGroups {
        /// Why cgroups are not used.
        reason: String,
    },
}

impl Containment {
    /// The containment of this host process, detected once.
    pub fn detect() -> &'static Containment {
        static DETECTED: OnceLock<Containment> = OnceLock::new();
        DETECTED.get_or_init(|| {
            let off = std::env::var(OFF_VAR).is_ok_and(|v| v.eq_ignore_ascii_case("off"));
            if off {
                return Self::ProcessGroups {
                    reason: format!("cgroups turned off by {OFF_VAR}=off"),
                };
            }
            detect_cgroup().unwrap_or_else(|why| Self::ProcessGroups {
                reason: why.to_string(),
            })
        })
    }

    /// Whether cgroups are in use.
    pub fn is_cgroup(&self) -> bool {
        matches!(self, Self::Cgroup { .. })
    }

    /// Whether `controller` is enabled for the host's subtrees; the error
    /// says why not.
    pub(crate) fn require(&self, controller: &str) -> Result<(), MissingController> {
        match self {
            Self::Cgroup {
                controllers,
                offered,
                base,
            } => {
                if controllers.iter().any(|c| c == controller) {
                    return Ok(());
                }
                let offered = if offered.is_empty() {
                    "none".to_string()
                } else {
                    offered.join(" ")
                };
                Err(MissingController::NotEnabled {
                    controller: controller.to_string(),
                    base: base.clone(),
                    offered,
                })
            }
            Self::ProcessGroups { reason } => Err(MissingController::NoCgroups {
                controller: controller.to_string(),
                reason: reason.clone(),
            }),
        }
    }

    /// One short line for logs and `/health`.
    pub fn summary(&self) -> String {
        self.to_string()
    }

    /// What would make containment stronger, when it is weaker than cgroups.
    pub fn advice(&self) -> Option<String> {
        match self {
            Self::Cgroup { .. } => None,
            Self::ProcessGroups { reason } => Some(format!(
                "containment is process groups only ({reason}): a child that calls setsid can \
                 outlive its guest; run as root, in a systemd unit with Delegate=yes, or under \
                 `systemd-run --user --scope -p Delegate=yes` for a cgroup per guest"
            )),
        }
    }
}

impl fmt::Display for Containment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cgroup {
                base, controllers, ..
            } => {
                let controllers = if controllers.is_empty() {
                    "none".to_string()
                } else {
                    controllers.join(" ")
                };
                write!(
                    f,
                    "cgroup2 under {} (controllers: {controllers})",
                    base.display()
                )
            }
            Self::ProcessGroups { reason } => {
                write!(f, "process groups and subreaper ({reason})")
            }
        }
    }
}

/// Why the host cannot contain its children in cgroups.
#[derive(Debug, thiserror::Error)]
enum Unavailable {
    #[error("cannot read {file}: {source}")]
    Read {
        file: &'static str,
        source: io::Error,
    },
    #[error("no cgroup2 mount")]
    NoMount,
    #[error("no cgroup2 entry (0::) in /proc/self/cgroup")]
    NoEntry,
    #[error("the host's cgroup {own} is outside the mounted {mount_root}")]
    Outside { own: String, mount_root: String },
    #[error("cannot create a cgroup in {}: {source}", base.display())]
    Create { base: PathBuf, source: io::Error },
    #[error("the kernel has no cgroup.kill (Linux 5.14 or later needed)")]
    NoKill,
}

/// Why a cgroup limit cannot be applied: its controller is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MissingController {
    /// The host's cgroup does not enable it for the host's subtrees.
    #[error(
        "the cgroup v2 `{controller}` controller is not enabled for {} (its cgroup.controllers offers: {offered})",
        base.display()
    )]
    NotEnabled {
        /// The controller (`pids`, `memory`, `cpu`).
        controller: String,
        /// The host's cgroup.
        base: PathBuf,
        /// What its `cgroup.controllers` offers, space-separated.
        offered: String,
    },
    /// Containment is process groups only.
    #[error(
        "cgroup v2 containment is not active ({reason}), so the `{controller}` controller is missing"
    )]
    NoCgroups {
        /// The controller.
        controller: String,
        /// Why cgroups are not used.
        reason: String,
    },
}

/// Finds the cgroup2 mount and the host's cgroup, checks that a child
/// cgroup can be made and killed, and enables the wanted controllers.
fn detect_cgroup() -> Result<Containment, Unavailable> {
    let read = |file: &'static str| {
        fs::read_to_string(file).map_err(|source| Unavailable::Read { file, source })
    };
    let mountinfo = read("/proc/self/mountinfo")?;
    let (mount, mount_root) = cgroup2_mount(&mountinfo).ok_or(Unavailable::NoMount)?;
    let own = read("/proc/self/cgroup")?;
    let own = own_cgroup(&own).ok_or(Unavailable::NoEntry)?;
    let relative = own
        .strip_prefix(&mount_root)
        .ok_or_else(|| Unavailable::Outside {
            own: own.clone(),
            mount_root: mount_root.clone(),
        })?;
    let mut base = mount.join(relative.trim_start_matches('/'));
    let probe = base.join(format!("{SUBTREE_PREFIX}probe-{}", std::process::id()));
    // One there already is a leftover of a host with this pid that died
    // mid-probe: it serves as well.
    match fs::create_dir(&probe) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            return Err(Unavailable::Create {
                base: base.clone(),
                source: e,
            });
        }
        _ => {}
    }
    let has_kill = probe.join("cgroup.kill").exists();
    let _ = fs::remove_dir(&probe);
    if !has_kill {
        return Err(Unavailable::NoKill);
    }
    let offered = words(&base.join("cgroup.controllers"));
    let wanted: Vec<&str> = WANTED
        .iter()
        .copied()
        .filter(|c| offered.iter().any(|o| o == c))
        .collect();
    if !wanted.is_empty()
        && enable(&base, &wanted).is_err_and(|e| e.raw_os_error() == Some(Errno::EBUSY as i32))
        && !relative.trim_matches('/').is_empty()
    {
        // A delegated cgroup that holds the host itself cannot enable
        // controllers for children ("no internal processes"): move the host
        // into a leaf of its own, as systemd asks of delegated services.
        let leaf = base.join(format!("{SUBTREE_PREFIX}host"));
        let moved = fs::create_dir(&leaf)
            .or_else(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(e),
            })
            .and_then(|()| write_file(&leaf.join("cgroup.procs"), "0"));
        if moved.is_ok() {
            let _ = enable(&base, &wanted);
        }
    }
    let enabled = words(&base.join("cgroup.subtree_control"));
    let controllers = WANTED
        .iter()
        .filter(|c| enabled.iter().any(|e| e == *c))
        .map(|c| c.to_string())
        .collect();
    base.shrink_to_fit();
    Ok(Containment::Cgroup {
        base,
        controllers,
        offered,
    })
}

/// The mount point and mounted root of the first cgroup2 mount.
fn cgroup2_mount(mountinfo: &str) -> Option<(PathBuf, String)> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next()? != "cgroup2" {
            return None;
        }
        let fields: Vec<&str> = left.split(' ').collect();
        Some((
            PathBuf::from(unescape(fields.get(4)?)),
            unescape(fields.get(3)?),
        ))
    })
}

/// The cgroup2 path from `/proc/self/cgroup` (the `0::` line).
fn own_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end_matches(" (deleted)").to_string())
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn words(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

pub(crate) fn write_file(path: &Path, value: &str) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(value.as_bytes())
}

/// Enables `controllers` for the children of `dir`.
pub(crate) fn enable(dir: &Path, controllers: &[&str]) -> io::Result<()> {
    if controllers.is_empty() {
        return Ok(());
    }
    let line: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
    write_file(&dir.join("cgroup.subtree_control"), &line.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe cgroup left by a host with this pid that died mid-probe
    /// does not cost this one its containment.
    #[test]
    fn cgroup_probe_leftover_ugly() {
        let Containment::Cgroup { base, .. } = Containment::detect() else {
            panic!("this test needs cgroup v2 containment (root, cgroup2)");
        };
        let probe = base.join(format!("{SUBTREE_PREFIX}probe-{}", std::process::id()));
        fs::create_dir(&probe).unwrap();
        let detected = detect_cgroup();
        let left = probe.exists();
        let _ = fs::remove_dir(&probe);
        assert!(
            matches!(detected, Ok(Containment::Cgroup { .. })),
            "{detected:?}"
        );
        assert!(!left, "the probe is removed");
    }

    #[test]
    fn cgroup_mountinfo_parse_good() {
        let info = "24 29 0:21 / /proc rw - proc proc rw\n\
                    41 31 0:38 / /sys/fs/cgroup/unified\\040dir rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(info),
            Some((PathBuf::from("/sys/fs/cgroup/unified dir"), "/".to_string()))
        );
        assert_eq!(
            own_cgroup("9:name=systemd:/\n0::/system.slice/x.service\n"),
            Some("/system.slice/x.service".into())
        );
    }

    #[test]
    fn cgroup_mountinfo_parse_bad() {
        assert_eq!(
            cgroup2_mount("24 29 0:21 / /proc rw - proc proc rw\n"),
            None
        );
        assert_eq!(own_cgroup("8:pids:/\n"), None);
    }
}
