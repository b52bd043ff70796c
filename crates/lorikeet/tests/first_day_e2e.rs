//! End to end, over the real Semtech UDP protocol: what a first-day trial found.
//! - ABP devices get RX2 and Class C downlinks on the region's RX2 frequency (it was 0 Hz).
//! - The first JoinAccept of a device carries JoinNonce 1, and JoinNonces only grow,
//!   also across restarts of the server.
//!
//! Runs against SQLite and the real Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use lorikeet_lorawan::crypto::{self, JoinContext, JoinType, SessionKeys};
use lorikeet_lorawan::{Aes128Key, DevAddr, DevNonce, Eui64, PhyPayload};
use lorikeet_sim::{RxMeta, SimDevice, SimGateway};
use lorikeet_storage::testing::TestDb;
use serde_json::json;
use support::*;

const GATEWAY: u64 = 0x00aa_bbcc_0000_0016;

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db: 8.5,
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

async fn profile(api: &Api, name: &str, otaa: bool, class_c: bool, mac_version: &str) -> String {
    let p = api
        .post(
            "/api/v1/device-profiles",
            json!({
                "name": name,
                "region": "EU868",
                "macVersion": mac_version,
                "regParamsRevision": "RP002-1.0.3",
                "supportsOtaa": otaa,
                "supportsClassC": class_c,
                "adrEnabled": false,
                "payloadCodec": {"type": "none"}
            }),
        )
        .await
        .expect_status(201);
    p["id"].as_str().unwrap().to_owned()
}

async fn gateway(api: &Api, server: &lorikeet::Server) -> SimGateway {
    api.post(
        "/api/v1/gateways",
        json!({"gatewayId": Eui64::from_u64(GATEWAY).to_string(), "name": "gw"}),
    )
    .await
    .expect_status(201);
    let gw = SimGateway::connect(Eui64::from_u64(GATEWAY), server.udp_addr)
        .await
        .unwrap();
    // The registry follows the API asynchronously: retry until the PULL_DATA is acked.
    for _ in 0..50 {
        if gw.pull_data(Duration::from_millis(100)).await.is_ok() {
            return gw;
        }
    }
    panic!("the gateway's PULL_DATA was never acknowledged");
}

/// Creates an ABP device through the API (1.0.3) and returns it as the field has it.
async fn abp_device(api: &Api, app: &str, profile: &str, n: u64) -> SimDevice {
    let dev_eui = Eui64::from_u64(0x0016_0000_0000_0000 | n);
    api.post(
        "/api/v1/devices",
        json!({
            "devEui": dev_eui.to_string(),
            "joinEui": "0000000000000000",
            "name": format!("abp-{n}"),
            "applicationId": app,
            "deviceProfileId": profile,
        }),
    )
    .await
    .expect_status(201);
    let dev_addr = DevAddr::from_u32(0x0016_0000 | n as u32);
    let keys = SessionKeys::from_1_0(
        Aes128Key::from_bytes([n as u8; 16]),
        Aes128Key::from_bytes([0x40 | n as u8; 16]),
    );
    let activation = api
        .post(
            &format!("/api/v1/devices/{dev_eui}/activate"),
            json!({
                "devAddr": dev_addr.to_string(),
                "appSKey": keys.app_s_key.expose_hex(),
                "nwkSKey": keys.f_nwk_s_int_key.expose_hex(),
            }),
        )
        .await
        .expect_status(200);
    // Every receive-window parameter is filled from the profile's region.
    assert_eq!(activation["rx2FrequencyHz"], 869_525_000, "{activation}");
    assert_eq!(activation["rx2Dr"], 0);
    assert_eq!(activation["rx1Delay"], 1);
    let got = api
        .get(&format!("/api/v1/devices/{dev_eui}/activation"))
        .await
        .expect_status(200);
    assert_eq!(got["rx2FrequencyHz"], 869_525_000);
    SimDevice::abp(dev_eui, dev_addr, keys, false, 0)
}

async fn enqueue(api: &Api, dev_eui: Eui64, data: &[u8]) {
    api.post(
        &format!("/api/v1/devices/{dev_eui}/queue"),
        json!({"fPort": 9, "data": b64(data)}),
    )
    .await
    .expect_status(201);
}

async fn abp_rx2_and_class_c(db: TestDb) {
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    let app = api
        .post("/api/v1/applications", json!({"name": "abp"}))
        .await
        .expect_status(201);
    let app = app["id"].as_str().unwrap().to_owned();
    let class_a = profile(&api, "abp-a", false, false, "1.0.3").await;
    let class_c = profile(&api, "abp-c", false, true, "1.0.3").await;
    let gw = gateway(&api, &server).await;

    // Class A: RX1 refused with TOO_LATE, the retry in RX2 is on 869.525 MHz SF12.
    let mut dev = abp_device(&api, &app, &class_a, 1).await;
    enqueue(&api, dev.dev_eui, b"rx2").await;
    let mut rx2 = None;
    // The queue reaches the network server asynchronously: uplink until it answers.
    for _ in 0..20 {
        let up = dev.uplink(1, b"u", false, 5, 0).unwrap();
        let up_tmst = gw.push(&up, &rx()).await.unwrap();
        let Some(rx1) = gw.recv_downlink(Duration::from_millis(500)).await.unwrap() else {
            continue;
        };
        assert_eq!(rx1.packet.frequency_hz, 868_100_000);
        gw.tx_ack(rx1.token, Some("TOO_LATE")).await.unwrap();
        let dl = gw
            .recv_downlink(Duration::from_secs(2))
            .await
            .unwrap()
            .expect("the RX2 retry");
        assert_eq!(dl.tmst(), Some(up_tmst.wrapping_add(2_000_000)));
        rx2 = Some(dl);
        break;
    }
    let rx2 = rx2.expect("a downlink for the ABP device");
    assert_eq!(rx2.packet.frequency_hz, 869_525_000, "RX2 frequency");
    assert!(
        matches!(
            rx2.packet.modulation,
            lorikeet_gateway::Modulation::Lora {
                spreading_factor: 12,
                bandwidth_hz: 125_000,
                ..
            }
        ),
        "RX2 data rate: {:?}",
        rx2.packet.modulation
    );
    let frame = dev.handle_downlink(&rx2.packet.phy_payload).unwrap();
    assert_eq!(frame.frm_payload, b"rx2");
    gw.tx_ack(rx2.token, None).await.unwrap();

    // Class C: after its first uplink the device listens on RX2 all the time; a queued
    // downlink goes out at once, on the RX2 frequency.
    let mut dev = abp_device(&api, &app, &class_c, 2).await;
    let mut heard = false;
    for _ in 0..20 {
        let up = dev.uplink(1, b"c", false, 5, 0).unwrap();
        gw.push(&up, &rx()).await.unwrap();
        let ups = events_of(&api, dev.dev_eui, "up").await;
        if !ups.is_empty() {
            heard = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(heard, "the Class C device's uplink was accepted");
    // Its uplinks may have drawn Class A answers (none queued, nothing expected): drain.
    while let Some(dl) = gw.recv_downlink(Duration::from_millis(300)).await.unwrap() {
        gw.tx_ack(dl.token, None).await.unwrap();
    }
    enqueue(&api, dev.dev_eui, b"class c").await;
    let dl = gw
        .recv_downlink(Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the Class C downlink");
    assert_eq!(dl.packet.frequency_hz, 869_525_000, "Class C frequency");
    let frame = dev.handle_downlink(&dl.packet.phy_payload).unwrap();
    assert_eq!(frame.frm_payload, b"class c");
    gw.tx_ack(dl.token, None).await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn abp_rx2_and_class_c_sqlite() {
    abp_rx2_and_class_c(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn abp_rx2_and_class_c_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    abp_rx2_and_class_c(db).await;
}

/// The JoinNonce inside a JoinAccept, as the device decrypts it.
fn join_nonce_of(dev: &SimDevice, phy: &[u8]) -> u32 {
    let phy = PhyPayload::decode(phy).unwrap();
    let ctx = JoinContext {
        join_type: JoinType::Join,
        join_eui: dev.join_eui,
        dev_eui: dev.dev_eui,
        dev_nonce: DevNonce(dev.dev_nonce),
    };
    let key = dev.nwk_key.clone().unwrap_or_else(|| dev.app_key.clone());
    crypto::open_join_accept(&phy, &ctx, &key)
        .unwrap()
        .join_nonce
        .get()
}

async fn join_nonces_grow_across_restarts(db: TestDb) {
    let dev_eui = Eui64::from_u64(0x0016_1111_0000_0001);
    let mut nonces = Vec::new();
    let mut dev = None;
    for round in 0..3 {
        let server = start_server(db.url()).await;
        let api = Api::new(&server);
        if round == 0 {
            let (d, _) = provision_otaa(
                &api,
                dev_eui,
                Eui64::from_u64(GATEWAY),
                "1.1.0",
                json!({"type": "none"}),
            )
            .await;
            dev = Some(d);
        }
        let dev = dev.as_mut().unwrap();
        let gw = SimGateway::connect(Eui64::from_u64(GATEWAY), server.udp_addr)
            .await
            .unwrap();
        let mut accepted = None;
        for _ in 0..50 {
            if gw.pull_data(Duration::from_millis(100)).await.is_err() {
                continue;
            }
            gw.push(&dev.join_request(), &rx()).await.unwrap();
            if let Some(dl) = gw.recv_downlink(Duration::from_secs(1)).await.unwrap() {
                accepted = Some(dl);
                break;
            }
        }
        let dl = accepted.expect("a JoinAccept");
        nonces.push(join_nonce_of(dev, &dl.packet.phy_payload));
        dev.handle_join_accept(&dl.packet.phy_payload).unwrap();
        gw.tx_ack(dl.token, None).await.unwrap();
        wait_events(&api, dev_eui, "join", round + 1).await;
        server.shutdown().await;
    }
    assert_eq!(nonces, vec![1, 2, 3], "JoinNonces start at 1 and only grow");
}

#[tokio::test]
async fn join_nonces_grow_across_restarts_sqlite() {
    join_nonces_grow_across_restarts(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn join_nonces_grow_across_restarts_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    join_nonces_grow_across_restarts(db).await;
}

/// A forwarder's `stat` report with a GPS fix, as a PUSH_DATA datagram.
async fn send_stat(gw_id: Eui64, server: std::net::SocketAddr, latitude: f64, longitude: f64) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let json = json!({"stat": {
        "time": "2026-12-06 12:00:00 GMT", "lati": latitude, "long": longitude, "alti": 40,
        "rxnb": 1, "rxok": 1, "rxfw": 1, "ackr": 100.0, "dwnb": 0, "txnb": 0
    }});
    let mut d = vec![2, 0x12, 0x34, 0x00];
    d.extend_from_slice(&gw_id.0);
    d.extend_from_slice(json.to_string().as_bytes());
    sock.send_to(&d, server).await.unwrap();
}

async fn gateway_location_source(db: TestDb) {
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    let gw_id = Eui64::from_u64(GATEWAY);
    let (mut dev, _) = provision_otaa(
        &api,
        Eui64::from_u64(0x0016_2222_0000_0001),
        gw_id,
        "1.0.3",
        json!({"type": "none"}),
    )
    .await;
    // The gateway exists now: give it a provisioned location.
    api.put(
        &format!("/api/v1/gateways/{gw_id}"),
        json!({"name": "roof", "location": {"latitude": 52.5, "longitude": 4.5, "altitude": 10}}),
    )
    .await
    .expect_status(200);
    let gw = SimGateway::connect(gw_id, server.udp_addr).await.unwrap();
    let mut joined = false;
    for _ in 0..50 {
        if gw.pull_data(Duration::from_millis(100)).await.is_err() {
            continue;
        }
        gw.push(&dev.join_request(), &rx()).await.unwrap();
        if let Some(dl) = gw.recv_downlink(Duration::from_secs(1)).await.unwrap() {
            dev.handle_join_accept(&dl.packet.phy_payload).unwrap();
            gw.tx_ack(dl.token, None).await.unwrap();
            joined = true;
            break;
        }
    }
    assert!(joined, "the device joined");
    // Uplinks until one is delivered with `latitude` as the gateway's location.
    let mut uplink_at = |latitude: f64, stat: Option<f64>| {
        let gw = &gw;
        let api = &api;
        let up = dev.uplink(1, b"loc", false, 5, 0).unwrap();
        async move {
            if let Some(lat) = stat {
                send_stat(gw_id, server.udp_addr, lat, 11.0).await;
            }
            gw.push(&up, &rx()).await.unwrap();
            for _ in 0..40 {
                let ups = events_of(api, Eui64::from_u64(0x0016_2222_0000_0001), "up").await;
                if let Some(last) = ups.last() {
                    if last["rxInfo"][0]["location"]["latitude"] == json!(latitude) {
                        return true;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }
    };
    assert!(uplink_at(52.5, None).await, "the provisioned location");
    // A GPS fix from the forwarder does not move a provisioned gateway.
    assert!(
        uplink_at(52.5, Some(48.0)).await,
        "still the provisioned location"
    );
    let g = api
        .get(&format!("/api/v1/gateways/{gw_id}"))
        .await
        .expect_status(200);
    assert_eq!(g["location"]["latitude"], 52.5);
    // Handed over to the forwarder: its next fix is the location.
    api.put(
        &format!("/api/v1/gateways/{gw_id}"),
        json!({"name": "roof", "location": {"latitude": 52.5, "longitude": 4.5}, "locationSource": "reported"}),
    )
    .await
    .expect_status(200);
    let mut moved = false;
    for _ in 0..10 {
        if uplink_at(48.0, Some(48.0)).await {
            moved = true;
            break;
        }
    }
    assert!(moved, "the reported location reaches the events");
    let mut stored = false;
    for _ in 0..50 {
        let g = api
            .get(&format!("/api/v1/gateways/{gw_id}"))
            .await
            .expect_status(200);
        if g["location"]["latitude"] == json!(48.0) {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stored, "the reported location is stored");
    server.shutdown().await;
}

#[tokio::test]
async fn gateway_location_source_sqlite() {
    gateway_location_source(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn gateway_location_source_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    gateway_location_source(db).await;
}
