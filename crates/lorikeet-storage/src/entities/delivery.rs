//! Webhook delivery from the `events` table: each integration's cursor
//! (`integrations.delivered_through`), reading the events past it, and moving
//! failed ones into the retry outbox (`outbox.rs`). SQL shared by both backends
//! (events are read through `events.rs`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lorikeet_lorawan::Eui64;
use uuid::Uuid;

use crate::sql::{self, ts_opt, Ts};
use crate::stmt::Stmt;
use crate::store::Tx;
use crate::{DeliveryCursor, PendingEvent, SpillRow, Store, StoreError};

/// Every integration's cursor.
pub(crate) async fn cursors(db: &Store) -> Result<Vec<DeliveryCursor>, StoreError> {
    let rows = db
        .fetch_all(Stmt::new("SELECT id, delivered_through FROM integrations"))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DeliveryCursor {
                integration_id: r.get("id")?,
                delivered_through: r.get("delivered_through")?,
                last_delivered_at: None,
            })
        })
        .collect()
}

/// Moves cursors forward (never back) and notes successful deliveries, in one
/// transaction.
pub(crate) async fn save_cursors(db: &Store, cursors: &[DeliveryCursor]) -> Result<(), StoreError> {
    if cursors.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    for c in cursors {
        tx.execute(
            Stmt::new(
                "UPDATE integrations SET \
                 delivered_through = CASE WHEN delivered_through < $2 THEN $2 \
                   ELSE delivered_through END, \
                 last_delivered_at = COALESCE($3, last_delivered_at) WHERE id = $1",
            )
            .bind(c.integration_id)
            .bind(c.delivered_through)
            .bind(ts_opt(c.last_delivered_at)),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The application's events with an id above `after`, oldest first, at most `limit`.
pub(crate) async fn events_after(
    db: &Store,
    application_id: Uuid,
    after: i64,
    limit: u32,
) -> Result<Vec<PendingEvent>, StoreError> {
    super::events::after(db, application_id, after, limit).await
}

/// Moves events into the retry outbox and wakes the idle chains they join (at their
/// earliest row's time); a chain that is leased or waiting for a retry keeps its
/// time. Rows of deleted devices, events or integrations are skipped; failures are
/// noted on their integrations. One transaction.
pub(crate) async fn spill(
    db: &Store,
    spill: &[SpillRow],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if spill.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    let mut chains: BTreeMap<(Uuid, Eui64), DateTime<Utc>> = BTreeMap::new();
    let mut errors: BTreeMap<Uuid, &str> = BTreeMap::new();
    for r in spill {
        let exists = super::events::exists_sql(db, r.event_id);
        // Only for events that still exist (a deleted device took its events).
        let written = tx
            .execute(
                Stmt::new(format!(
                    "INSERT INTO outbox (integration_id, event_id, dev_eui, attempts, \
                     next_attempt_at, last_error, created_at) \
                     SELECT $1, $2, $3, $4, $5, $6, $7 \
                     WHERE {exists} \
                     AND EXISTS (SELECT 1 FROM integrations WHERE id = $1)"
                ))
                .bind(r.integration_id)
                .bind(r.event_id)
                .bind(r.dev_eui.0.to_vec())
                .bind(i64::from(r.attempts))
                .bind(Ts(r.next_attempt_at))
                .bind(r.last_error.as_deref())
                .bind(Ts(r.created_at)),
            )
            .await?;
        if written == 0 {
            continue;
        }
        let due = chains
            .entry((r.integration_id, r.dev_eui))
            .or_insert(r.next_attempt_at);
        *due = (*due).min(r.next_attempt_at);
        if let Some(e) = &r.last_error {
            errors.insert(r.integration_id, e);
        }
    }
    for ((integration, dev_eui), due) in chains {
        // Wake an idle chain; a chain waiting for a retry (or leased) is left alone.
        tx.execute(
            Stmt::new(
                "INSERT INTO outbox_chains (integration_id, dev_eui, next_attempt_at) \
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM devices WHERE dev_eui = $2) \
                 AND EXISTS (SELECT 1 FROM integrations WHERE id = $1) \
                 ON CONFLICT (integration_id, dev_eui) DO UPDATE SET next_attempt_at = \
                 excluded.next_attempt_at WHERE outbox_chains.next_attempt_at >= $4",
            )
            .bind(integration)
            .bind(dev_eui.0.to_vec())
            .bind(Ts(due))
            .bind(sql::idle()),
        )
        .await?;
    }
    for (integration, error) in errors {
        note_error(&mut tx, integration, error, at).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The (integration, device) pairs with rows in the outbox.
pub(crate) async fn active_chains(db: &Store) -> Result<Vec<(Uuid, Eui64)>, StoreError> {
    let rows = db
        .fetch_all(Stmt::new(
            "SELECT DISTINCT integration_id, dev_eui FROM outbox",
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.get("integration_id")?, r.eui("outbox", "dev_eui")?)))
        .collect()
}

/// Notes an error on an integration whose settings cannot be used at all.
pub(crate) async fn integration_failed(
    db: &Store,
    integration: Uuid,
    error: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    note_error(&mut tx, integration, error, at).await?;
    tx.commit().await?;
    Ok(())
}

/// Notes a delivery error on an integration (shown by the API).
pub(crate) async fn note_error(
    tx: &mut Tx,
    integration: Uuid,
    error: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(
        Stmt::new("UPDATE integrations SET last_error = $2, last_error_at = $3 WHERE id = $1")
            .bind(integration)
            .bind(error)
            .bind(Ts(at)),
    )
    .await?;
    Ok(())
}
