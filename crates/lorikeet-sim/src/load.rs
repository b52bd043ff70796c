//! The load generator: simulated gateways and devices driving any Semtech-UDP
//! network server at a target rate, measuring what comes back.
//!
//! Devices are split into shards, one task each, that own them outright; downlinks
//! received by the gateway reader tasks are routed to the owning shard by DevAddr
//! (data downlinks) or by the gateway and `tmst` they were scheduled for (JoinAccepts,
//! whose DevAddr is encrypted).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lorikeet_lorawan::{DevAddr, Eui64};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::device::SimDevice;
use super::gateway::{ReceivedDownlink, RxMeta, SimGateway};
use super::report::{Percentiles, Report};
use super::webhook::Tracker;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What devices put in their uplinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// Random bytes of the given size.
    Raw(usize),
    /// A Cayenne LPP temperature and humidity reading.
    Cayenne,
}

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The network server's Semtech UDP address.
    pub server: SocketAddr,
    /// Gateway EUIs (provisioned, or the server allows unknown gateways).
    pub gateways: Vec<Eui64>,
    /// Uplinks per second over all devices; 0 sends as fast as the generator can.
    pub rate_per_s: f64,
    /// Length of the measured phase.
    pub duration: Duration,
    /// How many gateways hear each uplink: a range, picked per uplink.
    pub copies: (usize, usize),
    /// Share of uplinks sent confirmed (0..=1).
    pub confirmed_share: f64,
    /// Payload of the uplinks.
    pub payload: PayloadKind,
    /// FPort of the uplinks.
    pub f_port: u8,
    /// Joins per second while devices join.
    pub join_rate_per_s: f64,
    /// How long to wait for stragglers after the measured phase.
    pub drain: Duration,
    /// Rate phases (uplinks per second, length) replacing `rate_per_s` and
    /// `duration` when not empty: e.g. an overload followed by the normal rate.
    pub rate_phases: Vec<(f64, Duration)>,
    /// Generator tasks.
    pub shards: usize,
    /// Most rxpk per PUSH_DATA in the measured phase (receptions of one generator
    /// round are sent together, as a forwarder sends one concentrator poll's packets).
    pub rxpk_per_push: usize,
    /// Print a progress line every second (to stderr).
    pub progress: bool,
    /// The server's process, for its RSS.
    pub server_pid: Option<u32>,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            server: SocketAddr::from(([127, 0, 0, 1], 1700)),
            gateways: Vec::new(),
            rate_per_s: 100.0,
            duration: Duration::from_secs(10),
            copies: (1, 2),
            confirmed_share: 0.0,
            payload: PayloadKind::Cayenne,
            f_port: 10,
            join_rate_per_s: 200.0,
            drain: Duration::from_secs(3),
            rate_phases: Vec::new(),
            shards: 2,
            rxpk_per_push: 8,
            progress: false,
            server_pid: None,
        }
    }
}

impl LoadConfig {
    /// The measured phase's rate phases.
    fn phases(&self) -> Vec<(f64, Duration)> {
        if self.rate_phases.is_empty() {
            vec![(self.rate_per_s, self.duration)]
        } else {
            self.rate_phases.clone()
        }
    }

    /// Length of the measured phase.
    fn total_duration(&self) -> Duration {
        self.phases().iter().map(|(_, d)| *d).sum()
    }
}

/// EU868 uplink channels the devices hop over (at the data rate ADR gave them).
const CHANNELS_HZ: [u32; 3] = [868_100_000, 868_300_000, 868_500_000];

#[derive(Debug, Default)]
struct Counters {
    joins_sent: AtomicU64,
    joins_accepted: AtomicU64,
    uplinks_sent: AtomicU64,
    copies_sent: AtomicU64,
    downlinks: AtomicU64,
    downlinks_late: AtomicU64,
    downlinks_refused: AtomicU64,
    confirmed_sent: AtomicU64,
    confirmed_acked: AtomicU64,
}

/// Where downlinks go: DevAddr → shard, and pending JoinAccepts by (gateway, tmst).
#[derive(Debug, Default)]
struct Router {
    by_addr: Mutex<HashMap<DevAddr, (usize, usize)>>,
    joins: Mutex<HashMap<(usize, u32), (usize, usize)>>,
}

enum ShardMsg {
    Downlink(ReceivedDownlink),
    JoinAccept(usize, ReceivedDownlink),
}

struct Shared {
    cfg: LoadConfig,
    gateways: Vec<Arc<SimGateway>>,
    counters: Counters,
    router: Router,
    tracker: Arc<Tracker>,
    leads_us: Mutex<Vec<i64>>,
    /// Each gateway's transmissions, as a forwarder's JIT queue holds them.
    jit: Vec<Mutex<crate::jit::JitQueue>>,
    /// Frames the gateways refused, by the forwarder's error name.
    gateway_refusals: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    measuring: AtomicBool,
    stop: AtomicBool,
}

/// Runs the simulation: devices without a session join first (at `join_rate_per_s`),
/// then every device sends uplinks for `duration`.
pub async fn run(
    cfg: LoadConfig,
    devices: Vec<SimDevice>,
    tracker: Arc<Tracker>,
) -> std::io::Result<Report> {
    let mut gateways = Vec::with_capacity(cfg.gateways.len());
    for id in &cfg.gateways {
        // The server's address in the message: a bare "Connection refused" says nothing.
        let named = |e: std::io::Error| {
            std::io::Error::new(
                e.kind(),
                format!("gateway {id} to Semtech UDP {}: {e}", cfg.server),
            )
        };
        let gw = SimGateway::connect(*id, cfg.server).await.map_err(named)?;
        gw.pull_data(Duration::from_secs(5)).await.map_err(named)?;
        gateways.push(Arc::new(gw));
    }
    if gateways.is_empty() {
        return Err(std::io::Error::other("at least one gateway is needed"));
    }
    let n_devices = devices.len();
    let shards = cfg.shards.max(1);
    let jit = gateways.iter().map(|_| Mutex::default()).collect();
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        gateways,
        jit,
        gateway_refusals: Mutex::default(),
        counters: Counters::default(),
        router: Router::default(),
        tracker: tracker.clone(),
        leads_us: Mutex::new(Vec::new()),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    });

    // Gateways: keepalives, ack draining and downlink readers.
    let mut shard_tx = Vec::new();
    let mut shard_rx = Vec::new();
    for _ in 0..shards {
        let (tx, rx) = mpsc::unbounded_channel();
        shard_tx.push(tx);
        shard_rx.push(rx);
    }
    // JoinSets: if this future is dropped (Ctrl-C), every task it started stops too.
    let mut background = JoinSet::new();
    for (gi, gw) in shared.gateways.iter().enumerate() {
        let gw2 = gw.clone();
        let sh = shared.clone();
        background.spawn(async move {
            while !sh.stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let _ = gw2.keepalive().await;
            }
        });
        let gw2 = gw.clone();
        let sh = shared.clone();
        background.spawn(async move {
            while !sh.stop.load(Ordering::Relaxed) {
                gw2.drain_acks(Duration::from_millis(500)).await;
            }
        });
        let gw2 = gw.clone();
        let sh = shared.clone();
        let txs = shard_tx.clone();
        background.spawn(async move {
            while !sh.stop.load(Ordering::Relaxed) {
                let Ok(Some(dl)) = gw2.recv_downlink(Duration::from_millis(500)).await else {
                    continue;
                };
                on_downlink(&sh, gi, &gw2, dl, &txs).await;
            }
        });
    }

    // Devices into shards.
    let mut per_shard: Vec<Vec<SimDevice>> = (0..shards).map(|_| Vec::new()).collect();
    for (i, d) in devices.into_iter().enumerate() {
        per_shard[i % shards].push(d);
    }
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (si, (devs, rx)) in per_shard.into_iter().zip(shard_rx).enumerate() {
        let sh = shared.clone();
        tasks.spawn(shard(sh, si, shards, devs, rx));
    }

    // Progress and the end of the measured phase.
    let mut progress = JoinSet::new();
    {
        let sh = shared.clone();
        progress.spawn(async move {
            let mut last = 0;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            while !sh.stop.load(Ordering::Relaxed) {
                tick.tick().await;
                if sh.cfg.progress {
                    let sent = sh.counters.uplinks_sent.load(Ordering::Relaxed);
                    let r = sh.tracker.received();
                    eprint!(
                        "\r{:>6.1}s joined {:>7} sent {:>9} ({:>7}/s) delivered {:>9} downlinks {:>7}   ",
                        started.elapsed().as_secs_f64(),
                        sh.counters.joins_accepted.load(Ordering::Relaxed),
                        sent,
                        sent - last,
                        r.delivered,
                        sh.counters.downlinks.load(Ordering::Relaxed)
                    );
                    last = sent;
                }
            }
        });
    }
    let mut measured = Duration::ZERO;
    let mut delivered_before = 0;
    while let Some(t) = tasks.join_next().await {
        if let Ok(Some((d, before))) = t {
            measured = measured.max(d);
            delivered_before += before;
        }
    }
    // Stragglers: wait until everything sent was delivered, or the drain time passed.
    let drain_until = Instant::now() + cfg.drain;
    while tracker.outstanding() > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    let _ = progress.join_next().await;
    if cfg.progress {
        eprintln!();
    }
    background.abort_all();

    let c = &shared.counters;
    let r = tracker.received();
    let deliveries = tracker.take_deliveries();
    let mut latencies: Vec<i64> = deliveries.iter().map(|(_, l)| *l).collect();
    let timeline = super::report::timeline(&deliveries);
    let mut leads = std::mem::take(&mut *lock(&shared.leads_us));
    let delivered = r.delivered;
    let secs = measured.as_secs_f64().max(1e-9);
    let refused_by_gateways = lock(&shared.gateway_refusals)
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    Ok(Report {
        duration_s: measured.as_secs_f64(),
        gateways: shared.gateways.len(),
        devices: n_devices,
        joins_sent: c.joins_sent.load(Ordering::Relaxed),
        joins_accepted: c.joins_accepted.load(Ordering::Relaxed),
        uplinks_sent: c.uplinks_sent.load(Ordering::Relaxed),
        copies_sent: c.copies_sent.load(Ordering::Relaxed),
        uplinks_delivered: delivered,
        uplinks_lost: tracker.outstanding() as u64,
        duplicate_deliveries: r.duplicates,
        throughput_per_s: delivered.saturating_sub(delivered_before) as f64 / secs,
        latency: Percentiles::from_micros(&mut latencies),
        downlinks: c.downlinks.load(Ordering::Relaxed),
        downlink_lead: Percentiles::from_micros(&mut leads),
        downlinks_late: c.downlinks_late.load(Ordering::Relaxed),
        confirmed_sent: c.confirmed_sent.load(Ordering::Relaxed),
        confirmed_acked: c.confirmed_acked.load(Ordering::Relaxed),
        downlinks_refused: c.downlinks_refused.load(Ordering::Relaxed),
        refused_by_gateways,
        refused_by_scheduler: Default::default(),
        other_events: r.other,
        server_rss_mib: cfg.server_pid.and_then(super::report::rss_mib),
        timeline,
        phased: !cfg.rate_phases.is_empty(),
        integrations: Vec::new(),
    })
}

async fn on_downlink(
    sh: &Shared,
    gi: usize,
    gw: &SimGateway,
    dl: ReceivedDownlink,
    shards: &[mpsc::UnboundedSender<ShardMsg>],
) {
    sh.counters.downlinks.fetch_add(1, Ordering::Relaxed);
    let now = gw.tmst_now();
    if let Some(tmst) = dl.tmst() {
        // Wrapping µs difference, as a signed value: negative means too late.
        let lead = tmst.wrapping_sub(now) as i32;
        if lead < 0 {
            sh.counters.downlinks_late.fetch_add(1, Ordering::Relaxed);
        }
        lock(&sh.leads_us).push(i64::from(lead));
    }
    // Answer as a real forwarder would: a frame that overlaps one already queued, or
    // arrives too late, is refused and never reaches the device.
    let verdict = match crate::jit::airtime_us(&dl.packet) {
        Some(air) => sh
            .jit
            .get(gi)
            .map_or(Ok(()), |q| lock(q).admit(dl.tmst(), air, now)),
        None => Ok(()),
    };
    if let Err(error) = verdict {
        *lock(&sh.gateway_refusals).entry(error).or_default() += 1;
        let _ = gw.tx_ack(dl.token, Some(error)).await;
        return;
    }
    let _ = gw.tx_ack(dl.token, None).await;
    // Data downlinks carry the DevAddr in clear (bytes 1..5, little-endian).
    let p = &dl.packet.phy_payload;
    let m_type = p.first().map(|b| b >> 5);
    if m_type == Some(0b001) {
        let target = dl.tmst().and_then(|t| {
            let mut j = lock(&sh.router.joins);
            // RX1 (tmst) or RX2 (tmst − 1 s) of the JoinRequest's entry.
            j.remove(&(gi, t))
                .or_else(|| j.remove(&(gi, t.wrapping_sub(1_000_000))))
        });
        if let Some((si, di)) = target {
            let _ = shards[si].send(ShardMsg::JoinAccept(di, dl));
        }
        return;
    }
    if p.len() >= 5 {
        let addr = DevAddr::from_le_bytes([p[1], p[2], p[3], p[4]]);
        let target = lock(&sh.router.by_addr).get(&addr).copied();
        if let Some((si, _)) = target {
            let _ = shards[si].send(ShardMsg::Downlink(dl));
        }
    }
}

/// Spreads events over ticks at a rate that may change by phase (rate per second,
/// length in seconds); returns how many are due now. A single phase at rate 0 means
/// as fast as possible.
struct Pacer {
    phases: Vec<(f64, f64)>,
    started: Instant,
    done: u64,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        Pacer {
            phases: vec![(rate, f64::INFINITY)],
            started: Instant::now(),
            done: 0,
        }
    }

    fn phased(phases: Vec<(f64, f64)>, started: Instant) -> Self {
        Pacer {
            phases,
            started,
            done: 0,
        }
    }

    /// Events that should have happened `t` seconds in.
    fn target(&self, t: f64) -> Option<u64> {
        let mut left = t;
        let mut n = 0.0;
        for (rate, len) in &self.phases {
            if left <= 0.0 {
                break;
            }
            if *rate <= 0.0 {
                return None;
            }
            n += rate * left.min(*len);
            left -= len;
        }
        Some(n as u64)
    }

    fn due(&mut self) -> u64 {
        let Some(should) = self.target(self.started.elapsed().as_secs_f64()) else {
            return u64::MAX;
        };
        let n = should.saturating_sub(self.done);
        self.done += n;
        n
    }
}

fn payload(kind: PayloadKind, seq: u64) -> Vec<u8> {
    match kind {
        PayloadKind::Raw(n) => (0..n)
            .map(|i| (seq as usize).wrapping_add(i) as u8)
            .collect(),
        PayloadKind::Cayenne => {
            let t = 200 + (seq % 100) as i16;
            let [a, b] = t.to_be_bytes();
            vec![0x01, 0x67, a, b, 0x02, 0x68, 0x60 + (seq % 20) as u8]
        }
    }
}

/// One generator task; returns the measured duration and how many deliveries had
/// happened before measuring began.
async fn shard(
    sh: Arc<Shared>,
    si: usize,
    shards: usize,
    mut devs: Vec<SimDevice>,
    mut rx: mpsc::UnboundedReceiver<ShardMsg>,
) -> Option<(Duration, u64)> {
    let n_gw = sh.gateways.len();
    let copies = (
        sh.cfg.copies.0.clamp(1, n_gw),
        sh.cfg.copies.1.clamp(1, n_gw),
    );
    let global = |di: usize| di * shards + si;
    for (di, d) in devs.iter().enumerate() {
        if let Some(s) = &d.session {
            lock(&sh.router.by_addr).insert(s.dev_addr, (si, di));
        }
    }

    // Join phase.
    let join_timeout = Duration::from_secs(12);
    let mut waiting: HashMap<usize, Instant> = HashMap::new();
    let join_rate = sh.cfg.join_rate_per_s / shards as f64;
    let mut pacer = Pacer::new(join_rate);
    let join_deadline = Instant::now()
        + Duration::from_secs(60)
        + Duration::from_secs_f64(devs.len() as f64 / join_rate.max(1.0));
    let mut next_join = 0;
    loop {
        let unjoined = devs.iter().filter(|d| d.session.is_none()).count();
        if unjoined == 0 || Instant::now() > join_deadline {
            break;
        }
        let mut due = pacer.due();
        let mut scanned = 0;
        while due > 0 && scanned < devs.len() {
            let di = next_join % devs.len();
            next_join += 1;
            scanned += 1;
            let stale = waiting.get(&di).is_some_and(|t| t.elapsed() > join_timeout);
            if devs[di].session.is_some() || (waiting.contains_key(&di) && !stale) {
                continue;
            }
            if stale {
                // A new nonce: 1.0.x refuses a repeated one.
                devs[di].dev_nonce = devs[di].dev_nonce.wrapping_add(1);
            }
            let g = global(di) % n_gw;
            let gw = &sh.gateways[g];
            let tmst = gw.tmst_now();
            let req = devs[di].join_request();
            let meta = rx_meta(CHANNELS_HZ[global(di) % 3], 7, 5.0, -80);
            lock(&sh.router.joins).insert((g, tmst.wrapping_add(5_000_000)), (si, di));
            if gw.push_at(&req, &meta, tmst).await.is_ok() {
                sh.counters.joins_sent.fetch_add(1, Ordering::Relaxed);
                sh.counters.copies_sent.fetch_add(1, Ordering::Relaxed);
            }
            waiting.insert(di, Instant::now());
            due -= 1;
        }
        tokio::select! {
            m = rx.recv() => {
                if let Some(m) = m {
                    handle(&sh, si, &mut devs, m, &mut waiting);
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
    if next_join == 0 {
        // Nothing to join (ABP): make sure the first uplinks can be answered.
        while let Ok(m) = rx.try_recv() {
            handle(&sh, si, &mut devs, m, &mut waiting);
        }
    }

    // Measured phase.
    let joined: Vec<usize> = (0..devs.len())
        .filter(|i| devs[*i].session.is_some())
        .collect();
    if joined.is_empty() {
        return None;
    }
    sh.measuring.store(true, Ordering::Relaxed);
    let delivered_before = sh.tracker.received().delivered;
    let started = Instant::now();
    let mut pacer = Pacer::phased(
        sh.cfg
            .phases()
            .iter()
            .map(|(r, d)| (r / shards as f64, d.as_secs_f64()))
            .collect(),
        started,
    );
    let mut seq: u64 = si as u64;
    let mut next = 0usize;
    let confirmed_every = if sh.cfg.confirmed_share > 0.0 {
        (1.0 / sh.cfg.confirmed_share).round().max(1.0) as u64
    } else {
        0
    };
    // Receptions waiting for their gateway's next PUSH_DATA. A forwarder polls its
    // concentrator every 10 ms and sends what it got in one datagram, so each gateway
    // sends at most one PUSH_DATA per 10 ms unless a batch fills (the shards take
    // turns: each sends for every gateway at most once per 10 ms × shards).
    let mut batches: Vec<Batch> = (0..n_gw).map(|_| Batch::default()).collect();
    let per_push = sh.cfg.rxpk_per_push.max(1);
    let poll_every = Duration::from_millis(10) * u32::try_from(shards).unwrap_or(1);
    let duration = sh.cfg.total_duration();
    while started.elapsed() < duration {
        let mut due = pacer.due().min(512);
        while due > 0 {
            let di = joined[next % joined.len()];
            next += 1;
            seq = seq.wrapping_add(shards as u64);
            // One confirmed uplink at a time per device, as a LoRaWAN device waits for
            // its ACK: the simulated devices send faster than real ones (every 0.5 s in
            // the suite), and a LoRaWAN 1.1 ACK's MIC covers the counter of the uplink
            // it acknowledges, so a second one outstanding would make the first ACK
            // unverifiable (a refused downlink that says nothing about the server).
            let confirmed = confirmed_every > 0
                && seq % confirmed_every == 0
                && devs[di]
                    .session
                    .as_ref()
                    .is_none_or(|s| s.last_confirmed_up.is_none());
            let body = payload(sh.cfg.payload, seq);
            let ch = global(di) % 3;
            // The data rate the network assigned (LinkADRReq), EU868 DR0..5 = SF12..7.
            let dr = devs[di].mac.data_rate.filter(|d| *d <= 5).unwrap_or(5);
            let sf = 12 - dr;
            let Ok(frame) = devs[di].uplink(sh.cfg.f_port, &body, confirmed, dr, ch as u8) else {
                continue;
            };
            let f_cnt = devs[di]
                .session
                .as_ref()
                .map_or(0, |s| s.f_cnt_up.wrapping_sub(1));
            let k = if copies.1 > copies.0 {
                copies.0 + (seq as usize % (copies.1 - copies.0 + 1))
            } else {
                copies.0
            };
            let dev_eui = devs[di].dev_eui;
            for c in 0..k {
                let g = (global(di) + c) % n_gw;
                let gw = &sh.gateways[g];
                let snr = 9.0 - 4.0 * c as f32 - (seq % 5) as f32;
                let meta = rx_meta(CHANNELS_HZ[ch], sf, snr, -70 - 6 * c as i32);
                batches[g].rxpks.push(gw.rxpk(&frame, &meta, gw.tmst_now()));
                if c == 0 {
                    // Latency runs from the copy of the uplink's main gateway.
                    batches[g].uplinks.push((dev_eui, f_cnt));
                }
                if batches[g].rxpks.len() >= per_push {
                    flush(&sh, gw, &mut batches[g]).await;
                }
            }
            sh.counters.uplinks_sent.fetch_add(1, Ordering::Relaxed);
            if confirmed {
                sh.counters.confirmed_sent.fetch_add(1, Ordering::Relaxed);
            }
            due -= 1;
            if due % 64 == 0 {
                while let Ok(m) = rx.try_recv() {
                    handle(&sh, si, &mut devs, m, &mut waiting);
                }
            }
        }
        for (g, batch) in batches.iter_mut().enumerate() {
            if per_push == 1 || batch.last.is_none_or(|t| t.elapsed() >= poll_every) {
                flush(&sh, &sh.gateways[g], batch).await;
            }
        }
        tokio::select! {
            m = rx.recv() => {
                if let Some(m) = m {
                    handle(&sh, si, &mut devs, m, &mut waiting);
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(1)) => {}
        }
    }
    for (g, batch) in batches.iter_mut().enumerate() {
        flush(&sh, &sh.gateways[g], batch).await;
    }
    let measured = started.elapsed();
    // Keep answering downlinks while the others finish.
    let until = Instant::now() + sh.cfg.drain;
    while Instant::now() < until && !sh.stop.load(Ordering::Relaxed) {
        tokio::select! {
            m = rx.recv() => match m {
                Some(m) => handle(&sh, si, &mut devs, m, &mut waiting),
                None => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    Some((measured, delivered_before))
}

/// One gateway's receptions waiting for its next PUSH_DATA.
#[derive(Default)]
struct Batch {
    rxpks: Vec<String>,
    /// The uplinks (DevEUI, FCnt) whose main copy is in this batch.
    uplinks: Vec<(Eui64, u32)>,
    /// When this gateway last sent.
    last: Option<Instant>,
}

/// Sends a gateway's waiting receptions in one PUSH_DATA. An uplink's latency is
/// measured from when its main copy was sent.
async fn flush(sh: &Shared, gw: &SimGateway, batch: &mut Batch) {
    if batch.rxpks.is_empty() {
        return;
    }
    let now = Instant::now();
    for (dev_eui, f_cnt) in &batch.uplinks {
        sh.tracker.sent(*dev_eui, *f_cnt, now);
    }
    if gw.push_rxpks(&batch.rxpks).await.is_ok() {
        sh.counters
            .copies_sent
            .fetch_add(batch.rxpks.len() as u64, Ordering::Relaxed);
    }
    batch.rxpks.clear();
    batch.uplinks.clear();
    batch.last = Some(now);
}

fn rx_meta(frequency_hz: u32, sf: u8, snr_db: f32, rssi_dbm: i32) -> RxMeta {
    RxMeta {
        frequency_hz,
        spreading_factor: sf,
        bandwidth_hz: 125_000,
        rssi_dbm,
        snr_db,
    }
}

fn handle(
    sh: &Shared,
    si: usize,
    devs: &mut [SimDevice],
    m: ShardMsg,
    waiting: &mut HashMap<usize, Instant>,
) {
    match m {
        ShardMsg::JoinAccept(di, dl) => {
            let Some(d) = devs.get_mut(di) else { return };
            if d.session.is_some() {
                return;
            }
            match d.handle_join_accept(&dl.packet.phy_payload) {
                Ok(()) => {
                    waiting.remove(&di);
                    sh.counters.joins_accepted.fetch_add(1, Ordering::Relaxed);
                    if let Some(s) = &d.session {
                        lock(&sh.router.by_addr).insert(s.dev_addr, (si, di));
                    }
                }
                Err(_) => {
                    sh.counters
                        .downlinks_refused
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        ShardMsg::Downlink(dl) => {
            let p = &dl.packet.phy_payload;
            let addr = DevAddr::from_le_bytes([p[1], p[2], p[3], p[4]]);
            // Several devices may share a DevAddr: the one whose MIC matches takes it.
            for d in devs.iter_mut().filter(|d| d.dev_addr() == Some(addr)) {
                let waiting_ack = d
                    .session
                    .as_ref()
                    .and_then(|s| s.last_confirmed_up)
                    .is_some();
                match d.handle_downlink(p) {
                    Ok(frame) => {
                        if frame.f_ctrl.ack && waiting_ack {
                            sh.counters.confirmed_acked.fetch_add(1, Ordering::Relaxed);
                            if let Some(s) = d.session.as_mut() {
                                s.last_confirmed_up = None;
                            }
                        }
                        return;
                    }
                    Err(_) => continue,
                }
            }
            sh.counters
                .downlinks_refused
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phased_pacing_follows_each_phase() {
        let p = Pacer::phased(vec![(1000.0, 2.0), (100.0, 3.0)], Instant::now());
        assert_eq!(p.target(1.0), Some(1000));
        assert_eq!(p.target(2.0), Some(2000));
        assert_eq!(p.target(3.0), Some(2100));
        assert_eq!(p.target(5.0), Some(2300));
        // Past the last phase nothing more is due.
        assert_eq!(p.target(9.0), Some(2300));
        assert_eq!(Pacer::new(0.0).target(1.0), None, "0 = as fast as possible");
    }
}
