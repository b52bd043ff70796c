//! The downlink queue and stored events of a device.

use base64::Engine;
use chrono::{DateTime, Utc};
use lorikeet_service::{DownlinkRequest, EnqueueError};
use lorikeet_storage::{Change, QueueItem};
use serde::Deserialize;
use serde_json::{json, Value};

use super::Ctx;
use crate::error::ApiError;
use crate::input;
use crate::Out;

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
    let req = DownlinkRequest {
        f_port: b.f_port,
        data: b.data,
        object: b.object,
        confirmed: b.confirmed,
        expires_at: b.expires_at,
    };
    let item = lorikeet_service::enqueue(&*ctx.state.storage, ctx.state.codecs.as_ref(), &d, req)
        .await
        .map_err(|e| match e {
            EnqueueError::Invalid(_) | EnqueueError::Codec(_) => {
                ApiError::bad_request(e.to_string())
            }
            EnqueueError::QueueFull { .. } => ApiError::conflict(e.to_string()),
            EnqueueError::NoCodecRuntime => ApiError::unavailable(e.to_string()),
            EnqueueError::Store(e) => e.into(),
        })?;
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
    let before = match ctx.query.get("before") {
        Some(_) => Some(ctx.query.number("before", 0, 1, i64::MAX as u64)? as i64),
        None => None,
    };
    ctx.device(dev_eui).await?;
    let events = ctx
        .state
        .storage
        .list_events(dev_eui, limit as u32, before)
        .await?;
    // Each payload is the stored text itself, byte for byte what the
    // integrations delivered (a parsed value would be re-serialised).
    let mut body = String::from("{\"items\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"id\":{},\"type\":\"{}\",\"time\":{},\"payload\":{}}}",
            e.id,
            e.kind.as_str(),
            Value::from(
                e.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
            e.json
        ));
    }
    body.push_str("],\"nextBefore\":");
    match events.last() {
        Some(e) if events.len() as u64 == limit => body.push_str(&e.id.to_string()),
        _ => body.push_str("null"),
    }
    body.push('}');
    Ok(Out::Raw(crate::json_text_response(
        warp::http::StatusCode::OK,
        body,
    )))
}

/// The checks [`enqueue`] makes of its body before any lookup (the shared
/// [`lorikeet_service::check`]), and the Cayenne LPP encoding an object gets on a
/// `cayenne_lpp` profile, for the `api_bodies` fuzz target. Accepted bytes fit
/// every data rate's limit and go to an application FPort.
pub(super) fn fuzz_body(body: &[u8]) -> Result<(), ApiError> {
    let b: QueueBody = input::json(body)?;
    let req = DownlinkRequest {
        f_port: b.f_port,
        data: b.data,
        object: b.object,
        confirmed: b.confirmed,
        expires_at: b.expires_at,
    };
    let checked =
        lorikeet_service::downlink::check(req).map_err(|e| ApiError::bad_request(e.to_string()))?;
    assert!((1..=223).contains(&checked.f_port), "{checked:?}");
    let bytes = match checked.payload {
        lorikeet_service::downlink::Payload::Bytes(b) => b,
        lorikeet_service::downlink::Payload::Object(o) => {
            lorikeet_codec::cayenne::encode(&o).map_err(|e| ApiError::bad_request(e.to_string()))?
        }
    };
    if bytes.len() > lorikeet_service::MAX_DOWNLINK_PAYLOAD {
        // The encoded object is refused by size in `enqueue`, as given bytes are in `check`.
        return Err(ApiError::bad_request("the encoded object is too large"));
    }
    Ok(())
}
