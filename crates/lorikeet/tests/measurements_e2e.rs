//! The `postgres` integration end to end (issue 22): ABP devices behind a
//! simulated gateway send uplinks a JavaScript codec decodes; the delivery engine
//! writes their numeric fields into the `measurements` table, and
//! `GET /api/v1/devices/{devEui}/measurements` returns them downsampled, with the
//! figures checked against the values sent. Settings and query parameters are
//! checked (400s), on SQLite and Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use lorikeet_lorawan::Eui64;
use lorikeet_sim::RxMeta;
use lorikeet_storage::testing::TestDb;
use serde_json::{json, Value};
use support::*;

const GATEWAY: u64 = 0x00aa_0000_0000_0d01;

/// Bytes: temperature (0.1 °C, signed big-endian), humidity (%), a flag.
const CODEC: &str = r#"
function decodeUplink(input) {
  var b = input.bytes;
  var t = (b[0] << 8) | b[1];
  if (t & 0x8000) { t = t - 0x10000; }
  return { data: {
    temperature: t / 10,
    env: { humidity: b[2], probes: [b[2] / 2] },
    ok: b[3] === 1,
    label: "room " + b[2],
    missing: null
  } };
}
"#;

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db: 8.0,
    }
}

fn frame(deci: i16, humidity: u8, ok: bool) -> Vec<u8> {
    let t = deci.to_be_bytes();
    vec![t[0], t[1], humidity, u8::from(ok)]
}

/// `GET` of the device's measurements with `query`, after checking the status.
async fn measurements(api: &Api, dev: Eui64, query: &str, status: u16) -> Value {
    api.get(&format!("/api/v1/devices/{dev}/measurements?{query}"))
        .await
        .expect_status(status)
}

/// Waits until the device's values of `field` in the last hour number `n`.
async fn wait_values(api: &Api, dev: Eui64, field: &str, n: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let q = format!("field={field}&points=1&{}", last_hour());
    loop {
        let v = measurements(api, dev, &q, 200).await;
        let count = v["series"][0]["points"][0]["count"].as_u64().unwrap_or(0);
        if count >= n {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{dev}: {count} of {n} values of {field}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `from` and `to` around now, percent-encoded.
fn last_hour() -> String {
    let now = chrono::Utc::now();
    let enc = |t: chrono::DateTime<chrono::Utc>| {
        t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .replace(':', "%3A")
            .replace('+', "%2B")
    };
    format!(
        "from={}&to={}",
        enc(now - chrono::TimeDelta::hours(1)),
        enc(now + chrono::TimeDelta::minutes(5))
    )
}

async fn measurements_end_to_end(db: TestDb) {
    let server = start_server_with(db.url(), fast_retries).await;
    let api = Api::new(&server);
    let app = api
        .post("/api/v1/applications", json!({"name": "cold rooms"}))
        .await
        .expect_status(201);
    let app_id = app["id"].as_str().unwrap().to_owned();
    let profile = api
        .post(
            "/api/v1/device-profiles",
            json!({
                "name": "rooms-abp", "region": "EU868", "macVersion": "1.0.3",
                "regParamsRevision": "RP002-1.0.3", "supportsOtaa": false,
                "adrEnabled": false,
                "payloadCodec": {"type": "javascript", "script": CODEC}
            }),
        )
        .await
        .expect_status(201);
    let path = format!("/api/v1/applications/{app_id}/integrations/postgres");

    // Settings are checked; nothing is there before it is created.
    api.get(&path).await.expect_status(404);
    api.delete(&path).await.expect_status(404);
    assert_refused(
        &api,
        &path,
        vec![
            (json!({}), "retentionDays"),
            (json!({"retentionDays": 0}), "1 to 3650"),
            (json!({"retentionDays": 3651}), "1 to 3650"),
            (json!({"retentionDays": "30"}), "invalid type"),
            (json!({"retentionDays": -1}), "invalid value"),
            (json!({"retentionDays": 30, "table": "x"}), "unknown field"),
        ],
    )
    .await;
    let created = api
        .post(&path, json!({"retentionDays": 30}))
        .await
        .expect_status(201);
    let replaced = api
        .post(&path, json!({"retentionDays": 60}))
        .await
        .expect_status(200);
    assert_eq!(created["id"], replaced["id"]);
    let got = api.get(&path).await.expect_status(200);
    assert_eq!(
        (&got["kind"], &got["retentionDays"], &got["id"]),
        (&json!("postgres"), &json!(60), &created["id"]),
        "{got}"
    );
    let list = api
        .get(&format!("/api/v1/applications/{app_id}/integrations"))
        .await
        .expect_status(200);
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "postgres" && i["id"] == created["id"]),
        "{list}"
    );

    // Two ABP devices behind one gateway.
    let mut devices = abp_devices(
        &api,
        &app_id,
        profile["id"].as_str().unwrap(),
        (0x0d0d_0000_0000_0000, 0x0d0d_0000),
        2,
        "room-",
    )
    .await;
    let gw = online_gateway(&api, &server, GATEWAY).await;

    // Device 0: four uplinks; device 1: one. What the codec makes of them, as the
    // test computes it: temperature t/10, env_humidity h, env_probes_0 h/2, ok 0/1.
    let sent0: [(i16, u8, bool); 4] = [
        (215, 40, true),
        (-35, 42, false),
        (225, 44, true),
        (230, 46, true),
    ];
    for (t, h, ok) in sent0 {
        let up = devices[0].uplink(2, &frame(t, h, ok), false, 5, 0).unwrap();
        gw.push(&up, &rx()).await.unwrap();
    }
    let up = devices[1]
        .uplink(2, &frame(100, 10, false), false, 5, 0)
        .unwrap();
    gw.push(&up, &rx()).await.unwrap();
    let (d0, d1) = (devices[0].dev_eui, devices[1].dev_eui);
    wait_values(&api, d0, "temperature", 4).await;
    wait_values(&api, d1, "temperature", 1).await;

    // One bucket over the last hour: every field's figures.
    let all = measurements(&api, d0, &format!("points=1&{}", last_hour()), 200).await;
    assert_eq!(all["devEui"], d0.to_string());
    assert_eq!(all["points"], 1);
    let series = all["series"].as_array().unwrap();
    let names: Vec<&str> = series
        .iter()
        .map(|s| s["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["env_humidity", "env_probes_0", "ok", "temperature"],
        "strings and nulls are not stored: {all}"
    );
    let stats = |values: Vec<f64>| {
        let n = values.len() as f64;
        (
            values.iter().sum::<f64>() / n,
            values.iter().copied().fold(f64::INFINITY, f64::min),
            values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            values.len() as u64,
        )
    };
    let expected = [
        stats(sent0.iter().map(|s| f64::from(s.1)).collect()),
        stats(sent0.iter().map(|s| f64::from(s.1) / 2.0).collect()),
        stats(sent0.iter().map(|s| if s.2 { 1.0 } else { 0.0 }).collect()),
        stats(sent0.iter().map(|s| f64::from(s.0) / 10.0).collect()),
    ];
    for (s, (avg, min, max, count)) in series.iter().zip(expected) {
        let p = &s["points"][0];
        assert_eq!(s["points"].as_array().unwrap().len(), 1, "{s}");
        assert!(
            (p["avg"].as_f64().unwrap() - avg).abs() < 1e-9,
            "{s} avg {avg}"
        );
        assert_eq!(p["min"].as_f64().unwrap(), min, "{s}");
        assert_eq!(p["max"].as_f64().unwrap(), max, "{s}");
        assert_eq!(p["count"].as_u64().unwrap(), count, "{s}");
    }
    // The bucket starts at `from`.
    let from = all["from"].as_str().unwrap();
    assert_eq!(series[0]["points"][0]["time"].as_str().unwrap(), from);

    // Finer buckets split the same values; a field filter (comma-separated)
    // narrows the series; the other device's values are its own.
    let fine = measurements(
        &api,
        d0,
        &format!("points=1000&field=temperature,ok&{}", last_hour()),
        200,
    )
    .await;
    let fine_series = fine["series"].as_array().unwrap();
    assert_eq!(fine_series.len(), 2, "{fine}");
    assert_eq!(fine_series[0]["field"], "ok");
    let total: u64 = fine_series[1]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 4);
    let other = measurements(&api, d1, &format!("points=1&{}", last_hour()), 200).await;
    let t1 = other["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["field"] == "temperature")
        .unwrap();
    assert_eq!(t1["points"][0]["avg"], 10.0);
    assert_eq!(t1["points"][0]["count"], 1);
    // Defaults: the last 24 h in 100 buckets.
    let default = measurements(&api, d0, "", 200).await;
    assert_eq!(default["points"], 100);
    assert_eq!(default["series"].as_array().unwrap().len(), 4);

    // Bad queries are 400s; a device nobody has is 404.
    for (query, needle) in [
        ("points=0", "points"),
        ("points=1001", "points"),
        ("points=many", "points"),
        ("from=yesterday", "RFC 3339"),
        (
            "from=2026-12-07T12%3A00%3A00Z&to=2026-12-07T11%3A00%3A00Z",
            "before",
        ),
        (
            "from=2000-01-01T00%3A00%3A00Z&to=2026-12-07T11%3A00%3A00Z",
            "3650 days",
        ),
        ("field=a%00b", "field"),
    ] {
        let r = measurements(&api, d0, query, 400).await;
        assert!(
            r["error"].as_str().unwrap().contains(needle),
            "{query}: {r}"
        );
    }
    api.get("/api/v1/devices/0d0d0000000000ff/measurements")
        .await
        .expect_status(404);

    // The delivery state shows the writes once the cursor is saved (a few times
    // a second).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = api.get(&path).await.expect_status(200);
        assert_eq!(got["lastError"], Value::Null, "{got}");
        if got["lastDeliveredAt"].is_string() && got["backlog"] == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery state never caught up: {got}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Deleted: 204, then 404, and gone from the list.
    api.delete(&path).await.expect_status(204);
    api.get(&path).await.expect_status(404);
    let list = api
        .get(&format!("/api/v1/applications/{app_id}/integrations"))
        .await
        .expect_status(200);
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["kind"] != "postgres"),
        "{list}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measurements_sqlite() {
    measurements_end_to_end(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measurements_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    measurements_end_to_end(db).await;
}
