//! `cusaxctl`: administration of cusax accounts, domains and aliases, directly on the store,
//! the DNS records that publish a domain, and the live state of a running server.
//!
//! The store verbs work whether or not `cusaxd` runs; a running server sees each change within
//! a fraction of a second through the store's change log. `sessions`, `bindings` and
//! `user status` ask the running server through its admin API.

mod api;
mod cli;
mod commands;
mod dns;
mod import;
mod live;
mod secret;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("cusaxctl: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let dir = cusax_server::datadir::DataDir::new(&cli.data_dir);
    if !dir.root().is_dir() {
        anyhow::bail!(
            "data directory {} does not exist (start cusaxd once, or pass --data-dir)",
            dir.root().display()
        );
    }
    let config = cusax_server::config::load_for(None, dir.root())?;
    // The server's store: `store.url` of the configuration, by default `cusax.db` here.
    let url = dir.store_url(config.store.url.as_deref())?;
    if url.file().is_none() {
        anyhow::bail!("store {url} lives inside one process; cusaxctl cannot reach it");
    }
    let store = cusax_store::open_url(&url).await?;
    let ctx = commands::Ctx {
        store,
        iterations: config.accounts.scram_iterations,
        config,
        dir,
    };
    let result = commands::dispatch(&ctx, cli.cmd).await;
    ctx.store.close().await;
    result
}
