//! The storage error type.

/// Why a storage call failed. Absence is not an error: lookups return `Option`,
/// deletes return whether something was deleted.
///
/// The message of each variant already contains its cause (sqlx's own messages do
/// too), so none reports a [`std::error::Error::source`]: printing the chain, as
/// `anyhow`'s `{:#}` does, says each cause once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is neither `sqlite://…` nor `postgres://…`, or does not parse.
    #[error("unsupported database URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given (with any password removed).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A row with the same unique key already exists (DevEUI, gateway ID, ...).
    #[error("{entity} {key} already exists")]
    Duplicate {
        /// The kind of thing, e.g. "device".
        entity: &'static str,
        /// Its key as text.
        key: String,
    },
    /// A write named a row that does not exist (an unknown application, a device
    /// profile of another tenant, ...).
    #[error("{entity} refers to something that does not exist: {detail}")]
    MissingReference {
        /// The kind of thing being written.
        entity: &'static str,
        /// The database's description of the broken reference.
        detail: String,
    },
    /// The row cannot be deleted because others still refer to it (a device profile
    /// still used by devices).
    #[error("{entity} {key} is still in use by {users}")]
    InUse {
        /// The kind of thing, e.g. "device profile".
        entity: &'static str,
        /// Its key as text.
        key: String,
        /// What still refers to it, e.g. "3 devices".
        users: String,
    },
    /// The default tenant cannot be deleted: resources created without a tenant live there.
    #[error("the default tenant cannot be deleted")]
    DefaultTenant,
    /// A stored value does not decode (a key of the wrong length, bad JSON, an
    /// out-of-range counter): the database was changed by something other than Lorikeet.
    #[error("corrupt value in {table}.{column}: {detail}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// Column name.
        column: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The database server could not be reached or refused the connection (nothing
    /// listening, wrong password, no such database, no answer in time).
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// What was tried: `host:port` or the Unix socket path.
        target: String,
        /// Why it failed, e.g. "Connection refused (os error 111)".
        reason: String,
    },
    /// Another process serves this SQLite database (it holds `<database>.lock`).
    #[error(
        "the SQLite database {database} is in use by another lorikeet process ({}); \
         stop it first, or give this one another database",
        holder(*.pid)
    )]
    Locked {
        /// The database file.
        database: String,
        /// The holder's process id, as it wrote it into the lock file.
        pid: Option<u32>,
    },
    /// The SQLite lock file cannot be created or locked (e.g. its directory is missing
    /// or not writable).
    #[error("cannot use the lock file {path}: {reason}")]
    LockFile {
        /// The lock file, `<database>.lock`.
        path: String,
        /// The operating system's error.
        reason: String,
    },
    /// Applying the migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// Any other database or connection failure.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl StoreError {
    /// Maps a sqlx error from a write of `entity` keyed by `key`, turning unique and
    /// foreign-key violations into [`StoreError::Duplicate`] / [`StoreError::MissingReference`].
    pub(crate) fn from_write(entity: &'static str, key: impl ToString, e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => {
                    return StoreError::Duplicate {
                        entity,
                        key: key.to_string(),
                    }
                }
                sqlx::error::ErrorKind::ForeignKeyViolation => {
                    return StoreError::MissingReference {
                        entity,
                        detail: db.message().to_string(),
                    }
                }
                _ => {}
            }
        }
        StoreError::Database(e)
    }

    /// True for [`StoreError::Database`] errors that a retry may cure (pool timeout,
    /// I/O, a lost connection), e.g. to decide whether to retry a batch.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            )
        )
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

/// "pid N", or "pid unknown" when the holder has not written it yet.
fn holder(pid: Option<u32>) -> String {
    pid.map_or_else(|| "pid unknown".to_string(), |p| format!("pid {p}"))
}
