//! `Storage::apply`: the network and application servers' batched writes, one
//! transaction per batch.
//!
//! The batch is sorted by kind ([`Grouped`]) and each kind written with one
//! statement (or one per chunk on SQLite) by the module that stores it, rather than
//! one statement per op: each statement is a round trip (to the Postgres server, or
//! to sqlx's SQLite worker thread). Kinds touch disjoint tables or columns, so
//! running them kind by kind is indistinguishable from running the ops in order;
//! within a kind the order is kept (events) or the last op per device wins
//! (sessions, last seen), which is what running them in order leaves behind. Rare
//! ops (queue, joins, class, gateways) run one by one, in op order.

use crate::ops::Grouped;
use crate::{Store, StoreError, WriteOp};

use super::{alerts, device_keys, devices, events, gateways, link, queue, sessions, traffic};

/// Rows per SQLite statement for one- and two-column lists (DevEUIs, last-seen times).
pub(crate) const SQLITE_KEY_ROWS: usize = 5_000;

/// Runs every op in one transaction: all or nothing.
pub(crate) async fn apply(db: &Store, ops: &[WriteOp]) -> Result<(), StoreError> {
    if ops.is_empty() {
        return Ok(());
    }
    let mut g = Grouped::new(ops);
    let ring = db.keyring()?;
    events::ensure_days(db, &g.events).await?;
    let mut tx = db.begin().await?;
    sessions::write(&mut tx, ring, &g.upserts(), &g.deletes()).await?;
    let entries = events::insert(db, &mut tx, &g.events).await?;
    traffic::count_uplinks(&mut tx, &g.events).await?;
    // Before `seen`: the link update takes the last-seen times of its devices.
    link::write(&mut tx, &g.links, &mut g.seen).await?;
    devices::seen(&mut tx, &g.seen).await?;
    for op in g.others {
        match op {
            WriteOp::QueueMarkSent {
                id,
                f_cnt_down,
                sent_at,
                pending,
            } => queue::mark_sent(&mut tx, *id, *f_cnt_down, *sent_at, *pending).await?,
            WriteOp::QueueDelete(id) => queue::delete_item(&mut tx, *id).await?,
            WriteOp::RecordJoin {
                dev_eui,
                dev_nonce,
                join_nonce,
                at,
            } => device_keys::record_join(&mut tx, *dev_eui, *dev_nonce, *join_nonce, *at).await?,
            WriteOp::DeviceClass { dev_eui, class } => {
                devices::set_class(&mut tx, *dev_eui, *class).await?
            }
            WriteOp::GatewaySeen {
                gateway_id,
                at,
                stats,
                location,
            } => gateways::seen(&mut tx, *gateway_id, *at, stats.as_ref(), *location).await?,
            WriteOp::DeviceStatus {
                dev_eui,
                at,
                battery_percent,
                external_power,
                margin_db,
            } => {
                link::status(
                    &mut tx,
                    *dev_eui,
                    *at,
                    *battery_percent,
                    *external_power,
                    *margin_db,
                )
                .await?
            }
            WriteOp::AlertFired(a) => alerts::fired(&mut tx, a).await?,
            WriteOp::AlertResolved { id, at, message } => {
                alerts::resolved(&mut tx, *id, *at, message).await?
            }
            WriteOp::GatewayTraffic { minute, rows } => {
                traffic::add_gateway_traffic(&mut tx, *minute, rows).await?
            }
            // Grouped above.
            WriteOp::DeviceLink(_)
            | WriteOp::UpsertSession(_)
            | WriteOp::DeleteSession(_)
            | WriteOp::InsertEvent(_)
            | WriteOp::DeviceSeen { .. } => {}
        }
    }
    tx.commit().await?;
    events::committed(db, entries);
    Ok(())
}
