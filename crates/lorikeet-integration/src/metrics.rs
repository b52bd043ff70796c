//! Metric names (all `lorikeet_integration_*`) and their help texts.

/// Webhook requests, by `result` (`delivered`, `failed`).
pub const WEBHOOK_REQUESTS: &str = "lorikeet_integration_webhook_requests_total";
/// Failed webhook requests, by `reason` (`timeout`, `connect`, `status`, `request`,
/// `refused_target` (the SSRF guard refused the address), `config`, `unsupported`).
pub const WEBHOOK_FAILURES: &str = "lorikeet_integration_webhook_failures_total";
/// Duration of webhook requests.
pub const WEBHOOK_DURATION: &str = "lorikeet_integration_webhook_request_duration_seconds";
/// Webhook requests running.
pub const WEBHOOK_IN_FLIGHT: &str = "lorikeet_integration_webhook_in_flight";
/// Deliveries held in memory (waiting or running).
pub const WEBHOOK_HELD: &str = "lorikeet_integration_webhook_held";
/// Claimed rows left in the database for later, by `reason` (`lane_full`,
/// `unknown_integration`, `lease_short`).
pub const WEBHOOK_DEFERRED: &str = "lorikeet_integration_webhook_deferred_total";
/// Events moved into the retry outbox, by `reason` (`failed`: its delivery failed;
/// `behind_retry`: an earlier event of its device waits for a retry).
pub const WEBHOOK_SPILLED: &str = "lorikeet_integration_webhook_spilled_total";
/// Rows dropped undelivered after `max_attempt_age_s`.
pub const WEBHOOK_EXPIRED: &str = "lorikeet_integration_webhook_expired_total";
/// Undelivered events per integration, label `integration`.
pub const BACKLOG: &str = "lorikeet_integration_backlog";
/// Storage calls of the integrations that failed, by `op`.
pub const STORAGE_ERRORS: &str = "lorikeet_integration_storage_errors_total";
/// Live events the integrations missed because they fell behind the event stream.
pub const LIVE_LAGGED: &str = "lorikeet_integration_live_events_lagged_total";
/// 1 while connected to the MQTT broker.
pub const MQTT_CONNECTED: &str = "lorikeet_integration_mqtt_connected";
/// 1 while the command subscription is acknowledged.
pub const MQTT_SUBSCRIBED: &str = "lorikeet_integration_mqtt_subscribed";
/// Successful connections to the broker.
pub const MQTT_CONNECTS: &str = "lorikeet_integration_mqtt_connects_total";
/// Lost or failed broker connections.
pub const MQTT_CONNECTION_ERRORS: &str = "lorikeet_integration_mqtt_connection_errors_total";
/// Events written to the broker connection.
pub const MQTT_PUBLISHED: &str = "lorikeet_integration_mqtt_published_total";
/// Events not published, by `reason` (`queue_full`, `too_large`, `bad_topic`).
pub const MQTT_DROPPED: &str = "lorikeet_integration_mqtt_dropped_total";
/// Downlink commands, by `result` (`enqueued`, `duplicate`, or the refusal reason).
pub const MQTT_COMMANDS: &str = "lorikeet_integration_mqtt_commands_total";
/// Downlink commands from broker integrations (AMQP `commandQueue`, NATS
/// `commandSubject`), by `kind` and `result` (`enqueued` or the refusal reason).
pub const COMMANDS: &str = "lorikeet_integration_commands_total";
/// Failed or lost connections of the command readers, by `kind`.
pub const COMMAND_CONNECTION_ERRORS: &str = "lorikeet_integration_command_connection_errors_total";

/// Registers help texts with the installed recorder (call once, after installing it).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(WEBHOOK_REQUESTS, "Webhook requests, by result");
    describe_counter!(
        COMMANDS,
        "Downlink commands from broker integrations, by kind and result"
    );
    describe_counter!(
        COMMAND_CONNECTION_ERRORS,
        "Failed or lost connections of the broker command readers, by kind"
    );
    describe_counter!(WEBHOOK_FAILURES, "Failed webhook requests, by reason");
    describe_histogram!(
        WEBHOOK_DURATION,
        Unit::Seconds,
        "Duration of webhook requests"
    );
    describe_gauge!(WEBHOOK_IN_FLIGHT, "Webhook requests running");
    describe_gauge!(
        WEBHOOK_HELD,
        "Webhook deliveries held in memory (waiting or running)"
    );
    describe_counter!(
        WEBHOOK_DEFERRED,
        "Claimed outbox rows left in the database for later, by reason"
    );
    describe_counter!(
        WEBHOOK_SPILLED,
        "Events moved into the retry outbox, by reason"
    );
    describe_counter!(
        WEBHOOK_EXPIRED,
        "Outbox rows dropped undelivered after webhook.max_attempt_age_s"
    );
    describe_gauge!(BACKLOG, "Undelivered events, by integration");
    describe_counter!(
        STORAGE_ERRORS,
        "Failed storage calls of the integrations, by op"
    );
    describe_counter!(
        LIVE_LAGGED,
        "Live events missed because the integrations fell behind"
    );
    describe_gauge!(MQTT_CONNECTED, "1 while connected to the MQTT broker");
    describe_gauge!(
        MQTT_SUBSCRIBED,
        "1 while the MQTT command subscription is acknowledged"
    );
    describe_counter!(MQTT_CONNECTS, "Successful MQTT broker connections");
    describe_counter!(
        MQTT_CONNECTION_ERRORS,
        "Lost or failed MQTT broker connections"
    );
    describe_counter!(
        MQTT_PUBLISHED,
        "Events written to the MQTT broker connection"
    );
    describe_counter!(MQTT_DROPPED, "Events not published to MQTT, by reason");
    describe_counter!(MQTT_COMMANDS, "MQTT downlink commands, by result");
}
