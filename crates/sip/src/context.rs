//! What every SIP component shares and nobody changes after start: the configuration, the
//! To tag of our own answers and the response builder that fills in To tag, `received`/`rport`
//! and Server; plus the questions "is this host/URI us?" that the registrar, the proxy and
//! the digest-uri check all ask.

use crate::config::RegistrarConfig;
use crate::types::{Outcome, Peer};
use bytes::BytesMut;
use cusax_account::Domain;
use cusax_sip_proto::Request;
use cusax_sip_proto::message::ResponseBuilder;
use cusax_sip_proto::message::uri::Uri;
use std::net::IpAddr;

const SERVER: &[u8] = concat!("cusax/", env!("CARGO_PKG_VERSION")).as_bytes();

/// The shared, read-only part of the SIP service.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) cfg: RegistrarConfig,
    /// The To tag of every response this element generates itself.
    pub(crate) to_tag: [u8; 16],
}

impl Context {
    pub(crate) fn new(cfg: RegistrarConfig, tag_seed: [u8; 8]) -> Self {
        let mut to_tag = [0u8; 16];
        for (i, b) in tag_seed.iter().enumerate() {
            to_tag[2 * i] = b"0123456789abcdef"[usize::from(b >> 4)];
            to_tag[2 * i + 1] = b"0123456789abcdef"[usize::from(b & 15)];
        }
        Self { cfg, to_tag }
    }

    pub(crate) fn simple(&self, req: &Request, peer: &Peer, code: u16, reason: &str) -> Outcome {
        Outcome::Respond(self.response(req, peer, code, reason).build())
    }

    /// Local answers with extra headers.
    pub(crate) fn local_response(
        &self,
        req: &Request,
        peer: &Peer,
        code: u16,
        reason: &str,
        headers: &[(&str, &[u8])],
    ) -> Outcome {
        let mut r = self.response(req, peer, code, reason);
        for (n, v) in headers {
            r = r.header(n, v);
        }
        Outcome::Respond(r.build())
    }

    /// A response with To-tag, `received`/`rport` (RFC 3581) and Server already filled in.
    pub(crate) fn response<'r>(
        &'r self,
        req: &'r Request,
        peer: &Peer,
        code: u16,
        reason: &'r str,
    ) -> Built<'r> {
        Built {
            inner: ResponseBuilder::new(req, code, reason),
            tag: Some(&self.to_tag),
            ip: peer.addr.ip(),
            port: peer.addr.port(),
        }
    }

    /// The served domain named by `host`, if any.
    pub(crate) fn served(&self, host: &[u8]) -> Option<&Domain> {
        self.cfg
            .domains
            .iter()
            .find(|d| d.as_str().as_bytes().eq_ignore_ascii_case(host))
    }

    /// True when `uri` designates this proxy: our advertised host (or a served domain) and
    /// one of our ports (RFC 3261 §16.4).
    pub(crate) fn is_us(&self, uri: &Uri<'_>) -> bool {
        let Some(host) = uri.host() else {
            return false;
        };
        let adv = &self.cfg.proxy.advertised;
        let h = host.as_bytes();
        let ours_host = h.eq_ignore_ascii_case(adv.host.as_bytes()) || self.served(h).is_some();
        ours_host && self.our_port(uri.port())
    }

    /// No port, or the port of one of our listeners.
    pub(crate) fn our_port(&self, port: Option<u16>) -> bool {
        let adv = &self.cfg.proxy.advertised;
        port.is_none_or(|p| p == adv.port || Some(p) == adv.tls_port)
    }

    /// A Request-URI without user part that names us: the request is for this element.
    pub(crate) fn is_local_ruri(&self, req: &Request) -> bool {
        req.uri()
            .is_some_and(|u| u.user().is_none() && (self.is_us(&u) || u.host().is_none()))
    }
}

/// A response under construction; `received` is rendered at [`Built::build`] because the
/// builder borrows the address text.
pub(crate) struct Built<'r> {
    inner: ResponseBuilder<'r>,
    tag: Option<&'r [u8]>,
    ip: IpAddr,
    port: u16,
}

impl<'r> Built<'r> {
    pub(crate) fn header(mut self, name: &str, value: &[u8]) -> Self {
        self.inner = self.inner.header(name, value);
        self
    }

    /// Builds without a To tag (a proxy's 100 Trying is hop-by-hop, §16.2).
    pub(crate) fn build_without_tag(mut self) -> BytesMut {
        self.tag = None;
        self.build()
    }

    pub(crate) fn build(self) -> BytesMut {
        let mut ipbuf = [0u8; 48];
        let ip = ip_text(self.ip, &mut ipbuf);
        let inner = match self.tag {
            Some(t) => self.inner.to_tag(t),
            None => self.inner,
        };
        inner
            .header("Server", SERVER)
            .via_received(ip, self.port)
            .build()
    }
}

/// Formats an IP address into `buf` without allocating.
fn ip_text(ip: IpAddr, buf: &mut [u8; 48]) -> &str {
    use std::io::Write as _;
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cur, "{ip}");
    let n = usize::try_from(cur.position()).unwrap_or(0);
    std::str::from_utf8(&buf[..n]).unwrap_or("0.0.0.0")
}
