//! The bulk import on both backends: created and updated counted, what an update
//! keeps, all or nothing, tenants kept apart, on the feed, and fast enough.

use std::time::Instant;

use chrono::Duration;
use lorikeet_lorawan::DevAddr;

use crate::storage_test;
use crate::testing::TestDb;
use crate::tests::*;
use crate::*;

fn row(d: &Device, keys: Option<u8>, dev_addr: Option<u32>) -> ImportRow {
    ImportRow {
        device: d.clone(),
        keys: keys.map(|b| RootKeys {
            app_key: key(b),
            nwk_key: None,
        }),
        session: dev_addr.map(|a| session(d.dev_eui, a)),
    }
}

async fn feed_since(s: &dyn Storage, at: FeedPosition) -> Vec<Changed> {
    let mut out = Vec::new();
    let mut at = at;
    loop {
        let page = s.changes_after(at, 10_000).await.unwrap();
        if let Some(last) = page.entries.last() {
            at = last.position;
        }
        out.extend(page.entries.iter().filter_map(|e| e.changed));
        if !page.more {
            return out;
        }
    }
}

storage_test!(
    import_creates_and_updates_keeping_what_an_update_keeps,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (a, p, old) = provision(s, 2).await;
        // Device 0 has keys with join state, has been seen and runs class C.
        s.set_device_keys(old[0].dev_eui, &key(9), None)
            .await
            .unwrap();
        let seen = t0() + Duration::hours(1);
        s.apply(&[
            WriteOp::RecordJoin {
                dev_eui: old[0].dev_eui,
                dev_nonce: 7,
                join_nonce: 3,
                at: seen,
            },
            WriteOp::DeviceSeen {
                dev_eui: old[0].dev_eui,
                at: seen,
            },
            WriteOp::DeviceClass {
                dev_eui: old[0].dev_eui,
                class: DeviceClass::C,
            },
        ])
        .await
        .unwrap();
        let start = s.feed_signals().written();

        let mut renamed = old[0].clone();
        renamed.name = "renamed".into();
        renamed.tags.clear();
        renamed.disabled = true;
        renamed.created_at = t0() + Duration::days(1);
        renamed.updated_at = t0() + Duration::days(1);
        let new: Vec<Device> = (10..13).map(|n| device(n, &a, &p)).collect();
        let rows = vec![
            row(&new[0], Some(1), Some(0x2601_0010)),
            row(&renamed, Some(2), None),
            row(&new[1], None, None),
            row(&old[1], None, Some(0x2601_0011)),
            row(&new[2], Some(3), None),
        ];
        let out = s.import_devices(&rows).await.unwrap();
        assert_eq!(
            out,
            ImportOutcome::Imported(ImportCounts {
                created: 3,
                updated: 2
            })
        );

        // The update: provisioned fields replaced; creation, last seen and class kept.
        let got = s.get_device(old[0].dev_eui).await.unwrap().unwrap();
        assert_eq!(got.name, "renamed");
        assert!(got.tags.is_empty() && got.disabled);
        assert_eq!(got.created_at, old[0].created_at);
        assert_eq!(got.updated_at, renamed.updated_at);
        assert_eq!(got.last_seen_at, Some(seen));
        assert_eq!(got.device_class_enabled, DeviceClass::C);
        // New keys, same join state.
        let k = s.get_device_keys(old[0].dev_eui).await.unwrap().unwrap();
        assert_eq!(k.app_key, key(2));
        assert_eq!((k.join_nonce, k.last_dev_nonce), (3, Some(7)));
        assert_eq!(k.used_dev_nonces, vec![7]);
        // The new devices, with exactly the parts their rows gave.
        for d in &new {
            assert_eq!(s.get_device(d.dev_eui).await.unwrap().as_ref(), Some(d));
        }
        let k = s.get_device_keys(new[0].dev_eui).await.unwrap().unwrap();
        assert_eq!((k.app_key, k.join_nonce), (key(1), 0));
        assert_eq!(
            s.get_session(new[0].dev_eui)
                .await
                .unwrap()
                .unwrap()
                .dev_addr,
            DevAddr::from_u32(0x2601_0010)
        );
        assert!(s.get_device_keys(new[1].dev_eui).await.unwrap().is_none());
        assert!(s.get_session(new[1].dev_eui).await.unwrap().is_none());
        assert_eq!(
            s.get_session(old[1].dev_eui).await.unwrap(),
            Some(session(old[1].dev_eui, 0x2601_0011))
        );

        // On the feed: every device, with what changed, in DevEUI order.
        let mut want = Vec::new();
        let mut by_eui: Vec<&ImportRow> = rows.iter().collect();
        by_eui.sort_by_key(|r| r.device.dev_eui);
        for r in by_eui {
            want.push(Changed::Device(r.device.dev_eui));
            if r.keys.is_some() {
                want.push(Changed::DeviceKeys(r.device.dev_eui));
            }
            if r.session.is_some() {
                want.push(Changed::Session(r.device.dev_eui));
            }
        }
        assert_eq!(feed_since(s, start).await, want);
        assert!(s.feed_signals().written() > start);

        // Importing the same rows again updates them all.
        assert_eq!(
            s.import_devices(&rows).await.unwrap(),
            ImportOutcome::Imported(ImportCounts {
                created: 0,
                updated: 5
            })
        );
        assert_eq!(
            s.import_devices(&[]).await.unwrap(),
            ImportOutcome::Imported(ImportCounts::default())
        );
    }
);

storage_test!(
    an_import_never_moves_a_device_between_tenants,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (a, p, _) = provision(s, 0).await;
        let other = tenant("other");
        s.create_tenant(&other).await.unwrap();
        let (oa, op) = (app(other.id, "theirs"), profile(other.id));
        s.create_application(&oa).await.unwrap();
        s.create_device_profile(&op).await.unwrap();
        let theirs = device(1, &oa, &op);
        s.create_device(&theirs).await.unwrap();
        let start = s.feed_signals().written();

        // The same DevEUI, in our tenant, between two new devices.
        let rows = vec![
            row(&device(2, &a, &p), Some(1), None),
            row(&device(1, &a, &p), Some(1), Some(0x2601_0001)),
            row(&device(3, &a, &p), None, None),
        ];
        let refused = vec![ImportRefusal {
            row: 1,
            dev_eui: theirs.dev_eui,
            tenant_id: other.id,
        }];
        assert_eq!(
            s.import_devices(&rows).await.unwrap(),
            ImportOutcome::Refused(refused.clone())
        );
        assert_eq!(s.import_refusals(&rows).await.unwrap(), refused);
        // Nothing written: not the other rows, not the feed.
        assert!(s.get_device(eui(2)).await.unwrap().is_none());
        assert!(s.get_device(eui(3)).await.unwrap().is_none());
        assert_eq!(s.get_device(theirs.dev_eui).await.unwrap(), Some(theirs));
        assert!(s.get_device_keys(eui(1)).await.unwrap().is_none());
        assert!(s.get_session(eui(1)).await.unwrap().is_none());
        assert!(feed_since(s, start).await.is_empty());
        // Without the foreign row the rest goes in.
        assert!(s
            .import_refusals(&[rows[0].clone(), rows[2].clone()])
            .await
            .unwrap()
            .is_empty());
    }
);

storage_test!(
    an_import_naming_a_device_twice_writes_nothing,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (a, p, _) = provision(s, 0).await;
        let rows = vec![
            row(&device(1, &a, &p), None, None),
            row(&device(2, &a, &p), None, None),
            row(&device(1, &a, &p), Some(1), None),
        ];
        let e = s.import_devices(&rows).await.unwrap_err();
        assert!(
            matches!(&e, StoreError::Duplicate { key, .. } if *key == eui(1).to_string()),
            "{e}"
        );
        assert!(s.get_device(eui(2)).await.unwrap().is_none());
        // A missing application: nothing written either.
        let mut orphan = device(4, &a, &p);
        orphan.application_id = uuid::Uuid::new_v4();
        let e = s
            .import_devices(&[
                row(&device(3, &a, &p), None, None),
                row(&orphan, None, None),
            ])
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::MissingReference { .. }), "{e}");
        assert!(s.get_device(eui(3)).await.unwrap().is_none());
    }
);

storage_test!(
    ten_thousand_devices_import_in_one_transaction,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (a, p, _) = provision(s, 0).await;
        let rows: Vec<ImportRow> = (0..10_000u64)
            .map(|n| row(&device(n, &a, &p), Some(1), Some(0x2600_0000 | n as u32)))
            .collect();
        let start = s.feed_signals().written();
        let t = Instant::now();
        let out = s.import_devices(&rows).await.unwrap();
        let took = t.elapsed();
        eprintln!(
            "{}: 10,000 devices with keys and sessions imported in {took:?}",
            s.backend().as_str()
        );
        assert_eq!(
            out,
            ImportOutcome::Imported(ImportCounts {
                created: 10_000,
                updated: 0
            })
        );
        // Batched statements: one per thousand rows, not one per row. Generous for a
        // debug build on a loaded machine; the figure printed above is what counts.
        assert!(took < std::time::Duration::from_secs(30), "{took:?}");
        assert_eq!(feed_since(s, start).await.len(), 30_000);
        assert!(s.get_session(eui(9_999)).await.unwrap().is_some());
        assert_eq!(s.load_all_device_keys().await.unwrap().len(), 10_000);
        let t = Instant::now();
        let out = s.import_devices(&rows).await.unwrap();
        eprintln!(
            "{}: the same 10,000 updated in {:?}",
            s.backend().as_str(),
            t.elapsed()
        );
        assert_eq!(
            out,
            ImportOutcome::Imported(ImportCounts {
                created: 0,
                updated: 10_000
            })
        );
    }
);
