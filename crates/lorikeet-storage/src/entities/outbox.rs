//! The retry outbox: `outbox` (one row per undelivered event and integration) and
//! `outbox_chains` (per integration and device, when its oldest row may next be
//! tried; far future = idle). Deliveries stay in order per device, so only a
//! chain's head is ever claimed. SQL shared by both backends except the claim's row
//! lock and the two bulk updates Postgres does with arrays ([`set_chains`],
//! [`delete_rows`]).

use chrono::{DateTime, Utc};
use lorikeet_lorawan::Eui64;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::delivery::note_error;
use crate::sql::{self, Ts};
use crate::stmt::{Row, Stmt};
use crate::store::Tx;
use crate::{Backend, Claimed, EventKind, OutboxItem, Store, StoreError};

const TABLE: &str = "outbox";

/// A claimed head row; its event is read after the claim.
fn decode(r: &Row) -> Result<OutboxItem, StoreError> {
    Ok(OutboxItem {
        id: r.get("id")?,
        integration_id: r.get("integration_id")?,
        event_id: r.get("event_id")?,
        dev_eui: r.eui(TABLE, "dev_eui")?,
        kind: EventKind::Up,
        body: String::new(),
        attempts: r.int(TABLE, "attempts")?,
        last_error: r.get("last_error")?,
        created_at: r.ts("created_at")?,
    })
}

/// Claims the head row of up to `limit` due chains and leases them until
/// `lease_until`; due chains found empty go idle.
pub(crate) async fn claim(
    db: &Store,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> Result<Claimed, StoreError> {
    // Due chains and the oldest undelivered row of each.
    const SELECT: &str = "SELECT c.integration_id AS chain_integration_id, \
         c.dev_eui AS chain_dev_eui, o.id, o.integration_id, o.event_id, o.dev_eui, \
         o.attempts, o.last_error, o.created_at \
         FROM outbox_chains c \
         LEFT JOIN outbox o ON o.id = (SELECT o2.id FROM outbox o2 \
           WHERE o2.integration_id = c.integration_id AND o2.dev_eui = c.dev_eui \
           ORDER BY o2.event_id LIMIT 1) \
         WHERE c.next_attempt_at <= $1 ORDER BY c.next_attempt_at LIMIT $2";
    let sql = match db.backend() {
        // Several workers may claim at once: each skips the chains another holds.
        Backend::Postgres => format!("{SELECT} FOR UPDATE OF c SKIP LOCKED"),
        // One writer at a time (`BEGIN IMMEDIATE`): nothing to lock.
        Backend::Sqlite => SELECT.to_string(),
    };
    let mut tx = db.begin().await?;
    let rows = tx
        .fetch_all(Stmt::new(sql).bind(Ts(now)).bind(i64::from(limit)))
        .await?;
    let mut items = Vec::new();
    let mut idle = Vec::new();
    let mut chains = Vec::with_capacity(rows.len());
    for r in &rows {
        let integration: Uuid = r.get("chain_integration_id")?;
        let dev_eui: Vec<u8> = r.get("chain_dev_eui")?;
        let head: Option<i64> = r.get("id")?;
        if head.is_some() {
            items.push(decode(r)?);
            chains.push((integration, dev_eui, lease_until));
        } else {
            // Everything delivered (or given up): the chain goes idle.
            idle.push((
                integration,
                sql::eui(dev_eui.clone(), "outbox_chains", "dev_eui")?,
            ));
            chains.push((integration, dev_eui, sql::idle().0));
        }
    }
    set_chains(&mut tx, chains).await?;
    tx.commit().await?;
    // The events, rendered; a row whose event is gone (its device deleted, or its
    // day past the retention) is removed, and its chain moves on.
    let keys: Vec<(Eui64, i64)> = items.iter().map(|i| (i.dev_eui, i.event_id)).collect();
    let events = super::events::by_ids(db, &keys).await?;
    let mut gone = Vec::new();
    // One event may head chains of several integrations.
    items.retain_mut(|i| match events.get(&i.event_id) {
        Some((kind, body)) => {
            i.kind = *kind;
            i.body = body.clone();
            true
        }
        None => {
            gone.push(i.id);
            false
        }
    });
    if !gone.is_empty() {
        let mut tx = db.begin().await?;
        remove_rows(&mut tx, &gone, now).await?;
        tx.commit().await?;
    }
    Ok(Claimed { items, idle })
}

/// Delivered: removes the rows, makes the next row of each chain due at once and
/// notes the success on the integrations.
pub(crate) async fn delivered(
    db: &Store,
    ids: &[i64],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    for integration in remove_rows(&mut tx, ids, at).await? {
        tx.execute(
            Stmt::new("UPDATE integrations SET last_delivered_at = $2 WHERE id = $1")
                .bind(integration)
                .bind(Ts(at)),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Failed: counts the attempt, keeps the error and holds the chain until
/// `next_attempt_at`.
pub(crate) async fn failed(
    db: &Store,
    id: i64,
    at: DateTime<Utc>,
    error: &str,
    next_attempt_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    let chain = tx
        .fetch_optional(
            Stmt::new(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2, \
                 next_attempt_at = $3 WHERE id = $1 RETURNING integration_id, dev_eui",
            )
            .bind(id)
            .bind(error)
            .bind(Ts(next_attempt_at)),
        )
        .await?;
    if let Some(chain) = chain {
        let integration: Uuid = chain.get("integration_id")?;
        let dev_eui: Vec<u8> = chain.get("dev_eui")?;
        note_error(&mut tx, integration, error, at).await?;
        set_chains(&mut tx, vec![(integration, dev_eui, next_attempt_at)]).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Claimed chains the worker could not take in: due again at `at`.
pub(crate) async fn release(
    db: &Store,
    chains: &[(Uuid, Eui64)],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if chains.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    let chains = chains.iter().map(|(i, d)| (*i, d.0.to_vec(), at)).collect();
    set_chains(&mut tx, chains).await?;
    tx.commit().await?;
    Ok(())
}

/// Given up: removes the rows, makes the next row of each chain due at once and
/// notes `error` on the integrations.
pub(crate) async fn expired(
    db: &Store,
    ids: &[i64],
    at: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    for integration in remove_rows(&mut tx, ids, at).await? {
        note_error(&mut tx, integration, error, at).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The integration's outbox rows plus its application's events past its cursor.
pub(crate) async fn backlog(db: &Store, integration_id: Uuid) -> Result<u64, StoreError> {
    let r = db
        .fetch_optional(
            Stmt::new(
                "SELECT (SELECT COUNT(*) FROM outbox WHERE integration_id = $1) AS spilled, \
                 application_id, delivered_through FROM integrations WHERE id = $1",
            )
            .bind(integration_id),
        )
        .await?;
    let Some(r) = r else {
        return Ok(0);
    };
    let spilled = sql::count(r.get("spilled")?);
    let behind =
        super::events::count_after(db, r.get("application_id")?, r.get("delivered_through")?)
            .await?;
    Ok(spilled + behind)
}

/// Gives up on rows written before `cutoff`; returns how many.
pub(crate) async fn delete_older_than(
    db: &Store,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(db
        .execute(Stmt::new("DELETE FROM outbox WHERE created_at < $1").bind(Ts(cutoff)))
        .await?)
}

/// Removes outbox rows, makes the next row of each of their chains due at `at`, and
/// returns the integrations the rows belonged to.
async fn remove_rows(tx: &mut Tx, ids: &[i64], at: DateTime<Utc>) -> Result<Vec<Uuid>, StoreError> {
    let deleted = delete_rows(tx, ids).await?;
    let mut integrations: Vec<Uuid> = deleted.iter().map(|(i, _)| *i).collect();
    integrations.sort();
    integrations.dedup();
    let mut chains: Vec<(Uuid, Vec<u8>, DateTime<Utc>)> =
        deleted.into_iter().map(|(i, d)| (i, d, at)).collect();
    chains.sort();
    chains.dedup();
    set_chains(tx, chains).await?;
    Ok(integrations)
}

/// Deletes outbox rows by id; returns the (integration, DevEUI) of each.
async fn delete_rows(tx: &mut Tx, ids: &[i64]) -> Result<Vec<(Uuid, Vec<u8>)>, StoreError> {
    let rows: Vec<Row> = match tx {
        // One statement for all ids.
        Tx::Postgres(tx) => {
            sqlx::query("DELETE FROM outbox WHERE id = ANY($1) RETURNING integration_id, dev_eui")
                .bind(ids)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect()
        }
        // No arrays: one statement per id.
        Tx::Sqlite(_) => {
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                rows.extend(
                    tx.fetch_optional(
                        Stmt::new(
                            "DELETE FROM outbox WHERE id = $1 RETURNING integration_id, dev_eui",
                        )
                        .bind(*id),
                    )
                    .await?,
                );
            }
            rows
        }
    };
    rows.iter()
        .map(|r| Ok((r.get("integration_id")?, r.get("dev_eui")?)))
        .collect()
}

/// Sets `next_attempt_at` of (integration, DevEUI) chains.
async fn set_chains(
    tx: &mut Tx,
    chains: Vec<(Uuid, Vec<u8>, DateTime<Utc>)>,
) -> Result<(), StoreError> {
    if chains.is_empty() {
        return Ok(());
    }
    match tx {
        Tx::Postgres(tx) => set_chains_postgres(tx, chains).await,
        // No arrays: one statement per chain.
        Tx::Sqlite(_) => {
            for (integration, dev_eui, at) in chains {
                tx.execute(
                    Stmt::new(
                        "UPDATE outbox_chains SET next_attempt_at = $3 \
                         WHERE integration_id = $1 AND dev_eui = $2",
                    )
                    .bind(integration)
                    .bind(dev_eui)
                    .bind(Ts(at)),
                )
                .await?;
            }
            Ok(())
        }
    }
}

/// Postgres: one statement, three arrays through `UNNEST`.
async fn set_chains_postgres(
    tx: &mut Transaction<'static, Postgres>,
    chains: Vec<(Uuid, Vec<u8>, DateTime<Utc>)>,
) -> Result<(), StoreError> {
    let (mut integrations, mut devs, mut ats) = (Vec::new(), Vec::new(), Vec::new());
    for (i, d, a) in chains {
        integrations.push(i);
        devs.push(d);
        ats.push(a);
    }
    sqlx::query(
        "UPDATE outbox_chains c SET next_attempt_at = u.at \
         FROM UNNEST($1::uuid[], $2::bytea[], $3::timestamptz[]) AS u(integration_id, dev_eui, at) \
         WHERE c.integration_id = u.integration_id AND c.dev_eui = u.dev_eui",
    )
    .bind(integrations)
    .bind(devs)
    .bind(ats)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
