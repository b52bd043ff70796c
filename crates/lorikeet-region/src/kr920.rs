//! KR920-923 (RP002-1.0.3 §2.11; RP001-1.1revB §2.9).

use crate::datarate::{DataRateEntry, MaxPayload, EU_STYLE_DR0_7};
use crate::region::{common_accessors, rx1_dr_subtract, Common};
use crate::{
    Channel, ChannelPlan, ClassBDefaults, RegParamsRevision, Region, RegionConfig, RegionError,
    RegionName, SubBand,
};

const BAND_HZ: (u32, u32) = (920_900_000, 923_300_000);
const RX2_FREQUENCY_HZ: u32 = 921_900_000;
const BEACON_FREQUENCY_HZ: u32 = 923_100_000;

/// DR0–DR5, LoRa 125 kHz SF12–SF7 (RP002-1.0.3 Table 2.11.3).
const DATA_RATES: [DataRateEntry; 6] = [
    EU_STYLE_DR0_7[0],
    EU_STYLE_DR0_7[1],
    EU_STYLE_DR0_7[2],
    EU_STYLE_DR0_7[3],
    EU_STYLE_DR0_7[4],
    EU_STYLE_DR0_7[5],
];

const DEFAULT_CHANNELS: [Channel; 3] = [
    Channel::new(922_100_000, 0, 5),
    Channel::new(922_300_000, 0, 5),
    Channel::new(922_500_000, 0, 5),
];

/// The KR920 band plan.
#[derive(Debug, Clone)]
pub struct Kr920 {
    common: Common,
}

impl Kr920 {
    /// Builds KR920 with the operator's extra channels.
    pub fn new(config: &RegionConfig) -> Result<Self, RegionError> {
        let name = RegionName::Kr920;
        let plan = ChannelPlan::dynamic(name, &DEFAULT_CHANNELS, config, BAND_HZ, |dr| dr <= 5)?;
        let class_b = ClassBDefaults {
            beacon_dr: 3,
            ping_slot_dr: 3,
            beacon_frequencies_hz: vec![BEACON_FREQUENCY_HZ],
            ping_slot_frequencies_hz: vec![BEACON_FREQUENCY_HZ],
        };
        Ok(Kr920 {
            common: Common::new(name, plan, None, config, class_b)?,
        })
    }
}

impl Region for Kr920 {
    common_accessors!();

    fn name(&self) -> RegionName {
        RegionName::Kr920
    }

    fn data_rates(&self) -> &[DataRateEntry] {
        &DATA_RATES
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
            4 | 5 => 250,
            _ => return None,
        };
        Some(MaxPayload::from_m(m))
    }

    fn rx1_data_rate(&self, uplink_dr: u8, rx1_dr_offset: u8, _dwell: bool) -> Option<u8> {
        if uplink_dr > 5 {
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
        14.0
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
        &[]
    }

    fn implements_tx_param_setup(&self) -> bool {
        false
    }

    fn downlink_tx_power_eirp_dbm(&self, _frequency_hz: u32) -> f32 {
        self.common.downlink_eirp_override_dbm.unwrap_or(23.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CfList, ChannelConfig};

    fn kr920() -> Kr920 {
        Kr920::new(&RegionConfig::default()).unwrap()
    }

    #[test]
    fn default_channels_rp002_2_11_2() {
        let f: Vec<u32> = kr920()
            .channel_plan()
            .channels()
            .iter()
            .map(|c| c.frequency_hz)
            .collect();
        assert_eq!(f, vec![922_100_000, 922_300_000, 922_500_000]);
    }

    #[test]
    fn payload_rp002_2_11_6() {
        let r = kr920();
        let rev = RegParamsRevision::Rp002V1_0_3;
        assert_eq!(
            r.max_payload(0, rev, false),
            Some(MaxPayload { m: 59, n: 51 })
        );
        assert_eq!(
            r.max_payload(3, rev, false),
            Some(MaxPayload { m: 123, n: 115 })
        );
        assert_eq!(
            r.max_payload(5, rev, false),
            Some(MaxPayload { m: 250, n: 242 })
        );
        assert_eq!(r.max_payload(6, rev, false), None);
    }

    #[test]
    fn rx_windows_rp002_2_11_7() {
        let r = kr920();
        assert_eq!(r.rx1_data_rate(5, 3, false), Some(2));
        assert_eq!(r.rx1_data_rate(1, 5, false), Some(0));
        assert_eq!(r.rx1_data_rate(6, 0, false), None);
        assert_eq!(r.rx2_default(), (921_900_000, 0));
    }

    #[test]
    fn tx_power_rp002_2_11_3() {
        let r = kr920();
        assert_eq!(r.tx_power_eirp_dbm(0), Some(14.0));
        assert_eq!(r.tx_power_eirp_dbm(7), Some(0.0));
    }

    #[test]
    fn class_b_rp002_2_11_9() {
        assert_eq!(kr920().beacon_frequency_hz(12_345), 923_100_000);
    }

    #[test]
    fn extra_channels_rp002_2_11_4() {
        let r = Kr920::new(&RegionConfig {
            extra_channels: vec![ChannelConfig {
                frequency_hz: 922_700_000,
                min_dr: 0,
                max_dr: 5,
            }],
            ..RegionConfig::default()
        })
        .unwrap();
        let cf = CfList::decode(&r.join_accept_cf_list().unwrap()).unwrap();
        assert_eq!(cf, CfList::Frequencies([922_700_000, 0, 0, 0, 0]));
        let out = Kr920::new(&RegionConfig {
            extra_channels: vec![ChannelConfig {
                frequency_hz: 923_500_000,
                min_dr: 0,
                max_dr: 5,
            }],
            ..RegionConfig::default()
        });
        assert!(matches!(out, Err(RegionError::FrequencyOutOfBand { .. })));
    }
}
