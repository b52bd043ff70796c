//! LinkADRReq / LinkADRAns, CID 0x03 (LoRaWAN 1.0.4 and 1.1, chapter 5).
//!
//! LinkADRReq (downlink), four bytes:
//! `DataRate_TXPower` (DataRate bits 7..4, TXPower bits 3..0) | `ChMask` (u16 LE) |
//! `Redundancy` (RFU bit 7, ChMaskCntl bits 6..4, NbTrans bits 3..0).
//!
//! LinkADRAns (uplink), one byte: RFU 7..3, PowerACK bit 2, DataRateACK bit 1,
//! ChannelMaskACK bit 0.

use super::{bit, check, cid, MacError};

/// Asks the device to change data rate, TX power, channels and repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkAdrReq {
    /// Data rate index (0..=15; 15 means "keep the current one" since 1.0.4).
    pub data_rate: u8,
    /// TX power index (0..=15; 15 means "keep the current one" since 1.0.4).
    pub tx_power: u8,
    /// Channel mask; bit n enables channel n of the block selected by `ch_mask_cntl`.
    pub ch_mask: u16,
    /// How `ch_mask` applies (region specific, 0..=7).
    pub ch_mask_cntl: u8,
    /// Transmissions per uplink (0..=15; 0 means "keep the current value").
    pub nb_trans: u8,
}

impl LinkAdrReq {
    pub(crate) const LEN: usize = 4;

    pub(crate) fn from_bytes([dr_power, m0, m1, redundancy]: [u8; Self::LEN]) -> Self {
        LinkAdrReq {
            data_rate: dr_power >> 4,
            tx_power: dr_power & 0x0f,
            ch_mask: u16::from_le_bytes([m0, m1]),
            ch_mask_cntl: (redundancy >> 4) & 0x07,
            nb_trans: redundancy & 0x0f,
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(cid::LINK_ADR, "data_rate", self.data_rate, 15)?;
        check(cid::LINK_ADR, "tx_power", self.tx_power, 15)?;
        check(cid::LINK_ADR, "ch_mask_cntl", self.ch_mask_cntl, 7)?;
        check(cid::LINK_ADR, "nb_trans", self.nb_trans, 15)?;
        let [m0, m1] = self.ch_mask.to_le_bytes();
        Ok([
            self.data_rate << 4 | self.tx_power,
            m0,
            m1,
            self.ch_mask_cntl << 4 | self.nb_trans,
        ])
    }
}

/// Which parts of a LinkADRReq the device accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LinkAdrAns {
    /// The TX power was applied.
    pub power_ack: bool,
    /// The data rate was applied.
    pub data_rate_ack: bool,
    /// The channel mask was applied.
    pub channel_mask_ack: bool,
}

impl LinkAdrAns {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        LinkAdrAns {
            power_ack: bit(b, 2),
            data_rate_ack: bit(b, 1),
            channel_mask_ack: bit(b, 0),
        }
    }

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        [u8::from(self.power_ack) << 2
            | u8::from(self.data_rate_ack) << 1
            | u8::from(self.channel_mask_ack)]
    }

    /// Whether every part was accepted (the device applies a LinkADRReq all or nothing).
    pub fn all_ack(&self) -> bool {
        self.power_ack && self.data_rate_ack && self.channel_mask_ack
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn req_layout() {
        // DR5, TXPower 1, channels 0-7, ChMaskCntl 0, NbTrans 1.
        let req = LinkAdrReq {
            data_rate: 5,
            tx_power: 1,
            ch_mask: 0x00ff,
            ch_mask_cntl: 0,
            nb_trans: 1,
        };
        assert_eq!(req.encode(), Ok([0x51, 0xff, 0x00, 0x01]));
        assert_eq!(LinkAdrReq::from_bytes([0x51, 0xff, 0x00, 0x01]), req);
        // US915 style: ChMaskCntl 7 with channels 64-71 in the low byte.
        let us = LinkAdrReq::from_bytes([0x3f, 0x01, 0x00, 0xf0 | 0x70 | 0x02]);
        assert_eq!(us.ch_mask_cntl, 7, "RFU bit 7 ignored");
        assert_eq!(us.nb_trans, 2);
        assert_eq!(us.tx_power, 15);
        for bad in [
            LinkAdrReq {
                data_rate: 16,
                ..req
            },
            LinkAdrReq {
                tx_power: 16,
                ..req
            },
            LinkAdrReq {
                ch_mask_cntl: 8,
                ..req
            },
            LinkAdrReq {
                nb_trans: 16,
                ..req
            },
        ] {
            assert!(bad.encode().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ans_layout() {
        let all = LinkAdrAns {
            power_ack: true,
            data_rate_ack: true,
            channel_mask_ack: true,
        };
        assert_eq!(all.encode(), [0x07]);
        assert!(LinkAdrAns::from_bytes([0xff]).all_ack());
        let only_power = LinkAdrAns::from_bytes([0x04]);
        assert!(only_power.power_ack && !only_power.data_rate_ack && !only_power.channel_mask_ack);
        assert!(!only_power.all_ack());
    }
}
