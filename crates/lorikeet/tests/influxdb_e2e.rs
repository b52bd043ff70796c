//! The InfluxDB integration end to end (issue 22) against a real InfluxDB 1.x
//! (Debian's `influxdb`, started by the test with a configuration of its own so it
//! can be stopped): decoded uplinks become points with the documented tags and
//! fields, an outage loses nothing and duplicates nothing; on SQLite and Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lorikeet_lorawan::Eui64;
use lorikeet_sim::{RxMeta, SimGateway};
use lorikeet_storage::testing::TestDb;
use serde_json::{json, Value};
use support::*;

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_300_000,
        spreading_factor: 9,
        bandwidth_hz: 125_000,
        rssi_dbm: -77,
        snr_db: 6.5,
    }
}

/// An influxd of the test's own, its data in `dir` (kept across restarts).
struct Influx {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Influx {
    async fn start() -> Influx {
        let dir = std::env::temp_dir().join(format!("lorikeet-influx-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let (port, rpc) = (free_port(), free_port());
        std::fs::write(
            dir.join("influxdb.conf"),
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
                 [meta]\n  dir = \"{d}/meta\"\n[data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n\
                 [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n\
                 [monitor]\n  store-enabled = false\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let mut i = Influx {
            port,
            dir,
            child: None,
        };
        i.spawn().await;
        i
    }

    async fn spawn(&mut self) {
        let bin = ["/usr/bin/influxd", "/usr/sbin/influxd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("influxd is installed (scripts/test installs Debian's influxdb)");
        self.child = Some(
            Command::new(bin)
                .arg("-config")
                .arg(self.dir.join("influxdb.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("influxd starts"),
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{}/ping", self.port)).await {
                if r.status().as_u16() == 204 {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "influxd did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn query(&self, q: &str) -> Value {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/query?db=lora", self.port))
            .form(&[("q", q)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The points of `device_frame`, oldest first, as column → value maps.
    async fn points(&self) -> Vec<serde_json::Map<String, Value>> {
        let r = self.query("SELECT * FROM device_frame").await;
        let Some(series) = r["results"][0]["series"][0].as_object() else {
            return Vec::new();
        };
        let columns: Vec<String> = series["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        series["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .cloned()
                    .zip(row.as_array().unwrap().iter().cloned())
                    .collect()
            })
            .collect()
    }

    async fn wait_points(&self, n: usize, what: &str) -> Vec<serde_json::Map<String, Value>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let p = self.points().await;
            if p.len() >= n {
                return p;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: {} of {n} points",
                p.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Influx {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Cayenne LPP: channel 1 temperature in 0.1 °C.
fn temperature(deci: i16) -> Vec<u8> {
    let b = deci.to_be_bytes();
    vec![0x01, 0x67, b[0], b[1]]
}

async fn influx_points(db: TestDb) {
    let mut influx = Influx::start().await;
    influx.query("CREATE DATABASE lora").await;
    let server = start_server_with(db.url(), |c| {
        fast_retries(c);
        c.webhook.timeout_ms = 1_000;
    })
    .await;
    let api = Api::new(&server);
    let gw_id = Eui64::from_u64(0xaa00_0000_0000_0f01);
    let (mut dev, app_id) = provision_otaa(
        &api,
        Eui64::from_u64(0x0f0f_0000_0000_0001),
        gw_id,
        "1.0.3",
        json!({"type": "cayenne_lpp"}),
    )
    .await;
    let path = format!("/api/v1/applications/{app_id}/integrations/influxdb");
    let url = format!("http://127.0.0.1:{}", influx.port);
    assert_refused(
        &api,
        &path,
        vec![
            (json!({"url": url, "version": 1}), "needs database"),
            (
                json!({"url": url, "version": 2, "org": "o", "bucket": "b"}),
                "needs token",
            ),
            (
                json!({"url": url, "version": 3, "database": "lora"}),
                "not 1 or 2",
            ),
            (
                json!({"url": "influx:8086", "version": 1, "database": "lora"}),
                "http",
            ),
        ],
    )
    .await;
    api.post(
        &path,
        json!({"url": url, "version": 1, "database": "lora", "username": "lorikeet",
               "password": "secret"}),
    )
    .await
    .expect_status(201);
    let got = api.get(&path).await.expect_status(200);
    assert_eq!(
        (&got["version"], &got["database"], &got["passwordSet"]),
        (&json!(1), &json!("lora"), &json!(true)),
        "{got}"
    );
    assert!(got.get("password").is_none(), "write-only: {got}");
    // Left out, the password is kept.
    api.post(
        &path,
        json!({"url": url, "version": 1, "database": "lora", "username": "lorikeet"}),
    )
    .await
    .expect_status(200);
    assert_eq!(api.get(&path).await.expect_status(200)["passwordSet"], true);

    let gw = SimGateway::connect(gw_id, server.udp_addr).await.unwrap();
    gw.pull_data(Duration::from_secs(3)).await.unwrap();
    join(&gw, &mut dev, &rx()).await;
    for deci in [215, 220, 225] {
        gw.push(
            &dev.uplink(1, &temperature(deci), false, 3, 1).unwrap(),
            &rx(),
        )
        .await
        .unwrap();
    }
    let points = influx.wait_points(3, "before the outage").await;
    assert_eq!(points.len(), 3, "the join is no point: {points:?}");
    let p = &points[0];
    assert_eq!(p["devEui"], dev.dev_eui.to_string());
    assert_eq!(p["deviceName"], "sensor-1");
    assert_eq!(p["fPort"], "1");
    assert_eq!(p["application"], format!("app-{}", dev.dev_eui));
    assert_eq!(p["temperatureSensor_1"], 21.5);
    assert_eq!(p["rssi"], -77);
    assert_eq!(p["snr"], 6.5);
    assert_eq!(p["fCnt"], 0);

    // An outage: the points written meanwhile arrive once it is back, once each.
    influx.stop();
    for deci in [230, 235] {
        gw.push(
            &dev.uplink(1, &temperature(deci), false, 3, 1).unwrap(),
            &rx(),
        )
        .await
        .unwrap();
    }
    wait_events(&api, dev.dev_eui, "up", 5).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let g = api.get(&path).await.expect_status(200);
        if g["lastError"].is_string() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outage never showed: {g}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    influx.spawn().await;
    let points = influx.wait_points(5, "after the outage").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = influx.points().await;
    assert_eq!(again.len(), 5, "{points:?}");
    let temps: Vec<f64> = again
        .iter()
        .map(|p| p["temperatureSensor_1"].as_f64().unwrap())
        .collect();
    assert_eq!(temps, vec![21.5, 22.0, 22.5, 23.0, 23.5]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_points_sqlite() {
    influx_points(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_points_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    influx_points(db).await;
}
