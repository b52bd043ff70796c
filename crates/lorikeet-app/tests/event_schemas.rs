//! The integration events we emit match `schemas/events/<type>.json`, and the schemas
//! are strict enough that a renamed field or a wrong type fails them.
//!
//! Every event is built with the crate's public constructors and checked as the
//! `body` that webhooks POST and MQTT publishes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use lorikeet_app::{
    app_log_event, decrypt_uplink_payload, other_event, up_event, up_event_json, DeviceClass,
    DeviceInfo, EventType, IntegrationEvent,
};
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use lorikeet_ns::output::{DownlinkId, Event, LogCode, LogLevel, UpEvent};
use lorikeet_ns::region::LrFhssCodingRate;
use lorikeet_ns::{Location, Modulation, RxInfo, TxInfo};
use serde_json::{json, Value};
use uuid::Uuid;

/// The event types Lorikeet emits. `EventType::Location` exists but nothing builds
/// location events yet; when something does, add `location.json` and drop the filter.
fn emitted_types() -> Vec<EventType> {
    EventType::ALL
        .into_iter()
        .filter(|t| *t != EventType::Location)
        .collect()
}

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/events")
}

fn load_schema(kind: EventType) -> Value {
    let path = schema_dir().join(format!("{kind}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn validator(kind: EventType) -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&load_schema(kind))
        .unwrap_or_else(|e| panic!("compiling {kind}.json: {e}"))
}

/// The errors of `body` against the schema for `kind`, one per line.
fn errors(kind: EventType, body: &Value) -> Vec<String> {
    let v = validator(kind);
    v.iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn assert_valid(ev: &IntegrationEvent) {
    let errs = errors(ev.kind, &ev.body);
    assert!(
        errs.is_empty(),
        "{} event does not match {}.json:\n{}\nbody: {:#}",
        ev.kind,
        ev.kind,
        errs.join("\n"),
        ev.body
    );
}

fn assert_invalid(kind: EventType, body: &Value, what: &str) {
    assert!(
        !validator(kind).is_valid(body),
        "{kind}.json accepted an event with {what}: {body:#}"
    );
}

// ---- fixtures -------------------------------------------------------------------

const DEV_EUI: Eui64 = Eui64([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0x00, 0x12, 0xab]);
const GATEWAY: Eui64 = Eui64([0xa8, 0x40, 0x41, 0xff, 0xfe, 0x00, 0x00, 0x01]);

fn device_info() -> DeviceInfo {
    DeviceInfo {
        tenant_id: Uuid::from_u128(0x52f1_4cd4_c6f1_4fbd_8f87_4025_e1d4_9242),
        tenant_name: "Acme Farms".into(),
        application_id: Uuid::from_u128(0x1761_0b6f_2c5b_4fdd_a5e2_8d7a_c2bf_de01),
        application_name: "Soil sensors".into(),
        device_profile_id: Uuid::from_u128(0x0a38_2f30_f7b6_4d5d_9a12_7c0e_3b1d_44aa),
        device_profile_name: "EU868 class A".into(),
        device_name: "field-7".into(),
        dev_eui: DEV_EUI,
        device_class_enabled: DeviceClass::ClassA,
        tags: BTreeMap::from([("site".to_owned(), "north".to_owned())]),
    }
}

/// "Now" for events stamped with the processing time (a fixed instant: pure code).
fn now() -> SystemTime {
    at(60_000)
}

/// 2024-05-01T12:00:00Z plus `millis`.
fn at(millis: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_564_800) + Duration::from_millis(millis)
}

/// A reception with every optional field set.
fn full_rx() -> RxInfo {
    RxInfo {
        gateway_id: GATEWAY,
        uplink_id: 4_021_117_432,
        tmst: 3_512_348_611,
        gw_time: Some(at(12)),
        time_since_gps_epoch_ms: Some(1_398_599_218_012),
        ns_time: at(48),
        rssi_dbm: -57,
        snr_db: Some(9.25),
        channel: 2,
        rf_chain: 1,
        antenna: 0,
        board: 0,
        location: Some(Location {
            latitude: 52.3702,
            longitude: 4.8952,
            altitude_m: 10.5,
        }),
    }
}

/// A reception with none of the optional fields, and no SNR (FSK).
fn bare_rx() -> RxInfo {
    RxInfo {
        gateway_id: Eui64([0, 0, 0, 0, 0, 0, 0, 2]),
        uplink_id: 7,
        tmst: 0,
        gw_time: None,
        time_since_gps_epoch_ms: None,
        ns_time: at(0),
        rssi_dbm: -120,
        snr_db: None,
        channel: 0,
        rf_chain: 0,
        antenna: 1,
        board: 1,
        location: None,
    }
}

fn lora_tx(code_rate: Option<u8>) -> TxInfo {
    TxInfo {
        frequency_hz: 868_100_000,
        modulation: Modulation::lora(7, 125_000),
        code_rate,
    }
}

fn uplink(
    f_port: Option<u8>,
    frm_payload: &[u8],
    rx_info: Vec<RxInfo>,
    tx_info: TxInfo,
) -> UpEvent {
    UpEvent {
        dev_eui: DEV_EUI,
        dev_addr: DevAddr([0x26, 0x01, 0x1b, 0xda]),
        deduplication_id: Uuid::from_u128(0x9c5f_1a3e_7d21_4b0e_a3c4_2f6d_8e9b_1c20),
        f_cnt: 4_294_967_295,
        f_port,
        frm_payload: frm_payload.to_vec(),
        app_s_key: Aes128Key::from_bytes([0x2b; 16]),
        confirmed: true,
        adr: true,
        dr: 5,
        tx_info,
        rx_info,
    }
}

/// An `up` as the server builds it: decrypted, decoded to `object`.
fn up_with_object() -> IntegrationEvent {
    let up = uplink(
        Some(10),
        &[0x01, 0x02, 0x03, 0x04, 0x05],
        vec![full_rx(), bare_rx()],
        lora_tx(Some(5)),
    );
    let data = decrypt_uplink_payload(&up);
    assert_eq!(data.len(), 5);
    let object =
        json!({"temperature": 21.5, "humidity": 40, "alarm": false, "nested": {"a": [1, 2]}});
    up_event(&up, device_info(), &data, Some(object), "eu868", now())
}

#[test]
fn up_event_json_is_the_up_event_body_as_text() {
    // The server stores and delivers the text form; it must be the same event.
    for (f_port, payload, object) in [
        (
            Some(10),
            &[0x01u8, 0x02, 0x03][..],
            Some(json!({"t": 21.5, "n": [1, 2]})),
        ),
        (None, &[][..], None),
    ] {
        let up = uplink(
            f_port,
            payload,
            vec![full_rx(), bare_rx()],
            lora_tx(Some(5)),
        );
        let data = decrypt_uplink_payload(&up);
        let text = up_event_json(&up, device_info(), &data, object.clone(), "eu868", now());
        let value = up_event(&up, device_info(), &data, object, "eu868", now()).body;
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }
}

/// An `up` without FPort (and so without data or object).
fn up_bare() -> IntegrationEvent {
    let up = uplink(None, &[], vec![bare_rx()], lora_tx(None));
    let data = decrypt_uplink_payload(&up);
    assert!(data.is_empty());
    up_event(&up, device_info(), &data, None, "eu868", now())
}

fn join() -> IntegrationEvent {
    let ev = Event::Join {
        dev_eui: DEV_EUI,
        dev_addr: DevAddr([0x01, 0x2a, 0xbc, 0xde]),
        deduplication_id: Uuid::from_u128(0x11),
        rx_info: vec![full_rx()],
        tx_info: lora_tx(Some(5)),
    };
    build(&ev)
}

fn ack(acknowledged: bool) -> IntegrationEvent {
    build(&Event::Ack {
        dev_eui: DEV_EUI,
        deduplication_id: Uuid::from_u128(0x22),
        queue_item_id: Uuid::from_u128(0x33),
        acknowledged,
        f_cnt_down: 17,
    })
}

fn txack(queue_item_id: Option<Uuid>, modulation: Modulation) -> IntegrationEvent {
    build(&Event::TxAck {
        dev_eui: DEV_EUI,
        downlink_id: DownlinkId(3_000_000_001),
        queue_item_id,
        f_cnt_down: 18,
        gateway_id: GATEWAY,
        frequency_hz: 869_525_000,
        modulation,
        tx_power_eirp_dbm: 27,
    })
}

fn status(margin_db: i8, battery_level_percent: Option<f32>) -> IntegrationEvent {
    build(&Event::Status {
        dev_eui: DEV_EUI,
        deduplication_id: Uuid::from_u128(0x44),
        margin_db,
        external_power_source: battery_level_percent.is_none(),
        battery_level_unavailable: battery_level_percent.is_none(),
        battery_level_percent,
    })
}

const LOG_CODES: [LogCode; 10] = [
    LogCode::UplinkFCntRetransmission,
    LogCode::UplinkFCntReset,
    LogCode::UplinkMic,
    LogCode::Otaa,
    LogCode::DownlinkPayloadSize,
    LogCode::DownlinkGateway,
    LogCode::FCntDown,
    LogCode::Expired,
    LogCode::DownlinkCodec,
    LogCode::MacCommand,
];

fn ns_log(level: LogLevel, code: LogCode, context: BTreeMap<String, String>) -> IntegrationEvent {
    build(&Event::Log {
        dev_eui: DEV_EUI,
        level,
        code,
        description: "something happened to the device".into(),
        context,
    })
}

/// The application side's codec-error log, as the server raises it.
fn codec_log() -> IntegrationEvent {
    app_log_event(
        device_info(),
        LogLevel::Error,
        "UPLINK_CODEC",
        "decoding the uplink failed: ReferenceError: x is not defined".into(),
        BTreeMap::from([
            (
                "deduplication_id".to_owned(),
                Uuid::from_u128(0x55).to_string(),
            ),
            ("f_cnt".to_owned(), "12".to_owned()),
        ]),
        at(999),
    )
}

fn alert(firing: bool) -> IntegrationEvent {
    let fired_at = chrono::DateTime::from_timestamp(1_800_000_000, 123_000_000).expect("a time");
    lorikeet_app::alert::AlertEventJson {
        id: Uuid::from_u128(0xa1),
        time: fired_at + chrono::TimeDelta::seconds(if firing { 0 } else { 90 }),
        device_info: device_info(),
        rule_id: Uuid::from_u128(0xa2),
        rule_name: "cold room too warm".into(),
        kind: "field",
        state: if firing { "firing" } else { "resolved" },
        subject: DEV_EUI.to_string(),
        message: "object.temperature > 8 is true (object.temperature = 9.5)".into(),
        fired_at,
        resolved_at: (!firing).then(|| fired_at + chrono::TimeDelta::seconds(90)),
    }
    .event()
}

fn build(ev: &Event) -> IntegrationEvent {
    other_event(ev, device_info(), at(1_500)).expect("not an up event")
}

/// One event of every emitted type, with as many optional fields set as possible.
fn full_samples() -> Vec<IntegrationEvent> {
    vec![
        up_with_object(),
        join(),
        ack(true),
        txack(Some(Uuid::from_u128(0x66)), Modulation::lora(9, 125_000)),
        status(-3, Some(87.5)),
        codec_log(),
        alert(false),
    ]
}

/// One event of every emitted type with every optional field left out.
fn minimal_samples() -> Vec<IntegrationEvent> {
    vec![
        up_bare(),
        join(),
        ack(false),
        txack(None, Modulation::lora(12, 125_000)),
        status(0, None),
        ns_log(LogLevel::Info, LogCode::Otaa, BTreeMap::new()),
        alert(true),
    ]
}

fn all_samples() -> Vec<IntegrationEvent> {
    let mut v = full_samples();
    v.extend(minimal_samples());
    v
}

// ---- the schema files -----------------------------------------------------------

#[test]
fn every_schema_file_is_a_valid_schema_and_every_event_type_has_one() {
    let mut stems = BTreeSet::new();
    for entry in std::fs::read_dir(schema_dir()).expect("schemas/events exists") {
        let path = entry.expect("readable directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable schema");
        let schema: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema",
            "{} must declare draft 2020-12",
            path.display()
        );
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("{} is not a valid schema: {e}", path.display());
        }
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{} does not compile: {e}", path.display()));
        assert_eq!(schema["type"], "object", "{}", path.display());
        assert_eq!(
            schema["additionalProperties"],
            false,
            "{} must refuse unknown fields",
            path.display()
        );
        assert_eq!(
            schema["$defs"]["deviceInfo"]["additionalProperties"],
            false,
            "{} deviceInfo must refuse unknown fields",
            path.display()
        );
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("UTF-8 file name")
            .to_owned();
        stems.insert(stem);
    }
    let expected: BTreeSet<String> = emitted_types()
        .into_iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    assert_eq!(stems, expected, "one schema file per emitted event type");
}

#[test]
fn shared_definitions_are_identical_in_every_file() {
    let reference = load_schema(EventType::Up);
    let shared = [
        "deviceInfo",
        "uuid",
        "eui64",
        "devAddr",
        "time",
        "base64",
        "uint32",
        "stringMap",
        "fskModulation",
    ];
    for kind in emitted_types() {
        let schema = load_schema(kind);
        let defs = schema["$defs"].as_object().expect("$defs");
        for name in shared {
            if let Some(def) = defs.get(name) {
                assert_eq!(
                    def, &reference["$defs"][name],
                    "$defs/{name} in {kind}.json differs from up.json"
                );
            }
        }
        assert!(
            defs.contains_key("deviceInfo"),
            "{kind}.json defines deviceInfo"
        );
    }
}

/// `required` must be exactly what is always written: the fields of the smallest
/// event of each type.
#[test]
fn required_fields_are_the_fields_always_emitted() {
    for ev in minimal_samples() {
        let schema = load_schema(ev.kind);
        let required: BTreeSet<&str> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .map(|v| v.as_str().expect("field name"))
            .collect();
        let emitted: BTreeSet<&str> = ev
            .body
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(required, emitted, "{}: required vs always emitted", ev.kind);
        let info = &ev.body["deviceInfo"];
        let info_keys: BTreeSet<&str> = info
            .as_object()
            .expect("deviceInfo")
            .keys()
            .map(String::as_str)
            .collect();
        let info_required: BTreeSet<&str> = schema["$defs"]["deviceInfo"]["required"]
            .as_array()
            .expect("deviceInfo required")
            .iter()
            .map(|v| v.as_str().expect("field name"))
            .collect();
        assert_eq!(info_required, info_keys, "{}: deviceInfo", ev.kind);
    }
}

// ---- real events match ----------------------------------------------------------

#[test]
fn up_with_object_matches() {
    let ev = up_with_object();
    assert_eq!(ev.kind, EventType::Up);
    assert_eq!(ev.body["fPort"], 10);
    assert!(ev.body["object"].is_object());
    assert!(ev.body["rxInfo"][0]["location"].is_object());
    assert!(ev.body["rxInfo"][0]["gwTime"].is_string());
    assert!(ev.body["rxInfo"][0]["timeSinceGpsEpoch"].is_string());
    assert_eq!(
        ev.body["txInfo"]["modulation"]["lora"]["codeRate"],
        "CR_4_5"
    );
    assert_valid(&ev);
}

#[test]
fn up_without_fport_or_object_matches() {
    let ev = up_bare();
    let body = ev.body.as_object().expect("object");
    assert!(!body.contains_key("fPort"));
    assert!(!body.contains_key("object"));
    assert_eq!(ev.body["data"], "");
    assert!(ev.body["rxInfo"][0].get("gwTime").is_none());
    assert!(ev.body["txInfo"]["modulation"]["lora"]
        .get("codeRate")
        .is_none());
    assert_valid(&ev);
}

#[test]
fn up_on_port_zero_and_every_uplink_modulation_matches() {
    let modulations = [
        lora_tx(Some(8)),
        TxInfo {
            frequency_hz: 868_800_000,
            modulation: Modulation::Fsk {
                bit_rate_bps: 50_000,
            },
            code_rate: None,
        },
        TxInfo {
            frequency_hz: 868_130_000,
            modulation: Modulation::LrFhss {
                coding_rate: LrFhssCodingRate::TwoThirds,
                occupied_channel_width_hz: 137_000,
            },
            code_rate: None,
        },
    ];
    for tx in modulations {
        let up = uplink(Some(0), &[0x03, 0x05], vec![bare_rx()], tx);
        let ev = up_event(
            &up,
            device_info(),
            &decrypt_uplink_payload(&up),
            None,
            "eu868",
            now(),
        );
        assert_valid(&ev);
    }
}

#[test]
fn join_matches() {
    assert_valid(&join());
}

#[test]
fn ack_matches() {
    assert_valid(&ack(true));
    assert_valid(&ack(false));
}

#[test]
fn txack_matches() {
    let with_item = txack(Some(Uuid::from_u128(0x77)), Modulation::lora(7, 125_000));
    assert_eq!(with_item.body["txInfo"]["power"], 27);
    assert_valid(&with_item);
    let without_item = txack(None, Modulation::lora(12, 125_000));
    assert!(without_item.body.get("queueItemId").is_none());
    assert_valid(&without_item);
    assert_valid(&txack(
        None,
        Modulation::Fsk {
            bit_rate_bps: 50_000,
        },
    ));
}

#[test]
fn status_matches() {
    assert_valid(&status(-32, Some(100.0)));
    assert_valid(&status(31, Some(0.0)));
    assert_valid(&status(7, None));
}

#[test]
fn log_matches_for_every_level_and_code() {
    for (i, code) in LOG_CODES.into_iter().enumerate() {
        let level = [LogLevel::Info, LogLevel::Warning, LogLevel::Error][i % 3];
        let context = BTreeMap::from([("f_cnt".to_owned(), i.to_string())]);
        assert_valid(&ns_log(level, code, context));
    }
    assert_valid(&codec_log());
}

#[test]
fn every_sample_has_the_kind_its_schema_is_for() {
    let kinds: BTreeSet<&str> = all_samples().iter().map(|e| e.kind.as_str()).collect();
    let expected: BTreeSet<&str> = emitted_types().into_iter().map(EventType::as_str).collect();
    assert_eq!(kinds, expected);
    for ev in all_samples() {
        assert_valid(&ev);
    }
}

// ---- the schemas are not vacuous --------------------------------------------------

/// A value of a different JSON type than `v`.
fn wrong_type(v: &Value) -> Value {
    match v {
        Value::String(_) => json!(12345),
        Value::Number(_) => json!("12345"),
        Value::Bool(b) => json!(if *b { "true" } else { "false" }),
        Value::Object(_) | Value::Array(_) | Value::Null => json!("x"),
    }
}

fn renamed_to_snake_case(key: &str) -> String {
    let mut out = String::new();
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    if out == key {
        out.push('_');
    }
    out
}

#[test]
fn renaming_any_field_fails() {
    for ev in all_samples() {
        let obj = ev.body.as_object().expect("object");
        for key in obj.keys() {
            let mut body = ev.body.clone();
            let map = body.as_object_mut().expect("object");
            let v = map.remove(key).expect("present");
            map.insert(renamed_to_snake_case(key), v);
            assert_invalid(ev.kind, &body, &format!("{key} renamed"));
        }
        let info = ev.body["deviceInfo"].as_object().expect("deviceInfo");
        for key in info.keys() {
            let mut body = ev.body.clone();
            let map = body["deviceInfo"].as_object_mut().expect("deviceInfo");
            let v = map.remove(key).expect("present");
            map.insert(renamed_to_snake_case(key), v);
            assert_invalid(ev.kind, &body, &format!("deviceInfo.{key} renamed"));
        }
    }
}

#[test]
fn a_wrong_type_in_any_field_fails() {
    for ev in all_samples() {
        for (key, value) in ev.body.as_object().expect("object") {
            let mut body = ev.body.clone();
            body[key.as_str()] = wrong_type(value);
            assert_invalid(ev.kind, &body, &format!("{key} of the wrong type"));
        }
        for (key, value) in ev.body["deviceInfo"].as_object().expect("deviceInfo") {
            let mut body = ev.body.clone();
            body["deviceInfo"][key.as_str()] = wrong_type(value);
            assert_invalid(
                ev.kind,
                &body,
                &format!("deviceInfo.{key} of the wrong type"),
            );
        }
    }
    let up = up_with_object();
    for (key, value) in up.body["rxInfo"][0].as_object().expect("rxInfo[0]") {
        let mut body = up.body.clone();
        body["rxInfo"][0][key.as_str()] = wrong_type(value);
        assert_invalid(
            EventType::Up,
            &body,
            &format!("rxInfo[0].{key} of the wrong type"),
        );
    }
}

#[test]
fn dropping_a_required_field_fails() {
    for ev in minimal_samples() {
        for key in ev.body.as_object().expect("object").keys() {
            let mut body = ev.body.clone();
            body.as_object_mut().expect("object").remove(key);
            assert_invalid(ev.kind, &body, &format!("no {key}"));
        }
    }
}

/// Changes one thing in an event body.
type Mutation = fn(&mut Value);

#[test]
fn malformed_values_fail() {
    let up = up_with_object().body;
    let cases: &[(&str, Mutation)] = &[
        ("a 15-digit devEui", |b| {
            b["deviceInfo"]["devEui"] = json!("70b3d57ed00012a")
        }),
        ("an upper-case devEui", |b| {
            b["deviceInfo"]["devEui"] = json!("70B3D57ED00012AB")
        }),
        ("a devAddr of 6 digits", |b| b["devAddr"] = json!("26011b")),
        ("a time that is not RFC 3339", |b| {
            b["time"] = json!("2024-05-01 12:00:00")
        }),
        ("a time with an impossible date", |b| {
            b["time"] = json!("2024-13-45T12:00:00Z")
        }),
        ("a deduplicationId that is not a UUID", |b| {
            b["deduplicationId"] = json!("not-a-uuid")
        }),
        ("data that is not base64", |b| b["data"] = json!("AQID!")),
        ("data with bad padding", |b| b["data"] = json!("AQI")),
        ("a negative fCnt", |b| b["fCnt"] = json!(-1)),
        ("an fCnt above 32 bits", |b| {
            b["fCnt"] = json!(4_294_967_296_u64)
        }),
        ("a fractional fCnt", |b| b["fCnt"] = json!(1.5)),
        ("fPort 256", |b| b["fPort"] = json!(256)),
        ("an object that is an array", |b| {
            b["object"] = json!([1, 2])
        }),
        ("no rxInfo entries", |b| b["rxInfo"] = json!([])),
        ("an rxInfo entry that is a string", |b| {
            b["rxInfo"][0] = json!("gw")
        }),
        ("a renamed rxInfo field", |b| {
            let rx = b["rxInfo"][0].as_object_mut().expect("rxInfo[0]");
            let v = rx.remove("gatewayId").expect("gatewayId");
            rx.insert("gatewayID".into(), v);
        }),
        ("an unknown crcStatus", |b| {
            b["rxInfo"][0]["crcStatus"] = json!("BAD_CRC")
        }),
        ("two modulations at once", |b| {
            b["txInfo"]["modulation"]["fsk"] = json!({"datarate": 50000})
        }),
        ("an unknown modulation", |b| {
            b["txInfo"]["modulation"] = json!({"chirp": {}})
        }),
        ("spreading factor 13", |b| {
            b["txInfo"]["modulation"]["lora"]["spreadingFactor"] = json!(13)
        }),
        ("an unknown code rate", |b| {
            b["txInfo"]["modulation"]["lora"]["codeRate"] = json!("4/5")
        }),
        ("a renamed bandwidth", |b| {
            let lora = b["txInfo"]["modulation"]["lora"]
                .as_object_mut()
                .expect("lora");
            let v = lora.remove("bandwidth").expect("bandwidth");
            lora.insert("bw".into(), v);
        }),
        ("power on an uplink", |b| b["txInfo"]["power"] = json!(14)),
        ("an unknown device class", |b| {
            b["deviceInfo"]["deviceClassEnabled"] = json!("A")
        }),
        ("a tag that is a number", |b| {
            b["deviceInfo"]["tags"]["site"] = json!(1)
        }),
        ("an extra top-level field", |b| b["extra"] = json!(true)),
        ("an extra deviceInfo field", |b| {
            b["deviceInfo"]["devAddr"] = json!("26011bda")
        }),
        ("an empty regionConfigId", |b| {
            b["regionConfigId"] = json!("")
        }),
    ];
    for &(what, mutate) in cases {
        let mut body = up.clone();
        mutate(&mut body);
        assert_ne!(body, up, "{what}: the mutation changed nothing");
        assert_invalid(EventType::Up, &body, what);
    }

    let mut tx = txack(None, Modulation::lora(7, 125_000)).body;
    tx["txInfo"]
        .as_object_mut()
        .expect("txInfo")
        .remove("power");
    assert_invalid(EventType::Txack, &tx, "no txInfo.power");
    let mut tx = txack(None, Modulation::lora(7, 125_000)).body;
    tx["txInfo"]["modulation"] =
        json!({"lrFhss": {"operatingChannelWidth": 137000, "codeRate": "CR_2_3"}});
    assert_invalid(EventType::Txack, &tx, "an LR-FHSS downlink");

    let mut st = status(0, Some(50.0)).body;
    st["margin"] = json!(32);
    assert_invalid(EventType::Status, &st, "margin 32");
    let mut st = status(0, Some(50.0)).body;
    st["batteryLevel"] = json!(101);
    assert_invalid(EventType::Status, &st, "battery 101 %");

    let mut log = codec_log().body;
    log["level"] = json!("DEBUG");
    assert_invalid(EventType::Log, &log, "level DEBUG");
    let mut log = codec_log().body;
    log["code"] = json!("uplink codec");
    assert_invalid(EventType::Log, &log, "a code that is not UPPER_SNAKE");
    let mut log = codec_log().body;
    log["context"]["f_cnt"] = json!(12);
    assert_invalid(EventType::Log, &log, "a context value that is a number");

    // An event checked against another type's schema fails: the files are not
    // interchangeable.
    assert_invalid(EventType::Join, &up, "an up event");
    assert_invalid(EventType::Ack, &join().body, "a join event");
}
