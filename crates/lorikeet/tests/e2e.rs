//! End to end: a complete server on loopback ports, provisioned over its HTTP API,
//! with a simulated forwarder and device speaking the real Semtech UDP protocol.
//! Runs against SQLite and against the real Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use lorikeet_lorawan::{Aes128Key, Eui64};
use lorikeet_sim::{RxMeta, SimDevice, SimGateway};
use lorikeet_storage::testing::TestDb;
use serde_json::json;
use support::*;

const GATEWAY: u64 = 0x00aa_bbcc_0000_0001;
const DEV_EUI: u64 = 0x0102_0304_0506_0708;

fn rx(sf: u8) -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: sf,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db: 8.5,
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

async fn provision(api: &Api, mac_version: &str) -> SimDevice {
    let app = api
        .post("/api/v1/applications", json!({"name": "e2e"}))
        .await
        .expect_status(201);
    let profile = api
        .post(
            "/api/v1/device-profiles",
            json!({
                "name": "eu868-otaa",
                "region": "EU868",
                "macVersion": mac_version,
                "regParamsRevision": "RP002-1.0.3",
                "supportsOtaa": true,
                "supportsClassC": false,
                "adrEnabled": false,
                "payloadCodec": {"type": "none"}
            }),
        )
        .await
        .expect_status(201);
    let dev_eui = Eui64::from_u64(DEV_EUI);
    api.post(
        "/api/v1/devices",
        json!({
            "devEui": dev_eui.to_string(),
            "joinEui": "70b3d57ed0000000",
            "name": "sensor-1",
            "applicationId": app["id"],
            "deviceProfileId": profile["id"],
        }),
    )
    .await
    .expect_status(201);
    let app_key = Aes128Key::from_bytes([0x2b; 16]);
    let nwk_key = (mac_version == "1.1.0").then(|| Aes128Key::from_bytes([0x3c; 16]));
    let mut keys = json!({"appKey": app_key.expose_hex()});
    if let Some(k) = &nwk_key {
        keys["nwkKey"] = json!(k.expose_hex());
    }
    let status = api
        .put(&format!("/api/v1/devices/{dev_eui}/keys"), keys)
        .await
        .status;
    assert!(status == 200 || status == 204, "keys: {status}");
    api.post(
        "/api/v1/gateways",
        json!({"gatewayId": Eui64::from_u64(GATEWAY).to_string(), "name": "gw-1"}),
    )
    .await
    .expect_status(201);
    SimDevice::otaa(
        dev_eui,
        "70b3d57ed0000000".parse().unwrap(),
        app_key,
        nwk_key,
    )
}

/// Up events of the device as the API lists them, oldest first.
async fn up_events(api: &Api, dev_eui: Eui64) -> Vec<serde_json::Value> {
    let r = api
        .get(&format!("/api/v1/devices/{dev_eui}/events?limit=100"))
        .await
        .expect_status(200);
    let mut ups: Vec<serde_json::Value> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "up")
        .map(|i| i["payload"].clone())
        .collect();
    ups.reverse();
    ups
}

async fn wait_for_ups(api: &Api, dev_eui: Eui64, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..100 {
        let ups = up_events(api, dev_eui).await;
        if ups.len() >= n {
            return ups;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "expected {n} up events, got {:?}",
        up_events(api, dev_eui).await
    );
}

async fn scenario(db: TestDb, mac_version: &str) {
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    let mut dev = provision(&api, mac_version).await;
    let gw = SimGateway::connect(Eui64::from_u64(GATEWAY), server.udp_addr)
        .await
        .unwrap();
    gw.pull_data(Duration::from_secs(2)).await.unwrap();

    // Join: the JoinAccept comes in RX1, 5 s after the JoinRequest, on its channel.
    let up_tmst = gw.push(&dev.join_request(), &rx(7)).await.unwrap();
    let dl = gw
        .recv_downlink(Duration::from_secs(3))
        .await
        .unwrap()
        .expect("a JoinAccept");
    assert_eq!(dl.tmst(), Some(up_tmst.wrapping_add(5_000_000)));
    assert_eq!(dl.packet.frequency_hz, 868_100_000);
    assert!(dl.packet.ipol);
    dev.handle_join_accept(&dl.packet.phy_payload).unwrap();
    gw.tx_ack(dl.token, None).await.unwrap();

    // Uplinks reach the event store, decrypted.
    for i in 0..3u8 {
        let up = dev.uplink(10, &[b'h', b'i', i], false, 5, 0).unwrap();
        gw.push(&up, &rx(7)).await.unwrap();
    }
    let ups = wait_for_ups(&api, dev.dev_eui, 3).await;
    assert_eq!(ups[2]["data"], b64(b"hi\x02"));
    assert_eq!(ups[2]["fCnt"], 2);
    assert_eq!(ups[0]["deviceInfo"]["deviceName"], "sensor-1");
    assert_eq!(
        ups[0]["rxInfo"][0]["gatewayId"],
        Eui64::from_u64(GATEWAY).to_string()
    );
    assert_eq!(ups[0]["txInfo"]["frequency"], 868_100_000);
    assert_eq!(ups[0]["txInfo"]["modulation"]["lora"]["spreadingFactor"], 7);

    // A queued downlink goes out in RX1 of the next uplink, with the right tmst.
    let q = api
        .post(
            &format!("/api/v1/devices/{}/queue", dev.dev_eui),
            json!({"fPort": 42, "data": b64(b"open valve"), "confirmed": false}),
        )
        .await
        .expect_status(201);
    assert!(q["id"].is_string());
    // Give the change a moment to reach the network server's cache.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let up = dev.uplink(10, b"x", false, 5, 0).unwrap();
    let up_tmst = gw.push(&up, &rx(7)).await.unwrap();
    let dl = gw
        .recv_downlink(Duration::from_secs(2))
        .await
        .unwrap()
        .expect("the queued downlink");
    assert_eq!(dl.tmst(), Some(up_tmst.wrapping_add(1_000_000)));
    let frame = dev.handle_downlink(&dl.packet.phy_payload).unwrap();
    assert_eq!(frame.f_port, Some(42));
    assert_eq!(frame.frm_payload, b"open valve");
    gw.tx_ack(dl.token, None).await.unwrap();

    // TOO_LATE for RX1: the same frame comes again for RX2, one second later, on
    // 869.525 MHz SF12.
    api.post(
        &format!("/api/v1/devices/{}/queue", dev.dev_eui),
        json!({"fPort": 43, "data": b64(b"late"), "confirmed": false}),
    )
    .await
    .expect_status(201);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let up = dev.uplink(10, b"y", false, 5, 0).unwrap();
    let up_tmst = gw.push(&up, &rx(7)).await.unwrap();
    let rx1 = gw
        .recv_downlink(Duration::from_secs(2))
        .await
        .unwrap()
        .expect("RX1");
    gw.tx_ack(rx1.token, Some("TOO_LATE")).await.unwrap();
    let rx2 = gw
        .recv_downlink(Duration::from_secs(2))
        .await
        .unwrap()
        .expect("RX2");
    assert_eq!(rx2.tmst(), Some(up_tmst.wrapping_add(2_000_000)));
    assert_eq!(rx2.packet.frequency_hz, 869_525_000);
    assert_eq!(
        lorikeet_sim::gateway::lora_params(&rx2.packet.modulation),
        Some((12, 125_000))
    );
    assert_eq!(rx2.packet.phy_payload, rx1.packet.phy_payload);
    assert_eq!(
        dev.handle_downlink(&rx2.packet.phy_payload)
            .unwrap()
            .frm_payload,
        b"late"
    );
    gw.tx_ack(rx2.token, None).await.unwrap();
    wait_for_ups(&api, dev.dev_eui, 5).await;

    // Keep an accepted frame to replay after the restart.
    let replay = {
        let mut copy = dev.clone();
        copy.session.as_mut().unwrap().f_cnt_up -= 1;
        copy.uplink(10, b"y", false, 5, 0).unwrap()
    };

    // Restart on the same database: sessions survive, replays are still refused.
    let url = db.url().to_owned();
    server.shutdown().await;
    let server = start_server(&url).await;
    let api = Api::new(&server);
    let gw = SimGateway::connect(Eui64::from_u64(GATEWAY), server.udp_addr)
        .await
        .unwrap();
    gw.pull_data(Duration::from_secs(2)).await.unwrap();
    gw.push(&replay, &rx(7)).await.unwrap();
    let up = dev.uplink(10, b"after restart", false, 5, 0).unwrap();
    gw.push(&up, &rx(7)).await.unwrap();
    let ups = wait_for_ups(&api, dev.dev_eui, 6).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let ups_now = up_events(&api, dev.dev_eui).await;
    assert_eq!(ups_now.len(), 6, "the replay was not delivered");
    assert_eq!(ups[5]["data"], b64(b"after restart"));
    assert_eq!(ups[5]["fCnt"], 5);
    // The downlink counter continued too: a new downlink opens on the device.
    api.post(
        &format!("/api/v1/devices/{}/queue", dev.dev_eui),
        json!({"fPort": 44, "data": b64(b"again"), "confirmed": false}),
    )
    .await
    .expect_status(201);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let up = dev.uplink(10, b"z", false, 5, 0).unwrap();
    gw.push(&up, &rx(7)).await.unwrap();
    let dl = gw
        .recv_downlink(Duration::from_secs(2))
        .await
        .unwrap()
        .expect("downlink");
    assert_eq!(
        dev.handle_downlink(&dl.packet.phy_payload)
            .unwrap()
            .frm_payload,
        b"again"
    );
    gw.tx_ack(dl.token, None).await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otaa_1_0_3_sqlite() {
    scenario(TestDb::sqlite().await, "1.0.3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otaa_1_0_3_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    scenario(db, "1.0.3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otaa_1_1_sqlite() {
    scenario(TestDb::sqlite().await, "1.1.0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otaa_1_1_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    scenario(db, "1.1.0").await;
}

/// Start-up against a Postgres that is not there fails at once, and the message the
/// binary prints (`{:#}` of the error chain) names the database and says why, once.
#[tokio::test]
async fn an_unreachable_postgres_fails_start_up_at_once_with_one_clear_message() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = lorikeet::Config::default();
    config.database.url = format!("postgres://lk:hunter2@127.0.0.1:{port}/x");
    let started = std::time::Instant::now();
    let err = match lorikeet::start(config, None).await {
        Ok(_) => panic!("started without a database"),
        Err(e) => e,
    };
    let text = format!("{err:#}");
    assert!(started.elapsed() < Duration::from_secs(3), "{text}");
    assert!(
        text.contains(&format!("postgres://lk:***@127.0.0.1:{port}/x")),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(
        text.to_lowercase().matches("connection refused").count(),
        1,
        "{text}"
    );
    assert!(!text.contains("timed out"), "{text}");
}
