//! Measurements: `measurements`, the numeric fields of decoded uplinks written by
//! the `postgres` integration's sink, one row per field, read back downsampled.
//!
//! - Writes: one transaction per uplink; the key (dev_eui, time, name, event_id)
//!   makes a retried delivery a no-op (`ON CONFLICT DO NOTHING`).
//! - Reads: the range is split into N equal buckets and grouped by (field,
//!   bucket) in SQL, so a year of data never comes into memory row by row.
//! - Postgres partitions the table by day ([`upkeep`] creates them ahead and drops
//!   old ones; [`write`] creates a missing one on demand). SQLite has one table;
//!   on both, rows past their application's retention are deleted in chunks.
//!
//! The SQL is shared but for the partition DDL (Postgres only) and the time
//! column's value in microseconds (see [`micros_of_time`]).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use uuid::Uuid;

use super::partitions;
use crate::sql::{count, Ts};
use crate::stmt::{Row, Stmt};
use crate::store::Pools;
use crate::{
    MeasurementBatch, MeasurementPoint, MeasurementQuery, MeasurementRetention, MeasurementSeries,
    MeasurementUpkeep, Store, StoreError,
};

/// Fields per insert statement (2 parameters each, plus 4 shared).
const ROWS: usize = 500;

/// Rows deleted per retention statement, so a large backlog never holds a long lock.
const RETENTION_CHUNK: u32 = 5_000;

/// Days after today whose partitions [`upkeep`] creates ahead.
const DAYS_AHEAD: i64 = 3;

/// Name prefix of the day partitions (`measurements_p20261207`).
const PARTITION_PREFIX: &str = "measurements_p";

/// The partition of `day`.
fn partition_name(day: NaiveDate) -> String {
    format!("{PARTITION_PREFIX}{}", day.format("%Y%m%d"))
}

async fn create_partition(db: &Store, day: NaiveDate) -> Result<(), StoreError> {
    partitions::create(db, "measurements", &partition_name(day), day).await
}

/// Writes one uplink's fields. On Postgres a write into a day without a
/// partition fails as a whole; then the day's partition is created and the write
/// runs once more. (A DEFAULT partition was the alternative: rows parked there
/// make creating their day's partition fail later, and every creation would scan
/// it.)
pub(crate) async fn write(db: &Store, b: &MeasurementBatch) -> Result<u64, StoreError> {
    if b.fields.is_empty() {
        return Ok(0);
    }
    match insert(db, b).await {
        Err(e) if no_partition(&e) => {
            create_partition(db, b.time.date_naive()).await?;
            Ok(insert(db, b).await?)
        }
        other => Ok(other?),
    }
}

/// Postgres' "no partition of relation … found for row" (a check violation).
fn no_partition(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.code().as_deref() == Some("23514") && d.message().contains("no partition")
        }
        _ => false,
    }
}

/// The insert, in one transaction: nothing when the device is gone (deleted after
/// its uplink), else every field, skipping rows already there.
async fn insert(db: &Store, b: &MeasurementBatch) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let dev = b.dev_eui.0.to_vec();
    let exists = tx
        .fetch_optional(
            Stmt::new("SELECT 1 AS one FROM devices WHERE dev_eui = $1").bind(dev.clone()),
        )
        .await?
        .is_some();
    if !exists {
        return Ok(0);
    }
    let mut written = 0;
    for chunk in b.fields.chunks(ROWS) {
        let mut sql = String::from(
            "INSERT INTO measurements (application_id, dev_eui, time, event_id, name, value) \
             VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            let n = 5 + i * 2;
            sql.push_str(&format!("($1, $2, $3, $4, ${n}, ${})", n + 1));
        }
        sql.push_str(" ON CONFLICT DO NOTHING");
        let mut s = Stmt::new(sql)
            .bind(b.application_id)
            .bind(dev.clone())
            .bind(Ts(b.time))
            .bind(b.event_id);
        for (name, value) in chunk {
            s = s.bind(name.as_str()).bind(*value);
        }
        written += tx.execute(s).await?;
    }
    tx.commit().await?;
    Ok(written)
}

/// Postgres: whether `measurements` is still the natively partitioned table of
/// the migration (an operator may have replaced it with a TimescaleDB hypertable,
/// which manages its own chunks: docs/integrations.md).
async fn partitioned(db: &Store) -> Result<bool, StoreError> {
    let r = db
        .fetch_one(Stmt::new(
            "SELECT c.relkind::text AS kind FROM pg_class c \
             WHERE c.oid = 'measurements'::regclass",
        ))
        .await?;
    Ok(r.get::<String>("kind")? == "p")
}

/// The time column in microseconds since the Unix epoch: SQLite stores exactly
/// that; Postgres converts (EXTRACT gives exact numeric seconds).
fn micros_of_time(db: &Store) -> &'static str {
    match db.pools() {
        Pools::Postgres(_) => "CAST(EXTRACT(EPOCH FROM time) * 1000000 AS BIGINT)",
        Pools::Sqlite { .. } => "time",
    }
}

/// A device's buckets per field. Bucket `i` of `n` over `[from, to)` holds the
/// rows with `(t - from) * n / (to - from) = i` (integer microseconds, so no row
/// falls between buckets), and starts at `from + i * (to - from) / n`.
pub(crate) async fn series(
    db: &Store,
    q: &MeasurementQuery,
) -> Result<Vec<MeasurementSeries>, StoreError> {
    let span = (q.to - q.from).num_microseconds().unwrap_or(i64::MAX);
    let buckets = i64::from(q.buckets.max(1));
    if span <= 0 {
        return Ok(Vec::new());
    }
    let from_us = q.from.timestamp_micros();
    let mut sql = format!(
        "SELECT name, CAST(({t} - $4) * $5 / $6 AS BIGINT) AS bucket, \
         CAST(AVG(value) AS DOUBLE PRECISION) AS v_avg, \
         CAST(MIN(value) AS DOUBLE PRECISION) AS v_min, \
         CAST(MAX(value) AS DOUBLE PRECISION) AS v_max, \
         COUNT(*) AS n \
         FROM measurements WHERE dev_eui = $1 AND time >= $2 AND time < $3",
        t = micros_of_time(db)
    );
    if !q.fields.is_empty() {
        let marks: Vec<String> = (0..q.fields.len()).map(|i| format!("${}", 7 + i)).collect();
        sql.push_str(&format!(" AND name IN ({})", marks.join(", ")));
    }
    sql.push_str(" GROUP BY name, bucket ORDER BY name, bucket");
    let mut s = Stmt::new(sql)
        .bind(q.dev_eui.0.to_vec())
        .bind(Ts(q.from))
        .bind(Ts(q.to))
        .bind(from_us)
        .bind(buckets)
        .bind(span);
    for f in &q.fields {
        s = s.bind(f.as_str());
    }
    let rows = db.fetch_all(s).await?;
    let mut out: Vec<MeasurementSeries> = Vec::new();
    for r in &rows {
        let field: String = r.get("name")?;
        let point = point(r, q.from, span, buckets)?;
        match out.last_mut() {
            Some(s) if s.field == field => s.points.push(point),
            _ => out.push(MeasurementSeries {
                field,
                points: vec![point],
            }),
        }
    }
    Ok(out)
}

/// One row of [`series`].
fn point(
    r: &Row,
    from: DateTime<Utc>,
    span: i64,
    buckets: i64,
) -> Result<MeasurementPoint, StoreError> {
    let bucket: i64 = r.get("bucket")?;
    let n: i64 = r.get("n")?;
    // i128: bucket × span stays exact past i64 for long ranges.
    let offset = i128::from(bucket) * i128::from(span) / i128::from(buckets);
    let start = i64::try_from(offset)
        .ok()
        .and_then(|us| from.checked_add_signed(TimeDelta::microseconds(us)))
        .unwrap_or(from);
    Ok(MeasurementPoint {
        start,
        avg: r.get("v_avg")?,
        min: r.get("v_min")?,
        max: r.get("v_max")?,
        count: count(n),
    })
}

/// Periodic upkeep (see [`crate::Storage::measurement_upkeep`]).
pub(crate) async fn upkeep(
    db: &Store,
    now: DateTime<Utc>,
    retention: &[MeasurementRetention],
) -> Result<MeasurementUpkeep, StoreError> {
    let mut done = MeasurementUpkeep::default();
    let longest = retention.iter().map(|r| r.days).max().unwrap_or(0);
    if matches!(db.pools(), Pools::Postgres(_)) && partitioned(db).await? {
        let cutoff = now - TimeDelta::days(i64::from(longest));
        let m = partitions::maintain(
            db,
            "measurements",
            PARTITION_PREFIX,
            now,
            DAYS_AHEAD,
            cutoff,
        )
        .await?;
        done.partitions_created = m.created.into_iter().map(|(_, n)| n).collect();
        done.partitions_dropped = m.dropped.into_iter().map(|(_, n)| n).collect();
    }
    // Per application, including the longest retention: a partition drops only
    // once its whole day is past, and the rows before then must go on time too.
    let mut keep: BTreeMap<Uuid, u32> = BTreeMap::new();
    for r in retention {
        // Two entries for one application: the longer wins.
        let days = keep.entry(r.application_id).or_default();
        *days = (*days).max(r.days);
    }
    for (app, days) in &keep {
        done.rows_deleted +=
            delete_before(db, *app, now - TimeDelta::days(i64::from(*days))).await?;
    }
    // Applications without the integration (deleted, or never had one): their
    // rows go. Only rows received before `now`, so an integration created after
    // the caller read the list loses nothing it wrote meanwhile.
    let apps = db
        .fetch_all(Stmt::new("SELECT id FROM applications"))
        .await?;
    for r in &apps {
        let app: Uuid = r.get("id")?;
        if !keep.contains_key(&app) {
            done.rows_deleted += delete_before(db, app, now).await?;
        }
    }
    Ok(done)
}

/// Deletes an application's rows older than `cutoff`, in chunks, each its own
/// statement. The chunk is picked through the (application_id, time) index and
/// deleted by row address: `ctid` on Postgres (the same address in another
/// partition can match too, but only if that row is also due, so all it does is
/// delete more at once), the primary key on SQLite (no rowid there).
async fn delete_before(db: &Store, app: Uuid, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
    let sql = match db.pools() {
        Pools::Postgres(_) => format!(
            "DELETE FROM measurements WHERE application_id = $1 AND time < $2 \
             AND ctid = ANY(ARRAY(SELECT ctid FROM measurements \
               WHERE application_id = $1 AND time < $2 LIMIT {RETENTION_CHUNK}))"
        ),
        Pools::Sqlite { .. } => format!(
            "DELETE FROM measurements WHERE (dev_eui, time, name, event_id) IN \
             (SELECT dev_eui, time, name, event_id FROM measurements \
              WHERE application_id = $1 AND time < $2 LIMIT {RETENTION_CHUNK})"
        ),
    };
    let mut total = 0;
    loop {
        let n = db
            .execute(Stmt::new(sql.as_str()).bind(app).bind(Ts(cutoff)))
            .await?;
        total += n;
        if n < u64::from(RETENTION_CHUNK) {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(partition_name(day), "measurements_p20261207");
        assert_eq!(
            partitions::day_of(PARTITION_PREFIX, "measurements_p20261207"),
            Some(day)
        );
        for other in [
            "measurements_p2026120",
            "measurements_p20261307",
            "measurements_p2026120x",
            "measurements_old",
            "events",
        ] {
            assert_eq!(partitions::day_of(PARTITION_PREFIX, other), None, "{other}");
        }
    }
}
