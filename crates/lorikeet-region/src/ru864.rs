//! RU864-870 (RP002-1.0.3 §2.13; RP001-1.1revB §2.14).

use crate::datarate::EU_STYLE_DR0_7;
use crate::table::{
    BandTable, ChannelLayout, ClassB, DwellTime, Rx1DataRate, Rx1Frequency,
    EU_STYLE_MAX_PAYLOADS_DR0_7,
};
use crate::{Band, BandPlan, Channel, RegParamsRevision, RegionName, SubBand};

/// The RU864 band plan.
pub type Ru864 = Band<Ru864Plan>;

/// Selects the RU864 table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Ru864Plan;

impl BandPlan for Ru864Plan {
    fn table(self) -> &'static BandTable {
        &TABLE
    }
}

pub(crate) static TABLE: BandTable = BandTable {
    name: RegionName::Ru864,
    band_hz: (864_000_000, 870_000_000),
    channels: ChannelLayout::Dynamic {
        defaults: &[
            Channel::new(868_900_000, 0, 5),
            Channel::new(869_100_000, 0, 5),
        ],
    },
    data_rates: &EU_STYLE_DR0_7,
    max_eirp_dbm: 16.0,
    max_tx_power_index: &[(RegParamsRevision::Rp001V1_0_2, 7)],
    max_payloads: &EU_STYLE_MAX_PAYLOADS_DR0_7,
    rx1_data_rate: Rx1DataRate::Subtract { answer_as: &[] },
    rx1_data_rate_rp001: None,
    rx1_frequency: Rx1Frequency::Uplink,
    rx2: (869_100_000, 0),
    max_adr_data_rate: 5,
    dwell_time: DwellTime::None,
    duty_cycle_sub_bands: &[SubBand {
        min_frequency_hz: 864_000_000,
        max_frequency_hz: 870_000_000,
        duty_cycle_percent: 1.0,
        max_eirp_dbm: 16.0,
    }],
    downlink_eirp_dbm: 16.0,
    class_b: ClassB {
        beacon_dr: 3,
        ping_slot_dr: 3,
        beacon_frequencies_hz: &[869_100_000],
        ping_slot_frequencies_hz: &[868_900_000],
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MaxPayload, Modulation, Region, RegionConfig};

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
