//! Integrations: `integrations`, one per application and kind (HTTP, NATS, InfluxDB), with its
//! config and delivery status. The delivery bookkeeping on the same rows (cursor,
//! last success, last error) is in `delivery.rs`. SQL shared by both backends.
//!
//! The secret parts of a config (the [`SECRET_FIELDS`]: request headers, often
//! bearer tokens, the signing secret, and brokers' tokens and passwords) are not stored in `config`: they are
//! sealed together under the KEK (`kek.rs`) in `secrets`, bound to the
//! application and kind, and put back into the config when a row is read. The rest
//! of the config (the URL) stays readable in SQL.

use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use crate::kek::{Context, Keyring};
use crate::sql::Ts;
use crate::stmt::{decode_all, Row, Stmt};
use crate::{Changed, Integration, IntegrationKind, IntegrationOwner, Store, StoreError};

pub(crate) const TABLE: &str = "integrations";

const COLUMNS: &str = "id, application_id, kind, owner, config, secrets, last_delivered_at, \
     last_error, last_error_at, created_at, updated_at";

/// The config fields that are sealed in `secrets` rather than stored in `config`.
pub(crate) const SECRET_FIELDS: [&str; 5] =
    ["headers", "signingSecret", "token", "password", "sasl"];

/// The row identity the secrets are bound to: the application id and the kind
/// (the unique key; an upsert may keep an older row id).
pub(crate) fn row_identity(application_id: Uuid, kind: &str) -> Vec<u8> {
    let mut row = application_id.as_bytes().to_vec();
    row.extend_from_slice(kind.as_bytes());
    row
}

/// `config` without its [`SECRET_FIELDS`], and those fields as an object.
pub(crate) fn split(config: &Value) -> (Value, Value) {
    let mut public = config.clone();
    let mut secrets = Map::new();
    if let Value::Object(fields) = &mut public {
        for name in SECRET_FIELDS {
            if let Some(v) = fields.remove(name) {
                secrets.insert(name.to_owned(), v);
            }
        }
    }
    (public, Value::Object(secrets))
}

/// The secrets object sealed for the row.
pub(crate) fn seal_secrets(ring: &Keyring, row: &[u8], secrets: &Value) -> Vec<u8> {
    ring.seal(
        &Context {
            table: TABLE,
            column: "secrets",
            row,
        },
        secrets.to_string().as_bytes(),
    )
}

/// The secrets object sealed in `value` for the row.
pub(crate) fn open_secrets(ring: &Keyring, row: &[u8], value: &[u8]) -> Result<Value, StoreError> {
    let context = Context {
        table: TABLE,
        column: "secrets",
        row,
    };
    let failed = |reason| StoreError::Sealed {
        table: TABLE,
        column: "secrets",
        row: format!("integration {}", describe(row)),
        reason,
    };
    let plain = ring.open(&context, value).map_err(failed)?;
    serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt {
        table: TABLE,
        column: "secrets",
        detail: format!("sealed value is not JSON: {e}"),
    })
}

/// "application <uuid> kind <kind>" of a row identity.
fn describe(row: &[u8]) -> String {
    match (row.get(..16), row.get(16..)) {
        (Some(id), Some(kind)) => format!(
            "of application {} ({})",
            Uuid::from_slice(id).unwrap_or_default(),
            String::from_utf8_lossy(kind)
        ),
        _ => hex::encode(row),
    }
}

/// `config` with the secret fields put back.
fn merge(mut config: Value, secrets: Value) -> Value {
    if let (Value::Object(fields), Value::Object(secrets)) = (&mut config, secrets) {
        fields.extend(secrets);
    }
    config
}

fn decode(r: &Row, ring: &Keyring) -> Result<Integration, StoreError> {
    let application_id: Uuid = r.get("application_id")?;
    let kind = r.known(TABLE, "kind", IntegrationKind::parse)?;
    let config: Value = r.json("config")?;
    let config = match r.get::<Option<Vec<u8>>>("secrets")? {
        Some(sealed) => merge(
            config,
            open_secrets(ring, &row_identity(application_id, kind.as_str()), &sealed)?,
        ),
        // Only a row of the previous version, before start-up sealed it.
        None => config,
    };
    Ok(Integration {
        id: r.get("id")?,
        application_id,
        kind,
        owner: r.known(TABLE, "owner", IntegrationOwner::parse)?,
        config,
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
    let (config, secrets) = split(&i.config);
    let secrets = seal_secrets(
        db.keyring()?,
        &row_identity(i.application_id, i.kind.as_str()),
        &secrets,
    );
    // A new integration starts after the events already stored.
    let max_id = super::events::max_id_sql(db);
    let write = async {
        let mut p = db.provision().await?;
        let id: Uuid = p
            .fetch_one(
                Stmt::new(format!(
                    "INSERT INTO integrations (id, application_id, kind, config, secrets, \
                     created_at, updated_at, owner, delivered_through) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {max_id}) \
                     ON CONFLICT (application_id, kind) DO UPDATE SET config = excluded.config, \
                     secrets = excluded.secrets, updated_at = excluded.updated_at, \
                     owner = excluded.owner RETURNING id"
                ))
                .bind(i.id)
                .bind(i.application_id)
                .bind(i.kind.as_str())
                .bind(Json(&config))
                .bind(secrets)
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
    let ring = db.keyring()?;
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
    .map(|r| decode(r, ring))
    .transpose()
}

/// One application's integrations, or every integration.
pub(crate) async fn list(
    db: &Store,
    application_id: Option<Uuid>,
) -> Result<Vec<Integration>, StoreError> {
    let ring = db.keyring()?;
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
    decode_all(rows, |r| decode(r, ring))
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
