//! Devices: `devices` (the provisioned fields, plus `last_seen_at` and
//! `device_class_enabled`, which the network server writes through `apply`).
//! Provisioning SQL is shared by both backends; the batched last-seen update
//! differs (see [`seen`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lorikeet_lorawan::Eui64;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Sqlite, Transaction};

use crate::sql::{ts_opt, Ts};
use crate::stmt::{decode_all, Row, Stmt};
use crate::store::Tx;
use crate::{
    paging, Changed, Device, DeviceClass, DeviceContext, DeviceFilter, Page, Storage, Store,
    StoreError,
};

const TABLE: &str = "devices";

const COLUMNS: &str = "dev_eui, join_eui, tenant_id, application_id, \
     device_profile_id, name, description, tags, skip_fcnt_check, disabled, \
     device_class_enabled, last_seen_at, created_at, updated_at";

fn decode(r: &Row) -> Result<Device, StoreError> {
    Ok(Device {
        dev_eui: r.eui(TABLE, "dev_eui")?,
        join_eui: r.eui(TABLE, "join_eui")?,
        tenant_id: r.get("tenant_id")?,
        application_id: r.get("application_id")?,
        device_profile_id: r.get("device_profile_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        tags: r.json("tags")?,
        skip_fcnt_check: r.get("skip_fcnt_check")?,
        disabled: r.get("disabled")?,
        device_class_enabled: r.known(TABLE, "device_class_enabled", DeviceClass::parse)?,
        last_seen_at: r.opt_ts("last_seen_at")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

/// Its application and profile must exist in its tenant (composite foreign keys).
pub(crate) async fn create(db: &Store, d: &Device) -> Result<(), StoreError> {
    db.provision_one(
        Changed::Device(d.dev_eui),
        Stmt::new(format!(
            "INSERT INTO devices ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14)"
        ))
        .bind(d.dev_eui.0.to_vec())
        .bind(d.join_eui.0.to_vec())
        .bind(d.tenant_id)
        .bind(d.application_id)
        .bind(d.device_profile_id)
        .bind(d.name.as_str())
        .bind(d.description.as_str())
        .bind(Json(&d.tags))
        .bind(d.skip_fcnt_check)
        .bind(d.disabled)
        .bind(d.device_class_enabled.as_str())
        .bind(ts_opt(d.last_seen_at))
        .bind(Ts(d.created_at))
        .bind(Ts(d.updated_at)),
    )
    .await
    .map_err(|e| StoreError::from_write("device", d.dev_eui, e))?;
    Ok(())
}

/// Devices per `INSERT` of [`upsert`] (14 arguments each: 14,000, below SQLite's
/// 32,766 and Postgres' 65,535).
const UPSERT_ROWS: usize = 1_000;

/// Creates or updates `devices` inside a provisioning transaction, many per
/// statement (the bulk import). An existing device gets the provisioned fields, as
/// [`update`] sets them, and keeps its `created_at`, `last_seen_at` and
/// `device_class_enabled`, but only if it is in the same tenant: a device of
/// another tenant is left alone and not counted, so a result below
/// `devices.len()` means some were. Returns the devices created or updated.
pub(crate) async fn upsert(tx: &mut Tx, devices: &[&Device]) -> Result<u64, sqlx::Error> {
    let mut n = 0;
    for chunk in devices.chunks(UPSERT_ROWS) {
        let mut sql = format!("INSERT INTO devices ({COLUMNS}) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 1..=14 {
                if c > 1 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", 14 * i + c));
            }
            sql.push(')');
        }
        sql.push_str(
            " ON CONFLICT (dev_eui) DO UPDATE SET join_eui = excluded.join_eui, \
             application_id = excluded.application_id, \
             device_profile_id = excluded.device_profile_id, name = excluded.name, \
             description = excluded.description, tags = excluded.tags, \
             skip_fcnt_check = excluded.skip_fcnt_check, disabled = excluded.disabled, \
             updated_at = excluded.updated_at \
             WHERE devices.tenant_id = excluded.tenant_id",
        );
        let mut s = Stmt::new(sql);
        for d in chunk {
            s = s
                .bind(d.dev_eui.0.to_vec())
                .bind(d.join_eui.0.to_vec())
                .bind(d.tenant_id)
                .bind(d.application_id)
                .bind(d.device_profile_id)
                .bind(d.name.as_str())
                .bind(d.description.as_str())
                .bind(Json(&d.tags))
                .bind(d.skip_fcnt_check)
                .bind(d.disabled)
                .bind(d.device_class_enabled.as_str())
                .bind(ts_opt(d.last_seen_at))
                .bind(Ts(d.created_at))
                .bind(Ts(d.updated_at));
        }
        n += tx.execute(s).await?;
    }
    Ok(n)
}

/// The tenant of each of `euis` that exists, read inside a transaction (the bulk
/// import: which devices it creates, which it updates).
pub(crate) async fn tenants_of(
    tx: &mut Tx,
    euis: &[Eui64],
) -> Result<Vec<(Eui64, uuid::Uuid)>, StoreError> {
    let mut out = Vec::new();
    for s in paging::by_euis_stmts("dev_eui, tenant_id", "devices", "", euis) {
        for r in tx.fetch_all(s).await? {
            out.push((r.eui(TABLE, "dev_eui")?, r.get("tenant_id")?));
        }
    }
    Ok(out)
}

pub(crate) async fn get(db: &Store, dev_eui: Eui64) -> Result<Option<Device>, StoreError> {
    db.fetch_optional(
        Stmt::select(COLUMNS, "FROM devices WHERE dev_eui = $1").bind(dev_eui.0.to_vec()),
    )
    .await?
    .as_ref()
    .map(decode)
    .transpose()
}

pub(crate) async fn list(
    db: &Store,
    filter: DeviceFilter,
    page: Page,
) -> Result<Vec<Device>, StoreError> {
    let (limit, offset) = paging::limit_offset(page);
    // One statement per filter shape, so each gets an index plan.
    let stmt = match (filter.tenant_id, filter.application_id) {
        (None, None) => Stmt::select(COLUMNS, "FROM devices ORDER BY dev_eui LIMIT $1 OFFSET $2"),
        (Some(t), None) => Stmt::select(
            COLUMNS,
            "FROM devices WHERE tenant_id = $1 ORDER BY dev_eui LIMIT $2 OFFSET $3",
        )
        .bind(t),
        (None, Some(a)) => Stmt::select(
            COLUMNS,
            "FROM devices WHERE application_id = $1 ORDER BY dev_eui LIMIT $2 OFFSET $3",
        )
        .bind(a),
        (Some(t), Some(a)) => Stmt::select(
            COLUMNS,
            "FROM devices WHERE application_id = $1 AND tenant_id = $2 \
             ORDER BY dev_eui LIMIT $3 OFFSET $4",
        )
        .bind(a)
        .bind(t),
    };
    let rows = db.fetch_all(stmt.bind(limit).bind(offset)).await?;
    decode_all(rows, decode)
}

/// The provisioned fields; not `last_seen_at` or `device_class_enabled`, which the
/// network server owns.
pub(crate) async fn update(db: &Store, d: &Device) -> Result<bool, StoreError> {
    let n = db
        .provision_one(
            Changed::Device(d.dev_eui),
            Stmt::new(
                "UPDATE devices SET join_eui = $2, tenant_id = $3, application_id = $4, \
                 device_profile_id = $5, name = $6, description = $7, tags = $8, \
                 skip_fcnt_check = $9, disabled = $10, updated_at = $11 WHERE dev_eui = $1",
            )
            .bind(d.dev_eui.0.to_vec())
            .bind(d.join_eui.0.to_vec())
            .bind(d.tenant_id)
            .bind(d.application_id)
            .bind(d.device_profile_id)
            .bind(d.name.as_str())
            .bind(d.description.as_str())
            .bind(Json(&d.tags))
            .bind(d.skip_fcnt_check)
            .bind(d.disabled)
            .bind(Ts(d.updated_at)),
        )
        .await
        .map_err(|e| StoreError::from_write("device", d.dev_eui, e))?;
    Ok(n > 0)
}

/// Deletes the device; `ON DELETE CASCADE` takes its keys, DevNonces, session,
/// queue and events.
pub(crate) async fn delete(db: &Store, dev_eui: Eui64) -> Result<bool, StoreError> {
    let n = db
        .provision_one(
            Changed::Device(dev_eui),
            Stmt::new("DELETE FROM devices WHERE dev_eui = $1").bind(dev_eui.0.to_vec()),
        )
        .await?;
    Ok(n > 0)
}

/// Keyset page by DevEUI.
pub(crate) async fn page(
    db: &Store,
    after: Option<Eui64>,
    limit: u32,
) -> Result<Vec<Device>, StoreError> {
    let rows = db
        .fetch_all(
            Stmt::select(
                COLUMNS,
                "FROM devices WHERE dev_eui > $1 ORDER BY dev_eui LIMIT $2",
            )
            .bind(paging::eui_after(after))
            .bind(i64::from(limit)),
        )
        .await?;
    decode_all(rows, decode)
}

/// Every device, four DevEUI ranges side by side.
pub(crate) async fn load_all(db: &Store) -> Result<Vec<Device>, StoreError> {
    paging::load_parallel(
        db,
        format!(
            "SELECT {COLUMNS} FROM devices WHERE dev_eui > $1 AND dev_eui < $2 \
             ORDER BY dev_eui LIMIT $3"
        ),
        decode,
        |d| d.dev_eui,
    )
    .await
}

/// The device with its profile, application and tenant, read through the
/// (timed) trait methods.
pub(crate) async fn context(
    db: &Store,
    dev_eui: Eui64,
) -> Result<Option<DeviceContext>, StoreError> {
    let Some(device) = db.get_device(dev_eui).await? else {
        return Ok(None);
    };
    let (Some(profile), Some(application), Some(tenant)) = (
        db.get_device_profile(device.device_profile_id).await?,
        db.get_application(device.application_id).await?,
        db.get_tenant(device.tenant_id).await?,
    ) else {
        // Deleted between the reads: the device is going away.
        return Ok(None);
    };
    Ok(Some(DeviceContext {
        device,
        profile,
        application,
        tenant,
    }))
}

/// `WriteOp::DeviceClass` (inside the batch transaction).
pub(crate) async fn set_class(
    tx: &mut Tx,
    dev_eui: Eui64,
    class: DeviceClass,
) -> Result<(), StoreError> {
    tx.execute(
        Stmt::new("UPDATE devices SET device_class_enabled = $2 WHERE dev_eui = $1")
            .bind(dev_eui.0.to_vec())
            .bind(class.as_str()),
    )
    .await?;
    Ok(())
}

/// `WriteOp::DeviceSeen` of a whole batch (the last time per device), one statement
/// rather than one per device.
pub(crate) async fn seen(
    tx: &mut Tx,
    seen: &BTreeMap<Eui64, DateTime<Utc>>,
) -> Result<(), StoreError> {
    if seen.is_empty() {
        return Ok(());
    }
    match tx {
        Tx::Postgres(tx) => seen_postgres(tx, seen).await,
        Tx::Sqlite(tx) => seen_sqlite(tx, seen).await,
    }
}

/// Postgres: two arrays joined through `UNNEST`.
async fn seen_postgres(
    tx: &mut Transaction<'static, Postgres>,
    seen: &BTreeMap<Eui64, DateTime<Utc>>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE devices d SET last_seen_at = u.at \
         FROM UNNEST($1::bytea[], $2::timestamptz[]) AS u(dev_eui, at) \
         WHERE d.dev_eui = u.dev_eui",
    )
    .bind(seen.keys().map(|e| e.0.to_vec()).collect::<Vec<_>>())
    .bind(seen.values().copied().collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// SQLite: a `VALUES` list per chunk (SQLite has no arrays).
async fn seen_sqlite(
    tx: &mut Transaction<'static, Sqlite>,
    seen: &BTreeMap<Eui64, DateTime<Utc>>,
) -> Result<(), StoreError> {
    let seen: Vec<(&Eui64, &DateTime<Utc>)> = seen.iter().collect();
    for chunk in seen.chunks(super::batch::SQLITE_KEY_ROWS) {
        let mut q =
            QueryBuilder::<Sqlite>::new("UPDATE devices SET last_seen_at = v.column2 FROM (");
        q.push_values(chunk, |mut b, (e, at)| {
            b.push_bind(e.0.to_vec()).push_bind(Ts(**at));
        });
        q.push(") AS v WHERE devices.dev_eui = v.column1");
        // Each chunk size is its own SQL text: keep them out of the statement cache.
        q.build().persistent(false).execute(&mut **tx).await?;
    }
    Ok(())
}

/// The devices among `euis` that exist (the feed reader's batched reload).
pub(crate) async fn by_euis(db: &Store, euis: &[Eui64]) -> Result<Vec<Device>, StoreError> {
    let rows = paging::by_euis(db, COLUMNS, "devices", "", euis).await?;
    decode_all(rows, decode)
}
