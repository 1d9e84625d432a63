//! Login throughput: logins/s and p50/p99 latency of connect → SCRAM → bind, then close.
//!
//! A warm-up logs each account in once, untimed, to learn its SaltedPassword; the timed phase
//! then reuses it, so the loader does no PBKDF2 while the server does its full share of SCRAM.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use crate::Ctx;
use crate::conn::{self, LoginError, Salted};
use crate::stats::{Errors, Samples};

/// `logins` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Concurrent workers, each doing one login after another.
    #[arg(long, default_value_t = 50)]
    workers: usize,
    /// Maximum logins in the timed phase.
    #[arg(long, default_value_t = 1_000_000)]
    count: usize,
    /// Length of the timed phase in seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Accounts used (the first N of the file), each warmed up once.
    #[arg(long, default_value_t = 1000)]
    login_users: usize,
    /// Do not cache SaltedPassword: the loader runs PBKDF2 on every login.
    #[arg(long)]
    no_cache: bool,
}

type Cache = Arc<Mutex<Vec<Option<Salted>>>>;

fn cached(cache: &Cache, u: usize) -> Option<Salted> {
    cache
        .lock()
        .map(|c| c.get(u).cloned().flatten())
        .unwrap_or(None)
}

fn store(cache: &Cache, u: usize, s: Option<Salted>) {
    if let Ok(mut c) = cache.lock()
        && let Some(slot) = c.get_mut(u)
    {
        *slot = s;
    }
}

struct Worker {
    ok: u64,
    /// When the last successful login of this worker completed.
    last: Option<Instant>,
    lat: Samples,
    errors: Errors,
}

/// Runs `workers` loops over login indices `0..count` until `deadline`.
async fn phase(
    ctx: &Arc<Ctx>,
    cache: &Cache,
    workers: usize,
    count: usize,
    users: usize,
    deadline: Instant,
    use_cache: bool,
) -> anyhow::Result<Worker> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let (ctx, cache, next) = (ctx.clone(), cache.clone(), next.clone());
        set.spawn(async move {
            // Closing runs beside the next login: how fast a server tears a session down is
            // not its login capacity, and waiting for it would idle the worker.
            let mut closing = tokio::task::JoinSet::new();
            let mut w = Worker {
                ok: 0,
                last: None,
                lat: Samples::with_cap(2_000_000),
                errors: Errors::default(),
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || Instant::now() >= deadline {
                    break;
                }
                let u = i % users;
                let c = if use_cache { cached(&cache, u) } else { None };
                let had_cache = c.is_some();
                let t = Instant::now();
                match conn::login(&ctx.target, i, &ctx.accounts[u], c, "load").await {
                    Ok(s) => {
                        w.lat.push_us(t.elapsed().as_micros() as u64);
                        w.ok += 1;
                        w.last = Some(Instant::now());
                        if use_cache && !had_cache {
                            store(&cache, u, s.salted.clone());
                        }
                        closing.spawn(s.xmpp.close());
                        while closing.try_join_next().is_some() {}
                    }
                    Err(e) => {
                        // A changed salt (account re-created) invalidates the cache entry.
                        if had_cache && matches!(e, LoginError::Other(_)) {
                            store(&cache, u, None);
                        }
                        w.errors.add(e.class(), || e.to_string());
                    }
                }
            }
            // close() is bounded (2 s), so this wait is too
            while closing.join_next().await.is_some() {}
            w
        });
    }
    let mut all = Worker {
        ok: 0,
        last: None,
        lat: Samples::with_cap(usize::MAX),
        errors: Errors::default(),
    };
    while let Some(r) = set.join_next().await {
        let w = r?;
        all.ok += w.ok;
        all.last = all.last.max(w.last);
        all.lat.merge(w.lat);
        all.errors.merge(w.errors);
    }
    Ok(all)
}

/// Warm-up, then the timed phase.
pub async fn run(ctx: Arc<Ctx>, a: Args) -> anyhow::Result<(Value, String)> {
    let users = a.login_users.clamp(1, ctx.accounts.len());
    let cache: Cache = Arc::new(Mutex::new(vec![None; users]));
    let warm_t = Instant::now();
    let warm = phase(
        &ctx,
        &cache,
        a.workers,
        users,
        users,
        Instant::now() + Duration::from_secs(120),
        true,
    )
    .await?;
    let warm_s = warm_t.elapsed().as_secs_f64();
    if warm.ok == 0 {
        bail!(
            "no login succeeded ({} of {} failed): {}",
            warm.errors.total(),
            users,
            warm.errors.first_message().unwrap_or("no attempt made")
        );
    }
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(a.duration);
    let mut m = phase(
        &ctx,
        &cache,
        a.workers,
        a.count,
        users,
        deadline,
        !a.no_cache,
    )
    .await?;
    // The rate is over the span of completed logins, not the trailing closes.
    let secs = m
        .last
        .map_or_else(|| t0.elapsed(), |l| l.duration_since(t0))
        .as_secs_f64()
        .max(1e-3);
    let rate = m.ok as f64 / secs;
    let lat = m.lat.summary();
    let human = format!(
        "logins: {} ok, {} failed in {secs:.1}s = {rate:.0} logins/s, latency p50 {} ms p99 {} ms ({} workers, {} accounts)",
        m.ok,
        m.errors.total(),
        lat["p50_ms"],
        lat["p99_ms"],
        a.workers,
        users
    );
    Ok((
        json!({
            "workers": a.workers, "accounts": users, "cached_salted_password": !a.no_cache,
            "warmup": { "ok": warm.ok, "failed": warm.errors.total(), "seconds": crate::round3(warm_s) },
            "ok": m.ok, "failed": m.errors.total(), "refused": m.errors.count("refused"),
            "errors": m.errors.to_json(),
            "seconds": crate::round3(secs), "logins_per_s": crate::round3(rate), "latency": lat,
        }),
        human,
    ))
}
