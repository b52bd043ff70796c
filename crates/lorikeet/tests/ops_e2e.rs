//! What an operator sees of the real binary: start-up checks, logs and metrics.
//! Each test runs `lorikeet serve` in a directory of its own, on loopback port 0,
//! with the default embedded SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::binary;
use support::*;

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
