//! US902-928 (RP002-1.0.3 §2.5; RP001-1.1revB §2.3).

use crate::datarate::{DataRateEntry, Direction, LrFhssCodingRate, US_AU_DOWNLINK_DR8_13};
use crate::table::{
    frequency_grid, BandTable, ChannelGrid, ChannelLayout, ClassB, DwellTime, MaxPayloadRow,
    Rx1DataRate, Rx1Frequency, US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13,
};
use crate::{Band, BandPlan, ChMaskScheme, DwellTimeLimits, RegParamsRevision, RegionName};

/// The US915 band plan.
pub type Us915 = Band<Us915Plan>;

/// Selects the US915 table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Us915Plan;

impl BandPlan for Us915Plan {
    fn table(self) -> &'static BandTable {
        &TABLE
    }
}

/// The eight 500 kHz downlink channels 923.3 + 0.6·i MHz (RP002-1.0.3 §2.5.2),
/// shared by US915 and AU915 for RX1 and Class B.
pub(crate) const DOWNLINK_CHANNELS_HZ: [u32; 8] = frequency_grid(923_300_000, 600_000);

/// RX1 on the 500 kHz downlink channel (uplink channel mod 8); US915 and AU915.
pub(crate) const RX1_FREQUENCY: Rx1Frequency = Rx1Frequency::Grid {
    first_hz: DOWNLINK_CHANNELS_HZ[0],
    step_hz: 600_000,
    count: 8,
};

/// Beacon and ping slots hop over the eight downlink channels at DR8
/// (RP002-1.0.3 §2.5.9, §2.8.9).
pub(crate) const CLASS_B: ClassB = ClassB {
    beacon_dr: 8,
    ping_slot_dr: 8,
    beacon_frequencies_hz: &DOWNLINK_CHANNELS_HZ,
    ping_slot_frequencies_hz: &DOWNLINK_CHANNELS_HZ,
};

pub(crate) static TABLE: BandTable = BandTable {
    name: RegionName::Us915,
    band_hz: (902_000_000, 928_000_000),
    // 64 × 125 kHz 902.3 + 0.2·i MHz, then 8 × 500 kHz 903.0 + 1.6·i MHz.
    channels: ChannelLayout::Fixed {
        scheme: ChMaskScheme::Fixed72,
        grids: &[
            ChannelGrid {
                first_hz: 902_300_000,
                step_hz: 200_000,
                count: 64,
                min_dr: 0,
                max_dr: 3,
            },
            ChannelGrid {
                first_hz: 903_000_000,
                step_hz: 1_600_000,
                count: 8,
                min_dr: 4,
                max_dr: 6,
            },
        ],
    },
    // RP002-1.0.3 Table 2.5.3: uplink DR0–DR6 (DR5/DR6 LR-FHSS), downlink DR8–DR13.
    data_rates: &[
        DataRateEntry::lora(0, 10, 125_000, 980, Direction::Uplink),
        DataRateEntry::lora(1, 9, 125_000, 1_760, Direction::Uplink),
        DataRateEntry::lora(2, 8, 125_000, 3_125, Direction::Uplink),
        DataRateEntry::lora(3, 7, 125_000, 5_470, Direction::Uplink),
        DataRateEntry::lora(4, 8, 500_000, 12_500, Direction::Uplink),
        DataRateEntry::lr_fhss(5, LrFhssCodingRate::OneThird, 1_523_000, 162),
        DataRateEntry::lr_fhss(6, LrFhssCodingRate::TwoThirds, 1_523_000, 325),
        US_AU_DOWNLINK_DR8_13[0],
        US_AU_DOWNLINK_DR8_13[1],
        US_AU_DOWNLINK_DR8_13[2],
        US_AU_DOWNLINK_DR8_13[3],
        US_AU_DOWNLINK_DR8_13[4],
        US_AU_DOWNLINK_DR8_13[5],
    ],
    max_eirp_dbm: 30.0,
    // RP001-1.0.2 defined TXPower 0..=10 only.
    max_tx_power_index: &[
        (RegParamsRevision::Rp001V1_0_2, 10),
        (RegParamsRevision::Rp001V1_0_3RevA, 14),
    ],
    // The FCC 400 ms uplink dwell limit is built into these sizes; LR-FHSS
    // exists from RP002-1.0.2 on.
    max_payloads: &[
        MaxPayloadRow::new(0, 19),
        MaxPayloadRow::new(1, 61),
        MaxPayloadRow::new(2, 133),
        MaxPayloadRow::new(3, 250),
        MaxPayloadRow::new(4, 250),
        MaxPayloadRow::new(5, 58).since(RegParamsRevision::Rp002V1_0_2),
        MaxPayloadRow::new(6, 133).since(RegParamsRevision::Rp002V1_0_2),
        US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13[0],
        US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13[1],
        US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13[2],
        US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13[3],
        US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13[4],
        US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13[5],
    ],
    // RP002-1.0.3 Table 2.5.7: RX1 DR by uplink DR and RX1DROffset 0–3.
    rx1_data_rate: Rx1DataRate::Table(&[
        (0, &[10, 9, 8, 8]),
        (1, &[11, 10, 9, 8]),
        (2, &[12, 11, 10, 9]),
        (3, &[13, 12, 11, 10]),
        (4, &[13, 13, 12, 11]),
        (5, &[10, 9, 8, 8]),
        (6, &[11, 10, 9, 8]),
    ]),
    rx1_data_rate_rp001: None,
    rx1_frequency: RX1_FREQUENCY,
    rx2: (DOWNLINK_CHANNELS_HZ[0], 8),
    max_adr_data_rate: 3,
    // FCC 15.247 limits every uplink to 400 ms.
    dwell_time: DwellTime::Fixed(DwellTimeLimits {
        uplink_400ms: true,
        downlink_400ms: false,
    }),
    duty_cycle_sub_bands: &[],
    downlink_eirp_dbm: 26.0,
    class_b: CLASS_B,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CfList, LinkAdrChMask, Modulation, Region, RegionConfig, RegionError};

    fn us915(sub_bands: &[u8]) -> Us915 {
        Us915::new(&RegionConfig {
            enabled_sub_bands: sub_bands.to_vec(),
            ..RegionConfig::default()
        })
        .unwrap()
    }

    fn cm(ch_mask_cntl: u8, ch_mask: u16) -> LinkAdrChMask {
        LinkAdrChMask {
            ch_mask_cntl,
            ch_mask,
        }
    }

    #[test]
    fn channel_grid_rp002_2_5_2() {
        let r = us915(&[]);
        let ch = r.channel_plan().channels();
        assert_eq!(ch.len(), 72);
        assert_eq!(ch[0].frequency_hz, 902_300_000);
        assert_eq!(ch[63].frequency_hz, 914_900_000);
        assert_eq!(ch[64].frequency_hz, 903_000_000);
        assert_eq!(ch[71].frequency_hz, 914_200_000);
        assert_eq!((ch[8].min_dr, ch[8].max_dr), (0, 3));
        assert_eq!(ch[65].min_dr, 4);
        assert_eq!(r.uplink_channel_index(903_900_000), Some(8));
        assert_eq!(r.uplink_channel_index(904_600_000), Some(65));
        assert_eq!(r.enabled_uplink_channels().len(), 72);
    }

    #[test]
    fn data_rates_rp002_2_5_3() {
        let r = us915(&[]);
        assert_eq!(
            r.data_rate(0).unwrap().modulation,
            Modulation::lora(10, 125_000)
        );
        assert_eq!(
            r.data_rate(4).unwrap().modulation,
            Modulation::lora(8, 500_000)
        );
        assert_eq!(
            r.data_rate(8).unwrap().modulation,
            Modulation::lora(12, 500_000)
        );
        assert_eq!(
            r.data_rate(13).unwrap().modulation,
            Modulation::lora(7, 500_000)
        );
        assert_eq!(r.data_rate(7), None);
        // SF8BW500 is DR4 on the uplink and DR12 on the downlink.
        assert_eq!(
            r.data_rate_index(&Modulation::lora(8, 500_000), true),
            Some(4)
        );
        assert_eq!(
            r.data_rate_index(&Modulation::lora(8, 500_000), false),
            Some(12)
        );
        assert_eq!(
            r.data_rate_index(&Modulation::lora(12, 125_000), true),
            None
        );
        assert_eq!(r.required_snr_db(0), Some(-15.0));
        assert_eq!(r.required_snr_db(8), Some(-20.0));
    }

    #[test]
    fn max_payload_rp002_2_5_6() {
        let r = us915(&[]);
        let rev = RegParamsRevision::Rp002V1_0_3;
        let m = |dr| r.max_payload(dr, rev, false).map(|p| (p.m, p.n));
        assert_eq!(m(0), Some((19, 11)));
        assert_eq!(m(1), Some((61, 53)));
        assert_eq!(m(2), Some((133, 125)));
        assert_eq!(m(3), Some((250, 242)));
        assert_eq!(m(4), Some((250, 242)));
        assert_eq!(m(5), Some((58, 50)));
        assert_eq!(m(6), Some((133, 125)));
        assert_eq!(m(8), Some((61, 53)));
        assert_eq!(m(9), Some((137, 129)));
        assert_eq!(m(13), Some((250, 242)));
        assert_eq!(
            r.max_payload(5, RegParamsRevision::Rp001V1_0_2RevB, false),
            None
        );
    }

    #[test]
    fn rx1_rp002_2_5_7() {
        let r = us915(&[]);
        assert_eq!(r.rx1_data_rate(0, 0, false), Some(10));
        assert_eq!(r.rx1_data_rate(3, 0, false), Some(13));
        assert_eq!(r.rx1_data_rate(4, 0, false), Some(13));
        assert_eq!(r.rx1_data_rate(2, 3, false), Some(9));
        assert_eq!(r.rx1_data_rate(5, 0, false), Some(10));
        assert_eq!(r.rx1_data_rate(0, 4, false), None);
        assert_eq!(r.rx1_data_rate(8, 0, false), None);
        // 923.3 + 0.6·(channel mod 8) MHz.
        assert_eq!(r.rx1_frequency_hz(0, 902_300_000), Some(923_300_000));
        assert_eq!(r.rx1_frequency_hz(8, 903_900_000), Some(923_300_000));
        assert_eq!(r.rx1_frequency_hz(13, 904_900_000), Some(926_300_000));
        assert_eq!(r.rx1_frequency_hz(65, 904_600_000), Some(923_900_000));
        assert_eq!(r.rx1_frequency_hz(72, 0), None);
        assert_eq!(r.rx2_default(), (923_300_000, 8));
    }

    #[test]
    fn tx_power_rp002_2_5_3() {
        let r = us915(&[]);
        assert_eq!(r.tx_power_eirp_dbm(0), Some(30.0));
        assert_eq!(r.tx_power_eirp_dbm(14), Some(2.0));
        assert_eq!(r.tx_power_eirp_dbm(15), None);
        assert_eq!(
            r.max_tx_power_index_for_revision(RegParamsRevision::Rp001V1_0_2RevB),
            10
        );
        assert_eq!(
            r.max_tx_power_index_for_revision(RegParamsRevision::Rp002V1_0_3),
            14
        );
        assert_eq!(r.max_adr_data_rate(), 3);
    }

    #[test]
    fn sub_band_2_config_and_masks_rp002_2_5_5() {
        let r = us915(&[2]);
        let mut expected: Vec<u8> = (8..16).collect();
        expected.push(65);
        assert_eq!(r.enabled_uplink_channels(), expected);
        let all: Vec<u8> = (0..72).collect();
        // ChMaskCntl 7 (all 125 kHz off, 500 kHz channel 65 on), then block 0 with 8–15.
        let masks = r.link_adr_ch_masks(&all);
        assert_eq!(masks, vec![cm(7, 0x0002), cm(0, 0xFF00)]);
        assert_eq!(
            r.channel_plan().apply_ch_masks(&all, &masks),
            Ok(expected.clone())
        );
        // Already there: nothing to send.
        assert!(r.link_adr_ch_masks(&expected).is_empty());
        // From sub-band 1 only the two changed blocks are sent.
        let sb1: Vec<u8> = (0..8).chain([64]).collect();
        let masks = r.link_adr_ch_masks(&sb1);
        assert_eq!(masks, vec![cm(0, 0xFF00), cm(4, 0x0002)]);
        assert_eq!(r.channel_plan().apply_ch_masks(&sb1, &masks), Ok(expected));
    }

    #[test]
    fn all_125khz_channels_use_ch_mask_cntl_6() {
        let r = us915(&[]);
        let plan = r.channel_plan();
        let mut target: Vec<u8> = (0..64).collect();
        target.push(70);
        assert_eq!(plan.ch_masks_for(&target), Ok(vec![cm(6, 1 << 6)]));
        assert_eq!(r.apply_ch_mask(&[8], 6, 1 << 6), Ok(target.clone()));
        // Most channels on: ChMaskCntl 6, then only the block that differs.
        let mostly: Vec<u8> = (0..72).filter(|&i| i != 20).collect();
        let masks = plan.ch_masks_for(&mostly).unwrap();
        assert_eq!(masks, vec![cm(6, 0xFF), cm(1, 0xFFEF)]);
        assert_eq!(plan.apply_ch_masks(&[], &masks), Ok(mostly));
    }

    #[test]
    fn ch_mask_cntl_5_switches_banks_rp002_2_5_5() {
        let r = us915(&[]);
        // Bits 1 and 3: channels 8–15, 24–31 and the 500 kHz channels 65 and 67.
        let got = r.apply_ch_mask(&[0, 1, 2], 5, 0b1010).unwrap();
        let expected: Vec<u8> = (8..16).chain(24..32).chain([65, 67]).collect();
        assert_eq!(got, expected);
        assert!(matches!(
            r.apply_ch_mask(&[0], 5, 0x100),
            Err(RegionError::RfuChMaskBits { .. })
        ));
        assert!(matches!(
            r.apply_ch_mask(&[0], 4, 0x100),
            Err(RegionError::RfuChMaskBits { .. })
        ));
    }

    #[test]
    fn ch_mask_round_trip_for_every_single_sub_band() {
        for sb in 1..=8u8 {
            let r = us915(&[sb]);
            let target = r.enabled_uplink_channels();
            for start in [Vec::new(), (0..72).collect::<Vec<u8>>(), vec![3, 70]] {
                let masks = r.link_adr_ch_masks(&start);
                assert_eq!(
                    r.channel_plan().apply_ch_masks(&start, &masks),
                    Ok(target.clone()),
                    "sb {sb}"
                );
            }
        }
    }

    #[test]
    fn cf_list_type_1_rp002_2_5_4() {
        let r = us915(&[2]);
        let bytes = r.join_accept_cf_list().unwrap();
        assert_eq!(bytes[15], 1);
        assert_eq!(
            CfList::decode(&bytes),
            Ok(CfList::ChannelMasks([0xFF00, 0, 0, 0, 0x0002, 0]))
        );
        let all = us915(&[]).join_accept_cf_list().unwrap();
        assert_eq!(
            CfList::decode(&all),
            Ok(CfList::ChannelMasks([
                0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0x00FF, 0
            ]))
        );
    }

    #[test]
    fn class_b_hops_over_eight_channels_rp002_2_5_9() {
        let r = us915(&[]);
        assert_eq!(r.class_b().beacon_dr, 8);
        assert_eq!(r.beacon_frequency_hz(0), 923_300_000);
        assert_eq!(r.beacon_frequency_hz(128), 923_900_000);
        assert_eq!(r.beacon_frequency_hz(128 * 9), 923_900_000);
        assert_eq!(r.ping_slot_frequency_hz(3, 128), 925_700_000);
    }

    #[test]
    fn invalid_configuration_is_rejected() {
        let bad_sb = Us915::new(&RegionConfig {
            enabled_sub_bands: vec![9],
            ..RegionConfig::default()
        });
        assert_eq!(
            bad_sb.err(),
            Some(RegionError::InvalidSubBand {
                region: RegionName::Us915,
                sub_band: 9,
                max: 8
            })
        );
        let zero = Us915::new(&RegionConfig {
            enabled_sub_bands: vec![0],
            ..RegionConfig::default()
        });
        assert!(matches!(zero, Err(RegionError::InvalidSubBand { .. })));
        let extra = Us915::new(&RegionConfig {
            extra_channels: vec![crate::ChannelConfig {
                frequency_hz: 903_000_000,
                min_dr: 0,
                max_dr: 3,
            }],
            ..RegionConfig::default()
        });
        assert!(matches!(
            extra,
            Err(RegionError::ExtraChannelsNotSupported { .. })
        ));
        let ch = Us915::new(&RegionConfig {
            enabled_uplink_channels: vec![72],
            ..RegionConfig::default()
        });
        assert_eq!(
            ch.err(),
            Some(RegionError::ChannelNotDefined {
                index: 72,
                count: 72
            })
        );
        // Explicit channels add to sub-bands.
        let mixed = Us915::new(&RegionConfig {
            enabled_sub_bands: vec![2],
            enabled_uplink_channels: vec![0],
            ..RegionConfig::default()
        })
        .unwrap();
        assert_eq!(mixed.enabled_uplink_channels()[..2], [0, 8]);
    }
}
