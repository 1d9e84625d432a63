//! The command line: commands, account flags and audio source flags (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The cusax client (preview: SIP calls; chat comes later).
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Config file (TOML, mode 0600) with `[account]` user, server, password, transport;
    /// default `$XDG_CONFIG_HOME/cusax/config.toml` when it exists.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Account options shared by the commands; they override the config file.
#[derive(Debug, Args)]
pub struct AccountArgs {
    /// The SIP server (registrar and outbound proxy), HOST:PORT.
    #[arg(long)]
    pub server: Option<String>,
    /// The account, USER@DOMAIN.
    #[arg(long)]
    pub user: Option<String>,
    /// A file holding the password (first line; mode 0600). Never pass it on the command line.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Use TCP instead of UDP.
    #[arg(long)]
    pub tcp: bool,
}

/// What calls send.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Play this WAV file (any rate, first channel; sent as 8 kHz G.711).
    #[arg(long, conflicts_with = "tone")]
    pub play: Option<PathBuf>,
    /// Send a sine tone of this frequency in Hz.
    #[arg(long)]
    pub tone: Option<f64>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Call a SIP URI, print the call's events, hang up after --duration.
    Call {
        /// Whom to call: sip:user@domain (or user@domain).
        uri: String,
        #[command(flatten)]
        account: AccountArgs,
        #[command(flatten)]
        source: SourceArgs,
        /// Record what the other side sends to this WAV file.
        #[arg(long)]
        record: Option<PathBuf>,
        /// Seconds to stay in the call once answered (default: until the other side hangs up).
        #[arg(long)]
        duration: Option<f64>,
        /// Seconds to wait for an answer before cancelling.
        #[arg(long, default_value_t = 60.0)]
        ring_timeout: f64,
    },
    /// Register and wait for calls, printing events until SIGINT/SIGTERM.
    Listen {
        #[command(flatten)]
        account: AccountArgs,
        /// Answer every call at once (otherwise calls are refused with 486 Busy Here).
        #[arg(long)]
        auto_answer: bool,
        /// Record each answered call to DIR/call-N.wav.
        #[arg(long)]
        record_dir: Option<PathBuf>,
        #[command(flatten)]
        source: SourceArgs,
        /// Registration lifetime asked for, in seconds.
        #[arg(long, default_value_t = 300)]
        expires: u32,
    },
}
