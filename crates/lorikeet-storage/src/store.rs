//! [`Store`], the one [`crate::Storage`] implementation, and the ways a statement
//! runs on it: a read on the read pool, a write in a transaction ([`Tx`]), and a
//! provisioning write ([`Provision`]).
//!
//! Everything that differs between the backends in *how* a statement runs is in
//! this file (which pool, how a transaction begins); *what* runs, the SQL, is in the
//! entity modules (`tenants.rs`, `devices.rs`, …), and how each database is opened
//! in `postgres.rs` and `sqlite.rs`.

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{Postgres, Sqlite, Transaction};

use crate::stmt::{Row, Stmt};
use crate::{Backend, StoreError};

/// Lorikeet's storage on Postgres or SQLite ([`crate::connect`] opens one). Cheap to
/// clone: clones share the pools.
#[derive(Debug, Clone)]
pub struct Store {
    pools: Pools,
    /// This process's side of the change feed (shared by clones).
    feed: std::sync::Arc<crate::FeedSignals>,
    /// The key-encryption keys that seal and open stored secrets; `None` for a
    /// store opened to migrate the schema only.
    keyring: Option<crate::Keyring>,
    /// The event store's caches (shared by clones).
    events: std::sync::Arc<crate::entities::events::EventState>,
}

/// The connections of one backend.
#[derive(Debug, Clone)]
pub(crate) enum Pools {
    /// One pool for reads and writes.
    Postgres(PgPool),
    /// Writes through a single connection (SQLite has one writer at a time; queuing
    /// them in-process avoids `SQLITE_BUSY`), reads through a small read-only pool
    /// beside it (WAL). `lock` keeps other processes off the file (see `lock.rs`).
    Sqlite {
        /// Read-only connections (the writer itself for an in-memory database).
        read: SqlitePool,
        /// The one writer connection.
        write: SqlitePool,
        /// The lock on `<database>.lock`, when taken.
        lock: crate::lock::Held,
    },
}

impl Store {
    pub(crate) fn new(pools: Pools) -> Self {
        Store {
            pools,
            feed: Default::default(),
            keyring: None,
            events: Default::default(),
        }
    }

    /// The store sealing and opening secrets with `keyring`.
    pub(crate) fn with_keyring(mut self, keyring: crate::Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// The keyring; [`crate::KekError::Missing`] for a schema-only store.
    pub(crate) fn keyring(&self) -> Result<&crate::Keyring, StoreError> {
        self.keyring
            .as_ref()
            .ok_or(StoreError::Kek(crate::KekError::Missing))
    }

    /// The pools (for the few statements whose SQL differs by backend).
    pub(crate) fn pools(&self) -> &Pools {
        &self.pools
    }

    /// The event store's caches.
    pub(crate) fn event_state(&self) -> &crate::entities::events::EventState {
        &self.events
    }

    /// The feed signals of this process (written position, commit signal).
    pub(crate) fn feed(&self) -> &crate::FeedSignals {
        &self.feed
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Postgres(_) => Backend::Postgres,
            Pools::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// Applies pending migrations (idempotent).
    pub(crate) async fn run_migrations(&self) -> Result<(), StoreError> {
        match &self.pools {
            Pools::Postgres(pool) => crate::postgres::migrate(pool).await,
            Pools::Sqlite { write, .. } => crate::sqlite::migrate(write).await,
        }
    }

    /// Closes the pools, waiting for running queries, then gives up the SQLite lock.
    pub(crate) async fn close_pools(&self) {
        match &self.pools {
            Pools::Postgres(pool) => pool.close().await,
            Pools::Sqlite { read, write, lock } => {
                read.close().await;
                write.close().await;
                lock.release();
            }
        }
    }

    /// Every row `s` returns (read pool).
    pub(crate) async fn fetch_all(&self, s: Stmt<'_>) -> Result<Vec<Row>, sqlx::Error> {
        match &self.pools {
            Pools::Postgres(pool) => {
                let (sql, args) = s.postgres()?;
                let rows = sqlx::query_with(&sql, args).fetch_all(pool).await?;
                Ok(rows.into_iter().map(Row::Postgres).collect())
            }
            Pools::Sqlite { read, .. } => {
                let (sql, args) = s.sqlite()?;
                let rows = sqlx::query_with(&sql, args).fetch_all(read).await?;
                Ok(rows.into_iter().map(Row::Sqlite).collect())
            }
        }
    }

    /// The first row `s` returns, if any (read pool).
    pub(crate) async fn fetch_optional(&self, s: Stmt<'_>) -> Result<Option<Row>, sqlx::Error> {
        match &self.pools {
            Pools::Postgres(pool) => {
                let (sql, args) = s.postgres()?;
                let row = sqlx::query_with(&sql, args).fetch_optional(pool).await?;
                Ok(row.map(Row::Postgres))
            }
            Pools::Sqlite { read, .. } => {
                let (sql, args) = s.sqlite()?;
                let row = sqlx::query_with(&sql, args).fetch_optional(read).await?;
                Ok(row.map(Row::Sqlite))
            }
        }
    }

    /// The one row `s` returns (read pool); no row is [`sqlx::Error::RowNotFound`].
    pub(crate) async fn fetch_one(&self, s: Stmt<'_>) -> Result<Row, sqlx::Error> {
        self.fetch_optional(s)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// Runs `s` on its own (auto-commit) on the writer and returns the rows it
    /// changed. Only for upkeep (retention, giving up old outbox rows): provisioning
    /// goes through [`Store::provision`], the server's writes through a [`Tx`].
    pub(crate) async fn execute(&self, s: Stmt<'_>) -> Result<u64, sqlx::Error> {
        match &self.pools {
            Pools::Postgres(pool) => {
                let (sql, args) = s.postgres()?;
                let r = sqlx::query_with(&sql, args).execute(pool).await?;
                Ok(r.rows_affected())
            }
            Pools::Sqlite { write, .. } => {
                let (sql, args) = s.sqlite()?;
                let r = sqlx::query_with(&sql, args).execute(write).await?;
                Ok(r.rows_affected())
            }
        }
    }

    /// Begins a write transaction.
    pub(crate) async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match &self.pools {
            Pools::Postgres(pool) => Ok(Tx::Postgres(pool.begin().await?)),
            // IMMEDIATE takes the write lock up front, so a transaction that reads
            // before writing cannot fail half-way on a lock upgrade.
            Pools::Sqlite { write, .. } => {
                Ok(Tx::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?))
            }
        }
    }

    /// Begins a provisioning write (see [`Provision`]).
    pub(crate) async fn provision(&self) -> Result<Provision<'_>, sqlx::Error> {
        Ok(Provision {
            tx: self.begin().await?,
            changes: Vec::new(),
            store: self,
        })
    }

    /// A provisioning write of one statement: [`Store::provision`], `s`, and, when
    /// it changed a row, `changed` on the feed; then commit. Returns the rows `s`
    /// changed.
    pub(crate) async fn provision_one(
        &self,
        changed: crate::Changed,
        s: Stmt<'_>,
    ) -> Result<u64, sqlx::Error> {
        let mut p = self.provision().await?;
        let n = p.execute(s).await?;
        if n > 0 {
            p.record(changed);
        }
        p.commit().await?;
        Ok(n)
    }
}

/// A write transaction on either backend: all its statements commit together or
/// not at all (dropping it uncommitted rolls back). Backend-specific statements
/// (arrays on Postgres, multi-row `VALUES` on SQLite) match on the variant.
#[derive(Debug)]
pub(crate) enum Tx {
    /// On Postgres.
    Postgres(Transaction<'static, Postgres>),
    /// On SQLite (begun `IMMEDIATE`).
    Sqlite(Transaction<'static, Sqlite>),
}

impl Tx {
    /// Runs `s`; returns the rows it changed.
    pub(crate) async fn execute(&mut self, s: Stmt<'_>) -> Result<u64, sqlx::Error> {
        match self {
            Tx::Postgres(tx) => {
                let (sql, args) = s.postgres()?;
                let r = sqlx::query_with(&sql, args).execute(&mut **tx).await?;
                Ok(r.rows_affected())
            }
            Tx::Sqlite(tx) => {
                let (sql, args) = s.sqlite()?;
                let r = sqlx::query_with(&sql, args).execute(&mut **tx).await?;
                Ok(r.rows_affected())
            }
        }
    }

    /// Every row `s` returns.
    pub(crate) async fn fetch_all(&mut self, s: Stmt<'_>) -> Result<Vec<Row>, sqlx::Error> {
        match self {
            Tx::Postgres(tx) => {
                let (sql, args) = s.postgres()?;
                let rows = sqlx::query_with(&sql, args).fetch_all(&mut **tx).await?;
                Ok(rows.into_iter().map(Row::Postgres).collect())
            }
            Tx::Sqlite(tx) => {
                let (sql, args) = s.sqlite()?;
                let rows = sqlx::query_with(&sql, args).fetch_all(&mut **tx).await?;
                Ok(rows.into_iter().map(Row::Sqlite).collect())
            }
        }
    }

    /// The first row `s` returns, if any.
    pub(crate) async fn fetch_optional(&mut self, s: Stmt<'_>) -> Result<Option<Row>, sqlx::Error> {
        match self {
            Tx::Postgres(tx) => {
                let (sql, args) = s.postgres()?;
                let row = sqlx::query_with(&sql, args)
                    .fetch_optional(&mut **tx)
                    .await?;
                Ok(row.map(Row::Postgres))
            }
            Tx::Sqlite(tx) => {
                let (sql, args) = s.sqlite()?;
                let row = sqlx::query_with(&sql, args)
                    .fetch_optional(&mut **tx)
                    .await?;
                Ok(row.map(Row::Sqlite))
            }
        }
    }

    /// The one row `s` returns; no row is [`sqlx::Error::RowNotFound`].
    pub(crate) async fn fetch_one(&mut self, s: Stmt<'_>) -> Result<Row, sqlx::Error> {
        self.fetch_optional(s)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// Commits.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Postgres(tx) => tx.commit().await,
            Tx::Sqlite(tx) => tx.commit().await,
        }
    }
}

/// A provisioning write: a change to what the operator provisioned (tenant, API
/// key, application, profile, device, root keys, ABP session, queue item, gateway,
/// integration), made through the API or a command. Each runs in one transaction
/// that begins in [`Store::provision`] and ends in [`Provision::commit`], and
/// nowhere else: `commit` appends what was [`recorded`](Provision::record) to the
/// change feed in the same transaction, so the feed has exactly the committed
/// changes, in commit order.
#[derive(Debug)]
pub(crate) struct Provision<'s> {
    tx: Tx,
    changes: Vec<crate::Changed>,
    store: &'s Store,
}

impl Provision<'_> {
    /// Notes a change for the feed (written at commit).
    pub(crate) fn record(&mut self, changed: crate::Changed) {
        self.changes.push(changed);
    }

    /// Every row `s` returns, read inside the transaction.
    pub(crate) async fn fetch_all(&mut self, s: Stmt<'_>) -> Result<Vec<Row>, sqlx::Error> {
        self.tx.fetch_all(s).await
    }

    /// The transaction, for an entity's statements that take a [`Tx`].
    pub(crate) fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Runs `s` in the transaction; returns the rows it changed.
    pub(crate) async fn execute(&mut self, s: Stmt<'_>) -> Result<u64, sqlx::Error> {
        self.tx.execute(s).await
    }

    /// The one row `s` returns, read inside the transaction.
    pub(crate) async fn fetch_one(&mut self, s: Stmt<'_>) -> Result<Row, sqlx::Error> {
        self.tx.fetch_one(s).await
    }

    /// Appends the recorded changes to the feed and commits; then tells this
    /// process's feed reader. A write that changed nothing commits without a feed
    /// entry.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        if self.changes.is_empty() {
            return self.tx.commit().await;
        }
        let at = crate::entities::changes::append(&mut self.tx, &self.changes).await?;
        self.tx.commit().await?;
        self.store.feed.committed(at);
        Ok(())
    }
}
