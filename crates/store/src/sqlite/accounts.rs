//! SQLite tables `accounts`, `scram_verifiers` and `digest_ha1`.

use super::{SqliteStore, log_change, parse_account};
use crate::location::account_aors;
use crate::{AccountRecord, ChangeKind, StoreError, unix_now};
use async_trait::async_trait;
use cusax_account::{
    AccountId, Alias, Credentials, DigestAlgorithm, DigestHa1, Domain, ScramHash, ScramVerifier,
};
use sqlx::{Connection, Row, Sqlite, Transaction};

pub(super) async fn require_account(
    tx: &mut Transaction<'_, Sqlite>,
    id: &AccountId,
) -> Result<(), StoreError> {
    let row = sqlx::query("SELECT 1 FROM accounts WHERE username = $1 AND domain = $2")
        .bind(id.user())
        .bind(id.domain().as_str())
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|_| ())
        .ok_or_else(|| StoreError::UnknownAccount(id.clone()))
}

async fn write_credentials(
    tx: &mut Transaction<'_, Sqlite>,
    id: &AccountId,
    creds: &Credentials,
) -> Result<(), StoreError> {
    let (user, domain) = (id.user(), id.domain().as_str());
    sqlx::query("DELETE FROM scram_verifiers WHERE username = $1 AND domain = $2")
        .bind(user)
        .bind(domain)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM digest_ha1 WHERE username = $1 AND domain = $2")
        .bind(user)
        .bind(domain)
        .execute(&mut **tx)
        .await?;
    for v in &creds.scram {
        sqlx::query(
            "INSERT INTO scram_verifiers (username, domain, hash, salt, iterations, stored_key, server_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user)
        .bind(domain)
        .bind(v.hash.name())
        .bind(&v.salt)
        .bind(i64::from(v.iterations))
        .bind(&v.stored_key)
        .bind(&v.server_key)
        .execute(&mut **tx)
        .await?;
    }
    for h in &creds.ha1 {
        sqlx::query("INSERT INTO digest_ha1 (username, domain, realm, algorithm, ha1) VALUES ($1, $2, $3, $4, $5)")
            .bind(user)
            .bind(domain)
            .bind(&h.realm)
            .bind(h.algorithm.name())
            .bind(&h.ha1)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn insert_account(
    tx: &mut Transaction<'_, Sqlite>,
    id: &AccountId,
    creds: &Credentials,
) -> Result<(), StoreError> {
    let dom = sqlx::query("SELECT 1 FROM domains WHERE name = $1")
        .bind(id.domain().as_str())
        .fetch_optional(&mut **tx)
        .await?;
    if dom.is_none() {
        return Err(StoreError::UnknownDomain(id.domain().clone()));
    }
    let r = sqlx::query(
        "INSERT INTO accounts (username, domain, locked, created_at) VALUES ($1, $2, 0, $3) ON CONFLICT DO NOTHING",
    )
    .bind(id.user())
    .bind(id.domain().as_str())
    .bind(unix_now())
    .execute(&mut **tx)
    .await?;
    if r.rows_affected() == 0 {
        return Err(StoreError::AccountExists(id.clone()));
    }
    write_credentials(tx, id, creds).await?;
    log_change(&mut **tx, id, ChangeKind::Created).await
}

#[async_trait]
impl crate::AccountStore for SqliteStore {
    async fn create_account(&self, id: &AccountId, creds: &Credentials) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_account(&mut tx, id, creds).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_accounts(
        &self,
        batch: &[(AccountId, Credentials)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(batch.len());
        for (id, creds) in batch {
            // A savepoint per row, so one bad row does not undo the others.
            let mut sp = tx.begin().await?;
            match insert_account(&mut sp, id, creds).await {
                Ok(()) => {
                    sp.commit().await?;
                    out.push(Ok(()));
                }
                Err(e @ (StoreError::Database(_) | StoreError::Migration(_))) => return Err(e),
                Err(e) => {
                    sp.rollback().await?;
                    out.push(Err(e));
                }
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
        let (user, domain) = (id.user(), id.domain().as_str());
        let Some(row) = sqlx::query(
            "SELECT locked, created_at FROM accounts WHERE username = $1 AND domain = $2",
        )
        .bind(user)
        .bind(domain)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let scram_rows = sqlx::query(
            "SELECT hash, salt, iterations, stored_key, server_key FROM scram_verifiers \
             WHERE username = $1 AND domain = $2 ORDER BY hash",
        )
        .bind(user)
        .bind(domain)
        .fetch_all(&self.pool)
        .await?;
        let mut scram = Vec::with_capacity(scram_rows.len());
        for r in &scram_rows {
            scram.push(ScramVerifier {
                hash: ScramHash::from_name(r.get::<&str, _>(0))
                    .ok_or(StoreError::Corrupt("scram hash"))?,
                salt: r.get(1),
                iterations: u32::try_from(r.get::<i64, _>(2))
                    .map_err(|_| StoreError::Corrupt("iterations"))?,
                stored_key: r.get(3),
                server_key: r.get(4),
            });
        }
        let ha1_rows = sqlx::query(
            "SELECT realm, algorithm, ha1 FROM digest_ha1 WHERE username = $1 AND domain = $2 ORDER BY realm, algorithm",
        )
        .bind(user)
        .bind(domain)
        .fetch_all(&self.pool)
        .await?;
        let mut ha1 = Vec::with_capacity(ha1_rows.len());
        for r in &ha1_rows {
            ha1.push(DigestHa1 {
                realm: r.get(0),
                algorithm: DigestAlgorithm::from_name(r.get::<&str, _>(1))
                    .ok_or(StoreError::Corrupt("digest algorithm"))?,
                ha1: r.get(2),
            });
        }
        Ok(Some(AccountRecord {
            id: id.clone(),
            locked: row.get::<i64, _>(0) != 0,
            credentials: Credentials { scram, ha1 },
            created_at: row.get(1),
        }))
    }

    async fn set_credentials(&self, id: &AccountId, creds: &Credentials) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        require_account(&mut tx, id).await?;
        write_credentials(&mut tx, id, creds).await?;
        log_change(&mut *tx, id, ChangeKind::Credentials).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_locked(&self, id: &AccountId, locked: bool) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("UPDATE accounts SET locked = $1 WHERE username = $2 AND domain = $3")
            .bind(i64::from(locked))
            .bind(id.user())
            .bind(id.domain().as_str())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            // Roll back now rather than on drop (which sqlx defers): until then this
            // connection would hold the write lock and the next writer would get SQLITE_BUSY.
            tx.rollback().await?;
            return Err(StoreError::UnknownAccount(id.clone()));
        }
        let kind = if locked {
            ChangeKind::Locked
        } else {
            ChangeKind::Unlocked
        };
        log_change(&mut *tx, id, kind).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_account(&self, id: &AccountId) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // The aliases first: they name AORs whose bindings must go too, and the cascade
        // below deletes them.
        let alias_rows =
            sqlx::query("SELECT alias FROM aliases WHERE username = $1 AND domain = $2")
                .bind(id.user())
                .bind(id.domain().as_str())
                .fetch_all(&mut *tx)
                .await?;
        let aliases = alias_rows
            .iter()
            .map(|r| Alias::parse(r.get::<&str, _>(0)).map_err(|_| StoreError::Corrupt("alias")))
            .collect::<Result<Vec<_>, _>>()?;
        // Credentials, aliases, the roster and its version, vCard, offline messages, block
        // list and private XML go by ON DELETE CASCADE; other accounts' roster items naming
        // this one by the trigger `roster_items_forget_deleted_account` (migration 0003).
        let r = sqlx::query("DELETE FROM accounts WHERE username = $1 AND domain = $2")
            .bind(id.user())
            .bind(id.domain().as_str())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            // Roll back now rather than on drop (which sqlx defers): until then this
            // connection would hold the write lock and the next writer would get SQLITE_BUSY.
            tx.rollback().await?;
            return Err(StoreError::UnknownAccount(id.clone()));
        }
        // Bindings are keyed by AOR text, not by account (an AOR may be an alias), so no
        // foreign key can reach them: delete them here, in the same transaction.
        for aor in account_aors(id, &aliases) {
            sqlx::query("DELETE FROM location WHERE aor = $1")
                .bind(aor.as_str())
                .execute(&mut *tx)
                .await?;
        }
        log_change(&mut *tx, id, ChangeKind::Deleted).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_accounts(
        &self,
        domain: Option<&Domain>,
    ) -> Result<Vec<(AccountId, bool)>, StoreError> {
        let rows = match domain {
            Some(d) => {
                sqlx::query("SELECT username, domain, locked FROM accounts WHERE domain = $1 ORDER BY domain, username")
                    .bind(d.as_str())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT username, domain, locked FROM accounts ORDER BY domain, username")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok((
                    parse_account(r.get::<&str, _>(0), r.get::<&str, _>(1))?,
                    r.get::<i64, _>(2) != 0,
                ))
            })
            .collect()
    }
}
