//! Security at the gateway edge (issue 20), end to end over real UDP and HTTP, on
//! SQLite and Postgres: spoofed PUSH_DATA and `stat` from another source address
//! (127.0.0.2: Linux routes all of 127/8 to the loopback interface), the throttle
//! on log events caused by forged frames, and private gateways.
//!
//! The first two run the real binary, so their counts are read from `/metrics`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lorikeet_lorawan::crypto::SessionKeys;
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use lorikeet_sim::{RxMeta, SimDevice, SimGateway};
use lorikeet_storage::testing::TestDb;
use serde_json::{json, Value};
use support::*;

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -60,
        snr_db: 8.0,
    }
}

/// `lorikeet serve` on `url` with `env` (off the async runtime: it blocks).
async fn serve(url: &str, name: &str, env: &[(&str, &str)]) -> binary::Served {
    let dir = binary::fresh_dir(name);
    let mut all: Vec<(String, String)> = vec![
        ("LORIKEET_DATABASE_URL".into(), url.into()),
        ("LORIKEET_API_ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
        ("LORIKEET_LOG_LEVEL".into(), "info".into()),
        // The test store's KEK: rows the test writes through it are sealed under it.
        (
            "LORIKEET_SECURITY_KEK".into(),
            lorikeet_storage::testing::TEST_KEK_HEX.into(),
        ),
    ];
    all.extend(env.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        binary::serve(&dir, &env)
    })
    .await
    .unwrap()
}

/// An ABP 1.0.3 device `n` in the application and profile given; its simulator.
async fn abp_device(api: &Api, app: &str, profile: &str, n: u8) -> SimDevice {
    let dev_eui = Eui64::from_u64(0x0020_0000_0000_0000 | u64::from(n));
    api.post(
        "/api/v1/devices",
        json!({
            "devEui": dev_eui.to_string(), "joinEui": "0000000000000000",
            "name": format!("d{n}"), "applicationId": app, "deviceProfileId": profile,
        }),
    )
    .await
    .expect_status(201);
    let dev_addr = DevAddr::from_u32(0x0020_0000 | u32::from(n));
    let keys = SessionKeys::from_1_0(
        Aes128Key::from_bytes([n; 16]),
        Aes128Key::from_bytes([0x40 | n; 16]),
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
    SimDevice::abp(dev_eui, dev_addr, keys, false, 0)
}

/// A PUSH_DATA datagram for gateway `gw` carrying `rxpk` (JSON text, if any) and a
/// `stat` with a GPS fix at `latitude` (if any).
fn push_data(gw: Eui64, token: u16, rxpk: Option<&str>, latitude: Option<f64>) -> Vec<u8> {
    let mut body = serde_json::Map::new();
    if let Some(r) = rxpk {
        body.insert(
            "rxpk".into(),
            Value::Array(vec![serde_json::from_str(r).unwrap()]),
        );
    }
    if let Some(lat) = latitude {
        body.insert(
            "stat".into(),
            json!({
                "time": "2026-12-06 12:00:00 GMT", "lati": lat, "long": 11.0, "alti": 40,
                "rxnb": 1, "rxok": 1, "rxfw": 1, "ackr": 100.0, "dwnb": 0, "txnb": 0
            }),
        );
    }
    let [hi, lo] = token.to_be_bytes();
    let mut d = vec![2, hi, lo, 0x00];
    d.extend_from_slice(&gw.0);
    d.extend_from_slice(Value::Object(body).to_string().as_bytes());
    d
}

/// The stored latitude of a gateway.
async fn latitude(api: &Api, gw: Eui64) -> Value {
    api.get(&format!("/api/v1/gateways/{gw}"))
        .await
        .expect_status(200)["location"]["latitude"]
        .clone()
}

/// Polls `check` every 50 ms for up to 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metric(base: &str, family: &str, labels: &[(&str, &str)]) -> f64 {
    metrics::sum(
        &metrics::scrape(base).await.unwrap_or_default(),
        family,
        labels,
    )
}

fn up_f_cnts(ups: &[Value]) -> Vec<u64> {
    ups.iter().filter_map(|u| u["fCnt"].as_u64()).collect()
}

/// A gateway pinned at 127.0.0.1 by its PULL_DATA; a spoofer on 127.0.0.2 sends
/// PUSH_DATA for it: a valid uplink (as if replayed with a fresh counter) and a
/// `stat` with another location. With `pin` (the default) it is dropped and counted,
/// without it is taken.
async fn spoofed_push_data(url: &str, pin: bool) {
    let env: &[(&str, &str)] = if pin {
        &[]
    } else {
        &[("LORIKEET_GATEWAY_PIN_ADDRESS", "false")]
    };
    let served = serve(url, "edge-pin", env).await;
    let api = Api::at(served.base());
    let (app, profile) = abp_application(&api, "edge", None).await;
    let mut dev = abp_device(&api, &app, &profile, 1).await;
    let gw_id = Eui64::from_u64(0x00ed_6e00_0000_0001);
    api.post(
        "/api/v1/gateways",
        json!({"gatewayId": gw_id.to_string(), "name": "roof"}),
    )
    .await
    .expect_status(201);
    let gw = SimGateway::connect(gw_id, served.udp_addr).await.unwrap();
    gw.pull_data(Duration::from_secs(5))
        .await
        .expect("PULL_ACK");

    // The real gateway reports its GPS fix (from its own address).
    let real = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    real.send_to(&push_data(gw_id, 1, None, Some(52.0)), served.udp_addr)
        .await
        .unwrap();
    eventually("the real location", || async {
        latitude(&api, gw_id).await == json!(52.0)
    })
    .await;

    // The spoofer: an uplink and a location, from 127.0.0.2.
    let spoofer = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let forged = dev.uplink(1, b"spoofed", false, 5, 0).unwrap();
    let rxpk = gw.rxpk(&forged, &rx(), gw.tmst_now());
    spoofer
        .send_to(
            &push_data(gw_id, 2, Some(&rxpk), Some(66.0)),
            served.udp_addr,
        )
        .await
        .unwrap();
    // Then the real gateway's next uplink.
    let genuine = dev.uplink(1, b"real", false, 5, 0).unwrap();
    gw.push(&genuine, &rx()).await.expect("PUSH_ACK");
    let ups = wait_events(&api, dev.dev_eui, "up", 1).await;

    if pin {
        let last = up_f_cnts(&wait_events(&api, dev.dev_eui, "up", 1).await);
        assert_eq!(last, vec![1], "only the real uplink (FCnt 1): {ups:?}");
        eventually("the drop counted", || async {
            metric(
                &served.base(),
                "lorikeet_gateway_datagrams_dropped_total",
                &[("reason", "address_mismatch")],
            )
            .await
                >= 1.0
        })
        .await;
        // Everything the spoofed datagram could have changed has had time to: the
        // genuine uplink behind it went through the whole pipeline.
        assert_eq!(
            latitude(&api, gw_id).await,
            json!(52.0),
            "a spoofed stat does not move the gateway"
        );
    } else {
        // Both uplinks are taken (counters 0 and 1), and so is the location.
        let ups = wait_events(&api, dev.dev_eui, "up", 2).await;
        assert_eq!(up_f_cnts(&ups), vec![0, 1]);
        eventually("the reported location", || async {
            latitude(&api, gw_id).await == json!(66.0)
        })
        .await;
        assert_eq!(
            metric(
                &served.base(),
                "lorikeet_gateway_datagrams_dropped_total",
                &[("reason", "address_mismatch")],
            )
            .await,
            0.0
        );
    }
    served.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_push_data_is_dropped_and_counted_sqlite() {
    let db = TestDb::sqlite().await;
    spoofed_push_data(db.url(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_push_data_is_dropped_and_counted_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    spoofed_push_data(db.url(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_address_pinning_push_data_from_elsewhere_is_taken_sqlite() {
    let db = TestDb::sqlite().await;
    spoofed_push_data(db.url(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_address_pinning_push_data_from_elsewhere_is_taken_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    spoofed_push_data(db.url(), false).await;
}

/// Forged frames (the device's DevAddr, made-up keys) through a real gateway: at
/// most `network.refused_uplink_logs_per_minute` log events are stored, the rest
/// counted; the device itself is served throughout.
async fn forged_frames(url: &str) {
    let served = serve(
        url,
        "edge-forged",
        &[("LORIKEET_NETWORK_REFUSED_UPLINK_LOGS_PER_MINUTE", "3")],
    )
    .await;
    let api = Api::at(served.base());
    let (app, profile) = abp_application(&api, "forged", None).await;
    let mut dev = abp_device(&api, &app, &profile, 2).await;
    let gw_id = Eui64::from_u64(0x00ed_6e00_0000_0002);
    api.post(
        "/api/v1/gateways",
        json!({"gatewayId": gw_id.to_string(), "name": "gw"}),
    )
    .await
    .expect_status(201);
    let gw = SimGateway::connect(gw_id, served.udp_addr).await.unwrap();
    gw.pull_data(Duration::from_secs(5))
        .await
        .expect("PULL_ACK");
    let mut forger = SimDevice::abp(
        dev.dev_eui,
        DevAddr::from_u32(0x0020_0002),
        SessionKeys::from_1_0(
            Aes128Key::from_bytes([0xee; 16]),
            Aes128Key::from_bytes([0xef; 16]),
        ),
        false,
        0,
    );
    const FORGED: usize = 20;
    for _ in 0..FORGED {
        let phy = forger.uplink(1, b"forged", false, 5, 0).unwrap();
        gw.push(&phy, &rx()).await.expect("PUSH_ACK");
    }
    let base = served.base();
    eventually("every forged frame dropped", || async {
        metric(
            &base,
            "lorikeet_uplinks_dropped_total",
            &[("reason", "mic_mismatch")],
        )
        .await
            >= FORGED as f64
    })
    .await;
    eventually("the suppressed log events counted", || async {
        metric(
            &base,
            "lorikeet_log_events_suppressed_total",
            &[("code", "UPLINK_MIC")],
        )
        .await
            == (FORGED - 3) as f64
    })
    .await;
    // The device's genuine uplink still arrives; by then the log events (which
    // went ahead of it) are stored too.
    let genuine = dev.uplink(1, b"real", false, 5, 0).unwrap();
    gw.push(&genuine, &rx()).await.expect("PUSH_ACK");
    wait_events(&api, dev.dev_eui, "up", 1).await;
    let logs = events_of(&api, dev.dev_eui, "log").await;
    let mic: Vec<&Value> = logs.iter().filter(|l| l["code"] == "UPLINK_MIC").collect();
    assert_eq!(mic.len(), 3, "a burst of 3 stored: {logs:?}");
    served.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_frames_store_a_few_log_events_and_count_the_rest_sqlite() {
    let db = TestDb::sqlite().await;
    forged_frames(db.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_frames_store_a_few_log_events_and_count_the_rest_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    forged_frames(db.url()).await;
}

/// An application and an ABP profile in `tenant`; their ids.
async fn tenant_app(api: &Api, tenant: &str, name: &str) -> (String, String) {
    let app = api
        .post(
            "/api/v1/applications",
            json!({"name": name, "tenantId": tenant}),
        )
        .await
        .expect_status(201);
    let profile = api
        .post(
            "/api/v1/device-profiles",
            json!({
                "name": format!("{name}-abp"), "tenantId": tenant, "region": "EU868",
                "macVersion": "1.0.3", "regParamsRevision": "RP002-1.0.3",
                "supportsOtaa": false, "adrEnabled": false, "payloadCodec": {"type": "none"}
            }),
        )
        .await
        .expect_status(201);
    (
        app["id"].as_str().unwrap().to_owned(),
        profile["id"].as_str().unwrap().to_owned(),
    )
}

/// A provisioned gateway with a location, connected (PULL_DATA).
async fn located_gateway(
    api: &Api,
    udp: SocketAddr,
    tenant: &str,
    n: u64,
    latitude: f64,
) -> SimGateway {
    let id = Eui64::from_u64(0x00ed_6e00_0000_0100 | n);
    api.post(
        "/api/v1/gateways",
        json!({
            "gatewayId": id.to_string(), "name": format!("gw-{n}"), "tenantId": tenant,
            "location": {"latitude": latitude, "longitude": 5.0}
        }),
    )
    .await
    .expect_status(201);
    let gw = SimGateway::connect(id, udp).await.unwrap();
    gw.pull_data(Duration::from_secs(5))
        .await
        .expect("PULL_ACK");
    gw
}

/// The gateways in the `rxInfo` of a device's up event with `f_cnt`, with their
/// latitude.
async fn heard_by(api: &Api, dev: &SimDevice, f_cnt: u64) -> Vec<(String, Value)> {
    let ups = wait_events(api, dev.dev_eui, "up", f_cnt as usize + 1).await;
    let up = ups
        .iter()
        .find(|u| u["fCnt"] == f_cnt)
        .unwrap_or_else(|| panic!("no up event {f_cnt}: {ups:?}"));
    let mut out: Vec<(String, Value)> = up["rxInfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["gatewayId"].as_str().unwrap().to_owned(),
                r["location"]["latitude"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Both gateways hear the device's next uplink.
async fn uplink_heard_by_both(dev: &mut SimDevice, a: &SimGateway, b: &SimGateway) {
    let phy = dev.uplink(1, b"hi", false, 5, 0).unwrap();
    a.push(&phy, &rx()).await.expect("PUSH_ACK");
    b.push(&phy, &rx()).await.expect("PUSH_ACK");
}

async fn private_gateways(db: TestDb) {
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    // Tenant A keeps its gateways private by default; tenant B shares its own.
    let a = api
        .post(
            "/api/v1/tenants",
            json!({"name": "A", "privateGateways": true}),
        )
        .await
        .expect_status(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = api
        .post("/api/v1/tenants", json!({"name": "B"}))
        .await
        .expect_status(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let gw_a = located_gateway(&api, server.udp_addr, &a, 1, 12.345678).await;
    let gw_b = located_gateway(&api, server.udp_addr, &b, 2, 23.456789).await;
    let g = api
        .get(&format!("/api/v1/gateways/{}", gw_a.id))
        .await
        .expect_status(200);
    assert_eq!(g["private"], true, "from the tenant's default");
    let (app_a, profile_a) = tenant_app(&api, &a, "a").await;
    let (app_b, profile_b) = tenant_app(&api, &b, "b").await;
    let mut dev_a = abp_device(&api, &app_a, &profile_a, 0x31).await;
    let mut dev_b = abp_device(&api, &app_b, &profile_b, 0x32).await;
    let (id_a, id_b) = (gw_a.id.to_string(), gw_b.id.to_string());

    // Tenant B's device, heard by both: A's private gateway is not in its event.
    uplink_heard_by_both(&mut dev_b, &gw_a, &gw_b).await;
    assert_eq!(
        heard_by(&api, &dev_b, 0).await,
        vec![(id_b.clone(), json!(23.456789))]
    );
    let body = events_of(&api, dev_b.dev_eui, "up").await[0].to_string();
    assert!(
        !body.contains(&id_a) && !body.contains("12.345678"),
        "neither the id nor the location: {body}"
    );
    // Tenant A's own device sees both, its gateway with its location.
    uplink_heard_by_both(&mut dev_a, &gw_a, &gw_b).await;
    assert_eq!(
        heard_by(&api, &dev_a, 0).await,
        vec![
            (id_a.clone(), json!(12.345678)),
            (id_b.clone(), json!(23.456789))
        ]
    );

    // Made public, A's gateway shows in B's events from the next uplink on.
    api.put(
        &format!("/api/v1/gateways/{id_a}"),
        json!({"name": "gw-1", "location": {"latitude": 12.345678, "longitude": 5.0}, "private": false}),
    )
    .await
    .expect_status(200);
    uplink_heard_by_both(&mut dev_b, &gw_a, &gw_b).await;
    assert_eq!(
        heard_by(&api, &dev_b, 1).await,
        vec![
            (id_a.clone(), json!(12.345678)),
            (id_b.clone(), json!(23.456789))
        ]
    );
    // And B's gateway, made private, leaves A's events.
    api.put(
        &format!("/api/v1/gateways/{id_b}"),
        json!({"name": "gw-2", "location": {"latitude": 23.456789, "longitude": 5.0}, "private": true}),
    )
    .await
    .expect_status(200);
    uplink_heard_by_both(&mut dev_a, &gw_a, &gw_b).await;
    assert_eq!(
        heard_by(&api, &dev_a, 1).await,
        vec![(id_a.clone(), json!(12.345678))]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn private_gateways_are_hidden_from_other_tenants_events_sqlite() {
    private_gateways(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn private_gateways_are_hidden_from_other_tenants_events_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    private_gateways(db).await;
}
