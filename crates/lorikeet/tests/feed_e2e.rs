//! Read your writes, end to end: an API write answers only once the live state has
//! applied it, so a gateway's first PULL_DATA right after its 201 is acknowledged and
//! a device's first uplink right after its activation is accepted — no retry, on
//! SQLite and Postgres. Changes are made one after another, as fast as the API
//! answers, the way a provisioning script does; a change made directly in the
//! database by another writer reaches the live state through the feed too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use lorikeet_lorawan::crypto::SessionKeys;
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use lorikeet_sim::{RxMeta, SimDevice, SimGateway};
use lorikeet_storage::testing::TestDb;
use serde_json::json;
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

const ROUNDS: u64 = 15;

async fn writes_are_live_when_answered(db: TestDb) {
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    let app = api
        .post("/api/v1/applications", json!({"name": "ryw"}))
        .await
        .expect_status(201);
    let profile = api
        .post(
            "/api/v1/device-profiles",
            json!({
                "name": "abp", "region": "EU868", "macVersion": "1.0.3",
                "regParamsRevision": "RP002-1.0.3", "supportsOtaa": false,
                "supportsClassC": false, "adrEnabled": false
            }),
        )
        .await
        .expect_status(201);
    for i in 0..ROUNDS {
        // A gateway: its first PULL_DATA right after the 201 is acknowledged.
        let gw_id = Eui64::from_u64(0x00ee_0000_0000_0000 | i);
        api.post(
            "/api/v1/gateways",
            json!({"gatewayId": gw_id.to_string(), "name": format!("gw-{i}")}),
        )
        .await
        .expect_status(201);
        let gw = SimGateway::connect(gw_id, server.udp_addr).await.unwrap();
        gw.pull_data(Duration::from_secs(2))
            .await
            .unwrap_or_else(|e| panic!("round {i}: the new gateway's first PULL_DATA: {e}"));

        // A device activated by ABP: its first uplink right after the answer is accepted.
        let dev_eui = Eui64::from_u64(0x00ee_1000_0000_0000 | i);
        api.post(
            "/api/v1/devices",
            json!({
                "devEui": dev_eui.to_string(), "joinEui": "0000000000000000",
                "name": format!("d-{i}"), "applicationId": app["id"],
                "deviceProfileId": profile["id"],
            }),
        )
        .await
        .expect_status(201);
        let dev_addr = DevAddr::from_u32(0x00ee_0000 | i as u32);
        let keys = SessionKeys::from_1_0(
            Aes128Key::from_bytes([i as u8; 16]),
            Aes128Key::from_bytes([0x80 | i as u8; 16]),
        );
        api.post(
            &format!("/api/v1/devices/{dev_eui}/activate"),
            json!({
                "devAddr": dev_addr.to_string(),
                "appSKey": keys.app_s_key.expose_hex(),
                "nwkSKey": keys.f_nwk_s_int_key.expose_hex(),
            }),
        )
        .await
        .expect_status(200);
        let mut dev = SimDevice::abp(dev_eui, dev_addr, keys, false, 0);
        // Sent once: had it been dropped as unknown, no event would ever come.
        let up = dev.uplink(1, &[i as u8], false, 5, 0).unwrap();
        gw.push(&up, &rx()).await.unwrap();
        let ups = wait_events(&api, dev_eui, "up", 1).await;
        assert_eq!(ups[0]["fCnt"], 0, "round {i}");

        // Removed: the next datagram is refused right after the 204.
        api.delete(&format!("/api/v1/gateways/{gw_id}"))
            .await
            .expect_status(204);
        assert!(
            gw.pull_data(Duration::from_millis(300)).await.is_err(),
            "round {i}: a deleted gateway is not acknowledged"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_live_when_answered_sqlite() {
    writes_are_live_when_answered(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_live_when_answered_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    writes_are_live_when_answered(db).await;
}

/// Another writer (another instance sharing the database, a migration script) changes
/// provisioning without this process being told: the follower finds it on the feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_by_another_writer_reaches_the_live_state() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let server = start_server(db.url()).await;
    // A second store on the same database: its writes do not signal this server.
    let other = lorikeet_storage::connect(db.url(), lorikeet_storage::testing::test_keyring())
        .await
        .unwrap();
    let gw_id = Eui64::from_u64(0x00ee_2000_0000_0001);
    let now = lorikeet_storage::now();
    other
        .create_gateway(&lorikeet_storage::Gateway {
            gateway_id: gw_id,
            tenant_id: lorikeet_storage::DEFAULT_TENANT_ID,
            name: "from elsewhere".into(),
            description: String::new(),
            location: None,
            location_source: lorikeet_storage::LocationSource::Reported,
            last_seen_at: None,
            stats: None,
            private: false,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    let gw = SimGateway::connect(gw_id, server.udp_addr).await.unwrap();
    let mut acked = false;
    for _ in 0..30 {
        if gw.pull_data(Duration::from_millis(100)).await.is_ok() {
            acked = true;
            break;
        }
    }
    assert!(acked, "the gateway created by another writer becomes known");
    other.close().await;
    server.shutdown().await;
}
