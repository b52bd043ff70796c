//! RejoinParamSetupReq / RejoinParamSetupAns, CID 0x0F (LoRaWAN 1.1, chapter 5).
//!
//! RejoinParamSetupReq (downlink), one byte: MaxTimeN bits 7..4 (a type 0
//! RejoinRequest at least every 2^(MaxTimeN+10) s), MaxCountN bits 3..0 (or every
//! 2^(MaxCountN+4) uplinks). RejoinParamSetupAns (uplink), one byte: RFU 7..1,
//! TimeOK bit 0.

use super::{bit, check, cid, MacError};

/// Sets how often the device sends periodic type 0 RejoinRequests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RejoinParamSetupReq {
    /// Time limit exponent: 2^(max_time_n + 10) seconds (0..=15).
    pub max_time_n: u8,
    /// Count limit exponent: 2^(max_count_n + 4) uplinks (0..=15).
    pub max_count_n: u8,
}

impl RejoinParamSetupReq {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        RejoinParamSetupReq {
            max_time_n: b >> 4,
            max_count_n: b & 0x0f,
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(cid::REJOIN_PARAM_SETUP, "max_time_n", self.max_time_n, 15)?;
        check(cid::REJOIN_PARAM_SETUP, "max_count_n", self.max_count_n, 15)?;
        Ok([self.max_time_n << 4 | self.max_count_n])
    }
}

/// Whether the device accepted the time limit (the count limit is always accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RejoinParamSetupAns {
    /// The time limit was accepted.
    pub time_ok: bool,
}

impl RejoinParamSetupAns {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        RejoinParamSetupAns { time_ok: bit(b, 0) }
    }

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        [u8::from(self.time_ok)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let req = RejoinParamSetupReq {
            max_time_n: 0x0a,
            max_count_n: 0x03,
        };
        assert_eq!(req.encode(), Ok([0xa3]));
        assert_eq!(RejoinParamSetupReq::from_bytes([0xa3]), req);
        assert!(RejoinParamSetupReq {
            max_time_n: 16,
            max_count_n: 0
        }
        .encode()
        .is_err());
        assert!(RejoinParamSetupAns::from_bytes([0xff]).time_ok);
        assert!(!RejoinParamSetupAns::from_bytes([0xfe]).time_ok);
        assert_eq!(RejoinParamSetupAns { time_ok: true }.encode(), [1]);
    }
}
