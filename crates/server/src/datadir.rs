//! The data directory: `cusax.db` (SQLite store), `tls/` (certificates), `cusaxd.toml`.
//!
//! A fresh directory is laid out on first start so that `cusaxd serve` needs no configuration.

use std::path::{Path, PathBuf};

/// File name of the SQLite store inside the data directory.
pub const DB_FILE: &str = "cusax.db";
/// File name of the configuration inside the data directory.
pub const CONFIG_FILE: &str = "cusaxd.toml";

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

    /// The configuration file written on first start.
    pub fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// The TLS directory.
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
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
