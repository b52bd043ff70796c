//! Opening a SQLite database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::store::{Pools, Store};
use crate::StoreError;

/// Opens `url` (`sqlite://PATH`, created if missing) and applies the migrations:
/// WAL journal, `synchronous=NORMAL`, foreign keys on, a 5 s busy timeout. Writes
/// go through a single connection, reads through a pool of four read-only ones.
pub(crate) async fn open(url: &str) -> Result<Store, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::BadUrl {
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
    migrate(&write).await?;
    let read = if memory {
        // An in-memory database exists only on its one connection.
        write.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await?
    };
    Ok(Store::new(Pools::Sqlite { read, write }))
}

/// Applies the SQLite migrations (`schemas/sql/sqlite`).
pub(crate) async fn migrate(write: &SqlitePool) -> Result<(), StoreError> {
    sqlx::migrate!("../../schemas/sql/sqlite")
        .run(write)
        .await?;
    Ok(())
}
