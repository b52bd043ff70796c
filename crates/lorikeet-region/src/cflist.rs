//! The optional 16-byte CFList of a JoinAccept (LoRaWAN 1.0.3/1.1 §6.2.6 /
//! RP002-1.0.3 §2.x.4 per region).

use crate::RegionError;

/// A decoded CFList.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CfList {
    /// CFListType 0: up to five extra channel frequencies (0 = none) for the
    /// channel indices following the default channels.
    Frequencies([u32; 5]),
    /// CFListType 1: channel masks, mask `k` covering channels `16k..16k+15`
    /// (US915/AU915 use masks 0–4, CN470 masks 0–5).
    ChannelMasks([u16; 6]),
}

impl CfList {
    /// Encodes the 16 bytes appended to the JoinAccept.
    pub fn encode(&self) -> Result<[u8; 16], RegionError> {
        let mut out = [0u8; 16];
        match self {
            CfList::Frequencies(freqs) => {
                for (i, &frequency_hz) in freqs.iter().enumerate() {
                    if frequency_hz % 100 != 0 {
                        return Err(RegionError::FrequencyNotMultipleOf100Hz { frequency_hz });
                    }
                    let units = (frequency_hz / 100).to_le_bytes();
                    // 24 bits of 100 Hz units: every u32 frequency / 100 fits.
                    out[i * 3..i * 3 + 3].copy_from_slice(&units[..3]);
                }
                out[15] = 0;
            }
            CfList::ChannelMasks(masks) => {
                for (i, mask) in masks.iter().enumerate() {
                    out[i * 2..i * 2 + 2].copy_from_slice(&mask.to_le_bytes());
                }
                out[15] = 1;
            }
        }
        Ok(out)
    }

    /// Decodes a CFList; RFU bytes are ignored, an unknown type is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, RegionError> {
        let bytes: &[u8; 16] = bytes
            .try_into()
            .map_err(|_| RegionError::InvalidCfListLength { len: bytes.len() })?;
        match bytes[15] {
            0 => {
                let mut freqs = [0u32; 5];
                for (i, f) in freqs.iter_mut().enumerate() {
                    let b = &bytes[i * 3..i * 3 + 3];
                    *f = u32::from_le_bytes([b[0], b[1], b[2], 0]) * 100;
                }
                Ok(CfList::Frequencies(freqs))
            }
            1 => {
                let mut masks = [0u16; 6];
                for (i, m) in masks.iter_mut().enumerate() {
                    *m = u16::from_le_bytes([bytes[i * 2], bytes[i * 2 + 1]]);
                }
                Ok(CfList::ChannelMasks(masks))
            }
            other => Err(RegionError::UnknownCfListType {
                cf_list_type: other,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequencies_encode_as_24_bit_little_endian_100hz_units() {
        // 867.1 MHz = 8_671_000 * 100 Hz = 0x844F18.
        let cf = CfList::Frequencies([867_100_000, 0, 0, 0, 0]);
        let bytes = cf.encode().unwrap();
        assert_eq!(&bytes[..3], &[0x18, 0x4F, 0x84]);
        assert_eq!(bytes[15], 0);
        assert_eq!(CfList::decode(&bytes), Ok(cf));
    }

    #[test]
    fn masks_round_trip_with_type_1() {
        let cf = CfList::ChannelMasks([0xFF00, 0, 0, 0, 0x0002, 0]);
        let bytes = cf.encode().unwrap();
        assert_eq!(&bytes[..2], &[0x00, 0xFF]);
        assert_eq!(&bytes[8..10], &[0x02, 0x00]);
        assert_eq!(bytes[15], 1);
        assert_eq!(CfList::decode(&bytes), Ok(cf));
    }

    #[test]
    fn bad_input_is_rejected() {
        assert_eq!(
            CfList::decode(&[0u8; 15]),
            Err(RegionError::InvalidCfListLength { len: 15 })
        );
        let mut b = [0u8; 16];
        b[15] = 7;
        assert_eq!(
            CfList::decode(&b),
            Err(RegionError::UnknownCfListType { cf_list_type: 7 })
        );
        assert!(CfList::Frequencies([867_100_050, 0, 0, 0, 0])
            .encode()
            .is_err());
    }
}
