//! The `user`, `domain`, `alias` and `dns` verbs; `sessions`, `bindings` and `user status`
//! are in `live`.

use crate::cli::{AliasCmd, Cmd, DomainCmd, UserCmd};
use crate::{import, secret};
use anyhow::{Context, bail};
use cusax_account::{AccountId, Alias, Credentials, Domain, Password};
use cusax_server::config::Config;
use cusax_server::datadir::DataDir;
use cusax_store::ServerStore;
use cusax_store::StoreError;
use std::sync::Arc;

/// What every command needs.
pub struct Ctx {
    pub store: Arc<dyn ServerStore>,
    pub iterations: u32,
    /// The server's configuration (`cusaxd.toml` in the data directory, or the defaults).
    pub config: Config,
    /// The data directory (certificate and admin token of the running server).
    pub dir: DataDir,
}

impl Ctx {
    pub fn derive(&self, id: &AccountId, pw: &Password) -> Credentials {
        Credentials::derive(id, pw, &[], self.iterations)
    }
}

fn account(s: &str) -> anyhow::Result<AccountId> {
    AccountId::parse(s).context("invalid address")
}

pub async fn dispatch(ctx: &Ctx, cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::User(u) => user(ctx, u).await,
        Cmd::Domain(d) => domain(ctx, d).await,
        Cmd::Alias(a) => alias(ctx, a).await,
        Cmd::Dns { domain, host, ttl } => dns(ctx, &domain, host.as_deref(), ttl).await,
        Cmd::Sessions(c) => crate::live::sessions(ctx, c).await,
        Cmd::Bindings(c) => crate::live::bindings(ctx, c).await,
    }
}

async fn dns(ctx: &Ctx, domain: &str, host: Option<&str>, ttl: u32) -> anyhow::Result<()> {
    let d = Domain::parse(domain).context("invalid domain")?;
    let host = match host {
        Some(h) => Domain::parse(h).context("invalid host name")?,
        None => d.clone(),
    };
    if !ctx.store.has_domain(&d).await? {
        return Err(StoreError::UnknownDomain(d).into());
    }
    let ports = crate::dns::Ports::from_config(&ctx.config)?;
    print!("{}", crate::dns::zone(&d, &host, ttl, ports));
    Ok(())
}

async fn user(ctx: &Ctx, cmd: UserCmd) -> anyhow::Result<()> {
    let s = &ctx.store;
    match cmd {
        UserCmd::Add { user, password } => {
            let id = account(&user)?;
            if !s.has_domain(id.domain()).await? {
                return Err(StoreError::UnknownDomain(id.domain().clone()).into());
            }
            if s.account(&id).await?.is_some() {
                return Err(StoreError::AccountExists(id).into());
            }
            let pw = secret::read(&password)?;
            s.create_account(&id, &ctx.derive(&id, &pw)).await?;
            println!("created {id} (SIP {}, XMPP {})", id.aor(), id.bare_jid());
        }
        UserCmd::Del { user } => {
            let id = account(&user)?;
            s.delete_account(&id).await?;
            println!("deleted {id}");
        }
        UserCmd::Passwd { user, password } => {
            let id = account(&user)?;
            if s.account(&id).await?.is_none() {
                return Err(StoreError::UnknownAccount(id).into());
            }
            let pw = secret::read(&password)?;
            s.set_credentials(&id, &ctx.derive(&id, &pw)).await?;
            println!("password changed for {id}");
        }
        UserCmd::List { domain } => {
            let d = domain
                .map(|d| Domain::parse(&d))
                .transpose()
                .context("invalid domain")?;
            if let Some(d) = &d
                && !s.has_domain(d).await?
            {
                return Err(StoreError::UnknownDomain(d.clone()).into());
            }
            for (id, locked) in s.list_accounts(d.as_ref()).await? {
                println!("{id}{}", if locked { "\tlocked" } else { "" });
            }
        }
        UserCmd::Show { user } => {
            let id = account(&user)?;
            let Some(rec) = s.account(&id).await? else {
                return Err(StoreError::UnknownAccount(id).into());
            };
            println!("account:  {id}");
            println!("sip aor:  {}", id.aor());
            println!("xmpp jid: {}", id.bare_jid());
            println!("locked:   {}", if rec.locked { "yes" } else { "no" });
            println!("created:  {} (unix time)", rec.created_at);
            for a in s.aliases(&id).await? {
                println!("alias:    {a}");
            }
            for v in &rec.credentials.scram {
                println!(
                    "scram:    SCRAM-{} ({} iterations)",
                    v.hash.name(),
                    v.iterations
                );
            }
            for h in &rec.credentials.ha1 {
                println!("digest:   {} realm \"{}\"", h.algorithm.name(), h.realm);
            }
        }
        UserCmd::Lock { user } => {
            let id = account(&user)?;
            s.set_locked(&id, true).await?;
            println!("locked {id}");
        }
        UserCmd::Unlock { user } => {
            let id = account(&user)?;
            s.set_locked(&id, false).await?;
            println!("unlocked {id}");
        }
        UserCmd::Import { file } => import::run(ctx, &file).await?,
        UserCmd::Status { user, api } => crate::live::user_status(ctx, &user, &api).await?,
    }
    Ok(())
}

async fn domain(ctx: &Ctx, cmd: DomainCmd) -> anyhow::Result<()> {
    let s = &ctx.store;
    match cmd {
        DomainCmd::Add { domain } => {
            let d = Domain::parse(&domain).context("invalid domain")?;
            s.add_domain(&d).await?;
            println!("added domain {d}");
        }
        DomainCmd::List => {
            for d in s.list_domains().await? {
                println!("{d}");
            }
        }
        DomainCmd::Del { domain } => {
            let d = Domain::parse(&domain).context("invalid domain")?;
            s.delete_domain(&d).await?;
            println!("deleted domain {d}");
        }
    }
    Ok(())
}

async fn alias(ctx: &Ctx, cmd: AliasCmd) -> anyhow::Result<()> {
    let s = &ctx.store;
    match cmd {
        AliasCmd::Add { user, alias } => {
            let id = account(&user)?;
            let a = Alias::parse(&alias).context("invalid alias")?;
            if let Alias::Sip(aor) = &a
                && let Some(owner) = aor.account_id()
                && owner != id
                && s.account(&owner).await?.is_some()
            {
                bail!("{aor} is the address of account {owner}");
            }
            s.add_alias(&id, &a).await?;
            println!("{id}: added alias {a}");
        }
        AliasCmd::Del { alias } => {
            let a = Alias::parse(&alias).context("invalid alias")?;
            s.remove_alias(&a).await?;
            println!("removed alias {a}");
        }
        AliasCmd::List { user } => {
            let id = account(&user)?;
            if s.account(&id).await?.is_none() {
                return Err(StoreError::UnknownAccount(id).into());
            }
            for a in s.aliases(&id).await? {
                println!("{a}");
            }
        }
    }
    Ok(())
}
