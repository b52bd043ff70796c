use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

#[derive(serde::Deserialize)]
struct Vector {
    source: String,
    hex: String,
    object: Value,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("../../testdata/cayenne_lpp.json");
    serde_json::from_str(text).expect("testdata/cayenne_lpp.json parses")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn vectors_decode_and_encode_back() {
    for (i, v) in vectors().iter().enumerate() {
        let bytes = unhex(&v.hex);
        let decoded = decode(&bytes)
            .unwrap_or_else(|e| panic!("vector {i} ({}): decode failed: {e}", v.source));
        assert_eq!(
            decoded, v.object,
            "vector {i} ({}): decoded object",
            v.source
        );
        let encoded = encode(&v.object)
            .unwrap_or_else(|e| panic!("vector {i} ({}): encode failed: {e}", v.source));
        assert_eq!(encoded, bytes, "vector {i} ({}): encoded bytes", v.source);
    }
}

#[test]
fn vectors_cover_every_type() {
    let seen: HashSet<u8> = vectors()
        .iter()
        .flat_map(|v| {
            let bytes = unhex(&v.hex);
            let mut ids = Vec::new();
            let mut i = 0;
            while i + 1 < bytes.len() {
                ids.push(bytes[i + 1]);
                i += 2 + LppType::from_id(bytes[i + 1]).map_or(0, LppType::size);
            }
            ids
        })
        .collect();
    for t in LppType::ALL {
        assert!(seen.contains(&t.id()), "{t:?} has no test vector");
    }
}

#[test]
fn table_is_consistent() {
    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    for t in LppType::ALL {
        assert!(ids.insert(t.id()), "duplicate id {}", t.id());
        assert!(keys.insert(t.key()), "duplicate key {}", t.key());
        assert_eq!(LppType::from_id(t.id()), Some(t));
        assert_eq!(LppType::from_key(t.key()), Some(t));
    }
    // ALL is in wire-id order, which is also the encoding order.
    assert!(LppType::ALL.windows(2).all(|w| w[0].id() < w[1].id()));
}

#[test]
fn integral_values_print_without_fraction() {
    let v = decode(&[2, 104, 120]).expect("decodes");
    assert_eq!(v.to_string(), r#"{"humiditySensor":{"2":60}}"#);
}

#[test]
fn empty_payload_is_empty_object() {
    assert_eq!(decode(&[]), Ok(json!({})));
    assert_eq!(encode(&json!({})), Ok(vec![]));
}

#[test]
fn last_record_of_a_channel_wins() {
    assert_eq!(
        decode(&[1, 103, 0, 10, 1, 103, 0, 20]),
        Ok(json!({"temperatureSensor": {"1": 2}}))
    );
}

#[test]
fn truncated_header_names_offset() {
    assert_eq!(
        decode(&[1, 103, 0, 255, 7]),
        Err(CayenneError::TruncatedHeader { offset: 4 })
    );
}

#[test]
fn truncated_value_names_offset_type_and_sizes() {
    assert_eq!(
        decode(&[1, 103, 0, 255, 2, 136, 1, 2, 3]),
        Err(CayenneError::Truncated {
            offset: 4,
            channel: 2,
            type_id: 136,
            needed: 9,
            available: 3
        })
    );
    let err = decode(&[3, 103, 1]).expect_err("truncated");
    assert_eq!(
        err.to_string(),
        "truncated value at offset 0: type 103 on channel 3 needs 2 bytes, 1 left"
    );
}

#[test]
fn unknown_type_names_offset_and_type() {
    assert_eq!(
        decode(&[1, 0, 1, 9, 200, 0]),
        Err(CayenneError::UnknownType {
            offset: 3,
            channel: 9,
            type_id: 200
        })
    );
}

#[test]
fn encode_rejects_non_objects() {
    assert_eq!(
        encode(&json!([1, 2])),
        Err(CayenneError::NotAnObject { path: "$".into() })
    );
    assert_eq!(
        encode(&json!({"temperatureSensor": 21})),
        Err(CayenneError::NotAnObject {
            path: "temperatureSensor".into()
        })
    );
}

#[test]
fn encode_rejects_unknown_keys() {
    assert_eq!(
        encode(&json!({"temperature": {"1": 21}})),
        Err(CayenneError::UnknownKey {
            key: "temperature".into()
        })
    );
}

#[test]
fn encode_rejects_bad_channels() {
    for bad in ["256", "-1", "x", "03", ""] {
        assert_eq!(
            encode(&json!({"digitalOutput": {bad: 1}})),
            Err(CayenneError::InvalidChannel {
                key: "digitalOutput",
                channel: bad.into()
            }),
            "channel {bad:?}"
        );
    }
}

#[test]
fn encode_rejects_out_of_range_values() {
    assert_eq!(
        encode(&json!({"temperatureSensor": {"1": 3276.8}})),
        Err(CayenneError::OutOfRange {
            key: "temperatureSensor",
            channel: 1,
            field: None,
            value: 3276.8,
            min: -3276.8,
            max: 3276.7
        })
    );
    assert!(matches!(
        encode(&json!({"humiditySensor": {"1": -1}})),
        Err(CayenneError::OutOfRange { .. })
    ));
    assert!(matches!(
        encode(&json!({"gpsLocation": {"1": {"latitude": 900, "longitude": 0, "altitude": 0}}})),
        Err(CayenneError::OutOfRange {
            field: Some("latitude"),
            ..
        })
    ));
    assert!(matches!(
        encode(&json!({"colour": {"1": {"r": 256, "g": 0, "b": 0}}})),
        Err(CayenneError::OutOfRange {
            field: Some("r"),
            ..
        })
    ));
}

#[test]
fn encode_rejects_missing_and_non_numeric_fields() {
    assert_eq!(
        encode(&json!({"accelerometer": {"1": {"x": 1, "y": 2}}})),
        Err(CayenneError::InvalidValue {
            key: "accelerometer",
            channel: 1,
            field: Some("z"),
            reason: "missing"
        })
    );
    assert_eq!(
        encode(&json!({"analogOutput": {"1": "12"}})),
        Err(CayenneError::InvalidValue {
            key: "analogOutput",
            channel: 1,
            field: None,
            reason: "not a number"
        })
    );
    assert_eq!(
        encode(&json!({"gyrometer": {"1": 5}})),
        Err(CayenneError::InvalidValue {
            key: "gyrometer",
            channel: 1,
            field: None,
            reason: "expected an object"
        })
    );
}

#[test]
fn encode_rounds_to_resolution_and_accepts_booleans() {
    // 1.15 * 100 is 114.999… in binary floating point; truncation would give 114.
    assert_eq!(
        encode(&json!({"voltage": {"1": 1.15}})),
        Ok(vec![1, 116, 0, 115])
    );
    assert_eq!(
        encode(&json!({"digitalOutput": {"2": true}, "switch": {"3": false}})),
        Ok(vec![2, 1, 1, 3, 142, 0])
    );
}

#[test]
fn encode_orders_by_type_then_channel() {
    let obj = json!({
        "temperatureSensor": {"9": 1, "2": 2},
        "digitalInput": {"5": 1},
    });
    assert_eq!(
        encode(&obj),
        Ok(vec![5, 0, 1, 2, 103, 0, 20, 9, 103, 0, 10])
    );
}

fn lpp_type() -> impl Strategy<Value = LppType> {
    proptest::sample::select(LppType::ALL.to_vec())
}

proptest! {
    /// Hostile input never panics: it decodes or gives a typed error.
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode(&bytes);
    }

    /// Any well-framed payload with distinct (type, channel) pairs in encoding
    /// order survives decode → encode byte for byte, for every raw value.
    #[test]
    fn decode_then_encode_is_identity(
        records in proptest::collection::btree_map(
            (lpp_type().prop_map(|t| t.id()), any::<u8>()),
            proptest::collection::vec(any::<u8>(), 9),
            0..12,
        )
    ) {
        let mut payload = Vec::new();
        for ((type_id, channel), raw) in &records {
            let t = LppType::from_id(*type_id).expect("known id");
            payload.push(*channel);
            payload.push(*type_id);
            payload.extend_from_slice(&raw[..t.size()]);
        }
        let decoded = decode(&payload).expect("well-framed payload decodes");
        prop_assert_eq!(encode(&decoded).expect("decoded object encodes"), payload);
    }
}
