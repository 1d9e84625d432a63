//! RFC 3261 §18: SIP transports (UDP, TCP) feeding the registrar and proxy of `cusax-sip`.
//!
//! This module wires the pieces: it builds the [`SipCore`] from the configuration, loads the
//! stored bindings, binds the sockets (`sip_udp`, `sip_tcp`), follows the account change feed
//! and runs the location write-back timer, which also flushes once more at shutdown.

use crate::config::{ConfigError, SipSection};
use crate::server::{Services, StartError};
use bytes::{Bytes, BytesMut};
use cusax_sip::{Outcome, Peer, RegistrarConfig, SipCore};
use cusax_sip_proto::digest::Algorithm;
use cusax_sip_proto::message::MessageHead;
use cusax_sip_proto::{Limits, SipMessage, parse_datagram};
use cusax_store::LocationStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
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
}

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
}

/// What to do with one received message.
pub(crate) enum Next {
    /// Send these bytes back; on UDP to the address given (RFC 3261 §18.2.2).
    Send(BytesMut, SocketAddr),
    /// The request needs an account loaded first (see [`SipCore::handle`]); the response
    /// goes to the address given.
    Load(
        Box<cusax_sip_proto::Request>,
        String,
        cusax_account::Domain,
        SocketAddr,
    ),
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
            // Responses belong to client transactions, which the proxy will have.
            Ok(SipMessage::Response(_)) => return Next::Nothing,
            Err(bad) => return self.invalid(&bad, peer),
        };
        let to = reply_to(&req, peer.addr);
        match self.core.handle(cusax_store::unix_now(), &req, peer) {
            Outcome::Respond(b) => Next::Send(b, to),
            Outcome::NeedAccount { user, realm } => Next::Load(Box::new(req), user, realm, to),
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
                Next::Send(b, reply_to(bad.message.head(), peer.addr))
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

    /// The slow path after [`Next::Load`]: load the account from the store, handle again.
    pub(crate) async fn load_and_handle(
        &self,
        req: &cusax_sip_proto::Request,
        user: &str,
        realm: &cusax_account::Domain,
        peer: &Peer,
    ) -> Option<BytesMut> {
        if let Err(e) = self.core.load_account(user, realm).await {
            tracing::warn!(error = %e, "sip: loading an account failed");
            return None;
        }
        match self.core.handle(cusax_store::unix_now(), req, peer) {
            Outcome::Respond(b) => Some(b),
            // Invalidated again meanwhile; the client retransmits (UDP) or retries.
            Outcome::NeedAccount { .. } | Outcome::Nothing => None,
        }
    }
}

/// Where a UDP response goes (RFC 3261 §18.2.2, RFC 3581 §4): the source address when the
/// top Via asks for `rport`, else the source IP (our `received`) at the Via's sent-by port.
fn reply_to(head: &MessageHead, from: SocketAddr) -> SocketAddr {
    match head.top_via() {
        Ok(v) if v.rport().is_none() => SocketAddr::new(from.ip(), v.port().unwrap_or(5060)),
        _ => from,
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
        ..RegistrarConfig::default()
    })
}

/// Binds the SIP sockets and spawns their loops; returns the bound UDP and TCP addresses.
pub(crate) async fn start(
    services: &Services,
    tasks: &mut JoinSet<()>,
) -> Result<(Option<SocketAddr>, Option<SocketAddr>), StartError> {
    let cfg = registrar_config(services)?;
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
    });
    // Subscribe before anything runs, so no change between here and the first poll is lost.
    let changes = services.changes.subscribe();
    tasks.spawn(follow_changes(ctx.clone(), changes));
    tasks.spawn(write_back(
        ctx.clone(),
        services.store.clone(),
        flush_interval,
    ));

    let bind = SocketAddr::new(services.config.server.bind, services.config.sip.port);
    let cfg = &services.config.sip;
    // UDP and TCP share one port. With port 0 the port the kernel picks for UDP may be taken
    // for TCP by someone else: pick again (a few times) instead of failing the start.
    let mut attempt = 0;
    let (udp, tcp) = loop {
        attempt += 1;
        let udp = crate::sip_udp::bind(cfg, bind)?;
        let port = udp[0].local_addr().map_or(bind.port(), |a| a.port());
        match crate::sip_tcp::bind(SocketAddr::new(bind.ip(), port)) {
            Ok(tcp) => break (udp, tcp),
            Err(StartError::Listen { source, .. })
                if bind.port() == 0
                    && attempt < 8
                    && source.kind() == std::io::ErrorKind::AddrInUse => {}
            Err(e) => return Err(e),
        }
    };
    let udp_addr = crate::sip_udp::spawn(&ctx, udp, tasks);
    let tcp_addr = crate::sip_tcp::spawn(&ctx, cfg, tcp, tasks)?;
    Ok((Some(udp_addr), Some(tcp_addr)))
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
        match ctx.core.location().flush(&*store).await {
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
        "sip: transport counters"
    );
}
