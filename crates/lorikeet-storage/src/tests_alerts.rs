//! Contract tests of alert rules and alerts, on SQLite and Postgres.

use chrono::Duration;
use serde_json::json;
use uuid::Uuid;

use crate::storage_test;
use crate::testing::TestDb;
use crate::tests::{app, t0, tenant};
use crate::*;

fn rule(tenant_id: Uuid, application_id: Option<Uuid>, name: &str, kind: &str) -> AlertRule {
    AlertRule {
        id: Uuid::new_v4(),
        tenant_id,
        application_id,
        name: name.into(),
        kind: kind.into(),
        params: json!({"minutes": 5}),
        created_at: t0(),
        updated_at: t0(),
    }
}

fn firing(r: &AlertRule, subject: &str, minutes: i64) -> Alert {
    Alert {
        id: Uuid::new_v4(),
        rule_id: r.id,
        rule_name: String::new(),
        kind: String::new(),
        tenant_id: r.tenant_id,
        application_id: r.application_id,
        subject_type: "device".into(),
        subject: subject.into(),
        state: AlertState::Firing,
        message: format!("quiet {minutes}"),
        resolve_message: None,
        fired_at: t0() + Duration::minutes(minutes),
        resolved_at: None,
    }
}

storage_test!(alert_rules_and_their_alerts, |db: TestDb| async move {
    let s = &*db.storage;
    let (ta, tb) = (tenant("a"), tenant("b"));
    s.create_tenant(&ta).await.unwrap();
    s.create_tenant(&tb).await.unwrap();
    let a1 = app(ta.id, "a1");
    s.create_application(&a1).await.unwrap();

    // Rules: tenant-wide and per application; an application's list includes the
    // tenant-wide ones.
    let wide = rule(ta.id, None, "wide", "device_silent");
    let narrow = rule(ta.id, Some(a1.id), "narrow", "field");
    let other = rule(tb.id, None, "other", "gateway_offline");
    for r in [&wide, &narrow, &other] {
        s.create_alert_rule(r).await.unwrap();
    }
    assert_eq!(s.get_alert_rule(narrow.id).await.unwrap().unwrap(), narrow);
    let names = |v: Vec<AlertRule>| v.into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(
        names(
            s.list_alert_rules(Some(ta.id), None, Page::ALL)
                .await
                .unwrap()
        )
        .len(),
        2
    );
    assert_eq!(
        names(
            s.list_alert_rules(Some(ta.id), Some(a1.id), Page::ALL)
                .await
                .unwrap()
        )
        .len(),
        2
    );
    assert_eq!(
        names(
            s.list_alert_rules(Some(tb.id), None, Page::ALL)
                .await
                .unwrap()
        ),
        vec!["other"]
    );
    assert_eq!(
        s.list_alert_rules(None, None, Page::ALL)
            .await
            .unwrap()
            .len(),
        3
    );
    let mut changed = narrow.clone();
    changed.name = "renamed".into();
    changed.params = json!({"expression": "object.t > 1"});
    changed.updated_at = t0() + Duration::minutes(1);
    assert!(s.update_alert_rule(&changed).await.unwrap());
    assert_eq!(s.get_alert_rule(narrow.id).await.unwrap().unwrap(), changed);
    // A rule of a missing application is refused.
    let ghost = rule(ta.id, Some(Uuid::new_v4()), "ghost", "field");
    assert!(matches!(
        s.create_alert_rule(&ghost).await,
        Err(StoreError::MissingReference { .. })
    ));

    // Alerts, written through apply: one firing alert per rule and subject.
    let f1 = firing(&wide, "0000000000000001", 1);
    let dup = firing(&wide, "0000000000000001", 2);
    let f2 = firing(&wide, "0000000000000002", 3);
    let gone_rule = firing(&ghost, "0000000000000003", 4);
    s.apply(&[
        WriteOp::AlertFired(f1.clone()),
        WriteOp::AlertFired(dup.clone()),
        WriteOp::AlertFired(f2.clone()),
        WriteOp::AlertFired(gone_rule.clone()),
    ])
    .await
    .unwrap();
    let only_firing = AlertFilter {
        tenant_id: Some(ta.id),
        state: Some(AlertState::Firing),
        ..AlertFilter::default()
    };
    let listed = s.list_alerts(only_firing, Page::ALL).await.unwrap();
    assert_eq!(
        listed.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![f2.id, f1.id],
        "newest first; the duplicate and the alert of a missing rule were skipped"
    );
    assert_eq!(listed[0].rule_name, "wide");
    assert_eq!(listed[0].kind, "device_silent");
    assert!(s.get_alert(dup.id).await.unwrap().is_none());

    // Resolving: once; then the subject may fire again.
    let at = t0() + Duration::minutes(10);
    s.apply(&[
        WriteOp::AlertResolved {
            id: f1.id,
            at,
            message: "heard".into(),
        },
        WriteOp::AlertResolved {
            id: f1.id,
            at: at + Duration::minutes(1),
            message: "again".into(),
        },
    ])
    .await
    .unwrap();
    let r = s.get_alert(f1.id).await.unwrap().unwrap();
    assert_eq!(r.state, AlertState::Resolved);
    assert_eq!(
        (r.resolved_at, r.resolve_message.as_deref()),
        (Some(at), Some("heard"))
    );
    let again = firing(&wide, "0000000000000001", 20);
    s.apply(&[WriteOp::AlertFired(again.clone())])
        .await
        .unwrap();
    let by_rule = AlertFilter {
        rule_id: Some(wide.id),
        ..AlertFilter::default()
    };
    assert_eq!(s.list_alerts(by_rule, Page::ALL).await.unwrap().len(), 3);
    let resolved = AlertFilter {
        state: Some(AlertState::Resolved),
        ..AlertFilter::default()
    };
    assert_eq!(s.list_alerts(resolved, Page::ALL).await.unwrap().len(), 1);
    // Another tenant sees none of them.
    let b_only = AlertFilter {
        tenant_id: Some(tb.id),
        ..AlertFilter::default()
    };
    assert!(s.list_alerts(b_only, Page::ALL).await.unwrap().is_empty());

    // Retention takes resolved alerts only.
    assert_eq!(
        s.delete_alerts_resolved_before(at + Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.list_alerts(by_rule, Page::ALL).await.unwrap().len(), 2);

    // Deleting a rule deletes its alerts; deleting a tenant its rules.
    assert!(s.delete_alert_rule(wide.id).await.unwrap());
    assert!(!s.delete_alert_rule(wide.id).await.unwrap());
    assert!(s.list_alerts(by_rule, Page::ALL).await.unwrap().is_empty());
    s.delete_tenant(tb.id).await.unwrap();
    assert!(s.get_alert_rule(other.id).await.unwrap().is_none());
});
