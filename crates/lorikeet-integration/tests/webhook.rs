//! The webhook worker against real HTTP receivers on loopback and real databases
//! (SQLite and Postgres): delivery with headers and signature, retries after 500s and
//! timeouts, a long outage with nothing lost and per-device order kept, and a dead
//! endpoint that does not hold back another application.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use lorikeet_integration::signature::{verify_v1, REPLAY_WINDOW_S};
use lorikeet_integration::{WebhookConfig, WebhookWorker};
use lorikeet_lorawan::Eui64;
use lorikeet_service::target::TargetGuard;
use lorikeet_storage::testing::TestDb;
use lorikeet_storage::*;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch, Notify};
use uuid::Uuid;
use warp::Filter;

const SECRET: &str = "receiver-secret";

/// What the receiver does with the n-th request (0-based) carrying this
/// `X-Lorikeet-Signature` ("" when none).
type Behaviour = Arc<dyn Fn(usize, &str) -> Reply + Send + Sync>;

/// What the receiver answers with an error status: text that must never reach
/// `lastError`.
const ERROR_BODY: &str = "Traceback: db password hunter2 at /srv/app.py";

#[derive(Clone, Copy)]
enum Reply {
    Ok,
    Status(u16),
    Hang,
}

#[derive(Debug, Clone)]
struct Received {
    event: String,
    token: Option<String>,
    content_type: Option<String>,
    signature_ok: bool,
    signature: String,
    raw: Vec<u8>,
    body: Value,
    status: u16,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Received>>>);

impl Log {
    fn all(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }
    fn delivered(&self) -> Vec<Received> {
        self.all().into_iter().filter(|r| r.status == 200).collect()
    }
}

/// Starts a receiver on `addr` (port 0 for any).
async fn receiver(addr: SocketAddr, behaviour: Behaviour) -> (SocketAddr, Log) {
    let log = Log::default();
    let l = log.clone();
    let route = warp::post()
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .then(
            move |q: HashMap<String, String>,
                  h: warp::http::HeaderMap,
                  body: warp::hyper::body::Bytes| {
                let l = l.clone();
                let behaviour = behaviour.clone();
                async move {
                    let n = l.0.lock().unwrap().len();
                    let sig = h
                        .get("x-lorikeet-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let reply = behaviour(n, sig);
                    let status = match reply {
                        Reply::Ok => 200,
                        Reply::Status(s) => s,
                        Reply::Hang => 0,
                    };
                    l.0.lock().unwrap().push(Received {
                        event: q.get("event").cloned().unwrap_or_default(),
                        token: h
                            .get("x-token")
                            .and_then(|v| v.to_str().ok())
                            .map(String::from),
                        content_type: h
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .map(String::from),
                        signature_ok: verify_v1(
                            SECRET.as_bytes(),
                            &body,
                            sig,
                            Utc::now().timestamp(),
                            REPLAY_WINDOW_S,
                        )
                        .is_ok(),
                        signature: sig.to_owned(),
                        raw: body.to_vec(),
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        status,
                    });
                    if let Reply::Hang = reply {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    warp::reply::with_status(
                        if status == 200 { "" } else { ERROR_BODY },
                        warp::http::StatusCode::from_u16(status.max(200)).unwrap(),
                    )
                }
            },
        );
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let bound = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (bound, log)
}

fn always(reply: Reply) -> Behaviour {
    Arc::new(move |_, _| reply)
}

struct Fixture {
    storage: Arc<dyn Storage>,
    wake: Arc<Notify>,
    changes: broadcast::Sender<Change>,
    stop: watch::Sender<bool>,
    worker: tokio::task::JoinHandle<()>,
}

impl Fixture {
    fn start(db: &TestDb, config: WebhookConfig) -> Fixture {
        Fixture::start_guarded(db, config, TargetGuard::default())
    }

    /// With the SSRF guard `guard` (an allowlist, a test resolver).
    fn start_guarded(db: &TestDb, config: WebhookConfig, guard: TargetGuard) -> Fixture {
        let wake = Arc::new(Notify::new());
        let (changes, rx) = broadcast::channel(64);
        let (stop, stop_rx) = watch::channel(false);
        let worker = WebhookWorker::new(db.storage.clone(), config, guard).unwrap();
        let worker = tokio::spawn(worker.run(wake.clone(), rx, stop_rx));
        Fixture {
            storage: db.storage.clone(),
            wake,
            changes,
            stop,
            worker,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(10), self.worker)
            .await
            .expect("worker stops")
            .unwrap();
    }

    /// Writes `n` up events per device (payload `{"devEui", "n", "deduplicationId"}`).
    async fn events(&self, app: Uuid, devices: &[Eui64], from: u32, n: u32) {
        let mut ops = Vec::new();
        for i in from..from + n {
            for d in devices {
                ops.push(WriteOp::InsertEvent(NewEvent {
                    dev_eui: *d,
                    application_id: app,
                    kind: EventKind::Up,
                    payload: json!({
                        "deduplicationId": Uuid::new_v4(),
                        "devEui": d.to_string(),
                        "n": i,
                    })
                    .to_string()
                    .into(),
                    created_at: Utc::now(),
                }));
            }
        }
        self.storage.apply(&ops).await.unwrap();
        self.wake.notify_one();
    }
}

fn fast_config() -> WebhookConfig {
    WebhookConfig {
        timeout_ms: 500,
        backoff_base_ms: 10,
        backoff_max_ms: 200,
        poll_interval_ms: 50,
        ..WebhookConfig::default()
    }
}

/// An application with `n` devices and a signed webhook to `url`, set with the
/// admin token (the receivers listen on loopback).
async fn provision(s: &dyn Storage, n: u64, url: &str) -> (Uuid, Vec<Eui64>, Uuid) {
    provision_owned(s, n, url, IntegrationOwner::Admin).await
}

/// Like [`provision`], the webhook set by `owner`.
async fn provision_owned(
    s: &dyn Storage,
    n: u64,
    url: &str,
    owner: IntegrationOwner,
) -> (Uuid, Vec<Eui64>, Uuid) {
    let now = Utc::now();
    let app = Application {
        id: Uuid::new_v4(),
        tenant_id: DEFAULT_TENANT_ID,
        name: "app".into(),
        description: String::new(),
        created_at: now,
        updated_at: now,
    };
    s.create_application(&app).await.unwrap();
    let profile = DeviceProfile {
        id: Uuid::new_v4(),
        tenant_id: DEFAULT_TENANT_ID,
        name: "p".into(),
        description: String::new(),
        region: "EU868".into(),
        mac_version: "1.0.3".into(),
        reg_params_revision: "RP002-1.0.3".into(),
        supports_otaa: true,
        supports_class_c: false,
        adr_enabled: true,
        rx1_delay: 1,
        rx1_dr_offset: 0,
        rx2_dr: None,
        rx2_frequency_hz: None,
        payload_codec: PayloadCodec::None,
        mac_settings: json!({}),
        created_at: now,
        updated_at: now,
    };
    s.create_device_profile(&profile).await.unwrap();
    let mut devices = Vec::new();
    let base = u64::from_be_bytes(app.id.as_bytes()[..8].try_into().unwrap()) & !0xffff;
    for i in 0..n {
        let d = Device {
            dev_eui: Eui64::from_u64(base + i),
            join_eui: Eui64::from_u64(1),
            tenant_id: DEFAULT_TENANT_ID,
            application_id: app.id,
            device_profile_id: profile.id,
            name: format!("d{i}"),
            description: String::new(),
            tags: BTreeMap::new(),
            skip_fcnt_check: false,
            disabled: false,
            device_class_enabled: DeviceClass::A,
            last_seen_at: None,
            created_at: now,
            updated_at: now,
        };
        s.create_device(&d).await.unwrap();
        devices.push(d.dev_eui);
    }
    let hook = Integration {
        id: Uuid::new_v4(),
        application_id: app.id,
        kind: IntegrationKind::Http,
        owner,
        config: serde_json::to_value(HttpIntegrationConfig {
            url: url.into(),
            headers: BTreeMap::from([("X-Token".to_string(), "t0ken".to_string())]),
            signing_secret: Some(SECRET.into()),
        })
        .unwrap(),
        last_delivered_at: None,
        last_error: None,
        last_error_at: None,
        created_at: now,
        updated_at: now,
    };
    s.upsert_integration(&hook).await.unwrap();
    (app.id, devices, hook.id)
}

async fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every device's `n` values in first-delivery order, and whether any was lost.
fn per_device(log: &[Received]) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in log {
        let d = r.body["devEui"].as_str().unwrap_or_default().to_string();
        let n = r.body["n"].as_u64().unwrap();
        let seq = out.entry(d).or_default();
        // At least once: a retry after a lost answer may repeat the last one.
        if seq.last() != Some(&n) {
            seq.push(n);
        }
    }
    out
}

fn handle(url: SocketAddr) -> String {
    format!("http://{url}/hook?key=1")
}

lorikeet_storage::storage_test!(
    delivers_every_event_in_order_signed_with_headers,
    |db: TestDb| async move {
        let (addr, log) = receiver(([127, 0, 0, 1], 0).into(), always(Reply::Ok)).await;
        let (app, devices, hook) = provision(&*db.storage, 3, &handle(addr)).await;
        let f = Fixture::start(&db, fast_config());
        f.events(app, &devices, 0, 20).await;
        wait_for("60 deliveries", 20, || log.delivered().len() >= 60).await;
        let got = log.all();
        assert_eq!(got.len(), 60, "each event exactly once when nothing fails");
        for r in &got {
            assert_eq!(r.event, "up");
            assert_eq!(r.token.as_deref(), Some("t0ken"));
            assert_eq!(r.content_type.as_deref(), Some("application/json"));
            assert!(r.signature_ok, "signature must verify over the raw body");
        }
        for (dev, seq) in per_device(&got) {
            assert_eq!(seq, (0..20).collect::<Vec<_>>(), "order of {dev}");
        }
        let mut backlog = u64::MAX;
        for _ in 0..100 {
            backlog = f.storage.outbox_backlog(hook).await.unwrap();
            if backlog == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(backlog, 0);
        let i = f
            .storage
            .get_integration(app, IntegrationKind::Http)
            .await
            .unwrap()
            .unwrap();
        assert!(i.last_delivered_at.is_some());
        assert_eq!(i.last_error, None);
        f.stop().await;
    }
);

lorikeet_storage::storage_test!(
    retries_500s_and_timeouts_with_the_same_body,
    |db: TestDb| async move {
        // 500, 503, a hang past the timeout, then success.
        let behaviour: Behaviour = Arc::new(|n, _| match n {
            0 => Reply::Status(500),
            1 => Reply::Status(503),
            2 => Reply::Hang,
            _ => Reply::Ok,
        });
        let (addr, log) = receiver(([127, 0, 0, 1], 0).into(), behaviour).await;
        let (app, devices, _) = provision(&*db.storage, 1, &handle(addr)).await;
        let f = Fixture::start(&db, fast_config());
        f.events(app, &devices, 0, 3).await;
        wait_for("3 deliveries", 20, || log.delivered().len() >= 3).await;
        let got = log.all();
        assert_eq!(got.len(), 6, "3 failures then 3 deliveries: {got:?}");
        // The first event was sent four times with the very same body.
        for r in &got[..4] {
            assert_eq!(r.body, got[0].body);
        }
        assert_eq!(
            per_device(&got).into_values().next().unwrap(),
            vec![0, 1, 2]
        );
        let i = f
            .storage
            .get_integration(app, IntegrationKind::Http)
            .await
            .unwrap()
            .unwrap();
        let last_error = i.last_error.unwrap_or_default();
        assert!(last_error.contains("timed out"), "{last_error}");
        assert!(i.last_delivered_at.is_some());
        f.stop().await;
    }
);

lorikeet_storage::storage_test!(
    a_long_outage_loses_nothing_and_keeps_order,
    |db: TestDb| async move {
        // Time is scaled down 200×: backoff 5 ms..1.5 s stands for 1 s..5 min, so
        // the 3 s outage stands for 10 minutes of a dead endpoint.
        let config = WebhookConfig {
            timeout_ms: 300,
            backoff_base_ms: 5,
            backoff_max_ms: 1_500,
            poll_interval_ms: 50,
            ..WebhookConfig::default()
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (app, devices, hook) = provision(&*db.storage, 5, &handle(port)).await;
        let f = Fixture::start(&db, config);
        // Events keep coming while nobody listens.
        for round in 0..10 {
            f.events(app, &devices, round * 10, 10).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let backlog = f.storage.outbox_backlog(hook).await.unwrap();
        assert_eq!(backlog, 500, "nothing delivered, nothing dropped");
        let i = f
            .storage
            .get_integration(app, IntegrationKind::Http)
            .await
            .unwrap()
            .unwrap();
        assert!(
            i.last_error.as_deref().unwrap_or("").contains("connect"),
            "{:?}",
            i.last_error
        );
        // The endpoint comes back.
        let (_, log) = receiver(port, always(Reply::Ok)).await;
        wait_for("500 deliveries after recovery", 30, || {
            per_device(&log.all()).values().map(Vec::len).sum::<usize>() >= 500
        })
        .await;
        for (dev, seq) in per_device(&log.all()) {
            assert_eq!(
                seq,
                (0..100).collect::<Vec<_>>(),
                "order and completeness of {dev}"
            );
        }
        f.stop().await;
    }
);

lorikeet_storage::storage_test!(
    a_hanging_endpoint_does_not_hold_back_another_application,
    |db: TestDb| async move {
        let (slow_addr, slow_log) = receiver(([127, 0, 0, 1], 0).into(), always(Reply::Hang)).await;
        let (fast_addr, fast_log) = receiver(([127, 0, 0, 1], 0).into(), always(Reply::Ok)).await;
        let (slow_app, slow_devices, _) = provision(&*db.storage, 20, &handle(slow_addr)).await;
        let (fast_app, fast_devices, _) = provision(&*db.storage, 20, &handle(fast_addr)).await;
        let config = WebhookConfig {
            timeout_ms: 4_000,
            poll_interval_ms: 50,
            concurrency_per_integration: 4,
            ..WebhookConfig::default()
        };
        let f = Fixture::start(&db, config);
        f.events(slow_app, &slow_devices, 0, 5).await;
        wait_for("the slow endpoint to be busy", 10, || {
            !slow_log.all().is_empty()
        })
        .await;
        f.events(fast_app, &fast_devices, 0, 5).await;
        wait_for("100 fast deliveries", 20, || {
            fast_log.delivered().len() >= 100
        })
        .await;
        // All of it happened while the slow endpoint's first requests were still
        // hanging: none of them has even timed out yet.
        let slow = f
            .storage
            .get_integration(slow_app, IntegrationKind::Http)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            slow.last_error, None,
            "fast deliveries waited for the slow endpoint"
        );
        assert!(
            slow_log.all().len() <= 4,
            "at most concurrency_per_integration requests to it"
        );
        f.stop().await;
    }
);

lorikeet_storage::storage_test!(
    fixed_settings_are_picked_up_from_the_change_broadcast,
    |db: TestDb| async move {
        let (addr, log) = receiver(([127, 0, 0, 1], 0).into(), always(Reply::Ok)).await;
        let (app, devices, _) = provision(&*db.storage, 1, "ftp://nowhere/").await;
        let f = Fixture::start(&db, fast_config());
        f.events(app, &devices, 0, 2).await;
        let mut err = None;
        for _ in 0..200 {
            let i = f
                .storage
                .get_integration(app, IntegrationKind::Http)
                .await
                .unwrap()
                .unwrap();
            if i.last_error.is_some() {
                err = i.last_error;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            err.unwrap_or_default().contains("http://"),
            "unusable URL reported"
        );
        // The operator fixes the URL through the API, which announces the change.
        let mut i = f
            .storage
            .get_integration(app, IntegrationKind::Http)
            .await
            .unwrap()
            .unwrap();
        i.config = json!({"url": handle(addr), "signingSecret": SECRET});
        i.updated_at = Utc::now();
        f.storage.upsert_integration(&i).await.unwrap();
        f.changes.send(Change::IntegrationChanged(app)).unwrap();
        wait_for("2 deliveries", 20, || log.delivered().len() >= 2).await;
        assert_eq!(
            per_device(&log.all()).into_values().next().unwrap(),
            vec![0, 1]
        );
        f.stop().await;
    }
);

/// The integration's `last_error` once it has one.
async fn last_error(s: &dyn Storage, app: Uuid) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let i = s
            .get_integration(app, IntegrationKind::Http)
            .await
            .unwrap()
            .unwrap();
        if let Some(e) = i.last_error {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no last_error within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

lorikeet_storage::storage_test!(
    last_error_names_the_status_and_never_the_body,
    |db: TestDb| async move {
        let (addr, log) = receiver(([127, 0, 0, 1], 0).into(), always(Reply::Status(500))).await;
        let (app, devices, hook) = provision(&*db.storage, 1, &handle(addr)).await;
        let f = Fixture::start(&db, fast_config());
        f.events(app, &devices, 0, 1).await;
        wait_for("two attempts", 20, || log.all().len() >= 2).await;
        let e = last_error(&*f.storage, app).await;
        assert_eq!(e, "HTTP 500 Internal Server Error");
        // The outbox row's error (what a retry writes) holds no body either.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let rows = f
                .storage
                .claim_outbox(
                    Utc::now() + chrono::Duration::days(1),
                    Utc::now() + chrono::Duration::days(2),
                    10,
                )
                .await
                .unwrap();
            let errors: Vec<String> = rows
                .items
                .iter()
                .filter(|r| r.integration_id == hook)
                .filter_map(|r| r.last_error.clone())
                .collect();
            for e in &errors {
                assert!(!e.contains("hunter2") && !e.contains("Traceback"), "{e}");
            }
            if !errors.is_empty() {
                assert!(errors[0].starts_with("HTTP 500"), "{errors:?}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no outbox row with an error"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        f.stop().await;
    }
);

lorikeet_storage::storage_test!(
    every_attempt_is_signed_with_a_fresh_timestamp,
    |db: TestDb| async move {
        // Fails every attempt signed in the first attempt's second: the event can
        // only be delivered by a retry signed later (signed when sent, not stored).
        let first_t: Arc<Mutex<Option<String>>> = Arc::default();
        let ft = first_t.clone();
        let behaviour: Behaviour = Arc::new(move |_, sig| {
            let t = sig.split(',').next().unwrap_or("").to_owned();
            let mut first = ft.lock().unwrap();
            let first = first.get_or_insert_with(|| t.clone());
            if *first == t {
                Reply::Status(500)
            } else {
                Reply::Ok
            }
        });
        let (addr, log) = receiver(([127, 0, 0, 1], 0).into(), behaviour).await;
        let (app, devices, _) = provision(&*db.storage, 1, &handle(addr)).await;
        let config = WebhookConfig {
            backoff_base_ms: 100,
            backoff_max_ms: 300,
            ..fast_config()
        };
        let f = Fixture::start(&db, config);
        f.events(app, &devices, 0, 1).await;
        wait_for("a delivery", 20, || !log.delivered().is_empty()).await;
        let got = log.all();
        assert!(got.len() >= 2, "{got:?}");
        let now = Utc::now().timestamp();
        for r in &got {
            // t=<unix seconds>,v1=<64 lower-case hex digits>
            let (t, v1) = r.signature.split_once(',').unwrap();
            let t: i64 = t.strip_prefix("t=").unwrap().parse().unwrap();
            let v1 = v1.strip_prefix("v1=").unwrap();
            assert_eq!(v1.len(), 64);
            assert!(v1
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert!((now - t).abs() <= 30, "t={t} is not now ({now})");
            assert!(r.signature_ok, "verifies over t.body: {}", r.signature);
            assert_eq!(r.body, got[0].body, "the same event each time");
        }
        let last = &got[got.len() - 1];
        assert_eq!(last.status, 200);
        assert_ne!(last.signature, got[0].signature);
        f.stop().await;
    }
);

lorikeet_storage::storage_test!(
    the_legacy_setting_sends_the_body_only_signature,
    |db: TestDb| async move {
        let (addr, log) = receiver(([127, 0, 0, 1], 0).into(), always(Reply::Ok)).await;
        let (app, devices, _) = provision(&*db.storage, 1, &handle(addr)).await;
        let config = WebhookConfig {
            signature_version: lorikeet_integration::signature::SignatureVersion::Legacy,
            ..fast_config()
        };
        let f = Fixture::start(&db, config);
        f.events(app, &devices, 0, 2).await;
        wait_for("2 deliveries", 20, || log.delivered().len() >= 2).await;
        for r in log.all() {
            assert!(r.signature.starts_with("sha256="), "{}", r.signature);
            assert!(!r.signature_ok, "not the v1 form");
            assert!(
                lorikeet_integration::signature::verify(SECRET.as_bytes(), &r.raw, &r.signature),
                "{}",
                r.signature
            );
        }
        f.stop().await;
    }
);

lorikeet_storage::storage_test!(
    a_tenant_target_is_checked_again_when_connecting,
    |db: TestDb| async move {
        // Stored as a tenant's (as if it had resolved to a public address when it
        // was set): the worker resolves again and refuses loopback.
        let (addr, log) = receiver(([127, 0, 0, 1], 0).into(), always(Reply::Ok)).await;
        let port = addr.port();
        let (ip_app, ip_devices, _) = provision_owned(
            &*db.storage,
            1,
            &format!("http://127.0.0.1:{port}/hook"),
            IntegrationOwner::Tenant,
        )
        .await;
        let (name_app, name_devices, _) = provision_owned(
            &*db.storage,
            1,
            &format!("http://localhost:{port}/hook"),
            IntegrationOwner::Tenant,
        )
        .await;
        let f = Fixture::start(&db, fast_config());
        f.events(ip_app, &ip_devices, 0, 1).await;
        f.events(name_app, &name_devices, 0, 1).await;
        let e = last_error(&*f.storage, ip_app).await;
        assert_eq!(
            e,
            "target address 127.0.0.1 is loopback and not allowlisted"
        );
        let e = last_error(&*f.storage, name_app).await;
        assert!(
            e.starts_with("target address") && e.contains("is loopback and not allowlisted"),
            "{e}"
        );
        assert!(log.all().is_empty(), "nothing reached the receiver");

        // The admin re-saves it: the same URL is delivered to.
        let mut i = f
            .storage
            .get_integration(name_app, IntegrationKind::Http)
            .await
            .unwrap()
            .unwrap();
        i.owner = IntegrationOwner::Admin;
        i.updated_at = Utc::now();
        f.storage.upsert_integration(&i).await.unwrap();
        f.changes
            .send(Change::IntegrationChanged(name_app))
            .unwrap();
        wait_for("the retried event", 20, || log.delivered().len() == 1).await;
        f.stop().await;
    }
);

/// A test's DNS: answers from a table, changeable while the worker runs.
#[derive(Debug, Default)]
struct TableResolver(Mutex<HashMap<String, Vec<std::net::IpAddr>>>);

impl lorikeet_service::target::Resolver for TableResolver {
    fn lookup<'a>(&'a self, host: &'a str) -> lorikeet_service::target::Lookup<'a> {
        let found = self.0.lock().unwrap().get(host).cloned();
        Box::pin(async move {
            found.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
        })
    }
}

lorikeet_storage::storage_test!(
    names_are_resolved_through_the_guard_and_only_checked_addresses_used,
    |db: TestDb| async move {
        use lorikeet_service::target::TargetPolicy;
        let (addr, log) = receiver(([127, 0, 0, 1], 0).into(), always(Reply::Ok)).await;
        let dns = Arc::new(TableResolver::default());
        // The name rebinds to loopback (it pointed elsewhere when it was set).
        dns.0.lock().unwrap().insert(
            "hooks.rebind.test".into(),
            vec!["127.0.0.1".parse().unwrap()],
        );
        let url = format!("http://hooks.rebind.test:{}/hook", addr.port());
        let (tenant_app, tenant_devices, _) =
            provision_owned(&*db.storage, 1, &url, IntegrationOwner::Tenant).await;
        let (admin_app, admin_devices, _) =
            provision_owned(&*db.storage, 1, &url, IntegrationOwner::Admin).await;
        let guard = TargetGuard::new(TargetPolicy::default(), dns.clone());
        let f = Fixture::start_guarded(&db, fast_config(), guard);
        f.events(tenant_app, &tenant_devices, 0, 1).await;
        f.events(admin_app, &admin_devices, 0, 1).await;
        let e = last_error(&*f.storage, tenant_app).await;
        assert_eq!(
            e,
            "target address 127.0.0.1 is loopback and not allowlisted"
        );
        // The admin's reaches the receiver through the name that exists only in
        // the test's resolver: the connection went to the checked address.
        wait_for("the admin's event", 20, || log.delivered().len() == 1).await;
        assert_eq!(
            log.delivered()[0].body["devEui"],
            admin_devices[0].to_string()
        );
        f.stop().await;

        // An operator allowlist opens loopback to the tenant's webhook.
        let policy = TargetPolicy::from_cidrs(&["127.0.0.0/8"]).unwrap();
        let f = Fixture::start_guarded(&db, fast_config(), TargetGuard::new(policy, dns));
        wait_for("the tenant's event after its retry", 30, || {
            log.delivered().len() == 2
        })
        .await;
        assert_eq!(
            log.delivered()[1].body["devEui"],
            tenant_devices[0].to_string()
        );
        f.stop().await;
    }
);
