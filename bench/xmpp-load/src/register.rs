//! Account creation by XEP-0077 in-band registration, for servers without a bulk import.
//!
//! Measures nothing of interest itself; it reports how long creating the accounts took.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Ctx;
use crate::conn::{self, Registered};
use crate::stats::Errors;

/// `register` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Registrations in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Register only the first N accounts of the file (default: all).
    #[arg(long)]
    count: Option<usize>,
    /// Stop starting registrations after this many seconds.
    #[arg(long, default_value_t = 300)]
    duration: u64,
}

/// Registers the accounts; fails when none could be registered.
pub async fn run(ctx: Arc<Ctx>, a: Args) -> anyhow::Result<(Value, String)> {
    let total = a
        .count
        .unwrap_or(ctx.accounts.len())
        .min(ctx.accounts.len());
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(a.duration);
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..a.concurrency.max(1) {
        let ctx = ctx.clone();
        let next = next.clone();
        set.spawn(async move {
            let (mut created, mut existed, mut errors) = (0u64, 0u64, Errors::default());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() >= deadline {
                    break;
                }
                match conn::register(&ctx.target, i, &ctx.accounts[i]).await {
                    Ok(Registered::Created) => created += 1,
                    Ok(Registered::Existed) => existed += 1,
                    Err(e) => errors.add(e.class(), || e.to_string()),
                }
            }
            (created, existed, errors)
        });
    }
    let (mut created, mut existed, mut errors) = (0, 0, Errors::default());
    while let Some(r) = set.join_next().await {
        let (c, x, e) = r?;
        created += c;
        existed += x;
        errors.merge(e);
    }
    let secs = t0.elapsed().as_secs_f64();
    if created + existed == 0 {
        anyhow::bail!(
            "no account could be registered: {}",
            errors.first_message().unwrap_or("no attempt made")
        );
    }
    let human = format!(
        "registered {created} (existing {existed}, failed {}) of {total} in {secs:.1}s",
        errors.total()
    );
    Ok((
        json!({
            "requested": total, "created": created, "existed": existed,
            "failed": errors.total(), "errors": errors.to_json(), "seconds": crate::round3(secs),
        }),
        human,
    ))
}
