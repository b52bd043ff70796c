//! The Postgres backend.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

/// Storage on Postgres (production). One connection pool; row locks with
/// `SKIP LOCKED` let several outbox workers claim rows side by side.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, crate::StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| crate::StoreError::BadUrl {
            url: crate::redact_url(url),
            reason: e.to_string(),
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            // No ping round trip per query: a connection that died fails its query,
            // is dropped, and the caller's retry (the writer's, the worker's next
            // round) gets a fresh one.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let store = PgStore { pool };
        store.run_migrations().await?;
        Ok(store)
    }

    /// The connection pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    async fn run_migrations(&self) -> Result<(), crate::StoreError> {
        sqlx::migrate!("../../schemas/sql/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// One transaction with one statement per *kind* of op rather than per op: each
    /// statement is a network round trip, so session upserts, events and last-seen
    /// updates of the whole batch go as arrays through
    /// `UNNEST`. Kinds touch disjoint tables (or columns), so running them kind by
    /// kind is indistinguishable from running the ops in order; within a kind the
    /// order is kept (events) or the last op per device wins (sessions, last seen),
    /// which is what running them in order leaves behind. Rare ops (queue, joins,
    /// class, gateways) run one by one.
    async fn apply_batch(&self, ops: &[crate::WriteOp]) -> Result<(), crate::StoreError> {
        let g = crate::ops::Grouped::new(ops);
        let mut tx = self.begin_write().await?;
        // Sessions, in DevEUI order (a consistent lock order across transactions).
        let upserts = g.upserts();
        if !upserts.is_empty() {
            let col = |f: &dyn Fn(&crate::DeviceSession) -> Vec<u8>| -> Vec<Vec<u8>> {
                upserts.iter().map(|s| f(s)).collect()
            };
            sqlx::query(concat!(
                "INSERT INTO device_sessions (",
                session_cols!(),
                ") SELECT u.* FROM UNNEST($1::bytea[], $2::bytea[], $3::text[], $4::bytea[], \
                   $5::bytea[], $6::bytea[], $7::bytea[], $8::int8[], $9::int8[], $10::int8[], \
                   $11::int8[], $12::text[], $13::timestamptz[]) \
                 AS u(dev_eui, dev_addr, mac_version, f, s, n, a, fcu, nfd, afd, cfc, st, ts) \
                 WHERE EXISTS (SELECT 1 FROM devices d WHERE d.dev_eui = u.dev_eui) ",
                session_upsert_set!()
            ))
            .bind(col(&|s| s.dev_eui.0.to_vec()))
            .bind(col(&|s| s.dev_addr.0.to_vec()))
            .bind(
                upserts
                    .iter()
                    .map(|s| s.mac_version.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(col(&|s| s.f_nwk_s_int_key.as_bytes().to_vec()))
            .bind(col(&|s| s.s_nwk_s_int_key.as_bytes().to_vec()))
            .bind(col(&|s| s.nwk_s_enc_key.as_bytes().to_vec()))
            .bind(col(&|s| s.app_s_key.as_bytes().to_vec()))
            .bind(
                upserts
                    .iter()
                    .map(|s| i64::from(s.f_cnt_up))
                    .collect::<Vec<_>>(),
            )
            .bind(
                upserts
                    .iter()
                    .map(|s| i64::from(s.n_f_cnt_down))
                    .collect::<Vec<_>>(),
            )
            .bind(
                upserts
                    .iter()
                    .map(|s| i64::from(s.a_f_cnt_down))
                    .collect::<Vec<_>>(),
            )
            .bind(
                upserts
                    .iter()
                    .map(|s| i64::from(s.conf_f_cnt))
                    .collect::<Vec<_>>(),
            )
            .bind(
                upserts
                    .iter()
                    .map(|s| s.ns_state.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(upserts.iter().map(|s| s.updated_at).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        let deletes = g.deletes();
        if !deletes.is_empty() {
            sqlx::query("DELETE FROM device_sessions WHERE dev_eui = ANY($1)")
                .bind(deletes)
                .execute(&mut *tx)
                .await?;
        }
        // Events in op order: ids increase in that order, which is the order webhooks
        // deliver them in (per device).
        let events = &g.events;
        if !events.is_empty() {
            let payloads: Vec<&str> = events.iter().map(|e| &*e.payload).collect();
            sqlx::query(
                "INSERT INTO events (dev_eui, application_id, kind, payload, created_at) \
                 SELECT u.dev_eui, u.application_id, u.kind, u.payload::json, u.created_at \
                 FROM UNNEST($1::bytea[], $2::uuid[], $3::text[], $4::text[], \
                   $5::timestamptz[]) WITH ORDINALITY \
                   AS u(dev_eui, application_id, kind, payload, created_at, ord) \
                 WHERE EXISTS (SELECT 1 FROM devices d WHERE d.dev_eui = u.dev_eui) \
                 ORDER BY u.ord",
            )
            .bind(
                events
                    .iter()
                    .map(|e| e.dev_eui.0.to_vec())
                    .collect::<Vec<_>>(),
            )
            .bind(events.iter().map(|e| e.application_id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
            .bind(payloads)
            .bind(events.iter().map(|e| e.created_at).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        let seen = &g.seen;
        if !seen.is_empty() {
            sqlx::query(
                "UPDATE devices d SET last_seen_at = u.at \
                 FROM UNNEST($1::bytea[], $2::timestamptz[]) AS u(dev_eui, at) \
                 WHERE d.dev_eui = u.dev_eui",
            )
            .bind(seen.keys().map(|e| e.0.to_vec()).collect::<Vec<_>>())
            .bind(seen.values().copied().collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        for op in g.others {
            apply_other(&mut tx, op).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_chains(
        tx: &mut Transaction<'static, Postgres>,
        chains: Vec<(uuid::Uuid, Vec<u8>, chrono::DateTime<chrono::Utc>)>,
    ) -> Result<(), crate::StoreError> {
        if chains.is_empty() {
            return Ok(());
        }
        let (mut integrations, mut devs, mut ats) = (Vec::new(), Vec::new(), Vec::new());
        for (i, d, a) in chains {
            integrations.push(i);
            devs.push(d);
            ats.push(a);
        }
        sqlx::query(
            "UPDATE outbox_chains c SET next_attempt_at = u.at \
             FROM UNNEST($1::uuid[], $2::bytea[], $3::timestamptz[]) AS u(integration_id, dev_eui, at) \
             WHERE c.integration_id = u.integration_id AND c.dev_eui = u.dev_eui",
        )
        .bind(integrations)
        .bind(devs)
        .bind(ats)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn delete_outbox_rows(
        tx: &mut Transaction<'static, Postgres>,
        ids: &[i64],
    ) -> Result<Vec<(uuid::Uuid, Vec<u8>)>, crate::StoreError> {
        use sqlx::Row;
        let rows =
            sqlx::query("DELETE FROM outbox WHERE id = ANY($1) RETURNING integration_id, dev_eui")
                .bind(ids)
                .fetch_all(&mut **tx)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("integration_id")?, r.try_get("dev_eui")?)))
            .collect()
    }

    async fn close_pools(&self) {
        self.pool.close().await
    }
}

impl_storage!(
    PgStore,
    Postgres,
    Backend::Postgres,
    lock = "FOR UPDATE OF c SKIP LOCKED",
    body = "payload::text"
);
