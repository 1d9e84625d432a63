//! RFC 6120 §3 and XEP-0368: XMPP client-to-server listeners feeding `cusax-xmpp`.
//!
//! Two sockets: the STARTTLS port and the direct-TLS port. This module only accepts, runs
//! TLS handshakes (with the one rustls configuration shared with SIP) and extracts channel
//! bindings; sessions live in `cusax-xmpp`.
//!
//! Channel binding (SCRAM-*-PLUS, advertised per XEP-0440): `tls-exporter` (RFC 9266) on
//! TLS 1.3 connections, and `tls-server-end-point` (RFC 5929 §4) on every TLS connection whose
//! certificate's signature algorithm defines it. For the latter the handshake starts with
//! rustls' lazy acceptor, so the certificate is asked of the configured resolver with the
//! connection's own ClientHello, the same question rustls then asks to pick it.

use crate::listeners::XmppListeners;
use crate::services::{Services, StartError};
use async_trait::async_trait;
use cusax_xmpp::{Connection, Io, TlsUpgrade, XmppConfig, XmppService, XmppStore};
use cusax_xmpp_proto::sasl::{ChannelBinding, ChannelBindingKind};
use cusax_xmpp_proto::stream::TlsPolicy;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::LazyConfigAcceptor;

/// Connections served at once; further ones wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 50_000;
/// Time allowed for a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Serves the bound c2s listeners (accept loops spawned into `tasks`); returns the STARTTLS
/// and the direct-TLS addresses.
pub(crate) fn start(
    services: &Services,
    listeners: XmppListeners,
    tasks: &mut JoinSet<()>,
) -> Result<(Option<SocketAddr>, Option<SocketAddr>, XmppService), StartError> {
    let cfg = &services.config;
    let starttls = crate::listeners::tokio_listener(listeners.starttls, "xmpp/c2s")?;
    let direct = crate::listeners::tokio_listener(listeners.direct_tls, "xmpp/c2s-tls")?;
    let addrs = (starttls.local_addr().ok(), direct.local_addr().ok());

    let xcfg = XmppConfig {
        domains: cfg
            .server
            .domains
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect(),
        tls: if cfg.xmpp.dangerous_allow_plain {
            TlsPolicy::Optional
        } else {
            TlsPolicy::Required
        },
        idle_timeout: Duration::from_secs(cfg.xmpp.idle_timeout_secs.max(10)),
        max_offline: cfg.xmpp.max_offline_messages,
        scram_iterations: cfg.accounts.scram_iterations,
        ..XmppConfig::default()
    };
    let store: Arc<dyn XmppStore> = services.store.clone();
    let service =
        XmppService::with_bus(xcfg, store, services.bus.clone(), services.shutdown.clone());
    tasks.spawn(service.clone().watch_accounts(services.bus.subscribe()));

    let upgrader: Arc<dyn TlsUpgrade> = Arc::new(Upgrader(services.tls.clone()));
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tasks.spawn(accept_loop(
        starttls,
        service.clone(),
        upgrader.clone(),
        false,
        limit.clone(),
        services.clone(),
    ));
    tasks.spawn(accept_loop(
        direct,
        service.clone(),
        upgrader,
        true,
        limit,
        services.clone(),
    ));
    Ok((addrs.0, addrs.1, service))
}

async fn accept_loop(
    listener: TcpListener,
    service: XmppService,
    upgrader: Arc<dyn TlsUpgrade>,
    direct_tls: bool,
    limit: Arc<Semaphore>,
    services: Services,
) {
    loop {
        let permit = tokio::select! {
            () = services.shutdown.cancelled() => return,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            () = services.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "xmpp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let service = service.clone();
        let upgrader = upgrader.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let conn = if direct_tls {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, upgrader.upgrade(tcp)).await {
                    Ok(Ok((io, cb))) => Connection::DirectTls(io, cb),
                    _ => return tracing::debug!(%peer, "direct TLS handshake failed"),
                }
            } else {
                Connection::Plain(tcp, Some(upgrader))
            };
            service.serve(conn, peer).await;
        });
    }
}

/// The rustls handshake for STARTTLS and direct TLS.
struct Upgrader(Arc<rustls::ServerConfig>);

#[async_trait]
impl TlsUpgrade for Upgrader {
    async fn upgrade(&self, tcp: TcpStream) -> std::io::Result<(Box<dyn Io>, Vec<ChannelBinding>)> {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
        // The resolver is asked with this ClientHello, as rustls asks it inside `into_stream`;
        // the one certificate per service makes both answers the same key.
        let end_point = self
            .0
            .cert_resolver
            .resolve(start.client_hello())
            .and_then(|key| {
                key.end_entity_cert()
                    .ok()
                    .and_then(|cert| ChannelBinding::tls_server_end_point(cert))
            });
        let tls = start.into_stream(self.0.clone()).await?;
        let (_, conn) = tls.get_ref();
        let mut bindings = Vec::new();
        if conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3)
            && let Ok(data) =
                conn.export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
        {
            bindings.push(ChannelBinding {
                kind: ChannelBindingKind::TlsExporter,
                data: data.to_vec(),
            });
        }
        bindings.extend(end_point);
        Ok((Box::new(tls), bindings))
    }
}
