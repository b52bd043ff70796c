//! Crash tests: the real `lorikeet serve` under load from simulated devices (OTAA
//! 1.0.3 and 1.1, ABP 1.0.3 and 1.1) behind a fake Semtech UDP gateway on loopback,
//! killed with `kill -9` at the instants that matter, six times, and restarted on the
//! same database each time. Against SQLite and Postgres.
//!
//! The kills land:
//! 1. the instant a 1.1 device's JoinAccept (PULL_RESP) reaches the gateway;
//! 2. the instant a data downlink reaches the gateway;
//! 3. the instant an `up` event reaches a live (Server-Sent Events) subscriber;
//! 4. the instant a 1.0 device's JoinAccept reaches the gateway;
//! 5. the instant a webhook delivery arrives;
//! 6. at a random point of the uplink stream.
//!
//! What an outside observer saw is checked against what the restarted server does:
//! - (a) nothing that left the process is reused or accepted again: every JoinAccept
//!   a device gets carries a JoinNonce greater than every earlier one it got (across
//!   restarts); every data downlink's counter is greater than the previous one the
//!   device accepted on that counter (a reused counter makes the device drop it);
//!   after each restart, each device's last uplink that was accepted (seen on the
//!   webhook, the live stream or in the event store) is replayed verbatim and must
//!   not come out as a new event; and the device's next uplink must be accepted (a
//!   device holding a session the server forgot stays offline);
//! - (b) every event that reached the webhook or the live stream is in the database
//!   (nothing was published before it was committed);
//! - (c) every event in the database reaches the webhook, at least once, and in the
//!   order of the database per device.
//!
//! Problems are collected and reported together at the end, with the kill each
//! followed, so one run shows everything that went wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use lorikeet_storage::testing::TEST_KEK_HEX;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lorikeet_lorawan::crypto::SessionKeys;
use lorikeet_lorawan::phy::PhyPayload;
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use lorikeet_sim::{RxMeta, SimDevice, SimError, SimGateway};
use lorikeet_storage::testing::TestDb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use support::binary::{self, Served};
use support::webhook::{Delivery, Receiver};
use support::*;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

const GATEWAY: u64 = 0x00aa_bbcc_0000_0c18;
const JOIN_EUI: &str = "70b3d57ed0000c18";

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db: 8.5,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Otaa10,
    Otaa11,
    Abp10,
    Abp11,
}

impl Kind {
    fn otaa(self) -> bool {
        matches!(self, Kind::Otaa10 | Kind::Otaa11)
    }
    fn v11(self) -> bool {
        matches!(self, Kind::Otaa11 | Kind::Abp11)
    }
}

/// When to kill the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// The instant a JoinAccept for a device of this version (1.1: `true`) arrives.
    JoinAccept { v11: bool },
    /// The instant a data downlink arrives.
    Downlink,
    /// The instant an `up` event arrives on the live stream.
    LiveUp,
    /// The instant a webhook delivery arrives.
    Webhook,
    /// After a random time of traffic.
    Random,
}

/// What an observer just saw (checked against the armed trigger).
#[derive(Debug, Clone, Copy)]
enum Seen {
    JoinAccept { v11: bool },
    Downlink,
    LiveUp,
    Webhook,
}

impl Trigger {
    fn fires_on(self, seen: Seen) -> bool {
        match (self, seen) {
            (Trigger::JoinAccept { v11 }, Seen::JoinAccept { v11: s }) => v11 == s,
            (Trigger::Downlink, Seen::Downlink)
            | (Trigger::LiveUp, Seen::LiveUp)
            | (Trigger::Webhook, Seen::Webhook) => true,
            _ => false,
        }
    }
}

/// One simulated device and what it observed.
struct Dev {
    kind: Kind,
    sim: SimDevice,
    /// Frames sent in the current session, by FCnt (replayed after a restart).
    sent: BTreeMap<u32, Vec<u8>>,
    /// A JoinRequest is out and unanswered.
    joining: bool,
    /// Rejoin before the next uplink.
    rejoin_due: bool,
    /// Every JoinNonce accepted, in order.
    join_nonces: Vec<u32>,
    /// Every data downlink received, with the server run that sent it: the very same
    /// frame again in the same run is a retry (e.g. in RX2), not a new use of its
    /// counter; after a restart it is a counter the server forgot it had spent.
    downlinks: HashMap<Vec<u8>, u32>,
    /// Data downlinks accepted.
    downlinks_accepted: u32,
    /// An ABP device whose session the server lost: it can only go quiet.
    lost: bool,
}

impl Dev {
    fn dev_addr(&self) -> Option<DevAddr> {
        self.sim.dev_addr()
    }
}

/// Everything shared by the test and its tasks, across server restarts.
struct World {
    app_id: String,
    devs: BTreeMap<Eui64, Arc<Mutex<Dev>>>,
    wake: HashMap<Eui64, Arc<Notify>>,
    /// What the outside observer saw that the server must not have done.
    problems: Mutex<Vec<String>>,
    /// Every event received on the live stream: (type, JSON).
    live: Mutex<Vec<(String, Value)>>,
    /// The armed kill trigger.
    trigger: Mutex<Option<Trigger>>,
    /// Kills the running server.
    killer: Mutex<Option<binary::Killer>>,
    killed: Notify,
    was_killed: AtomicBool,
    /// The current incarnation of the server (1-based), for messages.
    incarnation: Mutex<u32>,
    webhook: Receiver,
}

impl World {
    fn problem(&self, what: String) {
        let n = *self.incarnation.lock().unwrap();
        eprintln!("PROBLEM (server run {n}): {what}");
        self.problems
            .lock()
            .unwrap()
            .push(format!("server run {n}: {what}"));
    }

    /// Kills the server now if the armed trigger fires on `seen`.
    fn observe(&self, seen: Seen) {
        let mut t = self.trigger.lock().unwrap();
        if t.is_some_and(|t| t.fires_on(seen)) {
            *t = None;
            self.kill_now(&format!("{seen:?}"));
        }
    }

    fn kill_now(&self, why: &str) {
        if let Some(killer) = self.killer.lock().unwrap().take() {
            let pid = killer.kill9();
            eprintln!("kill -9 {pid:?} on {why}");
            self.was_killed.store(true, Ordering::SeqCst);
            self.killed.notify_waiters();
        }
    }
}

/// Device `i`'s DevEUI.
fn dev_eui(i: u64) -> Eui64 {
    Eui64::from_u64(0x0c18_0000_0000_0000 | i)
}

fn app_key(i: u64) -> Aes128Key {
    Aes128Key::from_bytes([0x2b, i as u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
}

fn nwk_key(i: u64) -> Aes128Key {
    Aes128Key::from_bytes([0x3c, i as u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
}

fn abp_keys(i: u64, v11: bool) -> SessionKeys {
    let k = |b: u8| Aes128Key::from_bytes([b, i as u8, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
    if v11 {
        SessionKeys {
            f_nwk_s_int_key: k(0x41),
            s_nwk_s_int_key: k(0x42),
            nwk_s_enc_key: k(0x43),
            app_s_key: k(0x44),
        }
    } else {
        SessionKeys::from_1_0(k(0x51), k(0x52))
    }
}

const FLEET: [Kind; 6] = [
    Kind::Otaa10,
    Kind::Otaa10,
    Kind::Otaa11,
    Kind::Otaa11,
    Kind::Abp10,
    Kind::Abp11,
];

/// Provisions the application (with its webhook), profiles, devices and gateway.
async fn provision(api: &Api, webhook: &Receiver) -> (String, BTreeMap<Eui64, Dev>) {
    let app = api
        .post("/api/v1/applications", json!({"name": "crash"}))
        .await
        .expect_status(201);
    let app_id = app["id"].as_str().unwrap().to_owned();
    let r = api
        .post(
            &format!("/api/v1/applications/{app_id}/integrations/http"),
            json!({"url": webhook.url()}),
        )
        .await;
    assert!(r.status == 201 || r.status == 200, "webhook: {r:?}");
    let mut profiles = HashMap::new();
    for (otaa, mac) in [
        (true, "1.0.3"),
        (true, "1.1.0"),
        (false, "1.0.3"),
        (false, "1.1.0"),
    ] {
        let p = api
            .post(
                "/api/v1/device-profiles",
                json!({
                    "name": format!("{mac}-{}", if otaa {"otaa"} else {"abp"}),
                    "region": "EU868",
                    "macVersion": mac,
                    "regParamsRevision": "RP002-1.0.3",
                    "supportsOtaa": otaa,
                    "adrEnabled": false,
                    "payloadCodec": {"type": "none"},
                }),
            )
            .await
            .expect_status(201);
        profiles.insert((otaa, mac == "1.1.0"), p["id"].as_str().unwrap().to_owned());
    }
    let mut devs = BTreeMap::new();
    for (i, kind) in FLEET.iter().copied().enumerate() {
        let i = i as u64;
        let eui = dev_eui(i);
        api.post(
            "/api/v1/devices",
            json!({
                "devEui": eui.to_string(),
                "joinEui": if kind.otaa() { JOIN_EUI } else { "0000000000000000" },
                "name": format!("crash-{i}"),
                "applicationId": app_id,
                "deviceProfileId": profiles[&(kind.otaa(), kind.v11())],
            }),
        )
        .await
        .expect_status(201);
        let sim = if kind.otaa() {
            let mut keys = json!({"appKey": app_key(i).expose_hex()});
            if kind.v11() {
                keys["nwkKey"] = json!(nwk_key(i).expose_hex());
            }
            let s = api
                .put(&format!("/api/v1/devices/{eui}/keys"), keys)
                .await
                .status;
            assert!(s == 200 || s == 204, "keys: {s}");
            SimDevice::otaa(
                eui,
                JOIN_EUI.parse().unwrap(),
                app_key(i),
                kind.v11().then(|| nwk_key(i)),
            )
        } else {
            let keys = abp_keys(i, kind.v11());
            let addr = DevAddr::from_u32(0x0c18_0000 | i as u32);
            let mut body = json!({
                "devAddr": addr.to_string(),
                "appSKey": keys.app_s_key.expose_hex(),
            });
            if kind.v11() {
                body["nwkSEncKey"] = json!(keys.nwk_s_enc_key.expose_hex());
                body["sNwkSIntKey"] = json!(keys.s_nwk_s_int_key.expose_hex());
                body["fNwkSIntKey"] = json!(keys.f_nwk_s_int_key.expose_hex());
            } else {
                body["nwkSKey"] = json!(keys.f_nwk_s_int_key.expose_hex());
            }
            let s = api
                .post(&format!("/api/v1/devices/{eui}/activate"), body)
                .await
                .status;
            assert!(s == 200 || s == 201 || s == 204, "activate: {s}");
            SimDevice::abp(eui, addr, keys, kind.v11(), 0)
        };
        devs.insert(
            eui,
            Dev {
                kind,
                sim,
                sent: BTreeMap::new(),
                joining: false,
                rejoin_due: false,
                join_nonces: Vec::new(),
                downlinks: HashMap::new(),
                downlinks_accepted: 0,
                lost: false,
            },
        );
    }
    api.post(
        "/api/v1/gateways",
        json!({"gatewayId": Eui64::from_u64(GATEWAY).to_string(), "name": "crash-gw"}),
    )
    .await
    .expect_status(201);
    (app_id, devs)
}

/// One incarnation of the server with the test's tasks around it.
struct Run {
    served: Served,
    api: Arc<Api>,
    gw: Arc<SimGateway>,
    stop: watch::Sender<bool>,
    /// The gateway's downlink reader, the PUSH_ACK drain, the live stream reader and
    /// the queue refiller: they live as long as the server.
    background: Vec<JoinHandle<()>>,
    /// Device tasks of the traffic phase.
    devices: Vec<JoinHandle<()>>,
    refill: mpsc::UnboundedSender<Eui64>,
}

fn server_env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LORIKEET_DATABASE_URL", url.to_owned()),
        ("LORIKEET_API_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ("LORIKEET_LOG_LEVEL", "info".to_owned()),
        ("LORIKEET_SECURITY_KEK", TEST_KEK_HEX.to_owned()),
        // Redeliveries after a restart come quickly.
        ("LORIKEET_WEBHOOK_BACKOFF_BASE_MS", "100".to_owned()),
        ("LORIKEET_WEBHOOK_BACKOFF_MAX_MS", "1000".to_owned()),
        ("LORIKEET_WEBHOOK_POLL_INTERVAL_MS", "200".to_owned()),
    ]
}

async fn serve(dir: &std::path::Path, url: &str) -> Served {
    let dir = dir.to_owned();
    let env = server_env(url);
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        binary::serve(&dir, &env)
    })
    .await
    .unwrap()
}

/// Starts the server and the tasks that watch it (not the device traffic).
async fn start_run(world: &Arc<World>, dir: &std::path::Path, url: &str) -> Run {
    let served = serve(dir, url).await;
    *world.killer.lock().unwrap() = Some(served.killer());
    world.was_killed.store(false, Ordering::SeqCst);
    let api = Arc::new(Api::at(served.base()));
    let gw = Arc::new(
        SimGateway::connect(Eui64::from_u64(GATEWAY), served.udp_addr)
            .await
            .unwrap(),
    );
    gw.pull_data(Duration::from_secs(10))
        .await
        .expect("the gateway is acknowledged after a restart");
    let (stop, stop_rx) = watch::channel(false);
    let (refill, refill_rx) = mpsc::unbounded_channel();
    let background = vec![
        tokio::spawn(air(world.clone(), gw.clone(), refill.clone())),
        tokio::spawn(drain_push_acks(gw.clone())),
        tokio::spawn(live_stream(world.clone(), served.base())),
        tokio::spawn(refiller(api.clone(), refill_rx)),
    ];
    drop(stop_rx);
    Run {
        served,
        api,
        gw,
        stop,
        background,
        devices: Vec::new(),
        refill,
    }
}

impl Run {
    /// Stops the traffic (device tasks end at their next step).
    async fn stop_traffic(&mut self) {
        let _ = self.stop.send(true);
        for t in self.devices.drain(..) {
            let _ = t.await;
        }
    }

    /// After a kill: stops everything and reaps the process (keeping its logs).
    async fn end_killed(mut self, n: u32) {
        self.stop_traffic().await;
        for t in &self.background {
            t.abort();
        }
        let status = tokio::task::spawn_blocking(move || self.served.reap(n))
            .await
            .unwrap();
        assert!(!status.success(), "the server was killed: {status}");
    }

    /// Starts one task per device.
    fn start_traffic(&mut self, world: &Arc<World>) {
        let _ = self.stop.send(false);
        for eui in world.devs.keys() {
            self.devices.push(tokio::spawn(device_traffic(
                world.clone(),
                *eui,
                self.gw.clone(),
                self.stop.subscribe(),
            )));
        }
    }
}

/// Reads PUSH_ACKs so the socket buffer never fills (the load does not wait for them).
async fn drain_push_acks(gw: Arc<SimGateway>) {
    loop {
        gw.drain_acks(Duration::from_secs(3600)).await;
    }
}

/// Posts a queue item for each device named (the API may be gone: errors ignored).
async fn refiller(api: Arc<Api>, mut rx: mpsc::UnboundedReceiver<Eui64>) {
    let mut n = 0u32;
    while let Some(eui) = rx.recv().await {
        n += 1;
        let _ = api
            .try_send(
                Method::POST,
                &format!("/api/v1/devices/{eui}/queue"),
                Some(json!({"fPort": 20, "data": base64(&n.to_be_bytes())})),
            )
            .await;
    }
}

fn base64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The gateway's radio: every PULL_RESP is handed to the device it is for (as the
/// device would receive it), the kill trigger is checked, and a TX_ACK is sent.
async fn air(world: Arc<World>, gw: Arc<SimGateway>, refill: mpsc::UnboundedSender<Eui64>) {
    loop {
        let Ok(Some(dl)) = gw.recv_downlink(Duration::from_secs(3600)).await else {
            continue;
        };
        let phy = dl.packet.phy_payload.clone();
        let m_type = phy.first().map_or(0, |b| b >> 5);
        if m_type == 1 {
            join_accept(&world, &phy);
        } else if m_type == 3 || m_type == 5 {
            data_downlink(&world, &phy, &refill);
        }
        if world.was_killed.load(Ordering::SeqCst) {
            // The server is gone: no TX_ACK.
            continue;
        }
        let _ = gw.tx_ack(dl.token, None).await;
    }
}

fn join_accept(world: &World, phy: &[u8]) {
    for (eui, d) in &world.devs {
        let mut d = d.lock().unwrap();
        if !d.joining {
            continue;
        }
        let before = d.sim.last_join_nonce;
        let v11 = d.kind.v11();
        match d.sim.handle_join_accept(phy) {
            Ok(()) => {
                let got = d.sim.last_join_nonce;
                if !d.join_nonces.is_empty() && got <= before {
                    world.problem(format!(
                        "{eui} (1.0.3) got JoinNonce {got} after {before}: a JoinNonce reused"
                    ));
                }
                d.join_nonces.push(got);
                d.joining = false;
                d.sent.clear();
                d.downlinks.clear();
                drop(d);
                world.observe(Seen::JoinAccept { v11 });
                world.wake[eui].notify_one();
                return;
            }
            Err(SimError::JoinNonceNotGreater { got, last }) => {
                world.problem(format!(
                    "{eui} (1.1) refused a JoinAccept: JoinNonce {got} is not greater than \
                     the last it accepted, {last} (JoinNonces so far {:?})",
                    d.join_nonces
                ));
                drop(d);
                world.observe(Seen::JoinAccept { v11 });
                return;
            }
            // Not for this device.
            Err(_) => {}
        }
    }
    let joining: Vec<String> = world
        .devs
        .iter()
        .filter_map(|(e, d)| {
            let d = d.lock().unwrap();
            d.joining
                .then(|| format!("{e} (DevNonce {})", d.sim.dev_nonce))
        })
        .collect();
    eprintln!("a JoinAccept no joining device could open (joining: {joining:?})");
}

fn data_downlink(world: &World, phy: &[u8], refill: &mpsc::UnboundedSender<Eui64>) {
    let addr = PhyPayload::decode(phy)
        .ok()
        .and_then(|p| p.data().map(|d| d.fhdr.dev_addr));
    let Some(addr) = addr else {
        world.problem("a data downlink that does not decode".into());
        return;
    };
    for (eui, d) in &world.devs {
        let mut d = d.lock().unwrap();
        if d.dev_addr() != Some(addr) {
            continue;
        }
        let run = *world.incarnation.lock().unwrap();
        let seen_in = d.downlinks.get(phy).copied();
        if seen_in.is_none() {
            d.downlinks.insert(phy.to_vec(), run);
        }
        match d.sim.handle_downlink(phy) {
            Ok(frame) => {
                d.downlinks_accepted += 1;
                if frame.f_port.is_some_and(|p| p > 0) {
                    let _ = refill.send(*eui);
                }
            }
            Err(SimError::DownlinkCounterReplayed { .. }) if seen_in == Some(run) => {
                eprintln!(
                    "{eui}: the same downlink frame again (a retry, not a new use of its counter)"
                );
            }
            Err(e @ SimError::DownlinkCounterReplayed { .. }) if seen_in.is_some() => {
                world.problem(format!(
                    "{eui} dropped a downlink: {e}: the very frame it got from server run \
                     {}, sent again after the restart (the spent counter and the \
                     queue item were rolled back)",
                    seen_in.unwrap_or(0)
                ));
            }
            Err(e @ SimError::DownlinkCounterReplayed { .. }) => {
                world.problem(format!("{eui} dropped a downlink: {e}: a counter reused"));
            }
            Err(e) => {
                world.problem(format!(
                    "{eui} cannot open a downlink to its address {addr}: {e} (the server \
                     uses a session the device does not hold)"
                ));
            }
        }
        drop(d);
        world.observe(Seen::Downlink);
        world.wake[eui].notify_one();
        return;
    }
    eprintln!("a data downlink for {addr}, which no device holds (a forgotten session?)");
    world.observe(Seen::Downlink);
}

/// Reads the application's live event stream into `world.live`.
async fn live_stream(world: Arc<World>, base: String) {
    let url = format!("{base}/api/v1/applications/{}/events/stream", world.app_id);
    let Ok(mut r) = reqwest::Client::new()
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
    else {
        return;
    };
    let mut buf = String::new();
    while let Ok(Some(chunk)) = r.chunk().await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            let Ok(body) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            if body.get("deviceInfo").is_none() {
                continue;
            }
            let up = name == "up";
            world.live.lock().unwrap().push((name, body));
            if up {
                world.observe(Seen::LiveUp);
            }
        }
    }
}

/// Waits until `done()` (checked whenever `n` is notified) or `timeout`; `false`
/// when `stop` came first. A notification may be stale (left from an earlier wait):
/// only the condition counts.
async fn wait_or_stop(
    n: &Notify,
    timeout: Duration,
    stop: &mut watch::Receiver<bool>,
    mut done: impl FnMut() -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if *stop.borrow() {
            return false;
        }
        if done() {
            return true;
        }
        tokio::select! {
            _ = n.notified() => {}
            _ = tokio::time::sleep_until(deadline) => return true,
            _ = stop.changed() => {}
        }
    }
}

/// One device's traffic: (re)joins when it must, otherwise an unconfirmed uplink,
/// a wait for its downlink, a short pause; OTAA devices rejoin now and then.
async fn device_traffic(
    world: Arc<World>,
    eui: Eui64,
    gw: Arc<SimGateway>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = StdRng::from_entropy();
    let wake = world.wake[&eui].clone();
    let dev = world.devs[&eui].clone();
    while !*stop.borrow() {
        let (frame, joining, downlinks_before) = {
            let mut d = dev.lock().unwrap();
            let downlinks_before = d.downlinks_accepted;
            if d.lost {
                return;
            }
            if d.kind.otaa() && (d.sim.session.is_none() || d.rejoin_due || d.joining) {
                if d.joining {
                    // The last JoinRequest went unanswered (the server was killed, or
                    // a JoinAccept was refused): a device counts DevNonces per request.
                    d.sim.dev_nonce = d.sim.dev_nonce.wrapping_add(1);
                }
                d.joining = true;
                d.rejoin_due = false;
                (d.sim.join_request(), true, downlinks_before)
            } else {
                let f_cnt = d.sim.session.as_ref().unwrap().f_cnt_up;
                let payload: [u8; 4] = rng.gen();
                let phy = d.sim.uplink(1, &payload, false, 5, 0).unwrap();
                d.sent.insert(f_cnt, phy.clone());
                if d.kind.otaa() && rng.gen_ratio(1, 12) {
                    d.rejoin_due = true;
                }
                (phy, false, downlinks_before)
            }
        };
        if gw.push_at(&frame, &rx(), gw.tmst_now()).await.is_err() {
            return;
        }
        let going_on = if joining {
            // A JoinAccept comes about 200 ms after the request (the dedup window).
            wait_or_stop(&wake, Duration::from_secs(3), &mut stop, || {
                !dev.lock().unwrap().joining
            })
            .await
        } else {
            // So does a downlink, when the server has one.
            wait_or_stop(&wake, Duration::from_millis(800), &mut stop, || {
                dev.lock().unwrap().downlinks_accepted != downlinks_before
            })
            .await
        };
        if !going_on {
            return;
        }
        let pause = Duration::from_millis(rng.gen_range(50..250));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
    }
}

/// A device's stored events, oldest first: (id, type, payload).
async fn stored_events(api: &Api, eui: Eui64) -> Option<Vec<(i64, String, Value)>> {
    let r = api
        .try_send(
            Method::GET,
            &format!("/api/v1/devices/{eui}/events?limit=1000"),
            None,
        )
        .await?;
    if r.status != 200 {
        return None;
    }
    let mut out: Vec<(i64, String, Value)> = r.body["items"]
        .as_array()?
        .iter()
        .map(|i| {
            (
                i["id"].as_i64().unwrap_or(0),
                i["type"].as_str().unwrap_or("").to_owned(),
                i["payload"].clone(),
            )
        })
        .collect();
    assert!(out.len() < 1000, "{eui}: too many events for one page");
    out.sort_by_key(|e| e.0);
    Some(out)
}

/// `(devAddr, fCnt) -> deduplicationIds` of the `up` events among `events`.
fn ups<'a>(
    events: impl Iterator<Item = (&'a str, &'a Value)>,
    eui: Eui64,
) -> HashMap<(String, u64), BTreeSet<String>> {
    let mut out: HashMap<(String, u64), BTreeSet<String>> = HashMap::new();
    for (kind, body) in events {
        if kind != "up" || body["deviceInfo"]["devEui"] != json!(eui.to_string()) {
            continue;
        }
        let key = (
            body["devAddr"].as_str().unwrap_or("").to_owned(),
            body["fCnt"].as_u64().unwrap_or(u64::MAX),
        );
        out.entry(key)
            .or_default()
            .insert(body["deduplicationId"].as_str().unwrap_or("").to_owned());
    }
    out
}

/// Every `up` seen by an outside observer (webhook, live stream, event store) for
/// `eui`, keyed by (devAddr, fCnt).
async fn observed_ups(
    world: &World,
    api: &Api,
    eui: Eui64,
) -> HashMap<(String, u64), BTreeSet<String>> {
    let hooks = world.webhook.all();
    let live = world.live.lock().unwrap().clone();
    let stored = stored_events(api, eui).await.unwrap_or_default();
    let mut all = ups(hooks.iter().map(|d| (d.event.as_str(), &d.body)), eui);
    for (k, v) in ups(live.iter().map(|(t, b)| (t.as_str(), b)), eui)
        .into_iter()
        .chain(ups(stored.iter().map(|(_, t, b)| (t.as_str(), b)), eui))
    {
        all.entry(k).or_default().extend(v);
    }
    all
}

/// After a restart, per device: the last uplink the outside world saw accepted is
/// replayed verbatim and must not come out as a new event; then a new uplink must
/// be accepted (the server still holds the device's session).
async fn check_after_restart(world: Arc<World>, api: Arc<Api>, gw: Arc<SimGateway>, eui: Eui64) {
    let dev = world.devs[&eui].clone();
    let (addr, kind) = {
        let d = dev.lock().unwrap();
        // A device whose JoinRequest went unanswered may or may not still have the
        // session it holds on the server (as when the JoinAccept is lost on air).
        if d.lost || d.joining {
            return;
        }
        match d.dev_addr() {
            Some(a) => (format!("{:08x}", a.to_u32()), d.kind),
            None => return,
        }
    };
    let seen = observed_ups(&world, &api, eui).await;
    let replay = {
        let d = dev.lock().unwrap();
        d.sent
            .iter()
            .rev()
            .find(|(f, _)| seen.contains_key(&(addr.clone(), u64::from(**f))))
            .map(|(f, phy)| (*f, phy.clone()))
    };
    if let Some((_, phy)) = &replay {
        gw.push_at(phy, &rx(), gw.tmst_now()).await.unwrap();
    }
    let (marker, phy) = {
        let mut d = dev.lock().unwrap();
        let f_cnt = d.sim.session.as_ref().unwrap().f_cnt_up;
        let phy = d.sim.uplink(1, b"mark", false, 5, 0).unwrap();
        d.sent.insert(f_cnt, phy.clone());
        (f_cnt, phy)
    };
    gw.push_at(&phy, &rx(), gw.tmst_now()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let stored = loop {
        let stored = stored_events(&api, eui).await.unwrap_or_default();
        let has = |f: u32| {
            stored
                .iter()
                .any(|(_, t, b)| t == "up" && b["devAddr"] == json!(addr) && b["fCnt"] == json!(f))
        };
        if has(marker) {
            break Some(stored);
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let Some(stored) = stored else {
        world.problem(format!(
            "{eui} ({kind:?}) holds a session (DevAddr {addr}) the restarted server does \
             not accept: its new uplink FCnt {marker} was not stored within 10 s (the \
             device stays offline until it rejoins)"
        ));
        let mut d = dev.lock().unwrap();
        if d.kind.otaa() {
            d.rejoin_due = true;
        } else {
            d.lost = true;
        }
        return;
    };
    if let Some((f, _)) = replay {
        let before = &seen[&(addr.clone(), u64::from(f))];
        let after = ups(stored.iter().map(|(_, t, b)| (t.as_str(), b)), eui);
        let new: Vec<_> = after
            .get(&(addr.clone(), u64::from(f)))
            .into_iter()
            .flatten()
            .filter(|id| !before.contains(*id))
            .collect();
        if !new.is_empty() {
            world.problem(format!(
                "{eui}: uplink FCnt {f} (DevAddr {addr}) was accepted before the crash and \
                 accepted again when replayed after the restart (new deduplicationId {new:?})"
            ));
        }
    }
}

/// Every event (type, payload) the database holds, per device, oldest first.
async fn database_events(world: &World, api: &Api) -> BTreeMap<Eui64, Vec<(String, Value)>> {
    let mut out = BTreeMap::new();
    for eui in world.devs.keys() {
        let e = stored_events(api, *eui).await.expect("events");
        out.insert(*eui, e.into_iter().map(|(_, t, b)| (t, b)).collect());
    }
    out
}

/// Each device's webhook deliveries, duplicates removed (first delivery kept).
fn first_deliveries(hooks: &[Delivery]) -> BTreeMap<String, Vec<(String, Value)>> {
    let mut out: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for d in hooks {
        if seen.insert(key(&d.event, &d.body)) {
            out.entry(d.dev_eui().to_owned())
                .or_default()
                .push((d.event.clone(), d.body.clone()));
        }
    }
    out
}

/// An event's identity: its type and its JSON with object keys sorted (Postgres
/// stores the payload as JSONB, which does not keep the key order).
fn key(kind: &str, body: &Value) -> String {
    fn canon(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    canon(&m[k], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canon(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = format!("{kind} ");
    canon(body, &mut out);
    out
}

struct Db {
    url: String,
    _pg: Option<TestDb>,
}

async fn scenario(db: Db, name: &str) {
    let started = Instant::now();
    let dir = binary::fresh_dir(&format!("crash-{name}"));
    let webhook = Receiver::start().await;
    let triggers = [
        Trigger::JoinAccept { v11: true },
        Trigger::Downlink,
        Trigger::LiveUp,
        Trigger::JoinAccept { v11: false },
        Trigger::Webhook,
        Trigger::Random,
    ];

    // Provisioning on the first incarnation (no one watches yet).
    let served = serve(&dir, &db.url).await;
    let api = Api::at(served.base());
    let (app_id, devs) = provision(&api, &webhook).await;
    served.kill9();
    let _ = tokio::task::spawn_blocking(move || served.reap(0)).await;

    let world = Arc::new(World {
        app_id,
        wake: devs.keys().map(|e| (*e, Arc::new(Notify::new()))).collect(),
        devs: devs
            .into_iter()
            .map(|(e, d)| (e, Arc::new(Mutex::new(d))))
            .collect(),
        problems: Mutex::default(),
        live: Mutex::default(),
        trigger: Mutex::default(),
        killer: Mutex::default(),
        killed: Notify::new(),
        was_killed: AtomicBool::new(false),
        incarnation: Mutex::new(0),
        webhook: webhook.clone(),
    });
    let w = world.clone();
    webhook.set_hook(move |_| w.observe(Seen::Webhook));

    for (n, trigger) in triggers.iter().enumerate() {
        let n = n as u32 + 1;
        *world.incarnation.lock().unwrap() = n;
        let mut run = start_run(&world, &dir, &db.url).await;
        if n > 1 {
            after_restart(&world, &run).await;
        }
        // Keep a few downlinks queued for every device.
        for eui in world.devs.keys() {
            for _ in 0..2 {
                let _ = run.refill.send(*eui);
            }
        }
        let killed = world.killed.notified();
        tokio::pin!(killed);
        killed.as_mut().enable();
        run.start_traffic(&world);
        // Some traffic first (state committed, counters moving), then the trigger is
        // armed and fires at the next instant of its kind.
        let warm_up = Duration::from_millis(StdRng::from_entropy().gen_range(1_000..3_000));
        tokio::time::sleep(warm_up).await;
        if let Trigger::JoinAccept { v11 } = trigger {
            for d in world.devs.values() {
                let mut d = d.lock().unwrap();
                if d.kind.otaa() && d.kind.v11() == *v11 {
                    d.rejoin_due = true;
                }
            }
        }
        *world.trigger.lock().unwrap() = Some(*trigger);
        if *trigger == Trigger::Random {
            let after = Duration::from_millis(StdRng::from_entropy().gen_range(0..1_000));
            let w = world.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let armed = *w.incarnation.lock().unwrap() == n
                    && w.trigger.lock().unwrap().take().is_some();
                if armed {
                    w.kill_now(&format!(
                        "a random instant ({:?} into the traffic)",
                        warm_up + after
                    ));
                }
            });
        }
        if tokio::time::timeout(Duration::from_secs(30), killed)
            .await
            .is_err()
        {
            panic!(
                "run {n}: the kill trigger {trigger:?} never fired in 30 s; log:\n{}",
                run.served.log()
            );
        }
        run.end_killed(n).await;
    }

    // The last incarnation: checks after the restart, every OTAA device rejoins,
    // a little traffic, then the database against what the observers saw.
    let n = triggers.len() as u32 + 1;
    *world.incarnation.lock().unwrap() = n;
    webhook.clear_hook();
    let mut run = start_run(&world, &dir, &db.url).await;
    after_restart(&world, &run).await;
    let mut joins_before = HashMap::new();
    for (eui, d) in &world.devs {
        let mut d = d.lock().unwrap();
        if d.kind.otaa() {
            d.rejoin_due = true;
            joins_before.insert(*eui, d.join_nonces.len());
        }
    }
    run.start_traffic(&world);
    let joined = wait_until(Duration::from_secs(20), || {
        joins_before
            .iter()
            .all(|(eui, n)| world.devs[eui].lock().unwrap().join_nonces.len() > *n)
    })
    .await;
    if !joined {
        world.problem("not every OTAA device could rejoin within 20 s of the last restart".into());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    run.stop_traffic().await;

    // (b) and (c): wait until the webhook has every stored event, then compare.
    let api = run.api.clone();
    // Observers first, then the database: whatever reached an observer before the
    // database is read must be in what is read.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (hooks, live, stored) = loop {
        let hooks = webhook.all();
        let live = world.live.lock().unwrap().clone();
        let stored = database_events(&world, &api).await;
        let delivered = first_deliveries(&hooks);
        let complete = stored.iter().all(|(eui, evs)| {
            let got: HashSet<String> = delivered
                .get(&eui.to_string())
                .into_iter()
                .flatten()
                .map(|(t, b)| key(t, b))
                .collect();
            evs.iter().all(|(t, b)| got.contains(&key(t, b)))
        });
        if complete || Instant::now() > deadline {
            break (hooks, live, stored);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let delivered = first_deliveries(&hooks);
    let stored_keys: HashSet<String> = stored.values().flatten().map(|(t, b)| key(t, b)).collect();
    // (b) Published only once committed.
    for d in &hooks {
        let key = key(&d.event, &d.body);
        if !stored_keys.contains(&key) {
            world.problem(format!(
                "a webhook delivery that is not in the database: {key}"
            ));
        }
    }
    for (t, b) in &live {
        let key = key(t, b);
        if !stored_keys.contains(&key) {
            world.problem(format!(
                "an event on the live stream that is not in the database (published \
                 before it was committed, lost in a crash): {key}"
            ));
        }
    }
    // (c) At least once, in order per device.
    for (eui, evs) in &stored {
        let got: Vec<String> = delivered
            .get(&eui.to_string())
            .into_iter()
            .flatten()
            .map(|(t, b)| key(t, b))
            .collect();
        let got_set: HashSet<&String> = got.iter().collect();
        let want: Vec<String> = evs.iter().map(|(t, b)| key(t, b)).collect();
        let missing: Vec<&String> = want.iter().filter(|k| !got_set.contains(k)).collect();
        if !missing.is_empty() {
            world.problem(format!(
                "{eui}: {} of {} stored events never reached the webhook, e.g. {}",
                missing.len(),
                want.len(),
                missing[0]
            ));
            continue;
        }
        let want_set: HashSet<&String> = want.iter().collect();
        let order: Vec<&String> = got.iter().filter(|k| want_set.contains(k)).collect();
        if let Some(i) = (0..want.len()).find(|i| order[*i] != &want[*i]) {
            world.problem(format!(
                "{eui}: the webhook got events out of the database's order: #{i} delivered \
                 first was {}, the database's #{i} is {}",
                order[i], want[i]
            ));
        }
    }

    // A report of what happened, then the verdict.
    let ups: usize = stored.values().flatten().filter(|(t, _)| t == "up").count();
    eprintln!(
        "{name}: {} kills, {} stored events ({ups} up), {} webhook deliveries, {} live \
         events, in {:?}",
        triggers.len(),
        stored.values().map(Vec::len).sum::<usize>(),
        webhook.len(),
        live.len(),
        started.elapsed()
    );
    for (eui, d) in &world.devs {
        let d = d.lock().unwrap();
        eprintln!(
            "  {eui} {:?}: JoinNonces {:?}, {} downlinks accepted{}",
            d.kind,
            d.join_nonces,
            d.downlinks_accepted,
            if d.lost { ", session lost" } else { "" }
        );
    }
    for t in &run.background {
        t.abort();
    }
    let log = run.served.log();
    let status = tokio::task::spawn_blocking(move || run.served.terminate(n))
        .await
        .unwrap();
    assert!(
        status.success(),
        "the last run did not stop cleanly: {status}"
    );
    let problems = world.problems.lock().unwrap().clone();
    assert!(
        problems.is_empty(),
        "{name}: {} problems after kill -9:\n{}\n(logs of each run: {})",
        problems.len(),
        problems.join("\n"),
        dir.display()
    );
    assert!(!log.contains("panicked"), "{log}");
    binary::remove_dir(&dir);
}

async fn after_restart(world: &Arc<World>, run: &Run) {
    let checks: Vec<_> = world
        .devs
        .keys()
        .map(|eui| {
            tokio::spawn(check_after_restart(
                world.clone(),
                run.api.clone(),
                run.gw.clone(),
                *eui,
            ))
        })
        .collect();
    for c in checks {
        c.await.unwrap();
    }
}

async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_sqlite() {
    let dir = binary::fresh_dir("crash-sqlite-db");
    let url = format!("sqlite://{}", dir.join("lorikeet.db").display());
    scenario(Db { url, _pg: None }, "sqlite").await;
    binary::remove_dir(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let url = db.url().to_owned();
    scenario(Db { url, _pg: Some(db) }, "postgres").await;
}
