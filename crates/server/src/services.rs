//! RFC 7081 §3.2 (service management): what every protocol listener of `cusaxd` is given
//! ([`Services`]), the addresses it reports ([`Listening`]) and why a start fails
//! ([`StartError`]).
//!
//! Its own file so that the server, the listeners and the SIP transports all import it
//! without importing each other.

use crate::config::{Config, ConfigError};
use crate::tls;
use cusax_bus::Bus;
use cusax_store::ServerStore;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What every protocol listener gets from the server: configuration, the store, TLS, the
/// cluster event bus and the shutdown signal. Listeners spawn their tasks into a `JoinSet`.
#[derive(Clone)]
pub struct Services {
    /// The effective configuration.
    pub config: Config,
    /// The shared account store.
    pub store: Arc<dyn ServerStore>,
    /// The one TLS configuration for SIP and XMPP (RFC 7081 §7 parity).
    pub tls: Arc<rustls::ServerConfig>,
    /// Cluster events (account changes from any process writing the store, …).
    pub bus: Arc<dyn Bus>,
    /// Cancelled when the server stops.
    pub shutdown: CancellationToken,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("domains", &self.config.server.domains)
            .finish_non_exhaustive()
    }
}

/// The addresses actually bound, for the banner, tests (`--ready-file`) and scripts.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Listening {
    /// SIP over UDP.
    pub sip_udp: Option<SocketAddr>,
    /// SIP over TCP.
    pub sip_tcp: Option<SocketAddr>,
    /// SIP over TLS.
    pub sip_tls: Option<SocketAddr>,
    /// XMPP client-to-server (STARTTLS).
    pub xmpp: Option<SocketAddr>,
    /// XMPP client-to-server over direct TLS (XEP-0368).
    pub xmpp_tls: Option<SocketAddr>,
    /// HTTPS.
    pub http: Option<SocketAddr>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory could not be prepared.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] cusax_store::StoreError),
    /// TLS material could not be prepared.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A listener could not be bound or started.
    #[error("{what} on {addr}: {source}")]
    Listen {
        /// Which listener (`sip/udp`, `xmpp/c2s`, …).
        what: &'static str,
        /// The address it tried.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}
