//! A deduplicated uplink: decode, find the device, authenticate, check the frame
//! counter, update the session, emit events and plan the Class A answer.

use std::collections::BTreeMap;
use std::time::Instant;

use lorikeet_lorawan::Eui64;
use rand_core::RngCore;
use uuid::Uuid;

use crate::dedup::Uplink;
use crate::device::LastHeard;
use crate::frames::{self, DataFrame, Frame};
use crate::log_limit::LogKey;
use crate::output::{DropReason, Event, LogCode, LogLevel, Output, StoreChange, UpEvent};
use crate::region;
use crate::server::NetworkServer;

/// A random v4 UUID from the injected generator.
pub(crate) fn new_uuid(rng: &mut dyn RngCore) -> Uuid {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// Emits a log event for a device.
pub(crate) fn log(
    ns: &mut NetworkServer,
    dev_eui: Eui64,
    level: LogLevel,
    code: LogCode,
    description: String,
    context: &[(&str, String)],
) {
    let context: BTreeMap<String, String> = context
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    ns.push(Output::Event(Event::Log {
        dev_eui,
        level,
        code,
        description,
        context,
    }));
}

pub(crate) fn drop_uplink(ns: &mut NetworkServer, reason: DropReason, dev_eui: Option<Eui64>) {
    ns.push(Output::Dropped { reason, dev_eui });
}

pub(crate) fn process(ns: &mut NetworkServer, up: Uplink, now: Instant, rng: &mut dyn RngCore) {
    let frame = match frames::parse(&up.phy_payload) {
        Ok(f) => f,
        Err(_) => return drop_uplink(ns, DropReason::Malformed, None),
    };
    match frame {
        Frame::JoinRequest(jr, phy) => crate::join::process(ns, up, jr, &phy, now, rng),
        Frame::Data(d) => data(ns, up, *d, now, rng),
        Frame::Other => drop_uplink(ns, DropReason::UnexpectedType, None),
    }
}

/// The result of matching a data frame to a session.
struct Matched {
    dev_eui: Eui64,
    f_cnt: u32,
    dr: u8,
    channel: u8,
}

fn data(ns: &mut NetworkServer, up: Uplink, d: DataFrame, now: Instant, rng: &mut dyn RngCore) {
    let Some(candidates) = ns.by_dev_addr.get(&d.dev_addr) else {
        return drop_uplink(ns, DropReason::UnknownDevice, None);
    };
    let mut matched = None;
    let mut disabled = None;
    let mut unknown_dr = None;
    for dev_eui in candidates {
        let Some(entry) = ns.devices.get(dev_eui) else {
            continue;
        };
        let dev = &entry.device;
        let Some(s) = dev.session.as_ref() else {
            continue;
        };
        if dev.disabled {
            disabled = Some(*dev_eui);
            continue;
        }
        let region = &dev.profile.region;
        let Some(dr) = region::uplink_dr(region, &up.tx_info) else {
            unknown_dr = Some(*dev_eui);
            continue;
        };
        let channel = region::channel_index(region, up.tx_info.frequency_hz).unwrap_or(0);
        let v11 = dev.profile.mac_version.is_1_1();
        // ConfFCnt (1.1): the counter of the confirmed downlink this frame acknowledges.
        let conf_f_cnt = match (&s.state.pending_ack, d.ack) {
            (Some(p), true) => p.f_cnt_down,
            _ => 0,
        };
        // Counter values to try: the reconstruction, and for devices allowed to reset
        // their counter, the wire value itself.
        let reconstructed =
            lorikeet_lorawan::fcnt::reconstruct_f_cnt(s.f_cnt_up, d.f_cnt, ns.config.max_f_cnt_gap);
        let wire_only = u32::from(d.f_cnt);
        let tries = [
            reconstructed,
            (dev.skip_f_cnt_check && reconstructed != Some(wire_only)).then_some(wire_only),
            // A replay or retransmission: recognise it (to report it) by its old counter.
            s.f_cnt_up
                .map(|last| (last & 0xffff_0000) | wire_only)
                .filter(|c| Some(*c) != reconstructed),
        ];
        for f_cnt in tries.into_iter().flatten() {
            if frames::data_up_mic_ok(v11, &s.keys, &d.phy, f_cnt, conf_f_cnt, dr, channel) {
                matched = Some(Matched {
                    dev_eui: *dev_eui,
                    f_cnt,
                    dr,
                    channel,
                });
                break;
            }
        }
        if matched.is_some() {
            break;
        }
    }
    let Some(m) = matched else {
        if let Some(dev_eui) = disabled {
            return drop_uplink(ns, DropReason::DeviceDisabled, Some(dev_eui));
        }
        if let Some(dev_eui) = unknown_dr {
            return drop_uplink(ns, DropReason::UnknownDataRate, Some(dev_eui));
        }
        let only = candidates
            .first()
            .copied()
            .filter(|_| candidates.len() == 1);
        // A forged frame needs nothing but a real DevAddr: its log event is throttled.
        let key = LogKey::DevAddr(d.dev_addr);
        let logged = only.filter(|_| ns.refused_log_allowed(key, LogCode::UplinkMic, now));
        if let Some(dev_eui) = logged {
            log(
                ns,
                dev_eui,
                LogLevel::Warning,
                LogCode::UplinkMic,
                format!(
                    "uplink with DevAddr {} and FCnt {} failed the MIC check: wrong session keys, or a forged frame",
                    d.dev_addr, d.f_cnt
                ),
                &[("f_cnt", d.f_cnt.to_string())],
            );
        }
        return drop_uplink(ns, DropReason::MicMismatch, only);
    };
    accept_data(ns, up, d, m, now, rng);
}

fn accept_data(
    ns: &mut NetworkServer,
    up: Uplink,
    d: DataFrame,
    m: Matched,
    now: Instant,
    rng: &mut dyn RngCore,
) {
    let dev_eui = m.dev_eui;
    let Some(entry) = ns.devices.get_mut(&dev_eui) else {
        return;
    };
    let skip_check = entry.device.skip_f_cnt_check;
    let Some(s) = entry.device.session.as_mut() else {
        return;
    };
    if let Some(last) = s.f_cnt_up {
        if m.f_cnt == last && !skip_check {
            // The device sends the same frame again: our ACK (or the frame) was lost.
            if d.confirmed {
                s.state.ack_due = true;
                s.conf_f_cnt = Some(m.f_cnt);
            }
            let confirmed = d.confirmed;
            // A replay of the last frame looks the same: throttled.
            let code = LogCode::UplinkFCntRetransmission;
            if ns.refused_log_allowed(LogKey::DevAddr(d.dev_addr), code, now) {
                log(
                    ns,
                    dev_eui,
                    LogLevel::Info,
                    code,
                    format!("frame {} received again; not delivered twice", m.f_cnt),
                    &[("f_cnt", m.f_cnt.to_string())],
                );
            }
            drop_uplink(ns, DropReason::Retransmission, Some(dev_eui));
            if confirmed {
                crate::downlink::class_a(ns, dev_eui, &up, m.dr, m.channel, now, rng);
            }
            return;
        }
        if m.f_cnt < last && !skip_check {
            // So does a replay of any older frame.
            if !ns.refused_log_allowed(LogKey::DevAddr(d.dev_addr), LogCode::UplinkFCntReset, now) {
                return drop_uplink(ns, DropReason::FCntInvalid, Some(dev_eui));
            }
            log(
                ns,
                dev_eui,
                LogLevel::Warning,
                LogCode::UplinkFCntReset,
                format!(
                    "frame counter {} is below the last accepted {}: the device was reset or the frame is a replay; \
                     dropped (re-activate the device, or set skipFcntCheck for devices that reset their counter)",
                    m.f_cnt, last
                ),
                &[("f_cnt", m.f_cnt.to_string()), ("last_f_cnt", last.to_string())],
            );
            return drop_uplink(ns, DropReason::FCntInvalid, Some(dev_eui));
        }
    }
    let deduplication_id = new_uuid(rng);
    s.f_cnt_up = Some(m.f_cnt);
    s.state.uplink_since_activation = true;
    if let Some(best) = up.best_rx() {
        s.state.last_heard = Some(LastHeard {
            gateway_id: best.gateway_id,
            at: best.ns_time,
        });
    }
    s.state.mac.uplink_dr = Some(m.dr);
    s.state.ack_due = d.confirmed;
    s.conf_f_cnt = d.confirmed.then_some(m.f_cnt);
    let pending = s.state.pending_ack.take();
    let app_s_key = s.keys.app_s_key.clone();
    let dev_addr = s.dev_addr;
    entry.class_c_ack_deadline = None;
    if let Some(p) = &pending {
        entry.item_done(p.queue_item_id);
    }
    if let Some(p) = pending {
        ns.push(Output::Store(StoreChange::QueueItemDone {
            dev_eui,
            queue_item_id: p.queue_item_id,
        }));
        ns.push(Output::Event(Event::Ack {
            dev_eui,
            deduplication_id,
            queue_item_id: p.queue_item_id,
            acknowledged: d.ack,
            f_cnt_down: p.f_cnt_down,
        }));
        ns.wake_class_c(dev_eui);
    }

    let mac_bytes = ns
        .devices
        .get(&dev_eui)
        .and_then(|e| {
            let v11 = e.device.profile.mac_version.is_1_1();
            e.device
                .session
                .as_ref()
                .map(|s| crate::frames::uplink_mac_bytes(v11, &s.keys, &d, m.f_cnt))
        })
        .unwrap_or_default();
    crate::mac::on_uplink(ns, dev_eui, &mac_bytes, &d, &up, m.dr, deduplication_id);

    ns.counters.uplinks_accepted += 1;
    ns.store_session(dev_eui);
    if d.f_port != Some(0) {
        ns.push(Output::Event(Event::Up(Box::new(UpEvent {
            dev_eui,
            dev_addr,
            deduplication_id,
            f_cnt: m.f_cnt,
            f_port: d.f_port,
            frm_payload: d.frm_payload,
            app_s_key,
            confirmed: d.confirmed,
            adr: d.adr,
            dr: m.dr,
            tx_info: up.tx_info,
            rx_info: up.rx_info.clone(),
        }))));
    }
    crate::downlink::class_a(ns, dev_eui, &up, m.dr, m.channel, now, rng);
}
