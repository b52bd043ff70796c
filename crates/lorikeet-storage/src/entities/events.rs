//! Events: `events`, what happened to devices (uplinks, joins, ACKs, …) in the
//! order webhooks deliver it (increasing ids), stored compactly: typed columns for
//! what is queried and the JSON as a compact body (`compact.rs`) rendered back to
//! the exact text on read. Entries the bodies share live in `event_dict`, cached
//! by every process for good (they never change).
//!
//! Both backends partition events by day, so retention drops whole days:
//! Postgres declaratively ([`ensure_days`] creates a day's partition before its
//! first event, [`upkeep`] creates them ahead and drops the days past the
//! retention), SQLite with a table per day (`event_days.rs`).
//!
//! Rows written before this format wait in `events_legacy` until [`migrate_legacy`]
//! moves them, newest first, in batches; meanwhile every read covers both (on
//! Postgres in one statement, so one snapshot).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use lorikeet_lorawan::Eui64;
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::event_days::{self, DayTable};
use crate::compact::{self, Dict, DictKind, DictRead, Encoded, Lookup, RenderError};
use crate::sql::Ts;
use crate::stmt::{Row, Stmt};
use crate::store::{Pools, Tx};
use crate::{Backend, Event, EventKind, EventRetention, NewEvent, PendingEvent, Store, StoreError};

const TABLE: &str = "events";

/// Rows deleted (SQLite) or moved (legacy) per statement or transaction, so a
/// large backlog never holds a long lock.
const CHUNK: i64 = 5_000;

/// Dictionary entries this process caches and creates at most; past that new
/// shapes and parts are stored inline, so odd input cannot grow it without end.
const DICT_MAX: usize = 1_000_000;

/// Days after today whose partitions [`upkeep`] creates ahead (Postgres).
const DAYS_AHEAD: i64 = 3;

/// Name prefix of the day partitions (`events_p20261207`).
const PARTITION_PREFIX: &str = "events_p";

/// The event store's state shared by a store's clones.
#[derive(Debug, Default)]
pub(crate) struct EventState {
    dict: Mutex<DictCache>,
    /// `events_legacy` exists (set at open, cleared when the migration ends).
    legacy: AtomicBool,
    /// Postgres day partitions known to exist.
    days: Mutex<HashSet<NaiveDate>>,
    /// SQLite's event tables and their id ranges.
    sqlite: Mutex<Vec<DayTable>>,
    /// The `event_seq` value those ranges account for.
    pub(crate) sqlite_seq: std::sync::atomic::AtomicI64,
}

impl EventState {
    /// SQLite's event tables (`event_days.rs`).
    pub(crate) fn sqlite_tables(&self) -> std::sync::MutexGuard<'_, Vec<DayTable>> {
        self.sqlite.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Default)]
struct DictCache {
    shapes: HashMap<Box<[u8]>, u64>,
    parts: HashMap<Box<[u8]>, u64>,
    by_id: HashMap<u64, Arc<[u8]>>,
}

impl DictCache {
    fn insert(&mut self, id: u64, kind: DictKind, content: &[u8]) {
        if self.by_id.len() >= DICT_MAX {
            return;
        }
        let map = match kind {
            DictKind::Shape => &mut self.shapes,
            DictKind::Part => &mut self.parts,
        };
        map.insert(content.into(), id);
        self.by_id.insert(id, content.into());
    }
}

impl DictRead for DictCache {
    fn get(&self, id: u64) -> Option<Arc<[u8]>> {
        self.by_id.get(&id).cloned()
    }
}

/// The cache plus the entries stored by the transaction in progress (cached
/// only once it commits).
struct Overlay<'a> {
    cache: &'a DictCache,
    new: &'a [(DictKind, Vec<u8>, u64)],
}

impl Dict for Overlay<'_> {
    fn lookup(&self, kind: DictKind, content: &[u8]) -> Lookup {
        let map = match kind {
            DictKind::Shape => &self.cache.shapes,
            DictKind::Part => &self.cache.parts,
        };
        if let Some(id) = map.get(content) {
            return Lookup::Found(*id);
        }
        if let Some((_, _, id)) = self.new.iter().find(|(k, c, _)| *k == kind && c == content) {
            return Lookup::Found(*id);
        }
        if self.cache.by_id.len() + self.new.len() >= DICT_MAX {
            Lookup::Full
        } else {
            Lookup::Missing
        }
    }
}

/// Entries a batch stored and SQLite rows it placed, to note once it commits.
#[derive(Debug, Default)]
pub(crate) struct NewEntries(Vec<(DictKind, Vec<u8>, u64)>, event_days::Placed);

/// Notes which tables exist (after the migrations ran).
pub(crate) async fn init(db: &Store) -> Result<(), StoreError> {
    let present = match db.backend() {
        Backend::Postgres => db
            .fetch_one(Stmt::new(
                "SELECT to_regclass('events_legacy') IS NOT NULL AS present",
            ))
            .await?
            .get("present")?,
        Backend::Sqlite => {
            let seq: i64 = db
                .fetch_one(Stmt::new("SELECT id FROM event_seq"))
                .await?
                .get("id")?;
            db.event_state().sqlite_seq.store(seq, Ordering::Relaxed);
            let tables = event_days::load(db).await?;
            let present = tables.iter().any(|t| t.day.is_none());
            *db.event_state().sqlite_tables() = tables;
            present
        }
    };
    db.event_state().legacy.store(present, Ordering::Relaxed);
    Ok(())
}

fn legacy(db: &Store) -> bool {
    db.event_state().legacy.load(Ordering::Relaxed)
}

/// The stable code of a kind in the `kind` column.
fn kind_code(k: EventKind) -> i16 {
    match k {
        EventKind::Up => 1,
        EventKind::Join => 2,
        EventKind::Ack => 3,
        EventKind::TxAck => 4,
        EventKind::Status => 5,
        EventKind::Log => 6,
        EventKind::Location => 7,
        EventKind::Alert => 8,
    }
}

fn kind_of_code(c: i64) -> Option<EventKind> {
    EventKind::ALL
        .into_iter()
        .find(|k| i64::from(kind_code(*k)) == c)
}

/// A row of either table: the new table has `kind_code`, the legacy one
/// `kind_text`.
fn row_kind(r: &Row) -> Result<EventKind, StoreError> {
    if let Some(c) = r.get::<Option<i64>>("kind_code")? {
        return kind_of_code(c).ok_or_else(|| StoreError::Corrupt {
            table: TABLE,
            column: "kind",
            detail: format!("unknown event kind code {c}"),
        });
    }
    r.known(TABLE, "kind_text", EventKind::parse)
}

/// Rendered rows, in the order given.
async fn render_rows(db: &Store, rows: &[Row]) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let body: Vec<u8> = r.get("body")?;
        let base = r.ts("created_at")?.timestamp_micros();
        out.push(render(db, &body, base).await?);
    }
    Ok(out)
}

/// Renders a body, loading dictionary entries it needs first.
async fn render(db: &Store, body: &[u8], base_us: i64) -> Result<String, StoreError> {
    // Each round loads the next entry the body names (the rest of a body cannot
    // be read without it): a body names a dozen or so, and only a cold cache
    // (a new process) takes these rounds.
    for _ in 0..256 {
        let result = {
            let cache = db
                .event_state()
                .dict
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            compact::render(body, base_us, &*cache)
        };
        match result {
            Ok(text) => return Ok(text),
            Err(RenderError::Missing(ids)) => load_entries(db, &ids).await?,
            Err(RenderError::Corrupt(why)) => {
                return Err(StoreError::Corrupt {
                    table: TABLE,
                    column: "body",
                    detail: why.into(),
                })
            }
        }
    }
    Err(StoreError::Corrupt {
        table: TABLE,
        column: "body",
        detail: "names more dictionary entries than a body can".into(),
    })
}

async fn load_entries(db: &Store, ids: &[u64]) -> Result<(), StoreError> {
    let mut s = String::from(
        "SELECT id, CAST(kind AS BIGINT) AS kind, content FROM event_dict WHERE id IN (",
    );
    for i in 0..ids.len() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&format!("${}", i + 1));
    }
    s.push(')');
    let mut stmt = Stmt::new(s);
    for id in ids {
        stmt = stmt.bind(i64::try_from(*id).unwrap_or(i64::MAX));
    }
    let rows = db.fetch_all(stmt).await?;
    if rows.len() < ids.len() {
        return Err(StoreError::Corrupt {
            table: "event_dict",
            column: "id",
            detail: format!("an event names dictionary entries that are missing: {ids:?}"),
        });
    }
    let mut cache = db
        .event_state()
        .dict
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    for r in &rows {
        let id: i64 = r.get("id")?;
        let kind = DictKind::from_code(r.get("kind")?).ok_or_else(|| StoreError::Corrupt {
            table: "event_dict",
            column: "kind",
            detail: "unknown entry kind".into(),
        })?;
        let content: Vec<u8> = r.get("content")?;
        cache.insert(id as u64, kind, &content);
    }
    Ok(())
}

/// Postgres keeps an event's DevEUI as the signed 64-bit integer of its 8 bytes
/// (big-endian): half the size of `BYTEA` in the `(dev_eui, id)` index. The
/// integer of a `BYTEA` expression, in SQL.
fn pg_eui(bytes: &str) -> String {
    format!("('x' || encode({bytes}, 'hex'))::bit(64)::bigint")
}

/// The integer Postgres stores for `eui`.
fn eui_i64(eui: Eui64) -> i64 {
    i64::from_be_bytes(eui.0)
}

/// The columns both tables give a read (Postgres), the DevEUI as its bytes and the
/// legacy JSON as the body (a body that starts with `{` renders as its own text).
fn select_new(rest: &str) -> String {
    format!(
        "SELECT id, int8send(dev_eui) AS dev_eui, application_id, \
         CAST(kind AS BIGINT) AS kind_code, CAST(NULL AS TEXT) AS kind_text, created_at, body \
         FROM events {rest}"
    )
}

fn select_legacy(db: &Store, rest: &str) -> String {
    let body = match db.backend() {
        Backend::Postgres => "convert_to(payload::text, 'UTF8')",
        Backend::Sqlite => "CAST(payload AS BLOB)",
    };
    let code = "CAST(NULL AS BIGINT)";
    format!(
        "SELECT id, dev_eui, application_id, {code} AS kind_code, kind AS kind_text, \
         created_at, {body} AS body FROM events_legacy {rest}"
    )
}

/// Both tables' answers to one ordered, limited query, as one statement (Postgres;
/// the conditions may differ in how they name the DevEUI).
fn union(db: &Store, rest_new: &str, rest_legacy: &str) -> String {
    if legacy(db) {
        format!(
            "SELECT * FROM ({}) n UNION ALL SELECT * FROM ({}) l",
            select_new(rest_new),
            select_legacy(db, rest_legacy)
        )
    } else {
        select_new(rest_new)
    }
}

fn decode(r: &Row, json: String) -> Result<Event, StoreError> {
    Ok(Event {
        id: r.get("id")?,
        dev_eui: r.eui(TABLE, "dev_eui")?,
        application_id: r.get("application_id")?,
        kind: row_kind(r)?,
        json,
        created_at: r.ts("created_at")?,
    })
}

/// The device's newest `limit` events with ids below `before`, newest first.
pub(crate) async fn list(
    db: &Store,
    dev_eui: Eui64,
    limit: u32,
    before: Option<i64>,
) -> Result<Vec<Event>, StoreError> {
    if db.backend() == Backend::Sqlite {
        let rows = event_days::newest(
            db,
            "dev_eui = $1",
            dev_eui.0.to_vec(),
            before.unwrap_or(i64::MAX),
            limit,
        )
        .await?;
        let texts = render_rows(db, &rows).await?;
        return rows.iter().zip(texts).map(|(r, t)| decode(r, t)).collect();
    }
    let sql = union(
        db,
        &format!(
            "WHERE dev_eui = {} AND id < $2 ORDER BY id DESC LIMIT $3",
            pg_eui("$1")
        ),
        "WHERE dev_eui = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
    );
    let mut rows = db
        .fetch_all(
            Stmt::new(sql)
                .bind(dev_eui.0.to_vec())
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit)),
        )
        .await?;
    event_days::sort(&mut rows, true)?;
    rows.truncate(limit as usize);
    let texts = render_rows(db, &rows).await?;
    rows.iter().zip(texts).map(|(r, t)| decode(r, t)).collect()
}

/// The application's events with an id above `after`, oldest first, at most
/// `limit`, as the text delivered.
pub(crate) async fn after(
    db: &Store,
    application_id: Uuid,
    after: i64,
    limit: u32,
) -> Result<Vec<PendingEvent>, StoreError> {
    let rows = if db.backend() == Backend::Sqlite {
        event_days::oldest(db, "application_id = $1", application_id, after, limit).await?
    } else {
        let rest = "WHERE application_id = $1 AND id > $2 ORDER BY id LIMIT $3";
        let sql = union(db, rest, rest);
        let mut rows = db
            .fetch_all(
                Stmt::new(sql)
                    .bind(application_id)
                    .bind(after)
                    .bind(i64::from(limit)),
            )
            .await?;
        event_days::sort(&mut rows, false)?;
        rows.truncate(limit as usize);
        rows
    };
    let texts = render_rows(db, &rows).await?;
    rows.iter()
        .zip(texts)
        .map(|(r, body)| {
            Ok(PendingEvent {
                id: r.get("id")?,
                dev_eui: r.eui(TABLE, "dev_eui")?,
                kind: row_kind(r)?,
                body,
                created_at: r.ts("created_at")?,
            })
        })
        .collect()
}

/// The events of `keys` (device, id) that still exist: kind and text by id.
pub(crate) async fn by_ids(
    db: &Store,
    keys: &[(Eui64, i64)],
) -> Result<HashMap<i64, (EventKind, String)>, StoreError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = match db.backend() {
        // No index on id alone in the partitioned table: find rows through
        // (dev_eui, id).
        Backend::Postgres => {
            let new = "SELECT e.id, int8send(e.dev_eui) AS dev_eui, e.application_id, \
                       CAST(e.kind AS BIGINT) AS kind_code, CAST(NULL AS TEXT) AS kind_text, \
                       e.created_at, e.body FROM events e \
                       JOIN UNNEST($1::bigint[], $2::bigint[]) AS k(dev_eui, id) \
                       ON e.dev_eui = k.dev_eui AND e.id = k.id";
            let sql = if legacy(db) {
                format!(
                    "{new} UNION ALL {}",
                    select_legacy(db, "WHERE id = ANY($2::bigint[])")
                )
            } else {
                new.to_string()
            };
            let Pools::Postgres(pool) = db.pools() else {
                unreachable!("backend is Postgres")
            };
            sqlx::query(&sql)
                .bind(keys.iter().map(|(d, _)| eui_i64(*d)).collect::<Vec<_>>())
                .bind(keys.iter().map(|(_, id)| *id).collect::<Vec<_>>())
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect()
        }
        Backend::Sqlite => {
            let ids: Vec<i64> = keys.iter().map(|(_, id)| *id).collect();
            event_days::by_ids(db, &ids).await?
        }
    };
    let texts = render_rows(db, &rows).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for (r, t) in rows.iter().zip(texts) {
        out.insert(r.get::<i64>("id")?, (row_kind(r)?, t));
    }
    Ok(out)
}

/// SQL true when event `$2` (of device `$3`) still exists, inside a transaction.
pub(crate) fn exists_sql(db: &Store, id: i64) -> String {
    match (db.backend(), legacy(db)) {
        (Backend::Sqlite, _) => event_days::exists_sql(db, id),
        (Backend::Postgres, true) => format!(
            "(EXISTS (SELECT 1 FROM events WHERE dev_eui = {} AND id = $2) \
              OR EXISTS (SELECT 1 FROM events_legacy WHERE id = $2))",
            pg_eui("$3")
        ),
        (Backend::Postgres, false) => format!(
            "EXISTS (SELECT 1 FROM events WHERE dev_eui = {} AND id = $2)",
            pg_eui("$3")
        ),
    }
}

/// The highest event id given out so far (0 before the first).
pub(crate) fn max_id_sql(db: &Store) -> &'static str {
    match db.backend() {
        // The sequence, not MAX(id): no index has id first in the partitions.
        Backend::Postgres => {
            "(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM event_ids)"
        }
        Backend::Sqlite => "(SELECT id FROM event_seq)",
    }
}

/// How many of the application's events have ids above `after`.
pub(crate) async fn count_after(
    db: &Store,
    application_id: Uuid,
    after: i64,
) -> Result<u64, StoreError> {
    if db.backend() == Backend::Sqlite {
        return event_days::count(db, "application_id = $1", application_id, after).await;
    }
    let mut sql =
        String::from("SELECT (SELECT COUNT(*) FROM events WHERE application_id = $1 AND id > $2)");
    if legacy(db) {
        sql.push_str(
            " + (SELECT COUNT(*) FROM events_legacy WHERE application_id = $1 AND id > $2)",
        );
    }
    sql.push_str(" AS n");
    let n: i64 = db
        .fetch_one(Stmt::new(sql).bind(application_id).bind(after))
        .await?
        .get("n")?;
    Ok(crate::sql::count(n))
}

// --- writes -------------------------------------------------------------------

/// A row to insert.
struct NewRow<'a> {
    e: &'a NewEvent,
    body: Vec<u8>,
    f_cnt: Option<i64>,
    f_port: Option<i64>,
}

/// A batch's `WriteOp::InsertEvent`s, in op order: ids increase in that order,
/// which is the order webhooks deliver them in (per device). Events of devices
/// deleted meanwhile are skipped. Dictionary entries the bodies need are stored
/// in the same transaction; the caller caches them once it commits.
pub(crate) async fn insert(
    db: &Store,
    tx: &mut Tx,
    events: &[&NewEvent],
) -> Result<NewEntries, StoreError> {
    let mut new = NewEntries::default();
    if events.is_empty() {
        return Ok(new);
    }
    let mut rows = Vec::with_capacity(events.len());
    for e in events {
        rows.push(encode(db, tx, &mut new, e).await?);
    }
    match tx {
        Tx::Postgres(tx) => insert_postgres(tx, &rows).await?,
        Tx::Sqlite(tx) => {
            // Each event goes to the table of its day, as on Postgres.
            let devs: Vec<Vec<u8>> = rows.iter().map(|r| r.e.dev_eui.0.to_vec()).collect();
            let mut writes: Vec<event_days::Write> = rows
                .iter()
                .zip(&devs)
                .map(|(r, dev)| sqlite_write(r, dev, None, r.e.created_at.date_naive()))
                .collect();
            new.1 = event_days::insert(db, tx, &mut writes).await?;
        }
    }
    Ok(new)
}

/// Caches the entries a committed batch stored.
pub(crate) fn committed(db: &Store, new: NewEntries) {
    event_days::committed(db, new.1);
    if new.0.is_empty() {
        return;
    }
    let mut cache = db
        .event_state()
        .dict
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    for (kind, content, id) in new.0 {
        cache.insert(id, kind, &content);
    }
}

fn sqlite_write<'a>(
    r: &'a NewRow<'_>,
    dev: &'a [u8],
    id: Option<i64>,
    day: NaiveDate,
) -> event_days::Write<'a> {
    event_days::Write {
        id,
        day,
        dev_eui: dev,
        application_id: r.e.application_id,
        kind: kind_code(r.e.kind),
        f_cnt: r.f_cnt,
        f_port: r.f_port,
        created_at: r.e.created_at,
        body: &r.body,
    }
}

async fn encode<'a>(
    db: &Store,
    tx: &mut Tx,
    new: &mut NewEntries,
    e: &'a NewEvent,
) -> Result<NewRow<'a>, StoreError> {
    let base = e.created_at.timestamp_micros();
    // Each round stores the entries found missing; a part waits for the shapes
    // inside it, so two or three rounds at most.
    for _ in 0..4 {
        let encoded = {
            let cache = db
                .event_state()
                .dict
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            compact::encode(
                &e.payload,
                base,
                &Overlay {
                    cache: &cache,
                    new: &new.0,
                },
            )
        };
        match encoded {
            Encoded::Body(b) => {
                return Ok(NewRow {
                    e,
                    body: b.bytes,
                    f_cnt: b.f_cnt,
                    f_port: b.f_port,
                })
            }
            Encoded::Need(entries) => {
                for (kind, content) in entries {
                    let id = store_entry(tx, kind, &content).await?;
                    new.0.push((kind, content, id));
                }
            }
        }
    }
    // Not reached with the encoder's rules; kept whole if it ever is.
    let mut body = vec![compact::RAW];
    body.extend_from_slice(e.payload.as_bytes());
    Ok(NewRow {
        e,
        body,
        f_cnt: None,
        f_port: None,
    })
}

async fn store_entry(tx: &mut Tx, kind: DictKind, content: &[u8]) -> Result<u64, StoreError> {
    let hash = Sha256::digest(content)[..16].to_vec();
    let r = tx
        .fetch_one(
            Stmt::new(
                "INSERT INTO event_dict (kind, hash, content) VALUES ($1, $2, $3) \
                 ON CONFLICT (kind, hash) DO UPDATE SET kind = excluded.kind RETURNING id",
            )
            .bind(kind.code())
            .bind(hash)
            .bind(content.to_vec()),
        )
        .await?;
    let id: i64 = r.get("id")?;
    Ok(id as u64)
}

/// Postgres' `f_cnt` is an `INTEGER`: a counter past 2^31 - 1 (never seen in
/// practice) is left out of the column; the body keeps it.
fn pg_f_cnt(f_cnt: Option<i64>) -> Option<i32> {
    f_cnt.and_then(|n| i32::try_from(n).ok())
}

/// Postgres: one statement, a column array per field through `UNNEST`, in the
/// arrays' order (`WITH ORDINALITY`); the device's row is locked as a foreign key
/// check would (`FOR KEY SHARE`), so a device deleted meanwhile takes these rows
/// with it (the trigger of migration 15).
async fn insert_postgres(
    tx: &mut Transaction<'static, Postgres>,
    rows: &[NewRow<'_>],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (dev_eui, application_id, kind, f_cnt, f_port, created_at, body) \
         SELECT u.dev_int, u.application_id, u.kind, u.f_cnt, u.f_port, u.created_at, u.body \
         FROM UNNEST($1::bytea[], $2::uuid[], $3::int2[], $4::int4[], $5::int2[], \
                     $6::timestamptz[], $7::bytea[], $8::int8[]) \
           WITH ORDINALITY AS u(dev_eui, application_id, kind, f_cnt, f_port, created_at, body, \
                                dev_int, ord) \
         WHERE EXISTS (SELECT 1 FROM devices d WHERE d.dev_eui = u.dev_eui FOR KEY SHARE) \
         ORDER BY u.ord",
    )
    .bind(
        rows.iter()
            .map(|r| r.e.dev_eui.0.to_vec())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.e.application_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| kind_code(r.e.kind)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| pg_f_cnt(r.f_cnt)).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.f_port.and_then(|p| i16::try_from(p).ok()))
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.e.created_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.body.as_slice()).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| eui_i64(r.e.dev_eui))
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

// --- partitions and retention ----------------------------------------------------

/// The partition of `day`.
fn partition_name(day: NaiveDate) -> String {
    format!("{PARTITION_PREFIX}{}", day.format("%Y%m%d"))
}

/// Postgres: creates the partitions of the batch's days not known to exist, before
/// the batch's transaction (DDL outside it, so a failed batch keeps them).
pub(crate) async fn ensure_days(db: &Store, events: &[&NewEvent]) -> Result<(), StoreError> {
    if !matches!(db.pools(), Pools::Postgres(_)) || events.is_empty() {
        return Ok(());
    }
    let mut missing: Vec<NaiveDate> = {
        let known = db
            .event_state()
            .days
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        events
            .iter()
            .map(|e| e.created_at.date_naive())
            .filter(|d| !known.contains(d))
            .collect()
    };
    missing.sort();
    missing.dedup();
    for day in missing {
        super::partitions::create(db, "events", &partition_name(day), day).await?;
        db.event_state()
            .days
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(day);
    }
    Ok(())
}

/// Retention and partitions: on Postgres, creates the next days' partitions and
/// drops the days wholly before `cutoff` (a catalog change: constant time, no row
/// is visited); on SQLite, deletes the rows before `cutoff` by id range, in
/// chunks. Legacy rows past the cutoff go too.
pub(crate) async fn upkeep(
    db: &Store,
    now: DateTime<Utc>,
    cutoff: DateTime<Utc>,
) -> Result<EventRetention, StoreError> {
    let mut done = EventRetention::default();
    match db.backend() {
        Backend::Postgres => {
            let m = super::partitions::maintain(
                db,
                "events",
                PARTITION_PREFIX,
                now,
                DAYS_AHEAD,
                cutoff,
            )
            .await?;
            let mut days = db
                .event_state()
                .days
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for (day, name) in m.created {
                days.insert(day);
                done.partitions_created.push(name);
            }
            for (day, name) in m.dropped {
                days.remove(&day);
                done.partitions_dropped.push(name);
            }
        }
        Backend::Sqlite => {
            done.partitions_dropped = event_days::drop_before(db, cutoff).await?;
        }
    }
    if legacy(db) {
        // The move may finish (and drop the table) meanwhile.
        let (n, below) = match delete_by_id_before(db, "events_legacy", cutoff).await {
            Err(StoreError::Database(e)) if table_gone(&e) => (0, 0),
            other => other?,
        };
        done.rows_deleted += n;
        if n > 0 && db.backend() == Backend::Sqlite {
            // Outbox rows of the deleted events, unless a day table holds them
            // (moved there).
            let others: String = db
                .event_state()
                .sqlite_tables()
                .iter()
                .filter(|t| t.day.is_some() && t.min_id < below)
                .map(|t| {
                    format!(
                        " AND NOT EXISTS (SELECT 1 FROM {} e WHERE e.id = outbox.event_id)",
                        t.name
                    )
                })
                .collect();
            db.execute(
                Stmt::new(format!("DELETE FROM outbox WHERE event_id < $1{others}")).bind(below),
            )
            .await?;
        }
    }
    if db.backend() == Backend::Postgres
        && (done.rows_deleted > 0 || !done.partitions_dropped.is_empty())
    {
        // Outbox rows whose events are gone (no foreign key does it).
        let mut gone = String::from(
            "DELETE FROM outbox WHERE NOT EXISTS (SELECT 1 FROM events e \
             WHERE e.dev_eui = ('x' || encode(outbox.dev_eui, 'hex'))::bit(64)::bigint \
             AND e.id = outbox.event_id)",
        );
        if legacy(db) {
            gone.push_str(
                " AND NOT EXISTS (SELECT 1 FROM events_legacy l WHERE l.id = outbox.event_id)",
            );
        }
        db.execute(Stmt::new(gone)).await?;
    }
    Ok(done)
}

/// "No such table" from either backend.
fn table_gone(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d)
        if d.code().as_deref() == Some("42P01") || d.message().starts_with("no such table"))
}

/// Deletes the rows of `table` (whose ids grow with time) older than `cutoff`:
/// the first id at the cutoff is found by bisecting ids (each probe one primary
/// key seek), then everything below it goes in chunks. Returns how many, and the
/// id below which they were.
async fn delete_by_id_before(
    db: &Store,
    table: &str,
    cutoff: DateTime<Utc>,
) -> Result<(u64, i64), StoreError> {
    let bounds = db
        .fetch_one(Stmt::new(format!(
            "SELECT COALESCE(MIN(id), 0) AS lo, COALESCE(MAX(id), 0) AS hi FROM {table}"
        )))
        .await?;
    let (mut lo, mut hi): (i64, i64) = (bounds.get("lo")?, bounds.get("hi")?);
    if hi == 0 {
        return Ok((0, 0));
    }
    // The first id whose row (or the next row after it) is at or after the cutoff.
    hi += 1;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let r = db
            .fetch_optional(
                Stmt::new(format!(
                    "SELECT created_at FROM {table} WHERE id >= $1 ORDER BY id LIMIT 1"
                ))
                .bind(mid),
            )
            .await?;
        match r {
            Some(r) if r.ts("created_at")? < cutoff => lo = mid + 1,
            _ => hi = mid,
        }
    }
    let mut total = 0;
    loop {
        let n = db
            .execute(
                Stmt::new(format!(
                    "DELETE FROM {table} WHERE id IN \
                     (SELECT id FROM {table} WHERE id < $1 ORDER BY id LIMIT {CHUNK})"
                ))
                .bind(lo),
            )
            .await?;
        total += n;
        if n == 0 {
            return Ok((total, lo));
        }
    }
}

/// Moves up to `batch` of the newest legacy rows into the compact table, in one
/// transaction; drops the legacy table once it is empty. Returns the rows moved
/// (0 when nothing is left).
pub(crate) async fn migrate_legacy(db: &Store, batch: u32) -> Result<u64, StoreError> {
    if !legacy(db) {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    if db.backend() == Backend::Postgres {
        // Servers sharing the database take turns (SQLite has one writer anyway).
        tx.execute(Stmt::new(
            "SELECT pg_advisory_xact_lock(hashtext('lorikeet.events_legacy'))",
        ))
        .await?;
        if tx
            .fetch_one(Stmt::new(
                "SELECT to_regclass('events_legacy') IS NULL AS gone",
            ))
            .await?
            .get::<bool>("gone")?
        {
            db.event_state().legacy.store(false, Ordering::Relaxed);
            return Ok(0);
        }
    }
    let rows = tx
        .fetch_all(Stmt::new(select_legacy(db, "ORDER BY id DESC LIMIT $1")).bind(i64::from(batch)))
        .await?;
    if rows.is_empty() {
        tx.execute(Stmt::new("DROP TABLE IF EXISTS events_legacy"))
            .await?;
        tx.commit().await?;
        db.event_state().legacy.store(false, Ordering::Relaxed);
        event_days::legacy_dropped(db);
        tracing::info!("every stored event is in the compact format now");
        return Ok(0);
    }
    let mut olds = Vec::with_capacity(rows.len());
    for r in &rows {
        let body: Vec<u8> = r.get("body")?;
        olds.push((
            r.get::<i64>("id")?,
            NewEvent {
                dev_eui: r.eui(TABLE, "dev_eui")?,
                application_id: r.get("application_id")?,
                kind: row_kind(r)?,
                payload: String::from_utf8_lossy(&body).into(),
                created_at: r.ts("created_at")?,
            },
        ));
    }
    let days: Vec<&NewEvent> = olds.iter().map(|(_, e)| e).collect();
    ensure_days(db, &days).await?;
    let mut new = NewEntries::default();
    let mut encoded = Vec::with_capacity(olds.len());
    for (id, e) in &olds {
        encoded.push((*id, encode(db, &mut tx, &mut new, e).await?));
    }
    let lowest = olds.last().map(|(id, _)| *id).unwrap_or(0);
    match &mut tx {
        Tx::Sqlite(t) => {
            // To the table of each event's own day, so it expires with that day.
            let devs: Vec<Vec<u8>> = encoded
                .iter()
                .map(|(_, r)| r.e.dev_eui.0.to_vec())
                .collect();
            let mut writes: Vec<event_days::Write> = encoded
                .iter()
                .zip(&devs)
                .map(|((id, r), dev)| sqlite_write(r, dev, Some(*id), r.e.created_at.date_naive()))
                .collect();
            // Oldest first within the batch, so each day's rows run together.
            writes.reverse();
            writes.sort_by_key(|w| w.day);
            new.1 = event_days::insert(db, t, &mut writes).await?;
        }
        Tx::Postgres(_) => {
            for (id, r) in &encoded {
                tx.execute(
                    Stmt::new(
                        "INSERT INTO events (id, dev_eui, application_id, kind, f_cnt, f_port, \
                         created_at, body) SELECT $1, $9, $3, $4, $5, $6, $7, $8 \
                         WHERE EXISTS (SELECT 1 FROM devices WHERE dev_eui = $2 FOR KEY SHARE)",
                    )
                    .bind(*id)
                    .bind(r.e.dev_eui.0.to_vec())
                    .bind(r.e.application_id)
                    .bind(kind_code(r.e.kind))
                    .bind(pg_f_cnt(r.f_cnt))
                    .bind(r.f_port)
                    .bind(Ts(r.e.created_at))
                    .bind(r.body.clone())
                    .bind(eui_i64(r.e.dev_eui)),
                )
                .await?;
            }
        }
    }
    tx.execute(Stmt::new("DELETE FROM events_legacy WHERE id >= $1").bind(lowest))
        .await?;
    tx.commit().await?;
    committed(db, new);
    if db.backend() == Backend::Sqlite {
        event_days::legacy_shrunk(db, lowest);
    }
    Ok(olds.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_codes_are_stable_and_distinct() {
        let codes: Vec<i16> = EventKind::ALL.into_iter().map(kind_code).collect();
        assert_eq!(codes, [1, 2, 3, 4, 5, 6, 7, 8]);
        for k in EventKind::ALL {
            assert_eq!(kind_of_code(i64::from(kind_code(k))), Some(k));
        }
        assert_eq!(kind_of_code(0), None);
    }
}
