//! The MAC layer: what the network keeps per session about the device's radio
//! settings, the MAC commands in flight, ADR, and the engine that reads a device's
//! commands from each uplink and chooses the commands of the next downlink.
//!
//! The engine is pure: an uplink's decrypted MAC bytes, the session and `now` (the
//! uplink's reception time) go in; the updated session, answers and requests to send,
//! `status` and `log` events come out. Requests stay in the session until the device
//! answers them (or they are given up after `[mac] max_mac_retries` further tries), so
//! they survive restarts like the rest of the session.
//!
//! One file per command family: [`link_adr`] (with [`adr`]), [`link_check`],
//! [`device_time`], [`dev_status`], [`rx_param_setup`], [`rx_timing_setup`],
//! [`new_channel`], [`dl_channel`], [`tx_param_setup`], [`duty_cycle`], and
//! [`lorawan11`] (ResetInd, RekeyInd, ADRParamSetupReq, RejoinParamSetupReq,
//! ForceRejoinReq).

pub mod adr;
pub mod config;
pub mod queue;

mod dev_status;
mod device_time;
mod dl_channel;
mod duty_cycle;
mod link_adr;
mod link_check;
mod lorawan11;
mod new_channel;
mod rx_param_setup;
mod rx_timing_setup;
mod tx_param_setup;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use lorikeet_lorawan::mac::{self as codec, MacCommand, MacError};
use lorikeet_lorawan::Eui64;
use lorikeet_region::Region;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

pub use adr::{AdrAlgorithm, AdrDecision, AdrInput, AdrRegistry, DefaultAdr, UplinkSample};
pub use config::{DlChannelConfig, MacConfig, MacConfigError, ProfileMacSettings};
pub use queue::{ChMask, LinkAdrRequest, MacAnswer, MacRequest, PendingRequest, FOPTS_MAX_LEN};

use crate::dedup::Uplink;
use crate::device::{DeviceProfile, MacVersion, Session};
use crate::frames::DataFrame;
use crate::output::{Event, LogCode, LogLevel, Output};
use crate::server::NetworkServer;

/// Most requests a session holds at once (bounds the session's size).
const MAX_PENDING: usize = 16;
/// Most refused requests a session remembers (so it does not ask them again).
const MAX_REFUSED: usize = 8;

/// A set of uplink channel indices (bit `i` = channel `i`), stored as a hex string to
/// keep the session document small.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ChannelSet(pub u128);

impl ChannelSet {
    /// The set of `indices` (indices of 128 and above are ignored).
    pub fn from_indices(indices: &[u8]) -> Self {
        ChannelSet(
            indices
                .iter()
                .filter(|&&i| i < 128)
                .fold(0, |acc, &i| acc | (1u128 << i)),
        )
    }

    /// The members, ascending.
    pub fn indices(self) -> Vec<u8> {
        (0u8..128).filter(|&i| self.contains(i)).collect()
    }

    /// Whether channel `i` is in the set.
    pub fn contains(self, i: u8) -> bool {
        i < 128 && self.0 & (1u128 << i) != 0
    }

    /// Adds channel `i`.
    pub fn insert(&mut self, i: u8) {
        if i < 128 {
            self.0 |= 1u128 << i;
        }
    }

    /// The first `n` channels.
    pub fn first(n: usize) -> Self {
        if n >= 128 {
            ChannelSet(u128::MAX)
        } else {
            ChannelSet((1u128 << n) - 1)
        }
    }
}

impl fmt::Debug for ChannelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.indices()).finish()
    }
}

impl Serialize for ChannelSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:x}", self.0))
    }
}

impl<'de> Deserialize<'de> for ChannelSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        u128::from_str_radix(&s, 16)
            .map(ChannelSet)
            .map_err(serde::de::Error::custom)
    }
}

/// The uplink channels the network believes the device has: defined (the defaults, a
/// CFList, acknowledged NewChannelReqs) and enabled (after acknowledged channel masks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceChannels {
    /// Channels the device has a definition for.
    pub known: ChannelSet,
    /// Channels the device transmits on.
    pub enabled: ChannelSet,
}

impl DeviceChannels {
    /// What a device knows without any configuration: the region's default channels,
    /// all enabled.
    pub fn defaults(region: &dyn Region) -> Self {
        let all = ChannelSet::first(region.channel_plan().default_channel_count());
        DeviceChannels {
            known: all,
            enabled: all,
        }
    }

    /// What a device knows after a JoinAccept carrying the region's CFList. A type 1
    /// CFList (channel mask) is applied by devices of LoRaWAN 1.0.3 and later; older
    /// ones keep all default channels and are corrected with LinkADRReq.
    pub fn after_join(region: &dyn Region, version: MacVersion) -> Self {
        use lorikeet_region::ChMaskScheme;
        let plan = region.channel_plan();
        let mut d = DeviceChannels::defaults(region);
        if region.join_accept_cf_list().is_none() {
            return d;
        }
        match plan.scheme() {
            ChMaskScheme::Dynamic16 => {
                // Type 0: the five channels after the defaults whose DR range is the
                // CFList's (the device gives them that range).
                let drs = region.cf_list_data_rates();
                let start = plan.default_channel_count();
                for (i, c) in plan.channels().iter().enumerate().skip(start).take(5) {
                    if (c.min_dr, c.max_dr) == drs {
                        if let Ok(i) = u8::try_from(i) {
                            d.known.insert(i);
                            d.enabled.insert(i);
                        }
                    }
                }
            }
            ChMaskScheme::Fixed72 | ChMaskScheme::Fixed96 => {
                if version >= MacVersion::V1_0_3 {
                    d.enabled = ChannelSet::from_indices(&plan.enabled());
                }
            }
        }
        d
    }
}

/// RX1 frequency of an uplink channel set with DlChannelReq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlChannel {
    /// The uplink channel.
    pub ch_index: u8,
    /// Its RX1 frequency.
    pub frequency_hz: u32,
}

/// Dwell-time and EIRP settings acknowledged through TxParamSetupReq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxParams {
    /// Uplinks limited to 400 ms.
    pub uplink_dwell_time_400ms: bool,
    /// Downlinks limited to 400 ms.
    pub downlink_dwell_time_400ms: bool,
    /// Index into the MaxEIRP table.
    pub max_eirp_index: u8,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_one(n: &u8) -> bool {
    *n == 1
}

fn one() -> u8 {
    1
}

/// MAC-layer state of one session, persisted with it. Empty parts are left out of
/// the stored document (it is written with every uplink).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MacState {
    /// The data rate the device currently uses for uplinks, as last observed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uplink_dr: Option<u8>,
    /// The TXPower index the device uses (0: the region's maximum EIRP).
    pub tx_power_index: u8,
    /// Transmissions per uplink frame.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub nb_trans: u8,
    /// The device's channels; `None` until the first uplink of the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<DeviceChannels>,
    /// The last uplinks that had the ADR bit set, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adr_history: Vec<UplinkSample>,
    /// The device refused data rates above this one (LinkADRAns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adr_max_dr: Option<u8>,
    /// The device refused TXPower indices above this one (LinkADRAns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adr_max_tx_power_index: Option<u8>,
    /// The device refused a channel mask: masks are not sent again this session.
    #[serde(skip_serializing_if = "is_false")]
    pub ch_mask_refused: bool,
    /// Requests queued or awaiting an answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingRequest>,
    /// Answers to the device's own requests, for the next downlink only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<MacAnswer>,
    /// Id of the next request.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub next_request_id: u32,
    /// Requests the device refused or never answered; not asked again while the
    /// network would ask exactly the same.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<MacRequest>,
    /// When battery and margin were last asked for (or the session's first uplink).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_status_at: Option<SystemTime>,
    /// Uplinks since battery and margin were last asked for.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub uplinks_since_dev_status: u32,
    /// The aggregated duty cycle set with DutyCycleReq (1/2^n).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duty_cycle: Option<u8>,
    /// RX1 frequencies set with DlChannelReq.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dl_channels: Vec<DlChannel>,
    /// Settings acknowledged through TxParamSetupReq.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_params: Option<TxParams>,
    /// LoRaWAN 1.1: ADR_ACK_LIMIT/DELAY exponents acknowledged through ADRParamSetupReq.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adr_ack_exps: Option<(u8, u8)>,
    /// LoRaWAN 1.1: rejoin periods acknowledged through RejoinParamSetupReq.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejoin_params: Option<(u8, u8)>,
    /// The device asked for a downlink (ADRACKReq): send one even if it is empty.
    #[serde(skip_serializing_if = "is_false")]
    pub downlink_required: bool,
    /// LoRaWAN 1.1: the minor version agreed with the device (RekeyInd/ResetInd).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lorawan_minor: Option<u8>,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

impl Default for MacState {
    fn default() -> Self {
        MacState {
            uplink_dr: None,
            tx_power_index: 0,
            nb_trans: 1,
            channels: None,
            adr_history: Vec::new(),
            adr_max_dr: None,
            adr_max_tx_power_index: None,
            ch_mask_refused: false,
            pending: Vec::new(),
            answers: Vec::new(),
            next_request_id: 0,
            refused: Vec::new(),
            dev_status_at: None,
            uplinks_since_dev_status: 0,
            max_duty_cycle: None,
            dl_channels: Vec::new(),
            tx_params: None,
            adr_ack_exps: None,
            rejoin_params: None,
            downlink_required: false,
            lorawan_minor: None,
        }
    }
}

impl MacState {
    /// The state of a session that a JoinAccept just set up.
    pub fn after_join(region: &dyn Region, version: MacVersion, uplink_dr: u8) -> Self {
        MacState {
            uplink_dr: Some(uplink_dr),
            channels: Some(DeviceChannels::after_join(region, version)),
            ..MacState::default()
        }
    }

    /// The device's channels (the region's defaults when nothing is known yet).
    pub fn channels_or_default(&self, region: &dyn Region) -> DeviceChannels {
        self.channels
            .unwrap_or_else(|| DeviceChannels::defaults(region))
    }

    /// The RX1 frequency set for an uplink channel with DlChannelReq, if any.
    pub fn dl_channel_hz(&self, ch_index: u8) -> Option<u32> {
        self.dl_channels
            .iter()
            .find(|d| d.ch_index == ch_index)
            .map(|d| d.frequency_hz)
    }

    /// Queues `request` unless an equal one is pending or was refused. A request of
    /// the same kind that has not been sent yet is replaced when `replace` is set.
    pub(crate) fn queue(&mut self, request: MacRequest, replace: bool) -> bool {
        if self.refused.contains(&request) || self.pending.iter().any(|p| p.request == request) {
            return false;
        }
        if replace {
            let cid = request.cid();
            self.pending
                .retain(|p| p.awaiting_answer || p.request.cid() != cid);
        }
        if self.pending.len() >= MAX_PENDING {
            return false;
        }
        let id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        self.pending.push(PendingRequest {
            id,
            request,
            sent: 0,
            awaiting_answer: false,
        });
        true
    }

    /// Remembers that the device will not do `request`.
    pub(crate) fn refuse(&mut self, request: MacRequest) {
        if self.refused.contains(&request) {
            return;
        }
        if self.refused.len() >= MAX_REFUSED {
            self.refused.remove(0);
        }
        self.refused.push(request);
    }

    /// Whether a request with this CID is queued or in flight.
    pub(crate) fn has_pending(&self, cid: u8) -> bool {
        self.pending.iter().any(|p| p.request.cid() == cid)
    }
}

/// Which answers and requests a downlink carries, so that its TX_ACK can mark them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MacSelection {
    /// The encoded commands (FOpts, or an FPort-0 payload when over 15 bytes).
    pub bytes: Vec<u8>,
    /// The ids of the requests included.
    pub request_ids: Vec<u32>,
}

/// What the engine needs besides the session.
pub(crate) struct Ctx<'a> {
    pub(crate) profile: &'a DeviceProfile,
    pub(crate) config: &'a MacConfig,
    pub(crate) adr: &'a AdrRegistry,
}

impl Ctx<'_> {
    pub(crate) fn region(&self) -> &dyn Region {
        &*self.profile.region
    }

    pub(crate) fn version(&self) -> MacVersion {
        self.profile.mac_version
    }
}

/// A `log` event to emit: level, description, context.
pub(crate) type MacLog = (LogLevel, String, Vec<(&'static str, String)>);

/// What handling an uplink's MAC commands produced besides the session change.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) events: Vec<Event>,
    pub(crate) logs: Vec<MacLog>,
}

impl Effects {
    pub(crate) fn log(
        &mut self,
        level: LogLevel,
        description: String,
        context: Vec<(&'static str, String)>,
    ) {
        self.logs.push((level, description, context));
    }
}

/// The uplink as the engine sees it.
pub(crate) struct UplinkInfo<'a> {
    pub(crate) dev_eui: Eui64,
    pub(crate) up: &'a Uplink,
    pub(crate) dr: u8,
    pub(crate) f_cnt: u32,
    pub(crate) adr: bool,
    pub(crate) adr_ack_req: bool,
    pub(crate) deduplication_id: Uuid,
    /// When the uplink was received (our clock).
    pub(crate) now: SystemTime,
}

impl UplinkInfo<'_> {
    /// The best SNR over the gateways that heard the uplink.
    pub(crate) fn max_snr_db(&self) -> Option<f32> {
        self.up
            .rx_info
            .iter()
            .filter_map(|r| r.snr_db)
            .reduce(f32::max)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Decodes uplink MAC commands. Commands before a malformed or unknown one are kept
/// (a device stops at the first command it cannot parse, and so do we).
fn decode(bytes: &[u8], fx: &mut Effects) -> Vec<MacCommand> {
    match codec::decode_uplink(bytes) {
        Ok(c) => c,
        Err(e) => {
            let offset = match &e {
                MacError::Truncated { offset, .. } | MacError::UnknownCid { offset, .. } => *offset,
                _ => 0,
            };
            fx.log(
                LogLevel::Warning,
                format!("uplink MAC commands could not be read past byte {offset}: {e}"),
                vec![("mac_bytes", to_hex(bytes))],
            );
            codec::decode_uplink(bytes.get(..offset).unwrap_or_default()).unwrap_or_default()
        }
    }
}

/// Handles the MAC commands of an accepted uplink and plans the requests to send.
pub(crate) fn on_uplink(
    ns: &mut NetworkServer,
    dev_eui: Eui64,
    mac_bytes: &[u8],
    frame: &DataFrame,
    up: &Uplink,
    dr: u8,
    deduplication_id: Uuid,
) {
    let mut fx = Effects::default();
    {
        let Some(entry) = ns.devices.get_mut(&dev_eui) else {
            return;
        };
        let profile = entry.device.profile.clone();
        let Some(session) = entry.device.session.as_mut() else {
            return;
        };
        let Some(f_cnt) = session.f_cnt_up else {
            return;
        };
        let now = up.best_rx().map_or(SystemTime::UNIX_EPOCH, |r| r.ns_time);
        let cx = Ctx {
            profile: &profile,
            config: &ns.config.mac,
            adr: &ns.adr_algorithms,
        };
        let info = UplinkInfo {
            dev_eui,
            up,
            dr,
            f_cnt,
            adr: frame.adr,
            adr_ack_req: frame.adr_ack_req,
            deduplication_id,
            now,
        };
        let commands = decode(mac_bytes, &mut fx);
        engine_uplink(&cx, session, &info, &commands, &mut fx);
    }
    for e in fx.events {
        ns.push(Output::Event(e));
    }
    for (level, description, context) in fx.logs {
        crate::uplink::log(
            ns,
            dev_eui,
            level,
            LogCode::MacCommand,
            description,
            &context,
        );
    }
}

/// The engine's uplink step, on the session alone.
pub(crate) fn engine_uplink(
    cx: &Ctx<'_>,
    s: &mut Session,
    info: &UplinkInfo<'_>,
    commands: &[MacCommand],
    fx: &mut Effects,
) {
    let region = cx.region();
    let mac = &mut s.state.mac;
    // Answers were for the uplink before this one.
    mac.answers.clear();
    if mac.channels.is_none() {
        mac.channels = Some(DeviceChannels::defaults(region));
    }
    mac.uplink_dr = Some(info.dr);

    let answered_link_adr = handle_answers(cx, s, commands, info, fx);
    handle_device_requests(cx, s, commands, info, fx);

    let mac = &mut s.state.mac;
    if info.adr_ack_req {
        mac.downlink_required = true;
    }
    if cx.profile.adr_enabled && info.adr {
        if let Some(snr) = info.max_snr_db() {
            if mac.adr_history.len() >= adr::HISTORY_LEN {
                mac.adr_history.remove(0);
            }
            mac.adr_history.push(UplinkSample {
                f_cnt: info.f_cnt,
                max_snr_db: snr,
                tx_power_index: mac.tx_power_index,
            });
        }
    }
    plan(cx, s, info, answered_link_adr, fx);
}

/// Matches the device's answers to the requests awaiting them; requests left without
/// an answer are sent again or, after too many tries, given up. Returns whether a
/// LinkADRReq was answered.
fn handle_answers(
    cx: &Ctx<'_>,
    s: &mut Session,
    commands: &[MacCommand],
    info: &UplinkInfo<'_>,
    fx: &mut Effects,
) -> bool {
    let mut used = vec![false; commands.len()];
    let mut answered_link_adr = false;
    let pending = std::mem::take(&mut s.state.mac.pending);
    let mut keep = Vec::with_capacity(pending.len());
    for mut p in pending {
        if !p.awaiting_answer {
            keep.push(p);
            continue;
        }
        let cid = p.request.cid();
        let answers: Vec<&MacCommand> = if let MacRequest::LinkAdr(_) = p.request {
            // One LinkADRAns per LinkADRReq of the block (1.0.4), or one for the whole
            // block (older devices): take them all.
            commands
                .iter()
                .zip(used.iter_mut())
                .filter(|(c, u)| c.cid() == cid && !**u)
                .map(|(c, u)| {
                    *u = true;
                    c
                })
                .collect()
        } else {
            commands
                .iter()
                .zip(used.iter_mut())
                .find(|(c, u)| c.cid() == cid && !**u)
                .map(|(c, u)| {
                    *u = true;
                    vec![c]
                })
                .unwrap_or_default()
        };
        if answers.is_empty() {
            p.awaiting_answer = false;
            if p.sent > cx.config.max_mac_retries {
                fx.log(
                    LogLevel::Warning,
                    format!(
                        "the device did not answer {} after {} downlinks; given up",
                        p.request.name(),
                        p.sent
                    ),
                    vec![("cid", format!("{cid:#04x}"))],
                );
                if !matches!(p.request, MacRequest::DevStatus) {
                    s.state.mac.refuse(p.request);
                }
            } else {
                keep.push(p);
            }
            continue;
        }
        if matches!(p.request, MacRequest::LinkAdr(_)) {
            answered_link_adr = true;
        }
        let outcome = apply_answer(cx, s, &p.request, &answers, info, fx);
        if let Err(why) = outcome {
            fx.log(
                LogLevel::Warning,
                format!("the device refused {}: {why}", p.request.name()),
                vec![("cid", format!("{cid:#04x}"))],
            );
            s.state.mac.refuse(p.request);
        }
    }
    // Requests queued while the answers were handled go after the kept ones.
    keep.append(&mut s.state.mac.pending);
    s.state.mac.pending = keep;
    // DevStatusAns carries information even when it answers a request given up.
    for (c, u) in commands.iter().zip(&used) {
        if let (MacCommand::DevStatusAns(a), false) = (c, u) {
            dev_status::status_event(info, *a, fx);
        }
    }
    answered_link_adr
}

/// Applies one answer; `Err` says what the device refused.
fn apply_answer(
    cx: &Ctx<'_>,
    s: &mut Session,
    request: &MacRequest,
    answers: &[&MacCommand],
    info: &UplinkInfo<'_>,
    fx: &mut Effects,
) -> Result<(), String> {
    match request {
        MacRequest::LinkAdr(r) => link_adr::answered(cx, s, r, answers),
        MacRequest::DutyCycle { max_duty_cycle } => {
            s.state.mac.max_duty_cycle = Some(*max_duty_cycle);
            Ok(())
        }
        MacRequest::RxParamSetup { .. } => rx_param_setup::answered(s, request, answers),
        MacRequest::DevStatus => {
            if let Some(MacCommand::DevStatusAns(a)) = answers.first() {
                dev_status::status_event(info, *a, fx);
            }
            Ok(())
        }
        MacRequest::NewChannel { .. } => new_channel::answered(s, request, answers),
        MacRequest::DlChannel { .. } => dl_channel::answered(s, request, answers),
        MacRequest::RxTimingSetup { rx1_delay_s } => {
            s.state.rx1_delay_s = *rx1_delay_s;
            Ok(())
        }
        MacRequest::TxParamSetup { .. } => tx_param_setup::answered(s, request),
        MacRequest::AdrParamSetup {
            limit_exp,
            delay_exp,
        } => {
            s.state.mac.adr_ack_exps = Some((*limit_exp, *delay_exp));
            Ok(())
        }
        MacRequest::RejoinParamSetup { .. } => {
            lorawan11::rejoin_param_answered(s, request, answers)
        }
        // Not answered by a MAC command (filtered out before it awaits an answer).
        MacRequest::ForceRejoin { .. } => Ok(()),
    }
}

/// Answers LinkCheckReq, DeviceTimeReq, ResetInd and RekeyInd.
fn handle_device_requests(
    cx: &Ctx<'_>,
    s: &mut Session,
    commands: &[MacCommand],
    info: &UplinkInfo<'_>,
    fx: &mut Effects,
) {
    for c in commands {
        match c {
            MacCommand::LinkCheckReq => {
                let a = link_check::answer(cx.region(), info);
                s.state.mac.answers.push(a);
            }
            MacCommand::DeviceTimeReq => {
                let a = device_time::answer(info);
                s.state.mac.answers.push(a);
            }
            MacCommand::ResetInd(r) => lorawan11::reset_ind(cx, s, r.dev_lorawan_minor, fx),
            MacCommand::RekeyInd(r) => lorawan11::rekey_ind(cx, s, r.dev_lorawan_minor, fx),
            MacCommand::Proprietary { cid, .. } => fx.log(
                LogLevel::Info,
                format!("proprietary MAC command {cid:#04x} ignored"),
                vec![("cid", format!("{cid:#04x}"))],
            ),
            _ => {}
        }
    }
}

/// Queues what the network wants to change, in order of importance (the downlink
/// carries as many as fit, older commands first).
fn plan(
    cx: &Ctx<'_>,
    s: &mut Session,
    info: &UplinkInfo<'_>,
    answered_link_adr: bool,
    fx: &mut Effects,
) {
    let mut wanted: Vec<(MacRequest, bool)> = Vec::new();
    // A LinkADRAns in this uplink: the device switches from its next uplink on; judge
    // ADR again on those.
    let link_adr_busy = s
        .state
        .mac
        .pending
        .iter()
        .any(|p| p.awaiting_answer && p.request.cid() == codec::cid::LINK_ADR);
    if !answered_link_adr && !link_adr_busy {
        match link_adr::plan(cx, s, info) {
            Some(r) => wanted.push((MacRequest::LinkAdr(r), true)),
            None => {
                // The reason for a not-yet-sent LinkADRReq went away.
                s.state
                    .mac
                    .pending
                    .retain(|p| p.awaiting_answer || p.request.cid() != codec::cid::LINK_ADR);
            }
        }
    }
    wanted.extend(rx_param_setup::plan(cx, s).map(|r| (r, true)));
    wanted.extend(rx_timing_setup::plan(cx, s).map(|r| (r, true)));
    wanted.extend(dev_status::plan(cx, s, info).map(|r| (r, false)));
    wanted.extend(new_channel::plan(cx, s).into_iter().map(|r| (r, false)));
    wanted.extend(dl_channel::plan(cx, s).into_iter().map(|r| (r, false)));
    wanted.extend(tx_param_setup::plan(cx, s).map(|r| (r, true)));
    wanted.extend(duty_cycle::plan(cx, s).map(|r| (r, true)));
    wanted.extend(lorawan11::plan(cx, s).into_iter().map(|r| (r, true)));
    for (request, replace) in wanted {
        if let Err(e) = request.encode() {
            fx.log(
                LogLevel::Error,
                format!(
                    "{} cannot be sent with these settings: {e}; check the device profile and [mac] configuration",
                    request.name()
                ),
                vec![("cid", format!("{:#04x}", request.cid()))],
            );
            continue;
        }
        s.state.mac.queue(request, replace);
    }
}

/// Picks the MAC commands for the next downlink, at most `max_len` bytes: every answer
/// first (they belong to the uplink just received), then requests not yet awaiting an
/// answer, older commands first.
pub(crate) fn select(session: &Session, max_len: usize) -> MacSelection {
    let mac = &session.state.mac;
    let mut sel = MacSelection::default();
    for a in &mac.answers {
        if sel.bytes.len() + a.encoded_len() > max_len {
            continue;
        }
        // Answers are built from valid fields; an encoding error only drops it.
        let _ = a.command().encode_into(&mut sel.bytes);
    }
    let mut order: Vec<&PendingRequest> =
        mac.pending.iter().filter(|p| !p.awaiting_answer).collect();
    order.sort_by_key(|p| (queue::introduction_rank(p.request.cid()), p.request.cid()));
    for p in order {
        let Ok(bytes) = p.request.encode() else {
            continue;
        };
        if sel.bytes.len() + bytes.len() > max_len {
            continue;
        }
        sel.bytes.extend_from_slice(&bytes);
        sel.request_ids.push(p.id);
    }
    sel
}

/// Whether the next downlink must go out even with nothing else in it.
pub(crate) fn downlink_required(session: &Session) -> bool {
    session.state.mac.downlink_required
}

/// A downlink carrying `sel` was sent: its requests now await the device's answer.
pub(crate) fn on_downlink_sent(session: &mut Session, sel: &MacSelection) {
    let mac = &mut session.state.mac;
    mac.answers.clear();
    mac.downlink_required = false;
    mac.pending.retain_mut(|p| {
        if !sel.request_ids.contains(&p.id) {
            return true;
        }
        p.sent = p.sent.saturating_add(1);
        p.awaiting_answer = true;
        // ForceRejoinReq is answered by a RejoinRequest, not a MAC command.
        p.request.expects_answer()
    });
}

impl NetworkServer {
    /// LoRaWAN 1.1: asks the device to send a RejoinRequest (ForceRejoinReq) in its next
    /// downlink. Returns false for an unknown device, one without a session, or one
    /// that is not LoRaWAN 1.1.
    pub fn force_rejoin(
        &mut self,
        dev_eui: &Eui64,
        rejoin_type: u8,
        dr: u8,
        max_retries: u8,
        period: u8,
    ) -> bool {
        let Some(e) = self.devices.get_mut(dev_eui) else {
            return false;
        };
        if !e.device.profile.mac_version.is_1_1() {
            return false;
        }
        let Some(s) = e.device.session.as_mut() else {
            return false;
        };
        let r = MacRequest::ForceRejoin {
            period,
            max_retries,
            rejoin_type,
            dr,
        };
        if r.encode().is_err() {
            return false;
        }
        let queued = s.state.mac.queue(r, true);
        if queued {
            self.store_session(*dev_eui);
        }
        queued
    }
}

/// A map of the pending requests by name, for logs and tests.
pub fn pending_names(state: &MacState) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for p in &state.pending {
        *m.entry(p.request.name()).or_insert(0) += 1;
    }
    m
}
