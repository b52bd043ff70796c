//! Datagram → `UplinkFrame`: the per-packet cost of the listener's hot path (header
//! check, JSON, base64, field checks), without the socket.
//!
//! `cargo bench -p lorikeet-gateway`

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lorikeet_gateway::wire::{self, Upstream};
use lorikeet_gateway::{CodeRate, DownlinkTiming, Modulation, UplinkFrame};
use lorikeet_lorawan::Eui64;

const GW: Eui64 = Eui64([0xaa, 0x55, 0x5a, 0, 0, 0, 0, 1]);

fn with_header(body: &[u8]) -> Vec<u8> {
    let mut d = wire::encode_pull_data(2, 1, GW).to_vec();
    d[3] = wire::PacketType::PushData.id();
    d.extend_from_slice(body);
    d
}

fn frame(i: u8) -> UplinkFrame {
    UplinkFrame {
        gateway_id: GW,
        phy_payload: (0..51).map(|b| b ^ i).collect(),
        received_at: SystemTime::UNIX_EPOCH,
        tmst: 3_000_000_000 + u32::from(i),
        time: None,
        tmms: Some(1_398_506_420_250),
        fine_time_ns: None,
        frequency_hz: 867_100_000 + 200_000 * u32::from(i % 8),
        chan: Some(u32::from(i % 8)),
        rfch: Some(0),
        board: None,
        modem_id: Some(u32::from(i)),
        modulation: Modulation::Lora {
            spreading_factor: 7 + i % 6,
            bandwidth_hz: 125_000,
            code_rate: Some(CodeRate::Cr45),
        },
        rssi_dbm: -90,
        rssi_signal_dbm: Some(-92),
        snr_db: Some(5.5),
        frequency_offset_hz: Some(-250),
        antennas: vec![],
    }
}

fn decode(datagram: &[u8]) -> usize {
    let Ok(Upstream::PushData {
        gateway_id, json, ..
    }) = wire::parse_upstream(datagram)
    else {
        return 0;
    };
    match wire::decode_push_data(gateway_id, json, SystemTime::UNIX_EPOCH) {
        Ok(p) => p.uplinks.iter().filter(|u| u.is_ok()).count(),
        Err(_) => 0,
    }
}

fn bench_decode(c: &mut Criterion) {
    let eight: Vec<UplinkFrame> = (0..8).map(frame).collect();
    let cases: Vec<(&str, Vec<u8>, usize)> = vec![
        (
            "sx1301_one_rxpk",
            with_header(include_bytes!(
                "../../../testdata/udp/sx1301_with_time.json"
            )),
            1,
        ),
        (
            "sx1302_one_rxpk",
            with_header(include_bytes!("../../../testdata/udp/sx1302_fields.json")),
            1,
        ),
        (
            "jver2_rsig_two_antennas",
            with_header(include_bytes!(
                "../../../testdata/udp/kerlink_jver2_rsig.json"
            )),
            1,
        ),
        (
            "three_rxpk_and_stat",
            with_header(include_bytes!(
                "../../../testdata/udp/multiple_rxpk_with_stat.json"
            )),
            3,
        ),
        (
            "eight_rxpk_51_bytes",
            wire::encode_push_data(2, 1, GW, &eight, None),
            8,
        ),
    ];
    let mut group = c.benchmark_group("push_data_to_uplink_frames");
    for (name, datagram, uplinks) in &cases {
        assert_eq!(decode(datagram), *uplinks, "{name} decodes");
        group.throughput(Throughput::Elements(*uplinks as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), datagram, |b, d| {
            b.iter(|| decode(black_box(d)))
        });
    }
    group.finish();

    let packet = wire::TxPacket {
        timing: DownlinkTiming::Delay { tmst: 1_000_000 },
        frequency_hz: 869_525_000,
        rf_chain: 0,
        power_dbm: 14,
        modulation: Modulation::Lora {
            spreading_factor: 12,
            bandwidth_hz: 125_000,
            code_rate: Some(CodeRate::Cr45),
        },
        ipol: true,
        phy_payload: vec![0x60; 33],
    };
    c.bench_function("pull_resp_encode", |b| {
        b.iter(|| wire::encode_pull_resp(2, black_box(7), black_box(&packet)))
    });
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
