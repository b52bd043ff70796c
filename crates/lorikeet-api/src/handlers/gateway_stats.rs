//! `GET /api/v1/gateways/{gatewayId}/stats`: a gateway's state and its traffic per
//! minute, from the counters the network server flushes (no event is read).

use chrono::TimeDelta;
use serde_json::{json, Value};

use super::gateways::is_online;
use super::Ctx;
use crate::error::ApiError;
use crate::Out;

/// The longest range one request may ask for (10,080 minutes at most).
const MAX_RANGE: TimeDelta = TimeDelta::days(7);

pub(super) async fn get(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let gateway_id = ctx.eui_param("gatewayId")?;
    let now = lorikeet_storage::now();
    let (from, to) = ctx.query.time_range(now, MAX_RANGE)?;
    let g = ctx.gateway(gateway_id).await?;
    let intervals: Vec<Value> = ctx
        .state
        .storage
        .gateway_minutes(gateway_id, from, to)
        .await?
        .iter()
        .map(|m| {
            json!({
                "t": m.minute,
                "uplinks": m.uplinks,
                "downlinks": m.downlinks,
                "txAckErrors": m.tx_ack_errors,
            })
        })
        .collect();
    Ok(Out::ok(json!({
        "lastSeenAt": g.last_seen_at,
        "online": is_online(&g, now),
        "location": g.location,
        "intervals": intervals,
    })))
}
