//! What an operator sees of the real binary: start-up checks, logs and metrics.
//! Each test runs `lorikeet serve` in a directory of its own, on loopback port 0,
//! with the default embedded SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

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
    assert!(served.api_addr.starts_with("127.0.0.1:"), "{}", served.api_addr);
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
