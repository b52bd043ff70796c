//! RXParamSetupReq/Ans: brings the session's RX1 data-rate offset, RX2 data rate and
//! RX2 frequency to the device profile's. Applied to the session only when the device
//! acknowledges all three; the device keeps its old settings otherwise.

use lorikeet_lorawan::mac::MacCommand;

use super::queue::MacRequest;
use super::Ctx;
use crate::device::Session;

/// The RX parameters the profile asks for.
pub(super) fn wanted(cx: &Ctx<'_>) -> (u8, u8, u32) {
    let (f, dr) = cx.region().rx2_default();
    (
        cx.profile.rx1_dr_offset,
        cx.profile.rx2_dr.unwrap_or(dr),
        cx.profile.rx2_frequency_hz.unwrap_or(f),
    )
}

pub(super) fn plan(cx: &Ctx<'_>, s: &Session) -> Option<MacRequest> {
    let (rx1_dr_offset, rx2_dr, rx2_frequency_hz) = wanted(cx);
    let st = &s.state;
    if (st.rx1_dr_offset, st.rx2_dr, st.rx2_frequency_hz)
        == (rx1_dr_offset, rx2_dr, rx2_frequency_hz)
    {
        return None;
    }
    Some(MacRequest::RxParamSetup {
        rx1_dr_offset,
        rx2_dr,
        rx2_frequency_hz,
    })
}

pub(super) fn answered(
    s: &mut Session,
    request: &MacRequest,
    answers: &[&MacCommand],
) -> Result<(), String> {
    let (
        MacRequest::RxParamSetup {
            rx1_dr_offset,
            rx2_dr,
            rx2_frequency_hz,
        },
        Some(MacCommand::RxParamSetupAns(a)),
    ) = (request, answers.first())
    else {
        return Err("unexpected answer".into());
    };
    if a.rx1_dr_offset_ack && a.rx2_data_rate_ack && a.channel_ack {
        s.state.rx1_dr_offset = *rx1_dr_offset;
        s.state.rx2_dr = *rx2_dr;
        s.state.rx2_frequency_hz = *rx2_frequency_hz;
        return Ok(());
    }
    let mut refused = Vec::new();
    if !a.rx1_dr_offset_ack {
        refused.push(format!("RX1DROffset {rx1_dr_offset}"));
    }
    if !a.rx2_data_rate_ack {
        refused.push(format!("RX2 DR{rx2_dr}"));
    }
    if !a.channel_ack {
        refused.push(format!("RX2 frequency {rx2_frequency_hz} Hz"));
    }
    Err(refused.join(", "))
}
