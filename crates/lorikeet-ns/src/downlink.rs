//! Downlink planning: which window, gateway, frequency, data rate and power; building
//! data downlinks from the queue, MAC commands and ACKs; applying TX_ACK results.

use std::time::{Duration, Instant};

use lorikeet_lorawan::Eui64;
use rand_core::RngCore;

use crate::dedup::Uplink;
use crate::device::PendingAck;
use crate::frames;
use crate::output::{
    DownlinkRequest, Event, LogCode, LogLevel, Output, StoreChange, Timing, TxResult, Window,
};
use crate::radio::{Refusal, TxAckError, TOO_EARLY_RETRY};
use crate::region;
use crate::server::{InFlight, NetworkServer, Purpose, RxWindowPolicy};
use crate::uplink::log;

/// JOIN_ACCEPT_DELAY1 (RX1 of a JoinAccept), LoRaWAN 1.0/1.1 §6.
pub const JOIN_ACCEPT_DELAY1: Duration = Duration::from_secs(5);

/// Frequency and data rate of one receive window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowParams {
    pub(crate) frequency_hz: u32,
    pub(crate) dr: u8,
}

/// Wraps a whole-second delay into concentrator microseconds.
fn delay_us(d: Duration) -> u32 {
    // Delays are at most 16 s, far inside u32 µs.
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Plans a Class A answer to `up` in RX1 (`rx1`, after `rx1_delay`) or RX2 (one second
/// later), as the policy and the time left allow.
#[allow(clippy::too_many_arguments)]
fn plan_class_a(
    ns: &mut NetworkServer,
    dev_eui: Eui64,
    up: &Uplink,
    rx1: Option<WindowParams>,
    rx2: WindowParams,
    rx1_delay: Duration,
    phy_payload: Vec<u8>,
    fits_rx2: bool,
    purpose: Purpose,
    now: Instant,
) -> bool {
    let Some(best) = up.best_rx() else {
        return false;
    };
    let Some(entry) = ns.devices.get(&dev_eui) else {
        return false;
    };
    let region = entry.device.profile.region.clone();
    let rx1_at = up.air_end() + rx1_delay;
    let rx2_at = rx1_at + Duration::from_secs(1);
    let policy = ns.config.rx_window;
    let rx1_possible = policy != RxWindowPolicy::Rx2Only && rx1.is_some();
    let rx2_possible = policy != RxWindowPolicy::Rx1Only && fits_rx2;

    // Candidates in order of preference: RX1, then RX2, on the gateway that heard
    // the uplink best, then the same on the others by signal (issue 19: a window
    // already taken on one gateway is free on another).
    let mut heard: Vec<&crate::rx::RxInfo> = up.rx_info.iter().collect();
    heard.sort_by(|a, b| b.signal_cmp(a));
    let _ = best;
    let air_end = up.air_end();
    let mut candidates = Vec::with_capacity(heard.len() * 2);
    for rx in &heard {
        // The uplink's tmst is the end of its reception: it anchors that gateway's
        // clock for placing transmissions.
        ns.radio(rx.gateway_id, Some(&region), now)
            .observe(rx.tmst, air_end);
        // Concentrator time wraps every ~71.6 minutes: wrapping arithmetic on purpose.
        let tmst_rx1 = rx.tmst.wrapping_add(delay_us(rx1_delay));
        let tmst_rx2 = tmst_rx1.wrapping_add(1_000_000);
        if let (true, Some(w1)) = (rx1_possible, rx1) {
            candidates.push((rx.gateway_id, w1, tmst_rx1, Window::Rx1, rx1_at));
        }
        if rx2_possible {
            candidates.push((rx.gateway_id, rx2, tmst_rx2, Window::Rx2, rx2_at));
        }
    }
    let request =
        |ns: &mut NetworkServer, gateway_id: Eui64, w: WindowParams, tmst: u32, window: Window| {
            let modulation = region::modulation(&region, w.dr)?;
            Some(DownlinkRequest {
                id: ns.next_downlink_id(),
                dev_eui,
                gateway_id,
                phy_payload: phy_payload.clone(),
                timing: Timing::Delay { tmst },
                window,
                frequency_hz: w.frequency_hz,
                modulation,
                dr: w.dr,
                tx_power_eirp_dbm: region::downlink_tx_power_dbm(&region, w.frequency_hz),
            })
        };
    let mut first: Option<DownlinkRequest> = None;
    let mut fallback = None;
    let mut refused: Option<Refusal> = None;
    for (gateway_id, w, tmst, window, at) in candidates {
        // The frame must reach the gateway before its moment: the configured lead plus
        // what the gateway's TOO_LATE answers taught us.
        let lead = ns.lead_for(gateway_id);
        if now + lead > at {
            if first.is_none() {
                refused.get_or_insert(Refusal::TooLate);
                ns.count_refusal(gateway_id, Refusal::TooLate);
            }
            continue;
        }
        let Some(req) = request(ns, gateway_id, w, tmst, window) else {
            continue;
        };
        match first {
            None => match ns.place(&req, now) {
                Ok(()) => first = Some(req),
                Err(why) => {
                    refused.get_or_insert(why);
                    ns.count_refusal(gateway_id, why);
                }
            },
            // The next candidate that is free now is the retry if the gateway refuses
            // the first (placed when it is used).
            Some(_) => {
                if ns.fits(&req, now) {
                    fallback = Some((req, at - lead));
                    break;
                }
            }
        }
    }
    let Some(first) = first else {
        let why = refused.map_or("no receive window left", Refusal::label);
        log(
            ns,
            dev_eui,
            LogLevel::Warning,
            LogCode::DownlinkGateway,
            match why {
                "collision" => "every receive window of every gateway that heard the uplink is taken by other transmissions; the downlink waits for the next uplink".into(),
                "duty_cycle" => "the duty-cycle budget of every gateway that heard the uplink is spent for these windows; the downlink waits for the next uplink".into(),
                "dwell_time" => "the downlink would be on air longer than the region's 400 ms dwell time in every window; the downlink waits for the next uplink".into(),
                "tx_freq" => "every gateway that heard the uplink refused these windows' frequencies (TX_FREQ); the downlink waits for the next uplink".into(),
                _ => "no receive window left for the downlink: processing or backhaul was too slow".into(),
            },
            &[("reason", why.to_owned())],
        );
        return false;
    };
    send(ns, first, purpose, fallback);
    true
}

fn send(
    ns: &mut NetworkServer,
    mut request: DownlinkRequest,
    purpose: Purpose,
    fallback: Option<(DownlinkRequest, Instant)>,
) {
    ns.hand_out(&mut request);
    let id = request.id;
    if let Some(e) = ns.devices.get_mut(&request.dev_eui) {
        e.in_flight = Some(id);
    }
    ns.counters.downlinks_planned += 1;
    spend_f_cnt_down(ns, request.dev_eui, &purpose);
    ns.in_flight.insert(
        id,
        InFlight {
            request: request.clone(),
            purpose,
            fallback,
        },
    );
    ns.push(Output::Transmit(request));
}

/// Marks the frame counter of a data downlink as used before the frame leaves, and
/// asks for the session to be stored: the shell holds the frame until that write is
/// committed, so a crash can never make us send the same counter (and keystream)
/// twice. A frame that is then refused leaves a gap, which devices accept.
fn spend_f_cnt_down(ns: &mut NetworkServer, dev_eui: Eui64, purpose: &Purpose) {
    let Purpose::Data {
        f_cnt_down,
        uses_a_f_cnt,
        ..
    } = *purpose
    else {
        return;
    };
    let Some(s) = ns
        .devices
        .get_mut(&dev_eui)
        .and_then(|e| e.device.session.as_mut())
    else {
        return;
    };
    let next = f_cnt_down.wrapping_add(1);
    let counter = if uses_a_f_cnt {
        &mut s.a_f_cnt_down
    } else {
        &mut s.n_f_cnt_down
    };
    // Already spent: the RX2 retry of the same frame.
    if *counter >= next {
        return;
    }
    *counter = next;
    ns.store_session(dev_eui);
}

/// Schedules a JoinAccept: RX1 five seconds after the JoinRequest, RX2 at six, both
/// with the region's defaults (the device knows no other settings yet).
pub(crate) fn join_accept(
    ns: &mut NetworkServer,
    dev_eui: Eui64,
    up: &Uplink,
    up_dr: u8,
    up_channel: u8,
    phy_payload: Vec<u8>,
    now: Instant,
) {
    let Some(entry) = ns.devices.get(&dev_eui) else {
        return;
    };
    let region = &entry.device.profile.region;
    let rx1 = region::rx1(region, up_channel, up.tx_info.frequency_hz, up_dr, 0);
    let (f2, dr2) = region::rx2_default(region);
    let rx2 = WindowParams {
        frequency_hz: f2,
        dr: dr2,
    };
    plan_class_a(
        ns,
        dev_eui,
        up,
        rx1,
        rx2,
        JOIN_ACCEPT_DELAY1,
        phy_payload,
        true,
        Purpose::JoinAccept,
        now,
    );
}

/// What a data downlink will carry.
struct Content {
    item: Option<crate::device::QueueItem>,
    mac: crate::mac::MacSelection,
    ack: bool,
}

/// Chooses the queue item (dropping expired and oversized ones with a log event) and
/// the MAC commands for a downlink at data rate `dr`.
fn choose_content(
    ns: &mut NetworkServer,
    dev_eui: Eui64,
    dr: u8,
    now_wall: Option<std::time::SystemTime>,
) -> Option<Content> {
    let entry = ns.devices.get_mut(&dev_eui)?;
    let profile = entry.device.profile.clone();
    let session = entry.device.session.as_ref()?;
    let max_frm = region::max_frm_payload(&profile.region, profile.reg_params_revision, dr);
    let ack = session.state.ack_due;
    let required = crate::mac::downlink_required(session);
    let waiting_for_ack = session.state.pending_ack.is_some();
    let mut refused = Vec::new();
    let mut item = None;
    if !waiting_for_ack {
        while let Some(q) = entry.device.queue.front() {
            if let (Some(exp), Some(now)) = (q.expires_at, now_wall) {
                if exp <= now {
                    let q = entry.device.queue.pop_front()?;
                    refused.push((q, LogCode::Expired));
                    continue;
                }
            }
            if q.data.len() > max_frm {
                let q = entry.device.queue.pop_front()?;
                refused.push((q, LogCode::DownlinkPayloadSize));
                continue;
            }
            item = Some(q.clone());
            break;
        }
    }
    // With an application payload, MAC commands ride in FOpts (at most 15 bytes, in
    // the room the payload leaves); alone they may fill an FPort-0 payload.
    let mac = match &item {
        Some(q) => crate::mac::select(
            session,
            crate::mac::FOPTS_MAX_LEN.min(max_frm.saturating_sub(q.data.len())),
        ),
        None => crate::mac::select(session, max_frm),
    };
    for (q, _) in &refused {
        entry.item_done(q.id);
    }
    for (q, code) in refused {
        let description = match code {
            LogCode::Expired => format!("queue item {} expired before it could be sent", q.id),
            _ => format!(
                "queue item {} ({} bytes) does not fit data rate DR{dr} (at most {max_frm} bytes); removed from the queue",
                q.id,
                q.data.len()
            ),
        };
        log(
            ns,
            dev_eui,
            LogLevel::Warning,
            code,
            description,
            &[("queue_item_id", q.id.to_string())],
        );
        ns.push(Output::Store(StoreChange::QueueItemDone {
            dev_eui,
            queue_item_id: q.id,
        }));
    }
    if item.is_none() && mac.bytes.is_empty() && !ack && !required {
        return None;
    }
    Some(Content { item, mac, ack })
}

/// Builds the frame for `content`; returns it with the purpose record.
fn build(ns: &NetworkServer, dev_eui: Eui64, content: &Content) -> Option<(Vec<u8>, Purpose)> {
    let entry = ns.devices.get(&dev_eui)?;
    let v11 = entry.device.profile.mac_version.is_1_1();
    let s = entry.device.session.as_ref()?;
    let uses_a_f_cnt = v11 && content.item.is_some();
    let f_cnt_down = if uses_a_f_cnt {
        s.a_f_cnt_down
    } else {
        s.n_f_cnt_down
    };
    let f_pending = match &content.item {
        Some(item) => entry.device.queue.iter().any(|q| q.id != item.id),
        None => !entry.device.queue.is_empty(),
    };
    let confirmed = content.item.as_ref().is_some_and(|i| i.confirmed);
    let (f_port, payload): (Option<u8>, &[u8]) = match &content.item {
        Some(i) => (Some(i.f_port), &i.data),
        None => (None, &[]),
    };
    let phy = frames::build_data_down(
        v11,
        &s.keys,
        frames::DataDownParams {
            dev_addr: s.dev_addr,
            adr: entry.device.profile.adr_enabled,
            confirmed,
            ack: content.ack,
            f_pending,
            f_cnt: f_cnt_down,
            conf_f_cnt: if content.ack { s.conf_f_cnt } else { None },
            f_opts: &content.mac.bytes,
            f_port,
            payload,
        },
    )?;
    Some((
        phy,
        Purpose::Data {
            f_cnt_down,
            uses_a_f_cnt,
            ack: content.ack,
            item: content.item.as_ref().map(|i| (i.id, i.confirmed)),
            mac: content.mac.clone(),
        },
    ))
}

/// After an accepted uplink: sends what is due (ACK, MAC answers, the next queue item)
/// in RX1 or RX2.
pub(crate) fn class_a(
    ns: &mut NetworkServer,
    dev_eui: Eui64,
    up: &Uplink,
    up_dr: u8,
    up_channel: u8,
    now: Instant,
    _rng: &mut dyn RngCore,
) {
    let Some(entry) = ns.devices.get(&dev_eui) else {
        return;
    };
    if entry.in_flight.is_some() {
        return;
    }
    let Some(s) = entry.device.session.as_ref() else {
        return;
    };
    let region = entry.device.profile.region.clone();
    let rx1_delay = Duration::from_secs(u64::from(s.rx1_delay_secs()));
    let mut rx1 = region::rx1(
        &region,
        up_channel,
        up.tx_info.frequency_hz,
        up_dr,
        s.state.rx1_dr_offset,
    );
    // DlChannelReq moved this channel's RX1 frequency.
    if let (Some(w), Some(f)) = (rx1.as_mut(), s.state.mac.dl_channel_hz(up_channel)) {
        w.frequency_hz = f;
    }
    let rx2 = WindowParams {
        frequency_hz: s.state.rx2_frequency_hz,
        dr: s.state.rx2_dr,
    };
    // Size the content for the first window we can still make.
    let lead = up
        .rx_info
        .iter()
        .map(|r| ns.lead_for(r.gateway_id))
        .min()
        .unwrap_or(ns.config.downlink_lead);
    let rx1_usable = ns.config.rx_window != RxWindowPolicy::Rx2Only
        && rx1.is_some()
        && now + lead <= up.air_end() + rx1_delay;
    let sizing_dr = match (rx1_usable, rx1) {
        (true, Some(w)) => w.dr,
        _ => rx2.dr,
    };
    let now_wall = up.rx_info.first().map(|r| r.ns_time);
    let Some(content) = choose_content(ns, dev_eui, sizing_dr, now_wall) else {
        return;
    };
    let Some((phy, purpose)) = build(ns, dev_eui, &content) else {
        return;
    };
    let fits_rx2 = {
        let Some(entry) = ns.devices.get(&dev_eui) else {
            return;
        };
        let p = &entry.device.profile;
        let max = region::max_frm_payload(&p.region, p.reg_params_revision, rx2.dr);
        content.item.as_ref().map_or(0, |i| i.data.len()) + content.mac.bytes.len() <= max
    };
    plan_class_a(
        ns, dev_eui, up, rx1, rx2, rx1_delay, phy, fits_rx2, purpose, now,
    );
}

/// Class C: sends the next queue item now, through the gateway that heard the device
/// best most recently, with the RX2 parameters.
pub(crate) fn class_c_send(
    ns: &mut NetworkServer,
    dev_eui: Eui64,
    now: Instant,
    _rng: &mut dyn RngCore,
) {
    let Some(entry) = ns.devices.get(&dev_eui) else {
        return;
    };
    if !entry.device.profile.supports_class_c || entry.in_flight.is_some() || entry.device.disabled
    {
        return;
    }
    let Some(s) = entry.device.session.as_ref() else {
        return;
    };
    if !s.state.uplink_since_activation
        || s.state.pending_ack.is_some()
        || entry.device.queue.is_empty()
    {
        return;
    }
    let Some(heard) = s.state.last_heard else {
        return;
    };
    let region = entry.device.profile.region.clone();
    let w = WindowParams {
        frequency_hz: s.state.rx2_frequency_hz,
        dr: s.state.rx2_dr,
    };
    let Some(content) = choose_content(ns, dev_eui, w.dr, None) else {
        return;
    };
    if content.item.is_none() {
        // Class C sends queue items; MAC commands and ACKs wait for the next uplink.
        return;
    }
    let Some((phy, purpose)) = build(ns, dev_eui, &content) else {
        return;
    };
    let Some(modulation) = region::modulation(&region, w.dr) else {
        return;
    };
    let mut request = DownlinkRequest {
        id: ns.next_downlink_id(),
        dev_eui,
        gateway_id: heard.gateway_id,
        phy_payload: phy,
        timing: Timing::Immediately,
        window: Window::ClassC,
        frequency_hz: w.frequency_hz,
        modulation,
        dr: w.dr,
        tx_power_eirp_dbm: region::downlink_tx_power_dbm(&region, w.frequency_hz),
    };
    // Class C frames share the gateway's radio with Class A answers: sent at once
    // when the radio is free, else timed into the next free slot.
    let gateway_id = request.gateway_id;
    match ns.place_class_c(&mut request, &region, now) {
        Ok(()) => {}
        Err(Refusal::DutyCycle(when)) => {
            ns.count_refusal(gateway_id, Refusal::DutyCycle(when));
            // Paced, not dropped: the item waits in the queue until the budget allows.
            match when {
                Some(at) => {
                    ns.class_c_later.insert((at, dev_eui));
                }
                None => log(
                    ns,
                    dev_eui,
                    LogLevel::Error,
                    LogCode::DownlinkGateway,
                    "the Class C downlink is longer on air than the gateway's whole duty-cycle budget for its sub-band; it stays queued".into(),
                    &[],
                ),
            }
            return;
        }
        Err(why @ (Refusal::Frequency | Refusal::DwellTime)) => {
            // Sending it anyway would only be refused again: it stays queued until an
            // uplink through another gateway (or a fixed gateway) gives it a way out.
            ns.count_refusal(gateway_id, why);
            log(
                ns,
                dev_eui,
                LogLevel::Warning,
                LogCode::DownlinkGateway,
                match why {
                    Refusal::Frequency => format!(
                        "gateway {gateway_id} refused to transmit on {} Hz (TX_FREQ); the Class C downlink stays queued",
                        request.frequency_hz
                    ),
                    _ => "the Class C downlink would be on air longer than the region's 400 ms dwell time; it stays queued".into(),
                },
                &[("reason", why.label().to_owned())],
            );
            return;
        }
        Err(why) => {
            // Busy, and its clock unknown: leave it to the gateway rather than hold
            // the queue with nothing to wake it.
            ns.count_refusal(gateway_id, why);
        }
    }
    send(ns, request, purpose, None);
}

/// Class C confirmed downlinks whose acknowledgement did not come in time.
pub(crate) fn class_c_timeouts(ns: &mut NetworkServer, now: Instant) {
    while let Some(&(deadline, dev_eui)) = ns.class_c_deadlines.first() {
        if deadline > now {
            break;
        }
        ns.class_c_deadlines.pop_first();
        let Some(entry) = ns.devices.get_mut(&dev_eui) else {
            continue;
        };
        if entry.class_c_ack_deadline != Some(deadline) {
            continue;
        }
        entry.class_c_ack_deadline = None;
        let Some(s) = entry.device.session.as_mut() else {
            continue;
        };
        let Some(p) = s.state.pending_ack.take() else {
            continue;
        };
        entry.item_done(p.queue_item_id);
        ns.push(Output::Store(StoreChange::QueueItemDone {
            dev_eui,
            queue_item_id: p.queue_item_id,
        }));
        ns.push(Output::Event(Event::Ack {
            dev_eui,
            deduplication_id: uuid::Uuid::nil(),
            queue_item_id: p.queue_item_id,
            acknowledged: false,
            f_cnt_down: p.f_cnt_down,
        }));
        ns.store_session(dev_eui);
        ns.wake_class_c(dev_eui);
    }
}

/// Applies a TX_ACK result.
pub(crate) fn on_tx_result(
    ns: &mut NetworkServer,
    id: crate::output::DownlinkId,
    result: TxResult,
    now: Instant,
) {
    let Some(f) = ns.in_flight.remove(&id) else {
        return;
    };
    let dev_eui = f.request.dev_eui;
    if let Some(e) = ns.devices.get_mut(&dev_eui) {
        if e.in_flight == Some(id) {
            e.in_flight = None;
        }
    }
    match result {
        TxResult::Sent | TxResult::NoAnswer => {
            ns.radio_sent(&f.request);
            if result == TxResult::NoAnswer {
                log(
                    ns,
                    dev_eui,
                    LogLevel::Warning,
                    LogCode::DownlinkGateway,
                    format!(
                        "gateway {} did not confirm the downlink (no TX_ACK); assuming it was sent",
                        f.request.gateway_id
                    ),
                    &[],
                );
            }
            sent(ns, f, now);
        }
        TxResult::Rejected(reason) => {
            // The schedule learns from the answer (lead time, frequency, power, a
            // transmission we did not plan), then the retry is placed with that known.
            let error = TxAckError::parse(&reason);
            ns.radio_refused(&f.request, error, now);
            if let Some((mut retry, deadline)) = f.fallback {
                if now <= deadline {
                    retry.id = ns.next_downlink_id();
                    match ns.place(&retry, now) {
                        Ok(()) => return send(ns, retry, f.purpose, None),
                        Err(why) => ns.count_refusal(retry.gateway_id, why),
                    }
                }
            }
            log(
                ns,
                dev_eui,
                LogLevel::Warning,
                LogCode::DownlinkGateway,
                format!(
                    "gateway {} refused the downlink: {reason}",
                    f.request.gateway_id
                ),
                &[("error", reason.clone())],
            );
            if error == TxAckError::TooEarly && f.request.window == Window::ClassC {
                // Placed again when its slot is nearer, not at once into the same slot.
                ns.class_c_later.insert((now + TOO_EARLY_RETRY, dev_eui));
            } else {
                ns.wake_class_c(dev_eui);
            }
        }
    }
}

fn sent(ns: &mut NetworkServer, f: InFlight, now: Instant) {
    let dev_eui = f.request.dev_eui;
    let Purpose::Data {
        f_cnt_down,
        uses_a_f_cnt,
        ack,
        item,
        mac,
    } = f.purpose
    else {
        return;
    };
    let Some(entry) = ns.devices.get_mut(&dev_eui) else {
        return;
    };
    let class_c_timeout = Duration::from_secs(u64::from(entry.device.profile.class_c_timeout_s));
    let Some(s) = entry.device.session.as_mut() else {
        return;
    };
    let next = f_cnt_down.wrapping_add(1);
    if uses_a_f_cnt {
        s.a_f_cnt_down = s.a_f_cnt_down.max(next);
    } else {
        s.n_f_cnt_down = s.n_f_cnt_down.max(next);
    }
    if ack {
        s.state.ack_due = false;
    }
    crate::mac::on_downlink_sent(s, &mac);
    let mut done_item = None;
    let mut deadline = None;
    if let Some((item_id, confirmed)) = item {
        if confirmed {
            s.state.pending_ack = Some(PendingAck {
                queue_item_id: item_id,
                f_cnt_down,
            });
            if f.request.window == Window::ClassC {
                deadline = Some(now + class_c_timeout);
            }
        } else {
            done_item = Some(item_id);
        }
    }
    if let Some(id) = done_item {
        entry.item_done(id);
    }
    if let Some(d) = deadline {
        entry.class_c_ack_deadline = Some(d);
        ns.class_c_deadlines.insert((d, dev_eui));
    }
    if let Some(id) = done_item {
        ns.push(Output::Store(StoreChange::QueueItemDone {
            dev_eui,
            queue_item_id: id,
        }));
    }
    ns.store_session(dev_eui);
    ns.push(Output::Event(Event::TxAck {
        dev_eui,
        downlink_id: f.request.id,
        queue_item_id: item.map(|(id, _)| id),
        f_cnt_down,
        gateway_id: f.request.gateway_id,
        frequency_hz: f.request.frequency_hz,
        modulation: f.request.modulation,
        tx_power_eirp_dbm: f.request.tx_power_eirp_dbm,
    }));
    ns.wake_class_c(dev_eui);
}
