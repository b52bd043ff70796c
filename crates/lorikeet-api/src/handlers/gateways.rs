//! Gateways.

use lorikeet_storage::{Change, Gateway, Location, LocationSource};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{page_out, probe, Ctx};
use crate::error::ApiError;
use crate::input;
use crate::Out;

/// A gateway counts as online while it was heard within this long. The network
/// server records a gateway at most every 30 s (and forwarders send PULL_DATA every
/// 10 s and `stat` every 30 s by default), so three missed records mean offline.
pub(crate) const ONLINE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::seconds(90);

/// Whether `g` was heard within [`ONLINE_WINDOW`] of `now`.
pub(crate) fn is_online(g: &Gateway, now: chrono::DateTime<chrono::Utc>) -> bool {
    g.last_seen_at.is_some_and(|t| now - t <= ONLINE_WINDOW)
}

fn gateway_json(g: &Gateway) -> Value {
    json!({
        "online": is_online(g, lorikeet_storage::now()),
        "gatewayId": g.gateway_id,
        "tenantId": g.tenant_id,
        "name": g.name,
        "description": g.description,
        "location": g.location,
        "locationSource": g.location_source.as_str(),
        "lastSeenAt": g.last_seen_at,
        "stats": g.stats,
        "private": g.private,
        "createdAt": g.created_at,
        "updatedAt": g.updated_at,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LocationBody {
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    altitude: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GatewayBody {
    gateway_id: String,
    name: String,
    #[serde(default)]
    description: String,
    tenant_id: Option<String>,
    location: Option<LocationBody>,
    location_source: Option<String>,
    /// Omitted: the tenant's `privateGateways`.
    private: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GatewayUpdateBody {
    gateway_id: Option<String>,
    name: String,
    #[serde(default)]
    description: String,
    tenant_id: Option<String>,
    location: Option<LocationBody>,
    location_source: Option<String>,
    /// Omitted: unchanged.
    private: Option<bool>,
}

fn location(l: Option<LocationBody>) -> Result<Option<Location>, ApiError> {
    let Some(l) = l else { return Ok(None) };
    if !(-90.0..=90.0).contains(&l.latitude) || !(-180.0..=180.0).contains(&l.longitude) {
        return Err(ApiError::bad_request(format!(
            "location: latitude must be within ±90 and longitude within ±180 degrees, got {}, {}",
            l.latitude, l.longitude
        )));
    }
    Ok(Some(Location {
        latitude: l.latitude,
        longitude: l.longitude,
        altitude: l.altitude,
    }))
}

/// `locationSource`; by default a provisioned location is kept (the forwarder's GPS
/// cannot overwrite it) and a gateway without one takes what its forwarder reports.
fn location_source(
    given: Option<&str>,
    location: Option<&Location>,
) -> Result<LocationSource, ApiError> {
    match given {
        Some(s) => LocationSource::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "locationSource must be \"provisioned\" or \"reported\", got {s:?}"
            ))
        }),
        None if location.is_some() => Ok(LocationSource::Provisioned),
        None => Ok(LocationSource::Reported),
    }
}

pub(super) async fn create(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let b: GatewayBody = ctx.body()?;
    let gateway_id = input::eui("gatewayId", &b.gateway_id)?;
    let name = input::name("name", &b.name)?;
    let location = location(b.location)?;
    let location_source = location_source(b.location_source.as_deref(), location.as_ref())?;
    let tenant_id = ctx.target_tenant(b.tenant_id.as_deref()).await?;
    let private = match b.private {
        Some(p) => p,
        None => ctx.tenant(tenant_id).await?.private_gateways,
    };
    let now = lorikeet_storage::now();
    let g = Gateway {
        gateway_id,
        tenant_id,
        name,
        description: b.description,
        location,
        location_source,
        last_seen_at: None,
        stats: None,
        private,
        created_at: now,
        updated_at: now,
    };
    ctx.state.storage.create_gateway(&g).await?;
    ctx.state.notify(Change::GatewayChanged(gateway_id));
    Ok(Out::created(json!({ "gatewayId": gateway_id })))
}

pub(super) async fn list(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let page = input::page(ctx.query)?;
    let filter = ctx.principal.list_filter(ctx.query.uuid("tenantId")?)?;
    let items = ctx.state.storage.list_gateways(filter, probe(page)).await?;
    Ok(page_out(items.iter().map(gateway_json).collect(), page))
}

pub(super) async fn get(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.eui_param("gatewayId")?;
    Ok(Out::ok(gateway_json(&ctx.gateway(id).await?)))
}

/// Replaces name, description, location and its source, and `private` when given
/// (the tenant never changes).
pub(super) async fn update(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.eui_param("gatewayId")?;
    let b: GatewayUpdateBody = ctx.body()?;
    let mut g = ctx.gateway(id).await?;
    if let Some(body_id) = b.gateway_id.as_deref() {
        if input::eui("gatewayId", body_id)? != id {
            return Err(ApiError::bad_request(format!(
                "gatewayId {body_id} in the body does not match {id} in the path"
            )));
        }
    }
    if let Some(t) = b.tenant_id.as_deref() {
        if input::uuid("tenantId", t)? != g.tenant_id {
            return Err(ApiError::bad_request(
                "tenantId cannot be changed; delete the gateway and create it in the other tenant",
            ));
        }
    }
    g.name = input::name("name", &b.name)?;
    g.description = b.description;
    g.location = location(b.location)?;
    g.location_source = location_source(b.location_source.as_deref(), g.location.as_ref())?;
    if let Some(p) = b.private {
        g.private = p;
    }
    g.updated_at = lorikeet_storage::now();
    if !ctx.state.storage.update_gateway(&g).await? {
        return Err(ApiError::not_found(format!("gateway {id} not found")));
    }
    ctx.state.notify(Change::GatewayChanged(id));
    Ok(Out::ok(gateway_json(&g)))
}

pub(super) async fn delete(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.eui_param("gatewayId")?;
    ctx.gateway(id).await?;
    if !ctx.state.storage.delete_gateway(id).await? {
        return Err(ApiError::not_found(format!("gateway {id} not found")));
    }
    ctx.state.notify(Change::GatewayDeleted(id));
    Ok(Out::NoContent)
}

/// The checks [`create`] (`GatewayBody`) and [`update`] (`GatewayUpdateBody`) make
/// of their body before any lookup, for the `api_bodies` fuzz target. An accepted
/// location is within ±90°/±180°.
pub(super) fn fuzz_body(update: bool, body: &[u8]) -> Result<(), ApiError> {
    let (gateway_id, name, tenant_id, l, source) = if update {
        let b: GatewayUpdateBody = input::json(body)?;
        (
            b.gateway_id,
            b.name,
            b.tenant_id,
            b.location,
            b.location_source,
        )
    } else {
        let b: GatewayBody = input::json(body)?;
        (
            Some(b.gateway_id),
            b.name,
            b.tenant_id,
            b.location,
            b.location_source,
        )
    };
    gateway_id
        .as_deref()
        .map(|g| input::eui("gatewayId", g))
        .transpose()?;
    tenant_id
        .as_deref()
        .map(|t| input::uuid("tenantId", t))
        .transpose()?;
    input::name("name", &name)?;
    let l = location(l)?;
    let source = location_source(source.as_deref(), l.as_ref())?;
    if let Some(l) = l {
        assert!(
            l.latitude.abs() <= 90.0 && l.longitude.abs() <= 180.0,
            "{l:?}"
        );
    }
    assert_eq!(LocationSource::parse(source.as_str()), Some(source));
    Ok(())
}
