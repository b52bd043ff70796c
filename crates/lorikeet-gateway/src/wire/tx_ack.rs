//! TX_ACK: the forwarder's answer to a PULL_RESP.
//!
//! No JSON, `{"txpk_ack":{}}`, `"error":""` and `"error":"NONE"` all mean sent. SX1302
//! forwarders report a power they could not use as a warning, and still send:
//! `{"txpk_ack":{"warn":"TX_POWER","value":27}}`. Older forwarders report
//! `"error":"TX_POWER"` and do not send.

use lorikeet_lorawan::Eui64;
use serde::{Deserialize, Serialize};

use super::json::{self, Text};
use super::{upstream_prefix, PacketType, PROTOCOL_VERSION};
use crate::types::{TxAckError, TxAckOutcome};

/// Longest error string kept from a forwarder's unknown error.
const MAX_OTHER_ERROR_CHARS: usize = 64;

/// The TX_ACK JSON is malformed.
#[derive(Debug, thiserror::Error)]
#[error("malformed TX_ACK: {0}")]
pub struct TxAckDecodeError(#[source] pub serde_json::Error);

#[derive(Deserialize)]
struct RawTxAck<'a> {
    #[serde(borrow, default)]
    txpk_ack: Option<RawTxpkAck<'a>>,
}

#[derive(Deserialize)]
struct RawTxpkAck<'a> {
    #[serde(borrow, default)]
    error: Option<Text<'a>>,
    #[serde(borrow, default)]
    warn: Option<Text<'a>>,
    #[serde(default)]
    value: Option<f64>,
}

fn power(value: Option<f64>) -> Option<i32> {
    value
        .and_then(|v| json::round_in(v, -128, 127))
        .and_then(|v| i32::try_from(v).ok())
}

/// Reads the body of a TX_ACK (the bytes after the EUI, NUL bytes already trimmed).
pub fn decode_tx_ack(json: &[u8]) -> Result<TxAckOutcome, TxAckDecodeError> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(TxAckOutcome::Sent {
            tx_power_warning_dbm: None,
        });
    }
    json::require_object(json).map_err(TxAckDecodeError)?;
    let raw: RawTxAck<'_> = serde_json::from_slice(json).map_err(TxAckDecodeError)?;
    let Some(ack) = raw.txpk_ack else {
        return Ok(TxAckOutcome::Sent {
            tx_power_warning_dbm: None,
        });
    };
    let error = match ack.error.as_ref().map(Text::as_str) {
        None | Some("") | Some("NONE") => None,
        Some("TOO_LATE") => Some(TxAckError::TooLate),
        Some("TOO_EARLY") => Some(TxAckError::TooEarly),
        Some("COLLISION_PACKET") => Some(TxAckError::CollisionPacket),
        Some("COLLISION_BEACON") => Some(TxAckError::CollisionBeacon),
        Some("TX_FREQ") => Some(TxAckError::TxFreq),
        Some("TX_POWER") => Some(TxAckError::TxPower {
            power_dbm: power(ack.value),
        }),
        Some("GPS_UNLOCKED") => Some(TxAckError::GpsUnlocked),
        Some(other) => Some(TxAckError::Other(
            other.chars().take(MAX_OTHER_ERROR_CHARS).collect(),
        )),
    };
    if let Some(e) = error {
        return Ok(TxAckOutcome::Rejected(e));
    }
    // A warning means the packet was scheduled; only TX_POWER carries a value we keep.
    let tx_power_warning_dbm = match ack.warn.as_ref().map(Text::as_str) {
        Some("TX_POWER") => power(ack.value),
        _ => None,
    };
    Ok(TxAckOutcome::Sent {
        tx_power_warning_dbm,
    })
}

#[derive(Serialize)]
struct OutTxpkAck<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<i32>,
}

#[derive(Serialize)]
struct OutTxAck<'a> {
    txpk_ack: OutTxpkAck<'a>,
}

/// Builds a TX_ACK the way an SX1302 forwarder does (for test gateways and tools):
/// no JSON when sent without remark.
pub fn encode_tx_ack(token: u16, gateway_id: Eui64, outcome: &TxAckOutcome) -> Vec<u8> {
    let body = match outcome {
        TxAckOutcome::Sent {
            tx_power_warning_dbm: None,
        }
        | TxAckOutcome::Unacknowledged => None,
        TxAckOutcome::Sent {
            tx_power_warning_dbm: Some(p),
        } => Some(OutTxpkAck {
            error: None,
            warn: Some("TX_POWER"),
            value: Some(*p),
        }),
        TxAckOutcome::Rejected(e) => {
            let (error, value) = match e {
                TxAckError::TooLate => ("TOO_LATE", None),
                TxAckError::TooEarly => ("TOO_EARLY", None),
                TxAckError::CollisionPacket => ("COLLISION_PACKET", None),
                TxAckError::CollisionBeacon => ("COLLISION_BEACON", None),
                TxAckError::TxFreq => ("TX_FREQ", None),
                TxAckError::TxPower { power_dbm } => ("TX_POWER", *power_dbm),
                TxAckError::GpsUnlocked => ("GPS_UNLOCKED", None),
                TxAckError::Other(s) => (s.as_str(), None),
            };
            Some(OutTxpkAck {
                error: Some(error),
                warn: None,
                value,
            })
        }
    };
    let json = body
        .map(|txpk_ack| serde_json::to_vec(&OutTxAck { txpk_ack }).unwrap_or_default())
        .unwrap_or_default();
    let mut out = upstream_prefix(
        PROTOCOL_VERSION,
        token,
        PacketType::TxAck,
        gateway_id,
        json.len(),
    );
    out.extend_from_slice(&json);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{parse_upstream, Upstream};

    fn sent(p: Option<i32>) -> TxAckOutcome {
        TxAckOutcome::Sent {
            tx_power_warning_dbm: p,
        }
    }

    #[test]
    fn forms_of_success() {
        for body in [
            &b""[..],
            b"{}",
            b"{\"txpk_ack\":{}}",
            b"{\"txpk_ack\":{\"error\":\"\"}}",
            b"{\"txpk_ack\":{\"error\":\"NONE\"}}",
            b"  ",
            b"{\"txpk_ack\":{\"error\":\"NONE\",\"tmst\":1234}}",
        ] {
            assert_eq!(decode_tx_ack(body).unwrap(), sent(None), "{body:?}");
        }
        assert_eq!(
            decode_tx_ack(br#"{"txpk_ack":{"warn":"TX_POWER","value":27}}"#).unwrap(),
            sent(Some(27))
        );
    }

    #[test]
    fn every_error_round_trips_through_a_datagram() {
        let gw = Eui64([1; 8]);
        let outcomes = [
            sent(None),
            sent(Some(20)),
            TxAckOutcome::Rejected(TxAckError::TooLate),
            TxAckOutcome::Rejected(TxAckError::TooEarly),
            TxAckOutcome::Rejected(TxAckError::CollisionPacket),
            TxAckOutcome::Rejected(TxAckError::CollisionBeacon),
            TxAckOutcome::Rejected(TxAckError::TxFreq),
            TxAckOutcome::Rejected(TxAckError::TxPower { power_dbm: None }),
            TxAckOutcome::Rejected(TxAckError::TxPower {
                power_dbm: Some(14),
            }),
            TxAckOutcome::Rejected(TxAckError::GpsUnlocked),
            TxAckOutcome::Rejected(TxAckError::Other("UNKNOWN".into())),
        ];
        for (i, o) in outcomes.iter().enumerate() {
            let dgram = encode_tx_ack(i as u16, gw, o);
            let Upstream::TxAck {
                header,
                gateway_id,
                json,
            } = parse_upstream(&dgram).unwrap()
            else {
                panic!()
            };
            assert_eq!((header.token, gateway_id), (i as u16, gw));
            assert_eq!(&decode_tx_ack(json).unwrap(), o);
        }
    }

    #[test]
    fn long_unknown_errors_are_truncated_and_junk_is_an_error() {
        let long = format!(r#"{{"txpk_ack":{{"error":"{}"}}}}"#, "é".repeat(500));
        let TxAckOutcome::Rejected(TxAckError::Other(s)) = decode_tx_ack(long.as_bytes()).unwrap()
        else {
            panic!()
        };
        assert_eq!(s.chars().count(), 64);
        assert!(decode_tx_ack(b"{\"txpk_ack\":").is_err());
        assert!(decode_tx_ack(b"\x01").is_err());
        assert!(decode_tx_ack(b"{\"txpk_ack\":{\"error\":5}}").is_err());
    }
}
