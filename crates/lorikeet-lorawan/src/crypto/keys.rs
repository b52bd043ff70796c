//! Session key derivation.
//!
//! - LoRaWAN 1.0.4 §6.2.5: `NwkSKey = aes128_encrypt(AppKey, 0x01 | AppNonce | NetID | DevNonce | pad16)`,
//!   `AppSKey` the same with 0x02. A 1.1 device joining a 1.0 network (OptNeg unset)
//!   derives the same way from its NwkKey (LoRaWAN 1.1 §6.2.3).
//! - LoRaWAN 1.1 §6.2.3 (OptNeg set): `FNwkSIntKey` 0x01, `SNwkSIntKey` 0x03 and
//!   `NwkSEncKey` 0x04 from NwkKey, `AppSKey` 0x02 from AppKey, each over
//!   `JoinNonce | JoinEUI | DevNonce | pad16`.
//! - LoRaWAN 1.1 §6.1.1.3: `JSIntKey` 0x06 and `JSEncKey` 0x05 from NwkKey over `DevEUI | pad16`.
//!
//! All fields are in their little-endian wire order inside the block. After a
//! RejoinRequest the DevNonce position carries RJcount0 / RJcount1.

use super::{aes_encrypt, block16, JoinContext, SessionKeys};
use crate::phy::JoinAcceptPayload;
use crate::types::{Aes128Key, DevNonce, Eui64, JoinNonce, NetId};

fn derive(key: &Aes128Key, parts: &[&[u8]]) -> Aes128Key {
    Aes128Key::from_bytes(aes_encrypt(key, block16(parts)))
}

fn derive_10(
    first: u8,
    key: &Aes128Key,
    join_nonce: JoinNonce,
    net_id: NetId,
    dev_nonce: DevNonce,
) -> Aes128Key {
    derive(
        key,
        &[
            &[first],
            &join_nonce.to_le_bytes(),
            &net_id.to_le_bytes(),
            &dev_nonce.to_le_bytes(),
        ],
    )
}

fn derive_11(
    first: u8,
    key: &Aes128Key,
    join_nonce: JoinNonce,
    join_eui: Eui64,
    dev_nonce: DevNonce,
) -> Aes128Key {
    derive(
        key,
        &[
            &[first],
            &join_nonce.to_le_bytes(),
            &join_eui.to_le_bytes(),
            &dev_nonce.to_le_bytes(),
        ],
    )
}

/// LoRaWAN 1.0 NwkSKey from the AppKey (or a 1.1 device's NwkKey when OptNeg is unset).
pub fn derive_nwk_s_key_10(
    app_key: &Aes128Key,
    join_nonce: JoinNonce,
    net_id: NetId,
    dev_nonce: DevNonce,
) -> Aes128Key {
    derive_10(0x01, app_key, join_nonce, net_id, dev_nonce)
}

/// LoRaWAN 1.0 AppSKey from the AppKey (or a 1.1 device's NwkKey when OptNeg is unset).
pub fn derive_app_s_key_10(
    app_key: &Aes128Key,
    join_nonce: JoinNonce,
    net_id: NetId,
    dev_nonce: DevNonce,
) -> Aes128Key {
    derive_10(0x02, app_key, join_nonce, net_id, dev_nonce)
}

/// LoRaWAN 1.1 FNwkSIntKey from the NwkKey.
pub fn derive_f_nwk_s_int_key(
    nwk_key: &Aes128Key,
    join_nonce: JoinNonce,
    join_eui: Eui64,
    dev_nonce: DevNonce,
) -> Aes128Key {
    derive_11(0x01, nwk_key, join_nonce, join_eui, dev_nonce)
}

/// LoRaWAN 1.1 AppSKey from the AppKey.
pub fn derive_app_s_key_11(
    app_key: &Aes128Key,
    join_nonce: JoinNonce,
    join_eui: Eui64,
    dev_nonce: DevNonce,
) -> Aes128Key {
    derive_11(0x02, app_key, join_nonce, join_eui, dev_nonce)
}

/// LoRaWAN 1.1 SNwkSIntKey from the NwkKey.
pub fn derive_s_nwk_s_int_key(
    nwk_key: &Aes128Key,
    join_nonce: JoinNonce,
    join_eui: Eui64,
    dev_nonce: DevNonce,
) -> Aes128Key {
    derive_11(0x03, nwk_key, join_nonce, join_eui, dev_nonce)
}

/// LoRaWAN 1.1 NwkSEncKey from the NwkKey.
pub fn derive_nwk_s_enc_key(
    nwk_key: &Aes128Key,
    join_nonce: JoinNonce,
    join_eui: Eui64,
    dev_nonce: DevNonce,
) -> Aes128Key {
    derive_11(0x04, nwk_key, join_nonce, join_eui, dev_nonce)
}

/// JSIntKey: the key of the 1.1 JoinAccept MIC (OptNeg set) and of type 1 RejoinRequests.
pub fn derive_js_int_key(nwk_key: &Aes128Key, dev_eui: Eui64) -> Aes128Key {
    derive(nwk_key, &[&[0x06], &dev_eui.to_le_bytes()])
}

/// JSEncKey: encrypts JoinAccepts that answer RejoinRequests.
pub fn derive_js_enc_key(nwk_key: &Aes128Key, dev_eui: Eui64) -> Aes128Key {
    derive(nwk_key, &[&[0x05], &dev_eui.to_le_bytes()])
}

/// A LoRaWAN 1.0 session (NwkSKey in all three network key roles).
pub fn derive_session_keys_10(
    app_key: &Aes128Key,
    join_nonce: JoinNonce,
    net_id: NetId,
    dev_nonce: DevNonce,
) -> SessionKeys {
    SessionKeys::from_1_0(
        derive_nwk_s_key_10(app_key, join_nonce, net_id, dev_nonce),
        derive_app_s_key_10(app_key, join_nonce, net_id, dev_nonce),
    )
}

/// A LoRaWAN 1.1 session (OptNeg set).
pub fn derive_session_keys_11(
    nwk_key: &Aes128Key,
    app_key: &Aes128Key,
    join_nonce: JoinNonce,
    join_eui: Eui64,
    dev_nonce: DevNonce,
) -> SessionKeys {
    SessionKeys {
        f_nwk_s_int_key: derive_f_nwk_s_int_key(nwk_key, join_nonce, join_eui, dev_nonce),
        s_nwk_s_int_key: derive_s_nwk_s_int_key(nwk_key, join_nonce, join_eui, dev_nonce),
        nwk_s_enc_key: derive_nwk_s_enc_key(nwk_key, join_nonce, join_eui, dev_nonce),
        app_s_key: derive_app_s_key_11(app_key, join_nonce, join_eui, dev_nonce),
    }
}

/// The session a join establishes: 1.1 rules when the JoinAccept has OptNeg set,
/// 1.0 rules otherwise. For a LoRaWAN 1.0 device pass its AppKey as `nwk_key`
/// (and as `app_key`, which the 1.0 rules do not use).
pub fn derive_session_keys(
    join_accept: &JoinAcceptPayload,
    ctx: &JoinContext,
    nwk_key: &Aes128Key,
    app_key: &Aes128Key,
) -> SessionKeys {
    if join_accept.dl_settings.opt_neg {
        derive_session_keys_11(
            nwk_key,
            app_key,
            join_accept.join_nonce,
            ctx.join_eui,
            ctx.dev_nonce,
        )
    } else {
        derive_session_keys_10(
            nwk_key,
            join_accept.join_nonce,
            join_accept.home_net_id,
            ctx.dev_nonce,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::JoinType;
    use crate::phy::DlSettings;
    use crate::types::DevAddr;

    fn key(hex: &str) -> Aes128Key {
        Aes128Key::from_hex(hex).unwrap()
    }

    // The spec vectors live in testdata/vectors/key_derivation.json; these check the
    // wiring of the convenience function and the block layout by hand.

    #[test]
    fn derivation_block_is_little_endian_fields() {
        // 1.0 block: 0x01 | AppNonce (3, LE) | NetID (3, LE) | DevNonce (2, LE) | 7 zero bytes.
        let k = key("000102030405060708090a0b0c0d0e0f");
        let jn = JoinNonce::new(0x0a0b0c).unwrap();
        let nid = NetId::from_u32(0x112233).unwrap();
        let dn = DevNonce(0x4455);
        let block = hex::decode("010c0b0a3322115544000000000000 00".replace(' ', "")).unwrap();
        let expected = aes_encrypt(&k, block.try_into().unwrap());
        assert_eq!(derive_nwk_s_key_10(&k, jn, nid, dn).as_bytes(), &expected);
    }

    #[test]
    fn derive_session_keys_follows_opt_neg() {
        let nwk_key = key("00112233445566778899aabbccddeeff");
        let app_key = key("ffeeddccbbaa99887766554433221100");
        let ctx = JoinContext {
            join_type: JoinType::Join,
            join_eui: Eui64::from_u64(0x70b3d57ed0000000),
            dev_eui: Eui64::from_u64(0x0004a30b001c0530),
            dev_nonce: DevNonce(7),
        };
        let mut ja = JoinAcceptPayload {
            join_nonce: JoinNonce::new(0x102).unwrap(),
            home_net_id: NetId::from_u32(0x13).unwrap(),
            dev_addr: DevAddr::from_u32(0x26011bda),
            dl_settings: DlSettings::default(),
            rx_delay: 1,
            cf_list: None,
        };
        let s10 = derive_session_keys(&ja, &ctx, &nwk_key, &app_key);
        assert_eq!(
            s10,
            derive_session_keys_10(&nwk_key, ja.join_nonce, ja.home_net_id, ctx.dev_nonce)
        );
        ja.dl_settings.opt_neg = true;
        let s11 = derive_session_keys(&ja, &ctx, &nwk_key, &app_key);
        assert_eq!(
            s11,
            derive_session_keys_11(
                &nwk_key,
                &app_key,
                ja.join_nonce,
                ctx.join_eui,
                ctx.dev_nonce
            )
        );
        assert_ne!(s11.f_nwk_s_int_key, s11.s_nwk_s_int_key);
        assert_ne!(s11.s_nwk_s_int_key, s11.nwk_s_enc_key);
        assert_ne!(s10.app_s_key, s11.app_s_key);
    }
}
