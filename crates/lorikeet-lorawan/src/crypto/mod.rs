//! LoRaWAN 1.0 and 1.1 security: MICs, payload / FOpts / JoinAccept encryption,
//! session key derivation, and helpers that build or open whole frames.
//!
//! Everything here is AES-128 (`aes`) and AES-CMAC (`cmac`) over blocks laid out
//! by the specifications; section numbers refer to LoRaWAN 1.0.4 (TS001-1.0.4) and
//! LoRaWAN 1.1. MICs are compared in constant time.
//!
//! Key roles across versions: a LoRaWAN 1.0 session has one network key, NwkSKey.
//! [`SessionKeys::from_1_0`] stores it as FNwkSIntKey, SNwkSIntKey and NwkSEncKey
//! alike, which is exactly how LoRaWAN 1.1 §6.2.3 says a 1.1 device falls back to a
//! 1.0 network, so one key set serves both versions. Likewise a 1.0 device's AppKey
//! plays the role of the 1.1 NwkKey in join procedures.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes128;
use cmac::{Cmac, Mac};
use subtle::ConstantTimeEq;

use crate::phy::{DecodeError, EncodeError, MType};
use crate::types::{Aes128Key, DevNonce, Eui64};

mod encryption;
mod frames;
mod keys;
mod mic;

pub use encryption::{
    decrypt_f_opts, decrypt_frm_payload, decrypt_join_accept, encrypt_f_opts, encrypt_frm_payload,
    encrypt_join_accept, FOptsCounter,
};
pub use frames::{
    build_data_downlink, build_data_uplink, build_join_accept, build_join_request,
    build_rejoin_request, open_data_downlink, open_data_uplink, open_join_accept, DataFrame,
};
pub use keys::{
    derive_app_s_key_10, derive_app_s_key_11, derive_f_nwk_s_int_key, derive_js_enc_key,
    derive_js_int_key, derive_nwk_s_enc_key, derive_nwk_s_key_10, derive_s_nwk_s_int_key,
    derive_session_keys, derive_session_keys_10, derive_session_keys_11,
};
pub use mic::{
    compute_data_downlink_mic, compute_data_uplink_mic_10, compute_data_uplink_mic_11,
    compute_join_accept_mic, compute_join_request_mic, compute_rejoin_request_mic,
    verify_data_downlink_mic, verify_data_uplink_mic, verify_join_accept_mic,
    verify_join_request_mic, verify_rejoin_request_mic, UplinkMicContext,
};

/// Which security rules apply: LoRaWAN 1.0.x, or 1.1 (split network keys, the
/// two-part uplink MIC, ConfFCnt, encrypted FOpts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// LoRaWAN 1.0.0 to 1.0.4.
    V1_0,
    /// LoRaWAN 1.1.
    V1_1,
}

impl Version {
    /// The rules a join negotiated: OptNeg set in the JoinAccept means 1.1.
    pub fn from_opt_neg(opt_neg: bool) -> Self {
        if opt_neg {
            Version::V1_1
        } else {
            Version::V1_0
        }
    }
}

/// What a JoinAccept answers; it selects the JoinReqType byte of the 1.1 MIC and
/// the encryption key (NwkKey for a JoinRequest, JSEncKey for a RejoinRequest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JoinType {
    /// A JoinRequest (JoinReqType 0xFF).
    Join,
    /// A type 0 RejoinRequest (JoinReqType 0x00).
    Rejoin0,
    /// A type 1 RejoinRequest (JoinReqType 0x01).
    Rejoin1,
    /// A type 2 RejoinRequest (JoinReqType 0x02).
    Rejoin2,
}

impl JoinType {
    /// The JoinReqType byte of the LoRaWAN 1.1 JoinAccept MIC.
    pub fn join_req_type(self) -> u8 {
        match self {
            JoinType::Join => 0xff,
            JoinType::Rejoin0 => 0x00,
            JoinType::Rejoin1 => 0x01,
            JoinType::Rejoin2 => 0x02,
        }
    }

    /// Whether this answers a RejoinRequest.
    pub fn is_rejoin(self) -> bool {
        self != JoinType::Join
    }
}

/// The request a JoinAccept answers. The same values feed the 1.1 JoinAccept MIC,
/// the choice of encryption key and the session key derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JoinContext {
    /// JoinRequest or which RejoinRequest.
    pub join_type: JoinType,
    /// The JoinEUI of the request (for a type 0/2 rejoin: the device's JoinEUI on record).
    pub join_eui: Eui64,
    /// The device's EUI (JSIntKey / JSEncKey are derived from it).
    pub dev_eui: Eui64,
    /// The DevNonce of a JoinRequest, or the RJcount0 / RJcount1 of a RejoinRequest.
    pub dev_nonce: DevNonce,
}

/// The four session keys of a device. In a LoRaWAN 1.0 session the three network
/// keys are all NwkSKey (see [`SessionKeys::from_1_0`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// Forwarding network integrity key (1.0: NwkSKey).
    pub f_nwk_s_int_key: Aes128Key,
    /// Serving network integrity key (1.0: NwkSKey).
    pub s_nwk_s_int_key: Aes128Key,
    /// Network encryption key for FPort 0 and FOpts (1.0: NwkSKey).
    pub nwk_s_enc_key: Aes128Key,
    /// Application session key.
    pub app_s_key: Aes128Key,
}

impl SessionKeys {
    /// A LoRaWAN 1.0 session: NwkSKey in all three network key roles.
    pub fn from_1_0(nwk_s_key: Aes128Key, app_s_key: Aes128Key) -> Self {
        SessionKeys {
            f_nwk_s_int_key: nwk_s_key.clone(),
            s_nwk_s_int_key: nwk_s_key.clone(),
            nwk_s_enc_key: nwk_s_key,
            app_s_key,
        }
    }
}

/// Why a frame could not be secured or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The frame's fields cannot be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Decrypted bytes do not form a valid payload.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The operation needs another kind of frame.
    #[error("expected a {expected} frame, got {got:?}")]
    WrongMType {
        /// What the operation needs.
        expected: &'static str,
        /// The frame's message type.
        got: MType,
    },
    /// The full frame counter given does not end in the frame's 16-bit FCnt.
    #[error("frame counter {f_cnt:#x} does not match the frame's FCnt {wire:#06x}")]
    FCntMismatch {
        /// The full counter passed in.
        f_cnt: u32,
        /// The 16-bit counter in the frame.
        wire: u16,
    },
    /// The MIC does not match.
    #[error("MIC mismatch")]
    MicMismatch,
}

/// AES-128 encryption of one block.
pub(crate) fn aes_encrypt(key: &Aes128Key, block: [u8; 16]) -> [u8; 16] {
    let cipher = Aes128::new(key.as_bytes().into());
    let mut b = block.into();
    cipher.encrypt_block(&mut b);
    b.into()
}

/// AES-128 decryption of one block.
pub(crate) fn aes_decrypt(key: &Aes128Key, block: [u8; 16]) -> [u8; 16] {
    let cipher = Aes128::new(key.as_bytes().into());
    let mut b = block.into();
    cipher.decrypt_block(&mut b);
    b.into()
}

/// AES-CMAC over the concatenation of `parts`.
pub(crate) fn aes_cmac(key: &Aes128Key, parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <Cmac<Aes128> as KeyInit>::new(key.as_bytes().into());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The first four bytes of a CMAC: a MIC.
pub(crate) fn mic_of(cmac: [u8; 16]) -> [u8; 4] {
    let [a, b, c, d, ..] = cmac;
    [a, b, c, d]
}

/// Constant-time MIC comparison.
pub(crate) fn mic_eq(a: &[u8; 4], b: &[u8; 4]) -> bool {
    a.ct_eq(b).into()
}

/// A 16-byte block made of `parts` in order, zero-padded (extra bytes are ignored;
/// every caller passes at most 16).
pub(crate) fn block16(parts: &[&[u8]]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (slot, b) in out.iter_mut().zip(parts.iter().flat_map(|p| p.iter())) {
        *slot = *b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hex: &str) -> Aes128Key {
        Aes128Key::from_hex(hex).unwrap()
    }

    #[test]
    fn aes_matches_fips_197_appendix_b() {
        // FIPS-197 Appendix B: key 2b7e1516..., plaintext 3243f6a8... -> 3925841d...
        let k = key("2b7e151628aed2a6abf7158809cf4f3c");
        let pt: [u8; 16] = hex::decode("3243f6a8885a308d313198a2e0370734")
            .unwrap()
            .try_into()
            .unwrap();
        let ct = aes_encrypt(&k, pt);
        assert_eq!(hex::encode(ct), "3925841d02dc09fbdc118597196a0b32");
        assert_eq!(aes_decrypt(&k, ct), pt);
    }

    #[test]
    fn cmac_matches_rfc_4493() {
        // RFC 4493 §4 examples 1 (empty), 2 (16 bytes) and 3 (40 bytes, split in parts).
        let k = key("2b7e151628aed2a6abf7158809cf4f3c");
        assert_eq!(
            hex::encode(aes_cmac(&k, &[])),
            "bb1d6929e95937287fa37d129b756746"
        );
        let m = hex::decode(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411",
        )
        .unwrap();
        assert_eq!(
            hex::encode(aes_cmac(&k, &[&m[..16]])),
            "070a16b46b4d4144f79bdd9dd04a287c"
        );
        assert_eq!(
            hex::encode(aes_cmac(&k, &[&m[..7], &m[7..40]])),
            "dfa66747de9ae63030ca32611497c827"
        );
    }

    #[test]
    fn mic_eq_compares_all_bytes() {
        assert!(mic_eq(&[1, 2, 3, 4], &[1, 2, 3, 4]));
        assert!(!mic_eq(&[1, 2, 3, 4], &[1, 2, 3, 5]));
        assert!(!mic_eq(&[0, 2, 3, 4], &[1, 2, 3, 4]));
    }

    #[test]
    fn block16_pads_and_truncates() {
        assert_eq!(block16(&[&[1], &[2, 3]])[..4], [1, 2, 3, 0]);
        assert_eq!(block16(&[&[7; 20]]), [7; 16]);
    }

    #[test]
    fn session_keys_1_0_fill_all_network_roles() {
        let keys = SessionKeys::from_1_0(key(&"11".repeat(16)), key(&"22".repeat(16)));
        assert_eq!(keys.f_nwk_s_int_key, keys.s_nwk_s_int_key);
        assert_eq!(keys.s_nwk_s_int_key, keys.nwk_s_enc_key);
        assert_ne!(keys.nwk_s_enc_key, keys.app_s_key);
        assert!(!format!("{keys:?}").contains("1111"));
    }

    #[test]
    fn join_req_type_bytes() {
        assert_eq!(JoinType::Join.join_req_type(), 0xff);
        assert_eq!(JoinType::Rejoin0.join_req_type(), 0);
        assert_eq!(JoinType::Rejoin1.join_req_type(), 1);
        assert_eq!(JoinType::Rejoin2.join_req_type(), 2);
        assert!(!JoinType::Join.is_rejoin());
        assert!(JoinType::Rejoin1.is_rejoin());
        assert_eq!(Version::from_opt_neg(true), Version::V1_1);
        assert_eq!(Version::from_opt_neg(false), Version::V1_0);
    }
}
