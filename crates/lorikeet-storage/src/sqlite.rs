//! Opening a SQLite database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::store::{Pools, Store};
use crate::StoreError;

/// Whether [`open`] takes the file lock of `lock.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// Refuse to open while another process (or another locked open) has the file:
    /// what serving and migrating use.
    Exclusive,
    /// No lock: administration beside a server ([`crate::connect_beside`]) and
    /// tests that open a file beside a server using it.
    None,
}

/// Opens `url` (`sqlite://PATH`, created if missing) and applies the migrations:
/// WAL journal, `synchronous` as `sync` says (FULL by default), foreign keys on, a 5 s busy timeout. Writes
/// go through a single connection, reads through a pool of four read-only ones.
/// With [`Lock::Exclusive`] the file lock is taken first, so a second process
/// neither migrates nor opens the file.
pub(crate) async fn open(
    url: &str,
    lock: Lock,
    sync: crate::SqliteSync,
) -> Result<Store, StoreError> {
    let synchronous = match sync {
        crate::SqliteSync::Full => SqliteSynchronous::Full,
        crate::SqliteSync::Normal => SqliteSynchronous::Normal,
    };
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::BadUrl {
            url: crate::redact_url(url),
            reason: e.to_string(),
        })?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    let lock = match lock {
        // An in-memory database is private to this process anyway.
        Lock::Exclusive if !memory => crate::lock::acquire(options.get_filename())?,
        _ => crate::lock::Held::none(),
    };
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
    let store = Store::new(Pools::Sqlite { read, write, lock });
    crate::entities::events_init(&store).await?;
    Ok(store)
}

/// Applies the SQLite migrations (`schemas/sql/sqlite`).
pub(crate) async fn migrate(write: &SqlitePool) -> Result<(), StoreError> {
    sqlx::migrate!("../../schemas/sql/sqlite")
        .run(write)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use crate::testing::{test_keyring, TestDb};
    use crate::{connect, StoreError};

    #[tokio::test]
    async fn a_second_open_is_refused_until_the_first_is_closed() {
        let db = TestDb::sqlite().await;
        let first = connect(db.url(), test_keyring()).await.expect("first open");
        let err = connect(db.url(), test_keyring())
            .await
            .expect_err("second open");
        let text = err.to_string();
        assert!(
            matches!(err, StoreError::Locked { pid: Some(p), .. } if p == std::process::id()),
            "{err:?}"
        );
        let path = std::fs::canonicalize(db.url().trim_start_matches("sqlite://")).unwrap();
        assert!(
            text.contains(&format!(
                "{} is in use by another lorikeet process (pid {})",
                path.display(),
                std::process::id()
            )),
            "{text}"
        );
        first.close().await;
        let second = connect(db.url(), test_keyring())
            .await
            .expect("open after close");
        drop(second);
        // Dropping the last handle gives the lock up too.
        connect(db.url(), test_keyring())
            .await
            .expect("open after drop");
    }

    /// Not a test: the process `a_killed_holder_leaves_no_lock` starts to hold a
    /// database open, until it is killed.
    #[tokio::test]
    #[ignore = "helper process of a_killed_holder_leaves_no_lock"]
    async fn lock_holder_process() {
        let Ok(url) = std::env::var("LORIKEET_LOCK_HOLDER_URL") else {
            return;
        };
        let _store = connect(&url, test_keyring())
            .await
            .expect("the holder opens");
        println!("lorikeet-lock-held");
        // Hold it until killed (the parent keeps stdin open).
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }

    #[tokio::test]
    async fn a_killed_holder_leaves_no_lock() {
        let db = TestDb::sqlite().await;
        let mut holder = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sqlite::tests::lock_holder_process",
                "--ignored",
                "--nocapture",
            ])
            .env("LORIKEET_LOCK_HOLDER_URL", db.url())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the holder");
        let stdout = holder.stdout.take().unwrap();
        let held = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("lorikeet-lock-held"));
        assert!(held, "the holder did not open the database");

        let err = connect(db.url(), test_keyring())
            .await
            .expect_err("held by the other process");
        assert!(
            matches!(err, StoreError::Locked { pid: Some(p), .. } if p == holder.id()),
            "{err:?}"
        );
        holder.kill().expect("kill -9 the holder");
        holder.wait().expect("reap the holder");
        connect(db.url(), test_keyring())
            .await
            .expect("open after the holder died");
    }
}
