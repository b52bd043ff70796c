//! NewChannelReq / NewChannelAns, CID 0x07 (LoRaWAN 1.0.4 and 1.1, chapter 5).
//!
//! NewChannelReq (downlink), five bytes: `ChIndex` | `Freq` (24 bits LE, units of
//! 100 Hz; 0 disables the channel) | `DrRange` (MaxDR bits 7..4, MinDR bits 3..0).
//!
//! NewChannelAns (uplink), one byte: RFU 7..2, Data rate range ok bit 1, Channel
//! frequency ok bit 0.

use super::{bit, check, cid, frequency_from_wire, frequency_to_wire, MacError};

/// Creates, changes or (with frequency 0) disables an uplink channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NewChannelReq {
    /// The channel index.
    pub ch_index: u8,
    /// Channel frequency in Hz (a multiple of 100 Hz); 0 disables the channel.
    pub frequency_hz: u32,
    /// Lowest data rate allowed on the channel (0..=15).
    pub min_dr: u8,
    /// Highest data rate allowed on the channel (0..=15).
    pub max_dr: u8,
}

impl NewChannelReq {
    pub(crate) const LEN: usize = 5;

    pub(crate) fn from_bytes([ch_index, f0, f1, f2, dr]: [u8; Self::LEN]) -> Self {
        NewChannelReq {
            ch_index,
            frequency_hz: frequency_from_wire([f0, f1, f2]),
            min_dr: dr & 0x0f,
            max_dr: dr >> 4,
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(cid::NEW_CHANNEL, "min_dr", self.min_dr, 15)?;
        check(cid::NEW_CHANNEL, "max_dr", self.max_dr, 15)?;
        let [f0, f1, f2] = frequency_to_wire(cid::NEW_CHANNEL, self.frequency_hz)?;
        Ok([self.ch_index, f0, f1, f2, self.max_dr << 4 | self.min_dr])
    }
}

/// Whether the device accepted a NewChannelReq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NewChannelAns {
    /// The data rate range is usable by the device.
    pub data_rate_range_ok: bool,
    /// The device can use the frequency.
    pub channel_frequency_ok: bool,
}

impl NewChannelAns {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        NewChannelAns {
            data_rate_range_ok: bit(b, 1),
            channel_frequency_ok: bit(b, 0),
        }
    }

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        [u8::from(self.data_rate_range_ok) << 1 | u8::from(self.channel_frequency_ok)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        // Channel 3 at 867.1 MHz (8671000 = 0x844f18), DR0..DR5.
        let req = NewChannelReq {
            ch_index: 3,
            frequency_hz: 867_100_000,
            min_dr: 0,
            max_dr: 5,
        };
        assert_eq!(req.encode(), Ok([0x03, 0x18, 0x4f, 0x84, 0x50]));
        assert_eq!(
            NewChannelReq::from_bytes([0x03, 0x18, 0x4f, 0x84, 0x50]),
            req
        );
        let disable = NewChannelReq::from_bytes([4, 0, 0, 0, 0]);
        assert_eq!(disable.frequency_hz, 0);
        assert!(NewChannelReq { max_dr: 16, ..req }.encode().is_err());
        assert!(NewChannelReq {
            frequency_hz: 1,
            ..req
        }
        .encode()
        .is_err());
        let ans = NewChannelAns::from_bytes([0x02]);
        assert!(ans.data_rate_range_ok && !ans.channel_frequency_ok);
        assert_eq!(ans.encode(), [0x02]);
    }
}
