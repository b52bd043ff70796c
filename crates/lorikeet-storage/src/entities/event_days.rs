//! SQLite's event partitions: a table per day, `events_dYYYYMMDD`, so retention
//! drops whole days (`DROP TABLE`) instead of deleting rows through the indexes.
//!
//! An event goes to the table of its day (`created_at`, UTC), as on Postgres,
//! with its id from the one counter `event_seq`; rows moved from the previous
//! format keep their ids. Each table's id range is kept in memory (loaded when the
//! store opens, extended after each commit), so a read visits only the tables
//! whose range can hold what it asks for, newest or oldest first, and stops as
//! soon as no further table can change its answer. Ranges may overlap (moved rows,
//! a batch around midnight); the reads merge, so that stays correct.
//!
//! The old `events_legacy` table is one more entry in that list while it exists.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{QueryBuilder, Sqlite, Transaction};

use crate::sql::Ts;
use crate::stmt::{Row, Stmt};
use crate::{Store, StoreError};

/// Name prefix of the day tables.
const PREFIX: &str = "events_d";

/// Event rows per SQLite statement (8 parameters each).
const ROWS: usize = 2_000;

/// One table of events and the ids it may hold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DayTable {
    pub(crate) name: String,
    /// `None`: the table of the previous format.
    pub(crate) day: Option<NaiveDate>,
    pub(crate) min_id: i64,
    pub(crate) max_id: i64,
}

impl DayTable {
    fn empty(name: String, day: Option<NaiveDate>) -> Self {
        DayTable {
            name,
            day,
            min_id: i64::MAX,
            max_id: i64::MIN,
        }
    }

    fn holds(&self, id: i64) -> bool {
        (self.min_id..=self.max_id).contains(&id)
    }

    /// The columns every read selects, the same from either format.
    pub(crate) fn select(&self, rest: &str) -> String {
        let name = &self.name;
        if self.day.is_some() {
            format!(
                "SELECT id, dev_eui, application_id, CAST(kind AS BIGINT) AS kind_code, \
                 CAST(NULL AS TEXT) AS kind_text, created_at, body FROM {name} {rest}"
            )
        } else {
            format!(
                "SELECT id, dev_eui, application_id, CAST(NULL AS BIGINT) AS kind_code, \
                 kind AS kind_text, created_at, CAST(payload AS BLOB) AS body FROM {name} {rest}"
            )
        }
    }
}

/// The table of `day`.
pub(crate) fn name_of(day: NaiveDate) -> String {
    format!("{PREFIX}{}", day.format("%Y%m%d"))
}

/// Reads the tables and their id ranges (when the store opens).
pub(crate) async fn load(db: &Store) -> Result<Vec<DayTable>, StoreError> {
    let rows = db
        .fetch_all(Stmt::new(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND (name LIKE 'events\\_d%' ESCAPE '\\' OR name = 'events_legacy')",
        ))
        .await?;
    let mut tables = Vec::new();
    for r in &rows {
        let name: String = r.get("name")?;
        let day = match super::partitions::day_of(PREFIX, &name) {
            Some(d) => Some(d),
            None if name == "events_legacy" => None,
            None => continue,
        };
        let mut t = DayTable::empty(name, day);
        let range = db
            .fetch_one(Stmt::new(format!(
                "SELECT MIN(id) AS lo, MAX(id) AS hi FROM {}",
                t.name
            )))
            .await?;
        if let (Some(lo), Some(hi)) = (range.get::<Option<i64>>("lo")?, range.get("hi")?) {
            t.min_id = lo;
            t.max_id = hi;
        }
        tables.push(t);
    }
    tables.sort_by_key(|t| t.day);
    Ok(tables)
}

/// Ids a batch placed in a table, to note once it commits, and the counter's
/// value it left.
#[derive(Debug, Default)]
pub(crate) struct Placed(Vec<DayTable>, Option<i64>);

/// Notes committed rows in the tables' ranges (and new tables).
pub(crate) fn committed(db: &Store, placed: Placed) {
    if let Some(seq) = placed.1 {
        db.event_state()
            .sqlite_seq
            .fetch_max(seq, Ordering::Relaxed);
    }
    if placed.0.is_empty() {
        return;
    }
    let mut tables = db.event_state().sqlite_tables();
    for p in placed.0 {
        match tables.iter_mut().find(|t| t.name == p.name) {
            Some(t) => {
                t.min_id = t.min_id.min(p.min_id);
                t.max_id = t.max_id.max(p.max_id);
            }
            None => tables.push(p),
        }
    }
    tables.sort_by_key(|t| t.day);
}

/// Creates the day's table unless it exists (in the batch's transaction).
async fn create(tx: &mut Transaction<'static, Sqlite>, name: &str) -> Result<(), StoreError> {
    for ddl in [
        format!(
            "CREATE TABLE IF NOT EXISTS {name} (\
             id INTEGER PRIMARY KEY, \
             dev_eui BLOB NOT NULL REFERENCES devices (dev_eui) ON DELETE CASCADE, \
             application_id BLOB NOT NULL, kind INTEGER NOT NULL, f_cnt INTEGER, \
             f_port INTEGER, created_at INTEGER NOT NULL, body BLOB NOT NULL)"
        ),
        format!("CREATE INDEX IF NOT EXISTS {name}_device ON {name} (dev_eui, id)"),
        format!("CREATE INDEX IF NOT EXISTS {name}_application ON {name} (application_id, id)"),
    ] {
        sqlx::query(&ddl).execute(&mut **tx).await?;
    }
    Ok(())
}

/// A row to write: its id (`None`: take the next from `event_seq`), its table's
/// day, and the columns.
pub(crate) struct Write<'a> {
    pub(crate) id: Option<i64>,
    pub(crate) day: NaiveDate,
    pub(crate) dev_eui: &'a [u8],
    pub(crate) application_id: uuid::Uuid,
    pub(crate) kind: i16,
    pub(crate) f_cnt: Option<i64>,
    pub(crate) f_port: Option<i64>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) body: &'a [u8],
}

/// Writes rows in order (ids increase in that order), skipping those of devices
/// deleted meanwhile; returns what to note once the transaction commits.
pub(crate) async fn insert(
    db: &Store,
    tx: &mut Transaction<'static, Sqlite>,
    rows: &mut [Write<'_>],
) -> Result<Placed, StoreError> {
    let fresh = rows.iter().filter(|r| r.id.is_none()).count() as i64;
    let mut seq = None;
    if fresh > 0 {
        let last: i64 = sqlx::query_scalar("UPDATE event_seq SET id = id + $1 RETURNING id")
            .bind(fresh)
            .fetch_one(&mut **tx)
            .await?;
        let fresh_rows = rows.iter_mut().filter(|r| r.id.is_none());
        for (id, r) in (last - fresh + 1..).zip(fresh_rows) {
            r.id = Some(id);
        }
        seq = Some(last);
    }
    let known: Vec<String> = db
        .event_state()
        .sqlite_tables()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    let mut placed: HashMap<String, DayTable> = HashMap::new();
    // Runs of rows for the same table, in order.
    let mut start = 0;
    while start < rows.len() {
        let day = rows[start].day;
        let end = rows[start..]
            .iter()
            .position(|r| r.day != day)
            .map_or(rows.len(), |k| start + k);
        let name = name_of(day);
        if !known.contains(&name) && !placed.contains_key(&name) {
            create(tx, &name).await?;
        }
        let entry = placed
            .entry(name.clone())
            .or_insert_with(|| DayTable::empty(name.clone(), Some(day)));
        for chunk in rows[start..end].chunks(ROWS) {
            let mut q = QueryBuilder::<Sqlite>::new(format!(
                "INSERT INTO {name} (id, dev_eui, application_id, kind, f_cnt, f_port, \
                 created_at, body) SELECT * FROM ("
            ));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.id)
                    .push_bind(r.dev_eui)
                    .push_bind(r.application_id)
                    .push_bind(r.kind)
                    .push_bind(r.f_cnt)
                    .push_bind(r.f_port)
                    .push_bind(Ts(r.created_at))
                    .push_bind(r.body);
            });
            q.push(") WHERE column2 IN (SELECT dev_eui FROM devices)");
            // Each chunk size is its own SQL text: keep them out of the statement cache.
            q.build().persistent(false).execute(&mut **tx).await?;
            for r in chunk {
                let id = r.id.unwrap_or_default();
                entry.min_id = entry.min_id.min(id);
                entry.max_id = entry.max_id.max(id);
            }
        }
        start = end;
    }
    Ok(Placed(placed.into_values().collect(), seq))
}

/// A table dropped meanwhile (retention) reads as empty.
fn gone(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.message().starts_with("no such table"))
}

async fn fetch(db: &Store, s: Stmt<'_>) -> Result<Vec<Row>, StoreError> {
    match db.fetch_all(s).await {
        Err(e) if gone(&e) => Ok(Vec::new()),
        other => Ok(other?),
    }
}

fn id_of(r: &Row) -> Result<i64, StoreError> {
    Ok(r.get("id")?)
}

/// Up to `limit` rows with ids below `before` matching `filter` (a condition on
/// `$1`), newest first.
pub(crate) async fn newest<'q>(
    db: &Store,
    filter: &str,
    arg: impl crate::stmt::Value<'q> + Clone,
    before: i64,
    limit: u32,
) -> Result<Vec<Row>, StoreError> {
    scan(db, filter, arg, before, limit, true).await
}

/// Up to `limit` rows with ids above `after` matching `filter`, oldest first.
pub(crate) async fn oldest<'q>(
    db: &Store,
    filter: &str,
    arg: impl crate::stmt::Value<'q> + Clone,
    after: i64,
    limit: u32,
) -> Result<Vec<Row>, StoreError> {
    scan(db, filter, arg, after, limit, false).await
}

/// Reloads the tables when another process wrote events this one has not noted
/// (the counter moved past what its writer and its last load saw): tools and
/// tests that open the file beside a server.
async fn refresh(db: &Store) -> Result<(), StoreError> {
    let seq: i64 = db
        .fetch_one(Stmt::new("SELECT id FROM event_seq"))
        .await?
        .get("id")?;
    if seq > db.event_state().sqlite_seq.load(Ordering::Relaxed) {
        let tables = load(db).await?;
        *db.event_state().sqlite_tables() = tables;
        db.event_state()
            .sqlite_seq
            .fetch_max(seq, Ordering::Relaxed);
    }
    Ok(())
}

/// Newest first below `bound`, or oldest first above it: the tables that can hold
/// such ids, nearest first, until no further table can change the answer.
async fn scan<'q>(
    db: &Store,
    filter: &str,
    arg: impl crate::stmt::Value<'q> + Clone,
    bound: i64,
    limit: u32,
    newest_first: bool,
) -> Result<Vec<Row>, StoreError> {
    refresh(db).await?;
    let mut tables: Vec<DayTable> = db
        .event_state()
        .sqlite_tables()
        .iter()
        .filter(|t| t.min_id <= t.max_id)
        .filter(|t| {
            if newest_first {
                t.min_id < bound
            } else {
                t.max_id > bound
            }
        })
        .cloned()
        .collect();
    let rest = if newest_first {
        tables.sort_by_key(|t| std::cmp::Reverse(t.max_id));
        format!("WHERE {filter} AND id < $2 ORDER BY id DESC LIMIT $3")
    } else {
        tables.sort_by_key(|t| t.min_id);
        format!("WHERE {filter} AND id > $2 ORDER BY id LIMIT $3")
    };
    let n = limit as usize;
    let mut out: Vec<Row> = Vec::new();
    for t in tables {
        if out.len() >= n {
            let last = id_of(&out[n - 1])?;
            let beyond = if newest_first {
                t.max_id < last
            } else {
                t.min_id > last
            };
            if beyond {
                break;
            }
        }
        let rows = fetch(
            db,
            Stmt::new(t.select(&rest))
                .bind(arg.clone())
                .bind(bound)
                .bind(i64::from(limit)),
        )
        .await?;
        out.extend(rows);
        sort(&mut out, newest_first)?;
        out.truncate(n);
    }
    Ok(out)
}

/// Orders rows by id, newest or oldest first.
pub(crate) fn sort(rows: &mut Vec<Row>, newest_first: bool) -> Result<(), StoreError> {
    let mut keyed = Vec::with_capacity(rows.len());
    for r in rows.drain(..) {
        keyed.push((id_of(&r)?, r));
    }
    if newest_first {
        keyed.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
    } else {
        keyed.sort_by_key(|(id, _)| *id);
    }
    rows.extend(keyed.into_iter().map(|(_, r)| r));
    Ok(())
}

/// The rows with these ids, from whichever tables hold them.
pub(crate) async fn by_ids(db: &Store, ids: &[i64]) -> Result<Vec<Row>, StoreError> {
    refresh(db).await?;
    let tables = db.event_state().sqlite_tables().clone();
    let mut out = Vec::new();
    for t in &tables {
        let mine: Vec<i64> = ids.iter().copied().filter(|id| t.holds(*id)).collect();
        if mine.is_empty() {
            continue;
        }
        for chunk in mine.chunks(500) {
            let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let mut s = Stmt::new(t.select(&format!("WHERE id IN ({})", list.join(", "))));
            for id in chunk {
                s = s.bind(*id);
            }
            out.extend(fetch(db, s).await?);
        }
    }
    Ok(out)
}

/// SQL true when the event `$2` still exists (for an `INSERT … WHERE`).
pub(crate) fn exists_sql(db: &Store, id: i64) -> String {
    let arms: Vec<String> = db
        .event_state()
        .sqlite_tables()
        .iter()
        .filter(|t| t.holds(id))
        .map(|t| format!("EXISTS (SELECT 1 FROM {} WHERE id = $2)", t.name))
        .collect();
    if arms.is_empty() {
        "0".into()
    } else {
        format!("({})", arms.join(" OR "))
    }
}

/// How many rows above `after` match `filter`.
pub(crate) async fn count<'q>(
    db: &Store,
    filter: &str,
    arg: impl crate::stmt::Value<'q> + Clone,
    after: i64,
) -> Result<u64, StoreError> {
    refresh(db).await?;
    let tables: Vec<DayTable> = db
        .event_state()
        .sqlite_tables()
        .iter()
        .filter(|t| t.max_id > after)
        .cloned()
        .collect();
    let mut n = 0;
    for t in tables {
        let rows = fetch(
            db,
            Stmt::new(format!(
                "SELECT COUNT(*) AS n FROM {} WHERE {filter} AND id > $2",
                t.name
            ))
            .bind(arg.clone())
            .bind(after),
        )
        .await?;
        if let Some(r) = rows.first() {
            n += crate::sql::count(r.get("n")?);
        }
    }
    Ok(n)
}

/// Retention: drops the day tables whose whole day is before `cutoff`, with the
/// outbox rows of their events; returns their names.
pub(crate) async fn drop_before(
    db: &Store,
    cutoff: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let old: Vec<DayTable> = db
        .event_state()
        .sqlite_tables()
        .iter()
        .filter(|t| {
            t.day.is_some_and(|d| {
                d.succ_opt()
                    .is_some_and(|next| super::partitions::start_of(next) <= cutoff)
            })
        })
        .cloned()
        .collect();
    let mut dropped = Vec::new();
    for t in old {
        let mut tx = db.begin().await?;
        tx.execute(Stmt::new(format!("DROP TABLE IF EXISTS {}", t.name)))
            .await?;
        if t.min_id <= t.max_id {
            // Outbox rows of its events, unless another table holds the same id.
            let others: Vec<String> = db
                .event_state()
                .sqlite_tables()
                .iter()
                .filter(|o| o.name != t.name && o.min_id <= t.max_id && t.min_id <= o.max_id)
                .map(|o| {
                    format!(
                        " AND NOT EXISTS (SELECT 1 FROM {} e WHERE e.id = outbox.event_id)",
                        o.name
                    )
                })
                .collect();
            tx.execute(
                Stmt::new(format!(
                    "DELETE FROM outbox WHERE event_id BETWEEN $1 AND $2{}",
                    others.concat()
                ))
                .bind(t.min_id)
                .bind(t.max_id),
            )
            .await?;
        }
        tx.commit().await?;
        db.event_state()
            .sqlite_tables()
            .retain(|o| o.name != t.name);
        dropped.push(t.name);
    }
    Ok(dropped)
}

/// Forgets the previous format's table (dropped once empty).
pub(crate) fn legacy_dropped(db: &Store) {
    db.event_state().sqlite_tables().retain(|t| t.day.is_some());
}

/// Notes rows removed from the previous format's table.
pub(crate) fn legacy_shrunk(db: &Store, below: i64) {
    if let Some(t) = db
        .event_state()
        .sqlite_tables()
        .iter_mut()
        .find(|t| t.day.is_none())
    {
        t.max_id = t.max_id.min(below - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_hold_their_id_ranges() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(name_of(day), "events_d20261207");
        let mut t = DayTable::empty(name_of(day), Some(day));
        assert!(!t.holds(0) && !t.holds(i64::MAX));
        t.min_id = 10;
        t.max_id = 20;
        assert!(t.holds(10) && t.holds(20) && !t.holds(21) && !t.holds(9));
        assert!(t
            .select("LIMIT 1")
            .contains("FROM events_d20261207 LIMIT 1"));
        let legacy = DayTable::empty("events_legacy".into(), None);
        assert!(legacy.select("").contains("CAST(payload AS BLOB)"));
    }
}
