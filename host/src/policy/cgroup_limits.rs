//! Resource limits for children, applied through cgroup v2 controllers:
//! `pids.max`, `memory.max` and `cpu.max`, per guest session and per
//! process. A limit whose controller is not enabled is refused when the
//! policy loads; it is never silently ignored.

use crate::sys::containment::{Containment, MissingController};
use serde::Deserialize;

/// The `[limits.cgroup]` table of a policy. Every field is optional; an
/// absent field sets no limit.
///
/// ```toml
/// [limits.cgroup]
/// guest_pids_max = 256          # processes and threads of all the guest's children
/// process_memory_max = 268435456
/// process_cpu_max = "50000 100000"   # 50 ms of CPU per 100 ms period
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CgroupLimits {
    /// `pids.max` of the guest session's cgroup.
    pub guest_pids_max: Option<u64>,
    /// `memory.max` of the guest session's cgroup, in bytes.
    pub guest_memory_max: Option<u64>,
    /// `cpu.max` of the guest session's cgroup: `"<quota µs|max> <period µs>"`.
    pub guest_cpu_max: Option<String>,
    /// `pids.max` of each process's cgroup.
    pub process_pids_max: Option<u64>,
    /// `memory.max` of each process's cgroup, in bytes.
    pub process_memory_max: Option<u64>,
    /// `cpu.max` of each process's cgroup: `"<quota µs|max> <period µs>"`.
    pub process_cpu_max: Option<String>,
}

/// Which cgroup a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// The guest session's (or daemon's) cgroup.
    Guest,
    /// Each process's cgroup.
    Process,
}

/// Tasks (processes and threads: `pids.max` counts both) a guest session's
/// cgroup may hold by default, per descendant its `max_descendants` allows.
pub(crate) const DEFAULT_TASKS_PER_DESCENDANT: u64 = 8;

impl CgroupLimits {
    /// These limits, with the guest session's `pids.max` defaulted from
    /// `max_descendants` where the policy sets none and the `pids`
    /// controller is there: the kernel then stops a fork loop at once,
    /// before any census of the host could.
    pub(crate) fn with_default_pids(&self, max_descendants: u32, pids_controller: bool) -> Self {
        let mut limits = self.clone();
        if pids_controller && limits.guest_pids_max.is_none() {
            limits.guest_pids_max =
                Some((u64::from(max_descendants) + 1) * DEFAULT_TASKS_PER_DESCENDANT);
        }
        limits
    }

    /// Whether any limit is set.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// `(field, controller, file, value)` for every limit that is set.
    fn entries(&self) -> Vec<(&'static str, &'static str, Level, String)> {
        let mut out = Vec::new();
        let mut push = |field, controller, level, value: Option<String>| {
            if let Some(v) = value {
                out.push((field, controller, level, v));
            }
        };
        let g = Level::Guest;
        let p = Level::Process;
        let n = |v: Option<u64>| v.map(|v| v.to_string());
        push("guest_pids_max", "pids", g, n(self.guest_pids_max));
        push("guest_memory_max", "memory", g, n(self.guest_memory_max));
        push("guest_cpu_max", "cpu", g, self.guest_cpu_max.clone());
        push("process_pids_max", "pids", p, n(self.process_pids_max));
        push(
            "process_memory_max",
            "memory",
            p,
            n(self.process_memory_max),
        );
        push("process_cpu_max", "cpu", p, self.process_cpu_max.clone());
        out
    }

    /// The interface files to write into a cgroup of `level`.
    pub(crate) fn files(&self, level: Level) -> Vec<(&'static str, String)> {
        self.entries()
            .into_iter()
            .filter(|e| e.2 == level)
            .map(|(_, controller, _, value)| {
                let file = match controller {
                    "pids" => "pids.max",
                    "memory" => "memory.max",
                    _ => "cpu.max",
                };
                (file, value)
            })
            .collect()
    }

    /// Checks each limit's value, then that its controller is enabled on
    /// this host; the error names the field and says why.
    pub fn validate(&self) -> Result<(), InvalidCgroupLimit> {
        for (field, controller, _, value) in self.entries() {
            check_limit(field, controller, &value)?;
        }
        Ok(())
    }
}

/// Checks one limit, called `field` where it is written, for `controller`
/// (`pids`, `memory` or `cpu`): its value, then that the controller is
/// enabled on this host.
pub fn check_limit(
    field: &'static str,
    controller: &'static str,
    value: &str,
) -> Result<(), InvalidCgroupLimit> {
    check_value(controller, value).map_err(|problem| InvalidCgroupLimit::Value {
        field,
        value: value.to_string(),
        problem,
    })?;
    Containment::detect()
        .require(controller)
        .map_err(|missing| InvalidCgroupLimit::Unavailable { field, missing })
}

/// A cgroup limit that cannot be set: a malformed value, or a controller
/// this host does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCgroupLimit {
    /// The value breaks the controller's syntax.
    #[error("`cgroup.{field} = {value:?}`: {problem}")]
    Value {
        /// The policy field.
        field: &'static str,
        /// The value as written into the cgroup file.
        value: String,
        /// The rule it breaks.
        #[source]
        problem: BadValue,
    },
    /// The controller is not enabled for the host's cgroups.
    #[error("`cgroup.{field}` cannot be applied: {missing}")]
    Unavailable {
        /// The policy field.
        field: &'static str,
        /// Why the controller is missing.
        #[source]
        missing: MissingController,
    },
}

/// The rule a cgroup limit's value breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadValue {
    /// A count or size of 0.
    #[error("must be greater than 0")]
    Zero,
    /// Not a whole number.
    #[error("must be a number")]
    NotNumber,
    /// `cpu.max` is not two space-separated fields.
    #[error("must be \"<quota µs|max> <period µs>\"")]
    CpuShape,
    /// The `cpu.max` period is not a number.
    #[error("the period must be a number of µs")]
    PeriodNotNumber,
    /// The `cpu.max` period is outside what the kernel accepts.
    #[error("the period must be between 1000 and 1000000 µs")]
    PeriodRange,
    /// The `cpu.max` quota is neither `max` nor a number.
    #[error("the quota must be `max` or a number of µs")]
    QuotaNotNumber,
    /// The `cpu.max` quota is below what the kernel accepts.
    #[error("the quota must be at least 1000 µs")]
    QuotaTooSmall,
}

fn check_value(controller: &str, value: &str) -> Result<(), BadValue> {
    if controller != "cpu" {
        return match value.parse::<u64>() {
            Ok(0) => Err(BadValue::Zero),
            Ok(_) => Ok(()),
            Err(_) => Err(BadValue::NotNumber),
        };
    }
    let mut parts = value.split(' ');
    let (Some(quota), Some(period), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(BadValue::CpuShape);
    };
    let period: u64 = period.parse().map_err(|_| BadValue::PeriodNotNumber)?;
    if !(1_000..=1_000_000).contains(&period) {
        return Err(BadValue::PeriodRange);
    }
    if quota != "max" {
        let quota: u64 = quota.parse().map_err(|_| BadValue::QuotaNotNumber)?;
        if quota < 1_000 {
            return Err(BadValue::QuotaTooSmall);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_default_guest_pids_good() {
        let none = CgroupLimits::default();
        let with = none.with_default_pids(512, true);
        assert_eq!(
            with.guest_pids_max,
            Some(513 * DEFAULT_TASKS_PER_DESCENDANT)
        );
        assert_eq!(
            with.files(Level::Guest),
            vec![("pids.max", (513 * DEFAULT_TASKS_PER_DESCENDANT).to_string())]
        );
        // The policy's own value stands; no controller, no default.
        let own = CgroupLimits {
            guest_pids_max: Some(64),
            ..CgroupLimits::default()
        };
        assert_eq!(own.with_default_pids(512, true).guest_pids_max, Some(64));
        assert_eq!(none.with_default_pids(512, false), none);
    }

    #[test]
    fn cgroup_limit_values_bad() {
        // Each malformed value is refused with the rule it breaks.
        for (controller, value, says) in [
            ("pids", "0", "greater than 0"),
            ("memory", "1G", "a number"),
            ("cpu", "50000", "<quota"),
            ("cpu", "50000 100", "period must be between"),
            ("cpu", "10 100000", "at least 1000"),
            ("cpu", "half 100000", "`max` or a number"),
        ] {
            let err = check_value(controller, value).unwrap_err().to_string();
            assert!(err.contains(says), "{controller} {value}: {err}");
        }
        assert!(check_value("cpu", "max 100000").is_ok());
        assert!(check_value("pids", "64").is_ok());
    }

    #[test]
    fn cgroup_limit_files_good() {
        let limits = CgroupLimits {
            guest_pids_max: Some(64),
            process_memory_max: Some(1 << 20),
            process_cpu_max: Some("50000 100000".into()),
            ..CgroupLimits::default()
        };
        assert_eq!(limits.files(Level::Guest), vec![("pids.max", "64".into())]);
        assert_eq!(
            limits.files(Level::Process),
            vec![
                ("memory.max", "1048576".into()),
                ("cpu.max", "50000 100000".into())
            ]
        );
    }
}
