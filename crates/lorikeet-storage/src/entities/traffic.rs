//! Traffic counters: `uplink_minutes`, uplinks per application and minute, added to
//! in the transaction that stores the events (so they agree with `events`), read
//! by the console's overview and charts instead of counting events.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use uuid::Uuid;

use crate::sql::Ts;
use crate::stmt::Stmt;
use crate::store::Tx;
use crate::{EventKind, GatewayMinute, GatewayTraffic, NewEvent, Store, StoreError};

/// Rows per upsert statement (3 parameters each).
const ROWS: usize = 500;

fn minute_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

/// Adds the batch's `up` events to their (application, minute) counters: one row
/// per pair, whatever the batch size.
pub(crate) async fn count_uplinks(tx: &mut Tx, events: &[&NewEvent]) -> Result<(), StoreError> {
    let mut counts: BTreeMap<(Uuid, DateTime<Utc>), i64> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == EventKind::Up) {
        *counts
            .entry((e.application_id, minute_of(e.created_at)))
            .or_default() += 1;
    }
    let rows: Vec<_> = counts.into_iter().collect();
    for chunk in rows.chunks(ROWS) {
        let mut sql =
            String::from("INSERT INTO uplink_minutes (application_id, minute, uplinks) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            let n = i * 3;
            sql.push_str(&format!("(${}, ${}, ${})", n + 1, n + 2, n + 3));
        }
        sql.push_str(
            " ON CONFLICT (application_id, minute) \
             DO UPDATE SET uplinks = uplink_minutes.uplinks + excluded.uplinks",
        );
        let mut s = Stmt::new(sql);
        for ((app, minute), n) in chunk {
            s = s.bind(*app).bind(Ts(*minute)).bind(*n);
        }
        tx.execute(s).await?;
    }
    Ok(())
}

/// Uplinks per minute in `[from, to)`, of one application, one tenant's
/// applications, or all; minutes without uplinks are left out.
pub(crate) async fn uplinks_per_minute(
    db: &Store,
    tenant: Option<Uuid>,
    application: Option<Uuid>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, u64)>, StoreError> {
    let rows = db
        .fetch_all(
            Stmt::new(
                "SELECT m.minute, CAST(SUM(m.uplinks) AS BIGINT) AS n FROM uplink_minutes m \
                 JOIN applications a ON a.id = m.application_id \
                 WHERE ($1 IS NULL OR a.tenant_id = $1) AND ($2 IS NULL OR m.application_id = $2) \
                 AND m.minute >= $3 AND m.minute < $4 \
                 GROUP BY m.minute ORDER BY m.minute",
            )
            .bind(tenant)
            .bind(application)
            .bind(Ts(minute_of(from)))
            .bind(Ts(to)),
        )
        .await?;
    rows.iter()
        .map(|r| {
            let n: i64 = r.get("n")?;
            Ok((r.ts("minute")?, u64::try_from(n).unwrap_or(0)))
        })
        .collect()
}

/// Retention: counters of minutes before `cutoff`.
pub(crate) async fn delete_older_than(
    db: &Store,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(db
        .execute(Stmt::new("DELETE FROM uplink_minutes WHERE minute < $1").bind(Ts(cutoff)))
        .await?)
}

/// Devices of one tenant (or all).
pub(crate) async fn count_devices(db: &Store, tenant: Option<Uuid>) -> Result<u64, StoreError> {
    let r = db
        .fetch_one(
            Stmt::new("SELECT COUNT(*) AS n FROM devices WHERE ($1 IS NULL OR tenant_id = $1)")
                .bind(tenant),
        )
        .await?;
    let n: i64 = r.get("n")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Deliveries waiting for a retry (outbox rows) of one tenant's integrations (or all).
pub(crate) async fn delivery_backlog(db: &Store, tenant: Option<Uuid>) -> Result<u64, StoreError> {
    let r = db
        .fetch_one(
            Stmt::new(
                "SELECT COUNT(*) AS n FROM outbox o \
                 JOIN integrations i ON i.id = o.integration_id \
                 JOIN applications a ON a.id = i.application_id \
                 WHERE ($1 IS NULL OR a.tenant_id = $1)",
            )
            .bind(tenant),
        )
        .await?;
    let n: i64 = r.get("n")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Adds one flush of the network server's per-gateway tallies to their minute;
/// gateways deleted meanwhile are skipped. A handful of rows: one statement each.
pub(crate) async fn add_gateway_traffic(
    tx: &mut Tx,
    minute: DateTime<Utc>,
    rows: &[GatewayTraffic],
) -> Result<(), StoreError> {
    let minute = minute_of(minute);
    for r in rows {
        tx.execute(
            Stmt::new(
                "INSERT INTO gateway_minutes \
                 (gateway_id, minute, uplinks, downlinks, tx_ack_errors) \
                 SELECT $1, $2, $3, $4, $5 \
                 WHERE EXISTS (SELECT 1 FROM gateways WHERE gateway_id = $1) \
                 ON CONFLICT (gateway_id, minute) DO UPDATE SET \
                 uplinks = gateway_minutes.uplinks + excluded.uplinks, \
                 downlinks = gateway_minutes.downlinks + excluded.downlinks, \
                 tx_ack_errors = gateway_minutes.tx_ack_errors + excluded.tx_ack_errors",
            )
            .bind(r.gateway_id.0.to_vec())
            .bind(Ts(minute))
            .bind(i64::try_from(r.uplinks).unwrap_or(i64::MAX))
            .bind(i64::try_from(r.downlinks).unwrap_or(i64::MAX))
            .bind(i64::try_from(r.tx_ack_errors).unwrap_or(i64::MAX)),
        )
        .await?;
    }
    Ok(())
}

/// A gateway's minutes in `[from, to)`, oldest first (minutes without traffic left
/// out).
pub(crate) async fn gateway_minutes(
    db: &Store,
    gateway_id: lorikeet_lorawan::Eui64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<GatewayMinute>, StoreError> {
    let rows = db
        .fetch_all(
            Stmt::new(
                "SELECT minute, uplinks, downlinks, tx_ack_errors FROM gateway_minutes \
                 WHERE gateway_id = $1 AND minute >= $2 AND minute < $3 ORDER BY minute",
            )
            .bind(gateway_id.0.to_vec())
            .bind(Ts(minute_of(from)))
            .bind(Ts(to)),
        )
        .await?;
    let n = |r: &crate::stmt::Row, c: &str| -> Result<u64, StoreError> {
        let v: i64 = r.get(c)?;
        Ok(u64::try_from(v).unwrap_or(0))
    };
    rows.iter()
        .map(|r| {
            Ok(GatewayMinute {
                minute: r.ts("minute")?,
                uplinks: n(r, "uplinks")?,
                downlinks: n(r, "downlinks")?,
                tx_ack_errors: n(r, "tx_ack_errors")?,
            })
        })
        .collect()
}

/// Retention of the gateway minutes.
pub(crate) async fn delete_gateway_minutes_older_than(
    db: &Store,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(db
        .execute(Stmt::new("DELETE FROM gateway_minutes WHERE minute < $1").bind(Ts(cutoff)))
        .await?)
}
