//! Link health of devices: the newest uplink's radio figures and the last
//! DevStatusAns on the `devices` row, and RSSI/SNR per device and hour in
//! `device_link_hours` (the console's charts). Written by `apply`; a device
//! deleted meanwhile is skipped, like its events.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use lorikeet_lorawan::Eui64;

use crate::sql::Ts;
use crate::stmt::Stmt;
use crate::store::Tx;
use crate::{DeviceLink, LinkHour, LinkSample, Store, StoreError};

/// Rows per statement (at most 9 parameters each).
const ROWS: usize = 500;

fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// One hour's sums of a device.
#[derive(Default)]
struct Sums {
    uplinks: i64,
    rssi_sum: i64,
    rssi_min: i32,
    rssi_max: i32,
    snr_sum: f64,
    snr_n: i64,
}

/// Writes the batch's samples: the newest per device onto its row, and every one
/// into its hour. `seen` holds the batch's last-seen times; a device whose newest
/// sample is of that uplink gets its `last_seen_at` in the same row update, and
/// leaves `seen` (one row rewrite per device and batch instead of two).
pub(crate) async fn write(
    tx: &mut Tx,
    samples: &[&LinkSample],
    seen: &mut BTreeMap<Eui64, DateTime<Utc>>,
) -> Result<(), StoreError> {
    if samples.is_empty() {
        return Ok(());
    }
    let mut last: BTreeMap<Eui64, &LinkSample> = BTreeMap::new();
    let mut hours: BTreeMap<(Eui64, DateTime<Utc>), Sums> = BTreeMap::new();
    for s in samples {
        last.insert(s.dev_eui, s);
        let h = hours.entry((s.dev_eui, hour_of(s.at))).or_insert(Sums {
            rssi_min: i32::MAX,
            rssi_max: i32::MIN,
            ..Sums::default()
        });
        h.uplinks += 1;
        h.rssi_sum += i64::from(s.rssi_dbm);
        h.rssi_min = h.rssi_min.min(s.rssi_dbm);
        h.rssi_max = h.rssi_max.max(s.rssi_dbm);
        if let Some(snr) = s.snr_db.filter(|v| v.is_finite()) {
            h.snr_sum += f64::from(snr);
            h.snr_n += 1;
        }
    }
    // SQLite names the columns of a VALUES list column1, column2, …; Postgres takes
    // names after the alias. Both give a VALUES list joined on the key: one
    // statement per chunk, not one round trip per device.
    let sqlite = matches!(tx, Tx::Sqlite(_));
    let col = |name: &'static str, n: usize| -> String {
        if sqlite {
            format!("v.column{n}")
        } else {
            format!("v.{name}")
        }
    };
    let (least, greatest) = if sqlite {
        ("MIN", "MAX")
    } else {
        ("LEAST", "GREATEST")
    };
    let ts_type = if sqlite { "INTEGER" } else { "TIMESTAMPTZ" };
    // The row's last-seen time: the seen time of the batch when this sample is of
    // that uplink, else the time it has.
    let rows: Vec<(&LinkSample, Option<DateTime<Utc>>)> = last
        .into_values()
        .map(|l| {
            let at = seen.get(&l.dev_eui).copied().filter(|t| *t == l.at);
            if at.is_some() {
                seen.remove(&l.dev_eui);
            }
            (l, at)
        })
        .collect();
    for chunk in rows.chunks(ROWS) {
        let mut sql = format!(
            "UPDATE devices SET last_f_cnt_up = {}, last_dr = {}, last_rssi_dbm = {}, \
             last_snr_db = {}, last_seen_at = COALESCE({}, last_seen_at) FROM (VALUES ",
            col("f_cnt", 2),
            col("dr", 3),
            col("rssi", 4),
            col("snr", 5),
            col("seen", 6)
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            let n = i * 6;
            sql.push_str(&format!(
                "(${}, CAST(${} AS BIGINT), CAST(${} AS SMALLINT), CAST(${} AS INTEGER), CAST(${} AS REAL), CAST(${} AS {ts_type}))",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6
            ));
        }
        sql.push_str(if sqlite {
            ") AS v"
        } else {
            ") AS v(dev_eui, f_cnt, dr, rssi, snr, seen)"
        });
        sql.push_str(&format!(" WHERE devices.dev_eui = {}", col("dev_eui", 1)));
        let mut s = Stmt::new(sql);
        for (l, at) in chunk {
            s = s
                .bind(l.dev_eui.0.to_vec())
                .bind(i64::from(l.f_cnt))
                .bind(i16::from(l.dr))
                .bind(l.rssi_dbm)
                .bind(l.snr_db.filter(|v| v.is_finite()))
                .bind(at.map(Ts));
        }
        tx.execute(s).await?;
    }
    let hours: Vec<_> = hours.into_iter().collect();
    for chunk in hours.chunks(ROWS) {
        let mut sql = String::from(
            "INSERT INTO device_link_hours \
             (dev_eui, hour, uplinks, rssi_sum, rssi_min, rssi_max, snr_sum, snr_n) \
             SELECT * FROM (VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            let n = i * 8;
            sql.push_str(&format!(
                "(${}, ${}, CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS INTEGER), \
                 CAST(${} AS INTEGER), CAST(${} AS DOUBLE PRECISION), CAST(${} AS BIGINT))",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6,
                n + 7,
                n + 8
            ));
        }
        // The WHERE skips devices deleted meanwhile (and lets SQLite parse the
        // upsert after a SELECT).
        sql.push_str(if sqlite {
            ") AS v"
        } else {
            ") AS v(dev_eui, hour, uplinks, rssi_sum, rssi_min, rssi_max, snr_sum, snr_n)"
        });
        sql.push_str(&format!(
            " WHERE {} IN (SELECT dev_eui FROM devices) \
             ON CONFLICT (dev_eui, hour) DO UPDATE SET \
             uplinks = device_link_hours.uplinks + excluded.uplinks, \
             rssi_sum = device_link_hours.rssi_sum + excluded.rssi_sum, \
             rssi_min = {least}(device_link_hours.rssi_min, excluded.rssi_min), \
             rssi_max = {greatest}(device_link_hours.rssi_max, excluded.rssi_max), \
             snr_sum = device_link_hours.snr_sum + excluded.snr_sum, \
             snr_n = device_link_hours.snr_n + excluded.snr_n",
            col("dev_eui", 1)
        ));
        let mut s = Stmt::new(sql);
        for ((dev, hour), h) in chunk {
            s = s
                .bind(dev.0.to_vec())
                .bind(Ts(*hour))
                .bind(h.uplinks)
                .bind(h.rssi_sum)
                .bind(h.rssi_min)
                .bind(h.rssi_max)
                .bind(h.snr_sum)
                .bind(h.snr_n);
        }
        tx.execute(s).await?;
    }
    Ok(())
}

/// A DevStatusAns: battery and margin onto the device's row.
pub(crate) async fn status(
    tx: &mut Tx,
    dev_eui: Eui64,
    at: DateTime<Utc>,
    battery_percent: Option<f32>,
    external_power: bool,
    margin_db: i8,
) -> Result<(), StoreError> {
    tx.execute(
        Stmt::new(
            "UPDATE devices SET battery_percent = $2, external_power = $3, margin_db = $4, \
             status_at = $5 WHERE dev_eui = $1",
        )
        .bind(dev_eui.0.to_vec())
        .bind(battery_percent.filter(|v| v.is_finite()))
        .bind(external_power)
        .bind(i16::from(margin_db))
        .bind(Ts(at)),
    )
    .await?;
    Ok(())
}

/// The device's link figures and its hours in `[from, to)`, oldest first; `None`
/// when there is no such device.
pub(crate) async fn read(
    db: &Store,
    dev_eui: Eui64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Option<DeviceLink>, StoreError> {
    let Some(r) = db
        .fetch_optional(
            Stmt::new(
                "SELECT last_seen_at, last_f_cnt_up, last_dr, last_rssi_dbm, last_snr_db, \
                 battery_percent, external_power, margin_db, status_at \
                 FROM devices WHERE dev_eui = $1",
            )
            .bind(dev_eui.0.to_vec()),
        )
        .await?
    else {
        return Ok(None);
    };
    let f_cnt: Option<i64> = r.get("last_f_cnt_up")?;
    let dr: Option<i16> = r.get("last_dr")?;
    let margin: Option<i16> = r.get("margin_db")?;
    let rows = db
        .fetch_all(
            Stmt::new(
                "SELECT hour, uplinks, rssi_sum, rssi_min, rssi_max, snr_sum, snr_n \
                 FROM device_link_hours WHERE dev_eui = $1 AND hour >= $2 AND hour < $3 \
                 ORDER BY hour",
            )
            .bind(dev_eui.0.to_vec())
            .bind(Ts(hour_of(from)))
            .bind(Ts(to)),
        )
        .await?;
    let mut history = Vec::with_capacity(rows.len());
    for h in &rows {
        let uplinks: i64 = h.get("uplinks")?;
        let rssi_sum: i64 = h.get("rssi_sum")?;
        let snr_sum: f64 = h.get("snr_sum")?;
        let snr_n: i64 = h.get("snr_n")?;
        history.push(LinkHour {
            hour: h.ts("hour")?,
            uplinks: u64::try_from(uplinks).unwrap_or(0),
            rssi_avg: if uplinks > 0 {
                rssi_sum as f64 / uplinks as f64
            } else {
                0.0
            },
            rssi_min: h.get("rssi_min")?,
            rssi_max: h.get("rssi_max")?,
            snr_avg: (snr_n > 0).then(|| snr_sum / snr_n as f64),
        });
    }
    Ok(Some(DeviceLink {
        last_seen_at: r.opt_ts("last_seen_at")?,
        f_cnt_up: f_cnt.and_then(|v| u32::try_from(v).ok()),
        dr: dr.and_then(|v| u8::try_from(v).ok()),
        rssi_dbm: r.get("last_rssi_dbm")?,
        snr_db: r.get("last_snr_db")?,
        battery_percent: r.get("battery_percent")?,
        external_power: r.get("external_power")?,
        margin_db: margin.and_then(|v| i8::try_from(v).ok()),
        status_at: r.opt_ts("status_at")?,
        history,
    }))
}

/// Retention: hours before `cutoff`.
pub(crate) async fn delete_older_than(
    db: &Store,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(db
        .execute(Stmt::new("DELETE FROM device_link_hours WHERE hour < $1").bind(Ts(cutoff)))
        .await?)
}
