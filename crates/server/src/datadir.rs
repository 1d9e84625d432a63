//! The data directory: `cusax.db` (SQLite store), `tls/` (certificates), `cusaxd.toml`.
//!
//! A fresh directory is laid out on first start so that `cusaxd serve` needs no configuration.

use cusax_store::{StoreUrl, UrlError};
use std::path::{Path, PathBuf};

/// File name of the SQLite store inside the data directory.
pub const DB_FILE: &str = "cusax.db";
pub use crate::config::CONFIG_FILE;
/// File name of the admin API bearer token inside the data directory (mode 0600).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Paths inside one data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Names a data directory (nothing is created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite database file.
    pub fn db_path(&self) -> PathBuf {
        self.root.join(DB_FILE)
    }

    /// The store of a configuration (`store.url`), with a relative file path under this
    /// directory; by default the SQLite file every data directory has had ([`DB_FILE`]).
    pub fn store_url(&self, configured: Option<&str>) -> Result<StoreUrl, UrlError> {
        let url = match configured {
            Some(u) => StoreUrl::parse(u)?,
            None => StoreUrl::sqlite_file(&self.db_path()),
        };
        Ok(url.relative_to(&self.root))
    }

    /// The configuration file written on first start.
    pub fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// The TLS directory.
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// The admin API token file.
    pub fn admin_token_path(&self) -> PathBuf {
        self.root.join(ADMIN_TOKEN_FILE)
    }

    /// Reads the admin token, creating a random one (256 bits, hex) on first use.
    pub fn admin_token(&self) -> std::io::Result<String> {
        let path = self.admin_token_path();
        if let Ok(t) = std::fs::read_to_string(&path) {
            let t = t.trim();
            if t.len() >= 32 {
                return Ok(t.to_owned());
            }
        }
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(&path, format!("{token}\n"))?;
        restrict(&path, 0o600)?;
        Ok(token)
    }

    /// Resolves a configured path: absolute stays, relative is under the data directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.root.join(p)
        }
    }

    /// Creates the directory (mode 0700) and a commented `cusaxd.toml` if missing.
    /// Returns true when the configuration file was written now.
    pub fn ensure(&self, domain: &str) -> std::io::Result<bool> {
        std::fs::create_dir_all(&self.root)?;
        restrict(&self.root, 0o700)?;
        std::fs::create_dir_all(self.tls_dir())?;
        let cfg = self.config_path();
        if cfg.exists() {
            return Ok(false);
        }
        std::fs::write(&cfg, crate::config::commented_default(domain))?;
        Ok(true)
    }
}

/// Sets Unix permissions (no-op elsewhere).
pub fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}
