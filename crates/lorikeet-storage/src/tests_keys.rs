//! Keys at rest, on SQLite and Postgres: what is on disk is sealed, a value moved
//! to another row does not open, start-up refuses a missing or wrong KEK, rotation
//! re-seals everything, and rows of the previous version are sealed at start-up.

use std::collections::BTreeMap;

use lorikeet_lorawan::Eui64;
use serde_json::json;
use uuid::Uuid;

use crate::kek::{classify, Stored};
use crate::storage_test;
use crate::testing::{test_keyring, OldDb, TestDb};
use crate::tests::*;
use crate::*;

/// A hex byte-string literal in the dialect of `url`.
pub(crate) fn lit(url: &str, b: &[u8]) -> String {
    if url.starts_with("sqlite:") {
        format!("X'{}'", hex::encode(b))
    } else {
        format!("'\\x{}'::bytea", hex::encode(b))
    }
}

fn kek(b: u8, id: Option<&str>) -> Kek {
    Kek::new(&[b; 32], id).unwrap()
}

/// The HTTP integration config with secrets the tests store.
fn http_config() -> serde_json::Value {
    json!({
        "url": "https://example.com/hook",
        "headers": {"Authorization": "Bearer top-secret-token"},
        "signingSecret": "hmac-secret-value"
    })
}

fn integration(application_id: Uuid) -> Integration {
    Integration {
        id: Uuid::new_v4(),
        application_id,
        kind: IntegrationKind::Http,
        owner: crate::IntegrationOwner::Admin,
        config: http_config(),
        last_delivered_at: None,
        last_error: None,
        last_error_at: None,
        created_at: t0(),
        updated_at: t0(),
    }
}

/// Two devices with root keys and a session each, and an HTTP integration.
async fn populate(s: &dyn Storage) -> (Application, Vec<Device>) {
    let (a, _, devices) = provision(s, 2).await;
    for (i, d) in devices.iter().enumerate() {
        let b = i as u8 * 16;
        s.set_device_keys(d.dev_eui, &key(b + 1), Some(&key(b + 2)))
            .await
            .unwrap();
        let mut session = session(d.dev_eui, 0x2601_0000 + i as u32);
        session.app_s_key = key(b + 3);
        session.f_nwk_s_int_key = key(b + 4);
        s.activate_session(&session).await.unwrap();
    }
    s.upsert_integration(&integration(a.id)).await.unwrap();
    (a, devices)
}

/// Every stored secret column value, raw from disk (NULLs left out).
async fn raw_secrets(db: &dyn RawSql) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for sql in [
        "SELECT app_key FROM device_keys ORDER BY dev_eui",
        "SELECT nwk_key FROM device_keys ORDER BY dev_eui",
        "SELECT f_nwk_s_int_key FROM device_sessions ORDER BY dev_eui",
        "SELECT s_nwk_s_int_key FROM device_sessions ORDER BY dev_eui",
        "SELECT nwk_s_enc_key FROM device_sessions ORDER BY dev_eui",
        "SELECT app_s_key FROM device_sessions ORDER BY dev_eui",
        "SELECT secrets FROM integrations ORDER BY id",
    ] {
        out.extend(db.raw(sql).await.into_iter().flatten());
    }
    out
}

/// Raw SQL on a test database of either kind.
#[async_trait::async_trait]
trait RawSql: Sync {
    async fn raw(&self, sql: &str) -> Vec<Option<Vec<u8>>>;
    async fn text(&self, sql: &str) -> String;
}

#[async_trait::async_trait]
impl RawSql for TestDb {
    async fn raw(&self, sql: &str) -> Vec<Option<Vec<u8>>> {
        self.raw_bytes(sql).await.unwrap()
    }
    async fn text(&self, sql: &str) -> String {
        let v = self.raw_bytes(sql).await.unwrap();
        String::from_utf8(v[0].clone().unwrap()).unwrap()
    }
}

#[async_trait::async_trait]
impl RawSql for OldDb {
    async fn raw(&self, sql: &str) -> Vec<Option<Vec<u8>>> {
        self.raw_bytes(sql).await.unwrap()
    }
    async fn text(&self, sql: &str) -> String {
        let v = self.raw_bytes(sql).await.unwrap();
        String::from_utf8(v[0].clone().unwrap()).unwrap()
    }
}

/// The integration config as stored in `config`, as bytes.
fn config_sql(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "SELECT CAST(config AS BLOB) FROM integrations"
    } else {
        "SELECT convert_to(config::text, 'UTF8') FROM integrations"
    }
}

fn test_kek_id() -> String {
    test_keyring().current_id().to_owned()
}

storage_test!(secrets_are_sealed_on_disk, |db: TestDb| async move {
    let s = &*db.storage;
    let (a, devices) = populate(s).await;

    let raw = raw_secrets(&db).await;
    assert_eq!(raw.len(), 2 * 2 + 2 * 4 + 1);
    for v in &raw {
        assert_eq!(classify(v), Stored::Sealed(&test_kek_id()), "{v:02x?}");
        for b in 1..=0x24u8 {
            assert!(
                !v.windows(16).any(|w| w == [b; 16]),
                "a plain key is on disk: {v:02x?}"
            );
        }
        let text = String::from_utf8_lossy(v);
        assert!(!text.contains("top-secret") && !text.contains("hmac-secret"));
    }
    let config = db.text(config_sql(db.url())).await;
    assert!(config.contains("https://example.com/hook"), "{config}");
    assert!(
        !config.contains("top-secret") && !config.contains("hmac-secret"),
        "{config}"
    );

    // Everything reads back as written.
    let k = s
        .get_device_keys(devices[1].dev_eui)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((k.app_key, k.nwk_key), (key(17), Some(key(18))));
    let session = s.get_session(devices[1].dev_eui).await.unwrap().unwrap();
    assert_eq!(
        (session.app_s_key.clone(), session.f_nwk_s_int_key.clone()),
        (key(19), key(20))
    );
    assert_eq!(s.load_all_sessions().await.unwrap().len(), 2);
    assert_eq!(s.load_all_device_keys().await.unwrap().len(), 2);
    let i = s
        .get_integration(a.id, IntegrationKind::Http)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(i.config, http_config());
    let census = s.key_census().await.unwrap();
    assert_eq!(census.by_kek, BTreeMap::from([(test_kek_id(), 13)]));
    assert_eq!((census.plain, census.unknown), (0, 0));

    // The hot path's batched session write seals too, and the same bytes for an
    // unchanged session (no fresh nonce per uplink).
    let before = db
        .raw("SELECT app_s_key FROM device_sessions ORDER BY dev_eui")
        .await;
    let mut again = session.clone();
    again.f_cnt_up += 1;
    s.apply(&[WriteOp::UpsertSession(again)]).await.unwrap();
    let after = db
        .raw("SELECT app_s_key FROM device_sessions ORDER BY dev_eui")
        .await;
    assert_eq!(before, after);
    assert_eq!(
        s.get_session(devices[1].dev_eui)
            .await
            .unwrap()
            .unwrap()
            .f_cnt_up,
        session.f_cnt_up + 1
    );
});

storage_test!(
    a_value_copied_to_another_row_or_column_does_not_decrypt,
    |db: TestDb| async move {
        let s = &*db.storage;
        let (a, devices) = populate(s).await;
        let (one, two) = (devices[0].dev_eui, devices[1].dev_eui);
        let url = db.url().to_owned();
        // Device one gets device two's sealed AppKey.
        db.execute(&format!(
            "UPDATE device_keys SET app_key = (SELECT app_key FROM device_keys WHERE dev_eui = {}) \
             WHERE dev_eui = {}",
            lit(&url, &two.0),
            lit(&url, &one.0)
        ))
        .await
        .unwrap();
        let err = s.get_device_keys(one).await.unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::Sealed { table: "device_keys", column: "app_key", row, .. }
                    if *row == one.to_string()
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("copied from another row"), "{err}");
        assert!(s.get_device_keys(two).await.unwrap().is_some());
        assert!(s.load_all_device_keys().await.is_err());

        // Within one row, from one column to another.
        db.execute(&format!(
            "UPDATE device_sessions SET app_s_key = nwk_s_enc_key WHERE dev_eui = {}",
            lit(&url, &two.0)
        ))
        .await
        .unwrap();
        assert!(matches!(
            s.get_session(two).await,
            Err(StoreError::Sealed {
                column: "app_s_key",
                ..
            })
        ));

        // A plain key written behind the store's back is refused, not used.
        db.execute(&format!(
            "UPDATE device_sessions SET app_s_key = {} WHERE dev_eui = {}",
            lit(&url, &[7; 16]),
            lit(&url, &one.0)
        ))
        .await
        .unwrap();
        assert!(s.get_session(one).await.is_err());

        // Integration secrets are bound to their application.
        let (other_app, _, _) = provision(s, 0).await;
        s.upsert_integration(&integration(other_app.id))
            .await
            .unwrap();
        db.execute(&format!(
            "UPDATE integrations SET secrets = (SELECT secrets FROM integrations WHERE \
             application_id = {}) WHERE application_id = {}",
            uuid_lit(&url, a.id),
            uuid_lit(&url, other_app.id)
        ))
        .await
        .unwrap();
        assert!(s
            .get_integration(other_app.id, IntegrationKind::Http)
            .await
            .is_err());
        assert!(s.get_integration(a.id, IntegrationKind::Http).await.is_ok());
    }
);

pub(crate) fn uuid_lit(url: &str, id: Uuid) -> String {
    if url.starts_with("sqlite:") {
        lit(url, id.as_bytes())
    } else {
        format!("'{id}'")
    }
}

storage_test!(
    start_up_refuses_a_missing_or_wrong_kek,
    |db: TestDb| async move {
        populate(&*db.storage).await;
        let stored = test_kek_id();

        // Another KEK (another id): the database's KEK is missing.
        let err = db
            .reopen_with(Keyring::new(kek(9, Some("k2"))))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Kek(KekError::UnknownId { stored: s, .. }) if *s == stored),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "the database holds keys encrypted under KEK id '{stored}', but no configured \
                 KEK has that id (configured: 'k2')"
            )),
            "{text}"
        );

        // Another key under the same id: wrong.
        let err = db
            .reopen_with(Keyring::new(kek(9, Some(&stored))))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            KekError::WrongKey {
                kek_id: stored.clone()
            }
            .to_string()
        );
        assert!(err.to_string().contains("does not decrypt them"), "{err}");

        // Neither refusal left anything behind: the right KEK still opens it, and
        // no verifier of the refused KEKs was stored.
        let s = db.reopen().await;
        assert!(s.get_device_keys(eui(0)).await.unwrap().is_some());
        assert_eq!(db.raw("SELECT verifier FROM kek_verifiers").await.len(), 1);
    }
);

storage_test!(
    rotation_reseals_every_value_and_retires_the_old_kek,
    |db: TestDb| async move {
        let (a, devices) = populate(&*db.storage).await;
        let old_id = test_kek_id();
        let before = raw_secrets(&db).await;
        assert_eq!(before.len(), 13);

        // A server restarted with the new KEK, the old one listed as previous:
        // values under the old one still open, new writes use the new one.
        let ring = Keyring::with_previous(
            kek(5, Some("k2")),
            vec![Kek::from_hex(testing::TEST_KEK_HEX, None).unwrap()],
        )
        .unwrap();
        let s = db.reopen_with(ring.clone()).await.unwrap();
        assert_eq!(
            s.get_device_keys(devices[0].dev_eui)
                .await
                .unwrap()
                .unwrap()
                .app_key,
            key(1)
        );
        s.set_device_keys(devices[0].dev_eui, &key(0x31), None)
            .await
            .unwrap();
        let census = s.key_census().await.unwrap();
        assert_eq!(
            census.by_kek,
            BTreeMap::from([(old_id.clone(), 11), ("k2".to_string(), 1)])
        );

        // Two rows per batch: several transactions per table.
        let report = s.rotate_keys(1).await.unwrap();
        assert_eq!(report.kek_id, "k2");
        assert_eq!(report.resealed, 11);
        assert_eq!(report.passes, 2);
        assert_eq!(report.retired, vec![old_id.clone()]);
        let after = raw_secrets(&db).await;
        assert_eq!(after.len(), 12, "device 0 has no NwkKey now");
        for v in &after {
            assert_eq!(classify(v), Stored::Sealed("k2"));
            assert!(!before.contains(v));
        }
        assert_eq!(
            s.key_census().await.unwrap().by_kek,
            BTreeMap::from([("k2".to_string(), 12)])
        );

        // Everything still reads, with the new KEK alone.
        let s = db
            .reopen_with(Keyring::new(kek(5, Some("k2"))))
            .await
            .unwrap();
        let k = s
            .get_device_keys(devices[1].dev_eui)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((k.app_key, k.nwk_key), (key(17), Some(key(18))));
        assert_eq!(
            s.get_device_keys(devices[0].dev_eui)
                .await
                .unwrap()
                .unwrap()
                .app_key,
            key(0x31)
        );
        let session = s.get_session(devices[1].dev_eui).await.unwrap().unwrap();
        assert_eq!(session.app_s_key, key(19));
        assert_eq!(
            s.get_integration(a.id, IntegrationKind::Http)
                .await
                .unwrap()
                .unwrap()
                .config,
            http_config()
        );
        // The old KEK alone no longer opens the database.
        let err = db.reopen_with(test_keyring()).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Kek(KekError::UnknownId { stored, .. }) if stored == "k2"),
            "{err:?}"
        );
    }
);

/// The version before keys at rest (migration 6).
const KEYS_AT_REST: i64 = 20250101000006;

/// Rows as the previous version wrote them: plain keys, integration secrets in
/// `config`.
pub(crate) async fn write_old_rows(db: &OldDb) -> (Uuid, Eui64) {
    let url = db.url();
    let sqlite = url.starts_with("sqlite:");
    let (ts, t, f, json) = if sqlite {
        ("1740830400000000", "1", "0", "")
    } else {
        ("now()", "TRUE", "FALSE", "::jsonb")
    };
    let tenant = uuid_lit(url, DEFAULT_TENANT_ID);
    let (app, profile) = (Uuid::new_v4(), Uuid::new_v4());
    let dev = Eui64::from_u64(0x70b3_d57e_d000_0042);
    let key = |b: u8| lit(url, &[b; 16]);
    for sql in [
        format!(
            "INSERT INTO applications (id, tenant_id, name, created_at, updated_at) \
             VALUES ({}, {tenant}, 'old', {ts}, {ts})",
            uuid_lit(url, app)
        ),
        format!(
            "INSERT INTO device_profiles (id, tenant_id, name, region, mac_version, \
             reg_params_revision, supports_otaa, supports_class_c, adr_enabled, rx1_delay, \
             rx1_dr_offset, codec_type, created_at, updated_at) VALUES ({}, {tenant}, 'p', \
             'EU868', '1.1.0', 'RP002-1.0.3', {t}, {f}, {t}, 1, 0, 'none', {ts}, {ts})",
            uuid_lit(url, profile)
        ),
        format!(
            "INSERT INTO devices (dev_eui, join_eui, tenant_id, application_id, \
             device_profile_id, name, created_at, updated_at) VALUES ({}, {}, {tenant}, {}, {}, \
             'old device', {ts}, {ts})",
            lit(url, &dev.0),
            lit(url, &[1; 8]),
            uuid_lit(url, app),
            uuid_lit(url, profile)
        ),
        format!(
            "INSERT INTO device_keys (dev_eui, app_key, nwk_key, join_nonce, last_dev_nonce, \
             updated_at) VALUES ({}, {}, {}, 7, 9, {ts})",
            lit(url, &dev.0),
            key(0xa1),
            key(0xa2)
        ),
        format!(
            "INSERT INTO device_sessions (dev_eui, dev_addr, mac_version, f_nwk_s_int_key, \
             s_nwk_s_int_key, nwk_s_enc_key, app_s_key, f_cnt_up, n_f_cnt_down, a_f_cnt_down, \
             updated_at) VALUES ({}, {}, '1.1.0', {}, {}, {}, {}, 10, 3, 4, {ts})",
            lit(url, &dev.0),
            lit(url, &[0x26, 1, 2, 3]),
            key(0xb1),
            key(0xb2),
            key(0xb3),
            key(0xb4)
        ),
        format!(
            "INSERT INTO integrations (id, application_id, kind, config, created_at, updated_at) \
             VALUES ({}, {}, 'http', '{}'{json}, {ts}, {ts})",
            uuid_lit(url, Uuid::new_v4()),
            uuid_lit(url, app),
            http_config()
        ),
    ] {
        db.execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    (app, dev)
}

/// A database of the previous version, upgraded: the plain rows are sealed at
/// start-up and read back as they were.
async fn plain_rows_are_sealed_at_start_up(db: OldDb) {
    let (app, dev) = write_old_rows(&db).await;
    let raw = db.raw("SELECT app_key FROM device_keys").await;
    assert_eq!(raw, vec![Some(vec![0xa1; 16])], "plain before");

    let s = db.upgrade(test_keyring()).await.unwrap();
    let raw = raw_secrets(&db).await;
    assert_eq!(raw.len(), 7);
    for v in &raw {
        assert_eq!(classify(v), Stored::Sealed(&test_kek_id()), "{v:02x?}");
    }
    let config = db.text(config_sql(db.url())).await;
    assert!(
        config.contains("example.com") && !config.contains("top-secret"),
        "{config}"
    );

    let k = s.get_device_keys(dev).await.unwrap().unwrap();
    assert_eq!((k.app_key, k.nwk_key), (key(0xa1), Some(key(0xa2))));
    assert_eq!((k.join_nonce, k.last_dev_nonce), (7, Some(9)));
    let session = s.get_session(dev).await.unwrap().unwrap();
    assert_eq!(
        (
            session.f_nwk_s_int_key,
            session.s_nwk_s_int_key,
            session.nwk_s_enc_key,
            session.app_s_key
        ),
        (key(0xb1), key(0xb2), key(0xb3), key(0xb4))
    );
    assert_eq!((session.f_cnt_up, session.n_f_cnt_down), (10, 3));
    assert_eq!(
        s.get_integration(app, IntegrationKind::Http)
            .await
            .unwrap()
            .unwrap()
            .config,
        http_config()
    );
    s.close().await;
    // A second start has nothing left to do, and opens the same.
    let s = db.upgrade(test_keyring()).await.unwrap();
    assert_eq!(s.key_census().await.unwrap().not_under(&test_kek_id()), 0);
    assert!(s.get_session(dev).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_rows_of_the_previous_version_are_sealed_at_start_up_sqlite() {
    plain_rows_are_sealed_at_start_up(OldDb::sqlite(KEYS_AT_REST).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_rows_of_the_previous_version_are_sealed_at_start_up_postgres() {
    if let Some(db) = OldDb::postgres(KEYS_AT_REST).await {
        plain_rows_are_sealed_at_start_up(db).await;
    }
}

// The rotation writes a value back only if it is still the one it read: a key the
// server (or the API) replaced meanwhile is left as it is.
storage_test!(
    a_rotation_never_overwrites_a_value_written_meanwhile,
    |db: TestDb| async move {
        let (_, devices) = populate(&*db.storage).await;
        let dev = devices[0].dev_eui;
        let read = db
            .raw("SELECT app_key FROM device_keys ORDER BY dev_eui")
            .await[0]
            .clone()
            .unwrap();
        // Meanwhile, a new AppKey.
        db.storage
            .set_device_keys(dev, &key(0x55), None)
            .await
            .unwrap();
        let store = if db.url().starts_with("sqlite:") {
            crate::sqlite::open(db.url(), crate::sqlite::Lock::None, SqliteSync::Full)
                .await
                .unwrap()
        } else {
            crate::postgres::connect(db.url()).await.unwrap()
        };
        let ring = Keyring::new(kek(5, Some("k2")));
        let resealed = ring.seal(
            &kek::Context {
                table: "device_keys",
                column: "app_key",
                row: &dev.0,
            },
            key(1).as_bytes(),
        );
        let mut tx = store.begin().await.unwrap();
        let n = crate::entities::reseal::swap_column(
            &mut tx,
            "device_keys",
            "app_key",
            &[(dev.0.to_vec(), read.clone(), resealed.clone())],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(n, 0, "the value changed since it was read");
        assert_eq!(
            db.storage
                .get_device_keys(dev)
                .await
                .unwrap()
                .unwrap()
                .app_key,
            key(0x55)
        );
        // The value as read is swapped.
        let current = db
            .raw("SELECT app_key FROM device_keys ORDER BY dev_eui")
            .await[0]
            .clone()
            .unwrap();
        let mut tx = store.begin().await.unwrap();
        let n = crate::entities::reseal::swap_column(
            &mut tx,
            "device_keys",
            "app_key",
            &[(dev.0.to_vec(), current, resealed.clone())],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(n, 1);
        assert_eq!(
            db.raw("SELECT app_key FROM device_keys ORDER BY dev_eui")
                .await[0],
            Some(resealed)
        );
        store.close_pools().await;
    }
);

const INTEGRATION_OWNER: i64 = 20250101000008;

/// A database of the version before the SSRF guard (migration 8), upgraded: its
/// webhooks count as a tenant's (the strict rule) and the response bodies quoted in
/// old delivery errors are gone, leaving the status.
async fn old_integrations_are_tenant_owned_and_errors_lose_bodies(db: OldDb) {
    let (app, _) = write_old_rows(&db).await;
    db.execute(
        "UPDATE integrations SET last_error = 'HTTP 500: {\"token\":\"leaked-by-the-body\"}'",
    )
    .await
    .unwrap();
    let s = db.upgrade(test_keyring()).await.unwrap();
    let i = s
        .get_integration(app, IntegrationKind::Http)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(i.owner, IntegrationOwner::Tenant);
    assert_eq!(i.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(i.config, http_config(), "settings survive the migration");
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_of_the_version_before_the_ssrf_guard_upgrade_sqlite() {
    old_integrations_are_tenant_owned_and_errors_lose_bodies(
        OldDb::sqlite(INTEGRATION_OWNER).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_of_the_version_before_the_ssrf_guard_upgrade_postgres() {
    if let Some(db) = OldDb::postgres(INTEGRATION_OWNER).await {
        old_integrations_are_tenant_owned_and_errors_lose_bodies(db).await;
    }
}
