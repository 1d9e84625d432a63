//! RFC 3261 §17.1.1.1 and Table 4, RFC 6026 §8: timer values T1, T2, T4 and the derived timers.

use std::time::{Duration, Instant};

/// Base timer values; every other timer (A–M) is derived from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s.
    pub t2: Duration,
    /// Maximum time a message remains in the network, default 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64·T1: timers B, F, H, J (unreliable), L, M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: ≥ 32 s on unreliable transports, zero on reliable ones.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32).max(self.t1x64() / 2)
        }
    }
}

/// One deadline; `None` when not armed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Deadline(pub(crate) Option<Instant>);

impl Deadline {
    pub(crate) fn arm(&mut self, now: Instant, after: Duration) {
        self.0 = Some(now + after);
    }

    pub(crate) fn stop(&mut self) {
        self.0 = None;
    }

    /// True (and disarms) when the deadline has passed.
    pub(crate) fn fire(&mut self, now: Instant) -> bool {
        if self.0.is_some_and(|t| t <= now) {
            self.0 = None;
            true
        } else {
            false
        }
    }
}

/// The earliest of several deadlines.
pub(crate) fn earliest(ds: &[Deadline]) -> Option<Instant> {
    ds.iter().filter_map(|d| d.0).min()
}
