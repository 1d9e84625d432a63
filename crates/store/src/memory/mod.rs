//! An in-memory store with the same behaviour as the SQLite one, for tests and throwaway demos.
//!
//! Like one SQLite file it holds accounts, XMPP data and SIP bindings together, so that
//! deleting an account removes all of them at once.

use crate::location::account_aors;
use crate::{AccountRecord, Change, ChangeKind, StoreError, unix_now};
use async_trait::async_trait;
use cusax_account::{AccountId, Alias, Credentials, Domain};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

mod location;
pub use location::MemoryLocationStore;

mod xmpp_data;

#[derive(Debug, Default)]
struct Inner {
    domains: BTreeSet<Domain>,
    accounts: BTreeMap<AccountId, AccountRecord>,
    aliases: BTreeMap<Alias, AccountId>,
    changes: Vec<Change>,
    xmpp: xmpp_data::XmppData,
    location: location::Bindings,
}

impl Inner {
    fn log(&mut self, account: &AccountId, kind: ChangeKind) {
        let seq = self.changes.last().map_or(1, |c| c.seq + 1);
        self.changes.push(Change {
            seq,
            account: account.clone(),
            kind,
        });
    }

    fn create(&mut self, id: &AccountId, creds: &Credentials) -> Result<(), StoreError> {
        if !self.domains.contains(id.domain()) {
            return Err(StoreError::UnknownDomain(id.domain().clone()));
        }
        if self.accounts.contains_key(id) {
            return Err(StoreError::AccountExists(id.clone()));
        }
        let rec = AccountRecord {
            id: id.clone(),
            locked: false,
            credentials: creds.clone(),
            created_at: unix_now(),
        };
        self.accounts.insert(id.clone(), rec);
        self.log(id, ChangeKind::Created);
        Ok(())
    }

    fn get_mut(&mut self, id: &AccountId) -> Result<&mut AccountRecord, StoreError> {
        self.accounts
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownAccount(id.clone()))
    }
}

/// The in-memory backend. Cheap to create; everything is lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind, still consistent per call.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl crate::DomainStore for MemoryStore {
    async fn add_domain(&self, domain: &Domain) -> Result<(), StoreError> {
        if self.lock().domains.insert(domain.clone()) {
            Ok(())
        } else {
            Err(StoreError::DomainExists(domain.clone()))
        }
    }

    async fn list_domains(&self) -> Result<Vec<Domain>, StoreError> {
        Ok(self.lock().domains.iter().cloned().collect())
    }

    async fn has_domain(&self, domain: &Domain) -> Result<bool, StoreError> {
        Ok(self.lock().domains.contains(domain))
    }

    async fn delete_domain(&self, domain: &Domain) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let n = inner
            .accounts
            .keys()
            .filter(|a| a.domain() == domain)
            .count() as u64;
        if n > 0 {
            return Err(StoreError::DomainNotEmpty(domain.clone(), n));
        }
        if inner.domains.remove(domain) {
            Ok(())
        } else {
            Err(StoreError::UnknownDomain(domain.clone()))
        }
    }
}

#[async_trait]
impl crate::AccountStore for MemoryStore {
    async fn create_account(&self, id: &AccountId, creds: &Credentials) -> Result<(), StoreError> {
        self.lock().create(id, creds)
    }

    async fn create_accounts(
        &self,
        batch: &[(AccountId, Credentials)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut inner = self.lock();
        Ok(batch.iter().map(|(id, c)| inner.create(id, c)).collect())
    }

    async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.lock().accounts.get(id).cloned())
    }

    async fn set_credentials(&self, id: &AccountId, creds: &Credentials) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.get_mut(id)?.credentials = creds.clone();
        inner.log(id, ChangeKind::Credentials);
        Ok(())
    }

    async fn set_locked(&self, id: &AccountId, locked: bool) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.get_mut(id)?.locked = locked;
        inner.log(
            id,
            if locked {
                ChangeKind::Locked
            } else {
                ChangeKind::Unlocked
            },
        );
        Ok(())
    }

    async fn delete_account(&self, id: &AccountId) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.accounts.remove(id).is_none() {
            return Err(StoreError::UnknownAccount(id.clone()));
        }
        let aliases: Vec<Alias> = inner
            .aliases
            .iter()
            .filter(|(_, owner)| *owner == id)
            .map(|(a, _)| a.clone())
            .collect();
        inner.location.forget(&account_aors(id, &aliases));
        inner.aliases.retain(|_, owner| owner != id);
        inner.xmpp.forget(id);
        inner.log(id, ChangeKind::Deleted);
        Ok(())
    }

    async fn list_accounts(
        &self,
        domain: Option<&Domain>,
    ) -> Result<Vec<(AccountId, bool)>, StoreError> {
        let mut out: Vec<(AccountId, bool)> = self
            .lock()
            .accounts
            .values()
            .filter(|r| domain.is_none_or(|d| r.id.domain() == d))
            .map(|r| (r.id.clone(), r.locked))
            .collect();
        out.sort_by(|(a, _), (b, _)| (a.domain(), a.user()).cmp(&(b.domain(), b.user())));
        Ok(out)
    }
}

#[async_trait]
impl crate::AliasStore for MemoryStore {
    async fn add_alias(&self, id: &AccountId, alias: &Alias) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.get_mut(id)?;
        if let Some(owner) = inner.aliases.get(alias) {
            return Err(StoreError::AliasTaken(alias.clone(), owner.clone()));
        }
        inner.aliases.insert(alias.clone(), id.clone());
        inner.log(id, ChangeKind::Aliases);
        Ok(())
    }

    async fn remove_alias(&self, alias: &Alias) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let owner = inner
            .aliases
            .remove(alias)
            .ok_or_else(|| StoreError::UnknownAlias(alias.clone()))?;
        inner.log(&owner, ChangeKind::Aliases);
        Ok(())
    }

    async fn aliases(&self, id: &AccountId) -> Result<Vec<Alias>, StoreError> {
        Ok(self
            .lock()
            .aliases
            .iter()
            .filter(|(_, o)| *o == id)
            .map(|(a, _)| a.clone())
            .collect())
    }

    async fn resolve_alias(&self, alias: &Alias) -> Result<Option<AccountId>, StoreError> {
        Ok(self.lock().aliases.get(alias).cloned())
    }
}

#[async_trait]
impl crate::ChangeLog for MemoryStore {
    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>, StoreError> {
        Ok(self
            .lock()
            .changes
            .iter()
            .filter(|c| c.seq > after)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn last_change(&self) -> Result<i64, StoreError> {
        Ok(self.lock().changes.last().map_or(0, |c| c.seq))
    }
}

#[async_trait]
impl crate::ServerStore for MemoryStore {
    /// Nothing to release: the data goes with the last reference.
    async fn close(&self) {}
}
