//! CN470-510, the RP001 plan (RP001-1.1revB §2.8; RP001-1.0.3revA §2.7): 96
//! uplink channels, 48 downlink channels. This is the plan most deployed CN470
//! devices use. The RP002 plans (20 MHz / 26 MHz antenna, types A and B) are
//! not implemented; see `docs/regions.md`.

use crate::datarate::EU_STYLE_DR0_7;
use crate::table::{
    frequency_grid, BandTable, ChannelGrid, ChannelLayout, ClassB, DwellTime, Rx1DataRate,
    Rx1Frequency, EU_STYLE_MAX_PAYLOADS_DR0_7,
};
use crate::{Band, BandPlan, ChMaskScheme, RegParamsRevision, RegionName};

/// The CN470 (RP001) band plan.
pub type Cn470 = Band<Cn470Plan>;

/// Selects the CN470 table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Cn470Plan;

impl BandPlan for Cn470Plan {
    fn table(self) -> &'static BandTable {
        &TABLE
    }
}

/// Class B beacon and ping slots hop over 508.3 + 0.2·i MHz, i = 0…7.
const CLASS_B_FREQUENCIES_HZ: [u32; 8] = frequency_grid(508_300_000, 200_000);

pub(crate) static TABLE: BandTable = BandTable {
    name: RegionName::Cn470,
    band_hz: (470_000_000, 510_000_000),
    // 96 channels 470.3 + 0.2·i MHz in 12 sub-bands of 8 (enabled_sub_bands 1–12).
    channels: ChannelLayout::Fixed {
        scheme: ChMaskScheme::Fixed96,
        grids: &[ChannelGrid {
            first_hz: 470_300_000,
            step_hz: 200_000,
            count: 96,
            min_dr: 0,
            max_dr: 5,
        }],
    },
    // DR0–DR5, LoRa 125 kHz SF12–SF7 (RP001-1.1revB Table 2.8.3).
    data_rates: EU_STYLE_DR0_7.split_at(6).0,
    max_eirp_dbm: 19.15,
    max_tx_power_index: &[(RegParamsRevision::Rp001V1_0_2, 7)],
    max_payloads: EU_STYLE_MAX_PAYLOADS_DR0_7.split_at(6).0,
    rx1_data_rate: Rx1DataRate::Subtract { answer_as: &[] },
    rx1_data_rate_rp001: None,
    // Downlink channel (uplink channel mod 48): 500.3 + 0.2·i MHz.
    rx1_frequency: Rx1Frequency::Grid {
        first_hz: 500_300_000,
        step_hz: 200_000,
        count: 48,
    },
    rx2: (505_300_000, 0),
    max_adr_data_rate: 5,
    dwell_time: DwellTime::None,
    duty_cycle_sub_bands: &[],
    downlink_eirp_dbm: 19.0,
    class_b: ClassB {
        beacon_dr: 2,
        ping_slot_dr: 2,
        beacon_frequencies_hz: &CLASS_B_FREQUENCIES_HZ,
        ping_slot_frequencies_hz: &CLASS_B_FREQUENCIES_HZ,
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CfList, LinkAdrChMask, MaxPayload, Modulation, Region, RegionConfig, RegionError};

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
