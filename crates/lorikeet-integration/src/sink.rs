//! The way out of one integration: what the delivery engine (`http/mod.rs`) hands
//! each event to. The engine owns everything that is the same for every kind —
//! reading events after the integration's cursor, per-device order, retries
//! through the outbox, lanes, backoff, metrics — and a sink only sends one event
//! and says whether the other side took it (a webhook's 2xx, a broker's ack).
//!
//! One sink per integration, built when its settings are loaded or change, never
//! per event.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lorikeet_lorawan::Eui64;
use lorikeet_storage::{Integration, IntegrationKind};

use crate::error::{DeliveryError, TargetError};
use crate::http::client::{post_event, Clients};
use crate::http::target::WebhookTarget;

/// One event to send.
#[derive(Debug)]
pub struct Out {
    /// The event's id (ids increase in write order): a broker's de-duplication id.
    pub event_id: i64,
    /// The device.
    pub dev_eui: Eui64,
    /// The event type (`up`, `join`, …).
    pub kind: &'static str,
    /// The event JSON, exactly as stored.
    pub body: Vec<u8>,
}

/// A send in progress: `Ok` once the other side has taken the event.
pub type Sending = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send>>;

/// One integration's way out.
pub trait Sink: Send + Sync + fmt::Debug {
    /// Sends one event within `timeout`.
    fn send(&self, out: Out, timeout: Duration) -> Sending;
    /// Where it sends, without credentials (for logs).
    fn describe(&self) -> String;
    /// The integration kind (`http`, `amqp`, …): the `kind` label of the metrics.
    fn kind(&self) -> &'static str;
}

/// What sinks share: the webhook clients (one per owner, behind the SSRF guard),
/// the guard itself (for brokers' addresses) and the storage (for the
/// measurements the `postgres` kind writes into Lorikeet's own database).
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) clients: Clients,
    pub(crate) guard: lorikeet_service::target::TargetGuard,
    pub(crate) storage: Arc<dyn lorikeet_storage::Storage>,
}

/// The kinds the engine delivers.
pub fn delivered(kind: IntegrationKind) -> bool {
    matches!(
        kind,
        IntegrationKind::Http
            | IntegrationKind::Nats
            | IntegrationKind::Influxdb
            | IntegrationKind::Amqp
            | IntegrationKind::Kafka
            | IntegrationKind::Postgres
    )
}

/// The sink of an integration from its stored settings.
pub(crate) fn build(i: &Integration, shared: &Shared) -> Result<Arc<dyn Sink>, TargetError> {
    match i.kind {
        IntegrationKind::Http => Ok(Arc::new(WebhookSink {
            clients: shared.clients.clone(),
            target: Arc::new(WebhookTarget::from_integration(i)?),
        })),
        IntegrationKind::Influxdb => Ok(Arc::new(crate::influxdb::InfluxSink::new(
            i,
            shared.clients.clone(),
        )?)),
        IntegrationKind::Nats => Ok(Arc::new(crate::nats::NatsSink::new(
            i,
            shared.guard.clone(),
        )?)),
        IntegrationKind::Amqp => Ok(Arc::new(crate::amqp::AmqpSink::new(
            i,
            shared.guard.clone(),
        )?)),
        IntegrationKind::Kafka => Ok(Arc::new(crate::kafka::KafkaSink::new(
            i,
            shared.guard.clone(),
        )?)),
        IntegrationKind::Postgres => Ok(Arc::new(crate::measurements::MeasurementSink::new(
            i,
            shared.storage.clone(),
        )?)),
        other => Err(TargetError::Config(format!(
            "{} integrations are not delivered by the delivery engine",
            other.as_str()
        ))),
    }
}

/// HTTP: `POST <url>?event=<type>` (signed with a secret; see `http/client.rs`).
struct WebhookSink {
    clients: Clients,
    target: Arc<WebhookTarget>,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.target.fmt(f)
    }
}

impl Sink for WebhookSink {
    fn send(&self, out: Out, timeout: Duration) -> Sending {
        let clients = self.clients.clone();
        let target = self.target.clone();
        Box::pin(async move {
            post_event(&clients, &target, out.kind, out.body, timeout)
                .await
                .map(drop)
        })
    }

    fn describe(&self) -> String {
        self.target.display_url()
    }

    fn kind(&self) -> &'static str {
        "http"
    }
}
