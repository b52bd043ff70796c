//! Integrations: `integrations`, one per application and kind (HTTP, MQTT), with its
//! config and delivery status. The delivery bookkeeping on the same rows (cursor,
//! last success, last error) is in `delivery.rs`. SQL shared by both backends.

use sqlx::types::Json;
use uuid::Uuid;

use crate::sql::Ts;
use crate::stmt::{decode_all, Row, Stmt};
use crate::{Changed, Integration, IntegrationKind, IntegrationOwner, Store, StoreError};

const COLUMNS: &str = "id, application_id, kind, owner, config, last_delivered_at, last_error, \
     last_error_at, created_at, updated_at";

fn decode(r: &Row) -> Result<Integration, StoreError> {
    Ok(Integration {
        id: r.get("id")?,
        application_id: r.get("application_id")?,
        kind: r.known("integrations", "kind", IntegrationKind::parse)?,
        owner: r.known("integrations", "owner", IntegrationOwner::parse)?,
        config: r.json("config")?,
        last_delivered_at: r.opt_ts("last_delivered_at")?,
        last_error: r.get("last_error")?,
        last_error_at: r.opt_ts("last_error_at")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

/// Creates the application's integration of this kind, or replaces its config and
/// owner.
/// A new one starts delivering after the newest event. True when created.
pub(crate) async fn upsert(db: &Store, i: &Integration) -> Result<bool, StoreError> {
    let write = async {
        let mut p = db.provision().await?;
        let id: Uuid = p
            .fetch_one(
                Stmt::new(
                    "INSERT INTO integrations (id, application_id, kind, config, created_at, \
                     updated_at, owner, delivered_through) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, \
                     (SELECT COALESCE(MAX(id), 0) FROM events)) \
                     ON CONFLICT (application_id, kind) DO UPDATE SET config = excluded.config, \
                     updated_at = excluded.updated_at, owner = excluded.owner RETURNING id",
                )
                .bind(i.id)
                .bind(i.application_id)
                .bind(i.kind.as_str())
                .bind(Json(&i.config))
                .bind(Ts(i.created_at))
                .bind(Ts(i.updated_at))
                .bind(i.owner.as_str()),
            )
            .await?
            .get("id")?;
        p.record(Changed::Integration(i.application_id));
        p.commit().await?;
        Ok::<_, sqlx::Error>(id)
    };
    let id = write
        .await
        .map_err(|e| StoreError::from_write("integration", i.id, e))?;
    Ok(id == i.id)
}

pub(crate) async fn get(
    db: &Store,
    application_id: Uuid,
    kind: IntegrationKind,
) -> Result<Option<Integration>, StoreError> {
    db.fetch_optional(
        Stmt::select(
            COLUMNS,
            "FROM integrations WHERE application_id = $1 AND kind = $2",
        )
        .bind(application_id)
        .bind(kind.as_str()),
    )
    .await?
    .as_ref()
    .map(decode)
    .transpose()
}

/// One application's integrations, or every integration.
pub(crate) async fn list(
    db: &Store,
    application_id: Option<Uuid>,
) -> Result<Vec<Integration>, StoreError> {
    let rows = db
        .fetch_all(
            Stmt::select(
                COLUMNS,
                "FROM integrations WHERE ($1 IS NULL OR application_id = $1) \
                 ORDER BY application_id, kind",
            )
            .bind(application_id),
        )
        .await?;
    decode_all(rows, decode)
}

/// Deletes the integration; `ON DELETE CASCADE` takes its outbox rows and chains.
pub(crate) async fn delete(
    db: &Store,
    application_id: Uuid,
    kind: IntegrationKind,
) -> Result<bool, StoreError> {
    let n = db
        .provision_one(
            Changed::Integration(application_id),
            Stmt::new("DELETE FROM integrations WHERE application_id = $1 AND kind = $2")
                .bind(application_id)
                .bind(kind.as_str()),
        )
        .await?;
    Ok(n > 0)
}
