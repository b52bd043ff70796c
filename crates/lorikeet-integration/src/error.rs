//! Error types of the integrations. Delivery failures and refused commands are
//! values that get counted, logged and (for webhooks) retried; none of them ends a loop.

use lorikeet_service::EnqueueError;
use lorikeet_storage::StoreError;

/// A setting that is out of range or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config key {key}: {message}")]
pub struct ConfigError {
    /// `section.key`, e.g. `mqtt.server`.
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(key: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            key,
            message: message.into(),
        }
    }
}

/// Why a stored HTTP integration cannot be used (its config JSON is not a valid
/// [`lorikeet_storage::HttpIntegrationConfig`], or names a URL or header we cannot send).
/// Its rows are retried with backoff, so fixing the integration resumes delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The config JSON does not parse.
    #[error("integration config is not valid: {0}")]
    Config(String),
    /// The URL is not an absolute http(s) URL.
    #[error("webhook URL {url:?} is not usable: {reason}")]
    Url {
        /// The URL as configured.
        url: String,
        /// Why.
        reason: String,
    },
    /// A configured header has an invalid name or value.
    #[error("webhook header {name:?} is not valid: {reason}")]
    Header {
        /// The header name as configured.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Why one webhook request did not count as delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// No complete answer within `webhook.timeout_ms`.
    #[error("timed out after {timeout_ms} ms")]
    Timeout {
        /// The configured timeout.
        timeout_ms: u64,
    },
    /// The connection could not be opened (refused, DNS, TLS handshake…).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The endpoint answered with a status other than 2xx. Only the code and its
    /// standard reason are kept: the response body is never read into an error,
    /// since whoever set the target would see it (`lastError`).
    #[error("HTTP {status}{}{}", reason_phrase(*status), if *redirect { " (redirects are not followed; configure the final URL)" } else { "" })]
    Status {
        /// The status code.
        status: u16,
        /// A 3xx answer.
        redirect: bool,
    },
    /// The target's address is not one this integration may reach (the SSRF guard).
    #[error(transparent)]
    Refused(#[from] lorikeet_service::target::TargetRefused),
    /// The request failed otherwise (connection reset, malformed response…).
    #[error("request failed: {0}")]
    Request(String),
    /// The integration's settings are unusable.
    #[error("{0}")]
    Target(#[from] TargetError),
    /// The integration is of a kind this server does not deliver through the outbox.
    #[error("{0}")]
    Unsupported(&'static str),
    /// Writing into Lorikeet's own database failed (the `postgres` integration).
    #[error("database write failed: {0}")]
    Storage(String),
}

impl DeliveryError {
    /// Metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            DeliveryError::Timeout { .. } => "timeout",
            DeliveryError::Connect(_) => "connect",
            DeliveryError::Status { .. } => "status",
            DeliveryError::Refused(_) => "refused_target",
            DeliveryError::Request(_) => "request",
            DeliveryError::Target(_) => "config",
            DeliveryError::Unsupported(_) => "unsupported",
            DeliveryError::Storage(_) => "storage",
        }
    }
}

/// " Internal Server Error" for 500: the standard reason of a status code.
fn reason_phrase(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map_or_else(String::new, |r| format!(" {r}"))
}

/// Why an MQTT downlink command was refused.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The topic is not `{prefix}/{applicationId}/device/{devEui}/command/down`.
    #[error("topic {topic:?} is not {{prefix}}/{{applicationId}}/device/{{devEui}}/command/down")]
    Topic {
        /// The topic (truncated).
        topic: String,
    },
    /// The payload is larger than any valid command.
    #[error("command is {len} bytes, more than {max}")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON, or a field of the wrong type.
    #[error("command is not valid JSON: {0}")]
    Json(String),
    /// The body's `devEui` is not the one of the topic.
    #[error("devEui {body} in the body does not match {topic} in the topic")]
    DevEuiMismatch {
        /// From the body.
        body: String,
        /// From the topic.
        topic: String,
    },
    /// No such device.
    #[error("device {0} does not exist")]
    UnknownDevice(String),
    /// The device exists but in another application.
    #[error("device {dev_eui} does not belong to application {application_id}")]
    WrongApplication {
        /// The device.
        dev_eui: String,
        /// The application of the topic.
        application_id: String,
    },
    /// A field of the command is wrong (devEui).
    #[error("{0}")]
    Invalid(String),
    /// The shared downlink rule refused it (fPort, data, object, codec, queue full…).
    #[error(transparent)]
    Refused(#[from] EnqueueError),
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StoreError),
}

impl CommandError {
    /// Metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            CommandError::Topic { .. } => "topic",
            CommandError::TooLarge { .. } => "too_large",
            CommandError::Json(_) => "json",
            CommandError::DevEuiMismatch { .. } => "dev_eui_mismatch",
            CommandError::UnknownDevice(_) => "unknown_device",
            CommandError::WrongApplication { .. } => "wrong_application",
            CommandError::Invalid(_) => "invalid",
            CommandError::Refused(e) => e.reason(),
            CommandError::Storage(_) => "storage",
        }
    }
}
