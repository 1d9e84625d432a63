//! `cusax`: the CUSAX client (RFC 7081) on the command line — calls over SIP with audio from a
//! WAV file or a tone, recorded to WAV; one JSON event per line on stdout.

mod cli;
mod config;
mod run;

use clap::Parser;
use cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Diagnostics go to stderr (RUST_LOG, default warnings); stdout carries only events.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return run::fail(&anyhow::Error::from(e)),
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Call {
                uri,
                account,
                source,
                record,
                duration,
                ring_timeout,
            } => {
                let acct = config::account(cli.config.as_deref(), &account)?;
                run::call(acct, &uri, &source, record, duration, ring_timeout).await
            }
            Command::Listen {
                account,
                auto_answer,
                record_dir,
                source,
                expires,
            } => {
                let acct = config::account(cli.config.as_deref(), &account)?;
                run::listen(acct, auto_answer, record_dir, &source, expires).await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => run::fail(&e),
    }
}
