//! TxParamSetupReq / TxParamSetupAns, CID 0x09 (LoRaWAN 1.0.4 and 1.1, chapter 5).
//!
//! TxParamSetupReq (downlink), one byte: RFU 7..6, DownlinkDwellTime bit 5,
//! UplinkDwellTime bit 4 (1 = 400 ms limit), MaxEIRP 3..0 (an index into a table
//! of 8..=36 dBm). TxParamSetupAns has no payload.

use super::{bit, check, cid, MacError};

/// MaxEIRP index to dBm (LoRaWAN 1.0.4, TxParamSetupReq).
pub const MAX_EIRP_DBM: [u8; 16] = [
    8, 10, 12, 13, 14, 16, 18, 20, 21, 24, 26, 27, 29, 30, 33, 36,
];

/// Sets dwell time limits and the maximum EIRP (regions that require it, e.g. AS923).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxParamSetupReq {
    /// Downlink dwell time limited to 400 ms.
    pub downlink_dwell_time_400ms: bool,
    /// Uplink dwell time limited to 400 ms.
    pub uplink_dwell_time_400ms: bool,
    /// MaxEIRP index (0..=15), see [`MAX_EIRP_DBM`].
    pub max_eirp_index: u8,
}

impl TxParamSetupReq {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        TxParamSetupReq {
            downlink_dwell_time_400ms: bit(b, 5),
            uplink_dwell_time_400ms: bit(b, 4),
            max_eirp_index: b & 0x0f,
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(
            cid::TX_PARAM_SETUP,
            "max_eirp_index",
            self.max_eirp_index,
            15,
        )?;
        Ok([u8::from(self.downlink_dwell_time_400ms) << 5
            | u8::from(self.uplink_dwell_time_400ms) << 4
            | self.max_eirp_index])
    }

    /// The maximum EIRP in dBm (`None` only for an index above 15).
    pub fn max_eirp_dbm(&self) -> Option<u8> {
        MAX_EIRP_DBM.get(usize::from(self.max_eirp_index)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        // AS923 default: both dwell times limited, 16 dBm (index 5).
        let req = TxParamSetupReq {
            downlink_dwell_time_400ms: true,
            uplink_dwell_time_400ms: true,
            max_eirp_index: 5,
        };
        assert_eq!(req.encode(), Ok([0x35]));
        assert_eq!(TxParamSetupReq::from_bytes([0xf5]), req, "RFU bits ignored");
        assert_eq!(req.max_eirp_dbm(), Some(16));
        assert_eq!(TxParamSetupReq::from_bytes([0x0f]).max_eirp_dbm(), Some(36));
        assert!(TxParamSetupReq {
            max_eirp_index: 16,
            ..req
        }
        .encode()
        .is_err());
    }
}
