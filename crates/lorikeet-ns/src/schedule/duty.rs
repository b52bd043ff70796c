//! Duty-cycle budgets per sub-band for one gateway.
//!
//! Gateways are bound by the regional duty-cycle limits like devices are (EU868: 0.1 %,
//! 1 % or 10 % per sub-band). Keep one [`DutyCycle`] per gateway. Each sub-band gets a
//! budget of `window × fraction` of airtime in any sliding window (default one hour:
//! 1 % → 36 s, 10 % → 360 s), where the fraction is the region's, lowered by an optional
//! operator cap.
//!
//! Accounting is **conservative**: a transmission counts in full in every window it
//! touches, so a window `(t − W, t]` is charged for a transmission `[a, b)` whenever
//! `a ≤ t < b + W`. A plan accepted here never exceeds the limit under the exact
//! (overlap-only) reading either; it costs at most one frame's airtime per window edge.
//!
//! Time is the server's clock ([`Instant`], passed in): an hour-long window does not care
//! about the milliseconds between it and the concentrator clock.
//!
//! A frequency outside every sub-band has no limit here (the region defines none there,
//! e.g. US915); a frequency in several (shared edges) takes the most restrictive.

use std::time::{Duration, Instant};

use lorikeet_region::SubBand;

/// The sliding window regulators use (ETSI EN 300 220: one hour).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(3600);

/// A frequency range with a duty-cycle limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DutySubBand {
    /// Lowest frequency, inclusive.
    pub min_frequency_hz: u32,
    /// Highest frequency, inclusive.
    pub max_frequency_hz: u32,
    /// Allowed share of airtime, 0.0..=1.0 (0.01 = 1 %).
    pub fraction: f64,
}

/// Index of a sub-band in a [`DutyCycle`], for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubBandId(pub usize);

#[derive(Debug, Clone, Copy)]
struct Record {
    start: Instant,
    end: Instant,
    /// When it stops counting in any window (`end + window`); `None` if not representable.
    expires: Option<Instant>,
}

impl Record {
    fn airtime(&self) -> Duration {
        self.end.saturating_duration_since(self.start)
    }
}

/// One gateway's airtime per sub-band over a sliding window.
#[derive(Debug, Clone)]
pub struct DutyCycle {
    bands: Vec<DutySubBand>,
    window: Duration,
    records: Vec<Vec<Record>>,
}

impl DutyCycle {
    /// Budgets for `bands` over `window`; `operator_cap` (a fraction) lowers every limit
    /// above it. Fractions are clamped to 0.0..=1.0 (NaN counts as 0: nothing allowed).
    pub fn new(bands: Vec<DutySubBand>, window: Duration, operator_cap: Option<f64>) -> Self {
        let cap = operator_cap.map(clamp_fraction).unwrap_or(1.0);
        let bands: Vec<DutySubBand> = bands
            .into_iter()
            .map(|b| DutySubBand {
                fraction: clamp_fraction(b.fraction).min(cap),
                ..b
            })
            .collect();
        let records = vec![Vec::new(); bands.len()];
        DutyCycle {
            bands,
            window,
            records,
        }
    }

    /// Budgets from a region's sub-bands (`Region::duty_cycle_sub_bands`), one-hour window.
    pub fn from_region(sub_bands: &[SubBand], operator_cap: Option<f64>) -> Self {
        let bands = sub_bands
            .iter()
            .map(|b| DutySubBand {
                min_frequency_hz: b.min_frequency_hz,
                max_frequency_hz: b.max_frequency_hz,
                // f32 percentages (0.1) do not widen exactly; round to 1e-9.
                fraction: (f64::from(b.duty_cycle_percent) * 1e7).round() / 1e9,
            })
            .collect();
        Self::new(bands, DEFAULT_WINDOW, operator_cap)
    }

    /// The sub-bands with their effective limits, in [`SubBandId`] order.
    pub fn sub_bands(&self) -> &[DutySubBand] {
        &self.bands
    }

    /// The sliding window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The sub-band limiting `frequency_hz` (the most restrictive if several), if any.
    pub fn sub_band(&self, frequency_hz: u32) -> Option<SubBandId> {
        self.bands
            .iter()
            .enumerate()
            .filter(|(_, b)| (b.min_frequency_hz..=b.max_frequency_hz).contains(&frequency_hz))
            .min_by(|(_, a), (_, b)| a.fraction.total_cmp(&b.fraction))
            .map(|(i, _)| SubBandId(i))
    }

    /// The sub-band's effective limit (after the operator cap).
    pub fn limit(&self, sub_band: SubBandId) -> Option<f64> {
        self.bands.get(sub_band.0).map(|b| b.fraction)
    }

    /// Airtime allowed per window in the sub-band.
    pub fn budget(&self, sub_band: SubBandId) -> Duration {
        self.limit(sub_band)
            .and_then(|f| Duration::try_from_secs_f64(self.window.as_secs_f64() * f).ok())
            .unwrap_or(Duration::ZERO)
    }

    /// Whether sending on `frequency_hz` from `start` for `duration` keeps every window
    /// within budget, given what is recorded (past and planned).
    pub fn allows(
        &self,
        frequency_hz: u32,
        start: Instant,
        duration: Duration,
        now: Instant,
    ) -> bool {
        let _ = now; // Records that no longer matter are simply outside the checked span.
        match self.sub_band(frequency_hz) {
            None => true,
            Some(id) => self.fits(id, start, duration),
        }
    }

    /// Charges a transmission (planned or sent) to its sub-band; no-op outside sub-bands.
    pub fn record(&mut self, frequency_hz: u32, start: Instant, duration: Duration) {
        let Some(id) = self.sub_band(frequency_hz) else {
            return;
        };
        let window = self.window;
        let end = start.checked_add(duration).unwrap_or(start);
        let record = Record {
            start,
            end,
            expires: end.checked_add(window),
        };
        if let Some(list) = self.records.get_mut(id.0) {
            list.push(record);
        }
    }

    /// Takes back a recorded transmission that did not happen (refused by the gateway);
    /// returns whether one matched.
    pub fn unrecord(&mut self, frequency_hz: u32, start: Instant, duration: Duration) -> bool {
        let Some(list) = self
            .sub_band(frequency_hz)
            .and_then(|id| self.records.get_mut(id.0))
        else {
            return false;
        };
        match list
            .iter()
            .position(|r| r.start == start && r.airtime() == duration)
        {
            Some(i) => {
                list.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Forgets transmissions that no longer count in any window from `now` on.
    pub fn prune(&mut self, now: Instant) {
        for list in &mut self.records {
            list.retain(|r| r.expires.is_none_or(|e| e > now));
        }
    }

    /// Share of the window `[now − window, now)` the sub-band was on air (compare with
    /// [`limit`](Self::limit)); 0.0 for an unknown sub-band.
    pub fn utilisation(&self, sub_band: SubBandId, now: Instant) -> f64 {
        let Some(list) = self.records.get(sub_band.0) else {
            return 0.0;
        };
        let from = now.checked_sub(self.window);
        let on_air: Duration = list
            .iter()
            .map(|r| {
                let a = from.map_or(r.start, |f| r.start.max(f));
                let b = r.end.min(now);
                b.saturating_duration_since(a)
            })
            .sum();
        let window = self.window.as_secs_f64();
        if window > 0.0 {
            on_air.as_secs_f64() / window
        } else {
            0.0
        }
    }

    /// The earliest start at or after `now` when `duration` on `frequency_hz` fits the
    /// budget; `None` if it never can (longer than the whole budget).
    pub fn earliest(&self, frequency_hz: u32, duration: Duration, now: Instant) -> Option<Instant> {
        let Some(id) = self.sub_band(frequency_hz) else {
            return Some(now);
        };
        if duration > self.budget(id) {
            return None;
        }
        // Feasibility only improves when a record stops counting, so the answer is `now`
        // or one of those moments.
        let mut candidates: Vec<Instant> = self
            .records
            .get(id.0)
            .into_iter()
            .flatten()
            .filter_map(|r| r.expires)
            .filter(|e| *e > now)
            .collect();
        candidates.sort_unstable();
        std::iter::once(now)
            .chain(candidates)
            .find(|c| self.fits(id, *c, duration))
    }

    /// Whether `[start, start + duration)` fits sub-band `id`.
    fn fits(&self, id: SubBandId, start: Instant, duration: Duration) -> bool {
        let budget = self.budget(id);
        if duration > budget {
            return false;
        }
        // The new frame counts in windows ending in [start, start + duration + window).
        let hi = start
            .checked_add(duration)
            .and_then(|e| e.checked_add(self.window));
        self.peak(id, start, hi) <= budget.saturating_sub(duration)
    }

    /// The highest charge of any window ending in `[lo, hi)` (`hi` `None`: unbounded).
    fn peak(&self, id: SubBandId, lo: Instant, hi: Option<Instant>) -> Duration {
        let Some(list) = self.records.get(id.0) else {
            return Duration::ZERO;
        };
        let mut base = Duration::ZERO;
        // (time, is_increase, amount); at equal times decreases go first (half-open).
        let mut events: Vec<(Instant, bool, Duration)> = Vec::new();
        for r in list {
            let d = r.airtime();
            if r.expires.is_some_and(|e| e <= lo) || hi.is_some_and(|h| r.start >= h) {
                continue;
            }
            if r.start <= lo {
                base = base.saturating_add(d);
            } else {
                events.push((r.start, true, d));
            }
            if let Some(e) = r.expires {
                if hi.is_none_or(|h| e < h) {
                    events.push((e, false, d));
                }
            }
        }
        events.sort_unstable_by_key(|&(t, inc, _)| (t, inc));
        let mut current = base;
        let mut peak = base;
        for (_, inc, d) in events {
            current = if inc {
                current.saturating_add(d)
            } else {
                current.saturating_sub(d)
            };
            peak = peak.max(current);
        }
        peak
    }
}

fn clamp_fraction(f: f64) -> f64 {
    if f.is_nan() {
        0.0
    } else {
        f.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::airtime::{lora_time_on_air, LoraParams};

    const S: Duration = Duration::from_secs(1);
    const RX2_HZ: u32 = 869_525_000;

    fn eu868() -> DutyCycle {
        DutyCycle::new(
            vec![
                DutySubBand {
                    min_frequency_hz: 868_000_000,
                    max_frequency_hz: 868_600_000,
                    fraction: 0.01,
                },
                DutySubBand {
                    min_frequency_hz: 869_400_000,
                    max_frequency_hz: 869_650_000,
                    fraction: 0.10,
                },
            ],
            DEFAULT_WINDOW,
            None,
        )
    }

    /// The most airtime any window `(t − W, t]` saw, by exact overlap (independent of the
    /// conservative accounting under test).
    fn worst_window(frames: &[(Instant, Duration)], window: Duration) -> Duration {
        let ends = frames.iter().flat_map(|&(a, d)| [a + d, a + window]);
        ends.map(|t| {
            let from = t - window;
            frames
                .iter()
                .map(|&(a, d)| (a + d).min(t).saturating_duration_since(a.max(from)))
                .sum::<Duration>()
        })
        .max()
        .unwrap_or_default()
    }

    #[test]
    fn sub_bands_from_region() {
        let region = lorikeet_region::eu868::Eu868::new(&Default::default()).expect("eu868");
        use lorikeet_region::Region;
        let dc = DutyCycle::from_region(region.duty_cycle_sub_bands(), None);
        let rx2 = dc.sub_band(RX2_HZ).expect("869.525 MHz is limited");
        assert_eq!(dc.limit(rx2), Some(0.1));
        // 0.1 % as f32 does not widen to exactly 0.001.
        let narrow = dc.sub_band(868_800_000).expect("868.8 MHz is limited");
        assert_eq!(dc.limit(narrow), Some(0.001));
        assert_eq!(dc.budget(rx2), Duration::from_secs(360));
        let g1 = dc.sub_band(868_100_000).expect("868.1 MHz is limited");
        assert_eq!(dc.budget(g1), Duration::from_secs(36));
        // US915-like frequencies: no limit.
        assert_eq!(dc.sub_band(923_300_000), None);
        assert!(dc.allows(923_300_000, Instant::now(), 3600 * S, Instant::now()));
    }

    #[test]
    fn operator_cap_lowers_limits() {
        let dc = DutyCycle::new(eu868().bands, DEFAULT_WINDOW, Some(0.02));
        assert_eq!(
            dc.budget(dc.sub_band(RX2_HZ).unwrap()),
            Duration::from_secs(72)
        );
        assert_eq!(
            dc.budget(dc.sub_band(868_100_000).unwrap()),
            Duration::from_secs(36)
        );
        let nan = DutyCycle::new(dc.bands.clone(), DEFAULT_WINDOW, Some(f64::NAN));
        assert_eq!(nan.budget(nan.sub_band(RX2_HZ).unwrap()), Duration::ZERO);
        assert!(!nan.allows(
            RX2_HZ,
            Instant::now(),
            Duration::from_micros(1),
            Instant::now()
        ));
    }

    #[test]
    fn budget_exhausted_then_recovers_as_window_slides() {
        let t0 = Instant::now();
        let mut dc = eu868();
        let g1 = dc.sub_band(868_100_000).unwrap();
        // 36 s budget: 30 s at t0, 6 s at t0 + 100 s.
        dc.record(868_100_000, t0, 30 * S);
        assert!(dc.allows(868_100_000, t0 + 100 * S, 6 * S, t0 + 100 * S));
        dc.record(868_300_000, t0 + 100 * S, 6 * S);
        // Exhausted: not even 1 µs more, anywhere that shares a window with them.
        let tiny = Duration::from_micros(1);
        assert!(!dc.allows(868_500_000, t0 + 200 * S, tiny, t0 + 200 * S));
        // The first frame stops counting at t0 + 30 s + 1 h: 30 s free again then.
        let back = t0 + 30 * S + DEFAULT_WINDOW;
        assert!(!dc.allows(868_100_000, back - tiny, tiny, back - tiny));
        assert!(dc.allows(868_100_000, back, 30 * S, back));
        assert!(!dc.allows(868_100_000, back, 30 * S + tiny, back));
        // Other sub-bands are untouched.
        assert!(dc.allows(RX2_HZ, t0 + 200 * S, 300 * S, t0 + 200 * S));
        // Utilisation: 36 s of the hour ending at t0 + 200 s.
        let u = dc.utilisation(g1, t0 + 200 * S);
        assert!((u - 0.01).abs() < 1e-9, "{u}");
        // Half of the first frame is still inside the window ending at t0 + 1 h + 15 s.
        let u = dc.utilisation(g1, t0 + DEFAULT_WINDOW + 15 * S);
        assert!((u - 21.0 / 3600.0).abs() < 1e-9, "{u}");
        dc.prune(back);
        assert_eq!(dc.records[g1.0].len(), 1);
    }

    #[test]
    fn earliest_is_when_the_budget_allows() {
        let t0 = Instant::now();
        let mut dc = eu868();
        assert_eq!(dc.earliest(868_100_000, S, t0), Some(t0));
        dc.record(868_100_000, t0, 20 * S);
        dc.record(868_100_000, t0 + 600 * S, 10 * S);
        // 6 s left: 6 s fits now, 7 s after the first frame expires.
        assert_eq!(dc.earliest(868_100_000, 6 * S, t0 + S), Some(t0 + S));
        let first_gone = t0 + 20 * S + DEFAULT_WINDOW;
        assert_eq!(dc.earliest(868_100_000, 7 * S, t0 + S), Some(first_gone));
        // 30 s needs both gone.
        let second_gone = t0 + 610 * S + DEFAULT_WINDOW;
        assert_eq!(dc.earliest(868_100_000, 30 * S, t0 + S), Some(second_gone));
        // Longer than the budget: never.
        assert_eq!(dc.earliest(868_100_000, 37 * S, t0), None);
        // What earliest returns is allowed, and a moment before is not.
        let e = dc.earliest(868_100_000, 7 * S, t0 + S).unwrap();
        assert!(dc.allows(868_100_000, e, 7 * S, t0));
        assert!(!dc.allows(868_100_000, e - Duration::from_micros(1), 7 * S, t0));
        // Outside every sub-band: now.
        assert_eq!(dc.earliest(923_300_000, 3600 * S, t0), Some(t0));
    }

    #[test]
    fn a_future_plan_also_counts() {
        let t0 = Instant::now();
        let mut dc = eu868();
        // 30 s planned 10 minutes ahead blocks a 10 s frame now (they share windows).
        dc.record(868_100_000, t0 + 600 * S, 30 * S);
        assert!(!dc.allows(868_100_000, t0, 10 * S, t0));
        assert!(dc.allows(868_100_000, t0, 6 * S, t0));
    }

    /// Paces `n` frames of `airtime` on `frequency_hz` back to back as the budget allows;
    /// returns them.
    fn pace(
        dc: &mut DutyCycle,
        frequency_hz: u32,
        airtime: Duration,
        n: usize,
        t0: Instant,
    ) -> Vec<(Instant, Duration)> {
        let mut frames = Vec::new();
        let mut next = t0;
        for i in 0..n {
            let start = dc
                .earliest(frequency_hz, airtime, next)
                .unwrap_or_else(|| panic!("frame {i} never fits"));
            assert!(dc.allows(frequency_hz, start, airtime, start));
            dc.record(frequency_hz, start, airtime);
            frames.push((start, airtime));
            // The radio is busy until the end; 43 ms gap as the gateway schedule would.
            next = start + airtime + Duration::from_millis(43);
        }
        frames
    }

    #[test]
    fn hundred_sf12_downlinks_at_ten_percent_fit_without_waiting() {
        // SF12/125 kHz, 13-byte downlink without CRC: 1.155 s. 100 of them = 115.5 s,
        // under the 360 s per hour of 869.525 MHz, so none waits for budget.
        let airtime = lora_time_on_air(&LoraParams::lorawan(12, 125_000, 5, false), 13).unwrap();
        assert!(airtime > S);
        let t0 = Instant::now();
        let mut dc = eu868();
        let frames = pace(&mut dc, RX2_HZ, airtime, 100, t0);
        let last = frames.last().unwrap().0;
        assert_eq!(last, t0 + 99 * (airtime + Duration::from_millis(43)));
        assert!(worst_window(&frames, DEFAULT_WINDOW) <= Duration::from_secs(360));
    }

    #[test]
    fn sf12_burst_paced_within_ten_percent() {
        // 400 max-size SF12 downlinks (51 bytes, no CRC: 2.30 s each, 921 s in all) at
        // 360 s per hour: ~156 per window, so the last one goes out in the third hour.
        let airtime = lora_time_on_air(&LoraParams::lorawan(12, 125_000, 5, false), 51).unwrap();
        let t0 = Instant::now();
        let mut dc = eu868();
        let frames = pace(&mut dc, RX2_HZ, airtime, 400, t0);
        let worst = worst_window(&frames, DEFAULT_WINDOW);
        assert!(worst <= Duration::from_secs(360), "{worst:?}");
        // Paced, not starved: close to the limit, and done in the third hour.
        assert!(worst > Duration::from_secs(350), "{worst:?}");
        let span = frames.last().unwrap().0 - t0;
        assert!(
            span > 2 * DEFAULT_WINDOW && span < 3 * DEFAULT_WINDOW,
            "{span:?}"
        );
    }

    #[test]
    fn hundred_sf12_downlinks_at_one_percent_paced() {
        let airtime = lora_time_on_air(&LoraParams::lorawan(12, 125_000, 5, false), 13).unwrap();
        let t0 = Instant::now();
        let mut dc = eu868();
        let frames = pace(&mut dc, 868_100_000, airtime, 100, t0);
        let worst = worst_window(&frames, DEFAULT_WINDOW);
        assert!(worst <= Duration::from_secs(36), "{worst:?}");
        // 115.5 s of airtime at 36 s per hour: the last starts after three hours.
        assert!(frames.last().unwrap().0 - t0 > 3 * DEFAULT_WINDOW);
    }

    #[test]
    fn unrecord_gives_budget_back() {
        let t0 = Instant::now();
        let mut dc = eu868();
        dc.record(868_100_000, t0, 36 * S);
        assert!(!dc.allows(868_100_000, t0 + 60 * S, S, t0));
        assert!(dc.unrecord(868_100_000, t0, 36 * S));
        assert!(!dc.unrecord(868_100_000, t0, 36 * S));
        assert!(dc.allows(868_100_000, t0 + 60 * S, S, t0));
    }
}
