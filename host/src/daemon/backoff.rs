//! Restart delays and the start limit, on the monotonic clock only.
//!
//! Delays grow exponentially from `initial_ms` by `factor` up to `max_ms`,
//! each spread by `jitter` (a fraction either side) so that daemons failing
//! together do not restart in lockstep. A run that lasted `reset_after_ms`
//! counts as stable and resets the delay. The start limit refuses a start
//! once `burst` starts happened within `interval_ms`.

use serde::Deserialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Restart delay settings (`[daemon.backoff]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffSpec {
    /// First delay, in ms. Default 500.
    pub initial_ms: u64,
    /// Growth per consecutive failure. Default 2.0.
    pub factor: f64,
    /// Largest delay, in ms. Default 30 000.
    pub max_ms: u64,
    /// Random spread, a fraction of the delay either side (0 to 1).
    /// Default 0.1.
    pub jitter: f64,
    /// A run at least this long (ms) resets the delay. Default 10 000.
    pub reset_after_ms: u64,
}

impl Default for BackoffSpec {
    fn default() -> Self {
        Self {
            initial_ms: 500,
            factor: 2.0,
            max_ms: 30_000,
            jitter: 0.1,
            reset_after_ms: 10_000,
        }
    }
}

impl BackoffSpec {
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(format!(
                "backoff.factor = {} must be at least 1",
                self.factor
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!(
                "backoff.jitter = {} must be between 0 and 1",
                self.jitter
            ));
        }
        if self.max_ms < self.initial_ms {
            return Err(format!(
                "backoff.max_ms = {} is below backoff.initial_ms = {}",
                self.max_ms, self.initial_ms
            ));
        }
        Ok(())
    }
}

/// The start limit (`[daemon.start_limit]`), like systemd's
/// `StartLimitBurst` within `StartLimitIntervalSec`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StartLimitSpec {
    /// Starts allowed within the interval. Default 5.
    pub burst: u32,
    /// The interval, in ms. Default 60 000.
    pub interval_ms: u64,
}

impl Default for StartLimitSpec {
    fn default() -> Self {
        Self {
            burst: 5,
            interval_ms: 60_000,
        }
    }
}

/// The restart delay of one daemon.
#[derive(Debug)]
pub(crate) struct Backoff {
    spec: BackoffSpec,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// A fresh backoff.
    pub(crate) fn new(spec: BackoffSpec) -> Self {
        let seed = u64::from_le_bytes(
            uuid::Uuid::new_v4().as_bytes()[..8]
                .try_into()
                .expect("8 bytes"),
        );
        Self {
            spec,
            attempt: 0,
            rng: seed | 1,
        }
    }

    /// The delay before the next restart; each call grows the next one.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base =
            (self.spec.initial_ms as f64) * self.spec.factor.powi(self.attempt.min(64) as i32);
        let base = base.min(self.spec.max_ms as f64);
        self.attempt = self.attempt.saturating_add(1);
        let spread = if self.spec.jitter > 0.0 {
            // A uniform value in [-1, 1).
            let unit = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64;
            (unit * 2.0 - 1.0) * self.spec.jitter
        } else {
            0.0
        };
        let ms = (base * (1.0 + spread)).clamp(0.0, self.spec.max_ms as f64);
        Duration::from_millis(ms.round() as u64)
    }

    /// Tells the backoff how long the last run lasted; a stable run resets
    /// the delay.
    pub(crate) fn run_ended(&mut self, ran_for: Duration) {
        if ran_for >= Duration::from_millis(self.spec.reset_after_ms) {
            self.attempt = 0;
        }
    }

    /// Starts over from the initial delay.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: plenty for spreading delays.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
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
        let interval = Duration::from_millis(self.spec.interval_ms);
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
        let interval = Duration::from_millis(self.spec.interval_ms);
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
            "start limit reached: {} starts within {} ms",
            self.spec.burst, self.spec.interval_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(initial: u64, factor: f64, max: u64, jitter: f64) -> BackoffSpec {
        BackoffSpec {
            initial_ms: initial,
            factor,
            max_ms: max,
            jitter,
            reset_after_ms: 1_000,
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
            interval_ms: 1_000,
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
            interval_ms: 1,
        });
        let t0 = Instant::now();
        assert!(
            (0..1_000).all(|_| l.try_start(t0)),
            "burst 0 means no limit"
        );
    }
}
