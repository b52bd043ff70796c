//! Gateways: `gateways` (provisioned name, description and location; last seen time
//! and `stat` report, written by the network server through `apply`). SQL shared by
//! both backends.

use chrono::{DateTime, Utc};
use lorikeet_lorawan::Eui64;
use sqlx::types::Json;
use uuid::Uuid;

use crate::sql::{self, ts_opt, Ts};
use crate::stmt::{Row, Stmt};
use crate::store::Tx;
use crate::{paging, Changed, Gateway, Location, LocationSource, Page, Store, StoreError};

const TABLE: &str = "gateways";

const COLUMNS: &str = "gateway_id, tenant_id, name, description, latitude, longitude, \
     altitude, location_source, last_seen_at, stats, created_at, updated_at, is_private";

fn decode(r: &Row) -> Result<Gateway, StoreError> {
    let latitude: Option<f64> = r.get("latitude")?;
    let longitude: Option<f64> = r.get("longitude")?;
    let altitude: Option<f64> = r.get("altitude")?;
    let location = match (latitude, longitude) {
        (Some(latitude), Some(longitude)) => Some(Location {
            latitude,
            longitude,
            altitude: altitude.unwrap_or(0.0),
        }),
        _ => None,
    };
    let source: String = r.get("location_source")?;
    Ok(Gateway {
        gateway_id: r.eui(TABLE, "gateway_id")?,
        tenant_id: r.get("tenant_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        location,
        location_source: sql::known(&source, LocationSource::parse, TABLE, "location_source")?,
        last_seen_at: r.opt_ts("last_seen_at")?,
        stats: r.opt_json("stats")?,
        private: r.get("is_private")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

pub(crate) async fn create(db: &Store, g: &Gateway) -> Result<(), StoreError> {
    db.provision_one(
        Changed::Gateway(g.gateway_id),
        Stmt::new(format!(
            "INSERT INTO gateways ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13)"
        ))
        .bind(g.gateway_id.0.to_vec())
        .bind(g.tenant_id)
        .bind(g.name.as_str())
        .bind(g.description.as_str())
        .bind(g.location.map(|l| l.latitude))
        .bind(g.location.map(|l| l.longitude))
        .bind(g.location.map(|l| l.altitude))
        .bind(g.location_source.as_str())
        .bind(ts_opt(g.last_seen_at))
        .bind(g.stats.as_ref().map(Json))
        .bind(Ts(g.created_at))
        .bind(Ts(g.updated_at))
        .bind(g.private),
    )
    .await
    .map_err(|e| StoreError::from_write("gateway", g.gateway_id, e))?;
    Ok(())
}

pub(crate) async fn get(db: &Store, gateway_id: Eui64) -> Result<Option<Gateway>, StoreError> {
    paging::one(
        db,
        COLUMNS,
        "gateways",
        "gateway_id",
        gateway_id.0.to_vec(),
        decode,
    )
    .await
}

pub(crate) async fn list(
    db: &Store,
    tenant_id: Option<Uuid>,
    page: Page,
) -> Result<Vec<Gateway>, StoreError> {
    paging::of_tenant(
        db,
        COLUMNS,
        "gateways",
        "gateway_id",
        tenant_id,
        page,
        decode,
    )
    .await
}

/// Name, description, location and its source, and whether it is private.
pub(crate) async fn update(db: &Store, g: &Gateway) -> Result<bool, StoreError> {
    let n = db
        .provision_one(
            Changed::Gateway(g.gateway_id),
            Stmt::new(
                "UPDATE gateways SET name = $2, description = $3, latitude = $4, \
                 longitude = $5, altitude = $6, updated_at = $7, location_source = $8, \
                 is_private = $9 WHERE gateway_id = $1",
            )
            .bind(g.gateway_id.0.to_vec())
            .bind(g.name.as_str())
            .bind(g.description.as_str())
            .bind(g.location.map(|l| l.latitude))
            .bind(g.location.map(|l| l.longitude))
            .bind(g.location.map(|l| l.altitude))
            .bind(Ts(g.updated_at))
            .bind(g.location_source.as_str())
            .bind(g.private),
        )
        .await?;
    Ok(n > 0)
}

pub(crate) async fn delete(db: &Store, gateway_id: Eui64) -> Result<bool, StoreError> {
    let n = db
        .provision_one(
            Changed::Gateway(gateway_id),
            Stmt::new("DELETE FROM gateways WHERE gateway_id = $1").bind(gateway_id.0.to_vec()),
        )
        .await?;
    Ok(n > 0)
}

/// `WriteOp::GatewaySeen` (inside the batch transaction): the time, and the stats
/// and location when the report carried them (the location only where its source is
/// `reported`). Unknown gateways change nothing.
pub(crate) async fn seen(
    tx: &mut Tx,
    gateway_id: Eui64,
    at: DateTime<Utc>,
    stats: Option<&serde_json::Value>,
    location: Option<Location>,
) -> Result<(), StoreError> {
    tx.execute(
        Stmt::new(
            "UPDATE gateways SET last_seen_at = $2, stats = COALESCE($3, stats), \
             latitude = CASE WHEN location_source = 'reported' THEN COALESCE($4, latitude) \
             ELSE latitude END, \
             longitude = CASE WHEN location_source = 'reported' THEN COALESCE($5, longitude) \
             ELSE longitude END, \
             altitude = CASE WHEN location_source = 'reported' THEN COALESCE($6, altitude) \
             ELSE altitude END WHERE gateway_id = $1",
        )
        .bind(gateway_id.0.to_vec())
        .bind(Ts(at))
        .bind(stats.map(Json))
        .bind(location.map(|l| l.latitude))
        .bind(location.map(|l| l.longitude))
        .bind(location.map(|l| l.altitude)),
    )
    .await?;
    Ok(())
}
