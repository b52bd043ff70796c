//! Events: `events`, what happened to devices (uplinks, joins, ACKs, …) in the
//! order webhooks deliver it (increasing ids). Inserted in batches through `apply`,
//! with SQL that differs per backend (see [`insert`]); reads and retention shared.
//! Delivery reads them in `delivery.rs`.

use chrono::{DateTime, Utc};
use lorikeet_lorawan::Eui64;
use sqlx::{Postgres, QueryBuilder, Sqlite, Transaction};

use crate::sql::Ts;
use crate::stmt::{decode_all, Row, Stmt};
use crate::store::Tx;
use crate::{Event, EventKind, NewEvent, Store, StoreError};

const TABLE: &str = "events";

const COLUMNS: &str = "id, dev_eui, application_id, kind, payload, created_at";

/// Event rows per SQLite statement (5 parameters each).
const SQLITE_ROWS: usize = 2_000;

/// Rows deleted per retention statement, so a large backlog never holds a long lock.
const RETENTION_CHUNK: u32 = 5_000;

fn decode(r: &Row) -> Result<Event, StoreError> {
    Ok(Event {
        id: r.get("id")?,
        dev_eui: r.eui(TABLE, "dev_eui")?,
        application_id: r.get("application_id")?,
        kind: r.known(TABLE, "kind", EventKind::parse)?,
        payload: r.json("payload")?,
        created_at: r.ts("created_at")?,
    })
}

/// The device's newest `limit` events, newest first.
pub(crate) async fn list(db: &Store, dev_eui: Eui64, limit: u32) -> Result<Vec<Event>, StoreError> {
    let rows = db
        .fetch_all(
            Stmt::select(
                COLUMNS,
                "FROM events WHERE dev_eui = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(dev_eui.0.to_vec())
            .bind(i64::from(limit)),
        )
        .await?;
    decode_all(rows, decode)
}

/// Retention: deletes events older than `cutoff` in chunks, each its own
/// transaction; their outbox rows go with them (`ON DELETE CASCADE`).
pub(crate) async fn delete_older_than(
    db: &Store,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let n = db
            .execute(
                Stmt::new(format!(
                    "DELETE FROM events WHERE id IN \
                     (SELECT id FROM events WHERE created_at < $1 LIMIT {RETENTION_CHUNK})"
                ))
                .bind(Ts(cutoff)),
            )
            .await?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}

/// A batch's `WriteOp::InsertEvent`s, in op order: ids increase in that order,
/// which is the order webhooks deliver them in (per device). Events of devices
/// deleted meanwhile are skipped.
pub(crate) async fn insert(tx: &mut Tx, events: &[&NewEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    match tx {
        Tx::Postgres(tx) => insert_postgres(tx, events).await,
        Tx::Sqlite(tx) => insert_sqlite(tx, events).await,
    }
}

/// Postgres: one statement, a column array per field through `UNNEST`, in the
/// arrays' order (`WITH ORDINALITY`).
async fn insert_postgres(
    tx: &mut Transaction<'static, Postgres>,
    events: &[&NewEvent],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (dev_eui, application_id, kind, payload, created_at) \
         SELECT u.dev_eui, u.application_id, u.kind, u.payload::json, u.created_at \
         FROM UNNEST($1::bytea[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[]) \
           WITH ORDINALITY AS u(dev_eui, application_id, kind, payload, created_at, ord) \
         WHERE EXISTS (SELECT 1 FROM devices d WHERE d.dev_eui = u.dev_eui) \
         ORDER BY u.ord",
    )
    .bind(
        events
            .iter()
            .map(|e| e.dev_eui.0.to_vec())
            .collect::<Vec<_>>(),
    )
    .bind(events.iter().map(|e| e.application_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| &*e.payload).collect::<Vec<&str>>())
    .bind(events.iter().map(|e| e.created_at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// SQLite: a multi-row `VALUES` statement per chunk, rows in order.
async fn insert_sqlite(
    tx: &mut Transaction<'static, Sqlite>,
    events: &[&NewEvent],
) -> Result<(), StoreError> {
    for chunk in events.chunks(SQLITE_ROWS) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (dev_eui, application_id, kind, payload, created_at) \
             SELECT * FROM (",
        );
        q.push_values(chunk, |mut b, e| {
            b.push_bind(e.dev_eui.0.to_vec())
                .push_bind(e.application_id)
                .push_bind(e.kind.as_str())
                .push_bind(&*e.payload)
                .push_bind(Ts(e.created_at));
        });
        q.push(") WHERE column1 IN (SELECT dev_eui FROM devices)");
        // Each chunk size is its own SQL text: keep them out of the statement cache.
        q.build().persistent(false).execute(&mut **tx).await?;
    }
    Ok(())
}
