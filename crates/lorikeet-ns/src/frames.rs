//! The core's view of LoRaWAN frames and crypto, on top of `lorikeet-lorawan`.

use lorikeet_lorawan::crypto::{
    self, JoinContext, JoinType, SessionKeys, UplinkMicContext, Version,
};
use lorikeet_lorawan::phy::{
    DecodeError, Direction, DlSettings, FCtrl, JoinAcceptPayload, MType, MacPayload, PhyPayload,
};
use lorikeet_lorawan::{Aes128Key, DevAddr, DevNonce, Eui64, JoinNonce, NetId};

use crate::device::RootKeys;

/// An uplink JoinRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JoinRequestFrame {
    pub(crate) join_eui: Eui64,
    pub(crate) dev_eui: Eui64,
    pub(crate) dev_nonce: DevNonce,
}

/// An uplink data frame, as received (FOpts and FRMPayload still encrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DataFrame {
    pub(crate) phy: PhyPayload,
    pub(crate) confirmed: bool,
    pub(crate) dev_addr: DevAddr,
    pub(crate) adr: bool,
    pub(crate) adr_ack_req: bool,
    pub(crate) ack: bool,
    pub(crate) f_cnt: u16,
    pub(crate) f_opts: Vec<u8>,
    pub(crate) f_port: Option<u8>,
    pub(crate) frm_payload: Vec<u8>,
}

/// What an uplink PHYPayload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    JoinRequest(JoinRequestFrame, PhyPayload),
    Data(Box<DataFrame>),
    /// Downlink types, proprietary frames, rejoin requests (not handled).
    Other,
}

/// Decodes an uplink PHYPayload.
pub(crate) fn parse(bytes: &[u8]) -> Result<Frame, DecodeError> {
    let phy = PhyPayload::decode(bytes)?;
    Ok(match (&phy.mhdr.m_type, &phy.payload) {
        (MType::JoinRequest, MacPayload::JoinRequest(jr)) => Frame::JoinRequest(
            JoinRequestFrame {
                join_eui: jr.join_eui,
                dev_eui: jr.dev_eui,
                dev_nonce: jr.dev_nonce,
            },
            phy,
        ),
        (m @ (MType::UnconfirmedDataUp | MType::ConfirmedDataUp), MacPayload::Data(d)) => {
            Frame::Data(Box::new(DataFrame {
                confirmed: *m == MType::ConfirmedDataUp,
                dev_addr: d.fhdr.dev_addr,
                adr: d.fhdr.f_ctrl.adr,
                adr_ack_req: d.fhdr.f_ctrl.adr_ack_req,
                ack: d.fhdr.f_ctrl.ack,
                f_cnt: d.fhdr.f_cnt,
                f_opts: d.fhdr.f_opts.clone(),
                f_port: d.f_port,
                frm_payload: d.frm_payload.clone(),
                phy,
            }))
        }
        _ => Frame::Other,
    })
}

fn version(v11: bool) -> Version {
    if v11 {
        Version::V1_1
    } else {
        Version::V1_0
    }
}

/// Whether a JoinRequest's MIC is right under `key` (AppKey 1.0, NwkKey 1.1).
pub(crate) fn join_request_mic_ok(key: &Aes128Key, phy: &PhyPayload) -> bool {
    crypto::verify_join_request_mic(phy, key)
}

/// Whether a data uplink's MIC is right for a session and a full frame counter.
pub(crate) fn data_up_mic_ok(
    v11: bool,
    keys: &SessionKeys,
    phy: &PhyPayload,
    f_cnt: u32,
    conf_f_cnt: u32,
    tx_dr: u8,
    tx_ch: u8,
) -> bool {
    let ctx = UplinkMicContext {
        conf_f_cnt,
        tx_dr,
        tx_ch,
    };
    crypto::verify_data_uplink_mic(phy, f_cnt, version(v11), keys, &ctx)
}

/// The MAC commands of an authenticated uplink in plaintext: FOpts (decrypted in 1.1)
/// or an FPort-0 payload (decrypted with NwkSEncKey).
pub(crate) fn uplink_mac_bytes(
    v11: bool,
    keys: &SessionKeys,
    d: &DataFrame,
    f_cnt: u32,
) -> Vec<u8> {
    if d.f_port == Some(0) {
        return crypto::decrypt_frm_payload(
            &keys.nwk_s_enc_key,
            Direction::Uplink,
            d.dev_addr,
            f_cnt,
            &d.frm_payload,
        );
    }
    if v11 && !d.f_opts.is_empty() {
        return crypto::decrypt_f_opts(
            &keys.nwk_s_enc_key,
            crypto::FOptsCounter::FCntUp,
            d.dev_addr,
            f_cnt,
            &d.f_opts,
        )
        .unwrap_or_default();
    }
    d.f_opts.clone()
}

/// The session keys a join establishes.
pub(crate) fn derive_session_keys(
    v11: bool,
    root: &RootKeys,
    join_nonce: u32,
    net_id: NetId,
    join_eui: Eui64,
    dev_nonce: DevNonce,
) -> SessionKeys {
    // Callers checked the JoinNonce is within 24 bits.
    let jn = JoinNonce::new(join_nonce).unwrap_or_default();
    match (v11, &root.nwk_key) {
        (true, Some(nwk_key)) => {
            crypto::derive_session_keys_11(nwk_key, &root.app_key, jn, join_eui, dev_nonce)
        }
        _ => crypto::derive_session_keys_10(&root.app_key, jn, net_id, dev_nonce),
    }
}

/// The fields of a JoinAccept.
#[derive(Debug, Clone)]
pub(crate) struct JoinAcceptParams {
    pub(crate) dev_eui: Eui64,
    pub(crate) join_eui: Eui64,
    pub(crate) dev_nonce: DevNonce,
    pub(crate) join_nonce: u32,
    pub(crate) net_id: NetId,
    pub(crate) dev_addr: DevAddr,
    pub(crate) rx1_dr_offset: u8,
    pub(crate) rx2_dr: u8,
    pub(crate) rx_delay: u8,
    pub(crate) cf_list: Option<[u8; 16]>,
}

/// Builds the encrypted JoinAccept PHYPayload.
pub(crate) fn build_join_accept(
    v11: bool,
    root: &RootKeys,
    p: JoinAcceptParams,
) -> Result<Vec<u8>, crypto::CryptoError> {
    let payload = JoinAcceptPayload {
        join_nonce: JoinNonce::new(p.join_nonce).unwrap_or_default(),
        home_net_id: p.net_id,
        dev_addr: p.dev_addr,
        dl_settings: DlSettings {
            opt_neg: v11,
            rx1_dr_offset: p.rx1_dr_offset,
            rx2_dr: p.rx2_dr,
        },
        rx_delay: p.rx_delay,
        cf_list: p.cf_list,
    };
    let ctx = JoinContext {
        join_type: JoinType::Join,
        join_eui: p.join_eui,
        dev_eui: p.dev_eui,
        dev_nonce: p.dev_nonce,
    };
    // The JoinAccept is keyed by the NwkKey (1.1) or the AppKey (1.0).
    let key = match (v11, &root.nwk_key) {
        (true, Some(k)) => k,
        _ => &root.app_key,
    };
    crypto::build_join_accept(&payload, &ctx, key)
}

/// The fields of a data downlink, in plaintext.
#[derive(Debug, Clone)]
pub(crate) struct DataDownParams<'a> {
    pub(crate) dev_addr: DevAddr,
    pub(crate) adr: bool,
    pub(crate) confirmed: bool,
    pub(crate) ack: bool,
    pub(crate) f_pending: bool,
    pub(crate) f_cnt: u32,
    pub(crate) conf_f_cnt: Option<u32>,
    pub(crate) f_opts: &'a [u8],
    pub(crate) f_port: Option<u8>,
    pub(crate) payload: &'a [u8],
}

/// Builds a signed, encrypted data downlink. MAC commands that do not fit FOpts (over
/// 15 bytes) travel as an FPort-0 payload instead (the caller then sends no
/// application payload).
pub(crate) fn build_data_down(
    v11: bool,
    keys: &SessionKeys,
    p: DataDownParams<'_>,
) -> Option<Vec<u8>> {
    let (f_opts, f_port, frm_payload) = if p.f_opts.len() > 15 {
        (Vec::new(), Some(0), p.f_opts.to_vec())
    } else {
        (p.f_opts.to_vec(), p.f_port, p.payload.to_vec())
    };
    let frame = crypto::DataFrame {
        confirmed: p.confirmed,
        dev_addr: p.dev_addr,
        f_ctrl: FCtrl {
            adr: p.adr,
            adr_ack_req: false,
            ack: p.ack,
            f_pending_or_class_b: p.f_pending,
        },
        f_cnt: p.f_cnt,
        f_opts,
        f_port,
        frm_payload,
    };
    crypto::build_data_downlink(&frame, version(v11), keys, p.conf_f_cnt.unwrap_or(0)).ok()
}
