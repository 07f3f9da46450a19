//! Start-rate quota: a token bucket on the monotonic clock.

use std::time::Instant;

/// Allows `rate` starts per second with bursts of up to `burst`.
#[derive(Debug)]
pub(crate) struct StartRate {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl StartRate {
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: Instant::now(),
        }
    }

    /// Takes a token if one is there.
    pub(crate) fn try_take(&mut self) -> bool {
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
        let mut q = StartRate::new(1, 3);
        assert!(q.try_take() && q.try_take() && q.try_take());
        assert!(!q.try_take());
    }
}
