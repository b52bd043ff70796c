//! LinkCheckReq / LinkCheckAns, CID 0x02 (LoRaWAN 1.0.4 and 1.1, chapter 5).
//!
//! LinkCheckReq (uplink) has no payload. LinkCheckAns (downlink) is two bytes:
//! Margin, the demodulation margin in dB of the last LinkCheckReq above the
//! demodulation floor (0..=254; 255 reserved), and GwCnt, the number of gateways
//! that received it.

/// Link quality of the last LinkCheckReq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkCheckAns {
    /// Demodulation margin in dB (0..=254).
    pub margin_db: u8,
    /// Number of gateways that received the request.
    pub gw_cnt: u8,
}

impl LinkCheckAns {
    pub(crate) const LEN: usize = 2;

    pub(crate) fn from_bytes([margin_db, gw_cnt]: [u8; Self::LEN]) -> Self {
        LinkCheckAns { margin_db, gw_cnt }
    }

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        [self.margin_db, self.gw_cnt]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let a = LinkCheckAns {
            margin_db: 20,
            gw_cnt: 3,
        };
        assert_eq!(a.encode(), [20, 3]);
        assert_eq!(LinkCheckAns::from_bytes([20, 3]), a);
    }
}
