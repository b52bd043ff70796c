//! Commit before send, end to end: while the database cannot commit (another
//! connection holds a lock), a JoinAccept and the live join event do not leave the
//! process; once the lock goes they do, and what they depend on is in the database.
//!
//! Runs against SQLite and the real Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use lorikeet_lorawan::Eui64;
use lorikeet_sim::{RxMeta, SimGateway};
use lorikeet_storage::testing::TestDb;
use sqlx::Connection as _;
use support::*;

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db: 8.5,
    }
}

/// A write lock held by another connection until dropped or released.
enum Lock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Lock {
    async fn take(url: &str) -> Lock {
        if url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            // The database's one writer lock: the server's commits wait (busy) behind it.
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut c)
                .await
                .unwrap();
            Lock::Sqlite(c)
        } else {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut c).await.unwrap();
            sqlx::query("LOCK TABLE device_sessions, events IN ACCESS EXCLUSIVE MODE")
                .execute(&mut c)
                .await
                .unwrap();
            Lock::Postgres(c)
        }
    }

    async fn release(self) {
        match self {
            Lock::Sqlite(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
            Lock::Postgres(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
        }
    }
}

async fn nothing_leaves_before_its_commit(db: TestDb) {
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    let dev_eui = Eui64::from_u64(0x00d0_0000_0000_0001);
    let gateway = Eui64::from_u64(0x00d0_0000_0000_00aa);
    let (mut dev, _app) = provision_otaa(
        &api,
        dev_eui,
        gateway,
        "1.1.0",
        serde_json::json!({"type": "none"}),
    )
    .await;
    let gw = SimGateway::connect(gateway, server.udp_addr).await.unwrap();
    gw.pull_data(Duration::from_secs(2))
        .await
        .expect("PULL_ACK");
    let mut live = server.live.subscribe();

    let lock = Lock::take(db.url()).await;
    gw.push(&dev.join_request(), &rx()).await.unwrap();
    // A fixed window, to show that something does not happen: the join is processed
    // (dedup window 200 ms) but its JoinAccept and event wait for the commit.
    let early = gw.recv_downlink(Duration::from_millis(1500)).await.unwrap();
    assert!(
        early.is_none(),
        "a JoinAccept left before its session and JoinNonce were committed"
    );
    assert!(
        live.try_recv().is_err(),
        "a live event left before its row was committed"
    );

    lock.release().await;
    let dl = gw
        .recv_downlink(Duration::from_secs(10))
        .await
        .unwrap()
        .expect("the JoinAccept once the commit went through");
    dev.handle_join_accept(&dl.packet.phy_payload).unwrap();
    gw.tx_ack(dl.token, None).await.unwrap();
    let published = tokio::time::timeout(Duration::from_secs(10), live.recv())
        .await
        .expect("the join event once its row is committed")
        .unwrap();
    assert_eq!(published.dev_eui, dev_eui);
    // What left is in the database: the session with the JoinAccept's address.
    let session = api
        .get(&format!("/api/v1/devices/{dev_eui}/activation"))
        .await
        .expect_status(200);
    assert_eq!(
        session["devAddr"].as_str().unwrap(),
        dev.dev_addr().unwrap().to_string(),
        "{session}"
    );
    assert_eq!(events_of(&api, dev_eui, "join").await.len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn nothing_leaves_before_its_commit_sqlite() {
    nothing_leaves_before_its_commit(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn nothing_leaves_before_its_commit_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    nothing_leaves_before_its_commit(db).await;
}
