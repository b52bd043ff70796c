//! The bodies of the `cayenne` and `js_codec` cargo-fuzz targets (`fuzz/`, a
//! separate nightly-only workspace), kept here so that the stable test suite runs
//! exactly the same code over the committed seed corpus (`tests/fuzz_corpus.rs`).
//! Not an API: they panic when an invariant does not hold, which is what a fuzzer
//! needs and nothing else does, and return whether the input was accepted (so the
//! seed test can tell that its seeds reach the invariants).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::{cayenne, CodecLimits, DownlinkInput, JsEngine, UplinkInput, MAX_DEPTH};

/// `cayenne`: [`cayenne::decode`] never panics on any payload, and what it decodes
/// encodes back to a payload that decodes to the same object (and re-encodes to the
/// same bytes). When the input is JSON, [`cayenne::encode`] never panics on it
/// either, and what it encodes decodes to an object that encodes to the same bytes.
pub fn cayenne(data: &[u8]) -> bool {
    let mut accepted = false;
    if let Ok(object) = cayenne::decode(data) {
        accepted = true;
        let bytes = cayenne::encode(&object)
            .unwrap_or_else(|e| panic!("decoded object {object} does not encode: {e}"));
        let again = cayenne::decode(&bytes).expect("an encoded payload decodes");
        assert_eq!(again, object, "decode→encode→decode changed the object");
        assert_eq!(
            cayenne::encode(&again).expect("re-encodes"),
            bytes,
            "the encoding is not stable"
        );
    }
    if let Ok(object) = serde_json::from_slice::<Value>(data) {
        if let Ok(bytes) = cayenne::encode(&object) {
            accepted = true;
            let decoded = cayenne::decode(&bytes)
                .unwrap_or_else(|e| panic!("encoding of {object} does not decode: {e}"));
            assert_eq!(
                cayenne::encode(&decoded).expect("a decoded object encodes"),
                bytes,
                "encode→decode→encode changed the payload"
            );
        }
    }
    accepted
}

/// The script of the `js_codec` target: a small interpreter whose program is the
/// payload, so that the fuzzer steers what the script returns — every JSON-able and
/// un-JSON-able kind of value (NaN, -0, lone surrogates, BigInt, invalid dates,
/// functions, cycles, deep nesting, odd keys), warnings, errors and exceptions — and
/// through that the conversion of script results into JSON. `encodeDownlink` is
/// steered by the queued object (the rest of the input, when it is JSON).
pub const JS_SCRIPT: &str = r#"
function decodeUplink(input) {
  var b = input.bytes, i = 0, n = 0, warnings = [], root = {}, stack = [root];
  function u8() { return i < b.length ? b[i++] : 0; }
  function u16() { return (u8() << 8) | u8(); }
  function str(len) { var s = ''; for (var k = 0; k < len; k++) s += String.fromCharCode(u16()); return s; }
  function put(v) {
    var cur = stack[stack.length - 1];
    if (Array.isArray(cur)) cur.push(v); else cur['k' + (n++ % 8)] = v;
  }
  while (i < b.length && i < 256) {
    var op = u8();
    switch (op & 15) {
      case 0: put(u8()); break;
      case 1: put((u16() << 16) | u16()); break;
      case 2: { var dv = new DataView(new ArrayBuffer(8)); for (var k = 0; k < 8; k++) dv.setUint8(k, u8()); put(dv.getFloat64(0)); break; }
      case 3: put(str(op >> 4)); break;
      case 4: put(Buffer.from(b.slice(i, i + (op >> 4))).toString(['utf8', 'hex', 'base64', 'latin1'][op >> 6])); i += op >> 4; break;
      case 5: { var o = {}; put(o); if (stack.length < 80) stack.push(o); break; }
      case 6: { var a = []; put(a); if (stack.length < 80) stack.push(a); break; }
      case 7: if (stack.length > 1) stack.pop(); break;
      case 8: put(BigInt(u16()) ** BigInt(op >> 4) * (op & 128 ? -1n : 1n)); break;
      case 9: put(new Date(((u16() << 16) | u16()) * (op >> 4) * 1e6)); break;
      case 10: put([undefined, null, true, false, function () {}, Symbol('s'), -0, 1 / 0][op >> 5]); break;
      case 11: warnings.push(str(op >> 4)); break;
      case 12: put(stack[stack.length - 1]); break;
      case 13: if (op & 16) return { errors: [str(op >> 5)] }; return { data: root, warnings: str(1), errors: [] };
      case 14: { var key = str(op >> 4); stack[stack.length - 1][key] = u8(); break; }
      case 15: if (op & 16) throw new Error(str(op >> 5)); return (op & 32) ? root : { data: [root] };
    }
  }
  return { data: root, warnings: warnings };
}

function encodeDownlink(input) {
  var d = input.data, out = [];
  function walk(v, depth) {
    if (out.length > 300 || depth > 70) return;
    if (typeof v === 'number') out.push(v & 255);
    else if (typeof v === 'string') for (var k = 0; k < v.length && k < 64; k++) out.push(v.charCodeAt(k) & 255);
    else if (typeof v === 'boolean') out.push(v ? 1 : 0);
    else if (v && typeof v === 'object') for (var key in v) walk(v[key], depth + 1);
  }
  walk(d, 0);
  var r = { bytes: out };
  if (d && typeof d === 'object' && !Array.isArray(d)) {
    if ('bytes' in d) r.bytes = d.bytes;
    if ('fPort' in d) r.fPort = d.fPort;
    if ('warnings' in d) r.warnings = d.warnings;
    if ('errors' in d) r.errors = d.errors;
    if ('throw' in d) throw d['throw'];
    if ('ret' in d) return d.ret;
  }
  return r;
}
"#;

/// The engine the `js_codec` target runs [`JS_SCRIPT`] in: default limits but a
/// shorter time budget, so a slow input costs the fuzzer little.
pub fn js_engine() -> JsEngine {
    JsEngine::new(CodecLimits {
        time: Duration::from_millis(50),
        ..CodecLimits::default()
    })
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// `js_codec`: the JavaScript codec runner never panics on any payload given to
/// [`JS_SCRIPT`]'s `decodeUplink` (the first byte is the FPort, the rest the
/// payload), nor on any JSON object given to its `encodeDownlink` (the input after
/// the first byte, when it parses). What it returns keeps the documented limits:
/// a decoded `object` is a JSON object of at most [`MAX_DEPTH`] levels; encoded
/// bytes come with an FPort in 1..=223 or none.
pub fn js_codec(engine: &mut JsEngine, data: &[u8]) -> bool {
    let Some((&f_port, payload)) = data.split_first() else {
        return false;
    };
    let mut accepted = false;
    let input = UplinkInput {
        bytes: payload.to_vec(),
        f_port,
        recv_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        variables: BTreeMap::from([("calibration".to_owned(), "1.5".to_owned())]),
    };
    if let Ok(decoded) = engine.decode_uplink(JS_SCRIPT, &input) {
        accepted = true;
        assert!(decoded.object.is_object(), "{}", decoded.object);
        assert!(depth(&decoded.object) <= MAX_DEPTH + 1, "too deep");
    }
    if let Ok(object) = serde_json::from_slice::<Value>(payload) {
        let input = DownlinkInput {
            object,
            f_port: (f_port != 0).then_some(f_port),
            variables: BTreeMap::new(),
        };
        if let Ok(encoded) = engine.encode_downlink(JS_SCRIPT, &input) {
            accepted = true;
            if let Some(p) = encoded.f_port {
                assert!(
                    (1..=223).contains(&p) || Some(p) == input.f_port,
                    "fPort {p}"
                );
            }
        }
    }
    accepted
}
