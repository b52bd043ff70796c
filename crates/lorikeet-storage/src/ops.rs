//! Batched writes of the hot path, and change notifications for caches.

use chrono::{DateTime, Utc};
use lorikeet_lorawan::Eui64;
use uuid::Uuid;

use crate::model::{
    Alert, DeviceClass, DeviceSession, GatewayTraffic, LinkSample, Location, NewEvent,
};

/// One write of the network or application server. [`crate::Storage::apply`] runs a
/// whole `Vec<WriteOp>` in one transaction, in order, so the server can group the
/// writes of many uplinks into one commit.
///
/// Writes about a device that has been deleted meanwhile are skipped silently (the
/// device's rows are gone; failing the whole batch would lose other devices' writes).
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Inserts or replaces the device's session.
    UpsertSession(DeviceSession),
    /// Removes the device's session (e.g. before a rejoin).
    DeleteSession(Eui64),
    /// Stores an event (webhooks read it from there: see
    /// [`crate::Storage::events_after`]).
    InsertEvent(NewEvent),
    /// Records an item as sent. Confirmed items stay queued as `pending` until the
    /// device acknowledges them; unconfirmed items should be deleted instead.
    QueueMarkSent {
        /// Queue item id.
        id: Uuid,
        /// The downlink frame counter used.
        f_cnt_down: u32,
        /// Send time.
        sent_at: DateTime<Utc>,
        /// Keep it as pending (confirmed downlink waiting for its ACK).
        pending: bool,
    },
    /// Removes a queue item (sent unconfirmed, acknowledged, or expired).
    QueueDelete(Uuid),
    /// An accepted OTAA join: remembers the DevNonce (keeping the most recent
    /// [`crate::USED_DEV_NONCE_LIMIT`]), sets `last_dev_nonce` and the JoinNonce used.
    RecordJoin {
        /// DevEUI.
        dev_eui: Eui64,
        /// The JoinRequest's DevNonce.
        dev_nonce: u16,
        /// The JoinNonce sent in the JoinAccept.
        join_nonce: u32,
        /// Join time.
        at: DateTime<Utc>,
    },
    /// The radio figures of a device's uplink (link health and its hourly RSSI/SNR).
    DeviceLink(LinkSample),
    /// A device's DevStatusAns: battery and demodulation margin.
    DeviceStatus {
        /// DevEUI.
        dev_eui: Eui64,
        /// When it came.
        at: DateTime<Utc>,
        /// Battery in percent, when the device knows it.
        battery_percent: Option<f32>,
        /// Powered externally.
        external_power: bool,
        /// Demodulation margin in dB.
        margin_db: i8,
    },
    /// The device sent an uplink.
    DeviceSeen {
        /// DevEUI.
        dev_eui: Eui64,
        /// Reception time.
        at: DateTime<Utc>,
    },
    /// The class the device now operates in.
    DeviceClass {
        /// DevEUI.
        dev_eui: Eui64,
        /// The class.
        class: DeviceClass,
    },
    /// The gateway sent something; unknown gateways are ignored.
    GatewaySeen {
        /// Gateway EUI.
        gateway_id: Eui64,
        /// Reception time.
        at: DateTime<Utc>,
        /// The forwarder's `stat` object, if this was a status report.
        stats: Option<serde_json::Value>,
        /// A location reported by the gateway (GPS).
        location: Option<Location>,
    },
    /// An alert fired (skipped when its rule is gone or already fires for the
    /// subject).
    AlertFired(Alert),
    /// A firing alert resolved.
    AlertResolved {
        /// The alert.
        id: Uuid,
        /// When.
        at: DateTime<Utc>,
        /// Why.
        message: String,
    },
    /// The gateways' traffic since the last flush, added to `minute`'s counters.
    GatewayTraffic {
        /// The minute (truncated when stored).
        minute: DateTime<Utc>,
        /// One row per gateway with traffic.
        rows: Vec<GatewayTraffic>,
    },
}

/// A change made outside the network server (by the API, or an MQTT downlink
/// command) that its in-memory caches must pick up. Sent on a
/// `tokio::sync::broadcast` channel after the write committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Device created or updated (reload device, profile and application for it).
    DeviceChanged(Eui64),
    /// Device deleted (drop its session, queue and cache entries).
    DeviceDeleted(Eui64),
    /// Root keys changed.
    DeviceKeysChanged(Eui64),
    /// A session was written from outside (ABP activation).
    SessionChanged(Eui64),
    /// The device's downlink queue changed (enqueue or flush); wakes Class C sending.
    QueueChanged(Eui64),
    /// Device profile created, updated or deleted.
    ProfileChanged(Uuid),
    /// Application created, updated or deleted (its devices' `deviceInfo` may change).
    ApplicationChanged(Uuid),
    /// Application deleted, with all its devices and integrations.
    ApplicationDeleted(Uuid),
    /// Tenant created or renamed.
    TenantChanged(Uuid),
    /// Tenant deleted with everything it owned.
    TenantDeleted(Uuid),
    /// Gateway created or updated.
    GatewayChanged(Eui64),
    /// Gateway deleted.
    GatewayDeleted(Eui64),
    /// An integration of this application was created, replaced or deleted.
    IntegrationChanged(Uuid),
}

/// A write batch sorted by kind, for backends that run one statement per kind.
/// Kinds touch disjoint tables or columns, so running them kind by kind gives the
/// same result as running the ops in order, as long as each kind keeps its own
/// order: the last session write and the last `DeviceSeen` of a device win, and
/// events keep their order (their ids are the delivery order per device).
pub(crate) struct Grouped<'a> {
    /// The last session write per device (`None`: delete), in DevEUI order (a
    /// consistent lock order across transactions).
    pub sessions: std::collections::BTreeMap<Eui64, Option<&'a DeviceSession>>,
    /// Events in op order.
    pub events: Vec<&'a NewEvent>,
    /// The last `DeviceSeen` per device.
    pub seen: std::collections::BTreeMap<Eui64, DateTime<Utc>>,
    /// Link samples in op order.
    pub links: Vec<&'a LinkSample>,
    /// Everything else, in op order.
    pub others: Vec<&'a WriteOp>,
}

impl<'a> Grouped<'a> {
    pub(crate) fn new(ops: &'a [WriteOp]) -> Self {
        let mut g = Grouped {
            sessions: std::collections::BTreeMap::new(),
            events: Vec::new(),
            seen: std::collections::BTreeMap::new(),
            links: Vec::new(),
            others: Vec::new(),
        };
        for op in ops {
            match op {
                WriteOp::UpsertSession(s) => {
                    g.sessions.insert(s.dev_eui, Some(s));
                }
                WriteOp::DeleteSession(dev_eui) => {
                    g.sessions.insert(*dev_eui, None);
                }
                WriteOp::InsertEvent(e) => g.events.push(e),
                WriteOp::DeviceLink(l) => g.links.push(l),
                WriteOp::DeviceSeen { dev_eui, at } => {
                    g.seen.insert(*dev_eui, *at);
                }
                other => g.others.push(other),
            }
        }
        g
    }

    /// The sessions to write, in DevEUI order.
    pub(crate) fn upserts(&self) -> Vec<&'a DeviceSession> {
        self.sessions.values().flatten().copied().collect()
    }

    /// The devices whose session goes, in DevEUI order.
    pub(crate) fn deletes(&self) -> Vec<Vec<u8>> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.is_none())
            .map(|(e, _)| e.0.to_vec())
            .collect()
    }
}
