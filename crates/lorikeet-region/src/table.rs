//! A band plan as data: the table each region module fills in, and the few
//! kinds of rule a table chooses between. [`Band`](crate::Band) reads it.

use crate::channels::{ChMaskScheme, Channel, ChannelPlan};
use crate::datarate::{DataRateEntry, MaxPayload};
use crate::{ClassBDefaults, DwellTimeLimits, RegParamsRevision, RegionConfig, RegionError};
use crate::{RegionName, SubBand};

/// Everything that makes one band plan, as the Regional Parameters list it.
/// The fields follow the order of a region's RP002 section (§2.x.2 channels …
/// §2.x.9 Class B). Built only by the region modules of this crate.
#[derive(Debug)]
pub struct BandTable {
    /// The region this table describes.
    pub(crate) name: RegionName,
    /// Band edges; extra channels must lie inside (§2.x.2).
    pub(crate) band_hz: (u32, u32),
    /// Uplink channels. Also fixes the JoinAccept CFList (type 0 for dynamic
    /// plans, type 1 for fixed ones) and the LinkADRReq ChMask scheme (§2.x.2,
    /// §2.x.4, §2.x.5).
    pub(crate) channels: ChannelLayout,
    /// Data rates, ascending by DR (§2.x.3).
    pub(crate) data_rates: &'static [DataRateEntry],
    /// TXPower 0 (§2.x.3); TXPower `i` is `max_eirp_dbm − 2·i`.
    pub(crate) max_eirp_dbm: f32,
    /// Highest TXPower index: `(from revision, index)`, oldest first (§2.x.3).
    pub(crate) max_tx_power_index: &'static [(RegParamsRevision, u8)],
    /// Max payload sizes by DR and revision (§2.x.6).
    pub(crate) max_payloads: &'static [MaxPayloadRow],
    /// RX1 data rate as RP002 defines it (§2.x.7).
    pub(crate) rx1_data_rate: Rx1DataRate,
    /// RX1 data rate of RP001 devices, where RP001 differs (AS923, IN865).
    pub(crate) rx1_data_rate_rp001: Option<Rx1DataRate>,
    /// RX1 frequency (§2.x.7).
    pub(crate) rx1_frequency: Rx1Frequency,
    /// Default RX2 `(frequency_hz, dr)` (§2.x.7).
    pub(crate) rx2: (u32, u8),
    /// Highest data rate ADR may assign.
    pub(crate) max_adr_data_rate: u8,
    /// Dwell-time rules (§2.x.8 and TxParamSetupReq).
    pub(crate) dwell_time: DwellTime,
    /// Duty-cycle sub-bands; a downlink inside one is sent with its max EIRP.
    pub(crate) duty_cycle_sub_bands: &'static [SubBand],
    /// Gateway downlink EIRP outside the duty-cycle sub-bands (a conservative
    /// default, not a legal limit; see `docs/regions.md`).
    pub(crate) downlink_eirp_dbm: f32,
    /// Class B beacon and ping slots (§2.x.9).
    pub(crate) class_b: ClassB,
}

/// How the uplink channels of a plan are laid out.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ChannelLayout {
    /// Up to 16 channels: `defaults` (the join channels every device knows),
    /// then the operator's extra channels, announced in a type-0 CFList.
    /// ChMask addresses them as [`ChMaskScheme::Dynamic16`].
    Dynamic { defaults: &'static [Channel] },
    /// A fixed grid, announced by a type-1 CFList (channel mask). Sub-band `s`
    /// (from 1) is channels `8(s−1)…8(s−1)+7` of the first grid plus channel
    /// `s−1` of the second grid, if there is one (the 500 kHz channel of
    /// US915/AU915).
    Fixed {
        scheme: ChMaskScheme,
        grids: &'static [ChannelGrid],
    },
}

/// `count` channels every `step_hz` from `first_hz`, all with one DR range.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChannelGrid {
    pub first_hz: u32,
    pub step_hz: u32,
    pub count: u8,
    pub min_dr: u8,
    pub max_dr: u8,
}

impl ChannelGrid {
    fn channels(&self) -> impl Iterator<Item = Channel> + '_ {
        (0..u32::from(self.count))
            .map(|i| Channel::new(self.first_hz + self.step_hz * i, self.min_dr, self.max_dr))
    }
}

/// `N` frequencies every `step_hz` from `first_hz` (downlink and Class B grids).
pub(crate) const fn frequency_grid<const N: usize>(first_hz: u32, step_hz: u32) -> [u32; N] {
    let mut out = [0u32; N];
    let mut i = 0;
    while i < N {
        // N is at most 8 in every table, so `i` fits in u32.
        out[i] = first_hz + step_hz * i as u32;
        i += 1;
    }
    out
}

impl ChannelLayout {
    /// The channel plan with the operator's configuration applied.
    pub(crate) fn build(
        &self,
        table: &BandTable,
        config: &RegionConfig,
    ) -> Result<ChannelPlan, RegionError> {
        match *self {
            ChannelLayout::Dynamic { defaults } => {
                ChannelPlan::dynamic(table.name, defaults, config, table.band_hz, |dr| {
                    table.is_uplink_dr(dr)
                })
            }
            ChannelLayout::Fixed { scheme, grids } => {
                let channels = grids.iter().flat_map(ChannelGrid::channels).collect();
                let sub_bands = sub_bands_of_eight(grids);
                ChannelPlan::fixed(table.name, scheme, channels, config, &sub_bands)
            }
        }
    }
}

/// Sub-band `s` (from 1): channels `8(s−1)…8(s−1)+7` of the first grid, plus
/// channel `s−1` of the second grid where there is one (indices after the first grid).
fn sub_bands_of_eight(grids: &[ChannelGrid]) -> Vec<Vec<u8>> {
    let Some(first) = grids.first() else {
        return Vec::new();
    };
    let has_second = grids.len() > 1;
    (0..first.count / 8)
        .map(|s| {
            (8 * s..8 * s + 8)
                .chain(has_second.then_some(first.count + s))
                .collect()
        })
        .collect()
}

/// Max payload of one DR, from a revision on. A later row for the same DR
/// replaces it for the revisions it covers; a DR without a row for the device's
/// revision does not exist for that device (LR-FHSS before RP002-1.0.2).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaxPayloadRow {
    dr: u8,
    since: RegParamsRevision,
    /// M without a dwell-time limit.
    m: u8,
    /// M under the 400 ms dwell-time limit; `None` where the DR may not be used.
    m_dwell: Option<u8>,
}

impl MaxPayloadRow {
    /// A DR with maximum MACPayload `m` in every revision, dwell time or not.
    pub(crate) const fn new(dr: u8, m: u8) -> Self {
        MaxPayloadRow {
            dr,
            since: RegParamsRevision::Rp001V1_0_2,
            m,
            m_dwell: Some(m),
        }
    }

    /// M under the dwell-time limit; `None`: the DR is not allowed then.
    pub(crate) const fn dwell(self, m_dwell: Option<u8>) -> Self {
        MaxPayloadRow { m_dwell, ..self }
    }

    /// The row applies from `revision` on.
    pub(crate) const fn since(self, revision: RegParamsRevision) -> Self {
        MaxPayloadRow {
            since: revision,
            ..self
        }
    }
}

/// The max payload of `dr` for a device of `revision`.
pub(crate) fn max_payload(
    rows: &[MaxPayloadRow],
    dr: u8,
    revision: RegParamsRevision,
    dwell_time_400ms: bool,
) -> Option<MaxPayload> {
    let row = rows
        .iter()
        .filter(|r| r.dr == dr && r.since <= revision)
        .max_by_key(|r| r.since)?;
    let m = if dwell_time_400ms {
        row.m_dwell?
    } else {
        row.m
    };
    Some(MaxPayload::from_m(m))
}

/// The value of a `(from revision, value)` list for `revision`.
pub(crate) fn by_revision<T: Copy>(
    values: &[(RegParamsRevision, T)],
    revision: RegParamsRevision,
) -> Option<T> {
    values
        .iter()
        .filter(|(since, _)| *since <= revision)
        .max_by_key(|(since, _)| *since)
        .map(|&(_, v)| v)
}

/// Effective RX1DROffset for RX1DROffset 0–7 (AS923 RP002-1.0.3 §2.10.7, IN865
/// RP001-1.1revB §2.10.7).
const EFFECTIVE_RX1_DR_OFFSET: [i8; 8] = [0, 1, 2, 3, 4, 5, -1, -2];

/// How the RX1 data rate follows from the uplink DR and RX1DROffset. Every
/// rule answers only for the uplink DRs of the table.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rx1DataRate {
    /// `max(DR − RX1DROffset, 0)` with RX1DROffset 0–5. `answer_as` maps
    /// uplink DRs answered as another DR first (EU868 LR-FHSS).
    Subtract { answer_as: &'static [(u8, u8)] },
    /// The RP002 table: `(uplink DR, [RX1 DR for RX1DROffset 0, 1, …])`.
    Table(&'static [(u8, &'static [u8])]),
    /// `MIN(max_dr, MAX(min, DR − effective offset))`, RX1DROffset 6 and 7
    /// standing for −1 and −2; `min` is `dwell_min_dr` under the downlink
    /// dwell-time limit, else DR0.
    EffectiveOffset { dwell_min_dr: u8, max_dr: u8 },
}

impl Rx1DataRate {
    /// The RX1 DR for an uplink DR the caller has checked to be an uplink DR.
    pub(crate) fn apply(
        self,
        uplink_dr: u8,
        rx1_dr_offset: u8,
        downlink_dwell_time_400ms: bool,
    ) -> Option<u8> {
        match self {
            Rx1DataRate::Subtract { answer_as } => {
                let base = answer_as
                    .iter()
                    .find(|(dr, _)| *dr == uplink_dr)
                    .map_or(uplink_dr, |&(_, as_dr)| as_dr);
                (rx1_dr_offset <= 5).then(|| base.saturating_sub(rx1_dr_offset))
            }
            Rx1DataRate::Table(rows) => rows
                .iter()
                .find(|(dr, _)| *dr == uplink_dr)?
                .1
                .get(usize::from(rx1_dr_offset))
                .copied(),
            Rx1DataRate::EffectiveOffset {
                dwell_min_dr,
                max_dr,
            } => {
                let effective = *EFFECTIVE_RX1_DR_OFFSET.get(usize::from(rx1_dr_offset))?;
                let min_dr = if downlink_dwell_time_400ms {
                    dwell_min_dr
                } else {
                    0
                };
                let dr = (i16::from(uplink_dr) - i16::from(effective))
                    .max(i16::from(min_dr))
                    .min(i16::from(max_dr));
                u8::try_from(dr).ok()
            }
        }
    }
}

/// Where RX1 is sent.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rx1Frequency {
    /// On the uplink frequency (dynamic plans).
    Uplink,
    /// On downlink channel `uplink channel mod count`: `first_hz + step_hz·i`.
    Grid {
        first_hz: u32,
        step_hz: u32,
        count: u8,
    },
}

/// The dwell-time rules of a region.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DwellTime {
    /// No dwell-time limit; configuring one is an error.
    None,
    /// Limits the regulation fixes and the payload table already includes
    /// (US915); configuring a limit on is an error.
    Fixed(DwellTimeLimits),
    /// Devices implement TxParamSetupReq: boot defaults the operator may
    /// override (AS923, AU915).
    Configurable(DwellTimeLimits),
}

impl DwellTime {
    /// The limits in force with `config` applied.
    pub(crate) fn apply(
        self,
        region: RegionName,
        config: &RegionConfig,
    ) -> Result<DwellTimeLimits, RegionError> {
        let fixed = match self {
            DwellTime::Configurable(d) => {
                return Ok(DwellTimeLimits {
                    uplink_400ms: config.uplink_dwell_time_400ms.unwrap_or(d.uplink_400ms),
                    downlink_400ms: config.downlink_dwell_time_400ms.unwrap_or(d.downlink_400ms),
                })
            }
            DwellTime::Fixed(d) => d,
            DwellTime::None => DwellTimeLimits::default(),
        };
        if config.uplink_dwell_time_400ms == Some(true)
            || config.downlink_dwell_time_400ms == Some(true)
        {
            return Err(RegionError::DwellTimeNotApplicable { region });
        }
        Ok(fixed)
    }
}

/// Class B defaults. With more than one frequency the channel hops with the
/// beacon period.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClassB {
    pub beacon_dr: u8,
    pub ping_slot_dr: u8,
    pub beacon_frequencies_hz: &'static [u32],
    pub ping_slot_frequencies_hz: &'static [u32],
}

impl ClassB {
    pub(crate) fn to_defaults(self) -> ClassBDefaults {
        ClassBDefaults {
            beacon_dr: self.beacon_dr,
            ping_slot_dr: self.ping_slot_dr,
            beacon_frequencies_hz: self.beacon_frequencies_hz.to_vec(),
            ping_slot_frequencies_hz: self.ping_slot_frequencies_hz.to_vec(),
        }
    }
}

impl BandTable {
    /// Whether `dr` is a data rate of this table usable on the uplink.
    pub(crate) fn is_uplink_dr(&self, dr: u8) -> bool {
        self.data_rates
            .iter()
            .any(|e| e.dr == dr && e.direction.allows(true))
    }
}

/// M of the EU868-style DR0–DR7 (59, 59, 59, 123, 250, …; RP002-1.0.3 Table
/// 2.4.6 and the matching tables of EU433, RU864, IN865, KR920, CN470).
pub(crate) const EU_STYLE_MAX_PAYLOADS_DR0_7: [MaxPayloadRow; 8] = [
    MaxPayloadRow::new(0, 59),
    MaxPayloadRow::new(1, 59),
    MaxPayloadRow::new(2, 59),
    MaxPayloadRow::new(3, 123),
    MaxPayloadRow::new(4, 250),
    MaxPayloadRow::new(5, 250),
    MaxPayloadRow::new(6, 250),
    MaxPayloadRow::new(7, 250),
];

/// M of the 500 kHz downlink data rates DR8–DR13 of US915 and AU915.
pub(crate) const US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13: [MaxPayloadRow; 6] = [
    MaxPayloadRow::new(8, 61),
    MaxPayloadRow::new(9, 137),
    MaxPayloadRow::new(10, 250),
    MaxPayloadRow::new(11, 250),
    MaxPayloadRow::new(12, 250),
    MaxPayloadRow::new(13, 250),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BandPlan, Direction};

    /// What a new or edited table must hold for the generic code to be right.
    #[test]
    fn every_table_is_complete_and_consistent() {
        let oldest = RegParamsRevision::ALL[0];
        for name in RegionName::ALL {
            let t = name.table();
            assert_eq!(t.name, name);
            let drs: Vec<u8> = t.data_rates.iter().map(|e| e.dr).collect();
            assert!(drs.windows(2).all(|w| w[0] < w[1]), "{name}: DRs ascending");
            for row in t.max_payloads {
                assert!(drs.contains(&row.dr), "{name}: payload row DR{}", row.dr);
            }
            for e in t.data_rates {
                let latest = max_payload(t.max_payloads, e.dr, RegParamsRevision::LATEST, false);
                assert!(latest.is_some(), "{name}: no max payload for DR{}", e.dr);
                if e.direction.allows(true) {
                    for rule in [Some(t.rx1_data_rate), t.rx1_data_rate_rp001]
                        .into_iter()
                        .flatten()
                    {
                        assert!(
                            rule.apply(e.dr, 0, false).is_some(),
                            "{name}: RX1 DR{}",
                            e.dr
                        );
                    }
                }
            }
            if let Rx1DataRate::Table(rows) = t.rx1_data_rate {
                for (dr, _) in rows {
                    assert!(t.is_uplink_dr(*dr), "{name}: RX1 row DR{dr}");
                }
            }
            assert_eq!(t.max_tx_power_index.first().map(|r| r.0), Some(oldest));
            let rx2_dr = t.data_rates.iter().find(|e| e.dr == t.rx2.1);
            assert!(
                rx2_dr.is_some_and(|e| e.direction != Direction::Uplink),
                "{name}"
            );
            assert!(!t.class_b.beacon_frequencies_hz.is_empty());
            assert!(!t.class_b.ping_slot_frequencies_hz.is_empty());
        }
    }

    #[test]
    fn the_newest_row_for_the_revision_wins() {
        let rows = [
            MaxPayloadRow::new(2, 59).dwell(Some(19)),
            MaxPayloadRow::new(2, 123)
                .dwell(Some(19))
                .since(RegParamsRevision::Rp002V1_0_1),
            MaxPayloadRow::new(3, 58).since(RegParamsRevision::Rp002V1_0_2),
            MaxPayloadRow::new(4, 59).dwell(None),
        ];
        let m = |dr, rev, dwell| max_payload(&rows, dr, rev, dwell).map(|p| p.m);
        assert_eq!(m(2, RegParamsRevision::Rp002V1_0_0, false), Some(59));
        assert_eq!(m(2, RegParamsRevision::Rp002V1_0_1, false), Some(123));
        assert_eq!(m(2, RegParamsRevision::Rp002V1_0_4, true), Some(19));
        assert_eq!(m(3, RegParamsRevision::Rp002V1_0_1, false), None);
        assert_eq!(m(3, RegParamsRevision::Rp002V1_0_2, true), Some(58));
        assert_eq!(m(4, RegParamsRevision::Rp002V1_0_4, true), None);
        assert_eq!(m(5, RegParamsRevision::Rp002V1_0_4, false), None);
    }

    #[test]
    fn sub_bands_of_eight_add_the_wide_channel_when_there_is_one() {
        let grid = |count| ChannelGrid {
            first_hz: 0,
            step_hz: 1,
            count,
            min_dr: 0,
            max_dr: 0,
        };
        let us = sub_bands_of_eight(&[grid(64), grid(8)]);
        assert_eq!(us.len(), 8);
        assert_eq!(us[1], vec![8, 9, 10, 11, 12, 13, 14, 15, 65]);
        let cn = sub_bands_of_eight(&[grid(96)]);
        assert_eq!(cn.len(), 12);
        assert_eq!(cn[11], (88..96).collect::<Vec<u8>>());
    }
}
