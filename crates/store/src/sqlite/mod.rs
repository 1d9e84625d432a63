//! The embedded SQLite backend (the zero-configuration default), on sqlx with WAL journaling.
//!
//! Several processes may open the same file: `cusaxd` serves from it while `cusaxctl` edits it,
//! and the change log tells the server what changed.

mod accounts;
mod location;
mod xmpp_data;

use crate::{Change, ChangeKind, StoreError, unix_now};
use async_trait::async_trait;
use cusax_account::{AccountId, Alias, Domain};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};
use std::path::Path;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A store in one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and runs pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        Self::connect(opts, 4, true).await
    }

    /// Opens an existing database only; a missing file is an error (for admin tools).
    pub async fn open_existing(path: &Path) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        Self::connect(opts, 2, true).await
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        Self::connect(opts, 1, false).await
    }

    async fn connect(opts: SqliteConnectOptions, max: u32, file: bool) -> Result<Self, StoreError> {
        // Switching a new file to WAL needs an exclusive lock, for which SQLite does not wait on
        // its busy handler: do it, and the migrations, over one connection before the pool
        // opens several. WAL is persistent, so pool connections need not set it again.
        if file {
            let mut first = SqliteConnection::connect_with(&opts).await?;
            MIGRATOR.run(&mut first).await?;
            first.close().await?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// The connection pool, for other stores sharing this database file.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes all connections (checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) async fn log_change<'e, E>(
    ex: E,
    id: &AccountId,
    kind: ChangeKind,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query("INSERT INTO account_changes (account, kind, at) VALUES ($1, $2, $3)")
        .bind(id.to_string())
        .bind(kind.as_str())
        .bind(unix_now())
        .execute(ex)
        .await?;
    Ok(())
}

fn parse_domain(s: &str) -> Result<Domain, StoreError> {
    Domain::parse(s).map_err(|_| StoreError::Corrupt("domain name"))
}

pub(crate) fn parse_account(user: &str, domain: &str) -> Result<AccountId, StoreError> {
    AccountId::new(user, parse_domain(domain)?).map_err(|_| StoreError::Corrupt("account id"))
}

#[async_trait]
impl crate::DomainStore for SqliteStore {
    async fn add_domain(&self, domain: &Domain) -> Result<(), StoreError> {
        let r = sqlx::query(
            "INSERT INTO domains (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(domain.as_str())
        .bind(unix_now())
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::DomainExists(domain.clone()));
        }
        Ok(())
    }

    async fn list_domains(&self) -> Result<Vec<Domain>, StoreError> {
        let rows = sqlx::query("SELECT name FROM domains ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| parse_domain(r.get::<&str, _>(0)))
            .collect()
    }

    async fn has_domain(&self, domain: &Domain) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM domains WHERE name = $1")
            .bind(domain.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn delete_domain(&self, domain: &Domain) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM accounts WHERE domain = $1")
            .bind(domain.as_str())
            .fetch_one(&mut *tx)
            .await?
            .get(0);
        if n > 0 {
            return Err(StoreError::DomainNotEmpty(domain.clone(), n.unsigned_abs()));
        }
        let r = sqlx::query("DELETE FROM domains WHERE name = $1")
            .bind(domain.as_str())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::UnknownDomain(domain.clone()));
        }
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl crate::AliasStore for SqliteStore {
    async fn add_alias(&self, id: &AccountId, alias: &Alias) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        accounts::require_account(&mut tx, id).await?;
        if let Some(owner) = resolve(&mut *tx, alias).await? {
            return Err(StoreError::AliasTaken(alias.clone(), owner));
        }
        sqlx::query("INSERT INTO aliases (alias, username, domain) VALUES ($1, $2, $3)")
            .bind(alias.as_str())
            .bind(id.user())
            .bind(id.domain().as_str())
            .execute(&mut *tx)
            .await?;
        log_change(&mut *tx, id, ChangeKind::Aliases).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_alias(&self, alias: &Alias) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let owner = resolve(&mut *tx, alias)
            .await?
            .ok_or_else(|| StoreError::UnknownAlias(alias.clone()))?;
        sqlx::query("DELETE FROM aliases WHERE alias = $1")
            .bind(alias.as_str())
            .execute(&mut *tx)
            .await?;
        log_change(&mut *tx, &owner, ChangeKind::Aliases).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn aliases(&self, id: &AccountId) -> Result<Vec<Alias>, StoreError> {
        let rows = sqlx::query(
            "SELECT alias FROM aliases WHERE username = $1 AND domain = $2 ORDER BY alias",
        )
        .bind(id.user())
        .bind(id.domain().as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<Alias> = rows
            .iter()
            .map(|r| Alias::parse(r.get::<&str, _>(0)).map_err(|_| StoreError::Corrupt("alias")))
            .collect::<Result<_, _>>()?;
        out.sort();
        Ok(out)
    }

    async fn resolve_alias(&self, alias: &Alias) -> Result<Option<AccountId>, StoreError> {
        resolve(&self.pool, alias).await
    }
}

async fn resolve<'e, E>(ex: E, alias: &Alias) -> Result<Option<AccountId>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let row = sqlx::query("SELECT username, domain FROM aliases WHERE alias = $1")
        .bind(alias.as_str())
        .fetch_optional(ex)
        .await?;
    row.map(|r| parse_account(r.get::<&str, _>(0), r.get::<&str, _>(1)))
        .transpose()
}

#[async_trait]
impl crate::ChangeLog for SqliteStore {
    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, account, kind FROM account_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let account = AccountId::parse(r.get::<&str, _>(1))
                    .map_err(|_| StoreError::Corrupt("change log account"))?;
                let kind = ChangeKind::parse(r.get::<&str, _>(2))
                    .ok_or(StoreError::Corrupt("change log kind"))?;
                Ok(Change {
                    seq: r.get(0),
                    account,
                    kind,
                })
            })
            .collect()
    }

    async fn last_change(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM account_changes")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }
}

#[async_trait]
impl crate::ServerStore for SqliteStore {
    async fn close(&self) {
        SqliteStore::close(self).await;
    }
}
