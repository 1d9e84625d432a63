//! RFC 3261 §10.3: an in-memory location store with the same behaviour as the SQLite one.
//!
//! The bindings map lives in [`Bindings`], used twice: alone by [`MemoryLocationStore`] and
//! inside [`MemoryStore`](super::MemoryStore), whose account deletion must reach the
//! bindings of the deleted account just as the SQLite store's does.

use super::MemoryStore;
use crate::StoreError;
use crate::location::{Binding, LocationStore};
use async_trait::async_trait;
use cusax_account::Aor;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Bindings keyed by AOR then contact.
#[derive(Debug, Default)]
pub(super) struct Bindings(BTreeMap<Aor, BTreeMap<String, Binding>>);

impl Bindings {
    fn save(&mut self, batch: &[(Aor, Vec<Binding>)]) {
        for (aor, bindings) in batch {
            if bindings.is_empty() {
                self.0.remove(aor);
                continue;
            }
            let set = bindings
                .iter()
                .map(|b| (b.contact.clone(), b.clone()))
                .collect();
            self.0.insert(aor.clone(), set);
        }
    }

    fn of(&self, aor: &Aor) -> Vec<Binding> {
        self.0
            .get(aor)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    fn valid_at(&self, now: i64) -> Vec<Binding> {
        self.0
            .values()
            .flat_map(BTreeMap::values)
            .filter(|b| b.expires_at > now)
            .cloned()
            .collect()
    }

    fn purge(&mut self, now: i64) -> u64 {
        let mut n = 0;
        for set in self.0.values_mut() {
            let before = set.len();
            set.retain(|_, b| b.expires_at > now);
            n += (before - set.len()) as u64;
        }
        self.0.retain(|_, set| !set.is_empty());
        n
    }

    /// Drops every binding of these AORs (a deleted account's).
    pub(super) fn forget(&mut self, aors: &[Aor]) {
        for aor in aors {
            self.0.remove(aor);
        }
    }
}

/// A location store on its own, lost when dropped (tests, demos).
#[derive(Debug, Default)]
pub struct MemoryLocationStore {
    inner: Mutex<Bindings>,
}

impl MemoryLocationStore {
    /// An empty location store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bindings> {
        // Every call leaves the map consistent, so a poisoned lock still holds valid data.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl LocationStore for MemoryLocationStore {
    async fn save_bindings(&self, batch: &[(Aor, Vec<Binding>)]) -> Result<(), StoreError> {
        self.lock().save(batch);
        Ok(())
    }

    async fn bindings(&self, aor: &Aor) -> Result<Vec<Binding>, StoreError> {
        Ok(self.lock().of(aor))
    }

    async fn load_bindings(&self, now: i64) -> Result<Vec<Binding>, StoreError> {
        Ok(self.lock().valid_at(now))
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        Ok(self.lock().purge(now))
    }
}

/// The memory store keeps bindings beside the accounts, like one SQLite file does.
#[async_trait]
impl LocationStore for MemoryStore {
    async fn save_bindings(&self, batch: &[(Aor, Vec<Binding>)]) -> Result<(), StoreError> {
        self.lock().location.save(batch);
        Ok(())
    }

    async fn bindings(&self, aor: &Aor) -> Result<Vec<Binding>, StoreError> {
        Ok(self.lock().location.of(aor))
    }

    async fn load_bindings(&self, now: i64) -> Result<Vec<Binding>, StoreError> {
        Ok(self.lock().location.valid_at(now))
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        Ok(self.lock().location.purge(now))
    }
}
