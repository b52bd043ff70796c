//! DeviceTimeReq / DeviceTimeAns, CID 0x0D (LoRaWAN 1.0.4 and 1.1, chapter 5).
//!
//! DeviceTimeReq (uplink) has no payload. DeviceTimeAns (downlink), five bytes: the
//! GPS time at the end of the uplink that carried the request, as seconds since
//! the GPS epoch (u32 LE) and a fraction in units of 1/256 s (u8).

use std::time::Duration;

/// Network time for the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceTimeAns {
    /// Whole seconds since the GPS epoch (1980-01-06T00:00:00Z, no leap seconds).
    pub gps_time_seconds: u32,
    /// Fraction of a second in units of 1/256 s.
    pub fraction_256ths: u8,
}

impl DeviceTimeAns {
    pub(crate) const LEN: usize = 5;

    pub(crate) fn from_bytes([s0, s1, s2, s3, fraction_256ths]: [u8; Self::LEN]) -> Self {
        DeviceTimeAns {
            gps_time_seconds: u32::from_le_bytes([s0, s1, s2, s3]),
            fraction_256ths,
        }
    }

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        let [s0, s1, s2, s3] = self.gps_time_seconds.to_le_bytes();
        [s0, s1, s2, s3, self.fraction_256ths]
    }

    /// From a time since the GPS epoch; the fraction is rounded down to 1/256 s and
    /// seconds past u32::MAX (the year 2116) wrap, as the 32-bit field does.
    pub fn from_gps_time(since_gps_epoch: Duration) -> Self {
        DeviceTimeAns {
            // The wire field is 32 bits; truncation is the wrap described above.
            gps_time_seconds: since_gps_epoch.as_secs() as u32,
            // subsec_nanos < 1e9, so the quotient is below 256.
            fraction_256ths: (u64::from(since_gps_epoch.subsec_nanos()) * 256 / 1_000_000_000)
                as u8,
        }
    }

    /// The time since the GPS epoch.
    pub fn gps_time(&self) -> Duration {
        Duration::from_secs(self.gps_time_seconds.into())
            + Duration::from_nanos(u64::from(self.fraction_256ths) * 1_000_000_000 / 256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_time_conversion() {
        let t = Duration::from_millis(1_234_567_890_500);
        let ans = DeviceTimeAns::from_gps_time(t);
        assert_eq!(ans.gps_time_seconds, 1_234_567_890);
        assert_eq!(ans.fraction_256ths, 128);
        assert_eq!(ans.encode(), [0xd2, 0x02, 0x96, 0x49, 0x80]);
        assert_eq!(DeviceTimeAns::from_bytes(ans.encode()), ans);
        assert_eq!(ans.gps_time(), t);
        // 1/256 s resolution, rounded down.
        let fine = DeviceTimeAns::from_gps_time(Duration::new(7, 3_906_249));
        assert_eq!(fine.fraction_256ths, 0);
        let fine = DeviceTimeAns::from_gps_time(Duration::new(7, 3_906_250));
        assert_eq!(fine.fraction_256ths, 1);
        assert_eq!(
            DeviceTimeAns::from_gps_time(Duration::new(7, 999_999_999)).fraction_256ths,
            255
        );
    }
}
