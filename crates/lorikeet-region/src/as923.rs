//! AS923 groups 1–4 (RP002-1.0.3 §2.10; RP001-1.1revB §2.7). The groups differ
//! only by AS923_FREQ_OFFSET, which moves the default channels, RX2 and the
//! Class B frequencies; each group has its own table, built from group 1's.

use crate::datarate::EU_STYLE_DR0_7;
use crate::table::{
    BandTable, ChannelLayout, ClassB, DwellTime, MaxPayloadRow, Rx1DataRate, Rx1Frequency,
};
use crate::{
    Band, BandPlan, Channel, DwellTimeLimits, RegParamsRevision, RegionConfig, RegionError,
    RegionName,
};

/// The AS923 frequency-offset groups (RP002-1.0.3 §2.10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum As923Group {
    /// AS923-1, offset 0 MHz.
    Group1,
    /// AS923-2, offset −1.8 MHz.
    Group2,
    /// AS923-3, offset −6.6 MHz.
    Group3,
    /// AS923-4, offset −5.9 MHz.
    Group4,
}

/// AS923_FREQ_OFFSET_HZ of groups 1–4, subtracted from the group-1 frequencies.
const OFFSET_HZ: [u32; 4] = [0, 1_800_000, 6_600_000, 5_900_000];

impl As923Group {
    /// AS923_FREQ_OFFSET_HZ subtracted from the group-1 frequencies.
    pub fn frequency_offset_hz(self) -> u32 {
        OFFSET_HZ[self.index()]
    }

    fn index(self) -> usize {
        match self {
            As923Group::Group1 => 0,
            As923Group::Group2 => 1,
            As923Group::Group3 => 2,
            As923Group::Group4 => 3,
        }
    }
}

impl BandPlan for As923Group {
    fn table(self) -> &'static BandTable {
        &TABLES[self.index()]
    }
}

/// An AS923 band plan for one group.
pub type As923 = Band<As923Group>;

impl Band<As923Group> {
    /// Builds an AS923 group. Devices boot with uplink and downlink dwell-time
    /// limits on (LoRaMac-node default; the network changes them with TxParamSetupReq).
    pub fn new(group: As923Group, config: &RegionConfig) -> Result<Self, RegionError> {
        Self::with_plan(group, config)
    }

    /// The frequency-offset group.
    pub fn group(&self) -> As923Group {
        self.plan()
    }
}

static TABLES: [BandTable; 4] = [
    group::<{ OFFSET_HZ[0] }>(RegionName::As923Group1),
    group::<{ OFFSET_HZ[1] }>(RegionName::As923Group2),
    group::<{ OFFSET_HZ[2] }>(RegionName::As923Group3),
    group::<{ OFFSET_HZ[3] }>(RegionName::As923Group4),
];

/// Max payloads with and without the dwell-time limit (RP002-1.0.3 §2.10.6).
const MAX_PAYLOADS: [MaxPayloadRow; 9] = [
    MaxPayloadRow::new(0, 59).dwell(None),
    MaxPayloadRow::new(1, 59).dwell(None),
    MaxPayloadRow::new(2, 59).dwell(Some(19)),
    // DR2 grew from 59 to 123 bytes in RP002-1.0.1.
    MaxPayloadRow::new(2, 123)
        .dwell(Some(19))
        .since(RegParamsRevision::Rp002V1_0_1),
    MaxPayloadRow::new(3, 123).dwell(Some(61)),
    MaxPayloadRow::new(4, 250).dwell(Some(133)),
    MaxPayloadRow::new(5, 250),
    MaxPayloadRow::new(6, 250),
    MaxPayloadRow::new(7, 250),
];

/// The table of the group whose AS923_FREQ_OFFSET is `OFFSET`.
const fn group<const OFFSET: u32>(name: RegionName) -> BandTable {
    BandTable {
        name,
        band_hz: (915_000_000, 928_000_000),
        channels: ChannelLayout::Dynamic {
            defaults: &const {
                [
                    Channel::new(923_200_000 - OFFSET, 0, 5),
                    Channel::new(923_400_000 - OFFSET, 0, 5),
                ]
            },
        },
        data_rates: &EU_STYLE_DR0_7,
        max_eirp_dbm: 16.0,
        // RP001-1.0.2 (revision A) defined TXPower 0..=5 only.
        max_tx_power_index: &[
            (RegParamsRevision::Rp001V1_0_2, 5),
            (RegParamsRevision::Rp001V1_0_2RevB, 7),
        ],
        max_payloads: &MAX_PAYLOADS,
        // MinDR = DR2 under the downlink dwell-time limit (RP002-1.0.3 §2.10.7);
        // RP001 capped RX1 at DR5, RP002 Table 2.10.7 lets it reach DR7.
        rx1_data_rate: Rx1DataRate::EffectiveOffset {
            dwell_min_dr: 2,
            max_dr: 7,
        },
        rx1_data_rate_rp001: Some(Rx1DataRate::EffectiveOffset {
            dwell_min_dr: 2,
            max_dr: 5,
        }),
        rx1_frequency: Rx1Frequency::Uplink,
        rx2: (923_200_000 - OFFSET, 2),
        max_adr_data_rate: 5,
        dwell_time: DwellTime::Configurable(DwellTimeLimits {
            uplink_400ms: true,
            downlink_400ms: true,
        }),
        // Duty cycle and listen-before-talk rules are per country; none enforced here.
        duty_cycle_sub_bands: &[],
        downlink_eirp_dbm: 16.0,
        class_b: ClassB {
            beacon_dr: 3,
            ping_slot_dr: 3,
            beacon_frequencies_hz: &const { [923_400_000 - OFFSET] },
            ping_slot_frequencies_hz: &const { [923_400_000 - OFFSET] },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CfList, ChannelConfig, MaxPayload, Modulation, Region};

    fn as923(group: As923Group) -> As923 {
        As923::new(group, &RegionConfig::default()).unwrap()
    }

    #[test]
    fn group_offsets_move_default_channels_and_rx2_rp002_2_10_2() {
        let cases = [
            (As923Group::Group1, 923_200_000, 923_400_000),
            (As923Group::Group2, 921_400_000, 921_600_000),
            (As923Group::Group3, 916_600_000, 916_800_000),
            (As923Group::Group4, 917_300_000, 917_500_000),
        ];
        for (group, ch0, ch1) in cases {
            let r = as923(group);
            let f: Vec<u32> = r
                .channel_plan()
                .channels()
                .iter()
                .map(|c| c.frequency_hz)
                .collect();
            assert_eq!(f, vec![ch0, ch1], "{group:?}");
            assert_eq!(r.rx2_default(), (ch0, 2), "{group:?}");
            assert_eq!(r.beacon_frequency_hz(0), ch1, "{group:?}");
            assert_eq!(r.ping_slot_frequency_hz(7, 0), ch1, "{group:?}");
        }
        assert_eq!(as923(As923Group::Group3).name(), RegionName::As923Group3);
    }

    #[test]
    fn data_rates_rp002_2_10_3() {
        let r = as923(As923Group::Group1);
        assert_eq!(
            r.data_rate(2).unwrap().modulation,
            Modulation::lora(10, 125_000)
        );
        assert_eq!(
            r.data_rate(6).unwrap().modulation,
            Modulation::lora(7, 250_000)
        );
        assert_eq!(
            r.data_rate(7).unwrap().modulation,
            Modulation::Fsk {
                bit_rate_bps: 50_000
            }
        );
        assert_eq!(r.data_rate(8), None);
    }

    #[test]
    fn dwell_time_max_payloads_rp002_2_10_6() {
        let r = as923(As923Group::Group1);
        let rev = RegParamsRevision::Rp002V1_0_3;
        // UplinkDwellTime = 1.
        assert_eq!(r.max_payload(0, rev, true), None);
        assert_eq!(r.max_payload(1, rev, true), None);
        assert_eq!(
            r.max_payload(2, rev, true),
            Some(MaxPayload { m: 19, n: 11 })
        );
        assert_eq!(
            r.max_payload(3, rev, true),
            Some(MaxPayload { m: 61, n: 53 })
        );
        assert_eq!(
            r.max_payload(4, rev, true),
            Some(MaxPayload { m: 133, n: 125 })
        );
        assert_eq!(
            r.max_payload(5, rev, true),
            Some(MaxPayload { m: 250, n: 242 })
        );
        // UplinkDwellTime = 0.
        assert_eq!(
            r.max_payload(0, rev, false),
            Some(MaxPayload { m: 59, n: 51 })
        );
        assert_eq!(
            r.max_payload(2, rev, false),
            Some(MaxPayload { m: 123, n: 115 })
        );
        assert_eq!(
            r.max_payload(3, rev, false),
            Some(MaxPayload { m: 123, n: 115 })
        );
        assert_eq!(
            r.max_payload(7, rev, false),
            Some(MaxPayload { m: 250, n: 242 })
        );
        // RP001-1.0.2revB … RP002-1.0.0: DR2 without dwell was 59 bytes.
        assert_eq!(
            r.max_payload(2, RegParamsRevision::Rp001V1_0_2RevB, false),
            Some(MaxPayload { m: 59, n: 51 })
        );
        assert_eq!(
            r.max_payload(2, RegParamsRevision::Rp002V1_0_0, false),
            Some(MaxPayload { m: 59, n: 51 })
        );
        assert_eq!(r.max_payload(8, rev, false), None);
    }

    #[test]
    fn rx1_with_effective_offsets_and_dwell_rp002_2_10_7() {
        let r = as923(As923Group::Group2);
        assert_eq!(r.rx1_data_rate(5, 0, false), Some(5));
        assert_eq!(r.rx1_data_rate(5, 5, false), Some(0));
        assert_eq!(r.rx1_data_rate(3, 6, false), Some(4));
        assert_eq!(r.rx1_data_rate(3, 7, false), Some(5));
        // RP002 Table 2.10.7 reaches DR6/DR7.
        assert_eq!(r.rx1_data_rate(5, 6, false), Some(6));
        assert_eq!(r.rx1_data_rate(5, 7, false), Some(7));
        assert_eq!(r.rx1_data_rate(7, 0, false), Some(7));
        assert_eq!(r.rx1_data_rate(6, 1, false), Some(5));
        // DownlinkDwellTime = 1 raises the floor to DR2.
        assert_eq!(r.rx1_data_rate(2, 2, true), Some(2));
        assert_eq!(r.rx1_data_rate(0, 0, true), Some(2));
        assert_eq!(r.rx1_data_rate(1, 7, true), Some(3));
        assert_eq!(r.rx1_data_rate(0, 0, false), Some(0));
        assert_eq!(r.rx1_data_rate(5, 8, false), None);
        assert_eq!(r.rx1_data_rate(8, 0, false), None);
        assert_eq!(r.rx1_frequency_hz(0, 921_400_000), Some(921_400_000));
    }

    #[test]
    fn rx1_is_capped_at_dr5_for_rp001_devices_rp001_1_1revb_2_7_7() {
        let r = as923(As923Group::Group1);
        let rp001 = RegParamsRevision::Rp001V1_0_3RevA;
        assert_eq!(r.rx1_data_rate_for_revision(5, 7, false, rp001), Some(5));
        assert_eq!(r.rx1_data_rate_for_revision(7, 0, false, rp001), Some(5));
        assert_eq!(r.rx1_data_rate_for_revision(3, 6, true, rp001), Some(4));
        assert_eq!(r.rx1_data_rate_for_revision(0, 0, true, rp001), Some(2));
        let rp002 = RegParamsRevision::Rp002V1_0_3;
        assert_eq!(r.rx1_data_rate_for_revision(5, 7, false, rp002), Some(7));
    }

    #[test]
    fn tx_power_and_tx_param_setup_rp002_2_10_3() {
        let r = as923(As923Group::Group1);
        assert_eq!(r.max_eirp_dbm(), 16.0);
        assert_eq!(r.tx_power_eirp_dbm(7), Some(2.0));
        assert!(r.implements_tx_param_setup());
        assert_eq!(
            r.dwell_time(),
            DwellTimeLimits {
                uplink_400ms: true,
                downlink_400ms: true
            }
        );
        assert_eq!(
            r.max_tx_power_index_for_revision(RegParamsRevision::Rp001V1_0_2),
            5
        );
    }

    #[test]
    fn dwell_time_is_configurable() {
        let r = As923::new(
            As923Group::Group1,
            &RegionConfig {
                uplink_dwell_time_400ms: Some(false),
                ..RegionConfig::default()
            },
        )
        .unwrap();
        assert_eq!(
            r.dwell_time(),
            DwellTimeLimits {
                uplink_400ms: false,
                downlink_400ms: true
            }
        );
    }

    #[test]
    fn cf_list_channels_2_to_6_rp002_2_10_4() {
        let r = As923::new(
            As923Group::Group3,
            &RegionConfig {
                extra_channels: vec![
                    ChannelConfig {
                        frequency_hz: 917_000_000,
                        min_dr: 0,
                        max_dr: 5,
                    },
                    ChannelConfig {
                        frequency_hz: 917_200_000,
                        min_dr: 0,
                        max_dr: 5,
                    },
                ],
                ..RegionConfig::default()
            },
        )
        .unwrap();
        assert_eq!(r.uplink_channel_index(917_200_000), Some(3));
        let cf = CfList::decode(&r.join_accept_cf_list().unwrap()).unwrap();
        assert_eq!(cf, CfList::Frequencies([917_000_000, 917_200_000, 0, 0, 0]));
        assert!(matches!(
            As923::new(
                As923Group::Group1,
                &RegionConfig {
                    extra_channels: vec![ChannelConfig {
                        frequency_hz: 868_100_000,
                        min_dr: 0,
                        max_dr: 5
                    }],
                    ..RegionConfig::default()
                }
            ),
            Err(RegionError::FrequencyOutOfBand { .. })
        ));
    }
}
