use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn decodes_a_published_data_uplink() {
    // lora-packet README example: DevAddr 49be7df1, FCnt 2, FPort 1, 4 bytes payload.
    let bytes = h("40f17dbe4900020001954378762b11ff0d");
    let phy = PhyPayload::decode(&bytes).unwrap();
    assert_eq!(phy.mhdr, MHdr::new(MType::UnconfirmedDataUp));
    assert_eq!(phy.mic, [0x2b, 0x11, 0xff, 0x0d]);
    let data = phy.data().unwrap();
    assert_eq!(data.fhdr.dev_addr.to_string(), "49be7df1");
    assert_eq!(data.fhdr.f_ctrl, FCtrl::default());
    assert_eq!(data.fhdr.f_cnt, 2);
    assert!(data.fhdr.f_opts.is_empty());
    assert_eq!(data.f_port, Some(1));
    assert_eq!(data.frm_payload, h("95437876"));
    assert_eq!(phy.encode().unwrap(), bytes);
}

#[test]
fn decodes_fctrl_and_fopts() {
    // brocaar/lorawan 1.0 vector: FCtrl 0x03 (FOptsLen 3), FOpts 02 03 05.
    let bytes = h("4004030201030000020305016a3798f5b64dc039");
    let phy = PhyPayload::decode(&bytes).unwrap();
    let data = phy.data().unwrap();
    assert_eq!(data.fhdr.f_opts, vec![0x02, 0x03, 0x05]);
    assert_eq!(data.f_port, Some(1));
    // Every FCtrl bit survives, including the downlink RFU bit 6.
    for b in 0u8..16 {
        let fctrl = FCtrl::from_byte(b << 4);
        assert_eq!(fctrl.to_byte(0), b << 4);
    }
    assert_eq!(phy.encode().unwrap(), bytes);
}

#[test]
fn data_frame_without_port_or_with_empty_payload() {
    // No FPort at all: header-only frame.
    let bytes = h("60040302012000050000000000");
    let phy = PhyPayload::decode(&bytes[..12]).unwrap();
    let data = phy.data().unwrap();
    assert_eq!(data.f_port, None);
    assert!(data.frm_payload.is_empty());
    assert!(data.fhdr.f_ctrl.ack);
    // FPort present but nothing after it.
    let with_port = h("6004030201000500" /* FCnt 5 */);
    let mut b = with_port.clone();
    b.push(7);
    b.extend_from_slice(&[1, 2, 3, 4]);
    let phy = PhyPayload::decode(&b).unwrap();
    assert_eq!(phy.data().unwrap().f_port, Some(7));
    assert!(phy.data().unwrap().frm_payload.is_empty());
    assert_eq!(phy.encode().unwrap(), b);
}

#[test]
fn join_request_fields_are_little_endian() {
    // Distinct bytes in every field show the byte order (the MIC is arbitrary here).
    let bytes = h("0008070605040302010102030405060708020109b97b32");
    let phy = PhyPayload::decode(&bytes).unwrap();
    let MacPayload::JoinRequest(jr) = &phy.payload else {
        panic!("not a JoinRequest: {phy:?}");
    };
    assert_eq!(jr.join_eui.to_string(), "0102030405060708");
    assert_eq!(jr.dev_eui.to_string(), "0807060504030201");
    assert_eq!(jr.dev_nonce, DevNonce(0x0102));
    assert_eq!(phy.encode().unwrap(), bytes);
}

#[test]
fn join_accept_lengths() {
    let short = h("20493eeb51fba2116f810edb3742975142");
    let phy = PhyPayload::decode(&short).unwrap();
    let MacPayload::JoinAccept(ja) = &phy.payload else {
        panic!("not a JoinAccept");
    };
    assert!(!ja.has_cf_list());
    assert_eq!(ja.as_bytes().len(), 12);
    assert_eq!(phy.encode().unwrap(), short);
    let mut long = short.clone();
    long.extend_from_slice(&[0u8; 16]);
    assert!(PhyPayload::decode(&long).unwrap().payload != phy.payload);
    for len in [5, 16, 18, 32, 34, 40] {
        let mut b = vec![0x20];
        b.resize(len, 0);
        assert_eq!(
            PhyPayload::decode(&b),
            Err(DecodeError::WrongLength {
                m_type: MType::JoinAccept,
                expected: &JOIN_ACCEPT_LENS,
                got: len
            }),
            "{len}"
        );
    }
    assert!(EncryptedJoinAccept::new(vec![0; 13]).is_err());
}

#[test]
fn join_accept_payload_plaintext_codec() {
    let ja = JoinAcceptPayload {
        join_nonce: JoinNonce::new(0x570bc7).unwrap(),
        home_net_id: NetId::from_u32(0x221101).unwrap(),
        dev_addr: DevAddr::from_u32(0x02031980),
        dl_settings: DlSettings {
            opt_neg: true,
            rx1_dr_offset: 3,
            rx2_dr: 9,
        },
        rx_delay: 0x15,
        cf_list: None,
    };
    let bytes = ja.encode().unwrap();
    assert_eq!(hex::encode(&bytes), "c70b5701112280190302b915");
    assert_eq!(JoinAcceptPayload::decode(&bytes).unwrap(), ja);
    assert_eq!(ja.rx1_delay_seconds(), 5);
    let with_cf = JoinAcceptPayload {
        cf_list: Some([7; 16]),
        ..ja
    };
    assert_eq!(
        JoinAcceptPayload::decode(&with_cf.encode().unwrap()).unwrap(),
        with_cf
    );
    assert!(JoinAcceptPayload::decode(&bytes[..11]).is_err());
    let bad = JoinAcceptPayload {
        dl_settings: DlSettings {
            opt_neg: false,
            rx1_dr_offset: 8,
            rx2_dr: 0,
        },
        ..ja
    };
    assert_eq!(
        bad.encode(),
        Err(EncodeError::FieldOutOfRange {
            field: "rx1_dr_offset",
            value: 8,
            max: 7
        })
    );
    assert_eq!(
        JoinAcceptPayload { rx_delay: 0, ..ja }.rx1_delay_seconds(),
        1
    );
}

#[test]
fn rejoin_requests() {
    let t2 = h("c0020302010807060504030201db003c8642ae");
    let phy = PhyPayload::decode(&t2).unwrap();
    assert_eq!(
        phy.payload,
        MacPayload::RejoinRequest(RejoinRequestPayload::Type2 {
            net_id: NetId::from_u32(0x010203).unwrap(),
            dev_eui: Eui64::from_u64(0x0102030405060708),
            rj_count0: 219
        })
    );
    assert_eq!(phy.encode().unwrap(), t2);
    let t1 = h("c0010807060504030201100f0e0d0c0b0a09db00eac31072");
    let phy = PhyPayload::decode(&t1).unwrap();
    let MacPayload::RejoinRequest(rj) = &phy.payload else {
        panic!("not a rejoin");
    };
    assert_eq!(rj.rejoin_type(), 1);
    assert_eq!(rj.rj_count(), 219);
    assert_eq!(rj.dev_eui().to_string(), "090a0b0c0d0e0f10");
    assert_eq!(phy.encode().unwrap(), t1);
    // Type 0 has the type 2 layout.
    let mut t0 = t2.clone();
    t0[1] = 0;
    assert!(matches!(
        PhyPayload::decode(&t0).unwrap().payload,
        MacPayload::RejoinRequest(RejoinRequestPayload::Type0 { .. })
    ));
    // Wrong lengths and unknown types.
    assert!(matches!(
        PhyPayload::decode(&t1[..23]),
        Err(DecodeError::WrongLength { .. })
    ));
    assert!(matches!(
        PhyPayload::decode(&t2[..18]),
        Err(DecodeError::WrongLength { .. })
    ));
    let mut t3 = t2.clone();
    t3[1] = 3;
    assert_eq!(
        PhyPayload::decode(&t3),
        Err(DecodeError::UnknownRejoinType { rejoin_type: 3 })
    );
}

#[test]
fn proprietary_round_trips() {
    let bytes = h("e005060708090a01020304");
    let phy = PhyPayload::decode(&bytes).unwrap();
    assert_eq!(phy.payload, MacPayload::Proprietary(h("05060708090a")));
    assert_eq!(phy.mic, [1, 2, 3, 4]);
    assert_eq!(phy.encode().unwrap(), bytes);
    assert_eq!(
        PhyPayload::decode(&h("e001020304")).unwrap().payload,
        MacPayload::Proprietary(vec![])
    );
}

#[test]
fn rejects_malformed_frames_with_typed_errors() {
    assert_eq!(
        PhyPayload::decode(&[]),
        Err(DecodeError::TooShort {
            m_type: None,
            min: 5,
            got: 0
        })
    );
    assert_eq!(
        PhyPayload::decode(&[0x40, 1, 2]),
        Err(DecodeError::TooShort {
            m_type: Some(MType::UnconfirmedDataUp),
            min: 5,
            got: 3
        })
    );
    assert_eq!(
        PhyPayload::decode(&[0x40, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0]),
        Err(DecodeError::TooShort {
            m_type: Some(MType::UnconfirmedDataUp),
            min: 12,
            got: 11
        })
    );
    assert_eq!(
        PhyPayload::decode(&[0x41, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(DecodeError::UnsupportedMajor { major: 1 })
    );
    assert_eq!(
        PhyPayload::decode(&[0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(DecodeError::MHdrRfu { mhdr: 0x44 })
    );
    // FOptsLen 5 with only 2 bytes before the MIC.
    assert_eq!(
        PhyPayload::decode(&h("40040302010500000102aabbccdd")),
        Err(DecodeError::FOptsBeyondFrame {
            f_opts_len: 5,
            available: 2
        })
    );
    // FOpts with FPort 0.
    assert_eq!(
        PhyPayload::decode(&h("4004030201010000020000aabbccdd")),
        Err(DecodeError::FOptsWithFPortZero { f_opts_len: 1 })
    );
    assert!(matches!(
        PhyPayload::decode(&h("0000")),
        Err(DecodeError::TooShort { .. })
    ));
    assert_eq!(
        PhyPayload::decode(&[0u8; 22]),
        Err(DecodeError::WrongLength {
            m_type: MType::JoinRequest,
            expected: &[JOIN_REQUEST_LEN],
            got: 22
        })
    );
    let mut long = vec![0x40, 1, 2, 3, 4, 0, 0, 0, 1];
    long.resize(256, 0);
    assert_eq!(
        PhyPayload::decode(&long),
        Err(DecodeError::TooLong { max: 255, got: 256 })
    );
    long.truncate(255);
    assert!(PhyPayload::decode(&long).is_ok());
}

fn data_phy(f_opts: Vec<u8>, f_port: Option<u8>, frm_payload: Vec<u8>) -> PhyPayload {
    PhyPayload {
        mhdr: MHdr::new(MType::ConfirmedDataDown),
        payload: MacPayload::Data(DataPayload {
            fhdr: FHdr {
                dev_addr: DevAddr::from_u32(1),
                f_ctrl: FCtrl::default(),
                f_cnt: 1,
                f_opts,
            },
            f_port,
            frm_payload,
        }),
        mic: [0; 4],
    }
}

#[test]
fn encode_refuses_what_the_wire_cannot_carry() {
    assert_eq!(
        data_phy(vec![0; 16], Some(1), vec![]).encode(),
        Err(EncodeError::FOptsTooLong { len: 16 })
    );
    assert_eq!(
        data_phy(vec![], None, vec![1]).encode(),
        Err(EncodeError::FrmPayloadWithoutFPort { len: 1 })
    );
    assert_eq!(
        data_phy(vec![2], Some(0), vec![1]).encode(),
        Err(EncodeError::FOptsWithFPortZero { f_opts_len: 1 })
    );
    assert_eq!(
        data_phy(vec![], Some(1), vec![0; 243]).encode(),
        Err(EncodeError::TooLong { max: 255, got: 256 })
    );
    assert_eq!(
        data_phy(vec![], Some(1), vec![0; 242])
            .encode()
            .unwrap()
            .len(),
        255
    );
    let mut mismatch = data_phy(vec![], None, vec![]);
    mismatch.mhdr = MHdr::new(MType::JoinRequest);
    assert_eq!(
        mismatch.encode(),
        Err(EncodeError::MTypeMismatch {
            m_type: MType::JoinRequest,
            payload: "data"
        })
    );
    let mut major = data_phy(vec![], None, vec![]);
    major.mhdr.major = 1;
    assert_eq!(
        major.encode(),
        Err(EncodeError::UnsupportedMajor { major: 1 })
    );
}

#[test]
fn mtype_helpers() {
    for bits in 0..8 {
        assert_eq!(MType::from_bits(bits).bits(), bits);
    }
    assert_eq!(MType::JoinRequest.direction(), Some(Direction::Uplink));
    assert_eq!(MType::RejoinRequest.direction(), Some(Direction::Uplink));
    assert_eq!(MType::JoinAccept.direction(), Some(Direction::Downlink));
    assert_eq!(MType::Proprietary.direction(), None);
    assert!(MType::ConfirmedDataDown.is_confirmed() && MType::ConfirmedDataDown.is_data());
    assert!(!MType::UnconfirmedDataUp.is_confirmed());
    assert!(!MType::JoinAccept.is_data());
    assert_eq!(
        MType::data(Direction::Downlink, true),
        MType::ConfirmedDataDown
    );
    assert_eq!(
        MType::data(Direction::Uplink, false),
        MType::UnconfirmedDataUp
    );
}
