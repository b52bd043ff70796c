//! AU915-928 (RP002-1.0.3 §2.8; RP001-1.1revB §2.6). Shares the 500 kHz
//! downlink channels and Class B hopping of US915.

use crate::datarate::{DataRateEntry, Direction, LrFhssCodingRate, US_AU_DOWNLINK_DR8_13};
use crate::table::{
    BandTable, ChannelGrid, ChannelLayout, DwellTime, MaxPayloadRow, Rx1DataRate,
    US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13,
};
use crate::us915::{CLASS_B, DOWNLINK_CHANNELS_HZ, RX1_FREQUENCY};
use crate::{Band, BandPlan, ChMaskScheme, DwellTimeLimits, RegParamsRevision, RegionName};

/// The AU915 band plan.
pub type Au915 = Band<Au915Plan>;

/// Selects the AU915 table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Au915Plan;

impl BandPlan for Au915Plan {
    fn table(self) -> &'static BandTable {
        &TABLE
    }
}

/// Dwell-time dependent sizes arrived with RP002-1.0.2 (RP001 had no dwell table).
const DWELL_TABLE: RegParamsRevision = RegParamsRevision::Rp002V1_0_2;

pub(crate) static TABLE: BandTable = BandTable {
    name: RegionName::Au915,
    band_hz: (915_000_000, 928_000_000),
    // 64 × 125 kHz 915.2 + 0.2·i MHz, then 8 × 500 kHz 915.9 + 1.6·i MHz.
    channels: ChannelLayout::Fixed {
        scheme: ChMaskScheme::Fixed72,
        grids: &[
            ChannelGrid {
                first_hz: 915_200_000,
                step_hz: 200_000,
                count: 64,
                min_dr: 0,
                max_dr: 5,
            },
            ChannelGrid {
                first_hz: 915_900_000,
                step_hz: 1_600_000,
                count: 8,
                min_dr: 6,
                max_dr: 7,
            },
        ],
    },
    // RP002-1.0.3 Table 2.8.3: uplink DR0–DR7 (DR7 LR-FHSS), downlink DR8–DR13.
    data_rates: &[
        DataRateEntry::lora(0, 12, 125_000, 250, Direction::Uplink),
        DataRateEntry::lora(1, 11, 125_000, 440, Direction::Uplink),
        DataRateEntry::lora(2, 10, 125_000, 980, Direction::Uplink),
        DataRateEntry::lora(3, 9, 125_000, 1_760, Direction::Uplink),
        DataRateEntry::lora(4, 8, 125_000, 3_125, Direction::Uplink),
        DataRateEntry::lora(5, 7, 125_000, 5_470, Direction::Uplink),
        DataRateEntry::lora(6, 8, 500_000, 12_500, Direction::Uplink),
        DataRateEntry::lr_fhss(7, LrFhssCodingRate::OneThird, 1_523_000, 162),
        US_AU_DOWNLINK_DR8_13[0],
        US_AU_DOWNLINK_DR8_13[1],
        US_AU_DOWNLINK_DR8_13[2],
        US_AU_DOWNLINK_DR8_13[3],
        US_AU_DOWNLINK_DR8_13[4],
        US_AU_DOWNLINK_DR8_13[5],
    ],
    max_eirp_dbm: 30.0,
    max_tx_power_index: &[
        (RegParamsRevision::Rp001V1_0_2, 10),
        (RegParamsRevision::Rp001V1_0_3RevA, 14),
    ],
    // LR-FHSS (DR7) exists from RP002-1.0.2 on.
    max_payloads: &[
        MaxPayloadRow::new(0, 59),
        MaxPayloadRow::new(0, 59).dwell(None).since(DWELL_TABLE),
        MaxPayloadRow::new(1, 59),
        MaxPayloadRow::new(1, 59).dwell(None).since(DWELL_TABLE),
        MaxPayloadRow::new(2, 59),
        MaxPayloadRow::new(2, 59).dwell(Some(19)).since(DWELL_TABLE),
        MaxPayloadRow::new(3, 123),
        MaxPayloadRow::new(3, 123)
            .dwell(Some(61))
            .since(DWELL_TABLE),
        MaxPayloadRow::new(4, 250),
        MaxPayloadRow::new(4, 250)
            .dwell(Some(133))
            .since(DWELL_TABLE),
        MaxPayloadRow::new(5, 250),
        MaxPayloadRow::new(6, 250),
        MaxPayloadRow::new(7, 58).since(RegParamsRevision::Rp002V1_0_2),
        US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13[0],
        US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13[1],
        US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13[2],
        US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13[3],
        US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13[4],
        US_AU_DOWNLINK_MAX_PAYLOADS_DR8_13[5],
    ],
    // RP002-1.0.3 Table 2.8.7: RX1 DR by uplink DR and RX1DROffset 0–5.
    rx1_data_rate: Rx1DataRate::Table(&[
        (0, &[8, 8, 8, 8, 8, 8]),
        (1, &[9, 8, 8, 8, 8, 8]),
        (2, &[10, 9, 8, 8, 8, 8]),
        (3, &[11, 10, 9, 8, 8, 8]),
        (4, &[12, 11, 10, 9, 8, 8]),
        (5, &[13, 12, 11, 10, 9, 8]),
        (6, &[13, 13, 12, 11, 10, 9]),
        (7, &[9, 8, 8, 8, 8, 8]),
    ]),
    rx1_data_rate_rp001: None,
    rx1_frequency: RX1_FREQUENCY,
    rx2: (DOWNLINK_CHANNELS_HZ[0], 8),
    max_adr_data_rate: 5,
    // Devices boot with the uplink dwell-time limit on (RP002-1.0.3 §2.8.8).
    dwell_time: DwellTime::Configurable(DwellTimeLimits {
        uplink_400ms: true,
        downlink_400ms: false,
    }),
    duty_cycle_sub_bands: &[],
    downlink_eirp_dbm: 27.0,
    class_b: CLASS_B,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CfList, LinkAdrChMask, MaxPayload, Modulation, Region, RegionConfig};

    fn au915(sub_bands: &[u8]) -> Au915 {
        Au915::new(&RegionConfig {
            enabled_sub_bands: sub_bands.to_vec(),
            ..RegionConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn channel_grid_rp002_2_8_2() {
        let r = au915(&[]);
        let ch = r.channel_plan().channels();
        assert_eq!(ch[0].frequency_hz, 915_200_000);
        assert_eq!(ch[63].frequency_hz, 927_800_000);
        assert_eq!(ch[64].frequency_hz, 915_900_000);
        assert_eq!(ch[71].frequency_hz, 927_100_000);
        assert_eq!((ch[0].min_dr, ch[0].max_dr), (0, 5));
        assert_eq!(r.uplink_channel_index(916_800_000), Some(8));
    }

    #[test]
    fn data_rates_rp002_2_8_3() {
        let r = au915(&[]);
        assert_eq!(
            r.data_rate(0).unwrap().modulation,
            Modulation::lora(12, 125_000)
        );
        assert_eq!(
            r.data_rate(6).unwrap().modulation,
            Modulation::lora(8, 500_000)
        );
        assert_eq!(
            r.data_rate_index(&Modulation::lora(8, 500_000), true),
            Some(6)
        );
        assert_eq!(
            r.data_rate_index(&Modulation::lora(8, 500_000), false),
            Some(12)
        );
        assert_eq!(
            r.data_rate_index(&Modulation::lora(12, 500_000), false),
            Some(8)
        );
        assert_eq!(r.required_snr_db(5), Some(-7.5));
    }

    #[test]
    fn max_payload_with_and_without_dwell_rp002_2_8_6() {
        let r = au915(&[]);
        let rev = RegParamsRevision::Rp002V1_0_3;
        assert_eq!(
            r.max_payload(0, rev, false),
            Some(MaxPayload { m: 59, n: 51 })
        );
        assert_eq!(r.max_payload(0, rev, true), None);
        assert_eq!(
            r.max_payload(2, rev, true),
            Some(MaxPayload { m: 19, n: 11 })
        );
        assert_eq!(
            r.max_payload(4, rev, true),
            Some(MaxPayload { m: 133, n: 125 })
        );
        assert_eq!(
            r.max_payload(4, rev, false),
            Some(MaxPayload { m: 250, n: 242 })
        );
        assert_eq!(
            r.max_payload(7, rev, false),
            Some(MaxPayload { m: 58, n: 50 })
        );
        assert_eq!(
            r.max_payload(8, rev, true),
            Some(MaxPayload { m: 61, n: 53 })
        );
        assert_eq!(
            r.max_payload(9, rev, false),
            Some(MaxPayload { m: 137, n: 129 })
        );
        // RP001 had no dwell-time table for AU915.
        let old = RegParamsRevision::Rp001V1_1RevB;
        assert_eq!(
            r.max_payload(0, old, true),
            Some(MaxPayload { m: 59, n: 51 })
        );
        assert_eq!(r.max_payload(7, old, false), None);
        assert_eq!(
            r.dwell_time(),
            DwellTimeLimits {
                uplink_400ms: true,
                downlink_400ms: false
            }
        );
        assert!(r.implements_tx_param_setup());
    }

    #[test]
    fn rx1_rp002_2_8_7() {
        let r = au915(&[]);
        assert_eq!(r.rx1_data_rate(0, 0, false), Some(8));
        assert_eq!(r.rx1_data_rate(5, 0, false), Some(13));
        assert_eq!(r.rx1_data_rate(6, 5, false), Some(9));
        assert_eq!(r.rx1_data_rate(7, 0, false), Some(9));
        assert_eq!(r.rx1_data_rate(2, 6, false), None);
        assert_eq!(r.rx1_frequency_hz(9, 917_000_000), Some(923_900_000));
        assert_eq!(r.rx2_default(), (923_300_000, 8));
    }

    #[test]
    fn tx_power_rp002_2_8_3() {
        let r = au915(&[]);
        assert_eq!(r.tx_power_eirp_dbm(0), Some(30.0));
        assert_eq!(r.tx_power_eirp_dbm(14), Some(2.0));
        assert_eq!(
            r.max_tx_power_index_for_revision(RegParamsRevision::Rp001V1_0_2RevB),
            10
        );
    }

    #[test]
    fn sub_band_2_masks_and_cf_list_rp002_2_8_4_and_2_8_5() {
        let r = au915(&[2]);
        let all: Vec<u8> = (0..72).collect();
        let masks = r.link_adr_ch_masks(&all);
        assert_eq!(
            masks,
            vec![
                LinkAdrChMask {
                    ch_mask_cntl: 7,
                    ch_mask: 0x0002
                },
                LinkAdrChMask {
                    ch_mask_cntl: 0,
                    ch_mask: 0xFF00
                }
            ]
        );
        assert_eq!(
            r.channel_plan().apply_ch_masks(&all, &masks),
            Ok(r.enabled_uplink_channels())
        );
        let cf = CfList::decode(&r.join_accept_cf_list().unwrap()).unwrap();
        assert_eq!(cf, CfList::ChannelMasks([0xFF00, 0, 0, 0, 0x0002, 0]));
    }

    #[test]
    fn class_b_rp002_2_8_9() {
        let r = au915(&[]);
        assert_eq!(r.class_b().ping_slot_dr, 8);
        assert_eq!(r.beacon_frequency_hz(128 * 7), 927_500_000);
    }
}
