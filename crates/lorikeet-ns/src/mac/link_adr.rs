//! LinkADRReq/Ans: data rate, TX power, NbTrans and channel mask, chosen by ADR (see
//! [`super::adr`]) and by the difference between the channels the device uses and the
//! channels the network listens on.
//!
//! A LinkADRReq block is atomic on the device (LoRaWAN 1.0.4 §5.3, 1.1 §5.3): when any
//! of its three status bits is 0 the device keeps its previous settings, and so does
//! the session. The nacked bit still teaches the network something: a refused data
//! rate caps ADR below it, a refused power caps the TXPower index below it, a refused
//! channel mask stops channel-mask changes for the session.

use lorikeet_lorawan::mac::MacCommand;

use super::adr::AdrInput;
use super::queue::{ChMask, LinkAdrRequest};
use super::{ChannelSet, Ctx, UplinkInfo};
use crate::device::Session;

/// The LinkADRReq block this uplink calls for, if anything differs.
pub(super) fn plan(cx: &Ctx<'_>, s: &Session, info: &UplinkInfo<'_>) -> Option<LinkAdrRequest> {
    let region = cx.region();
    let plan = region.channel_plan();
    let mac = &s.state.mac;
    let channels = mac.channels_or_default(region);
    // Runs on every uplink: compare bit sets, and build index lists only for a change.
    let mask_change = if mac.ch_mask_refused {
        Vec::new()
    } else {
        // Channels the device does not know yet are left to NewChannelReq.
        let known_target = ChannelSet(plan.enabled_bits() & channels.known.0);
        if known_target == ChannelSet::default() || known_target == channels.enabled {
            Vec::new()
        } else {
            region.link_adr_ch_masks(&channels.enabled.indices())
        }
    };

    let current = (info.dr, mac.tx_power_index, mac.nb_trans);
    let mut wanted = current;
    if cx.profile.adr_enabled && info.adr {
        let settings = &cx.profile.mac_settings;
        let cfg = cx.config;
        let mut max_dr = region.max_adr_data_rate();
        for cap in [
            (cfg.adr_max_dr < 15).then_some(cfg.adr_max_dr),
            settings.adr_max_dr,
            mac.adr_max_dr,
            region.enabled_uplink_data_rates().last().copied(),
        ]
        .into_iter()
        .flatten()
        {
            max_dr = max_dr.min(cap);
        }
        let min_dr = settings.adr_min_dr.unwrap_or(cfg.adr_min_dr);
        let mut max_tx_power_index =
            region.max_tx_power_index_for_revision(cx.profile.reg_params_revision);
        if let Some(cap) = mac.adr_max_tx_power_index {
            max_tx_power_index = max_tx_power_index.min(cap);
        }
        let input = AdrInput {
            region,
            history: &mac.adr_history,
            dr: info.dr,
            tx_power_index: mac.tx_power_index,
            nb_trans: mac.nb_trans,
            min_dr,
            max_dr,
            max_tx_power_index,
            installation_margin_db: settings
                .installation_margin_db
                .unwrap_or(cfg.adr_installation_margin_db),
        };
        let algorithm = cx.adr.pick(
            settings.adr_algorithm.as_deref(),
            &cfg.default_adr_algorithm,
        );
        let d = algorithm.decide(&input);
        wanted = (
            d.dr.min(15),
            d.tx_power_index.min(max_tx_power_index),
            d.nb_trans.clamp(1, 15),
        );
    }
    if wanted == current && mask_change.is_empty() {
        return None;
    }
    let device_enabled = channels.enabled.indices();
    // Every LinkADRReq carries a mask: with nothing to change, restate the device's.
    let masks = if mask_change.is_empty() {
        plan.ch_masks_for(&device_enabled).ok()?
    } else {
        mask_change
    };
    let enabled = plan.apply_ch_masks(&device_enabled, &masks).ok()?;
    // The device refuses a DR that none of its enabled channels allows.
    let dr_usable = enabled.iter().any(|&i| {
        plan.channels()
            .get(usize::from(i))
            .is_some_and(|c| (c.min_dr..=c.max_dr).contains(&wanted.0))
    });
    if !dr_usable {
        return None;
    }
    Some(LinkAdrRequest {
        dr: wanted.0,
        tx_power_index: wanted.1,
        nb_trans: wanted.2,
        ch_masks: masks.into_iter().map(ChMask::from).collect(),
        enabled_channels: enabled,
    })
}

/// The device answered the block with `answers` (one LinkADRAns per command, or one).
pub(super) fn answered(
    _cx: &Ctx<'_>,
    s: &mut Session,
    r: &LinkAdrRequest,
    answers: &[&MacCommand],
) -> Result<(), String> {
    let (mut power, mut dr, mut mask) = (true, true, true);
    for a in answers {
        if let MacCommand::LinkAdrAns(a) = a {
            power &= a.power_ack;
            dr &= a.data_rate_ack;
            mask &= a.channel_mask_ack;
        }
    }
    let mac = &mut s.state.mac;
    if power && dr && mask {
        mac.tx_power_index = r.tx_power_index;
        mac.nb_trans = r.nb_trans;
        let channels = mac.channels.get_or_insert_with(Default::default);
        channels.enabled = ChannelSet::from_indices(&r.enabled_channels);
        // The device moves to the new DR from its next uplink.
        mac.uplink_dr = Some(r.dr);
        return Ok(());
    }
    let mut refused = Vec::new();
    if !dr {
        refused.push(format!("data rate DR{}", r.dr));
        if let Some(lower) = r.dr.checked_sub(1) {
            mac.adr_max_dr = Some(mac.adr_max_dr.map_or(lower, |m| m.min(lower)));
        }
    }
    if !power {
        refused.push(format!("TXPower index {}", r.tx_power_index));
        if let Some(lower) = r.tx_power_index.checked_sub(1) {
            mac.adr_max_tx_power_index =
                Some(mac.adr_max_tx_power_index.map_or(lower, |m| m.min(lower)));
        }
    }
    if !mask {
        refused.push(format!("channel mask {:?}", r.enabled_channels));
        mac.ch_mask_refused = true;
    }
    Err(format!(
        "{}; the session keeps its previous settings",
        refused.join(", ")
    ))
}
