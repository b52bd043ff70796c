//! Message integrity codes.
//!
//! - JoinRequest (1.0.4 §6.2.4, 1.1 §6.2.2): `aes128_cmac(AppKey | NwkKey, MHDR | JoinEUI | DevEUI | DevNonce)[0..4]`.
//! - RejoinRequest (1.1 §6.2.4): the same CMAC over the frame, with SNwkSIntKey for
//!   types 0 and 2 and JSIntKey for type 1.
//! - JoinAccept: OptNeg unset (1.0.4 §6.2.5, 1.1 §6.2.3) `aes128_cmac(AppKey | NwkKey,
//!   MHDR | JoinNonce | NetID | DevAddr | DLSettings | RxDelay | CFList)`; OptNeg set
//!   (1.1 §6.2.3) `aes128_cmac(JSIntKey, JoinReqType | JoinEUI | DevNonce | MHDR | …)`.
//! - Data uplink (1.0.4 §4.4, 1.1 §4.4.2): 1.0 `cmac(NwkSKey, B0 | msg)[0..4]`;
//!   1.1 `cmacS[0..2] | cmacF[0..2]` with `cmacS = cmac(SNwkSIntKey, B1 | msg)`,
//!   `cmacF = cmac(FNwkSIntKey, B0 | msg)`. B1 carries ConfFCnt (only when ACK is
//!   set), TxDr and TxCh.
//! - Data downlink (1.0.4 §4.4, 1.1 §4.4.1): `cmac(SNwkSIntKey | NwkSKey, B0 | msg)[0..4]`,
//!   B0 carrying ConfFCnt in 1.1 when ACK is set (always zero in 1.0).
//!
//! `msg` is `MHDR | FHDR | FPort | FRMPayload` as sent. B0/B1 carry the full 32-bit
//! frame counter, whose low 16 bits must equal the frame's FCnt.

use super::{
    aes_cmac, block16, derive_js_int_key, mic_eq, mic_of, CryptoError, JoinContext, SessionKeys,
    Version,
};
use crate::phy::{
    DataPayload, Direction, EncodeError, JoinAcceptPayload, MHdr, MType, MacPayload, PhyPayload,
    MAX_PHY_PAYLOAD_LEN,
};
use crate::types::Aes128Key;

/// The B0/B1 block.
fn b_block(
    conf_f_cnt: u16,
    tx_dr: u8,
    tx_ch: u8,
    direction: Direction,
    data: &DataPayload,
    f_cnt: u32,
    msg_len: u8,
) -> [u8; 16] {
    block16(&[
        &[0x49],
        &conf_f_cnt.to_le_bytes(),
        &[tx_dr, tx_ch, direction.dir_byte()],
        &data.fhdr.dev_addr.to_le_bytes(),
        &f_cnt.to_le_bytes(),
        &[0, msg_len],
    ])
}

/// The data payload and encoded message of a data frame going `direction`, after
/// checking that `f_cnt` ends in the frame's FCnt.
fn data_msg(
    phy: &PhyPayload,
    direction: Direction,
    f_cnt: u32,
) -> Result<(&DataPayload, Vec<u8>, u8), CryptoError> {
    let expected = match direction {
        Direction::Uplink => "data uplink",
        Direction::Downlink => "data downlink",
    };
    let data = match &phy.payload {
        MacPayload::Data(d) if phy.mhdr.m_type.direction() == Some(direction) => d,
        _ => {
            return Err(CryptoError::WrongMType {
                expected,
                got: phy.mhdr.m_type,
            })
        }
    };
    // Truncation keeps the low 16 bits, which is the comparison wanted.
    if f_cnt as u16 != data.fhdr.f_cnt {
        return Err(CryptoError::FCntMismatch {
            f_cnt,
            wire: data.fhdr.f_cnt,
        });
    }
    let msg = phy.encode_without_mic()?;
    let msg_len = u8::try_from(msg.len()).map_err(|_| EncodeError::TooLong {
        max: MAX_PHY_PAYLOAD_LEN,
        got: msg.len() + 4,
    })?;
    Ok((data, msg, msg_len))
}

/// The JoinRequest MIC (key: AppKey in 1.0, NwkKey in 1.1).
pub fn compute_join_request_mic(phy: &PhyPayload, key: &Aes128Key) -> Result<[u8; 4], CryptoError> {
    if !matches!(phy.payload, MacPayload::JoinRequest(_)) {
        return Err(CryptoError::WrongMType {
            expected: "JoinRequest",
            got: phy.mhdr.m_type,
        });
    }
    let msg = phy.encode_without_mic()?;
    Ok(mic_of(aes_cmac(key, &[&msg])))
}

/// Whether a JoinRequest's MIC is right (constant-time comparison); false for other frames.
pub fn verify_join_request_mic(phy: &PhyPayload, key: &Aes128Key) -> bool {
    compute_join_request_mic(phy, key).is_ok_and(|mic| mic_eq(&mic, &phy.mic))
}

/// The RejoinRequest MIC (key: SNwkSIntKey for types 0 and 2, JSIntKey for type 1).
pub fn compute_rejoin_request_mic(
    phy: &PhyPayload,
    key: &Aes128Key,
) -> Result<[u8; 4], CryptoError> {
    if !matches!(phy.payload, MacPayload::RejoinRequest(_)) {
        return Err(CryptoError::WrongMType {
            expected: "RejoinRequest",
            got: phy.mhdr.m_type,
        });
    }
    let msg = phy.encode_without_mic()?;
    Ok(mic_of(aes_cmac(key, &[&msg])))
}

/// Whether a RejoinRequest's MIC is right; false for other frames.
pub fn verify_rejoin_request_mic(phy: &PhyPayload, key: &Aes128Key) -> bool {
    compute_rejoin_request_mic(phy, key).is_ok_and(|mic| mic_eq(&mic, &phy.mic))
}

/// The JoinAccept MIC over the plaintext fields. `key` is the JSIntKey when
/// `join_accept.dl_settings.opt_neg` is set (LoRaWAN 1.1 rules), otherwise the
/// NwkKey (a 1.0 device's AppKey). `ctx` is only used with OptNeg set.
pub fn compute_join_accept_mic(
    join_accept: &JoinAcceptPayload,
    ctx: &JoinContext,
    key: &Aes128Key,
) -> Result<[u8; 4], CryptoError> {
    let mhdr = MHdr::new(MType::JoinAccept).to_byte()?;
    let body = join_accept.encode()?;
    let cmac = if join_accept.dl_settings.opt_neg {
        aes_cmac(
            key,
            &[
                &[ctx.join_type.join_req_type()],
                &ctx.join_eui.to_le_bytes(),
                &ctx.dev_nonce.to_le_bytes(),
                &[mhdr],
                &body,
            ],
        )
    } else {
        aes_cmac(key, &[&[mhdr], &body])
    };
    Ok(mic_of(cmac))
}

/// Whether `mic` is the JoinAccept's MIC, picking the key from the NwkKey (a 1.0
/// device's AppKey): JSIntKey derived from it when OptNeg is set, itself otherwise.
pub fn verify_join_accept_mic(
    join_accept: &JoinAcceptPayload,
    mic: &[u8; 4],
    ctx: &JoinContext,
    nwk_key: &Aes128Key,
) -> bool {
    let result = if join_accept.dl_settings.opt_neg {
        compute_join_accept_mic(join_accept, ctx, &derive_js_int_key(nwk_key, ctx.dev_eui))
    } else {
        compute_join_accept_mic(join_accept, ctx, nwk_key)
    };
    result.is_ok_and(|computed| mic_eq(&computed, mic))
}

/// The LoRaWAN 1.0 uplink MIC: `cmac(NwkSKey, B0 | msg)[0..4]`. `f_cnt` is the full
/// 32-bit FCntUp whose low 16 bits are in the frame.
pub fn compute_data_uplink_mic_10(
    phy: &PhyPayload,
    f_cnt: u32,
    nwk_s_key: &Aes128Key,
) -> Result<[u8; 4], CryptoError> {
    let (data, msg, len) = data_msg(phy, Direction::Uplink, f_cnt)?;
    let b0 = b_block(0, 0, 0, Direction::Uplink, data, f_cnt, len);
    Ok(mic_of(aes_cmac(nwk_s_key, &[&b0, &msg])))
}

/// Extra inputs of the LoRaWAN 1.1 uplink MIC (the B1 block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UplinkMicContext {
    /// The frame counter of the confirmed downlink this uplink acknowledges; used
    /// (mod 2^16) only when the uplink has ACK set.
    pub conf_f_cnt: u32,
    /// The data rate index the uplink was sent at.
    pub tx_dr: u8,
    /// The channel index the uplink was sent on.
    pub tx_ch: u8,
}

/// The LoRaWAN 1.1 uplink MIC: `cmacS[0..2] | cmacF[0..2]`.
pub fn compute_data_uplink_mic_11(
    phy: &PhyPayload,
    f_cnt: u32,
    ctx: &UplinkMicContext,
    f_nwk_s_int_key: &Aes128Key,
    s_nwk_s_int_key: &Aes128Key,
) -> Result<[u8; 4], CryptoError> {
    let (data, msg, len) = data_msg(phy, Direction::Uplink, f_cnt)?;
    let conf_f_cnt = if data.fhdr.f_ctrl.ack {
        // ConfFCnt is the acknowledged counter modulo 2^16.
        ctx.conf_f_cnt as u16
    } else {
        0
    };
    let b0 = b_block(0, 0, 0, Direction::Uplink, data, f_cnt, len);
    let b1 = b_block(
        conf_f_cnt,
        ctx.tx_dr,
        ctx.tx_ch,
        Direction::Uplink,
        data,
        f_cnt,
        len,
    );
    let [s0, s1, ..] = aes_cmac(s_nwk_s_int_key, &[&b1, &msg]);
    let [f0, f1, ..] = aes_cmac(f_nwk_s_int_key, &[&b0, &msg]);
    Ok([s0, s1, f0, f1])
}

/// Whether a data uplink's MIC is right (constant-time), by the session's rules.
/// `ctx` is ignored for LoRaWAN 1.0. False for other frames or a counter that does
/// not end in the frame's FCnt.
pub fn verify_data_uplink_mic(
    phy: &PhyPayload,
    f_cnt: u32,
    version: Version,
    keys: &SessionKeys,
    ctx: &UplinkMicContext,
) -> bool {
    let computed = match version {
        Version::V1_0 => compute_data_uplink_mic_10(phy, f_cnt, &keys.f_nwk_s_int_key),
        Version::V1_1 => compute_data_uplink_mic_11(
            phy,
            f_cnt,
            ctx,
            &keys.f_nwk_s_int_key,
            &keys.s_nwk_s_int_key,
        ),
    };
    computed.is_ok_and(|mic| mic_eq(&mic, &phy.mic))
}

/// The data downlink MIC. `s_nwk_s_int_key` is the NwkSKey in 1.0. `conf_f_cnt` is
/// the FCntUp of the confirmed uplink being acknowledged; LoRaWAN 1.1 puts it (mod
/// 2^16) in B0 when ACK is set, 1.0 never does.
pub fn compute_data_downlink_mic(
    phy: &PhyPayload,
    f_cnt: u32,
    version: Version,
    conf_f_cnt: u32,
    s_nwk_s_int_key: &Aes128Key,
) -> Result<[u8; 4], CryptoError> {
    let (data, msg, len) = data_msg(phy, Direction::Downlink, f_cnt)?;
    let conf = match version {
        // ConfFCnt is the acknowledged counter modulo 2^16.
        Version::V1_1 if data.fhdr.f_ctrl.ack => conf_f_cnt as u16,
        _ => 0,
    };
    let b0 = b_block(conf, 0, 0, Direction::Downlink, data, f_cnt, len);
    Ok(mic_of(aes_cmac(s_nwk_s_int_key, &[&b0, &msg])))
}

/// Whether a data downlink's MIC is right (constant-time); false for other frames.
pub fn verify_data_downlink_mic(
    phy: &PhyPayload,
    f_cnt: u32,
    version: Version,
    conf_f_cnt: u32,
    s_nwk_s_int_key: &Aes128Key,
) -> bool {
    compute_data_downlink_mic(phy, f_cnt, version, conf_f_cnt, s_nwk_s_int_key)
        .is_ok_and(|mic| mic_eq(&mic, &phy.mic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::JoinType;
    use crate::phy::{FCtrl, FHdr};
    use crate::types::{DevAddr, DevNonce, Eui64};

    fn key(hex: &str) -> Aes128Key {
        Aes128Key::from_hex(hex).unwrap()
    }

    fn uplink(ack: bool, f_cnt: u16) -> PhyPayload {
        PhyPayload {
            mhdr: MHdr::new(MType::UnconfirmedDataUp),
            payload: MacPayload::Data(DataPayload {
                fhdr: FHdr {
                    dev_addr: DevAddr::from_u32(0x01020304),
                    f_ctrl: FCtrl {
                        ack,
                        ..FCtrl::default()
                    },
                    f_cnt,
                    f_opts: vec![],
                },
                f_port: Some(1),
                frm_payload: vec![1, 2, 3, 4],
            }),
            mic: [0; 4],
        }
    }

    #[test]
    fn b0_layout_by_hand() {
        // The Things Stack's published legacy uplink MIC (data_messages_test.go) recomputed
        // from a hand-written B0: 49 | 0000 | 0000 | 00 | DevAddr LE | FCnt LE | 00 | len.
        let mut phy = uplink(false, 1);
        let k = key(&"01".repeat(16));
        let msg = phy.encode_without_mic().unwrap();
        let b0 = hex::decode("4900000000000403020101000000000d").unwrap();
        let by_hand = mic_of(aes_cmac(&k, &[&b0, &msg]));
        assert_eq!(hex::encode(by_hand), "3b073182");
        assert_eq!(compute_data_uplink_mic_10(&phy, 1, &k).unwrap(), by_hand);
        phy.mic = by_hand;
        let keys = SessionKeys::from_1_0(k.clone(), k.clone());
        let ctx = UplinkMicContext::default();
        assert!(verify_data_uplink_mic(&phy, 1, Version::V1_0, &keys, &ctx));
        // Same low 16 bits, different upper bits: a different B0, so a different MIC.
        assert!(!verify_data_uplink_mic(
            &phy,
            0x1_0001,
            Version::V1_0,
            &keys,
            &ctx
        ));
        // A counter that does not end in the frame's FCnt is refused outright.
        assert_eq!(
            compute_data_uplink_mic_10(&phy, 2, &k),
            Err(CryptoError::FCntMismatch { f_cnt: 2, wire: 1 })
        );
    }

    #[test]
    fn uplink_11_conf_f_cnt_only_counts_with_ack() {
        let f = key(&"11".repeat(16));
        let s = key(&"22".repeat(16));
        let no_ack = uplink(false, 5);
        let a = UplinkMicContext {
            conf_f_cnt: 0,
            tx_dr: 3,
            tx_ch: 1,
        };
        let b = UplinkMicContext {
            conf_f_cnt: 77,
            ..a
        };
        assert_eq!(
            compute_data_uplink_mic_11(&no_ack, 5, &a, &f, &s).unwrap(),
            compute_data_uplink_mic_11(&no_ack, 5, &b, &f, &s).unwrap()
        );
        let ack = uplink(true, 5);
        let mic_a = compute_data_uplink_mic_11(&ack, 5, &a, &f, &s).unwrap();
        let mic_b = compute_data_uplink_mic_11(&ack, 5, &b, &f, &s).unwrap();
        // Only the cmacS half (SNwkSIntKey over B1) depends on ConfFCnt.
        assert_ne!(mic_a[..2], mic_b[..2]);
        assert_eq!(mic_a[2..], mic_b[2..]);
        // ConfFCnt is taken modulo 2^16.
        let c = UplinkMicContext {
            conf_f_cnt: 77 + 0x1_0000,
            ..a
        };
        assert_eq!(
            compute_data_uplink_mic_11(&ack, 5, &c, &f, &s).unwrap(),
            mic_b
        );
        // TxDr and TxCh are in B1 too.
        let d = UplinkMicContext { tx_ch: 2, ..b };
        assert_ne!(
            compute_data_uplink_mic_11(&ack, 5, &d, &f, &s).unwrap()[..2],
            mic_b[..2]
        );
    }

    #[test]
    fn wrong_frame_types_are_refused() {
        let k = key(&"01".repeat(16));
        let up = uplink(false, 1);
        assert!(matches!(
            compute_join_request_mic(&up, &k),
            Err(CryptoError::WrongMType { .. })
        ));
        assert!(matches!(
            compute_data_downlink_mic(&up, 1, Version::V1_0, 0, &k),
            Err(CryptoError::WrongMType { .. })
        ));
        assert!(!verify_join_request_mic(&up, &k));
        assert!(!verify_rejoin_request_mic(&up, &k));
        assert!(!verify_data_downlink_mic(&up, 1, Version::V1_1, 0, &k));
    }

    #[test]
    fn join_accept_mic_style_follows_opt_neg() {
        let k = key("0102030405060708090a0b0c0d0e0f10");
        let ctx = JoinContext {
            join_type: JoinType::Join,
            join_eui: Eui64::from_u64(0x0807060504030201),
            dev_eui: Eui64::from_u64(1),
            dev_nonce: DevNonce(258),
        };
        let mut ja = JoinAcceptPayload {
            join_nonce: crate::types::JoinNonce::new(65793).unwrap(),
            home_net_id: crate::types::NetId::from_u32(0x020202).unwrap(),
            dev_addr: DevAddr::from_u32(0x01020304),
            dl_settings: Default::default(),
            rx_delay: 0,
            cf_list: None,
        };
        // Published in ChirpStack's lrwn docs (see join_accept.json).
        assert_eq!(
            hex::encode(compute_join_accept_mic(&ja, &ctx, &k).unwrap()),
            "3449f212"
        );
        // The 1.0 MIC ignores the context.
        let other = JoinContext {
            dev_nonce: DevNonce(1),
            ..ctx
        };
        assert_eq!(
            compute_join_accept_mic(&ja, &other, &k),
            compute_join_accept_mic(&ja, &ctx, &k)
        );
        ja.dl_settings.opt_neg = true;
        assert_eq!(
            hex::encode(compute_join_accept_mic(&ja, &ctx, &k).unwrap()),
            "93ff9a3a"
        );
        assert_ne!(
            compute_join_accept_mic(&ja, &other, &k),
            compute_join_accept_mic(&ja, &ctx, &k)
        );
    }
}
