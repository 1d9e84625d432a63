//! The vocabulary every file of the crate shares: where a message came from ([`Peer`],
//! [`Transport`]), where one goes ([`Dest`], [`NextHop`], [`Send`]) and what the core says to
//! do with a request ([`Outcome`]). It imports no other file of the crate.

use bytes::{Bytes, BytesMut};
use cusax_account::Domain;
use cusax_sip_proto::Request;
use cusax_sip_proto::message::headers::Via;
use cusax_sip_proto::message::uri::{Scheme, Uri};
use std::net::{IpAddr, SocketAddr};

/// Methods this element accepts (RFC 3261 §20.5 `Allow`): calls and their in-dialog
/// requests. MESSAGE, PUBLISH and presence SUBSCRIBE are left to XMPP (RFC 7081 §3.3).
pub const ALLOW: &[u8] =
    b"INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, PRACK, REFER, NOTIFY, SUBSCRIBE";
/// Option tags this element supports (`Supported`).
pub const SUPPORTED: &[u8] = b"path, gruu, outbound";

/// The transport a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// UDP (RFC 3261 §18).
    Udp,
    /// TCP (RFC 3261 §18).
    Tcp,
    /// TLS over TCP (RFC 3261 §26.3.1).
    Tls,
}

impl Transport {
    /// Lower-case name, as stored with bindings and used in `transport=` parameters.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// Upper-case name, as written in Via (`SIP/2.0/UDP`).
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// Reads a `transport=` value or a stored transport name (case-insensitive).
    pub fn from_name(name: &[u8]) -> Option<Self> {
        if name.eq_ignore_ascii_case(b"udp") {
            Some(Self::Udp)
        } else if name.eq_ignore_ascii_case(b"tcp") {
            Some(Self::Tcp)
        } else if name.eq_ignore_ascii_case(b"tls") {
            Some(Self::Tls)
        } else {
            None
        }
    }

    /// Connection-oriented transports need no retransmissions (RFC 3261 §17.1.1.2).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Self::Udp)
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Source address of the packet or connection.
    pub addr: SocketAddr,
    /// The transport.
    pub transport: Transport,
}

impl Peer {
    /// The source IP as the bytes bound into nonces (so a nonce only works from its client;
    /// the port is left out because a TCP client may reconnect from another one).
    pub(crate) fn nonce_binding(&self) -> ([u8; 16], usize) {
        match self.addr.ip() {
            IpAddr::V4(v4) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&v4.octets());
                (b, 4)
            }
            IpAddr::V6(v6) => (v6.octets(), 16),
        }
    }
}

/// What to do after [`crate::SipCore::handle`].
#[derive(Debug)]
pub enum Outcome {
    /// Send this response back (see RFC 3261 §18.2.2 for where).
    Respond(BytesMut),
    /// The account is not in the cache: `load_account(user, realm)`, then handle again. The
    /// request was not processed in any way.
    NeedAccount {
        /// The digest username.
        user: String,
        /// The realm (served domain).
        realm: Domain,
    },
    /// An alias (extra AOR or number) is not in the cache: `load_alias(alias, realm)`, then
    /// handle again. The request was not processed in any way.
    NeedAlias {
        /// The alias to resolve.
        alias: cusax_account::Alias,
        /// The served domain it was addressed in.
        realm: Domain,
    },
    /// Send these messages (proxied requests, responses, retransmissions).
    Send(Vec<Send>),
    /// Nothing to send (ACK, or a message that needs no answer).
    Nothing,
}

/// One message for the transports to send.
#[derive(Debug, Clone)]
pub struct Send {
    /// Where to.
    pub dest: Dest,
    /// The complete message.
    pub bytes: Bytes,
}

/// Where a message goes at the IP level.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NextHop {
    /// An address: for UDP the datagram's destination; for TCP/TLS the connection to (or
    /// from) it — an existing flow is reused, otherwise one is opened.
    Addr(SocketAddr),
    /// A host name still to resolve (A/AAAA), with the port.
    Name(String, u16),
}

/// Transport plus next hop.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dest {
    /// The transport.
    pub transport: Transport,
    /// The next hop.
    pub hop: NextHop,
}

impl Dest {
    /// Where responses to `req` go (RFC 3261 §18.2.2, RFC 3581 §4): back over the connection
    /// for TCP/TLS; for UDP to the source address when `rport` was asked for, otherwise the
    /// source IP at the Via's port.
    pub fn reply_to(req: &Request, peer: &Peer) -> Dest {
        let addr = match (peer.transport, req.top_via()) {
            (Transport::Udp, Ok(v)) if v.rport().is_none() => {
                SocketAddr::new(peer.addr.ip(), v.port().unwrap_or(5060))
            }
            _ => peer.addr,
        };
        Dest {
            transport: peer.transport,
            hop: NextHop::Addr(addr),
        }
    }

    /// The address a Via names (received/rport first), for stateless response forwarding.
    pub(crate) fn from_via(v: &Via<'_>) -> Option<Dest> {
        let transport = Transport::from_name(v.transport())?;
        let default_port = if transport == Transport::Tls {
            5061
        } else {
            5060
        };
        let port = v
            .param("rport")
            .and_then(|p| std::str::from_utf8(p).ok()?.parse().ok())
            .or(v.port())
            .unwrap_or(default_port);
        let host = v.received().unwrap_or_else(|| v.host().as_bytes());
        let host = std::str::from_utf8(host).ok()?;
        let hop = match host.parse::<IpAddr>() {
            Ok(ip) => NextHop::Addr(SocketAddr::new(ip, port)),
            Err(_) => NextHop::Name(host.to_owned(), port),
        };
        Some(Dest { transport, hop })
    }

    /// The next hop a SIP URI names (RFC 3263 §4 without NAPTR/SRV: `maddr`, host, port,
    /// `transport`, `sips` → TLS).
    pub(crate) fn from_uri(uri: &Uri<'_>) -> Option<Dest> {
        let transport = match uri.transport() {
            Some(t) => Transport::from_name(t)?,
            None if uri.scheme() == Scheme::Sips => Transport::Tls,
            None => Transport::Udp,
        };
        let default_port = if transport == Transport::Tls {
            5061
        } else {
            5060
        };
        let port = uri.port().unwrap_or(default_port);
        let host = match uri.maddr() {
            Some(m) => std::str::from_utf8(m).ok()?.to_owned(),
            None => std::str::from_utf8(uri.host()?.as_bytes()).ok()?.to_owned(),
        };
        let hop = match host.parse::<IpAddr>() {
            Ok(ip) => NextHop::Addr(SocketAddr::new(ip, port)),
            Err(_) => NextHop::Name(host, port),
        };
        Some(Dest { transport, hop })
    }

    /// Flow text for Record-Route parameters: transport letter plus address (`u1.2.3.4:5060`).
    pub(crate) fn flow_token(&self) -> Option<String> {
        let NextHop::Addr(a) = &self.hop else {
            return None;
        };
        let t = match self.transport {
            Transport::Udp => 'u',
            Transport::Tcp => 't',
            Transport::Tls => 's',
        };
        Some(format!("{t}{a}"))
    }

    /// Reads [`Dest::flow_token`] back.
    pub(crate) fn from_flow_token(v: &[u8]) -> Option<Dest> {
        let (&t, rest) = v.split_first()?;
        let transport = match t {
            b'u' => Transport::Udp,
            b't' => Transport::Tcp,
            b's' => Transport::Tls,
            _ => return None,
        };
        let addr = std::str::from_utf8(rest).ok()?.parse().ok()?;
        Some(Dest {
            transport,
            hop: NextHop::Addr(addr),
        })
    }
}
