//! RFC 6120 §13.13 (brute-force attacks): failed authentications slow down further attempts,
//! per account and per client address, in bounded memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many keys (accounts plus addresses) are tracked at most.
const MAX_KEYS: usize = 16 * 1024;
/// Failures are forgotten after this long without another one.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Upper bound of the added delay.
const MAX_DELAY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Addr(IpAddr),
}

/// Counts recent failures and says how long the next attempt must wait.
#[derive(Debug, Default)]
pub(crate) struct AuthThrottle {
    failures: Mutex<HashMap<Key, (u32, Instant)>>,
}

impl AuthThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (u32, Instant)>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records one failed attempt.
    pub(crate) fn failed(&self, account: Option<&str>, addr: IpAddr, now: Instant) {
        let mut map = self.lock();
        if map.len() >= MAX_KEYS {
            map.retain(|_, (_, at)| now.duration_since(*at) < WINDOW);
            if map.len() >= MAX_KEYS {
                // Still full of fresh entries: forget the oldest half rather than grow.
                let mut ages: Vec<Instant> = map.values().map(|(_, at)| *at).collect();
                ages.sort();
                let cut = ages[ages.len() / 2];
                map.retain(|_, (_, at)| *at > cut);
            }
        }
        let keys = account
            .map(|a| Key::Account(a.to_owned()))
            .into_iter()
            .chain([Key::Addr(addr)]);
        for k in keys {
            let e = map.entry(k).or_insert((0, now));
            if now.duration_since(e.1) >= WINDOW {
                e.0 = 0;
            }
            e.0 = e.0.saturating_add(1);
            e.1 = now;
        }
    }

    /// The delay before answering an attempt for `account` from `addr`: 0 for the first
    /// failures, then doubling from 250 ms up to 5 s.
    pub(crate) fn delay(&self, account: Option<&str>, addr: IpAddr, now: Instant) -> Duration {
        let map = self.lock();
        let count = |k: &Key| {
            map.get(k)
                .filter(|(_, at)| now.duration_since(*at) < WINDOW)
                .map_or(0, |(n, _)| *n)
        };
        let n = account
            .map(|a| count(&Key::Account(a.to_owned())))
            .unwrap_or(0)
            .max(count(&Key::Addr(addr)));
        if n < 2 {
            return Duration::ZERO;
        }
        let ms = 250u64.saturating_mul(1 << (n - 2).min(5));
        Duration::from_millis(ms).min(MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_and_is_bounded() {
        let t = AuthThrottle::default();
        let ip = IpAddr::from([127, 0, 0, 1]);
        let now = Instant::now();
        assert_eq!(t.delay(Some("a"), ip, now), Duration::ZERO);
        for _ in 0..3 {
            t.failed(Some("a"), ip, now);
        }
        assert_eq!(t.delay(Some("a"), ip, now), Duration::from_millis(500));
        let other = IpAddr::from([10, 0, 0, 1]);
        assert_eq!(
            t.delay(Some("a"), other, now),
            Duration::from_millis(500),
            "per account"
        );
        assert_eq!(
            t.delay(Some("b"), ip, now),
            Duration::from_millis(500),
            "per address"
        );
        for _ in 0..20 {
            t.failed(Some("a"), ip, now);
        }
        assert_eq!(t.delay(Some("a"), ip, now), MAX_DELAY);
        assert_eq!(
            t.delay(Some("a"), ip, now + WINDOW),
            Duration::ZERO,
            "forgotten"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let t = AuthThrottle::default();
        let now = Instant::now();
        for i in 0..(MAX_KEYS as u32 + 100) {
            t.failed(
                None,
                IpAddr::from(i.to_be_bytes()),
                now + Duration::from_micros(u64::from(i)),
            );
        }
        assert!(t.lock().len() <= MAX_KEYS);
    }
}
