//! Tenants and API keys.

use lorikeet_storage::{hash_token, ApiKey, Change, Tenant, DEFAULT_TENANT_ID};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{page_out, probe, Ctx};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::input;
use crate::Out;

fn tenant_json(t: &Tenant) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "privateGateways": t.private_gateways,
        "createdAt": t.created_at,
        "updatedAt": t.updated_at,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TenantBody {
    name: String,
    /// The default of `private` for the tenant's new gateways; omitted: false on
    /// create, unchanged on update.
    private_gateways: Option<bool>,
}

pub(super) async fn create(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    ctx.principal.require_admin("create tenants")?;
    let b: TenantBody = ctx.body()?;
    let now = lorikeet_storage::now();
    let t = Tenant {
        id: Uuid::new_v4(),
        name: input::name("name", &b.name)?,
        private_gateways: b.private_gateways.unwrap_or(false),
        created_at: now,
        updated_at: now,
    };
    ctx.state.storage.create_tenant(&t).await?;
    ctx.state.notify(Change::TenantChanged(t.id));
    Ok(Out::created(json!({ "id": t.id })))
}

pub(super) async fn list(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let page = input::page(ctx.query)?;
    let items = match &ctx.principal {
        Principal::Admin => ctx.state.storage.list_tenants(probe(page)).await?,
        Principal::Tenant(id) => {
            let own = ctx.tenant(*id).await?;
            if page.offset == 0 {
                vec![own]
            } else {
                vec![]
            }
        }
        // A user's tenants: those of their roles (a handful), in role order.
        Principal::User(roles) => {
            let mut own = Vec::new();
            for (t, _) in roles.iter().skip(page.offset as usize) {
                if let Some(t) = ctx.state.storage.get_tenant(*t).await? {
                    own.push(t);
                }
                if own.len() > page.limit as usize {
                    break;
                }
            }
            own
        }
    };
    Ok(page_out(items.iter().map(tenant_json).collect(), page))
}

pub(super) async fn get(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("tenant")?;
    Ok(Out::ok(tenant_json(&ctx.tenant(id).await?)))
}

/// Renames a tenant and sets its `privateGateways` default (admin only: tenants do
/// not rename themselves).
pub(super) async fn update(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("tenant")?;
    ctx.principal.require_admin("rename tenants")?;
    let b: TenantBody = ctx.body()?;
    let mut t = ctx.tenant(id).await?;
    t.name = input::name("name", &b.name)?;
    if let Some(p) = b.private_gateways {
        t.private_gateways = p;
    }
    t.updated_at = lorikeet_storage::now();
    if !ctx.state.storage.update_tenant(&t).await? {
        return Err(ApiError::not_found(format!("tenant {id} not found")));
    }
    ctx.state.notify(Change::TenantChanged(id));
    Ok(Out::ok(tenant_json(&t)))
}

pub(super) async fn delete(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("tenant")?;
    ctx.principal.require_admin("delete tenants")?;
    if id == DEFAULT_TENANT_ID {
        return Err(ApiError::conflict(
            "the default tenant cannot be deleted: resources created without a tenantId live there",
        ));
    }
    if !ctx.state.storage.delete_tenant(id).await? {
        return Err(ApiError::not_found(format!("tenant {id} not found")));
    }
    ctx.state.notify(Change::TenantDeleted(id));
    Ok(Out::NoContent)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyBody {
    name: String,
    tenant_id: Option<String>,
}

fn key_json(k: &ApiKey) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "tenantId": k.tenant_id,
        "createdAt": k.created_at,
    })
}

/// A new random token: `lk_` and 64 hex digits (256 bits from the OS generator).
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut s = String::with_capacity(67);
    s.push_str("lk_");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub(super) async fn create_key(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let b: KeyBody = ctx.body()?;
    let name = input::name("name", &b.name)?;
    let tenant_id = ctx.target_tenant(b.tenant_id.as_deref()).await?;
    let token = new_token();
    let key = ApiKey {
        id: Uuid::new_v4(),
        tenant_id,
        name,
        created_at: lorikeet_storage::now(),
    };
    ctx.state
        .storage
        .create_api_key(&key, &hash_token(&token))
        .await?;
    Ok(Out::created(json!({ "id": key.id, "token": token })))
}

pub(super) async fn list_keys(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let page = input::page(ctx.query)?;
    let filter = ctx.principal.list_filter(ctx.query.uuid("tenantId")?)?;
    let keys = ctx.state.storage.list_api_keys(filter, probe(page)).await?;
    Ok(page_out(keys.iter().map(key_json).collect(), page))
}

pub(super) async fn delete_key(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("API key")?;
    match ctx.state.storage.get_api_key(id).await? {
        Some(k) if ctx.principal.can_see(k.tenant_id) => {
            ctx.principal.require(k.tenant_id, ctx.access)?;
        }
        _ => return Err(ApiError::not_found(format!("API key {id} not found"))),
    }
    ctx.state.storage.delete_api_key(id).await?;
    ctx.state.key_revoked();
    Ok(Out::NoContent)
}

/// The checks [`create`]/[`update`] (`TenantBody`) and [`create_key`] (`KeyBody`)
/// make of their body before any lookup, for the `api_bodies` fuzz target.
pub(super) fn fuzz_body(api_key: bool, body: &[u8]) -> Result<(), ApiError> {
    if api_key {
        let b: KeyBody = input::json(body)?;
        input::name("name", &b.name)?;
        b.tenant_id
            .as_deref()
            .map(|t| input::uuid("tenantId", t))
            .transpose()?;
    } else {
        let b: TenantBody = input::json(body)?;
        input::name("name", &b.name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_long_and_distinct() {
        let a = super::new_token();
        let b = super::new_token();
        assert_eq!(a.len(), 67);
        assert!(a.starts_with("lk_"));
        assert_ne!(a, b);
    }
}
