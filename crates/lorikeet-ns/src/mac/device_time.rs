//! DeviceTimeReq → DeviceTimeAns: the GPS time at which the uplink carrying the
//! request was received (LoRaWAN 1.0.3 §5.9, 1.1 §5.10).
//!
//! The best source is the gateway's GPS timestamp (`tmms`); then its synchronised
//! UTC clock (`time`); then our own clock when the copy arrived (backhaul delay
//! included, tens of milliseconds off).

use std::time::{Duration, SystemTime};

use super::queue::MacAnswer;
use super::UplinkInfo;

/// The GPS epoch (1980-01-06T00:00:00Z) in Unix seconds.
pub const GPS_EPOCH_UNIX_S: u64 = 315_964_800;

/// Leap seconds between GPS time and UTC: 18 since 2017-01-01, with no change
/// announced by the IERS since. GPS time = UTC + this.
pub const GPS_LEAP_SECONDS: u64 = 18;

/// GPS time of a UTC instant, as milliseconds since the GPS epoch.
pub fn gps_time_ms(utc: SystemTime) -> u64 {
    let unix = utc
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let gps = unix.saturating_sub(Duration::from_secs(GPS_EPOCH_UNIX_S))
        + Duration::from_secs(GPS_LEAP_SECONDS);
    u64::try_from(gps.as_millis()).unwrap_or(u64::MAX)
}

/// The answer for `info`'s uplink.
pub(super) fn answer(info: &UplinkInfo<'_>) -> MacAnswer {
    let best = info.up.best_rx();
    let ms = best
        .and_then(|r| r.time_since_gps_epoch_ms)
        .or_else(|| best.and_then(|r| r.gw_time).map(gps_time_ms))
        .unwrap_or_else(|| gps_time_ms(info.now));
    // The field holds seconds mod 2^32 and 1/256 s.
    MacAnswer::DeviceTime {
        gps_time_seconds: (ms / 1000) as u32,
        fraction_256ths: ((ms % 1000) * 256 / 1000) as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gps_epoch_and_leap_seconds() {
        let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(GPS_EPOCH_UNIX_S);
        assert_eq!(gps_time_ms(epoch), 18_000);
        // 2026-01-01T00:00:00Z = Unix 1767225600: GPS seconds 1451260818.
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_225_600_500);
        assert_eq!(gps_time_ms(t), 1_451_260_818_500);
    }
}
