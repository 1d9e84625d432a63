//! RFC 7081 §3.2 ("a common authentication back-end"): the one account store behind SIP and XMPP.
//!
//! Narrow traits, one per concern, with identical backends: [`sqlite::SqliteStore`] (the
//! embedded default) and [`memory::MemoryStore`] (tests, ephemeral demos). Callers open a
//! backend by URL ([`open`]: `sqlite://PATH`, `sqlite::memory:`, `memory:`) and hold an
//! `Arc<dyn ServerStore>`. One conformance battery (`tests/conformance/`) runs against every
//! URL of [`conformance_urls`]. A PostgreSQL backend will sit beside `sqlite/` with the same
//! file names, one more URL scheme and the same battery.

mod error;
pub mod location;
pub mod memory;
mod open;
pub mod sqlite;
mod traits;
mod xmpp_data;

pub use error::StoreError;
pub use location::{Binding, LocationStore};
pub use open::{
    AccountSource, ServerStore, StoreUrl, UrlError, XmppStore, conformance_urls, open, open_url,
};
pub use traits::{
    AccountRecord, AccountStore, AliasStore, Change, ChangeKind, ChangeLog, DomainStore, Store,
};
pub use xmpp_data::{
    BlockStore, OfflineStore, PrivateStore, RosterItem, RosterStore, Subscription, VcardStore,
    XmppDataStore,
};

/// Seconds since the Unix epoch, as stored in every `*_at` column.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
