//! Typed configuration of `cusaxd` (`cusaxd.toml`), with documented defaults.
//!
//! Accounts and domains are data in the store (managed with `cusaxctl`), not configuration;
//! the `domains` listed here are created in the store at start if missing.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// File name of the configuration inside the data directory (here, not in `datadir`, so
/// that `datadir` imports `config` and not the other way round).
pub const CONFIG_FILE: &str = "cusaxd.toml";

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Process-wide settings.
    pub server: ServerSection,
    /// SIP listener settings.
    pub sip: SipSection,
    /// XMPP listener settings.
    pub xmpp: XmppSection,
    /// HTTPS (provisioning, admin API, metrics) listener settings.
    pub http: HttpSection,
    /// Certificate and key; generated (self-signed) on first start when absent.
    pub tls: TlsSection,
    /// Credential derivation policy.
    pub accounts: AccountsSection,
    /// Where the accounts and their data live.
    pub store: StoreSection,
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `sqlite://PATH` (relative to the data directory) or `memory:`; unset: the SQLite file
    /// `cusax.db` in the data directory.
    pub url: Option<String>,
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Domains served; the first is the primary one (certificate subject, banner).
    pub domains: Vec<String>,
    /// Address every listener binds to.
    pub bind: IpAddr,
    /// `human` or `json` log lines.
    pub log_format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// `[sip]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipSection {
    /// UDP and TCP port (0 = any free port).
    pub port: u16,
    /// Shortest registration accepted; shorter ones get 423 (RFC 3261 §10.3 step 7).
    pub min_expires: u32,
    /// Longer registrations are shortened to this many seconds.
    pub max_expires: u32,
    /// Registration time when the client asks for none.
    pub default_expires: u32,
    /// Contacts per address of record.
    pub max_contacts: usize,
    /// Write-back interval of the location service: changed bindings reach the database
    /// within this many seconds, and at shutdown.
    pub location_flush_secs: u64,
    /// UDP sockets sharing the port with SO_REUSEPORT, each with its own receive task.
    pub udp_sockets: usize,
    /// Kernel receive buffer per UDP socket, in bytes.
    pub udp_recv_buffer: usize,
    /// Open TCP connections accepted at once; more are closed at accept.
    pub tcp_max_connections: usize,
    /// Seconds without traffic after which a TCP connection is closed.
    pub tcp_idle_secs: u64,
    /// Largest SIP message accepted (UDP datagram or TCP message), in bytes.
    pub max_message_bytes: usize,
    /// Digest algorithms challenged with, most preferred first (RFC 8760 §2.4): `MD5`,
    /// `SHA-256`, `SHA-512-256`.
    pub digest_algorithms: Vec<String>,
    /// SIP over TLS port (RFC 3261 §26; 0 = any free port, and 0 whenever `port` is 0).
    pub tls_port: u16,
    /// Host written into Via and Record-Route; default: the bind address, or this host's
    /// primary address when binding to all interfaces.
    pub advertise: Option<String>,
    /// Stamp `Call-Info: <xmpp:JID>;purpose=impp` on INVITEs of authenticated users and drop
    /// any other `impp` Call-Info (RFC 7081 §3.5).
    pub call_info: bool,
    /// Refuse SIP presence and IM: SUBSCRIBE/PUBLISH presence → 489, MESSAGE → 405.
    pub refuse_simple: bool,
    /// Per-domain overrides of `call_info` and `refuse_simple`.
    pub policy: std::collections::BTreeMap<String, SipDomainPolicy>,
    /// Whether requests to a registered device go over the flow its REGISTER came on or to
    /// its Contact.
    pub nat_traversal: NatTraversal,
}

/// `sip.nat_traversal`: flow (source address and connection of the REGISTER) or Contact for
/// requests to a registered device (RFC 5626 §5.3, RFC 3581, RFC 3261 §16.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NatTraversal {
    /// The flow for RFC 5626 outbound clients, TCP/TLS registrations and when NAT was
    /// detected at registration; otherwise the Contact.
    #[default]
    Auto,
    /// Always the flow (the behaviour before this setting existed).
    Always,
    /// The Contact, except for RFC 5626 outbound clients (promised their flow).
    Never,
}

/// `[sip.policy."DOMAIN"]`: the call policies of one served domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipDomainPolicy {
    /// As `sip.call_info`, for this domain's callers.
    pub call_info: Option<bool>,
    /// As `sip.refuse_simple`, for requests to or from this domain.
    pub refuse_simple: Option<bool>,
}

/// `[xmpp]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XmppSection {
    /// Client-to-server port with STARTTLS (0 = any free port).
    pub port: u16,
    /// XEP-0368 direct-TLS client port (0 = any free port; when `port` is 0 this one is too,
    /// so tests never collide on the default).
    pub tls_port: u16,
    /// Let clients authenticate without TLS (plain-TCP benchmarks only; RFC 7081 §7 wants TLS
    /// on both protocols). STARTTLS stays offered.
    pub dangerous_allow_plain: bool,
    /// Seconds without traffic after which a stream is closed (clients send whitespace pings).
    pub idle_timeout_secs: u64,
    /// Offline messages kept per account (XEP-0160).
    pub max_offline_messages: u32,
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// HTTPS port (0 = any free port).
    pub port: u16,
    /// Echo the password in provisioning answers (for clients that cannot prompt). Off.
    pub provisioning_includes_password: bool,
}

/// `[tls]`: one TLS policy for SIP, XMPP and HTTPS (RFC 7081 §7, requirements SS-06/XS-06).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// PEM certificate chain; relative paths are under the data directory.
    pub cert: Option<PathBuf>,
    /// PEM private key; relative paths are under the data directory.
    pub key: Option<PathBuf>,
    /// Lowest TLS version accepted on every TLS listener: `"1.2"` or `"1.3"`.
    pub min_version: String,
    /// Both protocols authenticate users only over TLS: XMPP requires STARTTLS or direct
    /// TLS (its default anyway), SIP refuses REGISTER and calls of local users over UDP/TCP.
    pub required: bool,
}

impl Default for TlsSection {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            min_version: "1.2".to_owned(),
            required: false,
        }
    }
}

/// `[accounts]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsSection {
    /// PBKDF2 iterations for new SCRAM verifiers (RFC 7677 asks for at least 4096).
    pub scram_iterations: u32,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            domains: vec!["localhost".to_owned()],
            bind: IpAddr::from([0, 0, 0, 0]),
            log_format: LogFormat::Human,
        }
    }
}

impl Default for SipSection {
    fn default() -> Self {
        Self {
            port: 5060,
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            max_contacts: 16,
            location_flush_secs: 5,
            udp_sockets: 1,
            udp_recv_buffer: 4 << 20,
            tcp_max_connections: 10_000,
            tcp_idle_secs: 600,
            max_message_bytes: 65_535,
            digest_algorithms: vec!["MD5".to_owned()],
            tls_port: 5061,
            advertise: None,
            call_info: true,
            refuse_simple: true,
            policy: std::collections::BTreeMap::new(),
            nat_traversal: NatTraversal::Auto,
        }
    }
}

impl Default for XmppSection {
    fn default() -> Self {
        Self {
            port: 5222,
            tls_port: 5223,
            dangerous_allow_plain: false,
            idle_timeout_secs: 600,
            max_offline_messages: 200,
        }
    }
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            port: 5280,
            provisioning_includes_password: false,
        }
    }
}

impl Default for AccountsSection {
    fn default() -> Self {
        Self {
            scram_iterations: cusax_account::DEFAULT_SCRAM_ITERATIONS,
        }
    }
}

/// A configuration problem, reported as one line by `cusaxd check-config`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said, with line and column.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates configuration text (`path` is for messages only).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that the type system does not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.domains.is_empty() {
            return Err(ConfigError::Invalid(
                "server.domains must name at least one domain".into(),
            ));
        }
        for d in &self.server.domains {
            cusax_account::Domain::parse(d)
                .map_err(|e| ConfigError::Invalid(format!("server.domains: {e}")))?;
        }
        if self.accounts.scram_iterations < 4096 {
            return Err(ConfigError::Invalid(
                "accounts.scram_iterations must be at least 4096 (RFC 7677 §4)".into(),
            ));
        }
        if !matches!(self.tls.min_version.as_str(), "1.2" | "1.3") {
            return Err(ConfigError::Invalid(format!(
                "tls.min_version must be \"1.2\" or \"1.3\", not {:?}",
                self.tls.min_version
            )));
        }
        if self.tls.required && self.xmpp.dangerous_allow_plain {
            return Err(ConfigError::Invalid(
                "tls.required and xmpp.dangerous_allow_plain contradict each other".into(),
            ));
        }
        if let Some(url) = &self.store.url {
            cusax_store::StoreUrl::parse(url)
                .map_err(|e| ConfigError::Invalid(format!("store.url: {e}")))?;
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid(
                "tls.cert and tls.key go together".into(),
            ));
        }
        Ok(())
    }

    /// The served domains, parsed (validated by [`Config::validate`]).
    pub fn domains(&self) -> Result<Vec<cusax_account::Domain>, ConfigError> {
        self.server
            .domains
            .iter()
            .map(|d| {
                cusax_account::Domain::parse(d)
                    .map_err(|e| ConfigError::Invalid(format!("server.domains: {e}")))
            })
            .collect()
    }
}

/// The commented configuration written into a fresh data directory.
pub fn commented_default(domain: &str) -> String {
    format!(
        r#"# cusaxd configuration. Every setting is optional; the values shown are the defaults.
# Command-line flags (--domain, --bind, --sip-port, --xmpp-port, --http-port, --log-format)
# override what is written here. Users and aliases live in the store: use `cusaxctl`.

[server]
# Domains served (SIP realm and XMPP domain); created in the store at start if missing.
domains = ["{domain}"]
# Address all listeners bind to.
bind = "0.0.0.0"
# "human" or "json".
log_format = "human"

[sip]
# SIP over UDP and TCP (RFC 3261).
port = 5060
# Registration times in seconds: below min_expires is refused (423), above max_expires is
# shortened, default_expires applies when the phone asks for none.
min_expires = 60
max_expires = 7200
default_expires = 3600
# Contacts (devices) per address of record.
max_contacts = 16
# Bindings are kept in memory and written to the database every this many seconds and at
# shutdown (write-back); a crash loses at most this interval, phones re-register anyway.
location_flush_secs = 5
# UDP sockets on the port (SO_REUSEPORT) and the kernel receive buffer of each.
udp_sockets = 1
udp_recv_buffer = 4194304
# TCP connection limit and idle timeout (seconds).
tcp_max_connections = 10000
tcp_idle_secs = 600
# Largest message accepted, in bytes.
max_message_bytes = 65535
# Digest challenges, most preferred first. Every account has HA1s for MD5, SHA-256 and
# SHA-512-256, so adding "SHA-256" is safe for the store; but several deployed phones fail
# on a 401/407 with more than one challenge (baresip 1.0 with libre 1.1 gives up, sipp
# answers only the first), so the default offers MD5 alone, as Kamailio does.
digest_algorithms = ["MD5"]
# SIP over TLS (sips:, transport=tls), with the same certificate and TLS versions as XMPP.
tls_port = 5061
# Host put into Via and Record-Route (default: the bind address, or this host's primary
# address when binding to 0.0.0.0). Set it to the public name or address behind NAT.
# advertise = "sip.example.org"
# CUSAX (RFC 7081): stamp Call-Info <xmpp:JID>;purpose=impp on calls of authenticated users.
call_info = true
# CUSAX: presence and IM belong to XMPP; refuse SIMPLE (489 / 405).
refuse_simple = true
# Where requests to a registered device go. "auto": over the flow its REGISTER came on (source
# address and connection) for RFC 5626 outbound clients, registrations over TCP/TLS and when
# NAT was detected (a private Contact address other than the source, or a top Via other than
# the source address and port); otherwise to its Contact, so that a device registered by
# another agent (another port, a PBX) gets its calls. "always": the flow. "never": the
# Contact, except for RFC 5626 outbound clients.
nat_traversal = "auto"
# Per-domain overrides:
# [sip.policy."example.org"]
# call_info = false
# refuse_simple = false

[xmpp]
# XMPP client connections with STARTTLS (RFC 6120).
port = 5222
# Direct TLS (XEP-0368, `_xmpps-client._tcp`).
tls_port = 5223
# Accept logins without TLS (plain-TCP benchmarks only).
dangerous_allow_plain = false
# Close streams silent for this many seconds.
idle_timeout_secs = 600
# Offline messages kept per account.
max_offline_messages = 200

[http]
# HTTPS: provisioning (https://HOST:PORT/provisioning), admin API, metrics.
port = 5280
# Echo the password in provisioning answers, for clients that cannot ask the user for it.
provisioning_includes_password = false

[tls]
# PEM files, relative to the data directory. When unset, a self-signed certificate for the
# first domain is generated at first start under tls/.
# cert = "tls/{domain}.crt"
# key = "tls/{domain}.key"
# One policy for every TLS listener (SIP 5061, XMPP STARTTLS and 5223, HTTPS): the lowest
# version accepted, "1.2" or "1.3".
min_version = "1.2"
# Authenticate users only over TLS on both protocols: XMPP requires TLS anyway (unless
# xmpp.dangerous_allow_plain); this also makes SIP refuse REGISTER and calls over UDP/TCP,
# which most desk phones cannot do, hence off by default.
required = false

[accounts]
# PBKDF2 iterations for SCRAM verifiers derived when a password is set.
scram_iterations = 4096

[store]
# Where accounts, rosters, offline messages and SIP bindings live: "sqlite://PATH" (relative
# paths under the data directory) or "memory:" (nothing survives a restart). cusaxctl edits
# the same store, so it must be one both processes reach. Unset: the file cusax.db here.
# url = "sqlite://cusax.db"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commented_default_parses_to_defaults() {
        let cfg = Config::parse(&commented_default("localhost"), Path::new("x")).expect("valid");
        assert_eq!(cfg, Config::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let e = Config::parse("[sip]\nprot = 1\n", Path::new("c.toml")).expect_err("typo");
        assert!(e.to_string().contains("prot"), "{e}");
        assert!(Config::parse("[accounts]\nscram_iterations = 10\n", Path::new("c")).is_err());
        assert!(Config::parse("[server]\ndomains = [\"bad domain\"]\n", Path::new("c")).is_err());
        assert!(Config::parse("[server]\ndomains = []\n", Path::new("c")).is_err());
        assert!(Config::parse("[tls]\ncert = \"a\"\n", Path::new("c")).is_err());
    }

    #[test]
    fn store_url_is_checked_when_loading() {
        let ok = Config::parse("[store]\nurl = \"memory:\"\n", Path::new("c")).expect("valid");
        assert_eq!(ok.store.url.as_deref(), Some("memory:"));
        let e = Config::parse("[store]\nurl = \"postgres://db\"\n", Path::new("c"))
            .expect_err("no such backend");
        assert!(e.to_string().contains("store.url"), "{e}");
    }
}

/// Command-line values that override the file (each `None`/empty leaves the file's value).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--domain` (repeatable): served domains, the first is primary.
    pub domains: Vec<String>,
    /// `--bind`.
    pub bind: Option<IpAddr>,
    /// `--sip-port`.
    pub sip_port: Option<u16>,
    /// `--xmpp-port`.
    pub xmpp_port: Option<u16>,
    /// `--http-port`.
    pub http_port: Option<u16>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
}

impl Overrides {
    /// Applies the flags on top of a loaded configuration.
    pub fn apply(&self, cfg: &mut Config) {
        if !self.domains.is_empty() {
            cfg.server.domains.clone_from(&self.domains);
        }
        if let Some(b) = self.bind {
            cfg.server.bind = b;
        }
        if let Some(p) = self.sip_port {
            cfg.sip.port = p;
        }
        if let Some(p) = self.xmpp_port {
            cfg.xmpp.port = p;
        }
        if let Some(p) = self.http_port {
            cfg.http.port = p;
        }
        if let Some(f) = self.log_format {
            cfg.server.log_format = f;
        }
    }
}

/// Loads `--config FILE` if given, else `DATA_DIR/cusaxd.toml` if it exists, else defaults.
pub fn load_for(config_file: Option<&Path>, data_dir: &Path) -> Result<Config, ConfigError> {
    match config_file {
        Some(f) => Config::load(f),
        None => {
            let in_dir = data_dir.join(CONFIG_FILE);
            if in_dir.exists() {
                Config::load(&in_dir)
            } else {
                Ok(Config::default())
            }
        }
    }
}
