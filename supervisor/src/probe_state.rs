//! Probe results counted against their thresholds: when a probe turns
//! from passing to failing and back.

use super::probe_spec::Thresholds;

/// One probe result, as the supervisor records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Healthy.
    Passed,
    /// Unhealthy, and why.
    Failed(String),
}

/// Consecutive results of one probe against its thresholds.
#[derive(Debug, Clone, Default)]
pub struct ProbeState {
    /// Whether it passes, by its thresholds.
    pub passing: bool,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Successes in a row.
    pub consecutive_successes: u32,
    /// Probes recorded.
    pub runs: u64,
    /// Of which failed.
    pub failures: u64,
    /// Why the last failure failed.
    pub last_error: Option<String>,
}

impl ProbeState {
    /// A state starting out passing (liveness) or not (readiness).
    pub fn new(passing: bool) -> Self {
        Self {
            passing,
            ..Self::default()
        }
    }

    /// Records a result; returns `true` when this result turned the probe
    /// from passing to failing.
    pub fn record(&mut self, outcome: ProbeOutcome, t: Thresholds) -> bool {
        self.runs += 1;
        match outcome {
            ProbeOutcome::Passed => {
                self.consecutive_failures = 0;
                self.consecutive_successes = self.consecutive_successes.saturating_add(1);
                if self.consecutive_successes >= t.success {
                    self.passing = true;
                }
                false
            }
            ProbeOutcome::Failed(why) => {
                self.failures += 1;
                self.consecutive_successes = 0;
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.last_error = Some(why);
                let was = self.passing;
                if self.consecutive_failures >= t.failure {
                    self.passing = false;
                }
                was && !self.passing
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_thresholds_ugly() {
        let t = Thresholds {
            failure: 3,
            success: 2,
        };
        let fail = |why: &str| ProbeOutcome::Failed(why.into());
        let mut s = ProbeState::new(true);
        assert!(!s.record(fail("a"), t));
        assert!(!s.record(fail("b"), t));
        assert!(s.passing, "two failures stay below the threshold");
        assert!(s.record(fail("c"), t), "the third turns it");
        assert!(!s.record(fail("d"), t), "turns only once");
        assert!(!s.record(ProbeOutcome::Passed, t));
        assert!(!s.passing, "one success is below the success threshold");
        assert!(!s.record(ProbeOutcome::Passed, t));
        assert!(s.passing);
        assert_eq!((s.runs, s.failures), (6, 4));
    }
}
