//! DevStatusReq / DevStatusAns, CID 0x06 (LoRaWAN 1.0.4 and 1.1, chapter 5).
//!
//! DevStatusReq (downlink) has no payload. DevStatusAns (uplink), two bytes:
//! `Battery` (0 external power, 1..=254 level, 255 unknown) | `Margin` (RFU bits
//! 7..6, bits 5..0 the SNR of the last DevStatusReq in dB as a signed 6-bit
//! integer, -32..=31).

use super::{cid, MacError};

/// The device's battery level and link margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DevStatusAns {
    /// 0: external power; 1 (minimum) ..= 254 (maximum): battery level; 255: unknown.
    pub battery: u8,
    /// SNR in dB of the last DevStatusReq as the device received it (-32..=31).
    pub margin_db: i8,
}

impl DevStatusAns {
    pub(crate) const LEN: usize = 2;
    /// `battery` value of a device on external power.
    pub const BATTERY_EXTERNAL_POWER: u8 = 0;
    /// `battery` value of a device that cannot measure its battery.
    pub const BATTERY_UNKNOWN: u8 = 255;

    pub(crate) fn from_bytes([battery, margin]: [u8; Self::LEN]) -> Self {
        // Sign-extend the 6-bit two's complement value: shift it to the top of an
        // i8, then back (an arithmetic shift).
        let margin_db = ((margin << 2) as i8) >> 2;
        DevStatusAns { battery, margin_db }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        if !(-32..=31).contains(&self.margin_db) {
            return Err(MacError::FieldOutOfRange {
                cid: cid::DEV_STATUS,
                field: "margin_db",
                value: self.margin_db.into(),
                max: 31,
            });
        }
        // Two's complement bits of the 6-bit value.
        Ok([self.battery, (self.margin_db as u8) & 0x3f])
    }

    /// The battery level as a fraction of full (0.0..=1.0), or `None` on external
    /// power or when unknown.
    pub fn battery_fraction(&self) -> Option<f32> {
        match self.battery {
            Self::BATTERY_EXTERNAL_POWER | Self::BATTERY_UNKNOWN => None,
            level => Some(f32::from(level - 1) / 253.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_six_bit_margin() {
        // Published in ChirpStack's and brocaar/lorawan's examples: battery 115, margin 7.
        assert_eq!(
            DevStatusAns::from_bytes([115, 7]),
            DevStatusAns {
                battery: 115,
                margin_db: 7
            }
        );
        for (wire, db) in [(0x00, 0), (0x1f, 31), (0x20, -32), (0x3f, -1), (0x3e, -2)] {
            assert_eq!(
                DevStatusAns::from_bytes([1, wire]).margin_db,
                db,
                "{wire:#x}"
            );
            assert_eq!(
                DevStatusAns {
                    battery: 1,
                    margin_db: db
                }
                .encode(),
                Ok([1, wire])
            );
        }
        // RFU bits 7..6 are ignored.
        assert_eq!(DevStatusAns::from_bytes([1, 0xc1]).margin_db, 1);
        for bad in [32, -33, i8::MIN, i8::MAX] {
            assert!(DevStatusAns {
                battery: 0,
                margin_db: bad
            }
            .encode()
            .is_err());
        }
    }

    #[test]
    fn battery_meaning() {
        let s = |battery| DevStatusAns {
            battery,
            margin_db: 0,
        };
        assert_eq!(s(0).battery_fraction(), None);
        assert_eq!(s(255).battery_fraction(), None);
        assert_eq!(s(1).battery_fraction(), Some(0.0));
        assert_eq!(s(254).battery_fraction(), Some(1.0));
    }
}
