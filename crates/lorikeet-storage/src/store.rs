//! The SQL shared by both backends, as a macro that implements [`crate::Storage`]
//! for a store type over one sqlx database type.
//!
//! A backend module defines its store struct with these inherent methods, then
//! invokes `impl_storage!`:
//! - `fn reader(&self) -> &Pool<DB>` and `fn writer(&self) -> &Pool<DB>`;
//! - `async fn begin_write(&self) -> Result<Transaction<'static, DB>, sqlx::Error>`;
//! - `async fn run_migrations(&self) -> Result<(), StoreError>`, `async fn close_pools(&self)`;
//! - `async fn apply_batch(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>` (may use
//!   the macro-generated `apply_one` for each op, in one transaction).
//!
//! - `async fn set_chains(tx, Vec<(integration, dev_eui, next_attempt_at)>)` and
//!   `async fn delete_outbox_rows(tx, ids) -> Vec<(integration, dev_eui)>` (outbox
//!   bookkeeping that Postgres does with arrays in one statement).
//!
//! The only shared SQL that differs is the row-locking clause of the outbox claim,
//! passed as `lock = "..."`.

macro_rules! tenant_cols {
    () => {
        "id, name, created_at, updated_at"
    };
}
macro_rules! api_key_cols {
    () => {
        "id, tenant_id, name, created_at"
    };
}
macro_rules! app_cols {
    () => {
        "id, tenant_id, name, description, created_at, updated_at"
    };
}
macro_rules! profile_cols {
    () => {
        "id, tenant_id, name, description, region, mac_version, reg_params_revision, \
         supports_otaa, supports_class_c, adr_enabled, rx1_delay, rx1_dr_offset, rx2_dr, \
         rx2_frequency_hz, codec_type, codec_script, mac_settings, created_at, updated_at"
    };
}
macro_rules! device_cols {
    () => {
        "dev_eui, join_eui, tenant_id, application_id, device_profile_id, name, description, \
         tags, skip_fcnt_check, disabled, device_class_enabled, last_seen_at, created_at, updated_at"
    };
}
macro_rules! session_cols {
    () => {
        "dev_eui, dev_addr, mac_version, f_nwk_s_int_key, s_nwk_s_int_key, nwk_s_enc_key, \
         app_s_key, f_cnt_up, n_f_cnt_down, a_f_cnt_down, conf_f_cnt, ns_state, updated_at"
    };
}
/// What a session upsert replaces when the device already has a session.
macro_rules! session_upsert_set {
    () => {
        "ON CONFLICT (dev_eui) DO UPDATE SET dev_addr = excluded.dev_addr, \
         mac_version = excluded.mac_version, f_nwk_s_int_key = excluded.f_nwk_s_int_key, \
         s_nwk_s_int_key = excluded.s_nwk_s_int_key, nwk_s_enc_key = excluded.nwk_s_enc_key, \
         app_s_key = excluded.app_s_key, f_cnt_up = excluded.f_cnt_up, \
         n_f_cnt_down = excluded.n_f_cnt_down, a_f_cnt_down = excluded.a_f_cnt_down, \
         conf_f_cnt = excluded.conf_f_cnt, ns_state = excluded.ns_state, \
         updated_at = excluded.updated_at"
    };
}
macro_rules! queue_cols {
    () => {
        "id, dev_eui, f_port, data, confirmed, object, f_cnt_down, pending, sent_at, expires_at, \
         created_at"
    };
}
macro_rules! gateway_cols {
    () => {
        "gateway_id, tenant_id, name, description, latitude, longitude, altitude, last_seen_at, \
         stats, created_at, updated_at"
    };
}
macro_rules! integration_cols {
    () => {
        "id, application_id, kind, config, last_delivered_at, last_error, last_error_at, \
         created_at, updated_at"
    };
}
macro_rules! event_cols {
    () => {
        "id, dev_eui, application_id, kind, payload, created_at"
    };
}

/// The `Storage` implementation shared by both backends. `lock`: the row-lock clause
/// of the outbox claim; `body`: the events' JSON as text.
macro_rules! impl_storage {
    ($store:ty, $db:ty, $backend:expr, lock = $lock:literal, body = $body:literal) => {
        use std::collections::BTreeMap;

        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
        use sqlx::types::Json;
        use sqlx::Row;
        use uuid::Uuid;

        use crate::model::*;
        use crate::sql::{self, timer, ts_opt, Ts};
        use crate::{Backend, DeviceFilter, Storage, StoreError, WriteOp};

        type DbRow = <$db as sqlx::Database>::Row;
        const BACKEND: Backend = $backend;

        fn limit(page: Page) -> (i64, i64) {
            (
                i64::from(page.limit),
                i64::try_from(page.offset).unwrap_or(i64::MAX),
            )
        }

        fn eui_after(after: Option<Eui64>) -> Vec<u8> {
            after.map(|e| e.0.to_vec()).unwrap_or_default()
        }

        fn tenant_row(r: &DbRow) -> Result<Tenant, StoreError> {
            Ok(Tenant {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                created_at: r.try_get::<Ts, _>("created_at")?.0,
                updated_at: r.try_get::<Ts, _>("updated_at")?.0,
            })
        }

        fn api_key_row(r: &DbRow) -> Result<ApiKey, StoreError> {
            Ok(ApiKey {
                id: r.try_get("id")?,
                tenant_id: r.try_get("tenant_id")?,
                name: r.try_get("name")?,
                created_at: r.try_get::<Ts, _>("created_at")?.0,
            })
        }

        fn app_row(r: &DbRow) -> Result<Application, StoreError> {
            Ok(Application {
                id: r.try_get("id")?,
                tenant_id: r.try_get("tenant_id")?,
                name: r.try_get("name")?,
                description: r.try_get("description")?,
                created_at: r.try_get::<Ts, _>("created_at")?.0,
                updated_at: r.try_get::<Ts, _>("updated_at")?.0,
            })
        }

        fn profile_row(r: &DbRow) -> Result<DeviceProfile, StoreError> {
            const T: &str = "device_profiles";
            let codec_type: String = r.try_get("codec_type")?;
            let script: String = r.try_get("codec_script")?;
            let rx2_dr: Option<i64> = r.try_get("rx2_dr")?;
            let rx2_frequency_hz: Option<i64> = r.try_get("rx2_frequency_hz")?;
            Ok(DeviceProfile {
                id: r.try_get("id")?,
                tenant_id: r.try_get("tenant_id")?,
                name: r.try_get("name")?,
                description: r.try_get("description")?,
                region: r.try_get("region")?,
                mac_version: r.try_get("mac_version")?,
                reg_params_revision: r.try_get("reg_params_revision")?,
                supports_otaa: r.try_get("supports_otaa")?,
                supports_class_c: r.try_get("supports_class_c")?,
                adr_enabled: r.try_get("adr_enabled")?,
                rx1_delay: sql::int(r.try_get("rx1_delay")?, T, "rx1_delay")?,
                rx1_dr_offset: sql::int(r.try_get("rx1_dr_offset")?, T, "rx1_dr_offset")?,
                rx2_dr: rx2_dr.map(|v| sql::int(v, T, "rx2_dr")).transpose()?,
                rx2_frequency_hz: rx2_frequency_hz
                    .map(|v| sql::int(v, T, "rx2_frequency_hz"))
                    .transpose()?,
                payload_codec: sql::known(
                    &codec_type,
                    |t| PayloadCodec::from_parts(t, script),
                    T,
                    "codec_type",
                )?,
                mac_settings: r.try_get::<Json<serde_json::Value>, _>("mac_settings")?.0,
                created_at: r.try_get::<Ts, _>("created_at")?.0,
                updated_at: r.try_get::<Ts, _>("updated_at")?.0,
            })
        }

        fn device_row(r: &DbRow) -> Result<Device, StoreError> {
            const T: &str = "devices";
            let class: String = r.try_get("device_class_enabled")?;
            Ok(Device {
                dev_eui: sql::eui(r.try_get("dev_eui")?, T, "dev_eui")?,
                join_eui: sql::eui(r.try_get("join_eui")?, T, "join_eui")?,
                tenant_id: r.try_get("tenant_id")?,
                application_id: r.try_get("application_id")?,
                device_profile_id: r.try_get("device_profile_id")?,
                name: r.try_get("name")?,
                description: r.try_get("description")?,
                tags: r.try_get::<Json<BTreeMap<String, String>>, _>("tags")?.0,
                skip_fcnt_check: r.try_get("skip_fcnt_check")?,
                disabled: r.try_get("disabled")?,
                device_class_enabled: sql::known(
                    &class,
                    DeviceClass::parse,
                    T,
                    "device_class_enabled",
                )?,
                last_seen_at: r.try_get::<Option<Ts>, _>("last_seen_at")?.map(|t| t.0),
                created_at: r.try_get::<Ts, _>("created_at")?.0,
                updated_at: r.try_get::<Ts, _>("updated_at")?.0,
            })
        }

        fn session_row(r: &DbRow) -> Result<DeviceSession, StoreError> {
            const T: &str = "device_sessions";
            Ok(DeviceSession {
                dev_eui: sql::eui(r.try_get("dev_eui")?, T, "dev_eui")?,
                dev_addr: sql::dev_addr(r.try_get("dev_addr")?, T, "dev_addr")?,
                mac_version: r.try_get("mac_version")?,
                f_nwk_s_int_key: sql::key(r.try_get("f_nwk_s_int_key")?, T, "f_nwk_s_int_key")?,
                s_nwk_s_int_key: sql::key(r.try_get("s_nwk_s_int_key")?, T, "s_nwk_s_int_key")?,
                nwk_s_enc_key: sql::key(r.try_get("nwk_s_enc_key")?, T, "nwk_s_enc_key")?,
                app_s_key: sql::key(r.try_get("app_s_key")?, T, "app_s_key")?,
                f_cnt_up: sql::int(r.try_get("f_cnt_up")?, T, "f_cnt_up")?,
                n_f_cnt_down: sql::int(r.try_get("n_f_cnt_down")?, T, "n_f_cnt_down")?,
                a_f_cnt_down: sql::int(r.try_get("a_f_cnt_down")?, T, "a_f_cnt_down")?,
                conf_f_cnt: sql::int(r.try_get("conf_f_cnt")?, T, "conf_f_cnt")?,
                ns_state: r.try_get("ns_state")?,
                updated_at: r.try_get::<Ts, _>("updated_at")?.0,
            })
        }

        fn queue_row(r: &DbRow) -> Result<QueueItem, StoreError> {
            const T: &str = "device_queue";
            let f_cnt_down: Option<i64> = r.try_get("f_cnt_down")?;
            Ok(QueueItem {
                id: r.try_get("id")?,
                dev_eui: sql::eui(r.try_get("dev_eui")?, T, "dev_eui")?,
                f_port: sql::int(r.try_get("f_port")?, T, "f_port")?,
                data: r.try_get("data")?,
                confirmed: r.try_get("confirmed")?,
                object: r
                    .try_get::<Option<Json<serde_json::Value>>, _>("object")?
                    .map(|j| j.0),
                f_cnt_down: f_cnt_down
                    .map(|v| sql::int(v, T, "f_cnt_down"))
                    .transpose()?,
                pending: r.try_get("pending")?,
                sent_at: r.try_get::<Option<Ts>, _>("sent_at")?.map(|t| t.0),
                expires_at: r.try_get::<Option<Ts>, _>("expires_at")?.map(|t| t.0),
                created_at: r.try_get::<Ts, _>("created_at")?.0,
            })
        }

        fn gateway_row(r: &DbRow) -> Result<Gateway, StoreError> {
            const T: &str = "gateways";
            let lat: Option<f64> = r.try_get("latitude")?;
            let lon: Option<f64> = r.try_get("longitude")?;
            let alt: Option<f64> = r.try_get("altitude")?;
            let location = match (lat, lon) {
                (Some(latitude), Some(longitude)) => Some(Location {
                    latitude,
                    longitude,
                    altitude: alt.unwrap_or(0.0),
                }),
                _ => None,
            };
            Ok(Gateway {
                gateway_id: sql::eui(r.try_get("gateway_id")?, T, "gateway_id")?,
                tenant_id: r.try_get("tenant_id")?,
                name: r.try_get("name")?,
                description: r.try_get("description")?,
                location,
                last_seen_at: r.try_get::<Option<Ts>, _>("last_seen_at")?.map(|t| t.0),
                stats: r
                    .try_get::<Option<Json<serde_json::Value>>, _>("stats")?
                    .map(|j| j.0),
                created_at: r.try_get::<Ts, _>("created_at")?.0,
                updated_at: r.try_get::<Ts, _>("updated_at")?.0,
            })
        }

        fn integration_row(r: &DbRow) -> Result<Integration, StoreError> {
            let kind: String = r.try_get("kind")?;
            Ok(Integration {
                id: r.try_get("id")?,
                application_id: r.try_get("application_id")?,
                kind: sql::known(&kind, IntegrationKind::parse, "integrations", "kind")?,
                config: r.try_get::<Json<serde_json::Value>, _>("config")?.0,
                last_delivered_at: r.try_get::<Option<Ts>, _>("last_delivered_at")?.map(|t| t.0),
                last_error: r.try_get("last_error")?,
                last_error_at: r.try_get::<Option<Ts>, _>("last_error_at")?.map(|t| t.0),
                created_at: r.try_get::<Ts, _>("created_at")?.0,
                updated_at: r.try_get::<Ts, _>("updated_at")?.0,
            })
        }

        fn event_row(r: &DbRow) -> Result<Event, StoreError> {
            const T: &str = "events";
            let kind: String = r.try_get("kind")?;
            Ok(Event {
                id: r.try_get("id")?,
                dev_eui: sql::eui(r.try_get("dev_eui")?, T, "dev_eui")?,
                application_id: r.try_get("application_id")?,
                kind: sql::known(&kind, EventKind::parse, T, "kind")?,
                payload: r.try_get::<Json<serde_json::Value>, _>("payload")?.0,
                created_at: r.try_get::<Ts, _>("created_at")?.0,
            })
        }

        fn outbox_row(r: &DbRow) -> Result<OutboxItem, StoreError> {
            const T: &str = "outbox";
            let kind: String = r.try_get("kind")?;
            Ok(OutboxItem {
                id: r.try_get("id")?,
                integration_id: r.try_get("integration_id")?,
                event_id: r.try_get("event_id")?,
                dev_eui: sql::eui(r.try_get("dev_eui")?, T, "dev_eui")?,
                kind: sql::known(&kind, EventKind::parse, "events", "kind")?,
                payload: r.try_get::<Json<serde_json::Value>, _>("payload")?.0,
                attempts: sql::int(r.try_get("attempts")?, T, "attempts")?,
                last_error: r.try_get("last_error")?,
                created_at: r.try_get::<Ts, _>("created_at")?.0,
            })
        }

        fn rows<T>(
            rows: Vec<DbRow>,
            f: fn(&DbRow) -> Result<T, StoreError>,
        ) -> Result<Vec<T>, StoreError> {
            rows.iter().map(f).collect()
        }

        /// Reads a whole table in DevEUI order, split into four DevEUI ranges read
        /// side by side (each in keyset pages), so the database and the row decoding
        /// use every core. `sql` takes `$1` (exclusive lower bound), `$2` (exclusive
        /// upper bound) and `$3` (page size) and must select `dev_eui` first.
        async fn load_parallel<T: Send + 'static>(
            store: &$store,
            sql: &'static str,
            decode: fn(&DbRow) -> Result<T, StoreError>,
            key: fn(&T) -> Eui64,
        ) -> Result<Vec<T>, StoreError> {
            const PARTS: u16 = 4;
            let mut tasks = Vec::new();
            for p in 0..PARTS {
                // Bounds as byte strings: a one-byte prefix sorts before every 8-byte
                // key starting with it; nine 0xff bytes sort after every key.
                let lower: Vec<u8> = if p == 0 { Vec::new() } else { vec![(p * 256 / PARTS) as u8] };
                let upper: Vec<u8> = if p + 1 == PARTS {
                    vec![0xff; 9]
                } else {
                    vec![((p + 1) * 256 / PARTS) as u8]
                };
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let mut out = Vec::new();
                    let mut after = lower;
                    loop {
                        let r = sqlx::query(sql)
                            .bind(&after)
                            .bind(&upper)
                            .bind(i64::from(crate::LOAD_PAGE_SIZE))
                            .fetch_all(store.reader())
                            .await?;
                        let full = r.len() == crate::LOAD_PAGE_SIZE as usize;
                        let page = rows(r, decode)?;
                        if let Some(last) = page.last() {
                            after = key(last).0.to_vec();
                        }
                        out.extend(page);
                        if !full {
                            return Ok::<_, StoreError>(out);
                        }
                    }
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                let part = t.await.map_err(|e| StoreError::Database(sqlx::Error::Protocol(
                    format!("start-up load task failed: {e}"),
                )))??;
                all.extend(part);
            }
            Ok(all)
        }

        /// Removes outbox rows, makes the next row of each of their chains due at
        /// `at`, and returns the integrations the rows belonged to.
        async fn remove_outbox_rows(
            tx: &mut sqlx::Transaction<'static, $db>,
            ids: &[i64],
            at: DateTime<Utc>,
        ) -> Result<Vec<Uuid>, StoreError> {
            let deleted = <$store>::delete_outbox_rows(tx, ids).await?;
            let mut integrations: Vec<Uuid> = deleted.iter().map(|(i, _)| *i).collect();
            integrations.sort();
            integrations.dedup();
            let mut chains: Vec<(Uuid, Vec<u8>, DateTime<Utc>)> =
                deleted.into_iter().map(|(i, d)| (i, d, at)).collect();
            chains.sort();
            chains.dedup();
            <$store>::set_chains(tx, chains).await?;
            Ok(integrations)
        }

        /// Notes a delivery error on an integration (shown by the API).
        async fn note_integration_error(
            tx: &mut sqlx::Transaction<'static, $db>,
            integration: Uuid,
            error: &str,
            at: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query("UPDATE integrations SET last_error = $2, last_error_at = $3 WHERE id = $1")
                .bind(integration)
                .bind(error)
                .bind(Ts(at))
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// Runs one of the rare ops of a batch (queue, joins, class, gateways) inside
        /// the batch transaction. Sessions, events and last-seen times never come here:
        /// [`crate::ops::Grouped`] sets them apart and each backend's `apply_batch`
        /// writes them as multi-row statements.
        async fn apply_other(
            tx: &mut sqlx::Transaction<'static, $db>,
            op: &WriteOp,
        ) -> Result<(), StoreError> {
            // Rare enough that a copy costs nothing.
            match op.clone() {
                WriteOp::UpsertSession(_)
                | WriteOp::DeleteSession(_)
                | WriteOp::InsertEvent(_)
                | WriteOp::DeviceSeen { .. } => {}
                WriteOp::QueueMarkSent {
                    id,
                    f_cnt_down,
                    sent_at,
                    pending,
                } => {
                    sqlx::query(
                        "UPDATE device_queue SET f_cnt_down = $2, sent_at = $3, pending = $4 \
                         WHERE id = $1",
                    )
                    .bind(id)
                    .bind(i64::from(f_cnt_down))
                    .bind(Ts(sent_at))
                    .bind(pending)
                    .execute(&mut **tx)
                    .await?;
                }
                WriteOp::QueueDelete(id) => {
                    sqlx::query("DELETE FROM device_queue WHERE id = $1")
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                }
                WriteOp::RecordJoin {
                    dev_eui,
                    dev_nonce,
                    join_nonce,
                    at,
                } => {
                    let eui = dev_eui.0.to_vec();
                    sqlx::query(
                        "UPDATE device_keys SET join_nonce = $2, last_dev_nonce = $3, \
                         updated_at = $4 WHERE dev_eui = $1",
                    )
                    .bind(&eui)
                    .bind(i64::from(join_nonce))
                    .bind(i64::from(dev_nonce))
                    .bind(Ts(at))
                    .execute(&mut **tx)
                    .await?;
                    // Delete + insert moves a reused nonce to the newest position.
                    sqlx::query("DELETE FROM used_dev_nonces WHERE dev_eui = $1 AND dev_nonce = $2")
                        .bind(&eui)
                        .bind(i64::from(dev_nonce))
                        .execute(&mut **tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO used_dev_nonces (dev_eui, dev_nonce, used_at) \
                         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM devices WHERE dev_eui = $1)",
                    )
                    .bind(&eui)
                    .bind(i64::from(dev_nonce))
                    .bind(Ts(at))
                    .execute(&mut **tx)
                    .await?;
                    sqlx::query(
                        "DELETE FROM used_dev_nonces WHERE dev_eui = $1 AND id <= \
                         (SELECT id FROM used_dev_nonces WHERE dev_eui = $1 \
                          ORDER BY id DESC LIMIT 1 OFFSET $2)",
                    )
                    .bind(&eui)
                    .bind(USED_DEV_NONCE_LIMIT as i64)
                    .execute(&mut **tx)
                    .await?;
                }
                WriteOp::DeviceClass { dev_eui, class } => {
                    sqlx::query("UPDATE devices SET device_class_enabled = $2 WHERE dev_eui = $1")
                        .bind(dev_eui.0.to_vec())
                        .bind(class.as_str())
                        .execute(&mut **tx)
                        .await?;
                }
                WriteOp::GatewaySeen {
                    gateway_id,
                    at,
                    stats,
                    location,
                } => {
                    sqlx::query(
                        "UPDATE gateways SET last_seen_at = $2, stats = COALESCE($3, stats), \
                         latitude = COALESCE($4, latitude), longitude = COALESCE($5, longitude), \
                         altitude = COALESCE($6, altitude) WHERE gateway_id = $1",
                    )
                    .bind(gateway_id.0.to_vec())
                    .bind(Ts(at))
                    .bind(stats.map(Json))
                    .bind(location.map(|l| l.latitude))
                    .bind(location.map(|l| l.longitude))
                    .bind(location.map(|l| l.altitude))
                    .execute(&mut **tx)
                    .await?;
                }
            }
            Ok(())
        }

        #[async_trait]
        impl Storage for $store {
            fn backend(&self) -> Backend {
                BACKEND
            }

            async fn migrate(&self) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "migrate");
                self.run_migrations().await
            }

            async fn close(&self) {
                self.close_pools().await
            }

            // --- tenants ---

            async fn create_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "create_tenant");
                sqlx::query(concat!(
                    "INSERT INTO tenants (",
                    tenant_cols!(),
                    ") VALUES ($1, $2, $3, $4)"
                ))
                .bind(t.id)
                .bind(&t.name)
                .bind(Ts(t.created_at))
                .bind(Ts(t.updated_at))
                .execute(self.writer())
                .await
                .map_err(|e| StoreError::from_write("tenant", t.id, e))?;
                Ok(())
            }

            async fn get_tenant(&self, id: Uuid) -> Result<Option<Tenant>, StoreError> {
                let _t = timer(BACKEND.as_str(), "get_tenant");
                sqlx::query(concat!("SELECT ", tenant_cols!(), " FROM tenants WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await?
                    .as_ref()
                    .map(tenant_row)
                    .transpose()
            }

            async fn list_tenants(&self, page: Page) -> Result<Vec<Tenant>, StoreError> {
                let _t = timer(BACKEND.as_str(), "list_tenants");
                let (l, o) = limit(page);
                let r = sqlx::query(concat!(
                    "SELECT ",
                    tenant_cols!(),
                    " FROM tenants ORDER BY name, id LIMIT $1 OFFSET $2"
                ))
                .bind(l)
                .bind(o)
                .fetch_all(self.reader())
                .await?;
                rows(r, tenant_row)
            }

            async fn update_tenant(&self, t: &Tenant) -> Result<bool, StoreError> {
                let _t = timer(BACKEND.as_str(), "update_tenant");
                let r = sqlx::query("UPDATE tenants SET name = $2, updated_at = $3 WHERE id = $1")
                    .bind(t.id)
                    .bind(&t.name)
                    .bind(Ts(t.updated_at))
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_tenant(&self, id: Uuid) -> Result<bool, StoreError> {
                let _t = timer(BACKEND.as_str(), "delete_tenant");
                if id == DEFAULT_TENANT_ID {
                    return Err(StoreError::DefaultTenant);
                }
                let r = sqlx::query("DELETE FROM tenants WHERE id = $1")
                    .bind(id)
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            // --- API keys ---

            async fn create_api_key(
                &self,
                key: &ApiKey,
                token_hash: &[u8; 32],
            ) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "create_api_key");
                sqlx::query(
                    "INSERT INTO api_keys (id, tenant_id, name, key_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(key.id)
                .bind(key.tenant_id)
                .bind(&key.name)
                .bind(token_hash.to_vec())
                .bind(Ts(key.created_at))
                .execute(self.writer())
                .await
                .map_err(|e| StoreError::from_write("API key", key.id, e))?;
                Ok(())
            }

            async fn api_key_by_hash(
                &self,
                token_hash: &[u8; 32],
            ) -> Result<Option<ApiKey>, StoreError> {
                let _t = timer(BACKEND.as_str(), "api_key_by_hash");
                sqlx::query(concat!("SELECT ", api_key_cols!(), " FROM api_keys WHERE key_hash = $1"))
                    .bind(token_hash.to_vec())
                    .fetch_optional(self.reader())
                    .await?
                    .as_ref()
                    .map(api_key_row)
                    .transpose()
            }

            async fn get_api_key(&self, id: Uuid) -> Result<Option<ApiKey>, StoreError> {
                let _t = timer(BACKEND.as_str(), "get_api_key");
                sqlx::query(concat!("SELECT ", api_key_cols!(), " FROM api_keys WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await?
                    .as_ref()
                    .map(api_key_row)
                    .transpose()
            }

            async fn list_api_keys(
                &self,
                tenant_id: Option<Uuid>,
                page: Page,
            ) -> Result<Vec<ApiKey>, StoreError> {
                let _t = timer(BACKEND.as_str(), "list_api_keys");
                let (l, o) = limit(page);
                let r = sqlx::query(concat!(
                    "SELECT ",
                    api_key_cols!(),
                    " FROM api_keys WHERE ($1 IS NULL OR tenant_id = $1) \
                     ORDER BY created_at, id LIMIT $2 OFFSET $3"
                ))
                .bind(tenant_id)
                .bind(l)
                .bind(o)
                .fetch_all(self.reader())
                .await?;
                rows(r, api_key_row)
            }

            async fn delete_api_key(&self, id: Uuid) -> Result<bool, StoreError> {
                let _t = timer(BACKEND.as_str(), "delete_api_key");
                let r = sqlx::query("DELETE FROM api_keys WHERE id = $1")
                    .bind(id)
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            // --- applications ---

            async fn create_application(&self, a: &Application) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "create_application");
                sqlx::query(concat!(
                    "INSERT INTO applications (",
                    app_cols!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6)"
                ))
                .bind(a.id)
                .bind(a.tenant_id)
                .bind(&a.name)
                .bind(&a.description)
                .bind(Ts(a.created_at))
                .bind(Ts(a.updated_at))
                .execute(self.writer())
                .await
                .map_err(|e| StoreError::from_write("application", a.id, e))?;
                Ok(())
            }

            async fn get_application(&self, id: Uuid) -> Result<Option<Application>, StoreError> {
                let _t = timer(BACKEND.as_str(), "get_application");
                sqlx::query(concat!("SELECT ", app_cols!(), " FROM applications WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await?
                    .as_ref()
                    .map(app_row)
                    .transpose()
            }

            async fn list_applications(
                &self,
                tenant_id: Option<Uuid>,
                page: Page,
            ) -> Result<Vec<Application>, StoreError> {
                let _t = timer(BACKEND.as_str(), "list_applications");
                let (l, o) = limit(page);
                let r = sqlx::query(concat!(
                    "SELECT ",
                    app_cols!(),
                    " FROM applications WHERE ($1 IS NULL OR tenant_id = $1) \
                     ORDER BY name, id LIMIT $2 OFFSET $3"
                ))
                .bind(tenant_id)
                .bind(l)
                .bind(o)
                .fetch_all(self.reader())
                .await?;
                rows(r, app_row)
            }

            async fn update_application(&self, a: &Application) -> Result<bool, StoreError> {
                let _t = timer(BACKEND.as_str(), "update_application");
                let r = sqlx::query(
                    "UPDATE applications SET name = $2, description = $3, updated_at = $4 \
                     WHERE id = $1",
                )
                .bind(a.id)
                .bind(&a.name)
                .bind(&a.description)
                .bind(Ts(a.updated_at))
                .execute(self.writer())
                .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_application(&self, id: Uuid) -> Result<bool, StoreError> {
                let _t = timer(BACKEND.as_str(), "delete_application");
                let r = sqlx::query("DELETE FROM applications WHERE id = $1")
                    .bind(id)
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            // --- device profiles ---

            async fn create_device_profile(&self, p: &DeviceProfile) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "create_device_profile");
                sqlx::query(concat!(
                    "INSERT INTO device_profiles (",
                    profile_cols!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                     $15, $16, $17, $18, $19)"
                ))
                .bind(p.id)
                .bind(p.tenant_id)
                .bind(&p.name)
                .bind(&p.description)
                .bind(&p.region)
                .bind(&p.mac_version)
                .bind(&p.reg_params_revision)
                .bind(p.supports_otaa)
                .bind(p.supports_class_c)
                .bind(p.adr_enabled)
                .bind(i64::from(p.rx1_delay))
                .bind(i64::from(p.rx1_dr_offset))
                .bind(p.rx2_dr.map(i64::from))
                .bind(p.rx2_frequency_hz.map(i64::from))
                .bind(p.payload_codec.type_name())
                .bind(p.payload_codec.script())
                .bind(Json(&p.mac_settings))
                .bind(Ts(p.created_at))
                .bind(Ts(p.updated_at))
                .execute(self.writer())
                .await
                .map_err(|e| StoreError::from_write("device profile", p.id, e))?;
                Ok(())
            }

            async fn get_device_profile(
                &self,
                id: Uuid,
            ) -> Result<Option<DeviceProfile>, StoreError> {
                let _t = timer(BACKEND.as_str(), "get_device_profile");
                sqlx::query(concat!(
                    "SELECT ",
                    profile_cols!(),
                    " FROM device_profiles WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(self.reader())
                .await?
                .as_ref()
                .map(profile_row)
                .transpose()
            }

            async fn list_device_profiles(
                &self,
                tenant_id: Option<Uuid>,
                page: Page,
            ) -> Result<Vec<DeviceProfile>, StoreError> {
                let _t = timer(BACKEND.as_str(), "list_device_profiles");
                let (l, o) = limit(page);
                let r = sqlx::query(concat!(
                    "SELECT ",
                    profile_cols!(),
                    " FROM device_profiles WHERE ($1 IS NULL OR tenant_id = $1) \
                     ORDER BY name, id LIMIT $2 OFFSET $3"
                ))
                .bind(tenant_id)
                .bind(l)
                .bind(o)
                .fetch_all(self.reader())
                .await?;
                rows(r, profile_row)
            }

            async fn update_device_profile(&self, p: &DeviceProfile) -> Result<bool, StoreError> {
                let _t = timer(BACKEND.as_str(), "update_device_profile");
                let r = sqlx::query(
                    "UPDATE device_profiles SET name = $2, description = $3, region = $4, \
                     mac_version = $5, reg_params_revision = $6, supports_otaa = $7, \
                     supports_class_c = $8, adr_enabled = $9, rx1_delay = $10, \
                     rx1_dr_offset = $11, rx2_dr = $12, rx2_frequency_hz = $13, \
                     codec_type = $14, codec_script = $15, mac_settings = $16, updated_at = $17 \
                     WHERE id = $1",
                )
                .bind(p.id)
                .bind(&p.name)
                .bind(&p.description)
                .bind(&p.region)
                .bind(&p.mac_version)
                .bind(&p.reg_params_revision)
                .bind(p.supports_otaa)
                .bind(p.supports_class_c)
                .bind(p.adr_enabled)
                .bind(i64::from(p.rx1_delay))
                .bind(i64::from(p.rx1_dr_offset))
                .bind(p.rx2_dr.map(i64::from))
                .bind(p.rx2_frequency_hz.map(i64::from))
                .bind(p.payload_codec.type_name())
                .bind(p.payload_codec.script())
                .bind(Json(&p.mac_settings))
                .bind(Ts(p.updated_at))
                .execute(self.writer())
                .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_device_profile(&self, id: Uuid) -> Result<bool, StoreError> {
                let _t = timer(BACKEND.as_str(), "delete_device_profile");
                let mut tx = self.begin_write().await?;
                let users: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE device_profile_id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                if users > 0 {
                    return Err(StoreError::InUse {
                        entity: "device profile",
                        key: id.to_string(),
                        users: format!(
                            "{users} device{}",
                            if users == 1 { "" } else { "s" }
                        ),
                    });
                }
                let r = sqlx::query("DELETE FROM device_profiles WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(r.rows_affected() > 0)
            }

            // --- devices ---

            async fn create_device(&self, d: &Device) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "create_device");
                sqlx::query(concat!(
                    "INSERT INTO devices (",
                    device_cols!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                ))
                .bind(d.dev_eui.0.to_vec())
                .bind(d.join_eui.0.to_vec())
                .bind(d.tenant_id)
                .bind(d.application_id)
                .bind(d.device_profile_id)
                .bind(&d.name)
                .bind(&d.description)
                .bind(Json(&d.tags))
                .bind(d.skip_fcnt_check)
                .bind(d.disabled)
                .bind(d.device_class_enabled.as_str())
                .bind(ts_opt(d.last_seen_at))
                .bind(Ts(d.created_at))
                .bind(Ts(d.updated_at))
                .execute(self.writer())
                .await
                .map_err(|e| StoreError::from_write("device", d.dev_eui, e))?;
                Ok(())
            }

            async fn get_device(&self, dev_eui: Eui64) -> Result<Option<Device>, StoreError> {
                let _t = timer(BACKEND.as_str(), "get_device");
                sqlx::query(concat!("SELECT ", device_cols!(), " FROM devices WHERE dev_eui = $1"))
                    .bind(dev_eui.0.to_vec())
                    .fetch_optional(self.reader())
                    .await?
                    .as_ref()
                    .map(device_row)
                    .transpose()
            }

            async fn list_devices(
                &self,
                filter: DeviceFilter,
                page: Page,
            ) -> Result<Vec<Device>, StoreError> {
                let _t = timer(BACKEND.as_str(), "list_devices");
                let (l, o) = limit(page);
                // One statement per filter shape, so each gets an index plan.
                let r = match (filter.tenant_id, filter.application_id) {
                    (None, None) => {
                        sqlx::query(concat!(
                            "SELECT ",
                            device_cols!(),
                            " FROM devices ORDER BY dev_eui LIMIT $1 OFFSET $2"
                        ))
                        .bind(l)
                        .bind(o)
                        .fetch_all(self.reader())
                        .await?
                    }
                    (Some(t), None) => {
                        sqlx::query(concat!(
                            "SELECT ",
                            device_cols!(),
                            " FROM devices WHERE tenant_id = $1 ORDER BY dev_eui LIMIT $2 OFFSET $3"
                        ))
                        .bind(t)
                        .bind(l)
                        .bind(o)
                        .fetch_all(self.reader())
                        .await?
                    }
                    (None, Some(a)) => {
                        sqlx::query(concat!(
                            "SELECT ",
                            device_cols!(),
                            " FROM devices WHERE application_id = $1 ORDER BY dev_eui \
                             LIMIT $2 OFFSET $3"
                        ))
                        .bind(a)
                        .bind(l)
                        .bind(o)
                        .fetch_all(self.reader())
                        .await?
                    }
                    (Some(t), Some(a)) => {
                        sqlx::query(concat!(
                            "SELECT ",
                            device_cols!(),
                            " FROM devices WHERE application_id = $1 AND tenant_id = $2 \
                             ORDER BY dev_eui LIMIT $3 OFFSET $4"
                        ))
                        .bind(a)
                        .bind(t)
                        .bind(l)
                        .bind(o)
                        .fetch_all(self.reader())
                        .await?
                    }
                };
                rows(r, device_row)
            }

            async fn update_device(&self, d: &Device) -> Result<bool, StoreError> {
                let _t = timer(BACKEND.as_str(), "update_device");
                let r = sqlx::query(
                    "UPDATE devices SET join_eui = $2, tenant_id = $3, application_id = $4, \
                     device_profile_id = $5, name = $6, description = $7, tags = $8, \
                     skip_fcnt_check = $9, disabled = $10, updated_at = $11 WHERE dev_eui = $1",
                )
                .bind(d.dev_eui.0.to_vec())
                .bind(d.join_eui.0.to_vec())
                .bind(d.tenant_id)
                .bind(d.application_id)
                .bind(d.device_profile_id)
                .bind(&d.name)
                .bind(&d.description)
                .bind(Json(&d.tags))
                .bind(d.skip_fcnt_check)
                .bind(d.disabled)
                .bind(Ts(d.updated_at))
                .execute(self.writer())
                .await
                .map_err(|e| StoreError::from_write("device", d.dev_eui, e))?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_device(&self, dev_eui: Eui64) -> Result<bool, StoreError> {
                let _t = timer(BACKEND.as_str(), "delete_device");
                let r = sqlx::query("DELETE FROM devices WHERE dev_eui = $1")
                    .bind(dev_eui.0.to_vec())
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn devices_page(
                &self,
                after: Option<Eui64>,
                page_size: u32,
            ) -> Result<Vec<Device>, StoreError> {
                let _t = timer(BACKEND.as_str(), "devices_page");
                let r = sqlx::query(concat!(
                    "SELECT ",
                    device_cols!(),
                    " FROM devices WHERE dev_eui > $1 ORDER BY dev_eui LIMIT $2"
                ))
                .bind(eui_after(after))
                .bind(i64::from(page_size))
                .fetch_all(self.reader())
                .await?;
                rows(r, device_row)
            }

            async fn get_device_context(
                &self,
                dev_eui: Eui64,
            ) -> Result<Option<DeviceContext>, StoreError> {
                let Some(device) = self.get_device(dev_eui).await? else {
                    return Ok(None);
                };
                let (Some(profile), Some(application), Some(tenant)) = (
                    self.get_device_profile(device.device_profile_id).await?,
                    self.get_application(device.application_id).await?,
                    self.get_tenant(device.tenant_id).await?,
                ) else {
                    // Deleted between the reads: the device is going away.
                    return Ok(None);
                };
                Ok(Some(DeviceContext {
                    device,
                    profile,
                    application,
                    tenant,
                }))
            }

            // --- keys ---

            async fn set_device_keys(
                &self,
                dev_eui: Eui64,
                app_key: &Aes128Key,
                nwk_key: Option<&Aes128Key>,
            ) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "set_device_keys");
                sqlx::query(
                    "INSERT INTO device_keys (dev_eui, app_key, nwk_key, join_nonce, \
                     last_dev_nonce, updated_at) VALUES ($1, $2, $3, 0, NULL, $4) \
                     ON CONFLICT (dev_eui) DO UPDATE SET app_key = excluded.app_key, \
                     nwk_key = excluded.nwk_key, updated_at = excluded.updated_at",
                )
                .bind(dev_eui.0.to_vec())
                .bind(app_key.as_bytes().to_vec())
                .bind(nwk_key.map(|k| k.as_bytes().to_vec()))
                .bind(Ts(Utc::now()))
                .execute(self.writer())
                .await
                .map_err(|e| StoreError::from_write("device keys", dev_eui, e))?;
                Ok(())
            }

            async fn get_device_keys(
                &self,
                dev_eui: Eui64,
            ) -> Result<Option<DeviceKeys>, StoreError> {
                let _t = timer(BACKEND.as_str(), "get_device_keys");
                const T: &str = "device_keys";
                let eui = dev_eui.0.to_vec();
                let Some(r) = sqlx::query(
                    "SELECT app_key, nwk_key, join_nonce, last_dev_nonce FROM device_keys \
                     WHERE dev_eui = $1",
                )
                .bind(&eui)
                .fetch_optional(self.reader())
                .await?
                else {
                    return Ok(None);
                };
                let nonces: Vec<i64> = sqlx::query_scalar(
                    "SELECT dev_nonce FROM used_dev_nonces WHERE dev_eui = $1 ORDER BY id",
                )
                .bind(&eui)
                .fetch_all(self.reader())
                .await?;
                let nwk_key: Option<Vec<u8>> = r.try_get("nwk_key")?;
                let last_dev_nonce: Option<i64> = r.try_get("last_dev_nonce")?;
                Ok(Some(DeviceKeys {
                    dev_eui,
                    app_key: sql::key(r.try_get("app_key")?, T, "app_key")?,
                    nwk_key: nwk_key.map(|k| sql::key(k, T, "nwk_key")).transpose()?,
                    join_nonce: sql::int(r.try_get("join_nonce")?, T, "join_nonce")?,
                    last_dev_nonce: last_dev_nonce
                        .map(|v| sql::int(v, T, "last_dev_nonce"))
                        .transpose()?,
                    used_dev_nonces: nonces
                        .into_iter()
                        .map(|v| sql::int(v, "used_dev_nonces", "dev_nonce"))
                        .collect::<Result<_, _>>()?,
                }))
            }

            async fn device_keys_page(
                &self,
                after: Option<Eui64>,
                page_size: u32,
            ) -> Result<Vec<DeviceKeys>, StoreError> {
                let _t = timer(BACKEND.as_str(), "device_keys_page");
                const T: &str = "device_keys";
                let rows = sqlx::query(
                    "SELECT dev_eui, app_key, nwk_key, join_nonce, last_dev_nonce FROM device_keys \
                     WHERE dev_eui > $1 ORDER BY dev_eui LIMIT $2",
                )
                .bind(eui_after(after))
                .bind(i64::from(page_size))
                .fetch_all(self.reader())
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let nwk_key: Option<Vec<u8>> = r.try_get("nwk_key")?;
                    let last_dev_nonce: Option<i64> = r.try_get("last_dev_nonce")?;
                    out.push(DeviceKeys {
                        dev_eui: sql::eui(r.try_get("dev_eui")?, T, "dev_eui")?,
                        app_key: sql::key(r.try_get("app_key")?, T, "app_key")?,
                        nwk_key: nwk_key.map(|k| sql::key(k, T, "nwk_key")).transpose()?,
                        join_nonce: sql::int(r.try_get("join_nonce")?, T, "join_nonce")?,
                        last_dev_nonce: last_dev_nonce
                            .map(|v| sql::int(v, T, "last_dev_nonce"))
                            .transpose()?,
                        used_dev_nonces: Vec::new(),
                    });
                }
                // One query for the page's used DevNonces rather than one per device.
                if let (Some(first), Some(last)) = (out.first(), out.last()) {
                    let nonces = sqlx::query(
                        "SELECT dev_eui, dev_nonce FROM used_dev_nonces \
                         WHERE dev_eui >= $1 AND dev_eui <= $2 ORDER BY dev_eui, id",
                    )
                    .bind(first.dev_eui.0.to_vec())
                    .bind(last.dev_eui.0.to_vec())
                    .fetch_all(self.reader())
                    .await?;
                    let mut i = 0;
                    for n in &nonces {
                        let dev_eui = sql::eui(n.try_get("dev_eui")?, "used_dev_nonces", "dev_eui")?;
                        let nonce: u16 = sql::int(n.try_get("dev_nonce")?, "used_dev_nonces", "dev_nonce")?;
                        while i < out.len() && out[i].dev_eui < dev_eui {
                            i += 1;
                        }
                        if let Some(k) = out.get_mut(i).filter(|k| k.dev_eui == dev_eui) {
                            k.used_dev_nonces.push(nonce);
                        }
                    }
                }
                Ok(out)
            }

            // --- sessions ---

            async fn get_session(
                &self,
                dev_eui: Eui64,
            ) -> Result<Option<DeviceSession>, StoreError> {
                let _t = timer(BACKEND.as_str(), "get_session");
                sqlx::query(concat!(
                    "SELECT ",
                    session_cols!(),
                    " FROM device_sessions WHERE dev_eui = $1"
                ))
                .bind(dev_eui.0.to_vec())
                .fetch_optional(self.reader())
                .await?
                .as_ref()
                .map(session_row)
                .transpose()
            }

            async fn sessions_by_dev_addr(
                &self,
                dev_addr: DevAddr,
            ) -> Result<Vec<DeviceSession>, StoreError> {
                let _t = timer(BACKEND.as_str(), "sessions_by_dev_addr");
                let r = sqlx::query(concat!(
                    "SELECT ",
                    session_cols!(),
                    " FROM device_sessions WHERE dev_addr = $1 ORDER BY dev_eui"
                ))
                .bind(dev_addr.0.to_vec())
                .fetch_all(self.reader())
                .await?;
                rows(r, session_row)
            }

            async fn sessions_page(
                &self,
                after: Option<Eui64>,
                page_size: u32,
            ) -> Result<Vec<DeviceSession>, StoreError> {
                let _t = timer(BACKEND.as_str(), "sessions_page");
                let r = sqlx::query(concat!(
                    "SELECT ",
                    session_cols!(),
                    " FROM device_sessions WHERE dev_eui > $1 ORDER BY dev_eui LIMIT $2"
                ))
                .bind(eui_after(after))
                .bind(i64::from(page_size))
                .fetch_all(self.reader())
                .await?;
                rows(r, session_row)
            }

            async fn load_all_sessions(&self) -> Result<Vec<DeviceSession>, StoreError> {
                let _t = timer(BACKEND.as_str(), "load_all_sessions");
                load_parallel(
                    self,
                    concat!(
                        "SELECT ",
                        session_cols!(),
                        " FROM device_sessions WHERE dev_eui > $1 AND dev_eui < $2 \
                         ORDER BY dev_eui LIMIT $3"
                    ),
                    session_row,
                    |s| s.dev_eui,
                )
                .await
            }

            async fn load_all_devices(&self) -> Result<Vec<Device>, StoreError> {
                let _t = timer(BACKEND.as_str(), "load_all_devices");
                load_parallel(
                    self,
                    concat!(
                        "SELECT ",
                        device_cols!(),
                        " FROM devices WHERE dev_eui > $1 AND dev_eui < $2 \
                         ORDER BY dev_eui LIMIT $3"
                    ),
                    device_row,
                    |d| d.dev_eui,
                )
                .await
            }

            // --- queue ---

            async fn enqueue(&self, q: &QueueItem) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "enqueue");
                sqlx::query(concat!(
                    "INSERT INTO device_queue (",
                    queue_cols!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ))
                .bind(q.id)
                .bind(q.dev_eui.0.to_vec())
                .bind(i64::from(q.f_port))
                .bind(&q.data)
                .bind(q.confirmed)
                .bind(q.object.as_ref().map(Json))
                .bind(q.f_cnt_down.map(i64::from))
                .bind(q.pending)
                .bind(ts_opt(q.sent_at))
                .bind(ts_opt(q.expires_at))
                .bind(Ts(q.created_at))
                .execute(self.writer())
                .await
                .map_err(|e| StoreError::from_write("queue item", q.id, e))?;
                Ok(())
            }

            async fn get_queue(&self, dev_eui: Eui64) -> Result<Vec<QueueItem>, StoreError> {
                let _t = timer(BACKEND.as_str(), "get_queue");
                let r = sqlx::query(concat!(
                    "SELECT ",
                    queue_cols!(),
                    " FROM device_queue WHERE dev_eui = $1 ORDER BY created_at, id"
                ))
                .bind(dev_eui.0.to_vec())
                .fetch_all(self.reader())
                .await?;
                rows(r, queue_row)
            }

            async fn flush_queue(&self, dev_eui: Eui64) -> Result<u64, StoreError> {
                let _t = timer(BACKEND.as_str(), "flush_queue");
                let r = sqlx::query("DELETE FROM device_queue WHERE dev_eui = $1")
                    .bind(dev_eui.0.to_vec())
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected())
            }

            async fn load_all_queue_items(&self) -> Result<Vec<QueueItem>, StoreError> {
                let _t = timer(BACKEND.as_str(), "load_all_queue_items");
                let r = sqlx::query(concat!(
                    "SELECT ",
                    queue_cols!(),
                    " FROM device_queue ORDER BY dev_eui, created_at, id"
                ))
                .fetch_all(self.reader())
                .await?;
                rows(r, queue_row)
            }

            // --- gateways ---

            async fn create_gateway(&self, g: &Gateway) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "create_gateway");
                sqlx::query(concat!(
                    "INSERT INTO gateways (",
                    gateway_cols!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ))
                .bind(g.gateway_id.0.to_vec())
                .bind(g.tenant_id)
                .bind(&g.name)
                .bind(&g.description)
                .bind(g.location.map(|l| l.latitude))
                .bind(g.location.map(|l| l.longitude))
                .bind(g.location.map(|l| l.altitude))
                .bind(ts_opt(g.last_seen_at))
                .bind(g.stats.as_ref().map(Json))
                .bind(Ts(g.created_at))
                .bind(Ts(g.updated_at))
                .execute(self.writer())
                .await
                .map_err(|e| StoreError::from_write("gateway", g.gateway_id, e))?;
                Ok(())
            }

            async fn get_gateway(&self, gateway_id: Eui64) -> Result<Option<Gateway>, StoreError> {
                let _t = timer(BACKEND.as_str(), "get_gateway");
                sqlx::query(concat!(
                    "SELECT ",
                    gateway_cols!(),
                    " FROM gateways WHERE gateway_id = $1"
                ))
                .bind(gateway_id.0.to_vec())
                .fetch_optional(self.reader())
                .await?
                .as_ref()
                .map(gateway_row)
                .transpose()
            }

            async fn list_gateways(
                &self,
                tenant_id: Option<Uuid>,
                page: Page,
            ) -> Result<Vec<Gateway>, StoreError> {
                let _t = timer(BACKEND.as_str(), "list_gateways");
                let (l, o) = limit(page);
                let r = sqlx::query(concat!(
                    "SELECT ",
                    gateway_cols!(),
                    " FROM gateways WHERE ($1 IS NULL OR tenant_id = $1) \
                     ORDER BY gateway_id LIMIT $2 OFFSET $3"
                ))
                .bind(tenant_id)
                .bind(l)
                .bind(o)
                .fetch_all(self.reader())
                .await?;
                rows(r, gateway_row)
            }

            async fn update_gateway(&self, g: &Gateway) -> Result<bool, StoreError> {
                let _t = timer(BACKEND.as_str(), "update_gateway");
                let r = sqlx::query(
                    "UPDATE gateways SET name = $2, description = $3, latitude = $4, \
                     longitude = $5, altitude = $6, updated_at = $7 WHERE gateway_id = $1",
                )
                .bind(g.gateway_id.0.to_vec())
                .bind(&g.name)
                .bind(&g.description)
                .bind(g.location.map(|l| l.latitude))
                .bind(g.location.map(|l| l.longitude))
                .bind(g.location.map(|l| l.altitude))
                .bind(Ts(g.updated_at))
                .execute(self.writer())
                .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_gateway(&self, gateway_id: Eui64) -> Result<bool, StoreError> {
                let _t = timer(BACKEND.as_str(), "delete_gateway");
                let r = sqlx::query("DELETE FROM gateways WHERE gateway_id = $1")
                    .bind(gateway_id.0.to_vec())
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn load_all_gateways(&self) -> Result<Vec<Gateway>, StoreError> {
                self.list_gateways(None, Page::ALL).await
            }

            // --- integrations ---

            async fn upsert_integration(&self, i: &Integration) -> Result<bool, StoreError> {
                let _t = timer(BACKEND.as_str(), "upsert_integration");
                let id: Uuid = sqlx::query_scalar(
                    "INSERT INTO integrations (id, application_id, kind, config, created_at, \
                     updated_at, delivered_through) \
                     VALUES ($1, $2, $3, $4, $5, $6, (SELECT COALESCE(MAX(id), 0) FROM events)) \
                     ON CONFLICT (application_id, kind) DO UPDATE SET config = excluded.config, \
                     updated_at = excluded.updated_at RETURNING id",
                )
                .bind(i.id)
                .bind(i.application_id)
                .bind(i.kind.as_str())
                .bind(Json(&i.config))
                .bind(Ts(i.created_at))
                .bind(Ts(i.updated_at))
                .fetch_one(self.writer())
                .await
                .map_err(|e| StoreError::from_write("integration", i.id, e))?;
                Ok(id == i.id)
            }

            async fn get_integration(
                &self,
                application_id: Uuid,
                kind: IntegrationKind,
            ) -> Result<Option<Integration>, StoreError> {
                let _t = timer(BACKEND.as_str(), "get_integration");
                sqlx::query(concat!(
                    "SELECT ",
                    integration_cols!(),
                    " FROM integrations WHERE application_id = $1 AND kind = $2"
                ))
                .bind(application_id)
                .bind(kind.as_str())
                .fetch_optional(self.reader())
                .await?
                .as_ref()
                .map(integration_row)
                .transpose()
            }

            async fn list_integrations(
                &self,
                application_id: Option<Uuid>,
            ) -> Result<Vec<Integration>, StoreError> {
                let _t = timer(BACKEND.as_str(), "list_integrations");
                let r = sqlx::query(concat!(
                    "SELECT ",
                    integration_cols!(),
                    " FROM integrations WHERE ($1 IS NULL OR application_id = $1) \
                     ORDER BY application_id, kind"
                ))
                .bind(application_id)
                .fetch_all(self.reader())
                .await?;
                rows(r, integration_row)
            }

            async fn delete_integration(
                &self,
                application_id: Uuid,
                kind: IntegrationKind,
            ) -> Result<bool, StoreError> {
                let _t = timer(BACKEND.as_str(), "delete_integration");
                let r = sqlx::query("DELETE FROM integrations WHERE application_id = $1 AND kind = $2")
                    .bind(application_id)
                    .bind(kind.as_str())
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            // --- events ---

            async fn list_events(
                &self,
                dev_eui: Eui64,
                max: u32,
            ) -> Result<Vec<Event>, StoreError> {
                let _t = timer(BACKEND.as_str(), "list_events");
                let r = sqlx::query(concat!(
                    "SELECT ",
                    event_cols!(),
                    " FROM events WHERE dev_eui = $1 ORDER BY id DESC LIMIT $2"
                ))
                .bind(dev_eui.0.to_vec())
                .bind(i64::from(max))
                .fetch_all(self.reader())
                .await?;
                rows(r, event_row)
            }

            async fn delete_events_older_than(
                &self,
                cutoff: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                let _t = timer(BACKEND.as_str(), "delete_events_older_than");
                let mut total = 0;
                loop {
                    let r = sqlx::query(
                        "DELETE FROM events WHERE id IN \
                         (SELECT id FROM events WHERE created_at < $1 LIMIT 5000)",
                    )
                    .bind(Ts(cutoff))
                    .execute(self.writer())
                    .await?;
                    total += r.rows_affected();
                    if r.rows_affected() == 0 {
                        return Ok(total);
                    }
                }
            }

            // --- webhook delivery ---

            async fn delivery_cursors(&self) -> Result<Vec<DeliveryCursor>, StoreError> {
                let _t = timer(BACKEND.as_str(), "delivery_cursors");
                let r = sqlx::query("SELECT id, delivered_through FROM integrations")
                    .fetch_all(self.reader())
                    .await?;
                r.iter()
                    .map(|row| {
                        Ok(DeliveryCursor {
                            integration_id: row.try_get("id")?,
                            delivered_through: row.try_get("delivered_through")?,
                            last_delivered_at: None,
                        })
                    })
                    .collect()
            }

            async fn save_delivery_cursors(
                &self,
                cursors: &[DeliveryCursor],
            ) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "save_delivery_cursors");
                if cursors.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                for c in cursors {
                    sqlx::query(
                        "UPDATE integrations SET \
                         delivered_through = CASE WHEN delivered_through < $2 THEN $2 \
                           ELSE delivered_through END, \
                         last_delivered_at = COALESCE($3, last_delivered_at) WHERE id = $1",
                    )
                    .bind(c.integration_id)
                    .bind(c.delivered_through)
                    .bind(ts_opt(c.last_delivered_at))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn events_after(
                &self,
                application_id: Uuid,
                after: i64,
                max: u32,
            ) -> Result<Vec<PendingEvent>, StoreError> {
                let _t = timer(BACKEND.as_str(), "events_after");
                let r = sqlx::query(concat!(
                    "SELECT id, dev_eui, kind, ",
                    $body,
                    " AS body, created_at FROM events \
                     WHERE application_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ))
                .bind(application_id)
                .bind(after)
                .bind(i64::from(max))
                .fetch_all(self.reader())
                .await?;
                r.iter()
                    .map(|row| {
                        let kind: String = row.try_get("kind")?;
                        Ok(PendingEvent {
                            id: row.try_get("id")?,
                            dev_eui: sql::eui(row.try_get("dev_eui")?, "events", "dev_eui")?,
                            kind: sql::known(&kind, EventKind::parse, "events", "kind")?,
                            body: row.try_get("body")?,
                            created_at: row.try_get::<Ts, _>("created_at")?.0,
                        })
                    })
                    .collect()
            }

            async fn outbox_spill(
                &self,
                spill: &[SpillRow],
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "outbox_spill");
                if spill.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                let mut chains: BTreeMap<(Uuid, Eui64), DateTime<Utc>> = BTreeMap::new();
                let mut errors: BTreeMap<Uuid, &str> = BTreeMap::new();
                for r in spill {
                    // Only for events that still exist (a deleted device took its events).
                    let written = sqlx::query(
                        "INSERT INTO outbox (integration_id, event_id, dev_eui, attempts, \
                         next_attempt_at, last_error, created_at) \
                         SELECT $1, $2, $3, $4, $5, $6, $7 \
                         WHERE EXISTS (SELECT 1 FROM events WHERE id = $2) \
                         AND EXISTS (SELECT 1 FROM integrations WHERE id = $1)",
                    )
                    .bind(r.integration_id)
                    .bind(r.event_id)
                    .bind(r.dev_eui.0.to_vec())
                    .bind(i64::from(r.attempts))
                    .bind(Ts(r.next_attempt_at))
                    .bind(r.last_error.as_deref())
                    .bind(Ts(r.created_at))
                    .execute(&mut *tx)
                    .await?;
                    if written.rows_affected() == 0 {
                        continue;
                    }
                    let due = chains
                        .entry((r.integration_id, r.dev_eui))
                        .or_insert(r.next_attempt_at);
                    *due = (*due).min(r.next_attempt_at);
                    if let Some(e) = &r.last_error {
                        errors.insert(r.integration_id, e);
                    }
                }
                for ((integration, dev_eui), due) in chains {
                    // Wake an idle chain; a chain waiting for a retry (or leased) is left alone.
                    sqlx::query(
                        "INSERT INTO outbox_chains (integration_id, dev_eui, next_attempt_at) \
                         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM devices WHERE dev_eui = $2) \
                         AND EXISTS (SELECT 1 FROM integrations WHERE id = $1) \
                         ON CONFLICT (integration_id, dev_eui) DO UPDATE SET next_attempt_at = \
                         excluded.next_attempt_at WHERE outbox_chains.next_attempt_at >= $4",
                    )
                    .bind(integration)
                    .bind(dev_eui.0.to_vec())
                    .bind(Ts(due))
                    .bind(sql::idle())
                    .execute(&mut *tx)
                    .await?;
                }
                for (integration, error) in errors {
                    note_integration_error(&mut tx, integration, error, at).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn outbox_active_chains(&self) -> Result<Vec<(Uuid, Eui64)>, StoreError> {
                let _t = timer(BACKEND.as_str(), "outbox_active_chains");
                let r = sqlx::query("SELECT DISTINCT integration_id, dev_eui FROM outbox")
                    .fetch_all(self.reader())
                    .await?;
                r.iter()
                    .map(|row| {
                        Ok((
                            row.try_get("integration_id")?,
                            sql::eui(row.try_get("dev_eui")?, "outbox", "dev_eui")?,
                        ))
                    })
                    .collect()
            }

            async fn integration_failed(
                &self,
                integration: Uuid,
                error: &str,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "integration_failed");
                let mut tx = self.begin_write().await?;
                note_integration_error(&mut tx, integration, error, at).await?;
                tx.commit().await?;
                Ok(())
            }

            // --- outbox ---

            async fn claim_outbox(
                &self,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                max: u32,
            ) -> Result<Claimed, StoreError> {
                let _t = timer(BACKEND.as_str(), "claim_outbox");
                let mut tx = self.begin_write().await?;
                // Due chains and the oldest undelivered row of each.
                let r = sqlx::query(concat!(
                    "SELECT c.integration_id AS chain_integration_id, c.dev_eui AS chain_dev_eui, \
                     o.id, o.integration_id, o.event_id, o.dev_eui, o.attempts, o.last_error, \
                     o.created_at, e.kind, e.payload \
                     FROM outbox_chains c \
                     LEFT JOIN outbox o ON o.id = (SELECT o2.id FROM outbox o2 \
                       WHERE o2.integration_id = c.integration_id AND o2.dev_eui = c.dev_eui \
                       ORDER BY o2.event_id LIMIT 1) \
                     LEFT JOIN events e ON e.id = o.event_id \
                     WHERE c.next_attempt_at <= $1 ORDER BY c.next_attempt_at LIMIT $2 ",
                    $lock
                ))
                .bind(Ts(now))
                .bind(i64::from(max))
                .fetch_all(&mut *tx)
                .await?;
                let mut items = Vec::new();
                let mut idle = Vec::new();
                let mut chains = Vec::with_capacity(r.len());
                for row in &r {
                    let integration: Uuid = row.try_get("chain_integration_id")?;
                    let dev_eui: Vec<u8> = row.try_get("chain_dev_eui")?;
                    let head: Option<i64> = row.try_get("id")?;
                    if head.is_some() {
                        items.push(outbox_row(row)?);
                        chains.push((integration, dev_eui, lease_until));
                    } else {
                        // Everything delivered (or given up): the chain goes idle.
                        idle.push((integration, sql::eui(dev_eui.clone(), "outbox_chains", "dev_eui")?));
                        chains.push((integration, dev_eui, sql::idle().0));
                    }
                }
                Self::set_chains(&mut tx, chains).await?;
                tx.commit().await?;
                Ok(Claimed { items, idle })
            }

            async fn outbox_delivered(
                &self,
                ids: &[i64],
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "outbox_delivered");
                if ids.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                // The next row of each chain is due at once.
                let integrations = remove_outbox_rows(&mut tx, ids, at).await?;
                for integration in integrations {
                    sqlx::query("UPDATE integrations SET last_delivered_at = $2 WHERE id = $1")
                        .bind(integration)
                        .bind(Ts(at))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn outbox_failed(
                &self,
                id: i64,
                at: DateTime<Utc>,
                error: &str,
                next_attempt_at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "outbox_failed");
                let mut tx = self.begin_write().await?;
                let chain = sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2, \
                     next_attempt_at = $3 WHERE id = $1 RETURNING integration_id, dev_eui",
                )
                .bind(id)
                .bind(error)
                .bind(Ts(next_attempt_at))
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(chain) = chain {
                    let integration: Uuid = chain.try_get("integration_id")?;
                    let dev_eui: Vec<u8> = chain.try_get("dev_eui")?;
                    note_integration_error(&mut tx, integration, error, at).await?;
                    Self::set_chains(&mut tx, vec![(integration, dev_eui, next_attempt_at)]).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn outbox_release(
                &self,
                chains: &[(Uuid, Eui64)],
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "outbox_release");
                if chains.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                let chains = chains.iter().map(|(i, d)| (*i, d.0.to_vec(), at)).collect();
                Self::set_chains(&mut tx, chains).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn outbox_expired(
                &self,
                ids: &[i64],
                at: DateTime<Utc>,
                error: &str,
            ) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "outbox_expired");
                if ids.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                let integrations = remove_outbox_rows(&mut tx, ids, at).await?;
                for integration in integrations {
                    note_integration_error(&mut tx, integration, error, at).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn outbox_backlog(&self, integration_id: Uuid) -> Result<u64, StoreError> {
                let _t = timer(BACKEND.as_str(), "outbox_backlog");
                let n: i64 = sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM outbox WHERE integration_id = $1) + \
                     (SELECT COUNT(*) FROM events e JOIN integrations i \
                      ON e.application_id = i.application_id AND e.id > i.delivered_through \
                      WHERE i.id = $1)",
                )
                .bind(integration_id)
                .fetch_one(self.reader())
                .await?;
                Ok(sql::count(n))
            }

            async fn delete_outbox_older_than(
                &self,
                cutoff: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                let _t = timer(BACKEND.as_str(), "delete_outbox_older_than");
                let r = sqlx::query("DELETE FROM outbox WHERE created_at < $1")
                    .bind(Ts(cutoff))
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected())
            }

            // --- batch ---

            async fn apply(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
                let _t = timer(BACKEND.as_str(), "apply");
                if ops.is_empty() {
                    return Ok(());
                }
                self.apply_batch(ops).await
            }
        }
    };
}
