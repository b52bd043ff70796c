//! LinkCheckReq → LinkCheckAns: how far above the demodulation floor the device's
//! request was heard, and by how many gateways (LoRaWAN 1.0.4 §5.2).

use lorikeet_region::Region;

use super::queue::MacAnswer;
use super::UplinkInfo;

/// The answer to a LinkCheckReq in `info`'s uplink: margin = best SNR − the SNR the
/// uplink's data rate needs, in whole dB (0..=254); GwCnt = gateways that heard it.
pub(super) fn answer(region: &dyn Region, info: &UplinkInfo<'_>) -> MacAnswer {
    let margin = match (info.max_snr_db(), region.required_snr_db(info.dr)) {
        (Some(snr), Some(required)) => (snr - required).floor().clamp(0.0, 254.0) as u8,
        _ => 0,
    };
    let mut gateways: Vec<_> = info.up.rx_info.iter().map(|r| r.gateway_id).collect();
    gateways.sort_unstable();
    gateways.dedup();
    MacAnswer::LinkCheck {
        margin_db: margin,
        gw_cnt: u8::try_from(gateways.len()).unwrap_or(u8::MAX),
    }
}
