//! ADRParamSetupReq / ADRParamSetupAns, CID 0x0C (LoRaWAN 1.0.4 and 1.1, chapter 5).
//!
//! ADRParamSetupReq (downlink), one byte: Limit_exp bits 7..4 (ADR_ACK_LIMIT =
//! 2^Limit_exp), Delay_exp bits 3..0 (ADR_ACK_DELAY = 2^Delay_exp).
//! ADRParamSetupAns has no payload.

use super::{check, cid, MacError};

/// Sets ADR_ACK_LIMIT and ADR_ACK_DELAY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdrParamSetupReq {
    /// ADR_ACK_LIMIT = 2^limit_exp (0..=15).
    pub limit_exp: u8,
    /// ADR_ACK_DELAY = 2^delay_exp (0..=15).
    pub delay_exp: u8,
}

impl AdrParamSetupReq {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        AdrParamSetupReq {
            limit_exp: b >> 4,
            delay_exp: b & 0x0f,
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(cid::ADR_PARAM_SETUP, "limit_exp", self.limit_exp, 15)?;
        check(cid::ADR_PARAM_SETUP, "delay_exp", self.delay_exp, 15)?;
        Ok([self.limit_exp << 4 | self.delay_exp])
    }

    /// ADR_ACK_LIMIT in uplinks.
    pub fn adr_ack_limit(&self) -> u32 {
        1u32 << (self.limit_exp & 0x0f)
    }

    /// ADR_ACK_DELAY in uplinks.
    pub fn adr_ack_delay(&self) -> u32 {
        1u32 << (self.delay_exp & 0x0f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        // The defaults 64 / 32 are 2^6 / 2^5.
        let req = AdrParamSetupReq {
            limit_exp: 6,
            delay_exp: 5,
        };
        assert_eq!(req.encode(), Ok([0x65]));
        assert_eq!(AdrParamSetupReq::from_bytes([0x65]), req);
        assert_eq!((req.adr_ack_limit(), req.adr_ack_delay()), (64, 32));
        assert!(AdrParamSetupReq {
            limit_exp: 16,
            delay_exp: 0
        }
        .encode()
        .is_err());
    }
}
