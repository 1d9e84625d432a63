//! The command line: commands, account flags and audio source flags (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The cusax client: chat and presence over XMPP, calls over SIP (RFC 7081, CUSAX).
/// Every command prints one JSON object per line on stdout.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Config file (TOML, mode 0600), as `cusax login` writes it; default
    /// `$XDG_CONFIG_HOME/cusax/config.toml` (or `~/.config/cusax/config.toml`).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Account options shared by the commands; they override the config file.
#[derive(Debug, Args, Clone, Default)]
pub struct AccountArgs {
    /// The SIP server (registrar and outbound proxy), HOST:PORT.
    #[arg(long)]
    pub server: Option<String>,
    /// The account, USER@DOMAIN (the SIP AOR and the JID alike).
    #[arg(long)]
    pub user: Option<String>,
    /// A file holding the password (first line; mode 0600). Never pass it on the command line.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Use TCP instead of UDP for SIP (same as `--transport tcp`).
    #[arg(long)]
    pub tcp: bool,
    /// SIP transport: udp, tcp or tls.
    #[arg(long)]
    pub transport: Option<String>,
    /// The XMPP server, HOST:PORT; chat, presence and contacts need it.
    #[arg(long)]
    pub xmpp_server: Option<String>,
    /// Trust the certificates in this PEM file (besides the system's), for SIP-TLS, XMPP
    /// and provisioning.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
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
    /// Set the account up — from the service's provisioning URL (one login for SIP and XMPP),
    /// from DNS (SRV/NAPTR of the domain), or from the flags — check that both logins work, and
    /// save it to the config file (mode 0600).
    Login {
        /// The provisioning URL (`https://HOST:PORT/provisioning`).
        #[arg(long, conflicts_with = "dns")]
        provision: Option<String>,
        /// Find the servers in DNS (RFC 3263 NAPTR/SRV, RFC 6120 SRV).
        #[arg(long)]
        dns: bool,
        /// With --dns: ask this name server (IP:PORT, UDP and TCP) instead of the system's
        /// (`/etc/resolv.conf`), e.g. the zone's own server before it is delegated.
        #[arg(long, requires = "dns", value_name = "IP:PORT")]
        dns_server: Option<std::net::SocketAddr>,
        /// Read the password from stdin (first line) instead of --password-file.
        #[arg(long)]
        password_stdin: bool,
        /// Save without checking the logins.
        #[arg(long)]
        no_check: bool,
        #[command(flatten)]
        account: AccountArgs,
    },
    /// Print the contact list, one contact per line, with the SIP address from each vCard.
    Roster {
        #[command(flatten)]
        account: AccountArgs,
    },
    /// Add a contact and ask to see their presence.
    Add {
        /// The contact's JID.
        jid: String,
        /// A name for them.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        account: AccountArgs,
    },
    /// Send one chat message.
    Send {
        /// To whom (JID).
        jid: String,
        /// The text.
        text: String,
        #[command(flatten)]
        account: AccountArgs,
    },
    /// Chat interactively: lines typed on stdin are sent, messages received are printed.
    Chat {
        /// With whom (JID).
        jid: String,
        #[command(flatten)]
        account: AccountArgs,
    },
    /// Call a contact by JID (the SIP address comes from their vCard), a SIP URI or a number;
    /// print the call's events, hang up after --duration.
    Call {
        /// Whom to call: a JID, sip:user@domain, tel:+number or digits.
        target: String,
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
        /// Hide who calls (Privacy: id, no Call-Info).
        #[arg(long)]
        anonymous: bool,
        /// Show "on the phone" to contacts while the call is up.
        #[arg(long)]
        on_the_phone: bool,
    },
    /// Be online (SIP registered, XMPP available) and print every event — presence, messages,
    /// incoming calls with the contact they are from, call states — until SIGINT/SIGTERM.
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
        /// Show "on the phone" to contacts while a call is up.
        #[arg(long)]
        on_the_phone: bool,
        /// Appear online on XMPP only once SIP is registered.
        #[arg(long)]
        presence_after_sip: bool,
        /// Approve every request to see our presence.
        #[arg(long)]
        approve_all: bool,
    },
    /// Which contact a SIP address or number belongs to (exact match against vCards).
    Whois {
        /// sip:…, tel:… or a number.
        uri: String,
        #[command(flatten)]
        account: AccountArgs,
    },
}
