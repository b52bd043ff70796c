//! Bulk import end to end, over the real Semtech UDP protocol: every imported device
//! is live when the import answers. 1,000 ABP devices are imported in one request
//! and, right after the 200, one uplink each from the first, the last and 20 random
//! ones must be accepted (their `up` events appear) without a retry. Then 10,000
//! devices are imported and the time it takes is printed.
//!
//! Runs against SQLite and the real Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lorikeet_app::EventType;
use lorikeet_lorawan::crypto::SessionKeys;
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use lorikeet_sim::{RxMeta, SimDevice, SimGateway};
use lorikeet_storage::testing::TestDb;
use rand::seq::index::sample;
use serde_json::{json, Value};
use support::*;

const GATEWAY: u64 = 0x00aa_bbcc_0000_0018;

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db: 8.5,
    }
}

/// Device `n` of an import: its DevEUI, DevAddr and session keys.
fn abp(n: u32) -> (Eui64, DevAddr, SessionKeys) {
    let b = n.to_be_bytes();
    let keys = SessionKeys::from_1_0(
        Aes128Key::from_bytes([b[2], b[3], 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        Aes128Key::from_bytes([b[2], b[3], 0x22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
    );
    (
        Eui64::from_u64(0x0018_0000_0000_0000 | u64::from(n)),
        DevAddr::from_u32(0x0180_0000 | n),
        keys,
    )
}

fn rows(range: std::ops::Range<u32>, app: &str, profile: &str) -> Value {
    let rows: Vec<Value> = range
        .map(|n| {
            let (dev_eui, dev_addr, keys) = abp(n);
            json!({
                "devEui": dev_eui.to_string(),
                "joinEui": "0000000000000000",
                "name": format!("meter {n}"),
                "applicationId": app,
                "deviceProfileId": profile,
                "activation": {
                    "devAddr": dev_addr.to_string(),
                    "appSKey": keys.app_s_key.expose_hex(),
                    "nwkSKey": keys.f_nwk_s_int_key.expose_hex(),
                },
            })
        })
        .collect();
    json!({ "devices": rows })
}

/// Imports `range`, checks the counts, and returns how long the request took.
async fn import(api: &Api, range: std::ops::Range<u32>, app: &str, profile: &str) -> Duration {
    let n = range.len();
    let body = rows(range, app, profile);
    let t = Instant::now();
    let v = api
        .post("/api/v1/devices/import", body)
        .await
        .expect_status(200);
    let took = t.elapsed();
    assert_eq!(v, json!({"created": n, "updated": 0}));
    took
}

/// One uplink from each of `devices`, all pushed at once; every one must come out as
/// an `up` event (nothing is sent twice).
async fn one_uplink_each(server: &lorikeet::Server, gw: &SimGateway, devices: &[u32]) {
    let mut live = server.live.subscribe();
    let mut waiting = BTreeSet::new();
    for &n in devices {
        let (dev_eui, dev_addr, keys) = abp(n);
        let mut dev = SimDevice::abp(dev_eui, dev_addr, keys, false, 0);
        gw.push(
            &dev.uplink(1, &n.to_be_bytes(), false, 5, 0).unwrap(),
            &rx(),
        )
        .await
        .unwrap();
        waiting.insert(dev_eui);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !waiting.is_empty() {
        let e = tokio::time::timeout_at(deadline, live.recv())
            .await
            .unwrap_or_else(|_| panic!("no up event from {waiting:?}"))
            .unwrap();
        if e.kind == EventType::Up {
            waiting.remove(&e.dev_eui);
        }
    }
}

async fn scenario(db: TestDb) {
    let backend = db.storage.backend().as_str();
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    let app = api
        .post("/api/v1/applications", json!({"name": "fleet"}))
        .await
        .expect_status(201);
    let app = app["id"].as_str().unwrap().to_owned();
    let profile = api
        .post(
            "/api/v1/device-profiles",
            json!({
                "name": "abp",
                "region": "EU868",
                "macVersion": "1.0.3",
                "regParamsRevision": "RP002-1.0.3",
                "supportsOtaa": false,
                "adrEnabled": false,
                "payloadCodec": {"type": "none"}
            }),
        )
        .await
        .expect_status(201);
    let profile = profile["id"].as_str().unwrap().to_owned();
    api.post(
        "/api/v1/gateways",
        json!({"gatewayId": Eui64::from_u64(GATEWAY).to_string(), "name": "gw"}),
    )
    .await
    .expect_status(201);
    let gw = SimGateway::connect(Eui64::from_u64(GATEWAY), server.udp_addr)
        .await
        .unwrap();
    gw.pull_data(Duration::from_secs(2))
        .await
        .expect("the gateway is live after its 201");

    let took = import(&api, 0..1_000, &app, &profile).await;
    eprintln!("{backend}: 1,000 ABP devices imported in {took:?}");
    let mut sampled: Vec<u32> = sample(&mut rand::thread_rng(), 998, 20)
        .into_iter()
        .map(|i| i as u32 + 1)
        .collect();
    sampled.extend([0, 999]);
    one_uplink_each(&server, &gw, &sampled).await;

    let took = import(&api, 1_000..11_000, &app, &profile).await;
    eprintln!("{backend}: 10,000 ABP devices imported (stored and live) in {took:?}");
    one_uplink_each(&server, &gw, &[1_000, 6_000, 10_999]).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_devices_are_live_at_once_sqlite() {
    scenario(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_devices_are_live_at_once_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    scenario(db).await;
}
