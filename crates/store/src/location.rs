//! RFC 3261 §10.3 (the location service): registered contact bindings per address of record.
//!
//! The registrar keeps its bindings in memory and writes them behind to a [`LocationStore`];
//! the store is what survives a restart. The write policy lives in the registrar (`cusax-sip`),
//! not here: this trait only loads, replaces and purges.

use crate::StoreError;
use async_trait::async_trait;
use cusax_account::{AccountId, Alias, Aor};
use std::net::SocketAddr;

/// One contact bound to an address of record, with what is needed to route to it later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The address of record the contact is bound to.
    pub aor: Aor,
    /// The contact URI as registered (without header parameters such as `expires` or `q`).
    pub contact: String,
    /// When the binding expires, seconds since the Unix epoch.
    pub expires_at: i64,
    /// The `q` preference in thousandths (`q=0.5` → 500), if the client gave one.
    pub q: Option<u16>,
    /// Call-ID of the REGISTER that last refreshed the binding (RFC 3261 §10.3 step 7).
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: u32,
    /// `+sip.instance` (RFC 5626 §4.1), without quotes and angle brackets.
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626 §4.2).
    pub reg_id: Option<u32>,
    /// Path header values of the REGISTER, in order (RFC 3327); none contains a line feed.
    pub path: Vec<String>,
    /// Source address the REGISTER came from (for NAT traversal and flows, RFC 5626).
    pub source: Option<SocketAddr>,
    /// Transport the REGISTER came over, lower case (`udp`, `tcp`, `tls`, `ws`, …).
    pub transport: String,
    /// NAT was detected when the REGISTER arrived: its Contact or top Via named another
    /// address than the one it came from. Rows written before this field existed read as
    /// `true`, so such devices stay reached over their flow, as then, until they refresh.
    pub nat: bool,
    /// The User-Agent header of the REGISTER, if any.
    pub user_agent: Option<String>,
    /// When the binding was first created, seconds since the Unix epoch.
    pub registered_at: i64,
}

/// Durable storage of bindings. Writes replace the whole binding set of an AOR at once, which
/// is what a registrar flushing its in-memory state needs, and keeps backends trivially equal.
#[async_trait]
pub trait LocationStore: Send + Sync {
    /// For every `(aor, bindings)` replaces the stored bindings of `aor` with `bindings` (an
    /// empty list removes them all); the whole batch is one transaction where the backend has
    /// them. Every binding's `aor` must equal its key.
    async fn save_bindings(&self, batch: &[(Aor, Vec<Binding>)]) -> Result<(), StoreError>;
    /// The stored bindings of one AOR (expired ones included), sorted by contact.
    async fn bindings(&self, aor: &Aor) -> Result<Vec<Binding>, StoreError>;
    /// Every binding still valid at `now` (Unix seconds), sorted by AOR then contact: what a
    /// registrar loads at start.
    async fn load_bindings(&self, now: i64) -> Result<Vec<Binding>, StoreError>;
    /// Deletes bindings with `expires_at <= now`; returns how many were deleted.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError>;
}

/// Every AOR under which an account's devices may be bound, so that deleting the account can
/// delete their bindings: its own `sip:user@domain`, each SIP alias, and each number alias as
/// `sip:NUMBER@domain` (the registrar accepts a REGISTER to any of them, see
/// `cusax-sip`'s `CachedAccount::owns`). Call it before the aliases are deleted.
pub(crate) fn account_aors(id: &AccountId, aliases: &[Alias]) -> Vec<Aor> {
    let mut out = vec![id.aor()];
    for a in aliases {
        match a {
            Alias::Sip(aor) => out.push(aor.clone()),
            // A stored number is `+`/digits only, so the URI always parses; skip rather than
            // fail a deletion should that ever change.
            Alias::Number(n) => out.extend(Aor::parse(&format!("sip:{n}@{}", id.domain())).ok()),
        }
    }
    out.sort();
    out.dedup();
    out
}
