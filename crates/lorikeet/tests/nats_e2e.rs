//! The NATS JetStream integration end to end (issue 22): a NATS server of the
//! test's own (`nats-server -js`, so it can be stopped), events published to their
//! subjects with `Nats-Msg-Id`, in order per device, nothing lost and nothing stored
//! twice across a broker outage; downlink commands from the command subject; on
//! SQLite and Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use lorikeet_sim::RxMeta;
use lorikeet_storage::testing::TestDb;
use serde_json::{json, Value};
use support::*;

const GATEWAY: u64 = 0x00aa_0000_0000_0e01;
/// The test server's credentials (the integration authenticates).
const USER: &str = "lorikeet";
const PASSWORD: &str = "s3cret";

fn local(port: u16) -> String {
    format!("nats://{USER}:{PASSWORD}@127.0.0.1:{port}")
}

/// The test's own client of the server.
async fn connect(port: u16) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(USER.into(), PASSWORD.into())
        .connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap()
}

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db: 8.0,
    }
}

/// A nats-server with JetStream on `port`, storing in `dir` (kept across restarts).
struct Nats {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Nats {
    async fn start(port: u16, dir: PathBuf) -> Nats {
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("nats-server is installed (scripts/test installs it)");
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js"])
            .args(["--user", USER, "--pass", PASSWORD, "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        let n = Nats {
            port,
            dir,
            child: Some(child),
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nats-server did not listen on {port}");
    }

    async fn restart(&mut self) {
        let again = Nats::start(self.port, self.dir.clone()).await;
        let mut again = std::mem::ManuallyDrop::new(again);
        self.child = again.child.take();
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The stream's messages in order: (subject, Nats-Msg-Id, body).
async fn stored(port: u16) -> Vec<(String, String, Value)> {
    let client = connect(port).await;
    let js = jetstream::new(client);
    let mut stream = js.get_stream("LORIKEET").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let m = stream.get_raw_message(seq).await.unwrap();
        let id = m
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        out.push((
            m.subject.to_string(),
            id,
            serde_json::from_slice(&m.payload).unwrap(),
        ));
    }
    out
}

async fn wait_stored(port: u16, n: usize, what: &str) -> Vec<(String, String, Value)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = stored(port).await;
        if s.len() >= n {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} of {n} events in the stream",
            s.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn nats_delivery(db: TestDb) {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("lorikeet-nats-{}", uuid::Uuid::new_v4()));
    let mut nats = Nats::start(port, dir).await;
    {
        let client = connect(port).await;
        jetstream::new(client)
            .create_stream(jetstream::stream::Config {
                name: "LORIKEET".into(),
                subjects: vec!["lorikeet.>".into()],
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let server = start_server_with(db.url(), |c| {
        fast_retries(c);
        c.webhook.timeout_ms = 1_000;
    })
    .await;
    let api = Api::new(&server);
    let (app_id, profile_id) = abp_application(&api, "nats", None).await;

    // Settings are checked.
    assert_refused(
        &api,
        &format!("/api/v1/applications/{app_id}/integrations/nats"),
        vec![
            (json!({"url": "http://127.0.0.1:4222"}), "nats://"),
            (
                json!({"url": format!("nats://127.0.0.1:{port}"), "subject": "a.{device}"}),
                "unknown placeholder",
            ),
            (
                json!({"url": format!("nats://127.0.0.1:{port}"), "subject": "a.>"}),
                "wildcards",
            ),
            (json!({"url": "nats://h", "password": "p"}), "needs a user"),
            (json!({"url": "nats://h", "extra": 1}), "unknown field"),
        ],
    )
    .await;
    api.post(
        &format!("/api/v1/applications/{app_id}/integrations/nats"),
        json!({"url": local(port), "commandSubject": "commands.{applicationId}"}),
    )
    .await
    .expect_status(201);
    let got = api
        .get(&format!("/api/v1/applications/{app_id}/integrations/nats"))
        .await
        .expect_status(200);
    assert_eq!(
        got["url"],
        format!("nats://{USER}@127.0.0.1:{port}"),
        "{got}"
    );
    assert_eq!(got["passwordSet"], true);
    assert!(!got.to_string().contains(PASSWORD), "{got}");
    assert_eq!(got["kind"], "nats");
    let list = api
        .get(&format!("/api/v1/applications/{app_id}/integrations"))
        .await
        .expect_status(200);
    assert_eq!(list["items"][0]["kind"], "nats", "{list}");

    // Two ABP devices behind one gateway.
    let mut devices = abp_devices(
        &api,
        &app_id,
        &profile_id,
        (0x0e0e_0000_0000_0000, 0x0e0e_0000),
        2,
        "d",
    )
    .await;
    let gw = online_gateway(&api, &server, GATEWAY).await;

    let mut sent = 0usize;
    sent += send_rounds(&gw, &mut devices, 0..5, &rx()).await;
    let s = wait_stored(port, sent, "before the outage").await;
    assert_eq!(s.len(), sent);
    let dev0 = devices[0].dev_eui.to_string();
    let (subject, id, body) = &s[0];
    assert_eq!(
        subject,
        &format!(
            "lorikeet.{app_id}.{}.up",
            body["deviceInfo"]["devEui"].as_str().unwrap()
        )
    );
    assert!(
        id.parse::<i64>().is_ok(),
        "Nats-Msg-Id is the event id: {id:?}"
    );
    assert_eq!(body["fPort"], 2);

    // The broker goes away for a while; uplinks keep coming; nothing is lost and
    // nothing is stored twice.
    nats.stop();
    sent += send_rounds(&gw, &mut devices, 5..10, &rx()).await;
    wait_events(&api, devices[0].dev_eui, "up", 10).await;
    wait_outage_shown(
        &api,
        &format!("/api/v1/applications/{app_id}/integrations/nats"),
    )
    .await;
    nats.restart().await;
    let s = wait_stored(port, sent, "after the outage").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s2 = stored(port).await;
    assert_eq!(s2.len(), s.len(), "nothing more arrives");
    let ids: std::collections::BTreeSet<&String> = s2.iter().map(|(_, id, _)| id).collect();
    assert_eq!(
        ids.len(),
        sent,
        "each event stored once: {} messages",
        s2.len()
    );
    // In order per device: the payload byte is the round.
    let rounds = rounds_by_device(s2.iter().map(|(_, id, body)| (id.as_str(), body)));
    assert_eq!(rounds[&dev0], (0..10).collect::<Vec<u64>>(), "{rounds:?}");
    assert_eq!(rounds.len(), 2);

    // Downlink commands from the command subject: a request is answered with the
    // queued item, or with why it was refused.
    let client = connect(port).await;
    // Outside the stream's subjects: JetStream would answer a request it stores.
    let subject = format!("commands.{app_id}");
    let dev = devices[0].dev_eui;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let answer: Value = loop {
        // The reader reconnects after the outage on its own schedule: until it has
        // subscribed, a request finds no responder.
        match tokio::time::timeout(
            Duration::from_secs(2),
            client.request(
                subject.clone(),
                json!({"devEui": dev.to_string(), "fPort": 9, "data": "AQI="})
                    .to_string()
                    .into(),
            ),
        )
        .await
        {
            Ok(Ok(m)) => break serde_json::from_slice(&m.payload).unwrap(),
            _ => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the command reader answers on {subject}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(answer["queued"], true, "{answer}");
    let q = api
        .get(&format!("/api/v1/devices/{dev}/queue"))
        .await
        .expect_status(200);
    assert_eq!(q["items"][0]["fPort"], 9, "{q}");
    assert_eq!(q["items"][0]["id"], answer["id"], "{q}");
    for (body, reason) in [
        (json!({"fPort": 9, "data": "AQI="}), "invalid"),
        (
            json!({"devEui": "ffffffffffffff01", "fPort": 9, "data": "AQI="}),
            "unknown_device",
        ),
        (
            json!({"devEui": dev.to_string(), "fPort": 0, "data": "AQI="}),
            "invalid",
        ),
    ] {
        let m = client
            .request(subject.clone(), body.to_string().into())
            .await
            .unwrap();
        let a: Value = serde_json::from_slice(&m.payload).unwrap();
        assert!(a["error"].is_string(), "{a}");
        assert_eq!(a["reason"], reason, "{a}");
    }

    // Deleting the integration stops it.
    api.delete(&format!("/api/v1/applications/{app_id}/integrations/nats"))
        .await
        .expect_status(204);
    api.get(&format!("/api/v1/applications/{app_id}/integrations/nats"))
        .await
        .expect_status(404);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_delivery_sqlite() {
    nats_delivery(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_delivery_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    nats_delivery(db).await;
}
