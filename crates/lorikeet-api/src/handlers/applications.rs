//! Applications and their HTTP integration.

use std::collections::BTreeMap;

use lorikeet_storage::{Application, Change, HttpIntegrationConfig, Integration, IntegrationKind};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;
use warp::http::StatusCode;

use super::{page_out, probe, Ctx};
use crate::error::ApiError;
use crate::input;
use crate::Out;

fn app_json(a: &Application) -> Value {
    json!({
        "id": a.id,
        "tenantId": a.tenant_id,
        "name": a.name,
        "description": a.description,
        "createdAt": a.created_at,
        "updatedAt": a.updated_at,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppBody {
    name: String,
    #[serde(default)]
    description: String,
    tenant_id: Option<String>,
}

pub(super) async fn create(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let b: AppBody = ctx.body()?;
    let name = input::name("name", &b.name)?;
    let tenant_id = ctx
        .principal
        .target_tenant(ctx.state, b.tenant_id.as_deref())
        .await?;
    let now = lorikeet_storage::now();
    let a = Application {
        id: Uuid::new_v4(),
        tenant_id,
        name,
        description: b.description,
        created_at: now,
        updated_at: now,
    };
    ctx.state.storage.create_application(&a).await?;
    ctx.state.notify(Change::ApplicationChanged(a.id));
    Ok(Out::created(json!({ "id": a.id })))
}

pub(super) async fn list(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let page = input::page(ctx.query)?;
    let filter = ctx.principal.list_filter(ctx.query.uuid("tenantId")?)?;
    let apps = ctx
        .state
        .storage
        .list_applications(filter, probe(page))
        .await?;
    Ok(page_out(apps.iter().map(app_json).collect(), page))
}

pub(super) async fn get(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    Ok(Out::ok(app_json(&ctx.application(id).await?)))
}

pub(super) async fn update(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    let mut a = ctx.application(id).await?;
    let b: AppBody = ctx.body()?;
    if let Some(t) = b.tenant_id.as_deref() {
        if input::uuid("tenantId", t)? != a.tenant_id {
            return Err(ApiError::bad_request(
                "tenantId cannot be changed; create the application in the other tenant instead",
            ));
        }
    }
    a.name = input::name("name", &b.name)?;
    a.description = b.description;
    a.updated_at = lorikeet_storage::now();
    if !ctx.state.storage.update_application(&a).await? {
        return Err(ApiError::not_found(format!("application {id} not found")));
    }
    ctx.state.notify(Change::ApplicationChanged(a.id));
    Ok(Out::ok(app_json(&a)))
}

pub(super) async fn delete(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    if !ctx.state.storage.delete_application(id).await? {
        return Err(ApiError::not_found(format!("application {id} not found")));
    }
    ctx.state.notify(Change::ApplicationDeleted(id));
    Ok(Out::NoContent)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HttpBody {
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    signing_secret: Option<String>,
}

fn validate_http(b: HttpBody) -> Result<HttpIntegrationConfig, ApiError> {
    let url = b.url.trim().to_string();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            ApiError::bad_request(format!("url {url:?} must start with http:// or https://"))
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.chars().any(char::is_whitespace) {
        return Err(ApiError::bad_request(format!(
            "url {url:?} needs a host and no spaces, e.g. https://example.com/hook"
        )));
    }
    for (name, value) in &b.headers {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
        if !token {
            return Err(ApiError::bad_request(format!(
                "headers: {name:?} is not a valid HTTP header name"
            )));
        }
        if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
            return Err(ApiError::bad_request(format!(
                "headers: the value of {name:?} contains a line break"
            )));
        }
    }
    let signing_secret = b.signing_secret.filter(|s| !s.is_empty());
    Ok(HttpIntegrationConfig {
        url,
        headers: b.headers,
        signing_secret,
    })
}

pub(super) async fn put_http(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    let config = validate_http(ctx.body()?)?;
    let now = lorikeet_storage::now();
    let i = Integration {
        id: Uuid::new_v4(),
        application_id: id,
        kind: IntegrationKind::Http,
        config: serde_json::to_value(&config).map_err(|_| ApiError::internal())?,
        last_delivered_at: None,
        last_error: None,
        last_error_at: None,
        created_at: now,
        updated_at: now,
    };
    let created = ctx.state.storage.upsert_integration(&i).await?;
    ctx.state.notify(Change::IntegrationChanged(id));
    let stored = ctx
        .state
        .storage
        .get_integration(id, IntegrationKind::Http)
        .await?
        .map_or(i.id, |s| s.id);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(Out::Json(status, json!({ "id": stored })))
}

pub(super) async fn get_http(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    let Some(i) = ctx
        .state
        .storage
        .get_integration(id, IntegrationKind::Http)
        .await?
    else {
        return Err(ApiError::not_found(format!(
            "application {id} has no HTTP integration; create one with POST"
        )));
    };
    let config: HttpIntegrationConfig = serde_json::from_value(i.config.clone()).map_err(|e| {
        tracing::error!(integration = %i.id, error = %e, "stored HTTP integration config does not parse");
        ApiError::internal()
    })?;
    let backlog = ctx.state.storage.outbox_backlog(i.id).await?;
    Ok(Out::ok(json!({
        "id": i.id,
        "applicationId": i.application_id,
        "url": config.url,
        "headers": config.headers,
        // The secret is never shown again, only whether one is set.
        "signingSecretSet": config.signing_secret.is_some(),
        "lastDeliveredAt": i.last_delivered_at,
        "lastError": i.last_error,
        "lastErrorAt": i.last_error_at,
        "backlog": backlog,
        "createdAt": i.created_at,
        "updatedAt": i.updated_at,
    })))
}

pub(super) async fn delete_http(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    if !ctx
        .state
        .storage
        .delete_integration(id, IntegrationKind::Http)
        .await?
    {
        return Err(ApiError::not_found(format!(
            "application {id} has no HTTP integration"
        )));
    }
    ctx.state.notify(Change::IntegrationChanged(id));
    Ok(Out::NoContent)
}
