//! What the listener counts. Each count goes to the `metrics` facade (Prometheus
//! once the binary installs a recorder) and to plain atomics that
//! [`crate::GatewayHandle::counters`] snapshots, so tests and the API can read them
//! without a recorder.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::wire::{DatagramError, RxpkError};

/// Why something was dropped. Every drop has exactly one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    // -- whole datagrams --
    /// Shorter than its header.
    Truncated,
    /// Protocol version other than 1 or 2.
    BadVersion,
    /// Type byte is none of the six types.
    UnknownType,
    /// A server-to-gateway type sent to us (or TX_ACK in v1).
    UnexpectedType,
    /// PUSH_DATA body that is not a JSON object of the right shape.
    InvalidJson,
    /// TX_ACK body that is not valid JSON.
    InvalidTxAck,
    /// EUI not in the registry and `allow_unknown` is off.
    UnknownGateway,
    /// `allow_unknown` is on but `max_unknown_gateways` are already tracked.
    RegistryFull,
    /// The gateway exceeded its datagram rate.
    RateLimited,
    /// PULL_DATA (or TX_ACK) for a known gateway from an address other than its
    /// current one, before the old address fell silent.
    AddressConflict,
    /// The source address (IPv4, or IPv6 /64) exceeded its datagram rate
    /// (`rate_limit_per_address_*`), whatever the EUI.
    AddressRateLimited,
    /// PUSH_DATA from an IP address other than the one the gateway's PULL_DATA
    /// comes from (`pin_address`): a spoofer, or a gateway whose address changed
    /// and has not re-pinned yet.
    AddressMismatch,
    /// TX_ACK whose token matches no waiting downlink (late, duplicate or forged).
    UnknownToken,
    // -- single rxpk --
    /// `stat: -1`.
    CrcFailed,
    /// `stat: 0`.
    CrcMissing,
    /// Missing, mistyped or out-of-range field.
    InvalidRxpk,
    /// `data` not base64.
    BadBase64,
    /// `data` longer than 255 bytes.
    PayloadTooLarge,
    /// `modu` not LORA or FSK.
    UnknownModulation,
    /// `datr` unknown for its modulation.
    UnknownDatr,
    // -- stat --
    /// `stat` object with mistyped fields.
    InvalidStat,
    /// `stat` from a gateway whose PULL_DATA address is not known yet
    /// (`pin_address`): nothing says it comes from the gateway.
    StatNotPinned,
    // -- events --
    /// The event channel was full: the consumer is behind.
    QueueFull,
    /// The event receiver was dropped.
    QueueClosed,
}

impl DropReason {
    /// Every reason, in a fixed order.
    pub const ALL: [DropReason; 24] = [
        DropReason::Truncated,
        DropReason::BadVersion,
        DropReason::UnknownType,
        DropReason::UnexpectedType,
        DropReason::InvalidJson,
        DropReason::InvalidTxAck,
        DropReason::UnknownGateway,
        DropReason::RegistryFull,
        DropReason::RateLimited,
        DropReason::AddressConflict,
        DropReason::AddressRateLimited,
        DropReason::AddressMismatch,
        DropReason::UnknownToken,
        DropReason::CrcFailed,
        DropReason::CrcMissing,
        DropReason::InvalidRxpk,
        DropReason::BadBase64,
        DropReason::PayloadTooLarge,
        DropReason::UnknownModulation,
        DropReason::UnknownDatr,
        DropReason::InvalidStat,
        DropReason::StatNotPinned,
        DropReason::QueueFull,
        DropReason::QueueClosed,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadVersion => "bad_version",
            DropReason::UnknownType => "unknown_type",
            DropReason::UnexpectedType => "unexpected_type",
            DropReason::InvalidJson => "invalid_json",
            DropReason::InvalidTxAck => "invalid_tx_ack",
            DropReason::UnknownGateway => "unknown_gateway",
            DropReason::RegistryFull => "registry_full",
            DropReason::RateLimited => "rate_limited",
            DropReason::AddressConflict => "address_conflict",
            DropReason::AddressRateLimited => "address_rate_limited",
            DropReason::AddressMismatch => "address_mismatch",
            DropReason::UnknownToken => "unknown_token",
            DropReason::CrcFailed => "crc_failed",
            DropReason::CrcMissing => "crc_missing",
            DropReason::InvalidRxpk => "invalid_rxpk",
            DropReason::BadBase64 => "bad_base64",
            DropReason::PayloadTooLarge => "payload_too_large",
            DropReason::UnknownModulation => "unknown_modulation",
            DropReason::UnknownDatr => "unknown_datr",
            DropReason::InvalidStat => "invalid_stat",
            DropReason::StatNotPinned => "not_pinned",
            DropReason::QueueFull => "queue_full",
            DropReason::QueueClosed => "queue_closed",
        }
    }

    /// What was dropped: a whole datagram, one rxpk, a stat, or an event.
    pub fn unit(self) -> DropUnit {
        match self {
            DropReason::Truncated
            | DropReason::BadVersion
            | DropReason::UnknownType
            | DropReason::UnexpectedType
            | DropReason::InvalidJson
            | DropReason::InvalidTxAck
            | DropReason::UnknownGateway
            | DropReason::RegistryFull
            | DropReason::RateLimited
            | DropReason::AddressConflict
            | DropReason::AddressRateLimited
            | DropReason::AddressMismatch
            | DropReason::UnknownToken => DropUnit::Datagram,
            DropReason::CrcFailed
            | DropReason::CrcMissing
            | DropReason::InvalidRxpk
            | DropReason::BadBase64
            | DropReason::PayloadTooLarge
            | DropReason::UnknownModulation
            | DropReason::UnknownDatr => DropUnit::Rxpk,
            DropReason::InvalidStat | DropReason::StatNotPinned => DropUnit::Stat,
            DropReason::QueueFull | DropReason::QueueClosed => DropUnit::Event,
        }
    }

    /// The reason for a datagram that failed its header or body check.
    pub fn from_datagram_error(e: &DatagramError, tx_ack: bool) -> Self {
        match e {
            DatagramError::Truncated { .. } => DropReason::Truncated,
            DatagramError::UnsupportedVersion { .. } => DropReason::BadVersion,
            DatagramError::UnknownType { .. } => DropReason::UnknownType,
            DatagramError::UnexpectedType { .. } => DropReason::UnexpectedType,
            DatagramError::InvalidJson(_) if tx_ack => DropReason::InvalidTxAck,
            DatagramError::InvalidJson(_) => DropReason::InvalidJson,
        }
    }

    /// The reason for an rxpk that was refused.
    pub fn from_rxpk_error(e: &RxpkError) -> Self {
        match e {
            RxpkError::CrcFailed => DropReason::CrcFailed,
            RxpkError::CrcMissing => DropReason::CrcMissing,
            RxpkError::Json(_)
            | RxpkError::Missing { .. }
            | RxpkError::OutOfRange { .. }
            | RxpkError::UnknownCodeRate => DropReason::InvalidRxpk,
            RxpkError::BadBase64(_) => DropReason::BadBase64,
            RxpkError::PayloadTooLarge { .. } => DropReason::PayloadTooLarge,
            RxpkError::UnknownModulation => DropReason::UnknownModulation,
            RxpkError::UnknownDataRate => DropReason::UnknownDatr,
        }
    }
}

/// The unit a [`DropReason`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropUnit {
    /// A whole datagram (`lorikeet_gateway_datagrams_dropped_total`).
    Datagram,
    /// One rxpk (`lorikeet_gateway_rxpk_dropped_total`).
    Rxpk,
    /// One stat object (`lorikeet_gateway_stats_dropped_total`).
    Stat,
    /// One event for the network server (`lorikeet_gateway_events_dropped_total`).
    Event,
}

impl DropUnit {
    fn metric(self) -> &'static str {
        match self {
            DropUnit::Datagram => "lorikeet_gateway_datagrams_dropped_total",
            DropUnit::Rxpk => "lorikeet_gateway_rxpk_dropped_total",
            DropUnit::Stat => "lorikeet_gateway_stats_dropped_total",
            DropUnit::Event => "lorikeet_gateway_events_dropped_total",
        }
    }
}

/// Counts that are not drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    DatagramsReceived,
    DatagramsAccepted,
    AcksSent,
    AckSendErrors,
    UplinksForwarded,
    StatsForwarded,
    DownlinksSent,
    DownlinkTimeouts,
    TxAcksMatched,
    AddressTakeovers,
    RecvErrors,
}

impl Count {
    const N: usize = 11;

    fn metric(self) -> &'static str {
        match self {
            Count::DatagramsReceived => "lorikeet_gateway_datagrams_received_total",
            Count::DatagramsAccepted => "lorikeet_gateway_datagrams_accepted_total",
            Count::AcksSent => "lorikeet_gateway_acks_sent_total",
            Count::AckSendErrors => "lorikeet_gateway_ack_send_errors_total",
            Count::UplinksForwarded => "lorikeet_gateway_uplinks_forwarded_total",
            Count::StatsForwarded => "lorikeet_gateway_stats_forwarded_total",
            Count::DownlinksSent => "lorikeet_gateway_downlinks_sent_total",
            Count::DownlinkTimeouts => "lorikeet_gateway_downlink_timeouts_total",
            Count::TxAcksMatched => "lorikeet_gateway_tx_acks_total",
            Count::AddressTakeovers => "lorikeet_gateway_address_takeovers_total",
            Count::RecvErrors => "lorikeet_gateway_recv_errors_total",
        }
    }
}

/// Registers help texts for every metric with the installed `metrics` recorder
/// (call once, after installing it; without a recorder it does nothing).
pub fn describe_metrics() {
    for unit in [
        DropUnit::Datagram,
        DropUnit::Rxpk,
        DropUnit::Stat,
        DropUnit::Event,
    ] {
        let help = match unit {
            DropUnit::Datagram => "Gateway datagrams dropped, by reason",
            DropUnit::Rxpk => "Received packets (rxpk) dropped, by reason",
            DropUnit::Stat => "Gateway status reports dropped, by reason",
            DropUnit::Event => "Events the network server did not take in time, by reason",
        };
        metrics::describe_counter!(unit.metric(), help);
    }
    for (what, help) in [
        (
            Count::DatagramsReceived,
            "Datagrams read from the gateway socket",
        ),
        (
            Count::DatagramsAccepted,
            "Datagrams that passed header, policy and body checks",
        ),
        (Count::AcksSent, "PUSH_ACK and PULL_ACK sent"),
        (Count::AckSendErrors, "Acks the socket refused"),
        (
            Count::UplinksForwarded,
            "Uplinks handed to the network server",
        ),
        (
            Count::StatsForwarded,
            "Gateway status reports handed to the network server",
        ),
        (Count::DownlinksSent, "PULL_RESP datagrams sent"),
        (
            Count::DownlinkTimeouts,
            "Downlinks whose TX_ACK did not come in time",
        ),
        (
            Count::TxAcksMatched,
            "TX_ACKs matched to a waiting downlink",
        ),
        (
            Count::AddressTakeovers,
            "Gateway downlink addresses moved after the old one fell silent",
        ),
        (Count::RecvErrors, "Gateway socket receive errors"),
    ] {
        metrics::describe_counter!(what.metric(), help);
    }
    metrics::describe_counter!(
        "lorikeet_gateway_tx_ack_results_total",
        "TX_ACK results, by result"
    );
}

/// The live counters (atomics, relaxed: they are statistics, not synchronisation).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    dropped: [AtomicU64; DropReason::ALL.len()],
    counts: [AtomicU64; Count::N],
}

impl Counters {
    pub(crate) fn count_drop(&self, reason: DropReason) {
        if let Some(c) = self.dropped.get(reason.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        metrics::counter!(reason.unit().metric(), "reason" => reason.as_str()).increment(1);
    }

    pub(crate) fn add(&self, what: Count, n: u64) {
        if let Some(c) = self.counts.get(what as usize) {
            c.fetch_add(n, Ordering::Relaxed);
        }
        metrics::counter!(what.metric()).increment(n);
    }

    pub(crate) fn inc(&self, what: Count) {
        self.add(what, 1);
    }

    /// A TX_ACK result, labelled (`sent`, `too_late`, …), besides the plain count.
    pub(crate) fn tx_ack_result(&self, result: &'static str) {
        self.inc(Count::TxAcksMatched);
        metrics::counter!("lorikeet_gateway_tx_ack_results_total", "result" => result).increment(1);
    }

    pub(crate) fn snapshot(&self) -> CountersSnapshot {
        let get = |w: Count| {
            self.counts
                .get(w as usize)
                .map_or(0, |c| c.load(Ordering::Relaxed))
        };
        let mut dropped = [0u64; DropReason::ALL.len()];
        for (slot, c) in dropped.iter_mut().zip(self.dropped.iter()) {
            *slot = c.load(Ordering::Relaxed);
        }
        CountersSnapshot {
            datagrams_received: get(Count::DatagramsReceived),
            datagrams_accepted: get(Count::DatagramsAccepted),
            acks_sent: get(Count::AcksSent),
            ack_send_errors: get(Count::AckSendErrors),
            uplinks_forwarded: get(Count::UplinksForwarded),
            stats_forwarded: get(Count::StatsForwarded),
            downlinks_sent: get(Count::DownlinksSent),
            downlink_timeouts: get(Count::DownlinkTimeouts),
            tx_acks_matched: get(Count::TxAcksMatched),
            address_takeovers: get(Count::AddressTakeovers),
            recv_errors: get(Count::RecvErrors),
            dropped,
        }
    }
}

/// A copy of the counters at one moment, for tests, the API and debugging.
///
/// Every received datagram is either accepted or dropped for one datagram-level
/// reason: `datagrams_received == datagrams_accepted + dropped_total(DropUnit::Datagram)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Datagrams read from the socket.
    pub datagrams_received: u64,
    /// Datagrams that passed header, policy and body checks.
    pub datagrams_accepted: u64,
    /// PUSH_ACK and PULL_ACK sent.
    pub acks_sent: u64,
    /// Acks the socket refused (e.g. send buffer full).
    pub ack_send_errors: u64,
    /// Uplinks handed to the event channel.
    pub uplinks_forwarded: u64,
    /// Gateway stats handed to the event channel.
    pub stats_forwarded: u64,
    /// PULL_RESP datagrams sent.
    pub downlinks_sent: u64,
    /// Downlinks whose TX_ACK did not come in time.
    pub downlink_timeouts: u64,
    /// TX_ACKs matched to a waiting downlink.
    pub tx_acks_matched: u64,
    /// Downlink addresses moved to a new address after the old one fell silent.
    pub address_takeovers: u64,
    /// Socket receive errors (e.g. ICMP port unreachable reported on the socket).
    pub recv_errors: u64,
    dropped: [u64; DropReason::ALL.len()],
}

impl CountersSnapshot {
    /// How many were dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get(reason.index()).copied().unwrap_or(0)
    }

    /// All drops of one unit.
    pub fn dropped_total(&self, unit: DropUnit) -> u64 {
        DropReason::ALL
            .iter()
            .filter(|r| r.unit() == unit)
            .map(|r| self.dropped(*r))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_index_their_own_slot_and_have_unique_labels() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut labels: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), DropReason::ALL.len());
    }

    #[test]
    fn snapshot_reads_back_counts() {
        let c = Counters::default();
        c.count_drop(DropReason::RateLimited);
        c.count_drop(DropReason::RateLimited);
        c.count_drop(DropReason::CrcFailed);
        c.inc(Count::DatagramsReceived);
        let s = c.snapshot();
        assert_eq!(s.dropped(DropReason::RateLimited), 2);
        assert_eq!(s.dropped_total(DropUnit::Datagram), 2);
        assert_eq!(s.dropped_total(DropUnit::Rxpk), 1);
        assert_eq!(s.datagrams_received, 1);
    }
}
