//! Contract tests of console users, roles and sessions, on SQLite and Postgres.

use chrono::Duration;
use uuid::Uuid;

use crate::storage_test;
use crate::testing::TestDb;
use crate::tests::{t0, tenant};
use crate::*;

fn user(email: &str, roles: Vec<(Uuid, Role)>) -> User {
    User {
        id: Uuid::new_v4(),
        email: email.into(),
        is_admin: false,
        roles,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn session(user_id: Uuid, token: &str, hours: i64) -> UserSession {
    UserSession {
        token_hash: hash_token(token),
        user_id,
        csrf_token: format!("csrf-{token}"),
        created_at: t0(),
        expires_at: t0() + Duration::hours(hours),
    }
}

storage_test!(users_roles_and_emails, |db: TestDb| async move {
    let s = &*db.storage;
    let (a, b) = (tenant("a"), tenant("b"));
    s.create_tenant(&a).await.unwrap();
    s.create_tenant(&b).await.unwrap();
    let mut roles = vec![(a.id, Role::Viewer), (b.id, Role::DeviceManager)];
    roles.sort();
    let u = user("ann@example.com", roles.clone());
    s.create_user(&u, "$argon2id$hash-a").await.unwrap();
    assert_eq!(s.get_user(u.id).await.unwrap().unwrap(), u);
    let (found, hash) = s.user_by_email("ann@example.com").await.unwrap().unwrap();
    assert_eq!((found, hash.as_str()), (u.clone(), "$argon2id$hash-a"));
    assert!(s.user_by_email("bob@example.com").await.unwrap().is_none());

    // One account per email.
    let dup = user("ann@example.com", vec![]);
    assert!(matches!(
        s.create_user(&dup, "x").await,
        Err(StoreError::Duplicate { .. })
    ));

    // Roles are replaced as a whole; a tenant's users are those with a role in it.
    let other = user("cy@example.com", vec![(a.id, Role::Admin)]);
    s.create_user(&other, "x").await.unwrap();
    let in_b: Vec<_> = s
        .list_users(Some(b.id), Page::ALL)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(in_b, vec![u.id]);
    assert!(s
        .set_user_roles(u.id, &[(a.id, Role::Admin)], t0())
        .await
        .unwrap());
    assert_eq!(
        s.get_user(u.id).await.unwrap().unwrap().roles,
        vec![(a.id, Role::Admin)]
    );
    assert!(s
        .list_users(Some(b.id), Page::ALL)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.list_users(None, Page::ALL).await.unwrap().len(), 2);
    assert!(!s.set_user_roles(Uuid::new_v4(), &[], t0()).await.unwrap());
    // A role in a tenant that does not exist is refused.
    assert!(s
        .set_user_roles(u.id, &[(Uuid::new_v4(), Role::Viewer)], t0())
        .await
        .is_err());
    assert_eq!(
        s.get_user(u.id).await.unwrap().unwrap().roles,
        vec![(a.id, Role::Admin)],
        "a refused change leaves the roles as they were"
    );

    // Deleting a tenant removes the roles in it.
    s.delete_tenant(a.id).await.unwrap();
    assert!(s.get_user(u.id).await.unwrap().unwrap().roles.is_empty());

    // Admin flag and email.
    assert_eq!(s.count_admin_users().await.unwrap(), 0);
    assert!(s
        .update_user(u.id, "ann@example.org", true, t0())
        .await
        .unwrap());
    assert_eq!(s.count_admin_users().await.unwrap(), 1);
    assert!(s.user_by_email("ann@example.org").await.unwrap().is_some());
    assert!(matches!(
        s.update_user(other.id, "ann@example.org", false, t0())
            .await,
        Err(StoreError::Duplicate { .. })
    ));
    assert!(s.delete_user(other.id).await.unwrap());
    assert!(!s.delete_user(other.id).await.unwrap());
});

storage_test!(
    sessions_expire_end_and_follow_passwords,
    |db: TestDb| async move {
        let s = &*db.storage;
        let u = user("dee@example.com", vec![]);
        s.create_user(&u, "old").await.unwrap();
        let (one, two) = (session(u.id, "one", 12), session(u.id, "two", 12));
        s.create_user_session(&one).await.unwrap();
        s.create_user_session(&two).await.unwrap();
        let (got, who) = s
            .user_session(&one.token_hash, t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((got, who.id), (one.clone(), u.id));
        // Expired at its expiry.
        assert!(s
            .user_session(&one.token_hash, t0() + Duration::hours(12))
            .await
            .unwrap()
            .is_none());
        assert!(s
            .user_session(&hash_token("three"), t0())
            .await
            .unwrap()
            .is_none());

        // A new password ends the other sessions, not the one that changed it.
        assert!(s
            .set_user_password(u.id, "new", Some(&one.token_hash), t0())
            .await
            .unwrap());
        assert_eq!(s.user_password_hash(u.id).await.unwrap().unwrap(), "new");
        assert!(s
            .user_session(&one.token_hash, t0())
            .await
            .unwrap()
            .is_some());
        assert!(s
            .user_session(&two.token_hash, t0())
            .await
            .unwrap()
            .is_none());

        // Sign-out; purge; deleting the user ends the rest.
        assert!(s.delete_user_session(&one.token_hash).await.unwrap());
        assert!(s
            .user_session(&one.token_hash, t0())
            .await
            .unwrap()
            .is_none());
        let short = session(u.id, "short", 1);
        let long = session(u.id, "long", 48);
        s.create_user_session(&short).await.unwrap();
        s.create_user_session(&long).await.unwrap();
        assert_eq!(
            s.purge_user_sessions(t0() + Duration::hours(2))
                .await
                .unwrap(),
            1
        );
        assert!(s
            .user_session(&long.token_hash, t0())
            .await
            .unwrap()
            .is_some());
        s.delete_user(u.id).await.unwrap();
        assert!(s
            .user_session(&long.token_hash, t0())
            .await
            .unwrap()
            .is_none());
    }
);

storage_test!(uplink_counters_follow_the_events, |db: TestDb| async move {
    use crate::tests::{app, device, event, profile};
    let s = &*db.storage;
    let (ta, tb) = (tenant("a"), tenant("b"));
    s.create_tenant(&ta).await.unwrap();
    s.create_tenant(&tb).await.unwrap();
    let (a, b) = (app(ta.id, "a"), app(tb.id, "b"));
    s.create_application(&a).await.unwrap();
    s.create_application(&b).await.unwrap();
    let (pa, pb) = (profile(ta.id), profile(tb.id));
    s.create_device_profile(&pa).await.unwrap();
    s.create_device_profile(&pb).await.unwrap();
    let (da, db_) = (device(1, &a, &pa), device(2, &b, &pb));
    s.create_device(&da).await.unwrap();
    s.create_device(&db_).await.unwrap();
    // t0 is 12:00:00.123; events at +n seconds: minute 12:00 for n < 60.
    let batch = |ops: Vec<NewEvent>| {
        ops.into_iter()
            .map(WriteOp::InsertEvent)
            .collect::<Vec<_>>()
    };
    s.apply(&batch(vec![
        event(da.dev_eui, a.id, EventKind::Up, 1),
        event(da.dev_eui, a.id, EventKind::Up, 2),
        event(da.dev_eui, a.id, EventKind::Join, 3),
        event(db_.dev_eui, b.id, EventKind::Up, 4),
        event(da.dev_eui, a.id, EventKind::Up, 70),
    ]))
    .await
    .unwrap();
    // A later batch adds to the same minute.
    s.apply(&batch(vec![event(da.dev_eui, a.id, EventKind::Up, 5)]))
        .await
        .unwrap();
    let from = t0() - Duration::hours(1);
    let to = t0() + Duration::hours(1);
    let minute = |m: i64| {
        use chrono::{DurationRound, TimeDelta};
        (t0() + Duration::minutes(m))
            .duration_trunc(TimeDelta::minutes(1))
            .unwrap()
    };
    assert_eq!(
        s.uplinks_per_minute(Some(ta.id), None, from, to)
            .await
            .unwrap(),
        vec![(minute(0), 3), (minute(1), 1)]
    );
    assert_eq!(
        s.uplinks_per_minute(None, None, from, to).await.unwrap(),
        vec![(minute(0), 4), (minute(1), 1)]
    );
    assert_eq!(
        s.uplinks_per_minute(None, Some(b.id), from, to)
            .await
            .unwrap(),
        vec![(minute(0), 1)]
    );
    assert_eq!(s.count_devices(Some(ta.id)).await.unwrap(), 1);
    assert_eq!(s.count_devices(None).await.unwrap(), 2);
    assert_eq!(s.delivery_backlog(None).await.unwrap(), 0);
    assert_eq!(s.delete_traffic_older_than(minute(1)).await.unwrap(), 2);
    assert_eq!(
        s.uplinks_per_minute(None, None, from, to).await.unwrap(),
        vec![(minute(1), 1)]
    );
});

storage_test!(link_health_follows_the_uplinks, |db: TestDb| async move {
    use crate::tests::{app, device, profile};
    let s = &*db.storage;
    let t = tenant("link");
    s.create_tenant(&t).await.unwrap();
    let a = app(t.id, "a");
    s.create_application(&a).await.unwrap();
    let p = profile(t.id);
    s.create_device_profile(&p).await.unwrap();
    let d = device(7, &a, &p);
    s.create_device(&d).await.unwrap();
    let sample = |secs: i64, f_cnt: u32, rssi: i32, snr: Option<f32>| {
        WriteOp::DeviceLink(LinkSample {
            dev_eui: d.dev_eui,
            at: t0() + Duration::seconds(secs),
            f_cnt,
            dr: 5,
            rssi_dbm: rssi,
            snr_db: snr,
        })
    };
    // t0 is 12:00:00.123: two uplinks in the 12:00 hour, one at 13:00; and one of a
    // device that does not exist (skipped, the batch still commits).
    let ghost = WriteOp::DeviceLink(LinkSample {
        dev_eui: Eui64::from_u64(0xdead),
        at: t0(),
        f_cnt: 1,
        dr: 0,
        rssi_dbm: -100,
        snr_db: None,
    });
    s.apply(&[
        sample(1, 10, -80, Some(5.0)),
        ghost,
        sample(2, 11, -60, None),
    ])
    .await
    .unwrap();
    s.apply(&[
        sample(3, 12, -70, Some(7.0)),
        sample(3600, 13, -90, Some(-2.5)),
        WriteOp::DeviceStatus {
            dev_eui: d.dev_eui,
            at: t0(),
            battery_percent: Some(87.5),
            external_power: false,
            margin_db: 12,
        },
    ])
    .await
    .unwrap();
    let l = s
        .device_link(
            d.dev_eui,
            t0() - Duration::hours(1),
            t0() + Duration::hours(3),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (l.f_cnt_up, l.dr, l.rssi_dbm, l.snr_db),
        (Some(13), Some(5), Some(-90), Some(-2.5))
    );
    assert_eq!(
        (l.battery_percent, l.external_power, l.margin_db),
        (Some(87.5), Some(false), Some(12))
    );
    assert_eq!(l.history.len(), 2, "{:?}", l.history);
    // An uplink's last-seen time and its link figures go in one row update; a seen
    // time without a sample, or of another uplink than the newest sample, on its own.
    let seen = |secs: i64| WriteOp::DeviceSeen {
        dev_eui: d.dev_eui,
        at: t0() + Duration::seconds(secs),
    };
    s.apply(&[seen(3700), sample(3700, 14, -85, None)])
        .await
        .unwrap();
    let last_seen = || async { s.get_device(d.dev_eui).await.unwrap().unwrap().last_seen_at };
    assert_eq!(last_seen().await, Some(t0() + Duration::seconds(3700)));
    s.apply(&[seen(3800)]).await.unwrap();
    assert_eq!(last_seen().await, Some(t0() + Duration::seconds(3800)));
    s.apply(&[sample(3900, 15, -85, None), seen(3950)])
        .await
        .unwrap();
    assert_eq!(last_seen().await, Some(t0() + Duration::seconds(3950)));
    s.apply(&[sample(4000, 16, -85, None)]).await.unwrap();
    assert_eq!(
        last_seen().await,
        Some(t0() + Duration::seconds(3950)),
        "a sample alone leaves last_seen_at"
    );
    let h = &l.history[0];
    assert_eq!((h.uplinks, h.rssi_min, h.rssi_max), (3, -80, -60));
    assert!((h.rssi_avg + 70.0).abs() < 1e-9, "{h:?}");
    assert_eq!(h.snr_avg, Some(6.0));
    assert_eq!(l.history[1].uplinks, 1);
    // The range picks hours; retention drops them.
    let later = s
        .device_link(
            d.dev_eui,
            t0() + Duration::hours(1),
            t0() + Duration::hours(3),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(later.history.len(), 1, "{:?}", later.history);
    assert_eq!(
        s.delete_link_hours_older_than(t0() + Duration::minutes(30))
            .await
            .unwrap(),
        1
    );
    assert!(s
        .device_link(Eui64::from_u64(0xdead), t0(), t0() + Duration::hours(1))
        .await
        .unwrap()
        .is_none());
});

storage_test!(
    gateway_minutes_add_up_and_follow_the_gateway,
    |db: TestDb| async move {
        let s = &*db.storage;
        let t = tenant("gw");
        s.create_tenant(&t).await.unwrap();
        let gw = Gateway {
            gateway_id: Eui64::from_u64(0x0a0b_0000_0000_0001),
            tenant_id: t.id,
            name: "roof".into(),
            description: String::new(),
            location: None,
            location_source: LocationSource::Reported,
            last_seen_at: None,
            stats: None,
            private: false,
            created_at: t0(),
            updated_at: t0(),
        };
        s.create_gateway(&gw).await.unwrap();
        let row = |id: Eui64, up: u64, down: u64, err: u64| GatewayTraffic {
            gateway_id: id,
            uplinks: up,
            downlinks: down,
            tx_ack_errors: err,
        };
        let flush = |minute, rows| WriteOp::GatewayTraffic { minute, rows };
        // Two flushes in one minute add up; one in the next; a gateway that does not
        // exist is skipped without failing the batch.
        s.apply(&[
            flush(
                t0(),
                vec![
                    row(gw.gateway_id, 3, 1, 0),
                    row(Eui64::from_u64(9), 5, 5, 5),
                ],
            ),
            flush(
                t0() + Duration::seconds(5),
                vec![row(gw.gateway_id, 2, 0, 1)],
            ),
            flush(
                t0() + Duration::seconds(60),
                vec![row(gw.gateway_id, 1, 0, 0)],
            ),
        ])
        .await
        .unwrap();
        let minutes = s
            .gateway_minutes(
                gw.gateway_id,
                t0() - Duration::hours(1),
                t0() + Duration::hours(1),
            )
            .await
            .unwrap();
        let got: Vec<_> = minutes
            .iter()
            .map(|m| (m.uplinks, m.downlinks, m.tx_ack_errors))
            .collect();
        assert_eq!(got, vec![(5, 1, 1), (1, 0, 0)]);
        assert_eq!(
            s.delete_gateway_minutes_older_than(t0() + Duration::seconds(30))
                .await
                .unwrap(),
            1
        );
        // Deleting the gateway takes its minutes along (an EUI re-created elsewhere
        // starts clean).
        s.delete_gateway(gw.gateway_id).await.unwrap();
        s.create_gateway(&gw).await.unwrap();
        assert!(s
            .gateway_minutes(
                gw.gateway_id,
                t0() - Duration::hours(1),
                t0() + Duration::hours(1)
            )
            .await
            .unwrap()
            .is_empty());
    }
);
