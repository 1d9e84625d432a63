//! SQLite tables `roster_items`, `roster_versions`, `vcards`, `offline_messages`, `blocklist`,
//! `private_xml`.

use super::SqliteStore;
use crate::StoreError;
use crate::xmpp_data::{
    BlockStore, OfflineStore, PrivateStore, RosterItem, RosterStore, Subscription, VcardStore,
};
use async_trait::async_trait;
use cusax_account::AccountId;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

/// Separates group names in one column; a control character XML 1.0 text can never hold.
const GROUP_SEP: char = '\u{1f}';

fn item_from_row(r: &SqliteRow) -> Result<RosterItem, StoreError> {
    let groups: String = r.get(5);
    Ok(RosterItem {
        jid: r.get(0),
        name: r.get(1),
        subscription: Subscription::parse(r.get::<&str, _>(2))
            .ok_or(StoreError::Corrupt("roster subscription"))?,
        ask: r.get::<i64, _>(3) != 0,
        pending_in: r.get::<i64, _>(4) != 0,
        groups: groups
            .split(GROUP_SEP)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

async fn bump_version(
    tx: &mut Transaction<'_, Sqlite>,
    owner: &AccountId,
) -> Result<u64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO roster_versions (username, domain, version) VALUES ($1, $2, 1) \
         ON CONFLICT (username, domain) DO UPDATE SET version = version + 1 RETURNING version",
    )
    .bind(owner.user())
    .bind(owner.domain().as_str())
    .fetch_one(&mut **tx)
    .await?;
    u64::try_from(row.get::<i64, _>(0)).map_err(|_| StoreError::Corrupt("roster version"))
}

async fn require_account(
    tx: &mut Transaction<'_, Sqlite>,
    owner: &AccountId,
) -> Result<(), StoreError> {
    super::accounts::require_account(tx, owner).await
}

#[async_trait]
impl RosterStore for SqliteStore {
    async fn roster(&self, owner: &AccountId) -> Result<(u64, Vec<RosterItem>), StoreError> {
        let (user, domain) = (owner.user(), owner.domain().as_str());
        let ver =
            sqlx::query("SELECT version FROM roster_versions WHERE username = $1 AND domain = $2")
                .bind(user)
                .bind(domain)
                .fetch_optional(self.pool())
                .await?
                .map_or(0, |r| r.get::<i64, _>(0));
        let rows = sqlx::query(
            "SELECT contact, name, subscription, ask, pending_in, groups FROM roster_items \
             WHERE username = $1 AND domain = $2 ORDER BY contact",
        )
        .bind(user)
        .bind(domain)
        .fetch_all(self.pool())
        .await?;
        let items = rows.iter().map(item_from_row).collect::<Result<_, _>>()?;
        Ok((ver.unsigned_abs(), items))
    }

    async fn roster_item(
        &self,
        owner: &AccountId,
        contact: &str,
    ) -> Result<Option<RosterItem>, StoreError> {
        let row = sqlx::query(
            "SELECT contact, name, subscription, ask, pending_in, groups FROM roster_items \
             WHERE username = $1 AND domain = $2 AND contact = $3",
        )
        .bind(owner.user())
        .bind(owner.domain().as_str())
        .bind(contact)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(item_from_row).transpose()
    }

    async fn put_roster_item(
        &self,
        owner: &AccountId,
        item: &RosterItem,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        require_account(&mut tx, owner).await?;
        let groups = item.groups.join(&GROUP_SEP.to_string());
        sqlx::query(
            "INSERT INTO roster_items (username, domain, contact, name, subscription, ask, pending_in, groups) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (username, domain, contact) DO UPDATE SET name = excluded.name, \
             subscription = excluded.subscription, ask = excluded.ask, \
             pending_in = excluded.pending_in, groups = excluded.groups",
        )
        .bind(owner.user())
        .bind(owner.domain().as_str())
        .bind(&item.jid)
        .bind(&item.name)
        .bind(item.subscription.as_str())
        .bind(i64::from(item.ask))
        .bind(i64::from(item.pending_in))
        .bind(groups)
        .execute(&mut *tx)
        .await?;
        let v = bump_version(&mut tx, owner).await?;
        tx.commit().await?;
        Ok(v)
    }

    async fn remove_roster_item(
        &self,
        owner: &AccountId,
        contact: &str,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let r = sqlx::query(
            "DELETE FROM roster_items WHERE username = $1 AND domain = $2 AND contact = $3",
        )
        .bind(owner.user())
        .bind(owner.domain().as_str())
        .bind(contact)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(None);
        }
        let v = bump_version(&mut tx, owner).await?;
        tx.commit().await?;
        Ok(Some(v))
    }
}

#[async_trait]
impl VcardStore for SqliteStore {
    async fn vcard(&self, owner: &AccountId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT xml FROM vcards WHERE username = $1 AND domain = $2")
            .bind(owner.user())
            .bind(owner.domain().as_str())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn set_vcard(&self, owner: &AccountId, xml: &str) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        require_account(&mut tx, owner).await?;
        sqlx::query(
            "INSERT INTO vcards (username, domain, xml) VALUES ($1, $2, $3) \
             ON CONFLICT (username, domain) DO UPDATE SET xml = excluded.xml",
        )
        .bind(owner.user())
        .bind(owner.domain().as_str())
        .bind(xml)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl OfflineStore for SqliteStore {
    async fn push_offline(
        &self,
        owner: &AccountId,
        xml: &str,
        max: u32,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        require_account(&mut tx, owner).await?;
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) FROM offline_messages WHERE username = $1 AND domain = $2",
        )
        .bind(owner.user())
        .bind(owner.domain().as_str())
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        if n >= i64::from(max) {
            return Ok(false);
        }
        sqlx::query("INSERT INTO offline_messages (username, domain, xml) VALUES ($1, $2, $3)")
            .bind(owner.user())
            .bind(owner.domain().as_str())
            .bind(xml)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn take_offline(&self, owner: &AccountId) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let rows = sqlx::query(
            "DELETE FROM offline_messages WHERE username = $1 AND domain = $2 RETURNING seq, xml",
        )
        .bind(owner.user())
        .bind(owner.domain().as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        out.sort_by_key(|(seq, _)| *seq);
        Ok(out.into_iter().map(|(_, x)| x).collect())
    }

    async fn offline_count(&self, owner: &AccountId) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) FROM offline_messages WHERE username = $1 AND domain = $2",
        )
        .bind(owner.user())
        .bind(owner.domain().as_str())
        .fetch_one(self.pool())
        .await?
        .get(0);
        Ok(n.unsigned_abs())
    }
}

#[async_trait]
impl BlockStore for SqliteStore {
    async fn blocklist(&self, owner: &AccountId) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT jid FROM blocklist WHERE username = $1 AND domain = $2 ORDER BY jid",
        )
        .bind(owner.user())
        .bind(owner.domain().as_str())
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn block(&self, owner: &AccountId, jids: &[String]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        require_account(&mut tx, owner).await?;
        for j in jids {
            sqlx::query(
                "INSERT INTO blocklist (username, domain, jid) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(owner.user())
            .bind(owner.domain().as_str())
            .bind(j)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn unblock(&self, owner: &AccountId, jids: &[String]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        if jids.is_empty() {
            sqlx::query("DELETE FROM blocklist WHERE username = $1 AND domain = $2")
                .bind(owner.user())
                .bind(owner.domain().as_str())
                .execute(&mut *tx)
                .await?;
        }
        for j in jids {
            sqlx::query("DELETE FROM blocklist WHERE username = $1 AND domain = $2 AND jid = $3")
                .bind(owner.user())
                .bind(owner.domain().as_str())
                .bind(j)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl PrivateStore for SqliteStore {
    async fn private_xml(
        &self,
        owner: &AccountId,
        namespace: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT xml FROM private_xml WHERE username = $1 AND domain = $2 AND namespace = $3",
        )
        .bind(owner.user())
        .bind(owner.domain().as_str())
        .bind(namespace)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn set_private_xml(
        &self,
        owner: &AccountId,
        namespace: &str,
        xml: &str,
        max_namespaces: u32,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        require_account(&mut tx, owner).await?;
        // Namespaces other than this one: replacing a fragment never counts as a new one.
        let others: i64 = sqlx::query(
            "SELECT COUNT(*) FROM private_xml WHERE username = $1 AND domain = $2 \
             AND namespace != $3",
        )
        .bind(owner.user())
        .bind(owner.domain().as_str())
        .bind(namespace)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        if others >= i64::from(max_namespaces) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO private_xml (username, domain, namespace, xml) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (username, domain, namespace) DO UPDATE SET xml = excluded.xml",
        )
        .bind(owner.user())
        .bind(owner.domain().as_str())
        .bind(namespace)
        .bind(xml)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
