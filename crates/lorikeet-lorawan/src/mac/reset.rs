//! ResetInd / ResetConf, CID 0x01 (LoRaWAN 1.1, chapter 5).
//!
//! An ABP device that supports LoRaWAN 1.1 sends ResetInd after every reset with its
//! LoRaWAN minor version; the network answers ResetConf with the version it will
//! use. Both payloads are one byte: bits 3..0 Minor (1 for LoRaWAN x.1), 7..4 RFU.

use super::{check, cid, MacError};

/// The device's LoRaWAN minor version after a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResetInd {
    /// Minor version (0..=15; 1 means LoRaWAN 1.1).
    pub dev_lorawan_minor: u8,
}

impl ResetInd {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        ResetInd {
            dev_lorawan_minor: b & 0x0f,
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(cid::RESET, "dev_lorawan_minor", self.dev_lorawan_minor, 15)?;
        Ok([self.dev_lorawan_minor])
    }
}

/// The network's answer to ResetInd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResetConf {
    /// Minor version the network uses (0..=15).
    pub serv_lorawan_minor: u8,
}

impl ResetConf {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([b]: [u8; Self::LEN]) -> Self {
        ResetConf {
            serv_lorawan_minor: b & 0x0f,
        }
    }

    pub(crate) fn encode(&self) -> Result<[u8; Self::LEN], MacError> {
        check(
            cid::RESET,
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
        assert_eq!(
            ResetInd::from_bytes([0xf1]).dev_lorawan_minor,
            1,
            "RFU bits ignored"
        );
        assert_eq!(
            ResetConf {
                serv_lorawan_minor: 1
            }
            .encode(),
            Ok([0x01])
        );
        assert!(ResetConf {
            serv_lorawan_minor: 16
        }
        .encode()
        .is_err());
    }
}
