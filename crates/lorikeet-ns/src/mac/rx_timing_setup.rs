//! RXTimingSetupReq/Ans: brings the session's RX1 delay to the device profile's
//! (a JoinAccept sets it too; this covers profile changes and ABP devices).

use super::queue::MacRequest;
use super::Ctx;
use crate::device::Session;

pub(super) fn plan(cx: &Ctx<'_>, s: &Session) -> Option<MacRequest> {
    let wanted = cx.profile.rx1_delay_s.clamp(1, 15);
    (s.state.rx1_delay_s.max(1) != wanted).then_some(MacRequest::RxTimingSetup {
        rx1_delay_s: wanted,
    })
}
