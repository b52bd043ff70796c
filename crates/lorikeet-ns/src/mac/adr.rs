//! Adaptive data rate: the uplink history ADR decides from, the [`AdrAlgorithm`] trait,
//! the default algorithm and the registry that lets a device profile pick another one
//! by name.
//!
//! An algorithm only proposes `(DR, TXPower, NbTrans)`; the MAC engine turns a
//! proposal that differs from the device's state into a LinkADRReq and applies it to the
//! session only when the device acknowledges it (see `link_adr.rs`).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use lorikeet_region::Region;
use serde::{Deserialize, Serialize};

/// Name of the built-in algorithm.
pub const DEFAULT_ALGORITHM: &str = "default";

/// Uplinks the history keeps, and that the default algorithm wants before it acts.
pub const HISTORY_LEN: usize = 20;

/// One accepted uplink as ADR remembers it. Stored compactly (`[f_cnt, snr, tx_power]`
/// in the session JSON), since it is written with every uplink.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "(u32, f32, u8)", into = "(u32, f32, u8)")]
pub struct UplinkSample {
    /// The uplink's 32-bit frame counter (gaps are lost frames).
    pub f_cnt: u32,
    /// The best SNR over the gateways that heard it, in dB.
    pub max_snr_db: f32,
    /// The TXPower index the device used, as the network believed at the time.
    pub tx_power_index: u8,
}

impl From<(u32, f32, u8)> for UplinkSample {
    fn from((f_cnt, max_snr_db, tx_power_index): (u32, f32, u8)) -> Self {
        UplinkSample {
            f_cnt,
            max_snr_db,
            tx_power_index,
        }
    }
}

impl From<UplinkSample> for (u32, f32, u8) {
    fn from(s: UplinkSample) -> Self {
        (s.f_cnt, s.max_snr_db, s.tx_power_index)
    }
}

/// Everything an algorithm may base its proposal on.
#[derive(Debug, Clone, Copy)]
pub struct AdrInput<'a> {
    /// The device's band plan (required SNR per DR, TX power table).
    pub region: &'a dyn Region,
    /// The last uplinks, oldest first (at most [`HISTORY_LEN`]). Samples taken at another
    /// TX power than `tx_power_index` measured a different link budget.
    pub history: &'a [UplinkSample],
    /// The data rate of the uplink being processed.
    pub dr: u8,
    /// The TXPower index the device uses.
    pub tx_power_index: u8,
    /// How often the device sends each frame.
    pub nb_trans: u8,
    /// Lowest DR ADR may assign.
    pub min_dr: u8,
    /// Highest DR ADR may assign (profile, configuration, region and what the device
    /// has refused before, whichever is lowest).
    pub max_dr: u8,
    /// Highest TXPower index (lowest power) the device accepts.
    pub max_tx_power_index: u8,
    /// SNR to keep in reserve above the demodulation floor, in dB.
    pub installation_margin_db: f32,
}

/// What an algorithm proposes. Equal to the input's values: nothing to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdrDecision {
    /// Data rate.
    pub dr: u8,
    /// TXPower index (0 = the region's maximum EIRP; each step is 2 dB less).
    pub tx_power_index: u8,
    /// Transmissions per frame (1..=15).
    pub nb_trans: u8,
}

/// An ADR algorithm. Object safe, so a registry holds `Arc<dyn AdrAlgorithm>`; pure (no
/// clock, no I/O), so it runs inside the core.
pub trait AdrAlgorithm: Send + Sync + Debug {
    /// The settings the device should use after this uplink.
    fn decide(&self, input: &AdrInput<'_>) -> AdrDecision;
}

/// The default algorithm, after Semtech's recommendation (also what ChirpStack and The
/// Things Stack do by default):
///
/// - margin = best SNR of the history − required SNR of the DR − installation margin;
///   every full 3 dB of margin is one step: first raise the DR up to `max_dr`, then
///   lower the TX power; a negative margin raises the power back (never lowers the DR:
///   the device's own ADR back-off does that when it loses the network);
/// - steps need a full history ([`HISTORY_LEN`] uplinks at the current TX power), so
///   one lucky frame does not move the device and a power change is judged on frames
///   sent at that power;
/// - NbTrans follows the frame loss seen in the history's frame-counter gaps;
/// - a DR above `max_dr` is brought down at once (the operator lowered the cap).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultAdr;

/// The loss rate bands (%) and, per band, the NbTrans to use after 1, 2 or 3
/// transmissions per frame (Semtech's table).
const NB_TRANS_TABLE: [(f32, [u8; 3]); 4] = [
    (5.0, [1, 1, 2]),
    (10.0, [1, 2, 3]),
    (30.0, [2, 3, 3]),
    (f32::INFINITY, [3, 3, 3]),
];

/// Lost frames as a percentage of sent ones, from the frame-counter gaps.
pub fn loss_percent(history: &[UplinkSample]) -> f32 {
    let mut lost: u64 = 0;
    for w in history.windows(2) {
        // A counter that went back (a device allowed to reset) counts as no loss.
        lost += u64::from(w[1].f_cnt.saturating_sub(w[0].f_cnt).saturating_sub(1));
    }
    let received = history.len() as u64;
    if lost + received == 0 {
        return 0.0;
    }
    (lost as f32) * 100.0 / ((lost + received) as f32)
}

fn nb_trans_for(loss_percent: f32, current: u8) -> u8 {
    let column = usize::from(current.clamp(1, 3) - 1);
    NB_TRANS_TABLE
        .iter()
        .find(|(limit, _)| loss_percent < *limit)
        .map_or(current, |(_, row)| row[column])
}

impl AdrAlgorithm for DefaultAdr {
    fn decide(&self, input: &AdrInput<'_>) -> AdrDecision {
        let mut out = AdrDecision {
            dr: input.dr,
            tx_power_index: input.tx_power_index,
            nb_trans: input.nb_trans,
        };
        if input.dr > input.max_dr {
            out.dr = input.max_dr;
        }
        if input.history.len() < HISTORY_LEN {
            return out;
        }
        out.nb_trans = nb_trans_for(loss_percent(input.history), input.nb_trans);
        let same_power = input
            .history
            .iter()
            .filter(|s| s.tx_power_index == input.tx_power_index);
        if same_power.clone().count() < HISTORY_LEN {
            return out;
        }
        let Some(required_snr_db) = input.region.required_snr_db(out.dr) else {
            // FSK and LR-FHSS have no SNR floor to step against.
            return out;
        };
        let best_snr_db = same_power
            .map(|s| s.max_snr_db)
            .fold(f32::NEG_INFINITY, f32::max);
        let margin_db = best_snr_db - required_snr_db - input.installation_margin_db;
        // Whole 3 dB steps, rounded toward zero: −2 dB is no step yet.
        let mut steps = (margin_db / 3.0).trunc() as i32;
        let (mut dr, mut tx_power_index) = (out.dr, input.tx_power_index);
        while steps > 0 {
            if dr < input.max_dr {
                dr += 1;
            } else if tx_power_index < input.max_tx_power_index {
                tx_power_index += 1;
            } else {
                break;
            }
            steps -= 1;
        }
        while steps < 0 && tx_power_index > 0 {
            tx_power_index -= 1;
            steps += 1;
        }
        out.dr = dr.clamp(input.min_dr.min(input.max_dr), input.max_dr);
        out.tx_power_index = tx_power_index.min(input.max_tx_power_index);
        out
    }
}

/// The ADR algorithms a server knows, by name. Device profiles pick one with
/// `macSettings.adrAlgorithm`; `[mac] default_adr_algorithm` names the one for the
/// others. `"default"` ([`DefaultAdr`]) is always there; an embedder adds its own with
/// [`crate::NetworkServer::register_adr_algorithm`].
#[derive(Debug, Clone)]
pub struct AdrRegistry {
    algorithms: BTreeMap<String, Arc<dyn AdrAlgorithm>>,
}

impl Default for AdrRegistry {
    fn default() -> Self {
        let mut algorithms: BTreeMap<String, Arc<dyn AdrAlgorithm>> = BTreeMap::new();
        algorithms.insert(DEFAULT_ALGORITHM.to_owned(), Arc::new(DefaultAdr));
        AdrRegistry { algorithms }
    }
}

impl AdrRegistry {
    /// Adds (or replaces) an algorithm under `name`.
    pub fn register(&mut self, name: impl Into<String>, algorithm: Arc<dyn AdrAlgorithm>) {
        self.algorithms.insert(name.into(), algorithm);
    }

    /// The algorithm called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn AdrAlgorithm>> {
        self.algorithms.get(name)
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.algorithms.keys().map(String::as_str)
    }

    /// The algorithm for a profile: its own choice, else the network default, else the
    /// built-in one (a name that is not registered falls through; see `docs/network-server.md`).
    pub(crate) fn pick(&self, profile_choice: Option<&str>, network: &str) -> &dyn AdrAlgorithm {
        profile_choice
            .and_then(|n| self.algorithms.get(n))
            .or_else(|| self.algorithms.get(network))
            .map_or(&DefaultAdr as &dyn AdrAlgorithm, |a| a.as_ref())
    }
}

impl crate::NetworkServer {
    /// Makes an ADR algorithm available under `name`, for profiles whose
    /// `macSettings.adrAlgorithm` names it (or for all, via `[mac] default_adr_algorithm`).
    pub fn register_adr_algorithm(
        &mut self,
        name: impl Into<String>,
        algorithm: Arc<dyn AdrAlgorithm>,
    ) {
        self.adr_algorithms.register(name, algorithm);
    }

    /// The ADR algorithms this server knows.
    pub fn adr_algorithms(&self) -> &AdrRegistry {
        &self.adr_algorithms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lorikeet_region::{build_region, RegionConfig};

    fn history(n: u32, snr: f32, every: u32) -> Vec<UplinkSample> {
        (0..n)
            .map(|i| UplinkSample {
                f_cnt: i * every,
                max_snr_db: snr,
                tx_power_index: 0,
            })
            .collect()
    }

    fn input<'a>(region: &'a dyn Region, h: &'a [UplinkSample], dr: u8) -> AdrInput<'a> {
        AdrInput {
            region,
            history: h,
            dr,
            tx_power_index: 0,
            nb_trans: 1,
            min_dr: 0,
            max_dr: region.max_adr_data_rate(),
            max_tx_power_index: region.max_tx_power_index(),
            installation_margin_db: 10.0,
        }
    }

    #[test]
    fn good_link_raises_the_dr_then_lowers_the_power() {
        let r = build_region("EU868", &RegionConfig::default()).unwrap();
        // DR0 (SF12) needs -20 dB: SNR 10 leaves 10 + 20 - 10 = 20 dB, six steps:
        // DR0 -> DR5 (five), then one TX power step.
        let h = history(20, 10.0, 1);
        let d = DefaultAdr.decide(&input(&*r, &h, 0));
        assert_eq!(
            d,
            AdrDecision {
                dr: 5,
                tx_power_index: 1,
                nb_trans: 1
            }
        );
    }

    #[test]
    fn nothing_happens_before_the_history_is_full() {
        let r = build_region("EU868", &RegionConfig::default()).unwrap();
        let h = history(19, 10.0, 1);
        let d = DefaultAdr.decide(&input(&*r, &h, 0));
        assert_eq!((d.dr, d.tx_power_index, d.nb_trans), (0, 0, 1));
    }

    #[test]
    fn samples_at_another_power_do_not_count() {
        let r = build_region("EU868", &RegionConfig::default()).unwrap();
        let h = history(20, 10.0, 1);
        let mut i = input(&*r, &h, 0);
        i.tx_power_index = 2;
        let d = DefaultAdr.decide(&i);
        assert_eq!((d.dr, d.tx_power_index), (0, 2));
    }

    #[test]
    fn weak_link_raises_the_power_but_never_lowers_the_dr() {
        let r = build_region("EU868", &RegionConfig::default()).unwrap();
        let mut h = history(20, -15.0, 1);
        for s in &mut h {
            s.tx_power_index = 3;
        }
        // DR5 (SF7) needs -7.5 dB: -15 + 7.5 - 10 = -17.5 dB, -5 steps; power 3 -> 0.
        let mut i = input(&*r, &h, 5);
        i.tx_power_index = 3;
        let d = DefaultAdr.decide(&i);
        assert_eq!((d.dr, d.tx_power_index), (5, 0));
    }

    #[test]
    fn caps_bound_the_dr() {
        let r = build_region("EU868", &RegionConfig::default()).unwrap();
        let h = history(20, 10.0, 1);
        let mut i = input(&*r, &h, 0);
        i.max_dr = 3;
        assert_eq!(DefaultAdr.decide(&i).dr, 3);
        // Above the cap: brought down at once, even without history.
        let mut i = input(&*r, &[], 5);
        i.max_dr = 2;
        assert_eq!(DefaultAdr.decide(&i).dr, 2);
    }

    #[test]
    fn nb_trans_follows_frame_loss() {
        assert_eq!(loss_percent(&history(20, 0.0, 1)), 0.0);
        // Every other frame lost: 19 lost of 39 sent.
        let l = loss_percent(&history(20, 0.0, 2));
        assert!((l - 48.7).abs() < 0.1, "{l}");
        let r = build_region("EU868", &RegionConfig::default()).unwrap();
        let h = history(20, 0.0, 2);
        assert_eq!(DefaultAdr.decide(&input(&*r, &h, 5)).nb_trans, 3);
        // A counter that went back is not a loss.
        let mut h = history(20, 0.0, 1);
        h[10].f_cnt = 0;
        assert!(loss_percent(&h) < 50.0);
        assert_eq!(nb_trans_for(7.0, 1), 1);
        assert_eq!(nb_trans_for(7.0, 2), 2);
        assert_eq!(nb_trans_for(2.0, 3), 2);
    }

    #[test]
    fn registry_picks_by_name_and_falls_back() {
        #[derive(Debug)]
        struct Fixed;
        impl AdrAlgorithm for Fixed {
            fn decide(&self, i: &AdrInput<'_>) -> AdrDecision {
                AdrDecision {
                    dr: 1,
                    tx_power_index: i.tx_power_index,
                    nb_trans: 2,
                }
            }
        }
        let mut reg = AdrRegistry::default();
        reg.register("fixed", Arc::new(Fixed));
        assert_eq!(reg.names().collect::<Vec<_>>(), vec!["default", "fixed"]);
        let r = build_region("EU868", &RegionConfig::default()).unwrap();
        let i = input(&*r, &[], 0);
        assert_eq!(reg.pick(Some("fixed"), "default").decide(&i).nb_trans, 2);
        assert_eq!(reg.pick(None, "fixed").decide(&i).nb_trans, 2);
        assert_eq!(reg.pick(Some("nope"), "default").decide(&i).nb_trans, 1);
        assert_eq!(reg.pick(None, "nope").decide(&i).nb_trans, 1);
    }

    #[test]
    fn samples_serialise_as_short_arrays() {
        let s = UplinkSample {
            f_cnt: 7,
            max_snr_db: -2.5,
            tx_power_index: 1,
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "[7,-2.5,1]");
        assert_eq!(serde_json::from_str::<UplinkSample>(&json).unwrap(), s);
    }
}
