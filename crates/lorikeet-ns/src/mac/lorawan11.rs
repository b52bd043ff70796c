//! LoRaWAN 1.1 only: ResetInd/Conf (an ABP device restarted), RekeyInd/Conf (an OTAA
//! device confirms its new session), ADRParamSetupReq, RejoinParamSetupReq and
//! ForceRejoinReq (queued by [`crate::NetworkServer::force_rejoin`]).

use lorikeet_lorawan::mac::MacCommand;

use super::queue::{MacAnswer, MacRequest};
use super::{Ctx, DeviceChannels, Effects, MacState};
use crate::device::Session;
use crate::output::LogLevel;

/// The LoRaWAN 1.x minor version we speak: 1.1.
const SERV_LORAWAN_MINOR: u8 = 1;

/// ResetInd: the device restarted with its default radio settings. Answer ResetConf
/// and forget every setting negotiated before; frame counters are kept (1.1 ABP
/// devices keep theirs across restarts).
pub(super) fn reset_ind(cx: &Ctx<'_>, s: &mut Session, dev_minor: u8, fx: &mut Effects) {
    if !cx.version().is_1_1() {
        fx.log(
            LogLevel::Warning,
            "ResetInd from a device whose profile is not LoRaWAN 1.1; ignored".into(),
            Vec::new(),
        );
        return;
    }
    let region = cx.region();
    let (f, dr) = region.rx2_default();
    let keep_dr = s.state.mac.uplink_dr;
    s.state.mac = MacState {
        uplink_dr: keep_dr,
        channels: Some(DeviceChannels::defaults(region)),
        lorawan_minor: Some(dev_minor.min(SERV_LORAWAN_MINOR)),
        dev_status_at: s.state.mac.dev_status_at,
        ..MacState::default()
    };
    s.state.rx1_delay_s = cx.profile.rx1_delay_s.clamp(1, 15);
    s.state.rx1_dr_offset = 0;
    s.state.rx2_dr = dr;
    s.state.rx2_frequency_hz = f;
    s.state.mac.answers.push(MacAnswer::ResetConf {
        serv_lorawan_minor: dev_minor.min(SERV_LORAWAN_MINOR),
    });
}

/// RekeyInd: sent by a 1.1 device after a join until it hears RekeyConf.
pub(super) fn rekey_ind(cx: &Ctx<'_>, s: &mut Session, dev_minor: u8, fx: &mut Effects) {
    if !cx.version().is_1_1() {
        fx.log(
            LogLevel::Warning,
            "RekeyInd from a device whose profile is not LoRaWAN 1.1; ignored".into(),
            Vec::new(),
        );
        return;
    }
    let minor = dev_minor.min(SERV_LORAWAN_MINOR);
    s.state.mac.lorawan_minor = Some(minor);
    s.state.mac.answers.push(MacAnswer::RekeyConf {
        serv_lorawan_minor: minor,
    });
}

/// ADRParamSetupReq and RejoinParamSetupReq when the profile's `macSettings` ask for
/// values the device does not have yet.
pub(super) fn plan(cx: &Ctx<'_>, s: &Session) -> Vec<MacRequest> {
    if !cx.version().is_1_1() {
        return Vec::new();
    }
    let m = &cx.profile.mac_settings;
    let mac = &s.state.mac;
    let mut out = Vec::new();
    if let (Some(limit_exp), Some(delay_exp)) = (m.adr_ack_limit_exp, m.adr_ack_delay_exp) {
        if mac.adr_ack_exps != Some((limit_exp, delay_exp)) {
            out.push(MacRequest::AdrParamSetup {
                limit_exp,
                delay_exp,
            });
        }
    }
    if let (Some(max_time_n), Some(max_count_n)) = (m.rejoin_max_time_n, m.rejoin_max_count_n) {
        if mac.rejoin_params != Some((max_time_n, max_count_n)) {
            out.push(MacRequest::RejoinParamSetup {
                max_time_n,
                max_count_n,
            });
        }
    }
    out
}

pub(super) fn rejoin_param_answered(
    s: &mut Session,
    request: &MacRequest,
    answers: &[&MacCommand],
) -> Result<(), String> {
    let (
        MacRequest::RejoinParamSetup {
            max_time_n,
            max_count_n,
        },
        Some(MacCommand::RejoinParamSetupAns(a)),
    ) = (request, answers.first())
    else {
        return Err("unexpected answer".into());
    };
    // TimeOK = 0: the device applies the count but not the time limit.
    s.state.mac.rejoin_params = Some((*max_time_n, *max_count_n));
    if a.time_ok {
        Ok(())
    } else {
        Err(format!(
            "the rejoin time limit 2^({max_time_n}+10) s (the count limit was applied)"
        ))
    }
}
