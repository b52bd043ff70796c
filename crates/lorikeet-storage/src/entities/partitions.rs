//! Postgres day partitions, shared by `events` and `measurements`: a table
//! partitioned by range on a timestamp gets one partition per UTC day, named
//! `<prefix>YYYYMMDD`, created ahead or on demand and dropped whole.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};

use crate::stmt::Stmt;
use crate::{Store, StoreError};

/// Midnight UTC starting `day`.
pub(crate) fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// The day a partition named `<prefix>YYYYMMDD` holds; `None` for other tables
/// (an operator's own).
pub(crate) fn day_of(prefix: &str, name: &str) -> Option<NaiveDate> {
    let digits = name.strip_prefix(prefix)?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(digits, "%Y%m%d").ok()
}

/// Creates `parent`'s partition `name` for `day` unless it exists (another writer
/// may have just made it: a failure is reported only if it is still missing).
pub(crate) async fn create(
    db: &Store,
    parent: &'static str,
    name: &str,
    day: NaiveDate,
) -> Result<(), StoreError> {
    let next = day.succ_opt().ok_or_else(|| StoreError::Corrupt {
        table: parent,
        column: "time",
        detail: format!("no day follows {day}"),
    })?;
    // DDL takes no parameters; the bounds are dates this code formatted.
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {parent} \
         FOR VALUES FROM ('{}') TO ('{}')",
        start_of(day).format("%Y-%m-%d %H:%M:%S+00"),
        start_of(next).format("%Y-%m-%d %H:%M:%S+00"),
    );
    if let Err(e) = db.execute(Stmt::new(ddl)).await {
        if !list(db, parent).await?.contains(name) {
            return Err(e.into());
        }
    }
    Ok(())
}

/// Drops `parent`'s partition `name` without making writers wait: detached
/// CONCURRENTLY first (a lock that inserts into the parent share), then dropped
/// as a table of its own. A plain DROP would queue for an exclusive lock on the
/// parent behind any long query, and every insert would queue behind it. A detach
/// interrupted before is finished first.
pub(crate) async fn drop(db: &Store, parent: &str, name: &str) -> Result<(), StoreError> {
    let detach = format!("ALTER TABLE {parent} DETACH PARTITION {name} CONCURRENTLY");
    if let Err(e) = db.execute(Stmt::new(detach)).await {
        let pending =
            matches!(&e, sqlx::Error::Database(d) if d.message().contains("pending detach"));
        let detached = !list(db, parent).await?.contains(name);
        if pending {
            db.execute(Stmt::new(format!(
                "ALTER TABLE {parent} DETACH PARTITION {name} FINALIZE"
            )))
            .await?;
        } else if !detached {
            return Err(e.into());
        }
    }
    db.execute(Stmt::new(format!("DROP TABLE IF EXISTS {name}")))
        .await?;
    Ok(())
}

/// What [`maintain`] did: the partitions created and dropped, with their days.
#[derive(Debug, Default)]
pub(crate) struct Maintained {
    pub(crate) created: Vec<(NaiveDate, String)>,
    pub(crate) dropped: Vec<(NaiveDate, String)>,
}

/// Creates `parent`'s partitions (named `<prefix>YYYYMMDD`) for `now`'s day and the
/// `ahead` days after it where missing, and drops ours whose whole day is before
/// `cutoff`, oldest first.
pub(crate) async fn maintain(
    db: &Store,
    parent: &'static str,
    prefix: &str,
    now: DateTime<Utc>,
    ahead: i64,
    cutoff: DateTime<Utc>,
) -> Result<Maintained, StoreError> {
    let mut done = Maintained::default();
    let existing = list(db, parent).await?;
    let today = now.date_naive();
    for n in 0..=ahead {
        let Some(day) = today.checked_add_signed(chrono::TimeDelta::days(n)) else {
            continue;
        };
        let name = format!("{prefix}{}", day.format("%Y%m%d"));
        if !existing.contains(&name) {
            create(db, parent, &name, day).await?;
            done.created.push((day, name));
        }
    }
    let mut old: Vec<(NaiveDate, String)> = existing
        .into_iter()
        .filter_map(|name| day_of(prefix, &name).map(|d| (d, name)))
        .filter(|(d, _)| d.succ_opt().is_some_and(|next| start_of(next) <= cutoff))
        .collect();
    old.sort();
    for (day, name) in old {
        drop(db, parent, &name).await?;
        done.dropped.push((day, name));
    }
    Ok(done)
}

/// The names of `parent`'s partitions.
pub(crate) async fn list(db: &Store, parent: &str) -> Result<HashSet<String>, StoreError> {
    let rows = db
        .fetch_all(
            Stmt::new(
                "SELECT c.relname::text AS name FROM pg_inherits i \
                 JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = to_regclass($1)",
            )
            .bind(parent),
        )
        .await?;
    rows.iter().map(|r| Ok(r.get::<String>("name")?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_days_are_read_from_our_names_only() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(day_of("events_p", "events_p20261207"), Some(day));
        for other in [
            "events_p2026120",
            "events_p2026120x",
            "events_legacy",
            "events_p20261307",
        ] {
            assert_eq!(day_of("events_p", other), None, "{other}");
        }
        assert_eq!(start_of(day).to_rfc3339(), "2026-12-07T00:00:00+00:00");
    }
}
