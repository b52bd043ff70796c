//! The body of the `semtech_udp` cargo-fuzz target (`fuzz/`, a separate nightly-only
//! workspace), kept here so that the stable test suite runs exactly the same code
//! over the committed seed corpus (`tests/fuzz_corpus.rs`). Not an API: it panics
//! when an invariant does not hold, which is what a fuzzer needs and nothing else
//! does, and returns whether the datagram was accepted (so the seed test can tell
//! that its seeds reach the invariants).

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::types::{GatewayStats, TxAckOutcome, UplinkFrame};
use crate::wire::{self, Downstream, PacketType, Upstream};

/// A fixed reception time: the decoders take the clock as an argument.
fn received_at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// `rxpk.time` travels with microseconds (what forwarders print and what
/// [`wire::encode_push_data`] writes); finer digits a datagram may carry are not kept.
fn to_micros(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp_micros(t.timestamp_micros()))
}

/// `stat.time` travels with whole seconds (`2014-01-12 08:59:28 GMT`).
fn to_seconds(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.timestamp(), 0))
}

fn comparable_uplink(f: &UplinkFrame) -> UplinkFrame {
    UplinkFrame {
        time: to_micros(f.time),
        ..f.clone()
    }
}

fn comparable_stats(s: &GatewayStats) -> GatewayStats {
    GatewayStats {
        time: to_seconds(s.time),
        ..s.clone()
    }
}

/// Whether two doubles are the same JSON number. serde_json's default parser reads
/// a decimal to within an ULP of the nearest double (exactly for the short decimals
/// forwarders print), so a long one such as `1.077777777777778e55` may come back
/// an ULP off once printed and read again: that is the same number.
fn same_number(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 2.0 * f64::EPSILON * a.abs().max(b.abs())
}

/// `after` with each float that is [`same_number`] as `before`'s replaced by
/// `before`'s, so the structs compare equal exactly when nothing else changed.
fn settle_stats(mut after: GatewayStats, before: &GatewayStats) -> GatewayStats {
    fn settle(a: &mut Option<f64>, b: Option<f64>) {
        if let (Some(x), Some(y)) = (*a, b) {
            if same_number(x, y) {
                *a = Some(y);
            }
        }
    }
    settle(&mut after.ack_ratio_pct, before.ack_ratio_pct);
    settle(&mut after.temperature_c, before.temperature_c);
    if let (Some(a), Some(b)) = (&mut after.location, &before.location) {
        let mut lat = Some(a.latitude_deg);
        let mut lon = Some(a.longitude_deg);
        settle(&mut lat, Some(b.latitude_deg));
        settle(&mut lon, Some(b.longitude_deg));
        settle(&mut a.altitude_m, b.altitude_m);
        a.latitude_deg = lat.unwrap_or(a.latitude_deg);
        a.longitude_deg = lon.unwrap_or(a.longitude_deg);
    }
    after
}

/// `semtech_udp`: what the listener does with every datagram it receives —
/// [`wire::parse_upstream`], then [`wire::decode_push_data`] (PUSH_DATA) or
/// [`wire::decode_tx_ack`] (TX_ACK) — never panics, and what it accepts survives a
/// round trip through the encoders a gateway would use:
/// - PULL_DATA re-encodes to the same 12 bytes, and both PUSH_DATA and PULL_DATA
///   are acknowledged with the same version and token;
/// - the accepted `rxpk`s and `stat` of a PUSH_DATA, re-encoded with
///   [`wire::encode_push_data`], decode to the same values (times at the precision
///   each field travels with);
/// - a TX_ACK outcome, re-encoded with [`wire::encode_tx_ack`], decodes to itself.
pub fn semtech_udp(datagram: &[u8]) -> bool {
    let Ok(upstream) = wire::parse_upstream(datagram) else {
        return false;
    };
    let header = upstream.header();
    let gateway_id = upstream.gateway_id();
    if let Some(ack) = wire::encode_ack(header) {
        match wire::parse_downstream(&ack) {
            Ok(Downstream::PushAck(h)) => {
                assert_eq!(header.packet_type, PacketType::PushData);
                assert_eq!((h.version, h.token), (header.version, header.token));
            }
            Ok(Downstream::PullAck(h)) => {
                assert_eq!(header.packet_type, PacketType::PullData);
                assert_eq!((h.version, h.token), (header.version, header.token));
            }
            other => panic!("the ack of {header:?} reads back as {other:?}"),
        }
    }
    match upstream {
        Upstream::PullData { .. } => {
            let again = wire::encode_pull_data(header.version, header.token, gateway_id);
            assert_eq!(
                datagram.get(..wire::HEADER_WITH_EUI_LEN),
                Some(&again[..]),
                "PULL_DATA re-encodes differently"
            );
            true
        }
        Upstream::PushData { json, .. } => {
            let Ok(push) = wire::decode_push_data(gateway_id, json, received_at()) else {
                return false;
            };
            let uplinks: Vec<UplinkFrame> =
                push.uplinks.into_iter().filter_map(Result::ok).collect();
            let stats = push.stats.and_then(Result::ok);
            let again = wire::encode_push_data(
                header.version,
                header.token,
                gateway_id,
                &uplinks,
                stats.as_ref(),
            );
            let Ok(Upstream::PushData { json: json2, .. }) = wire::parse_upstream(&again) else {
                panic!("a re-encoded PUSH_DATA does not parse: {again:?}");
            };
            let push2 = wire::decode_push_data(gateway_id, json2, received_at())
                .expect("a re-encoded PUSH_DATA body decodes");
            assert_eq!(push2.uplinks.len(), uplinks.len());
            for (before, after) in uplinks.iter().zip(push2.uplinks) {
                let after =
                    after.unwrap_or_else(|e| panic!("re-encoded rxpk {before:?} is refused: {e}"));
                assert_eq!(
                    comparable_uplink(&after),
                    comparable_uplink(before),
                    "rxpk changed in a round trip"
                );
            }
            match (stats, push2.stats) {
                (None, None) => {}
                (Some(before), Some(Ok(after))) => assert_eq!(
                    comparable_stats(&settle_stats(after, &before)),
                    comparable_stats(&before),
                    "stat changed in a round trip"
                ),
                (before, after) => panic!("stat {before:?} came back as {after:?}"),
            }
            true
        }
        Upstream::TxAck { json, .. } => {
            let Ok(outcome) = wire::decode_tx_ack(json) else {
                return false;
            };
            assert_ne!(outcome, TxAckOutcome::Unacknowledged);
            let again = wire::encode_tx_ack(header.token, gateway_id, &outcome);
            let Ok(Upstream::TxAck {
                header: h2,
                gateway_id: g2,
                json: json2,
            }) = wire::parse_upstream(&again)
            else {
                panic!("a re-encoded TX_ACK does not parse: {again:?}");
            };
            assert_eq!((h2.token, g2), (header.token, gateway_id));
            let outcome2 = wire::decode_tx_ack(json2).expect("a re-encoded TX_ACK decodes");
            assert_eq!(outcome2, outcome, "TX_ACK outcome changed in a round trip");
            true
        }
    }
}
