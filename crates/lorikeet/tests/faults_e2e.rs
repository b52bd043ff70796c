//! Database faults: the real `lorikeet serve` on a Postgres cluster of the test's own
//! (`initdb` + `pg_ctl` in a temporary directory), with 20 uplinks/s from simulated
//! ABP devices through a fake Semtech UDP gateway, while Postgres is stopped
//! (`pg_ctl stop -m fast`: every connection is terminated) for 3 s, started, and
//! stopped again for 8 s.
//!
//! Checked: the server recovers without help (uplinks sent after each start reach
//! the webhook); every uplink the gateway sent that was acknowledged (PUSH_ACK) and
//! not shed (counted) reaches the webhook, including those sent while the database
//! was down; no write is given up (`lorikeet_storage_ops_dropped_total` stays 0).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use lorikeet_storage::testing::TEST_KEK_HEX;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lorikeet_lorawan::crypto::SessionKeys;
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use lorikeet_sim::{RxMeta, SimDevice, SimGateway};
use serde_json::json;
use support::binary;
use support::metrics;
use support::pg_cluster::PgCluster;
use support::webhook::{Delivery, Receiver};
use support::*;
use tokio::sync::{mpsc, watch};

const GATEWAY: u64 = 0x00aa_bbcc_0000_0f18;
const DEVICES: u32 = 20;
/// One uplink every 50 ms: 20 uplinks/s.
const UPLINK_EVERY: Duration = Duration::from_millis(50);

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db: 8.5,
    }
}

fn abp(n: u32) -> (Eui64, DevAddr, SessionKeys) {
    let b = n.to_be_bytes();
    (
        Eui64::from_u64(0x0f18_0000_0000_0000 | u64::from(n)),
        DevAddr::from_u32(0x0f18_0000 | n),
        SessionKeys::from_1_0(
            Aes128Key::from_bytes([b[3], 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Aes128Key::from_bytes([b[3], 0x22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
        ),
    )
}

/// Uplinks sent, by PUSH_DATA token, and those acknowledged: (DevEUI, FCnt).
#[derive(Default)]
struct Sent {
    by_token: HashMap<u16, (String, u32)>,
    /// PUSH_ACKs that came before their token was recorded.
    early: BTreeSet<u16>,
    acked: BTreeSet<(String, u32)>,
    total: u64,
}

/// Sends one uplink every [`UPLINK_EVERY`], round robin over the devices, until `stop`;
/// on `burst`, one uplink of every device at once.
async fn load(
    gw: Arc<SimGateway>,
    sent: Arc<Mutex<Sent>>,
    mut stop: watch::Receiver<bool>,
    mut burst: mpsc::UnboundedReceiver<()>,
) {
    let mut devices: Vec<SimDevice> = (0..DEVICES)
        .map(|n| {
            let (eui, addr, keys) = abp(n);
            SimDevice::abp(eui, addr, keys, false, 0)
        })
        .collect();
    let mut tick = tokio::time::interval(UPLINK_EVERY);
    let mut i = 0usize;
    loop {
        let n = tokio::select! {
            _ = tick.tick() => 1,
            Some(()) = burst.recv() => devices.len(),
            _ = stop.changed() => return,
        };
        for _ in 0..n {
            let count = devices.len();
            let dev = &mut devices[i % count];
            i += 1;
            let f_cnt = dev.session.as_ref().unwrap().f_cnt_up;
            let phy = dev.uplink(1, &f_cnt.to_be_bytes(), false, 5, 0).unwrap();
            let token = gw.push_at(&phy, &rx(), gw.tmst_now()).await.unwrap();
            let mut s = sent.lock().unwrap();
            s.total += 1;
            let k = (dev.dev_eui.to_string(), f_cnt);
            if s.early.remove(&token) {
                s.acked.insert(k);
            } else {
                s.by_token.insert(token, k);
            }
        }
    }
}

/// Records which PUSH_DATA were acknowledged.
async fn acks(gw: Arc<SimGateway>, sent: Arc<Mutex<Sent>>) {
    loop {
        if let Ok(Some(token)) = gw.recv_push_ack(Duration::from_secs(3600)).await {
            let mut s = sent.lock().unwrap();
            match s.by_token.remove(&token) {
                Some(k) => {
                    s.acked.insert(k);
                }
                None => {
                    s.early.insert(token);
                }
            }
        }
    }
}

/// (DevEUI, FCnt) of every `up` among `deliveries`.
fn delivered(deliveries: &[Delivery]) -> BTreeSet<(String, u32)> {
    deliveries
        .iter()
        .filter(|d| d.event == "up")
        .map(|d| {
            (
                d.dev_eui().to_owned(),
                d.body["fCnt"].as_u64().unwrap_or(u64::MAX) as u32,
            )
        })
        .collect()
}

/// The number of an uplink in the order sent: the load goes round robin, so device
/// `n`'s FCnt `f` is uplink `f * DEVICES + n`.
fn sequence(dev_eui: &str, f_cnt: u64) -> Option<u64> {
    let n = u64::from_str_radix(dev_eui.get(12..)?, 16).ok()?;
    Some(f_cnt * u64::from(DEVICES) + n)
}

/// Waits until an uplink sent from now on reaches the webhook: the server works
/// (again). Returns how long it took.
async fn wait_recovered(
    hook: &Receiver,
    sent: &Mutex<Sent>,
    what: &str,
    served: &binary::Served,
) -> Duration {
    let t = Instant::now();
    let baseline = sent.lock().unwrap().total;
    let ok = hook
        .wait_for(Duration::from_secs(60), |all| {
            all.iter().any(|d| {
                d.event == "up"
                    && d.body["fCnt"]
                        .as_u64()
                        .and_then(|f| sequence(d.dev_eui(), f))
                        .is_some_and(|k| k >= baseline)
            })
        })
        .await;
    assert!(
        ok,
        "no uplink reached the webhook within 60 s after {what}: the server did not \
         recover by itself. Log:\n{}",
        tail(&served.log(), 60)
    );
    t.elapsed()
}

fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_started_under_load_loses_nothing() {
    let started = Instant::now();
    let Some(pg) = tokio::task::spawn_blocking(PgCluster::start).await.unwrap() else {
        return;
    };
    let pg = Arc::new(pg);
    let hook = Receiver::start().await;
    let dir = binary::fresh_dir("faults");
    let url = pg.url();
    let served = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            binary::serve(
                &dir,
                &[
                    ("LORIKEET_DATABASE_URL", url.as_str()),
                    ("LORIKEET_API_ADMIN_TOKEN", ADMIN_TOKEN),
                    ("LORIKEET_LOG_LEVEL", "info"),
                    ("LORIKEET_SECURITY_KEK", TEST_KEK_HEX),
                    ("LORIKEET_WEBHOOK_BACKOFF_BASE_MS", "100"),
                    ("LORIKEET_WEBHOOK_BACKOFF_MAX_MS", "1000"),
                    ("LORIKEET_WEBHOOK_POLL_INTERVAL_MS", "200"),
                ],
            )
        })
        .await
        .unwrap()
    };
    let api = Api::at(served.base());

    // An application with the webhook, DEVICES ABP devices and the gateway.
    let (app_id, profile_id) = abp_application(&api, "faults", Some(&hook.url())).await;
    let rows: Vec<_> = (0..DEVICES)
        .map(|n| {
            let (eui, addr, keys) = abp(n);
            json!({
                "devEui": eui.to_string(), "joinEui": "0000000000000000",
                "name": format!("meter {n}"), "applicationId": app_id,
                "deviceProfileId": profile_id,
                "activation": {
                    "devAddr": addr.to_string(),
                    "appSKey": keys.app_s_key.expose_hex(),
                    "nwkSKey": keys.f_nwk_s_int_key.expose_hex(),
                },
            })
        })
        .collect();
    api.post("/api/v1/devices/import", json!({ "devices": rows }))
        .await
        .expect_status(200);
    api.post(
        "/api/v1/gateways",
        json!({"gatewayId": Eui64::from_u64(GATEWAY).to_string(), "name": "gw"}),
    )
    .await
    .expect_status(201);
    let gw = Arc::new(
        SimGateway::connect(Eui64::from_u64(GATEWAY), served.udp_addr)
            .await
            .unwrap(),
    );
    gw.pull_data(Duration::from_secs(5)).await.unwrap();

    let sent: Arc<Mutex<Sent>> = Arc::default();
    let (stop, stop_rx) = watch::channel(false);
    let (burst, burst_rx) = mpsc::unbounded_channel();
    let loader = tokio::spawn(load(gw.clone(), sent.clone(), stop_rx, burst_rx));
    let acker = tokio::spawn(acks(gw.clone(), sent.clone()));
    wait_recovered(&hook, &sent, "the start", &served).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Two outages: the durations are what the test sets up, not waits for a result.
    let mut recoveries = Vec::new();
    for outage in [Duration::from_secs(3), Duration::from_secs(8)] {
        // The stop lands while the writer commits: a burst of uplinks, and the stop
        // about when their dedup windows (200 ms) close and their writes go out.
        let _ = burst.send(());
        tokio::time::sleep(Duration::from_millis(195)).await;
        let p = pg.clone();
        tokio::task::spawn_blocking(move || p.stop_fast())
            .await
            .unwrap();
        eprintln!("Postgres stopped for {outage:?}");
        tokio::time::sleep(outage).await;
        let p = pg.clone();
        tokio::task::spawn_blocking(move || p.start_again())
            .await
            .unwrap();
        let took = wait_recovered(&hook, &sent, &format!("a {outage:?} outage"), &served).await;
        eprintln!("uplinks reach the webhook again {took:?} after Postgres started");
        recoveries.push(took);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let _ = stop.send(true);
    loader.await.unwrap();
    // The last PUSH_ACKs.
    let s = sent.clone();
    let acked_all = wait_for(Duration::from_secs(5), || {
        s.lock().unwrap().by_token.is_empty()
    })
    .await;
    acker.abort();

    let (total, acked) = {
        let s = sent.lock().unwrap();
        (s.total, s.acked.clone())
    };
    // Every acknowledged uplink reaches the webhook (waiting for the backlog).
    let complete = hook
        .wait_for(Duration::from_secs(90), |all| {
            delivered(all).is_superset(&acked)
        })
        .await;
    let got = delivered(&hook.all());
    let missing: Vec<_> = acked.difference(&got).cloned().collect();
    let text = metrics::scrape(&served.base())
        .await
        .expect("the server answers /metrics after the outages");
    let dropped = metrics::sum(&text, "lorikeet_storage_ops_dropped_total", &[]);
    let shed = metrics::sum(
        &text,
        "lorikeet_gateway_events_dropped_total",
        &[("reason", "queue_full")],
    ) + metrics::sum(
        &text,
        "lorikeet_uplinks_dropped_total",
        &[("reason", "overloaded")],
    );
    let retries = metrics::sum(&text, "lorikeet_storage_retries_total", &[]) + 0.0;
    let unavailable = metrics::sum(&text, "lorikeet_storage_unavailable", &[]) + 0.0;
    let (dropped, shed) = (dropped + 0.0, shed + 0.0);
    eprintln!(
        "{total} uplinks sent, {} acknowledged{}, {} delivered, {} missing, {shed} shed, \
         {dropped} writes dropped, {retries} storage retries; recovered in {recoveries:?}; \
         {:?} in all",
        acked.len(),
        if acked_all {
            ""
        } else {
            " (some PUSH_ACKs never came)"
        },
        got.len(),
        missing.len(),
        started.elapsed()
    );
    let log = served.log();
    let storage_notes: Vec<&str> = log
        .lines()
        .filter(|l| (l.contains("WARN") || l.contains("ERROR")) && !l.contains("webhook"))
        .collect();
    eprintln!(
        "the server's warnings and errors ({}), the first and last:\n{}\n{}",
        storage_notes.len(),
        storage_notes
            .iter()
            .take(5)
            .copied()
            .collect::<Vec<_>>()
            .join("\n"),
        storage_notes
            .iter()
            .rev()
            .take(5)
            .rev()
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let problems: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("dropped") || l.contains("ERROR") || l.contains("panicked"))
        .take(20)
        .collect();
    assert_eq!(
        dropped,
        0.0,
        "writes were given up while Postgres restarted (lorikeet_storage_ops_dropped_total); \
         log:\n{}",
        problems.join("\n")
    );
    assert!(
        complete || (missing.len() as f64) <= shed,
        "{} acknowledged uplinks never reached the webhook (only {shed} were shed), e.g. \
         {:?}; log:\n{}",
        missing.len(),
        &missing[..missing.len().min(10)],
        problems.join("\n")
    );
    assert_eq!(
        unavailable, 0.0,
        "lorikeet_storage_unavailable still says the database is away after it came back"
    );
    assert!(
        acked.len() as u64 >= total * 9 / 10,
        "only {} of {total} uplinks were acknowledged",
        acked.len()
    );
    assert!(!log.contains("panicked"), "{log}");
    served.stop();
    drop(pg);
}

async fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}
