//! RFC 3261 §8.2 and §16: what the SIP element does with a request: REGISTER goes to the
//! registrar, everything else to the proxy (which answers OPTIONS to itself locally).

use crate::accounts::{AccountCache, AccountSource};
use crate::config::RegistrarConfig;
use crate::location::Location;
use bytes::BytesMut;
use cusax_account::{AccountId, Domain};
use cusax_sip_proto::digest::{DigestConfig, NonceCounts, NonceKey};
use cusax_sip_proto::error::Invalid;
use cusax_sip_proto::message::ResponseBuilder;
use cusax_sip_proto::{Method, Request, SipMessage};
use cusax_store::{Change, ChangeKind, StoreError};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// Methods this element accepts (RFC 3261 §20.5 `Allow`): calls and their in-dialog
/// requests. MESSAGE, PUBLISH and presence SUBSCRIBE are left to XMPP (RFC 7081 §3.3).
pub const ALLOW: &[u8] =
    b"INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, PRACK, REFER, NOTIFY, SUBSCRIBE";
/// Option tags this element supports (`Supported`).
pub const SUPPORTED: &[u8] = b"path, gruu, outbound";
const SERVER: &[u8] = concat!("cusax/", env!("CARGO_PKG_VERSION")).as_bytes();

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

/// What to do after [`SipCore::handle`].
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
    Send(Vec<crate::proxy::Send>),
    /// Nothing to send (ACK, or a message that needs no answer).
    Nothing,
}

/// The SIP service: registrar, location service and (later) proxy, over the account store.
pub struct SipCore {
    pub(crate) cfg: RegistrarConfig,
    pub(crate) digest: DigestConfig,
    pub(crate) key: NonceKey,
    pub(crate) counts: Mutex<NonceCounts>,
    pub(crate) accounts: AccountCache,
    pub(crate) location: Location,
    pub(crate) to_tag: [u8; 16],
    pub(crate) aliases: crate::proxy::AliasCache,
    pub(crate) gruus: crate::gruu::TempGruus,
    pub(crate) calls: crate::calls::Calls,
    pub(crate) proxy: Mutex<crate::proxy::ProxyState>,
    store: Arc<dyn AccountSource>,
}

impl std::fmt::Debug for SipCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipCore")
            .field("domains", &self.cfg.domains)
            .finish_non_exhaustive()
    }
}

impl SipCore {
    /// A core with a fresh random nonce secret.
    pub fn new(cfg: RegistrarConfig, store: Arc<dyn AccountSource>) -> Self {
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        let mut tag = [0u8; 8];
        rand::fill(&mut tag);
        Self::with_secret(cfg, store, secret, tag)
    }

    /// A core with a given nonce secret and To-tag seed (tests; clusters sharing nonces).
    pub fn with_secret(
        cfg: RegistrarConfig,
        store: Arc<dyn AccountSource>,
        secret: [u8; 32],
        tag_seed: [u8; 8],
    ) -> Self {
        let mut to_tag = [0u8; 16];
        for (i, b) in tag_seed.iter().enumerate() {
            to_tag[2 * i] = b"0123456789abcdef"[usize::from(b >> 4)];
            to_tag[2 * i + 1] = b"0123456789abcdef"[usize::from(b & 15)];
        }
        let digest = DigestConfig {
            algorithms: cfg.algorithms.clone(),
            nonce_ttl_secs: cfg.nonce_ttl_secs,
            allow_rfc2069: true,
        };
        Self {
            counts: Mutex::new(NonceCounts::new(cfg.nonce_slots)),
            accounts: AccountCache::new(cfg.cache_capacity),
            location: Location::new(),
            aliases: crate::proxy::AliasCache::default(),
            gruus: crate::gruu::TempGruus::new(secret),
            calls: crate::calls::Calls::new(),
            proxy: Mutex::new(crate::proxy::ProxyState::new(secret)),
            key: NonceKey::new(secret),
            digest,
            cfg,
            to_tag,
            store,
        }
    }

    /// Publishes binding changes (the location service) and call states (the proxy) on
    /// `bus`, the server's cluster bus; without it, bindings are not announced and call
    /// states go to a bus of the core's own that [`crate::calls::Calls::subscribe`] reads.
    pub fn with_bus(mut self, bus: Arc<dyn cusax_bus::Bus>) -> Self {
        self.location.set_bus(bus.clone());
        self.calls.set_bus(bus);
        self
    }

    /// Calls in progress and their events ("on the phone", XEP-0108 and requirement CL-32).
    pub fn calls(&self) -> &crate::calls::Calls {
        &self.calls
    }

    /// The in-memory location service (for loading at start, flushing and sweeping).
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Handles one request at `now` (Unix seconds). Never blocks and never touches the store.
    pub fn handle(&self, now: i64, req: &Request, peer: &Peer) -> Outcome {
        match req.method() {
            Method::Register
                if !self.cfg.proxy.tls_required || peer.transport == Transport::Tls =>
            {
                self.register(now, req, peer)
            }
            Method::Register => self.simple(req, peer, 403, "TLS Required"),
            _ => self.proxy_request(now, req, peer),
        }
    }

    /// Handles one response from a downstream element (RFC 3261 §16.7).
    pub fn handle_response(
        &self,
        resp: &cusax_sip_proto::Response,
        peer: &Peer,
    ) -> Vec<crate::proxy::Send> {
        self.proxy_response(resp, peer)
    }

    /// Builds the answer to a request that failed validation, if it can be routed back
    /// (RFC 3261 §8.2.6, §21.4.1): the status and precise reason of the parse error.
    pub fn answer_invalid(&self, bad: &Invalid, peer: &Peer) -> Option<BytesMut> {
        if !bad.routable() {
            return None;
        }
        let SipMessage::Request(req) = &*bad.message else {
            return None;
        };
        if req.method() == Method::Ack {
            return None;
        }
        Some(
            self.response(
                req,
                peer,
                bad.error.status_code(),
                bad.error.reason_phrase(),
            )
            .build(),
        )
    }

    /// Loads an account into the cache after [`Outcome::NeedAccount`].
    pub async fn load_account(&self, user: &str, realm: &Domain) -> Result<(), StoreError> {
        let t = std::time::Instant::now();
        let r = self.accounts.load(&*self.store, user, realm).await;
        metrics::histogram!("cusax_store_seconds", "op" => "load_account")
            .record(t.elapsed().as_secs_f64());
        r
    }

    /// Resolves an alias into the cache after [`Outcome::NeedAlias`].
    pub async fn load_alias(
        &self,
        alias: &cusax_account::Alias,
        realm: &Domain,
    ) -> Result<(), StoreError> {
        let id = self.store.resolve_alias(alias).await?;
        let id = id.filter(|id| id.domain() == realm);
        self.aliases
            .insert(alias.as_str(), realm, id.map(|i| i.user().to_owned()));
        Ok(())
    }

    /// Reacts to an account change from the store's change feed: the next request reloads the
    /// account; a deleted account loses its bindings, and so does a locked one (RFC 7081
    /// §3.2: a lock applies to both protocols at once).
    pub fn on_change(&self, change: &Change) {
        let gone = matches!(change.kind, ChangeKind::Deleted | ChangeKind::Locked);
        if gone {
            // The cached account still knows its aliases: their bindings go too.
            let id = &change.account;
            if let crate::accounts::Lookup::Hit(acct) =
                self.accounts.get(id.user(), id.domain().as_str())
            {
                for aor in &acct.aors {
                    self.location.remove_aor(aor);
                }
                for n in &acct.numbers {
                    if let Ok(aor) = cusax_account::Aor::parse(&format!("sip:{n}@{}", id.domain()))
                    {
                        self.location.remove_aor(&aor);
                    }
                }
            }
            self.location.remove_aor(&id.aor());
        }
        self.accounts.invalidate(&change.account);
        self.aliases.clear();
    }

    /// The change feed lost events: forget every cached account.
    pub fn on_changes_lost(&self) {
        self.accounts.clear();
        self.aliases.clear();
    }

    /// Forgets one cached account (tests, admin tools in the same process).
    pub fn invalidate(&self, id: &AccountId) {
        self.accounts.invalidate(id);
    }

    pub(crate) fn simple(&self, req: &Request, peer: &Peer, code: u16, reason: &str) -> Outcome {
        Outcome::Respond(self.response(req, peer, code, reason).build())
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
