//! The example codecs in `examples/codecs/` load and decode what their README says.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use lorikeet_codec::{CodecLimits, DownlinkInput, JsEngine, UplinkInput};
use serde_json::json;

fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/codecs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn uplink(bytes: &[u8], f_port: u8) -> UplinkInput {
    UplinkInput {
        bytes: bytes.to_vec(),
        f_port,
        recv_time: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        variables: BTreeMap::new(),
    }
}

#[test]
fn every_example_loads_and_defines_decode_uplink() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/codecs");
    let mut engine = JsEngine::new(CodecLimits::default());
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/codecs exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "js") {
            let script = std::fs::read_to_string(&path).expect("readable");
            let info = engine
                .check(&script)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(info.decode_uplink, "{} has no decodeUplink", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 2, "expected the example codecs, found {seen}");
}

#[test]
fn temperature_humidity_matches_its_readme() {
    let script = example("temperature-humidity.js");
    let mut engine = JsEngine::new(CodecLimits::default());
    let out = engine
        .decode_uplink(&script, &uplink(&[0x09, 0xc4, 0x78, 0x0b, 0x54], 1))
        .expect("decodes");
    assert_eq!(
        out.object,
        json!({"temperature": 25, "humidity": 60, "batteryMv": 2900, "receivedAt": "2023-11-14T22:13:20.000Z"})
    );
    assert_eq!(out.warnings, vec!["battery low: 2900 mV".to_owned()]);

    let mut input = uplink(&[0x09, 0xc4, 0x78, 0x0f, 0xa0], 1);
    input
        .variables
        .insert("temperatureOffset".into(), "-0.5".into());
    let out = engine.decode_uplink(&script, &input).expect("decodes");
    assert_eq!(out.object["temperature"], json!(24.5));
    assert!(out.warnings.is_empty());

    let err = engine
        .decode_uplink(&script, &uplink(&[1, 2], 1))
        .expect_err("short");
    assert_eq!(
        err.to_string(),
        "decodeUplink returned errors: expected 5 bytes, got 2"
    );

    let encoded = engine
        .encode_downlink(
            &script,
            &DownlinkInput {
                object: json!({"intervalMinutes": 300}),
                f_port: None,
                variables: BTreeMap::new(),
            },
        )
        .expect("encodes");
    assert_eq!(
        (encoded.bytes, encoded.f_port),
        (vec![0x01, 0x01, 0x2c], Some(2))
    );
}

#[test]
fn gps_tracker_matches_its_readme() {
    let script = example("gps-tracker.js");
    let mut engine = JsEngine::new(CodecLimits::default());
    let bytes = [
        0x03, 0x19, 0x3e, 0x64, 0xe0, 0x00, 0x75, 0x5a, 0x28, 0x00, 0x23,
    ];
    let out = engine
        .decode_uplink(&script, &uplink(&bytes, 10))
        .expect("decodes");
    assert_eq!(
        out.object,
        json!({"fix": true, "moving": true, "location": {"latitude": 42.3519456, "longitude": 0.7690792, "altitude": 35}})
    );
    let out = engine
        .decode_uplink(&script, &uplink(&[0], 10))
        .expect("no fix");
    assert_eq!(out.object, json!({"fix": false, "moving": false}));
    let err = engine
        .decode_uplink(&script, &uplink(&[1, 0], 10))
        .expect_err("short fix");
    assert_eq!(
        err.to_string(),
        "decodeUplink threw: RangeError: a fix needs 11 bytes, got 2"
    );
}
