//! The proxy's transaction tables: a hash map split into many small maps, so that growing
//! never moves everything at once.
//!
//! A `std` `HashMap` grows by allocating a table twice the size and re-inserting every entry
//! (hashing every key, moving every value, touching every page of the new table). The server
//! and client transaction tables hold hundreds of thousands of entries under call load
//! (a completed transaction lingers 32 s on UDP), so one such growth stalled the single
//! dispatch thread for 100–500 ms (bench/README.md) — every request behind it waited, and
//! at high rates the UDP receive buffer overflowed. Split into [`SHARDS`] independent maps,
//! each growth moves at most 1/[`SHARDS`] of the entries: the same total work, in small
//! slices spread over time.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};

/// Number of shards (a power of two). At the proxy's bound of 600k server transactions a
/// shard holds ~2,300, whose growth takes well under a millisecond.
pub(crate) const SHARDS: usize = 256;

/// A hash map of `K` to `V` in [`SHARDS`] shards chosen by a keyed hash of the key.
pub(crate) struct Table<K, V> {
    pick: RandomState,
    shards: Box<[HashMap<K, V>]>,
    len: usize,
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V> Default for Table<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq, V> Table<K, V> {
    /// An empty table (no allocation beyond the shard array).
    pub(crate) fn new() -> Self {
        Self {
            pick: RandomState::new(),
            shards: (0..SHARDS).map(|_| HashMap::new()).collect(),
            len: 0,
        }
    }

    fn index(&self, k: &K) -> usize {
        // The shards' own hashers are keyed independently, so the low bits used here say
        // nothing about the bucket inside the shard.
        usize::try_from(self.pick.hash_one(k) % SHARDS as u64).unwrap_or(0)
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True when there is no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        self.shards[self.index(k)].get(k)
    }

    pub(crate) fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let i = self.index(k);
        self.shards[i].get_mut(k)
    }

    pub(crate) fn contains_key(&self, k: &K) -> bool {
        self.shards[self.index(k)].contains_key(k)
    }

    /// Inserts, returning the value `k` had.
    pub(crate) fn insert(&mut self, k: K, v: V) -> Option<V> {
        let i = self.index(&k);
        let old = self.shards[i].insert(k, v);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(crate) fn remove(&mut self, k: &K) -> Option<V> {
        let i = self.index(k);
        let old = self.shards[i].remove(k);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Every entry, shard by shard (in no particular order).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(HashMap::iter)
    }

    /// The most entries any one growth could move: the largest shard's capacity.
    #[cfg(test)]
    pub(crate) fn largest_shard_capacity(&self) -> usize {
        self.shards.iter().map(HashMap::capacity).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map() {
        let mut t: Table<String, u32> = Table::new();
        assert!(t.is_empty());
        for i in 0..5_000u32 {
            assert_eq!(t.insert(format!("k{i}"), i), None);
        }
        assert_eq!(t.len(), 5_000);
        assert_eq!(
            t.insert("k7".into(), 70),
            Some(7),
            "replacing keeps the length"
        );
        assert_eq!(t.len(), 5_000);
        assert_eq!(t.get(&"k7".to_owned()), Some(&70));
        *t.get_mut(&"k8".to_owned()).expect("present") += 1;
        assert_eq!(t.get(&"k8".to_owned()), Some(&9));
        assert!(t.contains_key(&"k4999".to_owned()));
        assert!(!t.contains_key(&"k5000".to_owned()));
        assert_eq!(t.remove(&"k1".to_owned()), Some(1));
        assert_eq!(t.remove(&"k1".to_owned()), None, "removing twice");
        assert_eq!(t.len(), 4_999);
        assert_eq!(t.iter().count(), 4_999);
        let sum: u64 = t.iter().map(|(_, v)| u64::from(*v)).sum();
        let expected: u64 = (0..5_000u64).sum::<u64>() - 1 + (70 - 7) + 1;
        assert_eq!(sum, expected);
        for i in 0..5_000u32 {
            t.remove(&format!("k{i}"));
        }
        assert!(t.is_empty());
        assert_eq!(t.iter().count(), 0);
    }

    /// The reason the table exists: growing to 600k entries (the proxy's bound) never grows
    /// one map past a few thousand slots, so no single insert re-inserts more than that. A
    /// single `HashMap` would have re-inserted 458,752 entries in its last growth.
    #[test]
    fn growth_is_bounded_by_a_shard() {
        let mut t: Table<u64, [u8; 64]> = Table::new();
        let n = 600_000u64;
        for i in 0..n {
            t.insert(i, [0; 64]);
        }
        assert_eq!(t.len(), 600_000);
        let largest = t.largest_shard_capacity();
        // ~2,344 per shard on average; hashbrown's capacity is 7/8 of a power of two.
        assert!(largest <= 7_168, "largest shard capacity {largest}");
        let mut single: HashMap<u64, ()> = HashMap::new();
        for i in 0..n {
            single.insert(i, ());
        }
        assert!(single.capacity() >= 600_000);
        assert!(
            largest * 64 < single.capacity(),
            "{largest} vs {}",
            single.capacity()
        );
    }
}
