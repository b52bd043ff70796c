//! Bulk provisioning on Postgres while uplinks flow: every device is live as soon as
//! the API says it is provisioned.
//!
//! The real `lorikeet serve` on a fresh Postgres database, 20 ABP devices sending
//! 20 uplinks/s through one fake Semtech UDP gateway the whole time, and:
//! 1. 10,000 ABP devices provisioned one by one by 8 parallel clients
//!    (`POST /devices`, then `POST /devices/{devEui}/activate`); right after each
//!    activation's answer, one uplink of that device goes out through the client's
//!    own gateway. Every one of them must be accepted (its `up` reaches the webhook): an
//!    uplink that arrives before the device is live is dropped as `unknown_device`
//!    and never comes back.
//! 2. 10,000 more in one `POST /devices/import`; right after its answer, uplinks of
//!    the first, the last and 500 random imported devices go out at once, and each
//!    must be accepted.
//!
//! `lorikeet_uplinks_dropped_total{reason="unknown_device"}` must stay 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use lorikeet_storage::testing::TEST_KEK_HEX;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lorikeet_lorawan::crypto::SessionKeys;
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use lorikeet_sim::{RxMeta, SimDevice, SimGateway};
use lorikeet_storage::testing::TestDb;
use rand::seq::index::sample;
use serde_json::{json, Value};
use support::binary;
use support::metrics;
use support::webhook::{Delivery, Receiver};
use support::*;
use tokio::sync::watch;

const BACKGROUND_GW: u64 = 0x00aa_bbcc_0000_0b00;
/// Probe gateway `c` (one per client: a gateway may send 100 datagrams/s by default).
const PROBE_GW: u64 = 0x00aa_bbcc_0000_0b10;
const BACKGROUND: u32 = 20;
const ONE_BY_ONE: u32 = 10_000;
const IMPORTED: u32 = 10_000;
const CLIENTS: u32 = 8;

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db: 8.5,
    }
}

/// Device `n`: DevEUI, DevAddr and session keys.
fn abp(n: u32) -> (Eui64, DevAddr, SessionKeys) {
    let b = n.to_be_bytes();
    (
        Eui64::from_u64(0x0b00_0000_0000_0000 | u64::from(n)),
        DevAddr::from_u32(0x0b00_0000 | n),
        SessionKeys::from_1_0(
            Aes128Key::from_bytes([b[1], b[2], b[3], 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Aes128Key::from_bytes([b[1], b[2], b[3], 0x22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
        ),
    )
}

fn activation(n: u32) -> Value {
    let (_, addr, keys) = abp(n);
    json!({
        "devAddr": addr.to_string(),
        "appSKey": keys.app_s_key.expose_hex(),
        "nwkSKey": keys.f_nwk_s_int_key.expose_hex(),
    })
}

fn device(n: u32, app: &str, profile: &str) -> Value {
    json!({
        "devEui": abp(n).0.to_string(),
        "joinEui": "0000000000000000",
        "name": format!("meter {n}"),
        "applicationId": app,
        "deviceProfileId": profile,
    })
}

/// Device `n`'s first uplink (FCnt 0), as an rxpk of `gw`.
fn first_uplink(gw: &SimGateway, n: u32) -> String {
    let (eui, addr, keys) = abp(n);
    let mut dev = SimDevice::abp(eui, addr, keys, false, 0);
    let phy = dev.uplink(1, &n.to_be_bytes(), false, 5, 0).unwrap();
    gw.rxpk(&phy, &rx(), gw.tmst_now())
}

/// 20 uplinks/s from the background devices until `stop`.
async fn background(gw: Arc<SimGateway>, mut stop: watch::Receiver<bool>) -> u64 {
    let mut devices: Vec<SimDevice> = (0..BACKGROUND)
        .map(|n| {
            let (eui, addr, keys) = abp(n);
            SimDevice::abp(eui, addr, keys, false, 0)
        })
        .collect();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut sent = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return sent,
        }
        let dev = &mut devices[(sent % u64::from(BACKGROUND)) as usize];
        let phy = dev.uplink(1, b"bg", false, 5, 0).unwrap();
        gw.push_at(&phy, &rx(), gw.tmst_now()).await.unwrap();
        sent += 1;
    }
}

async fn drain_push_acks(gw: Arc<SimGateway>) {
    loop {
        gw.drain_acks(Duration::from_secs(3600)).await;
    }
}

/// The DevEUIs with an `up` among `deliveries`.
fn delivered_ups(deliveries: &[Delivery]) -> BTreeSet<String> {
    deliveries
        .iter()
        .filter(|d| d.event == "up")
        .map(|d| d.dev_eui().to_owned())
        .collect()
}

/// Waits until every device of `expected` has an `up` at the webhook; panics naming
/// those that do not.
async fn all_delivered(hook: &Receiver, expected: &[u32], what: &str, served: &binary::Served) {
    let want: BTreeSet<String> = expected.iter().map(|n| abp(*n).0.to_string()).collect();
    let ok = hook
        .wait_for(Duration::from_secs(120), |all| {
            delivered_ups(all).is_superset(&want)
        })
        .await;
    if !ok {
        let got = delivered_ups(&hook.all());
        let missing: Vec<_> = want.difference(&got).collect();
        let log = served.log();
        let notes: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(30)
            .collect();
        panic!(
            "{what}: {} of {} devices' first uplink, sent right after the API answered, \
             was never accepted (the device was not live yet), e.g. {:?}\n{}",
            missing.len(),
            want.len(),
            &missing[..missing.len().min(10)],
            notes.join("\n")
        );
    }
}

async fn unknown_device_drops(base: &str) -> f64 {
    let text = metrics::scrape(base).await.expect("/metrics");
    metrics::sum(
        &text,
        "lorikeet_uplinks_dropped_total",
        &[("reason", "unknown_device")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_provisioning_on_postgres_is_live_at_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let started = Instant::now();
    let hook = Receiver::start().await;
    let dir = binary::fresh_dir("bulk");
    let url = db.url().to_owned();
    let served = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            binary::serve(
                &dir,
                &[
                    ("LORIKEET_DATABASE_URL", url.as_str()),
                    ("LORIKEET_API_ADMIN_TOKEN", ADMIN_TOKEN),
                    ("LORIKEET_LOG_LEVEL", "info"),
                    ("LORIKEET_SECURITY_KEK", TEST_KEK_HEX),
                ],
            )
        })
        .await
        .unwrap()
    };
    let api = Arc::new(Api::at(served.base()));
    let (app_id, profile_id) = abp_application(&api, "fleet", Some(&hook.url())).await;
    let rows: Vec<Value> = (0..BACKGROUND)
        .map(|n| {
            let mut d = device(n, &app_id, &profile_id);
            d["activation"] = activation(n);
            d
        })
        .collect();
    api.post("/api/v1/devices/import", json!({ "devices": rows }))
        .await
        .expect_status(200);
    let mut gateways = Vec::new();
    for id in std::iter::once(BACKGROUND_GW).chain((0..u64::from(CLIENTS)).map(|c| PROBE_GW + c)) {
        api.post(
            "/api/v1/gateways",
            json!({"gatewayId": Eui64::from_u64(id).to_string(), "name": format!("gw {id:x}")}),
        )
        .await
        .expect_status(201);
        let gw = Arc::new(
            SimGateway::connect(Eui64::from_u64(id), served.udp_addr)
                .await
                .unwrap(),
        );
        gw.pull_data(Duration::from_secs(5)).await.unwrap();
        tokio::spawn(drain_push_acks(gw.clone()));
        gateways.push(gw);
    }

    let (stop, stop_rx) = watch::channel(false);
    let bg = tokio::spawn(background(gateways[0].clone(), stop_rx));
    let base_drops = unknown_device_drops(&served.base()).await;

    // 1. One by one, 8 clients: create, activate, and at once an uplink.
    let t = Instant::now();
    let answered: Arc<Mutex<HashMap<u32, Instant>>> = Arc::default();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let api = api.clone();
            let probe = gateways[1 + c as usize].clone();
            let answered = answered.clone();
            let (app_id, profile_id) = (app_id.clone(), profile_id.clone());
            tokio::spawn(async move {
                let mut n = BACKGROUND + c;
                while n < BACKGROUND + ONE_BY_ONE {
                    let eui = abp(n).0;
                    api.post("/api/v1/devices", device(n, &app_id, &profile_id))
                        .await
                        .expect_status(201);
                    let r = api
                        .post(&format!("/api/v1/devices/{eui}/activate"), activation(n))
                        .await;
                    assert!(r.status / 100 == 2, "activate {eui}: {r:?}");
                    answered.lock().unwrap().insert(n, Instant::now());
                    probe.push_rxpks(&[first_uplink(&probe, n)]).await.unwrap();
                    n += CLIENTS;
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    let took = t.elapsed();
    eprintln!(
        "{ONE_BY_ONE} devices created and activated by {CLIENTS} clients in {took:?} ({:.0} \
         API calls/s)",
        f64::from(2 * ONE_BY_ONE) / took.as_secs_f64()
    );
    let one_by_one: Vec<u32> = (BACKGROUND..BACKGROUND + ONE_BY_ONE).collect();
    all_delivered(&hook, &one_by_one, "one by one", &served).await;
    // From each activation's answer to its uplink's event at the webhook (through the
    // dedup window, the event store and the webhook worker).
    let mut latencies: Vec<Duration> = {
        let answered = answered.lock().unwrap();
        let mut first: HashMap<String, Instant> = HashMap::new();
        for d in hook.all().into_iter().filter(|d| d.event == "up") {
            first.entry(d.dev_eui().to_owned()).or_insert(d.at);
        }
        answered
            .iter()
            .map(|(n, at)| first[&abp(*n).0.to_string()].saturating_duration_since(*at))
            .collect()
    };
    latencies.sort();
    eprintln!(
        "every one of them accepted; activation answer to webhook: p50 {:?}, p99 {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100],
        latencies[latencies.len() - 1]
    );

    // 2. One import of 10,000; at once, uplinks of the first, the last and 500
    // random ones, 10 per PUSH_DATA.
    let first = BACKGROUND + ONE_BY_ONE;
    let rows: Vec<Value> = (first..first + IMPORTED)
        .map(|n| {
            let mut d = device(n, &app_id, &profile_id);
            d["activation"] = activation(n);
            d
        })
        .collect();
    let t = Instant::now();
    let v = api
        .post("/api/v1/devices/import", json!({ "devices": rows }))
        .await
        .expect_status(200);
    let took = t.elapsed();
    assert_eq!(v, json!({"created": IMPORTED, "updated": 0}));
    let mut probed: Vec<u32> = sample(&mut rand::thread_rng(), IMPORTED as usize - 2, 500)
        .into_iter()
        .map(|i| first + 1 + i as u32)
        .collect();
    probed.extend([first, first + IMPORTED - 1]);
    let probe = &gateways[1];
    for chunk in probed.chunks(10) {
        let rxpks: Vec<String> = chunk.iter().map(|n| first_uplink(probe, *n)).collect();
        probe.push_rxpks(&rxpks).await.unwrap();
    }
    eprintln!(
        "{IMPORTED} devices imported in {took:?}; {} probed",
        probed.len()
    );
    all_delivered(&hook, &probed, "imported", &served).await;

    let _ = stop.send(true);
    let bg_sent = bg.await.unwrap();
    let drops = unknown_device_drops(&served.base()).await - base_drops;
    assert_eq!(
        drops, 0.0,
        "uplinks dropped as unknown_device while provisioning"
    );
    eprintln!(
        "{bg_sent} background uplinks during the test; {:?} in all",
        started.elapsed()
    );
    served.stop();
}
