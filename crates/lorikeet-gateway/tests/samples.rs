//! Every PUSH_DATA sample under `testdata/udp/` is parsed, field by field, by the
//! decoder and again through a running listener over loopback UDP.

// The per-sample checks are closures in a table, not #[test] functions.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::SystemTime;

use common::{eui, test_config, Server, TestGateway};
use lorikeet_gateway::wire::{self, PushData, RxpkError};
use lorikeet_gateway::{CodeRate, DropReason, GatewayEvent, GatewayPolicy, Modulation};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/udp")
}

fn body(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn decode(name: &str) -> PushData {
    wire::decode_push_data(eui(1), &body(name), SystemTime::UNIX_EPOCH)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

const LORA_SF7: Modulation = Modulation::Lora {
    spreading_factor: 7,
    bandwidth_hz: 125_000,
    code_rate: Some(CodeRate::Cr45),
};

/// Sample name, uplinks expected, rxpk drops expected, stat expected, and the
/// field checks.
type Check = fn(&PushData);
const SAMPLES: &[(&str, usize, &[DropReason], bool, Check)] = &[
    ("sx1301_with_time.json", 1, &[], false, |p| {
        let f = p.uplinks[0].as_ref().unwrap();
        assert_eq!(f.tmst, 3_512_348_611);
        assert_eq!(
            f.time.unwrap().to_rfc3339(),
            "2024-05-01T10:00:00.528002+00:00"
        );
        assert_eq!(f.tmms, None);
        assert_eq!(f.frequency_hz, 868_500_000);
        assert_eq!((f.chan, f.rfch), (Some(2), Some(0)));
        assert_eq!(f.modulation, LORA_SF7);
        assert_eq!((f.rssi_dbm, f.snr_db), (-47, Some(9.5)));
        assert_eq!(f.phy_payload.len(), 17);
        assert_eq!(f.phy_payload[0], 0x40);
    }),
    ("sx1301_without_time.json", 1, &[], false, |p| {
        let f = p.uplinks[0].as_ref().unwrap();
        assert_eq!(f.time, None);
        assert_eq!(f.tmst, 1_000_000);
        assert_eq!(f.snr_db, Some(-12.2));
        assert_eq!(
            f.modulation,
            Modulation::Lora {
                spreading_factor: 12,
                bandwidth_hz: 125_000,
                code_rate: Some(CodeRate::Cr45)
            }
        );
    }),
    ("sx1301_gps_tmms.json", 1, &[], false, |p| {
        let f = p.uplinks[0].as_ref().unwrap();
        assert_eq!(f.tmms, Some(1_398_506_419_004));
        assert!(f.time.is_some());
        assert_eq!(f.phy_payload.len(), 23);
        assert_eq!(f.phy_payload[0], 0x00, "a JoinRequest");
        assert_eq!(f.frequency_hz, 867_500_000);
    }),
    ("sx1302_fields.json", 1, &[], false, |p| {
        let f = p.uplinks[0].as_ref().unwrap();
        assert_eq!(f.frequency_hz, 865_062_500);
        assert_eq!(f.modem_id, Some(0));
        assert_eq!(f.rssi_signal_dbm, Some(-95));
        assert_eq!(f.rssi_dbm, -94);
        assert_eq!(f.frequency_offset_hz, Some(-1300));
        assert_eq!(f.fine_time_ns, Some(250_123_456));
        assert_eq!(f.tmms, Some(1_398_506_420_250));
        assert!(f.antennas.is_empty());
    }),
    ("kerlink_jver2_rsig.json", 1, &[], false, |p| {
        let f = p.uplinks[0].as_ref().unwrap();
        assert_eq!(f.antennas.len(), 2);
        assert_eq!(f.antennas[1].antenna, 1);
        assert_eq!(f.antennas[1].rssi_signal_dbm, Some(-110));
        assert_eq!(
            f.antennas[0].etime.as_deref(),
            Some("Q2ZlZmE4YmE5ODc2NTQzMg==")
        );
        // No top-level rssi/lsnr/chan: the best antenna's (by SNR) stand in.
        assert_eq!((f.rssi_dbm, f.snr_db), (-108, Some(4.25)));
        assert_eq!(f.chan, Some(1));
        assert_eq!(f.frequency_offset_hz, Some(-228));
        assert_eq!((f.board, f.rfch), (Some(1), None));
        assert_eq!(f.frequency_hz, 868_300_000);
    }),
    ("multiple_rxpk_with_stat.json", 3, &[], true, |p| {
        let tmsts: Vec<u32> = p.uplinks.iter().map(|u| u.as_ref().unwrap().tmst).collect();
        assert_eq!(tmsts, [100, 200, 300]);
        let fsk = p.uplinks[2].as_ref().unwrap();
        assert_eq!(
            fsk.modulation,
            Modulation::Fsk {
                bit_rate_bps: 50_000
            }
        );
        assert_eq!(fsk.snr_db, None);
        let s = p.stats.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(s.time.unwrap().to_rfc3339(), "2024-05-01T10:00:04+00:00");
        let loc = s.location.unwrap();
        assert_eq!(
            (loc.latitude_deg, loc.longitude_deg, loc.altitude_m),
            (46.24, 3.2523, Some(145.0))
        );
        assert_eq!(
            (s.rx_received, s.rx_ok, s.rx_forwarded),
            (Some(3), Some(3), Some(3))
        );
    }),
    (
        "crc_failed.json",
        1,
        &[DropReason::CrcFailed, DropReason::CrcMissing],
        false,
        |p| {
            assert!(matches!(p.uplinks[0], Err(RxpkError::CrcFailed)));
            assert!(matches!(p.uplinks[1], Err(RxpkError::CrcMissing)));
            assert_eq!(p.uplinks[2].as_ref().unwrap().tmst, 600);
        },
    ),
    ("stat_without_time.json", 0, &[], true, |p| {
        let s = p.stats.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(s.time, None);
        assert_eq!(s.location, None);
        assert_eq!(s.rx_received, Some(0));
    }),
];

#[test]
fn every_sample_file_is_listed_here() {
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = SAMPLES.iter().map(|s| s.0.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn each_sample_decodes_field_by_field() {
    for (name, uplinks, drops, has_stat, check) in SAMPLES {
        let p = decode(name);
        let ok = p.uplinks.iter().filter(|u| u.is_ok()).count();
        assert_eq!(ok, *uplinks, "{name}: uplinks");
        let reasons: Vec<DropReason> = p
            .uplinks
            .iter()
            .filter_map(|u| u.as_ref().err())
            .map(DropReason::from_rxpk_error)
            .collect();
        assert_eq!(reasons, *drops, "{name}: drops");
        assert_eq!(p.stats.is_some(), *has_stat, "{name}: stat");
        check(&p);
    }
}

#[tokio::test]
async fn each_sample_goes_through_the_listener() {
    let mut server = Server::start(test_config()).await;
    let gw = TestGateway::new(eui(1), server.addr).await;
    server
        .handle
        .upsert_gateway(gw.eui, GatewayPolicy::default());
    // Pinned first: a `stat` is taken only from the gateway's PULL_DATA address.
    gw.pull(0xffff).await;
    assert!(matches!(
        server.next_event().await,
        GatewayEvent::Connected { .. }
    ));
    let (mut uplinks, mut stats, mut crc_drops) = (0u64, 0u64, 0u64);
    for (i, (name, n, drops, has_stat, _)) in SAMPLES.iter().enumerate() {
        let mut dgram = wire::encode_pull_data(2, i as u16, gw.eui).to_vec();
        dgram[3] = wire::PacketType::PushData.id();
        dgram.extend_from_slice(&body(name));
        assert_eq!(gw.push(&dgram).await.token, i as u16, "{name}");
        for _ in 0..*n {
            assert!(
                matches!(server.next_event().await, GatewayEvent::Uplink(_)),
                "{name}"
            );
        }
        if *has_stat {
            assert!(
                matches!(server.next_event().await, GatewayEvent::Stats(_)),
                "{name}"
            );
        }
        uplinks += *n as u64;
        stats += u64::from(*has_stat);
        crc_drops += drops.len() as u64;
    }
    let c = server.handle.counters();
    assert_eq!(c.uplinks_forwarded, uplinks);
    assert_eq!(c.stats_forwarded, stats);
    assert_eq!(
        c.dropped(DropReason::CrcFailed) + c.dropped(DropReason::CrcMissing),
        crc_drops
    );
    assert!(server.handle.gateway(gw.eui).unwrap().last_stats.is_some());
    server.shutdown().await;
}
