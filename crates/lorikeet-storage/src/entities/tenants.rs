//! Tenants: `tenants`. SQL shared by both backends.

use uuid::Uuid;

use crate::sql::Ts;
use crate::stmt::{decode_all, Row, Stmt};
use crate::{paging, Changed, Page, Store, StoreError, Tenant, DEFAULT_TENANT_ID};

const COLUMNS: &str = "id, name, private_gateways, created_at, updated_at";

fn decode(r: &Row) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: r.get("id")?,
        name: r.get("name")?,
        private_gateways: r.get("private_gateways")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

pub(crate) async fn create(db: &Store, t: &Tenant) -> Result<(), StoreError> {
    db.provision_one(
        Changed::Tenant(t.id),
        Stmt::new(
            "INSERT INTO tenants (id, name, private_gateways, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(t.id)
        .bind(t.name.as_str())
        .bind(t.private_gateways)
        .bind(Ts(t.created_at))
        .bind(Ts(t.updated_at)),
    )
    .await
    .map_err(|e| StoreError::from_write("tenant", t.id, e))?;
    Ok(())
}

pub(crate) async fn get(db: &Store, id: Uuid) -> Result<Option<Tenant>, StoreError> {
    paging::one(db, COLUMNS, "tenants", "id", id, decode).await
}

pub(crate) async fn list(db: &Store, page: Page) -> Result<Vec<Tenant>, StoreError> {
    let (limit, offset) = paging::limit_offset(page);
    let rows = db
        .fetch_all(
            Stmt::select(COLUMNS, "FROM tenants ORDER BY name, id LIMIT $1 OFFSET $2")
                .bind(limit)
                .bind(offset),
        )
        .await?;
    decode_all(rows, decode)
}

pub(crate) async fn update(db: &Store, t: &Tenant) -> Result<bool, StoreError> {
    let n = db
        .provision_one(
            Changed::Tenant(t.id),
            Stmt::new(
                "UPDATE tenants SET name = $2, updated_at = $3, private_gateways = $4 \
                 WHERE id = $1",
            )
            .bind(t.id)
            .bind(t.name.as_str())
            .bind(Ts(t.updated_at))
            .bind(t.private_gateways),
        )
        .await?;
    Ok(n > 0)
}

/// Deletes the tenant; the schema's `ON DELETE CASCADE` takes everything it owns.
/// Its devices, gateways, applications and profiles go on the feed too, so the live
/// state drops exactly those.
pub(crate) async fn delete(db: &Store, id: Uuid) -> Result<bool, StoreError> {
    if id == DEFAULT_TENANT_ID {
        return Err(StoreError::DefaultTenant);
    }
    let mut p = db.provision().await?;
    let mut owned = Vec::new();
    for r in p
        .fetch_all(Stmt::new("SELECT dev_eui FROM devices WHERE tenant_id = $1").bind(id))
        .await?
    {
        owned.push(Changed::Device(r.eui("devices", "dev_eui")?));
    }
    for r in p
        .fetch_all(Stmt::new("SELECT gateway_id FROM gateways WHERE tenant_id = $1").bind(id))
        .await?
    {
        owned.push(Changed::Gateway(r.eui("gateways", "gateway_id")?));
    }
    for r in p
        .fetch_all(Stmt::new("SELECT id FROM applications WHERE tenant_id = $1").bind(id))
        .await?
    {
        let app: Uuid = r.get("id")?;
        owned.push(Changed::Integration(app));
        owned.push(Changed::Application(app));
    }
    for r in p
        .fetch_all(Stmt::new("SELECT id FROM device_profiles WHERE tenant_id = $1").bind(id))
        .await?
    {
        owned.push(Changed::DeviceProfile(r.get("id")?));
    }
    let n = p
        .execute(Stmt::new("DELETE FROM tenants WHERE id = $1").bind(id))
        .await?;
    if n > 0 {
        for c in owned {
            p.record(c);
        }
        p.record(Changed::Tenant(id));
    }
    p.commit().await?;
    Ok(n > 0)
}
