//! RFC 7081 (CUSAX) on the command line: `cusax` — one account, chat and presence over XMPP,
//! calls over SIP with audio from a WAV file or a tone, recorded to WAV; one JSON event per
//! line on stdout.

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
    let cfg = cli.config.as_deref();
    let result = rt.block_on(async {
        match cli.command {
            Command::Login {
                provision,
                dns,
                dns_server,
                password_stdin,
                no_check,
                account,
            } => {
                let dns = dns.then_some(cusax_client::setup::DnsConfig {
                    name_server: dns_server,
                    timeout: None,
                });
                run::login(
                    cfg,
                    provision.as_deref(),
                    dns,
                    password_stdin,
                    no_check,
                    &account,
                )
                .await
            }
            Command::Roster { account } => run::roster(&config::settings(cfg, &account)?).await,
            Command::Add { jid, name, account } => {
                run::add(&config::settings(cfg, &account)?, &jid, name.as_deref()).await
            }
            Command::Send { jid, text, account } => {
                run::send(&config::settings(cfg, &account)?, &jid, &text).await
            }
            Command::Chat { jid, account } => {
                run::chat(&config::settings(cfg, &account)?, &jid).await
            }
            Command::Whois { uri, account } => {
                run::whois(&config::settings(cfg, &account)?, &uri).await
            }
            Command::Call {
                target,
                account,
                source,
                record,
                duration,
                ring_timeout,
                anonymous,
                on_the_phone,
            } => {
                let s = config::settings(cfg, &account)?;
                run::call(
                    &s,
                    &target,
                    &source,
                    record,
                    duration,
                    ring_timeout,
                    anonymous,
                    on_the_phone,
                )
                .await
            }
            Command::Listen {
                account,
                auto_answer,
                record_dir,
                source,
                expires,
                on_the_phone,
                presence_after_sip,
                approve_all,
            } => {
                let s = config::settings(cfg, &account)?;
                run::listen(
                    &s,
                    auto_answer,
                    record_dir,
                    &source,
                    expires,
                    on_the_phone,
                    presence_after_sip,
                    approve_all,
                )
                .await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => run::fail(&e),
    }
}
