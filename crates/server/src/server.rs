//! Start-up, the listeners' bound addresses, and graceful shutdown of `cusaxd`.

use crate::config::{Config, ConfigError};
use crate::datadir::DataDir;
use crate::tls::{self, TlsFiles};
use cusax_store::sqlite::SqliteStore;
use cusax_store::{Change, ChangeLog, DomainStore};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How often the account change log is polled for changes made by `cusaxctl`.
const CHANGE_POLL: Duration = Duration::from_millis(200);

/// What `cusaxd` needs to start: a validated configuration and its data directory.
#[derive(Debug, Clone)]
pub struct Server {
    /// The configuration (file plus flag overrides).
    pub config: Config,
    /// The data directory (database, certificates, configuration).
    pub data_dir: PathBuf,
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

/// A started server: its store, bound addresses and the handle to stop it.
#[derive(Debug)]
pub struct RunningServer {
    /// Bound addresses.
    pub listening: Listening,
    /// The shared account store.
    pub store: Arc<SqliteStore>,
    /// TLS files in use.
    pub tls: TlsFiles,
    /// Account changes as they happen (from any process writing the store).
    pub changes: broadcast::Sender<Change>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
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

/// What every protocol listener gets from the server: configuration, the store, TLS, the
/// account change feed and the shutdown signal. Listeners spawn their tasks into `tasks`.
#[derive(Debug, Clone)]
pub struct Services {
    /// The effective configuration.
    pub config: Config,
    /// The shared account store.
    pub store: Arc<SqliteStore>,
    /// The one TLS configuration for SIP and XMPP (RFC 7081 §7 parity).
    pub tls: Arc<rustls::ServerConfig>,
    /// Account changes (lock, delete, password) as they happen.
    pub changes: broadcast::Sender<Change>,
    /// Cancelled when the server stops.
    pub shutdown: CancellationToken,
}

impl Server {
    /// Prepares the data directory, opens the store, creates the served domains, loads TLS
    /// and starts every listener. Returns once all listeners are bound.
    pub async fn start(self) -> Result<RunningServer, StartError> {
        self.config.validate()?;
        tls::install_crypto_provider();
        let domains = self.config.domains()?;
        let dir = DataDir::new(&self.data_dir);
        let wrote_config =
            dir.ensure(domains[0].as_str())
                .map_err(|source| StartError::DataDir {
                    path: self.data_dir.clone(),
                    source,
                })?;
        let store = Arc::new(SqliteStore::open(&dir.db_path()).await?);
        // Verifiers are not passwords, but they are secrets all the same.
        crate::datadir::restrict(&dir.db_path(), 0o600).map_err(|source| StartError::DataDir {
            path: dir.db_path(),
            source,
        })?;
        for d in &domains {
            store.ensure_domain(d).await?;
        }
        let configured = self
            .config
            .tls
            .cert
            .clone()
            .zip(self.config.tls.key.clone());
        let tls_files = tls::ensure_cert(&dir, configured, &self.config.server.domains)?;
        let tls_config = tls::server_config_min(&tls_files, &self.config.tls.min_version)?;

        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let (changes, _) = broadcast::channel(1024);
        let start_seq = store.last_change().await?;
        tasks.spawn(poll_changes(
            store.clone(),
            start_seq,
            changes.clone(),
            shutdown.clone(),
        ));

        let services = Services {
            config: self.config.clone(),
            store: store.clone(),
            tls: tls_config,
            changes: changes.clone(),
            shutdown: shutdown.clone(),
        };
        let mut listening = Listening::default();
        let (sip, sip_ctx) = crate::sip_listener::start(&services, &mut tasks).await?;
        (listening.sip_udp, listening.sip_tcp, listening.sip_tls) = (sip.udp, sip.tcp, sip.tls);
        let (xmpp, xmpp_tls, xmpp_service) =
            crate::xmpp_listener::start(&services, &mut tasks).await?;
        (listening.xmpp, listening.xmpp_tls) = (xmpp, xmpp_tls);
        // XEP-0108: calls on the SIP side show as "on the phone" on the XMPP side.
        let calls = sip_ctx.clone();
        tasks.spawn(crate::on_the_phone::run(
            sip_ctx.core.calls().subscribe(),
            move || calls.core.calls().snapshot(),
            xmpp_service.clone(),
            shutdown.clone(),
        ));
        let token = dir.admin_token().map_err(|source| StartError::DataDir {
            path: dir.admin_token_path(),
            source,
        })?;
        let live = Arc::new(crate::live::Live {
            sip: sip_ctx,
            xmpp: xmpp_service,
            store: store.clone(),
            scram_iterations: self.config.accounts.scram_iterations,
        });
        let admin = cusax_http::AdminState::new(&token, live.clone(), crate::live::metrics(live));
        listening.http =
            crate::http_listener::start(&services, &listening, admin, &mut tasks).await?;
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            data_dir = %self.data_dir.display(),
            domains = ?self.config.server.domains,
            new_config = wrote_config,
            self_signed_cert = tls_files.generated,
            "cusaxd started"
        );
        for (what, addr) in [
            ("sip/udp", listening.sip_udp),
            ("sip/tcp", listening.sip_tcp),
            ("sip/tls", listening.sip_tls),
            ("xmpp/c2s", listening.xmpp),
            ("xmpp/c2s-tls", listening.xmpp_tls),
            ("https", listening.http),
        ] {
            match addr {
                Some(a) => tracing::info!(listener = what, addr = %a, "listening"),
                None => tracing::info!(listener = what, "not enabled in this build"),
            }
        }
        Ok(RunningServer {
            listening,
            store,
            tls: tls_files,
            changes,
            shutdown,
            tasks,
        })
    }
}

impl RunningServer {
    /// A token that is cancelled when the server stops (for tasks started by callers).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops every task and closes the store; gives tasks at most `grace` to finish.
    pub async fn stop(mut self, grace: Duration) {
        self.shutdown.cancel();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!("tasks did not stop in {grace:?}; aborting them");
            self.tasks.abort_all();
        }
        self.store.close().await;
        tracing::info!("cusaxd stopped");
    }
}

/// Follows the store's change log and broadcasts every change (cache invalidation, locks).
async fn poll_changes(
    store: Arc<SqliteStore>,
    mut seq: i64,
    tx: broadcast::Sender<Change>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(CHANGE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store.changes_since(seq, 1000).await {
            Ok(batch) => {
                for c in batch {
                    seq = c.seq;
                    tracing::debug!(account = %c.account, kind = c.kind.as_str(), "account changed");
                    let _ = tx.send(c);
                }
            }
            Err(e) => tracing::warn!(error = %e, "polling the account change log failed"),
        }
    }
}
