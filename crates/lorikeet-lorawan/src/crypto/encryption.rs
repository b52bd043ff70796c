//! FRMPayload, FOpts and JoinAccept encryption.
//!
//! **FRMPayload** (LoRaWAN 1.0.4 §4.3.3, 1.1 §4.3.3): XOR with `S_i = aes128_encrypt(K, A_i)`,
//! `A_i = 0x01 | 4 × 0x00 | Dir | DevAddr | FCnt (32 bits) | 0x00 | i` for i = 1, 2, ….
//! K is the AppSKey for FPort > 0 and NwkSKey (1.0) / NwkSEncKey (1.1) for FPort 0.
//! Encryption and decryption are the same operation.
//!
//! **FOpts** (LoRaWAN 1.1 §4.3.1.6, as corrected by the LoRaWAN 1.1 errata): FOpts
//! are XORed with `S = aes128_encrypt(NwkSEncKey, A)`, where
//! `A = 0x01 | 3 × 0x00 | C | Dir | DevAddr | FCnt | 0x00 | 0x01`, and C is 0x01
//! when the frame counter is FCntUp (uplinks) or NFCntDown (downlinks with no
//! FPort or FPort 0), and 0x02 when it is AFCntDown (downlinks with FPort > 0).
//! This is the layout Semtech's LoRaMac-node uses for LoRaWAN 1.1.1 and the one
//! ChirpStack uses; the vectors in `testdata/vectors/f_opts_encryption.json` (from
//! ChirpStack for AFCntDown, brocaar/lorawan for NFCntDown) confirm it. The
//! original 1.1.0 text, with C = 0x00 and a last byte of 0x00 (still used by The
//! Things Stack's crypto package and by LoRaMac-node for 1.1.0 devices), is NOT
//! implemented. LoRaWAN 1.0 never encrypts FOpts.
//!
//! **JoinAccept** (1.0.4 §6.2.5, 1.1 §6.2.3): the network *decrypts* the plaintext
//! `fields | MIC` with AES-128 ECB so the device only needs AES encryption to read
//! it. The key is the NwkKey (a 1.0 device's AppKey) for an answer to a
//! JoinRequest, and the JSEncKey for an answer to a RejoinRequest.

use super::{aes_decrypt, aes_encrypt, block16, CryptoError};
use crate::phy::{
    Direction, EncodeError, EncryptedJoinAccept, JoinAcceptPayload, MHdr, MType, MacPayload,
    PhyPayload, MAX_F_OPTS_LEN,
};
use crate::types::{Aes128Key, DevAddr};

/// Encrypts (or, being its own inverse, decrypts) an FRMPayload.
///
/// Payloads are at most 250 bytes on the air (16 blocks); the block counter is one
/// octet as in the specification and wraps after 255 blocks.
pub fn encrypt_frm_payload(
    key: &Aes128Key,
    direction: Direction,
    dev_addr: DevAddr,
    f_cnt: u32,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i: u8 = 0;
    for chunk in data.chunks(16) {
        i = i.wrapping_add(1);
        let a = block16(&[
            &[0x01, 0, 0, 0, 0, direction.dir_byte()],
            &dev_addr.to_le_bytes(),
            &f_cnt.to_le_bytes(),
            &[0x00, i],
        ]);
        let s = aes_encrypt(key, a);
        out.extend(chunk.iter().zip(s.iter()).map(|(d, k)| d ^ k));
    }
    out
}

/// Decrypts an FRMPayload (the same operation as [`encrypt_frm_payload`]).
pub fn decrypt_frm_payload(
    key: &Aes128Key,
    direction: Direction,
    dev_addr: DevAddr,
    f_cnt: u32,
    data: &[u8],
) -> Vec<u8> {
    encrypt_frm_payload(key, direction, dev_addr, f_cnt, data)
}

/// Which frame counter a LoRaWAN 1.1 frame carries; it selects the FOpts A block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FOptsCounter {
    /// An uplink (FCntUp).
    FCntUp,
    /// A downlink without FPort or with FPort 0 (NFCntDown).
    NFCntDown,
    /// A downlink with FPort > 0 (AFCntDown).
    AFCntDown,
}

impl FOptsCounter {
    /// The counter a frame uses, from its direction and FPort.
    pub fn for_frame(direction: Direction, f_port: Option<u8>) -> Self {
        match (direction, f_port) {
            (Direction::Uplink, _) => FOptsCounter::FCntUp,
            (Direction::Downlink, Some(port)) if port > 0 => FOptsCounter::AFCntDown,
            (Direction::Downlink, _) => FOptsCounter::NFCntDown,
        }
    }

    fn direction(self) -> Direction {
        match self {
            FOptsCounter::FCntUp => Direction::Uplink,
            FOptsCounter::NFCntDown | FOptsCounter::AFCntDown => Direction::Downlink,
        }
    }

    fn errata_byte(self) -> u8 {
        match self {
            FOptsCounter::FCntUp | FOptsCounter::NFCntDown => 0x01,
            FOptsCounter::AFCntDown => 0x02,
        }
    }
}

/// Encrypts (or decrypts) LoRaWAN 1.1 FOpts with the NwkSEncKey; see the module
/// documentation for the exact A block. At most 15 bytes.
pub fn encrypt_f_opts(
    nwk_s_enc_key: &Aes128Key,
    counter: FOptsCounter,
    dev_addr: DevAddr,
    f_cnt: u32,
    f_opts: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if f_opts.len() > MAX_F_OPTS_LEN {
        return Err(EncodeError::FOptsTooLong { len: f_opts.len() }.into());
    }
    let a = block16(&[
        &[
            0x01,
            0,
            0,
            0,
            counter.errata_byte(),
            counter.direction().dir_byte(),
        ],
        &dev_addr.to_le_bytes(),
        &f_cnt.to_le_bytes(),
        &[0x00, 0x01],
    ]);
    let s = aes_encrypt(nwk_s_enc_key, a);
    Ok(f_opts.iter().zip(s.iter()).map(|(d, k)| d ^ k).collect())
}

/// Decrypts LoRaWAN 1.1 FOpts (the same operation as [`encrypt_f_opts`]).
pub fn decrypt_f_opts(
    nwk_s_enc_key: &Aes128Key,
    counter: FOptsCounter,
    dev_addr: DevAddr,
    f_cnt: u32,
    f_opts: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    encrypt_f_opts(nwk_s_enc_key, counter, dev_addr, f_cnt, f_opts)
}

/// Builds the encrypted JoinAccept frame from its fields and MIC (see
/// `compute_join_accept_mic`). `key`: NwkKey / AppKey, or JSEncKey for a rejoin answer.
pub fn encrypt_join_accept(
    join_accept: &JoinAcceptPayload,
    mic: [u8; 4],
    key: &Aes128Key,
) -> Result<PhyPayload, CryptoError> {
    let mut plain = join_accept.encode()?;
    plain.extend_from_slice(&mic);
    // 12 + 4 or 28 + 4 bytes: whole blocks.
    let mut cipher = Vec::with_capacity(plain.len());
    for chunk in plain.chunks(16) {
        let block = block16(&[chunk]);
        cipher.extend_from_slice(&aes_decrypt(key, block));
    }
    // Always 16 or 32 bytes here; the error only keeps this panic-free.
    let (body, encrypted_mic) =
        cipher
            .split_last_chunk::<4>()
            .ok_or(crate::phy::DecodeError::WrongLength {
                m_type: MType::JoinAccept,
                expected: &crate::phy::JOIN_ACCEPT_LENS,
                got: cipher.len() + 1,
            })?;
    Ok(PhyPayload {
        mhdr: MHdr::new(MType::JoinAccept),
        payload: MacPayload::JoinAccept(EncryptedJoinAccept::new(body.to_vec())?),
        mic: *encrypted_mic,
    })
}

/// Decrypts a JoinAccept frame into its fields and its (plaintext) MIC. The MIC is
/// not checked here; see `verify_join_accept_mic` or `open_join_accept`.
pub fn decrypt_join_accept(
    phy: &PhyPayload,
    key: &Aes128Key,
) -> Result<(JoinAcceptPayload, [u8; 4]), CryptoError> {
    let MacPayload::JoinAccept(encrypted) = &phy.payload else {
        return Err(CryptoError::WrongMType {
            expected: "JoinAccept",
            got: phy.mhdr.m_type,
        });
    };
    let mut cipher = encrypted.as_bytes().to_vec();
    cipher.extend_from_slice(&phy.mic);
    let mut plain = Vec::with_capacity(cipher.len());
    for chunk in cipher.chunks(16) {
        plain.extend_from_slice(&aes_encrypt(key, block16(&[chunk])));
    }
    // `EncryptedJoinAccept` holds 12 or 28 bytes, so `plain` is 16 or 32 bytes.
    let (fields, mic) =
        plain
            .split_last_chunk::<4>()
            .ok_or(crate::phy::DecodeError::WrongLength {
                m_type: MType::JoinAccept,
                expected: &crate::phy::JOIN_ACCEPT_LENS,
                got: plain.len() + 1,
            })?;
    Ok((JoinAcceptPayload::decode(fields)?, *mic))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hex: &str) -> Aes128Key {
        Aes128Key::from_hex(hex).unwrap()
    }

    #[test]
    fn frm_payload_is_an_involution_and_direction_matters() {
        let k = key(&"01".repeat(16));
        let addr = DevAddr::from_u32(0x01020304);
        let data: Vec<u8> = (0..40).collect();
        let up = encrypt_frm_payload(&k, Direction::Uplink, addr, 7, &data);
        let down = encrypt_frm_payload(&k, Direction::Downlink, addr, 7, &data);
        assert_ne!(up, down);
        assert_ne!(up, data);
        assert_eq!(
            decrypt_frm_payload(&k, Direction::Uplink, addr, 7, &up),
            data
        );
        assert!(encrypt_frm_payload(&k, Direction::Uplink, addr, 7, &[]).is_empty());
        // Blocks are independent: the first 16 bytes do not depend on the length.
        assert_eq!(
            encrypt_frm_payload(&k, Direction::Uplink, addr, 7, &data[..16]),
            up[..16]
        );
    }

    #[test]
    fn f_opts_counter_choice_and_limits() {
        assert_eq!(
            FOptsCounter::for_frame(Direction::Uplink, Some(3)),
            FOptsCounter::FCntUp
        );
        assert_eq!(
            FOptsCounter::for_frame(Direction::Downlink, None),
            FOptsCounter::NFCntDown
        );
        assert_eq!(
            FOptsCounter::for_frame(Direction::Downlink, Some(0)),
            FOptsCounter::NFCntDown
        );
        assert_eq!(
            FOptsCounter::for_frame(Direction::Downlink, Some(1)),
            FOptsCounter::AFCntDown
        );
        let k = key(&"33".repeat(16));
        let addr = DevAddr::from_u32(0x26011bda);
        assert!(matches!(
            encrypt_f_opts(&k, FOptsCounter::FCntUp, addr, 1, &[0; 16]),
            Err(CryptoError::Encode(EncodeError::FOptsTooLong { len: 16 }))
        ));
        let plain = [3u8, 7, 6, 0xfe, 0x1f];
        let n = encrypt_f_opts(&k, FOptsCounter::NFCntDown, addr, 9, &plain).unwrap();
        let a = encrypt_f_opts(&k, FOptsCounter::AFCntDown, addr, 9, &plain).unwrap();
        assert_ne!(n, a, "NFCntDown and AFCntDown use different A blocks");
        assert_eq!(
            decrypt_f_opts(&k, FOptsCounter::AFCntDown, addr, 9, &a).unwrap(),
            plain
        );
    }

    #[test]
    fn f_opts_a_block_by_hand() {
        // A = 01 000000 02 01 | DevAddr LE | FCnt LE | 00 01 (errata, AFCntDown downlink).
        let k = key("01010101010101010101010101010200");
        let a = hex::decode("01000000020104030201000000000001").unwrap();
        let s = aes_encrypt(&k, a.try_into().unwrap());
        let by_hand: Vec<u8> = [2u8, 7, 1]
            .iter()
            .zip(s.iter())
            .map(|(d, k)| d ^ k)
            .collect();
        let ours = encrypt_f_opts(
            &k,
            FOptsCounter::AFCntDown,
            DevAddr::from_u32(0x01020304),
            0,
            &[2, 7, 1],
        )
        .unwrap();
        assert_eq!(ours, by_hand);
        assert_eq!(hex::encode(ours), "22ac0a");
    }

    #[test]
    fn join_accept_round_trip_with_and_without_cf_list() {
        let k = key("00112233445566778899aabbccddeeff");
        for cf_list in [None, Some([0x18; 16])] {
            let ja = JoinAcceptPayload {
                join_nonce: crate::types::JoinNonce::new(0x123456).unwrap(),
                home_net_id: crate::types::NetId::from_u32(0x13).unwrap(),
                dev_addr: DevAddr::from_u32(0x26011bda),
                dl_settings: crate::phy::DlSettings {
                    opt_neg: true,
                    rx1_dr_offset: 2,
                    rx2_dr: 3,
                },
                rx_delay: 5,
                cf_list,
            };
            let phy = encrypt_join_accept(&ja, [9, 8, 7, 6], &k).unwrap();
            let bytes = phy.encode().unwrap();
            assert_eq!(bytes.len(), if cf_list.is_some() { 33 } else { 17 });
            let decoded = PhyPayload::decode(&bytes).unwrap();
            assert_eq!(decoded, phy);
            assert_eq!(
                decrypt_join_accept(&decoded, &k).unwrap(),
                (ja, [9, 8, 7, 6])
            );
            // A wrong key decrypts to other fields (the MIC check is what catches it).
            assert_ne!(
                decrypt_join_accept(&decoded, &key(&"00".repeat(16))).map(|(_, m)| m),
                Ok([9, 8, 7, 6])
            );
        }
    }
}
