//! Property tests of the pure decoders: any bytes are refused or accepted, never a
//! panic; what we encode we decode back.

use std::time::SystemTime;

use lorikeet_gateway::wire::{self, Upstream};
use lorikeet_gateway::{CodeRate, Modulation, UplinkFrame};
use lorikeet_lorawan::Eui64;
use proptest::prelude::*;

const GW: Eui64 = Eui64([1, 2, 3, 4, 5, 6, 7, 8]);

fn decode_everything(bytes: &[u8]) {
    if let Ok(up) = wire::parse_upstream(bytes) {
        match up {
            Upstream::PushData {
                gateway_id, json, ..
            } => {
                let _ = wire::decode_push_data(gateway_id, json, SystemTime::UNIX_EPOCH);
            }
            Upstream::TxAck { json, .. } => {
                let _ = wire::decode_tx_ack(json);
            }
            Upstream::PullData { .. } => {}
        }
    }
    let _ = wire::parse_pull_resp_datagram(bytes);
    let body = bytes.get(12..).unwrap_or_default();
    let _ = wire::decode_push_data(GW, body, SystemTime::UNIX_EPOCH);
    let _ = wire::decode_tx_ack(body);
    let _ = wire::decode_pull_resp(body);
}

const VALID: &str = r#"{"rxpk":[{"jver":2,"tmst":1,"time":"2024-05-01T10:00:00.1Z","tmms":1,"chan":0,"rfch":0,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","rssi":-50,"lsnr":7.0,"rssis":-51,"foff":12,"size":2,"data":"QAE=","rsig":[{"ant":0,"chan":0,"rssic":-50,"lsnr":7.0,"etime":"AA=="}]}],"stat":{"time":"2024-05-01 10:00:00 GMT","rxnb":1}}"#;

fn arb_frame() -> impl Strategy<Value = UplinkFrame> {
    (
        proptest::collection::vec(any::<u8>(), 0..=255),
        any::<u32>(),
        1u32..=2_500_000_000,
        5u8..=12,
        prop_oneof![Just(125_000u32), Just(250_000), Just(500_000)],
        -150i32..=20,
        proptest::option::of(-30i16..=30),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(
            |(payload, tmst, freq, sf, bw, rssi, snr_tenths, tmms)| UplinkFrame {
                gateway_id: GW,
                phy_payload: payload,
                received_at: SystemTime::UNIX_EPOCH,
                tmst,
                time: None,
                tmms,
                fine_time_ns: None,
                frequency_hz: freq,
                chan: Some(3),
                rfch: Some(1),
                board: None,
                modem_id: None,
                modulation: Modulation::Lora {
                    spreading_factor: sf,
                    bandwidth_hz: bw,
                    code_rate: Some(CodeRate::Cr45),
                },
                rssi_dbm: rssi,
                rssi_signal_dbm: None,
                snr_db: snr_tenths.map(|t| f32::from(t) / 10.0),
                frequency_offset_hz: None,
                antennas: vec![],
            },
        )
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        decode_everything(&bytes);
    }

    #[test]
    fn mutated_valid_push_data_never_panics(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut dgram = wire::encode_pull_data(2, 0, GW).to_vec();
        dgram[3] = 0;
        dgram.extend_from_slice(VALID.as_bytes());
        for (at, byte) in edits {
            let i = at.index(dgram.len());
            dgram[i] = byte;
        }
        decode_everything(&dgram);
    }

    #[test]
    fn uplinks_round_trip(frames in proptest::collection::vec(arb_frame(), 1..5)) {
        let dgram = wire::encode_push_data(2, 9, GW, &frames, None);
        let Ok(Upstream::PushData { json, .. }) = wire::parse_upstream(&dgram) else { panic!("header") };
        let p = wire::decode_push_data(GW, json, SystemTime::UNIX_EPOCH).unwrap();
        let back: Vec<UplinkFrame> = p.uplinks.into_iter().map(|u| u.unwrap()).collect();
        prop_assert_eq!(back, frames);
    }
}

#[test]
fn the_mutation_base_is_valid() {
    let p = wire::decode_push_data(GW, VALID.as_bytes(), SystemTime::UNIX_EPOCH).unwrap();
    assert!(p.uplinks[0].is_ok());
    assert!(matches!(p.stats, Some(Ok(_))));
}
