//! The web console: static pages and script compiled into the binary (no build
//! step, nothing to install), served beside the API. `/login` signs a user in with
//! a form (no script needed); `/` is the single-page app, which talks to the API
//! with the session cookie.

use std::net::SocketAddr;

use warp::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;

use crate::auth::{cookie, SESSION_COOKIE};
use crate::error::ApiError;
use crate::{login, ApiState};

const LOGIN_HTML: &str = include_str!("../console/login.html");
const INDEX_HTML: &str = include_str!("../console/index.html");
const APP_JS: &str = include_str!("../console/app.js");
const APP_CSS: &str = include_str!("../console/app.css");

/// Whether `path` belongs to the console rather than the API.
pub(crate) fn is_console(path: &str) -> bool {
    path == "/" || path == "/login" || path.starts_with("/console/")
}

/// Security headers of every console page: no framing (clickjacking), scripts and
/// styles only from this origin, no sniffing.
fn page(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

fn redirect(to: &'static str) -> Response {
    let mut r = page(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        String::new(),
    );
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

/// `&`, `<`, `>`, `"` and `'` escaped for HTML text and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn login_page(status: StatusCode, error: &str, email: &str) -> Response {
    let html = LOGIN_HTML
        .replace("{{error}}", &escape(error))
        .replace("{{email}}", &escape(email));
    page(status, "text/html; charset=utf-8", html)
}

/// Answers a console request.
pub(crate) async fn serve(
    state: &ApiState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    remote: Option<SocketAddr>,
) -> Response {
    match (method.clone(), path) {
        (Method::GET, "/") => {
            // Only a signed-in browser gets the app; others sign in first.
            let signed_in = match cookie(headers, SESSION_COOKIE) {
                Some(token) => state
                    .storage
                    .user_session(
                        &lorikeet_storage::hash_token(token),
                        lorikeet_storage::now(),
                    )
                    .await
                    .ok()
                    .flatten()
                    .is_some(),
                None => false,
            };
            if signed_in {
                page(
                    StatusCode::OK,
                    "text/html; charset=utf-8",
                    INDEX_HTML.to_owned(),
                )
            } else {
                redirect("/login")
            }
        }
        (Method::GET, "/login") => login_page(StatusCode::OK, "", ""),
        (Method::POST, "/login") => {
            let form: Vec<(String, String)> =
                serde_urlencoded::from_bytes(body).unwrap_or_default();
            let field = |k: &str| {
                form.iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or_default()
            };
            let email = field("email");
            match login::sign_in(state, email, field("password"), remote, headers).await {
                Ok((_, _, cookie)) => {
                    let mut r = redirect("/");
                    r.headers_mut().insert(header::SET_COOKIE, cookie);
                    r
                }
                Err(e) => login_page(e.status, &e.message, email),
            }
        }
        (Method::GET, "/console/app.js") => page(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            APP_JS.to_owned(),
        ),
        (Method::GET, "/console/app.css") => page(
            StatusCode::OK,
            "text/css; charset=utf-8",
            APP_CSS.to_owned(),
        ),
        (_, "/" | "/login" | "/console/app.js" | "/console/app.css") => {
            let e = ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: format!("{method} is not allowed on {path}"),
            };
            page(e.status, "text/plain; charset=utf-8", e.message)
        }
        _ => page(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            format!("no console page {path}"),
        ),
    }
}
