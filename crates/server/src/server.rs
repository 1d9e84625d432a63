//! RFC 7081 §3.2 (service management): start-up over bound listeners, and graceful
//! shutdown of `cusaxd`.
//!
//! [`Server::start`] takes the [`Listeners`] the binary bound and a shutdown token; it
//! opens the store by URL, loads TLS, starts the account change source on the bus and hands
//! each protocol its sockets.

use crate::config::Config;
use crate::datadir::DataDir;
use crate::listeners::Listeners;
use crate::services::{Listening, Services, StartError};
use crate::tls::{self, TlsFiles};
use cusax_bus::{Bus, LocalBus};
use cusax_store::ServerStore;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Events the bus holds for a lagging subscriber. Binding changes come at the REGISTER
/// rate and share the bus with account changes, whose subscribers resynchronise (the SIP
/// account cache is dropped) when they miss any: 16 times the capacity the account change
/// feed had alone.
const BUS_CAPACITY: usize = 16 * cusax_bus::DEFAULT_CAPACITY;

/// What `cusaxd` needs to start: a validated configuration and its data directory.
#[derive(Debug, Clone)]
pub struct Server {
    /// The configuration (file plus flag overrides).
    pub config: Config,
    /// The data directory (database, certificates, configuration).
    pub data_dir: PathBuf,
}

/// A started server: its store, bound addresses and the handle to stop it.
#[derive(Debug)]
pub struct RunningServer {
    /// Bound addresses.
    pub listening: Listening,
    /// The shared account store.
    pub store: Arc<dyn ServerStore>,
    /// TLS files in use.
    pub tls: TlsFiles,
    /// Cluster events: account changes as they happen (from any process writing the store).
    pub bus: Arc<dyn Bus>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Server {
    /// Prepares the data directory, opens the store, creates the served domains, loads TLS
    /// and starts serving on `listeners`. The server stops when `shutdown` is cancelled or
    /// [`RunningServer::stop`] is called.
    pub async fn start(
        self,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> Result<RunningServer, StartError> {
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
        let url = dir
            .store_url(self.config.store.url.as_deref())
            .map_err(cusax_store::StoreError::from)?;
        let store = cusax_store::open_url(&url).await?;
        if let Some(file) = url.file() {
            // Verifiers are not passwords, but they are secrets all the same.
            crate::datadir::restrict(file, 0o600).map_err(|source| StartError::DataDir {
                path: file.to_owned(),
                source,
            })?;
        }
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

        let shutdown = shutdown.child_token();
        let mut tasks = JoinSet::new();
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new(BUS_CAPACITY));
        let poke = crate::changes::Poke::default();
        let start_seq = store.last_change().await?;
        let services = Services {
            config: self.config.clone(),
            store: store.clone(),
            tls: tls_config,
            bus: bus.clone(),
            shutdown: shutdown.clone(),
        };
        // Consumers subscribe while starting, before the source runs: no change is lost.
        let listening =
            start_protocols(&services, listeners, poke.clone(), &dir, &mut tasks).await?;
        tasks.spawn(crate::changes::publish_account_changes(
            store.clone(),
            start_seq,
            bus.clone(),
            poke,
            shutdown.clone(),
        ));
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            data_dir = %self.data_dir.display(),
            store = %url,
            domains = ?self.config.server.domains,
            new_config = wrote_config,
            self_signed_cert = tls_files.generated,
            "cusaxd started"
        );
        log_listening(&listening);
        Ok(RunningServer {
            listening,
            store,
            tls: tls_files,
            bus,
            shutdown,
            tasks,
        })
    }
}

/// Starts SIP, XMPP, "on the phone" and HTTPS on their sockets; returns the bound
/// addresses.
async fn start_protocols(
    services: &Services,
    listeners: Listeners,
    poke: crate::changes::Poke,
    dir: &DataDir,
    tasks: &mut JoinSet<()>,
) -> Result<Listening, StartError> {
    let mut listening = Listening::default();
    let (sip, sip_ctx) = crate::sip::start(services, listeners.sip, tasks).await?;
    (listening.sip_udp, listening.sip_tcp, listening.sip_tls) = (sip.udp, sip.tcp, sip.tls);
    let (xmpp, xmpp_tls, xmpp_service) =
        crate::xmpp_listener::start(services, listeners.xmpp, tasks)?;
    (listening.xmpp, listening.xmpp_tls) = (xmpp, xmpp_tls);
    // XEP-0108: calls on the SIP side show as "on the phone" on the XMPP side.
    let calls = sip_ctx.clone();
    tasks.spawn(crate::on_the_phone::run(
        services.bus.subscribe(),
        move || calls.core.calls().snapshot(),
        xmpp_service.clone(),
        services.shutdown.clone(),
    ));
    let token = dir.admin_token().map_err(|source| StartError::DataDir {
        path: dir.admin_token_path(),
        source,
    })?;
    let live = Arc::new(crate::live::Live {
        sip: sip_ctx,
        xmpp: xmpp_service,
        store: services.store.clone(),
        scram_iterations: services.config.accounts.scram_iterations,
        poke,
    });
    let admin = cusax_http::AdminState::new(&token, live.clone(), crate::live::metrics(live));
    listening.http =
        crate::http_listener::start(services, listeners.http, &listening, admin, tasks)?;
    Ok(listening)
}

fn log_listening(listening: &Listening) {
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
