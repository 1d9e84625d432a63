//! RFC 3261 §18: the client's transport — one flow to its server (the outbound proxy) over UDP
//! or TCP. Every request goes to the server; responses go back to where the request came from.

use std::net::{IpAddr, SocketAddr};

use bytes::{Bytes, BytesMut};
use cusax_sip_proto::{Limits, SipMessage, parse_datagram, parse_stream_message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket, tcp::OwnedWriteHalf};
use tokio::sync::mpsc;

/// The transport protocol of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportKind {
    /// UDP (unreliable: the transactions retransmit).
    #[default]
    Udp,
    /// TCP (reliable; RFC 3261 §18.3 framing by Content-Length).
    Tcp,
}

impl TransportKind {
    /// The Via token.
    pub fn via_token(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
        }
    }

    /// Whether the transport is reliable (RFC 3261 §17 timer rules).
    pub fn reliable(self) -> bool {
        self == Self::Tcp
    }
}

/// A message received, with the address it came from.
#[derive(Debug)]
pub struct Incoming {
    /// The parsed message.
    pub msg: SipMessage,
    /// Its source.
    pub from: SocketAddr,
}

#[derive(Debug)]
enum Inner {
    Udp(std::sync::Arc<UdpSocket>),
    Tcp(OwnedWriteHalf),
}

/// The sending half; the receiving half is a task feeding an [`Incoming`] channel.
#[derive(Debug)]
pub struct Transport {
    kind: TransportKind,
    local: SocketAddr,
    server: SocketAddr,
    inner: Inner,
}

/// The local address the system routes to `server` from (no packet is sent).
pub fn local_ip_towards(server: SocketAddr) -> std::io::Result<IpAddr> {
    let any: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let probe = std::net::UdpSocket::bind(any)?;
    probe.connect(server)?;
    Ok(probe.local_addr()?.ip())
}

impl Transport {
    /// Opens the flow: binds UDP on the address routed towards the server, or connects TCP.
    pub async fn open(
        kind: TransportKind,
        server: SocketAddr,
    ) -> std::io::Result<(Self, mpsc::Receiver<Incoming>)> {
        let (tx, rx) = mpsc::channel(64);
        let limits = Limits::default();
        let t = match kind {
            TransportKind::Udp => {
                let ip = local_ip_towards(server)?;
                let sock = std::sync::Arc::new(UdpSocket::bind(SocketAddr::new(ip, 0)).await?);
                let local = sock.local_addr()?;
                tokio::spawn(read_udp(sock.clone(), tx, limits));
                Self {
                    kind,
                    local,
                    server,
                    inner: Inner::Udp(sock),
                }
            }
            TransportKind::Tcp => {
                let stream = TcpStream::connect(server).await?;
                stream.set_nodelay(true)?;
                let local = stream.local_addr()?;
                let (r, w) = stream.into_split();
                tokio::spawn(read_tcp(r, server, tx, limits));
                Self {
                    kind,
                    local,
                    server,
                    inner: Inner::Tcp(w),
                }
            }
        };
        Ok((t, rx))
    }

    /// The protocol.
    pub fn kind(&self) -> TransportKind {
        self.kind
    }

    /// The local address (Via sent-by and Contact).
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The server all requests go to.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Sends one message; over TCP `to` is ignored (the connection is the flow).
    pub async fn send(&mut self, to: SocketAddr, bytes: &Bytes) -> std::io::Result<()> {
        match &mut self.inner {
            Inner::Udp(s) => s.send_to(bytes, to).await.map(drop),
            Inner::Tcp(w) => w.write_all(bytes).await,
        }
    }
}

async fn read_udp(sock: std::sync::Arc<UdpSocket>, tx: mpsc::Sender<Incoming>, limits: Limits) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue; // ICMP errors surface here on some systems; the transactions time out
        };
        let data = &buf[..n];
        if data.iter().all(|&b| b == b'\r' || b == b'\n') {
            continue; // keep-alive
        }
        match parse_datagram(Bytes::copy_from_slice(data), &limits) {
            Ok(msg) => {
                if tx.send(Incoming { msg, from }).await.is_err() {
                    return; // the user agent has stopped
                }
            }
            Err(e) => tracing::debug!(%from, error = %e, "unparsable datagram dropped"),
        }
    }
}

async fn read_tcp(
    mut r: tokio::net::tcp::OwnedReadHalf,
    from: SocketAddr,
    tx: mpsc::Sender<Incoming>,
    limits: Limits,
) {
    let mut buf = BytesMut::with_capacity(8192);
    loop {
        loop {
            match parse_stream_message(&mut buf, &limits) {
                Ok(Some(msg)) => {
                    if tx.send(Incoming { msg, from }).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // RFC 3261 §18.3: framing is lost; the connection has to go.
                    tracing::warn!(%from, error = %e, "unparsable SIP on TCP, closing");
                    return;
                }
            }
        }
        match r.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return, // closed: the channel closes with this task
            Ok(_) => {}
        }
    }
}
