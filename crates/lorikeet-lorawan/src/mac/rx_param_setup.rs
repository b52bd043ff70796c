//! RXParamSetupReq / RXParamSetupAns, CID 0x05 (LoRaWAN 1.0.4 and 1.1, chapter 5).
//!
//! RXParamSetupReq (downlink), four bytes: `DLsettings` (RFU bit 7, RX1DRoffset
//! bits 6..4, RX2DataRate bits 3..0) | `Frequency` (24 bits LE, units of 100 Hz).
//!
//! RXParamSetupAns (uplink), one byte: RFU 7..3, RX1DRoffset ACK bit 2,
//! RX2 Data rate ACK bit 1, Channel ACK bit 0.

use super::{bit, check, cid, frequency_from_wire, frequency_to_wire, MacError};

/// Changes the RX1 data rate offset and the RX2 data rate and frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RxParamSetupReq {
    /// RX1 data rate offset (0..=7).
    pub rx1_dr_offset: u8,
    /// RX2 data rate index (0..=15).
    pub rx2_data_rate: u8,
    /// RX2 frequency in Hz (a multiple of 100 Hz).
    pub frequency_hz: u32,
}

impl RxParamSetupReq {
    pub(crate) const LEN: usize = 4;

    pub(crate) fn from_bytes([dl, f0, f1, f2]: [u8; Self::LEN]) -> Self {
        RxParamSetupReq {
            rx1_dr_offset: (dl >> 4) & 0x07,
            rx2_data_rate: dl & 0x0f,
            frequency_hz: frequency_from_wire([f0, f1, f2]),
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(cid::RX_PARAM_SETUP, "rx1_dr_offset", self.rx1_dr_offset, 7)?;
        check(cid::RX_PARAM_SETUP, "rx2_data_rate", self.rx2_data_rate, 15)?;
        let [f0, f1, f2] = frequency_to_wire(cid::RX_PARAM_SETUP, self.frequency_hz)?;
        Ok([self.rx1_dr_offset << 4 | self.rx2_data_rate, f0, f1, f2])
    }
}

/// Which RX parameters the device accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RxParamSetupAns {
    /// The RX1 data rate offset was accepted.
    pub rx1_dr_offset_ack: bool,
    /// The RX2 data rate was accepted.
    pub rx2_data_rate_ack: bool,
    /// The RX2 frequency was accepted.
    pub channel_ack: bool,
}

impl RxParamSetupAns {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        RxParamSetupAns {
            rx1_dr_offset_ack: bit(b, 2),
            rx2_data_rate_ack: bit(b, 1),
            channel_ack: bit(b, 0),
        }
    }

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        [u8::from(self.rx1_dr_offset_ack) << 2
            | u8::from(self.rx2_data_rate_ack) << 1
            | u8::from(self.channel_ack)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn req_layout() {
        // EU868 RX2 at 869.525 MHz (8695250 × 100 Hz = 0x84add2), DR3, RX1 offset 2.
        let req = RxParamSetupReq {
            rx1_dr_offset: 2,
            rx2_data_rate: 3,
            frequency_hz: 869_525_000,
        };
        assert_eq!(req.encode(), Ok([0x23, 0xd2, 0xad, 0x84]));
        assert_eq!(RxParamSetupReq::from_bytes([0xa3, 0xd2, 0xad, 0x84]), req);
        assert_eq!(
            RxParamSetupReq {
                frequency_hz: 869_525_050,
                ..req
            }
            .encode(),
            Err(MacError::FrequencyNotRepresentable {
                cid: 0x05,
                frequency_hz: 869_525_050
            })
        );
        assert!(RxParamSetupReq {
            rx1_dr_offset: 8,
            ..req
        }
        .encode()
        .is_err());
    }

    #[test]
    fn ans_layout() {
        let a = RxParamSetupAns::from_bytes([0x05]);
        assert!(a.rx1_dr_offset_ack && !a.rx2_data_rate_ack && a.channel_ack);
        assert_eq!(a.encode(), [0x05]);
    }
}
