//! Store errors: what went wrong in terms an operator or a protocol handler can act on.

use cusax_account::{AccountId, Alias, Domain};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The domain is not served (not in the store).
    #[error("unknown domain {0}")]
    UnknownDomain(Domain),
    /// The domain already exists.
    #[error("domain {0} already exists")]
    DomainExists(Domain),
    /// The domain still has accounts and cannot be deleted.
    #[error("domain {0} still has {1} account(s); delete them first")]
    DomainNotEmpty(Domain, u64),
    /// No such account.
    #[error("no such account {0}")]
    UnknownAccount(AccountId),
    /// The account already exists.
    #[error("account {0} already exists")]
    AccountExists(AccountId),
    /// The alias belongs to an account already (possibly another one).
    #[error("alias {0} is already assigned to {1}")]
    AliasTaken(Alias, AccountId),
    /// No such alias.
    #[error("no such alias {0}")]
    UnknownAlias(Alias),
    /// The stored data could not be read back (corrupt row, unknown enum value).
    #[error("corrupt stored data: {0}")]
    Corrupt(&'static str),
    /// The database itself failed (I/O, locking, connection).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The store URL names no backend this build has.
    #[error(transparent)]
    Url(#[from] crate::open::UrlError),
    /// Running the schema migrations failed.
    #[error("schema migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}
