//! The async `Codecs` handle: dispatch per codec type, the worker pool, concurrency.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use lorikeet_codec::{
    CodecConfig, CodecError, CodecLimits, Codecs, DownlinkInput, SetupError, Stage, UplinkInput,
};
use serde_json::json;

fn uplink(bytes: &[u8], f_port: u8) -> UplinkInput {
    UplinkInput {
        bytes: bytes.to_vec(),
        f_port,
        recv_time: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        variables: BTreeMap::new(),
    }
}

fn js(script: &str) -> CodecConfig {
    js_in(0, script)
}

fn js_in(scope: u128, script: &str) -> CodecConfig {
    CodecConfig::JavaScript {
        script: script.to_owned(),
        scope,
    }
}

fn codecs() -> Codecs {
    Codecs::new(CodecLimits::default()).expect("default limits start")
}

#[test]
fn handle_is_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<Codecs>();
}

#[test]
fn config_serialises_with_a_type_tag() {
    let cases = [
        (CodecConfig::None, json!({"type": "none"})),
        (CodecConfig::CayenneLpp, json!({"type": "cayenne_lpp"})),
        (
            js("function decodeUplink(i) {}"),
            json!({"type": "javascript", "script": "function decodeUplink(i) {}"}),
        ),
    ];
    for (config, value) in cases {
        assert_eq!(serde_json::to_value(&config).expect("serialises"), value);
        assert_eq!(
            serde_json::from_value::<CodecConfig>(value).expect("parses"),
            config
        );
    }
    assert!(serde_json::from_value::<CodecConfig>(json!({"type": "lua"})).is_err());
}

#[test]
fn bad_limits_are_refused_before_starting() {
    for limits in [
        CodecLimits {
            workers: 0,
            ..CodecLimits::default()
        },
        CodecLimits {
            time: Duration::ZERO,
            ..CodecLimits::default()
        },
        CodecLimits {
            memory_bytes: 4096,
            ..CodecLimits::default()
        },
        CodecLimits {
            max_cached_scripts: 0,
            ..CodecLimits::default()
        },
        CodecLimits {
            stack_bytes: 1024,
            ..CodecLimits::default()
        },
    ] {
        assert!(
            matches!(
                Codecs::new(limits.clone()),
                Err(SetupError::InvalidLimits(_))
            ),
            "{limits:?}"
        );
    }
}

#[tokio::test]
async fn no_codec_decodes_to_nothing_and_cannot_encode() {
    let c = codecs();
    assert_eq!(
        c.decode_uplink(&CodecConfig::None, uplink(&[1], 1)).await,
        Ok(None)
    );
    let down = DownlinkInput {
        object: json!({"a": 1}),
        f_port: Some(1),
        variables: BTreeMap::new(),
    };
    assert_eq!(
        c.encode_downlink(&CodecConfig::None, down).await,
        Err(CodecError::NoCodec)
    );
}

#[tokio::test]
async fn cayenne_runs_inline() {
    let c = codecs();
    let decoded = c
        .decode_uplink(
            &CodecConfig::CayenneLpp,
            uplink(&[1, 103, 0, 255, 2, 104, 120], 1),
        )
        .await
        .expect("decodes")
        .expect("has a codec");
    assert_eq!(
        decoded.object,
        json!({"temperatureSensor": {"1": 25.5}, "humiditySensor": {"2": 60}})
    );

    let err = c
        .decode_uplink(&CodecConfig::CayenneLpp, uplink(&[1, 103, 0], 1))
        .await
        .expect_err("truncated");
    assert!(matches!(err, CodecError::Cayenne(_)), "{err}");

    let encoded = c
        .encode_downlink(
            &CodecConfig::CayenneLpp,
            DownlinkInput {
                object: json!({"digitalOutput": {"3": 1}}),
                f_port: Some(7),
                variables: BTreeMap::new(),
            },
        )
        .await
        .expect("encodes");
    assert_eq!(encoded.bytes, vec![3, 1, 1]);
    assert_eq!(encoded.f_port, Some(7));
}

#[tokio::test]
async fn javascript_goes_through_the_workers() {
    let c = codecs();
    let script = js("function decodeUplink(i) { return { data: { sum: i.bytes.reduce((a, b) => a + b, 0) } }; }\n\
                     function encodeDownlink(i) { return { bytes: [i.data.v], fPort: 3 }; }");
    let decoded = c
        .decode_uplink(&script, uplink(&[1, 2, 3], 1))
        .await
        .expect("decodes");
    assert_eq!(decoded.expect("has a codec").object, json!({"sum": 6}));
    let encoded = c
        .encode_downlink(
            &script,
            DownlinkInput {
                object: json!({"v": 200}),
                f_port: None,
                variables: BTreeMap::new(),
            },
        )
        .await
        .expect("encodes");
    assert_eq!((encoded.bytes, encoded.f_port), (vec![200], Some(3)));
    let CodecConfig::JavaScript { script, .. } = &script else {
        unreachable!()
    };
    let info = c.check_script(script).await.expect("loads");
    assert!(info.decode_uplink && info.encode_downlink);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_get_their_own_answers() {
    let c = codecs();
    // Three different scripts, so the workers juggle several cached runtimes.
    let scripts: Vec<CodecConfig> = (0..3)
        .map(|k| {
            js(&format!(
                "function decodeUplink(i) {{ return {{ data: {{ script: {k}, port: i.fPort, first: i.bytes[0], len: i.bytes.length }} }}; }}"
            ))
        })
        .collect();
    let mut tasks = Vec::new();
    for n in 0..60u8 {
        let c = c.clone();
        let script = scripts[usize::from(n % 3)].clone();
        tasks.push(tokio::spawn(async move {
            let input = uplink(&vec![n; usize::from(n % 7) + 1], n % 200 + 1);
            let out = c.decode_uplink(&script, input).await;
            (n, out)
        }));
    }
    for task in tasks {
        let (n, out) = task.await.expect("task ran");
        let object = out.expect("decodes").expect("has a codec").object;
        assert_eq!(
            object,
            json!({"script": n % 3, "port": n % 200 + 1, "first": n, "len": n % 7 + 1}),
            "call {n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_script_does_not_block_the_others() {
    let c = codecs();
    let runaway = js("function decodeUplink() { for (;;) {} }");
    let good = js("function decodeUplink(i) { return { data: { port: i.fPort } }; }");
    let stuck = {
        let c = c.clone();
        tokio::spawn(async move { c.decode_uplink(&runaway, uplink(&[], 1)).await })
    };
    for port in 1..=20 {
        let out = c
            .decode_uplink(&good, uplink(&[], port))
            .await
            .expect("decodes");
        assert_eq!(out.expect("has a codec").object, json!({"port": port}));
    }
    let err = stuck.await.expect("task ran").expect_err("interrupted");
    assert_eq!(
        err,
        CodecError::Timeout {
            stage: Stage::DecodeUplink,
            limit: Duration::from_millis(100)
        }
    );
}

#[tokio::test]
async fn a_script_works_again_after_each_kind_of_failure() {
    // One worker, so every call meets the same cached runtime; a time limit long
    // enough that memory, not time, stops the bomb even on a loaded machine.
    let c = Codecs::new(CodecLimits {
        workers: 1,
        time: Duration::from_secs(1),
        ..CodecLimits::default()
    })
    .expect("starts");
    let script = js(r#"function decodeUplink(i) {
        switch (i.fPort) {
            case 1: for (;;) {}
            case 2: { let a = []; for (;;) a.push(new Array(1e6)); }
            case 3: throw new Error("nope");
            case 4: return 42;
            default: return { data: { ok: i.fPort } };
        }
    }"#);
    for port in 1..=4 {
        let err = c
            .decode_uplink(&script, uplink(&[], port))
            .await
            .expect_err("fails");
        let expected = match port {
            1 => matches!(err, CodecError::Timeout { .. }),
            2 => matches!(err, CodecError::OutOfMemory { .. }),
            3 => matches!(err, CodecError::Exception { .. }),
            _ => matches!(err, CodecError::InvalidReturn { .. }),
        };
        assert!(expected, "port {port}: {err}");
        let ok = c
            .decode_uplink(&script, uplink(&[], 100))
            .await
            .expect("works again");
        assert_eq!(
            ok.expect("has a codec").object,
            json!({"ok": 100}),
            "after port {port}"
        );
    }
}

#[tokio::test]
async fn profiles_with_the_same_script_do_not_share_globals() {
    // One worker, so every call meets the same engine: only the scope keeps the two
    // profiles' runtimes (and their globals) apart.
    let c = Codecs::new(CodecLimits {
        workers: 1,
        ..CodecLimits::default()
    })
    .unwrap();
    let script = "var seen = 0; function decodeUplink(input) { seen += 1; return { data: { seen: seen } }; }";
    let (a, b) = (js_in(1, script), js_in(2, script));
    let seen = |d: Option<lorikeet_codec::Decoded>| d.unwrap().object["seen"].as_u64().unwrap();
    assert_eq!(seen(c.decode_uplink(&a, uplink(&[], 1)).await.unwrap()), 1);
    assert_eq!(seen(c.decode_uplink(&a, uplink(&[], 1)).await.unwrap()), 2);
    assert_eq!(
        seen(c.decode_uplink(&b, uplink(&[], 1)).await.unwrap()),
        1,
        "profile B's runtime is its own, not profile A's"
    );
    // A script that writes to a global another profile's script reads.
    let writer = js_in(
        3,
        "function decodeUplink(input) { globalThis.secret = 'tenant A'; return { data: {} }; }",
    );
    let reader = js_in(4, "function decodeUplink(input) { return { data: { secret: typeof secret === 'undefined' ? null : secret } }; }");
    c.decode_uplink(&writer, uplink(&[], 1)).await.unwrap();
    let out = c
        .decode_uplink(&reader, uplink(&[], 1))
        .await
        .unwrap()
        .unwrap();
    assert!(out.object["secret"].is_null(), "{}", out.object);
}
