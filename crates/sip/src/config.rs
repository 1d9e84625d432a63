//! RFC 3261 §10.3 and §20.19/§20.23: registrar policy (expiry bounds, contact limits) and the
//! location write policy, as plain values the server fills from its configuration.

use cusax_account::Domain;
use cusax_sip_proto::digest::Algorithm;
use cusax_sip_proto::transaction::TimerConfig;
use std::collections::HashMap;
use std::net::IpAddr;
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
    /// Proxy settings (RFC 3261 §16).
    pub proxy: ProxyConfig,
}

/// How this element names itself in Via, Record-Route and Path (RFC 3261 §16.6 steps 4, 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    /// Host (IP literal or name) put into Via sent-by and Record-Route.
    pub host: String,
    /// Port of the UDP and TCP listeners.
    pub port: u16,
    /// Port of the TLS listener, if one runs.
    pub tls_port: Option<u16>,
    /// Addresses the listeners are reachable on besides `host` (the bind address; when binding
    /// to all interfaces, the loopback addresses): a digest `uri` naming one of them, at one
    /// of our ports, names this server (RFC 7616 §3.4.6).
    pub local_ips: Vec<IpAddr>,
}

impl Default for Advertised {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 5060,
            tls_port: None,
            local_ips: Vec::new(),
        }
    }
}

/// The CUSAX call policies of one domain (RFC 7081 §3.5, requirements SS-02/03/09).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainPolicy {
    /// Stamp `Call-Info: <xmpp:JID>;purpose=impp` on INVITEs of authenticated callers and
    /// strip every other `impp` Call-Info.
    pub call_info: bool,
    /// Refuse SIP presence and IM (SUBSCRIBE/PUBLISH presence → 489, MESSAGE → 405).
    pub refuse_simple: bool,
}

impl Default for DomainPolicy {
    fn default() -> Self {
        Self {
            call_info: true,
            refuse_simple: true,
        }
    }
}

/// Where requests for a binding go: over the flow its REGISTER came on (source address and
/// connection, RFC 5626 §5.3 / RFC 3581) or to its Contact (RFC 3261 §16.5); `sip.nat_traversal`.
/// A binding registered through a `Path` (RFC 3327) always follows its Path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NatTraversal {
    /// The flow when the client asked for one (RFC 5626 `reg-id` with `+sip.instance`), when
    /// it registered over a connection (TCP, TLS), or when NAT was detected at registration;
    /// otherwise the Contact.
    #[default]
    Auto,
    /// Always the flow.
    Always,
    /// The Contact, except for RFC 5626 outbound bindings: the registrar answered those with
    /// `Require: outbound`, which promises that their requests come over the flow (§6), and
    /// their Contact usually cannot be reached from outside at all.
    Never,
}

/// Proxy settings. `Default` gives the documented defaults.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    /// How the proxy names itself.
    pub advertised: Advertised,
    /// Policy for domains without an entry in `domains`.
    pub default_policy: DomainPolicy,
    /// Per-domain overrides, keyed by domain name.
    pub domains: HashMap<String, DomainPolicy>,
    /// Refuse authenticated requests (REGISTER, calls) that arrive over plain UDP or TCP.
    pub tls_required: bool,
    /// Transaction timers (T1, T2, T4).
    pub timers: TimerConfig,
    /// Flow or Contact for requests to registered devices.
    pub nat_traversal: NatTraversal,
}

impl ProxyConfig {
    /// The policy of `domain`.
    pub fn policy(&self, domain: &str) -> DomainPolicy {
        self.domains
            .get(domain)
            .copied()
            .unwrap_or(self.default_policy)
    }
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
            proxy: ProxyConfig::default(),
        }
    }
}
