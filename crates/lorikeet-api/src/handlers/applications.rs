//! Applications and their HTTP integration.

use std::collections::BTreeMap;

use lorikeet_storage::{
    Application, Change, HttpIntegrationConfig, IntegrationKind, IntegrationOwner,
};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

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
    let tenant_id = ctx.target_tenant(b.tenant_id.as_deref()).await?;
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

/// What `GET …/integrations/http` shows instead of a header value: values are
/// write-only (they are usually tokens). Sending it back keeps the stored value.
pub const MASKED: &str = "****";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HttpBody {
    url: String,
    /// Absent: keep the stored headers. Present: the new set, where a value of
    /// [`MASKED`] keeps the stored value of that header.
    headers: Option<BTreeMap<String, String>>,
    /// Absent or null: keep the stored secret; "": remove it; else the new secret.
    signing_secret: Option<String>,
}

/// Checks the URL's form and returns it parsed.
fn parse_url(url: &str) -> Result<url::Url, ApiError> {
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
    let parsed = url::Url::parse(url)
        .map_err(|e| ApiError::bad_request(format!("url {url:?} is not a valid URL: {e}")))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(format!(
            "url {url:?} needs a host, e.g. https://example.com/hook"
        )));
    }
    Ok(parsed)
}

fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), ApiError> {
    for (name, value) in headers {
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
    Ok(())
}

/// The new settings from the body and the stored ones (an update leaves out what
/// it does not change: the secret and header values are write-only, so a client
/// cannot send them back).
fn merge_http(
    b: HttpBody,
    url: &url::Url,
    stored: Option<&HttpIntegrationConfig>,
) -> Result<HttpIntegrationConfig, ApiError> {
    let stored_headers = stored.map(|c| &c.headers).filter(|h| !h.is_empty());
    // Header values go to whatever the URL names: they are kept only while the host
    // stays the same, or moving the URL would hand the tokens to another host.
    let same_host = || {
        stored.is_some_and(|c| {
            url::Url::parse(&c.url).is_ok_and(|old| old.host_str() == url.host_str())
        })
    };
    let keep_refused = |what: &str| {
        ApiError::bad_request(format!(
            "{what}: the stored header values are kept only while the URL's host stays \
             the same; with a new host send every header value again (or \"headers\": {{}} \
             to remove them)"
        ))
    };
    let headers = match b.headers {
        None => match stored_headers {
            Some(h) if same_host() => h.clone(),
            Some(_) => return Err(keep_refused("headers")),
            None => BTreeMap::new(),
        },
        Some(given) => {
            let mut out = BTreeMap::new();
            for (name, value) in given {
                if value != MASKED {
                    out.insert(name, value);
                    continue;
                }
                let kept = stored_headers
                    .and_then(|h| h.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)))
                    .map(|(_, v)| v.clone());
                match kept {
                    Some(v) if same_host() => {
                        out.insert(name, v);
                    }
                    Some(_) => return Err(keep_refused(&format!("headers.{name}"))),
                    None => {
                        return Err(ApiError::bad_request(format!(
                            "headers: {name:?} is {MASKED:?} (keep the stored value) but no \
                             value is stored for it; send the value"
                        )))
                    }
                }
            }
            out
        }
    };
    check_headers(&headers)?;
    let signing_secret = match b.signing_secret {
        None => stored.and_then(|c| c.signing_secret.clone()),
        Some(s) if s.is_empty() => None,
        Some(s) => Some(s),
    };
    Ok(HttpIntegrationConfig {
        url: url.as_str().to_owned(),
        headers,
        signing_secret,
    })
}

pub(super) async fn put_http(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    let b: HttpBody = ctx.body()?;
    let url_text = b.url.trim().to_string();
    let url = parse_url(&url_text)?;
    let owner = super::integrations::owner(ctx);
    if let Err(refused) = ctx.state.target_guard.check_url(owner, &url).await {
        let hint = match owner {
            IntegrationOwner::Tenant => {
                "a webhook set with a tenant API key must reach a public address; \
                 the operator can allow a network with [security] allowed_target_networks"
            }
            IntegrationOwner::Admin => {
                "the operator can allow a network with [security] allowed_target_networks"
            }
        };
        return Err(ApiError::bad_request(format!("url: {refused}; {hint}")));
    }
    let stored = ctx
        .state
        .storage
        .get_integration(id, IntegrationKind::Http)
        .await?;
    let stored_config = match &stored {
        Some(i) => Some(
            serde_json::from_value::<HttpIntegrationConfig>(i.config.clone()).map_err(|e| {
                tracing::error!(integration = %i.id, error = %e, "stored HTTP integration config does not parse");
                ApiError::internal()
            })?,
        ),
        None => None,
    };
    let mut config = merge_http(b, &url, stored_config.as_ref())?;
    // As written (the parsed form may add a trailing slash the user did not write).
    config.url = url_text;
    let config = serde_json::to_value(&config).map_err(|_| ApiError::internal())?;
    super::integrations::upsert(ctx, id, IntegrationKind::Http, config).await
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
    // Header values and the secret are write-only: names and "****", and whether a
    // secret is set.
    let headers: BTreeMap<&str, &str> = config
        .headers
        .keys()
        .map(|name| (name.as_str(), MASKED))
        .collect();
    Ok(Out::ok(json!({
        "id": i.id,
        "applicationId": i.application_id,
        "url": config.url,
        "headers": headers,
        "signingSecretSet": config.signing_secret.is_some(),
        "owner": i.owner.as_str(),
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

/// The checks [`create`]/[`update`] (`AppBody`) and [`put_http`] (`HttpBody`) make
/// of their body before any lookup, for the `api_bodies` fuzz target: `put_http` as
/// a tenant's key would, over a stored webhook on `https://example.com/hook` with an
/// `Authorization` header and a signing secret, and with the address check of an
/// IP-literal host (names are resolved at run time, not here). An accepted
/// integration has an http(s) URL with a host, no tenant-set IP-literal host outside
/// the global unicast space, header names that are HTTP tokens with values that
/// cannot split a header, and no masked value left in place of a stored one.
pub(super) fn fuzz_body(http: bool, body: &[u8]) -> Result<(), ApiError> {
    if !http {
        let b: AppBody = input::json(body)?;
        input::name("name", &b.name)?;
        b.tenant_id
            .as_deref()
            .map(|t| input::uuid("tenantId", t))
            .transpose()?;
        return Ok(());
    }
    let b: HttpBody = input::json(body)?;
    let url_text = b.url.trim().to_string();
    let url = parse_url(&url_text)?;
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        _ => None,
    };
    if let Some(ip) = ip {
        lorikeet_service::target::TargetPolicy::default()
            .check(IntegrationOwner::Tenant, ip)
            .map_err(|refused| ApiError::bad_request(format!("url: {refused}")))?;
        assert_eq!(
            lorikeet_service::target::classify(ip),
            lorikeet_service::target::AddressClass::Global,
            "{url_text}"
        );
    }
    let stored = HttpIntegrationConfig {
        url: "https://example.com/hook".into(),
        headers: BTreeMap::from([("Authorization".into(), "Bearer stored".into())]),
        signing_secret: Some("stored secret".into()),
    };
    let given = b.headers.clone();
    let config = merge_http(b, &url, Some(&stored))?;
    assert!(
        url_text.starts_with("http://") || url_text.starts_with("https://"),
        "{url_text}"
    );
    assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{url_text}");
    for (name, value) in &config.headers {
        assert!(
            !name.is_empty() && name.bytes().all(|c| c.is_ascii_graphic() && c != b':'),
            "header name {name:?}"
        );
        assert!(
            !value.contains(['\r', '\n', '\0']),
            "header value {value:?}"
        );
        assert_ne!(value, MASKED, "a masked value was stored for {name:?}");
        let kept = given
            .as_ref()
            .is_none_or(|g| g.get(name).map(String::as_str) == Some(MASKED));
        if kept {
            assert_eq!(
                url.host_str(),
                Some("example.com"),
                "a stored value moved hosts"
            );
        }
    }
    serde_json::to_value(&config).map_err(|_| ApiError::internal())?;
    Ok(())
}
