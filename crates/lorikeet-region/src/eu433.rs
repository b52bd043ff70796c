//! EU433 (RP002-1.0.3 §2.7; RP001-1.1revB §2.5).

use crate::datarate::EU_STYLE_DR0_7;
use crate::table::{
    BandTable, ChannelLayout, ClassB, DwellTime, Rx1DataRate, Rx1Frequency,
    EU_STYLE_MAX_PAYLOADS_DR0_7,
};
use crate::{Band, BandPlan, Channel, RegParamsRevision, RegionName, SubBand};

/// The EU433 band plan.
pub type Eu433 = Band<Eu433Plan>;

/// Selects the EU433 table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Eu433Plan;

impl BandPlan for Eu433Plan {
    fn table(self) -> &'static BandTable {
        &TABLE
    }
}

const RX2_FREQUENCY_HZ: u32 = 434_665_000;

pub(crate) static TABLE: BandTable = BandTable {
    name: RegionName::Eu433,
    band_hz: (433_175_000, 434_665_000),
    channels: ChannelLayout::Dynamic {
        defaults: &[
            Channel::new(433_175_000, 0, 5),
            Channel::new(433_375_000, 0, 5),
            Channel::new(433_575_000, 0, 5),
        ],
    },
    data_rates: &EU_STYLE_DR0_7,
    max_eirp_dbm: 12.15,
    max_tx_power_index: &[(RegParamsRevision::Rp001V1_0_2, 5)],
    max_payloads: &EU_STYLE_MAX_PAYLOADS_DR0_7,
    rx1_data_rate: Rx1DataRate::Subtract { answer_as: &[] },
    rx1_data_rate_rp001: None,
    rx1_frequency: Rx1Frequency::Uplink,
    rx2: (RX2_FREQUENCY_HZ, 0),
    max_adr_data_rate: 5,
    dwell_time: DwellTime::None,
    duty_cycle_sub_bands: &[SubBand {
        min_frequency_hz: 433_175_000,
        max_frequency_hz: 434_665_000,
        duty_cycle_percent: 10.0,
        max_eirp_dbm: 12.15,
    }],
    downlink_eirp_dbm: 12.15,
    class_b: ClassB {
        beacon_dr: 3,
        ping_slot_dr: 3,
        beacon_frequencies_hz: &[RX2_FREQUENCY_HZ],
        ping_slot_frequencies_hz: &[RX2_FREQUENCY_HZ],
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MaxPayload, Region, RegionConfig};

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
