//! What is stored, one module per thing: each holds its SQL (shared by both
//! backends, or both variants side by side where they differ), its column list and
//! the function that decodes its rows.
//!
//! | module | tables |
//! |---|---|
//! | [`tenants`] | `tenants` |
//! | [`alerts`] | `alert_rules`, `alerts` (rules and their history) |
//! | [`api_keys`] | `api_keys` |
//! | [`link`] | link health on `devices`, `device_link_hours` (RSSI/SNR per device and hour) |
//! | [`traffic`] | `uplink_minutes` (uplinks per application and minute) |
//! | [`measurements`] | `measurements` (decoded fields of uplinks; day partitions on Postgres) |
//! | [`users`] | `users`, `user_roles`, `user_sessions` (console sign-in) |
//! | [`applications`] | `applications` |
//! | [`device_profiles`] | `device_profiles` |
//! | [`devices`] | `devices` |
//! | [`import`] | `devices`, `device_keys`, `device_sessions`: the bulk import, one transaction |
//! | [`device_keys`] | `device_keys`, `used_dev_nonces` (root keys and join state) |
//! | [`sessions`] | `device_sessions` |
//! | [`queue`] | `device_queue` |
//! | [`gateways`] | `gateways` |
//! | [`integrations`] | `integrations` |
//! | [`events`] | `events` |
//! | [`delivery`] | delivery cursors on `integrations`, reading `events` for webhooks |
//! | [`outbox`] | `outbox`, `outbox_chains` (retries) |
//! | [`batch`] | `Storage::apply`: a batch of `WriteOp`s across the modules above |
//! | [`kek_verifiers`] | `kek_verifiers`, `key_encryption`: which KEKs values are sealed under |
//! | [`reseal`] | the sealed columns of `device_keys`, `device_sessions`, `integrations`: start-up sealing, rotation |
//!
//! Below, the [`Storage`] implementation: one line per method, naming the module
//! that does it and timing the call (`lorikeet_db_query_duration_seconds`).

use std::future::Future;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use uuid::Uuid;

use crate::model::*;
use crate::sql::timer;
use crate::{
    Backend, DeviceFilter, DeviceState, FeedPage, FeedPosition, FeedSignals, Storage, Store,
    StoreError, WriteOp,
};

mod alerts;
mod api_keys;
mod applications;
mod batch;
pub(crate) mod changes;
mod delivery;
mod device_keys;
mod device_profiles;
mod devices;
mod event_days;
pub(crate) mod events;
pub(crate) use events::init as events_init;
mod gateways;
mod import;
mod integrations;
pub(crate) mod kek_verifiers;
mod link;
mod measurements;
mod outbox;
mod partitions;
mod queue;
pub(crate) mod reseal;
mod sessions;
mod tenants;
mod traffic;
mod users;

impl Store {
    /// Runs `f`, recording its latency under `op`.
    async fn timed<T>(&self, op: &'static str, f: impl Future<Output = T>) -> T {
        let _t = timer(self.backend().as_str(), op);
        f.await
    }
}

#[async_trait]
impl Storage for Store {
    fn backend(&self) -> Backend {
        Store::backend(self)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.timed("migrate", self.run_migrations()).await
    }

    async fn close(&self) {
        self.close_pools().await
    }

    // --- tenants ---

    async fn create_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
        self.timed("create_tenant", tenants::create(self, t)).await
    }

    async fn get_tenant(&self, id: Uuid) -> Result<Option<Tenant>, StoreError> {
        self.timed("get_tenant", tenants::get(self, id)).await
    }

    async fn list_tenants(&self, page: Page) -> Result<Vec<Tenant>, StoreError> {
        self.timed("list_tenants", tenants::list(self, page)).await
    }

    async fn update_tenant(&self, t: &Tenant) -> Result<bool, StoreError> {
        self.timed("update_tenant", tenants::update(self, t)).await
    }

    async fn delete_tenant(&self, id: Uuid) -> Result<bool, StoreError> {
        self.timed("delete_tenant", tenants::delete(self, id)).await
    }

    // --- API keys ---

    async fn create_api_key(&self, key: &ApiKey, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        self.timed("create_api_key", api_keys::create(self, key, token_hash))
            .await
    }

    async fn api_key_by_hash(&self, token_hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError> {
        self.timed("api_key_by_hash", api_keys::by_hash(self, token_hash))
            .await
    }

    async fn get_api_key(&self, id: Uuid) -> Result<Option<ApiKey>, StoreError> {
        self.timed("get_api_key", api_keys::get(self, id)).await
    }

    async fn list_api_keys(
        &self,
        tenant_id: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<ApiKey>, StoreError> {
        self.timed("list_api_keys", api_keys::list(self, tenant_id, page))
            .await
    }

    async fn delete_api_key(&self, id: Uuid) -> Result<bool, StoreError> {
        self.timed("delete_api_key", api_keys::delete(self, id))
            .await
    }

    // --- traffic and counts (console) ---

    async fn uplinks_per_minute(
        &self,
        tenant_id: Option<Uuid>,
        application_id: Option<Uuid>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, u64)>, StoreError> {
        self.timed(
            "uplinks_per_minute",
            traffic::uplinks_per_minute(self, tenant_id, application_id, from, to),
        )
        .await
    }

    async fn delete_traffic_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        self.timed(
            "delete_traffic_older_than",
            traffic::delete_older_than(self, cutoff),
        )
        .await
    }

    async fn gateway_minutes(
        &self,
        gateway_id: Eui64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<GatewayMinute>, StoreError> {
        self.timed(
            "gateway_minutes",
            traffic::gateway_minutes(self, gateway_id, from, to),
        )
        .await
    }

    async fn delete_gateway_minutes_older_than(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.timed(
            "delete_gateway_minutes_older_than",
            traffic::delete_gateway_minutes_older_than(self, cutoff),
        )
        .await
    }

    async fn count_devices(&self, tenant_id: Option<Uuid>) -> Result<u64, StoreError> {
        self.timed("count_devices", traffic::count_devices(self, tenant_id))
            .await
    }

    async fn delivery_backlog(&self, tenant_id: Option<Uuid>) -> Result<u64, StoreError> {
        self.timed(
            "delivery_backlog",
            traffic::delivery_backlog(self, tenant_id),
        )
        .await
    }

    async fn device_link(
        &self,
        dev_eui: Eui64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<DeviceLink>, StoreError> {
        self.timed("device_link", link::read(self, dev_eui, from, to))
            .await
    }

    async fn delete_link_hours_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        self.timed(
            "delete_link_hours_older_than",
            link::delete_older_than(self, cutoff),
        )
        .await
    }

    // --- alerts ---
    async fn create_alert_rule(&self, rule: &AlertRule) -> Result<(), StoreError> {
        self.timed("create_alert_rule", alerts::create_rule(self, rule))
            .await
    }

    async fn get_alert_rule(&self, id: Uuid) -> Result<Option<AlertRule>, StoreError> {
        self.timed("get_alert_rule", alerts::get_rule(self, id))
            .await
    }

    async fn list_alert_rules(
        &self,
        tenant_id: Option<Uuid>,
        application_id: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<AlertRule>, StoreError> {
        self.timed(
            "list_alert_rules",
            alerts::list_rules(self, tenant_id, application_id, page),
        )
        .await
    }

    async fn update_alert_rule(&self, rule: &AlertRule) -> Result<bool, StoreError> {
        self.timed("update_alert_rule", alerts::update_rule(self, rule))
            .await
    }

    async fn delete_alert_rule(&self, id: Uuid) -> Result<bool, StoreError> {
        self.timed("delete_alert_rule", alerts::delete_rule(self, id))
            .await
    }

    async fn list_alerts(&self, filter: AlertFilter, page: Page) -> Result<Vec<Alert>, StoreError> {
        self.timed("list_alerts", alerts::list_alerts(self, filter, page))
            .await
    }

    async fn get_alert(&self, id: Uuid) -> Result<Option<Alert>, StoreError> {
        self.timed("get_alert", alerts::get_alert(self, id)).await
    }

    async fn delete_alerts_resolved_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.timed(
            "delete_alerts_resolved_before",
            alerts::delete_resolved_before(self, cutoff),
        )
        .await
    }

    // --- measurements ---

    async fn write_measurements(&self, batch: &MeasurementBatch) -> Result<u64, StoreError> {
        self.timed("write_measurements", measurements::write(self, batch))
            .await
    }

    async fn measurement_series(
        &self,
        query: &MeasurementQuery,
    ) -> Result<Vec<MeasurementSeries>, StoreError> {
        self.timed("measurement_series", measurements::series(self, query))
            .await
    }

    async fn measurement_upkeep(
        &self,
        now: DateTime<Utc>,
        retention: &[MeasurementRetention],
    ) -> Result<MeasurementUpkeep, StoreError> {
        self.timed(
            "measurement_upkeep",
            measurements::upkeep(self, now, retention),
        )
        .await
    }

    // --- console users ---

    async fn create_user(&self, user: &User, password_hash: &str) -> Result<(), StoreError> {
        self.timed("create_user", users::create(self, user, password_hash))
            .await
    }

    async fn get_user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        self.timed("get_user", users::get(self, id)).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>, StoreError> {
        self.timed("user_by_email", users::by_email(self, email))
            .await
    }

    async fn user_password_hash(&self, id: Uuid) -> Result<Option<String>, StoreError> {
        self.timed("user_password_hash", users::password_hash(self, id))
            .await
    }

    async fn list_users(
        &self,
        tenant_id: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<User>, StoreError> {
        self.timed("list_users", users::list(self, tenant_id, page))
            .await
    }

    async fn count_admin_users(&self) -> Result<u64, StoreError> {
        self.timed("count_admin_users", users::count_admins(self))
            .await
    }

    async fn update_user(
        &self,
        id: Uuid,
        email: &str,
        is_admin: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.timed("update_user", users::update(self, id, email, is_admin, now))
            .await
    }

    async fn set_user_password(
        &self,
        id: Uuid,
        password_hash: &str,
        keep: Option<&[u8; 32]>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.timed(
            "set_user_password",
            users::set_password(self, id, password_hash, keep, now),
        )
        .await
    }

    async fn set_user_roles(
        &self,
        id: Uuid,
        roles: &[(Uuid, Role)],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.timed("set_user_roles", users::set_roles(self, id, roles, now))
            .await
    }

    async fn delete_user(&self, id: Uuid) -> Result<bool, StoreError> {
        self.timed("delete_user", users::delete(self, id)).await
    }

    async fn create_user_session(&self, session: &UserSession) -> Result<(), StoreError> {
        self.timed("create_user_session", users::create_session(self, session))
            .await
    }

    async fn user_session(
        &self,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<(UserSession, User)>, StoreError> {
        self.timed("user_session", users::session(self, token_hash, now))
            .await
    }

    async fn delete_user_session(&self, token_hash: &[u8; 32]) -> Result<bool, StoreError> {
        self.timed(
            "delete_user_session",
            users::delete_session(self, token_hash),
        )
        .await
    }

    async fn purge_user_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.timed("purge_user_sessions", users::purge_sessions(self, now))
            .await
    }

    // --- applications ---

    async fn create_application(&self, a: &Application) -> Result<(), StoreError> {
        self.timed("create_application", applications::create(self, a))
            .await
    }

    async fn get_application(&self, id: Uuid) -> Result<Option<Application>, StoreError> {
        self.timed("get_application", applications::get(self, id))
            .await
    }

    async fn list_applications(
        &self,
        tenant_id: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<Application>, StoreError> {
        self.timed(
            "list_applications",
            applications::list(self, tenant_id, page),
        )
        .await
    }

    async fn update_application(&self, a: &Application) -> Result<bool, StoreError> {
        self.timed("update_application", applications::update(self, a))
            .await
    }

    async fn delete_application(&self, id: Uuid) -> Result<bool, StoreError> {
        self.timed("delete_application", applications::delete(self, id))
            .await
    }

    // --- device profiles ---

    async fn create_device_profile(&self, p: &DeviceProfile) -> Result<(), StoreError> {
        self.timed("create_device_profile", device_profiles::create(self, p))
            .await
    }

    async fn get_device_profile(&self, id: Uuid) -> Result<Option<DeviceProfile>, StoreError> {
        self.timed("get_device_profile", device_profiles::get(self, id))
            .await
    }

    async fn list_device_profiles(
        &self,
        tenant_id: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<DeviceProfile>, StoreError> {
        self.timed(
            "list_device_profiles",
            device_profiles::list(self, tenant_id, page),
        )
        .await
    }

    async fn update_device_profile(&self, p: &DeviceProfile) -> Result<bool, StoreError> {
        self.timed("update_device_profile", device_profiles::update(self, p))
            .await
    }

    async fn delete_device_profile(&self, id: Uuid) -> Result<bool, StoreError> {
        self.timed("delete_device_profile", device_profiles::delete(self, id))
            .await
    }

    // --- devices ---

    async fn create_device(&self, d: &Device) -> Result<(), StoreError> {
        self.timed("create_device", devices::create(self, d)).await
    }

    async fn get_device(&self, dev_eui: Eui64) -> Result<Option<Device>, StoreError> {
        self.timed("get_device", devices::get(self, dev_eui)).await
    }

    async fn list_devices(
        &self,
        filter: DeviceFilter,
        page: Page,
    ) -> Result<Vec<Device>, StoreError> {
        self.timed("list_devices", devices::list(self, filter, page))
            .await
    }

    async fn update_device(&self, d: &Device) -> Result<bool, StoreError> {
        self.timed("update_device", devices::update(self, d)).await
    }

    async fn delete_device(&self, dev_eui: Eui64) -> Result<bool, StoreError> {
        self.timed("delete_device", devices::delete(self, dev_eui))
            .await
    }

    async fn devices_page(
        &self,
        after: Option<Eui64>,
        limit: u32,
    ) -> Result<Vec<Device>, StoreError> {
        self.timed("devices_page", devices::page(self, after, limit))
            .await
    }

    async fn get_device_context(
        &self,
        dev_eui: Eui64,
    ) -> Result<Option<DeviceContext>, StoreError> {
        // Not timed itself: its four reads are.
        devices::context(self, dev_eui).await
    }

    async fn load_all_devices(&self) -> Result<Vec<Device>, StoreError> {
        self.timed("load_all_devices", devices::load_all(self))
            .await
    }

    async fn import_devices(&self, rows: &[ImportRow]) -> Result<ImportOutcome, StoreError> {
        self.timed("import_devices", import::import(self, rows))
            .await
    }

    async fn import_refusals(&self, rows: &[ImportRow]) -> Result<Vec<ImportRefusal>, StoreError> {
        self.timed("import_refusals", import::check(self, rows))
            .await
    }

    // --- root keys and join state ---

    async fn set_device_keys(
        &self,
        dev_eui: Eui64,
        app_key: &Aes128Key,
        nwk_key: Option<&Aes128Key>,
    ) -> Result<(), StoreError> {
        self.timed(
            "set_device_keys",
            device_keys::set(self, dev_eui, app_key, nwk_key),
        )
        .await
    }

    async fn get_device_keys(&self, dev_eui: Eui64) -> Result<Option<DeviceKeys>, StoreError> {
        self.timed("get_device_keys", device_keys::get(self, dev_eui))
            .await
    }

    async fn device_keys_page(
        &self,
        after: Option<Eui64>,
        limit: u32,
    ) -> Result<Vec<DeviceKeys>, StoreError> {
        self.timed("device_keys_page", device_keys::page(self, after, limit))
            .await
    }

    // --- sessions ---

    async fn get_session(&self, dev_eui: Eui64) -> Result<Option<DeviceSession>, StoreError> {
        self.timed("get_session", sessions::get(self, dev_eui))
            .await
    }

    async fn sessions_by_dev_addr(
        &self,
        dev_addr: DevAddr,
    ) -> Result<Vec<DeviceSession>, StoreError> {
        self.timed(
            "sessions_by_dev_addr",
            sessions::by_dev_addr(self, dev_addr),
        )
        .await
    }

    async fn sessions_page(
        &self,
        after: Option<Eui64>,
        limit: u32,
    ) -> Result<Vec<DeviceSession>, StoreError> {
        self.timed("sessions_page", sessions::page(self, after, limit))
            .await
    }

    async fn load_all_sessions(&self) -> Result<Vec<DeviceSession>, StoreError> {
        self.timed("load_all_sessions", sessions::load_all(self))
            .await
    }

    // --- downlink queue ---

    async fn enqueue(&self, item: &QueueItem) -> Result<(), StoreError> {
        self.timed("enqueue", queue::enqueue(self, item)).await
    }

    async fn get_queue(&self, dev_eui: Eui64) -> Result<Vec<QueueItem>, StoreError> {
        self.timed("get_queue", queue::get(self, dev_eui)).await
    }

    async fn flush_queue(&self, dev_eui: Eui64) -> Result<u64, StoreError> {
        self.timed("flush_queue", queue::flush(self, dev_eui)).await
    }

    async fn load_all_queue_items(&self) -> Result<Vec<QueueItem>, StoreError> {
        self.timed("load_all_queue_items", queue::load_all(self))
            .await
    }

    // --- gateways ---

    async fn create_gateway(&self, g: &Gateway) -> Result<(), StoreError> {
        self.timed("create_gateway", gateways::create(self, g))
            .await
    }

    async fn get_gateway(&self, gateway_id: Eui64) -> Result<Option<Gateway>, StoreError> {
        self.timed("get_gateway", gateways::get(self, gateway_id))
            .await
    }

    async fn list_gateways(
        &self,
        tenant_id: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<Gateway>, StoreError> {
        self.timed("list_gateways", gateways::list(self, tenant_id, page))
            .await
    }

    async fn update_gateway(&self, g: &Gateway) -> Result<bool, StoreError> {
        self.timed("update_gateway", gateways::update(self, g))
            .await
    }

    async fn delete_gateway(&self, gateway_id: Eui64) -> Result<bool, StoreError> {
        self.timed("delete_gateway", gateways::delete(self, gateway_id))
            .await
    }

    async fn load_all_gateways(&self) -> Result<Vec<Gateway>, StoreError> {
        self.list_gateways(None, Page::ALL).await
    }

    // --- integrations ---

    async fn upsert_integration(&self, i: &Integration) -> Result<bool, StoreError> {
        self.timed("upsert_integration", integrations::upsert(self, i))
            .await
    }

    async fn get_integration(
        &self,
        application_id: Uuid,
        kind: IntegrationKind,
    ) -> Result<Option<Integration>, StoreError> {
        self.timed(
            "get_integration",
            integrations::get(self, application_id, kind),
        )
        .await
    }

    async fn list_integrations(
        &self,
        application_id: Option<Uuid>,
    ) -> Result<Vec<Integration>, StoreError> {
        self.timed(
            "list_integrations",
            integrations::list(self, application_id),
        )
        .await
    }

    async fn delete_integration(
        &self,
        application_id: Uuid,
        kind: IntegrationKind,
    ) -> Result<bool, StoreError> {
        self.timed(
            "delete_integration",
            integrations::delete(self, application_id, kind),
        )
        .await
    }

    // --- events ---

    async fn list_events(
        &self,
        dev_eui: Eui64,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<Event>, StoreError> {
        self.timed("list_events", events::list(self, dev_eui, limit, before))
            .await
    }

    async fn event_retention(
        &self,
        now: DateTime<Utc>,
        cutoff: DateTime<Utc>,
    ) -> Result<EventRetention, StoreError> {
        self.timed("event_retention", events::upkeep(self, now, cutoff))
            .await
    }

    async fn migrate_legacy_events(&self, batch: u32) -> Result<u64, StoreError> {
        self.timed("migrate_legacy_events", events::migrate_legacy(self, batch))
            .await
    }

    // --- webhook delivery ---

    async fn delivery_cursors(&self) -> Result<Vec<DeliveryCursor>, StoreError> {
        self.timed("delivery_cursors", delivery::cursors(self))
            .await
    }

    async fn save_delivery_cursors(&self, cursors: &[DeliveryCursor]) -> Result<(), StoreError> {
        self.timed(
            "save_delivery_cursors",
            delivery::save_cursors(self, cursors),
        )
        .await
    }

    async fn events_after(
        &self,
        application_id: Uuid,
        after: i64,
        limit: u32,
    ) -> Result<Vec<PendingEvent>, StoreError> {
        self.timed(
            "events_after",
            delivery::events_after(self, application_id, after, limit),
        )
        .await
    }

    async fn outbox_spill(&self, rows: &[SpillRow], at: DateTime<Utc>) -> Result<(), StoreError> {
        self.timed("outbox_spill", delivery::spill(self, rows, at))
            .await
    }

    async fn outbox_active_chains(&self) -> Result<Vec<(Uuid, Eui64)>, StoreError> {
        self.timed("outbox_active_chains", delivery::active_chains(self))
            .await
    }

    async fn integration_failed(
        &self,
        integration: Uuid,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.timed(
            "integration_failed",
            delivery::integration_failed(self, integration, error, at),
        )
        .await
    }

    // --- outbox (retries) ---

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Claimed, StoreError> {
        self.timed("claim_outbox", outbox::claim(self, now, lease_until, limit))
            .await
    }

    async fn outbox_delivered(&self, ids: &[i64], at: DateTime<Utc>) -> Result<(), StoreError> {
        self.timed("outbox_delivered", outbox::delivered(self, ids, at))
            .await
    }

    async fn outbox_failed(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.timed(
            "outbox_failed",
            outbox::failed(self, id, at, error, next_attempt_at),
        )
        .await
    }

    async fn outbox_release(
        &self,
        chains: &[(Uuid, Eui64)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.timed("outbox_release", outbox::release(self, chains, at))
            .await
    }

    async fn outbox_expired(
        &self,
        ids: &[i64],
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        self.timed("outbox_expired", outbox::expired(self, ids, at, error))
            .await
    }

    async fn outbox_backlog(&self, integration_id: Uuid) -> Result<u64, StoreError> {
        self.timed("outbox_backlog", outbox::backlog(self, integration_id))
            .await
    }

    async fn delete_outbox_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        self.timed(
            "delete_outbox_older_than",
            outbox::delete_older_than(self, cutoff),
        )
        .await
    }

    // --- the batched write of the hot path ---

    async fn activate_session(&self, session: &DeviceSession) -> Result<(), StoreError> {
        self.timed("activate_session", sessions::activate(self, session))
            .await
    }

    async fn changes_after(&self, after: FeedPosition, limit: u32) -> Result<FeedPage, StoreError> {
        self.timed("changes_after", changes::after(self, after, limit))
            .await
    }

    async fn feed_head(&self) -> Result<FeedPosition, StoreError> {
        self.timed("feed_head", changes::head(self)).await
    }

    async fn trim_changes(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        self.timed("trim_changes", changes::trim(self, cutoff))
            .await
    }

    async fn listen_for_changes(&self) {
        changes::listen(self).await
    }

    fn feed_signals(&self) -> &FeedSignals {
        self.feed()
    }

    async fn device_states(&self, euis: &[Eui64]) -> Result<Vec<DeviceState>, StoreError> {
        self.timed("device_states", async {
            let (devices, keys, sessions, queues) = tokio::try_join!(
                devices::by_euis(self, euis),
                device_keys::by_euis(self, euis),
                sessions::by_euis(self, euis),
                queue::by_euis(self, euis),
            )?;
            let mut keys: std::collections::HashMap<Eui64, DeviceKeys> =
                keys.into_iter().map(|k| (k.dev_eui, k)).collect();
            let mut sessions: std::collections::HashMap<Eui64, DeviceSession> =
                sessions.into_iter().map(|s| (s.dev_eui, s)).collect();
            let mut by_device: std::collections::HashMap<Eui64, Vec<QueueItem>> =
                std::collections::HashMap::new();
            for q in queues {
                by_device.entry(q.dev_eui).or_default().push(q);
            }
            Ok(devices
                .into_iter()
                .map(|device| DeviceState {
                    keys: keys.remove(&device.dev_eui),
                    session: sessions.remove(&device.dev_eui),
                    queue: by_device.remove(&device.dev_eui).unwrap_or_default(),
                    device,
                })
                .collect())
        })
        .await
    }

    async fn apply(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
        self.timed("apply", batch::apply(self, ops)).await
    }

    async fn rotate_keys(&self, batch: u32) -> Result<RotateReport, StoreError> {
        self.timed("rotate_keys", reseal::rotate(self, batch)).await
    }

    async fn key_census(&self) -> Result<KeyCensus, StoreError> {
        self.timed("key_census", async {
            Ok(
                reseal::sweep(self, reseal::Mode::Count, reseal::STARTUP_BATCH)
                    .await?
                    .census,
            )
        })
        .await
    }
}
