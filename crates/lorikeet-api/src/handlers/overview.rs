//! `GET /api/v1/overview`: the console's first page, from counters and indexed
//! counts (no event is counted per request).

use chrono::TimeDelta;
use serde_json::{json, Value};

use super::gateways::is_online;
use super::Ctx;
use crate::error::ApiError;
use crate::Out;

/// Minutes of the uplink chart.
const CHART_MINUTES: i64 = 60;

pub(super) async fn get(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let tenant = ctx.principal.list_filter(ctx.query.uuid("tenantId")?)?;
    let storage = &ctx.state.storage;
    let now = lorikeet_storage::now();
    let devices = storage.count_devices(tenant).await?;
    let gateways = storage
        .list_gateways(tenant, lorikeet_storage::Page::ALL)
        .await?;
    let online = gateways.iter().filter(|g| is_online(g, now)).count();
    let from = now - TimeDelta::minutes(CHART_MINUTES);
    let uplinks: Vec<Value> = storage
        .uplinks_per_minute(tenant, None, from, now + TimeDelta::minutes(1))
        .await?
        .into_iter()
        .map(|(t, n)| json!({"t": t, "n": n}))
        .collect();
    let backlog = storage.delivery_backlog(tenant).await?;
    Ok(Out::ok(json!({
        "devices": devices,
        "gateways": {"online": online, "offline": gateways.len() - online},
        "uplinksPerMinute": uplinks,
        "deliveryBacklog": backlog,
    })))
}
