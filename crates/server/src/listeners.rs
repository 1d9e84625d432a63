//! RFC 7081 §3.2 (service management): the sockets `cusaxd` serves on, bound before the
//! server starts.
//!
//! Libraries take bound listeners, binaries bind (ARCHITECTURE.md): `cusaxd` calls
//! [`Listeners::bind`] with its configuration and hands the value to
//! [`Server::start`](crate::Server::start); a test or a future listener (WebSocket, cluster)
//! builds or extends the value the same way. Sockets are plain `std` ones in non-blocking
//! mode, so that binding needs no runtime and the server registers them with its own.

use crate::config::{Config, SipSection};
use crate::services::StartError;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, TcpListener, UdpSocket};

/// Pending connections the kernel queues per stream listener (the value tokio's own
/// `TcpListener::bind` uses, which the XMPP and HTTPS listeners had before).
const BACKLOG: i32 = 1024;

/// How often a port-0 start picks a new UDP port when TCP finds the same port taken.
const SHARED_PORT_ATTEMPTS: u32 = 8;

/// Every socket `cusaxd` serves on.
#[derive(Debug)]
pub struct Listeners {
    /// SIP over UDP, TCP and TLS.
    pub sip: SipListeners,
    /// XMPP client-to-server.
    pub xmpp: XmppListeners,
    /// HTTPS (provisioning, admin API, metrics).
    pub http: TcpListener,
}

/// The SIP sockets: UDP and TCP share one port (RFC 3261 §18), TLS has its own.
#[derive(Debug)]
pub struct SipListeners {
    /// One or more UDP sockets on the same port (SO_REUSEPORT when more than one), each
    /// with its own receive task.
    pub udp: Vec<UdpSocket>,
    /// SIP over TCP.
    pub tcp: TcpListener,
    /// SIP over TLS.
    pub tls: TcpListener,
}

/// The XMPP c2s sockets.
#[derive(Debug)]
pub struct XmppListeners {
    /// STARTTLS (RFC 6120 §5).
    pub starttls: TcpListener,
    /// Direct TLS (XEP-0368).
    pub direct_tls: TcpListener,
}

impl Listeners {
    /// Binds every listener the configuration asks for: port 0 means any free port, and a
    /// TLS port follows its plain port to 0 (`sip.tls_port`, `xmpp.tls_port`).
    pub fn bind(config: &Config) -> Result<Self, StartError> {
        let ip = config.server.bind;
        let sip = bind_sip(&config.sip, SocketAddr::new(ip, config.sip.port))?;
        let xmpp_tls_port = if config.xmpp.port == 0 {
            0
        } else {
            config.xmpp.tls_port
        };
        let xmpp = XmppListeners {
            starttls: bind_tcp(SocketAddr::new(ip, config.xmpp.port), "xmpp/c2s")?,
            direct_tls: bind_tcp(SocketAddr::new(ip, xmpp_tls_port), "xmpp/c2s-tls")?,
        };
        let http = bind_tcp(SocketAddr::new(ip, config.http.port), "https")?;
        Ok(Self { sip, xmpp, http })
    }
}

/// Registers a bound `std` stream listener with the runtime (inside it only).
pub(crate) fn tokio_listener(
    l: std::net::TcpListener,
    what: &'static str,
) -> Result<tokio::net::TcpListener, StartError> {
    let addr = l
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    tokio::net::TcpListener::from_std(l).map_err(|source| StartError::Listen { what, addr, source })
}

fn bind_sip(cfg: &SipSection, bind: SocketAddr) -> Result<SipListeners, StartError> {
    // UDP and TCP share one port. With port 0 the port the kernel picks for UDP may be taken
    // for TCP by someone else: pick again (a few times) instead of failing the start.
    let mut attempt = 0;
    let (udp, tcp) = loop {
        attempt += 1;
        let udp = bind_udp(cfg, bind)?;
        let port = udp[0].local_addr().map_or(bind.port(), |a| a.port());
        match bind_tcp(SocketAddr::new(bind.ip(), port), "sip/tcp") {
            Ok(tcp) => break (udp, tcp),
            Err(StartError::Listen { source, .. })
                if bind.port() == 0
                    && attempt < SHARED_PORT_ATTEMPTS
                    && source.kind() == std::io::ErrorKind::AddrInUse => {}
            Err(e) => return Err(e),
        }
    };
    let tls_port = if cfg.port == 0 { 0 } else { cfg.tls_port };
    let tls = bind_tcp(SocketAddr::new(bind.ip(), tls_port), "sip/tls")?;
    Ok(SipListeners { udp, tcp, tls })
}

/// Binds a non-blocking stream listener on `addr` (address reuse, as every listener had).
pub fn bind_tcp(addr: SocketAddr, what: &'static str) -> Result<TcpListener, StartError> {
    let err = |source| StartError::Listen { what, addr, source };
    let s =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    s.set_reuse_address(true).map_err(err)?;
    s.bind(&addr.into()).map_err(err)?;
    s.listen(BACKLOG).map_err(err)?;
    s.set_nonblocking(true).map_err(err)?;
    Ok(s.into())
}

fn udp_socket(
    addr: SocketAddr,
    recv_buffer: usize,
    reuse_port: bool,
) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    // The kernel may cap the size (net.core.rmem_max); a smaller buffer only drops bursts.
    if let Err(e) = s.set_recv_buffer_size(recv_buffer) {
        tracing::warn!(error = %e, "sip/udp: cannot size the receive buffer");
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// Binds `sip.udp_sockets` sockets on `addr` (SO_REUSEPORT when more than one).
fn bind_udp(cfg: &SipSection, addr: SocketAddr) -> Result<Vec<UdpSocket>, StartError> {
    let n = cfg.udp_sockets.clamp(1, 64);
    let err = |source| StartError::Listen {
        what: "sip/udp",
        addr,
        source,
    };
    let first = udp_socket(addr, cfg.udp_recv_buffer, n > 1).map_err(err)?;
    let bound = first.local_addr().map_err(err)?;
    let mut socks = vec![first];
    for _ in 1..n {
        socks.push(udp_socket(bound, cfg.udp_recv_buffer, true).map_err(err)?);
    }
    Ok(socks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback_any_port() -> Config {
        let mut c = Config::default();
        c.server.bind = std::net::IpAddr::from([127, 0, 0, 1]);
        c.sip.port = 0;
        c.sip.tls_port = 5061;
        c.xmpp.port = 0;
        c.xmpp.tls_port = 5223;
        c.http.port = 0;
        c
    }

    #[test]
    fn port_zero_binds_free_ports_and_tls_follows_to_zero() {
        let l = Listeners::bind(&loopback_any_port()).expect("bind on loopback");
        let udp = l.sip.udp[0].local_addr().expect("udp addr");
        let tcp = l.sip.tcp.local_addr().expect("tcp addr");
        assert_ne!(udp.port(), 0);
        assert_eq!(udp.port(), tcp.port(), "SIP UDP and TCP share one port");
        // The configured TLS ports (5061, 5223) are ignored when the plain port is 0.
        assert_ne!(l.sip.tls.local_addr().expect("tls").port(), 5061);
        assert_ne!(l.xmpp.direct_tls.local_addr().expect("tls").port(), 5223);
        assert_ne!(l.http.local_addr().expect("http").port(), 0);
    }

    #[test]
    fn several_udp_sockets_share_the_port() {
        let mut c = loopback_any_port();
        c.sip.udp_sockets = 3;
        let l = Listeners::bind(&c).expect("bind on loopback");
        let ports: Vec<u16> = l
            .sip
            .udp
            .iter()
            .map(|s| s.local_addr().expect("addr").port())
            .collect();
        assert_eq!(ports.len(), 3);
        assert!(ports.windows(2).all(|w| w[0] == w[1]), "{ports:?}");
    }

    #[test]
    fn a_taken_port_is_a_listen_error_naming_the_listener() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        match bind_tcp(addr, "xmpp/c2s") {
            Err(StartError::Listen { what, addr: a, .. }) => {
                assert_eq!(what, "xmpp/c2s");
                assert_eq!(a, addr);
            }
            other => panic!("expected a listen error, got {other:?}"),
        }
    }
}
