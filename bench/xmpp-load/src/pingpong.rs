//! Message throughput and latency: delivered chat messages/s and p50/p99 one-way latency.
//!
//! P pairs of bound sessions (accounts 2i and 2i+1) send each other `<message type='chat'/>`
//! to the peer's full JID, the body carrying the send time (microseconds on this process's
//! monotonic clock, so sender and receiver share it). Closed loop (default): each session
//! starts `--window` messages and answers every message it receives with a new one, which
//! measures the server's saturated throughput. Open loop (`--rate R`): every session sends on
//! a timer, R messages/s in total, which measures latency at a fixed load. Only messages
//! received inside the window after `--warmup` count.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;

use crate::Ctx;
use crate::conn::{self, Next, Session, Xmpp};
use crate::stats::{Errors, Samples};

/// `pingpong` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pairs of sessions (2 × pairs connections and accounts).
    #[arg(long, default_value_t = 500)]
    pairs: usize,
    /// Measured seconds, after the warm-up.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of traffic before measuring.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Closed loop: messages each session keeps in flight.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// Open loop: total messages/s over all sessions (0 = closed loop).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Logins in flight at once while connecting.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
}

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the process-wide epoch.
fn now_us() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// Per-session measurement plan.
#[derive(Clone, Copy, Debug)]
struct Plan {
    go: Instant,
    measure_from: Instant,
    measure_to: Instant,
    drain_to: Instant,
    window: usize,
    /// Open-loop send period of this session, and its first send.
    tick: Option<(Instant, Duration)>,
}

#[derive(Debug, Default)]
struct SideStats {
    sent: u64,
    received: u64,
    measured: u64,
    lat: Samples,
    errors: Errors,
}

fn push_msg(out: &mut Vec<u8>, prefix: &str, seq: u64) {
    use std::io::Write as _;
    let _ = write!(out, "{prefix}{seq}'><body>{}</body></message>", now_us());
}

async fn side(mut x: Xmpp, peer: String, plan: Plan) -> SideStats {
    let mut st = SideStats {
        lat: Samples::with_cap(4_000_000),
        ..SideStats::default()
    };
    let mut prefix = String::from("<message type='chat' to='");
    cusax_xmpp_proto::xml::escape_attr(&peer, &mut prefix);
    prefix.push_str("' id='m");
    let mut out = Vec::with_capacity(4096);
    tokio::time::sleep_until(plan.go.into()).await;
    if plan.tick.is_none() {
        for _ in 0..plan.window {
            push_msg(&mut out, &prefix, st.sent);
            st.sent += 1;
        }
        if let Err(e) = x.send(&out).await {
            st.errors.add(e.class(), || e.to_string());
            return st;
        }
        out.clear();
    }
    // An hour-long period stands for "no timer" in closed-loop mode; its branch is disabled.
    let (first, period) = plan
        .tick
        .unwrap_or((plan.drain_to, Duration::from_secs(3600)));
    let mut tick = tokio::time::interval_at(first.into(), period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let open_loop = plan.tick.is_some();
    loop {
        let sending = Instant::now() < plan.measure_to;
        tokio::select! {
            _ = tokio::time::sleep_until(plan.drain_to.into()) => break,
            _ = tick.tick(), if open_loop && sending => {
                push_msg(&mut out, &prefix, st.sent);
                st.sent += 1;
            }
            r = x.next() => {
                let mut r = Some(r);
                // Handle everything already read, then answer with one write.
                while let Some(ev) = r.take().or_else(|| x.buffered()) {
                    match ev {
                        Ok(Next::Element(el)) => on_element(&el, &mut st, &plan, &prefix, &mut out),
                        Ok(Next::Closed) => {
                            st.errors.add("closed", || "server closed the stream".into());
                            return st;
                        }
                        Err(e) => {
                            st.errors.add(e.class(), || e.to_string());
                            return st;
                        }
                    }
                }
            }
        }
        if !out.is_empty() {
            if let Err(e) = x.send(&out).await {
                st.errors.add(e.class(), || e.to_string());
                return st;
            }
            out.clear();
        }
    }
    x.close().await;
    st
}

fn on_element(
    el: &minidom::Element,
    st: &mut SideStats,
    plan: &Plan,
    prefix: &str,
    out: &mut Vec<u8>,
) {
    match el.name() {
        "message" => {
            if el.attr("type") == Some("error") {
                st.errors.add("message_error", || format!("{el:?}"));
                return;
            }
            let body = el
                .get_child("body", cusax_xmpp_proto::ns::JABBER_CLIENT)
                .map(|b| b.text());
            let Some(sent_us) = body.and_then(|b| b.trim().parse::<u64>().ok()) else {
                return;
            };
            let now = Instant::now();
            st.received += 1;
            if now >= plan.measure_from && now < plan.measure_to {
                st.measured += 1;
                st.lat.push_us(now_us().saturating_sub(sent_us));
            }
            if plan.tick.is_none() && now < plan.measure_to {
                push_msg(out, prefix, st.sent);
                st.sent += 1;
            }
        }
        "iq" => Xmpp::answer_iq(el, out),
        _ => {}
    }
}

/// Connects all sessions, runs the exchange, merges the statistics.
pub async fn run(ctx: Arc<Ctx>, a: Args) -> anyhow::Result<(Value, String)> {
    let n = a.pairs * 2;
    if a.pairs == 0 {
        bail!("--pairs must be at least 1");
    }
    if ctx.accounts.len() < n {
        bail!(
            "{} pairs need {n} accounts, the file has {}",
            a.pairs,
            ctx.accounts.len()
        );
    }
    let _ = now_us();
    let sem = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let (ctx, sem) = (ctx.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (
                i,
                conn::login(&ctx.target, i, &ctx.accounts[i], None, "pp").await,
            )
        });
    }
    let mut sessions: Vec<Option<Session>> = (0..n).map(|_| None).collect();
    let mut errors = Errors::default();
    while let Some(r) = set.join_next().await {
        let (i, r) = r.context("login task")?;
        match r {
            Ok(s) => sessions[i] = Some(s),
            Err(e) => errors.add(e.class(), || e.to_string()),
        }
    }
    let connect_s = t0.elapsed().as_secs_f64();
    if errors.total() > 0 {
        bail!(
            "{} of {n} sessions could not log in: {}",
            errors.total(),
            errors.first_message().unwrap_or("?")
        );
    }
    let go = Instant::now() + Duration::from_millis(200);
    let measure_from = go + Duration::from_secs(a.warmup);
    let measure_to = measure_from + Duration::from_secs(a.duration);
    let drain_to = measure_to + Duration::from_secs(1);
    // Open loop: each session sends rate/n per second, the starts spread over one period.
    let period = (a.rate > 0).then(|| Duration::from_secs_f64(n as f64 / a.rate as f64));
    let mut set = tokio::task::JoinSet::new();
    let mut it = sessions.into_iter().flatten();
    let mut idx = 0u32;
    while let (Some(sa), Some(sb)) = (it.next(), it.next()) {
        for (me, peer) in [(sa.xmpp, sb.jid.clone()), (sb.xmpp, sa.jid.clone())] {
            let tick = period.map(|p| (go + p.mul_f64(f64::from(idx) / n as f64), p));
            idx += 1;
            let plan = Plan {
                go,
                measure_from,
                measure_to,
                drain_to,
                window: a.window.max(1),
                tick,
            };
            set.spawn(side(me, peer, plan));
        }
    }
    // The loader's own CPU over the measured window: near 100 % means it, not the server,
    // limits the message rate.
    let cpu_probe = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let a = crate::stats::self_cpu_seconds();
        tokio::time::sleep_until(measure_to.into()).await;
        let b = crate::stats::self_cpu_seconds();
        a.zip(b)
            .map(|(a, b)| (b - a) * 100.0 / (measure_to - measure_from).as_secs_f64())
    });
    let mut all = SideStats {
        lat: Samples::with_cap(usize::MAX),
        ..SideStats::default()
    };
    while let Some(r) = set.join_next().await {
        let s = r.context("session task")?;
        all.sent += s.sent;
        all.received += s.received;
        all.measured += s.measured;
        all.lat.merge(s.lat);
        all.errors.merge(s.errors);
    }
    let loader_cpu = cpu_probe.await.ok().flatten().map(crate::round3);
    let rate = all.measured as f64 / a.duration as f64;
    let lat = all.lat.summary();
    let human = format!(
        "pingpong ({}): {} pairs, {rate:.0} delivered msgs/s over {}s, one-way latency p50 {} ms p99 {} ms, {} errors",
        if a.rate > 0 {
            format!("open loop {}/s", a.rate)
        } else {
            format!("closed loop, window {}", a.window.max(1))
        },
        a.pairs,
        a.duration,
        lat["p50_ms"],
        lat["p99_ms"],
        all.errors.total()
    );
    Ok((
        json!({
            "pairs": a.pairs, "connections": n, "connect_seconds": crate::round3(connect_s),
            "loop": if a.rate > 0 { "open" } else { "closed" }, "offered_rate": a.rate,
            "window": a.window.max(1), "warmup_s": a.warmup, "duration_s": a.duration,
            "sent": all.sent, "received": all.received, "measured": all.measured,
            "msgs_per_s": crate::round3(rate), "latency": lat,
            "loader_cpu_pct_measured": loader_cpu,
            "failed": all.errors.total(), "errors": all.errors.to_json(),
        }),
        human,
    ))
}
