//! What the running kernel can enforce, found once per host process, and
//! the report of what it cannot.

use std::sync::OnceLock;

/// The environment variable that turns confinement off, for tests of the
/// host's report and of `require_confinement` only: `1` makes the host
/// behave as on a kernel without Landlock and seccomp.
pub const OFF_VAR: &str = "WASMPROC_UNCONFINED_FOR_TESTS";

/// What the kernel offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Support {
    /// The Landlock ABI version (0: none).
    pub landlock_abi: i32,
    /// Whether seccomp filters can be installed.
    pub seccomp: bool,
    /// Whether confinement was turned off with [`OFF_VAR`].
    pub switched_off: bool,
}

/// The kernel's support, found at the first call.
pub fn support() -> &'static Support {
    static SUPPORT: OnceLock<Support> = OnceLock::new();
    SUPPORT.get_or_init(|| {
        if std::env::var_os(OFF_VAR).is_some_and(|v| v == "1") {
            return Support {
                landlock_abi: 0,
                seccomp: false,
                switched_off: true,
            };
        }
        Support {
            landlock_abi: landlock_abi(),
            seccomp: seccomp_available(),
            switched_off: false,
        }
    })
}

/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`.
fn landlock_abi() -> i32 {
    // SAFETY: with a null attribute and size 0, the call only returns the
    // ABI version (or fails); it writes nothing.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    i32::try_from(abi).unwrap_or(0).max(0)
}

/// Whether the kernel has seccomp filters (`PR_GET_SECCOMP` succeeds).
fn seccomp_available() -> bool {
    // SAFETY: PR_GET_SECCOMP only reads this thread's seccomp mode.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}

impl Support {
    /// What is not enforced, one phrase per missing rule (empty: all of it).
    pub fn missing(&self) -> Vec<String> {
        if self.switched_off {
            return vec![format!(
                "nothing is confined: turned off by {OFF_VAR}=1 (a switch for tests)"
            )];
        }
        let abi = self.landlock_abi;
        let mut missing = Vec::new();
        if abi < 1 {
            missing.push("filesystem rules and the ptrace restriction (no Landlock)".to_string());
        }
        if abi < 4 {
            missing.push(format!(
                "TCP connect and bind rules (Landlock ABI {abi} < 4)"
            ));
        }
        if abi < 6 {
            missing.push(format!(
                "signal and abstract-unix-socket scopes (Landlock ABI {abi} < 6)"
            ));
        }
        if !self.seccomp {
            missing.push("the socket-family filter (no seccomp)".to_string());
        }
        missing
    }

    /// One line: `confined (Landlock ABI 7, seccomp)` or what is not
    /// enforced.
    pub fn summary(&self) -> String {
        let missing = self.missing();
        if missing.is_empty() {
            format!(
                "confined (Landlock ABI {}, no_new_privs, seccomp socket filter)",
                self.landlock_abi
            )
        } else {
            format!("not enforced: {}", missing.join("; "))
        }
    }

    /// Whether every rule is enforced.
    pub fn is_complete(&self) -> bool {
        self.missing().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confine_support_report_names_what_is_missing_good() {
        let old = Support {
            landlock_abi: 3,
            seccomp: true,
            switched_off: false,
        };
        let summary = old.summary();
        assert!(summary.contains("TCP connect and bind rules"), "{summary}");
        assert!(summary.contains("scopes"), "{summary}");
        assert!(!summary.contains("filesystem"), "{summary}");
        let full = Support {
            landlock_abi: 7,
            seccomp: true,
            switched_off: false,
        };
        assert!(full.is_complete(), "{}", full.summary());
    }
}
