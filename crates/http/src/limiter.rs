//! Slowing down password guessing: failed logins per client address in a sliding window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Counts failures per IP address; an address with too many recent failures is refused
/// until its window passes. Memory is bounded: beyond `capacity` addresses the oldest go.
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    capacity: usize,
    entries: HashMap<IpAddr, (u32, Instant)>,
}

impl FailureLimiter {
    /// `max_failures` within `window` per address; at most `capacity` addresses tracked.
    pub fn new(max_failures: u32, window: Duration, capacity: usize) -> Self {
        Self {
            max_failures,
            window,
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    /// How long the address must wait, if it is over the limit at `now`.
    pub fn blocked_for(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let (count, since) = *self.entries.get(&ip)?;
        let elapsed = now.saturating_duration_since(since);
        if elapsed >= self.window {
            self.entries.remove(&ip);
            return None;
        }
        (count >= self.max_failures).then(|| self.window - elapsed)
    }

    /// Records a failed attempt.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&ip) {
            self.entries
                .retain(|_, (_, since)| now.saturating_duration_since(*since) < self.window);
            if self.entries.len() >= self.capacity
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, t))| *t)
                    .map(|(k, _)| *k)
            {
                self.entries.remove(&oldest);
            }
        }
        let e = self.entries.entry(ip).or_insert((0, now));
        if now.saturating_duration_since(e.1) >= self.window {
            *e = (0, now);
        }
        e.0 += 1;
    }

    /// Forgets an address after a successful login.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.entries.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_and_recovers_after_window() {
        let mut l = FailureLimiter::new(3, Duration::from_secs(60), 100);
        let ip = IpAddr::from([127, 0, 0, 1]);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.blocked_for(ip, t0), None);
            l.failed(ip, t0);
        }
        assert_eq!(
            l.blocked_for(ip, t0 + Duration::from_secs(10)),
            Some(Duration::from_secs(50))
        );
        assert_eq!(l.blocked_for(ip, t0 + Duration::from_secs(60)), None);
    }

    #[test]
    fn memory_is_bounded() {
        let mut l = FailureLimiter::new(3, Duration::from_secs(60), 10);
        let t0 = Instant::now();
        for i in 0..1000u32 {
            l.failed(
                IpAddr::from(i.to_be_bytes()),
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        assert!(l.entries.len() <= 10);
    }
}
