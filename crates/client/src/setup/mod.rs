//! RFC 7081 §2 ("online provisioning", "manual provisioning") with RFC 3263 §4 and RFC 6120
//! §3.2.1 for DNS: how the client learns its CUSAX service account — a SIP account for calls
//! and an XMPP account for chat and presence, linked one to one.
//!
//! Three ways lead to the same [`ServiceAccount`]:
//! - [`provision`]: one HTTPS login at the service's provisioning URL (cusaxd's JSON document);
//! - [`discover`] / [`discover_account`]: the domain's DNS records (NAPTR/SRV for SIP, SRV for
//!   XMPP), with the defaults of each RFC when there are none;
//! - [`ServiceAccount::manual`]: the user names the account and the server host.
//!
//! A [`ServiceAccount`] is plain data with serde, meant for the client's configuration file
//! (which holds the password, so it must be private to the user). Its `Debug` hides the
//! password.

mod dns;
mod provision;

pub use dns::{Discovered, DnsConfig, SipTarget, SipVia, XmppTarget, discover, discover_account};
pub use provision::{MAX_DOCUMENT_BYTES, SCHEMA_VERSION, provision};

use cusax_account::{AccountId, Domain};
use serde::{Deserialize, Serialize};
use std::fmt;

/// SIP transport of the account's flow to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SipTransport {
    /// UDP (RFC 3261 §18; the default of a `sip:` URI without SRV, RFC 3263 §4.1).
    #[default]
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP (`sips:`, RFC 3261 §26.2).
    Tls,
}

impl SipTransport {
    /// The port used when nothing else is known (RFC 3261 §19.1.2: 5060, 5061 for TLS).
    pub fn default_port(self) -> u16 {
        match self {
            Self::Udp | Self::Tcp => 5060,
            Self::Tls => 5061,
        }
    }

    /// The lower-case token (`udp`, `tcp`, `tls`) used in cusaxd's provisioning document.
    pub fn token(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }

    /// Reads a token case-insensitively.
    pub fn from_token(t: &str) -> Option<Self> {
        [Self::Udp, Self::Tcp, Self::Tls]
            .into_iter()
            .find(|k| k.token().eq_ignore_ascii_case(t))
    }
}

impl fmt::Display for SipTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// How the XMPP connection gets its TLS layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XmppTls {
    /// Plain TCP, then STARTTLS, which the client requires (RFC 6120 §5; RFC 7081 §7).
    #[default]
    Starttls,
    /// TLS from the first byte (XEP-0368, `_xmpps-client._tcp`).
    Direct,
}

/// The SIP half of the service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipSetup {
    /// Address of record, `sip:user@domain`.
    pub aor: String,
    /// Digest username.
    pub username: String,
    /// Digest realm (the server's challenge names it anyway; this is the expected one).
    pub realm: String,
    /// Registrar and outbound proxy host.
    pub server_host: String,
    /// Its port for [`SipSetup::transport`].
    pub port: u16,
    /// The transport to use.
    pub transport: SipTransport,
    /// Port of SIP over TLS on the same host, when the service says it offers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_port: Option<u16>,
}

/// The XMPP half of the service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XmppSetup {
    /// Bare JID, `user@domain`.
    pub jid: String,
    /// Server host to connect to.
    pub host: String,
    /// Its port for [`XmppSetup::tls`].
    pub port: u16,
    /// STARTTLS (required) or direct TLS on [`XmppSetup::port`].
    pub tls: XmppTls,
    /// Direct-TLS port on the same host (XEP-0368), when the service says it offers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_tls_port: Option<u16>,
}

/// The CUSAX link between the two accounts (RFC 7081 §3.4): the SIP AOR and the JID that
/// belong to the same user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationship {
    /// The SIP address of record.
    pub sip: String,
    /// The XMPP bare JID.
    pub xmpp: String,
}

/// Where the account definition came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "method")]
pub enum SetupSource {
    /// Typed in by the user.
    Manual,
    /// Found in DNS.
    Dns,
    /// Fetched from a provisioning URL; the client may fetch it again (RFC 7081 §2).
    Provisioning {
        /// The URL the document came from.
        url: String,
    },
}

/// A complete CUSAX service account: one login, a SIP account and an XMPP account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccount {
    /// The service account, `user@domain`.
    pub account: String,
    /// The service password (the same for both protocols), when kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The SIP account; `None` when the service has no SIP.
    pub sip: Option<SipSetup>,
    /// The XMPP account; `None` when the service has no XMPP.
    pub xmpp: Option<XmppSetup>,
    /// The link between the two.
    pub cusax: Relationship,
    /// How this definition was obtained.
    pub source: SetupSource,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("account", &self.account)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("sip", &self.sip)
            .field("xmpp", &self.xmpp)
            .field("cusax", &self.cusax)
            .field("source", &self.source)
            .finish()
    }
}

/// Why an account could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The account address is not `user@domain`.
    #[error("account: {0}")]
    Account(#[from] cusax_account::AddressError),
    /// A host name or address is not usable.
    #[error("invalid host `{0}`")]
    Host(String),
    /// The provisioning URL cannot be used (syntax, scheme, plain HTTP to a remote host).
    #[error("provisioning URL: {0}")]
    Url(String),
    /// The TLS client configuration could not be built (CA file, roots).
    #[error(transparent)]
    Trust(#[from] crate::tls::TlsError),
    /// The server could not be reached.
    #[error("cannot connect to {host}:{port}: {reason}")]
    Connect {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The I/O error.
        reason: String,
    },
    /// The TLS handshake failed, e.g. the certificate is not trusted or names another host.
    #[error("TLS with {host} failed: {reason}")]
    Tls {
        /// Host whose certificate was checked.
        host: String,
        /// rustls' reason.
        reason: String,
    },
    /// HTTP failed below the status line (connection closed, malformed response).
    #[error("HTTP: {0}")]
    Http(String),
    /// 401: the server did not accept the user name and password.
    #[error("the provisioning server refused the user name or password (401)")]
    Unauthorized,
    /// 403: the credentials are right but the account may not be provisioned (locked).
    #[error("the provisioning server refused this account (403): {0}")]
    Forbidden(String),
    /// 429: too many failed logins from this address.
    #[error("too many failed logins; retry after {retry_after_secs:?} s (429)")]
    RateLimited {
        /// The server's `Retry-After`, in seconds, if given.
        retry_after_secs: Option<u64>,
    },
    /// Any other non-success status.
    #[error("the provisioning server answered {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the body, for the user.
        body: String,
    },
    /// The body is larger than [`MAX_DOCUMENT_BYTES`].
    #[error("the provisioning document exceeds {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The answer is not JSON (wrong content type or does not parse).
    #[error("the provisioning answer is not JSON: {0}")]
    NotJson(String),
    /// The document has a schema version this client does not know.
    #[error(
        "provisioning schema version {found} is not supported (this client reads {SCHEMA_VERSION})"
    )]
    SchemaVersion {
        /// The version in the document.
        found: u64,
    },
    /// The document is JSON of the right version but a field is missing or wrong.
    #[error("the provisioning document is invalid: {0}")]
    Document(String),
    /// The request took longer than allowed.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// A DNS query failed (not "no such record", which is an answer).
    #[error("DNS: {0}")]
    Dns(String),
    /// DNS found neither a SIP nor an XMPP service for the domain.
    #[error("no SIP or XMPP service found in DNS for {0}")]
    NoService(String),
}

/// A usable host: an IP address (v6 with or without brackets) or a host name.
pub(crate) fn check_host(host: &str) -> Result<String, SetupError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(bare.to_owned());
    }
    Domain::parse(host)
        .map(|d| d.as_str().to_owned())
        .map_err(|_| SetupError::Host(host.to_owned()))
}

impl ServiceAccount {
    /// Manual provisioning (RFC 7081 §2): the account `user@domain` on `server_host` (a host
    /// name or address; `None` is the account's domain), with the defaults of each protocol:
    /// SIP over UDP to 5060 and XMPP with STARTTLS to 5222. [`ServiceAccount::with_sip_transport`]
    /// picks another SIP transport (TLS on 5061).
    pub fn manual(account: &str, server_host: Option<&str>) -> Result<Self, SetupError> {
        let id = AccountId::parse(account)?;
        let host = match server_host {
            Some(h) => check_host(h.trim())?,
            None => id.domain().as_str().to_owned(),
        };
        let aor = id.aor().to_string();
        let jid = id.bare_jid().to_string();
        Ok(Self {
            account: id.to_string(),
            password: None,
            sip: Some(SipSetup {
                aor: aor.clone(),
                username: id.user().to_owned(),
                realm: id.domain().as_str().to_owned(),
                server_host: host.clone(),
                port: SipTransport::Udp.default_port(),
                transport: SipTransport::Udp,
                tls_port: None,
            }),
            xmpp: Some(XmppSetup {
                jid: jid.clone(),
                host,
                port: 5222,
                tls: XmppTls::Starttls,
                direct_tls_port: None,
            }),
            cusax: Relationship {
                sip: aor,
                xmpp: jid,
            },
            source: SetupSource::Manual,
        })
    }

    /// The same account with SIP over `transport` on that transport's default port (or the
    /// known TLS port for TLS).
    pub fn with_sip_transport(mut self, transport: SipTransport) -> Self {
        if let Some(s) = &mut self.sip {
            s.port = match (transport, s.tls_port) {
                (SipTransport::Tls, Some(p)) => p,
                _ => transport.default_port(),
            };
            s.transport = transport;
        }
        self
    }

    /// The same account with the password kept.
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_defaults_follow_the_rfcs() {
        let a = ServiceAccount::manual("Alice@Example.org", None).expect("valid");
        assert_eq!(a.account, "alice@example.org");
        let sip = a.sip.as_ref().expect("sip");
        assert_eq!(sip.aor, "sip:alice@example.org");
        assert_eq!(sip.username, "alice");
        assert_eq!(sip.realm, "example.org");
        assert_eq!(sip.server_host, "example.org");
        assert_eq!((sip.port, sip.transport), (5060, SipTransport::Udp));
        let x = a.xmpp.as_ref().expect("xmpp");
        assert_eq!(x.jid, "alice@example.org");
        assert_eq!((x.host.as_str(), x.port), ("example.org", 5222));
        assert_eq!(x.tls, XmppTls::Starttls);
        assert_eq!(a.cusax.sip, "sip:alice@example.org");
        assert_eq!(a.cusax.xmpp, "alice@example.org");
        assert_eq!(a.source, SetupSource::Manual);

        let t = ServiceAccount::manual("bob@example.org", Some("sip.example.net"))
            .expect("valid")
            .with_sip_transport(SipTransport::Tls);
        let sip = t.sip.as_ref().expect("sip");
        assert_eq!(sip.server_host, "sip.example.net");
        assert_eq!((sip.port, sip.transport), (5061, SipTransport::Tls));
        let ip = ServiceAccount::manual("bob@example.org", Some("[::1]")).expect("v6");
        assert_eq!(ip.xmpp.expect("xmpp").host, "::1");
    }

    #[test]
    fn manual_refuses_bad_input() {
        for bad in [
            "alice",
            "@example.org",
            "alice@",
            "al ice@example.org",
            "a@b@c",
        ] {
            assert!(ServiceAccount::manual(bad, None).is_err(), "{bad}");
        }
        for host in ["", "bad host", "exa_mple.org", "-x.org"] {
            assert!(
                matches!(
                    ServiceAccount::manual("alice@example.org", Some(host)),
                    Err(SetupError::Host(_))
                ),
                "{host:?}"
            );
        }
    }

    #[test]
    fn serde_round_trip_and_debug_hides_the_password() {
        let a = ServiceAccount::manual("alice@example.org", Some("127.0.0.1"))
            .expect("valid")
            .with_password("s3cret");
        let text = serde_json::to_string(&a).expect("serialize");
        assert!(text.contains("\"transport\":\"udp\""), "{text}");
        assert!(text.contains("\"tls\":\"starttls\""), "{text}");
        assert!(text.contains("\"method\":\"manual\""), "{text}");
        let back: ServiceAccount = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, a);
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("<hidden>"), "{dbg}");
    }

    #[test]
    fn transport_tokens() {
        assert_eq!(SipTransport::from_token("TLS"), Some(SipTransport::Tls));
        assert_eq!(SipTransport::from_token("sctp"), None);
        assert_eq!(SipTransport::Tcp.to_string(), "tcp");
    }
}
