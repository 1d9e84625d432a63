//! RFC 6120 §13 (security) and §4.6 (idle streams): runtime settings of the XMPP service.

use cusax_xmpp_proto::stream::TlsPolicy;
use cusax_xmpp_proto::xml::XmlLimits;
use std::time::Duration;

/// Settings of the XMPP service, composed by the server from its configuration file.
#[derive(Debug, Clone)]
pub struct XmppConfig {
    /// Served domains (lower-case).
    pub domains: Vec<String>,
    /// Whether STARTTLS is required before authentication.
    pub tls: TlsPolicy,
    /// Per-stanza and per-stream XML limits.
    pub limits: XmlLimits,
    /// A stream with no traffic for this long is closed with `connection-timeout`.
    pub idle_timeout: Duration,
    /// Time allowed from connect to a bound resource.
    pub negotiation_timeout: Duration,
    /// A client that does not read its stanzas for this long is disconnected.
    pub write_timeout: Duration,
    /// Stanzas queued for one session before it is closed as too slow.
    pub session_queue: usize,
    /// Offline messages kept per account (XEP-0160).
    pub max_offline: u32,
    /// PBKDF2 iterations for credentials derived on a password change.
    pub scram_iterations: u32,
    /// Failed SASL attempts allowed per stream.
    pub max_auth_attempts: u8,
}

impl Default for XmppConfig {
    fn default() -> Self {
        Self {
            domains: vec!["localhost".into()],
            tls: TlsPolicy::Required,
            limits: XmlLimits::default(),
            idle_timeout: Duration::from_secs(600),
            negotiation_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            session_queue: 1024,
            max_offline: 200,
            scram_iterations: cusax_account::DEFAULT_SCRAM_ITERATIONS,
            max_auth_attempts: 3,
        }
    }
}
