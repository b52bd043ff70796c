//! Downlink commands from brokers: an AMQP integration's `commandQueue` and a NATS
//! integration's `commandSubject`. A command is the JSON of MQTT's `command/down`
//! with `devEui` required (a queue or subject serves the whole application); the
//! device must belong to the integration's application. Commands pass the same
//! downlink rule as the API's (`lorikeet_service::enqueue`).
//!
//! AMQP: a message is acknowledged only after its downlink is in the queue; a
//! refused one is rejected without requeue (the queue's dead-letter exchange, if
//! any, gets it); one that failed on storage is returned to the queue.
//! NATS: a core subscription (what is published while we are away is not kept);
//! a message with a reply subject gets `{"queued": true, "id": …}` or
//! `{"error": …}` back.
//!
//! One reader task per integration that has a command source, started and
//! stopped as the integrations change.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use lorikeet_codec::Codecs;
use lorikeet_lorawan::Eui64;
use lorikeet_service::integration::{AmqpConfig, NatsConfig};
use lorikeet_service::target::TargetGuard;
use lorikeet_storage::{Change, Integration, IntegrationKind, QueueItem, Storage};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};
use uuid::Uuid;

use crate::backoff::retry_bound;
use crate::error::CommandError;
use crate::metrics as m;
use crate::mqtt::parse_command;
use crate::ratelimit::LogLimiter;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Unacknowledged AMQP commands held at once.
const PREFETCH: u16 = 16;

/// What every reader needs.
#[derive(Clone)]
pub struct CommandContext {
    /// The database.
    pub storage: Arc<dyn Storage>,
    /// Encoders for commands with an `object`.
    pub codecs: Option<Codecs>,
    /// The change broadcast (a queued downlink wakes the scheduler).
    pub changes: broadcast::Sender<Change>,
    /// The SSRF guard.
    pub guard: TargetGuard,
}

impl std::fmt::Debug for CommandContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandContext").finish_non_exhaustive()
    }
}

/// Whether an integration reads commands.
fn has_commands(i: &Integration) -> bool {
    match i.kind {
        IntegrationKind::Amqp => i.config.get("commandQueue").is_some_and(|q| q.is_string()),
        IntegrationKind::Nats => i
            .config
            .get("commandSubject")
            .is_some_and(|q| q.is_string()),
        _ => false,
    }
}

/// Runs the readers until `shutdown`; `changes` tells when integrations changed.
pub async fn run(
    ctx: CommandContext,
    mut changes: broadcast::Receiver<Change>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut readers: HashMap<Uuid, (DateTime<Utc>, JoinHandle<()>)> = HashMap::new();
    let mut reload = true;
    loop {
        if reload {
            reload = false;
            match ctx.storage.list_integrations(None).await {
                Ok(list) => {
                    let wanted: HashMap<Uuid, &Integration> = list
                        .iter()
                        .filter(|i| has_commands(i))
                        .map(|i| (i.id, i))
                        .collect();
                    readers.retain(|id, (updated, task)| {
                        let keep = wanted.get(id).is_some_and(|i| i.updated_at == *updated);
                        if !keep {
                            task.abort();
                        }
                        keep
                    });
                    for (id, i) in wanted {
                        readers.entry(id).or_insert_with(|| {
                            (i.updated_at, tokio::spawn(read(ctx.clone(), i.clone())))
                        });
                    }
                }
                Err(e) => {
                    metrics::counter!(m::STORAGE_ERRORS, "op" => "list_integrations").increment(1);
                    warn!("command readers: cannot list integrations: {e}");
                }
            }
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            c = changes.recv() => match c {
                Ok(Change::IntegrationChanged(_) | Change::ApplicationDeleted(_) | Change::TenantDeleted(_))
                | Err(broadcast::error::RecvError::Lagged(_)) => reload = true,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    for (_, (_, task)) in readers {
        task.abort();
    }
}

async fn read(ctx: CommandContext, i: Integration) {
    let mut failures = 0u32;
    let mut logs = LogLimiter::new(Duration::from_secs(30));
    loop {
        let r = match i.kind {
            IntegrationKind::Amqp => read_amqp(&ctx, &i, &mut failures).await,
            IntegrationKind::Nats => read_nats(&ctx, &i, &mut failures).await,
            _ => return,
        };
        let e = match r {
            Ok(()) => "the connection ended".to_owned(),
            Err(e) => e,
        };
        failures = failures.saturating_add(1);
        let wait = retry_bound(
            failures,
            Duration::from_millis(500),
            Duration::from_secs(30),
        );
        metrics::counter!(m::COMMAND_CONNECTION_ERRORS, "kind" => i.kind.as_str()).increment(1);
        if let Some(held_back) = logs.allow((), std::time::Instant::now()) {
            warn!(integration = %i.id, kind = i.kind.as_str(), retry_in_ms = wait.as_millis() as u64, held_back, "downlink command source: {e}");
        }
        tokio::time::sleep(wait).await;
    }
}

/// Consumes the AMQP command queue until the connection breaks.
async fn read_amqp(
    ctx: &CommandContext,
    i: &Integration,
    failures: &mut u32,
) -> Result<(), String> {
    let config: AmqpConfig =
        serde_json::from_value(i.config.clone()).map_err(|e| format!("settings: {e}"))?;
    let address = config.check()?;
    let Some(queue) = config.command_queue.clone() else {
        return Ok(());
    };
    let conn = crate::amqp::open(
        &ctx.guard,
        i.owner,
        &address,
        config.password.as_deref(),
        CONNECT_TIMEOUT,
    )
    .await
    .map_err(|e| e.to_string())?;
    let channel = conn.create_channel().await.map_err(|e| e.to_string())?;
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            format!("lorikeet-{}", i.id).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("cannot consume queue {queue:?}: {e}"))?;
    info!(integration = %i.id, queue = %queue, "reading downlink commands from AMQP");
    *failures = 0;
    let mut logs = LogLimiter::new(Duration::from_secs(10));
    while let Some(d) = consumer.next().await {
        let d = d.map_err(|e| e.to_string())?;
        match command(ctx, i.application_id, &d.data).await {
            Ok(_) => {
                count(IntegrationKind::Amqp, "enqueued");
                d.ack(BasicAckOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Err(e @ CommandError::Storage(_)) => {
                count(IntegrationKind::Amqp, e.reason());
                log_refused(&mut logs, i, &e);
                // Not the message's fault: back in the queue, tried again later.
                tokio::time::sleep(Duration::from_secs(1)).await;
                d.nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            }
            Err(e) => {
                count(IntegrationKind::Amqp, e.reason());
                log_refused(&mut logs, i, &e);
                d.reject(BasicRejectOptions { requeue: false })
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

/// Reads the NATS command subject until the connection ends.
async fn read_nats(
    ctx: &CommandContext,
    i: &Integration,
    failures: &mut u32,
) -> Result<(), String> {
    let config: NatsConfig =
        serde_json::from_value(i.config.clone()).map_err(|e| format!("settings: {e}"))?;
    let address = config.check()?;
    let Some(subject) = config.command_subject_for(i.application_id) else {
        return Ok(());
    };
    let client = crate::nats::client(&ctx.guard, i.owner, &config, &address, CONNECT_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let mut sub = client
        .subscribe(subject.clone())
        .await
        .map_err(|e| format!("cannot subscribe to {subject:?}: {e}"))?;
    info!(integration = %i.id, subject = %subject, "reading downlink commands from NATS");
    *failures = 0;
    let mut logs = LogLimiter::new(Duration::from_secs(10));
    while let Some(msg) = sub.next().await {
        let answer = match command(ctx, i.application_id, &msg.payload).await {
            Ok(item) => {
                count(IntegrationKind::Nats, "enqueued");
                serde_json::json!({"queued": true, "id": item.id, "devEui": item.dev_eui.to_string()})
            }
            Err(e) => {
                count(IntegrationKind::Nats, e.reason());
                log_refused(&mut logs, i, &e);
                serde_json::json!({"error": e.to_string(), "reason": e.reason()})
            }
        };
        if let Some(reply) = msg.reply {
            // The requester may have gone; nothing to do about that.
            let _ = client.publish(reply, answer.to_string().into()).await;
        }
    }
    Ok(())
}

fn count(kind: IntegrationKind, result: &'static str) {
    metrics::counter!(m::COMMANDS, "kind" => kind.as_str(), "result" => result).increment(1);
}

fn log_refused(logs: &mut LogLimiter<&'static str>, i: &Integration, e: &CommandError) {
    if let Some(held_back) = logs.allow(e.reason(), std::time::Instant::now()) {
        warn!(integration = %i.id, kind = i.kind.as_str(), held_back, "downlink command refused: {e}");
    }
}

/// Checks and enqueues one command for a device of `application_id`.
pub async fn command(
    ctx: &CommandContext,
    application_id: Uuid,
    payload: &[u8],
) -> Result<QueueItem, CommandError> {
    let dev_eui = command_dev_eui(payload)?;
    let req = parse_command(dev_eui, payload)?;
    let device = ctx
        .storage
        .get_device(dev_eui)
        .await?
        .ok_or_else(|| CommandError::UnknownDevice(dev_eui.to_string()))?;
    if device.application_id != application_id {
        return Err(CommandError::WrongApplication {
            dev_eui: dev_eui.to_string(),
            application_id: application_id.to_string(),
        });
    }
    let item = lorikeet_service::enqueue(&*ctx.storage, ctx.codecs.as_ref(), &device, req).await?;
    let _ = ctx.changes.send(Change::QueueChanged(dev_eui));
    Ok(item)
}

/// The `devEui` a broker command names (required: a queue serves a whole application).
fn command_dev_eui(payload: &[u8]) -> Result<Eui64, CommandError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Target {
        dev_eui: Option<String>,
    }
    if payload.len() > crate::mqtt::MAX_COMMAND_BYTES {
        return Err(CommandError::TooLarge {
            len: payload.len(),
            max: crate::mqtt::MAX_COMMAND_BYTES,
        });
    }
    let t: Target =
        serde_json::from_slice(payload).map_err(|e| CommandError::Json(e.to_string()))?;
    let d = t
        .dev_eui
        .ok_or_else(|| CommandError::Invalid("devEui is required".into()))?;
    Eui64::from_str(d.trim()).map_err(|e| CommandError::Invalid(format!("devEui {d:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_their_device() {
        assert_eq!(
            command_dev_eui(br#"{"devEui":"0102030405060708","fPort":1,"data":"AQ=="}"#).unwrap(),
            Eui64::from_u64(0x0102_0304_0506_0708)
        );
        for (p, reason) in [
            (&br#"{"fPort":1,"data":"AQ=="}"#[..], "invalid"),
            (b"not json", "json"),
            (br#"{"devEui":"xyz"}"#, "invalid"),
        ] {
            assert_eq!(command_dev_eui(p).unwrap_err().reason(), reason);
        }
        let big = vec![b' '; crate::mqtt::MAX_COMMAND_BYTES + 1];
        assert_eq!(command_dev_eui(&big).unwrap_err().reason(), "too_large");
    }
}
