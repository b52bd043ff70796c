//! Parsing and validating what clients send, with messages that name the field.

use std::collections::HashMap;

use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;

/// Region names accepted in device profiles.
pub const REGIONS: &[&str] = &[
    "EU868", "US915", "AU915", "AS923", "AS923-2", "AS923-3", "AS923-4", "CN470", "IN865", "KR920",
    "RU864", "EU433",
];

/// Regional-parameters revisions accepted in device profiles.
pub const REG_PARAMS_REVISIONS: &[&str] = &[
    "RP001-1.0.2",
    "RP001-1.0.2revB",
    "RP001-1.0.3revA",
    "RP001-1.1revA",
    "RP001-1.1revB",
    "RP002-1.0.0",
    "RP002-1.0.1",
    "RP002-1.0.2",
    "RP002-1.0.3",
    "RP002-1.0.4",
];

/// LoRaWAN MAC versions accepted in device profiles.
pub const MAC_VERSIONS: &[&str] = &["1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.1.0"];

/// Payload codec types.
pub const CODEC_TYPES: &[&str] = &["none", "cayenne_lpp", "javascript"];

/// True for LoRaWAN 1.1 MAC versions (separate network keys, NwkKey).
pub fn is_lorawan_1_1(mac_version: &str) -> bool {
    mac_version.starts_with("1.1")
}

/// Checks `value` against `allowed`, naming the field and the accepted values.
pub fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{field} {value:?} is not supported; use one of {}",
            allowed.join(", ")
        )))
    }
}

/// Parses a JSON request body into `T`.
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; send a JSON object",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    // Postgres text cannot hold NUL, and no name, key or script needs one: refused
    // here for every body, on both backends, rather than a 500 from the database.
    if has_nul(&value) {
        return Err(ApiError::bad_request(
            "the body contains a NUL character (\\u0000), which no field accepts",
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

fn has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(has_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// An EUI-64 in hex (any case).
pub fn eui(field: &str, s: &str) -> Result<Eui64, ApiError> {
    s.parse()
        .map_err(|e| ApiError::bad_request(format!("{field}: {e}")))
}

/// A DevAddr in hex (8 digits).
pub fn dev_addr(field: &str, s: &str) -> Result<DevAddr, ApiError> {
    s.parse()
        .map_err(|e| ApiError::bad_request(format!("{field}: {e}")))
}

/// An AES-128 key in hex (32 digits).
pub fn key(field: &str, s: &str) -> Result<Aes128Key, ApiError> {
    Aes128Key::from_hex(s).map_err(|e| ApiError::bad_request(format!("{field}: {e}")))
}

/// A UUID.
pub fn uuid(field: &str, s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s.trim())
        .map_err(|e| ApiError::bad_request(format!("{field} {s:?} is not a valid UUID: {e}")))
}

/// A required, trimmed, non-empty name of at most 200 characters.
pub fn name(field: &str, s: &str) -> Result<String, ApiError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(ApiError::bad_request(format!("{field} must not be empty")));
    }
    if t.chars().count() > 200 {
        return Err(ApiError::bad_request(format!(
            "{field} is longer than 200 characters"
        )));
    }
    Ok(t.to_string())
}

/// A sign-in email: trimmed, lower-cased, one `@` with something on both sides, no
/// spaces or control characters, at most 254 bytes (RFC 5321's path limit).
pub fn email(field: &str, s: &str) -> Result<String, ApiError> {
    let e = s.trim().to_lowercase();
    let valid = e.len() <= 254
        && e.split('@').count() == 2
        && e.split('@').all(|part| !part.is_empty())
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(e)
    } else {
        Err(ApiError::bad_request(format!(
            "{field} {s:?} is not an email address (name@domain)"
        )))
    }
}

/// Query string parameters (`a=1&b=2`), percent-decoded.
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Splits a raw query string and percent-decodes it as browsers and HTTP
    /// clients encode it (`%3A` for `:` in a time, `+` for a space).
    pub fn parse(raw: &str) -> Self {
        Query(
            url::form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// An RFC 3339 time, if given.
    pub fn time(&self, k: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
        self.get(k)
            .map(|s| {
                chrono::DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|e| {
                        ApiError::bad_request(format!("{k} {s:?} is not an RFC 3339 time: {e}"))
                    })
            })
            .transpose()
    }

    /// `from` and `to` of a history request: `to` defaults to `now`, `from` to 24
    /// hours before `to`; `from` must come first and at most `max` before `to`.
    pub fn time_range(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        max: chrono::TimeDelta,
    ) -> Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>), ApiError> {
        let to = self.time("to")?.unwrap_or(now);
        let from = self
            .time("from")?
            .unwrap_or(to - chrono::TimeDelta::hours(24));
        if from >= to || to - from > max {
            return Err(ApiError::bad_request(format!(
                "from must be before to, at most {} days apart",
                max.num_days()
            )));
        }
        Ok((from, to))
    }

    /// A raw value.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// An optional UUID parameter.
    pub fn uuid(&self, k: &str) -> Result<Option<Uuid>, ApiError> {
        self.get(k).map(|v| uuid(k, v)).transpose()
    }

    /// An optional whole number in `min..=max`, else `default`.
    pub fn number(&self, k: &str, default: u64, min: u64, max: u64) -> Result<u64, ApiError> {
        let Some(v) = self.get(k) else {
            return Ok(default);
        };
        match v.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "{k} must be a whole number from {min} to {max}, got {v:?}"
            ))),
        }
    }
}

/// Largest page a list endpoint returns.
pub const MAX_PAGE: u64 = 1000;

/// `limit` (default 100, at most [`MAX_PAGE`]) and `offset` (default 0).
pub fn page(q: &Query) -> Result<lorikeet_storage::Page, ApiError> {
    let limit = q.number("limit", 100, 1, MAX_PAGE)?;
    let offset = q.number("offset", 0, 0, i64::MAX as u64)?;
    Ok(lorikeet_storage::Page {
        limit: limit as u32,
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        // What a browser's URLSearchParams sends for a time and a name.
        let q = Query::parse("to=2026-12-07T13%3A15%3A08.279Z&name=a+b%26c&flag");
        assert_eq!(q.get("to"), Some("2026-12-07T13:15:08.279Z"));
        assert_eq!(q.get("name"), Some("a b&c"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("missing"), None);
    }

    #[test]
    fn messages_name_the_field() {
        let e = eui("devEui", "0102").unwrap_err();
        assert_eq!(e.message, "devEui: EUI-64 must be 16 hex digits, got 4");
        let e = key("appKey", "zz").unwrap_err();
        assert!(e.message.starts_with("appKey: "), "{}", e.message);
        let e = one_of("region", "EU869", REGIONS).unwrap_err();
        assert!(e.message.contains("EU868, US915"), "{}", e.message);
        assert!(one_of("region", "AS923-2", REGIONS).is_ok());
    }

    #[test]
    fn paging_is_bounded() {
        let p = page(&Query::parse("limit=5&offset=10")).unwrap();
        assert_eq!((p.limit, p.offset), (5, 10));
        assert_eq!(page(&Query::parse("")).unwrap().limit, 100);
        assert!(page(&Query::parse("limit=0")).is_err());
        assert!(page(&Query::parse("limit=1001")).is_err());
        assert!(page(&Query::parse("limit=x")).is_err());
    }

    #[test]
    fn empty_and_malformed_bodies() {
        let e = json::<serde_json::Value>(b"  ").unwrap_err();
        assert!(e.message.contains("empty"));
        let e = json::<serde_json::Value>(b"{\"a\":").unwrap_err();
        assert!(
            e.message.starts_with("invalid JSON body: "),
            "{}",
            e.message
        );
    }
}
