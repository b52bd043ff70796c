//! RabbitMQ (AMQP 0-9-1) integration: each event is published to the configured
//! exchange with its routing key (`application.{applicationId}.device.{devEui}.event.{event}`
//! by default) as a persistent message, on a channel in confirm mode; it counts as
//! delivered only when the broker confirms it. A publish whose confirm is lost is
//! sent again (at least once); the message id is the event id, so consumers can
//! drop the repeat.
//!
//! Messages are not `mandatory`: an event that no queue is bound for is taken by the
//! exchange and dropped there, as the operator's bindings decide (binding only
//! `#.event.up` is common). A missing exchange is a failed delivery, retried.
//!
//! Where it connects is checked by the SSRF guard; plain `amqp://` connects to the
//! checked address. `amqps://` connects by name (the certificate is checked against
//! it) after the name's addresses were checked.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use lorikeet_service::integration::{AmqpAddress, AmqpConfig};
use lorikeet_service::target::{GuardError, IntegrationOwner, TargetGuard};
use lorikeet_storage::Integration;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::error::{DeliveryError, TargetError};
use crate::sink::{Out, Sending, Sink};

/// The connection and its confirm-mode channel.
struct Link {
    // Kept so the connection lives as long as its channel.
    _connection: Connection,
    channel: Channel,
}

/// An AMQP integration's sink: one connection and channel, made at the first
/// event and made again after it broke.
pub(crate) struct AmqpSink {
    application_id: Uuid,
    owner: IntegrationOwner,
    config: AmqpConfig,
    address: AmqpAddress,
    guard: TargetGuard,
    link: Arc<Mutex<Option<Link>>>,
}

impl fmt::Debug for AmqpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpSink")
            .field("application_id", &self.application_id)
            .field("server", &self.describe())
            .finish()
    }
}

impl AmqpSink {
    /// Parses and checks the integration's settings.
    pub(crate) fn new(i: &Integration, guard: TargetGuard) -> Result<Self, TargetError> {
        let config: AmqpConfig = serde_json::from_value(i.config.clone())
            .map_err(|e| TargetError::Config(e.to_string()))?;
        let address = config.check().map_err(TargetError::Config)?;
        Ok(AmqpSink {
            application_id: i.application_id,
            owner: i.owner,
            config,
            address,
            guard,
            link: Arc::new(Mutex::new(None)),
        })
    }
}

/// The URI to connect to: `host` in place of the configured one (a checked
/// address), user, password and virtual host percent-encoded.
pub(crate) fn connect_uri(address: &AmqpAddress, host: &str, password: Option<&str>) -> String {
    // Everything but RFC 3986's unreserved characters escaped (not form encoding:
    // `+` is a plus in a URI's user part).
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    format!(
        "{}://{}:{}@{}:{}/{}",
        if address.tls { "amqps" } else { "amqp" },
        enc(&address.username),
        enc(password.unwrap_or("guest")),
        host,
        address.port,
        enc(&address.vhost),
    )
}

/// Opens a connection to the guard-checked address of `address`.
pub(crate) async fn open(
    guard: &TargetGuard,
    owner: IntegrationOwner,
    address: &AmqpAddress,
    password: Option<&str>,
    timeout: Duration,
) -> Result<Connection, DeliveryError> {
    let ips = guard
        .resolve(owner, &address.host)
        .await
        .map_err(|e| match e {
            GuardError::Refused(r) => DeliveryError::Refused(r),
            other => DeliveryError::Connect(other.to_string()),
        })?;
    let hosts: Vec<String> = if address.tls {
        vec![address.host.clone()]
    } else {
        ips.iter().map(ToString::to_string).collect()
    };
    let mut last = DeliveryError::Connect(format!("{} has no address", address.host));
    for host in hosts {
        let uri = connect_uri(address, &host, password);
        let props = ConnectionProperties::default()
            .with_connection_name(concat!("lorikeet/", env!("CARGO_PKG_VERSION")).into());
        match tokio::time::timeout(timeout, Connection::connect(&uri, props)).await {
            Ok(Ok(c)) => return Ok(c),
            // lapin's error names the broker's reason (refused login, unknown vhost)
            // and never the password.
            Ok(Err(e)) => last = DeliveryError::Connect(format!("AMQP: {e}")),
            Err(_) => {
                last = DeliveryError::Timeout {
                    timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                }
            }
        }
    }
    Err(last)
}

async fn connect(
    guard: &TargetGuard,
    owner: IntegrationOwner,
    address: &AmqpAddress,
    password: Option<&str>,
    timeout: Duration,
) -> Result<Link, DeliveryError> {
    let connection = open(guard, owner, address, password, timeout).await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| DeliveryError::Connect(format!("AMQP channel: {e}")))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| DeliveryError::Connect(format!("AMQP confirm mode: {e}")))?;
    Ok(Link {
        _connection: connection,
        channel,
    })
}

impl Sink for AmqpSink {
    fn send(&self, out: Out, timeout: Duration) -> Sending {
        let routing_key = self
            .config
            .routing_key_for(self.application_id, out.dev_eui, out.kind);
        let exchange = self.config.exchange.clone();
        let password = self.config.password.clone();
        let link = self.link.clone();
        let guard = self.guard.clone();
        let (owner, address) = (self.owner, self.address.clone());
        Box::pin(async move {
            let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            let work = async {
                let channel = {
                    let mut held = link.lock().await;
                    match held.as_ref() {
                        Some(l) if l.channel.status().connected() => l.channel.clone(),
                        _ => {
                            *held = None;
                            let l = connect(&guard, owner, &address, password.as_deref(), timeout)
                                .await?;
                            let c = l.channel.clone();
                            *held = Some(l);
                            c
                        }
                    }
                };
                let mut headers = FieldTable::default();
                headers.insert(
                    "devEui".into(),
                    AMQPValue::LongString(out.dev_eui.to_string().into()),
                );
                let props = BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type(ShortString::from("application/json"))
                    .with_message_id(ShortString::from(out.event_id.to_string()))
                    .with_type(ShortString::from(out.kind))
                    .with_app_id(ShortString::from("lorikeet"))
                    .with_headers(headers);
                let confirm = channel
                    .basic_publish(
                        ShortString::from(exchange),
                        ShortString::from(routing_key),
                        BasicPublishOptions::default(),
                        &out.body,
                        props,
                    )
                    .await
                    .map_err(|e| DeliveryError::Request(format!("AMQP publish: {e}")))?
                    .await
                    .map_err(|e| DeliveryError::Request(format!("AMQP: {e}")))?;
                match confirm {
                    Confirmation::Ack(_) => Ok(()),
                    Confirmation::Nack(_) => Err(DeliveryError::Request(
                        "AMQP: the broker refused the message (nack)".into(),
                    )),
                    Confirmation::NotRequested => Err(DeliveryError::Request(
                        "AMQP: the channel is not in confirm mode".into(),
                    )),
                }
            };
            let r = match tokio::time::timeout(timeout, work).await {
                Ok(r) => r,
                Err(_) => Err(DeliveryError::Timeout { timeout_ms }),
            };
            if r.is_err() {
                // A channel that failed a publish (missing exchange, lost confirm) is
                // closed by the broker or unusable: start the next one afresh.
                *link.lock().await = None;
            }
            r
        })
    }

    fn describe(&self) -> String {
        let scheme = if self.address.tls { "amqps" } else { "amqp" };
        format!("{scheme}://{}:{}", self.address.host, self.address.port)
    }

    fn kind(&self) -> &'static str {
        "amqp"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_encoded() {
        let a = AmqpAddress {
            tls: false,
            host: "rabbit".into(),
            port: 5672,
            vhost: "/".into(),
            username: "us er".into(),
        };
        assert_eq!(
            connect_uri(&a, "10.0.0.1", Some("p@ss/word")),
            "amqp://us%20er:p%40ss%2Fword@10.0.0.1:5672/%2F"
        );
        assert_eq!(
            connect_uri(&a, "::1", None),
            "amqp://us%20er:guest@[::1]:5672/%2F"
        );
    }
}
