//! The one implementation of [`Region`]: a [`BandTable`] plus the operator's
//! configuration.

use std::fmt::Debug;

use crate::channels::ChannelPlan;
use crate::datarate::{DataRateEntry, MaxPayload};
use crate::table::{self, BandTable, DwellTime, Rx1DataRate, Rx1Frequency};
use crate::{ClassBDefaults, DwellTimeLimits, RegParamsRevision, Region, RegionConfig};
use crate::{RegionError, RegionName, SubBand};

/// Picks a band table: a unit type for a region with one plan (`Eu868Plan`, …),
/// [`As923Group`](crate::as923::As923Group) for the four AS923 groups, and
/// [`RegionName`] for any region chosen at run time.
pub trait BandPlan: Copy + Debug + Send + Sync + 'static {
    /// The table of this plan.
    fn table(self) -> &'static BandTable;
}

/// A region: its band table with the operator's [`RegionConfig`] applied.
/// The region modules name their instances (`eu868::Eu868 = Band<Eu868Plan>`);
/// [`build_region`](crate::build_region) gives a `Band<RegionName>`.
#[derive(Debug, Clone)]
pub struct Band<P: BandPlan> {
    plan: P,
    table: &'static BandTable,
    channels: ChannelPlan,
    dwell: DwellTimeLimits,
    downlink_eirp_override_dbm: Option<f32>,
    class_b: ClassBDefaults,
}

impl<P: BandPlan> Band<P> {
    /// Builds the band of `plan` with `config` applied.
    pub fn with_plan(plan: P, config: &RegionConfig) -> Result<Self, RegionError> {
        let table = plan.table();
        let channels = table.channels.build(table, config)?;
        let dwell = table.dwell_time.apply(table.name, config)?;
        Ok(Band {
            plan,
            table,
            channels,
            dwell,
            downlink_eirp_override_dbm: config.downlink_tx_power_eirp_dbm,
            class_b: table.class_b.to_defaults(),
        })
    }

    /// The plan this band was built from.
    pub fn plan(&self) -> P {
        self.plan
    }

    /// RX1 data rate by `rule`; `None` for a DR the table has no uplink for.
    fn rx1_dr(
        &self,
        rule: Rx1DataRate,
        uplink_dr: u8,
        rx1_dr_offset: u8,
        downlink_dwell_time_400ms: bool,
    ) -> Option<u8> {
        if !self.table.is_uplink_dr(uplink_dr) {
            return None;
        }
        rule.apply(uplink_dr, rx1_dr_offset, downlink_dwell_time_400ms)
    }
}

impl<P: BandPlan + Default> Band<P> {
    /// Builds the region with `config` applied (regions with a single plan).
    pub fn new(config: &RegionConfig) -> Result<Self, RegionError> {
        Self::with_plan(P::default(), config)
    }
}

impl<P: BandPlan> Region for Band<P> {
    fn name(&self) -> RegionName {
        self.table.name
    }

    fn data_rates(&self) -> &[DataRateEntry] {
        self.table.data_rates
    }

    fn max_payload(
        &self,
        dr: u8,
        revision: RegParamsRevision,
        dwell_time_400ms: bool,
    ) -> Option<MaxPayload> {
        table::max_payload(self.table.max_payloads, dr, revision, dwell_time_400ms)
    }

    fn rx1_data_rate(
        &self,
        uplink_dr: u8,
        rx1_dr_offset: u8,
        downlink_dwell_time_400ms: bool,
    ) -> Option<u8> {
        self.rx1_dr(
            self.table.rx1_data_rate,
            uplink_dr,
            rx1_dr_offset,
            downlink_dwell_time_400ms,
        )
    }

    fn rx1_data_rate_for_revision(
        &self,
        uplink_dr: u8,
        rx1_dr_offset: u8,
        downlink_dwell_time_400ms: bool,
        revision: RegParamsRevision,
    ) -> Option<u8> {
        let rule = match self.table.rx1_data_rate_rp001 {
            Some(rp001) if !revision.is_rp002() => rp001,
            _ => self.table.rx1_data_rate,
        };
        self.rx1_dr(rule, uplink_dr, rx1_dr_offset, downlink_dwell_time_400ms)
    }

    fn rx1_frequency_hz(&self, uplink_channel_index: u8, uplink_frequency_hz: u32) -> Option<u32> {
        match self.table.rx1_frequency {
            Rx1Frequency::Uplink => Some(uplink_frequency_hz),
            Rx1Frequency::Grid {
                first_hz,
                step_hz,
                count,
            } => (usize::from(uplink_channel_index) < self.channels.channels().len())
                .then(|| first_hz + step_hz * u32::from(uplink_channel_index % count)),
        }
    }

    fn rx2_default(&self) -> (u32, u8) {
        self.table.rx2
    }

    fn channel_plan(&self) -> &ChannelPlan {
        &self.channels
    }

    fn max_eirp_dbm(&self) -> f32 {
        self.table.max_eirp_dbm
    }

    fn max_tx_power_index(&self) -> u8 {
        self.max_tx_power_index_for_revision(RegParamsRevision::LATEST)
    }

    fn max_tx_power_index_for_revision(&self, revision: RegParamsRevision) -> u8 {
        table::by_revision(self.table.max_tx_power_index, revision).unwrap_or(0)
    }

    fn max_adr_data_rate(&self) -> u8 {
        self.table.max_adr_data_rate
    }

    fn frequency_range_hz(&self) -> (u32, u32) {
        self.table.band_hz
    }

    fn duty_cycle_sub_bands(&self) -> &[SubBand] {
        self.table.duty_cycle_sub_bands
    }

    fn dwell_time(&self) -> DwellTimeLimits {
        self.dwell
    }

    fn implements_tx_param_setup(&self) -> bool {
        matches!(self.table.dwell_time, DwellTime::Configurable(_))
    }

    fn class_b(&self) -> &ClassBDefaults {
        &self.class_b
    }

    fn downlink_tx_power_eirp_dbm(&self, frequency_hz: u32) -> f32 {
        if let Some(p) = self.downlink_eirp_override_dbm {
            return p;
        }
        self.table
            .duty_cycle_sub_bands
            .iter()
            .find(|sb| (sb.min_frequency_hz..=sb.max_frequency_hz).contains(&frequency_hz))
            .map_or(self.table.downlink_eirp_dbm, |sb| sb.max_eirp_dbm)
    }
}
