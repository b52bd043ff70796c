//! EU433 (RP002-1.0.3 §2.7; RP001-1.1revB §2.5).

use crate::datarate::{DataRateEntry, MaxPayload, EU_STYLE_DR0_7};
use crate::region::{common_accessors, rx1_dr_subtract, Common};
use crate::{
    Channel, ChannelPlan, ClassBDefaults, RegParamsRevision, Region, RegionConfig, RegionError,
    RegionName, SubBand,
};

const BAND_HZ: (u32, u32) = (433_175_000, 434_665_000);
const RX2_FREQUENCY_HZ: u32 = 434_665_000;

const DEFAULT_CHANNELS: [Channel; 3] = [
    Channel::new(433_175_000, 0, 5),
    Channel::new(433_375_000, 0, 5),
    Channel::new(433_575_000, 0, 5),
];

const SUB_BANDS: [SubBand; 1] = [SubBand {
    min_frequency_hz: 433_175_000,
    max_frequency_hz: 434_665_000,
    duty_cycle_percent: 10.0,
    max_eirp_dbm: 12.15,
}];

/// The EU433 band plan.
#[derive(Debug, Clone)]
pub struct Eu433 {
    common: Common,
}

impl Eu433 {
    /// Builds EU433 with the operator's extra channels.
    pub fn new(config: &RegionConfig) -> Result<Self, RegionError> {
        let name = RegionName::Eu433;
        let plan = ChannelPlan::dynamic(name, &DEFAULT_CHANNELS, config, BAND_HZ, |dr| dr <= 7)?;
        let class_b = ClassBDefaults {
            beacon_dr: 3,
            ping_slot_dr: 3,
            beacon_frequencies_hz: vec![RX2_FREQUENCY_HZ],
            ping_slot_frequencies_hz: vec![RX2_FREQUENCY_HZ],
        };
        Ok(Eu433 {
            common: Common::new(name, plan, None, config, class_b)?,
        })
    }
}

impl Region for Eu433 {
    common_accessors!();

    fn name(&self) -> RegionName {
        RegionName::Eu433
    }

    fn data_rates(&self) -> &[DataRateEntry] {
        &EU_STYLE_DR0_7
    }

    fn max_payload(
        &self,
        dr: u8,
        _revision: RegParamsRevision,
        _dwell: bool,
    ) -> Option<MaxPayload> {
        let m = match dr {
            0..=2 => 59,
            3 => 123,
            4..=7 => 250,
            _ => return None,
        };
        Some(MaxPayload::from_m(m))
    }

    fn rx1_data_rate(&self, uplink_dr: u8, rx1_dr_offset: u8, _dwell: bool) -> Option<u8> {
        if uplink_dr > 7 {
            return None;
        }
        rx1_dr_subtract(uplink_dr, rx1_dr_offset)
    }

    fn rx1_frequency_hz(&self, _uplink_channel_index: u8, uplink_frequency_hz: u32) -> Option<u32> {
        Some(uplink_frequency_hz)
    }

    fn rx2_default(&self) -> (u32, u8) {
        (RX2_FREQUENCY_HZ, 0)
    }

    fn max_eirp_dbm(&self) -> f32 {
        12.15
    }

    fn max_tx_power_index(&self) -> u8 {
        5
    }

    fn max_adr_data_rate(&self) -> u8 {
        5
    }

    fn frequency_range_hz(&self) -> (u32, u32) {
        BAND_HZ
    }

    fn duty_cycle_sub_bands(&self) -> &[SubBand] {
        &SUB_BANDS
    }

    fn implements_tx_param_setup(&self) -> bool {
        false
    }

    fn downlink_tx_power_eirp_dbm(&self, _frequency_hz: u32) -> f32 {
        self.common.downlink_eirp_override_dbm.unwrap_or(12.15)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eu433() -> Eu433 {
        Eu433::new(&RegionConfig::default()).unwrap()
    }

    #[test]
    fn default_channels_rp002_2_7_2() {
        let f: Vec<u32> = eu433()
            .channel_plan()
            .channels()
            .iter()
            .map(|c| c.frequency_hz)
            .collect();
        assert_eq!(f, vec![433_175_000, 433_375_000, 433_575_000]);
    }

    #[test]
    fn payload_rp002_2_7_6() {
        let r = eu433();
        let rev = RegParamsRevision::Rp002V1_0_3;
        assert_eq!(
            r.max_payload(1, rev, false),
            Some(MaxPayload { m: 59, n: 51 })
        );
        assert_eq!(
            r.max_payload(4, rev, false),
            Some(MaxPayload { m: 250, n: 242 })
        );
    }

    #[test]
    fn rx_windows_rp002_2_7_7() {
        let r = eu433();
        assert_eq!(r.rx1_data_rate(4, 1, false), Some(3));
        assert_eq!(r.rx2_default(), (434_665_000, 0));
        assert_eq!(r.rx1_frequency_hz(2, 433_575_000), Some(433_575_000));
    }

    #[test]
    fn tx_power_rp002_2_7_3() {
        let r = eu433();
        assert_eq!(r.tx_power_eirp_dbm(0), Some(12.15));
        assert_eq!(r.tx_power_eirp_dbm(5), Some(12.15 - 10.0));
        assert_eq!(r.tx_power_eirp_dbm(6), None);
    }

    #[test]
    fn class_b_rp002_2_7_9() {
        assert_eq!(eu433().beacon_frequency_hz(0), 434_665_000);
        assert_eq!(eu433().class_b().ping_slot_dr, 3);
    }
}
