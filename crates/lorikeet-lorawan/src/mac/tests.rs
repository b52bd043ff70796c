use super::*;

#[test]
fn decodes_a_mixed_uplink_sequence() {
    // FOpts of the brocaar/lorawan 1.0 vector: LinkCheckReq, LinkADRAns(ch+power ack).
    let cmds = decode_uplink(&[0x02, 0x03, 0x05]).unwrap();
    assert_eq!(
        cmds,
        vec![
            MacCommand::LinkCheckReq,
            MacCommand::LinkAdrAns(LinkAdrAns {
                power_ack: true,
                data_rate_ack: false,
                channel_mask_ack: true
            })
        ]
    );
    assert_eq!(encode(&cmds).unwrap(), [0x02, 0x03, 0x05]);
}

#[test]
fn same_cid_means_different_things_per_direction() {
    let bytes = [0x06, 0xfe, 0x3e];
    assert_eq!(
        decode_uplink(&bytes).unwrap(),
        vec![MacCommand::DevStatusAns(DevStatusAns {
            battery: 254,
            margin_db: -2
        })]
    );
    // Downlink 0x06 is DevStatusReq without payload; 0xfe then starts a proprietary
    // command that swallows the rest.
    assert_eq!(
        decode_downlink(&bytes).unwrap(),
        vec![
            MacCommand::DevStatusReq,
            MacCommand::Proprietary {
                cid: 0xfe,
                payload: vec![0x3e]
            }
        ]
    );
}

#[test]
fn truncated_commands_name_the_cid() {
    // A LinkADRReq with no payload at all.
    assert_eq!(
        decode_downlink(&[0x03]),
        Err(MacError::Truncated {
            cid: 0x03,
            offset: 0,
            needed: 4,
            available: 0
        })
    );
    assert_eq!(
        decode_downlink(&[0x02, 0x14, 0x01, 0x03, 0x51, 0xff, 0x00]),
        Err(MacError::Truncated {
            cid: 0x03,
            offset: 3,
            needed: 4,
            available: 3
        })
    );
    assert_eq!(
        decode_uplink(&[0x0d, 0x06, 0x01]),
        Err(MacError::Truncated {
            cid: 0x06,
            offset: 1,
            needed: 2,
            available: 1
        })
    );
}

#[test]
fn unknown_cids_are_errors_not_silent_stops() {
    assert_eq!(
        decode_uplink(&[0x02, 0x7f, 0x02]),
        Err(MacError::UnknownCid {
            cid: 0x7f,
            offset: 1,
            direction: Direction::Uplink
        })
    );
    // ForceRejoinReq exists only downlink.
    assert!(matches!(
        decode_uplink(&[0x0e, 0, 0]),
        Err(MacError::UnknownCid { cid: 0x0e, .. })
    ));
    assert!(decode_downlink(&[0x0e, 0, 0]).is_ok());
    assert!(matches!(
        decode_downlink(&[0x00]),
        Err(MacError::UnknownCid { cid: 0x00, .. })
    ));
}

#[test]
fn proprietary_takes_the_rest() {
    assert_eq!(
        decode_uplink(&[0x02, 0x80]).unwrap(),
        vec![
            MacCommand::LinkCheckReq,
            MacCommand::Proprietary {
                cid: 0x80,
                payload: vec![]
            }
        ]
    );
    let p = MacCommand::Proprietary {
        cid: 0x90,
        payload: vec![1, 2, 3],
    };
    assert_eq!(p.encoded_len(), 4);
    assert_eq!(p.direction(), None);
    assert_eq!(encode(std::slice::from_ref(&p)).unwrap(), [0x90, 1, 2, 3]);
    assert_eq!(
        encode(&[MacCommand::Proprietary {
            cid: 0x10,
            payload: vec![]
        }]),
        Err(MacError::NotProprietary { cid: 0x10 })
    );
}

#[test]
fn empty_input_is_no_commands() {
    assert_eq!(decode_uplink(&[]).unwrap(), vec![]);
    assert_eq!(decode_downlink(&[]).unwrap(), vec![]);
    assert_eq!(encode(&[]).unwrap(), Vec::<u8>::new());
}

/// One example of every command with its expected bytes.
fn every_command() -> Vec<(MacCommand, Vec<u8>)> {
    use MacCommand as M;
    vec![
        (
            M::ResetInd(ResetInd {
                dev_lorawan_minor: 1,
            }),
            vec![0x01, 0x01],
        ),
        (
            M::ResetConf(ResetConf {
                serv_lorawan_minor: 1,
            }),
            vec![0x01, 0x01],
        ),
        (M::LinkCheckReq, vec![0x02]),
        (
            M::LinkCheckAns(LinkCheckAns {
                margin_db: 20,
                gw_cnt: 3,
            }),
            vec![0x02, 20, 3],
        ),
        (
            M::LinkAdrReq(LinkAdrReq {
                data_rate: 5,
                tx_power: 1,
                ch_mask: 0x00ff,
                ch_mask_cntl: 0,
                nb_trans: 1,
            }),
            vec![0x03, 0x51, 0xff, 0x00, 0x01],
        ),
        (
            M::LinkAdrAns(LinkAdrAns {
                power_ack: true,
                data_rate_ack: true,
                channel_mask_ack: true,
            }),
            vec![0x03, 0x07],
        ),
        (
            M::DutyCycleReq(DutyCycleReq { max_duty_cycle: 7 }),
            vec![0x04, 0x07],
        ),
        (M::DutyCycleAns, vec![0x04]),
        (
            M::RxParamSetupReq(RxParamSetupReq {
                rx1_dr_offset: 2,
                rx2_data_rate: 3,
                frequency_hz: 869_525_000,
            }),
            vec![0x05, 0x23, 0xd2, 0xad, 0x84],
        ),
        (
            M::RxParamSetupAns(RxParamSetupAns {
                rx1_dr_offset_ack: true,
                rx2_data_rate_ack: true,
                channel_ack: true,
            }),
            vec![0x05, 0x07],
        ),
        (M::DevStatusReq, vec![0x06]),
        (
            M::DevStatusAns(DevStatusAns {
                battery: 115,
                margin_db: 7,
            }),
            vec![0x06, 0x73, 0x07],
        ),
        (
            M::NewChannelReq(NewChannelReq {
                ch_index: 3,
                frequency_hz: 867_100_000,
                min_dr: 0,
                max_dr: 5,
            }),
            vec![0x07, 0x03, 0x18, 0x4f, 0x84, 0x50],
        ),
        (
            M::NewChannelAns(NewChannelAns {
                data_rate_range_ok: true,
                channel_frequency_ok: true,
            }),
            vec![0x07, 0x03],
        ),
        (
            M::RxTimingSetupReq(RxTimingSetupReq { delay_seconds: 5 }),
            vec![0x08, 0x05],
        ),
        (M::RxTimingSetupAns, vec![0x08]),
        (
            M::TxParamSetupReq(TxParamSetupReq {
                downlink_dwell_time_400ms: true,
                uplink_dwell_time_400ms: false,
                max_eirp_index: 5,
            }),
            vec![0x09, 0x25],
        ),
        (M::TxParamSetupAns, vec![0x09]),
        (
            M::DlChannelReq(DlChannelReq {
                ch_index: 1,
                frequency_hz: 868_100_000,
            }),
            vec![0x0a, 0x01, 0x28, 0x76, 0x84],
        ),
        (
            M::DlChannelAns(DlChannelAns {
                uplink_frequency_exists: true,
                channel_frequency_ok: false,
            }),
            vec![0x0a, 0x02],
        ),
        (
            M::RekeyInd(RekeyInd {
                dev_lorawan_minor: 1,
            }),
            vec![0x0b, 0x01],
        ),
        (
            M::RekeyConf(RekeyConf {
                serv_lorawan_minor: 1,
            }),
            vec![0x0b, 0x01],
        ),
        (
            M::AdrParamSetupReq(AdrParamSetupReq {
                limit_exp: 6,
                delay_exp: 5,
            }),
            vec![0x0c, 0x65],
        ),
        (M::AdrParamSetupAns, vec![0x0c]),
        (M::DeviceTimeReq, vec![0x0d]),
        (
            M::DeviceTimeAns(DeviceTimeAns {
                gps_time_seconds: 1_234_567_890,
                fraction_256ths: 128,
            }),
            vec![0x0d, 0xd2, 0x02, 0x96, 0x49, 0x80],
        ),
        (
            M::ForceRejoinReq(ForceRejoinReq {
                period: 3,
                max_retries: 2,
                rejoin_type: 2,
                data_rate: 5,
            }),
            vec![0x0e, 0x25, 0x1a],
        ),
        (
            M::RejoinParamSetupReq(RejoinParamSetupReq {
                max_time_n: 10,
                max_count_n: 3,
            }),
            vec![0x0f, 0xa3],
        ),
        (
            M::RejoinParamSetupAns(RejoinParamSetupAns { time_ok: true }),
            vec![0x0f, 0x01],
        ),
        (
            M::PingSlotInfoReq(PingSlotInfoReq { periodicity: 5 }),
            vec![0x10, 0x05],
        ),
        (M::PingSlotInfoAns, vec![0x10]),
        (
            M::PingSlotChannelReq(PingSlotChannelReq {
                frequency_hz: 869_525_000,
                data_rate: 3,
            }),
            vec![0x11, 0xd2, 0xad, 0x84, 0x03],
        ),
        (
            M::PingSlotChannelAns(PingSlotChannelAns {
                data_rate_ok: true,
                channel_frequency_ok: true,
            }),
            vec![0x11, 0x03],
        ),
        (M::BeaconTimingReq, vec![0x12]),
        (
            M::BeaconTimingAns(BeaconTimingAns {
                delay_30ms: 0x0102,
                channel: 7,
            }),
            vec![0x12, 0x02, 0x01, 0x07],
        ),
        (
            M::BeaconFreqReq(BeaconFreqReq {
                frequency_hz: 923_300_000,
            }),
            vec![0x13, 0x68, 0xe2, 0x8c],
        ),
        (
            M::BeaconFreqAns(BeaconFreqAns {
                beacon_frequency_ok: true,
            }),
            vec![0x13, 0x01],
        ),
        (
            M::DeviceModeInd(DeviceModeInd { class: CLASS_C }),
            vec![0x20, 0x02],
        ),
        (
            M::DeviceModeConf(DeviceModeConf { class: CLASS_C }),
            vec![0x20, 0x02],
        ),
    ]
}

#[test]
fn every_command_encodes_decodes_and_knows_its_length() {
    for (cmd, bytes) in every_command() {
        assert_eq!(
            encode(std::slice::from_ref(&cmd)).unwrap(),
            bytes,
            "{cmd:?}"
        );
        assert_eq!(cmd.encoded_len(), bytes.len(), "{cmd:?}");
        assert_eq!(cmd.cid(), bytes[0], "{cmd:?}");
        let decoded = decode(&bytes, cmd.direction().unwrap()).unwrap();
        assert_eq!(decoded, vec![cmd.clone()]);
        // Every proper prefix of a command with payload is a truncation error naming its CID.
        for cut in 1..bytes.len() {
            let err = decode(&bytes[..cut], cmd.direction().unwrap()).unwrap_err();
            assert!(
                matches!(err, MacError::Truncated { cid, .. } if cid == bytes[0]),
                "{cmd:?} cut at {cut}: {err:?}"
            );
        }
    }
}

#[test]
fn whole_sequences_round_trip() {
    for direction in [Direction::Uplink, Direction::Downlink] {
        let cmds: Vec<MacCommand> = every_command()
            .into_iter()
            .map(|(c, _)| c)
            .filter(|c| c.direction() == Some(direction))
            .collect();
        let bytes = encode(&cmds).unwrap();
        assert_eq!(
            bytes.len(),
            cmds.iter().map(MacCommand::encoded_len).sum::<usize>()
        );
        assert_eq!(decode(&bytes, direction).unwrap(), cmds);
    }
}

#[test]
fn encode_reports_fields_that_do_not_fit() {
    let bad = MacCommand::LinkAdrReq(LinkAdrReq {
        data_rate: 16,
        tx_power: 0,
        ch_mask: 0,
        ch_mask_cntl: 0,
        nb_trans: 0,
    });
    assert_eq!(
        encode(&[MacCommand::LinkCheckReq, bad]),
        Err(MacError::FieldOutOfRange {
            cid: 0x03,
            field: "data_rate",
            value: 16,
            max: 15
        })
    );
}
