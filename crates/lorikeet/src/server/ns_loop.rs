//! The network-server loop: the only owner of the core. It feeds it gateway frames,
//! TX_ACK results, provisioning updates and timer ticks, and carries out its outputs.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use lorikeet_gateway::{GatewayEvent, GatewayHandle};
use lorikeet_lorawan::Eui64;
use lorikeet_ns::{self as ns, DownlinkId, NetworkServer, Output, StoreChange, TxResult};
use lorikeet_storage::WriteOp;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::cache::NsUpdate;
use super::convert;
use super::writer::Producer;

/// Most gateway events taken per wake-up before outputs are carried out.
const EVENT_BATCH: usize = 256;
/// A gateway's last-seen time is written at most this often.
const GATEWAY_SEEN_INTERVAL: Duration = Duration::from_secs(30);
/// Per-gateway downlink metrics are exported this often (they are read off the core's
/// counters, so the hot path does no per-frame label lookups).
const GATEWAY_STATS_INTERVAL: Duration = Duration::from_secs(1);
/// Per-gateway traffic goes to the database (`gateway_minutes`) this often: a few
/// rows per flush, so the console's charts are at most this far behind.
const GATEWAY_TRAFFIC_FLUSH: Duration = Duration::from_secs(5);

/// The loop's inputs and outputs.
#[derive(Debug)]
pub struct NsLoop {
    pub(crate) ns: NetworkServer,
    pub(crate) gateway: GatewayHandle,
    pub(crate) gw_events: mpsc::Receiver<GatewayEvent>,
    pub(crate) updates: mpsc::Receiver<NsUpdate>,
    /// Session, counter and join writes; frames wait until theirs are committed.
    pub(crate) writer: Producer,
    pub(crate) app: mpsc::Sender<ns::Event>,
    pub(crate) gateway_locations: HashMap<Eui64, GatewayLocation>,
    /// The change-feed position this loop has applied (read your writes).
    pub(crate) applied: watch::Sender<lorikeet_storage::FeedPosition>,
}

/// A gateway's location as events show it, and whether its forwarder's GPS reports
/// replace it (`locationSource: reported`).
#[derive(Debug, Clone, Copy, Default)]
pub struct GatewayLocation {
    /// The location, when known.
    pub location: Option<ns::Location>,
    /// Reports from the forwarder's `stat` replace it.
    pub reported: bool,
}

impl GatewayLocation {
    /// The live view of a stored gateway.
    pub fn of(g: &lorikeet_storage::Gateway) -> Self {
        GatewayLocation {
            location: g.location.map(|l| ns::Location {
                latitude: l.latitude,
                longitude: l.longitude,
                altitude_m: l.altitude,
            }),
            reported: g.location_source == lorikeet_storage::LocationSource::Reported,
        }
    }
}

struct Running {
    inner: NsLoop,
    rng: StdRng,
    tx_results: mpsc::UnboundedSender<(DownlinkId, TxResult)>,
    next_uplink_id: u32,
    gateway_seen: HashMap<Eui64, Instant>,
    /// Uplink frames per gateway since the last traffic flush.
    gateway_uplinks: HashMap<Eui64, u64>,
    /// Each gateway's downlink counters (sent, refused by the gateway) at the last
    /// traffic flush: the next flush stores the difference.
    gateway_flushed: HashMap<Eui64, (u64, u64)>,
    traffic_flushed_at: Instant,
    drop_warned: HashMap<&'static str, Instant>,
    /// Frames waiting for the write (by number) that they depend on to commit.
    held: VecDeque<(u64, ns::DownlinkRequest)>,
    /// The number of the last write whose commit the next frame must wait for.
    depends_on: u64,
    /// The core's count of windows skipped because the gateway was busy, as exported.
    window_busy: u64,
    /// The same for duty-cycle refusals.
    window_duty: u64,
    /// The core's counts of suppressed log events, as exported, by code.
    logs_suppressed: HashMap<&'static str, u64>,
}

impl NsLoop {
    /// Runs until shutdown; then closes the open dedup windows, carries out what they
    /// produce and returns (dropping its senders lets the writer flush).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let (tx_results, mut tx_rx) = mpsc::unbounded_channel();
        let mut committed = self.writer.watch_committed();
        let mut r = Running {
            inner: self,
            rng: StdRng::from_entropy(),
            tx_results,
            next_uplink_id: 1,
            gateway_seen: HashMap::new(),
            gateway_uplinks: HashMap::new(),
            gateway_flushed: HashMap::new(),
            traffic_flushed_at: Instant::now(),
            drop_warned: HashMap::new(),
            held: VecDeque::new(),
            depends_on: 0,
            window_busy: 0,
            window_duty: 0,
            logs_suppressed: HashMap::new(),
        };
        let mut stats_tick = tokio::time::interval(GATEWAY_STATS_INTERVAL);
        stats_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = r.inner.ns.poll_timeout();
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                _ = stats_tick.tick() => {
                    r.export_gateway_stats();
                    r.flush_gateway_traffic();
                }
                Ok(()) = committed.changed(), if !r.held.is_empty() => {
                    let upto = *committed.borrow_and_update();
                    r.release(upto);
                }
                Some((id, result)) = tx_rx.recv() => {
                    r.count_tx(&result);
                    r.inner.ns.handle_tx_result(id, result, Instant::now());
                }
                Some(u) = r.inner.updates.recv() => r.apply(u),
                ev = r.inner.gw_events.recv() => {
                    let Some(ev) = ev else { break };
                    r.on_gateway(ev);
                    // Take what else is waiting before acting, to amortise the wake-up.
                    for _ in 1..EVENT_BATCH {
                        match r.inner.gw_events.try_recv() {
                            Ok(ev) => r.on_gateway(ev),
                            Err(_) => break,
                        }
                    }
                }
                _ = sleep_until(deadline) => {
                    r.inner.ns.handle_timeout(Instant::now(), &mut r.rng);
                }
            }
            r.dispatch().await;
        }
        let open = r.inner.ns.counters().frames_received;
        r.inner.ns.drain(Instant::now(), &mut r.rng);
        r.dispatch().await;
        if !r.held.is_empty() {
            // Their windows are seconds away at most; a frame is worth sending only
            // if its writes commit soon. Shutdown bounds this wait.
            let last = r.depends_on;
            let _ = committed.wait_for(|c| *c >= last).await;
            r.release(last);
        }
        r.export_gateway_stats();
        info!(frames_received = open, "network server stopped");
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

impl Running {
    fn on_gateway(&mut self, ev: GatewayEvent) {
        match ev {
            GatewayEvent::Uplink(frame) => {
                let gateway_id = frame.gateway_id;
                let received_at = frame.received_at;
                let location = self
                    .inner
                    .gateway_locations
                    .get(&gateway_id)
                    .and_then(|g| g.location);
                let id = self.next_uplink_id;
                self.next_uplink_id = self.next_uplink_id.wrapping_add(1);
                let rx = convert::rx_frame(frame, id, location);
                metrics::counter!("lorikeet_uplink_frames_total").increment(1);
                *self.gateway_uplinks.entry(gateway_id).or_insert(0) += 1;
                self.inner.ns.handle_rx(rx, Instant::now());
                self.gateway_seen(gateway_id, received_at, None);
            }
            GatewayEvent::Stats(s) => {
                let stats = serde_json::json!({
                    "rxReceived": s.rx_received,
                    "rxOk": s.rx_ok,
                    "rxForwarded": s.rx_forwarded,
                    "ackRatioPct": s.ack_ratio_pct,
                    "downlinksReceived": s.downlinks_received,
                    "txEmitted": s.tx_emitted,
                    "temperatureC": s.temperature_c,
                    "time": s.time,
                });
                let location = s.location.map(|l| lorikeet_storage::Location {
                    latitude: l.latitude_deg,
                    longitude: l.longitude_deg,
                    altitude: l.altitude_m.unwrap_or(0.0),
                });
                if let (Some(l), Some(g)) = (
                    location,
                    self.inner.gateway_locations.get_mut(&s.gateway_id),
                ) {
                    if g.reported {
                        g.location = Some(ns::Location {
                            latitude: l.latitude,
                            longitude: l.longitude,
                            altitude_m: l.altitude,
                        });
                    }
                }
                self.gateway_seen_force(s.gateway_id, s.received_at, Some(stats), location);
            }
            GatewayEvent::Connected { gateway_id, addr } => {
                info!(%gateway_id, %addr, "gateway connected");
            }
            GatewayEvent::AddressChanged {
                gateway_id,
                from,
                to,
            } => {
                info!(%gateway_id, %from, %to, "gateway downlink address changed");
            }
        }
    }

    fn gateway_seen(
        &mut self,
        gateway_id: Eui64,
        at: SystemTime,
        stats: Option<serde_json::Value>,
    ) {
        let now = Instant::now();
        let due = self
            .gateway_seen
            .get(&gateway_id)
            .is_none_or(|t| now.duration_since(*t) >= GATEWAY_SEEN_INTERVAL);
        if due {
            self.gateway_seen_force(gateway_id, at, stats, None);
        }
    }

    fn gateway_seen_force(
        &mut self,
        gateway_id: Eui64,
        at: SystemTime,
        stats: Option<serde_json::Value>,
        location: Option<lorikeet_storage::Location>,
    ) {
        self.gateway_seen.insert(gateway_id, Instant::now());
        // Best effort: a full writer queue must not stall the radio path for this.
        // Nothing waits for it, so it does not move `depends_on`.
        let _ = self.inner.writer.try_send(WriteOp::GatewaySeen {
            gateway_id,
            at: convert::utc(at),
            stats,
            location,
        });
    }

    fn apply(&mut self, u: NsUpdate) {
        let ns = &mut self.inner.ns;
        match u {
            NsUpdate::Device {
                device,
                parts,
                refused,
            } => {
                let d = *device;
                let dev_eui = d.dev_eui;
                let known = ns.update_device_settings(
                    &dev_eui,
                    d.join_eui,
                    d.profile.clone(),
                    d.skip_f_cnt_check,
                    d.disabled,
                );
                if known {
                    // The core's session, counters and join state are newer than the
                    // database's: only what was provisioned is taken.
                    if parts.keys {
                        ns.set_root_keys(&dev_eui, d.root_keys);
                    }
                    if parts.session {
                        ns.set_session(&dev_eui, d.session);
                    }
                    if parts.queue {
                        ns.set_queue(&dev_eui, d.queue.into_iter().collect());
                    }
                } else {
                    ns.upsert_device(d);
                }
                // Refused once, when the queue is taken (not on every settings change).
                if !known || parts.queue {
                    for (id, why) in refused {
                        ns.refuse_queue_item(&dev_eui, id, why);
                    }
                }
            }
            NsUpdate::Remove(dev_eui) => ns.remove_device(&dev_eui),
            NsUpdate::Gateway(id, Some(g)) => {
                self.inner.gateway_locations.insert(id, g);
            }
            NsUpdate::Gateway(id, None) => {
                self.inner.gateway_locations.remove(&id);
            }
            NsUpdate::Profile(p) => ns.update_profile(p),
            NsUpdate::Applied(at) => {
                self.inner.applied.send_replace(at);
            }
        }
    }

    fn count_tx(&self, result: &TxResult) {
        let label = match result {
            TxResult::Sent => "sent",
            TxResult::NoAnswer => "no_answer",
            TxResult::Rejected(_) => "rejected",
        };
        metrics::counter!("lorikeet_downlinks_total", "result" => label).increment(1);
        if let TxResult::Rejected(reason) = result {
            // The forwarder's TX_ACK error codes; anything else is one label, so a
            // misbehaving gateway cannot grow the series without bound.
            let reason = ns::TxAckError::parse(reason).label();
            metrics::counter!("lorikeet_downlinks_refused_total", "reason" => reason).increment(1);
        }
    }

    /// Gateways that only send PULL_DATA keepalives (no uplink, no `stat`) are alive
    /// too: their last datagram, as the listener saw it, goes to the stored
    /// last-seen time (throttled per gateway like every `GatewaySeen`), which the
    /// API's online state and the gateway_offline alerts read.
    fn note_keepalives(&mut self) {
        for g in self.inner.gateway.gateways() {
            let Some(seen) = g.last_seen_at else { continue };
            if g.known {
                self.gateway_seen(g.gateway_id, seen, None);
            }
        }
    }

    /// Sends each gateway's traffic since the last flush to the writer (best
    /// effort, like `GatewaySeen`: when the queue is full the tallies are kept for
    /// the next flush, so nothing is lost, only later).
    fn flush_gateway_traffic(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.traffic_flushed_at) < GATEWAY_TRAFFIC_FLUSH {
            return;
        }
        self.traffic_flushed_at = now;
        self.note_keepalives();
        let mut rows = Vec::new();
        let mut counters = Vec::new();
        for (gateway, stats) in self.inner.ns.gateway_downlink_stats() {
            let refused: u64 = stats.refused_by_gateway.iter().sum();
            let (sent_before, refused_before) = self
                .gateway_flushed
                .get(&gateway)
                .copied()
                .unwrap_or((0, 0));
            counters.push((gateway, (stats.sent, refused)));
            let downlinks = stats.sent.saturating_sub(sent_before);
            let tx_ack_errors = refused.saturating_sub(refused_before);
            let uplinks = self.gateway_uplinks.get(&gateway).copied().unwrap_or(0);
            if downlinks + tx_ack_errors + uplinks > 0 {
                rows.push(lorikeet_storage::GatewayTraffic {
                    gateway_id: gateway,
                    uplinks,
                    downlinks,
                    tx_ack_errors,
                });
            }
        }
        // Gateways that only forwarded uplinks have no downlink counters.
        for (gateway, uplinks) in &self.gateway_uplinks {
            if *uplinks > 0 && !rows.iter().any(|r| r.gateway_id == *gateway) {
                rows.push(lorikeet_storage::GatewayTraffic {
                    gateway_id: *gateway,
                    uplinks: *uplinks,
                    downlinks: 0,
                    tx_ack_errors: 0,
                });
            }
        }
        if rows.is_empty() {
            return;
        }
        let op = WriteOp::GatewayTraffic {
            minute: convert::utc(SystemTime::now()),
            rows,
        };
        if self.inner.writer.try_send(op) {
            self.gateway_uplinks.clear();
            self.gateway_flushed.extend(counters);
        } else {
            metrics::counter!("lorikeet_gateway_traffic_flush_deferred_total").increment(1);
        }
    }

    /// Exports each gateway's downlink counters and duty-cycle use (issue 19).
    fn export_gateway_stats(&self) {
        let core = &self.inner.ns;
        for (gateway, stats) in core.gateway_downlink_stats() {
            let gw = gateway.to_string();
            metrics::counter!("lorikeet_gateway_downlinks_planned_total", "gateway" => gw.clone())
                .absolute(stats.planned);
            metrics::counter!("lorikeet_gateway_downlinks_sent_total", "gateway" => gw.clone())
                .absolute(stats.sent);
            for (by, reason, n) in stats.refused() {
                if n > 0 {
                    metrics::counter!(
                        "lorikeet_gateway_downlinks_refused_total",
                        "gateway" => gw.clone(),
                        "by" => by,
                        "reason" => reason
                    )
                    .absolute(n);
                }
            }
        }
        for (gateway, band) in core.gateway_duty_use(Instant::now()) {
            let share = if band.limit > 0.0 {
                band.used / band.limit
            } else {
                0.0
            };
            metrics::gauge!(
                "lorikeet_gateway_duty_cycle_utilisation",
                "gateway" => gateway.to_string(),
                "sub_band" => format!("{}-{}", band.min_frequency_hz, band.max_frequency_hz)
            )
            .set(share);
        }
    }

    async fn dispatch(&mut self) {
        let busy = self.inner.ns.counters().downlinks_refused_collision;
        if busy > self.window_busy {
            metrics::counter!("lorikeet_downlink_windows_busy_total")
                .increment(busy - self.window_busy);
            self.window_busy = busy;
        }
        let duty = self.inner.ns.counters().downlinks_refused_duty_cycle;
        if duty > self.window_duty {
            metrics::counter!("lorikeet_downlink_windows_duty_cycle_total")
                .increment(duty - self.window_duty);
            self.window_duty = duty;
        }
        for (code, n) in &self.inner.ns.counters().log_events_suppressed {
            let exported = self.logs_suppressed.entry(code).or_insert(0);
            if *n > *exported {
                metrics::counter!("lorikeet_log_events_suppressed_total", "code" => *code)
                    .increment(n - *exported);
                *exported = *n;
            }
        }
        while let Some(o) = self.inner.ns.poll_output() {
            match o {
                Output::Transmit(req) => {
                    // Commit before send: the core asks to store what a frame spends
                    // (session, counters, JoinNonce) before it hands the frame out.
                    if self.held.is_empty() && self.inner.writer.is_committed(self.depends_on) {
                        self.transmit(req);
                    } else {
                        metrics::counter!("lorikeet_downlinks_held_total").increment(1);
                        self.held.push_back((self.depends_on, req));
                    }
                }
                Output::Store(c) => {
                    if let Some(op) = self.store_op(c) {
                        // Backpressure: if the database falls behind, intake slows down
                        // and the gateway edge sheds (and counts) the excess.
                        if let Some(seq) = self.inner.writer.send(op).await {
                            self.depends_on = seq;
                        }
                    }
                }
                Output::Event(e) => {
                    if let ns::Event::Join { .. } = e {
                        metrics::counter!("lorikeet_joins_total").increment(1);
                    }
                    if let ns::Event::Up(_) = e {
                        metrics::counter!("lorikeet_uplinks_total").increment(1);
                    }
                    let _ = self.inner.app.send(e).await;
                }
                Output::Dropped { reason, dev_eui } => self.dropped(reason, dev_eui),
            }
        }
    }

    /// Hands out the held frames whose writes are committed (in order: a frame never
    /// overtakes an earlier one).
    fn release(&mut self, committed: u64) {
        while let Some((seq, _)) = self.held.front() {
            if *seq > committed {
                break;
            }
            if let Some((_, req)) = self.held.pop_front() {
                self.transmit(req);
            }
        }
    }

    fn transmit(&mut self, req: ns::DownlinkRequest) {
        let id = req.id;
        let Some(frame) = convert::downlink_frame(&req) else {
            self.inner.ns.handle_tx_result(
                id,
                TxResult::Rejected("modulation cannot be transmitted".into()),
                Instant::now(),
            );
            return;
        };
        debug!(dev_eui = %req.dev_eui, gateway_id = %req.gateway_id, window = ?req.window, "downlink");
        let gateway = self.inner.gateway.clone();
        let results = self.tx_results.clone();
        tokio::spawn(async move {
            let r = gateway.send_downlink(frame).await;
            let _ = results.send((id, convert::tx_result(r)));
        });
    }

    fn store_op(&self, c: StoreChange) -> Option<WriteOp> {
        Some(match c {
            StoreChange::Session { dev_eui, session } => match session {
                Some(s) => {
                    let v = self.inner.ns.device(&dev_eui)?.profile.mac_version;
                    WriteOp::UpsertSession(convert::session_row(dev_eui, v, &s))
                }
                None => WriteOp::DeleteSession(dev_eui),
            },
            StoreChange::Join { dev_eui, join } => WriteOp::RecordJoin {
                dev_eui,
                dev_nonce: join.last_dev_nonce?,
                join_nonce: join.last_join_nonce?,
                at: lorikeet_storage::now(),
            },
            StoreChange::QueueItemDone { queue_item_id, .. } => WriteOp::QueueDelete(queue_item_id),
        })
    }

    fn dropped(&mut self, reason: ns::DropReason, dev_eui: Option<Eui64>) {
        let label = reason.as_str();
        metrics::counter!("lorikeet_uplinks_dropped_total", "reason" => label).increment(1);
        // One warning per reason per minute; the counter has the totals.
        let now = Instant::now();
        let warn_due = self
            .drop_warned
            .get(label)
            .is_none_or(|t| now.duration_since(*t) >= Duration::from_secs(60));
        if warn_due {
            self.drop_warned.insert(label, now);
            warn!(reason = label, dev_eui = ?dev_eui, "uplink dropped (further drops for this reason are counted, logged at debug)");
        } else {
            debug!(reason = label, dev_eui = ?dev_eui, "uplink dropped");
        }
    }
}
