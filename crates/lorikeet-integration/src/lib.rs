//! Lorikeet's integrations: delivery of the durable webhook outbox (retries with
//! backoff, per-device order, one lane per endpoint) and the MQTT integration
//! (events out, downlink commands in).
//!
//! Both run beside the uplink path and never block it: events reach them through the
//! outbox (webhooks) or a bounded channel (MQTT).

mod amqp;
mod backoff;
mod batch;
pub mod commands;
pub mod config;
pub mod error;
pub mod http;
mod influxdb;
mod kafka;
mod measurements;
pub mod metrics;
pub mod mqtt;
mod nats;
mod ratelimit;
pub mod signature;
pub mod sink;

pub use config::{IntegrationConfig, MqttConfig, WebhookConfig};
pub use error::{CommandError, ConfigError, DeliveryError, TargetError};
pub use http::WebhookWorker;
pub use mqtt::OutEvent;
