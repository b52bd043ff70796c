//! Test databases for this crate's and other crates' tests (cargo feature `testing`).
//!
//! - [`TestDb::sqlite`]: a fresh SQLite file in a temporary directory, opened without
//!   the file lock that [`crate::connect`] takes, so a test can start a server on it.
//! - [`TestDb::postgres`]: a fresh, uniquely named database on the server at
//!   `LORIKEET_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//!   dropped afterwards. When that server does not answer the test is skipped with a
//!   warning, unless `LORIKEET_REQUIRE_POSTGRES=1` (set by `scripts/test`): then it fails.
//! - [`storage_test!`](crate::storage_test) runs one async test body on both.
//! - Secrets are sealed under [`TEST_KEK_HEX`] ([`test_keyring`]): a server started
//!   on a test database must be configured with it (`[security] kek`).
//! - [`OldDb`]: a database with the schema of an earlier version, to write rows the
//!   way that version did and then open it with this one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

use crate::{connect, Kek, Keyring, Storage, StoreError};

/// Default admin URL of the test Postgres.
pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The KEK test databases seal secrets under (never use it elsewhere).
pub const TEST_KEK_HEX: &str = "74657374206b656b206f66206c6f72696b656574207465737473206f6e6c7921";

/// A keyring of [`TEST_KEK_HEX`] alone (id derived from the key).
pub fn test_keyring() -> Keyring {
    match Kek::from_hex(TEST_KEK_HEX, None) {
        Ok(k) => Keyring::new(k),
        Err(e) => panic!("the test KEK: {e}"),
    }
}

/// A throw-away database, removed when dropped.
#[derive(Debug)]
pub struct TestDb {
    /// The open, migrated store.
    pub storage: Arc<dyn Storage>,
    url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    SqliteDir(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// A fresh SQLite database in a new temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("lorikeet-test-{}", Uuid::new_v4().simple()));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        let url = format!("sqlite://{}", dir.join("lorikeet.db").display());
        let storage = match open_sqlite(&url, test_keyring()).await {
            Ok(s) => s,
            Err(e) => panic!("cannot open test SQLite {url}: {e}"),
        };
        TestDb {
            storage,
            url,
            cleanup: Cleanup::SqliteDir(dir),
        }
    }

    /// A fresh Postgres database, or `None` (after a warning) when no Postgres answers
    /// and `LORIKEET_REQUIRE_POSTGRES` is not `1`.
    pub async fn postgres() -> Option<TestDb> {
        let (url, cleanup) = new_postgres().await?;
        let storage = match connect(&url, test_keyring()).await {
            Ok(s) => s,
            Err(e) => panic!("cannot open test database {url}: {e}"),
        };
        Some(TestDb {
            storage,
            url,
            cleanup,
        })
    }

    /// The database URL, e.g. to start a server on it or to reopen it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs raw SQL on the database outside the store (to break things on purpose
    /// or to inspect tables in tests).
    pub async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        execute(&self.cleanup, &self.url, sql).await
    }

    /// The first column of every row `sql` returns, as bytes (to read sealed
    /// columns as they are on disk).
    pub async fn raw_bytes(&self, sql: &str) -> Result<Vec<Option<Vec<u8>>>, sqlx::Error> {
        raw_bytes(&self.cleanup, &self.url, sql).await
    }

    /// Opens the same database again (a "restart"): a new pool, migrations re-run.
    pub async fn reopen(&self) -> Arc<dyn Storage> {
        match self.reopen_with(test_keyring()).await {
            Ok(s) => s,
            Err(e) => panic!("cannot reopen {}: {e}", self.url),
        }
    }

    /// Opens the same database again with another keyring (as a server configured
    /// with those KEKs would); start-up's KEK check may refuse.
    pub async fn reopen_with(&self, keyring: Keyring) -> Result<Arc<dyn Storage>, StoreError> {
        open(&self.cleanup, &self.url, keyring).await
    }
}

/// Opens `url` with `keyring` (SQLite without the file lock).
async fn open(
    cleanup: &Cleanup,
    url: &str,
    keyring: Keyring,
) -> Result<Arc<dyn Storage>, StoreError> {
    match cleanup {
        Cleanup::SqliteDir(_) => open_sqlite(url, keyring).await,
        Cleanup::Postgres { .. } => connect(url, keyring).await,
    }
}

async fn execute(cleanup: &Cleanup, url: &str, sql: &str) -> Result<u64, sqlx::Error> {
    match cleanup {
        Cleanup::SqliteDir(_) => {
            let mut c = sqlx::SqliteConnection::connect(url).await?;
            let r = c.execute(sql).await?;
            let _ = c.close().await;
            Ok(r.rows_affected())
        }
        Cleanup::Postgres { .. } => {
            let mut c = PgConnection::connect(url).await?;
            let r = c.execute(sql).await?;
            let _ = c.close().await;
            Ok(r.rows_affected())
        }
    }
}

async fn raw_bytes(
    cleanup: &Cleanup,
    url: &str,
    sql: &str,
) -> Result<Vec<Option<Vec<u8>>>, sqlx::Error> {
    match cleanup {
        Cleanup::SqliteDir(_) => {
            let mut c = sqlx::SqliteConnection::connect(url).await?;
            let rows: Vec<(Option<Vec<u8>>,)> = sqlx::query_as(sql).fetch_all(&mut c).await?;
            let _ = c.close().await;
            Ok(rows.into_iter().map(|r| r.0).collect())
        }
        Cleanup::Postgres { .. } => {
            let mut c = PgConnection::connect(url).await?;
            let rows: Vec<(Option<Vec<u8>>,)> = sqlx::query_as(sql).fetch_all(&mut c).await?;
            let _ = c.close().await;
            Ok(rows.into_iter().map(|r| r.0).collect())
        }
    }
}

/// A test SQLite store, opened without the file lock: a test may start a server
/// (which takes the lock) on the file while it holds this one to set up and inspect.
async fn open_sqlite(url: &str, keyring: Keyring) -> Result<Arc<dyn Storage>, StoreError> {
    let store = crate::sqlite::open(url, crate::sqlite::Lock::None, crate::SqliteSync::default())
        .await?
        .with_keyring(keyring);
    if let Err(e) = crate::open_secrets(&store).await {
        store.close_pools().await;
        return Err(e);
    }
    Ok(Arc::new(store))
}

/// A fresh, empty Postgres database: its URL and how to drop it; `None` as
/// [`TestDb::postgres`] says.
async fn new_postgres() -> Option<(String, Cleanup)> {
    let admin_url = std::env::var("LORIKEET_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_string());
    let required = std::env::var("LORIKEET_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let mut admin =
        match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&admin_url)).await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return unavailable(&admin_url, &e.to_string(), required),
            Err(_) => return unavailable(&admin_url, "no answer within 5 s", required),
        };
    let name = format!("lorikeet_test_{}", Uuid::new_v4().simple());
    if let Err(e) = admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
    {
        panic!(
            "Postgres at {} answers but CREATE DATABASE failed ({e}); the test user must be \
             allowed to create databases",
            crate::redact_url(&admin_url)
        );
    }
    let _ = admin.close().await;
    let url = with_database(&admin_url, &name);
    Some((url, Cleanup::Postgres { admin_url, name }))
}

/// A throw-away database with the schema of an earlier version: the migrations
/// before `before` only. Rows written with [`OldDb::execute`] are what that
/// version left behind; [`OldDb::upgrade`] opens it with this one. Removed when
/// dropped.
#[derive(Debug)]
pub struct OldDb {
    url: String,
    cleanup: Cleanup,
}

impl OldDb {
    /// A SQLite file with the migrations numbered below `before`.
    pub async fn sqlite(before: i64) -> OldDb {
        let dir = std::env::temp_dir().join(format!("lorikeet-test-{}", Uuid::new_v4().simple()));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        let url = format!("sqlite://{}", dir.join("lorikeet.db").display());
        let db = OldDb {
            url,
            cleanup: Cleanup::SqliteDir(dir),
        };
        let options =
            match <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&db.url) {
                Ok(o) => o.create_if_missing(true).foreign_keys(true),
                Err(e) => panic!("{}: {e}", db.url),
            };
        let mut c = match sqlx::SqliteConnection::connect_with(&options).await {
            Ok(c) => c,
            Err(e) => panic!("cannot create {}: {e}", db.url),
        };
        if let Err(e) = migrations_before(sqlx::migrate!("../../schemas/sql/sqlite"), before)
            .run(&mut c)
            .await
        {
            panic!("old SQLite schema: {e}");
        }
        let _ = c.close().await;
        db
    }

    /// A Postgres database with the migrations numbered below `before`; `None` as
    /// [`TestDb::postgres`] says.
    pub async fn postgres(before: i64) -> Option<OldDb> {
        let (url, cleanup) = new_postgres().await?;
        let db = OldDb { url, cleanup };
        let mut c = match PgConnection::connect(&db.url).await {
            Ok(c) => c,
            Err(e) => panic!("cannot connect to {}: {e}", db.url),
        };
        if let Err(e) = migrations_before(sqlx::migrate!("../../schemas/sql/postgres"), before)
            .run(&mut c)
            .await
        {
            panic!("old Postgres schema: {e}");
        }
        let _ = c.close().await;
        Some(db)
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs raw SQL on the database.
    pub async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        execute(&self.cleanup, &self.url, sql).await
    }

    /// The first column of every row `sql` returns, as bytes.
    pub async fn raw_bytes(&self, sql: &str) -> Result<Vec<Option<Vec<u8>>>, sqlx::Error> {
        raw_bytes(&self.cleanup, &self.url, sql).await
    }

    /// Opens it with this version (every migration, then the KEK check and the
    /// sealing of plain values), as a server configured with `keyring` does.
    pub async fn upgrade(&self, keyring: Keyring) -> Result<Arc<dyn Storage>, StoreError> {
        open(&self.cleanup, &self.url, keyring).await
    }
}

impl Drop for OldDb {
    fn drop(&mut self) {
        self.cleanup.run();
    }
}

/// `m` with only the migrations numbered below `before`.
fn migrations_before(mut m: sqlx::migrate::Migrator, before: i64) -> sqlx::migrate::Migrator {
    m.migrations = m
        .migrations
        .iter()
        .filter(|x| x.version < before)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    m
}

fn unavailable<T>(url: &str, why: &str, required: bool) -> Option<T> {
    let msg = format!(
        "no Postgres at {} ({why}). Set LORIKEET_TEST_POSTGRES_URL to a server where the user \
         may create databases.",
        crate::redact_url(url)
    );
    if required {
        panic!("LORIKEET_REQUIRE_POSTGRES=1 but {msg}");
    }
    eprintln!("WARNING: skipping the Postgres half of this test: {msg}");
    None
}

/// `url` with its database path replaced by `name` (query string kept).
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.cleanup.run();
    }
}

impl Cleanup {
    fn run(&self) {
        match self {
            Cleanup::SqliteDir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                // Drop runs inside the test's runtime, which cannot block on async work:
                // use a short-lived runtime on another thread.
                let admin_url = admin_url.clone();
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let dropped = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    rt.block_on(async {
                        let mut c = PgConnection::connect(&admin_url)
                            .await
                            .map_err(|e| e.to_string())?;
                        c.execute(sql.as_str()).await.map_err(|e| e.to_string())?;
                        let _ = c.close().await;
                        Ok::<_, String>(())
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("WARNING: could not drop test database {name}: {dropped:?}");
                }
            }
        }
    }
}

/// Defines a module `$name` with two tokio tests, `sqlite` and `postgres`, each
/// calling `$body` (a closure `|db: TestDb| async move { ... }`) with a fresh
/// database of that backend. The Postgres one skips or fails as [`TestDb::postgres`]
/// says.
#[macro_export]
macro_rules! storage_test {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::testing::TestDb::sqlite().await;
                ($body)(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::testing::TestDb::postgres().await else {
                    return;
                };
                ($body)(db).await;
            }
        }
    };
}

#[cfg(test)]
mod unit {
    use super::with_database;

    #[test]
    fn database_is_swapped_in_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
