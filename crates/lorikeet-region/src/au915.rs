//! AU915-928 (RP002-1.0.3 §2.8; RP001-1.1revB §2.6).

use crate::datarate::{
    DataRateEntry, Direction, LrFhssCodingRate, MaxPayload, US_AU_DOWNLINK_DR8_13,
};
use crate::region::{common_accessors, Common};
use crate::us915::{class_b_us_au, downlink_channel_hz, grid_72, sub_bands_72};
use crate::{
    ChMaskScheme, ChannelPlan, DwellTimeLimits, RegParamsRevision, Region, RegionConfig,
    RegionError, RegionName, SubBand,
};

const BAND_HZ: (u32, u32) = (915_000_000, 928_000_000);
const RX2_FREQUENCY_HZ: u32 = 923_300_000;

/// RP002-1.0.3 Table 2.8.3: uplink DR0–DR7 (DR7 LR-FHSS), downlink DR8–DR13.
const DATA_RATES: [DataRateEntry; 14] = [
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
];

/// RP002-1.0.3 Table 2.8.7: RX1 DR by uplink DR and RX1DROffset 0–5.
const RX1_DR_TABLE: [[u8; 6]; 8] = [
    [8, 8, 8, 8, 8, 8],
    [9, 8, 8, 8, 8, 8],
    [10, 9, 8, 8, 8, 8],
    [11, 10, 9, 8, 8, 8],
    [12, 11, 10, 9, 8, 8],
    [13, 12, 11, 10, 9, 8],
    [13, 13, 12, 11, 10, 9],
    [9, 8, 8, 8, 8, 8],
];

/// The AU915 band plan.
#[derive(Debug, Clone)]
pub struct Au915 {
    common: Common,
}

impl Au915 {
    /// Builds AU915 with the operator's enabled sub-bands / channels. Devices
    /// boot with the uplink dwell-time limit on (RP002-1.0.3 §2.8.8).
    pub fn new(config: &RegionConfig) -> Result<Self, RegionError> {
        let name = RegionName::Au915;
        let channels = grid_72(915_200_000, (0, 5), 915_900_000, (6, 7));
        let plan = ChannelPlan::fixed(
            name,
            ChMaskScheme::Fixed72,
            channels,
            config,
            &sub_bands_72(),
        )?;
        let dwell = DwellTimeLimits {
            uplink_400ms: true,
            downlink_400ms: false,
        };
        Ok(Au915 {
            common: Common::new(name, plan, Some(dwell), config, class_b_us_au())?,
        })
    }
}

impl Region for Au915 {
    common_accessors!();

    fn name(&self) -> RegionName {
        RegionName::Au915
    }

    fn data_rates(&self) -> &[DataRateEntry] {
        &DATA_RATES
    }

    fn max_payload(&self, dr: u8, revision: RegParamsRevision, dwell: bool) -> Option<MaxPayload> {
        // Dwell-time dependent sizes and LR-FHSS arrived with RP002-1.0.2.
        let rp002_2 = revision >= RegParamsRevision::Rp002V1_0_2;
        let m = match (dr, rp002_2 && dwell) {
            (0 | 1, true) => return None,
            (2, true) => 19,
            (3, true) => 61,
            (4, true) => 133,
            (0..=2, false) => 59,
            (3, false) => 123,
            (4, false) | (5 | 6, _) => 250,
            (7, _) if rp002_2 => 58,
            (8, _) => 61,
            (9, _) => 137,
            (10..=13, _) => 250,
            _ => return None,
        };
        Some(MaxPayload::from_m(m))
    }

    fn rx1_data_rate(&self, uplink_dr: u8, rx1_dr_offset: u8, _dwell: bool) -> Option<u8> {
        RX1_DR_TABLE
            .get(usize::from(uplink_dr))?
            .get(usize::from(rx1_dr_offset))
            .copied()
    }

    fn rx1_frequency_hz(&self, uplink_channel_index: u8, _uplink_frequency_hz: u32) -> Option<u32> {
        (uplink_channel_index < 72).then(|| downlink_channel_hz(uplink_channel_index % 8))
    }

    fn rx2_default(&self) -> (u32, u8) {
        (RX2_FREQUENCY_HZ, 8)
    }

    fn max_eirp_dbm(&self) -> f32 {
        30.0
    }

    fn max_tx_power_index(&self) -> u8 {
        14
    }

    fn max_tx_power_index_for_revision(&self, revision: RegParamsRevision) -> u8 {
        if revision <= RegParamsRevision::Rp001V1_0_2RevB {
            10
        } else {
            14
        }
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
        true
    }

    fn downlink_tx_power_eirp_dbm(&self, _frequency_hz: u32) -> f32 {
        self.common.downlink_eirp_override_dbm.unwrap_or(27.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CfList, LinkAdrChMask, Modulation};

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
