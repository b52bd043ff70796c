//! The embedded SQLite backend.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

/// Session rows per statement (13 parameters each; SQLite allows 32,766).
const SESSION_ROWS: usize = 1_000;
/// Event rows per statement (5 parameters each).
const EVENT_ROWS: usize = 2_000;
/// Rows per statement for one- and two-column lists.
const KEY_ROWS: usize = 5_000;

/// Storage in one SQLite file: WAL journal, `synchronous=NORMAL`, foreign keys on,
/// a 5 s busy timeout. Writes go through a single connection (SQLite allows one
/// writer at a time; queuing them in-process avoids `SQLITE_BUSY`), reads through a
/// small pool that runs beside it thanks to WAL.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
}

impl SqliteStore {
    /// Opens `url` (`sqlite://PATH`, created if missing) and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, crate::StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| crate::StoreError::BadUrl {
                url: crate::redact_url(url),
                reason: e.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(30))
            // In-process: a ping is a round trip to sqlx's worker thread for nothing.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        let store_w = SqliteStore {
            read: write.clone(),
            write,
        };
        store_w.run_migrations().await?;
        if memory {
            // An in-memory database exists only on its one connection.
            return Ok(store_w);
        }
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore {
            read,
            write: store_w.write,
        })
    }

    /// The writer connection pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &SqlitePool {
        &self.write
    }

    fn reader(&self) -> &SqlitePool {
        &self.read
    }

    fn writer(&self) -> &SqlitePool {
        &self.write
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        // IMMEDIATE takes the write lock up front, so a transaction that reads before
        // writing cannot fail half-way on a lock upgrade.
        self.write.begin_with("BEGIN IMMEDIATE").await
    }

    async fn run_migrations(&self) -> Result<(), crate::StoreError> {
        sqlx::migrate!("../../schemas/sql/sqlite")
            .run(&self.write)
            .await?;
        Ok(())
    }

    /// One transaction, one multi-row statement per kind of op (per chunk of rows).
    /// sqlx runs SQLite on a worker thread and every statement is a round trip to it,
    /// so a statement per op cost more than the writes themselves.
    async fn apply_batch(&self, ops: &[crate::WriteOp]) -> Result<(), crate::StoreError> {
        use sqlx::QueryBuilder;

        use crate::sql::Ts;

        let g = crate::ops::Grouped::new(ops);
        let mut tx = self.begin_write().await?;
        for chunk in g.upserts().chunks(SESSION_ROWS) {
            let mut q = QueryBuilder::<Sqlite>::new(concat!(
                "INSERT INTO device_sessions (",
                session_cols!(),
                ") SELECT * FROM ("
            ));
            q.push_values(chunk, |mut b, s| {
                b.push_bind(s.dev_eui.0.to_vec())
                    .push_bind(s.dev_addr.0.to_vec())
                    .push_bind(s.mac_version.as_str())
                    .push_bind(s.f_nwk_s_int_key.as_bytes().to_vec())
                    .push_bind(s.s_nwk_s_int_key.as_bytes().to_vec())
                    .push_bind(s.nwk_s_enc_key.as_bytes().to_vec())
                    .push_bind(s.app_s_key.as_bytes().to_vec())
                    .push_bind(i64::from(s.f_cnt_up))
                    .push_bind(i64::from(s.n_f_cnt_down))
                    .push_bind(i64::from(s.a_f_cnt_down))
                    .push_bind(i64::from(s.conf_f_cnt))
                    .push_bind(s.ns_state.as_str())
                    .push_bind(Ts(s.updated_at));
            });
            q.push(concat!(
                ") WHERE column1 IN (SELECT dev_eui FROM devices) ",
                session_upsert_set!()
            ));
            // Each chunk size is its own SQL text: keep them out of the statement cache.
            q.build().persistent(false).execute(&mut *tx).await?;
        }
        for chunk in g.deletes().chunks(KEY_ROWS) {
            let mut q =
                QueryBuilder::<Sqlite>::new("DELETE FROM device_sessions WHERE dev_eui IN (");
            let mut list = q.separated(", ");
            for e in chunk {
                list.push_bind(e.as_slice());
            }
            q.push(")");
            q.build().persistent(false).execute(&mut *tx).await?;
        }
        // Events in op order: ids increase in that order, which is the order webhooks
        // deliver them in (per device).
        for chunk in g.events.chunks(EVENT_ROWS) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events (dev_eui, application_id, kind, payload, created_at) \
                 SELECT * FROM (",
            );
            q.push_values(chunk, |mut b, e| {
                b.push_bind(e.dev_eui.0.to_vec())
                    .push_bind(e.application_id)
                    .push_bind(e.kind.as_str())
                    .push_bind(&*e.payload)
                    .push_bind(Ts(e.created_at));
            });
            q.push(") WHERE column1 IN (SELECT dev_eui FROM devices)");
            q.build().persistent(false).execute(&mut *tx).await?;
        }
        let seen: Vec<(&lorikeet_lorawan::Eui64, &chrono::DateTime<chrono::Utc>)> =
            g.seen.iter().collect();
        for chunk in seen.chunks(KEY_ROWS) {
            let mut q =
                QueryBuilder::<Sqlite>::new("UPDATE devices SET last_seen_at = v.column2 FROM (");
            q.push_values(chunk, |mut b, (e, at)| {
                b.push_bind(e.0.to_vec()).push_bind(Ts(**at));
            });
            q.push(") AS v WHERE devices.dev_eui = v.column1");
            q.build().persistent(false).execute(&mut *tx).await?;
        }
        for op in g.others {
            apply_other(&mut tx, op).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_chains(
        tx: &mut Transaction<'static, Sqlite>,
        chains: Vec<(uuid::Uuid, Vec<u8>, chrono::DateTime<chrono::Utc>)>,
    ) -> Result<(), crate::StoreError> {
        for (integration, dev_eui, at) in chains {
            sqlx::query(
                "UPDATE outbox_chains SET next_attempt_at = $3 \
                 WHERE integration_id = $1 AND dev_eui = $2",
            )
            .bind(integration)
            .bind(dev_eui)
            .bind(crate::sql::Ts(at))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn delete_outbox_rows(
        tx: &mut Transaction<'static, Sqlite>,
        ids: &[i64],
    ) -> Result<Vec<(uuid::Uuid, Vec<u8>)>, crate::StoreError> {
        use sqlx::Row;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) =
                sqlx::query("DELETE FROM outbox WHERE id = $1 RETURNING integration_id, dev_eui")
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?
            {
                out.push((r.try_get("integration_id")?, r.try_get("dev_eui")?));
            }
        }
        Ok(out)
    }

    async fn close_pools(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

impl_storage!(
    SqliteStore,
    Sqlite,
    Backend::Sqlite,
    lock = "",
    body = "payload"
);
