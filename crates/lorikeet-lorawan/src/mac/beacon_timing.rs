//! BeaconTimingReq / BeaconTimingAns, CID 0x12 (LoRaWAN 1.0.2 Class B; deprecated
//! since 1.0.3, replaced by DeviceTimeReq). Decoded so that old Class B devices
//! do not make whole frames fail.
//!
//! BeaconTimingReq (uplink) has no payload. BeaconTimingAns (downlink), three
//! bytes: `Delay` (u16 LE, units of 30 ms until the next beacon) | `Channel`.

/// Timing of the next beacon (deprecated command).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BeaconTimingAns {
    /// Time to the next beacon in units of 30 ms.
    pub delay_30ms: u16,
    /// The beacon channel index.
    pub channel: u8,
}

impl BeaconTimingAns {
    pub(crate) const LEN: usize = 3;

    pub(crate) fn from_bytes([d0, d1, channel]: [u8; Self::LEN]) -> Self {
        BeaconTimingAns {
            delay_30ms: u16::from_le_bytes([d0, d1]),
            channel,
        }
    }

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        let [d0, d1] = self.delay_30ms.to_le_bytes();
        [d0, d1, self.channel]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let a = BeaconTimingAns {
            delay_30ms: 0x0102,
            channel: 7,
        };
        assert_eq!(a.encode(), [0x02, 0x01, 0x07]);
        assert_eq!(BeaconTimingAns::from_bytes([0x02, 0x01, 0x07]), a);
    }
}
