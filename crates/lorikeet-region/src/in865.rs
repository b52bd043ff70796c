//! IN865-867 (RP002-1.0.3 §2.12; RP001-1.1revB §2.10).

use crate::datarate::EU_STYLE_DR0_7;
use crate::table::{
    BandTable, ChannelLayout, ClassB, DwellTime, Rx1DataRate, Rx1Frequency,
    EU_STYLE_MAX_PAYLOADS_DR0_7,
};
use crate::{Band, BandPlan, Channel, RegParamsRevision, RegionName};

/// The IN865 band plan.
pub type In865 = Band<In865Plan>;

/// Selects the IN865 table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct In865Plan;

impl BandPlan for In865Plan {
    fn table(self) -> &'static BandTable {
        &TABLE
    }
}

const RX2_FREQUENCY_HZ: u32 = 866_550_000;

pub(crate) static TABLE: BandTable = BandTable {
    name: RegionName::In865,
    band_hz: (865_000_000, 867_000_000),
    channels: ChannelLayout::Dynamic {
        defaults: &[
            Channel::new(865_062_500, 0, 5),
            Channel::new(865_402_500, 0, 5),
            Channel::new(865_985_000, 0, 5),
        ],
    },
    // DR0–DR5 LoRa, DR6 RFU, DR7 FSK 50 kbps (RP002-1.0.3 Table 2.12.3).
    data_rates: &[
        EU_STYLE_DR0_7[0],
        EU_STYLE_DR0_7[1],
        EU_STYLE_DR0_7[2],
        EU_STYLE_DR0_7[3],
        EU_STYLE_DR0_7[4],
        EU_STYLE_DR0_7[5],
        EU_STYLE_DR0_7[7],
    ],
    max_eirp_dbm: 30.0,
    max_tx_power_index: &[(RegParamsRevision::Rp001V1_0_2, 10)],
    max_payloads: &[
        EU_STYLE_MAX_PAYLOADS_DR0_7[0],
        EU_STYLE_MAX_PAYLOADS_DR0_7[1],
        EU_STYLE_MAX_PAYLOADS_DR0_7[2],
        EU_STYLE_MAX_PAYLOADS_DR0_7[3],
        EU_STYLE_MAX_PAYLOADS_DR0_7[4],
        EU_STYLE_MAX_PAYLOADS_DR0_7[5],
        EU_STYLE_MAX_PAYLOADS_DR0_7[7],
    ],
    // RP002-1.0.3 Table 2.12.7: RX1 DR by uplink DR (DR0–DR5, DR7) and
    // RX1DROffset 0–7 (the RFU DR6 is skipped: DR7 with offset 1 gives DR5).
    rx1_data_rate: Rx1DataRate::Table(&[
        (0, &[0, 0, 0, 0, 0, 0, 1, 2]),
        (1, &[1, 0, 0, 0, 0, 0, 2, 3]),
        (2, &[2, 1, 0, 0, 0, 0, 3, 4]),
        (3, &[3, 2, 1, 0, 0, 0, 4, 5]),
        (4, &[4, 3, 2, 1, 0, 0, 5, 5]),
        (5, &[5, 4, 3, 2, 1, 0, 5, 7]),
        (7, &[7, 5, 5, 4, 3, 2, 7, 7]),
    ]),
    // RP001: MIN(5, MAX(0, uplink DR − effective offset)) (RP001-1.1revB §2.10.7).
    rx1_data_rate_rp001: Some(Rx1DataRate::EffectiveOffset {
        dwell_min_dr: 0,
        max_dr: 5,
    }),
    rx1_frequency: Rx1Frequency::Uplink,
    rx2: (RX2_FREQUENCY_HZ, 2),
    max_adr_data_rate: 5,
    dwell_time: DwellTime::None,
    duty_cycle_sub_bands: &[],
    downlink_eirp_dbm: 30.0,
    class_b: ClassB {
        beacon_dr: 4,
        ping_slot_dr: 4,
        beacon_frequencies_hz: &[RX2_FREQUENCY_HZ],
        ping_slot_frequencies_hz: &[RX2_FREQUENCY_HZ],
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MaxPayload, Modulation, Region, RegionConfig};

    fn in865() -> In865 {
        In865::new(&RegionConfig::default()).unwrap()
    }

    #[test]
    fn default_channels_rp002_2_12_2() {
        let f: Vec<u32> = in865()
            .channel_plan()
            .channels()
            .iter()
            .map(|c| c.frequency_hz)
            .collect();
        assert_eq!(f, vec![865_062_500, 865_402_500, 865_985_000]);
    }

    #[test]
    fn data_rates_and_payload_rp002_2_12_3_and_2_12_6() {
        let r = in865();
        assert_eq!(r.data_rate(6), None);
        assert_eq!(
            r.data_rate(7).unwrap().modulation,
            Modulation::Fsk {
                bit_rate_bps: 50_000
            }
        );
        let rev = RegParamsRevision::Rp002V1_0_3;
        assert_eq!(
            r.max_payload(2, rev, false),
            Some(MaxPayload { m: 59, n: 51 })
        );
        assert_eq!(
            r.max_payload(5, rev, false),
            Some(MaxPayload { m: 250, n: 242 })
        );
        assert_eq!(r.max_payload(6, rev, false), None);
        assert_eq!(
            r.max_payload(7, rev, false),
            Some(MaxPayload { m: 250, n: 242 })
        );
    }

    #[test]
    fn rx1_rp002_2_12_7() {
        let r = in865();
        assert_eq!(r.rx1_data_rate(5, 0, false), Some(5));
        assert_eq!(r.rx1_data_rate(3, 2, false), Some(1));
        assert_eq!(r.rx1_data_rate(2, 6, false), Some(3));
        assert_eq!(r.rx1_data_rate(4, 7, false), Some(5));
        assert_eq!(r.rx1_data_rate(5, 7, false), Some(7));
        assert_eq!(r.rx1_data_rate(7, 1, false), Some(5));
        assert_eq!(r.rx1_data_rate(7, 2, false), Some(5));
        assert_eq!(r.rx1_data_rate(7, 3, false), Some(4));
        assert_eq!(r.rx1_data_rate(6, 0, false), None);
        assert_eq!(r.rx1_data_rate(5, 8, false), None);
        assert_eq!(r.rx2_default(), (866_550_000, 2));
    }

    #[test]
    fn rx1_rp001_caps_at_dr5_rp001_1_1revb_2_10_7() {
        let r = in865();
        let rev = RegParamsRevision::Rp001V1_1RevB;
        assert_eq!(r.rx1_data_rate_for_revision(5, 7, false, rev), Some(5));
        assert_eq!(r.rx1_data_rate_for_revision(7, 0, false, rev), Some(5));
        assert_eq!(r.rx1_data_rate_for_revision(2, 6, false, rev), Some(3));
        assert_eq!(r.rx1_data_rate_for_revision(1, 3, false, rev), Some(0));
        assert_eq!(r.rx1_data_rate_for_revision(6, 0, false, rev), None);
        assert_eq!(r.rx1_data_rate_for_revision(1, 8, false, rev), None);
    }

    #[test]
    fn tx_power_rp002_2_12_3() {
        let r = in865();
        assert_eq!(r.tx_power_eirp_dbm(0), Some(30.0));
        assert_eq!(r.tx_power_eirp_dbm(10), Some(10.0));
        assert_eq!(r.tx_power_eirp_dbm(11), None);
    }

    #[test]
    fn class_b_rp002_2_12_9() {
        let r = in865();
        assert_eq!(r.class_b().beacon_dr, 4);
        assert_eq!(r.beacon_frequency_hz(0), 866_550_000);
    }
}
