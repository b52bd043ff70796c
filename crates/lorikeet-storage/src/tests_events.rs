//! Compact events on both backends: the text read back is the text written, byte
//! for byte; paging; and rows of the previous format moved online.

use chrono::{Duration, TimeZone, Utc};
use uuid::Uuid;

use crate::storage_test;
use crate::testing::{test_keyring, OldDb, TestDb};
use crate::tests::{provision, t0};
use crate::tests_keys::{lit, uuid_lit, write_old_rows};
use crate::*;

/// An uplink as the application server writes it (one gateway), with `n` in the
/// places that change per uplink.
fn uplink(dev: Eui64, app: Uuid, n: u32, gateways: u32) -> String {
    let time = (t0() + Duration::seconds(i64::from(n)))
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let rx: Vec<String> = (0..gateways)
        .map(|g| {
            format!(
                r#"{{"gatewayId":"70b3d57e5a00000{g}","uplinkId":{},"gwTime":"{time}","nsTime":"{time}","rssi":-{},"snr":{}.5,"channel":{g},"rfChain":0,"board":0,"antenna":0,"location":{{"latitude":52.1,"longitude":4.3,"altitude":12.5}},"context":"OgVr/g==","metadata":{{"region_config_id":"eu868"}},"crcStatus":"CRC_OK"}}"#,
                n * 7 + g,
                60 + g + n % 40,
                n % 10
            )
        })
        .collect();
    format!(
        r#"{{"deduplicationId":"{}","time":"{time}","deviceInfo":{{"tenantId":"00000000-0000-0000-0000-000000000001","tenantName":"default","applicationId":"{app}","applicationName":"a \"quoted\" app","deviceProfileId":"9493565d-66cc-491f-93e9-2db1181d7664","deviceProfileName":"p","deviceName":"dev-{dev}","devEui":"{dev}","deviceClassEnabled":"CLASS_A","tags":{{"floor":"3"}}}},"devAddr":"016b0cfb","adr":true,"dr":5,"fCnt":{n},"fPort":10,"confirmed":false,"data":"AWcAygJoYg==","object":{{"temperature":{}.25,"label":"ok"}},"rxInfo":[{}],"txInfo":{{"frequency":868100000,"modulation":{{"lora":{{"bandwidth":125000,"spreadingFactor":7,"codeRate":"CR_4_5"}}}}}},"regionConfigId":"eu868"}}"#,
        Uuid::from_u128(u128::from(n) << 64 | 0xabcdef),
        20 + n % 5,
        rx.join(",")
    )
}

fn new_event(dev: Eui64, app: Uuid, kind: EventKind, payload: String, n: u32) -> NewEvent {
    NewEvent {
        dev_eui: dev,
        application_id: app,
        kind,
        payload: payload.into(),
        created_at: t0() + Duration::seconds(i64::from(n)),
    }
}

storage_test!(
    events_read_back_as_the_exact_text_written,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (a, _, devices) = provision(s, 2).await;
        let (d0, d1) = (devices[0].dev_eui, devices[1].dev_eui);
        let mut written = Vec::new();
        for n in 0..30u32 {
            let dev = if n % 3 == 0 { d1 } else { d0 };
            let json = match n {
                // Not compact JSON, and an odd kind of event: kept as they are.
                7 => "{ \"spaced\": true }".to_string(),
                8 => r#"{"deviceInfo":{"devEui":"x"},"message":"log \u00e9 line"}"#.to_string(),
                _ => uplink(dev, a.id, n, 1 + n % 3),
            };
            let kind = if n == 8 {
                EventKind::Log
            } else {
                EventKind::Up
            };
            // Every 3 hours: four days, so reads cross the day partitions.
            let e = NewEvent {
                created_at: t0() + Duration::hours(3 * i64::from(n)),
                ..new_event(dev, a.id, kind, json, n)
            };
            written.push((dev, e));
        }
        // Several batches: the dictionary grows in the first, is reused after.
        for chunk in written.chunks(7) {
            let ops: Vec<WriteOp> = chunk
                .iter()
                .map(|(_, e)| WriteOp::InsertEvent(e.clone()))
                .collect();
            s.apply(&ops).await.unwrap();
        }
        let delivered = s.events_after(a.id, 0, 1000).await.unwrap();
        assert_eq!(delivered.len(), 30);
        for (p, (dev, e)) in delivered.iter().zip(&written) {
            assert_eq!(p.body, *e.payload, "event {}", p.id);
            assert_eq!(
                (p.dev_eui, p.kind, p.created_at),
                (*dev, e.kind, e.created_at)
            );
        }
        // A device's history, newest first, in pages.
        let mine: Vec<&NewEvent> = written
            .iter()
            .filter(|(d, _)| *d == d0)
            .map(|(_, e)| e)
            .rev()
            .collect();
        let mut before = None;
        let mut seen = Vec::new();
        loop {
            let page = s.list_events(d0, 4, before).await.unwrap();
            if page.is_empty() {
                break;
            }
            before = page.last().map(|e| e.id);
            seen.extend(page);
        }
        assert_eq!(seen.len(), mine.len());
        for (got, want) in seen.iter().zip(&mine) {
            assert_eq!(got.json, *want.payload);
            assert_eq!(got.kind, want.kind);
        }
        assert!(seen.windows(2).all(|w| w[0].id > w[1].id));
        // A second store (another process) has an empty cache: it loads the
        // dictionary entries it needs.
        let other = db.reopen().await;
        let again = other.list_events(d0, 100, None).await.unwrap();
        assert_eq!(
            again.iter().map(|e| &e.json).collect::<Vec<_>>(),
            seen.iter().map(|e| &e.json).collect::<Vec<_>>()
        );
        other.close().await;
    }
);

storage_test!(
    an_uplink_event_takes_little_space,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (a, _, devices) = provision(s, 1).await;
        let d = devices[0].dev_eui;
        let json = uplink(d, a.id, 5, 1);
        s.apply(&[WriteOp::InsertEvent(new_event(
            d,
            a.id,
            EventKind::Up,
            json.clone(),
            5,
        ))])
        .await
        .unwrap();
        // The day's table on SQLite, the partitioned table on Postgres.
        let table = if s.backend() == Backend::Sqlite {
            format!("events_d{}", t0().format("%Y%m%d"))
        } else {
            "events".to_string()
        };
        let body = db
            .raw_bytes(&format!("SELECT body FROM {table}"))
            .await
            .unwrap();
        let body = body[0].as_ref().unwrap();
        assert!(
            body.len() * 6 < json.len(),
            "{} bytes for {} of JSON",
            body.len(),
            json.len()
        );
        assert_eq!(s.list_events(d, 1, None).await.unwrap()[0].json, json);
    }
);

const COMPACT_EVENTS: i64 = 20250101000015;

/// A database of the version before compact events, upgraded while it holds
/// events: they read back unchanged before, during and after they are moved, an
/// outbox row of one still delivers it, new ids continue above the old ones, and
/// the old table goes once empty.
async fn old_events_move_online(db: OldDb) {
    let url = db.url().to_string();
    let sqlite = url.starts_with("sqlite:");
    let (app, dev) = write_old_rows(&db).await;
    let base = Utc.with_ymd_and_hms(2025, 2, 27, 23, 59, 58).unwrap();
    let mut texts = Vec::new();
    for n in 0..5u32 {
        let text = if n == 2 {
            "{\"old\": \"spaced\"}".to_string()
        } else {
            uplink(dev, app, n, 1)
        };
        // Two days: the move creates the days' partitions on Postgres.
        let at = base + Duration::seconds(i64::from(n));
        let ts = if sqlite {
            at.timestamp_micros().to_string()
        } else {
            format!("'{}'::timestamptz", at.to_rfc3339())
        };
        db.execute(&format!(
            "INSERT INTO events (dev_eui, application_id, kind, payload, created_at) \
             VALUES ({}, {}, 'up', '{}', {ts})",
            lit(&url, &dev.0),
            uuid_lit(&url, app),
            text.replace('\'', "''")
        ))
        .await
        .unwrap();
        texts.push(text);
    }
    let now = if sqlite { "1740830400000000" } else { "now()" };
    for sql in [
        format!(
            "INSERT INTO outbox (integration_id, event_id, dev_eui, attempts, next_attempt_at, \
             created_at) SELECT id, 2, {}, 1, {now}, {now} FROM integrations",
            lit(&url, &dev.0)
        ),
        format!(
            "INSERT INTO outbox_chains (integration_id, dev_eui, next_attempt_at) \
             SELECT id, {}, {now} FROM integrations",
            lit(&url, &dev.0)
        ),
    ] {
        db.execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    let s = db.upgrade(test_keyring()).await.unwrap();
    let texts_newest_first: Vec<String> = texts.iter().rev().cloned().collect();
    let read = |l: Vec<Event>| l.into_iter().map(|e| e.json).collect::<Vec<_>>();
    assert_eq!(
        read(s.list_events(dev, 10, None).await.unwrap()),
        texts_newest_first
    );

    // New events continue above the old ids.
    let fresh = uplink(dev, app, 9, 2);
    s.apply(&[WriteOp::InsertEvent(NewEvent {
        created_at: Utc::now(),
        ..new_event(dev, app, EventKind::Up, fresh.clone(), 9)
    })])
    .await
    .unwrap();
    let all = s.list_events(dev, 10, None).await.unwrap();
    assert_eq!(all[0].json, fresh);
    assert!(all[0].id > 5, "{}", all[0].id);

    // The old outbox row still delivers its event, as it was written.
    let claimed = s
        .claim_outbox(
            Utc::now() + Duration::days(400),
            Utc::now() + Duration::days(401),
            10,
        )
        .await
        .unwrap()
        .items;
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].event_id, claimed[0].body.as_str()),
        (2, texts[1].as_str())
    );

    // Moved two at a time, newest first; reads agree at every step.
    let mut moves = Vec::new();
    loop {
        let n = s.migrate_legacy_events(2).await.unwrap();
        moves.push(n);
        let mut want = vec![fresh.clone()];
        want.extend(texts_newest_first.iter().cloned());
        assert_eq!(read(s.list_events(dev, 10, None).await.unwrap()), want);
        let after: Vec<String> = s
            .events_after(app, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.body)
            .collect();
        let mut oldest_first = want.clone();
        oldest_first.reverse();
        assert_eq!(after, oldest_first);
        if n == 0 {
            break;
        }
    }
    assert_eq!(moves, [2, 2, 1, 0]);
    assert!(
        db.execute("SELECT 1 FROM events_legacy").await.is_err(),
        "the old table is gone"
    );
    let claimed = s
        .claim_outbox(
            Utc::now() + Duration::days(800),
            Utc::now() + Duration::days(801),
            10,
        )
        .await
        .unwrap()
        .items;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].body, texts[1]);
    // Nothing left to move, also for a store opened now.
    assert_eq!(s.migrate_legacy_events(2).await.unwrap(), 0);
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_move_online_sqlite() {
    old_events_move_online(OldDb::sqlite(COMPACT_EVENTS).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_move_online_postgres() {
    if let Some(db) = OldDb::postgres(COMPACT_EVENTS).await {
        old_events_move_online(db).await;
    }
}
