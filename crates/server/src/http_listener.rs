//! RFC 7081 §2 and §3.2: the HTTPS listener (provisioning today) with the domain's certificate.

use crate::services::{Listening, Services, StartError};
use cusax_http::{Peer, ProvisioningState, ServiceInfo, SipEndpoint, XmppEndpoint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// A TLS handshake that takes longer than this is dropped (slowloris guard).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the router on the bound HTTPS listener; returns its address.
pub(crate) fn start(
    services: &Services,
    listener: std::net::TcpListener,
    listening: &Listening,
    admin: cusax_http::AdminState,
    tasks: &mut JoinSet<()>,
) -> Result<Option<SocketAddr>, StartError> {
    let listener = crate::listeners::tokio_listener(listener, "https")?;
    let local = listener.local_addr().map_err(|source| StartError::Listen {
        what: "https",
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    let info = ServiceInfo {
        host: services
            .config
            .server
            .domains
            .first()
            .cloned()
            .unwrap_or_else(|| "localhost".into()),
        sip: listening
            .sip_udp
            .or(listening.sip_tcp)
            .map(|a| SipEndpoint {
                port: a.port(),
                transports: [
                    listening.sip_udp.map(|_| "udp"),
                    listening.sip_tcp.map(|_| "tcp"),
                    listening.sip_tls.map(|_| "tls"),
                ]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect(),
                tls_port: listening.sip_tls.map(|t| t.port()),
            }),
        xmpp: listening.xmpp.map(|a| XmppEndpoint {
            port: a.port(),
            direct_tls_port: listening.xmpp_tls.map(|t| t.port()),
            starttls_required: !services.config.xmpp.dangerous_allow_plain,
        }),
        https_port: local.port(),
        include_password: services.config.http.provisioning_includes_password,
    };
    let router = cusax_http::router(ProvisioningState::new(services.store.clone(), info), admin);
    let mut tls = (*services.tls).clone();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let shutdown = services.shutdown.clone();
    tasks.spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                () = shutdown.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "https accept failed");
                        continue;
                    }
                },
            };
            let acceptor = acceptor.clone();
            let svc = router.clone().layer(axum::Extension(Peer(peer)));
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
                    return;
                };
                let conn = Builder::new(TokioExecutor::new());
                let serve = conn.serve_connection(TokioIo::new(tls), TowerToHyperService::new(svc));
                tokio::select! {
                    r = serve => if let Err(e) = r { tracing::debug!(error = %e, %peer, "https connection ended") },
                    () = shutdown.cancelled() => {}
                }
            });
        }
    });
    Ok(Some(local))
}
