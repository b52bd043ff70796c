//! Property tests: every encoder and decoder round-trips, and no decoder panics
//! on arbitrary input.

// Strategy and helper closures run inside tests: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use lorikeet_lorawan::crypto::{
    self, DataFrame, JoinContext, JoinType, SessionKeys, UplinkMicContext, Version,
};
use lorikeet_lorawan::fcnt::{self, FCntCheck};
use lorikeet_lorawan::mac::{self, MacCommand};
use lorikeet_lorawan::phy::{
    DataPayload, Direction, DlSettings, EncryptedJoinAccept, FCtrl, FHdr, JoinAcceptPayload,
    JoinRequestPayload, MHdr, MType, MacPayload, RejoinRequestPayload, MAX_PHY_PAYLOAD_LEN,
};
use lorikeet_lorawan::{Aes128Key, DevAddr, DevNonce, Eui64, JoinNonce, NetId, PhyPayload};
use proptest::prelude::*;

fn eui() -> impl Strategy<Value = Eui64> {
    any::<u64>().prop_map(Eui64::from_u64)
}
fn net_id() -> impl Strategy<Value = NetId> {
    (0u32..=0xff_ffff).prop_map(|v| NetId::from_u32(v).unwrap())
}
fn dev_addr() -> impl Strategy<Value = DevAddr> {
    any::<u32>().prop_map(DevAddr::from_u32)
}
fn key() -> impl Strategy<Value = Aes128Key> {
    any::<[u8; 16]>().prop_map(Aes128Key::from_bytes)
}
fn f_ctrl() -> impl Strategy<Value = FCtrl> {
    (0u8..16).prop_map(|b| FCtrl::from_byte(b << 4))
}
fn frequency_hz() -> impl Strategy<Value = u32> {
    (0u32..=0xff_ffff).prop_map(|v| v * 100)
}

fn data_payload() -> impl Strategy<Value = DataPayload> {
    let port_and_payload = prop_oneof![
        Just((None, vec![])),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|d| (Some(0u8), d)),
        (1u8..=255, prop::collection::vec(any::<u8>(), 0..200)).prop_map(|(p, d)| (Some(p), d)),
    ];
    (
        dev_addr(),
        f_ctrl(),
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..=15),
        port_and_payload,
    )
        .prop_map(
            |(dev_addr, f_ctrl, f_cnt, f_opts, (f_port, mut frm_payload))| {
                let f_opts = if f_port == Some(0) { vec![] } else { f_opts };
                // Keep the frame within 255 bytes.
                let room = MAX_PHY_PAYLOAD_LEN - 1 - 7 - f_opts.len() - 1 - 4;
                frm_payload.truncate(room);
                DataPayload {
                    fhdr: FHdr {
                        dev_addr,
                        f_ctrl,
                        f_cnt,
                        f_opts,
                    },
                    f_port,
                    frm_payload,
                }
            },
        )
}

fn rejoin() -> impl Strategy<Value = RejoinRequestPayload> {
    prop_oneof![
        (net_id(), eui(), any::<u16>()).prop_map(|(net_id, dev_eui, rj_count0)| {
            RejoinRequestPayload::Type0 {
                net_id,
                dev_eui,
                rj_count0,
            }
        }),
        (eui(), eui(), any::<u16>()).prop_map(|(join_eui, dev_eui, rj_count1)| {
            RejoinRequestPayload::Type1 {
                join_eui,
                dev_eui,
                rj_count1,
            }
        }),
        (net_id(), eui(), any::<u16>()).prop_map(|(net_id, dev_eui, rj_count0)| {
            RejoinRequestPayload::Type2 {
                net_id,
                dev_eui,
                rj_count0,
            }
        }),
    ]
}

fn phy_payload() -> impl Strategy<Value = PhyPayload> {
    let data_mtype = prop_oneof![
        Just(MType::UnconfirmedDataUp),
        Just(MType::UnconfirmedDataDown),
        Just(MType::ConfirmedDataUp),
        Just(MType::ConfirmedDataDown),
    ];
    let body = prop_oneof![
        (eui(), eui(), any::<u16>()).prop_map(|(join_eui, dev_eui, n)| {
            (
                MType::JoinRequest,
                MacPayload::JoinRequest(JoinRequestPayload {
                    join_eui,
                    dev_eui,
                    dev_nonce: DevNonce(n),
                }),
            )
        }),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 12),
            prop::collection::vec(any::<u8>(), 28)
        ]
        .prop_map(|b| (
            MType::JoinAccept,
            MacPayload::JoinAccept(EncryptedJoinAccept::new(b).unwrap())
        )),
        rejoin().prop_map(|r| (MType::RejoinRequest, MacPayload::RejoinRequest(r))),
        (data_mtype, data_payload()).prop_map(|(m, d)| (m, MacPayload::Data(d))),
        prop::collection::vec(any::<u8>(), 0..=250)
            .prop_map(|b| (MType::Proprietary, MacPayload::Proprietary(b))),
    ];
    (body, any::<[u8; 4]>()).prop_map(|((m_type, payload), mic)| PhyPayload {
        mhdr: MHdr::new(m_type),
        payload,
        mic,
    })
}

fn uplink_command() -> impl Strategy<Value = MacCommand> {
    use MacCommand as M;
    prop_oneof![
        (0u8..16).prop_map(|v| M::ResetInd(mac::ResetInd {
            dev_lorawan_minor: v
        })),
        Just(M::LinkCheckReq),
        any::<[bool; 3]>().prop_map(|[a, b, c]| M::LinkAdrAns(mac::LinkAdrAns {
            power_ack: a,
            data_rate_ack: b,
            channel_mask_ack: c
        })),
        Just(M::DutyCycleAns),
        any::<[bool; 3]>().prop_map(|[a, b, c]| M::RxParamSetupAns(mac::RxParamSetupAns {
            rx1_dr_offset_ack: a,
            rx2_data_rate_ack: b,
            channel_ack: c
        })),
        (any::<u8>(), -32i8..=31).prop_map(|(battery, margin_db)| M::DevStatusAns(
            mac::DevStatusAns { battery, margin_db }
        )),
        any::<[bool; 2]>().prop_map(|[a, b]| M::NewChannelAns(mac::NewChannelAns {
            data_rate_range_ok: a,
            channel_frequency_ok: b
        })),
        Just(M::RxTimingSetupAns),
        Just(M::TxParamSetupAns),
        any::<[bool; 2]>().prop_map(|[a, b]| M::DlChannelAns(mac::DlChannelAns {
            uplink_frequency_exists: a,
            channel_frequency_ok: b
        })),
        (0u8..16).prop_map(|v| M::RekeyInd(mac::RekeyInd {
            dev_lorawan_minor: v
        })),
        Just(M::AdrParamSetupAns),
        Just(M::DeviceTimeReq),
        any::<bool>().prop_map(|t| M::RejoinParamSetupAns(mac::RejoinParamSetupAns { time_ok: t })),
        (0u8..8).prop_map(|p| M::PingSlotInfoReq(mac::PingSlotInfoReq { periodicity: p })),
        any::<[bool; 2]>().prop_map(|[a, b]| M::PingSlotChannelAns(mac::PingSlotChannelAns {
            data_rate_ok: a,
            channel_frequency_ok: b
        })),
        Just(M::BeaconTimingReq),
        any::<bool>().prop_map(|ok| M::BeaconFreqAns(mac::BeaconFreqAns {
            beacon_frequency_ok: ok
        })),
        any::<u8>().prop_map(|class| M::DeviceModeInd(mac::DeviceModeInd { class })),
    ]
}

fn downlink_command() -> impl Strategy<Value = MacCommand> {
    use MacCommand as M;
    prop_oneof![
        (0u8..16).prop_map(|v| M::ResetConf(mac::ResetConf {
            serv_lorawan_minor: v
        })),
        (any::<u8>(), any::<u8>()).prop_map(|(margin_db, gw_cnt)| M::LinkCheckAns(
            mac::LinkCheckAns { margin_db, gw_cnt }
        )),
        (0u8..16, 0u8..16, any::<u16>(), 0u8..8, 0u8..16).prop_map(
            |(data_rate, tx_power, ch_mask, ch_mask_cntl, nb_trans)| M::LinkAdrReq(
                mac::LinkAdrReq {
                    data_rate,
                    tx_power,
                    ch_mask,
                    ch_mask_cntl,
                    nb_trans
                }
            )
        ),
        (0u8..16).prop_map(|v| M::DutyCycleReq(mac::DutyCycleReq { max_duty_cycle: v })),
        (0u8..8, 0u8..16, frequency_hz()).prop_map(|(a, b, f)| M::RxParamSetupReq(
            mac::RxParamSetupReq {
                rx1_dr_offset: a,
                rx2_data_rate: b,
                frequency_hz: f
            }
        )),
        Just(M::DevStatusReq),
        (any::<u8>(), frequency_hz(), 0u8..16, 0u8..16).prop_map(|(i, f, lo, hi)| {
            M::NewChannelReq(mac::NewChannelReq {
                ch_index: i,
                frequency_hz: f,
                min_dr: lo,
                max_dr: hi,
            })
        }),
        (0u8..16).prop_map(|d| M::RxTimingSetupReq(mac::RxTimingSetupReq { delay_seconds: d })),
        (any::<[bool; 2]>(), 0u8..16).prop_map(|([a, b], e)| M::TxParamSetupReq(
            mac::TxParamSetupReq {
                downlink_dwell_time_400ms: a,
                uplink_dwell_time_400ms: b,
                max_eirp_index: e
            }
        )),
        (any::<u8>(), frequency_hz()).prop_map(|(i, f)| M::DlChannelReq(mac::DlChannelReq {
            ch_index: i,
            frequency_hz: f
        })),
        (0u8..16).prop_map(|v| M::RekeyConf(mac::RekeyConf {
            serv_lorawan_minor: v
        })),
        (0u8..16, 0u8..16).prop_map(|(l, d)| M::AdrParamSetupReq(mac::AdrParamSetupReq {
            limit_exp: l,
            delay_exp: d
        })),
        (any::<u32>(), any::<u8>()).prop_map(|(s, f)| M::DeviceTimeAns(mac::DeviceTimeAns {
            gps_time_seconds: s,
            fraction_256ths: f
        })),
        (0u8..8, 0u8..8, 0u8..8, 0u8..16).prop_map(|(p, m, t, d)| M::ForceRejoinReq(
            mac::ForceRejoinReq {
                period: p,
                max_retries: m,
                rejoin_type: t,
                data_rate: d
            }
        )),
        (0u8..16, 0u8..16).prop_map(|(t, c)| M::RejoinParamSetupReq(mac::RejoinParamSetupReq {
            max_time_n: t,
            max_count_n: c
        })),
        Just(M::PingSlotInfoAns),
        (frequency_hz(), 0u8..16).prop_map(|(f, d)| M::PingSlotChannelReq(
            mac::PingSlotChannelReq {
                frequency_hz: f,
                data_rate: d
            }
        )),
        (any::<u16>(), any::<u8>()).prop_map(|(d, c)| M::BeaconTimingAns(mac::BeaconTimingAns {
            delay_30ms: d,
            channel: c
        })),
        frequency_hz().prop_map(|f| M::BeaconFreqReq(mac::BeaconFreqReq { frequency_hz: f })),
        any::<u8>().prop_map(|class| M::DeviceModeConf(mac::DeviceModeConf { class })),
    ]
}

/// A command list, optionally ending in a proprietary command (which takes the rest).
fn command_list(cmd: impl Strategy<Value = MacCommand>) -> impl Strategy<Value = Vec<MacCommand>> {
    (
        prop::collection::vec(cmd, 0..12),
        prop::option::of((0x80u8..=0xff, prop::collection::vec(any::<u8>(), 0..8))),
    )
        .prop_map(|(mut cmds, prop)| {
            if let Some((cid, payload)) = prop {
                cmds.push(MacCommand::Proprietary { cid, payload });
            }
            cmds
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn phy_payload_round_trips(phy in phy_payload()) {
        let bytes = phy.encode().unwrap();
        prop_assert!(bytes.len() <= MAX_PHY_PAYLOAD_LEN);
        prop_assert_eq!(PhyPayload::decode(&bytes).unwrap(), phy);
    }

    #[test]
    fn decode_never_panics_and_accepted_bytes_re_encode_exactly(
        bytes in prop::collection::vec(any::<u8>(), 0..300)
    ) {
        if let Ok(phy) = PhyPayload::decode(&bytes) {
            prop_assert_eq!(phy.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn decode_never_panics_on_frames_that_look_right(
        mhdr in prop_oneof![Just(0x00u8), Just(0x20), Just(0x40), Just(0x60), Just(0x80),
                            Just(0xa0), Just(0xc0), Just(0xe0), any::<u8>()],
        rest in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut bytes = vec![mhdr];
        bytes.extend(rest);
        if let Ok(phy) = PhyPayload::decode(&bytes) {
            prop_assert_eq!(phy.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn uplink_mac_commands_round_trip(cmds in command_list(uplink_command())) {
        let bytes = mac::encode(&cmds).unwrap();
        prop_assert_eq!(bytes.len(), cmds.iter().map(MacCommand::encoded_len).sum::<usize>());
        prop_assert_eq!(mac::decode_uplink(&bytes).unwrap(), cmds);
    }

    #[test]
    fn downlink_mac_commands_round_trip(cmds in command_list(downlink_command())) {
        let bytes = mac::encode(&cmds).unwrap();
        prop_assert_eq!(bytes.len(), cmds.iter().map(MacCommand::encoded_len).sum::<usize>());
        prop_assert_eq!(mac::decode_downlink(&bytes).unwrap(), cmds);
    }

    #[test]
    fn mac_decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        for direction in [Direction::Uplink, Direction::Downlink] {
            match mac::decode(&bytes, direction) {
                // Whatever decodes re-encodes to the same length and decodes the same
                // (RFU bits may differ).
                Ok(cmds) => {
                    let again = mac::encode(&cmds).unwrap();
                    prop_assert_eq!(again.len(), bytes.len());
                    prop_assert_eq!(mac::decode(&again, direction).unwrap(), cmds);
                }
                Err(mac::MacError::Truncated { cid, offset, .. }) => {
                    prop_assert_eq!(bytes.get(offset), Some(&cid));
                }
                Err(mac::MacError::UnknownCid { cid, offset, .. }) => {
                    prop_assert_eq!(bytes.get(offset), Some(&cid));
                }
                Err(e) => prop_assert!(false, "unexpected decode error {e:?}"),
            }
        }
    }

    #[test]
    fn join_accept_plaintext_round_trips(
        join_nonce in 0u32..=0xff_ffff, net in net_id(), addr in dev_addr(),
        opt_neg: bool, rx1 in 0u8..8, rx2 in 0u8..16, rx_delay: u8,
        cf_list in prop::option::of(any::<[u8; 16]>()),
    ) {
        let ja = JoinAcceptPayload {
            join_nonce: JoinNonce::new(join_nonce).unwrap(),
            home_net_id: net,
            dev_addr: addr,
            dl_settings: DlSettings { opt_neg, rx1_dr_offset: rx1, rx2_dr: rx2 },
            rx_delay,
            cf_list,
        };
        prop_assert_eq!(JoinAcceptPayload::decode(&ja.encode().unwrap()).unwrap(), ja);
    }

    #[test]
    fn join_accept_decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..40), k in key()) {
        let _ = JoinAcceptPayload::decode(&bytes);
        let mut frame = vec![0x20];
        frame.extend(&bytes);
        if let Ok(phy) = PhyPayload::decode(&frame) {
            // Any 17/33-byte JoinAccept decrypts to some fields; a random one fails the MIC.
            prop_assert!(crypto::decrypt_join_accept(&phy, &k).is_ok());
            let ctx = JoinContext {
                join_type: JoinType::Join,
                join_eui: Eui64::default(),
                dev_eui: Eui64::default(),
                dev_nonce: DevNonce(0),
            };
            let _ = crypto::open_join_accept(&phy, &ctx, &k);
        }
    }

    #[test]
    fn openers_never_panic_on_random_frames(
        bytes in prop::collection::vec(any::<u8>(), 0..80), f_cnt: u32,
        k1 in key(), k2 in key(), v11: bool,
    ) {
        let version = if v11 { Version::V1_1 } else { Version::V1_0 };
        let keys = SessionKeys {
            f_nwk_s_int_key: k1.clone(),
            s_nwk_s_int_key: k1.clone(),
            nwk_s_enc_key: k2.clone(),
            app_s_key: k2,
        };
        if let Ok(phy) = PhyPayload::decode(&bytes) {
            let ctx = UplinkMicContext::default();
            let _ = crypto::open_data_uplink(&phy, f_cnt, version, &keys, &ctx);
            let _ = crypto::open_data_downlink(&phy, f_cnt, version, &keys, f_cnt);
            let _ = crypto::verify_data_uplink_mic(&phy, f_cnt, version, &keys, &ctx);
            let _ = crypto::verify_join_request_mic(&phy, &k1);
            let _ = crypto::verify_rejoin_request_mic(&phy, &k1);
        }
    }

    #[test]
    fn data_frames_round_trip_through_crypto(
        uplink: bool, confirmed: bool, v11: bool, addr in dev_addr(), f_cnt: u32,
        f_ctrl in f_ctrl(), f_opts in prop::collection::vec(any::<u8>(), 0..=15),
        port_payload in prop_oneof![
            Just((None, vec![])),
            prop::collection::vec(any::<u8>(), 0..60).prop_map(|d| (Some(0u8), d)),
            (1u8..=255, prop::collection::vec(any::<u8>(), 0..100)).prop_map(|(p, d)| (Some(p), d)),
        ],
        k in prop::array::uniform4(key()),
        conf_f_cnt: u32, tx_dr: u8, tx_ch: u8,
    ) {
        let (f_port, frm_payload) = port_payload;
        let f_opts = if f_port == Some(0) { vec![] } else { f_opts };
        let frame = DataFrame { confirmed, dev_addr: addr, f_ctrl, f_cnt, f_opts, f_port, frm_payload };
        let version = if v11 { Version::V1_1 } else { Version::V1_0 };
        let [a, b, c, d] = k;
        let keys = SessionKeys { f_nwk_s_int_key: a, s_nwk_s_int_key: b, nwk_s_enc_key: c, app_s_key: d };
        let ctx = UplinkMicContext { conf_f_cnt, tx_dr, tx_ch };
        let bytes = if uplink {
            crypto::build_data_uplink(&frame, version, &keys, &ctx)
        } else {
            crypto::build_data_downlink(&frame, version, &keys, conf_f_cnt)
        }
        .unwrap();
        let phy = PhyPayload::decode(&bytes).unwrap();
        let opened = if uplink {
            crypto::open_data_uplink(&phy, f_cnt, version, &keys, &ctx)
        } else {
            crypto::open_data_downlink(&phy, f_cnt, version, &keys, conf_f_cnt)
        };
        prop_assert_eq!(opened.unwrap(), frame);
    }

    #[test]
    fn join_accepts_round_trip_through_crypto(
        join_type in prop_oneof![Just(JoinType::Join), Just(JoinType::Rejoin0),
                                 Just(JoinType::Rejoin1), Just(JoinType::Rejoin2)],
        opt_neg: bool, join_eui in eui(), dev_eui in eui(), nonce: u16,
        join_nonce in 0u32..=0xff_ffff, net in net_id(), addr in dev_addr(),
        cf_list in prop::option::of(any::<[u8; 16]>()), nwk_key in key(),
    ) {
        let ja = JoinAcceptPayload {
            join_nonce: JoinNonce::new(join_nonce).unwrap(),
            home_net_id: net,
            dev_addr: addr,
            dl_settings: DlSettings { opt_neg, rx1_dr_offset: 1, rx2_dr: 2 },
            rx_delay: 1,
            cf_list,
        };
        let ctx = JoinContext { join_type, join_eui, dev_eui, dev_nonce: DevNonce(nonce) };
        let bytes = crypto::build_join_accept(&ja, &ctx, &nwk_key).unwrap();
        let phy = PhyPayload::decode(&bytes).unwrap();
        prop_assert_eq!(crypto::open_join_accept(&phy, &ctx, &nwk_key).unwrap(), ja);
    }

    #[test]
    fn f_cnt_reconstruction_properties(last in prop::option::of(any::<u32>()), wire: u16, max_gap in 0u32..70_000) {
        let got = fcnt::reconstruct_f_cnt(last, wire, max_gap);
        if let Some(c) = got {
            prop_assert_eq!(c as u16, wire);
            match last {
                Some(l) => prop_assert!(c > l && c - l <= max_gap),
                None => prop_assert!(c < max_gap),
            }
        }
        match fcnt::check_f_cnt(last, wire, max_gap) {
            FCntCheck::Next { f_cnt, skipped } => {
                prop_assert_eq!(Some(f_cnt), got);
                prop_assert!(skipped < max_gap);
            }
            FCntCheck::Retransmission { f_cnt } => {
                prop_assert_eq!(Some(f_cnt), last);
                prop_assert_eq!(f_cnt as u16, wire);
                prop_assert_eq!(got, None);
            }
            FCntCheck::OutOfWindow { candidate } => {
                prop_assert_eq!(candidate as u16, wire);
                prop_assert_eq!(got, None);
            }
            FCntCheck::Exhausted => prop_assert_eq!(got, None),
        }
    }

    #[test]
    fn text_parsers_never_panic(s in "\\PC{0,40}") {
        let _ = s.parse::<Eui64>();
        let _ = s.parse::<DevAddr>();
        let _ = s.parse::<NetId>();
        let _ = Aes128Key::from_hex(&s);
        let _ = serde_json::from_str::<Eui64>(&s);
    }
}
