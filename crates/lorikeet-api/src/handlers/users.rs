//! Users, their roles per tenant, and signing in and out.

use std::collections::BTreeSet;

use lorikeet_storage::{hash_token, Role, User, UserSession};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{page_out, probe, Ctx};
use crate::auth::{Credential, Principal};
use crate::error::ApiError;
use crate::{input, password, Out};

/// A user as `viewer` may see them: a tenant administrator sees only the roles in
/// tenants they can see (nothing about the user's other tenants).
fn user_json_for(u: &User, viewer: &Principal) -> Value {
    if *viewer == Principal::Admin {
        return user_json(u);
    }
    let mut shown = u.clone();
    shown.roles.retain(|(t, _)| viewer.can_see(*t));
    user_json(&shown)
}

/// 403 unless every role is in a tenant the caller administers.
fn only_administered(ctx: &Ctx<'_>, roles: &[(Uuid, Role)]) -> Result<(), ApiError> {
    match roles.iter().find(|(t, _)| !ctx.principal.administers(*t)) {
        Some((t, _)) => Err(ApiError::forbidden(format!(
            "you may give roles only in tenants you administer, and tenant {t} is not one of them"
        ))),
        None => Ok(()),
    }
}

/// The user `id` if the caller may manage them: anyone for the admin; for a tenant
/// administrator a user without the admin flag who has a role in a tenant they
/// administer (others answer 404, like missing users).
async fn managed_user(ctx: &Ctx<'_>) -> Result<User, ApiError> {
    let u = user(ctx).await?;
    if ctx.principal == Principal::Admin
        || (!u.is_admin && u.roles.iter().any(|(t, _)| ctx.principal.administers(*t)))
    {
        Ok(u)
    } else {
        Err(ApiError::not_found(format!("user {} not found", u.id)))
    }
}

pub(crate) fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "email": u.email,
        "isAdmin": u.is_admin,
        "roles": roles_json(&u.roles),
        "createdAt": u.created_at,
        "updatedAt": u.updated_at,
    })
}

fn roles_json(roles: &[(Uuid, Role)]) -> Value {
    Value::Array(
        roles
            .iter()
            .map(|(t, r)| json!({"tenantId": t, "role": r.as_str()}))
            .collect(),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    email: String,
    password: String,
    #[serde(default)]
    is_admin: bool,
    #[serde(default)]
    roles: Vec<RoleBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateBody {
    email: String,
    #[serde(default)]
    is_admin: bool,
    /// A new password (the admin resetting it); omitted: unchanged.
    password: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoleBody {
    tenant_id: String,
    role: String,
}

/// Checks roles: known role names, existing tenants, one role per tenant.
async fn roles(ctx: &Ctx<'_>, body: &[RoleBody]) -> Result<Vec<(Uuid, Role)>, ApiError> {
    let mut out = Vec::with_capacity(body.len());
    let mut seen = BTreeSet::new();
    for (i, r) in body.iter().enumerate() {
        let tenant = input::uuid(&format!("roles[{i}].tenantId"), &r.tenant_id)?;
        let role = Role::parse(&r.role).ok_or_else(|| {
            ApiError::bad_request(format!(
                "roles[{i}].role {:?} is not one of admin, device_manager, viewer",
                r.role
            ))
        })?;
        if !seen.insert(tenant) {
            return Err(ApiError::bad_request(format!(
                "roles[{i}]: tenant {tenant} has more than one role; give one"
            )));
        }
        if ctx.state.storage.get_tenant(tenant).await?.is_none() {
            return Err(ApiError::bad_request(format!(
                "roles[{i}].tenantId: tenant {tenant} does not exist"
            )));
        }
        out.push((tenant, role));
    }
    out.sort();
    Ok(out)
}

/// `POST /api/v1/users`: the admin creates any user; a tenant administrator creates
/// users with roles in the tenants they administer (and no admin flag).
pub(super) async fn create(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let b: CreateBody = ctx.body()?;
    let email = input::email("email", &b.email)?;
    password::check_new("password", &b.password)?;
    let roles = roles(ctx, &b.roles).await?;
    if ctx.principal != Principal::Admin {
        if b.is_admin {
            ctx.principal.require_admin("create administrators")?;
        }
        if roles.is_empty() {
            return Err(ApiError::bad_request(
                "give the user a role in a tenant you administer (roles: [{tenantId, role}])",
            ));
        }
        only_administered(ctx, &roles)?;
    }
    let hash = password::hash(&b.password).await?;
    let now = lorikeet_storage::now();
    let user = User {
        id: Uuid::new_v4(),
        email,
        is_admin: b.is_admin,
        roles,
        created_at: now,
        updated_at: now,
    };
    ctx.state.storage.create_user(&user, &hash).await?;
    Ok(Out::created(user_json(&user)))
}

/// `GET /api/v1/users`: every user for the admin; a tenant administrator lists the
/// users of a tenant they administer.
pub(super) async fn list(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let page = input::page(ctx.query)?;
    let tenant = match ctx.principal {
        Principal::Admin => ctx.query.uuid("tenantId")?,
        _ => {
            let t = ctx.principal.list_filter(ctx.query.uuid("tenantId")?)?;
            match t {
                Some(t) if ctx.principal.administers(t) => Some(t),
                _ => ctx.principal.require_admin("list users").map(|()| t)?,
            }
        }
    };
    let users = ctx.state.storage.list_users(tenant, probe(page)).await?;
    Ok(page_out(
        users
            .iter()
            .map(|u| user_json_for(u, &ctx.principal))
            .collect(),
        page,
    ))
}

async fn user(ctx: &Ctx<'_>) -> Result<User, ApiError> {
    let id = ctx.id_param("user")?;
    ctx.state
        .storage
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {id} not found")))
}

pub(super) async fn get(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    Ok(Out::ok(user_json_for(
        &managed_user(ctx).await?,
        &ctx.principal,
    )))
}

pub(super) async fn update(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    ctx.principal.require_admin("change users")?;
    let b: UpdateBody = ctx.body()?;
    let email = input::email("email", &b.email)?;
    if let Some(p) = &b.password {
        password::check_new("password", p)?;
    }
    let mut u = user(ctx).await?;
    if u.is_admin && !b.is_admin {
        not_the_last_admin(ctx, u.id).await?;
    }
    let now = lorikeet_storage::now();
    if !ctx
        .state
        .storage
        .update_user(u.id, &email, b.is_admin, now)
        .await?
    {
        return Err(ApiError::not_found(format!("user {} not found", u.id)));
    }
    if let Some(p) = &b.password {
        let hash = password::hash(p).await?;
        ctx.state
            .storage
            .set_user_password(u.id, &hash, None, now)
            .await?;
    }
    ctx.state.key_revoked();
    u.email = email;
    u.is_admin = b.is_admin;
    u.updated_at = now;
    Ok(Out::ok(user_json(&u)))
}

/// 409 when `id` is the only admin user left and no admin token is configured:
/// nobody could administer the server any more.
async fn not_the_last_admin(ctx: &Ctx<'_>, id: Uuid) -> Result<(), ApiError> {
    if ctx.state.admin_token_hash.is_some() {
        return Ok(());
    }
    let admins = ctx.state.storage.count_admin_users().await?;
    let me_admin = ctx
        .state
        .storage
        .get_user(id)
        .await?
        .is_some_and(|u| u.is_admin);
    if me_admin && admins <= 1 {
        return Err(ApiError::conflict(
            "this is the last administrator and no admin token is configured: make another \
             user an administrator first",
        ));
    }
    Ok(())
}

pub(super) async fn delete(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    ctx.principal.require_admin("delete users")?;
    let id = ctx.id_param("user")?;
    not_the_last_admin(ctx, id).await?;
    if !ctx.state.storage.delete_user(id).await? {
        return Err(ApiError::not_found(format!("user {id} not found")));
    }
    ctx.state.key_revoked();
    Ok(Out::NoContent)
}

/// `PUT /api/v1/users/{id}/roles`: `[{"tenantId", "role"}]` replaces the user's roles.
/// A tenant administrator replaces the roles in the tenants they administer; the
/// user's roles elsewhere stay as they are.
pub(super) async fn put_roles(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let body: Vec<RoleBody> = ctx.body()?;
    let mut roles = roles(ctx, &body).await?;
    let target = managed_user(ctx).await?;
    let id = target.id;
    if ctx.principal != Principal::Admin {
        only_administered(ctx, &roles)?;
        roles.extend(
            target
                .roles
                .iter()
                .filter(|(t, _)| !ctx.principal.administers(*t))
                .copied(),
        );
        roles.sort();
    }
    if !ctx
        .state
        .storage
        .set_user_roles(id, &roles, lorikeet_storage::now())
        .await?
    {
        return Err(ApiError::not_found(format!("user {id} not found")));
    }
    // Open event streams of the user check what they may still see.
    ctx.state.key_revoked();
    let shown: Vec<(Uuid, Role)> = roles
        .into_iter()
        .filter(|(t, _)| ctx.principal.can_see(*t))
        .collect();
    Ok(Out::ok(roles_json(&shown)))
}

/// `GET /api/v1/me`: the caller.
pub(super) async fn me(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    Ok(Out::ok(match &ctx.credential {
        Credential::Session {
            user, csrf_token, ..
        } => {
            let mut v = user_json(user);
            v["kind"] = json!("user");
            v["csrfToken"] = json!(csrf_token);
            v
        }
        Credential::AdminToken => json!({"kind": "adminToken", "isAdmin": true, "roles": []}),
        Credential::ApiKey(_) => match &ctx.principal {
            Principal::Tenant(t) => json!({"kind": "apiKey", "isAdmin": false,
                "roles": [{"tenantId": t, "role": "admin"}]}),
            _ => return Err(ApiError::internal()),
        },
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// `PUT /api/v1/me/password`: a signed-in user changes their password; their other
/// sessions end.
pub(super) async fn change_password(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let Credential::Session {
        user, token_hash, ..
    } = &ctx.credential
    else {
        return Err(ApiError::bad_request(
            "only a signed-in user has a password to change; tokens have none",
        ));
    };
    let b: PasswordBody = ctx.body()?;
    password::check_new("newPassword", &b.new_password)?;
    let stored = ctx
        .state
        .storage
        .user_password_hash(user.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("your account no longer exists"))?;
    if !password::verify(&b.current_password, &stored).await {
        return Err(ApiError::forbidden("currentPassword is wrong"));
    }
    let hash = password::hash(&b.new_password).await?;
    ctx.state
        .storage
        .set_user_password(user.id, &hash, Some(token_hash), lorikeet_storage::now())
        .await?;
    ctx.state.key_revoked();
    Ok(Out::NoContent)
}

/// A new session for `user`: the cookie token (given to the browser only) and the
/// stored session.
pub(crate) fn new_session(user: Uuid, hours: u32) -> (String, UserSession) {
    let token = crate::random_hex(32);
    let now = lorikeet_storage::now();
    let session = UserSession {
        token_hash: hash_token(&token),
        user_id: user,
        csrf_token: crate::random_hex(32),
        created_at: now,
        expires_at: now + chrono::Duration::hours(i64::from(hours)),
    };
    (token, session)
}
