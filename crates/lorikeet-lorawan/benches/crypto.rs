//! The per-uplink cryptography of the hot path: MIC check (1.0 and 1.1) and FRMPayload
//! decryption, on a typical 20-byte payload.
//!
//! `cargo bench -p lorikeet-lorawan`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lorikeet_lorawan::crypto::{self, DataFrame, SessionKeys, UplinkMicContext, Version};
use lorikeet_lorawan::phy::{Direction, FCtrl, PhyPayload};
use lorikeet_lorawan::{Aes128Key, DevAddr};

fn keys() -> SessionKeys {
    SessionKeys {
        f_nwk_s_int_key: Aes128Key::from_bytes([1; 16]),
        s_nwk_s_int_key: Aes128Key::from_bytes([2; 16]),
        nwk_s_enc_key: Aes128Key::from_bytes([3; 16]),
        app_s_key: Aes128Key::from_bytes([4; 16]),
    }
}

fn uplink(version: Version, keys: &SessionKeys, ctx: &UplinkMicContext) -> Vec<u8> {
    let frame = DataFrame {
        confirmed: false,
        dev_addr: DevAddr::from_u32(0x2601_1234),
        f_ctrl: FCtrl {
            adr: true,
            adr_ack_req: false,
            ack: false,
            f_pending_or_class_b: false,
        },
        f_cnt: 4242,
        f_opts: Vec::new(),
        f_port: Some(10),
        frm_payload: (0u8..20).collect(),
    };
    crypto::build_data_uplink(&frame, version, keys, ctx).expect("a valid frame")
}

fn bench(c: &mut Criterion) {
    let keys = keys();
    let ctx = UplinkMicContext {
        conf_f_cnt: 0,
        tx_dr: 5,
        tx_ch: 1,
    };
    let mut g = c.benchmark_group("uplink_crypto");
    g.throughput(Throughput::Elements(1));
    for (name, version) in [("1.0", Version::V1_0), ("1.1", Version::V1_1)] {
        let bytes = uplink(version, &keys, &ctx);
        let phy = PhyPayload::decode(&bytes).expect("decodes");
        assert!(crypto::verify_data_uplink_mic(
            &phy, 4242, version, &keys, &ctx
        ));
        g.bench_function(format!("mic_verify_{name}"), |b| {
            b.iter(|| crypto::verify_data_uplink_mic(black_box(&phy), 4242, version, &keys, &ctx))
        });
        g.bench_function(format!("decode_verify_decrypt_{name}"), |b| {
            b.iter(|| {
                let phy = PhyPayload::decode(black_box(&bytes)).expect("decodes");
                crypto::open_data_uplink(&phy, 4242, version, &keys, &ctx).expect("opens")
            })
        });
    }
    let data: Vec<u8> = (0u8..20).collect();
    g.bench_function("frm_payload_decrypt_20b", |b| {
        b.iter(|| {
            crypto::decrypt_frm_payload(
                &keys.app_s_key,
                Direction::Uplink,
                DevAddr::from_u32(0x2601_1234),
                4242,
                black_box(&data),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
