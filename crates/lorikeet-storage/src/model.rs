//! The stored entities. Plain data: the storage trait reads and writes them; the
//! API and the network server translate them to and from their own types.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The id of the tenant that always exists. Resources created without a tenant
/// (by the admin token) live here; it cannot be deleted.
pub const DEFAULT_TENANT_ID: Uuid = Uuid::from_u128(1);

/// How many DevNonces of accepted joins are kept per device for the LoRaWAN
/// 1.0.0–1.0.3 "never reuse a DevNonce" rule. Older ones are forgotten, so the list
/// cannot grow forever. 512 covers years of normal rejoins; an honest device that
/// draws a random DevNonce hits a remembered one with probability 512/65536 ≈ 0.8 %
/// per join and simply retries. 1.0.4 and 1.1 devices use `last_dev_nonce` instead.
pub const USED_DEV_NONCE_LIMIT: usize = 512;

/// A slice of a list: at most `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Maximum number of rows.
    pub limit: u32,
    /// Rows to skip.
    pub offset: u64,
}

impl Page {
    /// Every row (for start-up loads of small tables).
    pub const ALL: Page = Page {
        limit: u32::MAX,
        offset: 0,
    };
}

/// An organisation owning applications, profiles, devices and gateways.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Tenant id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Whether the tenant's new gateways are private unless created otherwise.
    pub private_gateways: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A tenant-scoped API key. Only the SHA-256 of its token is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    /// Key id (not secret; used to list and delete keys).
    pub id: Uuid,
    /// The tenant the key acts for.
    pub tenant_id: Uuid,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// SHA-256 of an API token: what is stored and looked up, so a database leak does
/// not leak usable tokens.
pub fn hash_token(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// An application: a group of devices sharing integrations.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// Application id.
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The payload codec of a device profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadCodec {
    /// Payloads are passed through as bytes.
    None,
    /// Cayenne LPP.
    CayenneLpp,
    /// A JavaScript payload formatter (`decodeUplink` / `encodeDownlink`).
    JavaScript {
        /// The script source.
        script: String,
    },
}

impl PayloadCodec {
    /// The stored (and API) name of the codec type.
    pub fn type_name(&self) -> &'static str {
        match self {
            PayloadCodec::None => "none",
            PayloadCodec::CayenneLpp => "cayenne_lpp",
            PayloadCodec::JavaScript { .. } => "javascript",
        }
    }

    /// Rebuilds from the stored type name and script; `None` for an unknown name.
    pub fn from_parts(type_name: &str, script: String) -> Option<Self> {
        match type_name {
            "none" => Some(PayloadCodec::None),
            "cayenne_lpp" => Some(PayloadCodec::CayenneLpp),
            "javascript" => Some(PayloadCodec::JavaScript { script }),
            _ => None,
        }
    }

    /// The script, empty for codecs without one.
    pub fn script(&self) -> &str {
        match self {
            PayloadCodec::JavaScript { script } => script,
            _ => "",
        }
    }
}

/// Radio and protocol settings shared by a class of devices.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceProfile {
    /// Profile id.
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Region name, e.g. "EU868" (validated by the API).
    pub region: String,
    /// LoRaWAN MAC version, e.g. "1.0.3".
    pub mac_version: String,
    /// Regional parameters revision, e.g. "RP002-1.0.3".
    pub reg_params_revision: String,
    /// OTAA (true) or ABP only (false).
    pub supports_otaa: bool,
    /// Class C downlinks.
    pub supports_class_c: bool,
    /// Whether the network server runs ADR for these devices.
    pub adr_enabled: bool,
    /// RX1 delay in seconds (the region's RECEIVE_DELAY1 when 1).
    pub rx1_delay: u8,
    /// RX1 data-rate offset.
    pub rx1_dr_offset: u8,
    /// RX2 data rate; `None` = the region's default.
    pub rx2_dr: Option<u8>,
    /// RX2 frequency; `None` = the region's default.
    pub rx2_frequency_hz: Option<u32>,
    /// Payload codec.
    pub payload_codec: PayloadCodec,
    /// ADR and MAC settings (a JSON object owned by the network server, issue 7).
    pub mac_settings: serde_json::Value,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The class a device currently operates in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceClass {
    /// Class A: downlinks only after uplinks.
    A,
    /// Class B: beacon-synchronised ping slots.
    B,
    /// Class C: receiver always on.
    C,
}

impl DeviceClass {
    /// "A", "B" or "C".
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceClass::A => "A",
            DeviceClass::B => "B",
            DeviceClass::C => "C",
        }
    }

    /// Parses "A", "B" or "C".
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "A" => Some(DeviceClass::A),
            "B" => Some(DeviceClass::B),
            "C" => Some(DeviceClass::C),
            _ => None,
        }
    }
}

/// A provisioned end device.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// DevEUI (primary key).
    pub dev_eui: Eui64,
    /// JoinEUI (AppEUI in 1.0.x).
    pub join_eui: Eui64,
    /// The tenant of its application (the database keeps them equal).
    pub tenant_id: Uuid,
    /// Its application.
    pub application_id: Uuid,
    /// Its device profile (same tenant).
    pub device_profile_id: Uuid,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// User tags, copied into every event's `deviceInfo`.
    pub tags: BTreeMap<String, String>,
    /// Accept any frame counter (devices that reset their counter, at the cost of
    /// replay protection).
    pub skip_fcnt_check: bool,
    /// Frames from a disabled device are dropped.
    pub disabled: bool,
    /// The class the device is operating in (set by the network server).
    pub device_class_enabled: DeviceClass,
    /// When the last uplink was received.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A device with everything an event's `deviceInfo` and the network server need.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceContext {
    /// The device.
    pub device: Device,
    /// Its profile.
    pub profile: DeviceProfile,
    /// Its application.
    pub application: Application,
    /// Its tenant.
    pub tenant: Tenant,
}

/// Root keys and OTAA join state of a device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceKeys {
    /// DevEUI.
    pub dev_eui: Eui64,
    /// AppKey (1.0.x: the only root key; 1.1: application key).
    pub app_key: Aes128Key,
    /// NwkKey (1.1 only).
    pub nwk_key: Option<Aes128Key>,
    /// The last JoinNonce sent (0: none yet); the next JoinAccept uses a larger one.
    pub join_nonce: u32,
    /// The last accepted DevNonce (1.0.4 / 1.1: the next must be greater).
    pub last_dev_nonce: Option<u16>,
    /// DevNonces of accepted joins, oldest first, at most [`USED_DEV_NONCE_LIMIT`].
    /// Read-only here: recorded through [`crate::WriteOp::RecordJoin`].
    pub used_dev_nonces: Vec<u16>,
}

/// An active session of a device (after OTAA join or ABP activation).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSession {
    /// DevEUI.
    pub dev_eui: Eui64,
    /// Device address (indexed: uplinks are matched by it).
    pub dev_addr: DevAddr,
    /// LoRaWAN MAC version of the session, e.g. "1.0.3".
    pub mac_version: String,
    /// FNwkSIntKey (1.0.x: the NwkSKey).
    pub f_nwk_s_int_key: Aes128Key,
    /// SNwkSIntKey (1.0.x: the NwkSKey).
    pub s_nwk_s_int_key: Aes128Key,
    /// NwkSEncKey (1.0.x: the NwkSKey).
    pub nwk_s_enc_key: Aes128Key,
    /// AppSKey.
    pub app_s_key: Aes128Key,
    /// The next expected uplink frame counter (32 bits).
    pub f_cnt_up: u32,
    /// The next network downlink frame counter (1.0.x: the only downlink counter).
    pub n_f_cnt_down: u32,
    /// The next application downlink frame counter (1.1).
    pub a_f_cnt_down: u32,
    /// FCnt of the confirmed downlink being acknowledged (1.1 uplink MIC).
    pub conf_f_cnt: u32,
    /// Opaque JSON text the network server owns (MAC, ADR and RX state). Kept as
    /// text so that start-up can parse it straight into the server's own types.
    pub ns_state: String,
    /// Last write.
    pub updated_at: DateTime<Utc>,
}

/// A queued downlink.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    /// Item id (reported in ack/txack events as `queueItemId`).
    pub id: Uuid,
    /// DevEUI.
    pub dev_eui: Eui64,
    /// FPort (1..=223).
    pub f_port: u8,
    /// Plaintext payload (empty for an item queued as an `object` and not yet encoded).
    pub data: Vec<u8>,
    /// Confirmed downlink.
    pub confirmed: bool,
    /// An object to encode with the profile's codec when sent.
    pub object: Option<serde_json::Value>,
    /// The downlink frame counter it was sent with.
    pub f_cnt_down: Option<u32>,
    /// Sent confirmed and waiting for the device's ACK.
    pub pending: bool,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// Dropped (with a log event) when not sent by then.
    pub expires_at: Option<DateTime<Utc>>,
    /// Enqueue time (queue order).
    pub created_at: DateTime<Utc>,
}

/// A gateway location.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east.
    pub longitude: f64,
    /// Metres above sea level.
    pub altitude: f64,
}

/// Where a gateway's location comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocationSource {
    /// Set through the API; GPS fixes in the forwarder's `stat` are ignored.
    Provisioned,
    /// The last GPS fix the forwarder reported.
    #[default]
    Reported,
}

impl LocationSource {
    /// `provisioned` or `reported` (API and column value).
    pub fn as_str(self) -> &'static str {
        match self {
            LocationSource::Provisioned => "provisioned",
            LocationSource::Reported => "reported",
        }
    }

    /// The inverse of [`LocationSource::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "provisioned" => Some(LocationSource::Provisioned),
            "reported" => Some(LocationSource::Reported),
            _ => None,
        }
    }
}

/// A provisioned gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    /// Gateway EUI.
    pub gateway_id: Eui64,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Configured or last reported location (see `location_source`).
    pub location: Option<Location>,
    /// Whether the forwarder's GPS reports replace the location.
    pub location_source: LocationSource,
    /// When the gateway last sent anything.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The last `stat` object the forwarder sent.
    pub stats: Option<serde_json::Value>,
    /// Private: other tenants' events do not show it (id, location) in `rxInfo`.
    pub private: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The kind of an application integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrationKind {
    /// HTTP webhook.
    Http,
    /// MQTT publishing.
    Mqtt,
    /// NATS JetStream publishing.
    Nats,
    /// InfluxDB writes.
    Influxdb,
    /// RabbitMQ (AMQP 0-9-1) publishing.
    Amqp,
    /// Kafka producing.
    Kafka,
    /// Decoded measurements into the database's own time-series table.
    Postgres,
}

impl IntegrationKind {
    /// "http", "mqtt", "nats", "influxdb", "amqp", "kafka" or "postgres".
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::Http => "http",
            IntegrationKind::Mqtt => "mqtt",
            IntegrationKind::Nats => "nats",
            IntegrationKind::Influxdb => "influxdb",
            IntegrationKind::Amqp => "amqp",
            IntegrationKind::Kafka => "kafka",
            IntegrationKind::Postgres => "postgres",
        }
    }

    /// Parses [`IntegrationKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "http" => Some(IntegrationKind::Http),
            "mqtt" => Some(IntegrationKind::Mqtt),
            "nats" => Some(IntegrationKind::Nats),
            "influxdb" => Some(IntegrationKind::Influxdb),
            "amqp" => Some(IntegrationKind::Amqp),
            "kafka" => Some(IntegrationKind::Kafka),
            "postgres" => Some(IntegrationKind::Postgres),
            _ => None,
        }
    }
}

/// Who last set an integration's target, which decides where it may connect (the
/// SSRF guard, `lorikeet_service::target`): a tenant's target must be a global
/// address; the admin's may also be loopback or private.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrationOwner {
    /// Set with the admin token.
    Admin,
    /// Set with a tenant API key (and every integration stored before owners were).
    Tenant,
}

impl IntegrationOwner {
    /// "admin" or "tenant".
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationOwner::Admin => "admin",
            IntegrationOwner::Tenant => "tenant",
        }
    }

    /// Parses "admin" or "tenant".
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(IntegrationOwner::Admin),
            "tenant" => Some(IntegrationOwner::Tenant),
            _ => None,
        }
    }
}

/// An application integration: every event of the application's devices gets an
/// outbox row per integration.
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    /// Integration id.
    pub id: Uuid,
    /// Its application.
    pub application_id: Uuid,
    /// HTTP or MQTT.
    pub kind: IntegrationKind,
    /// Who last set it (decides which addresses it may reach).
    pub owner: IntegrationOwner,
    /// Kind-specific settings (for HTTP: [`HttpIntegrationConfig`] as JSON).
    pub config: serde_json::Value,
    /// Last successful delivery.
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// Last delivery error.
    pub last_error: Option<String>,
    /// When the last error happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change of the settings.
    pub updated_at: DateTime<Utc>,
}

/// Settings of an HTTP (webhook) integration, stored as the integration's `config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpIntegrationConfig {
    /// Endpoint; events are POSTed to `<url>?event=<type>`.
    pub url: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// HMAC-SHA256 secret for `X-Lorikeet-Signature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// The type of an integration event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Uplink.
    Up,
    /// OTAA join.
    Join,
    /// Confirmed downlink acknowledged or not.
    Ack,
    /// Downlink transmitted by a gateway.
    TxAck,
    /// Device status (battery, margin).
    Status,
    /// Something worth telling the user (codec error, dropped frame...).
    Log,
    /// Location update.
    Location,
    /// An alert fired or resolved.
    Alert,
}

impl EventKind {
    /// Every kind, in a fixed order.
    pub const ALL: [EventKind; 8] = [
        EventKind::Up,
        EventKind::Join,
        EventKind::Ack,
        EventKind::TxAck,
        EventKind::Status,
        EventKind::Log,
        EventKind::Location,
        EventKind::Alert,
    ];

    /// The name used in JSON, webhook URLs and MQTT topics.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Up => "up",
            EventKind::Join => "join",
            EventKind::Ack => "ack",
            EventKind::TxAck => "txack",
            EventKind::Status => "status",
            EventKind::Log => "log",
            EventKind::Location => "location",
            EventKind::Alert => "alert",
        }
    }

    /// Parses a name from [`EventKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An event to store (and to deliver to the application's integrations).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// DevEUI.
    pub dev_eui: Eui64,
    /// The device's application (whose webhooks deliver the event).
    pub application_id: Uuid,
    /// Event type.
    pub kind: EventKind,
    /// The integration event JSON (ChirpStack v4 shape), serialised once by its
    /// producer (it must be valid JSON) and shared with live subscribers.
    pub payload: std::sync::Arc<str>,
    /// Event time.
    pub created_at: DateTime<Utc>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Increasing id (newer events have larger ids).
    pub id: i64,
    /// DevEUI.
    pub dev_eui: Eui64,
    /// Application id.
    pub application_id: Uuid,
    /// Event type.
    pub kind: EventKind,
    /// The integration event JSON, exactly as delivered.
    pub json: String,
    /// Event time.
    pub created_at: DateTime<Utc>,
}

impl Event {
    /// The event JSON parsed (`Null` if it somehow is not JSON).
    pub fn payload(&self) -> serde_json::Value {
        serde_json::from_str(&self.json).unwrap_or_default()
    }
}

/// What [`crate::Storage::event_retention`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventRetention {
    /// Day partitions created ahead (Postgres).
    pub partitions_created: Vec<String>,
    /// Day partitions dropped, their whole day past the retention (Postgres).
    pub partitions_dropped: Vec<String>,
    /// Rows deleted (SQLite, and rows in the previous format).
    pub rows_deleted: u64,
}

/// An outbox row claimed for delivery, with its event.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// Outbox row id (for [`crate::Storage::outbox_delivered`] / `outbox_failed`).
    pub id: i64,
    /// Integration to deliver to.
    pub integration_id: Uuid,
    /// The event.
    pub event_id: i64,
    /// DevEUI (deliveries are ordered per device).
    pub dev_eui: Eui64,
    /// Event type.
    pub kind: EventKind,
    /// The event JSON to send, exactly as first delivered.
    pub body: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Last failure, if any.
    pub last_error: Option<String>,
    /// When the row was written (with its event).
    pub created_at: DateTime<Utc>,
}

/// What [`crate::Storage::claim_outbox`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claimed {
    /// The head row of each due chain, to deliver now.
    pub items: Vec<OutboxItem>,
    /// Due chains that turned out empty (everything delivered or given up): they
    /// are idle now, so their devices' next events may be delivered straight away.
    pub idle: Vec<(Uuid, Eui64)>,
}

/// An event read for webhook delivery, with its JSON as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    /// Event id (ids increase in write order).
    pub id: i64,
    /// DevEUI (deliveries are ordered per device).
    pub dev_eui: Eui64,
    /// Event type.
    pub kind: EventKind,
    /// The event JSON, as text: sent as it is.
    pub body: String,
    /// Event time.
    pub created_at: DateTime<Utc>,
}

/// An event moved into the retry outbox: its first delivery failed, or it waits
/// behind one of its device's events that failed.
#[derive(Debug, Clone, PartialEq)]
pub struct SpillRow {
    /// Integration to deliver to.
    pub integration_id: Uuid,
    /// The event.
    pub event_id: i64,
    /// Its device.
    pub dev_eui: Eui64,
    /// Failed attempts so far (0 for an event that waits behind another).
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
    /// The failure, if this event's own delivery failed.
    pub last_error: Option<String>,
    /// When the event was written (the max delivery age counts from here).
    pub created_at: DateTime<Utc>,
}

/// How far an integration's straight-from-the-events delivery has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryCursor {
    /// The integration.
    pub integration_id: Uuid,
    /// Every event of its application up to this id is delivered, given up, or in
    /// the outbox.
    pub delivered_through: i64,
    /// The last successful delivery since the previous save, if any.
    pub last_delivered_at: Option<DateTime<Utc>>,
}

/// One device of a bulk import ([`crate::Storage::import_devices`]): created, or
/// updated like [`crate::Storage::update_device`] (its `created_at`, `last_seen_at`
/// and `device_class_enabled` are kept), with its root keys and ABP session when
/// given (replaced like [`crate::Storage::set_device_keys`] and
/// [`crate::Storage::activate_session`]; what is not given is left as it is).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    /// The device.
    pub device: Device,
    /// Root keys to set; the join state of a device that had keys is kept.
    pub keys: Option<RootKeys>,
    /// An ABP session to write (replacing any session).
    pub session: Option<DeviceSession>,
}

/// A device's root keys, as set through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct RootKeys {
    /// AppKey.
    pub app_key: Aes128Key,
    /// NwkKey (LoRaWAN 1.1 only).
    pub nwk_key: Option<Aes128Key>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Devices that did not exist before.
    pub created: u64,
    /// Devices that existed and were updated.
    pub updated: u64,
}

/// A row an import refuses: its device exists in another tenant than the row's
/// application (an import never moves a device between tenants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportRefusal {
    /// The row's position in the rows given.
    pub row: usize,
    /// Its DevEUI.
    pub dev_eui: Eui64,
    /// The tenant the device belongs to.
    pub tenant_id: Uuid,
}

/// The result of [`crate::Storage::import_devices`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Every row was written.
    Imported(ImportCounts),
    /// Nothing was written: these rows name devices of another tenant.
    Refused(Vec<ImportRefusal>),
}

/// How many stored secrets (root keys, session keys, integration secrets) are
/// sealed under each KEK ([`crate::Storage::key_census`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyCensus {
    /// Values per KEK id.
    pub by_kek: BTreeMap<String, u64>,
    /// Plain values of the previous version, not sealed yet (start-up seals them).
    pub plain: u64,
    /// Values that are neither: not written by Lorikeet.
    pub unknown: u64,
}

impl KeyCensus {
    /// Values a rotation to `kek_id` still has to re-seal: plain ones and those
    /// under any other KEK.
    pub fn not_under(&self, kek_id: &str) -> u64 {
        self.plain
            + self
                .by_kek
                .iter()
                .filter(|(id, _)| *id != kek_id)
                .map(|(_, n)| n)
                .sum::<u64>()
    }
}

/// What [`crate::Storage::rotate_keys`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateReport {
    /// The KEK everything is sealed under now.
    pub kek_id: String,
    /// Values re-sealed.
    pub resealed: u64,
    /// Passes over the tables (the last found nothing left to do).
    pub passes: u32,
    /// KEK ids no value is sealed under any more (their verifiers were removed:
    /// they may be dropped from the configuration).
    pub retired: Vec<String>,
    /// The values as the last pass found them.
    pub census: KeyCensus,
}

/// What a user may do in one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everything in the tenant: applications, integrations, profiles, gateways,
    /// API keys, devices, users' roles in it.
    Admin,
    /// Devices, their keys, activation and downlink queue; reads the rest.
    DeviceManager,
    /// Reads only.
    Viewer,
}

impl Role {
    /// The stored and API form: `admin`, `device_manager`, `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::DeviceManager => "device_manager",
            Role::Viewer => "viewer",
        }
    }

    /// The inverse of [`Role::as_str`].
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "device_manager" => Some(Role::DeviceManager),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A person who signs in to the console (or calls the API with a session cookie).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// User id.
    pub id: Uuid,
    /// Sign-in name, lower-cased.
    pub email: String,
    /// Global administrator: every tenant, users, the whole server.
    pub is_admin: bool,
    /// Role per tenant, ordered by tenant id.
    pub roles: Vec<(Uuid, Role)>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A signed-in browser: the SHA-256 of its cookie token (the token itself is never
/// stored) and the CSRF token its pages send back with every change.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSession {
    /// SHA-256 of the session cookie's value.
    pub token_hash: [u8; 32],
    /// Whose session.
    pub user_id: Uuid,
    /// Sent by the console as `X-CSRF-Token` on every request that changes something.
    pub csrf_token: String,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// The radio figures of one uplink, for a device's link health.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkSample {
    /// The device.
    pub dev_eui: Eui64,
    /// Reception time.
    pub at: DateTime<Utc>,
    /// Its FCnt.
    pub f_cnt: u32,
    /// Its data rate.
    pub dr: u8,
    /// The best gateway's RSSI.
    pub rssi_dbm: i32,
    /// The best gateway's SNR, when reported.
    pub snr_db: Option<f32>,
}

/// A device's link health: the newest uplink, the last DevStatusAns, and hourly
/// RSSI/SNR.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceLink {
    /// Last uplink.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// FCnt of the newest uplink.
    pub f_cnt_up: Option<u32>,
    /// Data rate of the newest uplink.
    pub dr: Option<u8>,
    /// RSSI of the newest uplink (best gateway).
    pub rssi_dbm: Option<i32>,
    /// SNR of the newest uplink (best gateway).
    pub snr_db: Option<f32>,
    /// Battery of the last DevStatusAns, in percent (None: unknown or external).
    pub battery_percent: Option<f32>,
    /// Powered externally, per the last DevStatusAns.
    pub external_power: Option<bool>,
    /// Demodulation margin of the last DevStatusAns.
    pub margin_db: Option<i8>,
    /// When the last DevStatusAns came.
    pub status_at: Option<DateTime<Utc>>,
    /// Hours with uplinks, oldest first.
    pub history: Vec<LinkHour>,
}

/// One hour of a device's uplinks.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkHour {
    /// Start of the hour.
    pub hour: DateTime<Utc>,
    /// Uplinks in it.
    pub uplinks: u64,
    /// Mean RSSI.
    pub rssi_avg: f64,
    /// Lowest RSSI.
    pub rssi_min: i32,
    /// Highest RSSI.
    pub rssi_max: i32,
    /// Mean SNR of the uplinks that reported one.
    pub snr_avg: Option<f64>,
}

/// What one gateway did since the network server's last flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayTraffic {
    /// The gateway.
    pub gateway_id: Eui64,
    /// Uplink frames it forwarded.
    pub uplinks: u64,
    /// Downlinks it transmitted.
    pub downlinks: u64,
    /// Transmissions it refused (TX_ACK errors).
    pub tx_ack_errors: u64,
}

/// One minute of a gateway's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayMinute {
    /// Start of the minute.
    pub minute: DateTime<Utc>,
    /// Uplink frames it forwarded.
    pub uplinks: u64,
    /// Downlinks it transmitted.
    pub downlinks: u64,
    /// Transmissions it refused (TX_ACK errors).
    pub tx_ack_errors: u64,
}

/// An alert rule (`docs/alerts.md`): what to watch in a tenant, or in one of its
/// applications. `kind` and `params` are checked by the API (`lorikeet_app::alert`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// Rule id.
    pub id: Uuid,
    /// Owner.
    pub tenant_id: Uuid,
    /// Narrowed to one application (`None`: the whole tenant).
    pub application_id: Option<Uuid>,
    /// Shown in the console and in alert events.
    pub name: String,
    /// `device_silent`, `gateway_offline`, `battery_below`, `field` or `integration_failing`.
    pub kind: String,
    /// The kind's parameters.
    pub params: serde_json::Value,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Whether an alert is still firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// The condition holds.
    Firing,
    /// It stopped holding.
    Resolved,
}

impl AlertState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }

    /// The inverse of [`AlertState::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "firing" => Some(AlertState::Firing),
            "resolved" => Some(AlertState::Resolved),
            _ => None,
        }
    }
}

/// One episode of a rule's condition for one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Alert id.
    pub id: Uuid,
    /// Its rule.
    pub rule_id: Uuid,
    /// The rule's name (read with the alert; ignored when writing).
    pub rule_name: String,
    /// The rule's kind (read with the alert; ignored when writing).
    pub kind: String,
    /// The rule's tenant.
    pub tenant_id: Uuid,
    /// The subject's application, when it has one.
    pub application_id: Option<Uuid>,
    /// `device`, `gateway` or `integration`.
    pub subject_type: String,
    /// DevEUI, gateway EUI or integration id.
    pub subject: String,
    /// Firing or resolved.
    pub state: AlertState,
    /// Why it fired.
    pub message: String,
    /// Why it resolved.
    pub resolve_message: Option<String>,
    /// When it fired.
    pub fired_at: DateTime<Utc>,
    /// When it resolved.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Which alerts to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertFilter {
    /// Of one tenant (`None`: all).
    pub tenant_id: Option<Uuid>,
    /// Of one application.
    pub application_id: Option<Uuid>,
    /// Of one rule.
    pub rule_id: Option<Uuid>,
    /// Only firing or only resolved ones.
    pub state: Option<AlertState>,
}

/// The numeric fields of one decoded uplink, for the `measurements` table
/// ([`crate::Storage::write_measurements`]): one row per field.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementBatch {
    /// The application the uplink was delivered for.
    pub application_id: Uuid,
    /// The device.
    pub dev_eui: Eui64,
    /// When the uplink was received (the event's `time`).
    pub time: DateTime<Utc>,
    /// The `up` event's id: with the time and name it identifies a row, so a
    /// retried delivery writes nothing twice.
    pub event_id: i64,
    /// (flattened field name, value).
    pub fields: Vec<(String, f64)>,
}

/// How long an application's measurements are kept
/// ([`crate::Storage::measurement_upkeep`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasurementRetention {
    /// The application (it has a `postgres` integration).
    pub application_id: Uuid,
    /// Rows older than this many days are removed.
    pub days: u32,
}

/// What one [`crate::Storage::measurement_upkeep`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeasurementUpkeep {
    /// Day partitions created (Postgres).
    pub partitions_created: Vec<String>,
    /// Day partitions dropped, their whole day past the longest retention (Postgres).
    pub partitions_dropped: Vec<String>,
    /// Rows deleted one by one (shorter retentions, applications without the
    /// integration).
    pub rows_deleted: u64,
}

/// One bucket of a downsampled series: the values of one field whose time falls
/// in `[start, start + width)`.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementPoint {
    /// The bucket's start.
    pub start: DateTime<Utc>,
    /// Mean.
    pub avg: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// How many values.
    pub count: u64,
}

/// One field's buckets, oldest first (empty buckets left out).
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementSeries {
    /// The flattened field name (`temperatureSensor_1`).
    pub field: String,
    /// Its non-empty buckets.
    pub points: Vec<MeasurementPoint>,
}

/// What [`crate::Storage::measurement_series`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasurementQuery {
    /// The device.
    pub dev_eui: Eui64,
    /// Start of the range (included).
    pub from: DateTime<Utc>,
    /// End of the range (excluded); after `from`.
    pub to: DateTime<Utc>,
    /// How many equal buckets the range is split into (at least 1).
    pub buckets: u32,
    /// Only these fields (empty: every field).
    pub fields: Vec<String>,
}
