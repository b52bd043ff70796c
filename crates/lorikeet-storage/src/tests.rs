//! Contract tests of [`Storage`]: every test runs against SQLite and Postgres.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use serde_json::json;
use uuid::Uuid;

use crate::storage_test;
use crate::testing::TestDb;
use crate::*;

/// A fixed time with whole microseconds (what both backends keep).
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap() + Duration::microseconds(123_456)
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub(crate) fn eui(n: u64) -> Eui64 {
    Eui64::from_u64(0x70b3_d57e_d000_0000 + n)
}

pub(crate) fn key(b: u8) -> Aes128Key {
    Aes128Key::from_bytes([b; 16])
}

pub(crate) fn tenant(name: &str) -> Tenant {
    Tenant {
        id: Uuid::new_v4(),
        name: name.into(),
        private_gateways: false,
        created_at: t0(),
        updated_at: t0(),
    }
}

pub(crate) fn app(tenant_id: Uuid, name: &str) -> Application {
    Application {
        id: Uuid::new_v4(),
        tenant_id,
        name: name.into(),
        description: "d".into(),
        created_at: t0(),
        updated_at: t0(),
    }
}

pub(crate) fn profile(tenant_id: Uuid) -> DeviceProfile {
    DeviceProfile {
        id: Uuid::new_v4(),
        tenant_id,
        name: "eu868-a".into(),
        description: String::new(),
        region: "EU868".into(),
        mac_version: "1.0.3".into(),
        reg_params_revision: "RP002-1.0.3".into(),
        supports_otaa: true,
        supports_class_c: false,
        adr_enabled: true,
        rx1_delay: 1,
        rx1_dr_offset: 0,
        rx2_dr: None,
        rx2_frequency_hz: Some(869_525_000),
        payload_codec: PayloadCodec::JavaScript {
            script: "function decodeUplink(i) { return {data: {}}; }".into(),
        },
        mac_settings: json!({"installationMarginDb": 10}),
        created_at: t0(),
        updated_at: t0(),
    }
}

pub(crate) fn device(n: u64, a: &Application, p: &DeviceProfile) -> Device {
    Device {
        dev_eui: eui(n),
        join_eui: Eui64::from_u64(0x0102_0304_0506_0708),
        tenant_id: a.tenant_id,
        application_id: a.id,
        device_profile_id: p.id,
        name: format!("dev-{n}"),
        description: String::new(),
        tags: BTreeMap::from([("site".to_string(), "north".to_string())]),
        skip_fcnt_check: false,
        disabled: false,
        device_class_enabled: DeviceClass::A,
        last_seen_at: None,
        created_at: t0(),
        updated_at: t0(),
    }
}

pub(crate) fn session(dev_eui: Eui64, dev_addr: u32) -> DeviceSession {
    DeviceSession {
        dev_eui,
        dev_addr: DevAddr::from_u32(dev_addr),
        mac_version: "1.0.3".into(),
        f_nwk_s_int_key: key(1),
        s_nwk_s_int_key: key(2),
        nwk_s_enc_key: key(3),
        app_s_key: key(4),
        f_cnt_up: 10,
        n_f_cnt_down: 5,
        a_f_cnt_down: 0,
        conf_f_cnt: 0,
        ns_state: r#"{"adr":{"history":[]}}"#.into(),
        updated_at: t0(),
    }
}

/// A tenant's application, profile and `n` devices.
pub(crate) async fn provision(
    s: &dyn Storage,
    n: u64,
) -> (Application, DeviceProfile, Vec<Device>) {
    let a = app(DEFAULT_TENANT_ID, "app");
    let p = profile(DEFAULT_TENANT_ID);
    s.create_application(&a).await.unwrap();
    s.create_device_profile(&p).await.unwrap();
    let mut devices = Vec::new();
    for i in 0..n {
        let d = device(i, &a, &p);
        s.create_device(&d).await.unwrap();
        devices.push(d);
    }
    (a, p, devices)
}

pub(crate) fn event(dev_eui: Eui64, application_id: Uuid, kind: EventKind, n: i64) -> NewEvent {
    NewEvent {
        dev_eui,
        application_id,
        kind,
        payload: json!({"n": n, "devEui": dev_eui.to_string()})
            .to_string()
            .into(),
        created_at: t0() + Duration::seconds(n),
    }
}

/// Saves one integration's delivery cursor.
async fn save_cursor(
    s: &dyn Storage,
    integration_id: Uuid,
    through: i64,
    at: Option<DateTime<Utc>>,
) {
    s.save_delivery_cursors(&[DeliveryCursor {
        integration_id,
        delivered_through: through,
        last_delivered_at: at,
    }])
    .await
    .unwrap();
}

/// Moves the integration's events past its cursor into the outbox (as the webhook
/// worker does when their first delivery fails) and moves the cursor past them.
async fn spill_all(s: &dyn Storage, hook: &Integration) {
    let cursor = s
        .delivery_cursors()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.integration_id == hook.id)
        .unwrap();
    let evs = s
        .events_after(hook.application_id, cursor.delivered_through, 10_000)
        .await
        .unwrap();
    let rows: Vec<SpillRow> = evs
        .iter()
        .map(|e| SpillRow {
            integration_id: hook.id,
            event_id: e.id,
            dev_eui: e.dev_eui,
            attempts: 0,
            next_attempt_at: e.created_at,
            last_error: None,
            created_at: e.created_at,
        })
        .collect();
    s.outbox_spill(&rows, t0()).await.unwrap();
    if let Some(last) = evs.last() {
        save_cursor(s, hook.id, last.id, None).await;
    }
}

pub(crate) fn http_integration(application_id: Uuid, url: &str) -> Integration {
    Integration {
        id: Uuid::new_v4(),
        application_id,
        kind: IntegrationKind::Http,
        owner: IntegrationOwner::Admin,
        config: serde_json::to_value(HttpIntegrationConfig {
            url: url.into(),
            headers: BTreeMap::from([("X-Token".to_string(), "abc".to_string())]),
            signing_secret: Some("s3cret".into()),
        })
        .unwrap(),
        last_delivered_at: None,
        last_error: None,
        last_error_at: None,
        created_at: t0(),
        updated_at: t0(),
    }
}

storage_test!(
    tenants_round_trip_and_default_is_protected,
    |db: TestDb| async move {
        let s = &*db.storage;
        let d = s.get_tenant(DEFAULT_TENANT_ID).await.unwrap().unwrap();
        assert_eq!(d.name, "default");
        let mut t = tenant("acme");
        s.create_tenant(&t).await.unwrap();
        assert_eq!(s.get_tenant(t.id).await.unwrap().unwrap(), t);
        assert!(matches!(
            s.create_tenant(&t).await,
            Err(StoreError::Duplicate {
                entity: "tenant",
                ..
            })
        ));
        t.name = "acme2".into();
        t.updated_at = t0() + Duration::seconds(1);
        assert!(s.update_tenant(&t).await.unwrap());
        assert_eq!(s.get_tenant(t.id).await.unwrap().unwrap().name, "acme2");
        let all = s.list_tenants(Page::ALL).await.unwrap();
        assert_eq!(
            all.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["acme2", "default"]
        );
        let second = s
            .list_tenants(Page {
                limit: 1,
                offset: 1,
            })
            .await
            .unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].name, "default");
        assert!(matches!(
            s.delete_tenant(DEFAULT_TENANT_ID).await,
            Err(StoreError::DefaultTenant)
        ));
        assert!(s.delete_tenant(t.id).await.unwrap());
        assert!(!s.delete_tenant(t.id).await.unwrap());
        assert!(s.get_tenant(t.id).await.unwrap().is_none());
    }
);

storage_test!(
    api_keys_are_found_by_token_hash_only,
    |db: TestDb| async move {
        let s = &*db.storage;
        let t = tenant("acme");
        s.create_tenant(&t).await.unwrap();
        let k = ApiKey {
            id: Uuid::new_v4(),
            tenant_id: t.id,
            name: "ci".into(),
            created_at: t0(),
        };
        let hash = hash_token("lk_secret");
        s.create_api_key(&k, &hash).await.unwrap();
        assert_eq!(s.api_key_by_hash(&hash).await.unwrap(), Some(k.clone()));
        assert_eq!(
            s.api_key_by_hash(&hash_token("lk_other")).await.unwrap(),
            None
        );
        assert_eq!(s.get_api_key(k.id).await.unwrap(), Some(k.clone()));
        // The same token twice is refused (tokens are unique).
        let k2 = ApiKey {
            id: Uuid::new_v4(),
            ..k.clone()
        };
        assert!(matches!(
            s.create_api_key(&k2, &hash).await,
            Err(StoreError::Duplicate { .. })
        ));
        // A key for a missing tenant.
        let k3 = ApiKey {
            id: Uuid::new_v4(),
            tenant_id: Uuid::new_v4(),
            ..k.clone()
        };
        assert!(matches!(
            s.create_api_key(&k3, &hash_token("x")).await,
            Err(StoreError::MissingReference { .. })
        ));
        assert_eq!(
            s.list_api_keys(Some(t.id), Page::ALL).await.unwrap(),
            std::slice::from_ref(&k)
        );
        assert!(s
            .list_api_keys(Some(DEFAULT_TENANT_ID), Page::ALL)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(s.list_api_keys(None, Page::ALL).await.unwrap().len(), 1);
        assert!(s.delete_api_key(k.id).await.unwrap());
        assert_eq!(s.api_key_by_hash(&hash).await.unwrap(), None);
    }
);

storage_test!(
    applications_and_profiles_round_trip,
    |db: TestDb| async move {
        let s = &*db.storage;
        let t = tenant("acme");
        s.create_tenant(&t).await.unwrap();
        let mut a = app(t.id, "meters");
        s.create_application(&a).await.unwrap();
        s.create_application(&app(DEFAULT_TENANT_ID, "other"))
            .await
            .unwrap();
        assert_eq!(s.get_application(a.id).await.unwrap().unwrap(), a);
        assert_eq!(
            s.list_applications(Some(t.id), Page::ALL).await.unwrap(),
            [a.clone()]
        );
        assert_eq!(s.list_applications(None, Page::ALL).await.unwrap().len(), 2);
        a.name = "water meters".into();
        a.description = "all of them".into();
        assert!(s.update_application(&a).await.unwrap());
        assert_eq!(s.get_application(a.id).await.unwrap().unwrap(), a);
        assert!(matches!(
            s.create_application(&app(Uuid::new_v4(), "x")).await,
            Err(StoreError::MissingReference { .. })
        ));

        let mut p = profile(t.id);
        s.create_device_profile(&p).await.unwrap();
        assert_eq!(s.get_device_profile(p.id).await.unwrap().unwrap(), p);
        p.payload_codec = PayloadCodec::CayenneLpp;
        p.rx2_dr = Some(3);
        p.rx2_frequency_hz = None;
        p.mac_version = "1.1.0".into();
        p.mac_settings = json!({});
        assert!(s.update_device_profile(&p).await.unwrap());
        assert_eq!(s.get_device_profile(p.id).await.unwrap().unwrap(), p);
        assert_eq!(
            s.list_device_profiles(Some(t.id), Page::ALL).await.unwrap(),
            [p.clone()]
        );
        assert!(s
            .list_device_profiles(Some(DEFAULT_TENANT_ID), Page::ALL)
            .await
            .unwrap()
            .is_empty());

        // A profile in use cannot go; once its device is gone it can.
        let d = device(1, &a, &p);
        s.create_device(&d).await.unwrap();
        match s.delete_device_profile(p.id).await {
            Err(StoreError::InUse { users, .. }) => assert_eq!(users, "1 device"),
            other => panic!("expected InUse, got {other:?}"),
        }
        assert!(s.delete_device(d.dev_eui).await.unwrap());
        assert!(s.delete_device_profile(p.id).await.unwrap());
        assert!(s.get_device_profile(p.id).await.unwrap().is_none());

        assert!(s.delete_application(a.id).await.unwrap());
        assert!(!s.delete_application(a.id).await.unwrap());
    }
);

storage_test!(
    devices_round_trip_filter_and_page,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (a, p, devices) = provision(s, 5).await;
        let mut d = devices[2].clone();
        assert_eq!(s.get_device(d.dev_eui).await.unwrap().unwrap(), d);
        assert!(matches!(
            s.create_device(&d).await,
            Err(StoreError::Duplicate {
                entity: "device",
                ..
            })
        ));

        d.name = "renamed".into();
        d.tags.insert("floor".into(), "3".into());
        d.skip_fcnt_check = true;
        d.disabled = true;
        d.updated_at = t0() + Duration::seconds(5);
        assert!(s.update_device(&d).await.unwrap());
        assert_eq!(s.get_device(d.dev_eui).await.unwrap().unwrap(), d);

        // Filters and offset paging, by DevEUI.
        let all = s
            .list_devices(DeviceFilter::default(), Page::ALL)
            .await
            .unwrap();
        assert_eq!(all.len(), 5);
        assert!(all.windows(2).all(|w| w[0].dev_eui < w[1].dev_eui));
        let by_app = DeviceFilter {
            tenant_id: Some(DEFAULT_TENANT_ID),
            application_id: Some(a.id),
        };
        let page = s
            .list_devices(
                by_app,
                Page {
                    limit: 2,
                    offset: 2,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            page.iter().map(|d| d.dev_eui).collect::<Vec<_>>(),
            [eui(2), eui(3)]
        );
        let other = DeviceFilter {
            tenant_id: None,
            application_id: Some(Uuid::new_v4()),
        };
        assert!(s.list_devices(other, Page::ALL).await.unwrap().is_empty());
        let by_tenant = DeviceFilter {
            tenant_id: Some(DEFAULT_TENANT_ID),
            application_id: None,
        };
        assert_eq!(s.list_devices(by_tenant, Page::ALL).await.unwrap().len(), 5);

        // Keyset pages for start-up loads.
        let first = s.devices_page(None, 3).await.unwrap();
        let rest = s.devices_page(Some(first[2].dev_eui), 3).await.unwrap();
        assert_eq!(first.len() + rest.len(), 5);
        assert_eq!(rest[0].dev_eui, eui(3));
        assert_eq!(s.load_all_devices().await.unwrap().len(), 5);

        // Context for the server's cache.
        let ctx = s.get_device_context(eui(0)).await.unwrap().unwrap();
        assert_eq!(ctx.application, a);
        assert_eq!(ctx.profile, p);
        assert_eq!(ctx.tenant.id, DEFAULT_TENANT_ID);
        assert!(s.get_device_context(eui(99)).await.unwrap().is_none());

        assert!(s.delete_device(eui(0)).await.unwrap());
        assert!(s.get_device(eui(0)).await.unwrap().is_none());
    }
);

storage_test!(devices_must_stay_in_their_tenant, |db: TestDb| async move {
    let s = &*db.storage;
    let t = tenant("acme");
    s.create_tenant(&t).await.unwrap();
    let a = app(DEFAULT_TENANT_ID, "app");
    s.create_application(&a).await.unwrap();
    let foreign_profile = profile(t.id);
    s.create_device_profile(&foreign_profile).await.unwrap();
    // Application of the default tenant, profile of another: refused by the schema.
    let d = device(1, &a, &foreign_profile);
    assert!(matches!(
        s.create_device(&d).await,
        Err(StoreError::MissingReference { .. })
    ));
    let missing_app = Device {
        application_id: Uuid::new_v4(),
        ..device(2, &a, &foreign_profile)
    };
    assert!(matches!(
        s.create_device(&missing_app).await,
        Err(StoreError::MissingReference { .. })
    ));
    assert!(s.get_device(eui(1)).await.unwrap().is_none());
});

storage_test!(
    deleting_a_tenant_removes_everything_it_owns,
    |db: TestDb| async move {
        let s = &*db.storage;
        let t = tenant("acme");
        s.create_tenant(&t).await.unwrap();
        let a = app(t.id, "app");
        let p = profile(t.id);
        s.create_application(&a).await.unwrap();
        s.create_device_profile(&p).await.unwrap();
        let d = device(1, &a, &p);
        s.create_device(&d).await.unwrap();
        s.set_device_keys(d.dev_eui, &key(9), None).await.unwrap();
        s.apply(&[
            WriteOp::UpsertSession(session(d.dev_eui, 0x2601_0001)),
            WriteOp::InsertEvent(event(d.dev_eui, a.id, EventKind::Up, 1)),
        ])
        .await
        .unwrap();
        let g = Gateway {
            gateway_id: eui(500),
            tenant_id: t.id,
            name: "gw".into(),
            description: String::new(),
            location: None,
            location_source: LocationSource::Reported,
            last_seen_at: None,
            stats: None,
            private: false,
            created_at: t0(),
            updated_at: t0(),
        };
        s.create_gateway(&g).await.unwrap();
        assert!(s.delete_tenant(t.id).await.unwrap());
        assert!(s.get_device(d.dev_eui).await.unwrap().is_none());
        assert!(s.get_session(d.dev_eui).await.unwrap().is_none());
        assert!(s.get_device_keys(d.dev_eui).await.unwrap().is_none());
        assert!(s.get_application(a.id).await.unwrap().is_none());
        assert!(s.get_device_profile(p.id).await.unwrap().is_none());
        assert!(s.get_gateway(g.gateway_id).await.unwrap().is_none());
        assert!(s.list_events(d.dev_eui, 10, None).await.unwrap().is_empty());
    }
);

storage_test!(
    device_keys_load_in_pages_with_their_nonces,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (_, _, devices) = provision(s, 3).await;
        for (i, d) in devices.iter().enumerate() {
            s.set_device_keys(
                d.dev_eui,
                &key(i as u8 + 1),
                (i == 2).then(|| key(0x33)).as_ref(),
            )
            .await
            .unwrap();
        }
        let ops = vec![
            WriteOp::RecordJoin {
                dev_eui: devices[0].dev_eui,
                dev_nonce: 5,
                join_nonce: 1,
                at: t0(),
            },
            WriteOp::RecordJoin {
                dev_eui: devices[2].dev_eui,
                dev_nonce: 9,
                join_nonce: 1,
                at: t0(),
            },
            WriteOp::RecordJoin {
                dev_eui: devices[2].dev_eui,
                dev_nonce: 10,
                join_nonce: 2,
                at: t0(),
            },
        ];
        s.apply(&ops).await.unwrap();
        // Pages of one, then everything: the same as reading each device alone.
        let first = s.device_keys_page(None, 1).await.unwrap();
        assert_eq!(first.len(), 1);
        let rest = s
            .device_keys_page(Some(first[0].dev_eui), 10)
            .await
            .unwrap();
        assert_eq!(rest.len(), 2);
        let all = s.load_all_device_keys().await.unwrap();
        assert_eq!(all.len(), 3);
        for k in &all {
            assert_eq!(
                Some(k),
                s.get_device_keys(k.dev_eui).await.unwrap().as_ref()
            );
        }
        let with_nonces: Vec<usize> = all.iter().map(|k| k.used_dev_nonces.len()).collect();
        assert_eq!(with_nonces.iter().sum::<usize>(), 3);
    }
);

storage_test!(keys_and_bounded_dev_nonces, |db: TestDb| async move {
    let s = &*db.storage;
    let (_, _, devices) = provision(s, 1).await;
    let dev = devices[0].dev_eui;
    assert!(s.get_device_keys(dev).await.unwrap().is_none());
    assert!(matches!(
        s.set_device_keys(eui(77), &key(1), None).await,
        Err(StoreError::MissingReference { .. })
    ));
    s.set_device_keys(dev, &key(0xaa), None).await.unwrap();
    let k = s.get_device_keys(dev).await.unwrap().unwrap();
    assert_eq!(k.app_key, key(0xaa));
    assert_eq!(k.nwk_key, None);
    assert_eq!((k.join_nonce, k.last_dev_nonce), (0, None));
    assert!(k.used_dev_nonces.is_empty());

    // More joins than the limit: only the most recent USED_DEV_NONCE_LIMIT stay.
    let total = USED_DEV_NONCE_LIMIT + 5;
    let ops: Vec<WriteOp> = (0..total)
        .map(|i| WriteOp::RecordJoin {
            dev_eui: dev,
            dev_nonce: (i * 7) as u16,
            join_nonce: i as u32 + 1,
            at: t0(),
        })
        .collect();
    s.apply(&ops).await.unwrap();
    let k = s.get_device_keys(dev).await.unwrap().unwrap();
    assert_eq!(k.join_nonce, total as u32);
    assert_eq!(k.last_dev_nonce, Some(((total - 1) * 7) as u16));
    assert_eq!(k.used_dev_nonces.len(), USED_DEV_NONCE_LIMIT);
    assert_eq!(
        k.used_dev_nonces[0],
        (5 * 7) as u16,
        "oldest five forgotten"
    );
    assert_eq!(*k.used_dev_nonces.last().unwrap(), ((total - 1) * 7) as u16);

    // A nonce used again moves to the newest position instead of duplicating.
    s.apply(&[WriteOp::RecordJoin {
        dev_eui: dev,
        dev_nonce: (10 * 7) as u16,
        join_nonce: total as u32 + 1,
        at: t0(),
    }])
    .await
    .unwrap();
    let k = s.get_device_keys(dev).await.unwrap().unwrap();
    assert_eq!(k.used_dev_nonces.len(), USED_DEV_NONCE_LIMIT);
    assert_eq!(*k.used_dev_nonces.last().unwrap(), 70);
    assert_eq!(k.used_dev_nonces.iter().filter(|&&n| n == 70).count(), 1);

    // Replacing the keys keeps the join state.
    s.set_device_keys(dev, &key(0xbb), Some(&key(0xcc)))
        .await
        .unwrap();
    let k2 = s.get_device_keys(dev).await.unwrap().unwrap();
    assert_eq!(k2.app_key, key(0xbb));
    assert_eq!(k2.nwk_key, Some(key(0xcc)));
    assert_eq!(k2.join_nonce, k.join_nonce);
    assert_eq!(k2.used_dev_nonces, k.used_dev_nonces);
});

storage_test!(sessions_are_written_in_batches, |db: TestDb| async move {
    let s = &*db.storage;
    let (_, _, devices) = provision(s, 4).await;
    let mut s0 = session(devices[0].dev_eui, 0x2601_0001);
    let s1 = session(devices[1].dev_eui, 0x2601_0001); // same DevAddr
    let s2 = session(devices[2].dev_eui, 0x2601_0002);
    s.apply(&[
        WriteOp::UpsertSession(s0.clone()),
        WriteOp::UpsertSession(s1.clone()),
        WriteOp::UpsertSession(s2.clone()),
        // A device that does not exist (deleted meanwhile) is skipped, not fatal.
        WriteOp::UpsertSession(session(eui(999), 0x2601_0003)),
    ])
    .await
    .unwrap();
    assert_eq!(s.get_session(s0.dev_eui).await.unwrap().unwrap(), s0);
    assert!(s.get_session(eui(999)).await.unwrap().is_none());
    let shared = s
        .sessions_by_dev_addr(DevAddr::from_u32(0x2601_0001))
        .await
        .unwrap();
    assert_eq!(shared, [s0.clone(), s1.clone()]);

    // Write-through of counters and opaque state.
    s0.f_cnt_up = u32::MAX;
    s0.n_f_cnt_down = 7;
    s0.a_f_cnt_down = 8;
    s0.conf_f_cnt = 9;
    s0.ns_state = r#"{"pending":["LinkADRReq"]}"#.into();
    s0.updated_at = t0() + Duration::seconds(1);
    s.apply(&[WriteOp::UpsertSession(s0.clone())])
        .await
        .unwrap();
    assert_eq!(s.get_session(s0.dev_eui).await.unwrap().unwrap(), s0);

    let page = s.sessions_page(None, 2).await.unwrap();
    assert_eq!(page.len(), 2);
    let rest = s.sessions_page(Some(page[1].dev_eui), 2).await.unwrap();
    assert_eq!(rest, std::slice::from_ref(&s2));
    assert_eq!(s.load_all_sessions().await.unwrap().len(), 3);

    s.apply(&[WriteOp::DeleteSession(s2.dev_eui)])
        .await
        .unwrap();
    assert!(s.get_session(s2.dev_eui).await.unwrap().is_none());

    // Deleting the device removes its session.
    assert!(s.delete_device(s1.dev_eui).await.unwrap());
    assert!(s.get_session(s1.dev_eui).await.unwrap().is_none());
});

storage_test!(
    a_batch_leaves_what_running_its_ops_in_order_leaves,
    |db: TestDb| async move {
        // Both backends group ops by kind; the outcome must equal sequential application.
        let s = &*db.storage;
        let (a, _, devices) = provision(s, 3).await;
        let (d0, d1, d2) = (devices[0].dev_eui, devices[1].dev_eui, devices[2].dev_eui);
        let ghost = Eui64([0xEE; 8]);
        s.apply(&[WriteOp::UpsertSession(session(d2, 9))])
            .await
            .unwrap();
        let mut later = session(d0, 2);
        later.f_cnt_up = 99;
        s.apply(&[
            WriteOp::UpsertSession(session(d0, 1)),
            WriteOp::InsertEvent(event(d1, a.id, EventKind::Up, 1)),
            WriteOp::UpsertSession(session(d1, 1)),
            WriteOp::InsertEvent(event(d0, a.id, EventKind::Up, 2)),
            WriteOp::DeleteSession(d1),
            WriteOp::UpsertSession(later.clone()),
            WriteOp::DeleteSession(d2),
            WriteOp::UpsertSession(session(d2, 10)),
            WriteOp::DeviceSeen {
                dev_eui: d0,
                at: t0() + Duration::seconds(5),
            },
            WriteOp::InsertEvent(event(d1, a.id, EventKind::Up, 3)),
            WriteOp::DeviceSeen {
                dev_eui: d0,
                at: t0(),
            },
            // Writes about a device that is gone are skipped, not fatal.
            WriteOp::UpsertSession(session(ghost, 4)),
            WriteOp::InsertEvent(event(ghost, a.id, EventKind::Up, 4)),
            WriteOp::DeviceSeen {
                dev_eui: ghost,
                at: t0(),
            },
        ])
        .await
        .unwrap();
        assert!(s.get_session(ghost).await.unwrap().is_none());
        assert!(s.list_events(ghost, 10, None).await.unwrap().is_empty());
        assert_eq!(s.get_session(d0).await.unwrap().unwrap(), later);
        assert!(s.get_session(d1).await.unwrap().is_none());
        assert_eq!(
            s.get_session(d2).await.unwrap().unwrap().dev_addr,
            DevAddr::from_u32(10)
        );
        assert_eq!(
            s.get_device(d0).await.unwrap().unwrap().last_seen_at,
            Some(t0())
        );
        let ids = |evs: Vec<Event>| {
            evs.iter()
                .map(|e| (e.id, e.payload()["n"].as_i64()))
                .collect::<Vec<_>>()
        };
        let e1 = ids(s.list_events(d1, 10, None).await.unwrap());
        let e0 = ids(s.list_events(d0, 10, None).await.unwrap());
        assert_eq!(
            e1.iter().map(|x| x.1).collect::<Vec<_>>(),
            [Some(3), Some(1)]
        );
        // Ids follow the op order across devices: 1 (d1) < 2 (d0) < 3 (d1).
        assert!(e1[1].0 < e0[0].0 && e0[0].0 < e1[0].0, "{e0:?} {e1:?}");
    }
);

storage_test!(a_failing_batch_writes_nothing, |db: TestDb| async move {
    let s = &*db.storage;
    let (a, _, devices) = provision(s, 1).await;
    let dev = devices[0].dev_eui;
    // Break one table so that the last op of the batch fails (on Postgres with the
    // tables that refer to it, which SQLite does not check when dropping).
    let drop = if db.url().starts_with("sqlite") {
        "DROP TABLE gateways"
    } else {
        "DROP TABLE gateways CASCADE"
    };
    db.execute(drop).await.unwrap();
    let r = s
        .apply(&[
            WriteOp::UpsertSession(session(dev, 1)),
            WriteOp::InsertEvent(event(dev, a.id, EventKind::Up, 1)),
            WriteOp::DeviceSeen {
                dev_eui: dev,
                at: t0(),
            },
            WriteOp::GatewaySeen {
                gateway_id: eui(1),
                at: t0(),
                stats: None,
                location: None,
            },
        ])
        .await;
    assert!(matches!(r, Err(StoreError::Database(_))), "{r:?}");
    assert!(s.get_session(dev).await.unwrap().is_none());
    assert!(s.list_events(dev, 10, None).await.unwrap().is_empty());
    assert_eq!(s.get_device(dev).await.unwrap().unwrap().last_seen_at, None);
});

storage_test!(device_seen_and_class, |db: TestDb| async move {
    let s = &*db.storage;
    let (_, _, devices) = provision(s, 1).await;
    let dev = devices[0].dev_eui;
    s.apply(&[
        WriteOp::DeviceSeen {
            dev_eui: dev,
            at: t0(),
        },
        WriteOp::DeviceClass {
            dev_eui: dev,
            class: DeviceClass::C,
        },
    ])
    .await
    .unwrap();
    let d = s.get_device(dev).await.unwrap().unwrap();
    assert_eq!(d.last_seen_at, Some(t0()));
    assert_eq!(d.device_class_enabled, DeviceClass::C);
    // An API update does not clobber what the network server owns.
    s.update_device(&Device {
        name: "x".into(),
        ..devices[0].clone()
    })
    .await
    .unwrap();
    let d = s.get_device(dev).await.unwrap().unwrap();
    assert_eq!(d.last_seen_at, Some(t0()));
    assert_eq!(d.device_class_enabled, DeviceClass::C);
});

storage_test!(downlink_queue_lifecycle, |db: TestDb| async move {
    let s = &*db.storage;
    let (_, _, devices) = provision(s, 2).await;
    let dev = devices[0].dev_eui;
    let item = |n: i64, confirmed: bool| QueueItem {
        id: Uuid::new_v4(),
        dev_eui: dev,
        f_port: 10,
        data: vec![n as u8, 2, 3],
        confirmed,
        object: None,
        f_cnt_down: None,
        pending: false,
        sent_at: None,
        expires_at: Some(t0() + Duration::hours(1)),
        created_at: t0() + Duration::seconds(n),
    };
    let q1 = item(1, true);
    let q2 = QueueItem {
        object: Some(json!({"setpoint": 21})),
        data: vec![],
        ..item(2, false)
    };
    // Enqueued out of order; read back by age.
    s.enqueue(&q2).await.unwrap();
    s.enqueue(&q1).await.unwrap();
    assert_eq!(s.get_queue(dev).await.unwrap(), [q1.clone(), q2.clone()]);
    assert!(matches!(
        s.enqueue(&QueueItem {
            id: Uuid::new_v4(),
            dev_eui: eui(99),
            ..q1.clone()
        })
        .await,
        Err(StoreError::MissingReference { .. })
    ));

    s.apply(&[WriteOp::QueueMarkSent {
        id: q1.id,
        f_cnt_down: 42,
        sent_at: t0(),
        pending: true,
    }])
    .await
    .unwrap();
    let q = s.get_queue(dev).await.unwrap();
    assert_eq!(q[0].f_cnt_down, Some(42));
    assert!(q[0].pending);
    assert_eq!(q[0].sent_at, Some(t0()));

    s.apply(&[WriteOp::QueueDelete(q1.id)]).await.unwrap();
    assert_eq!(s.get_queue(dev).await.unwrap(), std::slice::from_ref(&q2));

    s.enqueue(&QueueItem {
        id: Uuid::new_v4(),
        dev_eui: devices[1].dev_eui,
        ..q1.clone()
    })
    .await
    .unwrap();
    assert_eq!(s.load_all_queue_items().await.unwrap().len(), 2);
    assert_eq!(s.flush_queue(dev).await.unwrap(), 1);
    assert!(s.get_queue(dev).await.unwrap().is_empty());
    assert_eq!(s.load_all_queue_items().await.unwrap().len(), 1);
});

storage_test!(gateways_round_trip_and_seen, |db: TestDb| async move {
    let s = &*db.storage;
    let mut g = Gateway {
        gateway_id: eui(0xaa),
        tenant_id: DEFAULT_TENANT_ID,
        name: "roof".into(),
        description: "north".into(),
        location: Some(Location {
            latitude: 52.1,
            longitude: 4.3,
            altitude: 12.0,
        }),
        location_source: LocationSource::Provisioned,
        last_seen_at: None,
        stats: None,
        private: false,
        created_at: t0(),
        updated_at: t0(),
    };
    s.create_gateway(&g).await.unwrap();
    assert!(matches!(
        s.create_gateway(&g).await,
        Err(StoreError::Duplicate { .. })
    ));
    assert_eq!(s.get_gateway(g.gateway_id).await.unwrap().unwrap(), g);
    let stats = json!({"rxnb": 3, "rxok": 2});
    s.apply(&[
        WriteOp::GatewaySeen {
            gateway_id: g.gateway_id,
            at: t0(),
            stats: Some(stats.clone()),
            location: None,
        },
        // Unknown gateways are ignored.
        WriteOp::GatewaySeen {
            gateway_id: eui(0xbb),
            at: t0(),
            stats: None,
            location: None,
        },
        // A keepalive without stats keeps the last stats.
        WriteOp::GatewaySeen {
            gateway_id: g.gateway_id,
            at: t0() + Duration::seconds(5),
            stats: None,
            location: None,
        },
    ])
    .await
    .unwrap();
    let got = s.get_gateway(g.gateway_id).await.unwrap().unwrap();
    assert_eq!(got.last_seen_at, Some(t0() + Duration::seconds(5)));
    assert_eq!(got.stats, Some(stats));
    assert_eq!(got.location, g.location);

    // A provisioned location is kept when the forwarder reports a GPS fix…
    let fix = Location {
        latitude: 48.0,
        longitude: 11.0,
        altitude: 500.0,
    };
    let report = WriteOp::GatewaySeen {
        gateway_id: g.gateway_id,
        at: t0() + Duration::seconds(10),
        stats: None,
        location: Some(fix),
    };
    s.apply(std::slice::from_ref(&report)).await.unwrap();
    let got = s.get_gateway(g.gateway_id).await.unwrap().unwrap();
    assert_eq!(got.location, g.location);
    assert_eq!(got.location_source, LocationSource::Provisioned);
    // …and replaced once the gateway's location source is `reported`.
    g.location_source = LocationSource::Reported;
    assert!(s.update_gateway(&g).await.unwrap());
    s.apply(std::slice::from_ref(&report)).await.unwrap();
    let got = s.get_gateway(g.gateway_id).await.unwrap().unwrap();
    assert_eq!(got.location, Some(fix));
    assert_eq!(got.location_source, LocationSource::Reported);

    g.name = "roof 2".into();
    g.location = None;
    assert!(s.update_gateway(&g).await.unwrap());
    let got = s.get_gateway(g.gateway_id).await.unwrap().unwrap();
    assert_eq!((got.name.as_str(), got.location), ("roof 2", None));
    assert_eq!(s.load_all_gateways().await.unwrap().len(), 1);
    assert_eq!(
        s.list_gateways(Some(Uuid::new_v4()), Page::ALL)
            .await
            .unwrap()
            .len(),
        0
    );
    assert!(s.delete_gateway(g.gateway_id).await.unwrap());
    assert!(s.get_gateway(g.gateway_id).await.unwrap().is_none());
});

storage_test!(private_gateway_flags_round_trip, |db: TestDb| async move {
    let s = &*db.storage;
    // Existing rows (the default tenant) read as not private.
    let default = s.get_tenant(DEFAULT_TENANT_ID).await.unwrap().unwrap();
    assert!(!default.private_gateways);
    let mut t = Tenant {
        private_gateways: true,
        ..tenant("private-by-default")
    };
    s.create_tenant(&t).await.unwrap();
    assert_eq!(s.get_tenant(t.id).await.unwrap().unwrap(), t);
    t.private_gateways = false;
    assert!(s.update_tenant(&t).await.unwrap());
    assert!(!s.get_tenant(t.id).await.unwrap().unwrap().private_gateways);
    assert!(s
        .load_all_tenants()
        .await
        .unwrap()
        .iter()
        .any(|x| x.id == t.id && !x.private_gateways));

    let mut g = Gateway {
        gateway_id: eui(0xab),
        tenant_id: t.id,
        name: "hidden".into(),
        description: String::new(),
        location: None,
        location_source: LocationSource::Reported,
        last_seen_at: None,
        stats: None,
        private: true,
        created_at: t0(),
        updated_at: t0(),
    };
    s.create_gateway(&g).await.unwrap();
    assert!(s.get_gateway(g.gateway_id).await.unwrap().unwrap().private);
    assert!(s.load_all_gateways().await.unwrap()[0].private);
    g.private = false;
    assert!(s.update_gateway(&g).await.unwrap());
    assert!(!s.get_gateway(g.gateway_id).await.unwrap().unwrap().private);
    g.private = true;
    assert!(s.update_gateway(&g).await.unwrap());
    let listed = s.list_gateways(Some(t.id), Page::ALL).await.unwrap();
    assert!(listed[0].private);
});

storage_test!(integrations_upsert_get_delete, |db: TestDb| async move {
    let s = &*db.storage;
    let (a, _, _) = provision(s, 0).await;
    let i = http_integration(a.id, "http://127.0.0.1:9/hook");
    assert!(s.upsert_integration(&i).await.unwrap(), "created");
    let got = s
        .get_integration(a.id, IntegrationKind::Http)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, i);
    let cfg: HttpIntegrationConfig = serde_json::from_value(got.config).unwrap();
    assert_eq!(cfg.signing_secret.as_deref(), Some("s3cret"));

    // A second POST replaces the config and the owner, and keeps the id.
    let replacement = Integration {
        owner: IntegrationOwner::Tenant,
        ..http_integration(a.id, "http://127.0.0.1:9/other")
    };
    assert!(
        !s.upsert_integration(&replacement).await.unwrap(),
        "replaced"
    );
    let got = s
        .get_integration(a.id, IntegrationKind::Http)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.id, i.id);
    assert_eq!(got.config, replacement.config);
    assert_eq!(got.owner, IntegrationOwner::Tenant);
    assert_eq!(s.list_integrations(Some(a.id)).await.unwrap().len(), 1);
    assert_eq!(s.list_integrations(None).await.unwrap().len(), 1);
    assert!(s
        .get_integration(a.id, IntegrationKind::Mqtt)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .delete_integration(a.id, IntegrationKind::Http)
        .await
        .unwrap());
    assert!(!s
        .delete_integration(a.id, IntegrationKind::Http)
        .await
        .unwrap());
});

storage_test!(
    webhooks_read_events_after_their_cursor,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (a, p, devices) = provision(s, 2).await;
        let (d0, d1) = (devices[0].dev_eui, devices[1].dev_eui);
        // Events written before the integration exists are not its business.
        s.apply(&[WriteOp::InsertEvent(event(d0, a.id, EventKind::Up, 0))])
            .await
            .unwrap();
        let hook = http_integration(a.id, "http://127.0.0.1:9/1");
        s.upsert_integration(&hook).await.unwrap();
        let start = s
            .delivery_cursors()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.integration_id == hook.id)
            .unwrap()
            .delivered_through;
        assert!(s.events_after(a.id, start, 10).await.unwrap().is_empty());
        assert_eq!(s.outbox_backlog(hook.id).await.unwrap(), 0);

        // Another application's events are not read.
        let other = app(DEFAULT_TENANT_ID, "other");
        s.create_application(&other).await.unwrap();
        let stranger = device(100, &other, &p);
        s.create_device(&stranger).await.unwrap();
        s.apply(&[
            WriteOp::InsertEvent(event(d0, a.id, EventKind::Join, 1)),
            WriteOp::InsertEvent(event(stranger.dev_eui, other.id, EventKind::Up, 2)),
            WriteOp::InsertEvent(event(d1, a.id, EventKind::Up, 3)),
            WriteOp::InsertEvent(event(d0, a.id, EventKind::Up, 4)),
        ])
        .await
        .unwrap();
        let evs = s.events_after(a.id, start, 10).await.unwrap();
        assert_eq!(evs.len(), 3);
        let ns: Vec<i64> = evs
            .iter()
            .map(|e| {
                serde_json::from_str::<serde_json::Value>(&e.body).unwrap()["n"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(ns, [1, 3, 4], "oldest first");
        assert!(evs.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!((evs[0].dev_eui, evs[0].kind), (d0, EventKind::Join));
        assert_eq!(evs[0].created_at, t0() + Duration::seconds(1));
        // Paged by the caller's position and limit.
        let page = s.events_after(a.id, evs[0].id, 1).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].id, evs[1].id);
        assert_eq!(s.outbox_backlog(hook.id).await.unwrap(), 3);

        // The cursor moves forward only; deliveries are noted.
        let at = t0() + Duration::minutes(1);
        save_cursor(s, hook.id, evs[1].id, Some(at)).await;
        save_cursor(s, hook.id, evs[0].id, None).await;
        let cursor = s
            .delivery_cursors()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.integration_id == hook.id)
            .unwrap();
        assert_eq!(cursor.delivered_through, evs[1].id);
        assert_eq!(s.outbox_backlog(hook.id).await.unwrap(), 1);
        let i = s
            .get_integration(a.id, IntegrationKind::Http)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(i.last_delivered_at, Some(at));

        // Replacing the settings keeps the cursor.
        s.upsert_integration(&http_integration(a.id, "http://127.0.0.1:9/2"))
            .await
            .unwrap();
        assert_eq!(s.outbox_backlog(hook.id).await.unwrap(), 1);

        // Spilled: in the outbox (counted once), the chain due at the earliest row,
        // and the error noted. A row for a vanished event is skipped.
        s.outbox_spill(
            &[
                SpillRow {
                    integration_id: hook.id,
                    event_id: evs[2].id,
                    dev_eui: d0,
                    attempts: 1,
                    next_attempt_at: at + Duration::seconds(5),
                    last_error: Some("HTTP 503".into()),
                    created_at: evs[2].created_at,
                },
                SpillRow {
                    integration_id: hook.id,
                    event_id: 1_000_000,
                    dev_eui: d0,
                    attempts: 0,
                    next_attempt_at: at,
                    last_error: None,
                    created_at: at,
                },
            ],
            at,
        )
        .await
        .unwrap();
        save_cursor(s, hook.id, evs[2].id, None).await;
        assert_eq!(s.outbox_backlog(hook.id).await.unwrap(), 1);
        assert_eq!(s.outbox_active_chains().await.unwrap(), vec![(hook.id, d0)]);
        let i = s
            .get_integration(a.id, IntegrationKind::Http)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(i.last_error.as_deref(), Some("HTTP 503"));
        assert!(s.claim_outbox(at, at, 10).await.unwrap().items.is_empty());
        let due = at + Duration::seconds(5);
        let claimed = s.claim_outbox(due, due, 10).await.unwrap();
        assert_eq!(claimed.items.len(), 1);
        assert_eq!(claimed.items[0].event_id, evs[2].id);
        assert_eq!(claimed.items[0].attempts, 1);
        assert_eq!(json_of(&claimed.items[0].body)["n"], 4);
        // Delivered: the chain is due, found empty, reported idle, and gone from
        // the active chains.
        s.outbox_delivered(&[claimed.items[0].id], due)
            .await
            .unwrap();
        let after = s.claim_outbox(due, due, 10).await.unwrap();
        assert!(after.items.is_empty());
        assert_eq!(after.idle, vec![(hook.id, d0)]);
        assert!(s.outbox_active_chains().await.unwrap().is_empty());
        assert!(s.claim_outbox(due, due, 10).await.unwrap().idle.is_empty());
    }
);

storage_test!(
    outbox_chains_deliver_in_order_with_leases_and_retries,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (a, _, devices) = provision(s, 2).await;
        let (d0, d1) = (devices[0].dev_eui, devices[1].dev_eui);
        let hook1 = http_integration(a.id, "http://127.0.0.1:9/1");
        let hook2 = Integration {
            kind: IntegrationKind::Mqtt,
            config: json!({}),
            ..http_integration(a.id, "x")
        };
        s.upsert_integration(&hook1).await.unwrap();
        s.upsert_integration(&hook2).await.unwrap();
        s.apply(&[
            WriteOp::InsertEvent(event(d0, a.id, EventKind::Join, 1)),
            WriteOp::InsertEvent(event(d0, a.id, EventKind::Up, 2)),
            WriteOp::InsertEvent(event(d1, a.id, EventKind::Up, 3)),
            WriteOp::InsertEvent(event(d0, a.id, EventKind::Up, 4)),
            // A deleted device's event is dropped without failing the batch.
            WriteOp::InsertEvent(event(eui(999), a.id, EventKind::Up, 5)),
        ])
        .await
        .unwrap();
        spill_all(s, &hook1).await;
        spill_all(s, &hook2).await;

        let evs = s.list_events(d0, 10, None).await.unwrap();
        assert_eq!(
            evs.iter()
                .map(|e| e.payload()["n"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            [4, 2, 1],
            "newest first"
        );
        assert_eq!(evs[2].kind, EventKind::Join);
        assert_eq!(s.list_events(d0, 2, None).await.unwrap().len(), 2);
        assert_eq!(s.outbox_backlog(hook1.id).await.unwrap(), 4);
        assert_eq!(s.outbox_backlog(hook2.id).await.unwrap(), 4);

        // Only the oldest row per (integration, device) is claimable: 2 devices x 2 integrations.
        let now = t0() + Duration::minutes(1);
        let lease = now + Duration::seconds(30);
        let claimed = s.claim_outbox(now, lease, 100).await.unwrap().items;
        assert_eq!(claimed.len(), 4);
        let head = |integration: Uuid, dev: Eui64| {
            claimed
                .iter()
                .find(|c| c.integration_id == integration && c.dev_eui == dev)
                .unwrap()
                .clone()
        };
        let h1d0 = head(hook1.id, d0);
        assert_eq!(json_of(&h1d0.body)["n"], 1);
        assert_eq!(h1d0.kind, EventKind::Join);
        assert_eq!(json_of(&head(hook1.id, d1).body)["n"], 3);
        // Claimed rows are leased: nothing more is due now.
        assert!(s
            .claim_outbox(now, lease, 100)
            .await
            .unwrap()
            .items
            .is_empty());

        // Delivered: the next event of that chain becomes claimable.
        s.outbox_delivered(&[h1d0.id], now).await.unwrap();
        let next = s.claim_outbox(now, lease, 100).await.unwrap().items;
        assert_eq!(next.len(), 1);
        assert_eq!(json_of(&next[0].body)["n"], 2);
        assert_eq!(next[0].integration_id, hook1.id);
        let i = s
            .get_integration(a.id, IntegrationKind::Http)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(i.last_delivered_at, Some(now));

        // Failed: counted, error kept, retried at the given time, order kept meanwhile.
        let retry = now + Duration::seconds(10);
        s.outbox_failed(next[0].id, now, "HTTP 500", retry)
            .await
            .unwrap();
        assert!(s
            .claim_outbox(now, lease, 100)
            .await
            .unwrap()
            .items
            .is_empty());
        let again = s
            .claim_outbox(retry, retry + Duration::seconds(30), 100)
            .await
            .unwrap()
            .items;
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, next[0].id);
        assert_eq!(again[0].attempts, 1);
        assert_eq!(again[0].last_error.as_deref(), Some("HTTP 500"));
        let i = s
            .get_integration(a.id, IntegrationKind::Http)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(i.last_error.as_deref(), Some("HTTP 500"));
        assert_eq!(i.last_error_at, Some(now));

        // Leases expire: rows of a crashed worker come back.
        let later = lease + Duration::seconds(1);
        let back = s
            .claim_outbox(later, later + Duration::seconds(30), 100)
            .await
            .unwrap()
            .items;
        assert_eq!(back.len(), 3, "hook1/d1, hook2/d0, hook2/d1");

        // Limit respected.
        let much_later = later + Duration::minutes(5);
        assert_eq!(
            s.claim_outbox(much_later, much_later, 1)
                .await
                .unwrap()
                .items
                .len(),
            1
        );

        // Giving up after the max age removes the rows: events 1 and 2 were written
        // before t0+3s; hook1's copy of event 1 is already delivered.
        assert_eq!(
            s.delete_outbox_older_than(t0() + Duration::seconds(3))
                .await
                .unwrap(),
            3
        );
        assert_eq!(s.outbox_backlog(hook1.id).await.unwrap(), 2);
        assert_eq!(s.outbox_backlog(hook2.id).await.unwrap(), 2);
    }
);

storage_test!(
    outbox_release_and_expiry_keep_the_chain_order,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (a, _, devices) = provision(s, 1).await;
        let d0 = devices[0].dev_eui;
        let hook = http_integration(a.id, "http://127.0.0.1:9/1");
        s.upsert_integration(&hook).await.unwrap();
        let ops: Vec<WriteOp> = (0..3)
            .map(|n| WriteOp::InsertEvent(event(d0, a.id, EventKind::Up, n)))
            .collect();
        s.apply(&ops).await.unwrap();
        spill_all(s, &hook).await;
        let now = t0() + Duration::hours(1);
        let lease = now + Duration::minutes(10);
        let head = s.claim_outbox(now, lease, 10).await.unwrap().items;
        assert_eq!(head.len(), 1);
        // Released: due again at the given time, not at the end of the lease, and
        // with no attempt counted.
        let soon = now + Duration::seconds(1);
        s.outbox_release(&[(hook.id, d0)], soon).await.unwrap();
        assert!(s
            .claim_outbox(now, lease, 10)
            .await
            .unwrap()
            .items
            .is_empty());
        let again = s.claim_outbox(soon, lease, 10).await.unwrap().items;
        assert_eq!((again[0].id, again[0].attempts), (head[0].id, 0));
        // Expired: removed, the next row is due at once, the error is noted and no
        // delivery is claimed.
        s.outbox_expired(&[again[0].id], soon, "gave up after 24 h")
            .await
            .unwrap();
        let next = s.claim_outbox(soon, lease, 10).await.unwrap().items;
        assert_eq!(json_of(&next[0].body)["n"], 1);
        let i = s
            .get_integration(a.id, IntegrationKind::Http)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(i.last_error.as_deref(), Some("gave up after 24 h"));
        assert_eq!(i.last_delivered_at, None);
        assert_eq!(s.outbox_backlog(hook.id).await.unwrap(), 2);
        // Empty calls are no-ops.
        s.outbox_release(&[], soon).await.unwrap();
        s.outbox_expired(&[], soon, "x").await.unwrap();
    }
);

storage_test!(
    outbox_chains_wait_out_their_backoff_and_go_idle,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (a, _, devices) = provision(s, 2).await;
        let (d0, d1) = (devices[0].dev_eui, devices[1].dev_eui);
        let hook = http_integration(a.id, "http://127.0.0.1:9/1");
        s.upsert_integration(&hook).await.unwrap();
        // A backlog: 300 events for d0, 1 for d1.
        let mut ops: Vec<WriteOp> = (0..300)
            .map(|n| WriteOp::InsertEvent(event(d0, a.id, EventKind::Up, n)))
            .collect();
        ops.push(WriteOp::InsertEvent(event(d1, a.id, EventKind::Up, 1000)));
        s.apply(&ops).await.unwrap();
        spill_all(s, &hook).await;
        let now = t0() + Duration::hours(1);
        let claimed = s
            .claim_outbox(now, now + Duration::seconds(30), 100)
            .await
            .unwrap()
            .items;
        assert_eq!(claimed.len(), 2, "one head per device, not the backlog");
        let head0 = claimed.iter().find(|c| c.dev_eui == d0).unwrap().clone();
        let head1 = claimed.iter().find(|c| c.dev_eui == d1).unwrap().clone();
        assert_eq!(json_of(&head0.body)["n"], 0);

        // d0's endpoint fails: the chain waits for its retry even when new events arrive.
        let retry = now + Duration::minutes(5);
        s.outbox_failed(head0.id, now, "timeout", retry)
            .await
            .unwrap();
        s.apply(&[WriteOp::InsertEvent(event(d0, a.id, EventKind::Up, 301))])
            .await
            .unwrap();
        spill_all(s, &hook).await;
        // d1 delivered: its chain is due again at once, finds nothing and goes idle.
        s.outbox_delivered(&[head1.id], now).await.unwrap();
        let idle = s.claim_outbox(now, now, 100).await.unwrap();
        assert!(idle.items.is_empty());
        assert_eq!(idle.idle, vec![(hook.id, d1)]);
        // A new event wakes the idle chain.
        s.apply(&[WriteOp::InsertEvent(event(d1, a.id, EventKind::Up, 1001))])
            .await
            .unwrap();
        spill_all(s, &hook).await;
        let woke = s
            .claim_outbox(now, now + Duration::seconds(30), 100)
            .await
            .unwrap()
            .items;
        assert_eq!(woke.len(), 1);
        assert_eq!(json_of(&woke[0].body)["n"], 1001);

        // After the retry time d0's head comes back first, with its attempt counted.
        let again = s
            .claim_outbox(retry, retry + Duration::seconds(30), 100)
            .await
            .unwrap()
            .items;
        let again0 = again.iter().find(|c| c.dev_eui == d0).unwrap().clone();
        assert_eq!((again0.id, again0.attempts), (head0.id, 1));
        // Delivering a batch of ids at once.
        s.outbox_delivered(&[again0.id, woke[0].id], retry)
            .await
            .unwrap();
        let next = s
            .claim_outbox(retry, retry + Duration::seconds(30), 100)
            .await
            .unwrap()
            .items;
        assert_eq!(next.len(), 1);
        assert_eq!(json_of(&next[0].body)["n"], 1);
        assert_eq!(s.outbox_backlog(hook.id).await.unwrap(), 300);
    }
);

storage_test!(
    retention_deletes_old_events_and_their_outbox_rows,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (a, _, devices) = provision(s, 1).await;
        let d = devices[0].dev_eui;
        let hook = http_integration(a.id, "http://127.0.0.1:9/1");
        s.upsert_integration(&hook).await.unwrap();
        // Four events a day for five days from t0; keep those from day 3 on: the
        // three days wholly before the cutoff are dropped (a partition on
        // Postgres, a table on SQLite).
        let ops: Vec<WriteOp> = (0..20)
            .map(|n| WriteOp::InsertEvent(event(d, a.id, EventKind::Up, (n / 4) * 86_400 + n)))
            .collect();
        s.apply(&ops).await.unwrap();
        spill_all(s, &hook).await;
        let done = s
            .event_retention(t0(), t0() + Duration::days(3))
            .await
            .unwrap();
        assert_eq!(done.partitions_dropped.len(), 3, "{done:?}");
        assert_eq!(done.rows_deleted, 0, "{done:?}");
        if s.backend() == Backend::Postgres {
            // Today's partition and the next three days' exist ahead.
            assert!(done.partitions_created.len() <= 4, "{done:?}");
        }
        let left = s.list_events(d, 100, None).await.unwrap();
        assert_eq!(left.len(), 8);
        // The rows of deleted events went with them.
        assert_eq!(s.outbox_backlog(hook.id).await.unwrap(), 8);
        assert_eq!(s.events_after(a.id, 0, 100).await.unwrap().len(), 8);
        // Deleting the integration drops its undelivered rows.
        s.delete_integration(a.id, IntegrationKind::Http)
            .await
            .unwrap();
        assert_eq!(s.outbox_backlog(hook.id).await.unwrap(), 0);
    }
);

storage_test!(a_reopened_store_keeps_everything, |db: TestDb| async move {
    let s = &*db.storage;
    let (a, p, devices) = provision(s, 2).await;
    let dev = devices[0].dev_eui;
    s.set_device_keys(dev, &key(5), Some(&key(6)))
        .await
        .unwrap();
    let sess = session(dev, 0x2601_0101);
    s.apply(&[
        WriteOp::UpsertSession(sess.clone()),
        WriteOp::RecordJoin {
            dev_eui: dev,
            dev_nonce: 33,
            join_nonce: 2,
            at: now(),
        },
        WriteOp::InsertEvent(event(dev, a.id, EventKind::Up, 1)),
    ])
    .await
    .unwrap();
    s.close().await;

    let s2 = db.reopen().await;
    s2.migrate().await.unwrap();
    assert_eq!(s2.get_device_profile(p.id).await.unwrap().unwrap(), p);
    assert_eq!(s2.get_device(dev).await.unwrap().unwrap(), devices[0]);
    assert_eq!(s2.get_session(dev).await.unwrap().unwrap(), sess);
    let k = s2.get_device_keys(dev).await.unwrap().unwrap();
    assert_eq!((k.join_nonce, k.last_dev_nonce), (2, Some(33)));
    assert_eq!(k.used_dev_nonces, [33]);
    assert_eq!(s2.list_events(dev, 10, None).await.unwrap().len(), 1);
    s2.close().await;
});

#[tokio::test]
async fn connect_rejects_unknown_urls() {
    let err = connect(
        "mysql://root:hunter2@localhost/x",
        crate::testing::test_keyring(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::BadUrl { .. }), "{err}");
    let text = err.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("sqlite://PATH"), "{text}");
}

#[test]
fn urls_are_redacted() {
    assert_eq!(
        redact_url("postgres://u:pw@h:5432/db"),
        "postgres://u:***@h:5432/db"
    );
    assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
}

#[tokio::test]
async fn sqlite_file_is_created_with_wal() {
    let db = TestDb::sqlite().await;
    let path = db.url().trim_start_matches("sqlite://").to_string();
    assert!(std::path::Path::new(&path).exists());
    let s = db.storage.clone();
    s.create_tenant(&tenant("x")).await.unwrap();
    assert!(std::path::Path::new(&format!("{path}-wal")).exists());
    assert_eq!(s.backend(), Backend::Sqlite);
}

/// Throughput of the hot-path writes and the start-up load. Ignored by default (it
/// writes a million rows); run with
/// `cargo test -p lorikeet-storage --release -- --ignored --nocapture measure_`.
mod measure {
    use super::*;
    use std::time::Instant;

    async fn uplinks_per_second(db: &TestDb, devices: u64, batch: usize, batches: usize) -> f64 {
        let s = &*db.storage;
        let (a, _, devs) = provision(s, 0).await.clone();
        let p = s
            .list_device_profiles(None, Page::ALL)
            .await
            .unwrap()
            .remove(0);
        let mut list = devs;
        for i in 0..devices {
            let d = device(10_000 + i, &a, &p);
            s.create_device(&d).await.unwrap();
            list.push(d);
        }
        s.upsert_integration(&http_integration(a.id, "http://127.0.0.1:9/x"))
            .await
            .unwrap();
        let start = Instant::now();
        let mut n = 0u64;
        for b in 0..batches {
            let mut ops = Vec::with_capacity(batch * 3);
            for i in 0..batch {
                let d = &list[(b * batch + i) % list.len()];
                let mut sess = session(d.dev_eui, 0x2600_0000 + (n as u32 % 1000));
                sess.f_cnt_up = n as u32;
                ops.push(WriteOp::UpsertSession(sess));
                ops.push(WriteOp::InsertEvent(event(
                    d.dev_eui,
                    a.id,
                    EventKind::Up,
                    n as i64,
                )));
                ops.push(WriteOp::DeviceSeen {
                    dev_eui: d.dev_eui,
                    at: t0(),
                });
                n += 1;
            }
            s.apply(&ops).await.unwrap();
        }
        n as f64 / start.elapsed().as_secs_f64()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement, not a check: run with --run-ignored only (see docs/storage.md)"]
    async fn measure_apply_throughput() {
        let lite = TestDb::sqlite().await;
        let r = uplinks_per_second(&lite, 2000, 500, 40).await;
        println!("sqlite: {r:.0} uplinks/s (session + event + last seen, 500 per transaction)");
        if let Some(pg) = TestDb::postgres().await {
            let r = uplinks_per_second(&pg, 2000, 500, 40).await;
            println!(
                "postgres: {r:.0} uplinks/s (session + event + last seen, 500 per transaction)"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement, not a check: run with --run-ignored only (see docs/storage.md)"]
    async fn measure_load_a_million_sessions() {
        let Some(db) = TestDb::postgres().await else {
            return;
        };
        let s = &*db.storage;
        let (a, p, _) = provision(s, 0).await;
        let setup = format!(
            "INSERT INTO devices (dev_eui, join_eui, tenant_id, application_id, device_profile_id, \
             name, created_at, updated_at) \
             SELECT int8send(g), int8send(0), '{t}', '{a}', '{p}', 'd' || g, now(), now() \
             FROM generate_series(1, 1000000) g; \
             INSERT INTO device_sessions (dev_eui, dev_addr, mac_version, f_nwk_s_int_key, \
             s_nwk_s_int_key, nwk_s_enc_key, app_s_key, f_cnt_up, n_f_cnt_down, a_f_cnt_down, \
             ns_state, updated_at) \
             SELECT int8send(g), int4send(g::int), '1.0.3', k, k, k, k, g, 0, 0, \
             '{{\"adr\":{{\"history\":[1,2,3,4,5,6,7,8,9,10]}},\"rx1DrOffset\":0}}', now() \
             FROM generate_series(1, 1000000) g, \
             (SELECT decode('000102030405060708090a0b0c0d0e0f', 'hex') AS k) keys",
            t = DEFAULT_TENANT_ID,
            a = a.id,
            p = p.id
        );
        db.execute(&setup).await.unwrap();
        db.execute("ANALYZE").await.unwrap();
        let start = Instant::now();
        let all = s.load_all_sessions().await.unwrap();
        let took = start.elapsed();
        assert_eq!(all.len(), 1_000_000);
        println!("postgres: load_all_sessions of 1M sessions took {took:?}");
    }
}

/// An outbox item's or pending event's body, parsed.
fn json_of(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap()
}
