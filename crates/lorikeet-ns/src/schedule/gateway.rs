//! One gateway's planned transmissions, so that no two handed to it overlap.
//!
//! # Timeline
//! The schedule lives on the gateway's **concentrator clock**, unwrapped: a [`GwTime`] is a
//! u64 of microseconds that keeps counting where the forwarder's u32 `tmst` wraps (every
//! 2^32 µs ≈ 71.6 min). The radio enforces collisions in `tmst` terms (the forwarder's
//! just-in-time queue compares `count_us`), and Class A windows are given in `tmst`
//! (uplink `tmst` + 1 s), so two Class A downlinks compare exactly, with no estimate
//! between them. Immediate (Class C) sends have no `tmst`: they are placed by the server's
//! clock ([`Instant`], passed in) through a per-gateway anchor — the last observed
//! (`tmst`, `Instant`) pair — which is an estimate (it ignores backhaul delay: add the
//! gateway's round trip as lead time). The other design, an `Instant` timeline with a
//! per-gateway offset, would put an estimate between every pair of Class A downlinks
//! instead of only on the immediate ones.
//!
//! Until the first `tmst` is observed, the anchor is synthetic (server clock only); the
//! first observation attaches the real `tmst` at the position the server clock gives, so
//! immediate sends already planned stay where they are.
//!
//! `tmst` values are unwrapped relative to the anchor with wrapping arithmetic: one within
//! ±2^31 µs (≈ 35.8 min) of the last observed `tmst` maps to the right lap. Class A `tmst`
//! come from uplinks a second old, so that always holds.
//!
//! # Gap
//! Two transmissions need [`DEFAULT_MIN_GAP`] between the end of one and the start of the
//! next. Semtech's JIT queue (packet forwarder and sx1302_hal `jitqueue.c`) refuses a
//! packet as `COLLISION_PACKET` unless `start2 - start1 > TX_START_DELAY (1.5 ms) +
//! TX_JIT_DELAY (30 or 40 ms) + time_on_air1 + TX_MARGIN_DELAY (1 ms)`, i.e. 32.5 ms or
//! 42.5 ms of silence; "a few ms" would plan collisions the gateway then refuses.

use std::time::{Duration, Instant};

use thiserror::Error;

use crate::DownlinkId;

/// Silence required between two transmissions by default: 43 ms, just above what the
/// strictest Semtech JIT queue demands (42.5 ms, see the module doc).
pub const DEFAULT_MIN_GAP: Duration = Duration::from_millis(43);

/// How far an observed `tmst` may disagree with the server clock's estimate before the
/// schedule treats it as a new concentrator clock (gateway restart): backhaul delay and
/// crystal drift stay well below this; a restarted counter lands anywhere in ±35 min.
pub const CLOCK_JUMP_TOLERANCE: Duration = Duration::from_secs(10);

/// Where the unwrapped timeline starts, so times before the first anchor stay positive.
const ORIGIN_US: u64 = 1 << 40;

/// A point on a gateway's unwrapped concentrator timeline, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GwTime(u64);

impl GwTime {
    /// Microseconds since the schedule's arbitrary origin (only differences mean anything).
    pub fn as_micros(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> GwTime {
        GwTime(self.0.saturating_add(micros(d)))
    }

    /// `self - d`, saturating at the origin.
    pub fn saturating_sub(self, d: Duration) -> GwTime {
        GwTime(self.0.saturating_sub(micros(d)))
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: GwTime) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// One transmission planned on the gateway's radio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// The attempt, as reported back by TX_ACK.
    pub id: DownlinkId,
    /// When the radio starts sending.
    pub start: GwTime,
    /// Time on air.
    pub duration: Duration,
    /// Carrier frequency (kept for duty-cycle accounting and diagnostics; one radio sends
    /// one frame at a time whatever the frequency).
    pub frequency_hz: u32,
}

impl Planned {
    /// When the radio stops sending.
    pub fn end(&self) -> GwTime {
        self.start.saturating_add(self.duration)
    }
}

/// Why a transmission could not be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Conflict {
    /// It would overlap (or come closer than the minimum gap to) a planned transmission.
    #[error("overlaps planned transmission {with:?}")]
    Overlap {
        /// The transmission in the way.
        with: DownlinkId,
    },
    /// Its start is already in the past on the gateway's clock.
    #[error("start is in the past")]
    TooLate,
    /// A transmission with this id is already planned.
    #[error("id {0:?} already planned")]
    DuplicateId(DownlinkId),
}

/// What an observed `tmst` said about the gateway's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockCheck {
    /// It agrees with what the schedule expected (or is the first one).
    Consistent,
    /// It disagrees by more than [`CLOCK_JUMP_TOLERANCE`]: the concentrator restarted.
    /// Transmissions planned by `tmst` are no longer where the gateway would put them; the
    /// caller should replan them.
    Jumped,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    /// The observed `tmst`, `None` while synthetic.
    tmst: Option<u32>,
    /// Where `tmst` (and `at`) sit on the unwrapped timeline.
    position: GwTime,
    /// The server clock at that point.
    at: Instant,
}

/// A gateway's transmission plan (one radio; keep one per TX chain where a gateway has
/// several).
#[derive(Debug, Clone)]
pub struct GatewaySchedule {
    anchor: Anchor,
    min_gap: Duration,
    /// Sorted by start; pairwise separated by at least `min_gap`.
    planned: Vec<Planned>,
}

impl GatewaySchedule {
    /// An empty schedule with [`DEFAULT_MIN_GAP`], its clock anchored synthetically at `now`.
    pub fn new(now: Instant) -> Self {
        Self::with_min_gap(now, DEFAULT_MIN_GAP)
    }

    /// An empty schedule with a gateway-specific minimum gap.
    pub fn with_min_gap(now: Instant, min_gap: Duration) -> Self {
        GatewaySchedule {
            anchor: Anchor {
                tmst: None,
                position: GwTime(ORIGIN_US),
                at: now,
            },
            min_gap,
            planned: Vec::new(),
        }
    }

    /// The silence required between two transmissions.
    pub fn min_gap(&self) -> Duration {
        self.min_gap
    }

    /// Everything planned, in start order.
    pub fn planned(&self) -> &[Planned] {
        &self.planned
    }

    /// Whether a `tmst` has been observed, so `tmst` conversions are possible.
    pub fn tmst_known(&self) -> bool {
        self.anchor.tmst.is_some()
    }

    /// Ties the concentrator clock to the server clock: the gateway reported `tmst` for an
    /// event the server saw at `at` (typically an uplink's end of reception).
    pub fn observe(&mut self, tmst: u32, at: Instant) -> ClockCheck {
        let estimate = self.from_instant(at);
        match self.anchor.tmst {
            None => {
                self.anchor = Anchor {
                    tmst: Some(tmst),
                    position: estimate,
                    at,
                };
                ClockCheck::Consistent
            }
            Some(anchor_tmst) => {
                // How far `tmst` is from the `tmst` the server clock predicts, taking the
                // lap nearest to the prediction.
                let predicted = anchor_tmst
                    .wrapping_add(estimate.0.wrapping_sub(self.anchor.position.0) as u32);
                let delta = i64::from(tmst.wrapping_sub(predicted) as i32);
                let position = GwTime(estimate.0.saturating_add_signed(delta));
                if delta.unsigned_abs() > micros(CLOCK_JUMP_TOLERANCE) {
                    self.anchor = Anchor {
                        tmst: Some(tmst),
                        position: estimate,
                        at,
                    };
                    ClockCheck::Jumped
                } else {
                    self.anchor = Anchor {
                        tmst: Some(tmst),
                        position,
                        at,
                    };
                    ClockCheck::Consistent
                }
            }
        }
    }

    /// The timeline position of a concentrator `tmst` (wrapping arithmetic around the last
    /// observed one); `None` before any `tmst` was observed.
    pub fn from_tmst(&self, tmst: u32) -> Option<GwTime> {
        let anchor_tmst = self.anchor.tmst?;
        let delta = i64::from(tmst.wrapping_sub(anchor_tmst) as i32);
        Some(GwTime(self.anchor.position.0.saturating_add_signed(delta)))
    }

    /// The `tmst` to put in a txpk for `t`; `None` before any `tmst` was observed.
    pub fn to_tmst(&self, t: GwTime) -> Option<u32> {
        let anchor_tmst = self.anchor.tmst?;
        // Truncation to u32 is the wrap, on purpose.
        Some(anchor_tmst.wrapping_add(t.0.wrapping_sub(self.anchor.position.0) as u32))
    }

    /// The timeline position the server clock `at` corresponds to (an estimate).
    pub fn from_instant(&self, at: Instant) -> GwTime {
        if at >= self.anchor.at {
            self.anchor
                .position
                .saturating_add(at.duration_since(self.anchor.at))
        } else {
            self.anchor
                .position
                .saturating_sub(self.anchor.at.duration_since(at))
        }
    }

    /// The server clock time of `t` (an estimate); `None` if not representable.
    pub fn to_instant(&self, t: GwTime) -> Option<Instant> {
        if t >= self.anchor.position {
            self.anchor
                .at
                .checked_add(t.saturating_duration_since(self.anchor.position))
        } else {
            self.anchor
                .at
                .checked_sub(self.anchor.position.saturating_duration_since(t))
        }
    }

    /// Plans transmission `id` at `start` for `duration`, unless it is in the past or comes
    /// within the minimum gap of anything planned.
    pub fn try_place(
        &mut self,
        start: GwTime,
        duration: Duration,
        frequency_hz: u32,
        id: DownlinkId,
        now: Instant,
    ) -> Result<(), Conflict> {
        if start < self.from_instant(now) {
            return Err(Conflict::TooLate);
        }
        if self.planned.iter().any(|p| p.id == id) {
            return Err(Conflict::DuplicateId(id));
        }
        let new = Planned {
            id,
            start,
            duration,
            frequency_hz,
        };
        if let Some(p) = self.planned.iter().find(|p| self.clash(p, &new)) {
            return Err(Conflict::Overlap { with: p.id });
        }
        let at = self.planned.partition_point(|p| p.start <= start);
        self.planned.insert(at, new);
        Ok(())
    }

    /// Forgets a planned transmission (cancelled, or refused by the gateway).
    pub fn remove(&mut self, id: DownlinkId) -> Option<Planned> {
        let i = self.planned.iter().position(|p| p.id == id)?;
        Some(self.planned.remove(i))
    }

    /// Drops transmissions that ended (gap included) by `now`; returns how many.
    pub fn prune(&mut self, now: Instant) -> usize {
        let now = self.from_instant(now);
        let before = self.planned.len();
        let gap = self.min_gap;
        self.planned.retain(|p| p.end().saturating_add(gap) > now);
        before - self.planned.len()
    }

    /// The earliest start at or after `from` where `duration` fits (Class C, multicast).
    pub fn next_free(&self, from: GwTime, duration: Duration) -> GwTime {
        let gap = self.min_gap;
        let mut candidate = from;
        for p in &self.planned {
            // Fits entirely before `p` (planned entries are sorted and disjoint).
            if candidate.saturating_add(duration).saturating_add(gap) <= p.start {
                break;
            }
            let after = p.end().saturating_add(gap);
            if candidate < after {
                candidate = after;
            }
        }
        candidate
    }

    /// Whether `a` and `b` are closer than the minimum gap (or overlap).
    fn clash(&self, a: &Planned, b: &Planned) -> bool {
        let gap = self.min_gap;
        a.start < b.end().saturating_add(gap) && b.start < a.end().saturating_add(gap)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn id(n: u32) -> DownlinkId {
        DownlinkId(n)
    }

    /// A schedule whose clock saw `tmst` at `t0`.
    fn schedule(tmst: u32) -> (GatewaySchedule, Instant) {
        let t0 = Instant::now();
        let mut s = GatewaySchedule::with_min_gap(t0, 5 * MS);
        assert_eq!(s.observe(tmst, t0), ClockCheck::Consistent);
        (s, t0)
    }

    #[test]
    fn overlap_refused() {
        let (mut s, t0) = schedule(1_000_000);
        let rx1 = s.from_tmst(2_000_000).unwrap();
        s.try_place(rx1, 100 * MS, 868_100_000, id(1), t0).unwrap();
        // Same instant, and starting in the middle of it.
        assert_eq!(
            s.try_place(rx1, 100 * MS, 868_100_000, id(2), t0),
            Err(Conflict::Overlap { with: id(1) })
        );
        let mid = s.from_tmst(2_050_000).unwrap();
        assert_eq!(
            s.try_place(mid, 10 * MS, 868_300_000, id(3), t0),
            Err(Conflict::Overlap { with: id(1) })
        );
        // Ending inside it from before.
        let before = s.from_tmst(1_950_000).unwrap();
        assert_eq!(
            s.try_place(before, 60 * MS, 868_300_000, id(4), t0),
            Err(Conflict::Overlap { with: id(1) })
        );
        assert_eq!(s.planned().len(), 1);
    }

    #[test]
    fn minimum_gap_honoured_and_adjacent_slots_accepted() {
        let (mut s, t0) = schedule(0);
        let a = s.from_tmst(1_000_000).unwrap();
        s.try_place(a, 100 * MS, 869_525_000, id(1), t0).unwrap();
        // Ends 1 µs short of the gap before `a`.
        let early = a
            .saturating_sub(5 * MS + 50 * MS)
            .saturating_add(Duration::from_micros(1));
        assert_eq!(
            s.try_place(early, 50 * MS, 869_525_000, id(2), t0),
            Err(Conflict::Overlap { with: id(1) })
        );
        // Starts 1 µs inside the gap after `a`.
        let after = a.saturating_add(105 * MS);
        assert_eq!(
            s.try_place(
                after.saturating_sub(Duration::from_micros(1)),
                10 * MS,
                1,
                id(3),
                t0
            ),
            Err(Conflict::Overlap { with: id(1) })
        );
        // Exactly one gap apart on either side: accepted.
        s.try_place(after, 10 * MS, 1, id(3), t0).unwrap();
        s.try_place(a.saturating_sub(55 * MS), 50 * MS, 1, id(2), t0)
            .unwrap();
        let starts: Vec<_> = s.planned().iter().map(|p| p.id).collect();
        assert_eq!(starts, vec![id(2), id(1), id(3)]);
    }

    #[test]
    fn default_gap_matches_semtech_jit_queue() {
        let t0 = Instant::now();
        let s = GatewaySchedule::new(t0);
        // 1.5 ms start + 40 ms JIT + 1 ms margin, refused when equal.
        assert!(s.min_gap() > Duration::from_micros(42_500));
    }

    #[test]
    fn duplicate_id_and_past_start_refused() {
        let (mut s, t0) = schedule(10_000_000);
        let t = s.from_tmst(11_000_000).unwrap();
        s.try_place(t, MS, 1, id(1), t0).unwrap();
        let later = s.from_tmst(12_000_000).unwrap();
        assert_eq!(
            s.try_place(later, MS, 1, id(1), t0),
            Err(Conflict::DuplicateId(id(1)))
        );
        let past = s.from_tmst(9_000_000).unwrap();
        assert_eq!(s.try_place(past, MS, 1, id(2), t0), Err(Conflict::TooLate));
    }

    #[test]
    fn tmst_wrap_around() {
        // The clock is observed 0.5 s before the wrap.
        let (mut s, t0) = schedule(u32::MAX - 499_999);
        // A transmission of 100 ms starting 50 ms before the wrap...
        let before_wrap = s.from_tmst(u32::MAX - 49_999).unwrap();
        s.try_place(before_wrap, 100 * MS, 1, id(1), t0).unwrap();
        // ...overlaps one starting 10 ms after the wrap (tmst 10_000)...
        let just_after = s.from_tmst(10_000).unwrap();
        assert!(just_after > before_wrap, "unwrapped past the wrap");
        assert_eq!(just_after.saturating_duration_since(before_wrap), 60 * MS);
        assert_eq!(
            s.try_place(just_after, 10 * MS, 1, id(2), t0),
            Err(Conflict::Overlap { with: id(1) })
        );
        // ...but not one starting after its end plus the gap (tmst 55_000).
        let clear = s.from_tmst(55_000).unwrap();
        s.try_place(clear, 10 * MS, 1, id(3), t0).unwrap();
        assert_eq!(s.to_tmst(clear), Some(55_000));
        assert_eq!(s.to_tmst(before_wrap), Some(u32::MAX - 49_999));
        // Re-observing after the wrap keeps the timeline continuous.
        let t1 = t0 + Duration::from_millis(600);
        assert_eq!(s.observe(100_000, t1), ClockCheck::Consistent);
        assert_eq!(s.from_tmst(55_000), Some(clear));
        assert_eq!(s.from_tmst(u32::MAX - 49_999), Some(before_wrap));
    }

    #[test]
    fn next_free_finds_the_first_gap() {
        let (mut s, t0) = schedule(0);
        let base = s.from_tmst(1_000_000).unwrap();
        s.try_place(base, 100 * MS, 1, id(1), t0).unwrap();
        s.try_place(base.saturating_add(200 * MS), 100 * MS, 1, id(2), t0)
            .unwrap();
        // Room before the first one.
        assert_eq!(
            s.next_free(s.from_tmst(0).unwrap(), 10 * MS),
            s.from_tmst(0).unwrap()
        );
        // 90 ms between them minus two 5 ms gaps: 90 ms fits, 91 ms does not.
        let from = base.saturating_add(10 * MS);
        assert_eq!(s.next_free(from, 90 * MS), base.saturating_add(105 * MS));
        assert_eq!(s.next_free(from, 91 * MS), base.saturating_add(305 * MS));
        // What next_free returns is placeable.
        let slot = s.next_free(from, 91 * MS);
        s.try_place(slot, 91 * MS, 1, id(3), t0).unwrap();
    }

    #[test]
    fn immediate_sends_by_server_clock_then_tmst_learned() {
        let t0 = Instant::now();
        let mut s = GatewaySchedule::with_min_gap(t0, 5 * MS);
        assert!(!s.tmst_known());
        assert_eq!(s.from_tmst(5), None);
        let now = s.from_instant(t0 + 100 * MS);
        let slot = s.next_free(now, 50 * MS);
        s.try_place(slot, 50 * MS, 1, id(1), t0).unwrap();
        assert_eq!(s.to_instant(slot), Some(t0 + 100 * MS));
        // The first tmst arrives at t0 + 20 ms: the immediate send stays 80 ms later.
        assert_eq!(s.observe(7_000_000, t0 + 20 * MS), ClockCheck::Consistent);
        assert_eq!(s.to_tmst(slot), Some(7_080_000));
        // A Class A downlink at that tmst now collides with it.
        let a = s.from_tmst(7_080_000).unwrap();
        assert_eq!(
            s.try_place(a, 10 * MS, 1, id(2), t0),
            Err(Conflict::Overlap { with: id(1) })
        );
    }

    #[test]
    fn clock_jump_detected() {
        let (mut s, t0) = schedule(2_000_000_000);
        assert_eq!(
            s.observe(2_001_000_000, t0 + Duration::from_secs(1)),
            ClockCheck::Consistent
        );
        // Gateway restarted: tmst back near zero.
        assert_eq!(
            s.observe(3_000_000, t0 + Duration::from_secs(2)),
            ClockCheck::Jumped
        );
        // The new tmst maps to the server clock's estimate.
        assert_eq!(
            s.from_tmst(3_000_000),
            Some(s.from_instant(t0 + Duration::from_secs(2)))
        );
    }

    #[test]
    fn prune_and_remove() {
        let (mut s, t0) = schedule(0);
        let a = s.from_tmst(100_000).unwrap();
        s.try_place(a, 10 * MS, 1, id(1), t0).unwrap();
        s.try_place(a.saturating_add(100 * MS), 10 * MS, 1, id(2), t0)
            .unwrap();
        // At 112 ms the first ended but its gap has not: kept.
        assert_eq!(s.prune(t0 + 112 * MS), 0);
        assert_eq!(s.prune(t0 + 115 * MS), 1);
        assert_eq!(s.planned().len(), 1);
        assert_eq!(s.remove(id(2)).map(|p| p.id), Some(id(2)));
        assert_eq!(s.remove(id(2)), None);
        assert!(s.planned().is_empty());
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let t0 = Instant::now();
        let mut s = GatewaySchedule::new(t0);
        let far = GwTime(u64::MAX);
        let _ = s.try_place(far, Duration::MAX, u32::MAX, id(1), t0);
        let _ = s.next_free(far, Duration::MAX);
        let _ = s.to_instant(far);
        let _ = s.to_instant(GwTime(0));
        let _ = s.to_tmst(far);
        s.observe(u32::MAX, t0);
        let _ = s.from_tmst(0);
        let _ = s.prune(t0);
    }
}
