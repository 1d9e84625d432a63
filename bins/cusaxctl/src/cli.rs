//! Command-line grammar of `cusaxctl`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    version,
    about = "Administer cusax accounts, domains and aliases; print DNS records; show and end \
             the live XMPP sessions and SIP bindings of a running cusaxd"
)]
pub struct Cli {
    /// The server's data directory.
    #[arg(
        long,
        global = true,
        env = "CUSAXD_DATA_DIR",
        default_value = "cusax-data"
    )]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Accounts (one account = one SIP AOR + one XMPP JID).
    #[command(subcommand)]
    User(UserCmd),
    /// Served domains.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Extra SIP URIs and phone numbers that route to an account.
    #[command(subcommand)]
    Alias(AliasCmd),
    /// Print the DNS zone lines that publish a served domain (SIP, XMPP, provisioning).
    Dns {
        /// A domain the store serves.
        domain: String,
        /// Host name the records point at (needs its own A/AAAA records); default: the domain.
        #[arg(long)]
        host: Option<String>,
        /// Time to live of every record, in seconds (RFC 2181 §8: at most 2^31 - 1).
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u32).range(0..=2_147_483_647))]
        ttl: u32,
    },
    /// Live XMPP sessions of the running server (admin API).
    #[command(subcommand)]
    Sessions(SessionsCmd),
    /// Live SIP bindings (registered devices) of the running server (admin API).
    #[command(subcommand)]
    Bindings(BindingsCmd),
}

/// How to reach the running server's admin API, and how to print its answer.
#[derive(Args, Clone, Default)]
pub struct ApiArgs {
    /// The admin API's address, `https://HOST:PORT`; default: `server.bind` and `http.port`
    /// of the data directory's `cusaxd.toml` (loopback when bound to every address).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Print the API's JSON answer instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum SessionsCmd {
    /// List XMPP sessions: all, or those of one bare JID (or one full JID).
    List {
        jid: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// End the sessions of a bare JID (every resource) or of one full JID.
    Kick {
        jid: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Subcommand)]
pub enum BindingsCmd {
    /// List SIP bindings: all, or those of one address of record.
    List {
        /// `sip:user@domain` (or `user@domain`).
        aor: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove the bindings of an address of record, or only the one with `--contact`.
    Remove {
        /// `sip:user@domain` (or `user@domain`).
        aor: String,
        /// Remove only the binding of this contact URI.
        #[arg(long, value_name = "URI")]
        contact: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Where a new password comes from; the default is an interactive prompt.
#[derive(Args, Clone, Default)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "password_file")]
    pub password_stdin: bool,
    /// Read the password from the first line of a file.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Create an account: user@domain.
    Add {
        user: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Delete an account and everything attached to it.
    Del { user: String },
    /// Set a new password (takes effect on SIP and XMPP at once).
    Passwd {
        user: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// List accounts, optionally of one domain.
    List { domain: Option<String> },
    /// Show one account: addresses, aliases, lock state, stored verifiers.
    Show { user: String },
    /// Refuse logins on both protocols.
    Lock { user: String },
    /// Allow logins again.
    Unlock { user: String },
    /// Create accounts in bulk from CSV lines `user@domain,password[,alias…]`.
    Import { file: PathBuf },
    /// Live view of one account in the running server: lock state, XMPP sessions, SIP
    /// bindings and calls.
    Status {
        user: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Subcommand)]
pub enum DomainCmd {
    /// Serve a new domain.
    Add { domain: String },
    /// List served domains.
    List,
    /// Stop serving an empty domain.
    Del { domain: String },
}

#[derive(Subcommand)]
pub enum AliasCmd {
    /// Give an account an alias (sip:URI, tel:URI or a number).
    Add { user: String, alias: String },
    /// Remove an alias.
    Del { alias: String },
    /// List an account's aliases.
    List { user: String },
}
