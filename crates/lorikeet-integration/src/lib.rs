//! Lorikeet's integrations: one delivery engine for every per-application kind
//! (webhook, RabbitMQ, Kafka, NATS JetStream, InfluxDB, the measurements table:
//! events read after each integration's cursor, retries through the outbox,
//! per-device order, one lane per integration), downlink commands from broker
//! queues and subjects, and the server-wide MQTT integration (events out, commands
//! in).
//!
//! All run beside the uplink path and never block it: events reach them from the
//! events table (the engine) or a bounded channel (MQTT).

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
