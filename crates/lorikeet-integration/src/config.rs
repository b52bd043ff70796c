//! Settings of the integrations: `[webhook]` (delivery of the HTTP outbox) and `[mqtt]`
//! (the server-level MQTT publisher and downlink-command subscriber).
//!
//! Both are plain serde structs with defaults and `deny_unknown_fields`, so the binary
//! can embed them as sections of its own configuration; [`IntegrationConfig::validate`]
//! checks what the types cannot and names the offending key.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::signature::SignatureVersion;

/// Everything the webhook worker and the MQTT integration needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrationConfig {
    /// `[webhook]`: HTTP delivery.
    pub webhook: WebhookConfig,
    /// `[mqtt]`: the MQTT integration (off while `server` is empty).
    pub mqtt: MqttConfig,
}

impl IntegrationConfig {
    /// Checks ranges and formats; the error names the key (`webhook.timeout_ms`, …).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.webhook.validate()?;
        self.mqtt.validate()
    }
}

/// `[webhook]`: how the HTTP outbox is delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Whole-request timeout (connect, send, response headers and the part of the
    /// body we read), in ms. Default 5000.
    pub timeout_ms: u64,
    /// Give up on an event not delivered this long after it happened (seconds; the
    /// row is dropped with an error log and counted). Default 86400 (24 h).
    pub max_attempt_age_s: u64,
    /// Retry backoff: the n-th retry waits a random time in
    /// `[0, min(backoff_max_ms, backoff_base_ms * 2^n)]` ("full jitter"). Default 1000.
    pub backoff_base_ms: u64,
    /// Upper bound of one retry wait, in ms; also the longest an endpoint that came
    /// back waits for its retries. Default 300000 (5 min).
    pub backoff_max_ms: u64,
    /// Requests in flight over all endpoints. Default 64.
    pub concurrency: usize,
    /// Requests in flight to one integration (different devices; one device's events
    /// are always sent one after the other). Default 16.
    pub concurrency_per_integration: usize,
    /// Claimed events that may wait in memory for one integration beyond those in
    /// flight; more are left in the database for later, so one slow endpoint cannot
    /// fill the workers' memory. Default 512.
    pub queue_per_integration: usize,
    /// Most new events read, or outbox rows claimed, per database round trip.
    /// Default 200.
    pub claim_batch: u32,
    /// How often new events and due retries are polled for when nothing announced
    /// them, in ms. New events are picked up sooner: each commit wakes the worker.
    /// Default 1000.
    pub poll_interval_ms: u64,
    /// How often the backlog gauge of each integration is refreshed, in seconds. Default 30.
    pub backlog_refresh_s: u64,
    /// On shutdown, how long requests in flight may still finish, in ms; the rest are
    /// abandoned and retried after a restart. Default 5000.
    pub shutdown_grace_ms: u64,
    /// Form of `X-Lorikeet-Signature`: `v1` (default, `t=<unix>,v1=<hex HMAC of
    /// "t.body">`, replay-resistant) or `legacy` (`sha256=<hex HMAC of body>`, for
    /// receivers written before v1).
    pub signature_version: SignatureVersion,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            timeout_ms: 5_000,
            max_attempt_age_s: 86_400,
            backoff_base_ms: 1_000,
            backoff_max_ms: 300_000,
            concurrency: 64,
            concurrency_per_integration: 16,
            queue_per_integration: 512,
            claim_batch: 200,
            poll_interval_ms: 1_000,
            backlog_refresh_s: 30,
            shutdown_grace_ms: 5_000,
            signature_version: SignatureVersion::V1,
        }
    }
}

/// Longest accepted `timeout_ms` (a webhook that needs more than a minute is broken).
const MAX_TIMEOUT_MS: u64 = 60_000;

impl WebhookConfig {
    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// How long a claimed row stays reserved for this process. Long enough for the
    /// rows waiting in memory to be sent (they are dropped from memory, not sent, if
    /// their lease runs short), short enough that rows of a crashed process come back
    /// soon: three request timeouts, at least a minute.
    pub fn lease(&self) -> Duration {
        (self.timeout() * 3).max(Duration::from_secs(60))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        fn range(key: &'static str, v: u64, min: u64, max: u64) -> Result<(), ConfigError> {
            if v < min || v > max {
                return Err(ConfigError::new(
                    key,
                    format!("{v} is outside {min}..={max}"),
                ));
            }
            Ok(())
        }
        range("webhook.timeout_ms", self.timeout_ms, 100, MAX_TIMEOUT_MS)?;
        range(
            "webhook.max_attempt_age_s",
            self.max_attempt_age_s,
            1,
            30 * 86_400,
        )?;
        range(
            "webhook.backoff_base_ms",
            self.backoff_base_ms,
            1,
            3_600_000,
        )?;
        range(
            "webhook.backoff_max_ms",
            self.backoff_max_ms,
            self.backoff_base_ms,
            86_400_000,
        )?;
        range("webhook.concurrency", self.concurrency as u64, 1, 4_096)?;
        range(
            "webhook.concurrency_per_integration",
            self.concurrency_per_integration as u64,
            1,
            self.concurrency as u64,
        )?;
        range(
            "webhook.queue_per_integration",
            self.queue_per_integration as u64,
            0,
            10_000,
        )?;
        range(
            "webhook.claim_batch",
            u64::from(self.claim_batch),
            1,
            10_000,
        )?;
        range(
            "webhook.poll_interval_ms",
            self.poll_interval_ms,
            10,
            60_000,
        )?;
        range(
            "webhook.backlog_refresh_s",
            self.backlog_refresh_s,
            1,
            86_400,
        )?;
        range(
            "webhook.shutdown_grace_ms",
            self.shutdown_grace_ms,
            0,
            600_000,
        )?;
        Ok(())
    }
}

/// `[mqtt]`: the server-level MQTT integration. Every event of every application is
/// published; downlink commands are subscribed to. Off while `server` is empty.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker, `mqtt://HOST[:PORT]` or `tcp://HOST[:PORT]` (port 1883 by default).
    /// Empty: MQTT off. (TLS brokers are not supported yet.)
    pub server: String,
    /// User name; empty: connect without credentials.
    pub username: String,
    /// Password (never logged).
    pub password: String,
    /// QoS of publications and of the command subscription: 0, 1 or 2. Default 1.
    pub qos: u8,
    /// Client id; empty: `lorikeet-` and a random suffix (each process its own, so two
    /// servers on one broker do not disconnect each other).
    pub client_id: String,
    /// First topic level(s). Default `application`: events go to
    /// `application/{applicationId}/device/{devEui}/event/{type}`.
    pub topic_prefix: String,
    /// MQTT keep-alive, in seconds. Default 30.
    pub keep_alive_s: u64,
    /// Connect (TCP + CONNACK) timeout, in seconds. Default 5.
    pub connect_timeout_s: u64,
    /// First wait before reconnecting after the broker went away, in ms; doubled
    /// up to `reconnect_max_ms`. Default 500.
    pub reconnect_base_ms: u64,
    /// Longest wait between reconnect attempts, in ms. Default 30000.
    pub reconnect_max_ms: u64,
    /// Events waiting to be published while the broker is slow or away; beyond it new
    /// events are dropped (counted). Default 10000.
    pub max_queued: usize,
    /// Largest publication, in bytes (an `up` heard by many gateways is a few KiB).
    /// Larger events are dropped (counted). Default 262144.
    pub max_payload_bytes: usize,
    /// Subscribe to commands through the shared subscription
    /// `$share/{group}/…` so that several servers on one broker each take a share of
    /// the commands instead of all enqueueing every one. Empty (default): a plain
    /// subscription (some brokers mishandle shared subscriptions).
    pub shared_subscription_group: String,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            server: String::new(),
            username: String::new(),
            password: String::new(),
            qos: 1,
            client_id: String::new(),
            topic_prefix: "application".into(),
            keep_alive_s: 30,
            connect_timeout_s: 5,
            reconnect_base_ms: 500,
            reconnect_max_ms: 30_000,
            max_queued: 10_000,
            max_payload_bytes: 256 << 10,
            shared_subscription_group: String::new(),
        }
    }
}

impl fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttConfig")
            .field("server", &self.server)
            .field("username", &self.username)
            .field(
                "password",
                &if self.password.is_empty() { "" } else { "***" },
            )
            .field("qos", &self.qos)
            .field("client_id", &self.client_id)
            .field("topic_prefix", &self.topic_prefix)
            .field("keep_alive_s", &self.keep_alive_s)
            .field("connect_timeout_s", &self.connect_timeout_s)
            .field("reconnect_base_ms", &self.reconnect_base_ms)
            .field("reconnect_max_ms", &self.reconnect_max_ms)
            .field("max_queued", &self.max_queued)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("shared_subscription_group", &self.shared_subscription_group)
            .finish()
    }
}

/// A parsed `mqtt.server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerAddress {
    pub host: String,
    pub port: u16,
}

impl MqttConfig {
    /// Whether MQTT is configured.
    pub fn enabled(&self) -> bool {
        !self.server.trim().is_empty()
    }

    pub(crate) fn broker(&self) -> Result<BrokerAddress, ConfigError> {
        let bad = |why: &str| {
            ConfigError::new(
                "mqtt.server",
                format!("{:?}: {why} (expected mqtt://HOST[:PORT])", self.server),
            )
        };
        let s = self.server.trim();
        let rest = if let Some(r) = s.strip_prefix("mqtt://") {
            r
        } else if let Some(r) = s.strip_prefix("tcp://") {
            r
        } else if s.starts_with("mqtts://") || s.starts_with("ssl://") || s.starts_with("wss://") {
            return Err(bad("TLS brokers are not supported yet"));
        } else {
            return Err(bad("unknown scheme"));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') || rest.contains('?') {
            return Err(bad(
                "no path, query or credentials in the URL (use mqtt.username / mqtt.password)",
            ));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            // [::1]:1883
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("bad port"))?,
                None if after.is_empty() => 1883,
                None => return Err(bad("bad port")),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad("bad port"))?),
                None => (rest.to_string(), 1883),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok(BrokerAddress { host, port })
    }

    pub(crate) fn qos(&self) -> rumqttc::QoS {
        match self.qos {
            0 => rumqttc::QoS::AtMostOnce,
            2 => rumqttc::QoS::ExactlyOnce,
            _ => rumqttc::QoS::AtLeastOnce,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        self.broker()?;
        if self.qos > 2 {
            return Err(ConfigError::new(
                "mqtt.qos",
                format!("{} is not 0, 1 or 2", self.qos),
            ));
        }
        if !crate::mqtt::valid_prefix(&self.topic_prefix) {
            return Err(ConfigError::new(
                "mqtt.topic_prefix",
                format!(
                    "{:?}: must be non-empty, without '+', '#', a leading '$' or empty levels",
                    self.topic_prefix
                ),
            ));
        }
        if self.client_id.len() > 128 {
            return Err(ConfigError::new("mqtt.client_id", "longer than 128 bytes"));
        }
        let g = &self.shared_subscription_group;
        if g.contains(['/', '+', '#']) {
            return Err(ConfigError::new(
                "mqtt.shared_subscription_group",
                format!("{g:?} must not contain '/', '+' or '#'"),
            ));
        }
        if !self.password.is_empty() && self.username.is_empty() {
            return Err(ConfigError::new(
                "mqtt.password",
                "a password needs a username",
            ));
        }
        let checks: [(&'static str, u64, u64, u64); 6] = [
            ("mqtt.keep_alive_s", self.keep_alive_s, 5, 3_600),
            ("mqtt.connect_timeout_s", self.connect_timeout_s, 1, 120),
            (
                "mqtt.reconnect_base_ms",
                self.reconnect_base_ms,
                10,
                600_000,
            ),
            (
                "mqtt.reconnect_max_ms",
                self.reconnect_max_ms,
                self.reconnect_base_ms,
                3_600_000,
            ),
            ("mqtt.max_queued", self.max_queued as u64, 1, 10_000_000),
            (
                "mqtt.max_payload_bytes",
                self.max_payload_bytes as u64,
                1_024,
                64 << 20,
            ),
        ];
        for (key, v, min, max) in checks {
            if v < min || v > max {
                return Err(ConfigError::new(
                    key,
                    format!("{v} is outside {min}..={max}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_mqtt_is_off() {
        let c = IntegrationConfig::default();
        c.validate().unwrap();
        assert!(!c.mqtt.enabled());
        assert_eq!(c.webhook.timeout(), Duration::from_secs(5));
        assert_eq!(c.webhook.max_attempt_age_s, 86_400);
        assert_eq!(c.mqtt.topic_prefix, "application");
        assert_eq!(c.mqtt.qos, 1);
        assert_eq!(c.webhook.signature_version, SignatureVersion::V1);
    }

    #[test]
    fn signature_version_names() {
        let w: WebhookConfig = serde_json::from_str(r#"{"signature_version":"legacy"}"#).unwrap();
        assert_eq!(w.signature_version, SignatureVersion::Legacy);
        let w: WebhookConfig = serde_json::from_str(r#"{"signature_version":"v1"}"#).unwrap();
        assert_eq!(w.signature_version, SignatureVersion::V1);
        assert!(serde_json::from_str::<WebhookConfig>(r#"{"signature_version":"v2"}"#).is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = serde_json::from_str::<WebhookConfig>(r#"{"timeout":5}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = serde_json::from_str::<MqttConfig>(r#"{"host":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[test]
    fn broker_urls() {
        let m = |s: &str| MqttConfig {
            server: s.into(),
            ..MqttConfig::default()
        };
        assert_eq!(
            m("mqtt://127.0.0.1:1883").broker().unwrap(),
            BrokerAddress {
                host: "127.0.0.1".into(),
                port: 1883
            }
        );
        assert_eq!(m("tcp://broker").broker().unwrap().port, 1883);
        assert_eq!(m("mqtt://[::1]:1884").broker().unwrap().host, "::1");
        for bad in [
            "mqtts://b:8883",
            "http://b",
            "mqtt://",
            "mqtt://b:x",
            "mqtt://u:p@b",
            "mqtt://b/path",
            "mqtt://b:0",
        ] {
            let e = m(bad).validate().unwrap_err();
            assert_eq!(e.key, "mqtt.server", "{bad}: {e}");
        }
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let mut c = IntegrationConfig::default();
        c.webhook.timeout_ms = 0;
        assert_eq!(c.validate().unwrap_err().key, "webhook.timeout_ms");
        let mut c = IntegrationConfig::default();
        c.webhook.backoff_max_ms = 10;
        assert_eq!(c.validate().unwrap_err().key, "webhook.backoff_max_ms");
        let mut c = IntegrationConfig::default();
        c.webhook.concurrency_per_integration = 65;
        assert_eq!(
            c.validate().unwrap_err().key,
            "webhook.concurrency_per_integration"
        );
        let mut c = IntegrationConfig::default();
        c.mqtt.server = "mqtt://127.0.0.1".into();
        c.mqtt.qos = 3;
        assert_eq!(c.validate().unwrap_err().key, "mqtt.qos");
        c.mqtt.qos = 1;
        c.mqtt.topic_prefix = "app/+/x".into();
        assert_eq!(c.validate().unwrap_err().key, "mqtt.topic_prefix");
        c.mqtt.topic_prefix = "lorikeet/app".into();
        c.validate().unwrap();
    }

    #[test]
    fn password_is_not_printed() {
        let c = MqttConfig {
            password: "hunter2".into(),
            username: "u".into(),
            ..MqttConfig::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn lease_covers_several_timeouts() {
        let mut w = WebhookConfig::default();
        assert_eq!(w.lease(), Duration::from_secs(60));
        w.timeout_ms = 30_000;
        assert_eq!(w.lease(), Duration::from_secs(90));
    }
}
