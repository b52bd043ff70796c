//! Who is calling and what they may do: the admin token, tenant API keys (bearer
//! tokens, for machines) and console users (a session cookie, for people), with
//! tenant scoping and the per-tenant roles of users.

use std::sync::Arc;

use lorikeet_storage::{hash_token, Role, User, DEFAULT_TENANT_ID};
use uuid::Uuid;
use warp::http::{HeaderMap, Method};

use crate::error::ApiError;
use crate::input;
use crate::ApiState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "lorikeet_session";

/// The header a session-authenticated request that changes something carries.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The admin token, or a user with the global admin flag: every tenant.
    Admin,
    /// A tenant API key: that tenant only, with a tenant admin's rights.
    Tenant(Uuid),
    /// A user without the admin flag: the tenants of their roles, with those roles.
    User(Arc<[(Uuid, Role)]>),
}

/// What a route needs besides seeing the resource's tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading.
    Read,
    /// Changing devices, their keys, activation or downlink queue.
    Devices,
    /// Changing anything else of the tenant (applications, integrations, profiles,
    /// gateways, API keys).
    Tenant,
}

impl Access {
    fn what(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Devices => "change devices",
            Access::Tenant => "change applications, profiles, gateways, integrations or API keys",
        }
    }
}

impl Principal {
    /// The principal of a signed-in user.
    pub fn of_user(user: &User) -> Principal {
        if user.is_admin {
            Principal::Admin
        } else {
            Principal::User(user.roles.clone().into())
        }
    }

    fn role_in(&self, tenant_id: Uuid) -> Option<Role> {
        match self {
            Principal::User(roles) => roles.iter().find(|(t, _)| *t == tenant_id).map(|r| r.1),
            _ => None,
        }
    }

    /// Whether a resource of `tenant_id` is visible. Invisible resources answer 404,
    /// exactly like missing ones, so a caller learns nothing about other tenants.
    pub fn can_see(&self, tenant_id: Uuid) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Tenant(t) => *t == tenant_id,
            Principal::User(_) => self.role_in(tenant_id).is_some(),
        }
    }

    /// 403 unless the caller may do `access` in `tenant_id` (which it can see).
    pub fn require(&self, tenant_id: Uuid, access: Access) -> Result<(), ApiError> {
        let Some(role) = self.role_in(tenant_id) else {
            return match self {
                // The admin and API keys hold every right in what they see.
                Principal::Admin | Principal::Tenant(_) => Ok(()),
                // Callers check visibility first; a user without a role in the
                // tenant is refused here too, should one ever not.
                Principal::User(_) => Err(ApiError::forbidden(format!(
                    "you have no role in tenant {tenant_id}"
                ))),
            };
        };
        let allowed = match (role, access) {
            (_, Access::Read) | (Role::Admin, _) => true,
            (Role::DeviceManager, Access::Devices) => true,
            (Role::DeviceManager, Access::Tenant) | (Role::Viewer, _) => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "your role in tenant {tenant_id} is {}, which may not {}",
                role.as_str(),
                access.what()
            )))
        }
    }

    /// The tenant filter for list endpoints: `requested` (`?tenantId=`) for the
    /// admin, always the key's own tenant for an API key, and for a user the
    /// requested tenant (one of theirs) or their only one.
    pub fn list_filter(&self, requested: Option<Uuid>) -> Result<Option<Uuid>, ApiError> {
        match self {
            Principal::Admin => Ok(requested),
            Principal::Tenant(t) => match requested {
                Some(r) if r != *t => Err(ApiError::not_found(format!("tenant {r} not found"))),
                _ => Ok(Some(*t)),
            },
            Principal::User(roles) => match requested {
                Some(r) if self.can_see(r) => Ok(Some(r)),
                Some(r) => Err(ApiError::not_found(format!("tenant {r} not found"))),
                None => match roles.as_ref() {
                    [(only, _)] => Ok(Some(*only)),
                    // No tenant: nothing to list (no tenant has the nil id).
                    [] => Ok(Some(Uuid::nil())),
                    _ => Err(ApiError::bad_request(format!(
                        "you have roles in {} tenants: choose one with ?tenantId=",
                        roles.len()
                    ))),
                },
            },
        }
    }

    /// The tenant a new resource goes to: the body's `tenantId` if given and
    /// visible, else the default tenant (admin), the key's own tenant, or the
    /// user's only tenant; checked for `access`.
    pub async fn target_tenant(
        &self,
        state: &ApiState,
        requested: Option<&str>,
        access: Access,
    ) -> Result<Uuid, ApiError> {
        let requested = requested.map(|s| input::uuid("tenantId", s)).transpose()?;
        let tenant = match (self, requested) {
            (Principal::Tenant(t), None) => *t,
            (Principal::Tenant(t), Some(r)) if r == *t => *t,
            (Principal::Admin, None) => DEFAULT_TENANT_ID,
            (Principal::Admin, Some(r)) => match state.storage.get_tenant(r).await? {
                Some(_) => r,
                None => return Err(ApiError::not_found(format!("tenant {r} not found"))),
            },
            (Principal::User(_), Some(r)) if self.can_see(r) => r,
            (Principal::User(roles), None) => match roles.as_ref() {
                [(only, _)] => *only,
                [] => {
                    return Err(ApiError::forbidden(
                        "you have no role in any tenant; an administrator can give you one",
                    ))
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "you have roles in {} tenants: say which with tenantId",
                        roles.len()
                    )))
                }
            },
            (_, Some(r)) => return Err(ApiError::not_found(format!("tenant {r} not found"))),
        };
        self.require(tenant, access)?;
        Ok(tenant)
    }

    /// Whether the caller administers `tenant_id`: the admin, the tenant's own API
    /// key, or a user whose role there is admin (who may then manage its users).
    pub fn administers(&self, tenant_id: Uuid) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Tenant(t) => *t == tenant_id,
            Principal::User(_) => self.role_in(tenant_id) == Some(Role::Admin),
        }
    }

    /// 403 unless this is the admin (token or admin user).
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Tenant(_) => Err(ApiError::forbidden(format!(
                "only an administrator (the admin token or an admin user) may {what}; this is \
                 a tenant API key"
            ))),
            Principal::User(_) => Err(ApiError::forbidden(format!(
                "only an administrator may {what}"
            ))),
        }
    }
}

/// How the caller proved who they are; kept by long-lived requests (event streams)
/// to check it again later.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    /// The admin token.
    AdminToken,
    /// A tenant API key, by digest.
    ApiKey([u8; 32]),
    /// A console session, by the digest of its cookie, and its user.
    Session {
        /// SHA-256 of the cookie value.
        token_hash: [u8; 32],
        /// The signed-in user.
        user: Arc<User>,
        /// The session's CSRF token.
        csrf_token: String,
    },
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(warp::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Checks `Authorization: Bearer <token>` against the admin token and the stored
/// API keys, or else the session cookie (whose requests that change something must
/// carry the session's CSRF token in `X-CSRF-Token`).
pub async fn authenticate_caller(
    state: &ApiState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(Principal, Credential), ApiError> {
    let Some(value) = headers.get(warp::http::header::AUTHORIZATION) else {
        if let Some(token) = cookie(headers, SESSION_COOKIE) {
            return authenticate_session(state, method, headers, token).await;
        }
        return Err(ApiError::unauthorized(
            "missing Authorization header; send 'Authorization: Bearer <token>' (or sign in \
             at /login)",
        ));
    };
    let value = value.to_str().map(str::trim).unwrap_or_default();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthorized(
            "the Authorization header must be 'Bearer <token>'",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        // Typically `-H "Authorization: Bearer $TOKEN"` with the variable unset.
        return Err(ApiError::unauthorized(
            "empty token: the Authorization header is 'Bearer' with nothing after it \
             (is the variable holding the token set?)",
        ));
    }
    let hash = hash_token(token);
    // Comparing digests rather than the tokens keeps the comparison's timing
    // independent of how much of the secret matches.
    if state.admin_token_hash.is_some_and(|h| h == hash) {
        return Ok((Principal::Admin, Credential::AdminToken));
    }
    match state.storage.api_key_by_hash(&hash).await? {
        Some(key) => Ok((Principal::Tenant(key.tenant_id), Credential::ApiKey(hash))),
        None => Err(ApiError::unauthorized("invalid or revoked token")),
    }
}

async fn authenticate_session(
    state: &ApiState,
    method: &Method,
    headers: &HeaderMap,
    token: &str,
) -> Result<(Principal, Credential), ApiError> {
    let hash = hash_token(token);
    let Some((session, user)) = state
        .storage
        .user_session(&hash, lorikeet_storage::now())
        .await?
    else {
        return Err(ApiError::unauthorized(
            "your session has ended (signed out, expired or password changed); sign in again",
        ));
    };
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if hash_token(sent) != hash_token(&session.csrf_token) {
            return Err(ApiError::forbidden(
                "missing or wrong X-CSRF-Token: a signed-in request that changes something \
                 must carry the csrfToken of GET /api/v1/me",
            ));
        }
    }
    Ok((
        Principal::of_user(&user),
        Credential::Session {
            token_hash: hash,
            user: Arc::new(user),
            csrf_token: session.csrf_token,
        },
    ))
}
