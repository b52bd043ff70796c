//! Stored events are what was delivered, byte for byte (issue 23): ABP devices
//! with a JavaScript codec send uplinks heard by one or three gateways; every
//! `up` body a webhook received equals, as text, the payload that
//! `GET /api/v1/devices/{devEui}/events` returns for it, paged, and again after a
//! restart (a cold dictionary cache), on SQLite and Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use lorikeet_sim::RxMeta;
use lorikeet_storage::testing::TestDb;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use support::webhook::Receiver;
use support::*;

const CODEC: &str = r#"
function decodeUplink(input) {
  var b = input.bytes;
  return { data: { temperature: (b[0] - 40) / 2, label: "room \"" + b[0] + "\"", ok: b[0] % 2 === 0 } };
}
"#;

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    items: Vec<Item<'a>>,
    #[serde(rename = "nextBefore")]
    next_before: Option<i64>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(borrow)]
    payload: &'a RawValue,
}

fn rx(rssi: i32, snr: f32) -> RxMeta {
    RxMeta {
        frequency_hz: 868_300_000,
        spreading_factor: 9,
        bandwidth_hz: 125_000,
        rssi_dbm: rssi,
        snr_db: snr,
    }
}

/// The device's stored `up` payloads, oldest first, read in pages of 3.
async fn stored_ups(api: &Api, dev: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/api/v1/devices/{dev}/events?limit=3&before={b}"),
            None => format!("/api/v1/devices/{dev}/events?limit=3"),
        };
        let (status, text) = api.get_text(&path).await;
        assert_eq!(status, 200, "{text}");
        let page: Page = serde_json::from_str(&text).unwrap();
        out.extend(
            page.items
                .iter()
                .filter(|i| i.kind == "up")
                .map(|i| i.payload.get().to_owned()),
        );
        match page.next_before {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    out.reverse();
    out
}

async fn stored_events_are_the_delivered_text(db: TestDb) {
    let hook = Receiver::start().await;
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    let app = api
        .post("/api/v1/applications", json!({"name": "exact"}))
        .await
        .expect_status(201);
    let app_id = app["id"].as_str().unwrap().to_owned();
    api.post(
        &format!("/api/v1/applications/{app_id}/integrations/http"),
        json!({"url": hook.url()}),
    )
    .await
    .expect_status(201);
    let profile = api
        .post(
            "/api/v1/device-profiles",
            json!({
                "name": "exact-abp", "region": "EU868", "macVersion": "1.0.3",
                "regParamsRevision": "RP002-1.0.3", "supportsOtaa": false,
                "adrEnabled": false,
                "payloadCodec": {"type": "javascript", "script": CODEC}
            }),
        )
        .await
        .expect_status(201);
    let mut devices = abp_devices(
        &api,
        &app_id,
        profile["id"].as_str().unwrap(),
        (0x0e0e_0000_0000_0000, 0x0e0e_0000),
        3,
        "exact-",
    )
    .await;
    let gateways = [
        online_gateway(&api, &server, 0x00aa_0000_0000_0e01).await,
        online_gateway(&api, &server, 0x00aa_0000_0000_0e02).await,
        online_gateway(&api, &server, 0x00aa_0000_0000_0e03).await,
    ];
    // Five rounds; odd rounds are heard by all three gateways.
    let rounds = 5u8;
    for round in 0..rounds {
        for d in devices.iter_mut() {
            let frame = d.uplink(2, &[60 + round * 3], false, 3, 0).unwrap();
            let heard = if round % 2 == 1 { 3 } else { 1 };
            for (g, gw) in gateways.iter().take(heard).enumerate() {
                gw.push(&frame, &rx(-80 - g as i32, 6.5 - g as f32))
                    .await
                    .unwrap();
            }
        }
    }
    let want = devices.len() * usize::from(rounds);
    assert!(
        hook.wait_for(Duration::from_secs(30), |all| {
            all.iter().filter(|d| d.event == "up").count() >= want
        })
        .await,
        "{want} up events delivered"
    );

    let delivered = hook.by_device();
    let sent_ups = |eui: &str| -> Vec<String> {
        delivered[eui]
            .iter()
            .filter(|x| x.event == "up")
            .map(|x| x.raw.clone())
            .collect()
    };
    for d in &devices {
        let eui = d.dev_eui.to_string();
        let sent = sent_ups(&eui);
        assert_eq!(sent.len(), usize::from(rounds), "{eui}");
        assert!(
            sent.iter().any(|s| s.matches("\"gatewayId\"").count() == 3),
            "three gateway copies among {sent:?}"
        );
        assert!(sent[0].contains("\"object\":{"), "{}", sent[0]);
        let stored = stored_ups(&api, &eui).await;
        assert_eq!(stored, sent, "{eui}: stored text differs from delivered");
    }

    // After a restart the dictionary cache is cold: the same text again.
    server.shutdown().await;
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    for d in &devices {
        let eui = d.dev_eui.to_string();
        assert_eq!(
            stored_ups(&api, &eui).await,
            sent_ups(&eui),
            "{eui} after a restart"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_events_are_the_delivered_text_sqlite() {
    stored_events_are_the_delivered_text(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_events_are_the_delivered_text_postgres() {
    if let Some(db) = TestDb::postgres().await {
        stored_events_are_the_delivered_text(db).await;
    }
}
