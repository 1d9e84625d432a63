//! The narrow storage traits. Each protocol layer asks only for what it needs.

use crate::StoreError;
use async_trait::async_trait;
use cusax_account::{AccountId, Alias, Credentials, Domain};

/// An account as stored: identity, lock state and derived credentials (never a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// The account.
    pub id: AccountId,
    /// A locked account cannot authenticate on either protocol.
    pub locked: bool,
    /// SCRAM verifiers and digest HA1s.
    pub credentials: Credentials,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: i64,
}

/// Served domains.
#[async_trait]
pub trait DomainStore: Send + Sync {
    /// Adds a domain; [`StoreError::DomainExists`] if present.
    async fn add_domain(&self, domain: &Domain) -> Result<(), StoreError>;
    /// Adds a domain unless it is already there.
    async fn ensure_domain(&self, domain: &Domain) -> Result<(), StoreError> {
        match self.add_domain(domain).await {
            Ok(()) | Err(StoreError::DomainExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
    /// All domains, sorted.
    async fn list_domains(&self) -> Result<Vec<Domain>, StoreError>;
    /// True when the domain is served.
    async fn has_domain(&self, domain: &Domain) -> Result<bool, StoreError>;
    /// Deletes an empty domain.
    async fn delete_domain(&self, domain: &Domain) -> Result<(), StoreError>;
}

/// Accounts, their credentials and lock state.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account in a served domain.
    async fn create_account(&self, id: &AccountId, creds: &Credentials) -> Result<(), StoreError>;
    /// Creates many accounts at once (one transaction where the backend has them); returns one
    /// result per input, in order, so a bulk import can report each bad row.
    async fn create_accounts(
        &self,
        batch: &[(AccountId, Credentials)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError>;
    /// Reads an account.
    async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError>;
    /// Replaces all credentials (a password change).
    async fn set_credentials(&self, id: &AccountId, creds: &Credentials) -> Result<(), StoreError>;
    /// Locks or unlocks an account.
    async fn set_locked(&self, id: &AccountId, locked: bool) -> Result<(), StoreError>;
    /// Deletes an account and every trace of it, atomically: credentials, aliases, its roster,
    /// vCard, offline messages, block list and private XML, the SIP bindings of its AOR and of
    /// its aliases (where the backend also is the [`LocationStore`](crate::LocationStore)), and
    /// other accounts' roster items naming it (their roster versions move on), so that a later
    /// account of the same name inherits no presence subscription. Kept, because they belong
    /// to others: their block-list entries for the address (a block that outlived a re-created
    /// name should still hold) and messages it sent that wait in their offline storage. The
    /// change log keeps a `Deleted` entry so running servers can drop sessions and bindings.
    async fn delete_account(&self, id: &AccountId) -> Result<(), StoreError>;
    /// Accounts of one domain (or all), sorted, with their lock state.
    async fn list_accounts(
        &self,
        domain: Option<&Domain>,
    ) -> Result<Vec<(AccountId, bool)>, StoreError>;
}

/// Operator-assigned aliases (extra SIP URIs and numbers) that route to an account.
#[async_trait]
pub trait AliasStore: Send + Sync {
    /// Assigns an alias; [`StoreError::AliasTaken`] if any account has it.
    async fn add_alias(&self, id: &AccountId, alias: &Alias) -> Result<(), StoreError>;
    /// Removes an alias.
    async fn remove_alias(&self, alias: &Alias) -> Result<(), StoreError>;
    /// The aliases of one account, sorted.
    async fn aliases(&self, id: &AccountId) -> Result<Vec<Alias>, StoreError>;
    /// The account an alias belongs to.
    async fn resolve_alias(&self, alias: &Alias) -> Result<Option<AccountId>, StoreError>;
}

/// What happened to an account, so a running server can react to `cusaxctl` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeKind {
    /// Account created.
    Created,
    /// Password (credentials) changed.
    Credentials,
    /// Account locked.
    Locked,
    /// Account unlocked.
    Unlocked,
    /// Account deleted.
    Deleted,
    /// Aliases added or removed.
    Aliases,
}

impl ChangeKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Credentials => "credentials",
            ChangeKind::Locked => "locked",
            ChangeKind::Unlocked => "unlocked",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Aliases => "aliases",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            ChangeKind::Created,
            ChangeKind::Credentials,
            ChangeKind::Locked,
            ChangeKind::Unlocked,
            ChangeKind::Deleted,
            ChangeKind::Aliases,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One entry of the account change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Monotonic sequence number.
    pub seq: i64,
    /// The account concerned.
    pub account: AccountId,
    /// What happened.
    pub kind: ChangeKind,
}

/// The account change log, written by every mutating call and polled by running servers.
#[async_trait]
pub trait ChangeLog: Send + Sync {
    /// Changes with `seq > after`, oldest first, at most `limit`.
    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>, StoreError>;
    /// The highest sequence number so far (0 when empty).
    async fn last_change(&self) -> Result<i64, StoreError>;
}

/// Everything a `cusaxd` needs from its store.
pub trait Store: DomainStore + AccountStore + AliasStore + ChangeLog {}
impl<T: DomainStore + AccountStore + AliasStore + ChangeLog> Store for T {}
