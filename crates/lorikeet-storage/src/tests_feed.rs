//! The change feed on both backends: every provisioning write is on it, in commit
//! order, with nothing from the network server's own writes; and (Postgres) a
//! transaction that commits late is waited for, never skipped.

use std::time::Duration;

use sqlx::{Connection, Executor};

use crate::storage_test;
use crate::testing::TestDb;
use crate::tests::*;
use crate::*;

async fn all_after(s: &dyn Storage, after: FeedPosition) -> Vec<FeedEntry> {
    let mut out = Vec::new();
    let mut at = after;
    loop {
        // A small limit, so paging is exercised.
        let page = s.changes_after(at, 3).await.unwrap();
        if let Some(last) = page.entries.last() {
            at = last.position;
        }
        out.extend(page.entries);
        if !page.more {
            return out;
        }
    }
}

fn changes(entries: &[FeedEntry]) -> Vec<Changed> {
    entries.iter().filter_map(|e| e.changed).collect()
}

storage_test!(
    provisioning_writes_are_on_the_feed_in_order,
    |db: TestDb| async move {
        let s = &*db.storage;
        let start = s.feed_head().await.unwrap();
        let (a, p, devices) = provision(s, 2).await;
        let d = &devices[0];
        s.set_device_keys(d.dev_eui, &key(1), None).await.unwrap();
        s.activate_session(&session(d.dev_eui, 0x2601_0001))
            .await
            .unwrap();
        let item = QueueItem {
            id: uuid::Uuid::new_v4(),
            dev_eui: d.dev_eui,
            f_port: 1,
            data: vec![1],
            confirmed: false,
            object: None,
            f_cnt_down: None,
            pending: false,
            sent_at: None,
            expires_at: None,
            created_at: t0(),
        };
        s.enqueue(&item).await.unwrap();
        s.upsert_integration(&http_integration(a.id, "http://127.0.0.1:9/"))
            .await
            .unwrap();
        // The network server's own writes are not provisioning: not on the feed.
        s.apply(&[WriteOp::UpsertSession(session(d.dev_eui, 0x2601_0002))])
            .await
            .unwrap();
        // Writes that change nothing are not on the feed either.
        assert!(!s.delete_gateway(eui(0xffff)).await.unwrap());

        let entries = all_after(s, start).await;
        assert_eq!(
            changes(&entries),
            vec![
                Changed::Application(a.id),
                Changed::DeviceProfile(p.id),
                Changed::Device(devices[0].dev_eui),
                Changed::Device(devices[1].dev_eui),
                Changed::DeviceKeys(d.dev_eui),
                Changed::Session(d.dev_eui),
                Changed::Queue(d.dev_eui),
                Changed::Integration(a.id),
            ]
        );
        let positions: Vec<FeedPosition> = entries.iter().map(|e| e.position).collect();
        let mut sorted = positions.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(positions, sorted, "strictly increasing");
        let last = *positions.last().unwrap();
        assert_eq!(s.feed_signals().written(), last, "read-your-writes token");
        assert_eq!(s.feed_head().await.unwrap(), last);
        assert!(s.changes_after(last, 10).await.unwrap().entries.is_empty());

        // Deleting the application puts each of its devices on the feed.
        assert!(s.delete_application(a.id).await.unwrap());
        let tail = changes(&all_after(s, last).await);
        for d in &devices {
            assert!(tail.contains(&Changed::Device(d.dev_eui)), "{tail:?}");
        }
        assert_eq!(tail.last(), Some(&Changed::Application(a.id)));
        assert_eq!(s.feed_signals().written(), s.feed_head().await.unwrap());

        // A reload of named devices: only those that exist, with their parts.
        let (_, _, more) = provision(s, 3).await;
        s.set_device_keys(more[1].dev_eui, &key(2), Some(&key(3)))
            .await
            .unwrap();
        let mut got = s
            .device_states(&[more[1].dev_eui, eui(0xdead), more[2].dev_eui])
            .await
            .unwrap();
        got.sort_by_key(|d| d.device.dev_eui);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].device, more[1]);
        assert_eq!(
            got[0].keys.as_ref().map(|k| k.nwk_key.clone()),
            Some(Some(key(3)))
        );
        assert!(got[1].keys.is_none() && got[1].session.is_none() && got[1].queue.is_empty());

        // Retention.
        assert!(
            s.trim_changes(now() - chrono::Duration::hours(1))
                .await
                .unwrap()
                == 0
        );
        assert!(
            s.trim_changes(now() + chrono::Duration::hours(1))
                .await
                .unwrap()
                > 0
        );
        assert!(s
            .changes_after(FeedPosition::default(), 10)
            .await
            .unwrap()
            .entries
            .is_empty());
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_commits_late_is_waited_for_not_skipped() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let s = &*db.storage;
    let start = s.feed_head().await.unwrap();
    // A slow writer: its transaction id is taken first, it commits last.
    let mut slow = sqlx::PgConnection::connect(db.url()).await.unwrap();
    slow.execute("BEGIN").await.unwrap();
    let late = uuid::Uuid::new_v4();
    slow.execute(format!("INSERT INTO changes (kind, key) VALUES ('tenant', '{late}')").as_str())
        .await
        .unwrap();
    // A fast one commits meanwhile.
    let t = tenant("fast");
    s.create_tenant(&t).await.unwrap();
    let page = s.changes_after(start, 10).await.unwrap();
    assert!(page.entries.is_empty(), "{page:?}");
    assert!(
        page.more,
        "the fast change is there but cannot be ordered yet"
    );
    slow.execute("COMMIT").await.unwrap();
    // Now both, the late one first (its transaction is older).
    let mut got = Vec::new();
    for _ in 0..50 {
        got = changes(&all_after(s, start).await);
        if got.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got, vec![Changed::Tenant(late), Changed::Tenant(t.id)]);
}

/// Two processes on one Postgres database: a commit of one wakes the other's feed
/// reader (NOTIFY after the commit, not inside it: that would serialise commits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_wakes_the_other_processes_reader() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let a = db.storage.clone();
    let b = crate::connect(db.url(), crate::testing::test_keyring())
        .await
        .unwrap();
    let listening_a = tokio::spawn({
        let a = a.clone();
        async move { a.listen_for_changes().await }
    });
    let listening_b = tokio::spawn({
        let b = b.clone();
        async move { b.listen_for_changes().await }
    });
    // B wakes its reader once its LISTEN is in place (missed notifications are read
    // anyway after a (re)connection).
    tokio::time::timeout(Duration::from_secs(10), b.feed_signals().changed())
        .await
        .expect("B listens");
    a.create_tenant(&tenant("from A")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), b.feed_signals().changed())
        .await
        .expect("A's commit wakes B's reader");
    // The notification carries no data: B reads the change from the feed (once no
    // older transaction of the cluster, e.g. another test's, can still precede it).
    let mut seen = false;
    for _ in 0..250 {
        let got = changes(&all_after(&*b, FeedPosition::default()).await);
        if got.iter().any(|c| matches!(c, Changed::Tenant(_))) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen, "B reads A's change from the feed");
    listening_a.abort();
    listening_b.abort();
    b.close().await;
}
