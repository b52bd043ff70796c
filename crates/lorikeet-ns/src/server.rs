//! The network-server state machine.
//!
//! Like `quinn-proto`'s endpoint: the shell feeds it received frames, TX_ACK results,
//! provisioning changes and the current time, then drains [`Output`]s (frames to send,
//! changes to persist, events for the application side) and sleeps until
//! [`NetworkServer::poll_timeout`]. It owns the in-memory view of every device so the
//! uplink path needs no database read.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lorikeet_lorawan::{DevAddr, Eui64, NetId};
use rand_core::RngCore;
use uuid::Uuid;

use crate::dedup::{Deduplicator, Inserted, RxFrame, Uplink};
use crate::device::{Device, QueueItem};
use crate::output::{DownlinkId, DownlinkRequest, DropReason, Output, StoreChange, TxResult};

/// Which Class A windows the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RxWindowPolicy {
    /// RX1, and RX2 when RX1 is too late or refused by the gateway.
    #[default]
    Rx1ThenRx2,
    /// RX1 only.
    Rx1Only,
    /// RX2 only.
    Rx2Only,
}

/// Settings of the core.
#[derive(Debug, Clone)]
pub struct NsConfig {
    /// Our NetID: DevAddrs are allocated in its block.
    pub net_id: NetId,
    /// How long copies of an uplink are collected.
    pub dedup_window: Duration,
    /// Most uplinks collected at once; beyond it copies are shed.
    pub max_open_uplinks: usize,
    /// Which Class A windows to use.
    pub rx_window: RxWindowPolicy,
    /// Time a frame needs to reach a gateway before its window opens (backhaul plus the
    /// forwarder's own lead); a window closer than this is skipped.
    pub downlink_lead: Duration,
    /// Largest accepted jump of the uplink frame counter.
    pub max_f_cnt_gap: u32,
    /// MAC engine and ADR settings.
    pub mac: crate::mac::MacConfig,
    /// Keep each gateway within its region's duty-cycle limits per sub-band (a
    /// sliding hour), e.g. EU868 1 % and 10 %.
    pub duty_cycle: bool,
    /// An operator's stricter limit (a fraction, e.g. 0.005), applied to every
    /// sub-band that has one.
    pub duty_cycle_cap: Option<f64>,
    /// `log` events about refused uplinks (bad MIC, replayed counter, refused
    /// JoinRequest) allowed per DevAddr (or DevEUI for joins) per minute, as a
    /// burst refilled evenly; the rest are counted only. Anyone with a radio can
    /// cause them. 0: none.
    pub refused_uplink_logs_per_minute: u32,
}

impl Default for NsConfig {
    fn default() -> Self {
        NsConfig {
            net_id: NetId([0, 0, 0]),
            dedup_window: Duration::from_millis(200),
            max_open_uplinks: 200_000,
            rx_window: RxWindowPolicy::default(),
            downlink_lead: Duration::from_millis(100),
            max_f_cnt_gap: lorikeet_lorawan::fcnt::MAX_FCNT_GAP,
            mac: crate::mac::MacConfig::default(),
            duty_cycle: true,
            duty_cycle_cap: None,
            refused_uplink_logs_per_minute: 5,
        }
    }
}

/// What a downlink in flight carries, so its TX_ACK can be applied.
#[derive(Debug, Clone)]
pub(crate) enum Purpose {
    /// A JoinAccept (the session was stored when it was planned).
    JoinAccept,
    /// A data downlink.
    Data {
        /// The counter it used.
        f_cnt_down: u32,
        /// Whether it used AFCntDown (1.1, FPort > 0) rather than NFCntDown.
        uses_a_f_cnt: bool,
        /// Whether it carried the ACK bit.
        ack: bool,
        /// The queue item it carries, and whether that is confirmed.
        item: Option<(Uuid, bool)>,
        /// The MAC commands that went with it.
        mac: crate::mac::MacSelection,
    },
}

/// A downlink handed to the shell, awaiting its TX_ACK.
#[derive(Debug, Clone)]
pub(crate) struct InFlight {
    pub(crate) request: DownlinkRequest,
    pub(crate) purpose: Purpose,
    /// The RX2 attempt to make if this (RX1) one is refused, and the last moment it may
    /// still be handed to the gateway.
    pub(crate) fallback: Option<(DownlinkRequest, Instant)>,
}

/// A device and the runtime state that is not persisted.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) device: Device,
    /// The downlink attempt in flight for this device, if any (one at a time).
    pub(crate) in_flight: Option<DownlinkId>,
    /// Class C: when to give up waiting for the ACK of a confirmed downlink.
    pub(crate) class_c_ack_deadline: Option<Instant>,
    /// Queue items that left the queue recently. A queue reloaded from storage before
    /// the removal was written must not bring them back.
    pub(crate) done_items: VecDeque<Uuid>,
}

/// How many finished queue-item ids each device remembers (see `Entry::done_items`).
const DONE_ITEMS_MEMORY: usize = 16;

impl Entry {
    pub(crate) fn item_done(&mut self, id: Uuid) {
        self.device.queue.retain(|q| q.id != id);
        if self.done_items.len() >= DONE_ITEMS_MEMORY {
            self.done_items.pop_front();
        }
        self.done_items.push_back(id);
    }
}

/// Counters of what the core did, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Copies received.
    pub frames_received: u64,
    /// Copies merged into an uplink already collected.
    pub duplicates: u64,
    /// Uplinks accepted (data).
    pub uplinks_accepted: u64,
    /// Joins accepted.
    pub joins_accepted: u64,
    /// Downlinks handed to gateways (attempts).
    pub downlinks_planned: u64,
    /// Receive windows not used because the gateway's radio was already planned to
    /// transmit then (another device's downlink).
    pub downlinks_refused_collision: u64,
    /// Receive windows (or Class C moments) not used because the gateway's
    /// duty-cycle budget for that sub-band was spent.
    pub downlinks_refused_duty_cycle: u64,
    /// `log` events about refused uplinks not emitted because their DevAddr (or
    /// DevEUI) was over `refused_uplink_logs_per_minute`, by log code.
    pub log_events_suppressed: BTreeMap<&'static str, u64>,
}

/// The network-server core.
#[derive(Debug)]
pub struct NetworkServer {
    pub(crate) config: NsConfig,
    /// Boxed: a device is over 500 bytes, and a hash table keeps up to twice as
    /// many slots as entries; boxed, an empty slot costs 16 bytes, not a device.
    pub(crate) devices: HashMap<Eui64, Box<Entry>>,
    pub(crate) by_dev_addr: HashMap<DevAddr, Vec<Eui64>>,
    dedup: Deduplicator,
    pub(crate) in_flight: HashMap<DownlinkId, InFlight>,
    /// Class C devices that may have something to send.
    class_c_due: VecDeque<Eui64>,
    /// Class C acknowledgement deadlines, earliest first.
    pub(crate) class_c_deadlines: BTreeSet<(Instant, Eui64)>,
    outputs: VecDeque<Output>,
    next_downlink_id: u32,
    pub(crate) counters: Counters,
    /// The latest `now` any call brought.
    last_now: Option<Instant>,
    /// ADR algorithms by name.
    pub(crate) adr_algorithms: crate::mac::AdrRegistry,
    /// Each gateway's planned transmissions.
    pub(crate) radios: HashMap<Eui64, crate::radio::Radio>,
    /// Class C devices waiting for their gateway's duty-cycle budget, by when.
    pub(crate) class_c_later: BTreeSet<(Instant, Eui64)>,
    /// Throttle of the log events that refused uplinks produce.
    log_limiter: crate::log_limit::LogLimiter,
}

impl NetworkServer {
    /// A core with no devices.
    pub fn new(config: NsConfig) -> Self {
        let dedup = Deduplicator::new(config.dedup_window, config.max_open_uplinks);
        let log_limiter = crate::log_limit::LogLimiter::new(config.refused_uplink_logs_per_minute);
        NetworkServer {
            config,
            devices: HashMap::new(),
            by_dev_addr: HashMap::new(),
            dedup,
            in_flight: HashMap::new(),
            class_c_due: VecDeque::new(),
            class_c_deadlines: BTreeSet::new(),
            outputs: VecDeque::new(),
            next_downlink_id: 1,
            counters: Counters::default(),
            last_now: None,
            adr_algorithms: crate::mac::AdrRegistry::default(),
            radios: HashMap::new(),
            class_c_later: BTreeSet::new(),
            log_limiter,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NsConfig {
        &self.config
    }

    /// What the core has counted so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Number of devices known.
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// Every device's EUI.
    pub fn device_euis(&self) -> impl Iterator<Item = Eui64> + '_ {
        self.devices.keys().copied()
    }

    /// A device as the core currently sees it.
    pub fn device(&self, dev_eui: &Eui64) -> Option<&Device> {
        self.devices.get(dev_eui).map(|e| &e.device)
    }

    /// Makes room for `additional` more devices at once (e.g. before loading them
    /// all at start-up), instead of growing the tables step by step.
    pub fn reserve_devices(&mut self, additional: usize) {
        self.devices.reserve(additional);
        self.by_dev_addr.reserve(additional);
    }

    /// Adds or replaces a device (provisioning, start-up load). Runtime state of an
    /// existing entry (a downlink in flight) is kept.
    pub fn upsert_device(&mut self, mut device: Device) {
        let dev_eui = device.dev_eui;
        if let Some(s) = device.session.as_mut() {
            s.fill_unset_rx_windows(&device.profile);
        }
        let new_addr = device.session.as_ref().map(|s| s.dev_addr);
        let old_addr = self
            .devices
            .get(&dev_eui)
            .and_then(|e| e.device.session.as_ref().map(|s| s.dev_addr));
        if old_addr != new_addr {
            if let Some(a) = old_addr {
                self.unindex(a, dev_eui);
            }
            if let Some(a) = new_addr {
                self.by_dev_addr.entry(a).or_default().push(dev_eui);
            }
        }
        let class_c = device.profile.supports_class_c && !device.queue.is_empty();
        match self.devices.get_mut(&dev_eui) {
            Some(e) => e.device = device,
            None => {
                self.devices.insert(
                    dev_eui,
                    Box::new(Entry {
                        device,
                        in_flight: None,
                        class_c_ack_deadline: None,
                        done_items: VecDeque::new(),
                    }),
                );
            }
        }
        if class_c {
            self.class_c_due.push_back(dev_eui);
        }
    }

    /// Forgets a device.
    pub fn remove_device(&mut self, dev_eui: &Eui64) {
        if let Some(e) = self.devices.remove(dev_eui) {
            if let Some(s) = &e.device.session {
                self.unindex(s.dev_addr, *dev_eui);
            }
            if let Some(id) = e.in_flight {
                self.in_flight.remove(&id);
            }
        }
    }

    /// Replaces the device's downlink queue (after the API changed it) and wakes
    /// Class C delivery.
    pub fn set_queue(&mut self, dev_eui: &Eui64, items: Vec<QueueItem>) {
        if let Some(e) = self.devices.get_mut(dev_eui) {
            let done = &e.done_items;
            e.device.queue = items
                .into_iter()
                .filter(|q| !done.contains(&q.id))
                .collect();
            if e.device.profile.supports_class_c {
                self.class_c_due.push_back(*dev_eui);
            }
        }
    }

    /// Removes a queue item that can never be sent (e.g. its object did not encode),
    /// with a log event saying why.
    pub fn refuse_queue_item(&mut self, dev_eui: &Eui64, queue_item_id: Uuid, description: String) {
        let Some(e) = self.devices.get_mut(dev_eui) else {
            return;
        };
        e.item_done(queue_item_id);
        self.push(Output::Store(StoreChange::QueueItemDone {
            dev_eui: *dev_eui,
            queue_item_id,
        }));
        crate::uplink::log(
            self,
            *dev_eui,
            crate::output::LogLevel::Error,
            crate::output::LogCode::DownlinkCodec,
            description,
            &[("queue_item_id", queue_item_id.to_string())],
        );
    }

    /// Updates what provisioning controls (profile, flags, JoinEUI) and keeps the
    /// session, join state and queue the core holds. Returns false for an unknown device.
    pub fn update_device_settings(
        &mut self,
        dev_eui: &Eui64,
        join_eui: Eui64,
        profile: Arc<crate::device::DeviceProfile>,
        skip_f_cnt_check: bool,
        disabled: bool,
    ) -> bool {
        let Some(e) = self.devices.get_mut(dev_eui) else {
            return false;
        };
        e.device.join_eui = join_eui;
        e.device.profile = profile;
        e.device.skip_f_cnt_check = skip_f_cnt_check;
        e.device.disabled = disabled;
        true
    }

    /// Replaces the root keys (the join state is kept).
    pub fn set_root_keys(&mut self, dev_eui: &Eui64, keys: Option<crate::device::RootKeys>) {
        if let Some(e) = self.devices.get_mut(dev_eui) {
            e.device.root_keys = keys;
        }
    }

    /// Replaces the session (ABP activation from outside, or its removal) and asks
    /// for it to be stored again, so a write still queued from before cannot win.
    pub fn set_session(&mut self, dev_eui: &Eui64, mut session: Option<crate::device::Session>) {
        let Some(e) = self.devices.get_mut(dev_eui) else {
            return;
        };
        if let Some(s) = session.as_mut() {
            s.fill_unset_rx_windows(&e.device.profile);
        }
        let old = e.device.session.as_ref().map(|s| s.dev_addr);
        let new = session.as_ref().map(|s| s.dev_addr);
        e.device.session = session;
        e.class_c_ack_deadline = None;
        self.reindex(*dev_eui, old, new);
        self.store_session(*dev_eui);
    }

    /// Replaces the device's profile everywhere it is used.
    pub fn update_profile(&mut self, profile: Arc<crate::device::DeviceProfile>) {
        for e in self.devices.values_mut() {
            if e.device.profile.id == profile.id {
                e.device.profile = profile.clone();
            }
        }
    }

    fn unindex(&mut self, addr: DevAddr, dev_eui: Eui64) {
        if let Some(list) = self.by_dev_addr.get_mut(&addr) {
            list.retain(|d| *d != dev_eui);
            if list.is_empty() {
                self.by_dev_addr.remove(&addr);
            }
        }
    }

    /// A copy of an uplink arrived from a gateway at `now`.
    pub fn handle_rx(&mut self, frame: RxFrame, now: Instant) -> Inserted {
        self.saw(now);
        self.counters.frames_received += 1;
        // Every reception reads the gateway's clock, so a Class C frame can be timed
        // into a free slot on a gateway that has not answered anything yet.
        let (gateway_id, tmst) = (frame.rx_info.gateway_id, frame.rx_info.tmst);
        self.radio(gateway_id, None, now).observe(tmst, now);
        let r = self.dedup.insert(frame, now);
        match r {
            Inserted::Merged | Inserted::SameGateway | Inserted::TooManyGateways => {
                self.counters.duplicates += 1
            }
            Inserted::Overloaded => self.push(Output::Dropped {
                reason: DropReason::Overloaded,
                dev_eui: None,
            }),
            Inserted::Opened { .. } => {}
        }
        r
    }

    /// The gateway answered (or did not) for downlink `id`.
    pub fn handle_tx_result(&mut self, id: DownlinkId, result: TxResult, now: Instant) {
        self.saw(now);
        crate::downlink::on_tx_result(self, id, result, now);
    }

    /// Runs everything due at `now`: closes dedup windows and processes their uplinks,
    /// expires Class C acknowledgement waits, sends Class C downlinks.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut dyn RngCore) {
        self.saw(now);
        while let Some(uplink) = self.dedup.poll(now) {
            self.process_uplink(uplink, now, rng);
        }
        crate::downlink::class_c_timeouts(self, now);
        while let Some(&(at, dev_eui)) = self.class_c_later.first() {
            if at > now {
                break;
            }
            self.class_c_later.pop_first();
            self.class_c_due.push_back(dev_eui);
        }
        while let Some(dev_eui) = self.class_c_due.pop_front() {
            crate::downlink::class_c_send(self, dev_eui, now, rng);
        }
    }

    /// Shutdown: processes every uplink still being collected, now.
    pub fn drain(&mut self, now: Instant, rng: &mut dyn RngCore) {
        for uplink in self.dedup.drain() {
            self.process_uplink(uplink, now, rng);
        }
    }

    /// When [`NetworkServer::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let class_c = self.class_c_deadlines.first().map(|(d, _)| *d);
        let later = self.class_c_later.first().map(|(d, _)| *d);
        // Work is waiting: the last time we were told is already due.
        let due_now = (!self.class_c_due.is_empty())
            .then_some(self.last_now)
            .flatten();
        [self.dedup.next_deadline(), class_c, later, due_now]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next thing for the shell to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn saw(&mut self, now: Instant) {
        if self.last_now.is_none_or(|t| now > t) {
            self.last_now = Some(now);
        }
    }

    pub(crate) fn push(&mut self, o: Output) {
        self.outputs.push_back(o);
    }

    /// Whether a `log` event about a refused uplink may be emitted for `key` now;
    /// when not, it is counted under its `code`.
    pub(crate) fn refused_log_allowed(
        &mut self,
        key: crate::log_limit::LogKey,
        code: crate::output::LogCode,
        now: Instant,
    ) -> bool {
        if self.log_limiter.allow(key, now) {
            return true;
        }
        *self
            .counters
            .log_events_suppressed
            .entry(code.as_str())
            .or_insert(0) += 1;
        false
    }

    pub(crate) fn store_session(&mut self, dev_eui: Eui64) {
        let session = self
            .devices
            .get(&dev_eui)
            .and_then(|e| e.device.session.clone())
            .map(Box::new);
        self.push(Output::Store(StoreChange::Session { dev_eui, session }));
    }

    pub(crate) fn next_downlink_id(&mut self) -> DownlinkId {
        let id = self.next_downlink_id;
        self.next_downlink_id = self.next_downlink_id.wrapping_add(1).max(1);
        DownlinkId(id)
    }

    /// Re-keys the DevAddr index after a session change.
    pub(crate) fn reindex(&mut self, dev_eui: Eui64, old: Option<DevAddr>, new: Option<DevAddr>) {
        if old == new {
            return;
        }
        if let Some(a) = old {
            self.unindex(a, dev_eui);
        }
        if let Some(a) = new {
            self.by_dev_addr.entry(a).or_default().push(dev_eui);
        }
    }

    pub(crate) fn wake_class_c(&mut self, dev_eui: Eui64) {
        let class_c = self
            .devices
            .get(&dev_eui)
            .is_some_and(|e| e.device.profile.supports_class_c);
        if class_c {
            self.class_c_due.push_back(dev_eui);
        }
    }

    fn process_uplink(&mut self, uplink: Uplink, now: Instant, rng: &mut dyn RngCore) {
        crate::uplink::process(self, uplink, now, rng);
    }
}
