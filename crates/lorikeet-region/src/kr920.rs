//! KR920-923 (RP002-1.0.3 §2.11; RP001-1.1revB §2.9).

use crate::datarate::EU_STYLE_DR0_7;
use crate::table::{
    BandTable, ChannelLayout, ClassB, DwellTime, Rx1DataRate, Rx1Frequency,
    EU_STYLE_MAX_PAYLOADS_DR0_7,
};
use crate::{Band, BandPlan, Channel, RegParamsRevision, RegionName};

/// The KR920 band plan.
pub type Kr920 = Band<Kr920Plan>;

/// Selects the KR920 table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Kr920Plan;

impl BandPlan for Kr920Plan {
    fn table(self) -> &'static BandTable {
        &TABLE
    }
}

const BEACON_FREQUENCY_HZ: u32 = 923_100_000;

pub(crate) static TABLE: BandTable = BandTable {
    name: RegionName::Kr920,
    band_hz: (920_900_000, 923_300_000),
    channels: ChannelLayout::Dynamic {
        defaults: &[
            Channel::new(922_100_000, 0, 5),
            Channel::new(922_300_000, 0, 5),
            Channel::new(922_500_000, 0, 5),
        ],
    },
    // DR0–DR5, LoRa 125 kHz SF12–SF7 (RP002-1.0.3 Table 2.11.3).
    data_rates: EU_STYLE_DR0_7.split_at(6).0,
    max_eirp_dbm: 14.0,
    max_tx_power_index: &[(RegParamsRevision::Rp001V1_0_2, 7)],
    max_payloads: EU_STYLE_MAX_PAYLOADS_DR0_7.split_at(6).0,
    rx1_data_rate: Rx1DataRate::Subtract { answer_as: &[] },
    rx1_data_rate_rp001: None,
    rx1_frequency: Rx1Frequency::Uplink,
    rx2: (921_900_000, 0),
    max_adr_data_rate: 5,
    dwell_time: DwellTime::None,
    duty_cycle_sub_bands: &[],
    downlink_eirp_dbm: 23.0,
    class_b: ClassB {
        beacon_dr: 3,
        ping_slot_dr: 3,
        beacon_frequencies_hz: &[BEACON_FREQUENCY_HZ],
        ping_slot_frequencies_hz: &[BEACON_FREQUENCY_HZ],
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CfList, ChannelConfig, MaxPayload, Region, RegionConfig, RegionError};

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
