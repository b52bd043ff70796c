//! The downlink queue: `device_queue`. Items are enqueued and flushed by the API
//! (provisioning writes), marked sent or deleted by the network server (`apply`).
//! SQL shared by both backends.

use chrono::{DateTime, Utc};
use lorikeet_lorawan::Eui64;
use sqlx::types::Json;
use uuid::Uuid;

use crate::sql::{ts_opt, Ts};
use crate::stmt::{decode_all, Row, Stmt};
use crate::store::Tx;
use crate::{paging, Changed, QueueItem, Store, StoreError};

const TABLE: &str = "device_queue";

const COLUMNS: &str = "id, dev_eui, f_port, data, confirmed, object, f_cnt_down, pending, \
     sent_at, expires_at, created_at";

fn decode(r: &Row) -> Result<QueueItem, StoreError> {
    Ok(QueueItem {
        id: r.get("id")?,
        dev_eui: r.eui(TABLE, "dev_eui")?,
        f_port: r.int(TABLE, "f_port")?,
        data: r.get("data")?,
        confirmed: r.get("confirmed")?,
        object: r.opt_json("object")?,
        f_cnt_down: r.opt_int(TABLE, "f_cnt_down")?,
        pending: r.get("pending")?,
        sent_at: r.opt_ts("sent_at")?,
        expires_at: r.opt_ts("expires_at")?,
        created_at: r.ts("created_at")?,
    })
}

/// Appends a downlink to the device's queue.
pub(crate) async fn enqueue(db: &Store, q: &QueueItem) -> Result<(), StoreError> {
    db.provision_one(
        Changed::Queue(q.dev_eui),
        Stmt::new(format!(
            "INSERT INTO device_queue ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11)"
        ))
        .bind(q.id)
        .bind(q.dev_eui.0.to_vec())
        .bind(i64::from(q.f_port))
        .bind(q.data.as_slice())
        .bind(q.confirmed)
        .bind(q.object.as_ref().map(Json))
        .bind(q.f_cnt_down.map(i64::from))
        .bind(q.pending)
        .bind(ts_opt(q.sent_at))
        .bind(ts_opt(q.expires_at))
        .bind(Ts(q.created_at)),
    )
    .await
    .map_err(|e| StoreError::from_write("queue item", q.id, e))?;
    Ok(())
}

/// The device's queue, oldest first.
pub(crate) async fn get(db: &Store, dev_eui: Eui64) -> Result<Vec<QueueItem>, StoreError> {
    let rows = db
        .fetch_all(
            Stmt::select(
                COLUMNS,
                "FROM device_queue WHERE dev_eui = $1 ORDER BY created_at, id",
            )
            .bind(dev_eui.0.to_vec()),
        )
        .await?;
    decode_all(rows, decode)
}

/// Empties the device's queue; returns how many items went.
pub(crate) async fn flush(db: &Store, dev_eui: Eui64) -> Result<u64, StoreError> {
    Ok(db
        .provision_one(
            Changed::Queue(dev_eui),
            Stmt::new("DELETE FROM device_queue WHERE dev_eui = $1").bind(dev_eui.0.to_vec()),
        )
        .await?)
}

/// Every item, by device then age (start-up load).
pub(crate) async fn load_all(db: &Store) -> Result<Vec<QueueItem>, StoreError> {
    let rows = db
        .fetch_all(Stmt::select(
            COLUMNS,
            "FROM device_queue ORDER BY dev_eui, created_at, id",
        ))
        .await?;
    decode_all(rows, decode)
}

/// `WriteOp::QueueMarkSent` (inside the batch transaction).
pub(crate) async fn mark_sent(
    tx: &mut Tx,
    id: Uuid,
    f_cnt_down: u32,
    sent_at: DateTime<Utc>,
    pending: bool,
) -> Result<(), StoreError> {
    tx.execute(
        Stmt::new(
            "UPDATE device_queue SET f_cnt_down = $2, sent_at = $3, pending = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(i64::from(f_cnt_down))
        .bind(Ts(sent_at))
        .bind(pending),
    )
    .await?;
    Ok(())
}

/// `WriteOp::QueueDelete` (inside the batch transaction).
pub(crate) async fn delete_item(tx: &mut Tx, id: Uuid) -> Result<(), StoreError> {
    tx.execute(Stmt::new("DELETE FROM device_queue WHERE id = $1").bind(id))
        .await?;
    Ok(())
}

/// The queued items of `euis`, by device then age.
pub(crate) async fn by_euis(db: &Store, euis: &[Eui64]) -> Result<Vec<QueueItem>, StoreError> {
    let rows = paging::by_euis(
        db,
        COLUMNS,
        "device_queue",
        "ORDER BY dev_eui, created_at, id",
        euis,
    )
    .await?;
    decode_all(rows, decode)
}
