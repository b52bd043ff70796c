//! API keys: `api_keys`, holding the SHA-256 of each token, never the token. SQL
//! shared by both backends.

use uuid::Uuid;

use crate::sql::Ts;
use crate::stmt::{Row, Stmt};
use crate::{paging, ApiKey, Changed, Page, Store, StoreError};

const COLUMNS: &str = "id, tenant_id, name, created_at";

fn decode(r: &Row) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: r.get("id")?,
        tenant_id: r.get("tenant_id")?,
        name: r.get("name")?,
        created_at: r.ts("created_at")?,
    })
}

pub(crate) async fn create(
    db: &Store,
    key: &ApiKey,
    token_hash: &[u8; 32],
) -> Result<(), StoreError> {
    db.provision_one(
        Changed::ApiKey(key.id),
        Stmt::new(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(key.id)
        .bind(key.tenant_id)
        .bind(key.name.as_str())
        .bind(token_hash.to_vec())
        .bind(Ts(key.created_at)),
    )
    .await
    .map_err(|e| StoreError::from_write("API key", key.id, e))?;
    Ok(())
}

pub(crate) async fn by_hash(
    db: &Store,
    token_hash: &[u8; 32],
) -> Result<Option<ApiKey>, StoreError> {
    db.fetch_optional(
        Stmt::select(COLUMNS, "FROM api_keys WHERE key_hash = $1").bind(token_hash.to_vec()),
    )
    .await?
    .as_ref()
    .map(decode)
    .transpose()
}

pub(crate) async fn get(db: &Store, id: Uuid) -> Result<Option<ApiKey>, StoreError> {
    paging::one(db, COLUMNS, "api_keys", "id", id, decode).await
}

pub(crate) async fn list(
    db: &Store,
    tenant_id: Option<Uuid>,
    page: Page,
) -> Result<Vec<ApiKey>, StoreError> {
    paging::of_tenant(
        db,
        COLUMNS,
        "api_keys",
        "created_at, id",
        tenant_id,
        page,
        decode,
    )
    .await
}

pub(crate) async fn delete(db: &Store, id: Uuid) -> Result<bool, StoreError> {
    let n = db
        .provision_one(
            Changed::ApiKey(id),
            Stmt::new("DELETE FROM api_keys WHERE id = $1").bind(id),
        )
        .await?;
    Ok(n > 0)
}
