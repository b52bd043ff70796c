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
    /// The configured key-encryption keys cannot open what the database holds (or
    /// none was given): see [`crate::KekError`]. Start-up stops with this message.
    #[error("{0}")]
    Kek(crate::KekError),
    /// A stored secret does not decrypt: its KEK is not configured, or the value was
    /// changed or copied from another row (see `docs/security.md`).
    #[error("cannot decrypt {table}.{column} of {row}: {reason}")]
    Sealed {
        /// Table name.
        table: &'static str,
        /// Column name.
        column: &'static str,
        /// The row, e.g. its DevEUI.
        row: String,
        /// Why.
        reason: crate::kek::OpenError,
    },
    /// `lorikeet keys rotate` could not move every value to the current KEK: a
    /// process keeps writing under an older one.
    #[error(
        "after {passes} passes, {remaining} stored secrets are still encrypted under KEK \
         {ids}: a server still runs with that KEK as its current one. Restart every server \
         with the new [security] kek (and the old one in previous_keks), then rotate again"
    )]
    RotationIncomplete {
        /// Passes made.
        passes: u32,
        /// Values not under the current KEK.
        remaining: u64,
        /// The KEK ids they are under, quoted.
        ids: String,
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

    /// True for errors that a retry may cure: the database is unreachable or the
    /// connection broke (I/O, pool timeout), Postgres is shutting down, restarting or
    /// refusing connections for now (SQLSTATE classes 08, 53, 57P0x), a serialization
    /// failure or deadlock (40001, 40P01), or SQLite's lock contention (BUSY, LOCKED).
    /// The writer retries these without limit instead of dropping a write.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Connect { .. } => true,
            StoreError::Database(e) => sqlx_is_transient(e),
            _ => false,
        }
    }
}

fn sqlx_is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else {
                return false;
            };
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                transient_postgres(&code)
            } else {
                transient_sqlite(&code)
            }
        }
        _ => false,
    }
}

/// Postgres SQLSTATEs that say "try again later" rather than "this write is
/// wrong": connection exceptions, insufficient resources (too many connections, out
/// of memory or disk for now), operator intervention (admin or crash shutdown,
/// cannot connect now), serialization failure, deadlock.
fn transient_postgres(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57P05" | "40001" | "40P01"
        )
}

/// SQLite result codes (primary or extended; the primary is the low byte) for lock
/// contention: BUSY and LOCKED.
fn transient_sqlite(code: &str) -> bool {
    code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e)
    }
}

impl From<crate::KekError> for StoreError {
    fn from(e: crate::KekError) -> Self {
        StoreError::Kek(e)
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

#[cfg(test)]
mod transient_tests {
    use super::{transient_postgres, transient_sqlite};

    #[test]
    fn postgres_and_sqlite_codes() {
        for c in [
            "57P01", "57P03", "08006", "08001", "53300", "40001", "40P01",
        ] {
            assert!(transient_postgres(c), "{c}");
        }
        for c in ["23505", "23503", "42P01", "22P02", "XX000"] {
            assert!(!transient_postgres(c), "{c}");
        }
        // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT (517), SQLITE_LOCKED.
        for c in ["5", "517", "6"] {
            assert!(transient_sqlite(c), "{c}");
        }
        // SQLITE_CONSTRAINT_UNIQUE (2067), SQLITE_CORRUPT (11).
        for c in ["2067", "11", "19"] {
            assert!(!transient_sqlite(c), "{c}");
        }
    }
}
