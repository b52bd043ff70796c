//! Integrations end to end through a running server: a signed webhook received by a
//! real HTTP receiver, the live Server-Sent-Event stream, and the MQTT integration
//! against a real Mosquitto that is restarted mid-test (real UDP, SQLite, Postgres).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lorikeet_integration::signature::{verify_v1, REPLAY_WINDOW_S};
use lorikeet_lorawan::Eui64;
use lorikeet_sim::{RxMeta, SimGateway};
use lorikeet_storage::testing::TestDb;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use support::*;
use tokio::sync::mpsc;
use warp::Filter;

const SECRET: &str = "e2e-signing-secret";

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db: 8.0,
    }
}

#[derive(Debug, Clone)]
struct Hook {
    event: String,
    signed: bool,
    body: Value,
}

/// A webhook receiver answering 200, recording what it got.
async fn receiver() -> (SocketAddr, Arc<Mutex<Vec<Hook>>>) {
    let log: Arc<Mutex<Vec<Hook>>> = Arc::default();
    let l = log.clone();
    let route = warp::post()
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::header::optional::<String>("x-lorikeet-signature"))
        .and(warp::body::bytes())
        .map(
            move |q: HashMap<String, String>,
                  sig: Option<String>,
                  body: warp::hyper::body::Bytes| {
                l.lock().unwrap().push(Hook {
                    event: q.get("event").cloned().unwrap_or_default(),
                    // The default form: t=<unix>,v1=<hex HMAC of "t.body">, fresh.
                    signed: verify_v1(
                        SECRET.as_bytes(),
                        &body,
                        sig.as_deref().unwrap_or(""),
                        chrono::Utc::now().timestamp(),
                        REPLAY_WINDOW_S,
                    )
                    .is_ok(),
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                "ok"
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (addr, log)
}

/// Checks a received body against `schemas/events/{kind}.json`.
fn assert_schema(kind: &str, body: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../schemas/events/{kind}.json"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let v = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{kind} event does not match its schema: {errors:?}\n{body}"
    );
}

async fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads SSE events (name, data) from a streaming response into a channel.
fn read_sse(mut r: reqwest::Response) -> mpsc::UnboundedReceiver<(String, Value)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = String::new();
        while let Ok(Some(chunk)) = r.chunk().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !name.is_empty() {
                    let _ = tx.send((name, serde_json::from_str(&data).unwrap_or(Value::Null)));
                }
            }
        }
    });
    rx
}

async fn next_sse(rx: &mut mpsc::UnboundedReceiver<(String, Value)>) -> (String, Value) {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an SSE event within 5 s")
        .expect("stream open")
}

async fn webhook_and_stream(db: TestDb) {
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    let (hook_addr, hooks) = receiver().await;
    let dev_eui = Eui64::from_u64(0x0300_0000_0000_0001);
    let gw_id = Eui64::from_u64(0xaa00_0000_0000_0030);
    let (mut dev, app_id) = provision_otaa(
        &api,
        dev_eui,
        gw_id,
        "1.0.3",
        json!({"type": "cayenne_lpp"}),
    )
    .await;
    api.post(
        &format!("/api/v1/applications/{app_id}/integrations/http"),
        json!({
            "url": format!("http://{hook_addr}/lorikeet"),
            "headers": {"Authorization": "Bearer receiver-token"},
            "signingSecret": SECRET,
        }),
    )
    .await
    .expect_status(201);

    // Live streams, opened before anything happens.
    let http = reqwest::Client::new();
    let open = |path: String| {
        http.get(format!("{}{path}", api.base()))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    let dev_stream = open(format!("/api/v1/devices/{dev_eui}/events/stream"))
        .await
        .unwrap();
    assert_eq!(dev_stream.status(), 200);
    assert!(dev_stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut dev_sse = read_sse(dev_stream);
    let mut app_sse = read_sse(
        open(format!("/api/v1/applications/{app_id}/events/stream"))
            .await
            .unwrap(),
    );
    let unauthorised = http
        .get(format!(
            "{}/api/v1/devices/{dev_eui}/events/stream",
            api.base()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);
    let missing = open("/api/v1/devices/0300000000000099/events/stream".into())
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let gw = SimGateway::connect(gw_id, server.udp_addr).await.unwrap();
    gw.pull_data(Duration::from_secs(3)).await.unwrap();
    join(&gw, &mut dev, &rx()).await;
    // Channel 3 temperature 21.5 °C.
    let up = dev
        .uplink(2, &[0x03, 0x67, 0x00, 0xd7], false, 5, 1)
        .unwrap();
    gw.push(&up, &rx()).await.unwrap();

    wait_until("join and up webhooks", 10, || {
        hooks.lock().unwrap().len() >= 2
    })
    .await;
    let got = hooks.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got.iter().map(|h| h.event.as_str()).collect::<Vec<_>>(),
        ["join", "up"]
    );
    assert!(got.iter().all(|h| h.signed), "every webhook verifies");
    for h in &got {
        assert_schema(&h.event, &h.body);
    }
    let up_hook = &got[1].body;
    assert_eq!(up_hook["deviceInfo"]["devEui"], dev_eui.to_string());
    assert_eq!(up_hook["deviceInfo"]["applicationId"], app_id);
    assert_eq!(up_hook["fPort"], 2);
    assert_eq!(up_hook["object"]["temperatureSensor"]["3"], json!(21.5));
    // The stored event and the webhook are the same event.
    let stored = wait_events(&api, dev_eui, "up", 1).await;
    assert_eq!(stored[0]["deduplicationId"], up_hook["deduplicationId"]);

    // Both streams saw join then up, with the webhook's JSON.
    for sse in [&mut dev_sse, &mut app_sse] {
        let (name, body) = next_sse(sse).await;
        assert_eq!(name, "join");
        assert_eq!(body, got[0].body);
        let (name, body) = next_sse(sse).await;
        assert_eq!(name, "up");
        assert_eq!(body, *up_hook);
    }

    // Delivery state through the API.
    let mut state = Value::Null;
    for _ in 0..100 {
        state = api
            .get(&format!("/api/v1/applications/{app_id}/integrations/http"))
            .await
            .expect_status(200);
        if state["backlog"] == 0 && !state["lastDeliveredAt"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state["backlog"], 0, "{state}");
    assert!(!state["lastDeliveredAt"].is_null(), "{state}");
    assert!(state["lastError"].is_null(), "{state}");
    // Header values and the secret are write-only.
    assert_eq!(
        state["headers"],
        json!({"Authorization": "****"}),
        "{state}"
    );
    assert_eq!(state["signingSecretSet"], true);
    assert!(!state.to_string().contains("receiver-token"), "{state}");
    assert!(!state.to_string().contains(SECRET), "{state}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_and_stream_sqlite() {
    webhook_and_stream(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_and_stream_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    webhook_and_stream(db).await;
}

/// A Mosquitto of this test's own, so it can be restarted.
struct Broker {
    port: u16,
    child: Child,
}

impl Broker {
    async fn start(port: u16) -> Broker {
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("mosquitto is installed (scripts/test installs it)");
        let child = Command::new(bin)
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let mut broker = Broker { port, child };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return broker;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = broker.child.kill();
        let _ = broker.child.wait();
        panic!("mosquitto did not listen on {port}");
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test-side MQTT client that reconnects and resubscribes on its own.
fn subscriber(port: u16, filter: &str) -> (AsyncClient, mpsc::UnboundedReceiver<(String, Value)>) {
    let mut opts = MqttOptions::new(
        format!("e2e-{}", uuid::Uuid::new_v4().simple()),
        "127.0.0.1",
        port,
    );
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let (tx, rx) = mpsc::unbounded_channel();
    let c = client.clone();
    let filter = filter.to_owned();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = c.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let body = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    if tx.send((p.topic.clone(), body)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    (client, rx)
}

async fn queue_len(api: &Api, dev_eui: Eui64) -> usize {
    api.get(&format!("/api/v1/devices/{dev_eui}/queue"))
        .await
        .expect_status(200)["items"]
        .as_array()
        .unwrap()
        .len()
}

async fn mqtt(db: TestDb) {
    let broker = Broker::start(free_port()).await;
    let port = broker.port;
    let server = start_server_with(db.url(), |c| {
        c.mqtt.server = format!("mqtt://127.0.0.1:{port}");
        c.mqtt.reconnect_base_ms = 100;
        c.mqtt.reconnect_max_ms = 500;
        c.alerts.interval_ms = 200;
    })
    .await;
    let api = Api::new(&server);
    let dev_eui = Eui64::from_u64(0x0300_0000_0000_0002);
    let gw_id = Eui64::from_u64(0xaa00_0000_0000_0031);
    let (mut dev, app_id) =
        provision_otaa(&api, dev_eui, gw_id, "1.0.3", json!({"type": "none"})).await;
    let (client, mut events) = subscriber(port, "application/+/device/+/event/+");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let gw = SimGateway::connect(gw_id, server.udp_addr).await.unwrap();
    gw.pull_data(Duration::from_secs(3)).await.unwrap();
    join(&gw, &mut dev, &rx()).await;
    let base = format!("application/{app_id}/device/{dev_eui}");
    let (topic, body) = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("a join event over MQTT")
        .unwrap();
    assert_eq!(topic, format!("{base}/event/join"));
    assert_eq!(body["deviceInfo"]["devEui"], dev_eui.to_string());
    gw.push(&dev.uplink(9, &[0xab], false, 5, 1).unwrap(), &rx())
        .await
        .unwrap();
    let (topic, body) = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an up event over MQTT")
        .unwrap();
    assert_eq!(topic, format!("{base}/event/up"));
    assert_schema("up", &body);
    assert_eq!(body["fPort"], 9);
    assert_eq!(body["data"], "qw==");
    let stored = wait_events(&api, dev_eui, "up", 1).await;
    assert_eq!(stored[0]["deduplicationId"], body["deduplicationId"]);

    // A downlink command is enqueued; a malformed one is refused and enqueues nothing.
    // Commands go to a second device that never sends an uplink, so its queue is
    // only ever filled, never drained by a receive window.
    let profile = api
        .get(&format!("/api/v1/devices/{dev_eui}"))
        .await
        .expect_status(200)["deviceProfileId"]
        .clone();
    let quiet = Eui64::from_u64(0x0300_0000_0000_0003);
    api.post(
        "/api/v1/devices",
        json!({
            "devEui": quiet.to_string(),
            "joinEui": "70b3d57ed0000000",
            "name": "quiet",
            "applicationId": app_id,
            "deviceProfileId": profile,
        }),
    )
    .await
    .expect_status(201);
    let command = format!("application/{app_id}/device/{quiet}/command/down");
    // The wrong application in the topic is refused too.
    client
        .publish(
            format!(
                "application/{}/device/{quiet}/command/down",
                uuid::Uuid::new_v4()
            ),
            QoS::AtLeastOnce,
            false,
            br#"{"fPort":3,"data":"AQID"}"#.to_vec(),
        )
        .await
        .unwrap();
    client
        .publish(
            &command,
            QoS::AtLeastOnce,
            false,
            br#"{"fPort":3,"data":"AQID"}"#.to_vec(),
        )
        .await
        .unwrap();
    client
        .publish(
            &command,
            QoS::AtLeastOnce,
            false,
            br#"{"fPort":0,"data":"AQID"}"#.to_vec(),
        )
        .await
        .unwrap();
    let mut n = 0;
    for _ in 0..100 {
        n = queue_len(&api, quiet).await;
        if n >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!((n, queue_len(&api, quiet).await), (1, 1));
    let item = &api
        .get(&format!("/api/v1/devices/{quiet}/queue"))
        .await
        .expect_status(200)["items"][0];
    assert_eq!(
        (item["fPort"].clone(), item["data"].clone()),
        (json!(3), json!("AQID"))
    );

    // The broker restarts: the server reconnects, publishes again and resubscribes.
    broker.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _broker = Broker::start(port).await;
    let mut resumed = None;
    for f_port in 10..30u8 {
        gw.push(&dev.uplink(f_port, &[f_port], false, 5, 1).unwrap(), &rx())
            .await
            .unwrap();
        if let Ok(Some((topic, body))) =
            tokio::time::timeout(Duration::from_millis(750), events.recv()).await
        {
            if topic.ends_with("/event/up") && body["fPort"].as_u64() >= Some(10) {
                resumed = Some(body);
                break;
            }
        }
    }
    assert!(
        resumed.is_some(),
        "no up event over MQTT after the broker restart"
    );
    let mut enqueued = false;
    for _ in 0..20 {
        client
            .publish(
                &command,
                QoS::AtLeastOnce,
                false,
                br#"{"fPort":4,"data":"BA=="}"#.to_vec(),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        if queue_len(&api, quiet).await >= 2 {
            enqueued = true;
            break;
        }
    }
    assert!(
        enqueued,
        "the command subscription was not renewed after the restart"
    );

    // Alerts about a device go out on its topic as `alert` events.
    api.post(
        "/api/v1/alert-rules",
        json!({"name": "port 99", "kind": "field", "applicationId": app_id,
               "params": {"expression": "fPort == 99"}}),
    )
    .await
    .expect_status(201);
    let mut alert = None;
    // Uplinks until the rule is loaded (on the alert task's next tick) and fires.
    'outer: for _ in 0..20 {
        gw.push(&dev.uplink(99, &[1], false, 5, 1).unwrap(), &rx())
            .await
            .unwrap();
        while let Ok(Some((topic, body))) =
            tokio::time::timeout(Duration::from_millis(500), events.recv()).await
        {
            if topic.ends_with("/event/alert") {
                alert = Some((topic, body));
                break 'outer;
            }
        }
    }
    let (topic, body) = alert.expect("an alert event over MQTT");
    assert_eq!(topic, format!("{base}/event/alert"));
    assert_eq!(
        (&body["state"], &body["kind"], &body["subject"]),
        (
            &json!("firing"),
            &json!("field"),
            &json!(dev_eui.to_string())
        )
    );
    assert_schema("alert", &body);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_sqlite() {
    mqtt(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    mqtt(db).await;
}

/// A request with a bearer token of our choosing (tenant API keys).
async fn as_key(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The next SSE event, or `None` once the server ended the stream.
async fn next_or_end(rx: &mut mpsc::UnboundedReceiver<(String, Value)>) -> Option<(String, Value)> {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an SSE event or the end of the stream within 10 s")
}

/// Streams are authorised for as long as they run: a revoked key's stream ends, and a
/// device deleted and created again (same DevEUI) in another tenant is not followed
/// into that tenant (issue 20).
async fn streams_stay_authorised(db: TestDb) {
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    let base = api.base().to_owned();
    let http = reqwest::Client::new();
    let mut keys = Vec::new();
    for name in ["Tenant A", "Tenant B"] {
        let t = api
            .post("/api/v1/tenants", json!({ "name": name }))
            .await
            .expect_status(201);
        let tenant = t["id"].as_str().unwrap().to_owned();
        let mut tokens = Vec::new();
        for k in 0..2 {
            let key = api
                .post(
                    "/api/v1/api-keys",
                    json!({ "name": format!("{name} key {k}"), "tenantId": tenant }),
                )
                .await
                .expect_status(201);
            tokens.push((
                key["id"].as_str().unwrap().to_owned(),
                key["token"].as_str().unwrap().to_owned(),
            ));
        }
        keys.push(tokens);
    }
    let dev_eui = Eui64::from_u64(0x0300_0000_0000_00a1);
    // An application, profile and device of a tenant, with its key.
    let provision = |token: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let post = |path: &str, body: Value| {
                as_key(
                    &http,
                    reqwest::Method::POST,
                    format!("{base}{path}"),
                    &token,
                    Some(body),
                )
            };
            let (s, app) = post("/api/v1/applications", json!({ "name": "streams" })).await;
            assert_eq!(s, 201, "{app}");
            let (s, profile) = post(
                "/api/v1/device-profiles",
                json!({
                    "name": "streams", "region": "EU868", "macVersion": "1.0.3",
                    "regParamsRevision": "RP002-1.0.3", "supportsOtaa": false,
                    "adrEnabled": false, "payloadCodec": {"type": "none"}
                }),
            )
            .await;
            assert_eq!(s, 201, "{profile}");
            let (s, d) = post(
                "/api/v1/devices",
                json!({
                    "devEui": dev_eui.to_string(), "joinEui": "0000000000000000",
                    "name": "moving", "applicationId": app["id"], "deviceProfileId": profile["id"],
                }),
            )
            .await;
            assert_eq!(s, 201, "{d}");
            app["id"].as_str().unwrap().to_owned()
        }
    };
    let app_a = provision(keys[0][0].1.clone()).await;
    let open = |path: String, token: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let r = http
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            read_sse(r)
        }
    };
    let mut device_a = open(
        format!("/api/v1/devices/{dev_eui}/events/stream"),
        keys[0][0].1.clone(),
    )
    .await;
    let mut app_by_second_key = open(
        format!("/api/v1/applications/{app_a}/events/stream"),
        keys[0][1].1.clone(),
    )
    .await;

    // Revoking tenant A's second key ends the stream it opened.
    let (s, _) = as_key(
        &http,
        reqwest::Method::DELETE,
        format!("{base}/api/v1/api-keys/{}", keys[0][1].0),
        &keys[0][0].1,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (name, body) = next_or_end(&mut app_by_second_key)
        .await
        .expect("an unauthorized event");
    assert_eq!(name, "unauthorized", "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    assert!(
        next_or_end(&mut app_by_second_key).await.is_none(),
        "and the stream ends"
    );

    // The device leaves tenant A; the same DevEUI is created in tenant B.
    let (s, _) = as_key(
        &http,
        reqwest::Method::DELETE,
        format!("{base}/api/v1/devices/{dev_eui}"),
        &keys[0][0].1,
        None,
    )
    .await;
    assert_eq!(s, 204);
    provision(keys[1][0].1.clone()).await;
    let (name, body) = next_or_end(&mut device_a)
        .await
        .expect("an unauthorized event");
    assert_eq!(name, "unauthorized", "{body}");
    assert!(
        next_or_end(&mut device_a).await.is_none(),
        "and the stream ends"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_stay_authorised_sqlite() {
    streams_stay_authorised(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_stay_authorised_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    streams_stay_authorised(db).await;
}
