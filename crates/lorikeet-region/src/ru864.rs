//! RU864-870 (RP002-1.0.3 §2.13; RP001-1.1revB §2.14).

use crate::datarate::{DataRateEntry, MaxPayload, EU_STYLE_DR0_7};
use crate::region::{common_accessors, rx1_dr_subtract, Common};
use crate::{
    Channel, ChannelPlan, ClassBDefaults, RegParamsRevision, Region, RegionConfig, RegionError,
    RegionName, SubBand,
};

const BAND_HZ: (u32, u32) = (864_000_000, 870_000_000);
const RX2_FREQUENCY_HZ: u32 = 869_100_000;

const DEFAULT_CHANNELS: [Channel; 2] = [
    Channel::new(868_900_000, 0, 5),
    Channel::new(869_100_000, 0, 5),
];

const SUB_BANDS: [SubBand; 1] = [SubBand {
    min_frequency_hz: 864_000_000,
    max_frequency_hz: 870_000_000,
    duty_cycle_percent: 1.0,
    max_eirp_dbm: 16.0,
}];

/// The RU864 band plan.
#[derive(Debug, Clone)]
pub struct Ru864 {
    common: Common,
}

impl Ru864 {
    /// Builds RU864 with the operator's extra channels.
    pub fn new(config: &RegionConfig) -> Result<Self, RegionError> {
        let name = RegionName::Ru864;
        let plan = ChannelPlan::dynamic(name, &DEFAULT_CHANNELS, config, BAND_HZ, |dr| dr <= 7)?;
        let class_b = ClassBDefaults {
            beacon_dr: 3,
            ping_slot_dr: 3,
            beacon_frequencies_hz: vec![869_100_000],
            ping_slot_frequencies_hz: vec![868_900_000],
        };
        Ok(Ru864 {
            common: Common::new(name, plan, None, config, class_b)?,
        })
    }
}

impl Region for Ru864 {
    common_accessors!();

    fn name(&self) -> RegionName {
        RegionName::Ru864
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
        16.0
    }

    fn max_tx_power_index(&self) -> u8 {
        7
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
        self.common.downlink_eirp_override_dbm.unwrap_or(16.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Modulation;

    fn ru864() -> Ru864 {
        Ru864::new(&RegionConfig::default()).unwrap()
    }

    #[test]
    fn default_channels_rp002_2_13_2() {
        let f: Vec<u32> = ru864()
            .channel_plan()
            .channels()
            .iter()
            .map(|c| c.frequency_hz)
            .collect();
        assert_eq!(f, vec![868_900_000, 869_100_000]);
    }

    #[test]
    fn data_rates_and_payload_rp002_2_13_3_and_2_13_6() {
        let r = ru864();
        assert_eq!(
            r.data_rate(6).unwrap().modulation,
            Modulation::lora(7, 250_000)
        );
        let rev = RegParamsRevision::Rp002V1_0_3;
        assert_eq!(
            r.max_payload(2, rev, false),
            Some(MaxPayload { m: 59, n: 51 })
        );
        assert_eq!(
            r.max_payload(7, rev, false),
            Some(MaxPayload { m: 250, n: 242 })
        );
        assert_eq!(r.max_payload(8, rev, false), None);
    }

    #[test]
    fn rx_windows_rp002_2_13_7() {
        let r = ru864();
        assert_eq!(r.rx1_data_rate(7, 2, false), Some(5));
        assert_eq!(r.rx1_data_rate(0, 1, false), Some(0));
        assert_eq!(r.rx2_default(), (869_100_000, 0));
    }

    #[test]
    fn tx_power_and_duty_cycle_rp002_2_13_3() {
        let r = ru864();
        assert_eq!(r.tx_power_eirp_dbm(7), Some(2.0));
        assert_eq!(r.duty_cycle_sub_bands()[0].duty_cycle_percent, 1.0);
    }

    #[test]
    fn class_b_rp002_2_13_9() {
        let r = ru864();
        assert_eq!(r.beacon_frequency_hz(0), 869_100_000);
        assert_eq!(r.ping_slot_frequency_hz(1, 0), 868_900_000);
    }
}
