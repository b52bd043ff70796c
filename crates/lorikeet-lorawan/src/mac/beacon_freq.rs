//! BeaconFreqReq / BeaconFreqAns, CID 0x13 (Class B MAC commands of LoRaWAN 1.0.4 and 1.1).
//!
//! BeaconFreqReq (downlink), three bytes: `Frequency` (24 bits LE, units of
//! 100 Hz; 0 restores the default). BeaconFreqAns (uplink), one byte: RFU 7..1,
//! Beacon frequency ok bit 0.

use super::{bit, cid, frequency_from_wire, frequency_to_wire, MacError};

/// Sets the beacon frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BeaconFreqReq {
    /// Beacon frequency in Hz (a multiple of 100 Hz; 0 = region default).
    pub frequency_hz: u32,
}

impl BeaconFreqReq {
    pub(crate) const LEN: usize = 3;

    pub(crate) fn from_bytes(b: [u8; Self::LEN]) -> Self {
        BeaconFreqReq {
            frequency_hz: frequency_from_wire(b),
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        frequency_to_wire(cid::BEACON_FREQ, self.frequency_hz)
    }
}

/// Whether the device accepted the beacon frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BeaconFreqAns {
    /// The frequency is usable.
    pub beacon_frequency_ok: bool,
}

impl BeaconFreqAns {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        BeaconFreqAns {
            beacon_frequency_ok: bit(b, 0),
        }
    }

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        [u8::from(self.beacon_frequency_ok)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let req = BeaconFreqReq {
            frequency_hz: 923_300_000,
        };
        assert_eq!(req.encode(), Ok([0x68, 0xe2, 0x8c]));
        assert_eq!(BeaconFreqReq::from_bytes([0x68, 0xe2, 0x8c]), req);
        assert!(BeaconFreqReq { frequency_hz: 50 }.encode().is_err());
        assert!(BeaconFreqAns::from_bytes([0x01]).beacon_frequency_ok);
        assert_eq!(BeaconFreqAns::default().encode(), [0]);
    }
}
