//! DutyCycleReq / DutyCycleAns, CID 0x04 (LoRaWAN 1.0.4 and 1.1, chapter 5).
//!
//! DutyCycleReq (downlink), one byte: RFU 7..4, MaxDutyCycle 3..0; the device's
//! aggregated duty cycle becomes 1 / 2^MaxDutyCycle. DutyCycleAns has no payload.

use super::{check, cid, MacError};

/// Limits the device's aggregated transmit duty cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DutyCycleReq {
    /// Exponent: duty cycle = 1 / 2^max_duty_cycle (0..=15; 0 lifts the limit).
    pub max_duty_cycle: u8,
}

impl DutyCycleReq {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        DutyCycleReq {
            max_duty_cycle: b & 0x0f,
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(cid::DUTY_CYCLE, "max_duty_cycle", self.max_duty_cycle, 15)?;
        Ok([self.max_duty_cycle])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(DutyCycleReq { max_duty_cycle: 7 }.encode(), Ok([0x07]));
        assert_eq!(DutyCycleReq::from_bytes([0xf7]).max_duty_cycle, 7);
        assert!(DutyCycleReq { max_duty_cycle: 16 }.encode().is_err());
    }
}
