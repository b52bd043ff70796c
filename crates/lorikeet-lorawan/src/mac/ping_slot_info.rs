//! PingSlotInfoReq / PingSlotInfoAns, CID 0x10 (Class B MAC commands of LoRaWAN 1.0.4 and 1.1).
//!
//! PingSlotInfoReq (uplink), one byte: RFU 7..3, Periodicity 2..0 (a ping slot
//! every 2^Periodicity seconds). PingSlotInfoAns has no payload.

use super::{check, cid, MacError};

/// The device's ping slot periodicity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PingSlotInfoReq {
    /// One ping slot every 2^periodicity seconds (0..=7).
    pub periodicity: u8,
}

impl PingSlotInfoReq {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        PingSlotInfoReq {
            periodicity: b & 0x07,
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(cid::PING_SLOT_INFO, "periodicity", self.periodicity, 7)?;
        Ok([self.periodicity])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(PingSlotInfoReq { periodicity: 7 }.encode(), Ok([0x07]));
        assert_eq!(PingSlotInfoReq::from_bytes([0xfb]).periodicity, 3);
        assert!(PingSlotInfoReq { periodicity: 8 }.encode().is_err());
    }
}
