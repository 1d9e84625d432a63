//! Idle footprint: opens K authenticated, bound connections and holds them.
//!
//! The caller measures the server's memory while they are held: once all connections are up
//! (or failed), the ready file is written; the connections are held until SIGTERM/SIGINT or
//! `--hold` seconds, then the result line says how many were still open.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use crate::Ctx;
use crate::conn::{self, Next, Xmpp};
use crate::stats::{Errors, Samples};

/// `idle` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Connections to open (one account each: the file needs at least this many).
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Logins in flight at once while opening.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Give up opening after this many seconds.
    #[arg(long, default_value_t = 300)]
    open_timeout: u64,
    /// Hold the connections at most this many seconds after opening.
    #[arg(long, default_value_t = 300)]
    hold: u64,
    /// Written (with the opening summary) when all connections are up or failed.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Send initial presence after binding.
    #[arg(long)]
    presence: bool,
}

/// Holds one session: answers pings, notices when the server closes it.
async fn hold(mut x: Xmpp, mut stop: watch::Receiver<bool>, closed: Arc<AtomicU64>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            r = x.next() => match r {
                Ok(Next::Element(el)) if el.name() == "iq" => {
                    let mut out = Vec::new();
                    Xmpp::answer_iq(&el, &mut out);
                    if !out.is_empty() && x.send(&out).await.is_err() {
                        closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                Ok(Next::Element(_)) => {}
                Ok(Next::Closed) | Err(_) => {
                    closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
        }
    }
}

/// Opens, reports readiness, holds, reports.
pub async fn run(ctx: Arc<Ctx>, a: Args) -> anyhow::Result<(Value, String)> {
    let k = a.connections;
    if ctx.accounts.len() < k {
        bail!(
            "{k} connections need {k} accounts, the file has {}",
            ctx.accounts.len()
        );
    }
    let sem = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let closed = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let open_deadline = Instant::now() + Duration::from_secs(a.open_timeout);
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..k {
        let (ctx, sem, closed, stop) = (ctx.clone(), sem.clone(), closed.clone(), stop_rx.clone());
        let presence = a.presence;
        set.spawn(async move {
            let permit = sem.acquire_owned().await;
            if Instant::now() >= open_deadline {
                return Err(("timeout", "open timeout reached".to_owned()));
            }
            let t = Instant::now();
            let mut s = match conn::login(&ctx.target, i, &ctx.accounts[i], None, "idle").await {
                Ok(s) => s,
                Err(e) => return Err((e.class(), e.to_string())),
            };
            if presence && s.xmpp.send(b"<presence/>").await.is_err() {
                return Err(("other", "sending presence failed".to_owned()));
            }
            let us = t.elapsed().as_micros() as u64;
            drop(permit);
            // The holder outlives this task's result: it keeps the socket open.
            tokio::spawn(hold(s.xmpp, stop, closed));
            Ok(us)
        });
    }
    let (mut ok, mut errors, mut lat) = (0u64, Errors::default(), Samples::with_cap(k));
    while let Some(r) = set.join_next().await {
        match r.context("login task")? {
            Ok(us) => {
                ok += 1;
                lat.push_us(us);
            }
            Err((class, msg)) => errors.add(class, || msg),
        }
    }
    let open_s = t0.elapsed().as_secs_f64();
    if ok == 0 {
        bail!(
            "no connection could be opened: {}",
            errors.first_message().unwrap_or("no attempt made")
        );
    }
    let opening = json!({
        "requested": k, "established": ok, "failed": errors.total(), "errors": errors.to_json(),
        "open_seconds": crate::round3(open_s), "login_latency": lat.summary(),
    });
    if let Some(p) = &a.ready_file {
        std::fs::write(p, format!("{opening}\n")).with_context(|| format!("{}", p.display()))?;
    }
    eprintln!("idle: {ok} of {k} connections open after {open_s:.1}s; holding");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let held_t = Instant::now();
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(a.hold)) => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let held_s = held_t.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let lost = closed.load(Ordering::Relaxed);
    let still = ok.saturating_sub(lost);
    let human = format!(
        "idle: {ok} of {k} opened in {open_s:.1}s, {still} still open after holding {held_s:.1}s"
    );
    Ok((
        json!({
            "connections": k, "opening": opening, "established": ok,
            "closed_by_server": lost, "still_open": still, "held_seconds": crate::round3(held_s),
        }),
        human,
    ))
}
