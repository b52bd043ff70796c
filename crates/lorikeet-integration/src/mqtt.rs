//! The MQTT integration: every event is published as JSON (the webhook body) to
//! `{prefix}/{applicationId}/device/{devEui}/event/{type}`, and a JSON command on
//! `{prefix}/{applicationId}/device/{devEui}/command/down` enqueues a downlink.
//!
//! The connection is owned by one task that only polls it; publishing and command
//! handling run beside it, so a slow database never delays keep-alives. On every
//! (re)connection the command subscription is made again: with a clean session the
//! broker forgot it, which is how ChirpStack lost commands after a broker restart.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use lorikeet_codec::Codecs;
use lorikeet_lorawan::Eui64;
use lorikeet_service::DownlinkRequest;
use lorikeet_storage::{Change, Storage};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{info, warn};
use uuid::Uuid;

use crate::backoff::retry_bound;
use crate::config::MqttConfig;
use crate::error::CommandError;
use crate::metrics as m;
use crate::ratelimit::LogLimiter;

/// Largest command accepted: a 242-byte payload in base64 plus JSON fits easily;
/// an `object` for a codec gets room too.
pub(crate) const MAX_COMMAND_BYTES: usize = 16 << 10;
/// Commands waiting for the database.
const COMMAND_QUEUE: usize = 1_024;

/// An event to publish.
#[derive(Debug, Clone)]
pub struct OutEvent {
    /// The device's application.
    pub application_id: Uuid,
    /// The device.
    pub dev_eui: Eui64,
    /// Event type (`up`, `join`, …).
    pub kind: &'static str,
    /// The JSON body (the same as the webhook's).
    pub body: Vec<u8>,
}

/// Whether `prefix` can start a topic we publish to and subscribe under.
pub fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && !prefix.starts_with('$')
        && !prefix.contains(['+', '#', '\0'])
        && prefix.split('/').all(|level| !level.is_empty())
}

/// The topic of an event.
pub fn event_topic(prefix: &str, application_id: Uuid, dev_eui: Eui64, kind: &str) -> String {
    format!("{prefix}/{application_id}/device/{dev_eui}/event/{kind}")
}

/// The subscription for downlink commands.
pub fn command_filter(prefix: &str, shared_group: &str) -> String {
    let filter = format!("{prefix}/+/device/+/command/down");
    if shared_group.is_empty() {
        filter
    } else {
        format!("$share/{shared_group}/{filter}")
    }
}

/// The application and device named by a command topic.
pub fn parse_command_topic(prefix: &str, topic: &str) -> Result<(Uuid, Eui64), CommandError> {
    let bad = || CommandError::Topic {
        topic: topic.chars().take(200).collect(),
    };
    let rest = topic
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(bad)?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [app, "device", dev, "command", "down"] => {
            let app = Uuid::parse_str(app).map_err(|_| bad())?;
            let dev = Eui64::from_str(dev).map_err(|_| bad())?;
            Ok((app, dev))
        }
        _ => Err(bad()),
    }
}

/// A downlink command as published by an integrator.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CommandBody {
    dev_eui: Option<String>,
    #[serde(default)]
    confirmed: bool,
    f_port: Option<u64>,
    data: Option<String>,
    object: Option<serde_json::Value>,
}

/// Checks a command's form (the shared downlink rule, without storage lookups) and
/// returns the request to enqueue.
pub fn parse_command(
    topic_dev_eui: Eui64,
    payload: &[u8],
) -> Result<DownlinkRequest, CommandError> {
    if payload.len() > MAX_COMMAND_BYTES {
        return Err(CommandError::TooLarge {
            len: payload.len(),
            max: MAX_COMMAND_BYTES,
        });
    }
    let b: CommandBody =
        serde_json::from_slice(payload).map_err(|e| CommandError::Json(e.to_string()))?;
    if let Some(d) = &b.dev_eui {
        let parsed = Eui64::from_str(d.trim())
            .map_err(|e| CommandError::Invalid(format!("devEui {d:?}: {e}")))?;
        if parsed != topic_dev_eui {
            return Err(CommandError::DevEuiMismatch {
                body: d.clone(),
                topic: topic_dev_eui.to_string(),
            });
        }
    }
    let req = DownlinkRequest {
        f_port: b.f_port,
        data: b.data,
        object: b.object,
        confirmed: b.confirmed,
        expires_at: None,
    };
    // Refused here already, before any database work.
    lorikeet_service::downlink::check(req.clone())?;
    Ok(req)
}

/// Runs the MQTT integration until `shutdown`. `events` are published; commands are
/// enqueued through `storage` (objects encoded with `codecs`) and announced on
/// `changes` (so Class C devices are sent to at once).
pub async fn run(
    config: MqttConfig,
    storage: Arc<dyn Storage>,
    codecs: Option<Codecs>,
    changes: broadcast::Sender<Change>,
    mut events: mpsc::Receiver<OutEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let broker = match config.broker() {
        Ok(b) => b,
        Err(e) => {
            warn!("MQTT integration off: {e}");
            return;
        }
    };
    let client_id = if config.client_id.is_empty() {
        format!("lorikeet-{}", &Uuid::new_v4().simple().to_string()[..12])
    } else {
        config.client_id.clone()
    };
    let mut opts = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    opts.set_keep_alive(Duration::from_secs(config.keep_alive_s.max(5)));
    opts.set_clean_session(true);
    opts.set_max_packet_size(MAX_COMMAND_BYTES + 1024, config.max_payload_bytes + 1024);
    if !config.username.is_empty() {
        opts.set_credentials(config.username.clone(), config.password.clone());
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 1_024);
    eventloop
        .network_options
        .set_connection_timeout(config.connect_timeout_s.max(1));
    let qos = config.qos();
    let filter = command_filter(&config.topic_prefix, &config.shared_subscription_group);
    info!(host = %broker.host, port = broker.port, "MQTT integration starting");

    let (cmd_tx, cmd_rx) = mpsc::channel::<(String, Vec<u8>)>(COMMAND_QUEUE);
    let commands = tokio::spawn(handle_commands(
        config.topic_prefix.clone(),
        storage,
        codecs,
        changes,
        cmd_rx,
    ));
    let publisher_client = client.clone();
    let prefix = config.topic_prefix.clone();
    let max_payload = config.max_payload_bytes;
    let publisher = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if ev.body.len() > max_payload {
                metrics::counter!(m::MQTT_DROPPED, "reason" => "too_large").increment(1);
                continue;
            }
            let topic = event_topic(&prefix, ev.application_id, ev.dev_eui, ev.kind);
            // Waits while the connection's request queue is full (broker away): the
            // bounded `events` channel in front then sheds, counted by its sender.
            if publisher_client
                .publish(topic, qos, false, ev.body)
                .await
                .is_err()
            {
                return;
            }
            metrics::counter!(m::MQTT_PUBLISHED).increment(1);
        }
    });

    let mut failures: u32 = 0;
    let mut logs = LogLimiter::new(Duration::from_secs(10));
    loop {
        let polled = tokio::select! {
            _ = shutdown.changed() => break,
            p = eventloop.poll() => p,
        };
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                failures = 0;
                metrics::gauge!(m::MQTT_CONNECTED).set(1.0);
                metrics::counter!(m::MQTT_CONNECTS).increment(1);
                info!(host = %broker.host, port = broker.port, "connected to the MQTT broker");
                if let Err(e) = client.try_subscribe(filter.clone(), qos) {
                    warn!("cannot subscribe to {filter}: {e}");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let ok = ack
                    .return_codes
                    .iter()
                    .all(|c| !matches!(c, rumqttc::SubscribeReasonCode::Failure));
                metrics::gauge!(m::MQTT_SUBSCRIBED).set(if ok { 1.0 } else { 0.0 });
                if ok {
                    info!(filter = %filter, "subscribed to downlink commands");
                } else {
                    warn!(filter = %filter, "the broker refused the command subscription");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if cmd_tx
                    .try_send((p.topic.clone(), p.payload.to_vec()))
                    .is_err()
                {
                    metrics::counter!(m::MQTT_COMMANDS, "result" => "overloaded").increment(1);
                    warn!(topic = %p.topic, "downlink command dropped: too many commands waiting");
                }
            }
            Ok(_) => {}
            Err(e) => {
                metrics::gauge!(m::MQTT_CONNECTED).set(0.0);
                metrics::gauge!(m::MQTT_SUBSCRIBED).set(0.0);
                metrics::counter!(m::MQTT_CONNECTION_ERRORS).increment(1);
                failures = failures.saturating_add(1);
                let wait = retry_bound(
                    failures,
                    Duration::from_millis(config.reconnect_base_ms),
                    Duration::from_millis(config.reconnect_max_ms),
                );
                if let Some(held_back) = logs.allow((), std::time::Instant::now()) {
                    warn!(
                        host = %broker.host,
                        port = broker.port,
                        retry_in_ms = wait.as_millis() as u64,
                        held_back,
                        "MQTT broker connection failed: {e}"
                    );
                }
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    let _ = client.try_disconnect();
    publisher.abort();
    commands.abort();
    metrics::gauge!(m::MQTT_CONNECTED).set(0.0);
}

async fn handle_commands(
    prefix: String,
    storage: Arc<dyn Storage>,
    codecs: Option<Codecs>,
    changes: broadcast::Sender<Change>,
    mut rx: mpsc::Receiver<(String, Vec<u8>)>,
) {
    let mut logs = LogLimiter::new(Duration::from_secs(10));
    while let Some((topic, payload)) = rx.recv().await {
        match command(&prefix, &*storage, codecs.as_ref(), &topic, &payload).await {
            Ok(dev_eui) => {
                metrics::counter!(m::MQTT_COMMANDS, "result" => "enqueued").increment(1);
                let _ = changes.send(Change::QueueChanged(dev_eui));
            }
            Err(e) => {
                metrics::counter!(m::MQTT_COMMANDS, "result" => e.reason()).increment(1);
                if let Some(held_back) = logs.allow(e.reason(), std::time::Instant::now()) {
                    warn!(topic = %topic.chars().take(200).collect::<String>(), held_back, "downlink command refused: {e}");
                }
            }
        }
    }
}

/// Validates and enqueues one command.
async fn command(
    prefix: &str,
    storage: &dyn Storage,
    codecs: Option<&Codecs>,
    topic: &str,
    payload: &[u8],
) -> Result<Eui64, CommandError> {
    let (app, dev_eui) = parse_command_topic(prefix, topic)?;
    let req = parse_command(dev_eui, payload)?;
    let device = storage
        .get_device(dev_eui)
        .await?
        .ok_or_else(|| CommandError::UnknownDevice(dev_eui.to_string()))?;
    if device.application_id != app {
        return Err(CommandError::WrongApplication {
            dev_eui: dev_eui.to_string(),
            application_id: app.to_string(),
        });
    }
    lorikeet_service::enqueue(storage, codecs, &device, req).await?;
    Ok(dev_eui)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "6f1b3c9e-2a4d-4f3e-9a51-0c2b7d8e9f10";

    #[test]
    fn prefixes() {
        assert!(valid_prefix("application"));
        assert!(valid_prefix("lorikeet/prod"));
        for bad in ["", "$SYS", "a/+/b", "a/#", "a//b", "/a", "a/"] {
            assert!(!valid_prefix(bad), "{bad:?}");
        }
    }

    #[test]
    fn topics_round_trip() {
        let app = Uuid::parse_str(APP).unwrap();
        let dev = Eui64::from_u64(0x0102_0304_0506_0708);
        assert_eq!(
            event_topic("application", app, dev, "up"),
            format!("application/{APP}/device/0102030405060708/event/up")
        );
        let cmd = format!("application/{APP}/device/0102030405060708/command/down");
        assert_eq!(
            parse_command_topic("application", &cmd).unwrap(),
            (app, dev)
        );
        for bad in [
            format!("application/{APP}/device/0102030405060708/command/up"),
            format!("other/{APP}/device/0102030405060708/command/down"),
            "application/not-a-uuid/device/0102030405060708/command/down".to_string(),
            format!("application/{APP}/device/01020304/command/down"),
            format!("application/{APP}/device/0102030405060708/command/down/x"),
        ] {
            assert!(parse_command_topic("application", &bad).is_err(), "{bad}");
        }
        assert_eq!(
            command_filter("application", ""),
            "application/+/device/+/command/down"
        );
        assert_eq!(
            command_filter("application", "g1"),
            "$share/g1/application/+/device/+/command/down"
        );
    }

    #[test]
    fn commands_are_checked() {
        let dev = Eui64::from_u64(0x0102_0304_0506_0708);
        let req = parse_command(
            dev,
            br#"{"devEui":"0102030405060708","confirmed":true,"fPort":10,"data":"AQID"}"#,
        )
        .unwrap();
        assert_eq!(
            (req.f_port, req.data.as_deref(), req.confirmed),
            (Some(10), Some("AQID"), true)
        );
        let req = parse_command(dev, br#"{"fPort":2,"object":{"led":true}}"#).unwrap();
        assert_eq!(req.object, Some(serde_json::json!({"led": true})));
        for (body, reason) in [
            (&br#"not json"#[..], "json"),
            (br#"{"fPort":1,"data":"AQ==","extra":1}"#, "json"),
            (
                br#"{"devEui":"0000000000000001","fPort":1,"data":"AQ=="}"#,
                "dev_eui_mismatch",
            ),
            (br#"{"fPort":0,"data":"AQ=="}"#, "invalid"),
            (br#"{"fPort":224,"data":"AQ=="}"#, "invalid"),
            (br#"{"data":"AQ=="}"#, "invalid"),
            (br#"{"fPort":1}"#, "invalid"),
            (br#"{"fPort":1,"data":"AQ==","object":{}}"#, "invalid"),
            (br#"{"fPort":1,"data":"%%%"}"#, "invalid"),
        ] {
            let e = parse_command(dev, body).unwrap_err();
            assert_eq!(e.reason(), reason, "{}", String::from_utf8_lossy(body));
        }
        let big = format!(r#"{{"fPort":1,"data":"{}"}}"#, "A".repeat(400));
        assert_eq!(
            parse_command(dev, big.as_bytes()).unwrap_err().reason(),
            "invalid"
        );
        let huge = vec![b' '; MAX_COMMAND_BYTES + 1];
        assert_eq!(parse_command(dev, &huge).unwrap_err().reason(), "too_large");
    }
}
