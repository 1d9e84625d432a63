//! In-memory roster, vCards, offline messages, block lists and private XML (same behaviour as
//! SQLite).

use super::MemoryStore;
use crate::StoreError;
use crate::xmpp_data::{
    BlockStore, OfflineStore, PrivateStore, RosterItem, RosterStore, VcardStore,
};
use async_trait::async_trait;
use cusax_account::AccountId;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// Per-account XMPP data, kept inside the memory store's lock.
#[derive(Debug, Default)]
pub(super) struct XmppData {
    rosters: HashMap<AccountId, (u64, BTreeMap<String, RosterItem>)>,
    vcards: HashMap<AccountId, String>,
    offline: HashMap<AccountId, VecDeque<String>>,
    blocked: HashMap<AccountId, BTreeSet<String>>,
    private: HashMap<AccountId, BTreeMap<String, String>>,
}

impl XmppData {
    /// Drops everything of a deleted account, and other users' roster items naming it.
    pub(super) fn forget(&mut self, id: &AccountId) {
        self.rosters.remove(id);
        self.vcards.remove(id);
        self.offline.remove(id);
        self.blocked.remove(id);
        self.private.remove(id);
        let jid = id.to_string();
        for (ver, items) in self.rosters.values_mut() {
            if items.remove(&jid).is_some() {
                *ver += 1;
            }
        }
    }
}

impl MemoryStore {
    fn with_account<T>(
        &self,
        id: &AccountId,
        f: impl FnOnce(&mut XmppData) -> T,
    ) -> Result<T, StoreError> {
        let mut inner = self.lock();
        if !inner.accounts.contains_key(id) {
            return Err(StoreError::UnknownAccount(id.clone()));
        }
        Ok(f(&mut inner.xmpp))
    }
}

#[async_trait]
impl RosterStore for MemoryStore {
    async fn roster(&self, owner: &AccountId) -> Result<(u64, Vec<RosterItem>), StoreError> {
        Ok(self
            .lock()
            .xmpp
            .rosters
            .get(owner)
            .map(|(v, items)| (*v, items.values().cloned().collect()))
            .unwrap_or_default())
    }

    async fn roster_item(
        &self,
        owner: &AccountId,
        contact: &str,
    ) -> Result<Option<RosterItem>, StoreError> {
        Ok(self
            .lock()
            .xmpp
            .rosters
            .get(owner)
            .and_then(|(_, items)| items.get(contact).cloned()))
    }

    async fn put_roster_item(
        &self,
        owner: &AccountId,
        item: &RosterItem,
    ) -> Result<u64, StoreError> {
        self.with_account(owner, |x| {
            let (ver, items) = x.rosters.entry(owner.clone()).or_default();
            items.insert(item.jid.clone(), item.clone());
            *ver += 1;
            *ver
        })
    }

    async fn remove_roster_item(
        &self,
        owner: &AccountId,
        contact: &str,
    ) -> Result<Option<u64>, StoreError> {
        let mut inner = self.lock();
        let Some((ver, items)) = inner.xmpp.rosters.get_mut(owner) else {
            return Ok(None);
        };
        if items.remove(contact).is_none() {
            return Ok(None);
        }
        *ver += 1;
        Ok(Some(*ver))
    }
}

#[async_trait]
impl VcardStore for MemoryStore {
    async fn vcard(&self, owner: &AccountId) -> Result<Option<String>, StoreError> {
        Ok(self.lock().xmpp.vcards.get(owner).cloned())
    }

    async fn set_vcard(&self, owner: &AccountId, xml: &str) -> Result<(), StoreError> {
        self.with_account(owner, |x| {
            x.vcards.insert(owner.clone(), xml.to_owned());
        })
    }
}

#[async_trait]
impl OfflineStore for MemoryStore {
    async fn push_offline(
        &self,
        owner: &AccountId,
        xml: &str,
        max: u32,
    ) -> Result<bool, StoreError> {
        self.with_account(owner, |x| {
            let q = x.offline.entry(owner.clone()).or_default();
            if q.len() >= max as usize {
                return false;
            }
            q.push_back(xml.to_owned());
            true
        })
    }

    async fn take_offline(&self, owner: &AccountId) -> Result<Vec<String>, StoreError> {
        Ok(self
            .lock()
            .xmpp
            .offline
            .remove(owner)
            .map(Vec::from)
            .unwrap_or_default())
    }

    async fn offline_count(&self, owner: &AccountId) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .xmpp
            .offline
            .get(owner)
            .map_or(0, |q| q.len() as u64))
    }
}

#[async_trait]
impl BlockStore for MemoryStore {
    async fn blocklist(&self, owner: &AccountId) -> Result<Vec<String>, StoreError> {
        Ok(self
            .lock()
            .xmpp
            .blocked
            .get(owner)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn block(&self, owner: &AccountId, jids: &[String]) -> Result<(), StoreError> {
        self.with_account(owner, |x| {
            x.blocked
                .entry(owner.clone())
                .or_default()
                .extend(jids.iter().cloned());
        })
    }

    async fn unblock(&self, owner: &AccountId, jids: &[String]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(set) = inner.xmpp.blocked.get_mut(owner) {
            if jids.is_empty() {
                set.clear();
            }
            for j in jids {
                set.remove(j);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl PrivateStore for MemoryStore {
    async fn private_xml(
        &self,
        owner: &AccountId,
        namespace: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .xmpp
            .private
            .get(owner)
            .and_then(|m| m.get(namespace).cloned()))
    }

    async fn set_private_xml(
        &self,
        owner: &AccountId,
        namespace: &str,
        xml: &str,
        max_namespaces: u32,
    ) -> Result<bool, StoreError> {
        self.with_account(owner, |x| {
            let m = x.private.entry(owner.clone()).or_default();
            let others = m.len() - usize::from(m.contains_key(namespace));
            if others >= max_namespaces as usize {
                return false;
            }
            m.insert(namespace.to_owned(), xml.to_owned());
            true
        })
    }
}
