//! DeviceModeInd / DeviceModeConf, CID 0x20 (LoRaWAN 1.1, Class C).
//!
//! One byte each way: the device class, 0x00 Class A, 0x01 RFU, 0x02 Class C.

/// Class A in the Class field.
pub const CLASS_A: u8 = 0x00;
/// Class C in the Class field.
pub const CLASS_C: u8 = 0x02;

/// The device announces it switched class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceModeInd {
    /// 0x00 Class A, 0x02 Class C (other values RFU, kept as received).
    pub class: u8,
}

impl DeviceModeInd {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([class]: [u8; Self::LEN]) -> Self {
        DeviceModeInd { class }
    }

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        [self.class]
    }
}

/// The network confirms the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceModeConf {
    /// 0x00 Class A, 0x02 Class C.
    pub class: u8,
}

impl DeviceModeConf {
    pub(crate) const LEN: usize = 1;

    pub(crate) fn from_bytes([class]: [u8; Self::LEN]) -> Self {
        DeviceModeConf { class }
    }

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        [self.class]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(DeviceModeInd::from_bytes([CLASS_C]).class, CLASS_C);
        assert_eq!(DeviceModeConf { class: CLASS_A }.encode(), [0]);
    }
}
