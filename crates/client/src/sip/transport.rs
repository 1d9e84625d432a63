//! RFC 3261 §18 and §26.3.1 (with RFC 5630 for `sip:` over TLS): the client's transport — one
//! flow to its server (the outbound proxy) over UDP, TCP or TLS. Every request goes to the
//! server; responses go back to where the request came from. The reading half also reports the
//! RFC 5626 keep-alive answers (CRLF pongs, STUN Binding responses) that arrive on the flow.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use cusax_sip_proto::{Limits, SipMessage, StreamFrame, frame_stream, parse_datagram};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::stun;

/// How long connecting (TCP, then the TLS handshake) may take before the attempt fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The transport protocol of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportKind {
    /// UDP (unreliable: the transactions retransmit).
    #[default]
    Udp,
    /// TCP (reliable; RFC 3261 §18.3 framing by Content-Length).
    Tcp,
    /// TLS over TCP (RFC 3261 §26.3.1; `sip:` URIs with `transport=tls`, RFC 5630 §3.1.3).
    Tls,
}

impl TransportKind {
    /// The Via token.
    pub fn via_token(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }

    /// Whether the transport is reliable (RFC 3261 §17 timer rules).
    pub fn reliable(self) -> bool {
        self != Self::Udp
    }

    /// The `transport` URI parameter of our Contact (none for UDP, the default).
    pub fn uri_param(self) -> &'static str {
        match self {
            Self::Udp => "",
            Self::Tcp => ";transport=tcp",
            Self::Tls => ";transport=tls",
        }
    }

    /// The port a server listens on when none is given (RFC 3261 §19.1.2: 5060, or 5061 for
    /// TLS).
    pub fn default_port(self) -> u16 {
        match self {
            Self::Udp | Self::Tcp => 5060,
            Self::Tls => 5061,
        }
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

/// What the reading half of a flow delivers.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A SIP message (boxed: the other variants are small).
    Sip(Box<Incoming>),
    /// A CRLF pong on a stream flow (RFC 5626 §4.4.1).
    Pong,
    /// A CRLFCRLF ping from the server on a stream flow: it wants a CRLF back.
    Ping,
    /// A STUN Binding success response on the UDP flow, with its transaction id (RFC 5389).
    StunSuccess([u8; 12]),
}

/// Where and how to run TLS: the trust policy and the name the certificate must carry.
#[derive(Debug, Clone)]
pub struct TlsTarget {
    /// The rustls client configuration (from [`crate::tls::TrustConfig`]).
    pub config: Arc<rustls::ClientConfig>,
    /// The server name sent as SNI and verified against the certificate.
    pub name: ServerName<'static>,
}

/// Why a flow could not be opened.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The socket could not be bound or connected.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Connecting took longer than the connect timeout.
    #[error("connecting to {0} timed out")]
    Timeout(SocketAddr),
    /// The TLS handshake failed: typically the server's certificate is not trusted or does not
    /// name the server.
    #[error("TLS handshake with {name} failed: {source}")]
    Handshake {
        /// The server name that was verified.
        name: String,
        /// What rustls reported.
        source: std::io::Error,
    },
    /// TLS was asked for without a TLS target (an internal error).
    #[error("TLS transport without a server name and trust policy")]
    NoTlsTarget,
}

type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

enum Inner {
    Udp(Arc<UdpSocket>),
    Stream(BoxWrite),
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Udp(s) => f.debug_tuple("Udp").field(s).finish(),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// The sending half; the receiving half is a task feeding an [`Inbound`] channel, ended when
/// the transport is dropped.
#[derive(Debug)]
pub struct Transport {
    kind: TransportKind,
    local: SocketAddr,
    server: SocketAddr,
    inner: Inner,
    reader: JoinHandle<()>,
}

impl Drop for Transport {
    fn drop(&mut self) {
        // A replaced flow's reader must not linger on a half-dead connection.
        self.reader.abort();
    }
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

async fn connect(server: SocketAddr) -> Result<TcpStream, OpenError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(server))
        .await
        .map_err(|_| OpenError::Timeout(server))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Transport {
    /// Opens the flow: binds UDP on the address routed towards the server, connects TCP, or
    /// connects TCP and completes a TLS handshake verifying `tls`'s server name.
    pub(crate) async fn open(
        kind: TransportKind,
        server: SocketAddr,
        tls: Option<&TlsTarget>,
    ) -> Result<(Self, mpsc::Receiver<Inbound>), OpenError> {
        let (tx, rx) = mpsc::channel(64);
        let limits = Limits::default();
        let (local, inner, reader) = match kind {
            TransportKind::Udp => {
                let ip = local_ip_towards(server)?;
                let sock = Arc::new(UdpSocket::bind(SocketAddr::new(ip, 0)).await?);
                let local = sock.local_addr()?;
                let reader = tokio::spawn(read_udp(sock.clone(), tx, limits));
                (local, Inner::Udp(sock), reader)
            }
            TransportKind::Tcp => {
                let stream = connect(server).await?;
                let local = stream.local_addr()?;
                let (r, w) = stream.into_split();
                let reader = tokio::spawn(read_stream(r, server, tx, limits));
                (local, Inner::Stream(Box::new(w)), reader)
            }
            TransportKind::Tls => {
                let target = tls.ok_or(OpenError::NoTlsTarget)?;
                let stream = connect(server).await?;
                let local = stream.local_addr()?;
                let connector = tokio_rustls::TlsConnector::from(target.config.clone());
                let handshake = connector.connect(target.name.clone(), stream);
                let tls = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
                    .await
                    .map_err(|_| OpenError::Timeout(server))?
                    .map_err(|source| OpenError::Handshake {
                        name: target.name.to_str().into_owned(),
                        source,
                    })?;
                let (r, w) = tokio::io::split(tls);
                let reader = tokio::spawn(read_stream(r, server, tx, limits));
                (local, Inner::Stream(Box::new(w)), reader)
            }
        };
        let t = Self {
            kind,
            local,
            server,
            inner,
            reader,
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

    /// Gives the flow up: the reader stops and a connection is closed (its halves are dropped),
    /// so that the server stops routing to it. Later sends on a stream go nowhere.
    pub(crate) fn abandon(&mut self) {
        self.reader.abort();
        if let Inner::Stream(w) = &mut self.inner {
            *w = Box::new(tokio::io::sink());
        }
    }

    /// Sends one message (or keep-alive); over TCP and TLS `to` is ignored (the connection is
    /// the flow).
    pub async fn send(&mut self, to: SocketAddr, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.inner {
            Inner::Udp(s) => s.send_to(bytes, to).await.map(drop),
            Inner::Stream(w) => {
                w.write_all(bytes).await?;
                w.flush().await
            }
        }
    }
}

async fn read_udp(sock: Arc<UdpSocket>, tx: mpsc::Sender<Inbound>, limits: Limits) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue; // ICMP errors surface here on some systems; the transactions time out
        };
        let data = &buf[..n];
        if data.iter().all(|&b| b == b'\r' || b == b'\n') {
            continue; // keep-alive
        }
        let item = if let Some(tid) = stun::stun_success(data) {
            Inbound::StunSuccess(tid)
        } else {
            match parse_datagram(Bytes::copy_from_slice(data), &limits) {
                Ok(msg) => Inbound::Sip(Box::new(Incoming { msg, from })),
                Err(e) => {
                    tracing::debug!(%from, error = %e, "unparsable datagram dropped");
                    continue;
                }
            }
        };
        if tx.send(item).await.is_err() {
            return; // the user agent has stopped
        }
    }
}

/// A keep-alive at the front of a stream buffer (RFC 5626 §3.5.1): the server only answers
/// pings, so a lone CRLF is a pong; `None` when the buffer holds no keep-alive (or only a CR).
fn take_keepalive(buf: &mut BytesMut) -> Option<Inbound> {
    match &buf[..] {
        [b'\r', b'\n', b'\r', b'\n', ..] => {
            buf.advance(4);
            Some(Inbound::Ping)
        }
        [b'\r', b'\n', ..] => {
            buf.advance(2);
            Some(Inbound::Pong)
        }
        [b'\r'] | [] => None,
        [b'\r' | b'\n', ..] => {
            buf.advance(1); // a stray line ending: skipped to resynchronise
            Some(Inbound::Pong)
        }
        _ => None,
    }
}

async fn read_stream<R: AsyncRead + Unpin>(
    mut r: R,
    from: SocketAddr,
    tx: mpsc::Sender<Inbound>,
    limits: Limits,
) {
    let mut buf = BytesMut::with_capacity(8192);
    loop {
        loop {
            if let Some(k) = take_keepalive(&mut buf) {
                if tx.send(k).await.is_err() {
                    return;
                }
                continue;
            }
            match frame_stream(&buf, &limits) {
                Ok(StreamFrame::Message { len }) => {
                    let msg = buf.split_to(len).freeze();
                    match parse_datagram(msg, &limits) {
                        Ok(msg) => {
                            if tx
                                .send(Inbound::Sip(Box::new(Incoming { msg, from })))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        Err(e) => tracing::debug!(%from, error = %e, "unparsable message dropped"),
                    }
                }
                Ok(StreamFrame::Incomplete) => break,
                Ok(StreamFrame::Ping { consumed } | StreamFrame::Pong { consumed }) => {
                    buf.advance(consumed);
                }
                Err(e) => {
                    // RFC 3261 §18.3: framing is lost; the connection has to go.
                    tracing::warn!(%from, error = %e, "unparsable SIP on the stream, closing");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_keepalives_are_told_apart_from_messages() {
        let mut b = BytesMut::from(&b"\r\n"[..]);
        assert!(matches!(take_keepalive(&mut b), Some(Inbound::Pong)));
        assert!(b.is_empty());
        let mut b = BytesMut::from(&b"\r\n\r\nREGISTER"[..]);
        assert!(matches!(take_keepalive(&mut b), Some(Inbound::Ping)));
        assert_eq!(&b[..], b"REGISTER");
        assert!(take_keepalive(&mut b).is_none());
        let mut b = BytesMut::from(&b"\r"[..]);
        assert!(
            take_keepalive(&mut b).is_none(),
            "a CR alone waits for more"
        );
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn transport_tokens_and_ports() {
        assert_eq!(TransportKind::Tls.via_token(), "TLS");
        assert!(TransportKind::Tls.reliable() && !TransportKind::Udp.reliable());
        assert_eq!(TransportKind::Tls.uri_param(), ";transport=tls");
        assert_eq!(TransportKind::Tls.default_port(), 5061);
        assert_eq!(TransportKind::Tcp.default_port(), 5060);
    }
}
