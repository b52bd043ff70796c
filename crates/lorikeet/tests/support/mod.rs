//! Starting a server for a test and talking to its API.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use lorikeet::{Config, Server};
use serde_json::Value;

pub mod binary;
pub mod metrics;
pub mod pg_cluster;
pub mod proxy;
pub mod webhook;

/// A loopback TCP port free right now (for a broker a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The admin token test servers use.
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

/// A complete server on loopback ports 0, over `database_url`.
pub async fn start_server(database_url: &str) -> Server {
    start_server_with(database_url, |_| {}).await
}

/// Like [`start_server`], with `adjust` applied to the configuration first.
pub async fn start_server_with(database_url: &str, adjust: impl FnOnce(&mut Config)) -> Server {
    // Logs show with --nocapture; RUST_LOG narrows them.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    let mut config = Config::default();
    config.database.url = database_url.to_owned();
    config.api.bind = "127.0.0.1:0".parse().unwrap();
    config.api.admin_token = ADMIN_TOKEN.into();
    config.gateway.udp_bind = "127.0.0.1:0".parse().unwrap();
    // The KEK the test databases (`TestDb`) seal secrets under.
    config.security.kek = lorikeet_storage::testing::TEST_KEK_HEX.into();
    adjust(&mut config);
    lorikeet::start(config, None).await.expect("server starts")
}

/// A response: status and JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The body, after checking the status.
    pub fn expect_status(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status, body: {}",
            self.body
        );
        self.body
    }
}

/// `token`'s request to the API at `base` (`http://127.0.0.1:PORT`): status and JSON
/// body (`Null` when there is none).
pub async fn call(
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(token)
        .timeout(std::time::Duration::from_secs(20));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// An API client with the admin token.
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(server: &Server) -> Self {
        Api {
            base: format!("http://{}", server.api_addr),
            http: reqwest::Client::new(),
        }
    }

    /// `GET` of `path`: status and the body as text, unparsed.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("HTTP");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    /// A client of the API at `base` (`http://127.0.0.1:PORT`), e.g. of a
    /// [`binary::Served`] started with `LORIKEET_API_ADMIN_TOKEN` = [`ADMIN_TOKEN`].
    pub fn at(base: impl Into<String>) -> Self {
        Api {
            base: base.into(),
            http: reqwest::Client::new(),
        }
    }

    /// `http://127.0.0.1:PORT` of the API.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let r = req.bearer_auth(ADMIN_TOKEN).send().await.expect("HTTP");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// Like the other methods, but a connection error (e.g. a server just killed) is
    /// `None` instead of a panic.
    pub async fn try_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<Reply> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .timeout(std::time::Duration::from_secs(10));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.ok()?;
        let status = r.status().as_u16();
        let text = r.text().await.ok()?;
        Some(Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        })
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.put(format!("{}{path}", self.base)).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }
}

/// Provisions an application, a profile (with `codec`, e.g. `{"type":"none"}`), an
/// OTAA device and a gateway; returns the simulated device and the application id.
pub async fn provision_otaa(
    api: &Api,
    dev_eui: lorikeet_lorawan::Eui64,
    gateway: lorikeet_lorawan::Eui64,
    mac_version: &str,
    codec: Value,
) -> (lorikeet_sim::SimDevice, String) {
    use serde_json::json;
    let app = api
        .post(
            "/api/v1/applications",
            json!({"name": format!("app-{dev_eui}")}),
        )
        .await
        .expect_status(201);
    let profile = api
        .post(
            "/api/v1/device-profiles",
            json!({
                "name": format!("profile-{dev_eui}"),
                "region": "EU868",
                "macVersion": mac_version,
                "regParamsRevision": "RP002-1.0.3",
                "supportsOtaa": true,
                "supportsClassC": false,
                "adrEnabled": false,
                "payloadCodec": codec,
            }),
        )
        .await
        .expect_status(201);
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
    let app_key = lorikeet_lorawan::Aes128Key::from_bytes([0x2b; 16]);
    let nwk_key =
        (mac_version == "1.1.0").then(|| lorikeet_lorawan::Aes128Key::from_bytes([0x3c; 16]));
    let mut keys = json!({"appKey": app_key.expose_hex()});
    if let Some(k) = &nwk_key {
        keys["nwkKey"] = json!(k.expose_hex());
    }
    let status = api
        .put(&format!("/api/v1/devices/{dev_eui}/keys"), keys)
        .await
        .status;
    assert!(status == 200 || status == 204, "keys: {status}");
    let gw = api
        .post(
            "/api/v1/gateways",
            json!({"gatewayId": gateway.to_string(), "name": format!("gw-{gateway}")}),
        )
        .await;
    assert!(
        gw.status == 201 || gw.status == 409,
        "gateway: {}",
        gw.status
    );
    (
        lorikeet_sim::SimDevice::otaa(
            dev_eui,
            "70b3d57ed0000000".parse().unwrap(),
            app_key,
            nwk_key,
        ),
        app["id"].as_str().unwrap().to_owned(),
    )
}

/// A device's events of `kind` as the API lists them, oldest first.
pub async fn events_of(api: &Api, dev_eui: lorikeet_lorawan::Eui64, kind: &str) -> Vec<Value> {
    let r = api
        .get(&format!("/api/v1/devices/{dev_eui}/events?limit=100"))
        .await
        .expect_status(200);
    let mut out: Vec<Value> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == kind)
        .map(|i| i["payload"].clone())
        .collect();
    out.reverse();
    out
}

/// Waits (up to 5 s) until the device has at least `n` events of `kind`.
pub async fn wait_events(
    api: &Api,
    dev_eui: lorikeet_lorawan::Eui64,
    kind: &str,
    n: usize,
) -> Vec<Value> {
    for _ in 0..100 {
        let e = events_of(api, dev_eui, kind).await;
        if e.len() >= n {
            return e;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "expected {n} {kind} events, got {:?}",
        events_of(api, dev_eui, kind).await
    );
}

/// Joins `dev` through `gw` (asserting the JoinAccept arrives and opens).
pub async fn join(
    gw: &lorikeet_sim::SimGateway,
    dev: &mut lorikeet_sim::SimDevice,
    rx: &lorikeet_sim::RxMeta,
) {
    use std::time::Duration;
    gw.push(&dev.join_request(), rx).await.unwrap();
    let dl = gw
        .recv_downlink(Duration::from_secs(3))
        .await
        .unwrap()
        .expect("a JoinAccept");
    dev.handle_join_accept(&dl.packet.phy_payload).unwrap();
    gw.tx_ack(dl.token, None).await.unwrap();
}

/// An application named `name` (with an HTTP integration to `webhook` if given) and
/// an EU868 LoRaWAN 1.0.3 ABP profile without codec; returns their ids.
pub async fn abp_application(api: &Api, name: &str, webhook: Option<&str>) -> (String, String) {
    use serde_json::json;
    let app = api
        .post("/api/v1/applications", json!({ "name": name }))
        .await
        .expect_status(201);
    let app_id = app["id"].as_str().unwrap().to_owned();
    if let Some(url) = webhook {
        let r = api
            .post(
                &format!("/api/v1/applications/{app_id}/integrations/http"),
                json!({ "url": url }),
            )
            .await;
        assert!(r.status == 201 || r.status == 200, "{r:?}");
    }
    let profile = api
        .post(
            "/api/v1/device-profiles",
            json!({
                "name": format!("{name}-abp"), "region": "EU868", "macVersion": "1.0.3",
                "regParamsRevision": "RP002-1.0.3", "supportsOtaa": false,
                "adrEnabled": false, "payloadCodec": {"type": "none"}
            }),
        )
        .await
        .expect_status(201);
    (app_id, profile["id"].as_str().unwrap().to_owned())
}

/// `n` ABP devices of `profile_id` in `app_id`, activated through the API: DevEUI
/// `eui_base | i`, DevAddr `addr_base | i`, named `{name}{i}`, ready to send.
pub async fn abp_devices(
    api: &Api,
    app_id: &str,
    profile_id: &str,
    (eui_base, addr_base): (u64, u32),
    n: u8,
    name: &str,
) -> Vec<lorikeet_sim::SimDevice> {
    use lorikeet_lorawan::crypto::SessionKeys;
    use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
    use serde_json::json;
    let mut devices = Vec::new();
    for i in 0..n {
        let eui = Eui64::from_u64(eui_base | u64::from(i));
        let addr = DevAddr::from_u32(addr_base | u32::from(i));
        let tag = eui_base.to_be_bytes()[0];
        let keys = SessionKeys::from_1_0(
            Aes128Key::from_bytes([i, tag, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Aes128Key::from_bytes([i, tag, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
        );
        api.post(
            "/api/v1/devices",
            json!({"devEui": eui.to_string(), "joinEui": "0000000000000000",
                   "name": format!("{name}{i}"), "applicationId": app_id,
                   "deviceProfileId": profile_id}),
        )
        .await
        .expect_status(201);
        api.post(
            &format!("/api/v1/devices/{eui}/activate"),
            json!({"devAddr": addr.to_string(), "appSKey": keys.app_s_key.expose_hex(),
                   "nwkSKey": keys.f_nwk_s_int_key.expose_hex()}),
        )
        .await
        .expect_status(200);
        devices.push(lorikeet_sim::SimDevice::abp(eui, addr, keys, false, 0));
    }
    devices
}

/// Gateway `eui` created through the API and connected (its PULL_DATA answered).
pub async fn online_gateway(api: &Api, server: &Server, eui: u64) -> lorikeet_sim::SimGateway {
    let eui = lorikeet_lorawan::Eui64::from_u64(eui);
    api.post(
        "/api/v1/gateways",
        serde_json::json!({"gatewayId": eui.to_string(), "name": "gw"}),
    )
    .await
    .expect_status(201);
    let gw = lorikeet_sim::SimGateway::connect(eui, server.udp_addr)
        .await
        .unwrap();
    gw.pull_data(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    gw
}

/// Every device of `devices` sends one uplink (FPort 2, payload `[round]`) per
/// round of `rounds` through `gw`; how many were sent.
pub async fn send_rounds(
    gw: &lorikeet_sim::SimGateway,
    devices: &mut [lorikeet_sim::SimDevice],
    rounds: std::ops::Range<u8>,
    rx: &lorikeet_sim::RxMeta,
) -> usize {
    let mut sent = 0;
    for round in rounds {
        for d in devices.iter_mut() {
            gw.push(&d.uplink(2, &[round], false, 5, 0).unwrap(), rx)
                .await
                .unwrap();
            sent += 1;
        }
    }
    sent
}

/// Waits until the integration at `path` shows a broker outage: a `lastError` and
/// events waiting.
pub async fn wait_outage_shown(api: &Api, path: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let s = api.get(path).await.expect_status(200);
        if s["lastError"].is_string() && s["backlog"].as_i64().unwrap_or(0) > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outage shows: {s}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The payload bytes (the rounds of [`send_rounds`]) of each device's events in
/// arrival order, each event counted at its first arrival (`id` tells repeats).
pub fn rounds_by_device<'a>(
    events: impl IntoIterator<Item = (&'a str, &'a Value)>,
) -> std::collections::BTreeMap<String, Vec<u64>> {
    use base64::Engine as _;
    let mut seen = std::collections::BTreeSet::new();
    let mut rounds: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for (id, body) in events {
        if !seen.insert(id) {
            continue;
        }
        let data = body["data"].as_str().unwrap();
        let byte = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap()[0];
        rounds
            .entry(body["deviceInfo"]["devEui"].as_str().unwrap().to_owned())
            .or_default()
            .push(u64::from(byte));
    }
    rounds
}

/// Integration deliveries retried within a test's patience: backoff 100–500 ms,
/// fresh events polled every 100 ms.
pub fn fast_retries(c: &mut Config) {
    c.webhook.backoff_base_ms = 100;
    c.webhook.backoff_max_ms = 500;
    c.webhook.poll_interval_ms = 100;
}

/// Each body POSTed to `path` is refused with 400 and an error containing its needle.
pub async fn assert_refused(api: &Api, path: &str, cases: Vec<(Value, &str)>) {
    for (body, needle) in cases {
        let r = api.post(path, body.clone()).await.expect_status(400);
        assert!(r["error"].as_str().unwrap().contains(needle), "{body}: {r}");
    }
}
