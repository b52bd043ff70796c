//! US902-928 (RP002-1.0.3 §2.5; RP001-1.1revB §2.3).

use crate::datarate::{
    DataRateEntry, Direction, LrFhssCodingRate, MaxPayload, US_AU_DOWNLINK_DR8_13,
};
use crate::region::{common_accessors, Common};
use crate::{
    ChMaskScheme, Channel, ChannelPlan, ClassBDefaults, DwellTimeLimits, RegParamsRevision, Region,
    RegionConfig, RegionError, RegionName, SubBand,
};

const BAND_HZ: (u32, u32) = (902_000_000, 928_000_000);
const RX2_FREQUENCY_HZ: u32 = 923_300_000;

/// RP002-1.0.3 Table 2.5.3: uplink DR0–DR6 (DR5/DR6 LR-FHSS), downlink DR8–DR13.
const DATA_RATES: [DataRateEntry; 13] = [
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
];

/// RP002-1.0.3 Table 2.5.7: RX1 DR by uplink DR (rows) and RX1DROffset (columns).
const RX1_DR_TABLE: [[u8; 4]; 7] = [
    [10, 9, 8, 8],
    [11, 10, 9, 8],
    [12, 11, 10, 9],
    [13, 12, 11, 10],
    [13, 13, 12, 11],
    [10, 9, 8, 8],
    [11, 10, 9, 8],
];

/// 500 kHz downlink channel `i`: 923.3 + 0.6·i MHz (RP002-1.0.3 §2.5.2).
pub(crate) fn downlink_channel_hz(i: u8) -> u32 {
    RX2_FREQUENCY_HZ + 600_000 * u32::from(i % 8)
}

/// The 64 + 8 uplink channels of a US915/AU915-style grid.
pub(crate) fn grid_72(
    first_125_hz: u32,
    drs_125: (u8, u8),
    first_500_hz: u32,
    drs_500: (u8, u8),
) -> Vec<Channel> {
    let narrow = (0..64u32).map(|i| Channel::new(first_125_hz + 200_000 * i, drs_125.0, drs_125.1));
    let wide = (0..8u32).map(|i| Channel::new(first_500_hz + 1_600_000 * i, drs_500.0, drs_500.1));
    narrow.chain(wide).collect()
}

/// Sub-band `s` (1-based) = channels 8(s−1)..8(s−1)+7 and 64+(s−1).
pub(crate) fn sub_bands_72() -> Vec<Vec<u8>> {
    (0..8u8)
        .map(|s| (8 * s..8 * s + 8).chain(std::iter::once(64 + s)).collect())
        .collect()
}

/// Beacon and ping-slot hopping frequencies of US915/AU915 (RP002-1.0.3 §2.5.9).
pub(crate) fn class_b_us_au() -> ClassBDefaults {
    let freqs: Vec<u32> = (0..8).map(downlink_channel_hz).collect();
    ClassBDefaults {
        beacon_dr: 8,
        ping_slot_dr: 8,
        beacon_frequencies_hz: freqs.clone(),
        ping_slot_frequencies_hz: freqs,
    }
}

/// The US915 band plan.
#[derive(Debug, Clone)]
pub struct Us915 {
    common: Common,
}

impl Us915 {
    /// Builds US915 with the operator's enabled sub-bands / channels.
    pub fn new(config: &RegionConfig) -> Result<Self, RegionError> {
        let name = RegionName::Us915;
        let channels = grid_72(902_300_000, (0, 3), 903_000_000, (4, 6));
        let plan = ChannelPlan::fixed(
            name,
            ChMaskScheme::Fixed72,
            channels,
            config,
            &sub_bands_72(),
        )?;
        let mut common = Common::new(name, plan, None, config, class_b_us_au())?;
        // FCC 15.247 limits every uplink to 400 ms; the payload table already includes it.
        common.dwell = DwellTimeLimits {
            uplink_400ms: true,
            downlink_400ms: false,
        };
        Ok(Us915 { common })
    }
}

impl Region for Us915 {
    common_accessors!();

    fn name(&self) -> RegionName {
        RegionName::Us915
    }

    fn data_rates(&self) -> &[DataRateEntry] {
        &DATA_RATES
    }

    fn max_payload(&self, dr: u8, revision: RegParamsRevision, _dwell: bool) -> Option<MaxPayload> {
        let lr_fhss = revision >= RegParamsRevision::Rp002V1_0_2;
        let m = match dr {
            0 => 19,
            1 => 61,
            2 => 133,
            3 | 4 => 250,
            5 if lr_fhss => 58,
            6 if lr_fhss => 133,
            8 => 61,
            9 => 137,
            10..=13 => 250,
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
        // RP001-1.0.2 defined TXPower 0..=10 only.
        if revision <= RegParamsRevision::Rp001V1_0_2RevB {
            10
        } else {
            14
        }
    }

    fn max_adr_data_rate(&self) -> u8 {
        3
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
        self.common.downlink_eirp_override_dbm.unwrap_or(26.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CfList, LinkAdrChMask, Modulation};

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
