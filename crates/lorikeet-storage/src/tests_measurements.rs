//! Contract tests of the measurements table (the `postgres` integration), on
//! SQLite and Postgres: idempotent writes, downsampling checked against figures
//! computed here from the raw values, retention, and on Postgres the day
//! partitions as the catalog shows them.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use lorikeet_lorawan::Eui64;
use uuid::Uuid;

use crate::storage_test;
use crate::testing::TestDb;
use crate::tests::{app, device, profile, tenant};
use crate::*;

/// "Now" of these tests: a fixed noon, so the day partitions are known.
fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap()
}

fn batch(
    app: Uuid,
    dev: Eui64,
    time: DateTime<Utc>,
    id: i64,
    f: &[(&str, f64)],
) -> MeasurementBatch {
    MeasurementBatch {
        application_id: app,
        dev_eui: dev,
        time,
        event_id: id,
        fields: f.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect(),
    }
}

/// A tenant, an application and `n` devices of it; (application, devices).
async fn setup(s: &dyn Storage, name: &str, first: u64, n: u64) -> (Application, Vec<Eui64>) {
    let t = tenant(name);
    s.create_tenant(&t).await.unwrap();
    let a = app(t.id, name);
    s.create_application(&a).await.unwrap();
    let p = profile(t.id);
    s.create_device_profile(&p).await.unwrap();
    let mut devs = Vec::new();
    for i in first..first + n {
        let d = device(i, &a, &p);
        s.create_device(&d).await.unwrap();
        devs.push(d.dev_eui);
    }
    (a, devs)
}

/// Every value of a device in `[from, to)` as (field, count), in one bucket.
async fn counts(
    s: &dyn Storage,
    dev: Eui64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> BTreeMap<String, u64> {
    s.measurement_series(&MeasurementQuery {
        dev_eui: dev,
        from,
        to,
        buckets: 1,
        fields: Vec::new(),
    })
    .await
    .unwrap()
    .into_iter()
    .map(|f| (f.field, f.points.iter().map(|p| p.count).sum()))
    .collect()
}

/// Postgres: the partitions of `measurements` in the catalog, sorted.
async fn pg_partitions(db: &TestDb) -> Vec<String> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let mut names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'measurements'::regclass",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    names.sort();
    names
}

storage_test!(measurement_writes_are_idempotent, |db: TestDb| async move {
    let s = &*db.storage;
    let (a, devs) = setup(s, "idem", 1, 2).await;
    let t = noon();
    let b = batch(
        a.id,
        devs[0],
        t,
        7,
        &[("temperature", 21.5), ("humidity", 40.0)],
    );
    assert_eq!(s.write_measurements(&b).await.unwrap(), 2);
    // A retried delivery of the same event writes nothing.
    assert_eq!(s.write_measurements(&b).await.unwrap(), 0);
    // Another event at the same instant is another row.
    let again = batch(a.id, devs[0], t, 8, &[("temperature", 22.5)]);
    assert_eq!(s.write_measurements(&again).await.unwrap(), 1);
    assert_eq!(
        s.write_measurements(&batch(a.id, devs[0], t, 9, &[]))
            .await
            .unwrap(),
        0,
        "nothing to write"
    );
    let day = (t - Duration::hours(1), t + Duration::hours(1));
    assert_eq!(
        counts(s, devs[0], day.0, day.1).await,
        BTreeMap::from([("humidity".into(), 1), ("temperature".into(), 2)])
    );
    // Many fields in one uplink: more than one statement's worth, all or nothing.
    let many: Vec<(String, f64)> = (0..1_200)
        .map(|i| (format!("f{i:04}"), f64::from(i)))
        .collect();
    let big = MeasurementBatch {
        fields: many,
        ..batch(a.id, devs[1], t, 10, &[])
    };
    assert_eq!(s.write_measurements(&big).await.unwrap(), 1_200);
    assert_eq!(s.write_measurements(&big).await.unwrap(), 0);
    assert_eq!(counts(s, devs[1], day.0, day.1).await.len(), 1_200);

    // A device deleted before its uplink was delivered: nothing written, no error;
    // a deleted device's rows go with it.
    assert!(s.delete_device(devs[1]).await.unwrap());
    let late = batch(a.id, devs[1], t, 11, &[("temperature", 1.0)]);
    assert_eq!(s.write_measurements(&late).await.unwrap(), 0);
    assert!(counts(s, devs[1], day.0, day.1).await.is_empty());
    assert_eq!(counts(s, devs[0], day.0, day.1).await.len(), 2);
});

storage_test!(
    measurements_downsample_in_the_database,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (a, devs) = setup(s, "down", 20, 2).await;
        let dev = devs[0];
        let from = noon() - Duration::hours(10);
        let to = noon();
        // Values every 7 minutes from 30 minutes before `from` to 30 after `to`, on
        // two fields; plus one at exactly `from` (in) and exactly `to` (out).
        let mut raw: Vec<(DateTime<Utc>, &str, f64)> = Vec::new();
        let mut id = 0;
        let mut t = from - Duration::minutes(30);
        while t < to + Duration::minutes(30) {
            id += 1;
            let temp = 15.0 + f64::from(id % 13) * 0.5;
            let hum = 40.0 + f64::from(id % 7);
            raw.push((t, "temperature", temp));
            raw.push((t, "humidity", hum));
            s.write_measurements(&batch(
                a.id,
                dev,
                t,
                i64::from(id),
                &[("temperature", temp), ("humidity", hum)],
            ))
            .await
            .unwrap();
            t += Duration::minutes(7);
        }
        for (at, v) in [(from, 99.0), (to, -99.0)] {
            id += 1;
            raw.push((at, "temperature", v));
            s.write_measurements(&batch(a.id, dev, at, i64::from(id), &[("temperature", v)]))
                .await
                .unwrap();
        }
        // Another device's values never show.
        s.write_measurements(&batch(a.id, devs[1], from, 1, &[("temperature", 1e6)]))
            .await
            .unwrap();

        // Ten one-hour buckets, computed here from the raw values.
        let q = MeasurementQuery {
            dev_eui: dev,
            from,
            to,
            buckets: 10,
            fields: Vec::new(),
        };
        let got = s.measurement_series(&q).await.unwrap();
        let mut expected: BTreeMap<&str, BTreeMap<i64, Vec<f64>>> = BTreeMap::new();
        for (at, f, v) in &raw {
            if *at >= from && *at < to {
                let hour = (*at - from).num_hours();
                expected
                    .entry(f)
                    .or_default()
                    .entry(hour)
                    .or_default()
                    .push(*v);
            }
        }
        assert_eq!(
            got.iter().map(|s| s.field.as_str()).collect::<Vec<_>>(),
            ["humidity", "temperature"]
        );
        for series in &got {
            let want = &expected[series.field.as_str()];
            assert_eq!(series.points.len(), want.len(), "{}", series.field);
            for (p, (hour, values)) in series.points.iter().zip(want) {
                assert_eq!(p.start, from + Duration::hours(*hour), "{}", series.field);
                assert_eq!(p.count, values.len() as u64);
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                assert!(
                    (p.avg - mean).abs() < 1e-9,
                    "{} {hour}: {} vs {mean}",
                    series.field,
                    p.avg
                );
                assert_eq!(p.min, values.iter().copied().fold(f64::INFINITY, f64::min));
                assert_eq!(
                    p.max,
                    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                );
            }
        }
        // The value at exactly `from` is in the first bucket, the one at `to` nowhere.
        let temp = got.iter().find(|s| s.field == "temperature").unwrap();
        assert_eq!(temp.points[0].max, 99.0);
        assert!(temp.points.iter().all(|p| p.min > -99.0));

        // One field; buckets that do not divide the range evenly lose no value, and
        // empty buckets are left out.
        let odd = s
            .measurement_series(&MeasurementQuery {
                buckets: 7,
                fields: vec!["humidity".into()],
                ..q.clone()
            })
            .await
            .unwrap();
        assert_eq!(odd.len(), 1);
        assert_eq!(
            odd[0].points.iter().map(|p| p.count).sum::<u64>(),
            expected["humidity"]
                .values()
                .map(|v| v.len() as u64)
                .sum::<u64>()
        );
        // Bucket i starts at from + ⌊i × span / n⌋ µs.
        let span_us = (to - from).num_microseconds().unwrap();
        assert_eq!(odd[0].points.len(), 7);
        for (i, p) in (0i64..).zip(&odd[0].points) {
            assert_eq!(
                p.start,
                from + Duration::microseconds(i * span_us / 7),
                "bucket {i}"
            );
        }
        let sparse = s
            .measurement_series(&MeasurementQuery {
                from: from - Duration::hours(90),
                buckets: 100,
                fields: vec!["temperature".into(), "nothing".into()],
                ..q.clone()
            })
            .await
            .unwrap();
        assert_eq!(sparse.len(), 1, "fields without values are left out");
        assert_eq!(
            sparse[0].points.len(),
            11,
            "one per hour with values, of 100"
        );
        // A range without values.
        assert!(s
            .measurement_series(&MeasurementQuery {
                from: to + Duration::hours(2),
                to: to + Duration::hours(3),
                ..q.clone()
            })
            .await
            .unwrap()
            .is_empty());
    }
);

storage_test!(
    measurement_retention_and_partitions,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (long, ld) = setup(s, "long", 40, 1).await;
        let (short, sd) = setup(s, "short", 41, 1).await;
        let (none, nd) = setup(s, "none", 42, 1).await;
        let now = noon();
        let ages = [0, 1, 5, 20];
        for (app, dev) in [(&long, ld[0]), (&short, sd[0]), (&none, nd[0])] {
            for (i, days) in ages.iter().enumerate() {
                // Old days have no partition yet on Postgres: the write makes one.
                let at = now - Duration::days(*days) - Duration::hours(1);
                let b = batch(app.id, dev, at, i as i64, &[("v", 1.0)]);
                assert_eq!(
                    s.write_measurements(&b).await.unwrap(),
                    1,
                    "{days} days old"
                );
            }
        }
        let pg = s.backend() == Backend::Postgres;
        if pg {
            assert_eq!(
                pg_partitions(&db).await,
                [
                    "measurements_p20261117",
                    "measurements_p20261202",
                    "measurements_p20261206",
                    "measurements_p20261207"
                ],
                "made on demand"
            );
        }
        let retention = [
            MeasurementRetention {
                application_id: long.id,
                days: 10,
            },
            MeasurementRetention {
                application_id: short.id,
                days: 3,
            },
        ];
        let done = s.measurement_upkeep(now, &retention).await.unwrap();
        let all = (now - Duration::days(30), now + Duration::hours(1));
        let left = |dev| counts(s, dev, all.0, all.1);
        assert_eq!(
            left(ld[0]).await["v"],
            3,
            "10 days: 0, 1 and 5 days old stay"
        );
        assert_eq!(left(sd[0]).await["v"], 2, "3 days: 0 and 1 day old stay");
        assert!(
            left(nd[0]).await.is_empty(),
            "no integration: nothing stays"
        );
        if pg {
            assert_eq!(
                done.partitions_created,
                [
                    "measurements_p20261208",
                    "measurements_p20261209",
                    "measurements_p20261210"
                ]
            );
            assert_eq!(done.partitions_dropped, ["measurements_p20261117"]);
            // The 20-day-old rows went with their partition, the others by DELETE.
            assert_eq!(done.rows_deleted, 1 + 3);
            assert_eq!(
                pg_partitions(&db).await,
                [
                    "measurements_p20261202",
                    "measurements_p20261206",
                    "measurements_p20261207",
                    "measurements_p20261208",
                    "measurements_p20261209",
                    "measurements_p20261210"
                ]
            );
        } else {
            assert!(done.partitions_created.is_empty() && done.partitions_dropped.is_empty());
            assert_eq!(done.rows_deleted, 1 + 2 + 4);
        }
        // Again: nothing left to do.
        let again = s.measurement_upkeep(now, &retention).await.unwrap();
        assert_eq!(again, MeasurementUpkeep::default());

        // A day later with a shorter longest retention: the 5-day-old partition goes
        // when its whole day is past 4 days, not before.
        let later = now + Duration::days(1);
        let shorter = [MeasurementRetention {
            application_id: long.id,
            days: 4,
        }];
        let done = s.measurement_upkeep(later, &shorter).await.unwrap();
        assert_eq!(left(ld[0]).await["v"], 2);
        assert_eq!(left(sd[0]).await.len(), 0, "its integration is gone");
        if pg {
            assert_eq!(done.partitions_created, ["measurements_p20261211"]);
            assert_eq!(done.partitions_dropped, ["measurements_p20261202"]);
        }
    }
);

storage_test!(
    a_rewritten_uplink_after_upkeep_is_not_duplicated,
    |db: TestDb| async move {
        // A delivery retried across a partition change still writes once.
        let s = &*db.storage;
        let (a, devs) = setup(s, "retry", 50, 1).await;
        let t = noon() - Duration::days(2);
        let b = batch(a.id, devs[0], t, 1, &[("x", 1.0)]);
        assert_eq!(s.write_measurements(&b).await.unwrap(), 1);
        s.measurement_upkeep(
            noon(),
            &[MeasurementRetention {
                application_id: a.id,
                days: 30,
            }],
        )
        .await
        .unwrap();
        assert_eq!(s.write_measurements(&b).await.unwrap(), 0);
        assert_eq!(
            counts(s, devs[0], t - Duration::hours(1), t + Duration::hours(1)).await["x"],
            1
        );
    }
);
