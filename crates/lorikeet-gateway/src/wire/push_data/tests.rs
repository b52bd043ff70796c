//! Tests of PUSH_DATA decoding and encoding.
use super::*;
use std::time::Duration;

const GW: Eui64 = Eui64([0xaa, 0x55, 0x5a, 0, 0, 0, 0, 1]);

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn one(json: &str) -> Result<UplinkFrame, RxpkError> {
    let mut p = decode_push_data(GW, json.as_bytes(), now()).unwrap();
    assert_eq!(p.uplinks.len(), 1);
    p.uplinks.remove(0)
}

#[test]
fn semtech_rxpk_with_time() {
    let f = one(
        r#"{"rxpk":[{"time":"2013-03-31T16:21:17.528002Z","tmst":3512348611,"chan":2,"rfch":0,"freq":866.349812,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/6","rssi":-35,"lsnr":5.1,"size":32,"data":"-DS4CGaDCdG+48eJNM3Vai-zDpsR71Pn9CPA9uCON84"}]}"#,
    );
    // That sample from the protocol document uses a URL-safe alphabet: refused.
    assert!(matches!(f, Err(RxpkError::BadBase64(_))));
    let f = one(r#"{"rxpk":[{"time":"2013-03-31T16:21:17.528002Z","tmst":3512348611,"chan":2,"rfch":0,"freq":866.349812,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/6","rssi":-35,"lsnr":5.1,"size":4,"data":"QAECAw=="}]}"#).unwrap();
    assert_eq!(f.tmst, 3_512_348_611);
    assert_eq!(f.frequency_hz, 866_349_812);
    assert_eq!(f.phy_payload, vec![0x40, 1, 2, 3]);
    assert_eq!(f.chan, Some(2));
    assert_eq!(f.rfch, Some(0));
    assert_eq!(f.rssi_dbm, -35);
    assert_eq!(f.snr_db, Some(5.1));
    assert_eq!(
        f.modulation,
        Modulation::Lora {
            spreading_factor: 7,
            bandwidth_hz: 125_000,
            code_rate: Some(CodeRate::Cr46)
        }
    );
    assert_eq!(f.time.unwrap().timestamp_subsec_micros(), 528_002);
    assert_eq!(f.received_at, now());
    assert_eq!(f.gateway_id, GW);
}

#[test]
fn fsk_without_lsnr_or_codr() {
    let f = one(r#"{"rxpk":[{"tmst":1,"chan":9,"rfch":1,"freq":868.8,"stat":1,"modu":"FSK","datr":50000,"rssi":-75,"size":2,"data":"QAE="}]}"#).unwrap();
    assert_eq!(
        f.modulation,
        Modulation::Fsk {
            bit_rate_bps: 50_000
        }
    );
    assert_eq!(f.snr_db, None);
}

#[test]
fn jver2_rsig_fills_missing_top_level_values_from_the_best_antenna() {
    let f = one(r#"{"rxpk":[{"aesk":0,"brd":263,"codr":"4/5","data":"QAE=","datr":"SF12BW125","freq":868.5,"jver":2,"modu":"LORA","rsig":[{"ant":0,"chan":7,"lsnr":-3.5,"rssic":-103},{"ant":1,"chan":7,"lsnr":7.8,"rssic":-110,"etime":"abcd","foff":-120}],"size":2,"stat":1,"time":"2022-03-31T07:51:15.709338Z","tmst":445296860}]}"#).unwrap();
    assert_eq!(f.antennas.len(), 2);
    assert_eq!(f.snr_db, Some(7.8));
    assert_eq!(f.rssi_dbm, -110);
    assert_eq!(f.chan, Some(7));
    assert_eq!(f.frequency_offset_hz, Some(-120));
    assert_eq!(f.board, Some(263));
    assert_eq!(f.rfch, None);
    assert_eq!(f.antennas[1].etime.as_deref(), Some("abcd"));
}

#[test]
fn per_rxpk_errors_do_not_spoil_the_others() {
    let p = decode_push_data(GW, br#"{"rxpk":[
        {"tmst":1,"freq":868.1,"stat":-1,"modu":"LORA","datr":"SF7BW125","rssi":-1,"data":"QAE="},
        {"tmst":1,"freq":868.1,"stat":0,"modu":"LORA","datr":"SF7BW125","rssi":-1,"data":"QAE="},
        {"tmst":"x"},
        {"tmst":1,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","rssi":-1,"data":"Q!E="},
        {"tmst":1,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF13BW125","rssi":-1,"data":"QAE="},
        {"tmst":1,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF1\u00e9BW125","rssi":-1,"data":"QAE="},
        {"tmst":1,"freq":868.1,"stat":1,"modu":"LR-FHSS","datr":"M0CW137","rssi":-1,"data":"QAE="},
        {"tmst":1,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"5/4","rssi":-1,"data":"QAE="},
        {"tmst":4294967296,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","rssi":-1,"data":"QAE="},
        {"tmst":1,"freq":-1,"stat":1,"modu":"LORA","datr":"SF7BW125","rssi":-1,"data":"QAE="},
        {"tmst":1,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","data":"QAE="},
        7,
        {"tmst":1,"freq":868.1,"stat":1,"datr":"SF9BW125","rssi":-1,"data":"QAE="}
    ],"stat":{"rxnb":-1}}"#, now()).unwrap();
    let kinds: Vec<String> = p
        .uplinks
        .iter()
        .map(|r| match r {
            Ok(_) => "ok".into(),
            Err(e) => format!("{e:?}")
                .split(['(', ' '])
                .next()
                .unwrap_or("")
                .to_string(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "CrcFailed",
            "CrcMissing",
            "Json",
            "BadBase64",
            "UnknownDataRate",
            "UnknownDataRate",
            "UnknownModulation",
            "UnknownCodeRate",
            "OutOfRange",
            "OutOfRange",
            "Missing",
            "Json",
            "ok"
        ]
    );
    assert!(matches!(p.stats, Some(Err(StatError::Json(_)))));
}

#[test]
fn oversize_payloads_are_refused_before_and_after_decoding() {
    let big = BASE64.encode([0u8; 256]);
    let json = format!(
        r#"{{"rxpk":[{{"tmst":1,"freq":868.1,"stat":1,"datr":"SF7BW125","rssi":-1,"data":"{big}"}}]}}"#
    );
    assert!(matches!(one(&json), Err(RxpkError::PayloadTooLarge { .. })));
    let max = BASE64.encode([7u8; 255]);
    let json = format!(
        r#"{{"rxpk":[{{"tmst":1,"freq":868.1,"stat":1,"datr":"SF7BW125","rssi":-1,"data":"{max}"}}]}}"#
    );
    assert_eq!(one(&json).unwrap().phy_payload.len(), 255);
    let huge = "A".repeat(60_000);
    let json = format!(
        r#"{{"rxpk":[{{"tmst":1,"freq":868.1,"stat":1,"datr":"SF7BW125","rssi":-1,"data":"{huge}"}}]}}"#
    );
    assert!(matches!(one(&json), Err(RxpkError::PayloadTooLarge { .. })));
}

#[test]
fn escaped_strings_are_accepted() {
    // Some JSON writers escape '/' as "\/".
    let f = one(r#"{"rxpk":[{"tmst":1,"freq":868.1,"stat":1,"datr":"SF7BW125","codr":"4\/5","rssi":-1,"data":"\/\/8="}]}"#).unwrap();
    assert_eq!(f.phy_payload, vec![0xff, 0xff]);
}

#[test]
fn stat_without_time_and_gmt_time() {
    let p = decode_push_data(
        GW,
        br#"{"stat":{"rxnb":2,"rxok":2,"rxfw":2,"ackr":100.0,"dwnb":0,"txnb":0}}"#,
        now(),
    )
    .unwrap();
    let s = p.stats.unwrap().unwrap();
    assert_eq!(s.time, None);
    assert_eq!(s.rx_received, Some(2));
    assert!(p.uplinks.is_empty());
    let p = decode_push_data(GW, br#"{"stat":{"time":"2014-01-12 08:59:28 GMT","lati":46.24,"long":3.2523,"alti":145,"rxnb":2,"rxok":2,"rxfw":2,"ackr":null,"dwnb":2,"txnb":2,"temp":23.5}}"#, now()).unwrap();
    let s = p.stats.unwrap().unwrap();
    assert_eq!(s.time.unwrap().timestamp(), 1_389_517_168);
    assert_eq!(s.location.unwrap().altitude_m, Some(145.0));
    assert_eq!(s.ack_ratio_pct, None);
}

#[test]
fn whole_body_errors() {
    for bad in [
        &b"not json"[..],
        b"[]",
        b"{\"rxpk\":{}}",
        b"",
        b"\xff\xfe",
        b"{\"rxpk\":[1,2",
    ] {
        assert!(
            matches!(
                decode_push_data(GW, bad, now()),
                Err(DatagramError::InvalidJson(_))
            ),
            "{bad:?}"
        );
    }
    // Unknown members are ignored.
    assert!(decode_push_data(GW, b"{\"other\":1}", now()).is_ok());
}

#[test]
fn datr_grammar() {
    assert_eq!(parse_lora_datr("SF12BW500"), Some((12, 500_000)));
    assert_eq!(parse_lora_datr("SF5BW1625"), Some((5, 1_625_000)));
    for bad in [
        "SF+7BW125",
        "SF7BW126",
        "SF7",
        "BW125",
        "sf7bw125",
        "SF07BW125X",
        "",
        "SF\u{e9}BW125",
    ] {
        assert_eq!(parse_lora_datr(bad), None, "{bad}");
    }
}

#[test]
fn encode_then_decode_round_trips() {
    let frame = UplinkFrame {
        gateway_id: GW,
        phy_payload: vec![0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        received_at: now(),
        tmst: u32::MAX,
        time: json::parse_rx_time("2024-05-01T10:00:00.123456Z"),
        tmms: Some(1_400_000_000_123),
        fine_time_ns: Some(999_999_999),
        frequency_hz: 868_300_000,
        chan: Some(1),
        rfch: Some(1),
        board: None,
        modem_id: Some(8),
        modulation: Modulation::Lora {
            spreading_factor: 9,
            bandwidth_hz: 125_000,
            code_rate: Some(CodeRate::Cr45),
        },
        rssi_dbm: -101,
        rssi_signal_dbm: Some(-104),
        snr_db: Some(-7.25),
        frequency_offset_hz: Some(-275),
        antennas: vec![AntennaSignal {
            antenna: 0,
            chan: Some(1),
            rssi_channel_dbm: -101,
            rssi_signal_dbm: Some(-104),
            snr_db: Some(-7.25),
            etime: Some("AAEC".into()),
            frequency_offset_hz: Some(-275),
        }],
    };
    let dgram = encode_push_data(2, 99, GW, std::slice::from_ref(&frame), None);
    let up = super::super::parse_upstream(&dgram).unwrap();
    let super::super::Upstream::PushData { json, .. } = up else {
        panic!()
    };
    let mut p = decode_push_data(GW, json, now()).unwrap();
    assert_eq!(p.uplinks.remove(0).unwrap(), frame);
}
