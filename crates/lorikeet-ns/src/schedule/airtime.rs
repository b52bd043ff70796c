//! Time on air of one LoRa or FSK frame.
//!
//! The scheduler needs it twice: to know when a transmission ends (so the next one on the
//! same radio does not overlap) and to charge the duty-cycle budget. The LoRa formula is
//! Semtech's (SX1276 datasheet §4.1.1.7, AN1200.13); the FSK one counts preamble, sync
//! word, length byte, payload and CRC at the bit rate. Results are rounded *up* to the
//! next microsecond: a scheduler that underestimates airtime plans collisions.
//!
//! LoRaWAN downlinks carry no payload CRC (`ncrc`), uplinks do: `crc` is a parameter.
//! Vectors computed independently live in `testdata/vectors/lora_airtime.json`.

use std::time::Duration;

use thiserror::Error;

/// Parameters of a LoRa transmission that change its length on air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoraParams {
    /// Spreading factor, 7..=12 (the formula below is the SX127x one; SF5/6 differ).
    pub spreading_factor: u8,
    /// Channel bandwidth (125, 250 or 500 kHz in LoRaWAN).
    pub bandwidth_hz: u32,
    /// Coding rate 4/`coding_rate_denominator`, 5..=8.
    pub coding_rate_denominator: u8,
    /// Programmed preamble length; LoRaWAN uses 8.
    pub preamble_symbols: u16,
    /// Whether a payload CRC is sent (uplinks yes, LoRaWAN downlinks no).
    pub crc: bool,
    /// Implicit header mode; LoRaWAN always uses the explicit header.
    pub implicit_header: bool,
    /// `None` follows the radio rule: on when a symbol lasts 16 ms or more.
    pub low_data_rate_optimize: Option<bool>,
}

impl LoraParams {
    /// A LoRaWAN frame: explicit header, 8-symbol preamble, automatic low data rate
    /// optimisation.
    pub fn lorawan(
        spreading_factor: u8,
        bandwidth_hz: u32,
        coding_rate_denominator: u8,
        crc: bool,
    ) -> Self {
        LoraParams {
            spreading_factor,
            bandwidth_hz,
            coding_rate_denominator,
            preamble_symbols: 8,
            crc,
            implicit_header: false,
            low_data_rate_optimize: None,
        }
    }
}

/// Parameters of an FSK transmission (LoRaWAN: 5 preamble bytes, 3-byte sync word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FskParams {
    /// Bit rate (50 kbps in LoRaWAN).
    pub bit_rate_bps: u32,
    /// Preamble bytes.
    pub preamble_bytes: u16,
    /// Sync word bytes.
    pub sync_word_bytes: u16,
    /// Whether the 2-byte CRC is sent.
    pub crc: bool,
}

impl FskParams {
    /// The LoRaWAN FSK frame layout at `bit_rate_bps`.
    pub fn lorawan(bit_rate_bps: u32, crc: bool) -> Self {
        FskParams {
            bit_rate_bps,
            preamble_bytes: 5,
            sync_word_bytes: 3,
            crc,
        }
    }
}

/// Parameters the time-on-air formula cannot use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AirtimeError {
    /// Spreading factor outside 7..=12.
    #[error("unsupported spreading factor {0}")]
    SpreadingFactor(u8),
    /// Coding rate denominator outside 5..=8.
    #[error("unsupported coding rate 4/{0}")]
    CodingRate(u8),
    /// A zero bandwidth or bit rate.
    #[error("zero bandwidth or bit rate")]
    ZeroRate,
    /// A modulation without a formula here (LR-FHSS is uplink only).
    #[error("no time-on-air formula for this modulation")]
    Modulation,
}

/// Time on air of a LoRa frame carrying `payload_bytes` (the PHYPayload).
pub fn lora_time_on_air(
    params: &LoraParams,
    payload_bytes: usize,
) -> Result<Duration, AirtimeError> {
    let sf = params.spreading_factor;
    if !(7..=12).contains(&sf) {
        return Err(AirtimeError::SpreadingFactor(sf));
    }
    let cr = params.coding_rate_denominator;
    if !(5..=8).contains(&cr) {
        return Err(AirtimeError::CodingRate(cr));
    }
    if params.bandwidth_hz == 0 {
        return Err(AirtimeError::ZeroRate);
    }
    let chips: u128 = 1u128 << sf;
    let bw = u128::from(params.bandwidth_hz);
    // T_sym = 2^SF / BW >= 16 ms  <=>  2^SF * 1000 >= 16 * BW.
    let de = params
        .low_data_rate_optimize
        .unwrap_or(chips * 1000 >= 16 * bw);
    let pl = i128::try_from(payload_bytes).unwrap_or(i128::MAX / 16);
    let sf_i = i128::from(sf);
    let numerator = 8 * pl - 4 * sf_i + 28 + if params.crc { 16 } else { 0 }
        - if params.implicit_header { 20 } else { 0 };
    let denominator = 4 * (sf_i - if de { 2 } else { 0 });
    let blocks = if numerator <= 0 {
        0
    } else {
        // Ceiling division of positives; denominator >= 20 for SF >= 7.
        (numerator + denominator - 1) / denominator
    };
    let payload_symbols = 8 + blocks * (i128::from(cr));
    // Work in quarter symbols so the 4.25-symbol sync/SFD part stays an integer.
    let quarter_symbols =
        u128::from(params.preamble_symbols) * 4 + 17 + (payload_symbols as u128) * 4;
    let numer = quarter_symbols * chips * 1_000_000;
    let denom = 4 * bw;
    Ok(micros_ceil(numer, denom))
}

/// Time on air of an FSK frame carrying `payload_bytes`.
pub fn fsk_time_on_air(params: &FskParams, payload_bytes: usize) -> Result<Duration, AirtimeError> {
    if params.bit_rate_bps == 0 {
        return Err(AirtimeError::ZeroRate);
    }
    let bytes = u128::from(params.preamble_bytes)
        + u128::from(params.sync_word_bytes)
        + 1
        + payload_bytes as u128
        + if params.crc { 2 } else { 0 };
    Ok(micros_ceil(
        bytes * 8 * 1_000_000,
        u128::from(params.bit_rate_bps),
    ))
}

/// Time on air of a LoRaWAN frame at a region's data rate, with coding rate
/// 4/`coding_rate_denominator` (LoRa only; LoRaWAN uses 4/5).
pub fn time_on_air(
    modulation: lorikeet_region::Modulation,
    coding_rate_denominator: u8,
    payload_bytes: usize,
    crc: bool,
) -> Result<Duration, AirtimeError> {
    match modulation {
        lorikeet_region::Modulation::Lora {
            spreading_factor,
            bandwidth_hz,
        } => lora_time_on_air(
            &LoraParams::lorawan(spreading_factor, bandwidth_hz, coding_rate_denominator, crc),
            payload_bytes,
        ),
        lorikeet_region::Modulation::Fsk { bit_rate_bps } => {
            fsk_time_on_air(&FskParams::lorawan(bit_rate_bps, crc), payload_bytes)
        }
        lorikeet_region::Modulation::LrFhss { .. } => Err(AirtimeError::Modulation),
    }
}

/// `numer / denom` microseconds, rounded up, saturating at `u64::MAX` µs.
fn micros_ceil(numer: u128, denom: u128) -> Duration {
    let us = numer.div_ceil(denom.max(1));
    Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/vectors/lora_airtime.json"
        );
        let text = std::fs::read_to_string(path).expect("read vectors");
        let records: Vec<serde_json::Value> = serde_json::from_str(&text).expect("parse vectors");
        assert!(records.len() > 100, "too few vectors");
        for (i, r) in records.iter().enumerate() {
            let num = |k: &str| {
                r[k].as_u64()
                    .unwrap_or_else(|| panic!("vector {i}: missing {k}"))
            };
            let payload = num("payload_bytes") as usize;
            let crc = r["crc"].as_bool().expect("crc");
            let got = match r["modulation"].as_str() {
                Some("lora") => {
                    let cr = r["coding_rate"].as_str().expect("coding_rate");
                    let den: u8 = cr.strip_prefix("4/").expect("4/x").parse().expect("cr");
                    let mut p = LoraParams::lorawan(
                        num("spreading_factor") as u8,
                        num("bandwidth_hz") as u32,
                        den,
                        crc,
                    );
                    p.preamble_symbols = num("preamble_symbols") as u16;
                    lora_time_on_air(&p, payload)
                }
                Some("fsk") => fsk_time_on_air(
                    &FskParams::lorawan(num("bit_rate_bps") as u32, crc),
                    payload,
                ),
                other => panic!("vector {i}: modulation {other:?}"),
            };
            let want = Duration::from_micros(num("time_on_air_us"));
            assert_eq!(got, Ok(want), "vector {i}: {r}");
        }
    }

    #[test]
    fn published_values() {
        let sf7 = lora_time_on_air(&LoraParams::lorawan(7, 125_000, 5, true), 13);
        assert_eq!(sf7, Ok(Duration::from_micros(46_336)));
        let sf12 = lora_time_on_air(&LoraParams::lorawan(12, 125_000, 5, true), 13);
        assert_eq!(sf12, Ok(Duration::from_micros(1_155_072)));
    }

    #[test]
    fn region_modulation() {
        let m = lorikeet_region::Modulation::lora(7, 125_000);
        assert_eq!(
            time_on_air(m, 5, 13, true),
            Ok(Duration::from_micros(46_336))
        );
        let f = lorikeet_region::Modulation::Fsk {
            bit_rate_bps: 50_000,
        };
        // (5 + 3 + 1 + 13 + 2) bytes * 8 / 50 kbps = 3.84 ms.
        assert_eq!(
            time_on_air(f, 5, 13, true),
            Ok(Duration::from_micros(3_840))
        );
    }

    #[test]
    fn low_data_rate_optimisation_threshold() {
        // SF11/125 kHz (16.384 ms symbols) turns it on; SF11/250 kHz does not.
        let on = LoraParams::lorawan(11, 125_000, 5, false);
        let forced_off = LoraParams {
            low_data_rate_optimize: Some(false),
            ..on
        };
        let a = lora_time_on_air(&on, 51).unwrap();
        let b = lora_time_on_air(&forced_off, 51).unwrap();
        assert!(a > b, "{a:?} vs {b:?}");
        let fast = LoraParams::lorawan(11, 250_000, 5, false);
        let fast_off = LoraParams {
            low_data_rate_optimize: Some(false),
            ..fast
        };
        assert_eq!(lora_time_on_air(&fast, 51), lora_time_on_air(&fast_off, 51));
    }

    #[test]
    fn bad_parameters_are_errors_not_panics() {
        assert_eq!(
            lora_time_on_air(&LoraParams::lorawan(6, 125_000, 5, true), 1),
            Err(AirtimeError::SpreadingFactor(6))
        );
        assert_eq!(
            lora_time_on_air(&LoraParams::lorawan(7, 125_000, 9, true), 1),
            Err(AirtimeError::CodingRate(9))
        );
        assert_eq!(
            lora_time_on_air(&LoraParams::lorawan(7, 0, 5, true), 1),
            Err(AirtimeError::ZeroRate)
        );
        assert_eq!(
            fsk_time_on_air(&FskParams::lorawan(0, true), 1),
            Err(AirtimeError::ZeroRate)
        );
        // Huge sizes saturate instead of overflowing.
        assert!(lora_time_on_air(&LoraParams::lorawan(12, 125_000, 8, true), usize::MAX).is_ok());
        assert!(fsk_time_on_air(&FskParams::lorawan(1, true), usize::MAX).is_ok());
    }
}
