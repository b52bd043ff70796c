//! Broker integrations of an application (issue 22) and the list of all of an
//! application's integrations. The HTTP kind is in `applications.rs`. Settings are
//! checked with the same rules the delivery engine parses them with
//! (`lorikeet_service::integration`).

use lorikeet_service::integration::{
    AmqpConfig, InfluxConfig, KafkaConfig, NatsConfig, PostgresConfig,
};
use lorikeet_storage::{Change, Integration, IntegrationKind, IntegrationOwner};
use serde_json::{json, Value};
use uuid::Uuid;
use warp::http::StatusCode;

use super::Ctx;
use crate::error::ApiError;
use crate::{Out, Principal};

/// Who sets an integration (decides which addresses it may reach).
pub(super) fn owner(ctx: &Ctx<'_>) -> IntegrationOwner {
    match ctx.principal {
        Principal::Admin => IntegrationOwner::Admin,
        Principal::Tenant(_) | Principal::User(_) => IntegrationOwner::Tenant,
    }
}

/// The delivery state every kind shows.
async fn status_json(ctx: &Ctx<'_>, i: &Integration) -> Result<Value, ApiError> {
    let backlog = ctx.state.storage.outbox_backlog(i.id).await?;
    Ok(json!({
        "id": i.id,
        "kind": i.kind.as_str(),
        "applicationId": i.application_id,
        "owner": i.owner.as_str(),
        "lastDeliveredAt": i.last_delivered_at,
        "lastError": i.last_error,
        "lastErrorAt": i.last_error_at,
        "backlog": backlog,
        "createdAt": i.created_at,
        "updatedAt": i.updated_at,
    }))
}

/// Stores `config` as the application's integration of `kind` (created or
/// replaced): 201 or 200 with its id.
pub(super) async fn upsert(
    ctx: &Ctx<'_>,
    application_id: Uuid,
    kind: IntegrationKind,
    config: Value,
) -> Result<Out, ApiError> {
    let now = lorikeet_storage::now();
    let i = Integration {
        id: Uuid::new_v4(),
        application_id,
        kind,
        owner: owner(ctx),
        config,
        last_delivered_at: None,
        last_error: None,
        last_error_at: None,
        created_at: now,
        updated_at: now,
    };
    let created = ctx.state.storage.upsert_integration(&i).await?;
    ctx.state.notify(Change::IntegrationChanged(application_id));
    let id = ctx
        .state
        .storage
        .get_integration(application_id, kind)
        .await?
        .map_or(i.id, |s| s.id);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(Out::Json(status, json!({ "id": id })))
}

/// `POST …/integrations/nats`: `{"url": "nats://[user:password@]host:port" or
/// "tls://…", "subject"?, "commandSubject"?, "tls"?, "password"?, "token"?}`. The
/// password (taken out of the URL) and the token are write-only: left out, the
/// stored ones are kept while host and user stay the same; `""` removes them.
pub(super) async fn put_nats(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    let mut b: NatsConfig = ctx.body()?;
    b.url = b.url.trim().to_owned();
    if let Some(p) = lorikeet_service::integration::take_url_password(&mut b.url)
        .map_err(ApiError::bad_request)?
    {
        b.password = Some(p);
    }
    // `""` removes a stored secret; left out, it is kept.
    let keep_password = b.password.is_none();
    let keep_token = b.token.is_none();
    for secret in [&mut b.password, &mut b.token] {
        if secret.as_deref() == Some("") {
            *secret = None;
        }
    }
    let address = b.check().map_err(ApiError::bad_request)?;
    if let Some(s) = stored_config::<NatsConfig>(ctx, id, IntegrationKind::Nats).await? {
        let same = s
            .check()
            .is_ok_and(|a| a.host == address.host && a.user == address.user);
        if same {
            if keep_password && address.user.is_some() {
                b.password = s.password;
            }
            if keep_token && address.user.is_none() {
                b.token = s.token;
            }
        }
    }
    // The broker is reached like a webhook: a tenant's only at public addresses
    // (checked again, resolved, when the connection is made).
    check_host(ctx, &address.host)?;
    let config = serde_json::to_value(&b).map_err(|_| ApiError::internal())?;
    upsert(ctx, id, IntegrationKind::Nats, config).await
}

/// The application's (of the path) integration of `kind`, or 404.
async fn stored(ctx: &Ctx<'_>, kind: IntegrationKind) -> Result<Integration, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    ctx.state
        .storage
        .get_integration(id, kind)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "application {id} has no {} integration; create one with POST",
                kind.as_str()
            ))
        })
}

/// `GET …/integrations/nats`.
pub(super) async fn get_nats(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let i = stored(ctx, IntegrationKind::Nats).await?;
    let mut v = status_json(ctx, &i).await?;
    if let Ok(c) = serde_json::from_value::<NatsConfig>(i.config.clone()) {
        v["url"] = json!(c.url);
        v["subject"] = json!(c.subject);
        v["commandSubject"] = json!(c.command_subject);
        v["tls"] = json!(c.check().is_ok_and(|a| a.tls));
        v["passwordSet"] = json!(c.password.is_some());
        v["tokenSet"] = json!(c.token.is_some());
    }
    Ok(Out::ok(v))
}

/// `DELETE …/integrations/nats`.
pub(super) async fn delete_nats(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    delete(ctx, IntegrationKind::Nats).await
}

/// `DELETE …/integrations/influxdb`.
pub(super) async fn delete_influxdb(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    delete(ctx, IntegrationKind::Influxdb).await
}

/// `DELETE …/integrations/{kind}`.
pub(super) async fn delete_kind(ctx: &Ctx<'_>, kind: IntegrationKind) -> Result<Out, ApiError> {
    delete(ctx, kind).await
}

async fn delete(ctx: &Ctx<'_>, kind: IntegrationKind) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    if !ctx.state.storage.delete_integration(id, kind).await? {
        return Err(ApiError::not_found(format!(
            "application {id} has no {} integration",
            kind.as_str()
        )));
    }
    ctx.state.notify(Change::IntegrationChanged(id));
    Ok(Out::NoContent)
}

/// 400 when the URL's host is an IP literal this caller's integrations may not
/// reach (names are checked when the connection is made).
fn check_host(ctx: &Ctx<'_>, host: &str) -> Result<(), ApiError> {
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>();
    if let Ok(ip) = ip {
        ctx.state
            .target_guard
            .check_ip(owner(ctx), ip)
            .map_err(|r| {
                ApiError::bad_request(format!(
                "url: {r}; the operator can allow a network with [security] allowed_target_networks"
            ))
            })?;
    }
    Ok(())
}

/// `POST …/integrations/influxdb`: `{"url", "version": 1|2, "database"?,
/// "retentionPolicy"?, "org"?, "bucket"?, "token"?, "username"?, "password"?,
/// "measurement"?}`. The token and password are write-only: left out, the stored
/// ones are kept (while the URL's host stays the same); `""` removes them.
pub(super) async fn put_influxdb(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    let mut b: InfluxConfig = ctx.body()?;
    b.url = b.url.trim().to_owned();
    let stored = ctx
        .state
        .storage
        .get_integration(id, IntegrationKind::Influxdb)
        .await?
        .and_then(|i| serde_json::from_value::<InfluxConfig>(i.config).ok());
    let same_host = |s: &InfluxConfig| {
        let host = |u: &str| {
            url::Url::parse(u)
                .ok()
                .map(|u| u.host_str().map(str::to_owned))
        };
        host(&s.url) == host(&b.url)
    };
    if let Some(s) = stored.as_ref().filter(|s| same_host(s)) {
        if b.token.is_none() {
            b.token.clone_from(&s.token);
        }
        if b.password.is_none() {
            b.password.clone_from(&s.password);
        }
    }
    for secret in [&mut b.token, &mut b.password] {
        if secret.as_deref() == Some("") {
            *secret = None;
        }
    }
    let url = b.check().map_err(ApiError::bad_request)?;
    check_host(ctx, url.host_str().unwrap_or_default())?;
    let config = serde_json::to_value(&b).map_err(|_| ApiError::internal())?;
    upsert(ctx, id, IntegrationKind::Influxdb, config).await
}

/// `GET …/integrations/influxdb`: settings (token and password only as set or not)
/// and delivery state.
pub(super) async fn get_influxdb(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let i = stored(ctx, IntegrationKind::Influxdb).await?;
    let mut v = status_json(ctx, &i).await?;
    if let Ok(c) = serde_json::from_value::<InfluxConfig>(i.config.clone()) {
        v["url"] = json!(c.url);
        v["version"] = json!(c.version);
        v["database"] = json!(c.database);
        v["retentionPolicy"] = json!(c.retention_policy);
        v["org"] = json!(c.org);
        v["bucket"] = json!(c.bucket);
        v["username"] = json!(c.username);
        v["measurement"] = json!(c.measurement);
        v["tokenSet"] = json!(c.token.is_some());
        v["passwordSet"] = json!(c.password.is_some());
    }
    Ok(Out::ok(v))
}

/// `POST …/integrations/postgres`: `{"retentionDays": 1..=3650}`. Decoded
/// measurements go into this server's own database (no address to check).
pub(super) async fn put_postgres(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    let b: PostgresConfig = ctx.body()?;
    b.check().map_err(ApiError::bad_request)?;
    let config = serde_json::to_value(&b).map_err(|_| ApiError::internal())?;
    upsert(ctx, id, IntegrationKind::Postgres, config).await
}

/// `GET …/integrations/postgres`: retention and delivery state.
pub(super) async fn get_postgres(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let i = stored(ctx, IntegrationKind::Postgres).await?;
    let mut v = status_json(ctx, &i).await?;
    if let Ok(c) = serde_json::from_value::<PostgresConfig>(i.config.clone()) {
        v["retentionDays"] = json!(c.retention_days);
    }
    Ok(Out::ok(v))
}

/// `DELETE …/integrations/postgres` (the rows already written are deleted by the
/// next hourly upkeep).
pub(super) async fn delete_postgres(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    delete(ctx, IntegrationKind::Postgres).await
}

/// `GET …/integrations`: every integration of the application with its delivery
/// state (settings: `GET …/integrations/{kind}`).
pub(super) async fn list(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    let mut items = Vec::new();
    for i in ctx.state.storage.list_integrations(Some(id)).await? {
        items.push(status_json(ctx, &i).await?);
    }
    Ok(Out::ok(json!({ "items": items })))
}

/// The stored settings of the application's integration of `kind`, if any.
async fn stored_config<T: serde::de::DeserializeOwned>(
    ctx: &Ctx<'_>,
    id: Uuid,
    kind: IntegrationKind,
) -> Result<Option<T>, ApiError> {
    Ok(ctx
        .state
        .storage
        .get_integration(id, kind)
        .await?
        .and_then(|i| serde_json::from_value::<T>(i.config).ok()))
}

/// `POST …/integrations/amqp`: `{"url": "amqp://user:password@host:port/vhost",
/// "exchange", "routingKey"?, "commandQueue"?}`. The password is write-only: it is
/// taken out of the URL (or from `password`) and sealed; a URL without one keeps
/// the stored password while host and user stay the same.
pub(super) async fn put_amqp(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    let mut b: AmqpConfig = ctx.body()?;
    b.url = b.url.trim().to_owned();
    b.take_url_password().map_err(ApiError::bad_request)?;
    let address = b.check().map_err(ApiError::bad_request)?;
    if b.password.is_none() {
        if let Some(s) = stored_config::<AmqpConfig>(ctx, id, IntegrationKind::Amqp).await? {
            let same = s
                .check()
                .is_ok_and(|a| a.host == address.host && a.username == address.username);
            if same {
                b.password = s.password;
            }
        }
    }
    if b.password.as_deref() == Some("") {
        b.password = None;
    }
    check_host(ctx, &address.host)?;
    let config = serde_json::to_value(&b).map_err(|_| ApiError::internal())?;
    upsert(ctx, id, IntegrationKind::Amqp, config).await
}

/// `GET …/integrations/amqp`: settings (the password only as set or not) and
/// delivery state.
pub(super) async fn get_amqp(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let i = stored(ctx, IntegrationKind::Amqp).await?;
    let mut v = status_json(ctx, &i).await?;
    if let Ok(c) = serde_json::from_value::<AmqpConfig>(i.config.clone()) {
        v["url"] = json!(c.url);
        v["exchange"] = json!(c.exchange);
        v["routingKey"] = json!(c.routing_key);
        v["commandQueue"] = json!(c.command_queue);
        v["passwordSet"] = json!(c.password.is_some());
    }
    Ok(Out::ok(v))
}

/// `POST …/integrations/kafka`: `{"brokers": ["host:port"], "topic", "tls"?,
/// "sasl"?: {"mechanism", "username", "password"}}`. The SASL password is
/// write-only: left out, the stored one is kept while the brokers and user stay
/// the same.
pub(super) async fn put_kafka(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    let mut b: KafkaConfig = ctx.body()?;
    if let Some(sasl) = b.sasl.as_mut().filter(|s| s.password.is_none()) {
        if let Some(s) = stored_config::<KafkaConfig>(ctx, id, IntegrationKind::Kafka).await? {
            if s.brokers == b.brokers {
                if let Some(old) = s.sasl.filter(|o| o.username == sasl.username) {
                    sasl.password = old.password;
                }
            }
        }
    }
    let brokers = b.check().map_err(ApiError::bad_request)?;
    for (host, _) in &brokers {
        check_host(ctx, host)?;
    }
    let config = serde_json::to_value(&b).map_err(|_| ApiError::internal())?;
    upsert(ctx, id, IntegrationKind::Kafka, config).await
}

/// `GET …/integrations/kafka`: settings (the SASL password only as set or not) and
/// delivery state.
pub(super) async fn get_kafka(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let i = stored(ctx, IntegrationKind::Kafka).await?;
    let mut v = status_json(ctx, &i).await?;
    if let Ok(c) = serde_json::from_value::<KafkaConfig>(i.config.clone()) {
        v["brokers"] = json!(c.brokers);
        v["topic"] = json!(c.topic);
        v["tls"] = json!(c.tls.unwrap_or(false));
        v["sasl"] = match &c.sasl {
            Some(s) => json!({
                "mechanism": s.mechanism,
                "username": s.username,
                "passwordSet": s.password.is_some(),
            }),
            None => Value::Null,
        };
    }
    Ok(Out::ok(v))
}
