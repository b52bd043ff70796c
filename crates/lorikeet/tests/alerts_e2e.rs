//! Alerts end to end (`docs/alerts.md`): rules made through the API fire and resolve
//! from real traffic (UDP gateway, OTAA device, Cayenne LPP codec), are listed by
//! the API and reach the application's webhook as `alert` events; on SQLite and
//! Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use lorikeet_lorawan::Eui64;
use lorikeet_sim::{RxMeta, SimGateway};
use lorikeet_storage::testing::TestDb;
use serde_json::{json, Value};
use support::webhook::Receiver;
use support::*;

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 9,
        bandwidth_hz: 125_000,
        rssi_dbm: -85,
        snr_db: 5.0,
    }
}

/// Cayenne LPP: channel 1 temperature in 0.1 °C.
fn temperature(deci: i16) -> Vec<u8> {
    let b = deci.to_be_bytes();
    vec![0x01, 0x67, b[0], b[1]]
}

/// Waits (up to `secs`) for alerts matching `query` to satisfy `done`.
async fn wait_alerts(
    api: &Api,
    query: &str,
    secs: u64,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let r = api
            .get(&format!("/api/v1/alerts?{query}"))
            .await
            .expect_status(200);
        let items = r["items"].as_array().unwrap().clone();
        if done(&items) {
            return items;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alerts {query}: still {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn device_rules(db: TestDb) {
    let server = start_server_with(db.url(), |c| c.alerts.interval_ms = 200).await;
    let api = Api::new(&server);
    let hook = Receiver::start().await;
    let gw_id = Eui64::from_u64(0xaa00_0000_0000_00a1);
    let (mut dev, app_id) = provision_otaa(
        &api,
        Eui64::from_u64(0x0a00_0000_0000_0001),
        gw_id,
        "1.0.3",
        json!({"type": "cayenne_lpp"}),
    )
    .await;
    let r = api
        .post(
            &format!("/api/v1/applications/{app_id}/integrations/http"),
            json!({"url": hook.url()}),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{r:?}");

    // Refusals name the problem.
    for (body, needle) in [
        (json!({"name": "x", "kind": "nope"}), "unknown kind"),
        (
            json!({"name": "x", "kind": "field", "params": {"expression": "temperature > 3"}}),
            "unknown name",
        ),
        (
            json!({"name": "x", "kind": "device_silent", "params": {"minuts": 3}}),
            "params.minuts",
        ),
        (
            json!({"name": "x", "kind": "gateway_offline", "params": {"minutes": 5}, "applicationId": app_id}),
            "leave applicationId out",
        ),
    ] {
        let r = api
            .post("/api/v1/alert-rules", body)
            .await
            .expect_status(400);
        assert!(r["error"].as_str().unwrap().contains(needle), "{r}");
    }

    let field = api
        .post(
            "/api/v1/alert-rules",
            json!({"name": "too warm", "kind": "field", "applicationId": app_id,
                   "params": {"expression": "object.temperatureSensor.1 > 30", "clearAfter": 2}}),
        )
        .await
        .expect_status(201);
    let silent = api
        .post(
            "/api/v1/alert-rules",
            json!({"name": "quiet sensor", "kind": "device_silent", "params": {"seconds": 2}}),
        )
        .await
        .expect_status(201);
    assert_eq!(silent["applicationId"], Value::Null, "tenant-wide");
    let listed = api.get("/api/v1/alert-rules").await.expect_status(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);

    let gw = SimGateway::connect(gw_id, server.udp_addr).await.unwrap();
    gw.pull_data(Duration::from_secs(3)).await.unwrap();
    join(&gw, &mut dev, &rx()).await;
    let dev_eui = dev.dev_eui.to_string();

    // field: 25.0 °C is fine, 31.5 °C fires once, 29 °C once is not enough (clearAfter
    // 2), a second 29 °C resolves.
    let mut send = |deci: i16| dev.uplink(1, &temperature(deci), false, 3, 1).unwrap();
    let frames: Vec<Vec<u8>> = vec![send(250), send(315), send(320), send(290), send(290)];
    gw.push(&frames[0], &rx()).await.unwrap();
    gw.push(&frames[1], &rx()).await.unwrap();
    let fired = wait_alerts(&api, "state=firing", 10, |a| {
        a.iter().any(|x| x["kind"] == "field")
    })
    .await;
    let a = fired.iter().find(|x| x["kind"] == "field").unwrap();
    assert_eq!(a["subject"], dev_eui);
    assert_eq!(a["subjectType"], "device");
    assert_eq!(a["ruleId"], field["id"]);
    assert_eq!(a["ruleName"], "too warm");
    assert!(
        a["message"].as_str().unwrap().contains("= 31.5"),
        "{}",
        a["message"]
    );
    let alert_id = a["id"].clone();
    gw.push(&frames[2], &rx()).await.unwrap();
    gw.push(&frames[3], &rx()).await.unwrap();
    wait_events(&api, dev.dev_eui, "up", 4).await;
    let firing = api
        .get(&format!(
            "/api/v1/alerts?state=firing&ruleId={}",
            field["id"].as_str().unwrap()
        ))
        .await
        .expect_status(200);
    assert_eq!(
        firing["items"].as_array().unwrap().len(),
        1,
        "fired once, still firing"
    );
    gw.push(&frames[4], &rx()).await.unwrap();
    let resolved = wait_alerts(&api, "state=resolved", 10, |a| {
        a.iter().any(|x| x["id"] == alert_id)
    })
    .await;
    let r = resolved.iter().find(|x| x["id"] == alert_id).unwrap();
    assert!(r["resolvedAt"].is_string());
    assert!(
        r["resolveMessage"]
            .as_str()
            .unwrap()
            .contains("false for 2"),
        "{r}"
    );

    // The webhook got the firing and the resolved event, in that order, same id.
    assert!(
        hook.wait_for(Duration::from_secs(10), |all| {
            all.iter()
                .filter(|d| d.event == "alert" && d.body["id"] == alert_id)
                .count()
                == 2
        })
        .await,
        "two alert deliveries"
    );
    let deliveries: Vec<Value> = hook
        .all()
        .into_iter()
        .filter(|d| d.event == "alert" && d.body["id"] == alert_id)
        .map(|d| d.body)
        .collect();
    assert_eq!(deliveries[0]["state"], "firing");
    assert_eq!(deliveries[1]["state"], "resolved");
    assert_eq!(deliveries[0]["deviceInfo"]["devEui"], dev_eui);
    assert_eq!(deliveries[0]["kind"], "field");
    assert!(deliveries[1]["resolvedAt"].is_string());
    // And the device's event history has them.
    assert_eq!(events_of(&api, dev.dev_eui, "alert").await.len(), 2);

    // device_silent: no uplink for 2 s fires (once, however long the silence), the
    // next uplink resolves.
    let silent_q = format!("ruleId={}", silent["id"].as_str().unwrap());
    let fired = wait_alerts(&api, &format!("state=firing&{silent_q}"), 15, |a| {
        !a.is_empty()
    })
    .await;
    assert_eq!(fired[0]["subject"], dev_eui);
    assert!(fired[0]["message"]
        .as_str()
        .unwrap()
        .contains("no uplink for"));
    // Several more ticks: still one alert.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let all = api
        .get(&format!("/api/v1/alerts?{silent_q}"))
        .await
        .expect_status(200);
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        1,
        "fires once: {all}"
    );
    let frame = dev.uplink(1, &temperature(200), false, 3, 1).unwrap();
    gw.push(&frame, &rx()).await.unwrap();
    let done = wait_alerts(&api, &format!("state=resolved&{silent_q}"), 10, |a| {
        !a.is_empty()
    })
    .await;
    assert_eq!(done[0]["id"], fired[0]["id"]);
    assert!(
        hook.wait_for(Duration::from_secs(10), |all| {
            all.iter()
                .filter(|d| d.event == "alert" && d.body["kind"] == "device_silent")
                .count()
                == 2
        })
        .await
    );

    // Deleting the rule takes its alerts.
    api.delete(&format!(
        "/api/v1/alert-rules/{}",
        silent["id"].as_str().unwrap()
    ))
    .await
    .expect_status(204);
    let all = api
        .get(&format!("/api/v1/alerts?{silent_q}"))
        .await
        .expect_status(200);
    assert!(all["items"].as_array().unwrap().is_empty());
    api.get(&format!(
        "/api/v1/alert-rules/{}",
        silent["id"].as_str().unwrap()
    ))
    .await
    .expect_status(404);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_rules_sqlite() {
    device_rules(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_rules_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    device_rules(db).await;
}

/// gateway_offline: the shortest allowed limit is 60 s (last-seen times are written
/// every 30 s), so this test waits about a minute; it runs beside the others.
async fn gateway_offline(db: TestDb) {
    let server = start_server_with(db.url(), |c| c.alerts.interval_ms = 200).await;
    let api = Api::new(&server);
    let gw_id = Eui64::from_u64(0xaa00_0000_0000_00b1);
    api.post(
        "/api/v1/gateways",
        json!({"gatewayId": gw_id.to_string(), "name": "roof"}),
    )
    .await
    .expect_status(201);
    let silent_gw = Eui64::from_u64(0xaa00_0000_0000_00b2);
    api.post(
        "/api/v1/gateways",
        json!({"gatewayId": silent_gw.to_string(), "name": "never heard"}),
    )
    .await
    .expect_status(201);
    let rule = api
        .post(
            "/api/v1/alert-rules",
            json!({"name": "gateway down", "kind": "gateway_offline", "params": {"seconds": 60}}),
        )
        .await
        .expect_status(201);
    let gw = SimGateway::connect(gw_id, server.udp_addr).await.unwrap();
    gw.pull_data(Duration::from_secs(3)).await.unwrap();
    let q = format!("ruleId={}", rule["id"].as_str().unwrap());
    let fired = wait_alerts(&api, &format!("state=firing&{q}"), 90, |a| !a.is_empty()).await;
    assert_eq!(
        fired.len(),
        1,
        "only the gateway that was heard: {fired:#?}"
    );
    assert_eq!(fired[0]["subject"], gw_id.to_string());
    assert_eq!(fired[0]["subjectType"], "gateway");
    assert_eq!(fired[0]["applicationId"], Value::Null);
    gw.pull_data(Duration::from_secs(3)).await.unwrap();
    let done = wait_alerts(&api, &format!("state=resolved&{q}"), 15, |a| !a.is_empty()).await;
    assert_eq!(done[0]["id"], fired[0]["id"]);
    assert!(done[0]["resolveMessage"]
        .as_str()
        .unwrap()
        .contains("heard again"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_offline_sqlite() {
    gateway_offline(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_offline_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    gateway_offline(db).await;
}
