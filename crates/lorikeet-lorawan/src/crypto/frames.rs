//! Whole-frame helpers: build a signed (and encrypted) frame from plaintext fields,
//! or check and decrypt a received one. The network server uses the downlink and
//! JoinAccept builders and the uplink openers; a device (the simulator, tests) uses
//! the others.

use super::encryption::{decrypt_f_opts, encrypt_f_opts, encrypt_frm_payload, FOptsCounter};
use super::mic::UplinkMicContext;
use super::{
    compute_data_downlink_mic, compute_data_uplink_mic_10, compute_data_uplink_mic_11,
    compute_join_accept_mic, compute_join_request_mic, compute_rejoin_request_mic,
    decrypt_join_accept, derive_js_enc_key, derive_js_int_key, encrypt_join_accept, mic_eq,
    CryptoError, JoinContext, SessionKeys, Version,
};
use crate::phy::{
    DataPayload, Direction, FCtrl, FHdr, JoinAcceptPayload, JoinRequestPayload, MHdr, MType,
    MacPayload, PhyPayload, RejoinRequestPayload,
};
use crate::types::{Aes128Key, DevAddr, DevNonce, Eui64};

/// A data frame in plaintext: what the builders take and the openers return.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataFrame {
    /// Confirmed (the receiver must ACK) or unconfirmed.
    pub confirmed: bool,
    /// The device address.
    pub dev_addr: DevAddr,
    /// Frame control bits.
    pub f_ctrl: FCtrl,
    /// The full 32-bit frame counter (FCntUp, or NFCntDown / AFCntDown in 1.1); the
    /// frame carries its low 16 bits.
    pub f_cnt: u32,
    /// MAC commands for the header, in plaintext (at most 15 bytes; encrypted in 1.1).
    pub f_opts: Vec<u8>,
    /// The port; `None` for a frame without FRMPayload.
    pub f_port: Option<u8>,
    /// The payload in plaintext: application data, or MAC commands on FPort 0.
    pub frm_payload: Vec<u8>,
}

/// The key for an FRMPayload: AppSKey for FPort > 0, NwkSEncKey (1.0: NwkSKey) for FPort 0.
fn frm_key(keys: &SessionKeys, f_port: Option<u8>) -> &Aes128Key {
    match f_port {
        Some(0) | None => &keys.nwk_s_enc_key,
        Some(_) => &keys.app_s_key,
    }
}

/// Encrypts FOpts (1.1) and FRMPayload into a frame whose MIC is still zero.
fn seal(
    frame: &DataFrame,
    direction: Direction,
    version: Version,
    keys: &SessionKeys,
) -> Result<PhyPayload, CryptoError> {
    let f_opts = match version {
        Version::V1_1 if !frame.f_opts.is_empty() => encrypt_f_opts(
            &keys.nwk_s_enc_key,
            FOptsCounter::for_frame(direction, frame.f_port),
            frame.dev_addr,
            frame.f_cnt,
            &frame.f_opts,
        )?,
        _ => frame.f_opts.clone(),
    };
    let frm_payload = encrypt_frm_payload(
        frm_key(keys, frame.f_port),
        direction,
        frame.dev_addr,
        frame.f_cnt,
        &frame.frm_payload,
    );
    let phy = PhyPayload {
        mhdr: MHdr::new(MType::data(direction, frame.confirmed)),
        payload: MacPayload::Data(DataPayload {
            fhdr: FHdr {
                dev_addr: frame.dev_addr,
                f_ctrl: frame.f_ctrl,
                // The wire carries the low 16 bits.
                f_cnt: frame.f_cnt as u16,
                f_opts,
            },
            f_port: frame.f_port,
            frm_payload,
        }),
        mic: [0; 4],
    };
    // Surface encoding errors (FOpts too long, payload without port, …) here.
    phy.encode()?;
    Ok(phy)
}

/// Decrypts a data frame whose MIC was checked.
fn unseal(
    phy: &PhyPayload,
    direction: Direction,
    f_cnt: u32,
    version: Version,
    keys: &SessionKeys,
) -> Result<DataFrame, CryptoError> {
    let Some(data) = phy.data() else {
        return Err(CryptoError::WrongMType {
            expected: "data",
            got: phy.mhdr.m_type,
        });
    };
    let dev_addr = data.fhdr.dev_addr;
    let f_opts = match version {
        Version::V1_1 if !data.fhdr.f_opts.is_empty() => decrypt_f_opts(
            &keys.nwk_s_enc_key,
            FOptsCounter::for_frame(direction, data.f_port),
            dev_addr,
            f_cnt,
            &data.fhdr.f_opts,
        )?,
        _ => data.fhdr.f_opts.clone(),
    };
    Ok(DataFrame {
        confirmed: phy.mhdr.m_type.is_confirmed(),
        dev_addr,
        f_ctrl: data.fhdr.f_ctrl,
        f_cnt,
        f_opts,
        f_port: data.f_port,
        frm_payload: encrypt_frm_payload(
            frm_key(keys, data.f_port),
            direction,
            dev_addr,
            f_cnt,
            &data.frm_payload,
        ),
    })
}

/// Builds a signed, encrypted data uplink (device side). `ctx` is used by 1.1 only.
pub fn build_data_uplink(
    frame: &DataFrame,
    version: Version,
    keys: &SessionKeys,
    ctx: &UplinkMicContext,
) -> Result<Vec<u8>, CryptoError> {
    let mut phy = seal(frame, Direction::Uplink, version, keys)?;
    phy.mic = match version {
        Version::V1_0 => compute_data_uplink_mic_10(&phy, frame.f_cnt, &keys.f_nwk_s_int_key)?,
        Version::V1_1 => compute_data_uplink_mic_11(
            &phy,
            frame.f_cnt,
            ctx,
            &keys.f_nwk_s_int_key,
            &keys.s_nwk_s_int_key,
        )?,
    };
    Ok(phy.encode()?)
}

/// Builds a signed, encrypted data downlink (network side). In 1.1 `frame.f_cnt`
/// must be the AFCntDown when `f_port > 0` and the NFCntDown otherwise;
/// `conf_f_cnt` is the FCntUp being acknowledged when ACK is set (1.1 only).
pub fn build_data_downlink(
    frame: &DataFrame,
    version: Version,
    keys: &SessionKeys,
    conf_f_cnt: u32,
) -> Result<Vec<u8>, CryptoError> {
    let mut phy = seal(frame, Direction::Downlink, version, keys)?;
    phy.mic = compute_data_downlink_mic(
        &phy,
        frame.f_cnt,
        version,
        conf_f_cnt,
        &keys.s_nwk_s_int_key,
    )?;
    Ok(phy.encode()?)
}

/// Checks a data uplink's MIC and decrypts it (network side). `f_cnt` is the full
/// counter (see `fcnt::reconstruct_f_cnt`).
pub fn open_data_uplink(
    phy: &PhyPayload,
    f_cnt: u32,
    version: Version,
    keys: &SessionKeys,
    ctx: &UplinkMicContext,
) -> Result<DataFrame, CryptoError> {
    let computed = match version {
        Version::V1_0 => compute_data_uplink_mic_10(phy, f_cnt, &keys.f_nwk_s_int_key)?,
        Version::V1_1 => compute_data_uplink_mic_11(
            phy,
            f_cnt,
            ctx,
            &keys.f_nwk_s_int_key,
            &keys.s_nwk_s_int_key,
        )?,
    };
    if !mic_eq(&computed, &phy.mic) {
        return Err(CryptoError::MicMismatch);
    }
    unseal(phy, Direction::Uplink, f_cnt, version, keys)
}

/// Checks a data downlink's MIC and decrypts it (device side).
pub fn open_data_downlink(
    phy: &PhyPayload,
    f_cnt: u32,
    version: Version,
    keys: &SessionKeys,
    conf_f_cnt: u32,
) -> Result<DataFrame, CryptoError> {
    let computed =
        compute_data_downlink_mic(phy, f_cnt, version, conf_f_cnt, &keys.s_nwk_s_int_key)?;
    if !mic_eq(&computed, &phy.mic) {
        return Err(CryptoError::MicMismatch);
    }
    unseal(phy, Direction::Downlink, f_cnt, version, keys)
}

/// Builds a signed JoinRequest (device side). `key`: AppKey (1.0) or NwkKey (1.1).
pub fn build_join_request(
    join_eui: Eui64,
    dev_eui: Eui64,
    dev_nonce: DevNonce,
    key: &Aes128Key,
) -> Result<Vec<u8>, CryptoError> {
    let mut phy = PhyPayload {
        mhdr: MHdr::new(MType::JoinRequest),
        payload: MacPayload::JoinRequest(JoinRequestPayload {
            join_eui,
            dev_eui,
            dev_nonce,
        }),
        mic: [0; 4],
    };
    phy.mic = compute_join_request_mic(&phy, key)?;
    Ok(phy.encode()?)
}

/// Builds a signed RejoinRequest (device side). `key`: SNwkSIntKey for types 0 and
/// 2, JSIntKey for type 1.
pub fn build_rejoin_request(
    rejoin: &RejoinRequestPayload,
    key: &Aes128Key,
) -> Result<Vec<u8>, CryptoError> {
    let mut phy = PhyPayload {
        mhdr: MHdr::new(MType::RejoinRequest),
        payload: MacPayload::RejoinRequest(*rejoin),
        mic: [0; 4],
    };
    phy.mic = compute_rejoin_request_mic(&phy, key)?;
    Ok(phy.encode()?)
}

/// The keys a JoinAccept is signed and encrypted with, from the NwkKey (a 1.0
/// device's AppKey): MIC with JSIntKey when OptNeg is set, else the NwkKey;
/// encryption with JSEncKey for a rejoin answer, else the NwkKey.
fn join_accept_keys(
    join_accept: &JoinAcceptPayload,
    ctx: &JoinContext,
    nwk_key: &Aes128Key,
) -> (Aes128Key, Aes128Key) {
    let mic_key = if join_accept.dl_settings.opt_neg {
        derive_js_int_key(nwk_key, ctx.dev_eui)
    } else {
        nwk_key.clone()
    };
    let enc_key = if ctx.join_type.is_rejoin() {
        derive_js_enc_key(nwk_key, ctx.dev_eui)
    } else {
        nwk_key.clone()
    };
    (mic_key, enc_key)
}

/// Builds the complete encrypted JoinAccept (network side), 17 or 33 bytes.
pub fn build_join_accept(
    join_accept: &JoinAcceptPayload,
    ctx: &JoinContext,
    nwk_key: &Aes128Key,
) -> Result<Vec<u8>, CryptoError> {
    let (mic_key, enc_key) = join_accept_keys(join_accept, ctx, nwk_key);
    let mic = compute_join_accept_mic(join_accept, ctx, &mic_key)?;
    Ok(encrypt_join_accept(join_accept, mic, &enc_key)?.encode()?)
}

/// Decrypts a JoinAccept and checks its MIC (device side). `ctx` describes the
/// request it answers; `nwk_key` is the NwkKey (a 1.0 device's AppKey).
pub fn open_join_accept(
    phy: &PhyPayload,
    ctx: &JoinContext,
    nwk_key: &Aes128Key,
) -> Result<JoinAcceptPayload, CryptoError> {
    let enc_key = if ctx.join_type.is_rejoin() {
        derive_js_enc_key(nwk_key, ctx.dev_eui)
    } else {
        nwk_key.clone()
    };
    let (join_accept, mic) = decrypt_join_accept(phy, &enc_key)?;
    let (mic_key, _) = join_accept_keys(&join_accept, ctx, nwk_key);
    let computed = compute_join_accept_mic(&join_accept, ctx, &mic_key)?;
    if !mic_eq(&computed, &mic) {
        return Err(CryptoError::MicMismatch);
    }
    Ok(join_accept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{derive_session_keys, JoinType};
    use crate::phy::DlSettings;
    use crate::types::{JoinNonce, NetId};

    fn key(hex: &str) -> Aes128Key {
        Aes128Key::from_hex(hex).unwrap()
    }

    fn keys_11() -> SessionKeys {
        SessionKeys {
            f_nwk_s_int_key: key(&"11".repeat(16)),
            s_nwk_s_int_key: key(&"22".repeat(16)),
            nwk_s_enc_key: key(&"33".repeat(16)),
            app_s_key: key(&"44".repeat(16)),
        }
    }

    fn frame(f_port: Option<u8>, f_opts: &[u8], payload: &[u8]) -> DataFrame {
        DataFrame {
            confirmed: true,
            dev_addr: DevAddr::from_u32(0x26011bda),
            f_ctrl: FCtrl {
                adr: true,
                ack: true,
                ..FCtrl::default()
            },
            f_cnt: 0x0003_0007,
            f_opts: f_opts.to_vec(),
            f_port,
            frm_payload: payload.to_vec(),
        }
    }

    #[test]
    fn uplink_round_trip_both_versions() {
        let ctx = UplinkMicContext {
            conf_f_cnt: 12,
            tx_dr: 5,
            tx_ch: 2,
        };
        for version in [Version::V1_0, Version::V1_1] {
            let keys = match version {
                Version::V1_0 => {
                    SessionKeys::from_1_0(key(&"11".repeat(16)), key(&"44".repeat(16)))
                }
                Version::V1_1 => keys_11(),
            };
            for f in [
                frame(Some(7), &[0x02, 0x0d], b"hello"),
                frame(Some(0), &[], &[0x06, 0xfe, 0x1f]),
                frame(None, &[0x03, 0x07], &[]),
            ] {
                let bytes = build_data_uplink(&f, version, &keys, &ctx).unwrap();
                let phy = PhyPayload::decode(&bytes).unwrap();
                assert_eq!(phy.mhdr.m_type, MType::ConfirmedDataUp);
                let data = phy.data().unwrap();
                if !f.frm_payload.is_empty() {
                    assert_ne!(data.frm_payload, f.frm_payload, "payload is encrypted");
                }
                if version == Version::V1_1 && !f.f_opts.is_empty() {
                    assert_ne!(data.fhdr.f_opts, f.f_opts, "1.1 FOpts are encrypted");
                } else {
                    assert_eq!(data.fhdr.f_opts, f.f_opts, "1.0 FOpts are clear");
                }
                assert_eq!(
                    open_data_uplink(&phy, f.f_cnt, version, &keys, &ctx),
                    Ok(f.clone())
                );
                // A different TxCh only matters to the 1.1 MIC.
                let other = UplinkMicContext { tx_ch: 3, ..ctx };
                let opened = open_data_uplink(&phy, f.f_cnt, version, &keys, &other);
                match version {
                    Version::V1_0 => assert!(opened.is_ok()),
                    Version::V1_1 => assert_eq!(opened, Err(CryptoError::MicMismatch)),
                }
                // Flipping any bit breaks the MIC (or the frame).
                for i in 0..bytes.len() {
                    let mut tampered = bytes.clone();
                    tampered[i] ^= 0x01;
                    if let Ok(t) = PhyPayload::decode(&tampered) {
                        assert!(open_data_uplink(&t, f.f_cnt, version, &keys, &ctx).is_err());
                    }
                }
            }
        }
    }

    #[test]
    fn downlink_round_trip_and_conf_f_cnt() {
        let keys = keys_11();
        let f = frame(Some(9), &[0x04, 0x03], b"app data");
        let bytes = build_data_downlink(&f, Version::V1_1, &keys, 0x0001_0005).unwrap();
        let phy = PhyPayload::decode(&bytes).unwrap();
        assert_eq!(phy.mhdr.m_type, MType::ConfirmedDataDown);
        assert_eq!(
            open_data_downlink(&phy, f.f_cnt, Version::V1_1, &keys, 0x0001_0005),
            Ok(f.clone())
        );
        // ConfFCnt counts modulo 2^16 and matters in 1.1 when ACK is set.
        assert!(open_data_downlink(&phy, f.f_cnt, Version::V1_1, &keys, 5).is_ok());
        assert_eq!(
            open_data_downlink(&phy, f.f_cnt, Version::V1_1, &keys, 6),
            Err(CryptoError::MicMismatch)
        );
        // In 1.0 it never matters.
        let keys10 = SessionKeys::from_1_0(key(&"11".repeat(16)), key(&"44".repeat(16)));
        let bytes = build_data_downlink(&f, Version::V1_0, &keys10, 5).unwrap();
        let phy = PhyPayload::decode(&bytes).unwrap();
        assert_eq!(
            open_data_downlink(&phy, f.f_cnt, Version::V1_0, &keys10, 6),
            Ok(f.clone())
        );
        // The wrong counter is refused before any crypto.
        assert!(matches!(
            open_data_downlink(&phy, f.f_cnt + 1, Version::V1_0, &keys10, 6),
            Err(CryptoError::FCntMismatch { .. })
        ));
    }

    #[test]
    fn builders_reject_unencodable_frames() {
        let keys = keys_11();
        let ctx = UplinkMicContext::default();
        let too_many = frame(Some(1), &[0; 16], b"x");
        assert!(matches!(
            build_data_uplink(&too_many, Version::V1_0, &keys, &ctx),
            Err(CryptoError::Encode(_))
        ));
        assert!(matches!(
            build_data_uplink(&too_many, Version::V1_1, &keys, &ctx),
            Err(CryptoError::Encode(_))
        ));
        let no_port = frame(None, &[], b"x");
        assert!(build_data_downlink(&no_port, Version::V1_0, &keys, 0).is_err());
        let port0_with_f_opts = frame(Some(0), &[2], b"x");
        assert!(build_data_downlink(&port0_with_f_opts, Version::V1_0, &keys, 0).is_err());
        let huge = frame(Some(1), &[], &[0; 250]);
        assert!(build_data_downlink(&huge, Version::V1_0, &keys, 0).is_err());
    }

    #[test]
    fn join_round_trip_every_join_type() {
        let nwk_key = key("00112233445566778899aabbccddeeff");
        let app_key = key("ffeeddccbbaa99887766554433221100");
        for (join_type, opt_neg) in [
            (JoinType::Join, false),
            (JoinType::Join, true),
            (JoinType::Rejoin0, true),
            (JoinType::Rejoin1, true),
            (JoinType::Rejoin2, true),
        ] {
            let ctx = JoinContext {
                join_type,
                join_eui: Eui64::from_u64(0x70b3d57ed0000000),
                dev_eui: Eui64::from_u64(0x0004a30b001c0530),
                dev_nonce: DevNonce(3),
            };
            let ja = JoinAcceptPayload {
                join_nonce: JoinNonce::new(0x103).unwrap(),
                home_net_id: NetId::from_u32(0x0a).unwrap(),
                dev_addr: DevAddr::from_u32(0x1400_0001),
                dl_settings: DlSettings {
                    opt_neg,
                    rx1_dr_offset: 1,
                    rx2_dr: 2,
                },
                rx_delay: 1,
                cf_list: None,
            };
            let bytes = build_join_accept(&ja, &ctx, &nwk_key).unwrap();
            assert_eq!(bytes.len(), 17);
            let phy = PhyPayload::decode(&bytes).unwrap();
            assert_eq!(open_join_accept(&phy, &ctx, &nwk_key), Ok(ja));
            // The wrong nonce fails the 1.1 MIC; the wrong key fails either.
            if opt_neg {
                let other = JoinContext {
                    dev_nonce: DevNonce(4),
                    ..ctx
                };
                assert_eq!(
                    open_join_accept(&phy, &other, &nwk_key),
                    Err(CryptoError::MicMismatch)
                );
            }
            assert!(open_join_accept(&phy, &ctx, &app_key).is_err());
            // Both sides derive the same session.
            let s = derive_session_keys(&ja, &ctx, &nwk_key, &app_key);
            assert_eq!(s, derive_session_keys(&ja, &ctx, &nwk_key, &app_key));
        }
    }

    #[test]
    fn join_request_and_rejoin_builders_verify() {
        let k = key("2b7e151628aed2a6abf7158809cf4f3c");
        let bytes = build_join_request(
            Eui64::from_u64(0x70b3d57ed0000000),
            Eui64::from_u64(0x0004a30b001c0530),
            DevNonce(0xabcd),
            &k,
        )
        .unwrap();
        // Independently computed (join_request_mic.json, last record).
        assert_eq!(
            hex::encode(&bytes),
            "00000000d07ed5b37030051c000ba30400cdabef0ae219"
        );
        let phy = PhyPayload::decode(&bytes).unwrap();
        assert!(super::super::verify_join_request_mic(&phy, &k));
        let rj = RejoinRequestPayload::Type1 {
            join_eui: Eui64::from_u64(1),
            dev_eui: Eui64::from_u64(2),
            rj_count1: 3,
        };
        let bytes = build_rejoin_request(&rj, &k).unwrap();
        assert_eq!(bytes.len(), 24);
        let phy = PhyPayload::decode(&bytes).unwrap();
        assert!(super::super::verify_rejoin_request_mic(&phy, &k));
        assert!(!super::super::verify_rejoin_request_mic(
            &phy,
            &key(&"00".repeat(16))
        ));
    }
}
