//! RFC 3261 §10.3 and §20.19/§20.23: registrar policy (expiry bounds, contact limits) and the
//! location write policy, as plain values the server fills from its configuration.

use cusax_account::Domain;
use cusax_sip_proto::digest::Algorithm;
use std::time::Duration;

/// Registrar settings. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// Served domains: each is also the digest realm of its accounts (RFC 7081 §3.2).
    pub domains: Vec<Domain>,
    /// Shortest accepted registration (`Min-Expires` in 423 answers), seconds.
    pub min_expires: u32,
    /// Longer requested registrations are shortened to this, seconds.
    pub max_expires: u32,
    /// Used when the client gives neither an `expires` parameter nor an `Expires` header.
    pub default_expires: u32,
    /// Bindings per address of record; a REGISTER that would exceed it is refused (403).
    pub max_contacts: usize,
    /// Digest algorithms offered, one challenge each, most preferred first (RFC 8760 §2.4).
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce is accepted before a `stale=true` re-challenge, seconds.
    pub nonce_ttl_secs: u64,
    /// Nonces whose nonce-counts are remembered for replay detection (about 40 bytes each).
    pub nonce_slots: usize,
    /// Write policy: dirty bindings are written to the store at this interval (write-back).
    pub flush_interval: Duration,
    /// Accounts kept in the credential cache before the least recently loaded are dropped.
    pub cache_capacity: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        Self {
            domains: Vec::new(),
            min_expires: 60,
            max_expires: 7_200,
            default_expires: 3_600,
            max_contacts: 16,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            nonce_ttl_secs: 300,
            nonce_slots: 1 << 17,
            flush_interval: Duration::from_secs(5),
            cache_capacity: 1 << 20,
        }
    }
}
