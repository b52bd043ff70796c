//! One gateway's radio as the core plans it (issue 19): its transmissions in time, its
//! duty-cycle budget per sub-band, its dwell-time limit, what its TX_ACK answers taught
//! us (lead time, frequencies and power it cannot use) and its counters.
//!
//! Semtech SX130x concentrators have one transmit path (the `rfch` of a PULL_RESP picks
//! the RF chain's antenna, not a second modulator), so one plan per gateway is one plan
//! per transmitter.

use std::time::{Duration, Instant};

use lorikeet_lorawan::Eui64;

use crate::output::{DownlinkRequest, Timing};
use crate::schedule::{DutyCycle, GatewaySchedule, GwTime};
use crate::server::NetworkServer;

/// Longest a single downlink may be on air where the region's downlink dwell time is
/// limited (AS923, and any region configured so): 400 ms.
pub const DWELL_TIME_LIMIT: Duration = Duration::from_millis(400);

/// Added to a gateway's lead time each time it answers `TOO_LATE`: the frame reached
/// its queue after its moment, so the backhaul is slower than the configured lead.
const TOO_LATE_STEP: Duration = Duration::from_millis(100);
/// Most a gateway's learned extra lead grows to.
const MAX_EXTRA_LEAD: Duration = Duration::from_secs(1);
/// Taken back off the extra lead for each frame the gateway accepts, so one slow moment
/// does not cost RX1 for ever.
const LEAD_RECOVERY: Duration = Duration::from_millis(5);
/// How long a frequency the gateway refused (`TX_FREQ`) stays avoided on it; the
/// operator may fix the gateway's configuration meanwhile.
const BAD_FREQUENCY_TTL: Duration = Duration::from_secs(3600);
/// Frequencies remembered per gateway (a misbehaving gateway cannot grow the list).
const MAX_BAD_FREQUENCIES: usize = 16;
/// dB taken off the power a gateway may be asked for, per `TX_POWER` answer.
const TX_POWER_STEP_DB: i32 = 2;
/// The lowest power stepped down to.
const MIN_TX_POWER_DBM: i32 = 0;
/// A Class C frame the gateway found too early (`TOO_EARLY`, too far in its future)
/// is placed again this much later.
pub(crate) const TOO_EARLY_RETRY: Duration = Duration::from_secs(1);

/// The error a gateway's TX_ACK names (Semtech packet forwarder protocol, v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxAckError {
    /// The frame arrived after its moment.
    TooLate,
    /// Its moment is too far in the gateway's future.
    TooEarly,
    /// Another transmission is planned then.
    CollisionPacket,
    /// A Class B beacon is sent then.
    CollisionBeacon,
    /// The gateway cannot transmit on that frequency.
    TxFreq,
    /// The gateway cannot transmit at that power.
    TxPower,
    /// GPS-timed, and the gateway has no GPS lock.
    GpsUnlocked,
    /// Anything else (a gateway's own words).
    Other,
}

impl TxAckError {
    /// Every error, in the order of [`DownlinkStats::refused_by_gateway`].
    pub const ALL: [TxAckError; 8] = [
        TxAckError::TooLate,
        TxAckError::TooEarly,
        TxAckError::CollisionPacket,
        TxAckError::CollisionBeacon,
        TxAckError::TxFreq,
        TxAckError::TxPower,
        TxAckError::GpsUnlocked,
        TxAckError::Other,
    ];

    /// Reads the forwarder's error name.
    pub fn parse(name: &str) -> TxAckError {
        match name {
            "TOO_LATE" => TxAckError::TooLate,
            "TOO_EARLY" => TxAckError::TooEarly,
            "COLLISION_PACKET" => TxAckError::CollisionPacket,
            "COLLISION_BEACON" => TxAckError::CollisionBeacon,
            "TX_FREQ" => TxAckError::TxFreq,
            "TX_POWER" => TxAckError::TxPower,
            "GPS_UNLOCKED" => TxAckError::GpsUnlocked,
            _ => TxAckError::Other,
        }
    }

    /// The forwarder's name for it (`other` for unknown ones), a bounded metric label.
    pub fn label(self) -> &'static str {
        match self {
            TxAckError::TooLate => "TOO_LATE",
            TxAckError::TooEarly => "TOO_EARLY",
            TxAckError::CollisionPacket => "COLLISION_PACKET",
            TxAckError::CollisionBeacon => "COLLISION_BEACON",
            TxAckError::TxFreq => "TX_FREQ",
            TxAckError::TxPower => "TX_POWER",
            TxAckError::GpsUnlocked => "GPS_UNLOCKED",
            TxAckError::Other => "other",
        }
    }

    fn index(self) -> usize {
        TxAckError::ALL
            .iter()
            .position(|e| *e == self)
            .unwrap_or(TxAckError::ALL.len() - 1)
    }
}

/// Why the scheduler did not use a window (or moment) on a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Overlaps (or comes within the gap of) a planned transmission.
    Collision,
    /// The sub-band's budget is spent; it would fit again at this moment, if ever.
    DutyCycle(Option<Instant>),
    /// Its time has passed, or comes sooner than the gateway's lead time.
    TooLate,
    /// Longer on air than the region's downlink dwell time allows.
    DwellTime,
    /// The gateway answered `TX_FREQ` for this frequency.
    Frequency,
}

impl Refusal {
    /// Labels in the order of [`DownlinkStats::refused_by_scheduler`].
    pub(crate) const LABELS: [&'static str; 5] = [
        "collision",
        "duty_cycle",
        "too_late",
        "dwell_time",
        "tx_freq",
    ];

    pub(crate) fn label(self) -> &'static str {
        Self::LABELS[self.index()]
    }

    fn index(self) -> usize {
        match self {
            Refusal::Collision => 0,
            Refusal::DutyCycle(_) => 1,
            Refusal::TooLate => 2,
            Refusal::DwellTime => 3,
            Refusal::Frequency => 4,
        }
    }
}

/// One gateway's downlink counters, as the core saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownlinkStats {
    /// Frames handed to the gateway.
    pub planned: u64,
    /// Frames it accepted (a TX_ACK without error, or none at all).
    pub sent: u64,
    /// Windows or moments the scheduler did not use on it, by reason, in the order of
    /// [`DownlinkStats::SCHEDULER_REASONS`].
    pub refused_by_scheduler: [u64; 5],
    /// Frames it refused, by TX_ACK error, in the order of [`TxAckError::ALL`].
    pub refused_by_gateway: [u64; 8],
}

impl DownlinkStats {
    /// Reasons the scheduler skips a window: `collision`, `duty_cycle`, `too_late`,
    /// `dwell_time`, `tx_freq` (a frequency the gateway refused before).
    pub const SCHEDULER_REASONS: [&'static str; 5] = Refusal::LABELS;

    /// Every refusal count as `(by, reason, count)`: `by` is `scheduler` or `gateway`.
    pub fn refused(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        let scheduler = Self::SCHEDULER_REASONS
            .iter()
            .zip(self.refused_by_scheduler)
            .map(|(r, n)| ("scheduler", *r, n));
        let gateway = TxAckError::ALL
            .iter()
            .zip(self.refused_by_gateway)
            .map(|(e, n)| ("gateway", e.label(), n));
        scheduler.chain(gateway)
    }
}

/// One sub-band's duty-cycle use on one gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct DutyUse {
    /// Lowest frequency of the sub-band, Hz.
    pub min_frequency_hz: u32,
    /// Highest frequency of the sub-band, Hz.
    pub max_frequency_hz: u32,
    /// The allowed share of airtime (after the operator's cap).
    pub limit: f64,
    /// The share of the sliding window it was on air.
    pub used: f64,
}

/// One gateway's radio.
#[derive(Debug)]
pub(crate) struct Radio {
    pub(crate) plan: GatewaySchedule,
    duty: Option<DutyCycle>,
    /// Whether the region's rules (duty cycle, dwell time) were applied.
    region_known: bool,
    dwell: Option<Duration>,
    extra_lead: Duration,
    bad_frequencies: Vec<(u32, Instant)>,
    power_cap_dbm: Option<i32>,
    gps_unlocked_at: Option<Instant>,
    stats: DownlinkStats,
}

fn airtime(req: &DownlinkRequest) -> Option<Duration> {
    crate::schedule::time_on_air(req.modulation, 5, req.phy_payload.len(), false).ok()
}

impl NetworkServer {
    /// The radio of `gateway_id`, created on first use; its duty-cycle budget and dwell
    /// time come from the region of the first device planned through it.
    pub(crate) fn radio(
        &mut self,
        gateway_id: Eui64,
        region: Option<&crate::region::RegionHandle>,
        now: Instant,
    ) -> &mut Radio {
        let (enforce, cap) = (self.config.duty_cycle, self.config.duty_cycle_cap);
        let r = self.radios.entry(gateway_id).or_insert_with(|| Radio {
            plan: GatewaySchedule::new(now),
            duty: None,
            region_known: false,
            dwell: None,
            extra_lead: Duration::ZERO,
            bad_frequencies: Vec::new(),
            power_cap_dbm: None,
            gps_unlocked_at: None,
            stats: DownlinkStats::default(),
        });
        if let (false, Some(region)) = (r.region_known, region) {
            r.region_known = true;
            if enforce {
                r.duty = Some(DutyCycle::from_region(region.duty_cycle_sub_bands(), cap));
            }
            if region.dwell_time().downlink_400ms {
                r.dwell = Some(DWELL_TIME_LIMIT);
            }
        }
        r
    }

    /// The time a frame must reach `gateway_id` before its moment: the configured lead
    /// plus what the gateway's `TOO_LATE` answers added.
    pub(crate) fn lead_for(&self, gateway_id: Eui64) -> Duration {
        let extra = self
            .radios
            .get(&gateway_id)
            .map_or(Duration::ZERO, |r| r.extra_lead);
        self.config.downlink_lead + extra
    }

    /// Plans `req` on its gateway's radio: refused if it would overlap, or come within
    /// the gateway's minimum gap of, a transmission already planned there (the gateway
    /// would answer `COLLISION_PACKET`), if it would exceed the sub-band's duty-cycle
    /// budget or the dwell time, or if the gateway refused its frequency before.
    pub(crate) fn place(&mut self, req: &DownlinkRequest, now: Instant) -> Result<(), Refusal> {
        let Some(air) = airtime(req) else {
            // A modulation we cannot time (LR-FHSS): leave it to the gateway.
            return Ok(());
        };
        let radio = self.radio(req.gateway_id, None, now);
        radio.check(req, air, now)?;
        radio.plan.prune(now);
        let start = match req.timing {
            Timing::Delay { tmst } => match radio.plan.from_tmst(tmst) {
                Some(t) => t,
                None => return Ok(()),
            },
            Timing::Immediately => radio.plan.from_instant(now),
        };
        radio.reserve(req, start, air, air, now)
    }

    /// Places a Class C frame at the first moment the gateway's radio is free. Sent
    /// at once (`Immediately`) when the radio is free from now until the frame must
    /// be over: it leaves the gateway somewhere within the downlink lead (backhaul)
    /// of now, so that whole span is reserved. Otherwise it is timed (`tmst`) into the
    /// next free slot at least the lead ahead, when the gateway's clock is known.
    pub(crate) fn place_class_c(
        &mut self,
        req: &mut DownlinkRequest,
        region: &crate::region::RegionHandle,
        now: Instant,
    ) -> Result<(), Refusal> {
        let Some(air) = airtime(req) else {
            return Ok(());
        };
        let lead = self.lead_for(req.gateway_id);
        let radio = self.radio(req.gateway_id, Some(region), now);
        radio.check(req, air, now)?;
        radio.plan.prune(now);
        let now_gw = radio.plan.from_instant(now);
        let span = lead.saturating_add(air);
        if radio.plan.next_free(now_gw, span) == now_gw {
            return radio.reserve(req, now_gw, span, air, now);
        }
        let slot: GwTime = radio.plan.next_free(now_gw.saturating_add(lead), air);
        let Some(tmst) = radio
            .plan
            .tmst_known()
            .then(|| radio.plan.to_tmst(slot))
            .flatten()
        else {
            return Err(Refusal::Collision);
        };
        radio.reserve(req, slot, air, air, now)?;
        req.timing = Timing::Delay { tmst };
        Ok(())
    }

    /// Whether `req` could be placed now (without placing it).
    pub(crate) fn fits(&mut self, req: &DownlinkRequest, now: Instant) -> bool {
        let ok = self.place(req, now).is_ok();
        if ok {
            self.unplace(req);
        }
        ok
    }

    /// Frees what `req` held: its time, and its airtime in the budget (the gateway
    /// refused it, or it was only a probe).
    pub(crate) fn unplace(&mut self, req: &DownlinkRequest) {
        self.give_back(req, true);
    }

    fn give_back(&mut self, req: &DownlinkRequest, free_time: bool) {
        let Some(r) = self.radios.get_mut(&req.gateway_id) else {
            return;
        };
        let planned = if free_time {
            r.plan.remove(req.id)
        } else {
            r.plan.planned().iter().find(|p| p.id == req.id).copied()
        };
        let Some(p) = planned else {
            return;
        };
        if let (Some(duty), Some(at)) = (r.duty.as_mut(), r.plan.to_instant(p.start)) {
            // What was charged: the time on air (an immediate frame reserves the lead
            // before it too).
            duty.unrecord(p.frequency_hz, at, airtime(req).unwrap_or(p.duration));
        }
    }

    /// Counts a window (or moment) the scheduler did not use on `gateway_id`.
    pub(crate) fn count_refusal(&mut self, gateway_id: Eui64, why: Refusal) {
        match why {
            Refusal::Collision => self.counters.downlinks_refused_collision += 1,
            Refusal::DutyCycle(_) => self.counters.downlinks_refused_duty_cycle += 1,
            Refusal::TooLate | Refusal::DwellTime | Refusal::Frequency => {}
        }
        if let Some(r) = self.radios.get_mut(&gateway_id) {
            r.stats.refused_by_scheduler[why.index()] += 1;
        }
    }

    /// Prepares `req` for its gateway just before it is handed out: the power the
    /// gateway accepts (after `TX_POWER` answers), and counts it as planned.
    pub(crate) fn hand_out(&mut self, req: &mut DownlinkRequest) {
        if let Some(r) = self.radios.get_mut(&req.gateway_id) {
            if let Some(cap) = r.power_cap_dbm {
                req.tx_power_eirp_dbm = req.tx_power_eirp_dbm.min(cap);
            }
            r.stats.planned += 1;
        }
    }

    /// The gateway accepted `req`.
    pub(crate) fn radio_sent(&mut self, req: &DownlinkRequest) {
        if let Some(r) = self.radios.get_mut(&req.gateway_id) {
            r.stats.sent += 1;
            r.extra_lead = r.extra_lead.saturating_sub(LEAD_RECOVERY);
        }
    }

    /// The gateway refused `req` with `error`: frees what it held and learns from the
    /// answer, so the retry (and every later frame) goes where the gateway can send it.
    pub(crate) fn radio_refused(&mut self, req: &DownlinkRequest, error: TxAckError, now: Instant) {
        // Its time is free again, unless the gateway said something else is sent then
        // (COLLISION_*: a transmission we did not plan, e.g. another network server's or
        // a beacon): that time stays taken, so the retry goes elsewhere. Its airtime is
        // given back either way: it was not sent.
        let collision = matches!(
            error,
            TxAckError::CollisionPacket | TxAckError::CollisionBeacon
        );
        self.give_back(req, !collision);
        let Some(r) = self.radios.get_mut(&req.gateway_id) else {
            return;
        };
        r.stats.refused_by_gateway[error.index()] += 1;
        match error {
            TxAckError::TooLate => {
                r.extra_lead = (r.extra_lead + TOO_LATE_STEP).min(MAX_EXTRA_LEAD);
            }
            TxAckError::TxFreq => {
                r.bad_frequencies
                    .retain(|(f, at)| *f != req.frequency_hz && now < *at + BAD_FREQUENCY_TTL);
                if r.bad_frequencies.len() >= MAX_BAD_FREQUENCIES {
                    r.bad_frequencies.remove(0);
                }
                r.bad_frequencies.push((req.frequency_hz, now));
            }
            TxAckError::TxPower => {
                let lower = (req.tx_power_eirp_dbm - TX_POWER_STEP_DB).max(MIN_TX_POWER_DBM);
                r.power_cap_dbm = Some(r.power_cap_dbm.map_or(lower, |c| c.min(lower)));
            }
            TxAckError::GpsUnlocked => r.gps_unlocked_at = Some(now),
            TxAckError::TooEarly
            | TxAckError::CollisionPacket
            | TxAckError::CollisionBeacon
            | TxAckError::Other => {}
        }
    }

    /// Every gateway's downlink counters.
    pub fn gateway_downlink_stats(&self) -> impl Iterator<Item = (Eui64, &DownlinkStats)> + '_ {
        self.radios.iter().map(|(id, r)| (*id, &r.stats))
    }

    /// Each gateway's duty-cycle use per sub-band at `now` (gateways with budgets only).
    pub fn gateway_duty_use(&self, now: Instant) -> Vec<(Eui64, DutyUse)> {
        let mut out = Vec::new();
        for (id, r) in &self.radios {
            let Some(duty) = r.duty.as_ref() else {
                continue;
            };
            for (i, band) in duty.sub_bands().iter().enumerate() {
                let sb = crate::schedule::SubBandId(i);
                out.push((
                    *id,
                    DutyUse {
                        min_frequency_hz: band.min_frequency_hz,
                        max_frequency_hz: band.max_frequency_hz,
                        limit: band.fraction,
                        used: duty.utilisation(sb, now),
                    },
                ));
            }
        }
        out
    }

    /// When `gateway_id` last answered `GPS_UNLOCKED` (GPS-timed sends, Class B, avoid
    /// it while this is recent).
    pub fn gateway_gps_unlocked_at(&self, gateway_id: Eui64) -> Option<Instant> {
        self.radios.get(&gateway_id).and_then(|r| r.gps_unlocked_at)
    }
}

impl Radio {
    /// What rules out `req` before its time is looked at.
    fn check(&self, req: &DownlinkRequest, air: Duration, now: Instant) -> Result<(), Refusal> {
        if self
            .bad_frequencies
            .iter()
            .any(|(f, at)| *f == req.frequency_hz && now < *at + BAD_FREQUENCY_TTL)
        {
            return Err(Refusal::Frequency);
        }
        if self.dwell.is_some_and(|d| air > d) {
            return Err(Refusal::DwellTime);
        }
        Ok(())
    }

    /// Reserves `span` of the radio from `start` for `req`, charging `air` (its time
    /// on air) to the duty-cycle budget.
    fn reserve(
        &mut self,
        req: &DownlinkRequest,
        start: GwTime,
        span: Duration,
        air: Duration,
        now: Instant,
    ) -> Result<(), Refusal> {
        let at = self.plan.to_instant(start).unwrap_or(now);
        if let Some(duty) = self.duty.as_mut() {
            duty.prune(now);
            if !duty.allows(req.frequency_hz, at, air, now) {
                return Err(Refusal::DutyCycle(duty.earliest(
                    req.frequency_hz,
                    air,
                    now,
                )));
            }
        }
        match self
            .plan
            .try_place(start, span, req.frequency_hz, req.id, now)
        {
            Ok(()) => {}
            Err(crate::schedule::Conflict::TooLate) => return Err(Refusal::TooLate),
            Err(_) => return Err(Refusal::Collision),
        }
        if let Some(duty) = self.duty.as_mut() {
            duty.record(req.frequency_hz, at, air);
        }
        Ok(())
    }

    /// Reads the gateway's clock from an uplink's reception.
    pub(crate) fn observe(&mut self, tmst: u32, at: Instant) {
        self.plan.observe(tmst, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Window;
    use crate::rx::Modulation;
    use crate::server::NsConfig;
    use lorikeet_region::{build_region, RegionConfig};

    fn request(gateway: u64, spreading_factor: u8, bytes: usize) -> DownlinkRequest {
        DownlinkRequest {
            id: crate::DownlinkId(7),
            dev_eui: Eui64::from_u64(1),
            gateway_id: Eui64::from_u64(gateway),
            phy_payload: vec![0; bytes],
            timing: Timing::Immediately,
            window: Window::ClassC,
            frequency_hz: 923_200_000,
            modulation: Modulation::Lora {
                spreading_factor,
                bandwidth_hz: 125_000,
            },
            dr: 2,
            tx_power_eirp_dbm: 14,
        }
    }

    #[test]
    fn dwell_time_limits_downlinks_where_the_region_says_so() {
        let now = Instant::now();
        let mut ns = NetworkServer::new(NsConfig::default());
        let as923 = build_region("AS923", &RegionConfig::default()).unwrap();
        let eu868 = build_region("EU868", &RegionConfig::default()).unwrap();
        ns.radio(Eui64::from_u64(10), Some(&as923), now);
        ns.radio(Eui64::from_u64(20), Some(&eu868), now);
        // SF10, 40 bytes: about 500 ms on air; SF7, 40 bytes: about 90 ms.
        let long = request(10, 10, 40);
        assert!(
            crate::schedule::time_on_air(long.modulation, 5, 40, false).unwrap() > DWELL_TIME_LIMIT
        );
        assert_eq!(ns.place(&long, now), Err(Refusal::DwellTime));
        assert_eq!(ns.place(&request(10, 7, 40), now), Ok(()));
        assert_eq!(
            ns.place(&request(20, 10, 40), now),
            Ok(()),
            "no dwell limit in EU868"
        );
    }

    #[test]
    fn tx_ack_names_are_read_and_bounded() {
        for e in TxAckError::ALL {
            if e != TxAckError::Other {
                assert_eq!(TxAckError::parse(e.label()), e);
            }
        }
        assert_eq!(TxAckError::parse("SOMETHING_NEW").label(), "other");
    }
}
