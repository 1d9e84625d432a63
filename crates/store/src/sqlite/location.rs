//! SQLite table `location`: the durable copy of the registrar's bindings (RFC 3261 §10.3).

use super::SqliteStore;
use crate::StoreError;
use crate::location::{Binding, LocationStore};
use async_trait::async_trait;
use cusax_account::Aor;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

/// Rows (or AORs) per multi-row statement; 14 columns × 200 stays far below SQLite's
/// limit on bound parameters.
const ROWS_PER_STATEMENT: usize = 200;

macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT aor, contact, expires_at, q, call_id, cseq, instance, reg_id, path, source, ",
            "transport, user_agent, registered_at, nat FROM location ",
            $tail
        )
    };
}

fn from_row(r: &SqliteRow) -> Result<Binding, StoreError> {
    let aor = Aor::parse(r.get::<&str, _>(0)).map_err(|_| StoreError::Corrupt("location aor"))?;
    let q: Option<i64> = r.get(3);
    let reg_id: Option<i64> = r.get(7);
    let path: &str = r.get(8);
    let source: Option<&str> = r.get(9);
    Ok(Binding {
        aor,
        contact: r.get(1),
        expires_at: r.get(2),
        q: q.map(u16::try_from)
            .transpose()
            .map_err(|_| StoreError::Corrupt("location q"))?,
        call_id: r.get(4),
        cseq: u32::try_from(r.get::<i64, _>(5))
            .map_err(|_| StoreError::Corrupt("location cseq"))?,
        instance: r.get(6),
        reg_id: reg_id
            .map(u32::try_from)
            .transpose()
            .map_err(|_| StoreError::Corrupt("location reg-id"))?,
        path: if path.is_empty() {
            Vec::new()
        } else {
            path.split('\n').map(str::to_owned).collect()
        },
        source: source
            .map(str::parse)
            .transpose()
            .map_err(|_| StoreError::Corrupt("location source"))?,
        transport: r.get(10),
        user_agent: r.get(11),
        registered_at: r.get(12),
        nat: r.get::<i64, _>(13) != 0,
    })
}

#[async_trait]
impl LocationStore for SqliteStore {
    async fn save_bindings(&self, batch: &[(Aor, Vec<Binding>)]) -> Result<(), StoreError> {
        // Multi-row statements: a write-back of thousands of AORs is a few dozen statements,
        // not two per AOR (each statement is a round trip to the SQLite worker thread).
        let mut tx = self.pool().begin().await?;
        for chunk in batch.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM location WHERE aor IN (");
            let mut list = q.separated(", ");
            for (aor, _) in chunk {
                list.push_bind(aor.as_str());
            }
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
        let rows: Vec<&Binding> = batch.iter().flat_map(|(_, b)| b).collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO location (aor, contact, expires_at, q, call_id, cseq, instance, \
                 reg_id, path, source, transport, user_agent, registered_at, nat) ",
            );
            q.push_values(chunk, |mut r, b| {
                r.push_bind(b.aor.as_str())
                    .push_bind(b.contact.as_str())
                    .push_bind(b.expires_at)
                    .push_bind(b.q.map(i64::from))
                    .push_bind(b.call_id.as_str())
                    .push_bind(i64::from(b.cseq))
                    .push_bind(b.instance.as_deref())
                    .push_bind(b.reg_id.map(i64::from))
                    .push_bind(b.path.join("\n"))
                    .push_bind(b.source.map(|s| s.to_string()))
                    .push_bind(b.transport.as_str())
                    .push_bind(b.user_agent.as_deref())
                    .push_bind(b.registered_at)
                    .push_bind(i64::from(b.nat));
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn bindings(&self, aor: &Aor) -> Result<Vec<Binding>, StoreError> {
        let rows = sqlx::query(select!("WHERE aor = $1 ORDER BY contact"))
            .bind(aor.as_str())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    async fn load_bindings(&self, now: i64) -> Result<Vec<Binding>, StoreError> {
        let rows = sqlx::query(select!("WHERE expires_at > $1 ORDER BY aor, contact"))
            .bind(now)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM location WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected())
    }
}
