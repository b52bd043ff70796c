//! Webhook security through the real binary and the real example receiver: the SSRF
//! guard (tenant keys refused for loopback, private and metadata targets, the admin
//! token allowed loopback, a target that became a tenant's refused at connect time
//! and counted, the operator allowlist), a bad allowlist stopping start-up, and
//! `examples/webhook-receiver.py` verifying the timestamped signature of a running
//! server and refusing stale, forged and legacy ones (SQLite and Postgres).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lorikeet_integration::signature::{sign, sign_v1};
use lorikeet_lorawan::Eui64;
use lorikeet_storage::testing::{TestDb, TEST_KEK_HEX};
use lorikeet_storage::{EventKind, IntegrationKind, IntegrationOwner, NewEvent, WriteOp};
use serde_json::{json, Value};
use support::binary;
use support::webhook::Receiver;
use support::*;
use uuid::Uuid;

#[test]
fn a_bad_allowed_target_network_stops_start_up() {
    let dir = binary::fresh_dir("allowlist");
    let mut child = binary::command(
        &dir,
        &["serve"],
        &[(
            "LORIKEET_SECURITY_ALLOWED_TARGET_NETWORKS",
            "10.20.0.0/16,10.0.0.1/8",
        )],
    )
    .spawn()
    .unwrap();
    let status = binary::wait(&mut child, Duration::from_secs(30));
    let stderr = binary::read(&dir, "stderr.log");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("security.allowed_target_networks")
            && stderr.contains("\"10.0.0.1/8\" is not a network in CIDR notation"),
        "{stderr}"
    );
    assert!(!dir.join("lorikeet.db").exists(), "nothing started");
    binary::remove_dir(&dir);
}

/// A tenant with an API key; returns the key.
async fn tenant_key(api: &Api) -> String {
    let t = api
        .post("/api/v1/tenants", json!({"name": "acme"}))
        .await
        .expect_status(201);
    let k = api
        .post(
            "/api/v1/api-keys",
            json!({"name": "acme", "tenantId": t["id"]}),
        )
        .await
        .expect_status(201);
    k["token"].as_str().unwrap().to_owned()
}

/// Writes an `up` event of `dev` (as the network server would) and returns its id.
async fn up_event(db: &TestDb, app: &str, dev: Eui64) -> String {
    let dedup = Uuid::new_v4().to_string();
    db.storage
        .apply(&[WriteOp::InsertEvent(NewEvent {
            dev_eui: dev,
            application_id: Uuid::parse_str(app).unwrap(),
            kind: EventKind::Up,
            payload: json!({"deduplicationId": dedup, "deviceInfo": {"devEui": dev.to_string()}})
                .to_string()
                .into(),
            created_at: chrono::Utc::now(),
        })])
        .await
        .unwrap();
    dedup
}

async fn until(what: &str, secs: u64, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The binary over `db`, in a fresh directory (removed by `stop`).
fn serve(db: &TestDb, extra: &[(&str, &str)]) -> binary::Served {
    let mut env = vec![
        ("LORIKEET_DATABASE_URL", db.url()),
        // The test store's KEK: every start (and the test's own writes) share it.
        ("LORIKEET_SECURITY_KEK", TEST_KEK_HEX),
        ("LORIKEET_API_ADMIN_TOKEN", ADMIN_TOKEN),
        ("LORIKEET_WEBHOOK_BACKOFF_BASE_MS", "50"),
        ("LORIKEET_WEBHOOK_BACKOFF_MAX_MS", "200"),
        ("LORIKEET_WEBHOOK_POLL_INTERVAL_MS", "100"),
    ];
    env.extend_from_slice(extra);
    binary::serve(&binary::fresh_dir("ssrf"), &env)
}

lorikeet_storage::storage_test!(
    webhook_targets_follow_who_set_them,
    |db: TestDb| async move {
        let receiver = Receiver::start().await;
        let served = tokio::task::block_in_place(|| serve(&db, &[]));
        let base = served.base();
        let api = Api::at(base.clone());
        let key = tenant_key(&api).await;

        // A tenant's key: loopback, private, link-local metadata and a name resolving to
        // loopback are refused, naming the address class; nothing is stored.
        let (st, app) = call(
            &base,
            &key,
            reqwest::Method::POST,
            "/api/v1/applications",
            Some(json!({"name": "t"})),
        )
        .await;
        assert_eq!(st, 201, "{app}");
        let tenant_hook = format!(
            "/api/v1/applications/{}/integrations/http",
            app["id"].as_str().unwrap()
        );
        let port = receiver.addr.port();
        for (url, says) in [
            (receiver.url(), "127.0.0.1 is loopback"),
            (format!("http://localhost:{port}/hook"), "is loopback"),
            ("http://10.1.2.3/hook".into(), "10.1.2.3 is private"),
            (
                "http://169.254.169.254/latest/meta-data/".into(),
                "169.254.169.254 is a cloud metadata address",
            ),
            (format!("http://[::1]:{port}/hook"), "::1 is loopback"),
        ] {
            let (st, v) = call(
                &base,
                &key,
                reqwest::Method::POST,
                &tenant_hook,
                Some(json!({"url": url})),
            )
            .await;
            assert_eq!(st, 400, "{url}: {v}");
            assert!(v["error"].as_str().unwrap().contains(says), "{url}: {v}");
        }
        let (st, _) = call(&base, &key, reqwest::Method::GET, &tenant_hook, None).await;
        assert_eq!(st, 404);
        // The admin token: loopback is fine, metadata is not.
        let (st, v) = call(
            &base,
            ADMIN_TOKEN,
            reqwest::Method::POST,
            &tenant_hook,
            Some(json!({"url": "http://169.254.169.254/"})),
        )
        .await;
        assert_eq!(st, 400, "{v}");

        // The admin's webhook to a local receiver delivers.
        let (app_id, profile) = abp_application(&api, "local", Some(&receiver.url())).await;
        let dev = Eui64::from_u64(0x0a0b_0c0d_0000_0001);
        api.post(
            "/api/v1/devices",
            json!({"devEui": dev.to_string(), "joinEui": "0000000000000000", "name": "d",
               "applicationId": app_id, "deviceProfileId": profile}),
        )
        .await
        .expect_status(201);
        let first = up_event(&db, &app_id, dev).await;
        assert!(
            receiver
                .wait_for(Duration::from_secs(20), |d| d.len() == 1)
                .await
        );
        assert_eq!(receiver.all()[0].body["deduplicationId"], first);

        tokio::task::block_in_place(|| served.stop());

        // The same target stored as a tenant's (as if its name now resolved to
        // loopback), with an event waiting: the server refuses to connect, says why and
        // counts it.
        let mut i = db
            .storage
            .get_integration(Uuid::parse_str(&app_id).unwrap(), IntegrationKind::Http)
            .await
            .unwrap()
            .unwrap();
        i.owner = IntegrationOwner::Tenant;
        i.updated_at = chrono::Utc::now();
        db.storage.upsert_integration(&i).await.unwrap();
        let second = up_event(&db, &app_id, dev).await;
        let served = tokio::task::block_in_place(|| serve(&db, &[]));
        let base = served.base();
        let api = Api::at(base.clone());
        let hook = format!("/api/v1/applications/{app_id}/integrations/http");
        let mut last = Value::Null;
        until("the refusal as lastError", 30, async || {
            last = api.get(&hook).await.body;
            last["lastError"] == "target address 127.0.0.1 is loopback and not allowlisted"
        })
        .await;
        assert_eq!(last["owner"], "tenant");
        assert!(
            !receiver
                .all()
                .iter()
                .any(|d| d.body["deduplicationId"] == second),
            "the refused event reached the receiver"
        );
        let text = metrics::scrape(&base).await.unwrap();
        assert!(
            metrics::sum(
                &text,
                "lorikeet_integration_webhook_failures_total",
                &[("reason", "refused_target")]
            ) >= 1.0,
            "{text}"
        );
        tokio::task::block_in_place(|| served.stop());

        // The operator allowlists loopback: the tenant may set it, and the waiting event
        // goes out.
        let served = tokio::task::block_in_place(|| {
            serve(
                &db,
                &[("LORIKEET_SECURITY_ALLOWED_TARGET_NETWORKS", "127.0.0.0/8")],
            )
        });
        let base = served.base();
        assert!(
            receiver
                .wait_for(Duration::from_secs(30), |d| d
                    .iter()
                    .any(|d| d.body["deduplicationId"] == second))
                .await,
            "the retried event after allowlisting"
        );
        let (st, v) = call(
            &base,
            &key,
            reqwest::Method::POST,
            &tenant_hook,
            Some(json!({"url": receiver.url()})),
        )
        .await;
        assert_eq!(st, 201, "{v}");
        tokio::task::block_in_place(|| served.stop());
    }
);

/// `examples/webhook-receiver.py` on a free port; returns it and its address.
fn python_receiver(secret: &str, extra: &[&str], out: &Path) -> (Child, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/webhook-receiver.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(["--port", "0", "--secret", secret, "--out"])
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs examples/webhook-receiver.py");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // "listening on http://127.0.0.1:PORT/, checking X-Lorikeet-Signature"
    let first = lines.next().expect("a start-up line").unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .trim_end_matches(',')
        .to_owned();
    // Keep reading its notes so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

async fn post(url: &str, sig: Option<&str>, body: &str) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}?event=up"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(s) = sig {
        req = req.header("X-Lorikeet-Signature", s);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_receiver_checks_signatures_and_their_age() {
    const SECRET: &str = "example-receiver-secret";
    let db = TestDb::sqlite().await;
    let dir = binary::fresh_dir("pyreceiver");
    let out = dir.join("events.jsonl");
    let (mut child, url) = tokio::task::block_in_place(|| python_receiver(SECRET, &[], &out));

    // A running server's webhook, signed with the default (timestamped) form.
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    let (app_id, profile) = abp_application(&api, "py", None).await;
    api.post(
        &format!("/api/v1/applications/{app_id}/integrations/http"),
        json!({"url": url, "signingSecret": SECRET}),
    )
    .await
    .expect_status(201);
    let dev = Eui64::from_u64(0x0a0b_0c0d_0000_0002);
    api.post(
        "/api/v1/devices",
        json!({"devEui": dev.to_string(), "joinEui": "0000000000000000", "name": "d",
               "applicationId": app_id, "deviceProfileId": profile}),
    )
    .await
    .expect_status(201);
    let dedup = up_event(&db, &app_id, dev).await;
    until("the example receiver to accept the event", 20, async || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains(&dedup)
    })
    .await;
    let state = api
        .get(&format!("/api/v1/applications/{app_id}/integrations/http"))
        .await
        .expect_status(200);
    assert!(state["lastError"].is_null(), "{state}");
    server.shutdown().await;

    // By hand: fresh and right is accepted; stale, forged and legacy are not.
    let body = r#"{"deduplicationId":"by-hand"}"#;
    let now = chrono::Utc::now().timestamp();
    let fresh = sign_v1(SECRET.as_bytes(), now, body.as_bytes());
    assert_eq!(post(&url, Some(&fresh), body).await.0, 200);
    let stale = sign_v1(SECRET.as_bytes(), now - 600, body.as_bytes());
    let (st, text) = post(&url, Some(&stale), body).await;
    assert_eq!(st, 401);
    assert!(text.contains("stale"), "{text}");
    let forged = sign_v1(b"not the secret", now, body.as_bytes());
    assert_eq!(post(&url, Some(&forged), body).await.0, 401);
    let moved = fresh.replacen(&format!("t={now}"), &format!("t={}", now + 1), 1);
    assert_eq!(post(&url, Some(&moved), body).await.0, 401, "t is signed");
    assert_eq!(
        post(&url, Some(&sign(SECRET.as_bytes(), body.as_bytes())), body)
            .await
            .0,
        401
    );
    assert_eq!(post(&url, None, body).await.0, 401);
    child.kill().unwrap();
    child.wait().unwrap();

    // --legacy checks the old form.
    let (mut child, url) =
        tokio::task::block_in_place(|| python_receiver(SECRET, &["--legacy"], &out));
    assert_eq!(
        post(&url, Some(&sign(SECRET.as_bytes(), body.as_bytes())), body)
            .await
            .0,
        200
    );
    assert_eq!(post(&url, Some(&fresh), body).await.0, 401);
    child.kill().unwrap();
    child.wait().unwrap();
    binary::remove_dir(&dir);
}
