//! Applications: `applications`. SQL shared by both backends.

use uuid::Uuid;

use crate::sql::Ts;
use crate::stmt::{Row, Stmt};
use crate::{paging, Application, Changed, Page, Store, StoreError};

const COLUMNS: &str = "id, tenant_id, name, description, created_at, updated_at";

fn decode(r: &Row) -> Result<Application, StoreError> {
    Ok(Application {
        id: r.get("id")?,
        tenant_id: r.get("tenant_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

pub(crate) async fn create(db: &Store, a: &Application) -> Result<(), StoreError> {
    db.provision_one(
        Changed::Application(a.id),
        Stmt::new(
            "INSERT INTO applications (id, tenant_id, name, description, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(a.id)
        .bind(a.tenant_id)
        .bind(a.name.as_str())
        .bind(a.description.as_str())
        .bind(Ts(a.created_at))
        .bind(Ts(a.updated_at)),
    )
    .await
    .map_err(|e| StoreError::from_write("application", a.id, e))?;
    Ok(())
}

pub(crate) async fn get(db: &Store, id: Uuid) -> Result<Option<Application>, StoreError> {
    paging::one(db, COLUMNS, "applications", "id", id, decode).await
}

pub(crate) async fn list(
    db: &Store,
    tenant_id: Option<Uuid>,
    page: Page,
) -> Result<Vec<Application>, StoreError> {
    paging::of_tenant(
        db,
        COLUMNS,
        "applications",
        "name, id",
        tenant_id,
        page,
        decode,
    )
    .await
}

/// Name and description; the tenant never changes.
pub(crate) async fn update(db: &Store, a: &Application) -> Result<bool, StoreError> {
    let n = db
        .provision_one(
            Changed::Application(a.id),
            Stmt::new(
                "UPDATE applications SET name = $2, description = $3, updated_at = $4 \
                 WHERE id = $1",
            )
            .bind(a.id)
            .bind(a.name.as_str())
            .bind(a.description.as_str())
            .bind(Ts(a.updated_at)),
        )
        .await?;
    Ok(n > 0)
}

/// Deletes the application; `ON DELETE CASCADE` takes its devices and integrations.
/// Each device goes on the feed too, so the live state drops exactly those.
pub(crate) async fn delete(db: &Store, id: Uuid) -> Result<bool, StoreError> {
    let mut p = db.provision().await?;
    let devices = p
        .fetch_all(Stmt::new("SELECT dev_eui FROM devices WHERE application_id = $1").bind(id))
        .await?;
    let n = p
        .execute(Stmt::new("DELETE FROM applications WHERE id = $1").bind(id))
        .await?;
    if n > 0 {
        for r in &devices {
            p.record(Changed::Device(r.eui("devices", "dev_eui")?));
        }
        p.record(Changed::Integration(id));
        p.record(Changed::Application(id));
    }
    p.commit().await?;
    Ok(n > 0)
}
