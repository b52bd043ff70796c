//! Codec speed: Cayenne LPP, a warm JavaScript call, a cold one (what a
//! runtime-per-call design pays every time), and a call through the worker pool.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use lorikeet_codec::{cayenne, CodecConfig, CodecLimits, Codecs, JsEngine, UplinkInput};

const SCRIPT: &str = include_str!("../../../examples/codecs/temperature-humidity.js");

fn input() -> UplinkInput {
    UplinkInput {
        bytes: vec![0x09, 0xc4, 0x78, 0x0b, 0x54],
        f_port: 1,
        recv_time: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        variables: BTreeMap::new(),
    }
}

fn benches(c: &mut Criterion) {
    let lpp = [
        1, 103, 0, 255, 2, 104, 120, 3, 136, 6, 118, 95, 242, 150, 10, 0, 3, 232,
    ];
    c.bench_function("cayenne decode (3 records)", |b| {
        b.iter(|| cayenne::decode(black_box(&lpp)))
    });

    let mut warm = JsEngine::new(CodecLimits::default());
    let input = input();
    c.bench_function("js decode, cached script", |b| {
        b.iter(|| warm.decode_uplink(black_box(SCRIPT), black_box(&input)))
    });

    c.bench_function("js decode, fresh runtime each call", |b| {
        b.iter(|| JsEngine::new(CodecLimits::default()).decode_uplink(black_box(SCRIPT), &input))
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let codecs = Codecs::new(CodecLimits::default()).expect("codecs");
    let config = CodecConfig::JavaScript {
        script: SCRIPT.to_owned(),
        scope: 0,
    };
    c.bench_function("Codecs::decode_uplink via worker", |b| {
        b.iter(|| rt.block_on(codecs.decode_uplink(&config, input.clone())))
    });
}

criterion_group!(codec_benches, benches);
criterion_main!(codec_benches);
