//! Opening a Postgres database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::store::{Pools, Store};
use crate::StoreError;

/// Connects to `url` (`postgres://…`) and applies the migrations. One pool of 16
/// connections serves reads and writes; the outbox claim locks rows with
/// `SKIP LOCKED`, so several workers can claim side by side.
pub(crate) async fn connect(url: &str) -> Result<Store, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl {
        url: crate::redact_url(url),
        reason: e.to_string(),
    })?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        // No ping round trip per query: a connection that died fails its query,
        // is dropped, and the caller's retry (the writer's, the worker's next
        // round) gets a fresh one.
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    let store = Store::new(Pools::Postgres(pool));
    store.run_migrations().await?;
    Ok(store)
}

/// Applies the Postgres migrations (`schemas/sql/postgres`).
pub(crate) async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::migrate!("../../schemas/sql/postgres")
        .run(pool)
        .await?;
    Ok(())
}
