//! Integration events in the JSON shape of ChirpStack v4's integrations (camelCase,
//! bytes as base64, RFC 3339 times), so receivers written for ChirpStack work unchanged.
//!
//! Field names follow ChirpStack's `integration` protobuf messages as rendered to JSON.
//! Unlike protobuf's JSON rendering we always write `false`/`0` fields, which is a
//! superset receivers accept.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use lorikeet_lorawan::{DevAddr, Eui64};
use lorikeet_ns::{Location, Modulation, RxInfo, TxInfo};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Base64 (standard alphabet, padded), as protobuf JSON renders bytes.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The type of an event: the `event` query parameter of webhooks and the last MQTT
/// topic segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// Uplink data.
    Up,
    /// A device joined.
    Join,
    /// A confirmed downlink was (not) acknowledged.
    Ack,
    /// A gateway accepted a downlink for transmission.
    Txack,
    /// Battery and margin.
    Status,
    /// Errors and warnings about the device.
    Log,
    /// A location fix.
    Location,
    /// An alert fired or resolved (`docs/alerts.md`).
    Alert,
}

impl EventType {
    /// Every type, in documentation order.
    pub const ALL: [EventType; 8] = [
        EventType::Up,
        EventType::Join,
        EventType::Ack,
        EventType::Txack,
        EventType::Status,
        EventType::Log,
        EventType::Location,
        EventType::Alert,
    ];

    /// The lower-case name (`up`, `join`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Up => "up",
            EventType::Join => "join",
            EventType::Ack => "ack",
            EventType::Txack => "txack",
            EventType::Status => "status",
            EventType::Log => "log",
            EventType::Location => "location",
            EventType::Alert => "alert",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown event type {s:?} (expected up, join, ack, txack, status, log, location or alert)"))
    }
}

/// The class a device operates in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum DeviceClass {
    /// Class A.
    #[default]
    #[serde(rename = "CLASS_A")]
    ClassA,
    /// Class B.
    #[serde(rename = "CLASS_B")]
    ClassB,
    /// Class C.
    #[serde(rename = "CLASS_C")]
    ClassC,
}

/// Who the event is about: `deviceInfo` in every event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// Tenant id.
    pub tenant_id: Uuid,
    /// Tenant name.
    pub tenant_name: String,
    /// Application id.
    pub application_id: Uuid,
    /// Application name.
    pub application_name: String,
    /// Device-profile id.
    pub device_profile_id: Uuid,
    /// Device-profile name.
    pub device_profile_name: String,
    /// Device name.
    pub device_name: String,
    /// DevEUI.
    pub dev_eui: Eui64,
    /// The class the device operates in.
    pub device_class_enabled: DeviceClass,
    /// User tags.
    pub tags: BTreeMap<String, String>,
}

/// A gateway location.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EventLocation {
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east.
    pub longitude: f64,
    /// Metres.
    pub altitude: f64,
}

impl From<Location> for EventLocation {
    fn from(l: Location) -> Self {
        EventLocation {
            latitude: l.latitude,
            longitude: l.longitude,
            altitude: l.altitude_m,
        }
    }
}

/// One gateway's reception of an uplink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UplinkRxInfo {
    /// Gateway EUI.
    pub gateway_id: Eui64,
    /// Id of this reception.
    pub uplink_id: u32,
    /// Gateway time of reception, when it has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gw_time: Option<DateTime<Utc>>,
    /// Our time of reception.
    pub ns_time: DateTime<Utc>,
    /// Time since the GPS epoch, as a protobuf duration (`"1234.567s"`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub time_since_gps_epoch: Option<String>,
    /// RSSI in dBm.
    pub rssi: i32,
    /// SNR in dB.
    pub snr: f32,
    /// Concentrator IF channel.
    pub channel: u32,
    /// RF chain.
    pub rf_chain: u32,
    /// Board.
    pub board: u32,
    /// Antenna.
    pub antenna: u32,
    /// Gateway location.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub location: Option<EventLocation>,
    /// Opaque gateway context (base64): the concentrator timestamp, big-endian.
    pub context: String,
    /// Extra key/values.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Always `CRC_OK` (frames with a bad CRC are dropped at the gateway edge).
    pub crc_status: String,
}

/// LoRa modulation parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoraModulationInfo {
    /// Bandwidth in Hz.
    pub bandwidth: u32,
    /// Spreading factor.
    pub spreading_factor: u32,
    /// `CR_4_5` … `CR_4_8`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code_rate: Option<String>,
}

/// FSK modulation parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FskModulationInfo {
    /// Bit rate in bits per second.
    pub datarate: u32,
}

/// LR-FHSS modulation parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LrFhssModulationInfo {
    /// Occupied channel width in Hz.
    pub operating_channel_width: u32,
    /// `CR_1_3` or `CR_2_3`.
    pub code_rate: String,
}

/// Modulation, one of its kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ModulationInfo {
    /// LoRa.
    Lora(LoraModulationInfo),
    /// FSK.
    Fsk(FskModulationInfo),
    /// LR-FHSS.
    LrFhss(LrFhssModulationInfo),
}

impl ModulationInfo {
    /// From the core's modulation and an optional coding-rate denominator.
    pub fn new(m: Modulation, code_rate: Option<u8>) -> Self {
        match m {
            Modulation::Lora {
                spreading_factor,
                bandwidth_hz,
            } => ModulationInfo::Lora(LoraModulationInfo {
                bandwidth: bandwidth_hz,
                spreading_factor: u32::from(spreading_factor),
                code_rate: code_rate.map(|d| format!("CR_4_{d}")),
            }),
            Modulation::Fsk { bit_rate_bps } => ModulationInfo::Fsk(FskModulationInfo {
                datarate: bit_rate_bps,
            }),
            Modulation::LrFhss {
                coding_rate,
                occupied_channel_width_hz,
            } => ModulationInfo::LrFhss(LrFhssModulationInfo {
                operating_channel_width: occupied_channel_width_hz,
                code_rate: match coding_rate {
                    lorikeet_ns::region::LrFhssCodingRate::OneThird => "CR_1_3".into(),
                    lorikeet_ns::region::LrFhssCodingRate::TwoThirds => "CR_2_3".into(),
                },
            }),
        }
    }
}

/// How an uplink (or downlink) was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxInfoJson {
    /// Frequency in Hz.
    pub frequency: u32,
    /// Transmit power in dBm (downlinks only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub power: Option<i32>,
    /// Modulation.
    pub modulation: ModulationInfo,
}

impl From<&TxInfo> for TxInfoJson {
    fn from(t: &TxInfo) -> Self {
        TxInfoJson {
            frequency: t.frequency_hz,
            power: None,
            modulation: ModulationInfo::new(t.modulation, t.code_rate),
        }
    }
}

/// `up`: an uplink with its payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpEventJson {
    /// Id shared by every gateway's copy (and every retry of delivery).
    pub deduplication_id: Uuid,
    /// When the uplink was received.
    pub time: DateTime<Utc>,
    /// The device.
    pub device_info: DeviceInfo,
    /// Device address.
    pub dev_addr: DevAddr,
    /// ADR bit.
    pub adr: bool,
    /// Data rate.
    pub dr: u8,
    /// Frame counter.
    pub f_cnt: u32,
    /// Port (absent when the frame has no payload).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub f_port: Option<u8>,
    /// Confirmed uplink.
    pub confirmed: bool,
    /// The decrypted payload, base64.
    pub data: String,
    /// The decoded payload, when the profile has a codec and decoding succeeded.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub object: Option<serde_json::Value>,
    /// Every gateway that heard it.
    pub rx_info: Vec<UplinkRxInfo>,
    /// How it was sent.
    pub tx_info: TxInfoJson,
    /// The region configuration, e.g. `eu868`.
    pub region_config_id: String,
}

/// `join`: a device joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinEventJson {
    /// Id of the JoinRequest.
    pub deduplication_id: Uuid,
    /// When.
    pub time: DateTime<Utc>,
    /// The device.
    pub device_info: DeviceInfo,
    /// Its new address.
    pub dev_addr: DevAddr,
}

/// `ack`: a confirmed downlink was acknowledged, or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AckEventJson {
    /// Id of the uplink that carried (or lacked) the acknowledgement.
    pub deduplication_id: Uuid,
    /// When.
    pub time: DateTime<Utc>,
    /// The device.
    pub device_info: DeviceInfo,
    /// The queue item.
    pub queue_item_id: Uuid,
    /// Whether the device acknowledged it.
    pub acknowledged: bool,
    /// The frame counter the downlink used.
    pub f_cnt_down: u32,
}

/// `txack`: a gateway accepted a downlink for transmission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxAckEventJson {
    /// Downlink id.
    pub downlink_id: u32,
    /// When.
    pub time: DateTime<Utc>,
    /// The device.
    pub device_info: DeviceInfo,
    /// The queue item, when the downlink carried one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub queue_item_id: Option<Uuid>,
    /// Frame counter used.
    pub f_cnt_down: u32,
    /// The gateway.
    pub gateway_id: Eui64,
    /// How it is sent.
    pub tx_info: TxInfoJson,
}

/// `status`: battery and link margin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusEventJson {
    /// Id of the uplink that carried the answer.
    pub deduplication_id: Uuid,
    /// When.
    pub time: DateTime<Utc>,
    /// The device.
    pub device_info: DeviceInfo,
    /// Demodulation margin in dB.
    pub margin: i32,
    /// Externally powered.
    pub external_power_source: bool,
    /// The device cannot measure its battery.
    pub battery_level_unavailable: bool,
    /// Battery level in percent.
    pub battery_level: f32,
}

/// `log`: something worth knowing about the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEventJson {
    /// When.
    pub time: DateTime<Utc>,
    /// The device.
    pub device_info: DeviceInfo,
    /// `INFO`, `WARNING` or `ERROR`.
    pub level: String,
    /// Machine-readable code, e.g. `UPLINK_CODEC`.
    pub code: String,
    /// For a person.
    pub description: String,
    /// Extra key/values.
    pub context: BTreeMap<String, String>,
}

/// Converts a wall-clock time.
pub fn utc(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

/// A protobuf-JSON duration: seconds with up to nine decimals and an `s`.
pub fn pb_duration(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        format!("{}s", d.as_secs())
    } else {
        let frac = format!("{nanos:09}");
        format!("{}.{}s", d.as_secs(), frac.trim_end_matches('0'))
    }
}

impl From<&RxInfo> for UplinkRxInfo {
    fn from(r: &RxInfo) -> Self {
        UplinkRxInfo {
            gateway_id: r.gateway_id,
            uplink_id: r.uplink_id,
            gw_time: r.gw_time.map(utc),
            ns_time: utc(r.ns_time),
            time_since_gps_epoch: r
                .time_since_gps_epoch_ms
                .map(|ms| pb_duration(Duration::from_millis(ms))),
            rssi: r.rssi_dbm,
            snr: r.snr_db.unwrap_or(0.0),
            channel: u32::from(r.channel),
            rf_chain: u32::from(r.rf_chain),
            board: u32::from(r.board),
            antenna: u32::from(r.antenna),
            location: r.location.map(EventLocation::from),
            context: b64(&r.tmst.to_be_bytes()),
            metadata: BTreeMap::new(),
            crc_status: "CRC_OK".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_render_like_protobuf() {
        assert_eq!(pb_duration(Duration::from_millis(1_000)), "1s");
        assert_eq!(pb_duration(Duration::from_millis(1_234_567)), "1234.567s");
        assert_eq!(pb_duration(Duration::from_nanos(5)), "0.000000005s");
    }

    #[test]
    fn event_type_names() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
        assert!("uplink".parse::<EventType>().is_err());
    }

    #[test]
    fn modulation_json_matches_chirpstack() {
        let m = ModulationInfo::new(Modulation::lora(7, 125_000), Some(5));
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}})
        );
        let m = ModulationInfo::new(
            Modulation::Fsk {
                bit_rate_bps: 50_000,
            },
            None,
        );
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"fsk": {"datarate": 50000}})
        );
    }
}
