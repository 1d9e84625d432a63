//! XMPP c2s load generator: login rate, idle-connection footprint and message throughput/latency.
//!
//! One JSON line of results goes to stdout (for scripts), one human-readable line to stderr.
//! Every mode is bounded in count and in time; `--max-time` bounds the whole run.

mod conn;
mod idle;
mod logins;
mod pingpong;
mod register;
mod stats;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use conn::{Account, Target};

/// XMPP load generator for comparing c2s servers (plain TCP or STARTTLS, SCRAM logins).
#[derive(Debug, Parser)]
#[command(name = "xmpp-load", version)]
struct Cli {
    /// Server address (loopback benchmarks only).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Server c2s port.
    #[arg(long, default_value_t = 5222)]
    port: u16,
    /// XMPP domain.
    #[arg(long, default_value = "bench.local")]
    domain: String,
    /// Accounts, one `user@domain,password` a line (the `cusaxctl user import` format).
    #[arg(long)]
    users: PathBuf,
    /// SCRAM mechanism: SCRAM-SHA-1 or SCRAM-SHA-256.
    #[arg(long, default_value = "SCRAM-SHA-1")]
    mechanism: String,
    /// Use STARTTLS before SASL (certificates are not verified).
    #[arg(long)]
    starttls: bool,
    /// Timeout of each protocol step, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    step_timeout_ms: u64,
    /// Connect from 127.0.0.1 … 127.0.0.N in turn, for more distinct 4-tuples.
    #[arg(long, default_value_t = 1)]
    source_addrs: u8,
    /// Runtime worker threads (default: CPUs this process may run on).
    #[arg(long)]
    threads: Option<usize>,
    /// Name of the server under test, copied into the JSON result.
    #[arg(long, default_value = "")]
    label: String,
    /// Hard limit on the whole run, in seconds.
    #[arg(long, default_value_t = 600)]
    max_time: u64,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Create the accounts by XEP-0077 in-band registration (existing ones count as done).
    Register(register::Args),
    /// Concurrent connect → SCRAM → bind → close cycles; logins/s and login latency.
    Logins(logins::Args),
    /// Open and hold K authenticated connections (the caller measures server memory).
    Idle(idle::Args),
    /// P pairs of sessions exchanging timestamped chat messages; messages/s and latency.
    Pingpong(pingpong::Args),
}

/// What every mode gets.
#[derive(Debug)]
pub struct Ctx {
    /// Where and how to connect.
    pub target: Target,
    /// The accounts, in file order.
    pub accounts: Vec<Account>,
}

fn read_accounts(path: &PathBuf, domain: &str) -> anyhow::Result<Vec<Account>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((jid, password)) = line.split_once(',') else {
            bail!(
                "{}:{}: expected user@domain,password",
                path.display(),
                i + 1
            );
        };
        let user = match jid.split_once('@') {
            Some((u, d)) if d.eq_ignore_ascii_case(domain) => u,
            Some((_, d)) => bail!(
                "{}:{}: domain {d} is not the benchmark domain {domain}",
                path.display(),
                i + 1
            ),
            None => jid,
        };
        if user.is_empty() {
            bail!("{}:{}: empty user", path.display(), i + 1);
        }
        out.push(Account {
            user: user.to_owned(),
            password: password.to_owned(),
        });
    }
    if out.is_empty() {
        bail!("{}: no accounts", path.display());
    }
    Ok(out)
}

/// Raises the soft open-files limit to the hard limit: idle mode holds thousands of sockets.
fn raise_nofile() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if let Some(max) = l.maximum
        && l.current.is_some_and(|c| c < max)
    {
        l.current = Some(max);
        let _ = setrlimit(Resource::Nofile, l);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

fn main() {
    let cli = Cli::parse();
    let label = cli.label.clone();
    let code = match run(cli) {
        Ok(v) => {
            println!("{v}");
            0
        }
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!("xmpp-load: error: {msg}");
            println!("{}", json!({ "label": label, "error": msg }));
            2
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> anyhow::Result<Value> {
    let mechanism = conn::parse_mechanism(&cli.mechanism)?;
    let accounts = read_accounts(&cli.users, &cli.domain)?;
    let nofile = raise_nofile();
    let sources = if cli.source_addrs > 1 {
        (1..=cli.source_addrs)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect()
    } else {
        Vec::new()
    };
    let tls = if cli.starttls {
        Some(conn::insecure_tls()?)
    } else {
        None
    };
    let ctx = Arc::new(Ctx {
        target: Target {
            addr: SocketAddr::new(cli.host, cli.port),
            domain: cli.domain.clone(),
            mechanism,
            tls,
            sources,
            step_timeout: Duration::from_millis(cli.step_timeout_ms),
        },
        accounts,
    });
    let threads = cli
        .threads
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let max_time = Duration::from_secs(cli.max_time);
    let cpu0 = stats::self_cpu_seconds();
    let t0 = std::time::Instant::now();
    let mode_name = match &cli.mode {
        Mode::Register(_) => "register",
        Mode::Logins(_) => "logins",
        Mode::Idle(_) => "idle",
        Mode::Pingpong(_) => "pingpong",
    };
    let mode = cli.mode;
    let res = rt.block_on(async move {
        let fut = async {
            match mode {
                Mode::Register(a) => register::run(ctx, a).await,
                Mode::Logins(a) => logins::run(ctx, a).await,
                Mode::Idle(a) => idle::run(ctx, a).await,
                Mode::Pingpong(a) => pingpong::run(ctx, a).await,
            }
        };
        match tokio::time::timeout(max_time, fut).await {
            Ok(r) => r,
            Err(_) => bail!("run exceeded --max-time {}s", max_time.as_secs()),
        }
    });
    // Tasks still holding sockets (idle mode) are dropped with the runtime, without waiting.
    rt.shutdown_timeout(Duration::from_millis(100));
    let (mut v, human) = res?;
    let wall = t0.elapsed().as_secs_f64();
    if let Value::Object(m) = &mut v {
        m.insert("mode".into(), json!(mode_name));
        m.insert("label".into(), json!(label_or(&cli.label)));
        m.insert("mechanism".into(), json!(mechanism.name()));
        m.insert(
            "transport".into(),
            json!(if cli.starttls { "starttls" } else { "tcp" }),
        );
        m.insert("loader_threads".into(), json!(threads));
        m.insert("loader_nofile".into(), json!(nofile));
        m.insert("loader_wall_s".into(), json!(round3(wall)));
        if let (Some(a), Some(b)) = (cpu0, stats::self_cpu_seconds()) {
            m.insert("loader_cpu_s".into(), json!(round3(b - a)));
        }
    }
    eprintln!(
        "{}{human}",
        if cli.label.is_empty() {
            String::new()
        } else {
            format!("{}: ", cli.label)
        }
    );
    Ok(v)
}

fn label_or(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { json!(s) }
}

/// Rounds to three decimals for the report.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
