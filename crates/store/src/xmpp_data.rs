//! RFC 6121 §2 (roster), XEP-0054 (vCard), XEP-0160 (offline messages), XEP-0191 (blocking),
//! XEP-0049 (private XML storage): the per-account XMPP data, stored beside the account and
//! deleted with it.
//!
//! Contacts are bare JIDs kept as text (they may be remote). Stanzas and vCards are kept as
//! XML text: the store never interprets them.

use crate::StoreError;
use async_trait::async_trait;
use cusax_account::AccountId;

/// RFC 6121 §2.1.2.5: the subscription state of a roster item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Subscription {
    /// Neither side sees the other's presence.
    #[default]
    None,
    /// The user sees the contact's presence.
    To,
    /// The contact sees the user's presence.
    From,
    /// Both see each other's presence.
    Both,
}

impl Subscription {
    /// The attribute value (and stored name).
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
        }
    }

    /// Reads a name produced by [`Subscription::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Subscription::None,
            "to" => Subscription::To,
            "from" => Subscription::From,
            "both" => Subscription::Both,
            _ => return None,
        })
    }

    /// Whether the user receives the contact's presence.
    pub fn has_to(self) -> bool {
        matches!(self, Subscription::To | Subscription::Both)
    }

    /// Whether the contact receives the user's presence.
    pub fn has_from(self) -> bool {
        matches!(self, Subscription::From | Subscription::Both)
    }

    /// The state with the `to` half set or cleared.
    pub fn with_to(self, on: bool) -> Self {
        Self::from_halves(on, self.has_from())
    }

    /// The state with the `from` half set or cleared.
    pub fn with_from(self, on: bool) -> Self {
        Self::from_halves(self.has_to(), on)
    }

    fn from_halves(to: bool, from: bool) -> Self {
        match (to, from) {
            (false, false) => Subscription::None,
            (true, false) => Subscription::To,
            (false, true) => Subscription::From,
            (true, true) => Subscription::Both,
        }
    }
}

/// One roster item (RFC 6121 §2.1.2) plus the server-side pending-in flag (§3.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RosterItem {
    /// The contact's bare JID, normalised text.
    pub jid: String,
    /// The user's handle for the contact.
    pub name: Option<String>,
    /// The subscription state.
    pub subscription: Subscription,
    /// `ask='subscribe'`: the user asked for the contact's presence and awaits approval.
    pub ask: bool,
    /// The contact asked for the user's presence and awaits approval (not sent to clients).
    pub pending_in: bool,
    /// Groups, sorted, without duplicates.
    pub groups: Vec<String>,
}

/// Roster items and the roster version (RFC 6121 §2.6), per account.
#[async_trait]
pub trait RosterStore: Send + Sync {
    /// The current roster version and all items, sorted by JID.
    async fn roster(&self, owner: &AccountId) -> Result<(u64, Vec<RosterItem>), StoreError>;
    /// One item, if present.
    async fn roster_item(
        &self,
        owner: &AccountId,
        contact: &str,
    ) -> Result<Option<RosterItem>, StoreError>;
    /// Adds or replaces an item; returns the new roster version.
    async fn put_roster_item(
        &self,
        owner: &AccountId,
        item: &RosterItem,
    ) -> Result<u64, StoreError>;
    /// Removes an item; returns the new version, or `None` if there was no such item.
    async fn remove_roster_item(
        &self,
        owner: &AccountId,
        contact: &str,
    ) -> Result<Option<u64>, StoreError>;
}

/// XEP-0054 vCards as XML text.
#[async_trait]
pub trait VcardStore: Send + Sync {
    /// The stored vCard, if any.
    async fn vcard(&self, owner: &AccountId) -> Result<Option<String>, StoreError>;
    /// Replaces the stored vCard.
    async fn set_vcard(&self, owner: &AccountId, xml: &str) -> Result<(), StoreError>;
}

/// XEP-0160 offline message storage, bounded per account.
#[async_trait]
pub trait OfflineStore: Send + Sync {
    /// Appends a stanza unless the account already holds `max` of them; returns whether it
    /// was stored. An unknown account is [`StoreError::UnknownAccount`].
    async fn push_offline(
        &self,
        owner: &AccountId,
        xml: &str,
        max: u32,
    ) -> Result<bool, StoreError>;
    /// Removes and returns all stored stanzas, oldest first.
    async fn take_offline(&self, owner: &AccountId) -> Result<Vec<String>, StoreError>;
    /// How many stanzas are stored.
    async fn offline_count(&self, owner: &AccountId) -> Result<u64, StoreError>;
}

/// XEP-0191 block lists: JIDs (text) whose stanzas the account does not want.
#[async_trait]
pub trait BlockStore: Send + Sync {
    /// The blocked JIDs, sorted.
    async fn blocklist(&self, owner: &AccountId) -> Result<Vec<String>, StoreError>;
    /// Adds JIDs (already present ones are kept).
    async fn block(&self, owner: &AccountId, jids: &[String]) -> Result<(), StoreError>;
    /// Removes JIDs; an empty slice removes all.
    async fn unblock(&self, owner: &AccountId, jids: &[String]) -> Result<(), StoreError>;
}

/// XEP-0049 private XML storage: per account, one XML fragment (the stored elements, as
/// text) per namespace.
#[async_trait]
pub trait PrivateStore: Send + Sync {
    /// The fragment stored under `namespace`, if any.
    async fn private_xml(
        &self,
        owner: &AccountId,
        namespace: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Stores (or replaces) the fragment of `namespace`; returns `false`, storing nothing,
    /// when that would make the account hold more than `max_namespaces` namespaces. An
    /// unknown account is [`StoreError::UnknownAccount`].
    async fn set_private_xml(
        &self,
        owner: &AccountId,
        namespace: &str,
        xml: &str,
        max_namespaces: u32,
    ) -> Result<bool, StoreError>;
}

/// Everything the XMPP server keeps per account beyond the account itself.
pub trait XmppDataStore:
    RosterStore + VcardStore + OfflineStore + BlockStore + PrivateStore
{
}
impl<T: RosterStore + VcardStore + OfflineStore + BlockStore + PrivateStore> XmppDataStore for T {}
