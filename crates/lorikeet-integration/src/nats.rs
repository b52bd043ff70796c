//! NATS JetStream integration: each event is published to its subject
//! (`lorikeet.{applicationId}.{devEui}.{event}` by default) with the event's id as
//! `Nats-Msg-Id`, and counts as delivered only when JetStream acknowledges it. A
//! retry of an event the stream already stored (its ack was lost) is recognised
//! by that id and not stored twice, within the stream's duplicate window (2 minutes
//! unless the stream says otherwise).
//!
//! The stream is the operator's: create one whose subjects cover the template (for
//! the default, `lorikeet.>`). Without one the publish has no responder and the
//! event is retried like any failed delivery.
//!
//! Where it connects is checked by the SSRF guard when the connection is made; a
//! plain connection goes to the checked address, a TLS one by name. A user and
//! password (the password sealed at rest) or a token authenticate it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use lorikeet_service::integration::{NatsAddress, NatsConfig};
use lorikeet_service::target::{GuardError, IntegrationOwner, TargetGuard};
use lorikeet_storage::Integration;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::error::{DeliveryError, TargetError};
use crate::sink::{Out, Sending, Sink};

/// A NATS integration's sink: one connection, made at the first event and kept
/// (the client reconnects by itself after that).
pub(crate) struct NatsSink {
    application_id: Uuid,
    owner: IntegrationOwner,
    config: NatsConfig,
    address: NatsAddress,
    guard: TargetGuard,
    context: Arc<Mutex<Option<jetstream::Context>>>,
}

impl fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSink")
            .field("application_id", &self.application_id)
            .field("server", &self.describe())
            .finish()
    }
}

impl NatsSink {
    /// Parses and checks the integration's settings.
    pub(crate) fn new(i: &Integration, guard: TargetGuard) -> Result<Self, TargetError> {
        let config: NatsConfig = serde_json::from_value(i.config.clone())
            .map_err(|e| TargetError::Config(e.to_string()))?;
        let address = config.check().map_err(TargetError::Config)?;
        Ok(NatsSink {
            application_id: i.application_id,
            owner: i.owner,
            config,
            address,
            guard,
            context: Arc::new(Mutex::new(None)),
        })
    }
}

/// A client connected to the guard-checked address of `address`, with the
/// configured credentials. Plain connections go to the checked addresses; TLS ones
/// by name (the certificate names the host) after its addresses were checked.
pub(crate) async fn client(
    guard: &TargetGuard,
    owner: IntegrationOwner,
    config: &NatsConfig,
    address: &NatsAddress,
    timeout: Duration,
) -> Result<async_nats::Client, DeliveryError> {
    let ips = guard
        .resolve(owner, &address.host)
        .await
        .map_err(|e| match e {
            GuardError::Refused(r) => DeliveryError::Refused(r),
            other => DeliveryError::Connect(other.to_string()),
        })?;
    let addrs: Vec<String> = if address.tls {
        let host = if address.host.contains(':') {
            format!("[{}]", address.host)
        } else {
            address.host.clone()
        };
        vec![format!("tls://{host}:{}", address.port)]
    } else {
        ips.into_iter()
            .map(|ip| format!("nats://{}", std::net::SocketAddr::new(ip, address.port)))
            .collect()
    };
    let mut options = async_nats::ConnectOptions::new()
        .connection_timeout(timeout)
        .name(concat!("lorikeet/", env!("CARGO_PKG_VERSION")))
        .require_tls(address.tls);
    if let Some(user) = &address.user {
        options =
            options.user_and_password(user.clone(), config.password.clone().unwrap_or_default());
    } else if let Some(token) = &config.token {
        options = options.token(token.clone());
    }
    options
        .connect(addrs.as_slice())
        .await
        .map_err(|e| DeliveryError::Connect(e.to_string()))
}

impl Sink for NatsSink {
    fn send(&self, out: Out, timeout: Duration) -> Sending {
        let subject = self
            .config
            .subject_for(self.application_id, out.dev_eui, out.kind);
        let context = self.context.clone();
        let guard = self.guard.clone();
        let (owner, address, config) = (self.owner, self.address.clone(), self.config.clone());
        Box::pin(async move {
            let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            let js = {
                let mut held = context.lock().await;
                match held.as_ref() {
                    Some(js) => js.clone(),
                    None => {
                        let js = jetstream::new(
                            client(&guard, owner, &config, &address, timeout).await?,
                        );
                        *held = Some(js.clone());
                        js
                    }
                }
            };
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", out.event_id.to_string().as_str());
            let publish = async {
                let ack = js
                    .publish_with_headers(subject, headers, out.body.into())
                    .await
                    .map_err(|e| DeliveryError::Request(format!("NATS publish: {e}")))?;
                ack.await
                    .map(drop)
                    .map_err(|e| DeliveryError::Request(format!("JetStream: {e}")))
            };
            match tokio::time::timeout(timeout, publish).await {
                Ok(r) => r,
                Err(_) => Err(DeliveryError::Timeout { timeout_ms }),
            }
        })
    }

    fn describe(&self) -> String {
        let scheme = if self.address.tls { "tls" } else { "nats" };
        format!("{scheme}://{}:{}", self.address.host, self.address.port)
    }

    fn kind(&self) -> &'static str {
        "nats"
    }
}
