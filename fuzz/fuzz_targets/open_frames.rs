//! Everything the network server does with a received frame before trusting it
//! (MIC checks, decryption, JoinAccept decryption, MAC command decoding of the
//! result) must never panic on arbitrary input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lorikeet_lorawan::crypto::{
    self, JoinContext, JoinType, SessionKeys, UplinkMicContext, Version,
};
use lorikeet_lorawan::{mac, Aes128Key, DevNonce, Eui64, PhyPayload};

fuzz_target!(|data: &[u8]| {
    let Some((&f_cnt_byte, frame)) = data.split_first() else {
        return;
    };
    let Ok(phy) = PhyPayload::decode(frame) else {
        return;
    };
    let key = Aes128Key::from_bytes([0x2b; 16]);
    let keys = SessionKeys::from_1_0(key.clone(), key.clone());
    let f_cnt = u32::from(f_cnt_byte) << 16 | u32::from(phy.data().map_or(0, |d| d.fhdr.f_cnt));
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
});
