//! DutyCycleReq/Ans: the aggregated duty-cycle limit of `[mac] max_duty_cycle`
//! (the device may transmit 1/2^n of the time; 0 = no limit).

use super::queue::MacRequest;
use super::Ctx;
use crate::device::Session;

pub(super) fn plan(cx: &Ctx<'_>, s: &Session) -> Option<MacRequest> {
    let wanted = cx.config.max_duty_cycle;
    // A device never told anything runs without a limit.
    let current = s.state.mac.max_duty_cycle.unwrap_or(0);
    (current != wanted).then_some(MacRequest::DutyCycle {
        max_duty_cycle: wanted,
    })
}
