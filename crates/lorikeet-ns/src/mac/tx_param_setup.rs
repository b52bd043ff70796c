//! TxParamSetupReq/Ans: dwell-time limits and maximum EIRP, for the regions that
//! define the command (AS923, AU915 in RP002) and devices of LoRaWAN 1.0.2 and later.

use super::queue::MacRequest;
use super::{Ctx, TxParams};
use crate::device::{MacVersion, Session};

/// The MaxEIRP values (dBm) of TxParamSetupReq's 4-bit index (LoRaWAN 1.0.4 §5.12).
pub const MAX_EIRP_TABLE_DBM: [f32; 16] = [
    8.0, 10.0, 12.0, 13.0, 14.0, 16.0, 18.0, 20.0, 21.0, 24.0, 26.0, 27.0, 29.0, 30.0, 33.0, 36.0,
];

/// The largest table index not above `max_eirp_dbm`.
pub fn max_eirp_index(max_eirp_dbm: f32) -> u8 {
    MAX_EIRP_TABLE_DBM
        .iter()
        .rposition(|&v| v <= max_eirp_dbm)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(0)
}

fn wanted(cx: &Ctx<'_>) -> Option<TxParams> {
    let region = cx.region();
    if !region.implements_tx_param_setup() || cx.version() < MacVersion::V1_0_2 {
        return None;
    }
    let dwell = region.dwell_time();
    Some(TxParams {
        uplink_dwell_time_400ms: dwell.uplink_400ms,
        downlink_dwell_time_400ms: dwell.downlink_400ms,
        max_eirp_index: max_eirp_index(region.max_eirp_dbm()),
    })
}

pub(super) fn plan(cx: &Ctx<'_>, s: &Session) -> Option<MacRequest> {
    let w = wanted(cx)?;
    (s.state.mac.tx_params != Some(w)).then_some(MacRequest::TxParamSetup {
        uplink_dwell_time_400ms: w.uplink_dwell_time_400ms,
        downlink_dwell_time_400ms: w.downlink_dwell_time_400ms,
        max_eirp_index: w.max_eirp_index,
    })
}

pub(super) fn answered(s: &mut Session, request: &MacRequest) -> Result<(), String> {
    if let MacRequest::TxParamSetup {
        uplink_dwell_time_400ms,
        downlink_dwell_time_400ms,
        max_eirp_index,
    } = *request
    {
        s.state.mac.tx_params = Some(TxParams {
            uplink_dwell_time_400ms,
            downlink_dwell_time_400ms,
            max_eirp_index,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eirp_index_rounds_down() {
        assert_eq!(max_eirp_index(16.0), 5);
        assert_eq!(max_eirp_index(30.0), 13);
        assert_eq!(max_eirp_index(15.9), 4);
        assert_eq!(max_eirp_index(5.0), 0);
        assert_eq!(max_eirp_index(40.0), 15);
    }
}
