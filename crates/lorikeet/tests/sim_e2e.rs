//! `lorikeet sim` at small scale against a running server: every device joins, no
//! uplink is lost between the gateway socket and the webhook, confirmed uplinks are
//! acknowledged and every downlink reaches its gateway before the receive window.
//! Afterwards nothing it provisioned is left on the server (unless `--keep`), also
//! after Ctrl-C; a wrong `--udp` fails before anything is provisioned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use lorikeet_sim::cli::{run, run_until, ActivationArg, SimArgs, SimRunError};
use lorikeet_sim::PayloadKind;
use lorikeet_storage::testing::TestDb;
use support::*;

fn args(server: &lorikeet::Server, activation: ActivationArg, mac_version: &str) -> SimArgs {
    SimArgs {
        api: format!("http://{}", server.api_addr),
        token: Some(ADMIN_TOKEN.into()),
        token_file: "unused".into(),
        udp: server.udp_addr,
        devices: 20,
        gateways: 3,
        rate: 40.0,
        duration: 3.0,
        copies: (1, 3),
        confirmed: 0.25,
        activation,
        mac_version: mac_version.into(),
        payload: PayloadKind::Cayenne,
        join_rate: 100.0,
        drain: 3.0,
        webhook_bind: "127.0.0.1:0".parse().unwrap(),
        dev_eui_base: 0x70b3_d57e_5000_0000,
        gateway_base: 0x70b3_d57e_5a00_0000,
        net_id: "000000".into(),
        phases: None,
        shards: 2,
        rxpk_per_push: 8,
        // The server runs in this process.
        server_pid: Some(std::process::id()),
        json: false,
        quiet: true,
        keep: false,
        metrics: None,
        integrations: Vec::new(),
    }
}

/// What the server holds: (applications, device profiles, devices, gateways,
/// integrations), counted through the API and, for integrations, the store.
async fn holdings(server: &lorikeet::Server) -> (usize, usize, usize, usize, usize) {
    let api = Api::new(server);
    let count = |v: serde_json::Value| v["items"].as_array().map_or(0, Vec::len);
    let apps = count(
        api.get("/api/v1/applications?limit=100")
            .await
            .expect_status(200),
    );
    let profiles = count(
        api.get("/api/v1/device-profiles?limit=100")
            .await
            .expect_status(200),
    );
    let devices = count(
        api.get("/api/v1/devices?limit=100")
            .await
            .expect_status(200),
    );
    let gateways = count(
        api.get("/api/v1/gateways?limit=100")
            .await
            .expect_status(200),
    );
    let integrations = server.storage.list_integrations(None).await.unwrap().len();
    (apps, profiles, devices, gateways, integrations)
}

const NOTHING: (usize, usize, usize, usize, usize) = (0, 0, 0, 0, 0);

async fn small_run(db: TestDb, activation: ActivationArg, mac_version: &str) {
    let server = start_server(db.url()).await;
    assert_eq!(holdings(&server).await, NOTHING, "a fresh server");
    let report = run(args(&server, activation, mac_version)).await.unwrap();
    println!("{report}");
    if activation == ActivationArg::Otaa {
        assert_eq!(report.joins_accepted, 20, "every device joins");
    }
    assert!(report.uplinks_sent >= 100, "{report}");
    assert_eq!(report.uplinks_lost, 0, "{report}");
    assert_eq!(report.uplinks_delivered, report.uplinks_sent, "{report}");
    assert!(
        report.copies_sent > report.uplinks_sent,
        "several gateways heard some uplinks"
    );
    assert!(report.confirmed_sent > 0, "{report}");
    assert_eq!(report.confirmed_acked, report.confirmed_sent, "{report}");
    assert!(report.downlinks > 0, "{report}");
    assert_eq!(report.downlinks_late, 0, "{report}");
    // The simulated gateways answer as a forwarder's JIT queue would: the server never
    // hands one of them two frames that overlap.
    assert_eq!(
        report.refused_by_gateways.get("COLLISION_PACKET"),
        None,
        "{report}"
    );
    assert!(
        report.downlink_lead.count > 0 && report.downlink_lead.p50_ms > 0.0,
        "{report}"
    );
    assert!(
        report.latency.count as u64 == report.uplinks_delivered,
        "{report}"
    );
    assert!(report.server_rss_mib.is_some_and(|m| m > 1.0), "{report}");
    assert_eq!(
        holdings(&server).await,
        NOTHING,
        "the run removed its application, profile, devices, gateways and webhook"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_otaa_sqlite() {
    small_run(TestDb::sqlite().await, ActivationArg::Otaa, "1.0.3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_otaa_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    small_run(db, ActivationArg::Otaa, "1.0.3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_abp_lorawan_1_1_sqlite() {
    small_run(TestDb::sqlite().await, ActivationArg::Abp, "1.1.0").await;
}

/// `--integration` adds a broker integration to the run's application and reports
/// how long it took to deliver the run's events (RabbitMQ's `amq.topic`, which
/// every RabbitMQ has).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_reports_an_amqp_integration() {
    let db = TestDb::sqlite().await;
    let server = start_server(db.url()).await;
    let mut a = args(&server, ActivationArg::Abp, "1.0.3");
    a.devices = 4;
    a.duration = 1.0;
    a.drain = 1.0;
    let rabbit =
        std::env::var("LORIKEET_TEST_AMQP_ADDR").unwrap_or_else(|_| "127.0.0.1:5672".into());
    a.integrations = vec![lorikeet_sim::cli::Integration {
        kind: "amqp".into(),
        settings: serde_json::json!({
            "url": format!("amqp://guest:guest@{rabbit}/%2f"),
            "exchange": "amq.topic"
        }),
    }];
    let report = run(a).await.unwrap();
    let i = &report.integrations[0];
    assert_eq!(i.kind, "amqp");
    assert!(
        i.events >= report.uplinks_delivered && i.events > 0,
        "{report}"
    );
    assert!(
        i.drained_after_s.is_some() && i.events_per_s.is_some_and(|r| r > 0.0),
        "{report}"
    );
    assert_eq!(
        holdings(&server).await,
        NOTHING,
        "removed with the application"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_keep_leaves_what_it_provisioned() {
    let db = TestDb::sqlite().await;
    let server = start_server(db.url()).await;
    let mut a = args(&server, ActivationArg::Abp, "1.0.3");
    a.devices = 4;
    a.duration = 0.5;
    a.drain = 1.0;
    a.keep = true;
    let report = run(a).await.unwrap();
    assert!(report.uplinks_sent > 0, "{report}");
    assert_eq!(holdings(&server).await, (1, 1, 4, 3, 1));
    server.shutdown().await;
}

/// A run "Ctrl-C"ed once `path` answers 200 ends at once, as `Interrupted`, and leaves
/// nothing behind.
async fn interrupted_run(when_found: &str) {
    let db = TestDb::sqlite().await;
    let server = start_server(db.url()).await;
    let mut a = args(&server, ActivationArg::Otaa, "1.0.3");
    // Far longer than the test: only the interruption ends it.
    a.duration = 600.0;
    let api = Api::new(&server);
    let interrupt = async {
        while api.get(when_found).await.status != 200 {
            tokio::task::yield_now().await;
        }
    };
    let r = tokio::time::timeout(std::time::Duration::from_secs(60), run_until(a, interrupt))
        .await
        .expect("the interruption ends the run");
    assert!(matches!(r, Err(SimRunError::Interrupted)), "{r:?}");
    assert_eq!(holdings(&server).await, NOTHING);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_interrupted_while_provisioning_removes_what_it_provisioned() {
    // The first device is created early in provisioning, 19 more follow.
    interrupted_run("/api/v1/devices/70b3d57e50000000").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_interrupted_while_running_removes_what_it_provisioned() {
    // A session exists once the device joined: the load generator is running.
    interrupted_run("/api/v1/devices/70b3d57e50000000/activation").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_with_a_wrong_udp_address_fails_before_provisioning() {
    let db = TestDb::sqlite().await;
    let server = start_server(db.url()).await;
    // A port nothing listens on (bound, then released).
    let closed = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut a = args(&server, ActivationArg::Otaa, "1.0.3");
    a.udp = closed;
    let e = run(a).await.unwrap_err();
    assert!(matches!(e, SimRunError::Udp { .. }), "{e:?}");
    let message = e.to_string();
    assert!(message.contains(&closed.to_string()), "{message}");
    assert!(message.contains("--udp"), "{message}");
    assert_eq!(holdings(&server).await, NOTHING, "nothing was provisioned");

    // A wrong API is named too, and also stops the run before anything is created.
    let mut a = args(&server, ActivationArg::Otaa, "1.0.3");
    a.api = format!("http://{closed}");
    let e = run(a).await.unwrap_err();
    assert!(matches!(e, SimRunError::Api(_)), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains(&format!("http://{closed}/api/v1/")),
        "{message}"
    );
    assert!(
        message.to_lowercase().contains("connection refused"),
        "{message}"
    );
    let mut a = args(&server, ActivationArg::Otaa, "1.0.3");
    a.token = Some("wrong".into());
    let e = run(a).await.unwrap_err();
    assert!(e.to_string().contains("401"), "{e}");
    assert_eq!(holdings(&server).await, NOTHING);
    server.shutdown().await;
}
