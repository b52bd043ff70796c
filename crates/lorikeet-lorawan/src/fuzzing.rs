//! The bodies of the cargo-fuzz targets in `fuzz/` (a separate, nightly-only
//! workspace), kept here so that the stable test suite runs exactly the same code
//! over the committed seed corpus (`tests/fuzz_corpus.rs`). Not an API: every
//! function panics when the invariant it checks does not hold, which is what a
//! fuzzer needs and nothing else does, and returns whether the input was accepted
//! (so the seed test can tell that its seeds reach the invariants).

use crate::crypto::{self, JoinContext, JoinType, SessionKeys, UplinkMicContext, Version};
use crate::phy::Direction;
use crate::{mac, Aes128Key, DevNonce, Eui64, PhyPayload};

/// `phy_payload`: [`PhyPayload::decode`] never panics, and whatever it accepts
/// re-encodes to exactly the same bytes (MICs are computed over the re-encoding).
pub fn phy_payload(data: &[u8]) -> bool {
    let Ok(phy) = PhyPayload::decode(data) else {
        return false;
    };
    let again = phy.encode().expect("a decoded frame re-encodes");
    assert_eq!(again, data, "decode→encode changed the frame");
    let twice = PhyPayload::decode(&again).expect("a re-encoded frame decodes");
    assert_eq!(twice, phy, "decode→encode→decode changed the frame");
    true
}

/// `mac_commands`: the MAC command decoders never panic in either direction; what
/// they accept re-encodes to as many bytes and decodes to the same commands.
pub fn mac_commands(data: &[u8]) -> bool {
    let mut accepted = false;
    for direction in [Direction::Uplink, Direction::Downlink] {
        if let Ok(cmds) = mac::decode(data, direction) {
            accepted = true;
            let again = mac::encode(&cmds).expect("decoded commands re-encode");
            assert_eq!(again.len(), data.len(), "re-encoding changed the length");
            assert_eq!(
                mac::decode(&again, direction).expect("re-encoded commands decode"),
                cmds,
                "decode→encode→decode changed the commands"
            );
        }
    }
    accepted
}

/// `open_frames`: everything the network server does with a received frame before
/// trusting it (MIC checks, decryption, JoinAccept decryption, MAC command decoding
/// of the result) never panics. The first byte is the high byte of the 32-bit FCnt
/// the frame's 16 bits are extended with.
pub fn open_frames(data: &[u8]) -> bool {
    let Some((&f_cnt_byte, frame)) = data.split_first() else {
        return false;
    };
    let Ok(phy) = PhyPayload::decode(frame) else {
        return false;
    };
    let key = Aes128Key::from_bytes([0x2b; 16]);
    let keys = SessionKeys::from_1_0(key.clone(), key.clone());
    let f_cnt = (u32::from(f_cnt_byte) << 16) | u32::from(phy.data().map_or(0, |d| d.fhdr.f_cnt));
    let ctx = UplinkMicContext::default();
    for version in [Version::V1_0, Version::V1_1] {
        let _ = crypto::verify_data_uplink_mic(&phy, f_cnt, version, &keys, &ctx);
        let _ = crypto::verify_data_downlink_mic(&phy, f_cnt, version, 0, &key);
        for opened in [
            crypto::open_data_uplink(&phy, f_cnt, version, &keys, &ctx),
            crypto::open_data_downlink(&phy, f_cnt, version, &keys, 0),
        ]
        .into_iter()
        .flatten()
        {
            let _ = mac::decode_uplink(&opened.f_opts);
            let _ = mac::decode_downlink(&opened.frm_payload);
        }
    }
    let _ = crypto::verify_join_request_mic(&phy, &key);
    let _ = crypto::verify_rejoin_request_mic(&phy, &key);
    let _ = crypto::decrypt_join_accept(&phy, &key);
    let join = JoinContext {
        join_type: JoinType::Rejoin1,
        join_eui: Eui64::from_u64(1),
        dev_eui: Eui64::from_u64(2),
        dev_nonce: DevNonce(3),
    };
    let _ = crypto::open_join_accept(&phy, &join, &key);
    true
}
