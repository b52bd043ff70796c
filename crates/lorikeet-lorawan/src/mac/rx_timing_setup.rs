//! RXTimingSetupReq / RXTimingSetupAns, CID 0x08 (LoRaWAN 1.0.4 and 1.1, chapter 5).
//!
//! RXTimingSetupReq (downlink), one byte: RFU 7..4, Del 3..0, the delay in seconds
//! between the end of an uplink and RX1 (0 and 1 both mean 1 s). RXTimingSetupAns
//! has no payload.

use super::{check, cid, MacError};

/// Sets the RX1 delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RxTimingSetupReq {
    /// The Del field in seconds (0..=15; 0 means 1 s).
    pub delay_seconds: u8,
}

impl RxTimingSetupReq {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        RxTimingSetupReq {
            delay_seconds: b & 0x0f,
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(
            cid::RX_TIMING_SETUP,
            "delay_seconds",
            self.delay_seconds,
            15,
        )?;
        Ok([self.delay_seconds])
    }

    /// The RX1 delay in seconds the device will use (Del 0 means 1 s).
    pub fn rx1_delay_seconds(&self) -> u8 {
        self.delay_seconds.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(RxTimingSetupReq { delay_seconds: 5 }.encode(), Ok([0x05]));
        let zero = RxTimingSetupReq::from_bytes([0xf0]);
        assert_eq!(zero.delay_seconds, 0);
        assert_eq!(zero.rx1_delay_seconds(), 1);
        assert!(RxTimingSetupReq { delay_seconds: 16 }.encode().is_err());
    }
}
