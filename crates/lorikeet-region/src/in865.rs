//! IN865-867 (RP002-1.0.3 §2.12; RP001-1.1revB §2.10).

use crate::datarate::{DataRateEntry, MaxPayload, EU_STYLE_DR0_7};
use crate::region::{common_accessors, Common};
use crate::{
    Channel, ChannelPlan, ClassBDefaults, RegParamsRevision, Region, RegionConfig, RegionError,
    RegionName, SubBand,
};

const BAND_HZ: (u32, u32) = (865_000_000, 867_000_000);
const RX2_FREQUENCY_HZ: u32 = 866_550_000;

/// DR0–DR5 LoRa, DR6 RFU, DR7 FSK 50 kbps (RP002-1.0.3 Table 2.12.3).
const DATA_RATES: [DataRateEntry; 7] = [
    EU_STYLE_DR0_7[0],
    EU_STYLE_DR0_7[1],
    EU_STYLE_DR0_7[2],
    EU_STYLE_DR0_7[3],
    EU_STYLE_DR0_7[4],
    EU_STYLE_DR0_7[5],
    EU_STYLE_DR0_7[7],
];

const DEFAULT_CHANNELS: [Channel; 3] = [
    Channel::new(865_062_500, 0, 5),
    Channel::new(865_402_500, 0, 5),
    Channel::new(865_985_000, 0, 5),
];

/// RP002-1.0.3 Table 2.12.7: RX1 DR by uplink DR (DR0–DR5, DR7) and RX1DROffset
/// 0–7 (the RFU DR6 is skipped: DR7 with offset 1 gives DR5).
const RX1_DR_TABLE: [(u8, [u8; 8]); 7] = [
    (0, [0, 0, 0, 0, 0, 0, 1, 2]),
    (1, [1, 0, 0, 0, 0, 0, 2, 3]),
    (2, [2, 1, 0, 0, 0, 0, 3, 4]),
    (3, [3, 2, 1, 0, 0, 0, 4, 5]),
    (4, [4, 3, 2, 1, 0, 0, 5, 5]),
    (5, [5, 4, 3, 2, 1, 0, 5, 7]),
    (7, [7, 5, 5, 4, 3, 2, 7, 7]),
];

/// Effective RX1DROffset for RX1DROffset 0–7 (RP001-1.1revB §2.10.7).
const EFFECTIVE_RX1_DR_OFFSET: [i8; 8] = [0, 1, 2, 3, 4, 5, -1, -2];

/// The IN865 band plan.
#[derive(Debug, Clone)]
pub struct In865 {
    common: Common,
}

impl In865 {
    /// Builds IN865 with the operator's extra channels.
    pub fn new(config: &RegionConfig) -> Result<Self, RegionError> {
        let name = RegionName::In865;
        let plan = ChannelPlan::dynamic(name, &DEFAULT_CHANNELS, config, BAND_HZ, |dr| {
            DATA_RATES.iter().any(|e| e.dr == dr)
        })?;
        let class_b = ClassBDefaults {
            beacon_dr: 4,
            ping_slot_dr: 4,
            beacon_frequencies_hz: vec![RX2_FREQUENCY_HZ],
            ping_slot_frequencies_hz: vec![RX2_FREQUENCY_HZ],
        };
        Ok(In865 {
            common: Common::new(name, plan, None, config, class_b)?,
        })
    }
}

impl Region for In865 {
    common_accessors!();

    fn name(&self) -> RegionName {
        RegionName::In865
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
            4 | 5 | 7 => 250,
            _ => return None,
        };
        Some(MaxPayload::from_m(m))
    }

    fn rx1_data_rate(&self, uplink_dr: u8, rx1_dr_offset: u8, _dwell: bool) -> Option<u8> {
        RX1_DR_TABLE
            .iter()
            .find(|(dr, _)| *dr == uplink_dr)?
            .1
            .get(usize::from(rx1_dr_offset))
            .copied()
    }

    fn rx1_data_rate_for_revision(
        &self,
        uplink_dr: u8,
        rx1_dr_offset: u8,
        dwell: bool,
        revision: RegParamsRevision,
    ) -> Option<u8> {
        if revision.is_rp002() {
            return self.rx1_data_rate(uplink_dr, rx1_dr_offset, dwell);
        }
        // RP001: MIN(5, MAX(0, uplink DR − effective offset)).
        if !matches!(uplink_dr, 0..=5 | 7) {
            return None;
        }
        let effective = *EFFECTIVE_RX1_DR_OFFSET.get(usize::from(rx1_dr_offset))?;
        // uplink_dr <= 7, so the cast is exact; the result is within 0..=5.
        u8::try_from((uplink_dr as i8 - effective).clamp(0, 5)).ok()
    }

    fn rx1_frequency_hz(&self, _uplink_channel_index: u8, uplink_frequency_hz: u32) -> Option<u32> {
        Some(uplink_frequency_hz)
    }

    fn rx2_default(&self) -> (u32, u8) {
        (RX2_FREQUENCY_HZ, 2)
    }

    fn max_eirp_dbm(&self) -> f32 {
        30.0
    }

    fn max_tx_power_index(&self) -> u8 {
        10
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
        self.common.downlink_eirp_override_dbm.unwrap_or(30.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Modulation;

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
