//! Account settings: flags over the config file; the password only from a file that nobody
//! else can read (the config file or `--password-file`), never from the command line.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use cusax_client::{Account, Secret, TransportKind};
use serde::Deserialize;

use crate::cli::AccountArgs;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    account: AccountFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountFile {
    user: Option<String>,
    server: Option<String>,
    password: Option<String>,
    /// `udp` (default) or `tcp`.
    transport: Option<String>,
    display_name: Option<String>,
}

/// Refuses a secret file that group or others may read (RFC-independent hygiene, issue 7).
fn check_private(path: &Path) -> Result<()> {
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

fn default_config() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let p = base.join("cusax").join("config.toml");
    p.exists().then_some(p)
}

fn load(path: Option<&Path>) -> Result<File> {
    let Some(path) = path.map(Path::to_owned).or_else(default_config) else {
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

fn resolve(server: &str) -> Result<SocketAddr> {
    server
        .to_socket_addrs()
        .with_context(|| format!("server {server:?} (expected HOST:PORT)"))?
        .next()
        .ok_or_else(|| anyhow!("server {server:?} has no address"))
}

/// The account from flags and config file.
pub fn account(config: Option<&Path>, args: &AccountArgs) -> Result<Account> {
    let file = load(config)?.account;
    let user =
        args.user.clone().or(file.user).ok_or_else(|| {
            anyhow!("no account: pass --user USER@DOMAIN or set it in the config")
        })?;
    let (name, domain) = user
        .trim_start_matches("sip:")
        .split_once('@')
        .filter(|(u, d)| !u.is_empty() && !d.is_empty())
        .ok_or_else(|| anyhow!("--user must be USER@DOMAIN, not {user:?}"))?;
    let server = args
        .server
        .clone()
        .or(file.server)
        .ok_or_else(|| anyhow!("no server: pass --server HOST:PORT or set it in the config"))?;
    let password = match &args.password_file {
        Some(p) => {
            check_private(p)?;
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading password file {}", p.display()))?;
            text.lines().next().unwrap_or_default().to_owned()
        }
        None => file.password.ok_or_else(|| {
            anyhow!(
                "no password: use --password-file FILE or `password` in the config file (mode 0600)"
            )
        })?,
    };
    let transport = match (args.tcp, file.transport.as_deref()) {
        (true, _) | (false, Some("tcp" | "TCP")) => TransportKind::Tcp,
        (false, None | Some("udp" | "UDP")) => TransportKind::Udp,
        (false, Some(other)) => bail!("transport {other:?}: expected udp or tcp"),
    };
    Ok(Account {
        user: name.to_owned(),
        domain: domain.to_owned(),
        display_name: file.display_name,
        secret: Secret::new(name, password),
        server: resolve(&server)?,
        transport,
        // RFC 7081 §6: the JID of the same account (the AOR↔JID rule of cusaxd).
        impp: Some(format!("{name}@{domain}")),
    })
}
