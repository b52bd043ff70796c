//! The route table. One list serves three purposes: dispatch, the `route` label of
//! the request metrics, and the test that the OpenAPI document describes exactly
//! the routes served.

use warp::http::Method;

/// Every endpoint of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    Metrics,
    Health,
    OpenApi,
    TenantCreate,
    TenantList,
    TenantGet,
    TenantUpdate,
    TenantDelete,
    ApiKeyCreate,
    ApiKeyList,
    ApiKeyDelete,
    ApplicationCreate,
    ApplicationList,
    ApplicationGet,
    ApplicationUpdate,
    ApplicationDelete,
    HttpIntegrationPut,
    HttpIntegrationGet,
    HttpIntegrationDelete,
    NatsIntegrationPut,
    NatsIntegrationGet,
    NatsIntegrationDelete,
    InfluxIntegrationPut,
    InfluxIntegrationGet,
    InfluxIntegrationDelete,
    AmqpIntegrationPut,
    AmqpIntegrationGet,
    AmqpIntegrationDelete,
    KafkaIntegrationPut,
    KafkaIntegrationGet,
    KafkaIntegrationDelete,
    PostgresIntegrationPut,
    PostgresIntegrationGet,
    PostgresIntegrationDelete,
    IntegrationList,
    ProfileCreate,
    ProfileList,
    ProfileGet,
    ProfileUpdate,
    ProfileDelete,
    DeviceCreate,
    DeviceImport,
    DeviceList,
    DeviceGet,
    DeviceUpdate,
    DeviceDelete,
    KeysPut,
    KeysGet,
    Activate,
    ActivationGet,
    QueuePost,
    QueueGet,
    QueueFlush,
    EventsGet,
    DeviceEventsStream,
    ApplicationEventsStream,
    GatewayCreate,
    GatewayList,
    GatewayGet,
    GatewayUpdate,
    GatewayDelete,
    Login,
    Logout,
    Me,
    PasswordPut,
    UserCreate,
    UserList,
    UserGet,
    UserUpdate,
    UserDelete,
    UserRolesPut,
    ProfileTestDecode,
    Overview,
    DeviceLink,
    DeviceMeasurements,
    GatewayStats,
    AlertRuleCreate,
    AlertRuleList,
    AlertRuleGet,
    AlertRuleUpdate,
    AlertRuleDelete,
    AlertList,
    AlertGet,
}

impl RouteId {
    /// Routes that answer without a bearer token or session (signing in and out
    /// handle the session themselves).
    pub fn is_public(self) -> bool {
        matches!(
            self,
            RouteId::Metrics
                | RouteId::Health
                | RouteId::OpenApi
                | RouteId::Login
                | RouteId::Logout
        )
    }

    /// What the route does to the tenant of the resource it touches, for the roles
    /// of console users (admin-only routes check that on their own).
    pub fn access(self) -> crate::auth::Access {
        use crate::auth::Access;
        use RouteId::*;
        match self {
            Metrics
            | Health
            | OpenApi
            | TenantList
            | TenantGet
            | ApiKeyList
            | ApplicationList
            | ApplicationGet
            | HttpIntegrationGet
            | NatsIntegrationGet
            | InfluxIntegrationGet
            | AmqpIntegrationGet
            | KafkaIntegrationGet
            | PostgresIntegrationGet
            | IntegrationList
            | ProfileList
            | ProfileGet
            | DeviceList
            | DeviceGet
            | KeysGet
            | ActivationGet
            | QueueGet
            | EventsGet
            | DeviceEventsStream
            | ApplicationEventsStream
            | GatewayList
            | GatewayGet
            | Login
            | Logout
            | Me
            | PasswordPut
            | UserList
            | UserGet
            | ProfileTestDecode
            | Overview
            | DeviceLink
            | DeviceMeasurements
            | GatewayStats
            | AlertRuleList
            | AlertRuleGet
            | AlertList
            | AlertGet => Access::Read,
            DeviceCreate | DeviceImport | DeviceUpdate | DeviceDelete | KeysPut | Activate
            | QueuePost | QueueFlush => Access::Devices,
            TenantCreate
            | TenantUpdate
            | TenantDelete
            | ApiKeyCreate
            | ApiKeyDelete
            | ApplicationCreate
            | ApplicationUpdate
            | ApplicationDelete
            | HttpIntegrationPut
            | HttpIntegrationDelete
            | NatsIntegrationPut
            | NatsIntegrationDelete
            | InfluxIntegrationPut
            | InfluxIntegrationDelete
            | AmqpIntegrationPut
            | AmqpIntegrationDelete
            | KafkaIntegrationPut
            | KafkaIntegrationDelete
            | PostgresIntegrationPut
            | PostgresIntegrationDelete
            | ProfileCreate
            | ProfileUpdate
            | ProfileDelete
            | GatewayCreate
            | GatewayUpdate
            | GatewayDelete
            | UserCreate
            | UserUpdate
            | UserDelete
            | UserRolesPut
            | AlertRuleCreate
            | AlertRuleUpdate
            | AlertRuleDelete => Access::Tenant,
        }
    }
}

/// (method, path template, route). Templates use OpenAPI's `{name}` syntax.
pub const ROUTES: &[(Method, &str, RouteId)] = &[
    (Method::GET, "/metrics", RouteId::Metrics),
    (Method::GET, "/api/v1/health", RouteId::Health),
    (Method::GET, "/api/v1/openapi.json", RouteId::OpenApi),
    (Method::POST, "/api/v1/tenants", RouteId::TenantCreate),
    (Method::GET, "/api/v1/tenants", RouteId::TenantList),
    (Method::GET, "/api/v1/tenants/{id}", RouteId::TenantGet),
    (Method::PUT, "/api/v1/tenants/{id}", RouteId::TenantUpdate),
    (
        Method::DELETE,
        "/api/v1/tenants/{id}",
        RouteId::TenantDelete,
    ),
    (Method::POST, "/api/v1/api-keys", RouteId::ApiKeyCreate),
    (Method::GET, "/api/v1/api-keys", RouteId::ApiKeyList),
    (
        Method::DELETE,
        "/api/v1/api-keys/{id}",
        RouteId::ApiKeyDelete,
    ),
    (
        Method::POST,
        "/api/v1/applications",
        RouteId::ApplicationCreate,
    ),
    (
        Method::GET,
        "/api/v1/applications",
        RouteId::ApplicationList,
    ),
    (
        Method::GET,
        "/api/v1/applications/{id}",
        RouteId::ApplicationGet,
    ),
    (
        Method::PUT,
        "/api/v1/applications/{id}",
        RouteId::ApplicationUpdate,
    ),
    (
        Method::DELETE,
        "/api/v1/applications/{id}",
        RouteId::ApplicationDelete,
    ),
    (
        Method::POST,
        "/api/v1/applications/{id}/integrations/http",
        RouteId::HttpIntegrationPut,
    ),
    (
        Method::GET,
        "/api/v1/applications/{id}/integrations/http",
        RouteId::HttpIntegrationGet,
    ),
    (
        Method::DELETE,
        "/api/v1/applications/{id}/integrations/http",
        RouteId::HttpIntegrationDelete,
    ),
    (
        Method::POST,
        "/api/v1/applications/{id}/integrations/nats",
        RouteId::NatsIntegrationPut,
    ),
    (
        Method::GET,
        "/api/v1/applications/{id}/integrations/nats",
        RouteId::NatsIntegrationGet,
    ),
    (
        Method::DELETE,
        "/api/v1/applications/{id}/integrations/nats",
        RouteId::NatsIntegrationDelete,
    ),
    (
        Method::POST,
        "/api/v1/applications/{id}/integrations/amqp",
        RouteId::AmqpIntegrationPut,
    ),
    (
        Method::GET,
        "/api/v1/applications/{id}/integrations/amqp",
        RouteId::AmqpIntegrationGet,
    ),
    (
        Method::DELETE,
        "/api/v1/applications/{id}/integrations/amqp",
        RouteId::AmqpIntegrationDelete,
    ),
    (
        Method::POST,
        "/api/v1/applications/{id}/integrations/kafka",
        RouteId::KafkaIntegrationPut,
    ),
    (
        Method::GET,
        "/api/v1/applications/{id}/integrations/kafka",
        RouteId::KafkaIntegrationGet,
    ),
    (
        Method::DELETE,
        "/api/v1/applications/{id}/integrations/kafka",
        RouteId::KafkaIntegrationDelete,
    ),
    (
        Method::POST,
        "/api/v1/applications/{id}/integrations/influxdb",
        RouteId::InfluxIntegrationPut,
    ),
    (
        Method::GET,
        "/api/v1/applications/{id}/integrations/influxdb",
        RouteId::InfluxIntegrationGet,
    ),
    (
        Method::DELETE,
        "/api/v1/applications/{id}/integrations/influxdb",
        RouteId::InfluxIntegrationDelete,
    ),
    (
        Method::POST,
        "/api/v1/applications/{id}/integrations/postgres",
        RouteId::PostgresIntegrationPut,
    ),
    (
        Method::GET,
        "/api/v1/applications/{id}/integrations/postgres",
        RouteId::PostgresIntegrationGet,
    ),
    (
        Method::DELETE,
        "/api/v1/applications/{id}/integrations/postgres",
        RouteId::PostgresIntegrationDelete,
    ),
    (
        Method::GET,
        "/api/v1/applications/{id}/integrations",
        RouteId::IntegrationList,
    ),
    (
        Method::POST,
        "/api/v1/device-profiles",
        RouteId::ProfileCreate,
    ),
    (Method::GET, "/api/v1/device-profiles", RouteId::ProfileList),
    (
        Method::GET,
        "/api/v1/device-profiles/{id}",
        RouteId::ProfileGet,
    ),
    (
        Method::PUT,
        "/api/v1/device-profiles/{id}",
        RouteId::ProfileUpdate,
    ),
    (
        Method::DELETE,
        "/api/v1/device-profiles/{id}",
        RouteId::ProfileDelete,
    ),
    (Method::POST, "/api/v1/devices", RouteId::DeviceCreate),
    (
        Method::POST,
        "/api/v1/devices/import",
        RouteId::DeviceImport,
    ),
    (Method::GET, "/api/v1/devices", RouteId::DeviceList),
    (Method::GET, "/api/v1/devices/{devEui}", RouteId::DeviceGet),
    (
        Method::PUT,
        "/api/v1/devices/{devEui}",
        RouteId::DeviceUpdate,
    ),
    (
        Method::DELETE,
        "/api/v1/devices/{devEui}",
        RouteId::DeviceDelete,
    ),
    (
        Method::PUT,
        "/api/v1/devices/{devEui}/keys",
        RouteId::KeysPut,
    ),
    (
        Method::GET,
        "/api/v1/devices/{devEui}/keys",
        RouteId::KeysGet,
    ),
    (
        Method::POST,
        "/api/v1/devices/{devEui}/activate",
        RouteId::Activate,
    ),
    (
        Method::GET,
        "/api/v1/devices/{devEui}/activation",
        RouteId::ActivationGet,
    ),
    (
        Method::POST,
        "/api/v1/devices/{devEui}/queue",
        RouteId::QueuePost,
    ),
    (
        Method::GET,
        "/api/v1/devices/{devEui}/queue",
        RouteId::QueueGet,
    ),
    (
        Method::DELETE,
        "/api/v1/devices/{devEui}/queue",
        RouteId::QueueFlush,
    ),
    (
        Method::GET,
        "/api/v1/devices/{devEui}/events",
        RouteId::EventsGet,
    ),
    (
        Method::GET,
        "/api/v1/devices/{devEui}/events/stream",
        RouteId::DeviceEventsStream,
    ),
    (
        Method::GET,
        "/api/v1/applications/{id}/events/stream",
        RouteId::ApplicationEventsStream,
    ),
    (Method::POST, "/api/v1/gateways", RouteId::GatewayCreate),
    (Method::GET, "/api/v1/gateways", RouteId::GatewayList),
    (
        Method::GET,
        "/api/v1/gateways/{gatewayId}",
        RouteId::GatewayGet,
    ),
    (
        Method::PUT,
        "/api/v1/gateways/{gatewayId}",
        RouteId::GatewayUpdate,
    ),
    (
        Method::DELETE,
        "/api/v1/gateways/{gatewayId}",
        RouteId::GatewayDelete,
    ),
    (Method::POST, "/api/v1/login", RouteId::Login),
    (Method::POST, "/api/v1/logout", RouteId::Logout),
    (Method::GET, "/api/v1/me", RouteId::Me),
    (Method::PUT, "/api/v1/me/password", RouteId::PasswordPut),
    (Method::POST, "/api/v1/users", RouteId::UserCreate),
    (Method::GET, "/api/v1/users", RouteId::UserList),
    (Method::GET, "/api/v1/users/{id}", RouteId::UserGet),
    (Method::PUT, "/api/v1/users/{id}", RouteId::UserUpdate),
    (Method::DELETE, "/api/v1/users/{id}", RouteId::UserDelete),
    (
        Method::PUT,
        "/api/v1/users/{id}/roles",
        RouteId::UserRolesPut,
    ),
    (
        Method::POST,
        "/api/v1/device-profiles/{id}/test-decode",
        RouteId::ProfileTestDecode,
    ),
    (Method::GET, "/api/v1/overview", RouteId::Overview),
    (
        Method::GET,
        "/api/v1/devices/{devEui}/link",
        RouteId::DeviceLink,
    ),
    (
        Method::GET,
        "/api/v1/devices/{devEui}/measurements",
        RouteId::DeviceMeasurements,
    ),
    (
        Method::GET,
        "/api/v1/gateways/{gatewayId}/stats",
        RouteId::GatewayStats,
    ),
    (
        Method::POST,
        "/api/v1/alert-rules",
        RouteId::AlertRuleCreate,
    ),
    (Method::GET, "/api/v1/alert-rules", RouteId::AlertRuleList),
    (
        Method::GET,
        "/api/v1/alert-rules/{id}",
        RouteId::AlertRuleGet,
    ),
    (
        Method::PUT,
        "/api/v1/alert-rules/{id}",
        RouteId::AlertRuleUpdate,
    ),
    (
        Method::DELETE,
        "/api/v1/alert-rules/{id}",
        RouteId::AlertRuleDelete,
    ),
    (Method::GET, "/api/v1/alerts", RouteId::AlertList),
    (Method::GET, "/api/v1/alerts/{id}", RouteId::AlertGet),
];

/// The outcome of matching a request line against [`ROUTES`].
#[derive(Debug, PartialEq, Eq)]
pub enum Match<'a> {
    /// A route, its template and the path parameters in template order.
    Found {
        route: RouteId,
        template: &'static str,
        params: Vec<&'a str>,
    },
    /// The path exists but not with this method; the allowed methods.
    WrongMethod {
        template: &'static str,
        allowed: Vec<Method>,
    },
    /// No such path.
    NotFound,
}

/// Matches `method path` against the table.
pub fn find<'a>(method: &Method, path: &'a str) -> Match<'a> {
    let mut allowed = Vec::new();
    let mut path_template = None;
    for (m, template, route) in ROUTES {
        let Some(params) = match_template(template, path) else {
            continue;
        };
        if m == method {
            return Match::Found {
                route: *route,
                template,
                params,
            };
        }
        path_template = Some(*template);
        allowed.push(m.clone());
    }
    match path_template {
        Some(template) => Match::WrongMethod { template, allowed },
        None => Match::NotFound,
    }
}

fn match_template<'a>(template: &str, path: &'a str) -> Option<Vec<&'a str>> {
    let mut params = Vec::new();
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(params),
            (Some(ts), Some(ps)) => {
                if ts.starts_with('{') {
                    if ps.is_empty() {
                        return None;
                    }
                    params.push(ps);
                } else if ts != ps {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_with_parameters() {
        assert_eq!(
            find(&Method::GET, "/api/v1/devices/0102030405060708/queue"),
            Match::Found {
                route: RouteId::QueueGet,
                template: "/api/v1/devices/{devEui}/queue",
                params: vec!["0102030405060708"],
            }
        );
        assert_eq!(
            find(&Method::GET, "/api/v1/devices"),
            Match::Found {
                route: RouteId::DeviceList,
                template: "/api/v1/devices",
                params: vec![],
            }
        );
    }

    #[test]
    fn wrong_method_and_unknown_paths() {
        match find(&Method::PATCH, "/api/v1/devices/x") {
            Match::WrongMethod { allowed, .. } => {
                assert_eq!(allowed, [Method::GET, Method::PUT, Method::DELETE])
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(find(&Method::GET, "/api/v1/devices/"), Match::NotFound);
        assert_eq!(find(&Method::GET, "/api/v1/nope"), Match::NotFound);
        assert_eq!(find(&Method::GET, "/api/v1/devices/x/y"), Match::NotFound);
    }

    #[test]
    fn every_template_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for (m, t, _) in ROUTES {
            assert!(seen.insert((m.clone(), *t)), "{m} {t} twice");
        }
    }
}
