//! RFC 3261 §18: SIP transports (UDP, TCP, TLS) feeding the registrar and proxy of `cusax-sip`.
//!
//! This module wires the pieces: it builds the [`SipCore`](cusax_sip::SipCore) from the
//! configuration, loads the stored bindings, serves the bound sockets (`udp`, `stream`),
//! follows account changes on the bus, runs the transaction timers and the location
//! write-back timer (which also flushes once more at shutdown).
//!
//! Imports point one way: `mod` → `udp`, `stream` → `dispatch` → `context`. `context`
//! holds what every file shares, `dispatch` handles one message and delivers what the
//! proxy sends, `udp` and `stream` are the transports.

mod context;
mod dispatch;
mod stream;
mod udp;

pub(crate) use context::SipContext;

use crate::listeners::SipListeners;
use crate::services::{Services, StartError};
use context::Counters;
use cusax_bus::{Event, RecvError, Subscription};
use cusax_sip::SipCore;
use cusax_sip_proto::Limits;
use cusax_store::LocationStore;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::task::JoinSet;

/// Account loads (store round trips) in flight at once on UDP; beyond that a request is
/// dropped and the client's retransmission finds the account cached or a free slot.
const MAX_PENDING_LOADS: usize = 256;

/// Every this many write-back ticks, expired rows are purged from the database too.
const PURGE_EVERY_TICKS: u32 = 12;

/// The bound SIP listeners.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SipAddrs {
    pub(crate) udp: Option<SocketAddr>,
    pub(crate) tcp: Option<SocketAddr>,
    pub(crate) tls: Option<SocketAddr>,
}

/// Serves the bound SIP sockets and spawns their loops; returns the bound addresses.
pub(crate) async fn start(
    services: &Services,
    listeners: SipListeners,
    tasks: &mut JoinSet<()>,
) -> Result<(SipAddrs, Arc<SipContext>), StartError> {
    let sip_cfg = &services.config.sip;
    let listen_err = |what, l: &std::net::TcpListener, source| StartError::Listen {
        what,
        addr: l
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
        source,
    };
    let port = listeners
        .udp
        .first()
        .and_then(|u| u.local_addr().ok())
        .map_or(sip_cfg.port, |a| a.port());
    let tls_bound = listeners
        .tls
        .local_addr()
        .map_err(|e| listen_err("sip/tls", &listeners.tls, e))?
        .port();

    let cfg = context::registrar_config(services, port, tls_bound)?;
    let flush_interval = cfg.flush_interval;
    // Binding changes and call states go on the server's bus ("on the phone" follows them).
    let core = SipCore::new(cfg, services.store.clone()).with_bus(services.bus.clone());
    let loaded = services
        .store
        .load_bindings(cusax_store::unix_now())
        .await?;
    core.location().load(loaded);
    let limits = Limits {
        max_message_bytes: sip_cfg.max_message_bytes.clamp(1024, 1 << 20),
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
        tls_client: stream::client_config(),
        connect: stream::connect,
    });
    // Subscribe before anything runs, so no change between here and the first poll is lost.
    tasks.spawn(follow_changes(ctx.clone(), services.bus.subscribe()));
    let location: Arc<dyn LocationStore> = services.store.clone();
    tasks.spawn(write_back(ctx.clone(), location, flush_interval));
    tasks.spawn(transaction_timers(ctx.clone()));

    let udp_addr = udp::spawn(&ctx, listeners.udp, tasks)?;
    let tcp_addr = stream::spawn(&ctx, sip_cfg, listeners.tcp, None, tasks)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(services.tls.clone());
    let tls_addr = stream::spawn(&ctx, sip_cfg, listeners.tls, Some(acceptor), tasks)?;
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

/// Applies account changes (lock, password, aliases, deletion) from the bus to the
/// registrar's cache.
async fn follow_changes(ctx: Arc<SipContext>, mut events: Subscription) {
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            r = events.recv() => match r {
                Ok(Event::AccountChanged(c)) => match crate::changes::to_change(&c) {
                    Some(c) => ctx.core.on_change(&c),
                    // A change this build cannot name: forget everything rather than guess.
                    None => ctx.core.on_changes_lost(),
                },
                Ok(_) => {}
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
