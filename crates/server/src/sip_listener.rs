//! RFC 3261 §18: SIP transports (UDP, TCP, TLS) feeding the registrar and proxy of `cusax-sip`.
//!
//! This module wires the pieces: it builds the [`SipCore`] from the configuration, loads the
//! stored bindings, binds the sockets (`sip_udp`, `sip_tcp`), follows the account change feed,
//! runs the transaction timers and the location write-back timer (which also flushes once
//! more at shutdown), and delivers what the proxy sends ([`SipContext::dispatch`]): UDP
//! datagrams from the listening socket, and stream messages over the connection to the
//! destination — the flow a client registered or called on, or a new outgoing connection.

use crate::config::{ConfigError, SipSection};
use crate::server::{Services, StartError};
use bytes::{Bytes, BytesMut};
use cusax_sip::proxy::{Dest, NextHop, Send};
use cusax_sip::{
    Advertised, DomainPolicy, Outcome, Peer, ProxyConfig, RegistrarConfig, SipCore, Transport,
};
use cusax_sip_proto::digest::Algorithm;
use cusax_sip_proto::{Limits, SipMessage, parse_datagram};
use cusax_store::LocationStore;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Account loads (store round trips) in flight at once on UDP; beyond that a request is
/// dropped and the client's retransmission finds the account cached or a free slot.
const MAX_PENDING_LOADS: usize = 256;

/// Every this many write-back ticks, expired rows are purged from the database too.
const PURGE_EVERY_TICKS: u32 = 12;

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
}

/// What the slow path must load before a request can be handled again.
pub(crate) enum Need {
    /// An account by digest username.
    Account(String, cusax_account::Domain),
    /// An alias of some account.
    Alias(cusax_account::Alias, cusax_account::Domain),
}

/// What to do with one received message.
pub(crate) enum Next {
    /// Send these bytes back; on UDP to the address given (RFC 3261 §18.2.2).
    Send(BytesMut, SocketAddr),
    /// Hand these to [`SipContext::dispatch`].
    Dispatch(Vec<Send>),
    /// The request needs something loaded first (see [`SipCore::handle`]); a direct
    /// response goes to the address given.
    Load(Box<cusax_sip_proto::Request>, Need, SocketAddr),
    /// Nothing to send.
    Nothing,
}

impl SipContext {
    /// Parses, validates and handles one framed message from `peer` (never panics, never
    /// waits): a parse error that leaves a routable request is answered with its status and
    /// reason phrase; anything else unusable is dropped and counted.
    pub(crate) fn process(&self, bytes: Bytes, peer: &Peer) -> Next {
        let msg = match parse_datagram(bytes, &self.limits) {
            Ok(m) => m,
            Err(e) => {
                self.counters.unparsable.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer.addr, error = %e, "sip: dropped unparsable message");
                return Next::Nothing;
            }
        };
        let req = match msg.validated() {
            Ok(SipMessage::Request(r)) => r,
            Ok(SipMessage::Response(r)) => {
                metrics::counter!("cusax_sip_responses_total", "direction" => "received", "code" => class(r.code()))
                    .increment(1);
                return Next::Dispatch(self.core.handle_response(&r, peer));
            }
            Err(bad) => return self.invalid(&bad, peer),
        };
        let to = reply_addr(&req, peer);
        metrics::counter!("cusax_sip_requests_total", "method" => req.method().as_str())
            .increment(1);
        match self.core.handle(cusax_store::unix_now(), &req, peer) {
            Outcome::Respond(b) => {
                count_sent(&b);
                Next::Send(b, to)
            }
            Outcome::NeedAccount { user, realm } => {
                Next::Load(Box::new(req), Need::Account(user, realm), to)
            }
            Outcome::NeedAlias { alias, realm } => {
                Next::Load(Box::new(req), Need::Alias(alias, realm), to)
            }
            Outcome::Send(v) => Next::Dispatch(v),
            Outcome::Nothing => Next::Nothing,
        }
    }

    fn invalid(&self, bad: &cusax_sip_proto::Invalid, peer: &Peer) -> Next {
        match self.core.answer_invalid(bad, peer) {
            Some(b) => {
                self.counters
                    .answered_invalid
                    .fetch_add(1, Ordering::Relaxed);
                let call_id = bad.message.head().call_id().unwrap_or_default();
                tracing::debug!(
                    %peer.addr,
                    status = bad.error.status_code(),
                    reason = bad.error.reason_phrase(),
                    call_id = %String::from_utf8_lossy(call_id),
                    "sip: answered invalid request"
                );
                let to = match &*bad.message {
                    SipMessage::Request(r) => reply_addr(r, peer),
                    SipMessage::Response(_) => peer.addr,
                };
                Next::Send(b, to)
            }
            None => {
                self.counters
                    .dropped_invalid
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer.addr, error = %bad.error, "sip: dropped invalid message");
                Next::Nothing
            }
        }
    }

    /// The slow path after [`Next::Load`]: load what is missing from the store and handle
    /// again (a request may need a caller and a callee, so a few rounds).
    pub(crate) async fn load_and_handle(
        &self,
        req: &cusax_sip_proto::Request,
        mut need: Need,
        peer: &Peer,
    ) -> Outcome {
        for _ in 0..4 {
            let loaded = match &need {
                Need::Account(user, realm) => self.core.load_account(user, realm).await,
                Need::Alias(alias, realm) => self.core.load_alias(alias, realm).await,
            };
            if let Err(e) = loaded {
                tracing::warn!(error = %e, "sip: loading an account failed");
                return Outcome::Nothing;
            }
            match self.core.handle(cusax_store::unix_now(), req, peer) {
                Outcome::NeedAccount { user, realm } => need = Need::Account(user, realm),
                Outcome::NeedAlias { alias, realm } => need = Need::Alias(alias, realm),
                other => return other,
            }
        }
        // Invalidated again and again meanwhile; the client retransmits (UDP) or retries.
        Outcome::Nothing
    }

    /// Delivers what the proxy produced.
    pub(crate) fn dispatch(self: &Arc<Self>, sends: Vec<Send>) {
        for s in sends {
            self.send_one(s);
        }
    }

    fn undeliverable(self: &Arc<Self>, dest: &Dest, why: &str) {
        self.counters.undeliverable.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(?dest, why, "sip: message not delivered");
        let more = self.core.transport_failed(dest);
        if !more.is_empty() {
            let ctx = self.clone();
            tokio::spawn(async move { ctx.dispatch(more) });
        }
    }

    fn send_one(self: &Arc<Self>, s: Send) {
        count_sent(&s.bytes);
        if tracing::enabled!(tracing::Level::TRACE) {
            let line = s.bytes.split(|&b| b == b'\r').next().unwrap_or_default();
            tracing::trace!(dest = ?s.dest, first = %String::from_utf8_lossy(line), "sip: send");
        }
        let addr = match &s.dest.hop {
            NextHop::Addr(a) => *a,
            NextHop::Name(host, port) => {
                let (ctx, host, port) = (self.clone(), host.clone(), *port);
                tokio::spawn(async move {
                    let found = tokio::time::timeout(
                        Duration::from_secs(5),
                        tokio::net::lookup_host((host.as_str(), port)),
                    )
                    .await;
                    match found {
                        Ok(Ok(mut addrs)) => match addrs.next() {
                            Some(a) => ctx.send_one(Send {
                                dest: Dest {
                                    transport: s.dest.transport,
                                    hop: NextHop::Addr(a),
                                },
                                bytes: s.bytes,
                            }),
                            None => ctx.undeliverable(&s.dest, "no address"),
                        },
                        _ => ctx.undeliverable(&s.dest, "name lookup failed"),
                    }
                });
                return;
            }
        };
        match s.dest.transport {
            Transport::Udp => {
                let Some(sock) = self.udp.get() else {
                    return self.undeliverable(&s.dest, "no UDP socket");
                };
                match sock.try_send_to(&s.bytes, addr) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        let sock = sock.clone();
                        tokio::spawn(async move {
                            let _ = sock.send_to(&s.bytes, addr).await;
                        });
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, %addr, "sip/udp: send failed");
                    }
                }
            }
            t @ (Transport::Tcp | Transport::Tls) => {
                let existing = self
                    .conns
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&(t, addr))
                    .cloned();
                match existing {
                    Some(tx) => {
                        if tx.try_send(s.bytes).is_err() {
                            self.undeliverable(&s.dest, "connection queue full or closed");
                        }
                    }
                    None => crate::sip_tcp::connect(self.clone(), t, addr, s.bytes),
                }
            }
            _ => self.undeliverable(&s.dest, "transport not supported"),
        }
    }
}

/// The status class label of a response code (`2xx` …), a bounded set.
fn class(code: u16) -> &'static str {
    match code / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "6xx",
    }
}

/// Counts a response this element sends (generated or forwarded), by status code; codes
/// outside the common set are counted by class so that the label set stays bounded.
fn count_sent(bytes: &[u8]) {
    let Some(code) = bytes
        .strip_prefix(b"SIP/2.0 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse::<u16>().ok())
    else {
        return;
    };
    const COMMON: [(u16, &str); 18] = [
        (100, "100"),
        (180, "180"),
        (183, "183"),
        (200, "200"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (407, "407"),
        (408, "408"),
        (480, "480"),
        (482, "482"),
        (483, "483"),
        (486, "486"),
        (487, "487"),
        (489, "489"),
        (500, "500"),
        (603, "603"),
    ];
    let label = COMMON
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| class(code), |(_, l)| *l);
    metrics::counter!("cusax_sip_responses_total", "direction" => "sent", "code" => label)
        .increment(1);
}

/// Where a direct response goes (RFC 3261 §18.2.2, RFC 3581 §4).
fn reply_addr(req: &cusax_sip_proto::Request, peer: &Peer) -> SocketAddr {
    match Dest::reply_to(req, peer).hop {
        NextHop::Addr(a) => a,
        NextHop::Name(..) => peer.addr,
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

/// The addresses that name this server besides the advertised host: the bind address, or,
/// bound to all interfaces, the loopback addresses (other interface addresses are not
/// enumerated; `sip.advertise` names the one phones use).
fn local_ips(bind: IpAddr) -> Vec<IpAddr> {
    if bind.is_unspecified() {
        vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
        ]
    } else {
        vec![bind]
    }
}

fn registrar_config(services: &Services) -> Result<RegistrarConfig, StartError> {
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
        proxy: proxy_config(services),
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

/// The bound SIP listeners.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SipAddrs {
    pub(crate) udp: Option<SocketAddr>,
    pub(crate) tcp: Option<SocketAddr>,
    pub(crate) tls: Option<SocketAddr>,
}

/// Binds the SIP sockets and spawns their loops; returns the bound addresses.
pub(crate) async fn start(
    services: &Services,
    tasks: &mut JoinSet<()>,
) -> Result<(SipAddrs, Arc<SipContext>), StartError> {
    let bind = SocketAddr::new(services.config.server.bind, services.config.sip.port);
    let sip_cfg = &services.config.sip;
    // UDP and TCP share one port. With port 0 the port the kernel picks for UDP may be taken
    // for TCP by someone else: pick again (a few times) instead of failing the start.
    let mut attempt = 0;
    let (udp, tcp) = loop {
        attempt += 1;
        let udp = crate::sip_udp::bind(sip_cfg, bind)?;
        let port = udp[0].local_addr().map_or(bind.port(), |a| a.port());
        match crate::sip_tcp::bind(SocketAddr::new(bind.ip(), port), "sip/tcp") {
            Ok(tcp) => break (udp, tcp),
            Err(StartError::Listen { source, .. })
                if bind.port() == 0
                    && attempt < 8
                    && source.kind() == std::io::ErrorKind::AddrInUse => {}
            Err(e) => return Err(e),
        }
    };
    let tls_port = if sip_cfg.port == 0 {
        0
    } else {
        sip_cfg.tls_port
    };
    let tls = crate::sip_tcp::bind(SocketAddr::new(bind.ip(), tls_port), "sip/tls")?;
    let port = udp[0].local_addr().map_or(bind.port(), |a| a.port());
    let tls_bound = tls.local_addr().map_or(tls_port, |a| a.port());

    let mut cfg = registrar_config(services)?;
    cfg.proxy.advertised.port = port;
    cfg.proxy.advertised.tls_port = Some(tls_bound);
    let flush_interval = cfg.flush_interval;
    let core = SipCore::new(cfg, services.store.clone());
    let loaded = services
        .store
        .load_bindings(cusax_store::unix_now())
        .await?;
    core.location().load(loaded);
    let limits = Limits {
        max_message_bytes: services.config.sip.max_message_bytes.clamp(1024, 1 << 20),
        ..Limits::default()
    };
    let ctx = Arc::new(SipContext {
        core,
        limits,
        counters: Counters::default(),
        shutdown: services.shutdown.clone(),
        loads: Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_LOADS)),
        udp: OnceLock::new(),
        conns: Mutex::new(HashMap::new()),
        idle: Duration::from_secs(sip_cfg.tcp_idle_secs.max(1)),
        tls_client: crate::sip_tcp::client_config(),
    });
    // Subscribe before anything runs, so no change between here and the first poll is lost.
    let changes = services.changes.subscribe();
    tasks.spawn(follow_changes(ctx.clone(), changes));
    tasks.spawn(write_back(
        ctx.clone(),
        services.store.clone(),
        flush_interval,
    ));
    tasks.spawn(transaction_timers(ctx.clone()));

    let udp_addr = crate::sip_udp::spawn(&ctx, udp, tasks);
    let tcp_addr = crate::sip_tcp::spawn(&ctx, sip_cfg, tcp, None, tasks)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(services.tls.clone());
    let tls_addr = crate::sip_tcp::spawn(&ctx, sip_cfg, tls, Some(acceptor), tasks)?;
    Ok((
        SipAddrs {
            udp: Some(udp_addr),
            tcp: Some(tcp_addr),
            tls: Some(tls_addr),
        },
        ctx,
    ))
}

/// Fires the proxy's transaction timers (retransmissions, timeouts) every few milliseconds.
async fn transaction_timers(ctx: Arc<SipContext>) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = std::time::Instant::now();
        if ctx.core.next_timer().is_some_and(|t| t <= now) {
            let out = ctx.core.tick(now);
            ctx.dispatch(out);
        }
    }
}

/// Applies account changes (lock, password, aliases, deletion) to the registrar's cache.
async fn follow_changes(
    ctx: Arc<SipContext>,
    mut rx: tokio::sync::broadcast::Receiver<cusax_store::Change>,
) {
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            r = rx.recv() => match r {
                Ok(c) => ctx.core.on_change(&c),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "sip: account change feed lagged; cache cleared");
                    ctx.core.on_changes_lost();
                }
                Err(RecvError::Closed) => return,
            },
        }
    }
}

/// The location write policy's timer: expire bindings, write dirty AORs, purge old rows;
/// on shutdown one last flush so that a clean restart loses no binding.
async fn write_back(ctx: Arc<SipContext>, store: Arc<dyn LocationStore>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u32 = 0;
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = cusax_store::unix_now();
        let expired = ctx.core.location().sweep(now);
        ctx.core.calls().sweep(std::time::Instant::now());
        let t = std::time::Instant::now();
        let flushed = ctx.core.location().flush(&*store).await;
        metrics::histogram!("cusax_store_seconds", "op" => "save_bindings")
            .record(t.elapsed().as_secs_f64());
        match flushed {
            Ok(n) if n > 0 || expired > 0 => {
                tracing::debug!(written = n, expired, "sip: location written back");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sip: writing bindings failed; will retry"),
        }
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(PURGE_EVERY_TICKS)
            && let Err(e) = store.purge_expired(now).await
        {
            tracing::warn!(error = %e, "sip: purging expired bindings failed");
        }
    }
    match ctx.core.location().flush(&*store).await {
        Ok(n) => tracing::info!(written = n, "sip: location flushed at shutdown"),
        Err(e) => tracing::error!(error = %e, "sip: final location flush failed"),
    }
    let c = &ctx.counters;
    tracing::info!(
        unparsable = c.unparsable.load(Ordering::Relaxed),
        answered_invalid = c.answered_invalid.load(Ordering::Relaxed),
        dropped_invalid = c.dropped_invalid.load(Ordering::Relaxed),
        refused_connections = c.refused_connections.load(Ordering::Relaxed),
        dropped_busy = c.dropped_busy.load(Ordering::Relaxed),
        undeliverable = c.undeliverable.load(Ordering::Relaxed),
        "sip: transport counters"
    );
}
