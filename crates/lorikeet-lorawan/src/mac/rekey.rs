//! RekeyInd / RekeyConf, CID 0x0B (LoRaWAN 1.1, chapter 5).
//!
//! A LoRaWAN 1.1 OTAA device sends RekeyInd in every uplink after a join until the
//! network answers RekeyConf, confirming that the new session keys are in use.
//! Payload: one byte, bits 3..0 Minor (1 for LoRaWAN x.1), 7..4 RFU.

use super::{check, cid, MacError};

/// The device confirms its new security context and states its minor version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RekeyInd {
    /// Minor version (0..=15; 1 means LoRaWAN 1.1).
    pub dev_lorawan_minor: u8,
}

impl RekeyInd {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        RekeyInd {
            dev_lorawan_minor: b & 0x0f,
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(cid::REKEY, "dev_lorawan_minor", self.dev_lorawan_minor, 15)?;
        Ok([self.dev_lorawan_minor])
    }
}

/// The network's answer to RekeyInd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RekeyConf {
    /// Minor version the network uses (0..=15).
    pub serv_lorawan_minor: u8,
}

impl RekeyConf {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        RekeyConf {
            serv_lorawan_minor: b & 0x0f,
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(
            cid::REKEY,
            "serv_lorawan_minor",
            self.serv_lorawan_minor,
            15,
        )?;
        Ok([self.serv_lorawan_minor])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(RekeyInd::from_bytes([0x21]).dev_lorawan_minor, 1);
        assert_eq!(
            RekeyInd {
                dev_lorawan_minor: 1
            }
            .encode(),
            Ok([0x01])
        );
        assert!(matches!(
            RekeyConf {
                serv_lorawan_minor: 0x10
            }
            .encode(),
            Err(MacError::FieldOutOfRange { cid: 0x0b, .. })
        ));
    }
}
