//! RFC 3261 §10.3: the location service, in memory, written behind to a [`LocationStore`].
//!
//! Write policy (compare Kamailio usrloc `db_mode=2`, "write-back"): every change to an AOR's
//! bindings happens in memory and marks the AOR dirty; [`Location::flush`] writes the current
//! binding set of each dirty AOR to the store in one transaction. The server calls it on a
//! timer (`sip.location_flush_secs`) and once more at shutdown; at start it loads every
//! unexpired binding with [`Location::load`]. A clean restart therefore loses nothing; a crash
//! loses at most the changes of the last interval (the client re-registers). Expired bindings
//! are dropped from memory by [`Location::sweep`] and from the store by its purge.
//! The hot path takes one shard lock and never touches the store.
//!
//! Every change of an AOR's bindings (a REGISTER, a removal, an expiry) is published on the
//! bus, when one is set, as a [`BindingChanged`] with the number of contacts left.

use cusax_account::Aor;
use cusax_bus::{BindingChanged, Bus, Event};
use cusax_store::{Binding, LocationStore, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

const SHARDS: usize = 16;

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<String, Vec<Binding>>,
    dirty: HashSet<String>,
}

/// All bindings, sharded by AOR.
#[derive(Debug)]
pub struct Location {
    shards: Box<[Mutex<Shard>]>,
    /// Where binding changes are announced (`None`: nobody listens).
    bus: Option<Arc<dyn Bus>>,
}

impl Default for Location {
    fn default() -> Self {
        Self::new()
    }
}

fn shard_of(aor: &str) -> usize {
    // FNV-1a: cheap, and the AOR text is not attacker-chosen beyond existing accounts.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in aor.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % SHARDS as u64) as usize
}

impl Location {
    /// An empty location service.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            bus: None,
        }
    }

    /// Announces binding changes on `bus` from now on.
    pub fn set_bus(&mut self, bus: Arc<dyn Bus>) {
        self.bus = Some(bus);
    }

    /// Publishes that `aor` has `contacts` bindings now.
    fn announce(&self, aor: &str, contacts: usize) {
        if let Some(bus) = &self.bus {
            bus.publish(Event::BindingChanged(BindingChanged {
                aor: aor.to_owned(),
                contacts: u32::try_from(contacts).unwrap_or(u32::MAX),
            }));
        }
    }

    fn shard(&self, aor: &str) -> MutexGuard<'_, Shard> {
        // Each critical section leaves the shard consistent, so poisoning carries no meaning.
        self.shards[shard_of(aor)]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the bindings of `aor` (empty if none). When `f` returns `true` in the second
    /// position the AOR is marked dirty for the next flush; an emptied AOR is removed.
    pub fn update<R>(&self, aor: &Aor, f: impl FnOnce(&mut Vec<Binding>) -> (R, bool)) -> R {
        let mut shard = self.shard(aor.as_str());
        let Shard { map, dirty } = &mut *shard;
        let (r, changed, left) = match map.get_mut(aor.as_str()) {
            Some(list) => {
                let (r, changed) = f(list);
                (r, changed, list.len())
            }
            None => {
                let mut list = Vec::new();
                let (r, changed) = f(&mut list);
                let left = list.len();
                if left > 0 {
                    map.insert(aor.as_str().to_owned(), list);
                }
                (r, changed, left)
            }
        };
        if left == 0 {
            map.remove(aor.as_str());
        }
        if changed && !dirty.contains(aor.as_str()) {
            dirty.insert(aor.as_str().to_owned());
        }
        drop(shard);
        if changed {
            self.announce(aor.as_str(), left);
        }
        r
    }

    /// Runs `f` on the bindings of `aor` (an empty slice if none) without changing them.
    pub fn read<R>(&self, aor: &Aor, f: impl FnOnce(&[Binding]) -> R) -> R {
        let shard = self.shard(aor.as_str());
        f(shard.map.get(aor.as_str()).map_or(&[][..], Vec::as_slice))
    }

    /// A copy of the bindings of `aor`.
    pub fn bindings(&self, aor: &Aor) -> Vec<Binding> {
        self.shard(aor.as_str())
            .map
            .get(aor.as_str())
            .cloned()
            .unwrap_or_default()
    }

    /// Installs bindings loaded from the store at start (not marked dirty).
    pub fn load(&self, bindings: Vec<Binding>) -> usize {
        let n = bindings.len();
        for b in bindings {
            let mut shard = self.shard(b.aor.as_str());
            shard
                .map
                .entry(b.aor.as_str().to_owned())
                .or_default()
                .push(b);
        }
        n
    }

    /// Number of bindings held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .map
                    .values()
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .sum()
    }

    /// True when no binding is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops bindings with `expires_at <= now` from memory; returns how many. The store purges
    /// its own copy by the same rule, so nothing needs writing.
    pub fn sweep(&self, now: i64) -> usize {
        let mut n = 0;
        let mut changed: Vec<(String, usize)> = Vec::new();
        for s in &*self.shards {
            let mut shard = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            shard.map.retain(|aor, list| {
                let before = list.len();
                list.retain(|b| b.expires_at > now);
                n += before - list.len();
                if self.bus.is_some() && list.len() < before {
                    changed.push((aor.clone(), list.len()));
                }
                !list.is_empty()
            });
        }
        for (aor, left) in changed {
            self.announce(&aor, left);
        }
        n
    }

    /// Every binding held (for operators; takes each shard lock in turn).
    pub fn all(&self) -> Vec<Binding> {
        let mut out = Vec::new();
        for s in &*self.shards {
            let shard = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for list in shard.map.values() {
                out.extend(list.iter().cloned());
            }
        }
        out
    }

    /// Removes the bindings of `aor` whose contact is `contact` (all when `None`); returns how
    /// many. The change is written back like any other.
    pub fn remove(&self, aor: &Aor, contact: Option<&str>) -> usize {
        self.update(aor, |list| {
            let before = list.len();
            list.retain(|b| contact.is_some_and(|c| b.contact != c));
            let n = before - list.len();
            (n, n > 0)
        })
    }

    /// Removes every binding of `aor` (the account was deleted); marks it dirty.
    pub fn remove_aor(&self, aor: &Aor) {
        self.update(aor, |list| {
            let changed = !list.is_empty();
            list.clear();
            ((), changed)
        });
    }

    /// Writes the binding sets of all dirty AORs to `store` (one transaction). On failure the
    /// AORs stay dirty for the next attempt. Returns how many AORs were written.
    pub async fn flush(&self, store: &dyn LocationStore) -> Result<usize, StoreError> {
        let mut batch: Vec<(Aor, Vec<Binding>)> = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        for s in &*self.shards {
            let mut shard = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let dirty = std::mem::take(&mut shard.dirty);
            for k in dirty {
                // Keys are canonical AOR text, so they parse back; a failure would be a bug.
                let Ok(aor) = Aor::parse(&k) else {
                    tracing::error!(aor = %k, "location key is not an AOR; not persisted");
                    continue;
                };
                batch.push((aor, shard.map.get(&k).cloned().unwrap_or_default()));
                keys.push(k);
            }
        }
        if batch.is_empty() {
            return Ok(0);
        }
        match store.save_bindings(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                for k in keys {
                    self.shard(&k).dirty.insert(k);
                }
                Err(e)
            }
        }
    }
}
