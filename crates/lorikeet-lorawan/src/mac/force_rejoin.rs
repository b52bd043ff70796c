//! ForceRejoinReq, CID 0x0E (LoRaWAN 1.1, chapter 5); there is no answer.
//!
//! Two bytes, a little-endian u16: RFU bits 15..14, Period 13..11 (delay between
//! retransmissions 32 s × 2^Period + random 0..32 s), Max_Retries 10..8, RFU 7,
//! RejoinType 6..4 (0 or 2; 1 is RFU), DR 3..0.

use super::{check, cid, MacError};

/// Asks the device to send RejoinRequests of a type at a data rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ForceRejoinReq {
    /// Retransmission period exponent (0..=7).
    pub period: u8,
    /// Retransmissions after the first (0..=7).
    pub max_retries: u8,
    /// The rejoin type to send: 0 or 2 (the field holds 0..=7).
    pub rejoin_type: u8,
    /// Data rate index for the RejoinRequests (0..=15).
    pub data_rate: u8,
}

impl ForceRejoinReq {
    pub(crate) const LEN: usize = 2;

    pub(crate) fn from_bytes(b: [u8; Self::LEN]) -> Self {
        let v = u16::from_le_bytes(b);
        // Each field is masked to at most 4 bits before narrowing.
        ForceRejoinReq {
            period: ((v >> 11) & 0x07) as u8,
            max_retries: ((v >> 8) & 0x07) as u8,
            rejoin_type: ((v >> 4) & 0x07) as u8,
            data_rate: (v & 0x0f) as u8,
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(cid::FORCE_REJOIN, "period", self.period, 7)?;
        check(cid::FORCE_REJOIN, "max_retries", self.max_retries, 7)?;
        check(cid::FORCE_REJOIN, "rejoin_type", self.rejoin_type, 7)?;
        check(cid::FORCE_REJOIN, "data_rate", self.data_rate, 15)?;
        let v = u16::from(self.period) << 11
            | u16::from(self.max_retries) << 8
            | u16::from(self.rejoin_type) << 4
            | u16::from(self.data_rate);
        Ok(v.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        // Period 3, Max_Retries 2, RejoinType 2, DR 5:
        // 0b00_011_010_0_010_0101 = 0x1a25, little-endian 25 1a.
        let req = ForceRejoinReq {
            period: 3,
            max_retries: 2,
            rejoin_type: 2,
            data_rate: 5,
        };
        assert_eq!(req.encode(), Ok([0x25, 0x1a]));
        assert_eq!(ForceRejoinReq::from_bytes([0x25, 0x1a]), req);
        assert_eq!(
            ForceRejoinReq::from_bytes([0xa5, 0xda]),
            req,
            "RFU bits ignored"
        );
        assert!(ForceRejoinReq { period: 8, ..req }.encode().is_err());
        assert!(ForceRejoinReq {
            data_rate: 16,
            ..req
        }
        .encode()
        .is_err());
    }
}
