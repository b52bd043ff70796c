//! PingSlotChannelReq / PingSlotChannelAns, CID 0x11 (Class B MAC commands of LoRaWAN 1.0.4 and 1.1).
//!
//! PingSlotChannelReq (downlink), four bytes: `Frequency` (24 bits LE, units of
//! 100 Hz; 0 restores the default) | `DR` (RFU 7..4, data rate 3..0).
//! PingSlotChannelAns (uplink), one byte: RFU 7..2, Data rate ok bit 1, Channel
//! frequency ok bit 0.

use super::{bit, check, cid, frequency_from_wire, frequency_to_wire, MacError};

/// Sets the frequency and data rate of ping slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PingSlotChannelReq {
    /// Ping slot frequency in Hz (a multiple of 100 Hz; 0 = region default).
    pub frequency_hz: u32,
    /// Ping slot data rate index (0..=15).
    pub data_rate: u8,
}

impl PingSlotChannelReq {
    pub(crate) const LEN: usize = 4;

    pub(crate) fn from_bytes([f0, f1, f2, dr]: [u8; Self::LEN]) -> Self {
        PingSlotChannelReq {
            frequency_hz: frequency_from_wire([f0, f1, f2]),
            data_rate: dr & 0x0f,
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(cid::PING_SLOT_CHANNEL, "data_rate", self.data_rate, 15)?;
        let [f0, f1, f2] = frequency_to_wire(cid::PING_SLOT_CHANNEL, self.frequency_hz)?;
        Ok([f0, f1, f2, self.data_rate])
    }
}

/// Whether the device accepted a PingSlotChannelReq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PingSlotChannelAns {
    /// The data rate is usable.
    pub data_rate_ok: bool,
    /// The frequency is usable.
    pub channel_frequency_ok: bool,
}

impl PingSlotChannelAns {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        PingSlotChannelAns {
            data_rate_ok: bit(b, 1),
            channel_frequency_ok: bit(b, 0),
        }
    }

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        [u8::from(self.data_rate_ok) << 1 | u8::from(self.channel_frequency_ok)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let req = PingSlotChannelReq {
            frequency_hz: 869_525_000,
            data_rate: 3,
        };
        assert_eq!(req.encode(), Ok([0xd2, 0xad, 0x84, 0x03]));
        assert_eq!(
            PingSlotChannelReq::from_bytes([0xd2, 0xad, 0x84, 0xf3]),
            req
        );
        assert!(PingSlotChannelReq {
            data_rate: 16,
            ..req
        }
        .encode()
        .is_err());
        let ans = PingSlotChannelAns::from_bytes([0x01]);
        assert!(!ans.data_rate_ok && ans.channel_frequency_ok);
        assert_eq!(ans.encode(), [0x01]);
    }
}
