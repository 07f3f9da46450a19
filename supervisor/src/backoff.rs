//! Restart delays and the start limit, on the monotonic clock only.
//!
//! Delays grow exponentially from `initial` by `factor` up to `max`, each
//! spread by `jitter` (a fraction either side, drawn with `fastrand`) so
//! that daemons failing together do not restart in lockstep. A run that
//! lasted `reset_after` counts as stable and resets the delay. The start
//! limit refuses a start once `burst` starts happened within `interval`.
//! Durations are written with units: `"500ms"`, `"2s"`, `"1m"`.

use serde::Deserialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Restart delay settings (`[daemon.backoff]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffSpec {
    /// First delay. Default `500ms`.
    #[serde(with = "humantime_serde")]
    pub initial: Duration,
    /// Growth per consecutive failure. Default 2.0.
    pub factor: f64,
    /// Largest delay. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    /// Random spread, a fraction of the delay either side (0 to 1).
    /// Default 0.1.
    pub jitter: f64,
    /// A run at least this long resets the delay. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub reset_after: Duration,
}

impl Default for BackoffSpec {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            factor: 2.0,
            max: Duration::from_secs(30),
            jitter: 0.1,
            reset_after: Duration::from_secs(10),
        }
    }
}

/// Why a `[daemon.backoff]` table is refused; each names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackoffError {
    /// `factor` is below 1 or not a number.
    #[error("backoff.factor = {0} must be at least 1")]
    Factor(f64),
    /// `jitter` is outside 0..=1.
    #[error("backoff.jitter = {0} must be between 0 and 1")]
    Jitter(f64),
    /// `max` is below `initial`.
    #[error("backoff.max = {max:?} is below backoff.initial = {initial:?}")]
    MaxBelowInitial {
        /// `max`.
        max: Duration,
        /// `initial`.
        initial: Duration,
    },
}

impl BackoffSpec {
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<(), BackoffError> {
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(BackoffError::Factor(self.factor));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(BackoffError::Jitter(self.jitter));
        }
        if self.max < self.initial {
            return Err(BackoffError::MaxBelowInitial {
                max: self.max,
                initial: self.initial,
            });
        }
        Ok(())
    }
}

/// The start limit (`[daemon.start_limit]`), like systemd's
/// `StartLimitBurst` within `StartLimitIntervalSec`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StartLimitSpec {
    /// Starts allowed within the interval (0: no limit). Default 5.
    pub burst: u32,
    /// The interval. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for StartLimitSpec {
    fn default() -> Self {
        Self {
            burst: 5,
            interval: Duration::from_secs(60),
        }
    }
}

/// The restart delay of one daemon.
#[derive(Debug)]
pub(crate) struct Backoff {
    spec: BackoffSpec,
    attempt: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A fresh backoff.
    pub(crate) fn new(spec: BackoffSpec) -> Self {
        Self {
            spec,
            attempt: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// The delay before the next restart; each call grows the next one.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let max = self.spec.max.as_secs_f64() * 1e3;
        let base = self.spec.initial.as_secs_f64()
            * 1e3
            * self.spec.factor.powi(self.attempt.min(64) as i32);
        let base = base.min(max);
        self.attempt = self.attempt.saturating_add(1);
        let spread = if self.spec.jitter > 0.0 {
            // A uniform value in [-1, 1).
            (self.rng.f64() * 2.0 - 1.0) * self.spec.jitter
        } else {
            0.0
        };
        let ms = (base * (1.0 + spread)).clamp(0.0, max);
        Duration::from_millis(ms.round() as u64)
    }

    /// Tells the backoff how long the last run lasted; a stable run resets
    /// the delay.
    pub(crate) fn run_ended(&mut self, ran_for: Duration) {
        if ran_for >= self.spec.reset_after {
            self.attempt = 0;
        }
    }

    /// Starts over from the initial delay.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Counts starts within a sliding window.
#[derive(Debug)]
pub(crate) struct StartLimit {
    spec: StartLimitSpec,
    starts: VecDeque<Instant>,
}

impl StartLimit {
    /// A limit with no starts recorded.
    pub(crate) fn new(spec: StartLimitSpec) -> Self {
        Self {
            spec,
            starts: VecDeque::new(),
        }
    }

    /// Records a start at `now` if the limit allows it.
    pub(crate) fn try_start(&mut self, now: Instant) -> bool {
        if self.spec.burst == 0 {
            return true;
        }
        let interval = self.spec.interval;
        while self
            .starts
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= interval)
        {
            self.starts.pop_front();
        }
        if self.starts.len() >= self.spec.burst as usize {
            return false;
        }
        self.starts.push_back(now);
        true
    }

    /// Whether a start at `at` would be allowed, without recording it.
    pub(crate) fn would_allow(&self, at: Instant) -> bool {
        if self.spec.burst == 0 {
            return true;
        }
        let interval = self.spec.interval;
        let recent = self
            .starts
            .iter()
            .filter(|t| at.saturating_duration_since(**t) < interval)
            .count();
        recent < self.spec.burst as usize
    }

    /// Forgets every recorded start.
    pub(crate) fn reset(&mut self) {
        self.starts.clear();
    }

    /// Describes the limit for a `failed` reason.
    pub(crate) fn describe(&self) -> String {
        format!(
            "start limit reached: {} starts within {}",
            self.spec.burst,
            humantime::format_duration(self.spec.interval)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(initial: u64, factor: f64, max: u64, jitter: f64) -> BackoffSpec {
        BackoffSpec {
            initial: Duration::from_millis(initial),
            factor,
            max: Duration::from_millis(max),
            jitter,
            reset_after: Duration::from_millis(1_000),
        }
    }

    #[test]
    fn daemon_backoff_good() {
        let mut b = Backoff::new(spec(100, 2.0, 1_000, 0.0));
        let delays: Vec<u64> = (0..6).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000]);
        b.run_ended(Duration::from_millis(999));
        assert_eq!(
            b.next_delay(),
            Duration::from_millis(1_000),
            "a short run keeps the delay"
        );
        b.run_ended(Duration::from_millis(1_000));
        assert_eq!(
            b.next_delay(),
            Duration::from_millis(100),
            "a stable run resets it"
        );
    }

    #[test]
    fn daemon_backoff_bad() {
        assert!(spec(100, 0.5, 1_000, 0.0).validate().is_err());
        assert!(spec(100, 2.0, 1_000, 1.5).validate().is_err());
        assert!(spec(100, 2.0, 50, 0.0).validate().is_err());
        assert!(spec(100, f64::NAN, 1_000, 0.0).validate().is_err());
        assert!(spec(100, 2.0, 1_000, 0.2).validate().is_ok());
    }

    #[test]
    fn daemon_backoff_ugly() {
        // Jitter stays within its spread and never passes the cap; a huge
        // number of attempts neither overflows nor exceeds the cap.
        let mut b = Backoff::new(spec(1_000, 3.0, 5_000, 0.5));
        let first = b.next_delay().as_millis() as u64;
        assert!((500..=1_500).contains(&first), "{first}");
        for _ in 0..200 {
            assert!(b.next_delay() <= Duration::from_millis(5_000));
        }
        let mut seen = std::collections::HashSet::new();
        let mut j = Backoff::new(spec(1_000, 1.0, 10_000, 0.5));
        for _ in 0..50 {
            seen.insert(j.next_delay());
        }
        assert!(seen.len() > 10, "jitter spreads delays: {seen:?}");
    }

    #[test]
    fn daemon_start_limit_good() {
        let mut l = StartLimit::new(StartLimitSpec {
            burst: 3,
            interval: Duration::from_millis(1_000),
        });
        let t0 = Instant::now();
        assert!(l.try_start(t0));
        assert!(l.try_start(t0 + Duration::from_millis(10)));
        assert!(l.try_start(t0 + Duration::from_millis(20)));
        assert!(!l.would_allow(t0 + Duration::from_millis(30)));
        assert!(l.would_allow(t0 + Duration::from_millis(1_000)));
        assert!(
            !l.try_start(t0 + Duration::from_millis(30)),
            "a fourth start within the interval"
        );
        assert!(
            l.try_start(t0 + Duration::from_millis(1_000)),
            "the first start left the window"
        );
        l.reset();
        assert!(l.try_start(t0 + Duration::from_millis(1_001)));
    }

    #[test]
    fn daemon_start_limit_ugly() {
        let mut l = StartLimit::new(StartLimitSpec {
            burst: 0,
            interval: Duration::from_millis(1),
        });
        let t0 = Instant::now();
        assert!(
            (0..1_000).all(|_| l.try_start(t0)),
            "burst 0 means no limit"
        );
    }
}
