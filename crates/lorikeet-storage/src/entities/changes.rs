//! The change feed: `changes` (see `feed.rs` for what it is and why its order is
//! safe). Appended by every provisioning commit ([`crate::store::Provision`]), read
//! by the live state. The SQL differs: Postgres orders by transaction id and reads
//! only below the oldest running transaction; SQLite's row id is commit order.

use chrono::{DateTime, Utc};

use crate::stmt::{Row, Stmt};
use crate::store::{Pools, Tx};
use crate::{Changed, FeedEntry, FeedPage, FeedPosition, Store, StoreError};

/// Rows per INSERT (two arguments each; far below both backends' limits).
const ROWS_PER_INSERT: usize = 1_000;

/// Appends `changes` inside the provisioning transaction `tx`; returns the position
/// of the last one. Other processes hear of it from [`listen`], after the commit.
pub(crate) async fn append(tx: &mut Tx, changes: &[Changed]) -> Result<FeedPosition, sqlx::Error> {
    let mut last = None;
    for chunk in changes.chunks(ROWS_PER_INSERT) {
        let mut values = String::new();
        for i in 0..chunk.len() {
            if i > 0 {
                values.push_str(", ");
            }
            values.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
        }
        // No NOTIFY in the transaction: Postgres serialises the commits of every
        // transaction that notifies (one WAL flush each, under a global lock), which
        // capped provisioning at about 700 writes/s. `listen` sends one after the
        // commit instead, coalescing many commits into one notification.
        let sql = format!("INSERT INTO changes (kind, key) VALUES {values} RETURNING tx, seq");
        let mut s = Stmt::new(sql);
        for c in chunk {
            s = s.bind(c.kind()).bind(c.key());
        }
        for r in tx.fetch_all(s).await? {
            let p = position(&r)?;
            last = last.max(Some(p));
        }
    }
    last.ok_or(sqlx::Error::RowNotFound)
}

fn position(r: &Row) -> Result<FeedPosition, sqlx::Error> {
    Ok(FeedPosition {
        tx: r.get("tx")?,
        seq: r.get("seq")?,
    })
}

/// Up to `limit` entries after `after`, in feed order; only those no running
/// transaction can still precede.
pub(crate) async fn after(
    db: &Store,
    after: FeedPosition,
    limit: u32,
) -> Result<FeedPage, StoreError> {
    let sql = match db.pools() {
        Pools::Postgres(_) => {
            "SELECT c.tx, c.seq, c.kind, c.key, c.tx < h.horizon AS stable \
             FROM changes c, \
             (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon) h \
             WHERE (c.tx, c.seq) > ($1, $2) ORDER BY c.tx, c.seq LIMIT $3"
        }
        Pools::Sqlite { .. } => {
            "SELECT tx, seq, kind, key, TRUE AS stable FROM changes \
             WHERE (tx, seq) > ($1, $2) ORDER BY tx, seq LIMIT $3"
        }
    };
    let rows = db
        .fetch_all(
            Stmt::new(sql)
                .bind(after.tx)
                .bind(after.seq)
                .bind(i64::from(limit)),
        )
        .await?;
    let full = rows.len() == limit as usize;
    let mut page = FeedPage::default();
    for r in &rows {
        let stable: bool = r.get("stable")?;
        if !stable {
            // Everything from here on waits for an older transaction to finish.
            page.more = true;
            return Ok(page);
        }
        let kind: String = r.get("kind")?;
        let key: String = r.get("key")?;
        page.entries.push(FeedEntry {
            position: position(r)?,
            changed: Changed::parse(&kind, &key),
        });
    }
    page.more = full;
    Ok(page)
}

/// The newest entry no running transaction can precede (start-up: load everything,
/// then follow from here); the start of the feed when it is empty.
pub(crate) async fn head(db: &Store) -> Result<FeedPosition, StoreError> {
    let sql = match db.pools() {
        Pools::Postgres(_) => {
            "SELECT tx, seq FROM changes \
             WHERE tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
             ORDER BY tx DESC, seq DESC LIMIT 1"
        }
        Pools::Sqlite { .. } => "SELECT tx, seq FROM changes ORDER BY tx DESC, seq DESC LIMIT 1",
    };
    match db.fetch_optional(Stmt::new(sql)).await? {
        Some(r) => Ok(position(&r)?),
        None => Ok(FeedPosition::default()),
    }
}

/// Retention: removes entries written before `cutoff`; returns how many.
pub(crate) async fn trim(db: &Store, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
    let n = match db.pools() {
        Pools::Postgres(_) => {
            db.execute(Stmt::new("DELETE FROM changes WHERE created_at < $1").bind(cutoff))
                .await?
        }
        Pools::Sqlite { .. } => {
            db.execute(
                Stmt::new("DELETE FROM changes WHERE created_at < $1").bind(cutoff.timestamp()),
            )
            .await?
        }
    };
    Ok(n)
}

/// Postgres: wakes this process's feed reader whenever another process sharing the
/// database commits a change (LISTEN), and tells the others after this process's
/// commits (NOTIFY: one per round trip however many commits happened meanwhile).
/// A notification only says "read more"; the readers' timers cover a lost one.
/// Runs until the pool closes. SQLite: nothing to do (one process per file).
pub(crate) async fn listen(db: &Store) {
    let Pools::Postgres(pool) = db.pools() else {
        return;
    };
    tokio::join!(listen_loop(db, pool), announce_loop(db, pool));
}

async fn announce_loop(db: &Store, pool: &sqlx::PgPool) {
    while !pool.is_closed() {
        db.feed().to_announce().await;
        if let Err(e) = sqlx::query("SELECT pg_notify('lorikeet_changes', '')")
            .execute(pool)
            .await
        {
            // The others' timers read the change anyway.
            tracing::debug!("cannot NOTIFY other instances of a change: {e}");
        }
    }
}

async fn listen_loop(db: &Store, pool: &sqlx::PgPool) {
    let mut failures: u32 = 0;
    while !pool.is_closed() {
        let mut listener = match sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(l) => l,
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures.is_power_of_two() {
                    tracing::warn!("cannot LISTEN for provisioning changes: {e}");
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen("lorikeet_changes").await {
            tracing::warn!("cannot LISTEN for provisioning changes: {e}");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        failures = 0;
        // After a reconnection notifications may have been missed: read anyway.
        db.feed().wake();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => db.feed().wake(),
                // The connection was lost (PgListener reconnects on the next call).
                Ok(None) => db.feed().wake(),
                Err(_) => break,
            }
        }
    }
}
