//! Alert rules (`/api/v1/alert-rules`) and the alerts they raised
//! (`/api/v1/alerts`). The server's alert task reads the rules from the database
//! on its next tick; parameters are checked here with the same parser it uses
//! (`lorikeet_app::alert::RuleKind::parse`), so a stored rule always evaluates.

use lorikeet_app::alert::RuleKind;
use lorikeet_storage::{Alert, AlertFilter, AlertRule, AlertState};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{page_out, probe, Ctx};
use crate::error::ApiError;
use crate::input;
use crate::Out;

fn rule_json(r: &AlertRule) -> Value {
    json!({
        "id": r.id,
        "tenantId": r.tenant_id,
        "applicationId": r.application_id,
        "name": r.name,
        "kind": r.kind,
        "params": r.params,
        "createdAt": r.created_at,
        "updatedAt": r.updated_at,
    })
}

fn alert_json(a: &Alert) -> Value {
    json!({
        "id": a.id,
        "ruleId": a.rule_id,
        "ruleName": a.rule_name,
        "kind": a.kind,
        "tenantId": a.tenant_id,
        "applicationId": a.application_id,
        "subjectType": a.subject_type,
        "subject": a.subject,
        "state": a.state.as_str(),
        "message": a.message,
        "resolveMessage": a.resolve_message,
        "firedAt": a.fired_at,
        "resolvedAt": a.resolved_at,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleBody {
    name: String,
    tenant_id: Option<String>,
    #[serde(default)]
    application_id: Option<String>,
    kind: String,
    #[serde(default)]
    params: Value,
}

/// Checks kind and params; the params as stored (an object).
fn check_params(kind: &str, params: Value) -> Result<(RuleKind, Value), ApiError> {
    let k = RuleKind::parse(kind, &params).map_err(|e| ApiError::bad_request(e.0))?;
    let params = if params.is_null() { json!({}) } else { params };
    Ok((k, params))
}

/// The application a rule is narrowed to: in the rule's tenant; gateway rules
/// watch the tenant's gateways and take none.
async fn rule_application(
    ctx: &Ctx<'_>,
    tenant_id: Uuid,
    kind: &RuleKind,
    raw: Option<&str>,
) -> Result<Option<Uuid>, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if matches!(kind, RuleKind::GatewayOffline { .. }) {
        return Err(ApiError::bad_request(
            "gateway_offline rules watch the tenant's gateways: leave applicationId out",
        ));
    }
    let id = input::uuid("applicationId", raw)?;
    let app = ctx.state.storage.get_application(id).await?;
    match app {
        Some(a) if a.tenant_id == tenant_id => Ok(Some(a.id)),
        _ => Err(ApiError::bad_request(format!(
            "applicationId {id} is not an application of tenant {tenant_id}"
        ))),
    }
}

pub(super) async fn create(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let b: RuleBody = ctx.body()?;
    let name = input::name("name", &b.name)?;
    let (kind, params) = check_params(&b.kind, b.params)?;
    let tenant_id = ctx.target_tenant(b.tenant_id.as_deref()).await?;
    let application_id =
        rule_application(ctx, tenant_id, &kind, b.application_id.as_deref()).await?;
    let now = lorikeet_storage::now();
    let rule = AlertRule {
        id: Uuid::new_v4(),
        tenant_id,
        application_id,
        name,
        kind: kind.name().to_owned(),
        params,
        created_at: now,
        updated_at: now,
    };
    ctx.state.storage.create_alert_rule(&rule).await?;
    Ok(Out::created(rule_json(&rule)))
}

async fn rule(ctx: &Ctx<'_>) -> Result<AlertRule, ApiError> {
    let id = ctx.id_param("alert rule")?;
    match ctx.state.storage.get_alert_rule(id).await? {
        Some(r) if ctx.allowed(r.tenant_id)? => Ok(r),
        _ => Err(ApiError::not_found(format!("alert rule {id} not found"))),
    }
}

pub(super) async fn get(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    Ok(Out::ok(rule_json(&rule(ctx).await?)))
}

pub(super) async fn list(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let page = input::page(ctx.query)?;
    let filter = ctx.principal.list_filter(ctx.query.uuid("tenantId")?)?;
    let app = ctx.query.uuid("applicationId")?;
    let rules = ctx
        .state
        .storage
        .list_alert_rules(filter, app, probe(page))
        .await?;
    Ok(page_out(rules.iter().map(rule_json).collect(), page))
}

pub(super) async fn update(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let mut r = rule(ctx).await?;
    let b: RuleBody = ctx.body()?;
    if let Some(t) = b.tenant_id.as_deref() {
        if input::uuid("tenantId", t)? != r.tenant_id {
            return Err(ApiError::bad_request(
                "tenantId of a rule cannot be changed",
            ));
        }
    }
    if b.kind != r.kind {
        return Err(ApiError::bad_request(format!(
            "kind of a rule cannot be changed (it is {}); create a new rule instead",
            r.kind
        )));
    }
    let (kind, params) = check_params(&b.kind, b.params)?;
    r.application_id =
        rule_application(ctx, r.tenant_id, &kind, b.application_id.as_deref()).await?;
    r.name = input::name("name", &b.name)?;
    r.params = params;
    r.updated_at = lorikeet_storage::now();
    if !ctx.state.storage.update_alert_rule(&r).await? {
        return Err(ApiError::not_found(format!(
            "alert rule {} not found",
            r.id
        )));
    }
    Ok(Out::ok(rule_json(&r)))
}

pub(super) async fn delete(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let r = rule(ctx).await?;
    if !ctx.state.storage.delete_alert_rule(r.id).await? {
        return Err(ApiError::not_found(format!(
            "alert rule {} not found",
            r.id
        )));
    }
    Ok(Out::NoContent)
}

pub(super) async fn list_alerts(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let page = input::page(ctx.query)?;
    let tenant_id = ctx.principal.list_filter(ctx.query.uuid("tenantId")?)?;
    let state = match ctx.query.get("state") {
        None | Some("") => None,
        Some(s) => Some(AlertState::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!("state {s:?} is not firing or resolved"))
        })?),
    };
    let filter = AlertFilter {
        tenant_id,
        application_id: ctx.query.uuid("applicationId")?,
        rule_id: ctx.query.uuid("ruleId")?,
        state,
    };
    let alerts = ctx.state.storage.list_alerts(filter, probe(page)).await?;
    Ok(page_out(alerts.iter().map(alert_json).collect(), page))
}

pub(super) async fn get_alert(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("alert")?;
    match ctx.state.storage.get_alert(id).await? {
        Some(a) if ctx.allowed(a.tenant_id)? => Ok(Out::ok(alert_json(&a))),
        _ => Err(ApiError::not_found(format!("alert {id} not found"))),
    }
}
