//! Lorikeet's storage: one object-safe [`Storage`] trait with a Postgres and a SQLite
//! implementation, chosen at run time from the database URL by [`connect`].
//!
//! - Postgres (`postgres://…`) is the production store; SQLite (`sqlite://PATH`,
//!   created if missing) is the embedded default.
//! - Migrations for both live in `schemas/sql/{postgres,sqlite}/` and are embedded;
//!   [`connect`] applies them, and so does [`Storage::migrate`].
//! - The network server keeps devices, sessions, queues and gateways in memory: it
//!   loads them at start-up (`load_all_*`, paged so a million sessions stream in)
//!   and writes through with [`Storage::apply`], one transaction for a whole batch
//!   of [`WriteOp`]s. Nothing on its hot path reads the database.
//! - EUIs and DevAddrs are stored as bytes (most significant byte first); root
//!   keys, session keys and integration secrets are sealed under a key-encryption
//!   key ([`kek`]), which [`connect`] checks before anything is read. See
//!   `docs/storage.md` for the schema and `docs/security.md` for the KEK.
//!
//! Layout: one module per thing stored under `entities/` (`devices.rs`,
//! `sessions.rs`, …), each with its SQL for both backends side by side; the
//! mechanics they share in small files: [`Store`] and its transactions
//! (`store.rs`), statements and rows of either backend (`stmt.rs`), value
//! encoding and metrics (`sql.rs`), paging (`paging.rs`), and opening each
//! database (`postgres.rs`, `sqlite.rs` with its file lock in `lock.rs`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use uuid::Uuid;

mod compact;
mod entities;
mod error;
mod feed;
pub mod kek;
mod lock;
mod model;
mod ops;
mod paging;
mod postgres;
mod sql;
mod sqlite;
mod stmt;
mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_alerts;
#[cfg(test)]
mod tests_events;
#[cfg(test)]
mod tests_feed;
#[cfg(test)]
mod tests_import;
#[cfg(test)]
mod tests_keys;
#[cfg(test)]
mod tests_measurements;
#[cfg(test)]
mod tests_users;

pub use error::StoreError;
pub use feed::{Changed, FeedEntry, FeedPage, FeedPosition, FeedSignals};
pub use kek::{Kek, KekError, Keyring};
pub use model::{
    hash_token, Alert, AlertFilter, AlertRule, AlertState, ApiKey, Application, Claimed,
    DeliveryCursor, Device, DeviceClass, DeviceContext, DeviceKeys, DeviceLink, DeviceProfile,
    DeviceSession, Event, EventKind, EventRetention, Gateway, GatewayMinute, GatewayTraffic,
    HttpIntegrationConfig, ImportCounts, ImportOutcome, ImportRefusal, ImportRow, Integration,
    IntegrationKind, IntegrationOwner, KeyCensus, LinkHour, LinkSample, Location, LocationSource,
    MeasurementBatch, MeasurementPoint, MeasurementQuery, MeasurementRetention, MeasurementSeries,
    MeasurementUpkeep, NewEvent, OutboxItem, Page, PayloadCodec, PendingEvent, QueueItem, Role,
    RootKeys, RotateReport, SpillRow, Tenant, User, UserSession, DEFAULT_TENANT_ID,
    USED_DEV_NONCE_LIMIT,
};
pub use ops::{Change, WriteOp};
pub use sql::describe_metrics;
pub use store::Store;

/// The current time at the precision both databases keep (microseconds). Every
/// timestamp that is stored is made here, so a value a write answers with equals
/// the one read back later.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// Which database a [`Storage`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Postgres.
    Postgres,
    /// Embedded SQLite.
    Sqlite,
}

impl Backend {
    /// "postgres" or "sqlite" (metric label, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// A device with its root keys, session and queue ([`Storage::device_states`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceState {
    /// The device.
    pub device: Device,
    /// Its root keys and join state, if set.
    pub keys: Option<DeviceKeys>,
    /// Its session, if joined or activated.
    pub session: Option<DeviceSession>,
    /// Its queue, oldest first.
    pub queue: Vec<QueueItem>,
}

/// Filter of [`Storage::list_devices`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Only this tenant's devices.
    pub tenant_id: Option<Uuid>,
    /// Only this application's devices.
    pub application_id: Option<Uuid>,
}

/// Rows per page when the `load_all_*` methods stream a large table.
pub const LOAD_PAGE_SIZE: u32 = 10_000;

/// Opens the database named by `url` (`sqlite://PATH` or `postgres://…`), creating a
/// SQLite file if it is missing, applies the migrations, and checks that `keyring`
/// opens what the database holds (see [`connect_with`]).
///
/// A SQLite file is opened for this process alone: while the store is open (until
/// [`Storage::close`] or the last clone is dropped, or the process ends) another
/// `connect` to it fails with [`StoreError::Locked`]. Several processes may share
/// a Postgres database.
pub async fn connect(url: &str, keyring: Keyring) -> Result<Arc<dyn Storage>, StoreError> {
    connect_with(url, ConnectOptions::default(), keyring).await
}

/// How SQLite makes a commit durable (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// Every commit is on disk when it returns (fsync of the WAL per commit): a
    /// power loss or kernel crash cannot undo what was sent after a commit. The
    /// writer's group commit keeps the cost to one fsync per batch.
    #[default]
    Full,
    /// The WAL is synced only at checkpoints: faster, survives a killed process, but
    /// a power loss can undo the last commits — counters that devices already saw.
    Normal,
}

/// Options of [`connect_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectOptions {
    /// SQLite durability (ignored for Postgres).
    pub sqlite_sync: SqliteSync,
}

/// [`connect`] with options. After the migrations, and before it returns:
///
/// 1. The KEK check: every KEK that values may be sealed under (one verifier row
///    each) must be in `keyring`, with the right key; otherwise
///    [`StoreError::Kek`] says which id is missing or wrong. The current KEK's
///    verifier is added.
/// 2. Plain keys and integration secrets of the previous version are sealed under
///    the current KEK, in batches (once; see `docs/security.md`).
pub async fn connect_with(
    url: &str,
    options: ConnectOptions,
    keyring: Keyring,
) -> Result<Arc<dyn Storage>, StoreError> {
    let store = open_store(url, options).await?.with_keyring(keyring);
    if let Err(e) = open_secrets(&store).await {
        store.close_pools().await;
        return Err(e);
    }
    Ok(Arc::new(store))
}

/// Opens `url` beside a server that may be running on it: the migrations are
/// applied, but the SQLite file lock is not taken and no secret is read (no KEK is
/// needed). For administration commands whose writes no live state caches
/// (`lorikeet user create`: console users are read from the database at sign-in).
pub async fn connect_beside(
    url: &str,
    options: ConnectOptions,
) -> Result<Arc<dyn Storage>, StoreError> {
    let store = if url.starts_with("sqlite:") {
        sqlite::open(url, sqlite::Lock::None, options.sqlite_sync).await?
    } else {
        open_store(url, options).await?
    };
    Ok(Arc::new(store))
}

/// Opens `url` and applies the migrations only: no KEK is needed, and the store
/// it opened is closed again (`lorikeet migrate`).
pub async fn migrate(url: &str, options: ConnectOptions) -> Result<(), StoreError> {
    open_store(url, options).await?.close_pools().await;
    Ok(())
}

async fn open_store(url: &str, options: ConnectOptions) -> Result<Store, StoreError> {
    let store = if url.starts_with("sqlite:") {
        sqlite::open(url, sqlite::Lock::Exclusive, options.sqlite_sync).await?
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        postgres::connect(url).await?
    } else {
        return Err(StoreError::BadUrl {
            url: redact_url(url),
            reason: "expected sqlite://PATH or postgres://USER@HOST/DATABASE".into(),
        });
    };
    Ok(store)
}

/// The KEK check and the sealing of plain values left by the previous version.
pub(crate) async fn open_secrets(store: &Store) -> Result<(), StoreError> {
    let ring = store.keyring()?;
    let previous = entities::kek_verifiers::check(store, ring).await?;
    for id in previous {
        tracing::warn!(
            kek_id = %id,
            current = ring.current_id(),
            "the database may still hold keys encrypted under the previous KEK '{id}': run \
             `lorikeet keys rotate` to re-encrypt them under '{}', then remove it from \
             [security] previous_keks",
            ring.current_id()
        );
    }
    entities::reseal::seal_plaintext(store).await
}

/// The URL with any password replaced by `***`, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Everything Lorikeet persists. Object safe: the server holds an `Arc<dyn Storage>`.
///
/// Conventions: lookups return `Ok(None)` for a missing row; updates and deletes
/// return whether a row was there; creating a duplicate gives
/// [`StoreError::Duplicate`], and naming a missing parent gives
/// [`StoreError::MissingReference`]. Every call records its latency in the
/// `lorikeet_db_query_duration_seconds` histogram.
#[async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Which database this is.
    fn backend(&self) -> Backend;
    /// Applies pending migrations (idempotent).
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Closes the connection pools, waiting for running queries.
    async fn close(&self);

    // --- tenants ---
    /// Creates a tenant.
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;
    /// One tenant.
    async fn get_tenant(&self, id: Uuid) -> Result<Option<Tenant>, StoreError>;
    /// Tenants by name.
    async fn list_tenants(&self, page: Page) -> Result<Vec<Tenant>, StoreError>;
    /// Renames a tenant.
    async fn update_tenant(&self, tenant: &Tenant) -> Result<bool, StoreError>;
    /// Deletes a tenant and everything it owns. The default tenant gives
    /// [`StoreError::DefaultTenant`].
    async fn delete_tenant(&self, id: Uuid) -> Result<bool, StoreError>;

    // --- API keys ---
    /// Stores a key with the SHA-256 of its token ([`hash_token`]).
    async fn create_api_key(&self, key: &ApiKey, token_hash: &[u8; 32]) -> Result<(), StoreError>;
    /// The key whose token hashes to `token_hash` (authentication).
    async fn api_key_by_hash(&self, token_hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError>;
    /// One key.
    async fn get_api_key(&self, id: Uuid) -> Result<Option<ApiKey>, StoreError>;
    /// Keys of one tenant, or of all tenants.
    async fn list_api_keys(
        &self,
        tenant_id: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key.
    async fn delete_api_key(&self, id: Uuid) -> Result<bool, StoreError>;

    // --- traffic and counts (console) ---
    /// Uplinks per minute in `[from, to)` of one application, a tenant's, or all
    /// (minutes without uplinks left out), from the counters `apply` keeps.
    async fn uplinks_per_minute(
        &self,
        tenant_id: Option<Uuid>,
        application_id: Option<Uuid>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, u64)>, StoreError>;
    /// Retention of the uplink counters.
    async fn delete_traffic_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;
    /// A gateway's traffic per minute in `[from, to)` (minutes without traffic left out).
    async fn gateway_minutes(
        &self,
        gateway_id: Eui64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<GatewayMinute>, StoreError>;
    /// Retention of the gateway minutes.
    async fn delete_gateway_minutes_older_than(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// How many devices a tenant (or the server) has.
    async fn count_devices(&self, tenant_id: Option<Uuid>) -> Result<u64, StoreError>;
    /// Deliveries waiting for a retry, of a tenant's integrations (or all).
    async fn delivery_backlog(&self, tenant_id: Option<Uuid>) -> Result<u64, StoreError>;

    /// A device's link health and its hours in `[from, to)`; `None` without the device.
    async fn device_link(
        &self,
        dev_eui: Eui64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<DeviceLink>, StoreError>;
    /// Retention of the hourly link figures.
    async fn delete_link_hours_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;

    // --- alerts (`docs/alerts.md`) ---
    /// Creates an alert rule (its tenant, and application if any, must exist).
    async fn create_alert_rule(&self, rule: &AlertRule) -> Result<(), StoreError>;
    /// One rule.
    async fn get_alert_rule(&self, id: Uuid) -> Result<Option<AlertRule>, StoreError>;
    /// Rules of a tenant (or all), oldest first; with `application_id`, that
    /// application's rules and the tenant-wide ones.
    async fn list_alert_rules(
        &self,
        tenant_id: Option<Uuid>,
        application_id: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<AlertRule>, StoreError>;
    /// Changes a rule's name, application and params.
    async fn update_alert_rule(&self, rule: &AlertRule) -> Result<bool, StoreError>;
    /// Deletes a rule and its alerts.
    async fn delete_alert_rule(&self, id: Uuid) -> Result<bool, StoreError>;
    /// Alerts, newest first (written through `apply`: [`WriteOp::AlertFired`]).
    async fn list_alerts(&self, filter: AlertFilter, page: Page) -> Result<Vec<Alert>, StoreError>;
    /// One alert.
    async fn get_alert(&self, id: Uuid) -> Result<Option<Alert>, StoreError>;
    /// Retention: deletes alerts resolved before `cutoff`.
    async fn delete_alerts_resolved_before(&self, cutoff: DateTime<Utc>)
        -> Result<u64, StoreError>;

    // --- measurements (the `postgres` integration, `docs/integrations.md`) ---
    /// Stores one uplink's fields, one row each, in one transaction; rows already
    /// there (a retried delivery) are skipped, and so is a device deleted
    /// meanwhile. Returns the rows written. On Postgres a day without a partition
    /// gets one first.
    async fn write_measurements(&self, batch: &MeasurementBatch) -> Result<u64, StoreError>;
    /// A device's values in `[from, to)` split into `buckets` equal buckets per
    /// field (mean, min, max, count), computed by the database; fields and buckets
    /// in order, empty buckets left out.
    async fn measurement_series(
        &self,
        query: &MeasurementQuery,
    ) -> Result<Vec<MeasurementSeries>, StoreError>;
    /// Retention and partitions, run periodically: on Postgres creates the day
    /// partitions from `now`'s day to three days ahead and drops those whose whole
    /// day is older than the longest of `retention`; on both, deletes each listed
    /// application's rows older than its retention, and the rows (received before
    /// `now`) of applications not listed.
    async fn measurement_upkeep(
        &self,
        now: DateTime<Utc>,
        retention: &[MeasurementRetention],
    ) -> Result<MeasurementUpkeep, StoreError>;

    // --- console users ---
    /// Creates a user (with its roles) holding `password_hash` (an argon2id PHC
    /// string). A taken email gives [`StoreError::Duplicate`].
    async fn create_user(&self, user: &User, password_hash: &str) -> Result<(), StoreError>;
    /// One user, with roles.
    async fn get_user(&self, id: Uuid) -> Result<Option<User>, StoreError>;
    /// The user with this (lower-cased) email, and its password hash.
    async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>, StoreError>;
    /// A user's password hash.
    async fn user_password_hash(&self, id: Uuid) -> Result<Option<String>, StoreError>;
    /// Users, oldest first; with `tenant_id`, those with a role in it.
    async fn list_users(
        &self,
        tenant_id: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<User>, StoreError>;
    /// How many users have the admin flag.
    async fn count_admin_users(&self) -> Result<u64, StoreError>;
    /// Changes a user's email and admin flag; false when there is no such user.
    async fn update_user(
        &self,
        id: Uuid,
        email: &str,
        is_admin: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Sets a user's password; ends their sessions except `keep`.
    async fn set_user_password(
        &self,
        id: Uuid,
        password_hash: &str,
        keep: Option<&[u8; 32]>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Replaces a user's roles; false when there is no such user.
    async fn set_user_roles(
        &self,
        id: Uuid,
        roles: &[(Uuid, Role)],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Deletes a user and their sessions.
    async fn delete_user(&self, id: Uuid) -> Result<bool, StoreError>;
    /// Stores a new sign-in session.
    async fn create_user_session(&self, session: &UserSession) -> Result<(), StoreError>;
    /// The unexpired session whose cookie hashes to `token_hash`, and its user.
    async fn user_session(
        &self,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<(UserSession, User)>, StoreError>;
    /// Ends a session (sign-out).
    async fn delete_user_session(&self, token_hash: &[u8; 32]) -> Result<bool, StoreError>;
    /// Removes sessions expired at `now`; how many.
    async fn purge_user_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    // --- applications ---
    /// Creates an application.
    async fn create_application(&self, app: &Application) -> Result<(), StoreError>;
    /// One application.
    async fn get_application(&self, id: Uuid) -> Result<Option<Application>, StoreError>;
    /// Applications of one tenant, or of all, by name.
    async fn list_applications(
        &self,
        tenant_id: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<Application>, StoreError>;
    /// Updates name and description (the tenant never changes).
    async fn update_application(&self, app: &Application) -> Result<bool, StoreError>;
    /// Deletes an application with its devices and integrations.
    async fn delete_application(&self, id: Uuid) -> Result<bool, StoreError>;

    // --- device profiles ---
    /// Creates a device profile.
    async fn create_device_profile(&self, profile: &DeviceProfile) -> Result<(), StoreError>;
    /// One device profile.
    async fn get_device_profile(&self, id: Uuid) -> Result<Option<DeviceProfile>, StoreError>;
    /// Profiles of one tenant, or of all, by name.
    async fn list_device_profiles(
        &self,
        tenant_id: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<DeviceProfile>, StoreError>;
    /// Updates every field but id, tenant and creation time.
    async fn update_device_profile(&self, profile: &DeviceProfile) -> Result<bool, StoreError>;
    /// Deletes a profile; [`StoreError::InUse`] while devices use it.
    async fn delete_device_profile(&self, id: Uuid) -> Result<bool, StoreError>;

    // --- devices ---
    /// Creates a device. Its application and profile must exist in `tenant_id`.
    async fn create_device(&self, device: &Device) -> Result<(), StoreError>;
    /// One device.
    async fn get_device(&self, dev_eui: Eui64) -> Result<Option<Device>, StoreError>;
    /// Devices by DevEUI.
    async fn list_devices(
        &self,
        filter: DeviceFilter,
        page: Page,
    ) -> Result<Vec<Device>, StoreError>;
    /// Updates the provisioned fields (not `last_seen_at` or `device_class_enabled`,
    /// which the network server owns).
    async fn update_device(&self, device: &Device) -> Result<bool, StoreError>;
    /// Deletes a device with its keys, session, queue and events.
    async fn delete_device(&self, dev_eui: Eui64) -> Result<bool, StoreError>;
    /// Up to `limit` devices with a DevEUI greater than `after`, by DevEUI (keyset
    /// paging for start-up loads).
    async fn devices_page(
        &self,
        after: Option<Eui64>,
        limit: u32,
    ) -> Result<Vec<Device>, StoreError>;
    /// The device with its profile, application and tenant (for the server's cache).
    async fn get_device_context(&self, dev_eui: Eui64)
        -> Result<Option<DeviceContext>, StoreError>;
    /// Creates or updates many devices, with their root keys and ABP sessions, in
    /// one provisioning transaction: all or nothing (see [`ImportRow`] for what an
    /// update keeps). Rows whose device exists in another tenant than the row's
    /// are refused and nothing is written ([`ImportOutcome::Refused`]); a DevEUI
    /// named by two rows is [`StoreError::Duplicate`].
    async fn import_devices(&self, rows: &[ImportRow]) -> Result<ImportOutcome, StoreError>;
    /// The rows [`Storage::import_devices`] would refuse, without writing (to name
    /// them beside rows that are invalid for other reasons).
    async fn import_refusals(&self, rows: &[ImportRow]) -> Result<Vec<ImportRefusal>, StoreError>;

    // --- root keys and join state ---
    /// Sets the root keys, keeping the join state (JoinNonce, used DevNonces).
    async fn set_device_keys(
        &self,
        dev_eui: Eui64,
        app_key: &Aes128Key,
        nwk_key: Option<&Aes128Key>,
    ) -> Result<(), StoreError>;
    /// Root keys and join state.
    async fn get_device_keys(&self, dev_eui: Eui64) -> Result<Option<DeviceKeys>, StoreError>;
    /// Up to `limit` devices' root keys and join state with a DevEUI greater than
    /// `after`, by DevEUI (keyset paging for start-up loads).
    async fn device_keys_page(
        &self,
        after: Option<Eui64>,
        limit: u32,
    ) -> Result<Vec<DeviceKeys>, StoreError>;

    // --- sessions (written through `apply`) ---
    /// One device's session.
    async fn get_session(&self, dev_eui: Eui64) -> Result<Option<DeviceSession>, StoreError>;
    /// Every session using `dev_addr`.
    async fn sessions_by_dev_addr(
        &self,
        dev_addr: DevAddr,
    ) -> Result<Vec<DeviceSession>, StoreError>;
    /// Up to `limit` sessions with a DevEUI greater than `after`, by DevEUI.
    async fn sessions_page(
        &self,
        after: Option<Eui64>,
        limit: u32,
    ) -> Result<Vec<DeviceSession>, StoreError>;

    // --- downlink queue ---
    /// Appends a downlink to the device's queue.
    async fn enqueue(&self, item: &QueueItem) -> Result<(), StoreError>;
    /// The device's queue, oldest first.
    async fn get_queue(&self, dev_eui: Eui64) -> Result<Vec<QueueItem>, StoreError>;
    /// Empties the device's queue; returns how many items were removed.
    async fn flush_queue(&self, dev_eui: Eui64) -> Result<u64, StoreError>;
    /// Every queued item of every device, by device then age (start-up load).
    async fn load_all_queue_items(&self) -> Result<Vec<QueueItem>, StoreError>;

    // --- gateways ---
    /// Creates a gateway.
    async fn create_gateway(&self, gateway: &Gateway) -> Result<(), StoreError>;
    /// One gateway.
    async fn get_gateway(&self, gateway_id: Eui64) -> Result<Option<Gateway>, StoreError>;
    /// Gateways of one tenant, or of all, by EUI.
    async fn list_gateways(
        &self,
        tenant_id: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<Gateway>, StoreError>;
    /// Updates name, description and location.
    async fn update_gateway(&self, gateway: &Gateway) -> Result<bool, StoreError>;
    /// Deletes a gateway.
    async fn delete_gateway(&self, gateway_id: Eui64) -> Result<bool, StoreError>;
    /// Every gateway (start-up load).
    async fn load_all_gateways(&self) -> Result<Vec<Gateway>, StoreError>;

    // --- integrations ---
    /// Creates the application's integration of this kind, or replaces its config.
    /// Returns true when it was created.
    async fn upsert_integration(&self, integration: &Integration) -> Result<bool, StoreError>;
    /// The application's integration of `kind`.
    async fn get_integration(
        &self,
        application_id: Uuid,
        kind: IntegrationKind,
    ) -> Result<Option<Integration>, StoreError>;
    /// Integrations of one application, or every integration (start-up load).
    async fn list_integrations(
        &self,
        application_id: Option<Uuid>,
    ) -> Result<Vec<Integration>, StoreError>;
    /// Deletes the application's integration of `kind` with its undelivered outbox rows.
    async fn delete_integration(
        &self,
        application_id: Uuid,
        kind: IntegrationKind,
    ) -> Result<bool, StoreError>;

    // --- events (written through `apply`) ---
    /// The device's newest `limit` events with ids below `before` (all when
    /// `None`), newest first, each as the JSON text delivered.
    async fn list_events(
        &self,
        dev_eui: Eui64,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<Event>, StoreError>;
    /// Retention and partitions: drops the events created before `cutoff` (whole
    /// day partitions on Postgres, which are also created ahead of `now`; id
    /// ranges in chunks on SQLite).
    async fn event_retention(
        &self,
        now: DateTime<Utc>,
        cutoff: DateTime<Utc>,
    ) -> Result<EventRetention, StoreError>;
    /// Moves up to `batch` events stored in the previous format into the compact
    /// one (newest first, one transaction); returns how many, 0 once none are left.
    async fn migrate_legacy_events(&self, batch: u32) -> Result<u64, StoreError>;

    // --- webhook delivery ---
    /// Every integration's delivery cursor (see [`DeliveryCursor`]).
    async fn delivery_cursors(&self) -> Result<Vec<DeliveryCursor>, StoreError>;
    /// Moves cursors forward (never back) and notes successful deliveries.
    async fn save_delivery_cursors(&self, cursors: &[DeliveryCursor]) -> Result<(), StoreError>;
    /// The application's events with an id above `after`, oldest first, at most
    /// `limit` of them: what a webhook delivers next. Reads only, so on SQLite it
    /// runs beside the writer.
    async fn events_after(
        &self,
        application_id: Uuid,
        after: i64,
        limit: u32,
    ) -> Result<Vec<PendingEvent>, StoreError>;
    /// Moves events into the retry outbox, and makes each idle chain they join due
    /// at its earliest row's `next_attempt_at` (a chain that is leased or waiting for
    /// a retry keeps its time). Rows of deleted devices, events or integrations are
    /// skipped. Failures are noted on their integrations.
    async fn outbox_spill(&self, rows: &[SpillRow], at: DateTime<Utc>) -> Result<(), StoreError>;
    /// The (integration, device) pairs with rows in the outbox: their next events
    /// must queue behind those rows.
    async fn outbox_active_chains(&self) -> Result<Vec<(Uuid, Eui64)>, StoreError>;
    /// Notes a delivery error on an integration (shown by the API) without touching
    /// any event: for settings that cannot be used at all.
    async fn integration_failed(
        &self,
        integration: Uuid,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    // --- outbox (retries) ---
    /// Claims up to `limit` outbox rows to deliver: for each (integration, device)
    /// chain that is due (`now`), its oldest undelivered row, so deliveries stay in
    /// order per device while other devices proceed. A claimed chain is not due again
    /// until `lease_until` (a crashed worker's rows come back then), or until its row
    /// is reported delivered or failed. The work is proportional to the due chains,
    /// not to the rows waiting behind them. Due chains found empty go idle and are
    /// reported in [`Claimed::idle`].
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Claimed, StoreError>;
    /// Delivered: removes the rows, makes the next row of each chain due at once and
    /// notes the success on the integrations.
    async fn outbox_delivered(&self, ids: &[i64], at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Failed: counts the attempt, keeps the error (on the row and the integration)
    /// and holds the row's chain until `next_attempt_at` (the worker's backoff).
    async fn outbox_failed(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Claimed rows the worker could not take in now (its per-integration queue was
    /// full): their chains are due again at `at` instead of at the end of the lease.
    /// Attempts and errors are not touched.
    async fn outbox_release(
        &self,
        chains: &[(Uuid, Eui64)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Given up (older than the max delivery age): removes the rows, makes the next
    /// row of each chain due at once and notes `error` on the integrations.
    async fn outbox_expired(
        &self,
        ids: &[i64],
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;
    /// Events an integration has still to deliver: its outbox rows plus its
    /// application's events past its cursor.
    async fn outbox_backlog(&self, integration_id: Uuid) -> Result<u64, StoreError>;
    /// Gives up on rows written before `cutoff` (max delivery age); returns how many.
    async fn delete_outbox_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;

    // --- the change feed (see `feed.rs`) ---
    /// ABP activation through the API: writes the device's session as a provisioning
    /// change (on the feed). The network server's own session writes use `apply`.
    async fn activate_session(&self, session: &DeviceSession) -> Result<(), StoreError>;
    /// Up to `limit` feed entries after `after`, in feed order; only entries no
    /// running transaction can still precede (see [`FeedPage::more`]).
    async fn changes_after(&self, after: FeedPosition, limit: u32) -> Result<FeedPage, StoreError>;
    /// The newest entry no running transaction can precede. Loading everything after
    /// reading this, then following the feed from it, misses nothing.
    async fn feed_head(&self) -> Result<FeedPosition, StoreError>;
    /// Retention: removes feed entries written before `cutoff`; returns how many.
    async fn trim_changes(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Wakes this process's feed reader when another process sharing the database
    /// commits a change, and tells the others of this process's commits (Postgres
    /// LISTEN/NOTIFY, sent after the commit). Runs until dropped; returns at once on
    /// SQLite. Without it, other processes see this one's changes on their timer.
    async fn listen_for_changes(&self);
    /// This process's feed signals: the newest position its provisioning writes
    /// committed (what an API answer waits for) and a signal after each commit.
    fn feed_signals(&self) -> &FeedSignals;
    /// Everything the network and application servers hold about each of `euis`
    /// that exists: device, root keys, session and queue (the feed reader's batched
    /// reload).
    async fn device_states(&self, euis: &[Eui64]) -> Result<Vec<DeviceState>, StoreError>;

    // --- the batched write of the hot path ---
    /// Runs every op in order in one transaction: all or nothing.
    async fn apply(&self, ops: &[WriteOp]) -> Result<(), StoreError>;

    // --- keys at rest ---
    /// Re-encrypts every stored secret that is not sealed under the current KEK,
    /// `batch` rows per transaction, while servers keep running; then forgets the
    /// other KEKs (`lorikeet keys rotate`, `docs/security.md`).
    async fn rotate_keys(&self, batch: u32) -> Result<RotateReport, StoreError>;
    /// How many stored secrets are sealed under each KEK (reads every row).
    async fn key_census(&self) -> Result<KeyCensus, StoreError>;

    // --- start-up loads, built on the paged methods ---
    /// Every session, read page by page.
    async fn load_all_sessions(&self) -> Result<Vec<DeviceSession>, StoreError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.sessions_page(after, LOAD_PAGE_SIZE).await?;
            let full = page.len() == LOAD_PAGE_SIZE as usize;
            after = page.last().map(|s| s.dev_eui);
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }
    /// Every device's root keys and join state, read page by page.
    async fn load_all_device_keys(&self) -> Result<Vec<DeviceKeys>, StoreError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.device_keys_page(after, LOAD_PAGE_SIZE).await?;
            let full = page.len() == LOAD_PAGE_SIZE as usize;
            after = page.last().map(|k| k.dev_eui);
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }
    /// Every device, read page by page.
    async fn load_all_devices(&self) -> Result<Vec<Device>, StoreError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.devices_page(after, LOAD_PAGE_SIZE).await?;
            let full = page.len() == LOAD_PAGE_SIZE as usize;
            after = page.last().map(|d| d.dev_eui);
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }
    /// Every device profile.
    async fn load_all_device_profiles(&self) -> Result<Vec<DeviceProfile>, StoreError> {
        self.list_device_profiles(None, Page::ALL).await
    }
    /// Every application.
    async fn load_all_applications(&self) -> Result<Vec<Application>, StoreError> {
        self.list_applications(None, Page::ALL).await
    }
    /// Every tenant.
    async fn load_all_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.list_tenants(Page::ALL).await
    }
}
