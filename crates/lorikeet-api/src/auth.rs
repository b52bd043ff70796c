//! Bearer-token authentication and tenant scoping.

use lorikeet_storage::{hash_token, DEFAULT_TENANT_ID};
use uuid::Uuid;
use warp::http::HeaderMap;

use crate::error::ApiError;
use crate::input;
use crate::ApiState;

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// The admin token: every tenant.
    Admin,
    /// A tenant API key: that tenant only.
    Tenant(Uuid),
}

impl Principal {
    /// Whether a resource of `tenant_id` is visible. Invisible resources answer 404,
    /// exactly like missing ones, so a key learns nothing about other tenants.
    pub fn can_see(self, tenant_id: Uuid) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Tenant(t) => t == tenant_id,
        }
    }

    /// The tenant filter for list endpoints: `requested` (`?tenantId=`) for the
    /// admin, always the key's own tenant otherwise.
    pub fn list_filter(self, requested: Option<Uuid>) -> Result<Option<Uuid>, ApiError> {
        match self {
            Principal::Admin => Ok(requested),
            Principal::Tenant(t) => match requested {
                Some(r) if r != t => Err(ApiError::not_found(format!("tenant {r} not found"))),
                _ => Ok(Some(t)),
            },
        }
    }

    /// The tenant a new resource goes to: the body's `tenantId` if given and
    /// visible, else the default tenant (admin) or the key's own tenant.
    pub async fn target_tenant(
        self,
        state: &ApiState,
        requested: Option<&str>,
    ) -> Result<Uuid, ApiError> {
        let requested = requested.map(|s| input::uuid("tenantId", s)).transpose()?;
        match (self, requested) {
            (Principal::Tenant(t), None) => Ok(t),
            (Principal::Tenant(t), Some(r)) if r == t => Ok(t),
            (Principal::Tenant(_), Some(r)) => {
                Err(ApiError::not_found(format!("tenant {r} not found")))
            }
            (Principal::Admin, None) => Ok(DEFAULT_TENANT_ID),
            (Principal::Admin, Some(r)) => match state.storage.get_tenant(r).await? {
                Some(_) => Ok(r),
                None => Err(ApiError::not_found(format!("tenant {r} not found"))),
            },
        }
    }

    /// 403 unless this is the admin token.
    pub fn require_admin(self, what: &str) -> Result<(), ApiError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Tenant(_) => Err(ApiError::forbidden(format!(
                "only the admin token may {what}; this is a tenant API key"
            ))),
        }
    }
}

/// Checks `Authorization: Bearer <token>` against the admin token and the stored
/// API keys.
/// Gives the digest of the tenant API key used too (`None` for the admin token), so a
/// long-lived request (an event stream) can check it again later.
pub async fn authenticate_caller(
    state: &ApiState,
    headers: &HeaderMap,
) -> Result<(Principal, Option<[u8; 32]>), ApiError> {
    let Some(value) = headers.get(warp::http::header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "missing Authorization header; send 'Authorization: Bearer <token>'",
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
        return Ok((Principal::Admin, None));
    }
    match state.storage.api_key_by_hash(&hash).await? {
        Some(key) => Ok((Principal::Tenant(key.tenant_id), Some(hash))),
        None => Err(ApiError::unauthorized("invalid or revoked token")),
    }
}
