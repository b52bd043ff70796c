//! Engine tests: no tokio, no threads; one `JsEngine` driven directly.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value as Json};

use super::*;

fn engine() -> JsEngine {
    JsEngine::new(CodecLimits::default())
}

fn uplink(bytes: &[u8], f_port: u8) -> UplinkInput {
    UplinkInput {
        bytes: bytes.to_vec(),
        f_port,
        // 2014-07-08T09:10:11Z
        recv_time: UNIX_EPOCH + Duration::from_secs(1_404_810_611),
        variables: BTreeMap::from([("calibration".to_owned(), "-1.5".to_owned())]),
    }
}

fn downlink(object: Json, f_port: Option<u8>) -> DownlinkInput {
    DownlinkInput {
        object,
        f_port,
        variables: BTreeMap::new(),
    }
}

fn decode(e: &mut JsEngine, script: &str) -> Result<Decoded, CodecError> {
    e.decode_uplink(script, &uplink(&[1, 2, 3], 10))
}

/// `decodeUplink` returning `{data: <expr>}`, where `<expr>` may use `input`.
fn data_of(e: &mut JsEngine, expr: &str) -> Result<Json, CodecError> {
    let script = format!("function decodeUplink(input) {{ return {{ data: {expr} }}; }}");
    decode(e, &script).map(|d| d.object)
}

const TEMP_HUMIDITY: &str = r#"
// A typical sensor: int16 temperature in 0.01 °C, uint8 humidity in 0.5 %, uint16 battery mV.
function decodeUplink(input) {
  var b = input.bytes;
  if (b.length < 5) {
    return { errors: ["payload too short: " + b.length + " bytes"] };
  }
  var raw = (b[0] << 8) | b[1];
  if (raw & 0x8000) raw -= 0x10000;
  var warnings = [];
  var battery = (b[3] << 8) | b[4];
  if (battery < 3000) warnings.push("battery low");
  return {
    data: {
      temperature: raw / 100 + parseFloat(input.variables.calibration || "0"),
      humidity: b[2] / 2,
      batteryMv: battery
    },
    warnings: warnings
  };
}

function encodeDownlink(input) {
  var interval = input.data.intervalMinutes;
  if (typeof interval !== "number" || interval < 1 || interval > 1440) {
    return { errors: ["intervalMinutes must be 1..1440"] };
  }
  return { bytes: [0x01, (interval >> 8) & 0xff, interval & 0xff], fPort: 2 };
}
"#;

#[test]
fn decodes_a_realistic_sensor() {
    let mut e = engine();
    let out = e
        .decode_uplink(TEMP_HUMIDITY, &uplink(&[0x09, 0xC4, 120, 0x0B, 0x54], 1))
        .expect("decodes");
    assert_eq!(
        out.object,
        json!({"temperature": 23.5, "humidity": 60, "batteryMv": 2900})
    );
    assert_eq!(out.warnings, vec!["battery low".to_owned()]);
}

#[test]
fn tts_style_errors_are_codec_errors() {
    let mut e = engine();
    let err = e
        .decode_uplink(TEMP_HUMIDITY, &uplink(&[1, 2], 1))
        .expect_err("too short");
    assert_eq!(
        err,
        CodecError::ScriptErrors {
            stage: Stage::DecodeUplink,
            errors: vec!["payload too short: 2 bytes".into()]
        }
    );
}

#[test]
fn encodes_a_realistic_downlink() {
    let mut e = engine();
    let out = e
        .encode_downlink(
            TEMP_HUMIDITY,
            &downlink(json!({"intervalMinutes": 300}), Some(5)),
        )
        .expect("encodes");
    assert_eq!(
        out,
        Encoded {
            bytes: vec![1, 1, 44],
            f_port: Some(2),
            warnings: vec![]
        }
    );
    let err = e
        .encode_downlink(
            TEMP_HUMIDITY,
            &downlink(json!({"intervalMinutes": 0}), None),
        )
        .expect_err("out of range");
    assert!(matches!(
        err,
        CodecError::ScriptErrors {
            stage: Stage::EncodeDownlink,
            ..
        }
    ));
}

#[test]
fn input_has_the_payload_formatter_shape() {
    let mut e = engine();
    let object = data_of(
        &mut e,
        r#"{
            isArray: Array.isArray(input.bytes),
            typed: input.bytes instanceof Uint8Array,
            bytes: input.bytes,
            fPort: input.fPort,
            isDate: input.recvTime instanceof Date,
            recvTime: input.recvTime.toISOString(),
            variables: input.variables,
            keys: Object.keys(input).sort()
        }"#,
    )
    .expect("decodes");
    assert_eq!(
        object,
        json!({
            "isArray": true,
            "typed": false,
            "bytes": [1, 2, 3],
            "fPort": 10,
            "isDate": true,
            "recvTime": "2014-07-08T09:10:11.000Z",
            "variables": {"calibration": "-1.5"},
            "keys": ["bytes", "fPort", "recvTime", "variables"]
        })
    );
}

#[test]
fn chirpstack_style_data_only_has_no_warnings() {
    let mut e = engine();
    let out = decode(
        &mut e,
        "function decodeUplink(input) { return { data: { first: input.bytes[0] } }; }",
    )
    .expect("decodes");
    assert_eq!(out.object, json!({"first": 1}));
    assert!(out.warnings.is_empty());
}

#[test]
fn let_and_const_entry_points_are_found() {
    let mut e = engine();
    let out = decode(
        &mut e,
        "const decodeUplink = (input) => ({ data: { n: input.bytes.length } });",
    )
    .expect("const arrow function");
    assert_eq!(out.object, json!({"n": 3}));
    let out = decode(
        &mut e,
        "let decodeUplink = function (input) { return { data: {} }; };",
    )
    .expect("let function");
    assert_eq!(out.object, json!({}));
}

#[test]
fn encode_gets_data_variables_and_fport() {
    let mut e = engine();
    let script = r#"function encodeDownlink(input) {
        return { bytes: [input.data.nested.list[2], input.fPort, input.data.big > 1e15 ? 1 : 0,
                         Object.keys(input.variables).length] };
    }"#;
    let mut input = downlink(
        json!({"nested": {"list": [0, 0, 7]}, "big": 9_007_199_254_740_993u64}),
        Some(9),
    );
    input.variables.insert("a".into(), "b".into());
    let out = e.encode_downlink(script, &input).expect("encodes");
    assert_eq!(out.bytes, vec![7, 9, 1, 1]);
    assert_eq!(
        out.f_port,
        Some(9),
        "no fPort returned: the queued one is kept"
    );

    let out = e
        .encode_downlink(
            "function encodeDownlink() { return { bytes: [] }; }",
            &downlink(json!({}), None),
        )
        .expect("encodes");
    assert_eq!(out.f_port, None);
}

#[test]
fn encode_accepts_typed_arrays() {
    let mut e = engine();
    let out = e
        .encode_downlink(
            "function encodeDownlink() { return { bytes: new Uint8Array([255, 0, 17]) }; }",
            &downlink(json!({}), Some(1)),
        )
        .expect("encodes");
    assert_eq!(out.bytes, vec![255, 0, 17]);
}

#[test]
fn encode_rejects_bytes_out_of_range() {
    let mut e = engine();
    for (bytes, index, value) in [
        ("[1, 256]", 1, "256"),
        ("[-1]", 0, "-1"),
        ("[0, 0, 1.5]", 2, "1.5"),
        ("['1']", 0, "\"1\""),
        ("[null]", 0, "null"),
        ("[0, , 2]", 1, "undefined"),
    ] {
        let script = format!("function encodeDownlink() {{ return {{ bytes: {bytes} }}; }}");
        assert_eq!(
            e.encode_downlink(&script, &downlink(json!({}), Some(1))),
            Err(CodecError::InvalidByte {
                index,
                value: value.into()
            }),
            "bytes {bytes}"
        );
    }
    let err = e
        .encode_downlink(
            "function encodeDownlink() { return { fPort: 1 }; }",
            &downlink(json!({}), Some(1)),
        )
        .expect_err("no bytes");
    assert!(matches!(err, CodecError::InvalidReturn { .. }), "{err}");
}

#[test]
fn encode_rejects_bad_fport() {
    let mut e = engine();
    for port in ["0", "224", "1.5", "'2'"] {
        let script =
            format!("function encodeDownlink() {{ return {{ bytes: [], fPort: {port} }}; }}");
        let err = e
            .encode_downlink(&script, &downlink(json!({}), Some(1)))
            .expect_err("bad fPort");
        assert!(
            matches!(err, CodecError::InvalidFPort { .. }),
            "fPort {port}: {err}"
        );
    }
}

#[test]
fn runtime_error_carries_the_js_message_and_stack() {
    let mut e = engine();
    let err =
        decode(&mut e, "function decodeUplink(input) {\n  return foo;\n}").expect_err("throws");
    let CodecError::Exception {
        stage,
        message,
        stack,
    } = err
    else {
        panic!("expected an exception, got {err:?}");
    };
    assert_eq!(stage, Stage::DecodeUplink);
    assert_eq!(message, "ReferenceError: foo is not defined");
    // QuickJS-ng only records the exact position at calls; a failed variable read
    // reports the function, not the line.
    assert!(
        stack
            .as_deref()
            .is_some_and(|s| s.contains("at decodeUplink (codec.js:")),
        "stack names the function: {stack:?}"
    );

    let err = decode(
        &mut e,
        "function decodeUplink(input) {\n  var b = input.bytes;\n  throw new RangeError('bad length ' + b.length);\n}",
    )
    .expect_err("throws");
    let CodecError::Exception { message, stack, .. } = err else {
        panic!("expected an exception, got {err:?}");
    };
    assert_eq!(message, "RangeError: bad length 3");
    assert!(
        stack.as_deref().is_some_and(|s| s.contains("codec.js:3:")),
        "stack names the line of the throw: {stack:?}"
    );
}

#[test]
fn thrown_non_errors_are_described() {
    let mut e = engine();
    for (thrown, message) in [
        ("'boom'", "boom"),
        ("42", "42"),
        ("undefined", "undefined"),
        ("{code: 7}", "{\"code\":7}"),
    ] {
        let script = format!("function decodeUplink() {{ throw {thrown}; }}");
        assert_eq!(
            decode(&mut e, &script),
            Err(CodecError::Exception {
                stage: Stage::DecodeUplink,
                message: message.into(),
                stack: None
            }),
            "throw {thrown}"
        );
    }
}

#[test]
fn throwing_null_reads_as_out_of_memory() {
    // QuickJS's own signal for "no memory left to build the error"; documented.
    let mut e = engine();
    assert!(matches!(
        decode(&mut e, "function decodeUplink() { throw null; }"),
        Err(CodecError::OutOfMemory { .. })
    ));
}

#[test]
fn non_object_returns_are_rejected() {
    let mut e = engine();
    for ret in ["42", "[1]", "undefined", "null", "'x'", "function () {}"] {
        let script = format!("function decodeUplink() {{ return {ret}; }}");
        let err = decode(&mut e, &script).expect_err("not an object");
        assert!(
            matches!(
                err,
                CodecError::InvalidReturn {
                    stage: Stage::DecodeUplink,
                    ..
                }
            ),
            "return {ret}: {err}"
        );
    }
    for data in ["undefined", "null", "[1, 2]", "3"] {
        let err = data_of(&mut e, data).expect_err("bad data");
        assert!(
            matches!(err, CodecError::InvalidReturn { .. }),
            "data {data}: {err}"
        );
    }
}

#[test]
fn missing_function_is_named() {
    let mut e = engine();
    assert_eq!(
        decode(
            &mut e,
            "function encodeDownlink() { return { bytes: [] }; }"
        ),
        Err(CodecError::MissingFunction {
            function: Stage::DecodeUplink
        })
    );
    assert_eq!(
        e.encode_downlink("function decodeUplink() {}", &downlink(json!({}), None)),
        Err(CodecError::MissingFunction {
            function: Stage::EncodeDownlink
        })
    );
}

#[test]
fn syntax_error_has_message_and_line_and_is_cached() {
    let mut e = engine();
    let script = "function decodeUplink(input) {\n  return { data: { x: } };\n}";
    let err = decode(&mut e, script).expect_err("syntax");
    let CodecError::Syntax { message, line, .. } = &err else {
        panic!("expected a syntax error, got {err:?}");
    };
    assert!(message.contains("unexpected token"), "{message}");
    assert_eq!(*line, Some(2));
    assert!(
        err.to_string()
            .starts_with("script syntax error at line 2: "),
        "{err}"
    );
    assert_eq!(
        decode(&mut e, script),
        Err(err),
        "the same error from the cache"
    );
    assert_eq!(e.cached_scripts(), 1);
}

#[test]
fn top_level_throw_is_a_load_exception() {
    let mut e = engine();
    let err = decode(&mut e, "throw new Error('bad config');").expect_err("throws");
    assert!(
        matches!(&err, CodecError::Exception { stage: Stage::Load, message, .. } if message == "Error: bad config"),
        "{err:?}"
    );
}

#[test]
fn infinite_loop_is_stopped_and_the_script_keeps_working() {
    let mut e = engine();
    let script = r#"function decodeUplink(input) {
        if (input.fPort === 99) { for (;;) {} }
        return { data: { ok: true } };
    }"#;
    assert_eq!(
        e.decode_uplink(script, &uplink(&[], 99)),
        Err(CodecError::Timeout {
            stage: Stage::DecodeUplink,
            limit: Duration::from_millis(100)
        })
    );
    let out = e
        .decode_uplink(script, &uplink(&[], 1))
        .expect("works again");
    assert_eq!(out.object, json!({"ok": true}));
}

#[test]
fn the_interrupt_cannot_be_caught() {
    let mut e = engine();
    let err = decode(
        &mut e,
        "function decodeUplink() { for (;;) { try { for (;;) {} } catch (e) {} finally { } } }",
    )
    .expect_err("stopped");
    assert!(matches!(err, CodecError::Timeout { .. }), "{err}");
}

#[test]
fn infinite_loop_at_top_level_is_stopped_and_remembered() {
    let mut e = engine();
    let err = decode(&mut e, "while (true) {}").expect_err("stopped");
    assert!(
        matches!(
            err,
            CodecError::Timeout {
                stage: Stage::Load,
                ..
            }
        ),
        "{err}"
    );
    // The next uplink gets the same answer without spinning for another 100 ms.
    assert_eq!(e.cached_scripts(), 1);
    assert_eq!(decode(&mut e, "while (true) {}"), Err(err));
}

#[test]
fn endless_promise_chain_at_top_level_is_stopped() {
    let mut e = engine();
    let err = decode(
        &mut e,
        "function spin() { Promise.resolve().then(spin); }\nspin();\nfunction decodeUplink() { return { data: {} }; }",
    )
    .expect_err("stopped");
    assert_eq!(
        err,
        CodecError::Timeout {
            stage: Stage::Load,
            limit: Duration::from_millis(100)
        }
    );
}

#[test]
fn only_the_interrupt_marks_a_run_as_timed_out() {
    // A result computed before the budget ran out must not become a timeout
    // just because the clock moved on before we looked.
    let d = Deadline::default();
    d.arm(Duration::ZERO);
    assert!(d.passed());
    assert!(
        !d.fired.get(),
        "passing the deadline alone is not an interrupt"
    );
    assert!(
        d.interrupt(),
        "the handler interrupts once the budget is spent"
    );
    assert!(d.fired.get());
    d.arm(Duration::from_secs(60));
    assert!(
        !d.fired.get() && !d.passed() && !d.interrupt(),
        "re-arming resets"
    );
    d.disarm();
    assert!(!d.interrupt(), "no budget, no interrupt");
}

#[test]
fn endless_promise_chain_is_stopped() {
    let mut e = engine();
    let err = decode(
        &mut e,
        "function spin() { return Promise.resolve().then(spin); }\n\
         async function decodeUplink() { await spin(); return { data: {} }; }",
    )
    .expect_err("stopped");
    assert!(
        matches!(
            err,
            CodecError::Timeout { .. } | CodecError::OutOfMemory { .. }
        ),
        "{err}"
    );
    // A chain that does not pile up memory can only end at the time limit.
    let err = decode(
        &mut e,
        "function spin() { Promise.resolve().then(spin); }\n\
         async function decodeUplink() { spin(); await new Promise(() => {}); }",
    )
    .expect_err("stopped");
    assert_eq!(
        err,
        CodecError::Timeout {
            stage: Stage::DecodeUplink,
            limit: Duration::from_millis(100)
        }
    );
}

#[test]
fn memory_bomb_is_stopped_and_the_script_keeps_working() {
    // A generous time limit, so that memory, not time, stops the bomb even on a
    // loaded machine.
    let mut e = JsEngine::new(CodecLimits {
        time: Duration::from_secs(10),
        ..CodecLimits::default()
    });
    let script = r#"function decodeUplink(input) {
        if (input.fPort === 66) { let a = []; while (true) a.push(new Array(1e6)); }
        return { data: { ok: true } };
    }"#;
    let err = e.decode_uplink(script, &uplink(&[], 66)).expect_err("bomb");
    assert_eq!(
        err,
        CodecError::OutOfMemory {
            stage: Stage::DecodeUplink,
            limit_bytes: 16 << 20
        }
    );
    let out = e
        .decode_uplink(script, &uplink(&[], 1))
        .expect("works again");
    assert_eq!(out.object, json!({"ok": true}));
}

#[test]
fn big_allocations_hit_the_memory_limit() {
    let mut e = engine();
    let err = decode(
        &mut e,
        "var keep = []; function decodeUplink() { keep.push(new Array(1e6).fill(0)); return { data: {} }; }",
    )
    .expect_err("16 MB array in a 16 MiB heap");
    assert!(matches!(err, CodecError::OutOfMemory { .. }), "{err}");
}

#[test]
fn catching_out_of_memory_only_buys_time() {
    let mut e = engine();
    let err = decode(
        &mut e,
        "function decodeUplink() { var a = []; for (;;) { try { a.push(new Array(1e5).fill(1)); } catch (e) {} } }",
    )
    .expect_err("stopped");
    assert!(
        matches!(
            err,
            CodecError::Timeout { .. } | CodecError::OutOfMemory { .. }
        ),
        "{err}"
    );
}

#[test]
fn deep_recursion_is_a_range_error_not_a_crash() {
    let mut e = engine();
    let script = "function f(n) { return f(n + 1) + 1; }\nfunction decodeUplink(input) { if (input.fPort === 1) f(0); return { data: {} }; }";
    let err = e
        .decode_uplink(script, &uplink(&[], 1))
        .expect_err("overflow");
    assert!(
        matches!(&err, CodecError::Exception { message, .. } if message.starts_with("RangeError")),
        "{err:?}"
    );
    assert!(e.decode_uplink(script, &uplink(&[], 2)).is_ok());
}

#[test]
fn output_follows_json_stringify() {
    let mut e = engine();
    let object = data_of(
        &mut e,
        r#"{
            date: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
            gone: undefined,
            fn: function () {},
            sym: Symbol("x"),
            nan: NaN,
            inf: -Infinity,
            list: [1, undefined, function () {}, 2.5],
            int: 7.0,
            negZero: -0,
            small: 12n,
            huge: 123456789012345678901234567890n,
            custom: { toJSON: function (key) { return "custom:" + key; } },
            nested: { a: { b: [true, null, "s"] } }
        }"#,
    )
    .expect("decodes");
    assert_eq!(
        object,
        json!({
            "date": "2024-01-02T03:04:05.000Z",
            "nan": null,
            "inf": null,
            "list": [1, null, null, 2.5],
            "int": 7,
            "negZero": 0,
            "small": 12,
            "huge": "123456789012345678901234567890",
            "custom": "custom:custom",
            "nested": {"a": {"b": [true, null, "s"]}}
        })
    );
    assert_eq!(object["int"].to_string(), "7");
}

#[test]
fn hostile_outputs_are_bounded() {
    let mut e = engine();
    let cyclic = data_of(
        &mut e,
        "(function () { var o = {}; o.self = o; return o; })()",
    );
    assert!(
        matches!(cyclic, Err(CodecError::TooLarge { what: "output", .. })),
        "{cyclic:?}"
    );

    let sparse = data_of(
        &mut e,
        "{ a: (function () { var a = []; a.length = 1e9; return a; })() }",
    );
    assert!(
        matches!(sparse, Err(CodecError::TooLarge { .. })),
        "{sparse:?}"
    );

    // 1 MB of string referenced 100 times: small in JS, 100 MB if copied out.
    let shared = data_of(&mut e, "{ a: new Array(100).fill('x'.repeat(1e6)) }");
    assert!(
        matches!(shared, Err(CodecError::TooLarge { .. })),
        "{shared:?}"
    );

    let looping_getter = data_of(&mut e, "{ get x() { for (;;) {} } }");
    assert!(
        matches!(looping_getter, Err(CodecError::Timeout { .. })),
        "{looping_getter:?}"
    );
}

#[test]
fn deep_input_is_refused() {
    let mut e = engine();
    let mut object = json!(1);
    for _ in 0..(MAX_DEPTH + 1) {
        object = json!({ "a": object });
    }
    let err = e
        .encode_downlink(TEMP_HUMIDITY, &downlink(object, None))
        .expect_err("too deep");
    assert!(
        matches!(err, CodecError::TooLarge { what: "input", .. }),
        "{err}"
    );
}

#[test]
fn no_io_is_reachable() {
    let mut e = engine();
    let object = data_of(
        &mut e,
        r#"{
            fetch: typeof fetch,
            require: typeof require,
            process: typeof process,
            xhr: typeof XMLHttpRequest,
            std: typeof std,
            os: typeof os,
            setTimeout: typeof setTimeout,
            loadScript: typeof loadScript
        }"#,
    )
    .expect("decodes");
    let all_undefined = object
        .as_object()
        .expect("object")
        .values()
        .all(|v| v == "undefined");
    assert!(all_undefined, "{object}");

    let dynamic = decode(
        &mut e,
        "async function decodeUplink() { await import('os'); return { data: { imported: true } }; }",
    );
    assert!(
        matches!(&dynamic, Err(CodecError::Exception { message, .. }) if message.contains("os")),
        "import() must fail: {dynamic:?}"
    );

    let static_import = decode(
        &mut e,
        "import * as std from 'std';\nfunction decodeUplink() {}",
    );
    assert!(
        matches!(static_import, Err(CodecError::Syntax { .. })),
        "{static_import:?}"
    );
}

#[test]
fn async_entry_points_are_awaited() {
    let mut e = engine();
    let out = decode(
        &mut e,
        "async function decodeUplink(input) { const n = await Promise.resolve(input.fPort); return { data: { n } }; }",
    )
    .expect("decodes");
    assert_eq!(out.object, json!({"n": 10}));
    let err = decode(
        &mut e,
        "async function decodeUplink() { throw new TypeError('nope'); }",
    )
    .expect_err("rejects");
    assert!(
        matches!(&err, CodecError::Exception { message, .. } if message == "TypeError: nope"),
        "{err:?}"
    );
}

#[test]
fn scripts_are_compiled_once_and_keep_their_globals() {
    let mut e = engine();
    let script =
        "var calls = 0; function decodeUplink() { calls += 1; return { data: { calls } }; }";
    for expected in 1..=3 {
        assert_eq!(
            decode(&mut e, script).expect("decodes").object,
            json!({"calls": expected})
        );
    }
    assert_eq!(e.cached_scripts(), 1);
}

#[test]
fn cache_is_bounded_lru() {
    let mut e = JsEngine::new(CodecLimits {
        max_cached_scripts: 2,
        ..CodecLimits::default()
    });
    let script = |n: u32| {
        format!("var calls = 0; function decodeUplink() {{ calls += 1; return {{ data: {{ n: {n}, calls }} }}; }}")
    };
    decode(&mut e, &script(1)).expect("1");
    decode(&mut e, &script(2)).expect("2");
    decode(&mut e, &script(1)).expect("1 again: now 2 is the least recently used");
    decode(&mut e, &script(3)).expect("3 evicts 2");
    assert_eq!(e.cached_scripts(), 2);
    assert_eq!(
        decode(&mut e, &script(1)).expect("1").object,
        json!({"n": 1, "calls": 3}),
        "1 stayed loaded"
    );
    assert_eq!(
        decode(&mut e, &script(2)).expect("2").object,
        json!({"n": 2, "calls": 1}),
        "2 was reloaded"
    );
}

#[test]
fn check_reports_entry_points() {
    let mut e = engine();
    assert_eq!(
        e.check(TEMP_HUMIDITY),
        Ok(ScriptInfo {
            decode_uplink: true,
            encode_downlink: true
        })
    );
    assert_eq!(
        e.check("const decodeUplink = () => ({ data: {} });"),
        Ok(ScriptInfo {
            decode_uplink: true,
            encode_downlink: false
        })
    );
    assert!(matches!(
        e.check("function ("),
        Err(CodecError::Syntax { .. })
    ));
}

#[test]
fn recv_time_before_the_epoch_is_a_valid_date() {
    let mut e = engine();
    let mut input = uplink(&[], 1);
    input.recv_time = UNIX_EPOCH - Duration::from_secs(86_400);
    let out = e
        .decode_uplink(
            "function decodeUplink(i) { return { data: { t: i.recvTime.toISOString() } }; }",
            &input,
        )
        .expect("decodes");
    assert_eq!(out.object, json!({"t": "1969-12-31T00:00:00.000Z"}));
}

#[test]
fn native_work_is_bounded_too() {
    let mut e = engine();
    // Catastrophic backtracking runs inside the regex engine, not the interpreter.
    let err = data_of(&mut e, "{ m: /^(a+)+$/.test('a'.repeat(40) + 'b') }").expect_err("stopped");
    assert!(matches!(err, CodecError::Timeout { .. }), "regex: {err}");
    // Deep nesting in JSON.parse hits the stack limit, not the native stack.
    let err = data_of(&mut e, "JSON.parse('['.repeat(1e6))").expect_err("too deep");
    assert!(
        matches!(&err, CodecError::Exception { message, .. } if message.starts_with("RangeError") || message.starts_with("SyntaxError")),
        "JSON.parse: {err}"
    );
    // A huge string is bounded by the memory limit.
    let err = data_of(&mut e, "{ s: 'x'.repeat(64 * 1024 * 1024) }").expect_err("too big");
    assert!(
        matches!(err, CodecError::OutOfMemory { .. }),
        "repeat: {err}"
    );
}

#[test]
fn scripts_do_not_see_each_other() {
    let mut e = engine();
    decode(
        &mut e,
        "globalThis.secret = 'tenant A'; Object.prototype.polluted = 1; function decodeUplink() { return { data: {} }; }",
    )
    .expect("A decodes");
    let seen = data_of(
        &mut e,
        "{ secret: typeof secret, polluted: typeof ({}).polluted }",
    )
    .expect("B decodes");
    assert_eq!(
        seen,
        json!({"secret": "undefined", "polluted": "undefined"})
    );
}

#[test]
fn messages_are_kept_small() {
    let mut e = engine();
    let err = decode(
        &mut e,
        "function decodeUplink() { throw new Error('x'.repeat(1e6)); }",
    )
    .expect_err("throws");
    let CodecError::Exception { message, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        message.len() <= MAX_MESSAGE_BYTES + 16,
        "{} bytes",
        message.len()
    );
    assert!(message.ends_with('…'));

    let out = decode(
        &mut e,
        "function decodeUplink() { return { data: {}, warnings: Array.from({ length: 100 }, (_, i) => 'w' + i) }; }",
    )
    .expect("decodes");
    assert_eq!(out.warnings.len(), MAX_MESSAGES + 1);
    assert_eq!(out.warnings[0], "w0");
    assert_eq!(out.warnings[MAX_MESSAGES], "… and 68 more");
}

#[test]
fn clip_respects_character_boundaries() {
    assert_eq!(clip("héllo".into(), 2), "h…");
    assert_eq!(clip("short".into(), 10), "short");
}

#[test]
fn chirpstack_buffer_is_available() {
    let mut e = engine();
    // ChirpStack v4's own codec test: hex of the bytes through `new Buffer`.
    let out = e
        .decode_uplink(
            "function decodeUplink(input) { var buff = new Buffer(input.bytes); \
             return { data: { data_hex: buff.toString('hex'), f_port: input.fPort } }; }",
            &uplink(&[1, 2, 3], 10),
        )
        .expect("decodes");
    assert_eq!(out.object, json!({"data_hex": "010203", "f_port": 10}));

    let object = data_of(
        &mut e,
        r#"(function () {
            var b = Buffer.from([0xff, 0xd7, 0x12, 0x34, 0x56, 0x78, 0x41, 0xc8, 0x00, 0x00]);
            var w = Buffer.alloc(4);
            var next = w.writeUInt16LE(0xbeef, 1);
            return {
                i16: b.readInt16BE(0),
                u16le: b.readUInt16LE(2),
                u32: b.readUInt32BE(2),
                alias: b.readUint32BE(2),
                f32: b.readFloatBE(6),
                slice: b.slice(2, 4).toString("hex"),
                base64: b.toString("base64"),
                fromB64: Buffer.from("/9cSNFZ4QcgAAA==", "base64").equals(b),
                fromHex: Array.from(Buffer.from("0aFFzz", "hex")),
                utf8: Buffer.from("héllo ✓").toString(),
                utf8Len: Buffer.byteLength("héllo ✓"),
                latin1: Buffer.from([0x68, 0xe9]).toString("latin1"),
                concat: Buffer.concat([Buffer.from([1]), Buffer.from([2, 3])]).toString("hex"),
                written: [next, w.toString("hex")],
                isBuffer: [Buffer.isBuffer(b), Buffer.isBuffer([1])],
                json: Buffer.from([1, 2]),
                big: b.readBigUInt64BE(0) > 0n,
                outOfRange: (function () { try { b.readUInt32BE(8); return "no error"; } catch (e) { return e.name; } })()
            };
        })()"#,
    )
    .expect("decodes");
    assert_eq!(
        object,
        json!({
            "i16": -41,
            "u16le": 0x3412,
            "u32": 0x1234_5678,
            "alias": 0x1234_5678,
            "f32": 25,
            "slice": "1234",
            "base64": "/9cSNFZ4QcgAAA==",
            "fromB64": true,
            "fromHex": [10, 255],
            "utf8": "héllo ✓",
            "utf8Len": 10,
            "latin1": "hé",
            "concat": "010203",
            "written": [3, "00efbe00"],
            "isBuffer": [true, false],
            "json": {"type": "Buffer", "data": [1, 2]},
            "big": true,
            "outOfRange": "RangeError"
        })
    );
}

#[test]
fn buffer_bytes_encode_a_downlink() {
    let mut e = engine();
    let out = e
        .encode_downlink(
            "function encodeDownlink(input) { var b = Buffer.alloc(3); b.writeUInt8(1, 0); \
             b.writeUInt16BE(input.data.interval, 1); return { bytes: b }; }",
            &downlink(json!({"interval": 600}), Some(2)),
        )
        .expect("encodes");
    assert_eq!(out.bytes, vec![1, 0x02, 0x58]);
}

#[test]
fn scripts_may_bring_their_own_buffer() {
    let mut e = engine();
    for own in [
        "class Buffer { static tag() { return 'mine'; } }",
        "let Buffer = { tag: () => 'mine' };",
        "var Buffer = { tag: function () { return 'mine'; } };",
        "function Buffer() {} Buffer.tag = function () { return 'mine'; };",
    ] {
        let script = format!(
            "{own}\nfunction decodeUplink() {{ return {{ data: {{ t: Buffer.tag() }} }}; }}"
        );
        assert_eq!(
            decode(&mut e, &script).map(|d| d.object),
            Ok(json!({"t": "mine"})),
            "{own}"
        );
    }
}

#[test]
fn buffer_is_compiled_only_when_used() {
    let mut e = engine();
    let object = data_of(
        &mut e,
        r#"(function () {
            var lazy = typeof Object.getOwnPropertyDescriptor(globalThis, "Buffer").get === "function";
            var kind = typeof Buffer;
            var loaded = "value" in Object.getOwnPropertyDescriptor(globalThis, "Buffer");
            return { lazy: lazy, kind: kind, loaded: loaded };
        })()"#,
    )
    .expect("decodes");
    assert_eq!(
        object,
        json!({"lazy": true, "kind": "function", "loaded": true})
    );
}
