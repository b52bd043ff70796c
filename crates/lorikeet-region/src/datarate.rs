//! Data rates: modulation parameters, bit rates, demodulation floors, max payloads.

use serde::{Deserialize, Serialize};

/// LR-FHSS coding rate (RP002-1.0.2 and later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LrFhssCodingRate {
    /// CR 1/3 (written "2/6" by some gateways).
    OneThird,
    /// CR 2/3 (written "4/6" by some gateways).
    TwoThirds,
}

/// The physical-layer parameters a data-rate index stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Modulation {
    /// LoRa chirp spread spectrum.
    Lora {
        /// Spreading factor, 5..=12.
        spreading_factor: u8,
        /// Channel bandwidth.
        bandwidth_hz: u32,
    },
    /// GFSK.
    Fsk {
        /// Bit rate.
        bit_rate_bps: u32,
    },
    /// Long-range frequency-hopping spread spectrum (uplink only).
    LrFhss {
        /// Coding rate.
        coding_rate: LrFhssCodingRate,
        /// Occupied channel width.
        occupied_channel_width_hz: u32,
    },
}

impl Modulation {
    /// Shorthand for a LoRa modulation.
    pub const fn lora(spreading_factor: u8, bandwidth_hz: u32) -> Self {
        Modulation::Lora {
            spreading_factor,
            bandwidth_hz,
        }
    }
}

/// A data rate as the region defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataRate {
    /// What is on the air.
    pub modulation: Modulation,
    /// Indicative physical bit rate from the regional data-rate table.
    pub bit_rate_bps: u32,
}

/// Which direction a data-rate index may be used in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Uplink and downlink.
    Both,
    /// Uplink only (e.g. US915 DR4, LR-FHSS).
    Uplink,
    /// Downlink only (e.g. US915 DR8–DR13).
    Downlink,
}

impl Direction {
    /// Whether a data rate with this direction may be used for uplinks (`true`)
    /// or downlinks (`false`).
    pub fn allows(self, uplink: bool) -> bool {
        match self {
            Direction::Both => true,
            Direction::Uplink => uplink,
            Direction::Downlink => !uplink,
        }
    }
}

/// One row of a region's data-rate table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataRateEntry {
    /// The DR index.
    pub dr: u8,
    /// Its parameters.
    pub data_rate: DataRate,
    /// Where it may be used.
    pub direction: Direction,
}

impl DataRateEntry {
    pub(crate) const fn lora(dr: u8, sf: u8, bw_hz: u32, bps: u32, direction: Direction) -> Self {
        DataRateEntry {
            dr,
            data_rate: DataRate {
                modulation: Modulation::lora(sf, bw_hz),
                bit_rate_bps: bps,
            },
            direction,
        }
    }

    pub(crate) const fn fsk(dr: u8, bps: u32) -> Self {
        DataRateEntry {
            dr,
            data_rate: DataRate {
                modulation: Modulation::Fsk { bit_rate_bps: bps },
                bit_rate_bps: bps,
            },
            direction: Direction::Both,
        }
    }

    pub(crate) const fn lr_fhss(
        dr: u8,
        coding_rate: LrFhssCodingRate,
        occupied_channel_width_hz: u32,
        bps: u32,
    ) -> Self {
        DataRateEntry {
            dr,
            data_rate: DataRate {
                modulation: Modulation::LrFhss {
                    coding_rate,
                    occupied_channel_width_hz,
                },
                bit_rate_bps: bps,
            },
            direction: Direction::Uplink,
        }
    }
}

/// Maximum sizes for one data rate: `m` is the largest MACPayload, `n` the largest
/// FRMPayload when FOpts is empty (`n = m - 8`: 7 bytes FHDR + 1 byte FPort).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MaxPayload {
    /// Max MACPayload length in bytes (M).
    pub m: u8,
    /// Max application payload length in bytes without FOpts (N).
    pub n: u8,
}

impl MaxPayload {
    /// Builds the pair from M; N is always M − 8 in the regional tables.
    pub const fn from_m(m: u8) -> Self {
        MaxPayload {
            m,
            n: m.saturating_sub(8),
        }
    }
}

/// Demodulation floor (SNR below which the receiver cannot decode) of a LoRa
/// spreading factor, in dB: SF7 −7.5 … SF12 −20 (2.5 dB per step, Semtech
/// SX127x/SX130x datasheets; the values ADR and LinkCheck margins use).
pub fn lora_required_snr_db(spreading_factor: u8) -> Option<f32> {
    match spreading_factor {
        5 => Some(-2.5),
        6 => Some(-5.0),
        7 => Some(-7.5),
        8 => Some(-10.0),
        9 => Some(-12.5),
        10 => Some(-15.0),
        11 => Some(-17.5),
        12 => Some(-20.0),
        _ => None,
    }
}

/// The EU868-style table shared by EU868, EU433, RU864 and AS923 (DR0–DR7;
/// RP002-1.0.3 §2.4.3 and the matching tables of the other regions).
pub(crate) const EU_STYLE_DR0_7: [DataRateEntry; 8] = [
    DataRateEntry::lora(0, 12, 125_000, 250, Direction::Both),
    DataRateEntry::lora(1, 11, 125_000, 440, Direction::Both),
    DataRateEntry::lora(2, 10, 125_000, 980, Direction::Both),
    DataRateEntry::lora(3, 9, 125_000, 1_760, Direction::Both),
    DataRateEntry::lora(4, 8, 125_000, 3_125, Direction::Both),
    DataRateEntry::lora(5, 7, 125_000, 5_470, Direction::Both),
    DataRateEntry::lora(6, 7, 250_000, 11_000, Direction::Both),
    DataRateEntry::fsk(7, 50_000),
];

/// The 500 kHz downlink data rates DR8–DR13 of US915 and AU915.
pub(crate) const US_AU_DOWNLINK_DR8_13: [DataRateEntry; 6] = [
    DataRateEntry::lora(8, 12, 500_000, 980, Direction::Downlink),
    DataRateEntry::lora(9, 11, 500_000, 1_760, Direction::Downlink),
    DataRateEntry::lora(10, 10, 500_000, 3_900, Direction::Downlink),
    DataRateEntry::lora(11, 9, 500_000, 7_000, Direction::Downlink),
    DataRateEntry::lora(12, 8, 500_000, 12_500, Direction::Downlink),
    DataRateEntry::lora(13, 7, 500_000, 21_900, Direction::Downlink),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_snr_follows_the_demodulator_floors() {
        assert_eq!(lora_required_snr_db(7), Some(-7.5));
        assert_eq!(lora_required_snr_db(10), Some(-15.0));
        assert_eq!(lora_required_snr_db(12), Some(-20.0));
        assert_eq!(lora_required_snr_db(13), None);
    }

    #[test]
    fn n_is_m_minus_eight() {
        assert_eq!(MaxPayload::from_m(59), MaxPayload { m: 59, n: 51 });
        assert_eq!(MaxPayload::from_m(250), MaxPayload { m: 250, n: 242 });
        assert_eq!(MaxPayload::from_m(19), MaxPayload { m: 19, n: 11 });
    }

    #[test]
    fn direction_filters_uplink_and_downlink() {
        assert!(Direction::Both.allows(true) && Direction::Both.allows(false));
        assert!(Direction::Uplink.allows(true) && !Direction::Uplink.allows(false));
        assert!(!Direction::Downlink.allows(true) && Direction::Downlink.allows(false));
    }
}
