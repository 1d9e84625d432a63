//! Account settings: flags over the config file; the password only from a file that nobody
//! else can read (the config file or `--password-file`), never from the command line.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use cusax_client::tls::TrustConfig;
use cusax_client::xmpp::XmppConfig;
use cusax_client::{Account, Secret, TransportKind, UaConfig};
use serde::{Deserialize, Serialize};

use crate::cli::AccountArgs;

/// The config file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub account: AccountFile,
    #[serde(default)]
    pub options: Options,
}

/// `[account]`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountFile {
    /// `user@domain`: the SIP AOR and the JID.
    pub user: Option<String>,
    /// SIP server, `host:port`.
    pub server: Option<String>,
    /// The service password.
    pub password: Option<String>,
    /// `udp` (default), `tcp` or `tls`.
    pub transport: Option<String>,
    /// XMPP server, `host:port`.
    pub xmpp_server: Option<String>,
    /// Extra trusted certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// Display name on calls.
    pub display_name: Option<String>,
    /// Where the account came from (a provisioning URL), for the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioned_from: Option<String>,
}

/// `[options]`: CUSAX behaviour.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Show "on the phone" during calls (CL-32).
    #[serde(default)]
    pub on_the_phone: bool,
    /// XMPP presence only after SIP registration (CL-10).
    #[serde(default)]
    pub presence_after_sip: bool,
    /// Send the legacy `Contact: <xmpp:…>` on calls (CL-24; off).
    #[serde(default)]
    pub legacy_xmpp_contact: bool,
}

/// Refuses a secret file that group or others may read (RFC-independent hygiene, issue 7).
pub fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("{}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} holds a password but has mode {:04o}; run: chmod 600 {}",
                path.display(),
                mode & 0o7777,
                path.display()
            );
        }
    }
    Ok(())
}

/// The config file's path: `--config`, else `$XDG_CONFIG_HOME/cusax/config.toml`.
pub fn path(config: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = config {
        return Some(p.to_owned());
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("cusax").join("config.toml"))
}

/// Reads the config file (none is an empty one).
pub fn load(config: Option<&Path>) -> Result<File> {
    let Some(path) = path(config).filter(|p| config.is_some() || p.exists()) else {
        return Ok(File::default());
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading config {}", path.display()))?;
    let f: File = toml::from_str(&text).with_context(|| format!("config {}", path.display()))?;
    if f.account.password.is_some() {
        check_private(&path)?;
    }
    Ok(f)
}

/// Writes the config file with mode 0600 (created so, never readable by others in between).
pub fn save(config: Option<&Path>, file: &File) -> Result<PathBuf> {
    let path = path(config).ok_or_else(|| anyhow!("no config path: pass --config FILE"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = toml::to_string(file).context("serialising the config")?;
    let tmp = path.with_extension("toml.new");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(b"# cusax client account (written by `cusax login`; keep it private)\n")?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Reads the first line of a private password file.
pub fn read_password_file(p: &Path) -> Result<String> {
    check_private(p)?;
    let text = std::fs::read_to_string(p)
        .with_context(|| format!("reading password file {}", p.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

pub fn resolve(server: &str) -> Result<SocketAddr> {
    server
        .to_socket_addrs()
        .with_context(|| format!("server {server:?} (expected HOST:PORT)"))?
        .next()
        .ok_or_else(|| anyhow!("server {server:?} has no address"))
}

/// Everything the commands need, from flags over the file.
#[derive(Debug)]
pub struct Settings {
    /// `user@domain`.
    pub user: String,
    pub domain: String,
    pub password: String,
    pub sip_server: Option<String>,
    pub transport: TransportKind,
    pub xmpp_server: Option<String>,
    pub trust: TrustConfig,
    pub display_name: Option<String>,
    pub options: Options,
}

pub fn transport(t: Option<&str>) -> Result<TransportKind> {
    Ok(match t.map(str::to_ascii_lowercase).as_deref() {
        None | Some("udp") => TransportKind::Udp,
        Some("tcp") => TransportKind::Tcp,
        Some("tls") => TransportKind::Tls,
        Some(other) => bail!("transport {other:?}: expected udp, tcp or tls"),
    })
}

/// Flags over the config file.
pub fn settings(config: Option<&Path>, args: &AccountArgs) -> Result<Settings> {
    settings_of(&load(config)?, args)
}

/// Flags over a config already read.
pub fn settings_of(file: &File, args: &AccountArgs) -> Result<Settings> {
    let a = &file.account;
    let user = args
        .user
        .clone()
        .or(a.user.clone())
        .ok_or_else(|| anyhow!("no account: run `cusax login`, or pass --user USER@DOMAIN"))?;
    let user = user.trim_start_matches("sip:").to_owned();
    let (name, domain) = user
        .split_once('@')
        .filter(|(u, d)| !u.is_empty() && !d.is_empty())
        .ok_or_else(|| anyhow!("--user must be USER@DOMAIN, not {user:?}"))?;
    let password = match &args.password_file {
        Some(p) => read_password_file(p)?,
        None => a.password.clone().ok_or_else(|| {
            anyhow!(
                "no password: use --password-file FILE or `password` in the config file (mode 0600)"
            )
        })?,
    };
    let transport = if args.tcp {
        TransportKind::Tcp
    } else {
        transport(args.transport.as_deref().or(a.transport.as_deref()))?
    };
    Ok(Settings {
        user: format!("{name}@{domain}"),
        domain: domain.to_owned(),
        password,
        sip_server: args.server.clone().or(a.server.clone()),
        transport,
        xmpp_server: args.xmpp_server.clone().or(a.xmpp_server.clone()),
        trust: TrustConfig {
            ca_file: args.ca_file.clone().or(a.ca_file.clone()),
            no_system_roots: false,
        },
        display_name: a.display_name.clone(),
        options: file.options.clone(),
    })
}

impl Settings {
    fn local(&self) -> &str {
        self.user.split_once('@').map_or("", |(u, _)| u)
    }

    /// The SIP user agent configuration.
    pub fn ua(&self) -> Result<UaConfig> {
        let server = self.sip_server.as_deref().ok_or_else(|| {
            anyhow!("no SIP server: run `cusax login`, or pass --server HOST:PORT")
        })?;
        let account = Account {
            user: self.local().to_owned(),
            domain: self.domain.clone(),
            display_name: self.display_name.clone(),
            secret: Secret::new(self.local(), self.password.clone()),
            server: resolve(server)?,
            transport: self.transport,
            // RFC 7081 §6: the JID of the same account (the AOR↔JID rule of cusaxd).
            impp: Some(self.user.clone()),
        };
        let mut cfg = UaConfig::new(account);
        cfg.tls = self.trust.clone();
        cfg.legacy_xmpp_contact = self.options.legacy_xmpp_contact;
        Ok(cfg)
    }

    /// The XMPP configuration, if an XMPP server is known.
    pub fn xmpp(&self) -> Result<Option<XmppConfig>> {
        let Some(server) = &self.xmpp_server else {
            return Ok(None);
        };
        let mut c = XmppConfig::new(&self.user, &self.password);
        c.server = Some(resolve(server)?);
        c.trust = self.trust.clone();
        Ok(Some(c))
    }

    /// The XMPP configuration, required.
    pub fn need_xmpp(&self) -> Result<XmppConfig> {
        self.xmpp()?.ok_or_else(|| {
            anyhow!("no XMPP server: run `cusax login`, or pass --xmpp-server HOST:PORT")
        })
    }
}
