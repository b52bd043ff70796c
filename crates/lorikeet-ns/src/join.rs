//! OTAA: a JoinRequest becomes a session and a JoinAccept.

use std::time::Instant;

use lorikeet_lorawan::{DevAddr, Eui64};
use rand_core::RngCore;

use crate::dedup::Uplink;
use crate::device::{RxWindows, Session, DEV_NONCE_MEMORY};
use crate::frames::{self, JoinRequestFrame};
use crate::log_limit::LogKey;
use crate::output::{DropReason, Event, LogCode, LogLevel, Output, StoreChange};
use crate::region;
use crate::server::NetworkServer;
use crate::uplink::{drop_uplink, log, new_uuid};

/// Largest JoinNonce (24 bits).
const MAX_JOIN_NONCE: u32 = 0x00ff_ffff;

/// Refuses a JoinRequest with a log event, throttled per DevEUI: the DevEUI travels
/// in clear, so anyone can make up JoinRequests for it.
fn refuse(
    ns: &mut NetworkServer,
    dev_eui: Eui64,
    reason: DropReason,
    description: String,
    now: Instant,
) {
    if !ns.refused_log_allowed(LogKey::DevEui(dev_eui), LogCode::Otaa, now) {
        return drop_uplink(ns, reason, Some(dev_eui));
    }
    log(
        ns,
        dev_eui,
        LogLevel::Warning,
        LogCode::Otaa,
        description,
        &[],
    );
    drop_uplink(ns, reason, Some(dev_eui));
}

pub(crate) fn process(
    ns: &mut NetworkServer,
    up: Uplink,
    jr: JoinRequestFrame,
    phy: &lorikeet_lorawan::phy::PhyPayload,
    now: Instant,
    rng: &mut dyn RngCore,
) {
    let dev_eui = jr.dev_eui;
    let Some(entry) = ns.devices.get(&dev_eui) else {
        return drop_uplink(ns, DropReason::UnknownDevice, None);
    };
    let dev = &entry.device;
    if dev.disabled {
        return drop_uplink(ns, DropReason::DeviceDisabled, Some(dev_eui));
    }
    let profile = dev.profile.clone();
    if !profile.supports_otaa {
        return refuse(
            ns,
            dev_eui,
            DropReason::JoinRejected,
            "JoinRequest refused: the device profile does not support OTAA".into(),
            now,
        );
    }
    let Some(root) = dev.root_keys.clone() else {
        return refuse(
            ns,
            dev_eui,
            DropReason::JoinRejected,
            "JoinRequest refused: the device has no root keys (PUT /api/v1/devices/{devEui}/keys)"
                .into(),
            now,
        );
    };
    let v11 = profile.mac_version.is_1_1();
    let mic_key = if v11 {
        match &root.nwk_key {
            Some(k) => k.clone(),
            None => {
                return refuse(
                    ns,
                    dev_eui,
                    DropReason::JoinRejected,
                    "JoinRequest refused: a LoRaWAN 1.1 device needs an nwkKey".into(),
                    now,
                )
            }
        }
    } else {
        root.app_key.clone()
    };
    if !frames::join_request_mic_ok(&mic_key, phy) {
        return refuse(
            ns,
            dev_eui,
            DropReason::MicMismatch,
            "JoinRequest MIC check failed: the root key does not match the device's".into(),
            now,
        );
    }
    let nonce = jr.dev_nonce.0;
    let join = &dev.join;
    if profile.mac_version.dev_nonce_is_counter() {
        if let Some(last) = join.last_dev_nonce {
            if nonce <= last {
                return refuse(
                    ns,
                    dev_eui,
                    DropReason::JoinRejected,
                    format!(
                        "JoinRequest refused: DevNonce {nonce} is not greater than the last accepted {last} \
                         (LoRaWAN {} devices count their DevNonce up)",
                        profile.mac_version
                    ),
                    now,
                );
            }
        }
    } else if join.used_dev_nonces.contains(&nonce) {
        return refuse(
            ns,
            dev_eui,
            DropReason::JoinRejected,
            format!("JoinRequest refused: DevNonce {nonce} was already used (replay protection)"),
            now,
        );
    }
    // Devices keep the last JoinNonce they accepted, starting from 0, and a 1.1 device
    // accepts only a greater one: the first JoinAccept must already carry 1.
    let join_nonce = join.last_join_nonce.map_or(1, |n| n.saturating_add(1));
    if join_nonce > MAX_JOIN_NONCE {
        return refuse(
            ns,
            dev_eui,
            DropReason::JoinRejected,
            "JoinRequest refused: the device's JoinNonce is exhausted; re-provision it".into(),
            now,
        );
    }
    let Some(up_dr) = region::uplink_dr(&profile.region, &up.tx_info) else {
        return drop_uplink(ns, DropReason::UnknownDataRate, Some(dev_eui));
    };
    let up_channel = region::channel_index(&profile.region, up.tx_info.frequency_hz).unwrap_or(0);

    let dev_addr = allocate_dev_addr(ns, rng);
    let net_id = ns.config.net_id;
    let keys =
        frames::derive_session_keys(v11, &root, join_nonce, net_id, jr.join_eui, jr.dev_nonce);
    let (rx2_default_hz, rx2_default_dr) = region::rx2_default(&profile.region);
    let rx = RxWindows {
        rx1_delay_s: profile.rx1_delay_s,
        rx1_dr_offset: profile.rx1_dr_offset,
        rx2_dr: profile.rx2_dr.unwrap_or(rx2_default_dr),
        // The JoinAccept cannot carry the RX2 frequency: the device starts on the default.
        rx2_frequency_hz: rx2_default_hz,
    };
    let accept = frames::build_join_accept(
        v11,
        &root,
        frames::JoinAcceptParams {
            dev_eui,
            join_eui: jr.join_eui,
            dev_nonce: jr.dev_nonce,
            join_nonce,
            net_id,
            dev_addr,
            rx1_dr_offset: rx.rx1_dr_offset,
            rx2_dr: rx.rx2_dr,
            rx_delay: rx.rx1_delay_s,
            cf_list: region::cf_list(&profile.region),
        },
    );
    let Ok(accept) = accept else {
        return refuse(
            ns,
            dev_eui,
            DropReason::JoinRejected,
            "JoinAccept could not be built (invalid receive-window settings in the device profile)"
                .into(),
            now,
        );
    };

    let mut session = Session::new(dev_addr, keys, rx);
    session.state.uplink_since_activation = false;
    session.state.mac =
        crate::mac::MacState::after_join(&*profile.region, profile.mac_version, up_dr);

    let Some(entry) = ns.devices.get_mut(&dev_eui) else {
        return;
    };
    let old_addr = entry.device.session.as_ref().map(|s| s.dev_addr);
    let j = &mut entry.device.join;
    j.last_join_nonce = Some(join_nonce);
    j.last_dev_nonce = Some(nonce);
    if !profile.mac_version.dev_nonce_is_counter() {
        j.used_dev_nonces.push_back(nonce);
        while j.used_dev_nonces.len() > DEV_NONCE_MEMORY {
            j.used_dev_nonces.pop_front();
        }
    }
    let join_state = j.clone();
    entry.device.session = Some(session);
    entry.class_c_ack_deadline = None;
    ns.reindex(dev_eui, old_addr, Some(dev_addr));
    ns.counters.joins_accepted += 1;

    // Persist before the JoinAccept leaves: a device must never hold a session we lost.
    ns.push(Output::Store(StoreChange::Join {
        dev_eui,
        join: join_state,
    }));
    ns.store_session(dev_eui);
    let deduplication_id = new_uuid(rng);
    ns.push(Output::Event(Event::Join {
        dev_eui,
        dev_addr,
        deduplication_id,
        rx_info: up.rx_info.clone(),
        tx_info: up.tx_info,
    }));
    crate::downlink::join_accept(ns, dev_eui, &up, up_dr, up_channel, accept, now);
}

/// Picks a random address in our NetID's block, avoiding ones in use when it can
/// (a shared address still works: the MIC tells devices apart).
fn allocate_dev_addr(ns: &NetworkServer, rng: &mut dyn RngCore) -> DevAddr {
    let net_id = ns.config.net_id;
    let mut candidate = DevAddr::from_net_id(net_id, rng.next_u32());
    for _ in 0..16 {
        if !ns.by_dev_addr.contains_key(&candidate) {
            break;
        }
        candidate = DevAddr::from_net_id(net_id, rng.next_u32());
    }
    candidate
}
