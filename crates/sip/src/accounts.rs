//! RFC 7081 §3.2 and RFC 3261 §22.4: the registrar's in-memory view of accounts (digest HA1
//! per algorithm, lock state, the AORs an account may register), filled on first use from the
//! store and invalidated by the account change feed, so that the hot path never waits on it.

use cusax_account::{AccountId, Alias, Aor, DigestAlgorithm, Domain};
use cusax_sip_proto::digest::Algorithm;
use cusax_store::StoreError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// What the registrar needs from the store to know an account (defined by the store, so
/// that the server's `Arc<dyn ServerStore>` converts to it).
pub use cusax_store::AccountSource;

/// An account as the registrar sees it: no password, only the HA1s of its own realm.
#[derive(Debug)]
pub struct CachedAccount {
    /// The account.
    pub id: AccountId,
    /// A locked account cannot register (RFC 7081 §3.2: lock applies to both protocols).
    pub locked: bool,
    ha1: Vec<(Algorithm, String)>,
    /// The AORs this account may register: its own, then its SIP aliases.
    pub aors: Vec<Aor>,
    /// Number aliases (`+4930123`), registrable as `sip:NUMBER@domain`.
    pub numbers: Vec<String>,
}

impl CachedAccount {
    /// The stored HA1 (lower-case hex) for `alg`, if the account has one for its realm.
    pub fn ha1(&self, alg: Algorithm) -> Option<&str> {
        self.ha1
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, h)| h.as_str())
    }

    /// True when `aor` is the account's own AOR or one of its aliases (RFC 3261 §10.3 step 6).
    pub fn owns(&self, aor: &Aor) -> bool {
        if self.aors.iter().any(|a| a == aor) {
            return true;
        }
        aor.host() == self.id.domain().as_str()
            && aor.user().is_some_and(|u| self.numbers.contains(&u))
    }
}

fn proto_algorithm(a: DigestAlgorithm) -> Option<Algorithm> {
    Algorithm::from_token(a.name().as_bytes())
}

#[derive(Debug, Clone)]
enum Slot {
    Known(Arc<CachedAccount>),
    Unknown,
}

/// Result of a cache lookup.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The account, as last loaded.
    Hit(Arc<CachedAccount>),
    /// The store has no such account (remembered so that guessing names stays cheap).
    Unknown,
    /// Not cached: load it with [`AccountCache::load`] and try again.
    Miss,
}

/// Accounts keyed by realm, then digest username (so a lookup borrows both and allocates
/// nothing), bounded, with a generation counter so that a load that raced with an
/// invalidation does not put stale data back.
#[derive(Debug)]
pub struct AccountCache {
    map: RwLock<HashMap<String, HashMap<String, Slot>>>,
    entries: std::sync::atomic::AtomicUsize,
    generation: AtomicU64,
    capacity: usize,
}

impl AccountCache {
    /// An empty cache holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            entries: std::sync::atomic::AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            capacity: capacity.max(16),
        }
    }

    /// Looks up the digest `user` in `realm` (a served domain).
    pub fn get(&self, user: &str, realm: &str) -> Lookup {
        let map = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(realm).and_then(|m| m.get(user)) {
            Some(Slot::Known(a)) => Lookup::Hit(a.clone()),
            Some(Slot::Unknown) => Lookup::Unknown,
            None => Lookup::Miss,
        }
    }

    /// Loads one account (and its aliases) from the store into the cache.
    pub async fn load(
        &self,
        src: &dyn AccountSource,
        user: &str,
        realm: &Domain,
    ) -> Result<(), StoreError> {
        let generation = self.generation.load(Ordering::Acquire);
        let slot = match AccountId::new(user, realm.clone()) {
            // The digest username must be the stored (normalised) user part: HA1 was derived
            // from it, so any other spelling could never authenticate.
            Ok(id) if id.user() == user => match src.account(&id).await? {
                Some(rec) => {
                    let aliases = src.aliases(&id).await?;
                    Slot::Known(Arc::new(build(
                        rec.id,
                        rec.locked,
                        &rec.credentials,
                        aliases,
                    )))
                }
                None => Slot::Unknown,
            },
            _ => Slot::Unknown,
        };
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.generation.load(Ordering::Acquire) != generation {
            return Ok(()); // invalidated meanwhile: the next request loads again
        }
        if self.entries.load(Ordering::Relaxed) >= self.capacity {
            // Bounded memory: start over rather than track recency on the hot path.
            map.clear();
            self.entries.store(0, Ordering::Relaxed);
        }
        let fresh = map
            .entry(realm.as_str().to_owned())
            .or_default()
            .insert(user.to_owned(), slot)
            .is_none();
        if fresh {
            self.entries.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Forgets one account (password change, lock, alias change, deletion, creation).
    pub fn invalidate(&self, id: &AccountId) {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(m) = map.get_mut(id.domain().as_str())
            && m.remove(id.user()).is_some()
        {
            self.entries.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Forgets everything (the change feed lagged, so any entry may be stale).
    pub fn clear(&self) {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
        self.entries.store(0, Ordering::Relaxed);
    }
}

fn build(
    id: AccountId,
    locked: bool,
    creds: &cusax_account::Credentials,
    aliases: Vec<Alias>,
) -> CachedAccount {
    let realm = id.domain().as_str();
    let ha1 = DigestAlgorithm::ALL
        .into_iter()
        .filter_map(|a| Some((proto_algorithm(a)?, creds.ha1(realm, a)?.ha1.clone())))
        .collect();
    let mut aors = vec![id.aor()];
    let mut numbers = Vec::new();
    for a in aliases {
        match a {
            Alias::Sip(aor) => aors.push(aor),
            Alias::Number(n) => numbers.push(n),
        }
    }
    CachedAccount {
        id,
        locked,
        ha1,
        aors,
        numbers,
    }
}

/// Alias → account user, filled from the store on demand and cleared on any account change.
#[derive(Debug, Default)]
pub struct AliasCache {
    map: RwLock<HashMap<(String, String), Option<String>>>,
}

const ALIAS_CACHE_MAX: usize = 100_000;

impl AliasCache {
    pub(crate) fn get(&self, alias: &str, realm: &str) -> Option<Option<String>> {
        let map = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&(alias.to_owned(), realm.to_owned())).cloned()
    }

    pub(crate) fn insert(&self, alias: &str, realm: &cusax_account::Domain, user: Option<String>) {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= ALIAS_CACHE_MAX {
            map.clear();
        }
        map.insert((alias.to_owned(), realm.as_str().to_owned()), user);
    }

    pub(crate) fn clear(&self) {
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// The account cache of the SIP service: accounts by digest user and realm, aliases by
/// alias and realm, and the store both are loaded from (outside the hot path, after an
/// [`crate::Outcome::NeedAccount`] or [`crate::Outcome::NeedAlias`]).
pub(crate) struct Accounts {
    cache: AccountCache,
    aliases: AliasCache,
    store: Arc<dyn AccountSource>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Accounts {
    pub(crate) fn new(capacity: usize, store: Arc<dyn AccountSource>) -> Self {
        Self {
            cache: AccountCache::new(capacity),
            aliases: AliasCache::default(),
            store,
        }
    }

    /// Looks up the digest `user` in `realm` (a served domain).
    pub(crate) fn get(&self, user: &str, realm: &str) -> Lookup {
        self.cache.get(user, realm)
    }

    /// The owner (a user part) of `alias` in `realm`: `None` when not cached, `Some(None)`
    /// when the store has no such alias.
    pub(crate) fn alias(&self, alias: &str, realm: &str) -> Option<Option<String>> {
        self.aliases.get(alias, realm)
    }

    /// Loads an account into the cache.
    pub(crate) async fn load_account(&self, user: &str, realm: &Domain) -> Result<(), StoreError> {
        let t = std::time::Instant::now();
        let r = self.cache.load(&*self.store, user, realm).await;
        metrics::histogram!("cusax_store_seconds", "op" => "load_account")
            .record(t.elapsed().as_secs_f64());
        r
    }

    /// Resolves an alias into the cache (only owners in `realm` count).
    pub(crate) async fn load_alias(&self, alias: &Alias, realm: &Domain) -> Result<(), StoreError> {
        let id = self.store.resolve_alias(alias).await?;
        let id = id.filter(|id| id.domain() == realm);
        self.aliases
            .insert(alias.as_str(), realm, id.map(|i| i.user().to_owned()));
        Ok(())
    }

    /// Forgets one cached account.
    pub(crate) fn invalidate(&self, id: &AccountId) {
        self.cache.invalidate(id);
    }

    /// Forgets every cached alias (any account change may move one).
    pub(crate) fn clear_aliases(&self) {
        self.aliases.clear();
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        self.cache.clear();
        self.aliases.clear();
    }
}
