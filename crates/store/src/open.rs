//! RFC 7081 §3.2 ("a common authentication back-end"): choosing the backend by URL, and the
//! one trait object a server holds.
//!
//! [`open`] reads a store URL and returns an `Arc<dyn ServerStore>`; nothing above this
//! crate names a backend type. A new backend (PostgreSQL) is a folder beside `sqlite/` with
//! the same file names, one arm in [`StoreUrl::parse`] and [`open`], and one URL in
//! [`conformance_urls`], which the conformance battery runs.

use crate::{AccountStore, AliasStore, LocationStore, Store, StoreError, XmppDataStore};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the SIP registrar needs to know an account: credentials, lock state, aliases.
pub trait AccountSource: AccountStore + AliasStore {}
impl<T: AccountStore + AliasStore + ?Sized> AccountSource for T {}

/// Everything the XMPP service needs from the store.
pub trait XmppStore: Store + XmppDataStore {}
impl<T: Store + XmppDataStore + ?Sized> XmppStore for T {}

/// Everything `cusaxd` needs from its store, as one trait object.
///
/// The narrow traits are supertraits, so an `Arc<dyn ServerStore>` converts (trait
/// upcasting) into the `Arc<dyn AccountSource>`, `Arc<dyn XmppStore>`, `Arc<dyn
/// LocationStore>` … each protocol layer asks for, without a wrapper or a second vtable.
#[async_trait]
pub trait ServerStore:
    AccountSource + XmppStore + LocationStore + std::fmt::Debug + Send + Sync
{
    /// Releases the backend's resources (connections, WAL checkpoint); called at shutdown.
    async fn close(&self);
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://PATH`: an SQLite database file, created and migrated when missing.
    SqliteFile(PathBuf),
    /// `sqlite::memory:`: a private in-memory SQLite database (tests).
    SqliteMemory,
    /// `memory:`: the in-memory backend; nothing survives the process.
    Memory,
}

/// Why a string is not a store URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store URL {url:?}: {why} (expected sqlite://PATH, sqlite::memory: or memory:)")]
pub struct UrlError {
    /// The URL given.
    pub url: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl StoreUrl {
    /// Reads `sqlite://PATH`, `sqlite::memory:` or `memory:`.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let err = |why| UrlError {
            url: url.to_owned(),
            why,
        };
        if url == "memory:" {
            return Ok(Self::Memory);
        }
        if url == "sqlite::memory:" {
            return Ok(Self::SqliteMemory);
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(err("no file path"));
            }
            return Ok(Self::SqliteFile(PathBuf::from(path)));
        }
        Err(err("unknown scheme"))
    }

    /// The URL of an SQLite file.
    pub fn sqlite_file(path: &Path) -> Self {
        Self::SqliteFile(path.to_owned())
    }

    /// The same URL with a relative file path taken relative to `base` (the data directory).
    pub fn relative_to(self, base: &Path) -> Self {
        match self {
            Self::SqliteFile(p) if p.is_relative() => Self::SqliteFile(base.join(p)),
            other => other,
        }
    }

    /// The database file, for backends that keep one (to restrict its permissions).
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::SqliteFile(p) => Some(p),
            Self::SqliteMemory | Self::Memory => None,
        }
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SqliteFile(p) => write!(f, "sqlite://{}", p.display()),
            Self::SqliteMemory => f.write_str("sqlite::memory:"),
            Self::Memory => f.write_str("memory:"),
        }
    }
}

/// Opens (creating and migrating where the backend has a schema) the store at `url`
/// (`sqlite://PATH`, `sqlite::memory:`, `memory:`).
pub async fn open(url: &str) -> Result<Arc<dyn ServerStore>, StoreError> {
    open_url(&StoreUrl::parse(url)?).await
}

/// [`open`] with a parsed URL.
pub async fn open_url(url: &StoreUrl) -> Result<Arc<dyn ServerStore>, StoreError> {
    Ok(match url {
        StoreUrl::SqliteFile(path) => Arc::new(crate::sqlite::SqliteStore::open(path).await?),
        StoreUrl::SqliteMemory => Arc::new(crate::sqlite::SqliteStore::in_memory().await?),
        StoreUrl::Memory => Arc::new(crate::memory::MemoryStore::new()),
    })
}

/// One URL per backend [`open`] knows, for the conformance battery: file-backed ones get a
/// file under `dir`. Every [`StoreUrl`] variant must appear here (the battery checks).
pub fn conformance_urls(dir: &Path) -> Vec<StoreUrl> {
    vec![
        StoreUrl::Memory,
        StoreUrl::SqliteMemory,
        StoreUrl::SqliteFile(dir.join("conformance.db")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_print_back() {
        for (text, url) in [
            ("memory:", StoreUrl::Memory),
            ("sqlite::memory:", StoreUrl::SqliteMemory),
            (
                "sqlite:///var/lib/cusax/cusax.db",
                StoreUrl::SqliteFile("/var/lib/cusax/cusax.db".into()),
            ),
            ("sqlite://cusax.db", StoreUrl::SqliteFile("cusax.db".into())),
        ] {
            assert_eq!(StoreUrl::parse(text).as_ref(), Ok(&url), "{text}");
            assert_eq!(url.to_string(), text);
        }
    }

    #[test]
    fn bad_urls_say_why() {
        for (text, why) in [
            ("postgres://db/cusax", "unknown scheme"),
            ("sqlite://", "no file path"),
            ("", "unknown scheme"),
            ("/var/lib/cusax.db", "unknown scheme"),
        ] {
            let e = StoreUrl::parse(text).expect_err(text);
            assert_eq!(e.why, why, "{text}");
            assert!(e.to_string().contains("sqlite://PATH"), "{e}");
        }
    }

    #[test]
    fn relative_files_are_under_the_base_directory() {
        let base = Path::new("/data");
        let rel = StoreUrl::parse("sqlite://x/cusax.db").expect("valid");
        assert_eq!(
            rel.relative_to(base).file(),
            Some(Path::new("/data/x/cusax.db"))
        );
        let abs = StoreUrl::parse("sqlite:///elsewhere.db").expect("valid");
        assert_eq!(
            abs.relative_to(base).file(),
            Some(Path::new("/elsewhere.db"))
        );
        assert_eq!(StoreUrl::Memory.relative_to(base).file(), None);
    }
}
