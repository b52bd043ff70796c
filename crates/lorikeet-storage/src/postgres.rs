//! The Postgres backend.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

/// Storage on Postgres (production). One connection pool; row locks with
/// `SKIP LOCKED` let several outbox workers claim rows side by side.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, crate::StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| crate::StoreError::BadUrl {
            url: crate::redact_url(url),
            reason: e.to_string(),
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let store = PgStore { pool };
        store.run_migrations().await?;
        Ok(store)
    }

    /// The connection pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    async fn run_migrations(&self) -> Result<(), crate::StoreError> {
        sqlx::migrate!("../../schemas/sql/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn close_pools(&self) {
        self.pool.close().await
    }
}

impl_storage!(
    PgStore,
    Postgres,
    Backend::Postgres,
    lock = "FOR UPDATE OF o SKIP LOCKED"
);
