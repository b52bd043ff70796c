//! DlChannelReq / DlChannelAns, CID 0x0A (LoRaWAN 1.0.4 and 1.1, chapter 5).
//!
//! DlChannelReq (downlink), four bytes: `ChIndex` | `Freq` (24 bits LE, units of
//! 100 Hz), the RX1 frequency for downlinks answering uplinks on that channel.
//!
//! DlChannelAns (uplink), one byte: RFU 7..2, Uplink frequency exists bit 1,
//! Channel frequency ok bit 0.

use super::{bit, cid, frequency_from_wire, frequency_to_wire, MacError};

/// Moves RX1 of an uplink channel to another frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DlChannelReq {
    /// The uplink channel index.
    pub ch_index: u8,
    /// The RX1 downlink frequency in Hz (a multiple of 100 Hz).
    pub frequency_hz: u32,
}

impl DlChannelReq {
    pub(crate) const LEN: usize = 4;

    pub(crate) fn from_bytes([ch_index, f0, f1, f2]: [u8; Self::LEN]) -> Self {
        DlChannelReq {
            ch_index,
            frequency_hz: frequency_from_wire([f0, f1, f2]),
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        let [f0, f1, f2] = frequency_to_wire(cid::DL_CHANNEL, self.frequency_hz)?;
        Ok([self.ch_index, f0, f1, f2])
    }
}

/// Whether the device accepted a DlChannelReq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DlChannelAns {
    /// The uplink channel exists.
    pub uplink_frequency_exists: bool,
    /// The device can use the downlink frequency.
    pub channel_frequency_ok: bool,
}

impl DlChannelAns {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        DlChannelAns {
            uplink_frequency_exists: bit(b, 1),
            channel_frequency_ok: bit(b, 0),
        }
    }

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        [u8::from(self.uplink_frequency_exists) << 1 | u8::from(self.channel_frequency_ok)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let req = DlChannelReq {
            ch_index: 1,
            frequency_hz: 868_100_000,
        };
        assert_eq!(req.encode(), Ok([0x01, 0x28, 0x76, 0x84]));
        assert_eq!(DlChannelReq::from_bytes([0x01, 0x28, 0x76, 0x84]), req);
        // The largest representable frequency and one above it.
        assert_eq!(
            DlChannelReq {
                ch_index: 0,
                frequency_hz: 1_677_721_500
            }
            .encode(),
            Ok([0, 0xff, 0xff, 0xff])
        );
        assert!(DlChannelReq {
            ch_index: 0,
            frequency_hz: 1_677_721_600
        }
        .encode()
        .is_err());
        let ans = DlChannelAns::from_bytes([0x03]);
        assert!(ans.uplink_frequency_exists && ans.channel_frequency_ok);
        assert_eq!(ans.encode(), [0x03]);
    }
}
