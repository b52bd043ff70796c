//! NewChannelReq/Ans: defines the operator's extra channels (`[regions.X]
//! extra_channels`) on devices that do not know them yet — those a CFList could not
//! carry, and every one on ABP devices. Dynamic channel plans only (fixed plans such as
//! US915 have no NewChannelReq).

use lorikeet_lorawan::mac::MacCommand;
use lorikeet_region::ChMaskScheme;

use super::queue::MacRequest;
use super::Ctx;
use crate::device::Session;

/// Channels defined per downlink at most (each command is 6 bytes).
const PER_DOWNLINK: usize = 2;

pub(super) fn plan(cx: &Ctx<'_>, s: &Session) -> Vec<MacRequest> {
    let region = cx.region();
    let plan = region.channel_plan();
    if plan.scheme() != ChMaskScheme::Dynamic16 {
        return Vec::new();
    }
    let mac = &s.state.mac;
    let known = mac.channels_or_default(region).known;
    let enabled = plan.enabled();
    let mut out = Vec::new();
    for (i, c) in plan.channels().iter().enumerate() {
        let Ok(i) = u8::try_from(i) else { break };
        if known.contains(i) || !enabled.contains(&i) {
            continue;
        }
        let pending = mac
            .pending
            .iter()
            .any(|p| matches!(p.request, MacRequest::NewChannel { ch_index, .. } if ch_index == i));
        if pending {
            continue;
        }
        out.push(MacRequest::NewChannel {
            ch_index: i,
            frequency_hz: c.frequency_hz,
            min_dr: c.min_dr,
            max_dr: c.max_dr,
        });
        if out.len() == PER_DOWNLINK {
            break;
        }
    }
    out
}

pub(super) fn answered(
    s: &mut Session,
    request: &MacRequest,
    answers: &[&MacCommand],
) -> Result<(), String> {
    let (
        MacRequest::NewChannel {
            ch_index,
            frequency_hz,
            ..
        },
        Some(MacCommand::NewChannelAns(a)),
    ) = (request, answers.first())
    else {
        return Err("unexpected answer".into());
    };
    if a.channel_frequency_ok && a.data_rate_range_ok {
        let ch = s.state.mac.channels.get_or_insert_with(Default::default);
        ch.known.insert(*ch_index);
        // A channel defined by NewChannelReq is enabled on the device.
        ch.enabled.insert(*ch_index);
        return Ok(());
    }
    let mut refused = Vec::new();
    if !a.channel_frequency_ok {
        refused.push(format!("frequency {frequency_hz} Hz"));
    }
    if !a.data_rate_range_ok {
        refused.push("data-rate range".to_owned());
    }
    Err(format!("channel {ch_index}: {}", refused.join(", ")))
}
