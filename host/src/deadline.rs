//! One instant by which something must happen: the single time type of
//! every wait, stop and call in the host. Made from a duration it
//! saturates at [`Deadline::MAX_AHEAD`] instead of overflowing; made from
//! nothing it is [`Deadline::NEVER`].
//!
//! A leaf module: it depends on nothing else in the crate.

use std::time::{Duration, Instant};

/// When a wait, a stop or a call gives up; [`Deadline::NEVER`] waits for
/// ever. Ordered: an earlier deadline is smaller, `NEVER` the largest.
///
/// ```
/// use std::time::Duration;
/// use wasmproc_host::process::Deadline;
///
/// let soon = Deadline::after(Duration::from_millis(10));
/// assert!(soon < Deadline::NEVER);
/// assert_eq!(soon.min(Deadline::NEVER), soon);
/// assert!(Deadline::after(Duration::MAX).instant().is_some(), "saturates");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline: wait for ever.
    pub const NEVER: Self = Self(None);

    /// The furthest ahead a deadline made from a duration lies: ten years,
    /// past which the host's clock arithmetic would overflow.
    pub const MAX_AHEAD: Duration = Duration::from_secs(10 * 365 * 24 * 3_600);

    /// The instant `after` from now, saturating at [`Self::MAX_AHEAD`].
    pub fn after(after: Duration) -> Self {
        let now = Instant::now();
        Self(Some(
            now.checked_add(after.min(Self::MAX_AHEAD)).unwrap_or(now),
        ))
    }

    /// The deadline `at` an instant already fixed.
    pub fn at(instant: Instant) -> Self {
        Self(Some(instant))
    }

    /// `after` from now when there is a duration, [`Self::NEVER`] when not.
    pub fn after_opt(after: Option<Duration>) -> Self {
        after.map_or(Self::NEVER, Self::after)
    }

    /// Its instant (`None`: never).
    pub fn instant(self) -> Option<Instant> {
        self.0
    }

    /// The earlier of two deadlines.
    #[must_use]
    pub fn min(self, other: Self) -> Self {
        match (self.0, other.0) {
            (Some(a), Some(b)) => Self(Some(a.min(b))),
            (a, b) => Self(a.or(b)),
        }
    }

    /// What is left of it (`None`: never).
    pub fn remaining(self) -> Option<Duration> {
        self.0.map(|i| i.saturating_duration_since(Instant::now()))
    }

    /// Whether it has passed.
    pub fn has_passed(self) -> bool {
        self.0.is_some_and(|i| Instant::now() >= i)
    }

    /// The same instant on tokio's clock, for its timers (`None`: never).
    pub(crate) fn tokio(self) -> Option<tokio::time::Instant> {
        self.0.map(tokio::time::Instant::from_std)
    }

    /// Awaits `fut` until the deadline: `None` if it passed first. On a
    /// tokio runtime with its timer enabled.
    pub async fn timeout<F: Future>(self, fut: F) -> Option<F::Output> {
        match self.tokio() {
            Some(until) => tokio::time::timeout_at(until, fut).await.ok(),
            None => Some(fut.await),
        }
    }

    /// Sleeps until the deadline (for ever when it is `NEVER`). On a tokio
    /// runtime with its timer enabled.
    pub async fn sleep(self) {
        match self.tokio() {
            Some(until) => tokio::time::sleep_until(until).await,
            None => std::future::pending().await,
        }
    }
}

impl From<Option<Instant>> for Deadline {
    /// `Some(instant)`: that instant; `None`: never.
    fn from(instant: Option<Instant>) -> Self {
        Self(instant)
    }
}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self.0, other.0) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_order_and_min_good() {
        let a = Deadline::after(Duration::from_secs(1));
        let b = Deadline::after(Duration::from_secs(5));
        assert!(a < b && b < Deadline::NEVER);
        assert_eq!(a.min(b), a);
        assert_eq!(Deadline::NEVER.min(b), b);
        assert_eq!(Deadline::NEVER.min(Deadline::NEVER), Deadline::NEVER);
    }

    #[test]
    fn deadline_saturates_ugly() {
        let far = Deadline::after(Duration::MAX);
        let left = far
            .remaining()
            .expect("a deadline from a duration is finite");
        assert!(left <= Deadline::MAX_AHEAD);
        assert!(Deadline::after(Duration::ZERO).has_passed());
        assert!(!Deadline::NEVER.has_passed());
        assert_eq!(Deadline::NEVER.remaining(), None);
    }
}
