//! DevStatusReq/Ans: battery level and demodulation margin as the device sees the
//! network's downlinks, asked for every `[mac] dev_status_interval_s` seconds and/or
//! every `dev_status_interval_uplinks` uplinks, and reported as a `status` event.

use lorikeet_lorawan::mac::DevStatusAns;

use super::queue::MacRequest;
use super::{Ctx, Effects, UplinkInfo};
use crate::device::Session;
use crate::output::Event;

/// DevStatusReq when the interval has passed. The clock starts at the session's first
/// uplink, so a fleet that joins at once does not ask all at once either.
pub(super) fn plan(cx: &Ctx<'_>, s: &mut Session, info: &UplinkInfo<'_>) -> Option<MacRequest> {
    let cfg = cx.config;
    let mac = &mut s.state.mac;
    mac.uplinks_since_dev_status = mac.uplinks_since_dev_status.saturating_add(1);
    let Some(at) = mac.dev_status_at else {
        mac.dev_status_at = Some(info.now);
        return None;
    };
    let by_time = cfg.dev_status_interval_s > 0
        && info
            .now
            .duration_since(at)
            .is_ok_and(|d| d.as_secs() >= cfg.dev_status_interval_s);
    let by_count = cfg.dev_status_interval_uplinks > 0
        && mac.uplinks_since_dev_status >= cfg.dev_status_interval_uplinks;
    if !(by_time || by_count) || mac.has_pending(lorikeet_lorawan::mac::cid::DEV_STATUS) {
        return None;
    }
    mac.dev_status_at = Some(info.now);
    mac.uplinks_since_dev_status = 0;
    Some(MacRequest::DevStatus)
}

/// The `status` event of a DevStatusAns: battery 0 = external power, 255 = unknown,
/// 1..=254 = level (as a percentage).
pub(super) fn status_event(info: &UplinkInfo<'_>, a: DevStatusAns, fx: &mut Effects) {
    let (external, unavailable, level) = match a.battery {
        0 => (true, false, None),
        255 => (false, true, None),
        b => (
            false,
            false,
            Some((f32::from(b) * 100.0 / 254.0 * 100.0).round() / 100.0),
        ),
    };
    fx.events.push(Event::Status {
        dev_eui: info.dev_eui,
        deduplication_id: info.deduplication_id,
        margin_db: a.margin_db,
        external_power_source: external,
        battery_level_unavailable: unavailable,
        battery_level_percent: level,
    });
}
