//! The Prometheus exporter behind `GET /metrics`: every metric family gets a help
//! text, and latencies are histograms with fixed buckets, so they can be
//! aggregated across instances (summaries' quantiles cannot).

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

/// Upper bounds, in seconds, of the buckets of every `*_seconds` histogram: from
/// half a millisecond (a cached API read, a small SQLite batch) to 10 s (a webhook
/// near its timeout).
pub const LATENCY_BUCKETS_S: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of the buckets of `lorikeet_storage_batch_size` (operations per
/// committed batch; the writer takes at most 4096).
pub const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 4096.0,
];

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// The exporter's configuration (buckets), before it is installed.
pub fn builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS_S)?
        .set_buckets_for_metric(
            Matcher::Full("lorikeet_storage_batch_size".into()),
            BATCH_SIZE_BUCKETS,
        )
}

/// Installs the process-wide recorder and registers every help text; returns the
/// renderer for `/metrics`. Must run inside the Tokio runtime (it starts the
/// upkeep task).
pub fn install() -> Result<lorikeet_api::MetricsRender, BuildError> {
    let handle = builder()?.upkeep_timeout(UPKEEP).install_recorder()?;
    describe();
    Ok(Arc::new(move || handle.render()))
}

/// Registers the help text of every metric Lorikeet records.
pub fn describe() {
    lorikeet_api::describe_metrics();
    lorikeet_storage::describe_metrics();
    lorikeet_gateway::describe_metrics();
    lorikeet_integration::metrics::describe_metrics();
    describe_server();
}

/// The metrics recorded by the server wiring (`crate::server`).
fn describe_server() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "lorikeet_uplink_frames_total",
        "Radio frames received from gateways, before deduplication"
    );
    describe_counter!(
        "lorikeet_uplinks_total",
        "Data uplinks accepted (after deduplication and MIC/FCnt checks)"
    );
    describe_counter!(
        "lorikeet_uplinks_dropped_total",
        "Uplinks dropped by the network server, by reason"
    );
    describe_counter!("lorikeet_joins_total", "Join requests accepted");
    describe_counter!(
        "lorikeet_alerts_total",
        "Alerts that fired or resolved, by rule kind and state (docs/alerts.md)"
    );
    describe_gauge!("lorikeet_alerts_firing", "Alerts firing now");
    describe_counter!(
        "lorikeet_alerts_events_missed_total",
        "Live events the alert task missed by falling behind (it then checks firing silence alerts against the database)"
    );
    describe_counter!(
        "lorikeet_log_events_suppressed_total",
        "Log events about refused uplinks (UPLINK_MIC, UPLINK_F_CNT_RESET, UPLINK_F_CNT_RETRANSMISSION, OTAA) not stored because their DevAddr or DevEUI was over network.refused_uplink_logs_per_minute, by code"
    );
    describe_counter!(
        "lorikeet_feed_entries_applied_total",
        "Provisioning changes (change-feed entries) applied to the live state"
    );
    describe_counter!(
        "lorikeet_downlinks_total",
        "Downlinks handed to gateways, by result (sent, no_answer, rejected)"
    );
    describe_counter!(
        "lorikeet_events_total",
        "Integration events produced, by type"
    );
    describe_counter!(
        "lorikeet_events_dropped_total",
        "Integration events not produced, by reason"
    );
    describe_counter!(
        "lorikeet_codec_errors_total",
        "Payload codec failures, by direction (uplink, downlink)"
    );
    describe_counter!(
        "lorikeet_storage_ops_written_total",
        "Write operations committed by the batched writer"
    );
    describe_counter!(
        "lorikeet_storage_ops_dropped_total",
        "Write operations dropped because they fail on their own (not for an unavailable database, which is retried)"
    );
    describe_counter!(
        "lorikeet_storage_events_migrated_total",
        "Stored events moved from the previous format into the compact one"
    );
    describe_counter!(
        "lorikeet_storage_retries_total",
        "Storage calls retried because the database was unavailable (connection lost, restarting, busy)"
    );
    describe_gauge!(
        "lorikeet_storage_unavailable",
        "1 while the writer waits for the database to come back (writes held, intake sheds), else 0"
    );
    describe_counter!(
        "lorikeet_downlink_windows_busy_total",
        "Receive windows not used because the gateway was already planned to transmit then (another downlink); the next window or gateway was tried"
    );
    describe_counter!(
        "lorikeet_downlink_windows_duty_cycle_total",
        "Receive windows (or Class C moments) not used because the gateway's duty-cycle budget for the sub-band was spent; another window or gateway was tried, or the Class C frame waits"
    );
    describe_counter!(
        "lorikeet_downlinks_refused_total",
        "Downlinks a gateway refused in its TX_ACK, by its error code (TOO_LATE, TOO_EARLY, COLLISION_PACKET, COLLISION_BEACON, TX_FREQ, TX_POWER, GPS_UNLOCKED, other)"
    );
    describe_counter!(
        "lorikeet_gateway_downlinks_planned_total",
        "Downlink frames handed to each gateway (exported every second)"
    );
    describe_counter!(
        "lorikeet_gateway_traffic_flush_deferred_total",
        "Flushes of per-gateway traffic counters put off to the next one because the \
         writer queue was full (nothing is lost)"
    );
    describe_counter!(
        "lorikeet_gateway_downlinks_sent_total",
        "Downlink frames each gateway accepted (TX_ACK without error, or no TX_ACK)"
    );
    describe_counter!(
        "lorikeet_gateway_downlinks_refused_total",
        "Per gateway: windows the scheduler did not use (by=scheduler: collision, duty_cycle, too_late, dwell_time, tx_freq) and frames the gateway refused (by=gateway: its TX_ACK error)"
    );
    describe_gauge!(
        "lorikeet_gateway_duty_cycle_utilisation",
        "Share of each gateway's duty-cycle budget per sub-band used in the sliding hour (1 = spent)"
    );
    describe_counter!(
        "lorikeet_downlinks_held_total",
        "Downlink frames that waited for the writes they depend on (session, counters, JoinNonce) to commit before leaving"
    );
    describe_histogram!(
        "lorikeet_storage_batch_size",
        Unit::Count,
        "Operations per batch committed by the writer"
    );
    describe_histogram!(
        "lorikeet_storage_batch_seconds",
        Unit::Seconds,
        "Time to commit one batch of the writer"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_render_as_histograms_with_help() {
        // A local recorder: the global one belongs to the binary.
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe();
            metrics::histogram!("lorikeet_api_request_duration_seconds", "route" => "/x")
                .record(0.003);
            metrics::histogram!("lorikeet_storage_batch_size").record(7.0);
        });
        let text = handle.render();
        for family in [
            "lorikeet_api_request_duration_seconds",
            "lorikeet_storage_batch_size",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} histogram")),
                "{family} is not a histogram:\n{text}"
            );
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "{family} has no help:\n{text}"
            );
        }
        assert!(
            text.contains(
                r#"lorikeet_api_request_duration_seconds_bucket{route="/x",le="0.005"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"lorikeet_storage_batch_size_bucket{le="10"} 1"#),
            "{text}"
        );
    }
}
