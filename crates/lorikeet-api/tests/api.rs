//! The API over real HTTP (127.0.0.1:0) against real SQLite and Postgres databases.

// Helpers outside #[test] functions are not covered by clippy's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use chrono::{Duration, Utc};
use lorikeet_api::{ApiState, ROUTES};
use lorikeet_lorawan::Eui64;
use lorikeet_storage::testing::TestDb;
use lorikeet_storage::{
    storage_test, Change, EventKind, Location, NewEvent, Storage, WriteOp, DEFAULT_TENANT_ID,
};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::{broadcast, oneshot};
use uuid::Uuid;

const ADMIN: &str = "admin-secret-token";
/// What the API returns in place of a key (keys are write-only).
const MASKED: &str = "********************************";

/// A running API server.
struct Server {
    base: String,
    client: reqwest::Client,
    changes: broadcast::Receiver<Change>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(storage: Arc<dyn Storage>) -> Server {
    start_with(ApiState::new(storage, Some(ADMIN))).await
}

async fn start_with(state: ApiState) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let changes = state.subscribe();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(lorikeet_api::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Server {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        changes,
        stop: Some(stop),
        task,
    }
}

impl Server {
    /// Sends a request; returns the status and the JSON body (Null when empty).
    async fn call(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(Some(ADMIN), method, path, body).await
    }

    /// Sends raw bytes as the body.
    async fn raw(&self, method: Method, path: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let v = resp.json().await.unwrap_or(Value::Null);
        (status, v)
    }

    /// Every change announced so far.
    fn drain_changes(&mut self) -> Vec<Change> {
        let mut out = Vec::new();
        while let Ok(c) = self.changes.try_recv() {
            out.push(c);
        }
        out
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), self.task)
            .await
            .expect("server stops within 5 s")
            .unwrap();
    }
}

fn err(v: &Value) -> &str {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {v}"))
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// An application and a 1.0.3 EU868 profile in the default tenant.
async fn app_and_profile(s: &Server, mac_version: &str) -> (String, String) {
    let (st, a) = s
        .admin(
            Method::POST,
            "/api/v1/applications",
            Some(json!({"name": "meters"})),
        )
        .await;
    assert_eq!(st, 201, "{a}");
    let (st, p) = s
        .admin(
            Method::POST,
            "/api/v1/device-profiles",
            Some(json!({
                "name": "eu868",
                "region": "EU868",
                "macVersion": mac_version,
                "regParamsRevision": "RP002-1.0.3",
                "supportsOtaa": true,
                "supportsClassC": false,
                "adrEnabled": true,
                "payloadCodec": {"type": "cayenne_lpp"}
            })),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    (id(&a), id(&p))
}

fn device_body(dev_eui: &str, app: &str, profile: &str) -> Value {
    json!({
        "devEui": dev_eui,
        "joinEui": "70B3D57ED0000000",
        "name": "meter-1",
        "applicationId": app,
        "deviceProfileId": profile,
        "tags": {"site": "north"}
    })
}

storage_test!(
    health_needs_no_token_everything_else_does,
    |db: TestDb| async move {
        let s = start(db.storage.clone()).await;
        let (st, v) = s.call(None, Method::GET, "/api/v1/health", None).await;
        assert_eq!((st, v), (200, json!({"status": "ok"})));
        let (st, v) = s
            .call(None, Method::GET, "/api/v1/applications", None)
            .await;
        assert_eq!(st, 401);
        assert!(err(&v).contains("Authorization"), "{v}");
        let (st, v) = s
            .call(
                Some("not-a-token"),
                Method::GET,
                "/api/v1/applications",
                None,
            )
            .await;
        assert_eq!(st, 401);
        assert!(err(&v).contains("invalid"), "{v}");
        // A malformed header.
        let resp = s
            .client
            .get(format!("{}/api/v1/devices", s.base))
            .header("authorization", "Basic abc")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        let v: Value = resp.json().await.unwrap();
        assert!(err(&v).contains("Bearer <token>"), "{v}");
        // "Bearer " with nothing after it: what `-H "Authorization: Bearer $TOKEN"`
        // sends when the variable is unset. Say so rather than "must be Bearer".
        for header in ["Bearer ", "Bearer", "bearer   "] {
            let resp = s
                .client
                .get(format!("{}/api/v1/devices", s.base))
                .header("authorization", header)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 401);
            let v: Value = resp.json().await.unwrap();
            assert!(err(&v).starts_with("empty token"), "{header:?}: {v}");
        }
        s.stop().await;
    }
);

storage_test!(provisioning_walkthrough, |db: TestDb| async move {
    let mut s = start(db.storage.clone()).await;
    let (app, profile) = app_and_profile(&s, "1.0.3").await;

    // Applications: get, list, update.
    let (st, a) = s
        .admin(Method::GET, &format!("/api/v1/applications/{app}"), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(a["name"], "meters");
    assert_eq!(a["tenantId"], DEFAULT_TENANT_ID.to_string());
    let (st, a) = s
        .admin(
            Method::PUT,
            &format!("/api/v1/applications/{app}"),
            Some(json!({"name": "water meters", "description": "north site"})),
        )
        .await;
    assert_eq!((st, a["name"].as_str()), (200, Some("water meters")));
    let (_, list) = s.admin(Method::GET, "/api/v1/applications", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["nextOffset"], Value::Null);

    // Device profiles: defaults filled in, update, list.
    let (st, p) = s
        .admin(
            Method::GET,
            &format!("/api/v1/device-profiles/{profile}"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(p["rx1Delay"], 1);
    assert_eq!(p["rx2Dr"], Value::Null);
    assert_eq!(p["payloadCodec"], json!({"type": "cayenne_lpp"}));
    let (st, p) = s
        .admin(
            Method::PUT,
            &format!("/api/v1/device-profiles/{profile}"),
            Some(json!({
                "name": "eu868 class c",
                "region": "EU868",
                "macVersion": "1.0.3",
                "regParamsRevision": "RP002-1.0.3",
                "supportsClassC": true,
                "rx2Dr": 3,
                "rx2FrequencyHz": 869525000,
                "payloadCodec": {"type": "javascript", "script": "function decodeUplink(i){return {data:{}}} function encodeDownlink(i){return {bytes:[i.data.setpoint]}}"},
                "macSettings": {"installationMarginDb": 10}
            })),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["supportsClassC"], true);
    assert_eq!(p["rx2Dr"], 3);
    assert_eq!(p["macSettings"]["installationMarginDb"], 10);
    let (_, list) = s.admin(Method::GET, "/api/v1/device-profiles", None).await;
    assert_eq!(list["items"][0]["name"], "eu868 class c");

    // Devices: hex in any case, lower case out.
    let (st, d) = s
        .admin(
            Method::POST,
            "/api/v1/devices",
            Some(device_body("0102030405ABCDEF", &app, &profile)),
        )
        .await;
    assert_eq!((st, &d), (201, &json!({"devEui": "0102030405abcdef"})));
    let path = "/api/v1/devices/0102030405abcdef";
    let (st, d) = s
        .admin(Method::GET, "/api/v1/devices/0102030405ABCDEF", None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(d["joinEui"], "70b3d57ed0000000");
    assert_eq!(d["tags"], json!({"site": "north"}));
    assert_eq!(d["lastSeenAt"], Value::Null);
    assert_eq!(d["deviceClassEnabled"], "A");
    let mut body = device_body("0102030405abcdef", &app, &profile);
    body["name"] = json!("meter one");
    body["skipFcntCheck"] = json!(true);
    let (st, d) = s.admin(Method::PUT, path, Some(body)).await;
    assert_eq!(st, 200, "{d}");
    assert_eq!(
        (d["name"].as_str(), d["skipFcntCheck"].as_bool()),
        (Some("meter one"), Some(true))
    );

    let mut moved = device_body("0102030405abcdee", &app, &profile);
    moved["name"] = json!("x");
    let (st, v) = s.admin(Method::PUT, path, Some(moved)).await;
    assert_eq!(st, 400);
    assert!(err(&v).contains("cannot be changed"), "{v}");
    let (st, v) = s
        .admin(
            Method::PUT,
            &format!("/api/v1/applications/{app}"),
            Some(json!({"name": "x", "tenantId": Uuid::new_v4()})),
        )
        .await;
    assert_eq!(st, 400);
    assert!(err(&v).contains("tenantId cannot be changed"), "{v}");

    // The network server's writes show up (last seen).
    let dev = Eui64::from_u64(0x0102_0304_05ab_cdef);
    let seen = Utc::now();
    db.storage
        .apply(&[WriteOp::DeviceSeen {
            dev_eui: dev,
            at: seen,
        }])
        .await
        .unwrap();
    let (_, d) = s.admin(Method::GET, path, None).await;
    assert!(d["lastSeenAt"]
        .as_str()
        .unwrap()
        .starts_with(&seen.format("%Y-%m-%dT%H:%M").to_string()));

    // Root keys (1.0.x: appKey only).
    let (st, _) = s
        .admin(
            Method::PUT,
            &format!("{path}/keys"),
            Some(json!({"appKey": "2B7E151628AED2A6ABF7158809CF4F3C"})),
        )
        .await;
    assert_eq!(st, 204);
    // Keys are write-only: a GET says which are set, never what they are.
    let (st, k) = s.admin(Method::GET, &format!("{path}/keys"), None).await;
    assert_eq!(st, 200);
    assert_eq!(k, json!({"appKey": MASKED, "nwkKey": null}));
    assert_eq!(
        db.storage
            .get_device_keys(dev)
            .await
            .unwrap()
            .unwrap()
            .app_key
            .expose_hex(),
        "2b7e151628aed2a6abf7158809cf4f3c"
    );

    // ABP activation (1.0.x: one network key).
    let (st, act) = s
        .admin(
            Method::POST,
            &format!("{path}/activate"),
            Some(json!({
                "devAddr": "26011BDA",
                "appSKey": "000102030405060708090A0B0C0D0E0F",
                "nwkSKey": "101112131415161718191A1B1C1D1E1F",
                "fCntUp": 7
            })),
        )
        .await;
    assert_eq!(st, 200, "{act}");
    let (st, act) = s
        .admin(Method::GET, &format!("{path}/activation"), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        act,
        json!({
            "devAddr": "26011bda",
            "appSKey": MASKED,
            "nwkSEncKey": MASKED,
            "sNwkSIntKey": MASKED,
            "fNwkSIntKey": MASKED,
            "fCntUp": 7,
            "nFCntDown": 0,
            "aFCntDown": 0,
            // The receive windows: the profile's rx2Dr, the rest the region's defaults.
            "rx1Delay": 1,
            "rx1DrOffset": 0,
            "rx2Dr": 3,
            "rx2FrequencyHz": 869_525_000
        })
    );
    let stored = db.storage.get_session(dev).await.unwrap().unwrap();
    assert_eq!(stored.f_cnt_up, 7);
    assert_eq!(stored.mac_version, "1.0.3");
    assert_eq!(
        stored.app_s_key.expose_hex(),
        "000102030405060708090a0b0c0d0e0f"
    );
    assert_eq!(
        stored.s_nwk_s_int_key.expose_hex(),
        "101112131415161718191a1b1c1d1e1f"
    );

    // Downlink queue.
    let (st, q) = s
        .admin(
            Method::POST,
            &format!("{path}/queue"),
            Some(json!({"fPort": 10, "data": "AQID", "confirmed": true})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    let qid = id(&q);
    let (st, q2) = s
        .admin(
            Method::POST,
            &format!("{path}/queue"),
            Some(json!({"fPort": 11, "object": {"other": 21}})),
        )
        .await;
    // The profile's codec cannot encode that (no setpoint): refused when queued.
    assert_eq!(st, 400, "{q2}");
    assert!(err(&q2).contains("codec cannot encode"), "{q2}");
    let (st, q2) = s
        .admin(
            Method::POST,
            &format!("{path}/queue"),
            Some(json!({"fPort": 11, "object": {"setpoint": 21}})),
        )
        .await;
    assert_eq!(st, 201, "{q2}");
    let (_, q) = s.admin(Method::GET, &format!("{path}/queue"), None).await;
    let items = q["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], qid.as_str());
    assert_eq!(items[0]["data"], "AQID");
    assert_eq!(items[0]["confirmed"], true);
    assert_eq!(items[1]["object"], json!({"setpoint": 21}));
    // Encoded when queued, by the profile's script.
    assert_eq!(items[1]["data"], "FQ==");
    let (st, _) = s
        .admin(Method::DELETE, &format!("{path}/queue"), None)
        .await;
    assert_eq!(st, 204);
    let (_, q) = s.admin(Method::GET, &format!("{path}/queue"), None).await;
    assert_eq!(q["items"], json!([]));

    // Events, newest first, limited.
    let app_id = Uuid::parse_str(&app).unwrap();
    let ops: Vec<WriteOp> = (0..3)
        .map(|n| {
            WriteOp::InsertEvent(NewEvent {
                dev_eui: dev,
                application_id: app_id,
                kind: if n == 0 {
                    EventKind::Join
                } else {
                    EventKind::Up
                },
                payload: json!({"fCnt": n}).to_string().into(),
                created_at: Utc::now() + Duration::seconds(n),
            })
        })
        .collect();
    db.storage.apply(&ops).await.unwrap();
    let (st, ev) = s
        .admin(Method::GET, &format!("{path}/events?limit=2"), None)
        .await;
    assert_eq!(st, 200);
    let items = ev["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (items[0]["type"].as_str(), &items[0]["payload"]),
        (Some("up"), &json!({"fCnt": 2}))
    );
    let (_, ev) = s.admin(Method::GET, &format!("{path}/events"), None).await;
    assert_eq!(ev["items"][2]["type"], "join");

    // Gateways.
    let (st, g) = s
        .admin(
            Method::POST,
            "/api/v1/gateways",
            Some(json!({
                "gatewayId": "AA555A0000000101",
                "name": "roof",
                "location": {"latitude": 52.37, "longitude": 4.89, "altitude": 10.5}
            })),
        )
        .await;
    assert_eq!((st, &g), (201, &json!({"gatewayId": "aa555a0000000101"})));
    db.storage
        .apply(&[WriteOp::GatewaySeen {
            gateway_id: Eui64::from_u64(0xaa55_5a00_0000_0101),
            at: Utc::now(),
            stats: Some(json!({"rxnb": 4})),
            location: None,
        }])
        .await
        .unwrap();
    let (st, g) = s
        .admin(Method::GET, "/api/v1/gateways/aa555a0000000101", None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(g["stats"], json!({"rxnb": 4}));
    assert!(g["lastSeenAt"].is_string());
    assert_eq!(g["location"]["altitude"], 10.5);
    let (_, gl) = s.admin(Method::GET, "/api/v1/gateways", None).await;
    assert_eq!(gl["items"].as_array().unwrap().len(), 1);
    // A provisioned location is kept when the forwarder reports GPS.
    assert_eq!(g["locationSource"], "provisioned");
    let gps = |lat: f64| WriteOp::GatewaySeen {
        gateway_id: Eui64::from_u64(0xaa55_5a00_0000_0101),
        at: Utc::now(),
        stats: None,
        location: Some(Location {
            latitude: lat,
            longitude: 11.0,
            altitude: 500.0,
        }),
    };
    db.storage.apply(&[gps(48.0)]).await.unwrap();
    let (_, g) = s
        .admin(Method::GET, "/api/v1/gateways/aa555a0000000101", None)
        .await;
    assert_eq!(g["location"]["latitude"], 52.37);
    // PUT edits it, and can hand the location over to the forwarder's GPS.
    let (st, g) = s
        .admin(
            Method::PUT,
            "/api/v1/gateways/aa555a0000000101",
            Some(json!({"name": "roof 2", "description": "moved", "locationSource": "reported"})),
        )
        .await;
    assert_eq!(st, 200, "{g}");
    assert_eq!(
        (&g["name"], &g["description"], &g["locationSource"]),
        (&json!("roof 2"), &json!("moved"), &json!("reported"))
    );
    db.storage.apply(&[gps(48.5)]).await.unwrap();
    let (_, g) = s
        .admin(Method::GET, "/api/v1/gateways/aa555a0000000101", None)
        .await;
    assert_eq!(g["location"]["latitude"], 48.5);
    assert_eq!(g["name"], "roof 2");
    let (st, v) = s
        .admin(
            Method::PUT,
            "/api/v1/gateways/aa555a0000000101",
            Some(json!({"name": "x", "locationSource": "gps"})),
        )
        .await;
    assert_eq!(st, 400);
    assert!(err(&v).contains("locationSource"), "{v}");
    let (st, v) = s
        .admin(
            Method::PUT,
            "/api/v1/gateways/aa555a0000000101",
            Some(json!({"gatewayId": "aa555a0000000102", "name": "x"})),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    let (st, _) = s
        .admin(
            Method::PUT,
            "/api/v1/gateways/aa555a00000001ff",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(st, 404);

    // HTTP integration: 201 created, 200 replaced, secret never shown.
    let hook = format!("/api/v1/applications/{app}/integrations/http");
    let (st, h) = s
        .admin(
            Method::POST,
            &hook,
            Some(json!({"url": "http://127.0.0.1:9999/hook", "headers": {"X-Key": "1"}, "signingSecret": "s3cret"})),
        )
        .await;
    assert_eq!(st, 201, "{h}");
    let (st, h2) = s
        .admin(
            Method::POST,
            &hook,
            Some(json!({"url": "https://example.com/hook", "signingSecret": "other"})),
        )
        .await;
    // Stored header values do not follow the URL to another host.
    assert_eq!(st, 400, "{h2}");
    let (st, h2) = s
        .admin(
            Method::POST,
            &hook,
            Some(
                json!({"url": "https://example.com/hook", "headers": {}, "signingSecret": "other"}),
            ),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(h2["id"], h["id"]);
    let (st, h) = s.admin(Method::GET, &hook, None).await;
    assert_eq!(st, 200);
    assert_eq!(h["url"], "https://example.com/hook");
    assert_eq!(h["signingSecretSet"], true);
    assert_eq!(h["backlog"], 0);
    assert!(!h.to_string().contains("other"), "secret leaked: {h}");
    let (st, _) = s.admin(Method::DELETE, &hook, None).await;
    assert_eq!(st, 204);
    let (st, _) = s.admin(Method::GET, &hook, None).await;
    assert_eq!(st, 404);

    // Every write was announced for the caches.
    let changes = s.drain_changes();
    for expected in [
        Change::DeviceChanged(dev),
        Change::DeviceKeysChanged(dev),
        Change::SessionChanged(dev),
        Change::QueueChanged(dev),
        Change::GatewayChanged(Eui64::from_u64(0xaa55_5a00_0000_0101)),
        Change::IntegrationChanged(app_id),
        Change::ProfileChanged(Uuid::parse_str(&profile).unwrap()),
        Change::ApplicationChanged(app_id),
    ] {
        assert!(
            changes.contains(&expected),
            "{expected:?} missing from {changes:?}"
        );
    }

    // A profile in use cannot be deleted.
    let (st, v) = s
        .admin(
            Method::DELETE,
            &format!("/api/v1/device-profiles/{profile}"),
            None,
        )
        .await;
    assert_eq!(st, 409);
    assert!(err(&v).contains("1 device"), "{v}");

    // Deletes.
    let (st, _) = s
        .admin(Method::DELETE, "/api/v1/gateways/aa555a0000000101", None)
        .await;
    assert_eq!(st, 204);
    let (st, _) = s.admin(Method::DELETE, path, None).await;
    assert_eq!(st, 204);
    let (st, _) = s.admin(Method::GET, path, None).await;
    assert_eq!(st, 404);
    assert!(s.drain_changes().contains(&Change::DeviceDeleted(dev)));
    let (st, _) = s
        .admin(
            Method::DELETE,
            &format!("/api/v1/device-profiles/{profile}"),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let (st, _) = s
        .admin(Method::DELETE, &format!("/api/v1/applications/{app}"), None)
        .await;
    assert_eq!(st, 204);
    let (st, _) = s
        .admin(Method::GET, &format!("/api/v1/applications/{app}"), None)
        .await;
    assert_eq!(st, 404);
    s.stop().await;
});

storage_test!(lorawan_1_1_keys_and_activation, |db: TestDb| async move {
    let s = start(db.storage.clone()).await;
    let (app, profile) = app_and_profile(&s, "1.1.0").await;
    let (st, _) = s
        .admin(
            Method::POST,
            "/api/v1/devices",
            Some(device_body("0000000000000011", &app, &profile)),
        )
        .await;
    assert_eq!(st, 201);
    let path = "/api/v1/devices/0000000000000011";
    let (st, v) = s
        .admin(
            Method::PUT,
            &format!("{path}/keys"),
            Some(json!({"appKey": "00000000000000000000000000000001"})),
        )
        .await;
    assert_eq!(st, 400);
    assert!(err(&v).contains("nwkKey is required"), "{v}");
    let (st, _) = s
        .admin(
            Method::PUT,
            &format!("{path}/keys"),
            Some(json!({"appKey": "00000000000000000000000000000001", "nwkKey": "00000000000000000000000000000002"})),
        )
        .await;
    assert_eq!(st, 204);
    let (_, k) = s.admin(Method::GET, &format!("{path}/keys"), None).await;
    assert_eq!(k, json!({"appKey": MASKED, "nwkKey": MASKED}));
    let dev = Eui64::from_u64(0x11);
    let stored = db.storage.get_device_keys(dev).await.unwrap().unwrap();
    assert_eq!(
        stored.nwk_key.map(|k| k.expose_hex()).as_deref(),
        Some("00000000000000000000000000000002")
    );

    let (st, v) = s
        .admin(
            Method::POST,
            &format!("{path}/activate"),
            Some(json!({"devAddr": "01020304", "appSKey": "00000000000000000000000000000001", "nwkSKey": "00000000000000000000000000000002"})),
        )
        .await;
    assert_eq!(st, 400);
    assert!(err(&v).contains("nwkSEncKey"), "{v}");
    let (st, act) = s
        .admin(
            Method::POST,
            &format!("{path}/activate"),
            Some(json!({
                "devAddr": "01020304",
                "appSKey": "000000000000000000000000000000a1",
                "nwkSEncKey": "000000000000000000000000000000a2",
                "sNwkSIntKey": "000000000000000000000000000000a3",
                "fNwkSIntKey": "000000000000000000000000000000a4",
                "nFCntDown": 3,
                "aFCntDown": 4
            })),
        )
        .await;
    assert_eq!(st, 200, "{act}");
    assert_eq!(act["sNwkSIntKey"], MASKED);
    let stored = db.storage.get_session(dev).await.unwrap().unwrap();
    assert_eq!(
        stored.s_nwk_s_int_key.expose_hex(),
        "000000000000000000000000000000a3"
    );
    assert_eq!(
        (act["nFCntDown"].as_u64(), act["aFCntDown"].as_u64()),
        (Some(3), Some(4))
    );
    s.stop().await;
});

storage_test!(
    every_error_class_has_a_precise_message,
    |db: TestDb| async move {
        let s = start(db.storage.clone()).await;
        let (app, profile) = app_and_profile(&s, "1.0.3").await;

        // 400: malformed JSON, empty body, missing field, wrong hex length, bad UUID.
        let (st, v) = s
            .raw(
                Method::POST,
                "/api/v1/applications",
                b"{\"name\": ".to_vec(),
            )
            .await;
        assert_eq!(st, 400);
        assert!(err(&v).starts_with("invalid JSON body"), "{v}");
        let (st, v) = s.raw(Method::POST, "/api/v1/applications", vec![]).await;
        assert_eq!(st, 400);
        assert!(err(&v).contains("empty"), "{v}");
        let (st, v) = s
            .admin(Method::POST, "/api/v1/applications", Some(json!({})))
            .await;
        assert_eq!(st, 400);
        assert!(err(&v).contains("missing field `name`"), "{v}");
        let (st, v) = s
            .admin(
                Method::POST,
                "/api/v1/devices",
                Some(device_body("01020304", &app, &profile)),
            )
            .await;
        assert_eq!(st, 400);
        assert_eq!(err(&v), "devEui: EUI-64 must be 16 hex digits, got 8");
        let (st, v) = s
            .admin(
                Method::POST,
                "/api/v1/devices",
                Some(device_body("0102030405060708", "nope", &profile)),
            )
            .await;
        assert_eq!(st, 400);
        assert!(
            err(&v).starts_with("applicationId \"nope\" is not a valid UUID"),
            "{v}"
        );
        let (st, v) = s.admin(Method::GET, "/api/v1/devices/xyz", None).await;
        assert_eq!(st, 400);
        assert!(err(&v).starts_with("devEui in the path: "), "{v}");
        let (st, v) = s.admin(Method::GET, "/api/v1/applications/123", None).await;
        assert_eq!(st, 400);
        assert!(err(&v).contains("not a valid UUID"), "{v}");

        // 400: unknown region, MAC version, revision, codec; out-of-range numbers.
        let profile_body = |field: &str, value: Value| {
            let mut b = json!({
                "name": "p", "region": "EU868", "macVersion": "1.0.3", "regParamsRevision": "RP002-1.0.3"
            });
            b[field] = value;
            b
        };
        for (field, value, needle) in [
            (
                "region",
                json!("EU869"),
                "region \"EU869\" is not supported; use one of EU868, US915",
            ),
            (
                "macVersion",
                json!("1.2.0"),
                "macVersion \"1.2.0\" is not supported",
            ),
            (
                "regParamsRevision",
                json!("RP003"),
                "regParamsRevision \"RP003\" is not supported",
            ),
            (
                "payloadCodec",
                json!({"type": "lua"}),
                "payloadCodec.type \"lua\" is not supported",
            ),
            (
                "payloadCodec",
                json!({"type": "javascript"}),
                "payloadCodec.script is required",
            ),
            (
                "rx1DrOffset",
                json!(9),
                "rx1DrOffset must be from 0 to 7, got 9",
            ),
            ("rx2FrequencyHz", json!(869.525), "invalid JSON body"),
            (
                "rx2FrequencyHz",
                json!(869),
                "rx2FrequencyHz must be in hertz",
            ),
            (
                "macSettings",
                json!([1]),
                "macSettings must be a JSON object",
            ),
            (
                "macSettings",
                json!({"adrMaxDr": 16}),
                "macSettings.adrMaxDr = 16 is above 15",
            ),
            (
                "macSettings",
                json!({"adrAlgorithm": "aggressive"}),
                "macSettings.adrAlgorithm \"aggressive\" is not a known algorithm",
            ),
            (
                "macSettings",
                json!({"installationMarginDb": "ten"}),
                "macSettings: invalid type",
            ),
        ] {
            let (st, v) = s
                .admin(
                    Method::POST,
                    "/api/v1/device-profiles",
                    Some(profile_body(field, value)),
                )
                .await;
            assert_eq!(st, 400, "{field}: {v}");
            assert!(err(&v).contains(needle), "{field}: {v}");
        }

        // 400: queue input.
        let (st, _) = s
            .admin(
                Method::POST,
                "/api/v1/devices",
                Some(device_body("0102030405060708", &app, &profile)),
            )
            .await;
        assert_eq!(st, 201);
        let q = "/api/v1/devices/0102030405060708/queue";
        for (body, needle) in [
            (
                json!({"fPort": 0, "data": "AQ=="}),
                "fPort must be from 1 to 223",
            ),
            (json!({"data": "AQ=="}), "fPort is required"),
            (
                json!({"fPort": 1, "data": "not base64!"}),
                "data is not valid base64",
            ),
            (json!({"fPort": 1}), "data (base64 bytes) or object"),
            (
                json!({"fPort": 1, "data": "AQ==", "object": {}}),
                "not both",
            ),
            (json!({"fPort": 1, "data": base64_of(243)}), "243 bytes"),
        ] {
            let (st, v) = s.admin(Method::POST, q, Some(body.clone())).await;
            assert_eq!(st, 400, "{body}: {v}");
            assert!(err(&v).contains(needle), "{body}: {v}");
        }
        let (st, v) = s
            .admin(
                Method::PUT,
                "/api/v1/devices/0102030405060708/keys",
                Some(json!({"appKey": "0011"})),
            )
            .await;
        assert_eq!(st, 400);
        assert_eq!(err(&v), "appKey: AES-128 key must be 32 hex digits, got 4");
        let (st, v) = s
            .admin(Method::GET, "/api/v1/devices?limit=5000", None)
            .await;
        assert_eq!(st, 400);
        assert!(
            err(&v).contains("limit must be a whole number from 1 to 1000"),
            "{v}"
        );

        // 409: duplicates.
        let (st, v) = s
            .admin(
                Method::POST,
                "/api/v1/devices",
                Some(device_body("0102030405060708", &app, &profile)),
            )
            .await;
        assert_eq!(st, 409);
        assert_eq!(err(&v), "device 0102030405060708 already exists");
        let (st, v) = s
            .admin(
                Method::DELETE,
                &format!("/api/v1/tenants/{DEFAULT_TENANT_ID}"),
                None,
            )
            .await;
        assert_eq!(st, 409);
        assert!(err(&v).contains("default tenant"), "{v}");

        // 404: unknown resources and routes; 405: wrong method.
        let (st, v) = s
            .admin(Method::GET, "/api/v1/devices/ffffffffffffffff", None)
            .await;
        assert_eq!(st, 404);
        assert_eq!(err(&v), "device ffffffffffffffff not found");
        let (st, v) = s.admin(Method::GET, "/api/v1/nothing", None).await;
        assert_eq!(st, 404);
        assert!(err(&v).contains("openapi.json"), "{v}");
        let (st, v) = s
            .admin(Method::PATCH, "/api/v1/devices/0102030405060708", None)
            .await;
        assert_eq!(st, 405);
        assert!(err(&v).contains("GET, PUT, DELETE"), "{v}");
        let (st, v) = s
            .admin(
                Method::GET,
                "/api/v1/devices/0102030405060708/activation",
                None,
            )
            .await;
        assert_eq!(st, 404);
        assert!(err(&v).contains("not activated"), "{v}");

        // 413: over 1 MiB, with and without Content-Length; nothing written.
        let mut big = b"{\"name\": \"".to_vec();
        big.extend(std::iter::repeat_n(b'a', 1024 * 1024));
        big.extend(b"\"}");
        // The server answers from the Content-Length alone and closes; a client still
        // writing the body may see the reset before the answer (a race of the
        // loopback), so the answer is asked for until it is read.
        let mut answered = None;
        for _ in 0..10 {
            let sent = s
                .client
                .post(format!("{}/api/v1/applications", s.base))
                .bearer_auth(ADMIN)
                .header("content-type", "application/json")
                .body(big.clone())
                .send()
                .await;
            match sent {
                Ok(r) => {
                    let st = r.status().as_u16();
                    answered = Some((st, r.json::<Value>().await.unwrap_or(Value::Null)));
                    break;
                }
                Err(e) => assert!(e.is_request() || e.is_body(), "{e:?}"),
            }
        }
        let (st, v) = answered.expect("the 413 is read at least once in ten tries");
        assert_eq!(st, 413);
        assert!(err(&v).contains("1 MiB"), "{v}");
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
        let resp = s
            .client
            .post(format!("{}/api/v1/applications", s.base))
            .bearer_auth(ADMIN)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await;
        // The server may answer 413 and close while the client is still writing the
        // stream; then the client sees the refusal as a failed body write instead.
        match resp {
            Ok(r) => assert_eq!(r.status().as_u16(), 413),
            Err(e) => assert!(e.is_request() || e.is_body(), "{e:?}"),
        }

        // Nothing half-written: the failed requests left exactly what succeeded.
        let (_, apps) = s.admin(Method::GET, "/api/v1/applications", None).await;
        assert_eq!(apps["items"].as_array().unwrap().len(), 1);
        let (_, profiles) = s.admin(Method::GET, "/api/v1/device-profiles", None).await;
        assert_eq!(profiles["items"].as_array().unwrap().len(), 1);
        let (_, devices) = s.admin(Method::GET, "/api/v1/devices", None).await;
        assert_eq!(devices["items"].as_array().unwrap().len(), 1);
        let (_, queue) = s.admin(Method::GET, q, None).await;
        assert_eq!(queue["items"], json!([]));
        assert!(db
            .storage
            .get_device_keys(Eui64::from_u64(0x0102_0304_0506_0708))
            .await
            .unwrap()
            .is_none());
        s.stop().await;
    }
);

fn base64_of(n: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(vec![7u8; n])
}

storage_test!(
    a_write_answers_what_a_read_returns,
    |db: TestDb| async move {
        // The databases keep microseconds; a PUT used to answer with the nanoseconds
        // of the clock, so its `updatedAt` differed from every later GET.
        let s = start(db.storage.clone()).await;
        let (app, profile) = app_and_profile(&s, "1.0.3").await;
        let (st, _) = s
            .admin(
                Method::POST,
                "/api/v1/devices",
                Some(device_body("0102030405060708", &app, &profile)),
            )
            .await;
        assert_eq!(st, 201);
        let mut profile_body = s
            .admin(
                Method::GET,
                &format!("/api/v1/device-profiles/{profile}"),
                None,
            )
            .await
            .1;
        profile_body["name"] = json!("renamed");
        let mut device = device_body("0102030405060708", &app, &profile);
        device["name"] = json!("renamed");
        let writes = [
            (
                format!("/api/v1/applications/{app}"),
                json!({"name": "renamed", "description": "d"}),
            ),
            (format!("/api/v1/device-profiles/{profile}"), profile_body),
            ("/api/v1/devices/0102030405060708".to_owned(), device),
        ];
        for (path, body) in writes {
            let (st, put) = s.admin(Method::PUT, &path, Some(body)).await;
            assert_eq!(st, 200, "{path}: {put}");
            assert!(put["updatedAt"].is_string(), "{path}: {put}");
            let (st, got) = s.admin(Method::GET, &path, None).await;
            assert_eq!(st, 200);
            for (key, v) in put.as_object().unwrap() {
                assert_eq!(&got[key], v, "{path}: {key} differs between PUT and GET");
            }
        }
        s.stop().await;
    }
);

storage_test!(device_list_pages_are_small, |db: TestDb| async move {
    let s = start(db.storage.clone()).await;
    let (app, profile) = app_and_profile(&s, "1.0.3").await;
    for i in 0..7u64 {
        let (st, _) = s
            .admin(
                Method::POST,
                "/api/v1/devices",
                Some(device_body(&format!("{:016x}", 0x100 + i), &app, &profile)),
            )
            .await;
        assert_eq!(st, 201);
    }
    let path = format!("/api/v1/devices?applicationId={app}&limit=3");
    let (st, p1) = s.admin(Method::GET, &path, None).await;
    assert_eq!(st, 200);
    assert_eq!(p1["items"].as_array().unwrap().len(), 3);
    assert_eq!(p1["items"][0]["devEui"], "0000000000000100");
    assert_eq!(p1["nextOffset"], 3);
    assert!(
        p1["items"][0].get("tags").is_none(),
        "list items stay small"
    );
    let (_, p3) = s
        .admin(Method::GET, &format!("{path}&offset=6"), None)
        .await;
    assert_eq!(p3["items"].as_array().unwrap().len(), 1);
    assert_eq!(p3["nextOffset"], Value::Null);
    let (st, _) = s
        .admin(
            Method::GET,
            &format!("/api/v1/devices?applicationId={}", Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(st, 404);
    s.stop().await;
});

storage_test!(tenants_are_isolated, |db: TestDb| async move {
    let s = start(db.storage.clone()).await;
    // Tenants and their keys, by the admin.
    let (st, a) = s
        .admin(Method::POST, "/api/v1/tenants", Some(json!({"name": "A"})))
        .await;
    assert_eq!(st, 201);
    let (_, b) = s
        .admin(Method::POST, "/api/v1/tenants", Some(json!({"name": "B"})))
        .await;
    let (tenant_a, tenant_b) = (id(&a), id(&b));
    let (st, ka) = s
        .admin(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "a", "tenantId": tenant_a})),
        )
        .await;
    assert_eq!(st, 201);
    let key_a = ka["token"].as_str().unwrap().to_string();
    let (_, kb) = s
        .admin(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "b", "tenantId": tenant_b})),
        )
        .await;
    let key_b = kb["token"].as_str().unwrap().to_string();
    let (ka, kb) = (Some(key_a.as_str()), Some(key_b.as_str()));
    let (st, t) = s
        .admin(Method::GET, &format!("/api/v1/tenants/{tenant_a}"), None)
        .await;
    assert_eq!((st, t["name"].as_str()), (200, Some("A")));
    // Only the admin renames tenants.
    let (st, t) = s
        .call(
            ka,
            Method::PUT,
            &format!("/api/v1/tenants/{tenant_a}"),
            Some(json!({"name": "A2"})),
        )
        .await;
    assert_eq!(st, 403, "{t}");
    let (st, t) = s
        .admin(
            Method::PUT,
            &format!("/api/v1/tenants/{tenant_a}"),
            Some(json!({"name": "A2"})),
        )
        .await;
    assert_eq!((st, t["name"].as_str()), (200, Some("A2")));
    let (_, t) = s
        .admin(Method::GET, &format!("/api/v1/tenants/{tenant_a}"), None)
        .await;
    assert_eq!(t["name"], "A2");
    let (_, all) = s.admin(Method::GET, "/api/v1/tenants", None).await;
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        3,
        "A, B and the default tenant"
    );
    let (_, keys) = s
        .admin(
            Method::GET,
            &format!("/api/v1/api-keys?tenantId={tenant_a}"),
            None,
        )
        .await;
    assert_eq!(keys["items"].as_array().unwrap().len(), 1);
    assert_eq!(keys["items"][0]["name"], "a");

    // Tenant A provisions with its own key (no tenantId: its own tenant).
    let (st, app) = s
        .call(
            ka,
            Method::POST,
            "/api/v1/applications",
            Some(json!({"name": "a-app"})),
        )
        .await;
    assert_eq!(st, 201);
    let app = id(&app);
    let (st, profile) = s
        .call(
            ka,
            Method::POST,
            "/api/v1/device-profiles",
            Some(json!({"name": "p", "region": "EU868", "macVersion": "1.0.3", "regParamsRevision": "RP002-1.0.3"})),
        )
        .await;
    assert_eq!(st, 201);
    let profile = id(&profile);
    let (st, _) = s
        .call(
            ka,
            Method::POST,
            "/api/v1/devices",
            Some(device_body("00000000000000a1", &app, &profile)),
        )
        .await;
    assert_eq!(st, 201);
    let (_, d) = s
        .admin(Method::GET, "/api/v1/devices/00000000000000a1", None)
        .await;
    assert_eq!(d["tenantId"], tenant_a.as_str());
    let dev = "/api/v1/devices/00000000000000a1";
    let (st, _) = s.call(ka, Method::GET, dev, None).await;
    assert_eq!(st, 200);

    // Tenant B sees none of it and cannot change it.
    for path in [
        dev.to_string(),
        format!("{dev}/keys"),
        format!("{dev}/queue"),
        format!("{dev}/events"),
        format!("/api/v1/applications/{app}"),
        format!("/api/v1/device-profiles/{profile}"),
        format!("/api/v1/tenants/{tenant_a}"),
        format!("/api/v1/applications/{app}/integrations/http"),
    ] {
        let (st, v) = s.call(kb, Method::GET, &path, None).await;
        assert_eq!(st, 404, "{path}: {v}");
    }
    let (st, _) = s.call(kb, Method::DELETE, dev, None).await;
    assert_eq!(st, 404);
    let (st, _) = s
        .call(
            kb,
            Method::POST,
            &format!("{dev}/queue"),
            Some(json!({"fPort": 1, "data": "AQ=="})),
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = s
        .call(
            kb,
            Method::DELETE,
            &format!("/api/v1/applications/{app}"),
            None,
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = s
        .call(
            kb,
            Method::POST,
            "/api/v1/devices",
            Some(device_body("00000000000000b1", &app, &profile)),
        )
        .await;
    assert_eq!(st, 404, "B cannot use A's application");
    let (st, v) = s.call(kb, Method::GET, "/api/v1/devices", None).await;
    assert_eq!((st, &v["items"]), (200, &json!([])));
    let (st, _) = s
        .call(
            kb,
            Method::GET,
            &format!("/api/v1/devices?tenantId={tenant_a}"),
            None,
        )
        .await;
    assert_eq!(st, 404);
    let (_, v) = s.call(kb, Method::GET, "/api/v1/tenants", None).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["items"][0]["id"], tenant_b.as_str());
    // The device is still there.
    let (st, _) = s.call(ka, Method::GET, dev, None).await;
    assert_eq!(st, 200);

    // 403: admin-only operations.
    let (st, v) = s
        .call(
            kb,
            Method::POST,
            "/api/v1/tenants",
            Some(json!({"name": "C"})),
        )
        .await;
    assert_eq!(st, 403);
    assert!(err(&v).contains("admin token"), "{v}");
    let (st, _) = s
        .call(
            kb,
            Method::DELETE,
            &format!("/api/v1/tenants/{tenant_b}"),
            None,
        )
        .await;
    assert_eq!(st, 403);
    // Keys: B cannot make keys for A; B's key list shows only B's keys.
    let (st, _) = s
        .call(
            kb,
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "x", "tenantId": tenant_a})),
        )
        .await;
    assert_eq!(st, 404);
    let (_, keys) = s.call(kb, Method::GET, "/api/v1/api-keys", None).await;
    assert_eq!(keys["items"].as_array().unwrap().len(), 1);
    assert!(keys["items"][0].get("token").is_none());
    let key_a_id = {
        let (_, keys) = s.call(ka, Method::GET, "/api/v1/api-keys", None).await;
        keys["items"][0]["id"].as_str().unwrap().to_string()
    };
    let (st, _) = s
        .call(
            kb,
            Method::DELETE,
            &format!("/api/v1/api-keys/{key_a_id}"),
            None,
        )
        .await;
    assert_eq!(st, 404);

    // The admin cannot mix tenants either.
    let (_, other_profile) = s
        .admin(
            Method::POST,
            "/api/v1/device-profiles",
            Some(json!({"name": "p", "tenantId": tenant_b, "region": "EU868", "macVersion": "1.0.3", "regParamsRevision": "RP002-1.0.3"})),
        )
        .await;
    let (st, v) = s
        .admin(
            Method::POST,
            "/api/v1/devices",
            Some(device_body("00000000000000c1", &app, &id(&other_profile))),
        )
        .await;
    assert_eq!(st, 400);
    assert!(err(&v).contains("another tenant"), "{v}");

    // Revoking a key locks it out; deleting a tenant removes its resources.
    let (st, _) = s
        .call(
            ka,
            Method::DELETE,
            &format!("/api/v1/api-keys/{key_a_id}"),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let (st, _) = s.call(ka, Method::GET, dev, None).await;
    assert_eq!(st, 401);
    let (st, _) = s
        .admin(Method::DELETE, &format!("/api/v1/tenants/{tenant_a}"), None)
        .await;
    assert_eq!(st, 204);
    let (st, _) = s.admin(Method::GET, dev, None).await;
    assert_eq!(st, 404);
    s.stop().await;
});

storage_test!(a_restart_keeps_everything, |db: TestDb| async move {
    let s = start(db.storage.clone()).await;
    let (app, profile) = app_and_profile(&s, "1.0.3").await;
    let dev = "/api/v1/devices/00000000000000d1";
    s.admin(
        Method::POST,
        "/api/v1/devices",
        Some(device_body("00000000000000d1", &app, &profile)),
    )
    .await;
    s.admin(
        Method::PUT,
        &format!("{dev}/keys"),
        Some(json!({"appKey": "000102030405060708090a0b0c0d0e0f"})),
    )
    .await;
    s.admin(
        Method::POST,
        &format!("{dev}/activate"),
        Some(json!({"devAddr": "26000001", "appSKey": "000102030405060708090a0b0c0d0e0f", "nwkSKey": "0f0e0d0c0b0a09080706050403020100"})),
    )
    .await;
    s.admin(
        Method::POST,
        &format!("{dev}/queue"),
        Some(json!({"fPort": 2, "data": "AQI="})),
    )
    .await;
    s.admin(
        Method::POST,
        "/api/v1/gateways",
        Some(json!({"gatewayId": "00000000000000e1", "name": "gw"})),
    )
    .await;
    s.admin(
        Method::POST,
        &format!("/api/v1/applications/{app}/integrations/http"),
        Some(json!({"url": "http://127.0.0.1:1/x"})),
    )
    .await;
    let (_, key) = s
        .admin(Method::POST, "/api/v1/api-keys", Some(json!({"name": "k"})))
        .await;
    let token = key["token"].as_str().unwrap().to_string();
    let paths = [
        format!("/api/v1/applications/{app}"),
        format!("/api/v1/device-profiles/{profile}"),
        dev.to_string(),
        format!("{dev}/keys"),
        format!("{dev}/activation"),
        format!("{dev}/queue"),
        "/api/v1/gateways/00000000000000e1".to_string(),
        format!("/api/v1/applications/{app}/integrations/http"),
    ];
    let mut before = Vec::new();
    for p in &paths {
        let (st, v) = s.admin(Method::GET, p, None).await;
        assert_eq!(st, 200, "{p}: {v}");
        before.push(v);
    }
    s.stop().await;
    db.storage.close().await;

    let s = start(db.reopen().await).await;
    for (p, old) in paths.iter().zip(&before) {
        let (st, v) = s.admin(Method::GET, p, None).await;
        assert_eq!(st, 200, "{p}");
        assert_eq!(&v, old, "{p} changed across the restart");
    }
    let (st, _) = s.call(Some(&token), Method::GET, dev, None).await;
    assert_eq!(st, 200, "API keys survive too");
    s.stop().await;
});

/// The Prometheus recorder of this test binary (installed once).
fn prometheus() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .unwrap()
    })
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_db_latency() {
    let handle = prometheus().clone();
    lorikeet_api::describe_metrics();
    lorikeet_storage::describe_metrics();
    let db = TestDb::sqlite().await;
    let state = ApiState::new(db.storage.clone(), Some(ADMIN))
        .with_metrics(Arc::new(move || handle.render()));
    let s = start_with(state).await;
    for _ in 0..3 {
        s.admin(Method::GET, "/api/v1/devices/0000000000000001", None)
            .await;
    }
    let resp = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("lorikeet_api_requests_total")
                && l.contains("route=\"/api/v1/devices/{devEui}\"")
                && l.contains("status=\"404\"")
        })
        .unwrap_or_else(|| panic!("no request counter in:\n{text}"));
    assert!(line.ends_with(" 3"), "{line}");
    assert!(
        text.contains("lorikeet_db_query_duration_seconds"),
        "{text}"
    );
    s.stop().await;

    // Without a renderer /metrics is not served.
    let s = start(db.storage.clone()).await;
    let (st, _) = s.call(None, Method::GET, "/metrics", None).await;
    assert_eq!(st, 404);
    s.stop().await;
}

#[tokio::test]
async fn openapi_describes_exactly_the_served_routes() {
    let db = TestDb::sqlite().await;
    let s = start(db.storage.clone()).await;
    let (st, spec) = s
        .call(None, Method::GET, "/api/v1/openapi.json", None)
        .await;
    assert_eq!(st, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    let mut operation_ids = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
                // Client generators name their functions after operationId: each
                // operation needs one, unique and camelCase.
                let id = op["operationId"].as_str().unwrap_or_else(|| {
                    panic!("{} {path} has no operationId", method.to_uppercase())
                });
                assert!(
                    id.starts_with(|c: char| c.is_ascii_lowercase())
                        && id.chars().all(|c| c.is_ascii_alphanumeric()),
                    "operationId {id:?} of {} {path} is not camelCase",
                    method.to_uppercase()
                );
                assert!(
                    operation_ids.insert(id.to_owned()),
                    "operationId {id:?} is used twice"
                );
            }
        }
    }
    let served: BTreeSet<_> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.as_str().to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "undocumented: {missing:?}; not served: {extra:?}"
    );
    // Every served route answers something other than "no such endpoint".
    for (m, p, _) in ROUTES {
        let path = p
            .replace("{devEui}", "0000000000000001")
            .replace("{gatewayId}", "0000000000000001")
            .replace("{id}", &Uuid::new_v4().to_string());
        let (st, v) = s.admin(m.clone(), &path, None).await;
        assert!(
            !(st == 404 && v["error"].as_str().unwrap_or("").starts_with("no endpoint")),
            "{m} {p} not routed"
        );
    }
    s.stop().await;
}

storage_test!(
    private_gateways_default_from_the_tenant_and_are_set_per_gateway,
    |db: TestDb| async move {
        let s = start(db.storage.clone()).await;
        // A tenant whose gateways are private unless said otherwise.
        let (st, t) = s
            .admin(
                Method::POST,
                "/api/v1/tenants",
                Some(json!({"name": "campus", "privateGateways": true})),
            )
            .await;
        assert_eq!(st, 201, "{t}");
        let tenant = id(&t);
        let (_, t) = s
            .admin(Method::GET, &format!("/api/v1/tenants/{tenant}"), None)
            .await;
        assert_eq!(t["privateGateways"], true);
        let (_, key) = s
            .admin(
                Method::POST,
                "/api/v1/api-keys",
                Some(json!({"name": "k", "tenantId": tenant})),
            )
            .await;
        let key = key["token"].as_str().unwrap().to_string();
        let k = Some(key.as_str());
        // Its gateways: private by default, public when asked, by its own key.
        let (st, _) = s
            .call(
                k,
                Method::POST,
                "/api/v1/gateways",
                Some(json!({"gatewayId": "00000000000000c1", "name": "a"})),
            )
            .await;
        assert_eq!(st, 201);
        let (st, _) = s
            .call(
                k,
                Method::POST,
                "/api/v1/gateways",
                Some(json!({"gatewayId": "00000000000000c2", "name": "b", "private": false})),
            )
            .await;
        assert_eq!(st, 201);
        let get = |gw: &'static str| {
            let s = &s;
            async move {
                s.call(k, Method::GET, &format!("/api/v1/gateways/{gw}"), None)
                    .await
                    .1
            }
        };
        assert_eq!(get("00000000000000c1").await["private"], true);
        assert_eq!(get("00000000000000c2").await["private"], false);
        // An update without `private` keeps it; with it, sets it.
        let (st, g) = s
            .call(
                k,
                Method::PUT,
                "/api/v1/gateways/00000000000000c1",
                Some(json!({"name": "a2"})),
            )
            .await;
        assert_eq!((st, &g["private"]), (200, &json!(true)), "{g}");
        let (st, g) = s
            .call(
                k,
                Method::PUT,
                "/api/v1/gateways/00000000000000c2",
                Some(json!({"name": "b", "private": true})),
            )
            .await;
        assert_eq!((st, &g["private"]), (200, &json!(true)), "{g}");
        assert_eq!(get("00000000000000c2").await["private"], true);
        let (st, v) = s
            .call(
                k,
                Method::PUT,
                "/api/v1/gateways/00000000000000c2",
                Some(json!({"name": "b", "private": "yes"})),
            )
            .await;
        assert_eq!(st, 400, "{v}");
        // The default tenant's gateways are public unless asked.
        let (_, t) = s
            .admin(
                Method::GET,
                &format!("/api/v1/tenants/{DEFAULT_TENANT_ID}"),
                None,
            )
            .await;
        assert_eq!(t["privateGateways"], false);
        let (st, _) = s
            .admin(
                Method::POST,
                "/api/v1/gateways",
                Some(json!({"gatewayId": "00000000000000c3", "name": "c"})),
            )
            .await;
        assert_eq!(st, 201);
        let (_, g) = s
            .admin(Method::GET, "/api/v1/gateways/00000000000000c3", None)
            .await;
        assert_eq!(g["private"], false);
        // The tenant default changes new gateways only; an update without it keeps it.
        let (st, t) = s
            .admin(
                Method::PUT,
                &format!("/api/v1/tenants/{tenant}"),
                Some(json!({"name": "campus"})),
            )
            .await;
        assert_eq!((st, &t["privateGateways"]), (200, &json!(true)));
        let (st, t) = s
            .admin(
                Method::PUT,
                &format!("/api/v1/tenants/{tenant}"),
                Some(json!({"name": "campus", "privateGateways": false})),
            )
            .await;
        assert_eq!((st, &t["privateGateways"]), (200, &json!(false)));
        assert_eq!(get("00000000000000c1").await["private"], true);
        // A tenant key cannot change its tenant's default.
        let (st, _) = s
            .call(
                k,
                Method::PUT,
                &format!("/api/v1/tenants/{tenant}"),
                Some(json!({"name": "campus", "privateGateways": true})),
            )
            .await;
        assert_eq!(st, 403);
        s.stop().await;
    }
);

storage_test!(
    a_profile_codec_is_tried_on_sample_bytes,
    |db: TestDb| async move {
        let s = start(db.storage.clone()).await;
        let script = "function decodeUplink(input) { \
        return { data: { port: input.fPort, first: input.bytes[0] }, warnings: ['w'] }; }";
        let (st, p) = s
            .admin(
                Method::POST,
                "/api/v1/device-profiles",
                Some(
                    json!({"name": "js", "region": "EU868", "macVersion": "1.0.3",
                        "regParamsRevision": "RP002-1.0.3", "supportsOtaa": true,
                        "payloadCodec": {"type": "javascript", "script": script}}),
                ),
            )
            .await;
        assert_eq!(st, 201, "{p}");
        let path = format!("/api/v1/device-profiles/{}/test-decode", id(&p));
        let (st, v) = s
            .admin(
                Method::POST,
                &path,
                Some(json!({"fPort": 7, "bytes": "2A 01:02"})),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(
            v,
            json!({"object": {"port": 7, "first": 42}, "warnings": ["w"]})
        );
        // An unsaved script: its syntax error is the answer.
        let (st, v) = s
            .admin(
                Method::POST,
                &path,
                Some(json!({"fPort": 7, "bytes": "00", "script": "function decodeUplink( {"})),
            )
            .await;
        assert_eq!(st, 400, "{v}");
        assert!(err(&v).contains("the codec failed"), "{v}");
        for (body, says) in [
            (json!({"fPort": 0, "bytes": "00"}), "application port"),
            (json!({"fPort": 1, "bytes": "0g"}), "not hex"),
        ] {
            let (st, v) = s.admin(Method::POST, &path, Some(body)).await;
            assert_eq!(st, 400, "{v}");
            assert!(err(&v).contains(says), "{v}");
        }
        // Cayenne LPP, and a profile without a codec.
        let (_, c) = s
            .admin(
                Method::POST,
                "/api/v1/device-profiles",
                Some(
                    json!({"name": "lpp", "region": "EU868", "macVersion": "1.0.3",
                        "regParamsRevision": "RP002-1.0.3", "supportsOtaa": true,
                        "payloadCodec": {"type": "cayenne_lpp"}}),
                ),
            )
            .await;
        let (st, v) = s
            .admin(
                Method::POST,
                &format!("/api/v1/device-profiles/{}/test-decode", id(&c)),
                Some(json!({"fPort": 1, "bytes": "016700e1"})),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["object"]["temperatureSensor"]["1"], 22.5, "{v}");
        let (_, n) = s
            .admin(
                Method::POST,
                "/api/v1/device-profiles",
                Some(
                    json!({"name": "none", "region": "EU868", "macVersion": "1.0.3",
                        "regParamsRevision": "RP002-1.0.3", "supportsOtaa": true}),
                ),
            )
            .await;
        let (st, v) = s
            .admin(
                Method::POST,
                &format!("/api/v1/device-profiles/{}/test-decode", id(&n)),
                Some(json!({"fPort": 1, "bytes": "00"})),
            )
            .await;
        assert_eq!(st, 400);
        assert!(err(&v).contains("no codec"), "{v}");
        s.stop().await;
    }
);
