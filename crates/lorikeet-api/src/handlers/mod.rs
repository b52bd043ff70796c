//! Request handlers, one module per resource group.

use lorikeet_lorawan::Eui64;
use lorikeet_storage::{Application, Device, DeviceProfile, Gateway, Tenant};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::auth::{Access, Credential, Principal};
use crate::error::ApiError;
use crate::input::{self, Query};
use crate::router::RouteId;
use crate::{ApiState, Out};

mod alerts;
mod applications;
mod devices;
mod gateway_stats;
mod gateways;
pub(crate) mod import;
mod integrations;
mod link;
mod measurements;
mod overview;
mod profiles;
mod queue;
mod stream;
mod tenants;
pub(crate) mod users;

/// One authenticated request.
pub(crate) struct Ctx<'a> {
    pub state: &'a ApiState,
    pub principal: Principal,
    /// How the caller signed in (checked again by event streams).
    pub credential: Credential,
    /// What the route does (for the roles of console users).
    pub access: Access,
    pub params: &'a [&'a str],
    pub query: &'a Query,
    pub body: &'a [u8],
}

impl Ctx<'_> {
    /// Whether a resource of `tenant_id` may be touched by this request: 404 when
    /// the caller cannot see it, 403 when their role may not do what the route does.
    fn allowed(&self, tenant_id: Uuid) -> Result<bool, ApiError> {
        if !self.principal.can_see(tenant_id) {
            return Ok(false);
        }
        self.principal.require(tenant_id, self.access)?;
        Ok(true)
    }

    /// The tenant a new resource goes to (`tenantId` of the body, checked).
    async fn target_tenant(&self, requested: Option<&str>) -> Result<Uuid, ApiError> {
        self.principal
            .target_tenant(self.state, requested, self.access)
            .await
    }

    /// The `i`-th path parameter (the router guarantees it exists).
    fn param(&self, i: usize) -> &str {
        self.params.get(i).copied().unwrap_or_default()
    }

    /// The JSON body as `T`.
    fn body<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        input::json(self.body)
    }

    /// The first path parameter as a UUID naming a `what`.
    fn id_param(&self, what: &str) -> Result<Uuid, ApiError> {
        let raw = self.param(0);
        Uuid::parse_str(raw).map_err(|e| {
            ApiError::bad_request(format!(
                "{what} id {raw:?} in the path is not a valid UUID: {e}"
            ))
        })
    }

    /// The first path parameter as an EUI-64 named `field`.
    fn eui_param(&self, field: &str) -> Result<Eui64, ApiError> {
        input::eui(&format!("{field} in the path"), self.param(0))
    }

    async fn tenant(&self, id: Uuid) -> Result<Tenant, ApiError> {
        match self.state.storage.get_tenant(id).await? {
            Some(t) if self.allowed(t.id)? => Ok(t),
            _ => Err(ApiError::not_found(format!("tenant {id} not found"))),
        }
    }

    async fn application(&self, id: Uuid) -> Result<Application, ApiError> {
        match self.state.storage.get_application(id).await? {
            Some(a) if self.allowed(a.tenant_id)? => Ok(a),
            _ => Err(ApiError::not_found(format!("application {id} not found"))),
        }
    }

    async fn profile(&self, id: Uuid) -> Result<DeviceProfile, ApiError> {
        match self.state.storage.get_device_profile(id).await? {
            Some(p) if self.allowed(p.tenant_id)? => Ok(p),
            _ => Err(ApiError::not_found(format!(
                "device profile {id} not found"
            ))),
        }
    }

    async fn device(&self, dev_eui: Eui64) -> Result<Device, ApiError> {
        match self.state.storage.get_device(dev_eui).await? {
            Some(d) if self.allowed(d.tenant_id)? => Ok(d),
            _ => Err(ApiError::not_found(format!("device {dev_eui} not found"))),
        }
    }

    async fn gateway(&self, gateway_id: Eui64) -> Result<Gateway, ApiError> {
        match self.state.storage.get_gateway(gateway_id).await? {
            Some(g) if self.allowed(g.tenant_id)? => Ok(g),
            _ => Err(ApiError::not_found(format!(
                "gateway {gateway_id} not found"
            ))),
        }
    }
}

/// `{"items": [...], "nextOffset": n | null}` for a page that asked for `limit`
/// rows and got `items` (one more than `limit` means there is a next page).
fn page_out(items: Vec<serde_json::Value>, page: lorikeet_storage::Page) -> Out {
    let mut items = items;
    let more = items.len() > page.limit as usize;
    items.truncate(page.limit as usize);
    let next = more.then(|| page.offset + page.limit as u64);
    Out::ok(serde_json::json!({ "items": items, "nextOffset": next }))
}

/// The page to fetch: one row more than asked, to know whether there is a next page.
fn probe(page: lorikeet_storage::Page) -> lorikeet_storage::Page {
    lorikeet_storage::Page {
        limit: page.limit + 1,
        offset: page.offset,
    }
}

/// The routes whose bodies the `api_bodies` fuzz target checks: its first byte picks
/// one (modulo the length). Append only: the committed seeds name routes by index.
pub(crate) const FUZZ_BODY_ROUTES: [RouteId; 16] = [
    RouteId::TenantCreate,
    RouteId::TenantUpdate,
    RouteId::ApiKeyCreate,
    RouteId::ApplicationCreate,
    RouteId::ApplicationUpdate,
    RouteId::HttpIntegrationPut,
    RouteId::ProfileCreate,
    RouteId::ProfileUpdate,
    RouteId::DeviceCreate,
    RouteId::DeviceUpdate,
    RouteId::DeviceImport,
    RouteId::KeysPut,
    RouteId::Activate,
    RouteId::QueuePost,
    RouteId::GatewayCreate,
    RouteId::GatewayUpdate,
];

/// Checks `body` as the handler of `route` does before it touches storage, with
/// `app` and `profile` standing in for the application and device profile the
/// handler would look up (for the `api_bodies` fuzz target; see `crate::fuzzing`).
pub(crate) fn fuzz_body(
    route: RouteId,
    body: &[u8],
    app: &Application,
    profile: &DeviceProfile,
) -> Result<(), ApiError> {
    use devices::FuzzBody;
    use RouteId::*;
    match route {
        TenantCreate | TenantUpdate => tenants::fuzz_body(false, body),
        ApiKeyCreate => tenants::fuzz_body(true, body),
        ApplicationCreate | ApplicationUpdate => applications::fuzz_body(false, body),
        HttpIntegrationPut => applications::fuzz_body(true, body),
        ProfileCreate | ProfileUpdate => profiles::fuzz_body(body).map(drop),
        DeviceCreate => devices::fuzz_body(FuzzBody::Create, body, app, profile),
        DeviceUpdate => devices::fuzz_body(FuzzBody::Update, body, app, profile),
        KeysPut => devices::fuzz_body(FuzzBody::Keys, body, app, profile),
        Activate => devices::fuzz_body(FuzzBody::Activate, body, app, profile),
        DeviceImport => import::fuzz_body(body, app, profile).map(drop),
        QueuePost => queue::fuzz_body(body),
        GatewayCreate => gateways::fuzz_body(false, body),
        GatewayUpdate => gateways::fuzz_body(true, body),
        _ => Ok(()),
    }
}

pub(crate) async fn dispatch(route: RouteId, ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    use RouteId::*;
    match route {
        TenantCreate => tenants::create(ctx).await,
        TenantList => tenants::list(ctx).await,
        TenantGet => tenants::get(ctx).await,
        TenantUpdate => tenants::update(ctx).await,
        TenantDelete => tenants::delete(ctx).await,
        ApiKeyCreate => tenants::create_key(ctx).await,
        ApiKeyList => tenants::list_keys(ctx).await,
        ApiKeyDelete => tenants::delete_key(ctx).await,
        ApplicationCreate => applications::create(ctx).await,
        ApplicationList => applications::list(ctx).await,
        ApplicationGet => applications::get(ctx).await,
        ApplicationUpdate => applications::update(ctx).await,
        ApplicationDelete => applications::delete(ctx).await,
        HttpIntegrationPut => applications::put_http(ctx).await,
        HttpIntegrationGet => applications::get_http(ctx).await,
        HttpIntegrationDelete => applications::delete_http(ctx).await,
        AmqpIntegrationPut => integrations::put_amqp(ctx).await,
        AmqpIntegrationGet => integrations::get_amqp(ctx).await,
        AmqpIntegrationDelete => {
            integrations::delete_kind(ctx, lorikeet_storage::IntegrationKind::Amqp).await
        }
        KafkaIntegrationPut => integrations::put_kafka(ctx).await,
        KafkaIntegrationGet => integrations::get_kafka(ctx).await,
        KafkaIntegrationDelete => {
            integrations::delete_kind(ctx, lorikeet_storage::IntegrationKind::Kafka).await
        }
        NatsIntegrationPut => integrations::put_nats(ctx).await,
        NatsIntegrationGet => integrations::get_nats(ctx).await,
        NatsIntegrationDelete => integrations::delete_nats(ctx).await,
        InfluxIntegrationPut => integrations::put_influxdb(ctx).await,
        InfluxIntegrationGet => integrations::get_influxdb(ctx).await,
        InfluxIntegrationDelete => integrations::delete_influxdb(ctx).await,
        PostgresIntegrationPut => integrations::put_postgres(ctx).await,
        PostgresIntegrationGet => integrations::get_postgres(ctx).await,
        PostgresIntegrationDelete => integrations::delete_postgres(ctx).await,
        IntegrationList => integrations::list(ctx).await,
        ProfileCreate => profiles::create(ctx).await,
        ProfileList => profiles::list(ctx).await,
        ProfileGet => profiles::get(ctx).await,
        ProfileUpdate => profiles::update(ctx).await,
        ProfileDelete => profiles::delete(ctx).await,
        DeviceCreate => devices::create(ctx).await,
        DeviceImport => import::import(ctx).await,
        DeviceList => devices::list(ctx).await,
        DeviceGet => devices::get(ctx).await,
        DeviceUpdate => devices::update(ctx).await,
        DeviceDelete => devices::delete(ctx).await,
        KeysPut => devices::put_keys(ctx).await,
        KeysGet => devices::get_keys(ctx).await,
        Activate => devices::activate(ctx).await,
        ActivationGet => devices::get_activation(ctx).await,
        QueuePost => queue::enqueue(ctx).await,
        QueueGet => queue::list(ctx).await,
        QueueFlush => queue::flush(ctx).await,
        EventsGet => queue::events(ctx).await,
        DeviceEventsStream => stream::device(ctx).await,
        ApplicationEventsStream => stream::application(ctx).await,
        GatewayCreate => gateways::create(ctx).await,
        GatewayList => gateways::list(ctx).await,
        GatewayGet => gateways::get(ctx).await,
        GatewayUpdate => gateways::update(ctx).await,
        GatewayDelete => gateways::delete(ctx).await,
        Me => users::me(ctx).await,
        PasswordPut => users::change_password(ctx).await,
        UserCreate => users::create(ctx).await,
        UserList => users::list(ctx).await,
        UserGet => users::get(ctx).await,
        UserUpdate => users::update(ctx).await,
        UserDelete => users::delete(ctx).await,
        UserRolesPut => users::put_roles(ctx).await,
        ProfileTestDecode => profiles::test_decode(ctx).await,
        Overview => overview::get(ctx).await,
        DeviceLink => link::get(ctx).await,
        DeviceMeasurements => measurements::get(ctx).await,
        GatewayStats => gateway_stats::get(ctx).await,
        AlertRuleCreate => alerts::create(ctx).await,
        AlertRuleList => alerts::list(ctx).await,
        AlertRuleGet => alerts::get(ctx).await,
        AlertRuleUpdate => alerts::update(ctx).await,
        AlertRuleDelete => alerts::delete(ctx).await,
        AlertList => alerts::list_alerts(ctx).await,
        AlertGet => alerts::get_alert(ctx).await,
        Metrics | Health | OpenApi | Login | Logout => Err(ApiError::internal()),
    }
}
