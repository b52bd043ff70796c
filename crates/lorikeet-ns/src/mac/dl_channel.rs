//! DlChannelReq/Ans: moves the RX1 frequency of an uplink channel (`[mac]
//! dl_channels`), for dynamic channel plans of LoRaWAN 1.0.2 and later. Once the
//! device acknowledges, RX1 downlinks for that channel use the new frequency.

use lorikeet_lorawan::mac::MacCommand;
use lorikeet_region::ChMaskScheme;

use super::queue::MacRequest;
use super::{Ctx, DlChannel};
use crate::device::{MacVersion, Session};

pub(super) fn plan(cx: &Ctx<'_>, s: &Session) -> Vec<MacRequest> {
    let region = cx.region();
    let plan = region.channel_plan();
    if plan.scheme() != ChMaskScheme::Dynamic16 || cx.version() < MacVersion::V1_0_2 {
        return Vec::new();
    }
    let mac = &s.state.mac;
    let known = mac.channels_or_default(region).known;
    let mut out = Vec::new();
    for c in cx
        .config
        .dl_channels
        .iter()
        .filter(|c| c.region == region.name())
    {
        let Some(ch_index) = plan.channel_index(c.uplink_frequency_hz) else {
            continue;
        };
        if !known.contains(ch_index) || mac.dl_channel_hz(ch_index) == Some(c.downlink_frequency_hz)
        {
            continue;
        }
        out.push(MacRequest::DlChannel {
            ch_index,
            frequency_hz: c.downlink_frequency_hz,
        });
    }
    out
}

pub(super) fn answered(
    s: &mut Session,
    request: &MacRequest,
    answers: &[&MacCommand],
) -> Result<(), String> {
    let (
        MacRequest::DlChannel {
            ch_index,
            frequency_hz,
        },
        Some(MacCommand::DlChannelAns(a)),
    ) = (request, answers.first())
    else {
        return Err("unexpected answer".into());
    };
    if a.channel_frequency_ok && a.uplink_frequency_exists {
        let mac = &mut s.state.mac;
        mac.dl_channels.retain(|d| d.ch_index != *ch_index);
        mac.dl_channels.push(DlChannel {
            ch_index: *ch_index,
            frequency_hz: *frequency_hz,
        });
        return Ok(());
    }
    Err(format!(
        "RX1 frequency {frequency_hz} Hz for channel {ch_index} (frequency ok: {}, uplink channel exists: {})",
        a.channel_frequency_ok, a.uplink_frequency_exists
    ))
}
