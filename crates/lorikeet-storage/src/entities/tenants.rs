//! Tenants: `tenants`. SQL shared by both backends.

use uuid::Uuid;

use crate::sql::Ts;
use crate::stmt::{decode_all, Row, Stmt};
use crate::{paging, Page, Store, StoreError, Tenant, DEFAULT_TENANT_ID};

const COLUMNS: &str = "id, name, created_at, updated_at";

fn decode(r: &Row) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: r.get("id")?,
        name: r.get("name")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

pub(crate) async fn create(db: &Store, t: &Tenant) -> Result<(), StoreError> {
    db.provision_one(
        Stmt::new("INSERT INTO tenants (id, name, created_at, updated_at) VALUES ($1, $2, $3, $4)")
            .bind(t.id)
            .bind(t.name.as_str())
            .bind(Ts(t.created_at))
            .bind(Ts(t.updated_at)),
    )
    .await
    .map_err(|e| StoreError::from_write("tenant", t.id, e))?;
    Ok(())
}

pub(crate) async fn get(db: &Store, id: Uuid) -> Result<Option<Tenant>, StoreError> {
    db.fetch_optional(Stmt::select(COLUMNS, "FROM tenants WHERE id = $1").bind(id))
        .await?
        .as_ref()
        .map(decode)
        .transpose()
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
            Stmt::new("UPDATE tenants SET name = $2, updated_at = $3 WHERE id = $1")
                .bind(t.id)
                .bind(t.name.as_str())
                .bind(Ts(t.updated_at)),
        )
        .await?;
    Ok(n > 0)
}

/// Deletes the tenant; the schema's `ON DELETE CASCADE` takes everything it owns.
pub(crate) async fn delete(db: &Store, id: Uuid) -> Result<bool, StoreError> {
    if id == DEFAULT_TENANT_ID {
        return Err(StoreError::DefaultTenant);
    }
    let n = db
        .provision_one(Stmt::new("DELETE FROM tenants WHERE id = $1").bind(id))
        .await?;
    Ok(n > 0)
}
