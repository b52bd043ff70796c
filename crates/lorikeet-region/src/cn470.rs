//! CN470-510, the RP001 plan (RP001-1.1revB §2.8; RP001-1.0.3revA §2.7): 96
//! uplink channels, 48 downlink channels. This is the plan most deployed CN470
//! devices use. The RP002 plans (20 MHz / 26 MHz antenna, types A and B) are
//! not implemented; see `docs/regions.md`.

use crate::datarate::{DataRateEntry, MaxPayload, EU_STYLE_DR0_7};
use crate::region::{common_accessors, rx1_dr_subtract, Common};
use crate::{
    ChMaskScheme, Channel, ChannelPlan, ClassBDefaults, RegParamsRevision, Region, RegionConfig,
    RegionError, RegionName, SubBand,
};

const BAND_HZ: (u32, u32) = (470_000_000, 510_000_000);
const RX2_FREQUENCY_HZ: u32 = 505_300_000;

/// DR0–DR5, LoRa 125 kHz SF12–SF7 (RP001-1.1revB Table 2.8.3).
const DATA_RATES: [DataRateEntry; 6] = [
    EU_STYLE_DR0_7[0],
    EU_STYLE_DR0_7[1],
    EU_STYLE_DR0_7[2],
    EU_STYLE_DR0_7[3],
    EU_STYLE_DR0_7[4],
    EU_STYLE_DR0_7[5],
];

/// Downlink channel `i` (0–47): 500.3 + 0.2·i MHz.
fn downlink_channel_hz(i: u8) -> u32 {
    500_300_000 + 200_000 * u32::from(i % 48)
}

/// The CN470 (RP001) band plan.
#[derive(Debug, Clone)]
pub struct Cn470 {
    common: Common,
}

impl Cn470 {
    /// Builds CN470 with the operator's enabled sub-bands (12 sub-bands of 8
    /// channels, numbered from 1) or channels.
    pub fn new(config: &RegionConfig) -> Result<Self, RegionError> {
        let name = RegionName::Cn470;
        let channels = (0..96u32)
            .map(|i| Channel::new(470_300_000 + 200_000 * i, 0, 5))
            .collect();
        let sub_bands: Vec<Vec<u8>> = (0..12u8).map(|s| (8 * s..8 * s + 8).collect()).collect();
        let plan = ChannelPlan::fixed(name, ChMaskScheme::Fixed96, channels, config, &sub_bands)?;
        let beacon: Vec<u32> = (0..8u32).map(|i| 508_300_000 + 200_000 * i).collect();
        let class_b = ClassBDefaults {
            beacon_dr: 2,
            ping_slot_dr: 2,
            beacon_frequencies_hz: beacon.clone(),
            ping_slot_frequencies_hz: beacon,
        };
        Ok(Cn470 {
            common: Common::new(name, plan, None, config, class_b)?,
        })
    }
}

impl Region for Cn470 {
    common_accessors!();

    fn name(&self) -> RegionName {
        RegionName::Cn470
    }

    fn data_rates(&self) -> &[DataRateEntry] {
        &DATA_RATES
    }

    fn max_payload(
        &self,
        dr: u8,
        _revision: RegParamsRevision,
        _dwell: bool,
    ) -> Option<MaxPayload> {
        let m = match dr {
            0..=2 => 59,
            3 => 123,
            4 | 5 => 250,
            _ => return None,
        };
        Some(MaxPayload::from_m(m))
    }

    fn rx1_data_rate(&self, uplink_dr: u8, rx1_dr_offset: u8, _dwell: bool) -> Option<u8> {
        if uplink_dr > 5 {
            return None;
        }
        rx1_dr_subtract(uplink_dr, rx1_dr_offset)
    }

    fn rx1_frequency_hz(&self, uplink_channel_index: u8, _uplink_frequency_hz: u32) -> Option<u32> {
        (uplink_channel_index < 96).then(|| downlink_channel_hz(uplink_channel_index % 48))
    }

    fn rx2_default(&self) -> (u32, u8) {
        (RX2_FREQUENCY_HZ, 0)
    }

    fn max_eirp_dbm(&self) -> f32 {
        19.15
    }

    fn max_tx_power_index(&self) -> u8 {
        7
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
        false
    }

    fn downlink_tx_power_eirp_dbm(&self, _frequency_hz: u32) -> f32 {
        self.common.downlink_eirp_override_dbm.unwrap_or(19.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CfList, LinkAdrChMask, Modulation};

    fn cn470(sub_bands: &[u8]) -> Cn470 {
        Cn470::new(&RegionConfig {
            enabled_sub_bands: sub_bands.to_vec(),
            ..RegionConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn channel_grid_rp001_2_8_2() {
        let r = cn470(&[]);
        let ch = r.channel_plan().channels();
        assert_eq!(ch.len(), 96);
        assert_eq!(ch[0].frequency_hz, 470_300_000);
        assert_eq!(ch[95].frequency_hz, 489_300_000);
        assert_eq!(r.uplink_channel_index(471_900_000), Some(8));
    }

    #[test]
    fn data_rates_and_payload_rp001_2_8_3_and_2_8_6() {
        let r = cn470(&[]);
        assert_eq!(
            r.data_rate(5).unwrap().modulation,
            Modulation::lora(7, 125_000)
        );
        assert_eq!(r.data_rate(6), None);
        let rev = RegParamsRevision::Rp001V1_1RevB;
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
        assert_eq!(r.tx_power_eirp_dbm(7), Some(19.15 - 14.0));
    }

    #[test]
    fn rx1_uses_the_48_downlink_channels_rp001_2_8_7() {
        let r = cn470(&[]);
        assert_eq!(r.rx1_frequency_hz(0, 470_300_000), Some(500_300_000));
        assert_eq!(r.rx1_frequency_hz(47, 479_700_000), Some(509_700_000));
        assert_eq!(r.rx1_frequency_hz(48, 479_900_000), Some(500_300_000));
        assert_eq!(r.rx1_frequency_hz(96, 0), None);
        assert_eq!(r.rx1_data_rate(5, 2, false), Some(3));
        assert_eq!(r.rx1_data_rate(6, 0, false), None);
        assert_eq!(r.rx2_default(), (505_300_000, 0));
    }

    #[test]
    fn sub_band_masks_96_channels_rp001_2_8_5() {
        let r = cn470(&[1]);
        assert_eq!(r.enabled_uplink_channels(), (0..8).collect::<Vec<u8>>());
        let all: Vec<u8> = (0..96).collect();
        let masks = r.link_adr_ch_masks(&all);
        assert_eq!(masks.len(), 6);
        assert_eq!(
            masks[0],
            LinkAdrChMask {
                ch_mask_cntl: 0,
                ch_mask: 0x00FF
            }
        );
        assert_eq!(
            r.channel_plan().apply_ch_masks(&all, &masks),
            Ok((0..8).collect())
        );
        // ChMaskCntl 6 is "all channels on".
        assert_eq!(r.apply_ch_mask(&[0], 6, 0), Ok(all.clone()));
        assert!(matches!(
            r.apply_ch_mask(&[0], 7, 0),
            Err(RegionError::InvalidChMaskCntl { .. })
        ));
        assert_eq!(
            cn470(&[]).channel_plan().ch_masks_for(&all),
            Ok(vec![LinkAdrChMask {
                ch_mask_cntl: 6,
                ch_mask: 0
            }])
        );
        // From sub-band 2 only block 0 changes.
        let sb2: Vec<u8> = (8..16).collect();
        assert_eq!(
            r.link_adr_ch_masks(&sb2),
            vec![LinkAdrChMask {
                ch_mask_cntl: 0,
                ch_mask: 0x00FF
            }]
        );
    }

    #[test]
    fn cf_list_type_1_covers_96_channels() {
        let r = cn470(&[12]);
        let cf = CfList::decode(&r.join_accept_cf_list().unwrap()).unwrap();
        assert_eq!(cf, CfList::ChannelMasks([0, 0, 0, 0, 0, 0xFF00]));
    }

    #[test]
    fn class_b_rp001_2_8_9() {
        let r = cn470(&[]);
        assert_eq!(r.class_b().beacon_dr, 2);
        assert_eq!(r.beacon_frequency_hz(0), 508_300_000);
        assert_eq!(r.beacon_frequency_hz(128 * 7), 509_700_000);
    }

    #[test]
    fn invalid_sub_band() {
        let e = Cn470::new(&RegionConfig {
            enabled_sub_bands: vec![13],
            ..RegionConfig::default()
        });
        assert_eq!(
            e.err(),
            Some(RegionError::InvalidSubBand {
                region: RegionName::Cn470,
                sub_band: 13,
                max: 12
            })
        );
    }
}
