//! The guest's rate bucket: a token bucket on the monotonic clock, drawn
//! from by every `run` and `start` and by every refused call.

use std::time::Instant;

/// Allows `rate` calls per second with bursts of up to `burst`.
#[derive(Debug)]
pub struct RateBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateBucket {
    /// A full bucket of `burst` tokens (at least one), refilled at `rate`
    /// per second.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: Instant::now(),
        }
    }

    /// Takes a token if one is there.
    pub fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_burst_then_refuse_bad() {
        let mut q = RateBucket::new(1, 3);
        assert!(q.try_take() && q.try_take() && q.try_take());
        assert!(!q.try_take());
    }
}
