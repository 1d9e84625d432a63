//! `cusaxd`: the CUSAX server (RFC 7081) — SIP for calls, XMPP for everything else, one store.

use clap::{Parser, Subcommand};
use cusax_server::config::{self, LogFormat, Overrides};
use cusax_server::{Listeners, Server, logging};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    version,
    about = "CUSAX server: SIP registrar/proxy and XMPP server over one account store"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args)]
struct Common {
    /// Configuration file (default: DATA_DIR/cusaxd.toml if present).
    #[arg(long, env = "CUSAXD_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory holding the database, certificates and configuration.
    #[arg(long, env = "CUSAXD_DATA_DIR", default_value = "cusax-data")]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server until SIGINT or SIGTERM.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Domain to serve (repeatable; created in the store if missing). Default: localhost.
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// Address to bind every listener to.
        #[arg(long)]
        bind: Option<std::net::IpAddr>,
        /// SIP UDP/TCP port (0 = any free port).
        #[arg(long)]
        sip_port: Option<u16>,
        /// XMPP client port (0 = any free port).
        #[arg(long)]
        xmpp_port: Option<u16>,
        /// HTTPS port (0 = any free port).
        #[arg(long)]
        http_port: Option<u16>,
        /// Log line format.
        #[arg(long, value_parser = ["human", "json"])]
        log_format: Option<String>,
        /// Write the bound addresses as JSON to this file once listening.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Validate the configuration and exit.
    CheckConfig {
        #[command(flatten)]
        common: Common,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::CheckConfig { common } => {
            let cfg = config::load_for(common.config.as_deref(), &common.data_dir)?;
            println!("configuration OK: domains {:?}", cfg.server.domains);
            Ok(())
        }
        Cmd::Serve {
            common,
            domains,
            bind,
            sip_port,
            xmpp_port,
            http_port,
            log_format,
            ready_file,
        } => {
            let log_format = log_format.map(|f| {
                if f == "json" {
                    LogFormat::Json
                } else {
                    LogFormat::Human
                }
            });
            let overrides = Overrides {
                domains,
                bind,
                sip_port,
                xmpp_port,
                http_port,
                log_format,
            };
            let mut cfg = config::load_for(common.config.as_deref(), &common.data_dir)?;
            overrides.apply(&mut cfg);
            logging::init(cfg.server.log_format);
            cfg.validate()?;
            // The binary binds; the library serves what it is given (ARCHITECTURE.md).
            let listeners = Listeners::bind(&cfg)?;
            let running = Server {
                config: cfg,
                data_dir: common.data_dir,
            }
            .start(listeners, CancellationToken::new())
            .await?;
            if let Some(path) = ready_file {
                std::fs::write(&path, serde_json::to_vec(&running.listening)?)?;
            }
            wait_for_signal().await?;
            tracing::info!("shutting down");
            running.stop(Duration::from_millis(1500)).await;
            Ok(())
        }
    }
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
