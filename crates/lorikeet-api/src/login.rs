//! Signing in and out: the checks shared by the console's form (`POST /login`) and
//! the API (`POST /api/v1/login`), and the session cookie.

use std::net::SocketAddr;
use std::time::Instant;

use lorikeet_storage::{User, UserSession};
use serde::Deserialize;
use serde_json::json;
use warp::http::{header, HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;

use crate::auth::{cookie, SESSION_COOKIE};
use crate::error::ApiError;
use crate::handlers::users::{new_session, user_json};
use crate::{input, password, ApiState};

/// The `Set-Cookie` value of a new session. `Secure` when the browser reached us
/// over TLS (a proxy in front says so with `X-Forwarded-Proto: https`) or the
/// operator asks for it.
fn session_cookie(state: &ApiState, headers: &HeaderMap, token: &str) -> HeaderValue {
    let secure = state.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let max_age = u64::from(state.session_hours) * 3600;
    let v = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn cleared_cookie() -> HeaderValue {
    HeaderValue::from_static("lorikeet_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// 403 when the request comes from a page of another site (its `Origin` names
/// another host than `Host`): a sign-in form elsewhere must not sign the browser
/// in to an account of the attacker's choosing (login CSRF). Browsers send
/// `Origin` with every cross-site POST; clients without one (curl) are fine.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    // Behind a proxy that rewrites Host, the browser's host is X-Forwarded-Host.
    let hosts = [header::HOST.as_str(), "x-forwarded-host"];
    let matches = hosts.iter().any(|name| {
        headers
            .get(*name)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| !h.is_empty() && origin_host.eq_ignore_ascii_case(h.trim()))
    });
    if matches {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "sign-in from another site ({origin}) is refused"
        )))
    }
}

/// Checks `email` and `password` (throttled per email and client address) and opens
/// a session: the user and the `Set-Cookie` value.
pub(crate) async fn sign_in(
    state: &ApiState,
    email: &str,
    password: &str,
    remote: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Result<(User, UserSession, HeaderValue), ApiError> {
    same_origin(headers)?;
    let email = email.trim().to_lowercase();
    if email.is_empty() || password.is_empty() {
        return Err(ApiError::bad_request("enter your email and password"));
    }
    let addr = remote.map(|a| a.ip());
    if let Err(wait) = state.login_throttle.check(&email, addr, Instant::now()) {
        metrics::counter!("lorikeet_api_logins_total", "outcome" => "throttled").increment(1);
        return Err(ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!("too many failed sign-ins; try again in {wait} s"),
        });
    }
    let found = state.storage.user_by_email(&email).await?;
    let ok = match &found {
        Some((_, hash)) => password::verify(password, hash).await,
        None => {
            // As long as a wrong password: an unknown address is not revealed by timing.
            password::verify(password, password::decoy()).await;
            false
        }
    };
    let user = match (ok, found) {
        (true, Some((user, _))) => user,
        _ => {
            state.login_throttle.failed(&email, addr, Instant::now());
            metrics::counter!("lorikeet_api_logins_total", "outcome" => "failed").increment(1);
            tracing::info!(
                email = %email,
                client = ?addr,
                "failed sign-in"
            );
            return Err(ApiError::unauthorized("wrong email or password"));
        }
    };
    state.login_throttle.succeeded(&email);
    let (token, session) = new_session(user.id, state.session_hours);
    state.storage.create_user_session(&session).await?;
    metrics::counter!("lorikeet_api_logins_total", "outcome" => "ok").increment(1);
    let cookie = session_cookie(state, headers, &token);
    Ok((user, session, cookie))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

fn with_cookie(status: StatusCode, body: &serde_json::Value, cookie: HeaderValue) -> Response {
    let mut r = crate::json_response(status, body);
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    r
}

/// `POST /api/v1/login`: `{"email", "password"}` → the user (with the session's
/// `csrfToken`) and the session cookie.
pub(crate) async fn api_login(
    state: &ApiState,
    headers: &HeaderMap,
    body: &[u8],
    remote: Option<SocketAddr>,
) -> Result<Response, ApiError> {
    let b: LoginBody = input::json(body)?;
    let (user, session, cookie) = sign_in(state, &b.email, &b.password, remote, headers).await?;
    let mut v = user_json(&user);
    v["kind"] = json!("user");
    v["csrfToken"] = json!(session.csrf_token);
    Ok(with_cookie(StatusCode::OK, &v, cookie))
}

/// `POST /api/v1/logout`: ends the session of the cookie (if any) and clears it.
pub(crate) async fn api_logout(
    state: &ApiState,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = cookie(headers, SESSION_COOKIE) {
        state
            .storage
            .delete_user_session(&lorikeet_storage::hash_token(token))
            .await?;
        state.key_revoked();
    }
    let mut r = warp::http::Response::new(Vec::<u8>::new().into());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r.headers_mut().insert(header::SET_COOKIE, cleared_cookie());
    Ok(r)
}
