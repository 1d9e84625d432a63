//! RFC 3261 §10.3: an in-memory location store with the same behaviour as the SQLite one.

use crate::StoreError;
use crate::location::{Binding, LocationStore};
use async_trait::async_trait;
use cusax_account::Aor;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Bindings in a map keyed by AOR then contact; lost when dropped (tests, demos).
#[derive(Debug, Default)]
pub struct MemoryLocationStore {
    inner: Mutex<BTreeMap<Aor, BTreeMap<String, Binding>>>,
}

impl MemoryLocationStore {
    /// An empty location store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Aor, BTreeMap<String, Binding>>> {
        // Every call leaves the map consistent, so a poisoned lock still holds valid data.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl LocationStore for MemoryLocationStore {
    async fn save_bindings(&self, batch: &[(Aor, Vec<Binding>)]) -> Result<(), StoreError> {
        let mut map = self.lock();
        for (aor, bindings) in batch {
            if bindings.is_empty() {
                map.remove(aor);
                continue;
            }
            let set = bindings
                .iter()
                .map(|b| (b.contact.clone(), b.clone()))
                .collect();
            map.insert(aor.clone(), set);
        }
        Ok(())
    }

    async fn bindings(&self, aor: &Aor) -> Result<Vec<Binding>, StoreError> {
        Ok(self
            .lock()
            .get(aor)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn load_bindings(&self, now: i64) -> Result<Vec<Binding>, StoreError> {
        Ok(self
            .lock()
            .values()
            .flat_map(BTreeMap::values)
            .filter(|b| b.expires_at > now)
            .cloned()
            .collect())
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let mut map = self.lock();
        let mut n = 0;
        for set in map.values_mut() {
            let before = set.len();
            set.retain(|_, b| b.expires_at > now);
            n += (before - set.len()) as u64;
        }
        map.retain(|_, set| !set.is_empty());
        Ok(n)
    }
}
