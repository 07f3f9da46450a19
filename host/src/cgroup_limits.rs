//! Resource limits for children, applied through cgroup v2 controllers:
//! `pids.max`, `memory.max` and `cpu.max`, per guest session and per
//! process. A limit whose controller is not enabled is refused when the
//! policy loads; it is never silently ignored.

use crate::cgroup::Containment;
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

impl CgroupLimits {
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
    pub fn validate(&self) -> Result<(), String> {
        for (field, controller, _, value) in self.entries() {
            check_value(controller, &value)
                .map_err(|why| format!("`cgroup.{field} = {value:?}`: {why}"))?;
            Containment::detect()
                .require(controller)
                .map_err(|why| format!("`cgroup.{field}` cannot be applied: {why}"))?;
        }
        Ok(())
    }
}

fn check_value(controller: &str, value: &str) -> Result<(), String> {
    if controller != "cpu" {
        return match value.parse::<u64>() {
            Ok(0) => Err("must be greater than 0".into()),
            Ok(_) => Ok(()),
            Err(_) => Err("must be a number".into()),
        };
    }
    let mut parts = value.split(' ');
    let (Some(quota), Some(period), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("must be \"<quota µs|max> <period µs>\"".into());
    };
    let period: u64 = period
        .parse()
        .map_err(|_| "the period must be a number of µs".to_string())?;
    if !(1_000..=1_000_000).contains(&period) {
        return Err("the period must be between 1000 and 1000000 µs".into());
    }
    if quota != "max" {
        let quota: u64 = quota
            .parse()
            .map_err(|_| "the quota must be `max` or a number of µs".to_string())?;
        if quota < 1_000 {
            return Err("the quota must be at least 1000 µs".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let err = check_value(controller, value).unwrap_err();
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
