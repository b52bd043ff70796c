//! Opening a Postgres database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::store::{Pools, Store};
use crate::StoreError;

/// How long the first connection may take before `connect` gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `url` (`postgres://…`) and applies the migrations. One pool of 16
/// connections serves reads and writes; the outbox claim locks rows with
/// `SKIP LOCKED`, so several workers can claim side by side.
///
/// One connection is tried on its own first, so that an unreachable server or a
/// refused login fails at once with its reason ([`StoreError::Connect`]) instead of
/// the pool retrying until its acquire timeout and reporting only that it timed out.
pub(crate) async fn connect(url: &str) -> Result<Store, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl {
        url: crate::redact_url(url),
        reason: e.to_string(),
    })?;
    probe(&options).await?;
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
    crate::entities::events_init(&store).await?;
    Ok(store)
}

/// Opens and closes one connection, turning a failure into [`StoreError::Connect`].
async fn probe(options: &PgConnectOptions) -> Result<(), StoreError> {
    let failed = |reason: String| StoreError::Connect {
        target: target(options),
        reason,
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => {
            // Closing politely is a courtesy; the pool opens its own connections.
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(failed(reason(&e))),
        Err(_) => Err(failed(format!(
            "no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// `host:port` (`[v6]:port`) or the Unix socket the options point at.
fn target(options: &PgConnectOptions) -> String {
    if let Some(socket) = options.get_socket() {
        return socket.display().to_string();
    }
    let host = options.get_host();
    if host.contains(':') {
        format!("[{host}]:{}", options.get_port())
    } else {
        format!("{host}:{}", options.get_port())
    }
}

/// The cause alone, without sqlx's "error returned from database:" framing.
fn reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

/// Applies the Postgres migrations (`schemas/sql/postgres`).
pub(crate) async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::migrate!("../../schemas/sql/postgres")
        .run(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// A loopback port with nothing listening (bound, then released).
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        drop(listener);
        port
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_at_once_naming_host_and_cause() {
        let port = closed_port();
        let started = Instant::now();
        let err = crate::connect(
            &format!("postgres://lk:hunter2@127.0.0.1:{port}/x"),
            crate::testing::test_keyring(),
        )
        .await
        .expect_err("nothing listens there");
        let took = started.elapsed();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
        assert!(
            text.contains(&format!("127.0.0.1:{port}")),
            "names host and port: {text}"
        );
        assert!(
            text.to_lowercase().contains("connection refused"),
            "says why: {text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert!(std::error::Error::source(&err).is_none(), "cause said once");
        // Before, the pool retried for its 10 s acquire timeout.
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }

    #[tokio::test]
    async fn a_refused_login_says_why_once() {
        let admin = std::env::var("LORIKEET_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| crate::testing::DEFAULT_TEST_POSTGRES_URL.to_string());
        let required = std::env::var("LORIKEET_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        let url = crate::testing::with_database(&admin, "lorikeet_no_such_database");
        let err = crate::connect(&url, crate::testing::test_keyring())
            .await
            .expect_err("no such database");
        let text = err.to_string();
        if !required && text.to_lowercase().contains("connection refused") {
            eprintln!(
                "WARNING: no Postgres at {}; skipped",
                crate::redact_url(&admin)
            );
            return;
        }
        assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
        let cause = "\"lorikeet_no_such_database\" does not exist";
        assert_eq!(text.matches(cause).count(), 1, "{text}");
    }
}
