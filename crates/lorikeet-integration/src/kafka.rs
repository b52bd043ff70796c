//! Kafka integration: each event is produced to its topic (a template) keyed by
//! the DevEUI, so one device's events stay in one partition in order, by an
//! idempotent producer with `acks=all`; an event counts as delivered only when the
//! partition leader has it from every in-sync replica. A send whose
//! acknowledgement is lost is produced again (at least once); the `eventId` header
//! lets consumers drop the repeat.
//!
//! The producer is librdkafka's (the `rdkafka` crate), built from the source it
//! bundles so the binary needs no Kafka library on the machine.
//!
//! The bootstrap brokers are checked by the SSRF guard (plain connections go to the
//! checked addresses); the brokers the cluster then advertises are the cluster's.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lorikeet_service::integration::KafkaConfig;
use lorikeet_service::target::{GuardError, IntegrationOwner, TargetGuard};
use lorikeet_storage::Integration;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::error::{DeliveryError, TargetError};
use crate::sink::{Out, Sending, Sink};

/// A Kafka integration's sink: one producer, made at the first event (librdkafka
/// reconnects by itself after that).
pub(crate) struct KafkaSink {
    application_id: Uuid,
    owner: IntegrationOwner,
    config: KafkaConfig,
    brokers: Vec<(String, u16)>,
    guard: TargetGuard,
    producer: Arc<Mutex<Option<FutureProducer>>>,
}

impl fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSink")
            .field("application_id", &self.application_id)
            .field("brokers", &self.describe())
            .finish()
    }
}

impl KafkaSink {
    /// Parses and checks the integration's settings.
    pub(crate) fn new(i: &Integration, guard: TargetGuard) -> Result<Self, TargetError> {
        let config: KafkaConfig = serde_json::from_value(i.config.clone())
            .map_err(|e| TargetError::Config(e.to_string()))?;
        let brokers = config.check().map_err(TargetError::Config)?;
        Ok(KafkaSink {
            application_id: i.application_id,
            owner: i.owner,
            config,
            brokers,
            guard,
            producer: Arc::new(Mutex::new(None)),
        })
    }
}

/// The librdkafka settings of a producer for `config`, bootstrapping from `bootstrap`.
pub(crate) fn producer_config(
    config: &KafkaConfig,
    bootstrap: &str,
    timeout: Duration,
) -> ClientConfig {
    let mut c = ClientConfig::new();
    let tls = config.tls.unwrap_or(false);
    c.set("bootstrap.servers", bootstrap)
        .set("client.id", concat!("lorikeet/", env!("CARGO_PKG_VERSION")))
        // Exactly one copy per send within the producer's session, in order per
        // partition even across its own retries.
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            timeout.as_millis().clamp(1_000, 300_000).to_string(),
        )
        // The engine holds a few sends in flight per integration and sends one
        // device's next event only after the previous was acknowledged, so waiting to
        // fill a batch only slows it (5 ms capped it near 3,000 events/s): what is
        // queued when the producer wakes goes out together anyway.
        .set("linger.ms", "0")
        .set(
            "security.protocol",
            match (tls, config.sasl.is_some()) {
                (false, false) => "plaintext",
                (true, false) => "ssl",
                (false, true) => "sasl_plaintext",
                (true, true) => "sasl_ssl",
            },
        );
    if let Some(s) = &config.sasl {
        c.set("sasl.mechanisms", &s.mechanism)
            .set("sasl.username", &s.username)
            .set("sasl.password", s.password.as_deref().unwrap_or_default());
    }
    c
}

async fn bootstrap(
    guard: &TargetGuard,
    owner: IntegrationOwner,
    brokers: &[(String, u16)],
    tls: bool,
) -> Result<String, DeliveryError> {
    let mut out = Vec::new();
    for (host, port) in brokers {
        let ips = guard.resolve(owner, host).await.map_err(|e| match e {
            GuardError::Refused(r) => DeliveryError::Refused(r),
            other => DeliveryError::Connect(other.to_string()),
        })?;
        if tls {
            // The certificate names the host, not its address.
            out.push(format!("{host}:{port}"));
        } else {
            out.extend(ips.into_iter().map(|ip| match ip {
                std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
                v4 => format!("{v4}:{port}"),
            }));
        }
    }
    Ok(out.join(","))
}

impl Sink for KafkaSink {
    fn send(&self, out: Out, timeout: Duration) -> Sending {
        let topic = self
            .config
            .topic_for(self.application_id, out.dev_eui, out.kind);
        let producer = self.producer.clone();
        let guard = self.guard.clone();
        let owner = self.owner;
        let brokers = self.brokers.clone();
        let config = self.config.clone();
        Box::pin(async move {
            let p = {
                let mut held = producer.lock().await;
                match held.as_ref() {
                    Some(p) => p.clone(),
                    None => {
                        let servers =
                            bootstrap(&guard, owner, &brokers, config.tls.unwrap_or(false)).await?;
                        let p: FutureProducer = producer_config(&config, &servers, timeout)
                            .create()
                            .map_err(|e| DeliveryError::Connect(format!("Kafka producer: {e}")))?;
                        *held = Some(p.clone());
                        p
                    }
                }
            };
            let key = out.dev_eui.to_string();
            let id = out.event_id.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "eventId",
                    value: Some(id.as_str()),
                })
                .insert(Header {
                    key: "event",
                    value: Some(out.kind),
                });
            let record = FutureRecord::to(&topic)
                .key(key.as_str())
                .payload(out.body.as_slice())
                .headers(headers);
            // The queue wait counts against the same limit as the acknowledgement.
            match p.send(record, timeout).await {
                Ok(_) => Ok(()),
                Err((e, _)) => Err(DeliveryError::Request(format!("Kafka: {e}"))),
            }
        })
    }

    fn describe(&self) -> String {
        let list: Vec<String> = self
            .brokers
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect();
        format!("kafka://{}", list.join(","))
    }

    fn kind(&self) -> &'static str {
        "kafka"
    }
}
