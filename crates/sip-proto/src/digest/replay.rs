//! RFC 7616 §5.5: nonce-count replay detection in bounded memory.

use std::collections::{HashMap, VecDeque};

/// Result of recording a nonce-count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayCheck {
    /// Higher than any count seen for this nonce: accept.
    Fresh,
    /// Not higher than a count already seen: reject as a replay.
    Replayed,
    /// The nonce is not tracked (evicted, or first seen with nc > 1): ask for a fresh nonce.
    Unknown,
}

/// Highest nonce-count per nonce, for at most `capacity` nonces; the oldest is evicted first.
#[derive(Debug)]
pub struct NonceCounts {
    capacity: usize,
    map: HashMap<[u8; 16], u32>,
    order: VecDeque<[u8; 16]>,
}

impl NonceCounts {
    /// Creates a tracker for up to `capacity` nonces (memory ≈ 40 bytes each).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            map: HashMap::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
        }
    }

    /// Records `nc` for the nonce `id`; `_now_secs` is reserved for time-based eviction.
    pub fn check(&mut self, id: [u8; 16], nc: u32, _now_secs: u64) -> ReplayCheck {
        if let Some(last) = self.map.get_mut(&id) {
            if nc <= *last {
                return ReplayCheck::Replayed;
            }
            *last = nc;
            return ReplayCheck::Fresh;
        }
        if nc != 1 {
            return ReplayCheck::Unknown;
        }
        if self.map.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.map.remove(&old);
        }
        self.map.insert(id, nc);
        self.order.push_back(id);
        ReplayCheck::Fresh
    }

    /// Number of tracked nonces.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
