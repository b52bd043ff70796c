//! Our wire format against an independent implementation, the `semtech-udp` crate:
//! what it writes we read, what we write it reads. Also pins down the dialects it
//! cannot read (the reasons `docs/gateways.md` gives for parsing ourselves).

use std::time::SystemTime;

use lorikeet_gateway::wire::{self, TxPacket, Upstream};
use lorikeet_gateway::{CodeRate, DownlinkTiming, Modulation, TxAckError, TxAckOutcome};
use lorikeet_lorawan::Eui64;
use semtech_udp::{Down, MacAddress, Packet, SerializablePacket};

const GW: Eui64 = Eui64([0xaa, 0x55, 0x5a, 0, 0, 0, 0, 1]);

fn serialize(p: &impl SerializablePacket) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = p.serialize(&mut buf).expect("serialize") as usize;
    buf.truncate(n);
    buf
}

#[test]
fn our_pull_resp_is_read_by_semtech_udp() {
    let packet = TxPacket {
        timing: DownlinkTiming::Delay { tmst: 1_234_567 },
        frequency_hz: 869_525_000,
        rf_chain: 0,
        power_dbm: 14,
        modulation: Modulation::Lora {
            spreading_factor: 9,
            bandwidth_hz: 125_000,
            code_rate: Some(CodeRate::Cr45),
        },
        ipol: true,
        phy_payload: vec![0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    };
    let dgram = wire::encode_pull_resp(2, 0x5150, &packet).unwrap();
    let Ok(Packet::Down(Down::PullResp(p))) = Packet::parse(&dgram) else {
        panic!("semtech-udp cannot read our PULL_RESP");
    };
    assert_eq!(p.random_token, 0x5150);
    let t = &p.data.txpk;
    assert_eq!(t.get_tmst(), Some(1_234_567));
    assert!(!t.is_immediate());
    assert_eq!((t.freq * 1e6).round() as u32, 869_525_000);
    assert_eq!(t.powe, 14);
    assert_eq!(t.rfch, 0);
    assert!(t.ipol);
    assert_eq!(t.datr.to_string(), "SF9BW125");
    assert_eq!(t.data.data(), packet.phy_payload.as_slice());
}

#[test]
fn semtech_udp_push_data_is_read_by_us() {
    let mut push = semtech_udp::push_data::Packet::random();
    push.random_token = 0x0102;
    push.gateway_mac = MacAddress::from(GW.0);
    let dgram = serialize(&push);
    let Upstream::PushData {
        header,
        gateway_id,
        json,
    } = wire::parse_upstream(&dgram).unwrap()
    else {
        panic!("not PUSH_DATA");
    };
    assert_eq!((header.token, gateway_id), (0x0102, GW));
    let mut p = wire::decode_push_data(gateway_id, json, SystemTime::UNIX_EPOCH).unwrap();
    let f = p.uplinks.remove(0).unwrap();
    // The values semtech-udp's `Packet::random()` uses.
    assert_eq!(f.frequency_hz, 902_800_000);
    assert_eq!(f.tmst, 12);
    assert_eq!(f.rssi_dbm, -80);
    assert_eq!(f.rssi_signal_dbm, Some(-80));
    assert_eq!(f.snr_db, Some(-15.0));
    assert_eq!(f.phy_payload, vec![0, 0]);
}

#[test]
fn semtech_udp_tx_acks_are_read_by_us() {
    use semtech_udp::tx_ack::{Data, Error, Packet as TxAck};
    let cases = [
        (
            Data::default(),
            TxAckOutcome::Sent {
                tx_power_warning_dbm: None,
            },
        ),
        (
            Data::new_with_error(Error::TooLate),
            TxAckOutcome::Rejected(TxAckError::TooLate),
        ),
        (
            Data::new_with_error(Error::CollisionBeacon),
            TxAckOutcome::Rejected(TxAckError::CollisionBeacon),
        ),
        (
            Data::new_with_error(Error::GpsUnlocked),
            TxAckOutcome::Rejected(TxAckError::GpsUnlocked),
        ),
        (
            Data::new_with_error(Error::AdjustedTransmitPower(Some(27), None)),
            TxAckOutcome::Sent {
                tx_power_warning_dbm: Some(27),
            },
        ),
    ];
    for (i, (data, expected)) in cases.into_iter().enumerate() {
        let ack = TxAck {
            random_token: i as u16,
            gateway_mac: MacAddress::from(GW.0),
            data,
        };
        let dgram = serialize(&ack);
        let Upstream::TxAck { header, json, .. } = wire::parse_upstream(&dgram).unwrap() else {
            panic!("not TX_ACK");
        };
        assert_eq!(header.token, i as u16);
        assert_eq!(wire::decode_tx_ack(json).unwrap(), expected, "case {i}");
    }
}

fn push_data(json: &str) -> Vec<u8> {
    let mut d = vec![2, 0, 1, 0];
    d.extend_from_slice(&GW.0);
    d.extend_from_slice(json.as_bytes());
    d
}

#[test]
fn dialects_semtech_udp_refuses_and_we_read() {
    let samples = [
        // A stat without `time` (forwarders without a clock).
        r#"{"stat":{"rxnb":1,"rxok":1,"rxfw":1,"ackr":100.0,"dwnb":0,"txnb":0}}"#,
        // An FSK packet: numeric `datr`, no `lsnr`, no `codr`.
        r#"{"rxpk":[{"tmst":1,"chan":9,"rfch":0,"freq":868.8,"stat":1,"modu":"FSK","datr":50000,"rssi":-75,"size":2,"data":"QAE="}]}"#,
        // `jver: 2` without `aesk` (it requires every jver 2 field).
        r#"{"rxpk":[{"jver":2,"brd":0,"tmst":1,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","size":2,"data":"QAE=","rsig":[{"ant":0,"chan":0,"rssic":-50,"lsnr":9.0}]}]}"#,
    ];
    for json in samples {
        let dgram = push_data(json);
        assert!(
            Packet::parse(&dgram).is_err(),
            "semtech-udp now reads {json}"
        );
        let Upstream::PushData { json: body, .. } = wire::parse_upstream(&dgram).unwrap() else {
            panic!()
        };
        let p = wire::decode_push_data(GW, body, SystemTime::UNIX_EPOCH).unwrap();
        assert!(p.uplinks.iter().all(|u| u.is_ok()), "{json}");
        assert!(p.stats.as_ref().is_none_or(|s| s.is_ok()), "{json}");
    }
    // semtech-udp cannot express a GPS-timed downlink: its `tmms` is a u32, while GPS
    // milliseconds passed 2^32 in 1980.
    let gps = TxPacket {
        timing: DownlinkTiming::GpsTime {
            tmms: 1_398_506_420_250,
        },
        frequency_hz: 869_525_000,
        rf_chain: 0,
        power_dbm: 14,
        modulation: Modulation::Lora {
            spreading_factor: 9,
            bandwidth_hz: 125_000,
            code_rate: None,
        },
        ipol: true,
        phy_payload: vec![0x60; 12],
    };
    assert!(Packet::parse(&wire::encode_pull_resp(2, 1, &gps).unwrap()).is_err());
}

#[test]
fn semtech_udp_panics_on_a_non_ascii_datr_and_we_do_not() {
    // A raw (unescaped) "SF1é…" makes its data-rate parser slice a string inside a
    // UTF-8 character.
    let dgram = push_data(
        r#"{"rxpk":[{"tmst":1,"chan":0,"rfch":0,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF1éBW125","codr":"4/5","lsnr":1.0,"rssi":-50,"size":2,"data":"QAE="}]}"#,
    );
    let theirs = std::panic::catch_unwind(|| Packet::parse(&dgram).map(|_| ()));
    assert!(theirs.is_err(), "semtech-udp no longer panics here");
    let Upstream::PushData { json, .. } = wire::parse_upstream(&dgram).unwrap() else {
        panic!()
    };
    let p = wire::decode_push_data(GW, json, SystemTime::UNIX_EPOCH).unwrap();
    assert!(matches!(
        p.uplinks[0],
        Err(wire::RxpkError::UnknownDataRate)
    ));
}
