//! RFC 3261 §18 (transport layer) and §16 (proxy behaviour): what the SIP transports share —
//! the [`SipCore`], parser limits, counters, the open stream connections — and how the core's
//! settings are read from the configuration.
//!
//! The bottom of the SIP module: it imports none of its siblings. Opening an outgoing stream
//! connection belongs to `stream`, so the context holds it as a function ([`Connector`]) that
//! `mod` fills in; delivery (`dispatch`) calls it without importing `stream`.

use crate::config::{ConfigError, SipSection};
use crate::services::{Services, StartError};
use bytes::Bytes;
use cusax_sip::{Advertised, DomainPolicy, ProxyConfig, RegistrarConfig, SipCore, Transport};
use cusax_sip_proto::Limits;
use cusax_sip_proto::digest::Algorithm;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Counters of what the transports dropped or refused, for logs and (later) metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Datagrams or stream messages that could not be parsed into a message at all.
    pub(crate) unparsable: AtomicU64,
    /// Requests that failed validation and were answered with an error response.
    pub(crate) answered_invalid: AtomicU64,
    /// Invalid messages that could not be answered (no usable Via, From, To, Call-ID, CSeq).
    pub(crate) dropped_invalid: AtomicU64,
    /// TCP connections refused because of the connection limit.
    pub(crate) refused_connections: AtomicU64,
    /// UDP requests dropped because too many account loads were already in flight.
    pub(crate) dropped_busy: AtomicU64,
    /// Messages the proxy could not deliver (no flow, connection failed, queue full).
    pub(crate) undeliverable: AtomicU64,
}

/// Messages queued for one connection's writer.
pub(crate) type ConnTx = mpsc::Sender<Bytes>;

/// Queue length per connection; a peer that does not read loses messages beyond it.
pub(crate) const CONN_QUEUE: usize = 512;

/// Opens an outgoing stream connection and sends the first message once it is up. Called
/// only when no connection to the destination exists, never per message on an open flow.
pub(crate) type Connector = fn(Arc<SipContext>, Transport, SocketAddr, Bytes);

/// What the transports share: the core, parser limits, counters and the shutdown signal.
#[derive(Debug)]
pub(crate) struct SipContext {
    pub(crate) core: SipCore,
    pub(crate) limits: Limits,
    pub(crate) counters: Counters,
    pub(crate) shutdown: CancellationToken,
    /// Bounds the account loads in flight for UDP, where each one is a task: a flood of
    /// made-up usernames must not turn into unbounded tasks and store queries.
    pub(crate) loads: Arc<tokio::sync::Semaphore>,
    /// The UDP socket datagrams are sent from (so the source port is the SIP port).
    pub(crate) udp: OnceLock<Arc<UdpSocket>>,
    /// Open TCP/TLS connections (incoming and outgoing) by transport and remote address.
    pub(crate) conns: Mutex<HashMap<(Transport, SocketAddr), ConnTx>>,
    /// Idle timeout of stream connections.
    pub(crate) idle: Duration,
    /// Client TLS settings for outgoing `sips:` connections.
    pub(crate) tls_client: Arc<rustls::ClientConfig>,
    /// Opens outgoing TCP/TLS connections (see [`Connector`]).
    pub(crate) connect: Connector,
}

impl SipContext {
    /// The open connection to `addr` over `t`, if any.
    pub(crate) fn conn(&self, t: Transport, addr: SocketAddr) -> Option<ConnTx> {
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(t, addr))
            .cloned()
    }
}

/// The host written into Via and Record-Route.
fn advertised_host(services: &Services) -> String {
    if let Some(h) = &services.config.sip.advertise {
        return h.clone();
    }
    let bind = services.config.server.bind;
    if !bind.is_unspecified() {
        return bind.to_string();
    }
    // The address the kernel would use towards the outside; no packet is sent.
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
        s.connect("192.0.2.1:5060")?;
        s.local_addr()
    });
    match probe {
        Ok(a) if !a.ip().is_unspecified() => a.ip().to_string(),
        _ => IpAddr::from([127, 0, 0, 1]).to_string(),
    }
}

/// The addresses that name this server besides the advertised host (a digest `uri` may name
/// any of them): the bind address, or, bound to all interfaces, every interface's address
/// (loopback at least, if the interfaces cannot be listed).
fn local_ips(bind: IpAddr) -> Vec<IpAddr> {
    if !bind.is_unspecified() {
        return vec![bind];
    }
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|l| l.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list the interface addresses; only loopback names this server");
            Vec::new()
        });
    for lo in [
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
    ] {
        if !ips.contains(&lo) {
            ips.push(lo);
        }
    }
    ips
}

/// The registrar's and proxy's settings; `port` and `tls_port` are the bound ones.
pub(crate) fn registrar_config(
    services: &Services,
    port: u16,
    tls_port: u16,
) -> Result<RegistrarConfig, StartError> {
    let s: &SipSection = &services.config.sip;
    let mut algorithms = Vec::new();
    for name in &s.digest_algorithms {
        let a = Algorithm::from_token(name.as_bytes()).ok_or_else(|| {
            ConfigError::Invalid(format!("sip.digest_algorithms: unknown algorithm {name:?}"))
        })?;
        algorithms.push(a);
    }
    if algorithms.is_empty() {
        return Err(ConfigError::Invalid("sip.digest_algorithms is empty".into()).into());
    }
    let mut proxy = proxy_config(services);
    proxy.advertised.port = port;
    proxy.advertised.tls_port = Some(tls_port);
    Ok(RegistrarConfig {
        algorithms,
        domains: services.config.domains()?,
        min_expires: s.min_expires,
        max_expires: s.max_expires.max(s.min_expires),
        default_expires: s
            .default_expires
            .clamp(s.min_expires, s.max_expires.max(s.min_expires)),
        max_contacts: s.max_contacts.max(1),
        flush_interval: Duration::from_secs(s.location_flush_secs.max(1)),
        proxy,
        ..RegistrarConfig::default()
    })
}

fn proxy_config(services: &Services) -> ProxyConfig {
    let s = &services.config.sip;
    let default_policy = DomainPolicy {
        call_info: s.call_info,
        refuse_simple: s.refuse_simple,
    };
    let domains = s
        .policy
        .iter()
        .map(|(d, p)| {
            (
                d.to_ascii_lowercase(),
                DomainPolicy {
                    call_info: p.call_info.unwrap_or(s.call_info),
                    refuse_simple: p.refuse_simple.unwrap_or(s.refuse_simple),
                },
            )
        })
        .collect();
    let nat_traversal = match s.nat_traversal {
        crate::config::NatTraversal::Auto => cusax_sip::NatTraversal::Auto,
        crate::config::NatTraversal::Always => cusax_sip::NatTraversal::Always,
        crate::config::NatTraversal::Never => cusax_sip::NatTraversal::Never,
    };
    ProxyConfig {
        advertised: Advertised {
            host: advertised_host(services),
            port: s.port,
            tls_port: Some(s.tls_port),
            local_ips: local_ips(services.config.server.bind),
        },
        default_policy,
        domains,
        tls_required: services.config.tls.required,
        nat_traversal,
        ..ProxyConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::local_ips;
    use std::net::IpAddr;

    #[test]
    fn the_addresses_that_name_this_server() {
        let one: IpAddr = "192.0.2.7".parse().expect("ip");
        assert_eq!(local_ips(one), [one], "bound to one address: that one");
        let all = local_ips("0.0.0.0".parse().expect("ip"));
        assert!(all.contains(&IpAddr::from([127, 0, 0, 1])), "{all:?}");
        assert!(all.iter().any(IpAddr::is_ipv6), "{all:?}");
        // Every address listed is one this host can bind to.
        for ip in all.iter().filter(|ip| ip.is_ipv4()) {
            assert!(
                std::net::UdpSocket::bind((*ip, 0)).is_ok(),
                "{ip} is not an address of this host"
            );
        }
    }
}
