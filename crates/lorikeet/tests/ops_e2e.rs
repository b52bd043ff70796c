//! What an operator sees of the real binary: start-up checks, logs and metrics.
//! Each test runs `lorikeet serve` in a directory of its own, on loopback port 0,
//! with the default embedded SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use lorikeet_lorawan::Eui64;
use lorikeet_sim::{RxMeta, SimGateway};
use serde_json::json;
use support::binary;
use support::*;

#[test]
fn a_log_level_that_is_not_a_level_stops_start_up() {
    // EnvFilter reads "verbose" as a target name and turned every log off.
    let dir = binary::fresh_dir("loglevel");
    let mut child = binary::command(&dir, &["serve"], &[("LORIKEET_LOG_LEVEL", "verbose")])
        .spawn()
        .unwrap();
    let status = binary::wait(&mut child, Duration::from_secs(30));
    let stderr = binary::read(&dir, "stderr.log");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("log.level") && stderr.contains("\"verbose\" is not a level"),
        "{stderr}"
    );
    assert!(
        !dir.join("lorikeet.db").exists(),
        "nothing starts before the configuration is valid"
    );
    binary::remove_dir(&dir);
}

#[test]
fn logs_written_to_a_file_have_no_colour_codes() {
    let dir = binary::fresh_dir("colour");
    let served = binary::serve(&dir, &[]);
    let (log, stderr) = served.stop();
    assert!(log.contains("INFO"), "the log has lines: {log}");
    assert!(
        !log.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "ANSI escape codes in a file: {log:?}"
    );
}

#[test]
fn host_names_are_accepted_as_bind_addresses() {
    let dir = binary::fresh_dir("bind");
    let served = binary::serve(
        &dir,
        &[
            ("LORIKEET_API_BIND", "localhost:0"),
            ("LORIKEET_GATEWAY_UDP_BIND", "localhost:0"),
        ],
    );
    assert!(
        served.api_addr.starts_with("127.0.0.1:"),
        "{}",
        served.api_addr
    );
    assert!(served.udp_addr.ip().is_loopback());
    served.stop();
}

#[tokio::test]
async fn a_client_leaving_an_event_stream_is_not_an_error() {
    let dir = binary::fresh_dir("sse");
    let served = binary::serve(
        &dir,
        &[
            ("LORIKEET_API_ADMIN_TOKEN", ADMIN_TOKEN),
            ("LORIKEET_LOG_LEVEL", "info,lorikeet_api=debug"),
        ],
    );
    let api = Api::at(served.base());
    let app = api
        .post("/api/v1/applications", json!({"name": "sse"}))
        .await
        .expect_status(201);
    let url = format!(
        "{}/api/v1/applications/{}/events/stream",
        served.base(),
        app["id"].as_str().unwrap()
    );
    for _ in 0..3 {
        let stream = reqwest::Client::new()
            .get(&url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status().as_u16(), 200);
        // The client goes away with the response still open.
        drop(stream);
    }
    // The server notices (and says so at debug).
    let deadline = Instant::now() + Duration::from_secs(10);
    while served
        .log()
        .matches("HTTP client closed the connection")
        .count()
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "the disconnects were not noticed:\n{}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (log, _) = served.stop();
    for line in log.lines().filter(|l| l.contains("closed the connection")) {
        assert!(line.contains("DEBUG"), "{line}");
    }
    let errors: Vec<_> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[tokio::test]
async fn every_metric_family_has_help_and_latencies_are_histograms() {
    let dir = binary::fresh_dir("metrics");
    let served = binary::serve(&dir, &[("LORIKEET_API_ADMIN_TOKEN", ADMIN_TOKEN)]);
    let api = Api::at(served.base());

    // Traffic through every part that records metrics: the API, a join, uplinks,
    // a downlink, events and the batched writer.
    let gateway = Eui64::from_u64(0x00aa_bbcc_0000_0101);
    let dev_eui = Eui64::from_u64(0x0102_0304_0506_0999);
    let (mut dev, _) =
        provision_otaa(&api, dev_eui, gateway, "1.0.3", json!({"type": "none"})).await;
    let gw = SimGateway::connect(gateway, served.udp_addr).await.unwrap();
    gw.pull_data(Duration::from_secs(2)).await.unwrap();
    let rx = RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db: 8.5,
    };
    join(&gw, &mut dev, &rx).await;
    for i in 0..2u8 {
        let up = dev.uplink(10, &[i], false, 5, 0).unwrap();
        gw.push(&up, &rx).await.unwrap();
    }
    wait_events(&api, dev_eui, "up", 2).await;

    let text = reqwest::get(format!("{}/metrics", served.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut types = BTreeMap::new();
    let mut helps = BTreeSet::new();
    let mut families = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_owned(), kind.to_owned());
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            helps.insert(rest.split(' ').next().unwrap().to_owned());
        } else if !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|s| name.strip_suffix(s))
                .find(|base| types.contains_key(*base))
                .unwrap_or(name);
            families.insert(family.to_owned());
        }
    }
    for must in [
        "lorikeet_api_requests_total",
        "lorikeet_api_request_duration_seconds",
        "lorikeet_db_query_duration_seconds",
        "lorikeet_joins_total",
        "lorikeet_uplinks_total",
        "lorikeet_events_total",
        "lorikeet_storage_batch_seconds",
        "lorikeet_storage_batch_size",
    ] {
        assert!(families.contains(must), "{must} not rendered:\n{text}");
    }
    let no_help: Vec<_> = families.iter().filter(|f| !helps.contains(*f)).collect();
    assert!(no_help.is_empty(), "families without # HELP: {no_help:?}");
    let untyped: Vec<_> = families
        .iter()
        .filter(|f| !types.contains_key(*f))
        .collect();
    assert!(untyped.is_empty(), "families without # TYPE: {untyped:?}");
    for family in families
        .iter()
        .filter(|f| f.ends_with("_seconds") || *f == "lorikeet_storage_batch_size")
    {
        assert_eq!(
            types[family], "histogram",
            "{family} must be a histogram (summaries cannot be aggregated)"
        );
    }
    assert!(
        text.contains("lorikeet_api_request_duration_seconds_bucket{")
            && text.contains("le=\"0.005\""),
        "{text}"
    );
    served.stop();
}
