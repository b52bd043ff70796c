//! The embedded SQLite backend.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

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

    /// One transaction, one statement per op: SQLite runs in-process, so a statement
    /// costs microseconds and grouping buys little.
    async fn apply_batch(&self, ops: Vec<crate::WriteOp>) -> Result<(), crate::StoreError> {
        let mut tx = self.begin_write().await?;
        for op in ops {
            apply_one(&mut tx, op).await?;
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
