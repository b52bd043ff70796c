//! The downlink queue and stored events of a device.

use base64::Engine;
use chrono::{DateTime, Utc};
use lorikeet_storage::{Change, PayloadCodec, QueueItem};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::Ctx;
use crate::error::ApiError;
use crate::input::{self, MAX_DOWNLINK_PAYLOAD};
use crate::Out;

/// At most this many items wait per device; more is almost always a client bug, and
/// the network server keeps queues in memory.
pub const MAX_QUEUE_ITEMS: usize = 64;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueueBody {
    f_port: Option<u64>,
    data: Option<String>,
    object: Option<Value>,
    #[serde(default)]
    confirmed: bool,
    expires_at: Option<DateTime<Utc>>,
}

fn item_json(q: &QueueItem) -> Value {
    json!({
        "id": q.id,
        "fPort": q.f_port,
        "data": B64.encode(&q.data),
        "object": q.object,
        "confirmed": q.confirmed,
        "pending": q.pending,
        "fCntDown": q.f_cnt_down,
        "sentAt": q.sent_at,
        "expiresAt": q.expires_at,
        "createdAt": q.created_at,
    })
}

pub(super) async fn enqueue(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    let b: QueueBody = ctx.body()?;
    let d = ctx.device(dev_eui).await?;
    let f_port = match b.f_port {
        Some(p @ 1..=223) => p as u8,
        Some(p) => {
            return Err(ApiError::bad_request(format!(
                "fPort must be from 1 to 223, got {p} (0 is reserved for MAC commands)"
            )))
        }
        None => return Err(ApiError::bad_request("fPort is required")),
    };
    let (data, object) = match (b.data, b.object) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "send either data (base64 bytes) or object (to encode with the codec), not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "data (base64 bytes) or object (to encode with the codec) is required",
            ))
        }
        (Some(data), None) => {
            let bytes = B64
                .decode(data.trim())
                .map_err(|e| ApiError::bad_request(format!("data is not valid base64: {e}")))?;
            if bytes.len() > MAX_DOWNLINK_PAYLOAD {
                return Err(ApiError::bad_request(format!(
                    "data is {} bytes; no LoRaWAN data rate carries more than {MAX_DOWNLINK_PAYLOAD}",
                    bytes.len()
                )));
            }
            (bytes, None)
        }
        (None, Some(object)) => {
            let profile = ctx.profile(d.device_profile_id).await?;
            if profile.payload_codec == PayloadCodec::None {
                return Err(ApiError::bad_request(format!(
                    "object needs a payload codec, but device profile {} has none; send data \
                     (base64) or set payloadCodec on the profile",
                    profile.id
                )));
            }
            (Vec::new(), Some(object))
        }
    };
    if ctx.state.storage.get_queue(dev_eui).await?.len() >= MAX_QUEUE_ITEMS {
        return Err(ApiError::conflict(format!(
            "the queue of device {dev_eui} is full ({MAX_QUEUE_ITEMS} items); flush it with \
             DELETE /api/v1/devices/{dev_eui}/queue or wait for it to drain"
        )));
    }
    let item = QueueItem {
        id: Uuid::new_v4(),
        dev_eui,
        f_port,
        data,
        confirmed: b.confirmed,
        object,
        f_cnt_down: None,
        pending: false,
        sent_at: None,
        expires_at: b.expires_at,
        created_at: lorikeet_storage::now(),
    };
    ctx.state.storage.enqueue(&item).await?;
    ctx.state.notify(Change::QueueChanged(dev_eui));
    Ok(Out::created(json!({ "id": item.id })))
}

pub(super) async fn list(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    ctx.device(dev_eui).await?;
    let items = ctx.state.storage.get_queue(dev_eui).await?;
    Ok(Out::ok(json!({
        "items": items.iter().map(item_json).collect::<Vec<_>>()
    })))
}

pub(super) async fn flush(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    ctx.device(dev_eui).await?;
    ctx.state.storage.flush_queue(dev_eui).await?;
    ctx.state.notify(Change::QueueChanged(dev_eui));
    Ok(Out::NoContent)
}

pub(super) async fn events(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    let limit = ctx.query.number("limit", 10, 1, input::MAX_PAGE)?;
    ctx.device(dev_eui).await?;
    let events = ctx.state.storage.list_events(dev_eui, limit as u32).await?;
    let items: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "type": e.kind.as_str(),
                "time": e.created_at,
                "payload": e.payload,
            })
        })
        .collect();
    Ok(Out::ok(json!({ "items": items })))
}
