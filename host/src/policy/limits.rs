//! Per-guest limits: every cost a guest can trigger has a cap.

use crate::deadline::Deadline;
use serde::Deserialize;
use std::time::Duration;

/// The longest time limit any field may hold: ten years
/// ([`Deadline::MAX_AHEAD`]). Longer ones would overflow the host's clock
/// arithmetic.
pub const MAX_TIME: Duration = Deadline::MAX_AHEAD;
/// The largest size limit, in bytes, any field may hold: 1 TiB. Larger
/// values would overflow the host's size arithmetic.
pub const MAX_BYTES: u64 = 1 << 40;

/// Caps on what one guest may make the host do. Each field documents its
/// default; a policy file's `[limits]` table overrides any of them. Times
/// are written with a unit (`"500ms"`, `"30s"`, `"1m 30s"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Processes running at once (background and `run`). Default 32.
    pub max_live_processes: u32,
    /// Live processes below the guest's processes (what they fork, and
    /// orphans of their trees), all together. Past it the newest are
    /// killed and `run` and `start` are refused. Held by a census of
    /// `/proc`, with or without cgroups. Default 512.
    pub max_descendants: u32,
    /// Sustained `run`/`start` calls per second (token bucket). Default 50.
    pub starts_per_second: u32,
    /// Burst of `run`/`start` calls above the sustained rate. Default 100.
    pub start_burst: u32,
    /// Bytes `run` captures per stream; the rest is read and dropped.
    /// Default 4 MiB.
    pub max_capture_bytes: u64,
    /// Default buffer per piped background stream. Default 256 KiB.
    pub default_stream_buffer_bytes: u64,
    /// Largest buffer a guest may ask for per stream. Default 8 MiB.
    pub max_stream_buffer_bytes: u64,
    /// Buffer bytes all of a guest's process records may hold together
    /// (stdin, stdout and stderr buffers of running and ended processes).
    /// Ended records are evicted to make room. Default 64 MiB.
    pub max_buffered_bytes: u64,
    /// Arguments per command. Default 4096.
    pub max_args: u32,
    /// Total bytes of program and arguments. Default 1 MiB.
    pub max_args_bytes: u64,
    /// Environment variables a guest may set per command. Default 256.
    pub max_env_vars: u32,
    /// Total bytes of guest-set environment. Default 256 KiB.
    pub max_env_bytes: u64,
    /// Timeout of `run` when the guest gives none. Default `"1m"`.
    #[serde(with = "humantime_serde")]
    pub default_run_timeout: Duration,
    /// Largest timeout a guest may ask for. Default `"1day"`.
    #[serde(with = "humantime_serde")]
    pub max_timeout: Duration,
    /// Longest a single `wait`, `read` or `write` call blocks. Default
    /// `"1m"`.
    #[serde(with = "humantime_serde")]
    pub max_call_wait: Duration,
    /// Process records a guest may hold (running and ended). Ended records
    /// are evicted oldest first when a new one needs room. Default 256.
    pub max_registry_entries: u32,
    /// Time between SIGTERM and SIGKILL when stopping a process. Default
    /// `"2s"`.
    #[serde(with = "humantime_serde")]
    pub kill_grace: Duration,
    /// Linear memory a guest may grow to, in bytes. Default 1 GiB.
    pub guest_memory_bytes: u64,
    /// Wall-clock time a guest may run; zero (`"0s"`) means no limit.
    /// Enforced by epoch interruption. Default `"0s"`.
    #[serde(with = "humantime_serde")]
    pub guest_time: Duration,
    /// Table elements per table. Default 100 000.
    pub guest_table_elements: u32,
    /// Entries in the guest's resource table (WASI handles such as streams,
    /// pollables and descriptors). Past it a call that would create one
    /// traps. Default 10 000.
    pub guest_resources: u32,
    /// Limits on children's process count, memory and CPU, applied through
    /// cgroup v2 (`[limits.cgroup]`); refused at load where a controller is
    /// missing. Default: none.
    pub cgroup: crate::policy::cgroup_limits::CgroupLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_live_processes: 32,
            max_descendants: 512,
            starts_per_second: 50,
            start_burst: 100,
            max_capture_bytes: 4 << 20,
            default_stream_buffer_bytes: 256 << 10,
            max_stream_buffer_bytes: 8 << 20,
            max_buffered_bytes: 64 << 20,
            max_args: 4096,
            max_args_bytes: 1 << 20,
            max_env_vars: 256,
            max_env_bytes: 256 << 10,
            default_run_timeout: Duration::from_secs(60),
            max_timeout: Duration::from_secs(86_400),
            max_call_wait: Duration::from_secs(60),
            max_registry_entries: 256,
            kill_grace: Duration::from_secs(2),
            guest_memory_bytes: 1 << 30,
            guest_time: Duration::ZERO,
            guest_table_elements: 100_000,
            guest_resources: 10_000,
            cgroup: Default::default(),
        }
    }
}

impl Limits {
    /// When a guest instantiated now runs out of `guest_time`
    /// ([`Deadline::NEVER`]: no limit). A blocking host call never waits
    /// past it.
    pub fn guest_deadline(&self) -> Deadline {
        if self.guest_time.is_zero() {
            Deadline::NEVER
        } else {
            Deadline::after(self.guest_time)
        }
    }

    /// The time limits, each with its key in the `[limits]` table.
    pub fn times(&self) -> [(&'static str, Duration); 5] {
        [
            ("default_run_timeout", self.default_run_timeout),
            ("max_timeout", self.max_timeout),
            ("max_call_wait", self.max_call_wait),
            ("kill_grace", self.kill_grace),
            ("guest_time", self.guest_time),
        ]
    }

    /// Checks that the limits are usable together; the error names the
    /// offending field.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let zero: [(&str, bool); 13] = [
            ("max_live_processes", self.max_live_processes == 0),
            ("max_descendants", self.max_descendants == 0),
            ("starts_per_second", self.starts_per_second == 0),
            ("start_burst", self.start_burst == 0),
            ("max_stream_buffer_bytes", self.max_stream_buffer_bytes == 0),
            (
                "default_stream_buffer_bytes",
                self.default_stream_buffer_bytes == 0,
            ),
            ("max_args_bytes", self.max_args_bytes == 0),
            ("default_run_timeout", self.default_run_timeout.is_zero()),
            ("max_timeout", self.max_timeout.is_zero()),
            ("max_registry_entries", self.max_registry_entries == 0),
            ("guest_memory_bytes", self.guest_memory_bytes == 0),
            ("guest_resources", self.guest_resources == 0),
            ("max_buffered_bytes", self.max_buffered_bytes == 0),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, is_zero)| *is_zero) {
            return Err(LimitsError::Zero { field: name });
        }
        if let Some((field, value)) = self.times().into_iter().find(|(_, v)| *v > MAX_TIME) {
            return Err(LimitsError::TooLong { field, value });
        }
        let bytes = [
            ("max_capture_bytes", self.max_capture_bytes),
            (
                "default_stream_buffer_bytes",
                self.default_stream_buffer_bytes,
            ),
            ("max_stream_buffer_bytes", self.max_stream_buffer_bytes),
            ("max_buffered_bytes", self.max_buffered_bytes),
            ("max_args_bytes", self.max_args_bytes),
            ("max_env_bytes", self.max_env_bytes),
            ("guest_memory_bytes", self.guest_memory_bytes),
        ];
        if let Some((name, v)) = bytes.iter().find(|(_, v)| *v > MAX_BYTES) {
            return Err(LimitsError::TooLarge {
                field: name,
                value: *v,
            });
        }
        self.cgroup.validate()?;
        if self.default_run_timeout > self.max_timeout {
            return Err(LimitsError::LongerThan {
                field: "default_run_timeout",
                value: self.default_run_timeout,
                bound: "max_timeout",
                bound_value: self.max_timeout,
            });
        }
        if self.default_stream_buffer_bytes > self.max_stream_buffer_bytes {
            return Err(LimitsError::Above {
                field: "default_stream_buffer_bytes",
                value: self.default_stream_buffer_bytes,
                bound: "max_stream_buffer_bytes",
                bound_value: self.max_stream_buffer_bytes,
            });
        }
        if self.max_registry_entries < self.max_live_processes {
            return Err(LimitsError::Below {
                field: "max_registry_entries",
                value: self.max_registry_entries.into(),
                bound: "max_live_processes",
                bound_value: self.max_live_processes.into(),
            });
        }
        Ok(())
    }
}

/// Why a set of [`Limits`] is unusable; the message names the field.
#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    /// A field that must be positive is zero.
    #[error("`{field}` must be greater than 0")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// A time is above ten years.
    #[error("`{field} = \"{}\"` is above ten years", humantime::format_duration(*.value))]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its value.
        value: Duration,
    },
    /// A size is above 1 TiB.
    #[error("`{field} = {value}` is above {MAX_BYTES} bytes (1 TiB)")]
    TooLarge {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// A default is above the maximum it must respect.
    #[error("`{field} = {value}` is above `{bound} = {bound_value}`")]
    Above {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The field it must not exceed.
        bound: &'static str,
        /// That field's value.
        bound_value: u64,
    },
    /// A default time is longer than the maximum it must respect.
    #[error(
        "`{field} = \"{}\"` is above `{bound} = \"{}\"`",
        humantime::format_duration(*.value),
        humantime::format_duration(*.bound_value)
    )]
    LongerThan {
        /// The field.
        field: &'static str,
        /// Its value.
        value: Duration,
        /// The field it must not exceed.
        bound: &'static str,
        /// That field's value.
        bound_value: Duration,
    },
    /// A field is below another it must cover.
    #[error("`{field} = {value}` is below `{bound} = {bound_value}`")]
    Below {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The field it must cover.
        bound: &'static str,
        /// That field's value.
        bound_value: u64,
    },
    /// A cgroup limit is invalid or not available here.
    #[error(transparent)]
    Cgroup(#[from] crate::policy::InvalidCgroupLimit),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicySpec;

    #[test]
    fn limits_near_u64_max_refused_bad() {
        // Each time and size field, set to its largest value, is refused by
        // name.
        type Set = fn(&mut Limits);
        let cases: [(&str, Set); 12] = [
            ("default_run_timeout", |l| {
                l.default_run_timeout = Duration::MAX
            }),
            ("max_timeout", |l| l.max_timeout = Duration::MAX),
            ("max_call_wait", |l| l.max_call_wait = Duration::MAX),
            ("kill_grace", |l| l.kill_grace = Duration::MAX),
            ("guest_time", |l| l.guest_time = Duration::MAX),
            ("max_capture_bytes", |l| l.max_capture_bytes = u64::MAX),
            ("max_stream_buffer_bytes", |l| {
                l.max_stream_buffer_bytes = u64::MAX
            }),
            ("max_buffered_bytes", |l| l.max_buffered_bytes = u64::MAX),
            ("max_args_bytes", |l| l.max_args_bytes = u64::MAX),
            ("max_env_bytes", |l| l.max_env_bytes = u64::MAX),
            ("guest_memory_bytes", |l| l.guest_memory_bytes = u64::MAX),
            ("max_timeout", |l| {
                l.max_timeout = MAX_TIME + Duration::from_nanos(1);
            }),
        ];
        for (field, set) in cases {
            let mut limits = Limits::default();
            set(&mut limits);
            let err = limits.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("`{field} = ")), "{field}: {err}");
        }
        let at_bound = Limits {
            max_timeout: MAX_TIME,
            kill_grace: MAX_TIME,
            ..Limits::default()
        };
        assert!(at_bound.validate().is_ok());
    }

    #[test]
    fn limits_durations_parse_good() {
        // Times are read with their unit; unset ones keep their defaults.
        let spec = PolicySpec::parse(
            "[limits]\n\
             default_run_timeout = \"250ms\"\n\
             max_timeout = \"2s\"\n\
             max_call_wait = \"1m 30s\"\n\
             guest_time = \"10m\"\n",
        )
        .expect("durations with units");
        let limits = spec.limits;
        assert_eq!(limits.default_run_timeout, Duration::from_millis(250));
        assert_eq!(limits.max_timeout, Duration::from_secs(2));
        assert_eq!(limits.max_call_wait, Duration::from_secs(90));
        assert_eq!(limits.guest_time, Duration::from_secs(600));
        assert_eq!(limits.kill_grace, Limits::default().kill_grace);
        assert!(limits.validate().is_ok());
        assert!(limits.guest_deadline().instant().is_some());
        assert_eq!(
            Limits::default().guest_deadline(),
            Deadline::NEVER,
            "0s: no limit"
        );
    }

    #[test]
    fn limits_durations_bad() {
        // A time with no unit or an unknown one is refused with the line;
        // a default above the maximum names both keys, as written.
        for (text, needle) in [
            ("[limits]\nkill_grace = 500", "kill_grace = 500"),
            ("[limits]\nkill_grace = \"500\"", "kill_grace = \"500\""),
            ("[limits]\nmax_timeout = \"2 fortnights\"", "max_timeout"),
        ] {
            let err = PolicySpec::parse(text).expect_err(text).to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let spec =
            PolicySpec::parse("[limits]\ndefault_run_timeout = \"10s\"\nmax_timeout = \"5s\"")
                .expect("well-formed");
        let err = spec.limits.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "`default_run_timeout = \"10s\"` is above `max_timeout = \"5s\"`"
        );
        let zero = PolicySpec::parse("[limits]\nmax_timeout = \"0s\"").expect("well-formed");
        let err = zero.limits.validate().unwrap_err().to_string();
        assert!(
            err.contains("`max_timeout` must be greater than 0"),
            "{err}"
        );
    }

    #[test]
    fn limits_guest_deadline_ugly() {
        // No limit is no deadline; the longest limit allowed saturates
        // instead of overflowing.
        let none = Limits {
            guest_time: Duration::ZERO,
            ..Limits::default()
        };
        assert_eq!(none.guest_deadline(), Deadline::NEVER);
        let longest = Limits {
            guest_time: MAX_TIME,
            ..Limits::default()
        };
        let left = longest.guest_deadline().remaining().expect("a deadline");
        assert!(left > Duration::from_secs(3_600) && left <= MAX_TIME);
    }
}
