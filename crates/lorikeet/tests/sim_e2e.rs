//! `lorikeet sim` at small scale against a running server: every device joins, no
//! uplink is lost between the gateway socket and the webhook, confirmed uplinks are
//! acknowledged and every downlink reaches its gateway before the receive window.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use lorikeet_sim::cli::{run, ActivationArg, SimArgs};
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
    }
}

async fn small_run(db: TestDb, activation: ActivationArg, mac_version: &str) {
    let server = start_server(db.url()).await;
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
    assert!(
        report.downlink_lead.count > 0 && report.downlink_lead.p50_ms > 0.0,
        "{report}"
    );
    assert!(
        report.latency.count as u64 == report.uplinks_delivered,
        "{report}"
    );
    assert!(report.server_rss_mib.is_some_and(|m| m > 1.0), "{report}");
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
