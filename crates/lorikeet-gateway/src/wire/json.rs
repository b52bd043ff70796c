//! Small serde helpers shared by the JSON bodies: borrowed strings, lenient numbers,
//! the two time formats and base64.

use std::borrow::Cow;
use std::fmt;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Standard alphabet; padding optional on input (the spec says padded, some
/// forwarders don't), always written on output.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A JSON string, borrowed from the datagram when it has no escapes.
///
/// serde only borrows a `Cow` that is the whole field type; inside an `Option` it
/// would always copy, hence this newtype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl Text<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// `datr`: a string for LoRa (`SF7BW125`), a number for FSK (`50000`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Datr<'a> {
    Text(Text<'a>),
    Number(f64),
}

impl<'de: 'a, 'a> Deserialize<'de> for Datr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Datr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a data rate string or an FSK bit rate number")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Datr::Text(Text(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Datr::Text(Text(Cow::Owned(v.to_owned()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Datr::Number(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Datr::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Datr::Number(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// serde's derived structs also accept a JSON array (fields by position); the
/// protocol only has objects, so anything else is refused up front.
pub(crate) fn require_object(json: &[u8]) -> Result<(), serde_json::Error> {
    match json.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        _ => Err(<serde_json::Error as serde::de::Error>::custom(
            "expected a JSON object",
        )),
    }
}

/// A finite number rounded to the nearest integer inside `min..=max`.
pub(crate) fn round_in(v: f64, min: i64, max: i64) -> Option<i64> {
    if !v.is_finite() {
        return None;
    }
    let r = v.round();
    // Compare as floats first so huge values never reach the cast.
    if r < min as f64 || r > max as f64 {
        return None;
    }
    Some(r as i64)
}

/// Frequency in MHz (float, Hz precision) to Hz. Zero, negative and > 4.29 GHz are refused.
pub(crate) fn mhz_to_hz(mhz: f64) -> Option<u32> {
    let hz = round_in(mhz * 1_000_000.0, 1, i64::from(u32::MAX))?;
    u32::try_from(hz).ok()
}

/// Hz to MHz for the wire; the shortest float that reads back as the same Hz.
pub(crate) fn hz_to_mhz(hz: u32) -> f64 {
    f64::from(hz) / 1_000_000.0
}

/// `rxpk.time`: ISO 8601 "compact" UTC with µs (`2013-03-31T16:21:17.528002Z`). A
/// missing zone is taken as UTC. `None` when unparseable: a bad clock string never
/// costs us the packet.
pub(crate) fn parse_rx_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// `stat.time`: "2014-01-12 08:59:28 GMT" (also UTC/Z, or RFC 3339 from some forwarders).
pub(crate) fn parse_stat_time(s: &str) -> Option<DateTime<Utc>> {
    let trimmed = s.trim();
    let base = trimmed
        .strip_suffix(" GMT")
        .or_else(|| trimmed.strip_suffix(" UTC"))
        .unwrap_or(trimmed);
    if let Ok(n) = NaiveDateTime::parse_from_str(base, "%Y-%m-%d %H:%M:%S") {
        return Some(n.and_utc());
    }
    parse_rx_time(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequencies_round_to_the_hz() {
        assert_eq!(mhz_to_hz(868.1), Some(868_100_000));
        assert_eq!(mhz_to_hz(869.525), Some(869_525_000));
        assert_eq!(mhz_to_hz(923.3), Some(923_300_000));
        assert_eq!(mhz_to_hz(2425.0), Some(2_425_000_000));
        assert_eq!(mhz_to_hz(0.0), None);
        assert_eq!(mhz_to_hz(-868.1), None);
        assert_eq!(mhz_to_hz(1e300), None);
        assert_eq!(mhz_to_hz(f64::NAN), None);
        for hz in [
            863_000_000u32,
            868_300_000,
            902_300_000,
            927_500_000,
            869_525_001,
        ] {
            assert_eq!(mhz_to_hz(hz_to_mhz(hz)), Some(hz));
        }
    }

    #[test]
    fn times_in_both_formats() {
        let t = parse_rx_time("2013-03-31T16:21:17.528002Z").unwrap();
        assert_eq!(t.timestamp_micros(), 1_364_746_877_528_002);
        assert_eq!(parse_rx_time("2013-03-31T16:21:17.528002"), Some(t));
        assert_eq!(parse_rx_time("yesterday"), None);
        let s = parse_stat_time("2014-01-12 08:59:28 GMT").unwrap();
        assert_eq!(s.timestamp(), 1_389_517_168);
        assert_eq!(parse_stat_time("2014-01-12 08:59:28 UTC"), Some(s));
        assert_eq!(parse_stat_time("2014-01-12T08:59:28Z"), Some(s));
        assert_eq!(parse_stat_time("2014-13-12 08:59:28 GMT"), None);
    }

    #[test]
    fn base64_accepts_missing_padding() {
        use base64::Engine;
        assert_eq!(BASE64.decode("QAE=").unwrap(), vec![0x40, 0x01]);
        assert_eq!(BASE64.decode("QAE").unwrap(), vec![0x40, 0x01]);
        assert!(BASE64.decode("Q*E=").is_err());
    }
}
