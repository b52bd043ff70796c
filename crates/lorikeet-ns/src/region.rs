//! The few questions the core asks a band plan, in one place.

use std::sync::Arc;

pub use lorikeet_region::{LrFhssCodingRate, Modulation, RegParamsRevision, Region, RegionName};

use crate::downlink::WindowParams;
use crate::rx::TxInfo;

/// A shared band plan (one per region name and configuration).
pub type RegionHandle = Arc<dyn Region>;

/// The uplink DR index of what the gateway reported.
pub(crate) fn uplink_dr(region: &RegionHandle, tx: &TxInfo) -> Option<u8> {
    region.data_rate_index(&tx.modulation, true)
}

/// The LoRaWAN channel index of an uplink frequency.
pub(crate) fn channel_index(region: &RegionHandle, frequency_hz: u32) -> Option<u8> {
    region.uplink_channel_index(frequency_hz)
}

/// RX1 frequency and data rate for an uplink.
pub(crate) fn rx1(
    region: &RegionHandle,
    up_channel: u8,
    up_frequency_hz: u32,
    up_dr: u8,
    rx1_dr_offset: u8,
) -> Option<WindowParams> {
    let dwell = region.dwell_time().downlink_400ms;
    Some(WindowParams {
        frequency_hz: region.rx1_frequency_hz(up_channel, up_frequency_hz)?,
        dr: region.rx1_data_rate(up_dr, rx1_dr_offset, dwell)?,
    })
}

/// Default RX2 `(frequency_hz, dr)`.
pub(crate) fn rx2_default(region: &RegionHandle) -> (u32, u8) {
    region.rx2_default()
}

/// Largest downlink FRMPayload plus FOpts (N) at `dr`; 0 when the DR is unusable.
pub(crate) fn max_frm_payload(region: &RegionHandle, rev: RegParamsRevision, dr: u8) -> usize {
    let dwell = region.dwell_time().downlink_400ms;
    region
        .max_payload(dr, rev, dwell)
        .map_or(0, |m| usize::from(m.n))
}

/// Modulation of a DR.
pub(crate) fn modulation(region: &RegionHandle, dr: u8) -> Option<Modulation> {
    region.data_rate(dr).map(|d| d.modulation)
}

/// Downlink EIRP in whole dBm.
pub(crate) fn downlink_tx_power_dbm(region: &RegionHandle, frequency_hz: u32) -> i32 {
    region.downlink_tx_power_eirp_dbm(frequency_hz).round() as i32
}

/// The JoinAccept CFList.
pub(crate) fn cf_list(region: &RegionHandle) -> Option<[u8; 16]> {
    region.join_accept_cf_list()
}
