//! EU863-870 (RP002-1.0.3 §2.4; RP001-1.1revB §2.2).

use crate::datarate::{DataRateEntry, LrFhssCodingRate, EU_STYLE_DR0_7};
use crate::table::{
    BandTable, ChannelLayout, ClassB, DwellTime, MaxPayloadRow, Rx1DataRate, Rx1Frequency,
    EU_STYLE_MAX_PAYLOADS_DR0_7,
};
use crate::{Band, BandPlan, Channel, RegParamsRevision, RegionName, SubBand};

/// The EU868 band plan.
pub type Eu868 = Band<Eu868Plan>;

/// Selects the EU868 table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Eu868Plan;

impl BandPlan for Eu868Plan {
    fn table(self) -> &'static BandTable {
        &TABLE
    }
}

const RX2_FREQUENCY_HZ: u32 = 869_525_000;

pub(crate) static TABLE: BandTable = BandTable {
    name: RegionName::Eu868,
    band_hz: (863_000_000, 870_000_000),
    // The three join channels every EU868 device knows (RP002-1.0.3 §2.4.2).
    channels: ChannelLayout::Dynamic {
        defaults: &[
            Channel::new(868_100_000, 0, 5),
            Channel::new(868_300_000, 0, 5),
            Channel::new(868_500_000, 0, 5),
        ],
    },
    // DR0–DR7 plus the LR-FHSS data rates DR8–DR11 (RP002-1.0.3 Table 2.4.3).
    data_rates: &[
        EU_STYLE_DR0_7[0],
        EU_STYLE_DR0_7[1],
        EU_STYLE_DR0_7[2],
        EU_STYLE_DR0_7[3],
        EU_STYLE_DR0_7[4],
        EU_STYLE_DR0_7[5],
        EU_STYLE_DR0_7[6],
        EU_STYLE_DR0_7[7],
        DataRateEntry::lr_fhss(8, LrFhssCodingRate::OneThird, 137_000, 162),
        DataRateEntry::lr_fhss(9, LrFhssCodingRate::TwoThirds, 137_000, 325),
        DataRateEntry::lr_fhss(10, LrFhssCodingRate::OneThird, 336_000, 162),
        DataRateEntry::lr_fhss(11, LrFhssCodingRate::TwoThirds, 336_000, 325),
    ],
    max_eirp_dbm: 16.0,
    max_tx_power_index: &[(RegParamsRevision::Rp001V1_0_2, 7)],
    // LR-FHSS exists from RP002-1.0.2 on.
    max_payloads: &[
        EU_STYLE_MAX_PAYLOADS_DR0_7[0],
        EU_STYLE_MAX_PAYLOADS_DR0_7[1],
        EU_STYLE_MAX_PAYLOADS_DR0_7[2],
        EU_STYLE_MAX_PAYLOADS_DR0_7[3],
        EU_STYLE_MAX_PAYLOADS_DR0_7[4],
        EU_STYLE_MAX_PAYLOADS_DR0_7[5],
        EU_STYLE_MAX_PAYLOADS_DR0_7[6],
        EU_STYLE_MAX_PAYLOADS_DR0_7[7],
        MaxPayloadRow::new(8, 58).since(RegParamsRevision::Rp002V1_0_2),
        MaxPayloadRow::new(9, 123).since(RegParamsRevision::Rp002V1_0_2),
        MaxPayloadRow::new(10, 58).since(RegParamsRevision::Rp002V1_0_2),
        MaxPayloadRow::new(11, 123).since(RegParamsRevision::Rp002V1_0_2),
    ],
    // LR-FHSS uplinks are answered as if the uplink were DR1 (CR 1/3) or DR2 (CR 2/3).
    rx1_data_rate: Rx1DataRate::Subtract {
        answer_as: &[(8, 1), (9, 2), (10, 1), (11, 2)],
    },
    rx1_data_rate_rp001: None,
    rx1_frequency: Rx1Frequency::Uplink,
    rx2: (RX2_FREQUENCY_HZ, 0),
    max_adr_data_rate: 5,
    dwell_time: DwellTime::None,
    // ETSI EN 300 220 sub-bands (h1.3 … h1.7) with their duty cycle and power limits.
    duty_cycle_sub_bands: &[
        SubBand {
            min_frequency_hz: 863_000_000,
            max_frequency_hz: 865_000_000,
            duty_cycle_percent: 0.1,
            max_eirp_dbm: 16.0,
        },
        SubBand {
            min_frequency_hz: 865_000_000,
            max_frequency_hz: 868_000_000,
            duty_cycle_percent: 1.0,
            max_eirp_dbm: 16.0,
        },
        SubBand {
            min_frequency_hz: 868_000_000,
            max_frequency_hz: 868_600_000,
            duty_cycle_percent: 1.0,
            max_eirp_dbm: 16.0,
        },
        SubBand {
            min_frequency_hz: 868_700_000,
            max_frequency_hz: 869_200_000,
            duty_cycle_percent: 0.1,
            max_eirp_dbm: 16.0,
        },
        SubBand {
            min_frequency_hz: 869_400_000,
            max_frequency_hz: 869_650_000,
            duty_cycle_percent: 10.0,
            max_eirp_dbm: 29.0,
        },
        SubBand {
            min_frequency_hz: 869_700_000,
            max_frequency_hz: 870_000_000,
            duty_cycle_percent: 1.0,
            max_eirp_dbm: 16.0,
        },
    ],
    downlink_eirp_dbm: 16.0,
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
    use crate::{
        CfList, ChannelConfig, LinkAdrChMask, MaxPayload, Modulation, Region, RegionConfig,
        RegionError,
    };

    fn eu868() -> Eu868 {
        Eu868::new(&RegionConfig::default()).unwrap()
    }

    fn with_extra(extra: &[(u32, u8, u8)]) -> Result<Eu868, RegionError> {
        Eu868::new(&RegionConfig {
            extra_channels: extra
                .iter()
                .map(|&(frequency_hz, min_dr, max_dr)| ChannelConfig {
                    frequency_hz,
                    min_dr,
                    max_dr,
                })
                .collect(),
            ..RegionConfig::default()
        })
    }

    #[test]
    fn data_rate_table_rp002_2_4_3() {
        let r = eu868();
        assert_eq!(
            r.data_rate(0).unwrap().modulation,
            Modulation::lora(12, 125_000)
        );
        assert_eq!(
            r.data_rate(5).unwrap().modulation,
            Modulation::lora(7, 125_000)
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
        assert_eq!(r.data_rate(0).unwrap().bit_rate_bps, 250);
        assert_eq!(r.data_rate(6).unwrap().bit_rate_bps, 11_000);
        assert_eq!(
            r.data_rate(10).unwrap().modulation,
            Modulation::LrFhss {
                coding_rate: LrFhssCodingRate::OneThird,
                occupied_channel_width_hz: 336_000
            }
        );
        assert_eq!(r.data_rate(12), None);
        assert_eq!(
            r.data_rate_index(&Modulation::lora(7, 125_000), true),
            Some(5)
        );
        assert_eq!(
            r.data_rate_index(&Modulation::lora(7, 250_000), false),
            Some(6)
        );
        // LR-FHSS is uplink only.
        let lr = r.data_rate(8).unwrap().modulation;
        assert_eq!(r.data_rate_index(&lr, true), Some(8));
        assert_eq!(r.data_rate_index(&lr, false), None);
        assert_eq!(r.required_snr_db(0), Some(-20.0));
        assert_eq!(r.required_snr_db(5), Some(-7.5));
        assert_eq!(r.required_snr_db(7), None);
    }

    #[test]
    fn default_channels_rp002_2_4_2() {
        let r = eu868();
        let freqs: Vec<u32> = r
            .channel_plan()
            .channels()
            .iter()
            .map(|c| c.frequency_hz)
            .collect();
        assert_eq!(freqs, vec![868_100_000, 868_300_000, 868_500_000]);
        assert_eq!(r.enabled_uplink_channels(), vec![0, 1, 2]);
        assert_eq!(r.uplink_channel_index(868_300_000), Some(1));
        assert_eq!(r.uplink_channel_index(868_700_000), None);
    }

    #[test]
    fn max_payload_rp002_2_4_6_and_rp001() {
        let r = eu868();
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
        assert_eq!(
            r.max_payload(7, rev, false),
            Some(MaxPayload { m: 250, n: 242 })
        );
        assert_eq!(
            r.max_payload(8, rev, false),
            Some(MaxPayload { m: 58, n: 50 })
        );
        assert_eq!(
            r.max_payload(11, rev, false),
            Some(MaxPayload { m: 123, n: 115 })
        );
        // LR-FHSS did not exist before RP002-1.0.2.
        assert_eq!(
            r.max_payload(8, RegParamsRevision::Rp001V1_0_2RevB, false),
            None
        );
        assert_eq!(
            r.max_payload(4, RegParamsRevision::Rp001V1_0_2RevB, false),
            Some(MaxPayload { m: 250, n: 242 })
        );
    }

    #[test]
    fn rx1_rp002_2_4_7() {
        let r = eu868();
        assert_eq!(r.rx1_data_rate(5, 0, false), Some(5));
        assert_eq!(r.rx1_data_rate(5, 2, false), Some(3));
        assert_eq!(r.rx1_data_rate(1, 3, false), Some(0));
        assert_eq!(r.rx1_data_rate(7, 5, false), Some(2));
        assert_eq!(r.rx1_data_rate(9, 1, false), Some(1));
        assert_eq!(r.rx1_data_rate(5, 6, false), None);
        assert_eq!(r.rx1_frequency_hz(1, 868_300_000), Some(868_300_000));
        assert_eq!(r.rx2_default(), (869_525_000, 0));
    }

    #[test]
    fn tx_power_rp002_2_4_3() {
        let r = eu868();
        assert_eq!(r.max_eirp_dbm(), 16.0);
        assert_eq!(r.tx_power_eirp_dbm(1), Some(14.0));
        assert_eq!(r.tx_power_eirp_dbm(7), Some(2.0));
        assert_eq!(r.tx_power_eirp_dbm(8), None);
        assert_eq!(r.downlink_tx_power_eirp_dbm(869_525_000), 29.0);
        assert_eq!(r.downlink_tx_power_eirp_dbm(868_100_000), 16.0);
    }

    #[test]
    fn duty_cycle_sub_bands_etsi() {
        let r = eu868();
        let g = r
            .duty_cycle_sub_bands()
            .iter()
            .find(|sb| (sb.min_frequency_hz..=sb.max_frequency_hz).contains(&868_100_000))
            .unwrap();
        assert_eq!(g.duty_cycle_percent, 1.0);
        let p = r
            .duty_cycle_sub_bands()
            .iter()
            .find(|sb| (sb.min_frequency_hz..=sb.max_frequency_hz).contains(&869_525_000))
            .unwrap();
        assert_eq!(p.duty_cycle_percent, 10.0);
    }

    #[test]
    fn class_b_rp002_2_4_9() {
        let r = eu868();
        assert_eq!(r.class_b().beacon_dr, 3);
        assert_eq!(r.beacon_frequency_hz(1_000_000), 869_525_000);
        assert_eq!(
            r.ping_slot_frequency_hz(0x2601_1234, 1_000_000),
            869_525_000
        );
    }

    #[test]
    fn extra_channels_and_cf_list_round_trip() {
        let r = with_extra(&[
            (867_100_000, 0, 5),
            (867_300_000, 0, 5),
            (867_500_000, 0, 5),
            (867_700_000, 0, 5),
            (867_900_000, 0, 5),
            (868_300_000, 6, 6),
            (868_800_000, 7, 7),
        ])
        .unwrap();
        assert_eq!(r.enabled_uplink_channels(), (0..10).collect::<Vec<u8>>());
        assert_eq!(r.uplink_channel_index(867_900_000), Some(7));
        // The default channel wins on a shared frequency; the DR tells them apart.
        assert_eq!(r.uplink_channel_index(868_300_000), Some(1));
        assert_eq!(
            r.channel_plan().channel_index_for_dr(868_300_000, 6),
            Some(8)
        );
        let bytes = r.join_accept_cf_list().unwrap();
        assert_eq!(
            CfList::decode(&bytes),
            Ok(CfList::Frequencies([
                867_100_000,
                867_300_000,
                867_500_000,
                867_700_000,
                867_900_000
            ]))
        );
        assert_eq!(r.enabled_uplink_data_rates(), (0..=7).collect::<Vec<u8>>());
    }

    #[test]
    fn cf_list_leaves_out_channels_with_other_dr_ranges() {
        let r = with_extra(&[(867_100_000, 0, 5), (868_300_000, 6, 6)]).unwrap();
        let bytes = r.join_accept_cf_list().unwrap();
        assert_eq!(
            CfList::decode(&bytes),
            Ok(CfList::Frequencies([867_100_000, 0, 0, 0, 0]))
        );
        assert_eq!(eu868().join_accept_cf_list(), None);
    }

    #[test]
    fn invalid_extra_channels_are_typed_errors() {
        assert!(matches!(
            with_extra(&[(902_300_000, 0, 5)]),
            Err(RegionError::FrequencyOutOfBand { .. })
        ));
        assert!(matches!(
            with_extra(&[(867_100_050, 0, 5)]),
            Err(RegionError::FrequencyNotMultipleOf100Hz { .. })
        ));
        assert_eq!(
            with_extra(&[(867_100_000, 0, 12)]).err(),
            Some(RegionError::InvalidDataRate {
                region: RegionName::Eu868,
                dr: 12
            })
        );
        assert!(matches!(
            with_extra(&[(867_100_000, 5, 0)]),
            Err(RegionError::InvalidDataRateRange { .. })
        ));
        assert!(matches!(
            with_extra(&[(868_100_000, 0, 5)]),
            Err(RegionError::DuplicateChannel { .. })
        ));
        let many: Vec<(u32, u8, u8)> = (0..14).map(|i| (863_100_000 + i * 200_000, 0, 5)).collect();
        assert_eq!(
            with_extra(&many).err(),
            Some(RegionError::TooManyChannels {
                region: RegionName::Eu868,
                count: 17,
                max: 16
            })
        );
        let sub = Eu868::new(&RegionConfig {
            enabled_sub_bands: vec![1],
            ..RegionConfig::default()
        });
        assert!(matches!(sub, Err(RegionError::SubBandsNotSupported { .. })));
        let dwell = Eu868::new(&RegionConfig {
            uplink_dwell_time_400ms: Some(true),
            ..RegionConfig::default()
        });
        assert!(matches!(
            dwell,
            Err(RegionError::DwellTimeNotApplicable { .. })
        ));
    }

    #[test]
    fn ch_mask_round_trip_rp002_2_4_5() {
        let r = with_extra(&[(867_100_000, 0, 5), (867_300_000, 0, 5)]).unwrap();
        // A device that knows the extra channels but has channel 1 switched off.
        let masks = r.link_adr_ch_masks(&[0, 2, 3, 4]);
        assert_eq!(
            masks,
            vec![LinkAdrChMask {
                ch_mask_cntl: 0,
                ch_mask: 0b1_1111
            }]
        );
        assert_eq!(
            r.channel_plan().apply_ch_masks(&[0, 2, 3, 4], &masks),
            Ok(vec![0, 1, 2, 3, 4])
        );
        // Nothing to do when the device already matches.
        assert!(r.link_adr_ch_masks(&[0, 1, 2, 3, 4]).is_empty());
        // Extra channels unknown to the device are not enabled by LinkADRReq.
        assert!(r.link_adr_ch_masks(&[0, 1, 2]).is_empty());
        // ChMaskCntl 6 switches every defined channel on.
        assert_eq!(r.apply_ch_mask(&[0], 6, 0), Ok(vec![0, 1, 2, 3, 4]));
        // Enabling an undefined channel or using an RFU ChMaskCntl is refused.
        assert_eq!(
            r.apply_ch_mask(&[0], 0, 1 << 9),
            Err(RegionError::ChannelNotDefined { index: 9, count: 5 })
        );
        assert!(matches!(
            r.apply_ch_mask(&[0], 5, 1),
            Err(RegionError::InvalidChMaskCntl { .. })
        ));
        assert_eq!(
            r.channel_plan().apply_ch_masks(
                &[0],
                &[LinkAdrChMask {
                    ch_mask_cntl: 0,
                    ch_mask: 0
                }]
            ),
            Err(RegionError::NoChannelsEnabled)
        );
    }
}
