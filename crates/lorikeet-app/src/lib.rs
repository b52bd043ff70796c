//! The application-server core of Lorikeet: turns the network server's events into
//! integration events (ChirpStack-v4-compatible JSON), decrypting application
//! payloads on the way.
//!
//! Pure: the caller supplies the device's metadata, the time and the codec result.

pub mod alert;
pub mod event;

use std::time::SystemTime;

use lorikeet_ns::output::{Event, LogLevel, UpEvent};

use event::{
    b64, utc, AckEventJson, JoinEventJson, LogEventJson, StatusEventJson, TxAckEventJson,
    TxInfoJson, UpEventJson, UplinkRxInfo,
};
pub use event::{DeviceClass, DeviceInfo, EventType};

/// An integration event ready to store and deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationEvent {
    /// Its type.
    pub kind: EventType,
    /// The JSON body (what webhooks POST and MQTT publishes).
    pub body: serde_json::Value,
}

/// Decrypts an uplink's application payload (FPort > 0) with the session's AppSKey.
/// FPort 0 and port-less frames carry no application data.
pub fn decrypt_uplink_payload(up: &UpEvent) -> Vec<u8> {
    match up.f_port {
        Some(p) if p > 0 => lorikeet_lorawan::crypto::encrypt_frm_payload(
            &up.app_s_key,
            lorikeet_lorawan::phy::Direction::Uplink,
            up.dev_addr,
            up.f_cnt,
            &up.frm_payload,
        ),
        _ => Vec::new(),
    }
}

/// The `up` event for an uplink whose payload was decrypted (`data`) and maybe decoded.
/// Its `time` is the first reception's; `now` only stands in for an uplink without one.
pub fn up_event(
    up: &UpEvent,
    device_info: DeviceInfo,
    data: &[u8],
    object: Option<serde_json::Value>,
    region_config_id: &str,
    now: SystemTime,
) -> IntegrationEvent {
    IntegrationEvent {
        kind: EventType::Up,
        body: to_value(&up_body(
            up,
            device_info,
            data,
            object,
            region_config_id,
            now,
        )),
    }
}

/// [`up_event`]'s body serialised straight to JSON text, without building a
/// `serde_json::Value` tree first: what the server's hot path stores and delivers.
pub fn up_event_json(
    up: &UpEvent,
    device_info: DeviceInfo,
    data: &[u8],
    object: Option<serde_json::Value>,
    region_config_id: &str,
    now: SystemTime,
) -> String {
    let body = up_body(up, device_info, data, object, region_config_id, now);
    // Strings, numbers, maps and vectors only: serialising cannot fail.
    serde_json::to_string(&body).unwrap_or_else(|_| "null".to_owned())
}

fn up_body(
    up: &UpEvent,
    device_info: DeviceInfo,
    data: &[u8],
    object: Option<serde_json::Value>,
    region_config_id: &str,
    now: SystemTime,
) -> UpEventJson {
    let time = utc(up.rx_info.first().map_or(now, |r| r.ns_time));
    UpEventJson {
        deduplication_id: up.deduplication_id,
        time,
        device_info,
        dev_addr: up.dev_addr,
        adr: up.adr,
        dr: up.dr,
        f_cnt: up.f_cnt,
        f_port: up.f_port,
        confirmed: up.confirmed,
        data: b64(data),
        object,
        rx_info: up.rx_info.iter().map(UplinkRxInfo::from).collect(),
        tx_info: TxInfoJson::from(&up.tx_info),
        region_config_id: region_config_id.to_owned(),
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    // Our event structs contain only strings, numbers, maps and vectors: serialising
    // them to a Value cannot fail.
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Builds the integration event for a network-server event other than `up` (which
/// needs decryption and decoding first: see [`up_event`]). `now` stamps events that
/// carry no reception time.
pub fn other_event(
    event: &Event,
    device_info: DeviceInfo,
    now: SystemTime,
) -> Option<IntegrationEvent> {
    let time = utc(now);
    Some(match event {
        Event::Up(_) => return None,
        Event::Join {
            dev_addr,
            deduplication_id,
            rx_info,
            ..
        } => IntegrationEvent {
            kind: EventType::Join,
            body: to_value(&JoinEventJson {
                deduplication_id: *deduplication_id,
                time: rx_info.first().map_or(time, |r| utc(r.ns_time)),
                device_info,
                dev_addr: *dev_addr,
            }),
        },
        Event::Ack {
            deduplication_id,
            queue_item_id,
            acknowledged,
            f_cnt_down,
            ..
        } => IntegrationEvent {
            kind: EventType::Ack,
            body: to_value(&AckEventJson {
                deduplication_id: *deduplication_id,
                time,
                device_info,
                queue_item_id: *queue_item_id,
                acknowledged: *acknowledged,
                f_cnt_down: *f_cnt_down,
            }),
        },
        Event::TxAck {
            downlink_id,
            queue_item_id,
            f_cnt_down,
            gateway_id,
            frequency_hz,
            modulation,
            tx_power_eirp_dbm,
            ..
        } => IntegrationEvent {
            kind: EventType::Txack,
            body: to_value(&TxAckEventJson {
                downlink_id: downlink_id.0,
                time,
                device_info,
                queue_item_id: *queue_item_id,
                f_cnt_down: *f_cnt_down,
                gateway_id: *gateway_id,
                tx_info: TxInfoJson {
                    frequency: *frequency_hz,
                    power: Some(*tx_power_eirp_dbm),
                    modulation: event::ModulationInfo::new(*modulation, Some(5)),
                },
            }),
        },
        Event::Status {
            deduplication_id,
            margin_db,
            external_power_source,
            battery_level_unavailable,
            battery_level_percent,
            ..
        } => IntegrationEvent {
            kind: EventType::Status,
            body: to_value(&StatusEventJson {
                deduplication_id: *deduplication_id,
                time,
                device_info,
                margin: i32::from(*margin_db),
                external_power_source: *external_power_source,
                battery_level_unavailable: *battery_level_unavailable,
                battery_level: battery_level_percent.unwrap_or(0.0),
            }),
        },
        Event::Log {
            level,
            code,
            description,
            context,
            ..
        } => IntegrationEvent {
            kind: EventType::Log,
            body: to_value(&LogEventJson {
                time,
                device_info,
                level: match level {
                    LogLevel::Info => "INFO",
                    LogLevel::Warning => "WARNING",
                    LogLevel::Error => "ERROR",
                }
                .into(),
                code: code.as_str().into(),
                description: description.clone(),
                context: context.clone(),
            }),
        },
    })
}

/// A `log` event raised on the application side (e.g. a codec error).
pub fn app_log_event(
    device_info: DeviceInfo,
    level: LogLevel,
    code: &str,
    description: String,
    context: std::collections::BTreeMap<String, String>,
    now: SystemTime,
) -> IntegrationEvent {
    IntegrationEvent {
        kind: EventType::Log,
        body: to_value(&LogEventJson {
            time: utc(now),
            device_info,
            level: match level {
                LogLevel::Info => "INFO",
                LogLevel::Warning => "WARNING",
                LogLevel::Error => "ERROR",
            }
            .into(),
            code: code.into(),
            description,
            context,
        }),
    }
}
