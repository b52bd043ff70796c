//! Lorikeet's provisioning REST API (warp): tenants, API keys, applications,
//! device profiles, devices (keys, ABP activation, downlink queue, events),
//! gateways and HTTP integrations, plus `/api/v1/health`, `/metrics` and the
//! OpenAPI document at `/api/v1/openapi.json`.
//!
//! JSON is camelCase; EUIs and keys are hex (any case in, lower case out); errors are
//! `{"error": "..."}` with 400/401/403/404/409/413. Every successful write is
//! announced on [`ApiState::changes`] so the network server's caches follow
//! without polling.
//!
//! Routing is one table ([`ROUTES`]) matched by our own code inside a single warp
//! filter: that gives precise 404/405/413 answers, a route-template label for the
//! metrics, and a single list to check the OpenAPI document against.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures_util::{Stream, StreamExt};
use lorikeet_codec::{CodecLimits, Codecs};
use lorikeet_service::target::TargetGuard;
use lorikeet_storage::{Change, FeedPosition, Storage};
use serde_json::Value;
use tokio::sync::broadcast;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::{Buf, Filter, Reply};

mod auth;
mod console;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod handlers;
mod http;
pub mod input;
mod login;
pub mod password;
mod router;

pub use auth::{Access, Principal};
pub use error::ApiError;
pub use http::serve_filter;
pub use router::{RouteId, ROUTES};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Largest accepted body of `POST /api/v1/devices/import`: room for
/// [`MAX_IMPORT_ROWS`] devices with keys and activation (about 400 bytes each).
pub const MAX_IMPORT_BODY_BYTES: usize = 16 * 1024 * 1024;

pub use handlers::import::MAX_IMPORT_ROWS;

/// Renders the Prometheus text exposition (e.g. `PrometheusHandle::render`).
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// The OpenAPI document, served at `/api/v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../../../schemas/openapi.json");

/// Everything the handlers need. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    /// The store.
    pub storage: Arc<dyn Storage>,
    pub(crate) admin_token_hash: Option<[u8; 32]>,
    /// Renders `/metrics`; `None` answers 404 there (metrics served elsewhere or off).
    pub metrics: Option<MetricsRender>,
    /// Every committed change is sent here (send errors, i.e. no subscriber, are fine).
    pub changes: broadcast::Sender<Change>,
    /// Live integration events, for the Server-Sent-Event streams.
    pub live: broadcast::Sender<LiveEvent>,
    /// The codec runtime: downlinks queued as an object are encoded when queued.
    pub codecs: Option<Codecs>,
    /// Read your writes: a write answers once the live state applied it (`None`:
    /// no live state to wait for, e.g. the API alone in tests).
    pub applied: Option<AppliedGate>,
    /// Bumped when an API key is revoked here, so open event streams check their
    /// key again at once (streams also re-check periodically, for revocations made
    /// through another instance).
    pub(crate) revocations: Arc<tokio::sync::watch::Sender<u64>>,
    /// Where a webhook may point (the SSRF guard, checked when one is set).
    pub target_guard: TargetGuard,
    /// Failed console sign-ins, per email and client address.
    pub(crate) login_throttle: Arc<password::LoginThrottle>,
    /// How long a console session lasts.
    pub session_hours: u32,
    /// Marks the session cookie `Secure` even without `X-Forwarded-Proto: https`.
    pub secure_cookies: bool,
}

/// Waits until the live state (network server, application side, gateway registry)
/// has applied the change feed up to a position: an API write answers only then, so
/// after a 201 the gateway's next PULL_DATA and the device's next uplink are served.
#[derive(Debug, Clone)]
pub struct AppliedGate {
    applied: tokio::sync::watch::Receiver<FeedPosition>,
    timeout: std::time::Duration,
}

impl AppliedGate {
    /// Follows `applied` (the position the live state has applied), waiting at most
    /// `timeout` per request.
    pub fn new(
        applied: tokio::sync::watch::Receiver<FeedPosition>,
        timeout: std::time::Duration,
    ) -> Self {
        AppliedGate { applied, timeout }
    }

    /// Whether the live state reached `target` within the timeout.
    pub async fn wait(&self, target: FeedPosition) -> bool {
        let mut rx = self.applied.clone();
        let reached = tokio::time::timeout(self.timeout, rx.wait_for(|p| *p >= target))
            .await
            .is_ok_and(|r| r.is_ok());
        reached
    }
}

/// An integration event as streamed to `/events/stream` clients.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    /// The device.
    pub dev_eui: lorikeet_lorawan::Eui64,
    /// Its application.
    pub application_id: uuid::Uuid,
    /// Event type (`up`, `join`, …), the SSE event name.
    pub kind: &'static str,
    /// The event JSON (the webhook body), serialised once for every subscriber.
    pub body: Arc<str>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("storage", &self.storage)
            .field("admin_token", &self.admin_token_hash.map(|_| "<set>"))
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl ApiState {
    /// A state over `storage`. `admin_token`: the bearer token with all rights
    /// (`None` or empty: only tenant API keys work). Creates a change channel
    /// holding up to 4096 unread changes per subscriber.
    pub fn new(storage: Arc<dyn Storage>, admin_token: Option<&str>) -> Self {
        let (changes, _) = broadcast::channel(4096);
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        // A runtime of its own until the server shares its pool (`with_codecs`); if
        // even that cannot start, objects are refused with 503 rather than failing here.
        let codecs = Codecs::new(CodecLimits {
            workers: 1,
            ..CodecLimits::default()
        })
        .ok();
        ApiState {
            storage,
            admin_token_hash: admin_token
                .filter(|t| !t.is_empty())
                .map(lorikeet_storage::hash_token),
            metrics: None,
            changes,
            live,
            codecs,
            applied: None,
            revocations: Arc::new(tokio::sync::watch::Sender::new(0)),
            target_guard: TargetGuard::default(),
            login_throttle: Arc::new(password::LoginThrottle::default()),
            session_hours: 12,
            secure_cookies: false,
        }
    }

    /// Console sessions last `hours`; `secure` marks their cookie `Secure` always
    /// (behind a TLS proxy that does not send `X-Forwarded-Proto`).
    pub fn with_sessions(mut self, hours: u32, secure: bool) -> Self {
        self.session_hours = hours.max(1);
        self.secure_cookies = secure;
        self
    }

    /// Checks webhook targets with `guard` (the operator's allowlist; a test's
    /// resolver). Without it: no allowlist, the system resolver.
    pub fn with_target_guard(mut self, guard: TargetGuard) -> Self {
        self.target_guard = guard;
        self
    }

    /// Answers writes only once the live state applied them (see [`AppliedGate`]).
    pub fn with_applied(mut self, gate: AppliedGate) -> Self {
        self.applied = Some(gate);
        self
    }

    /// Uses the server's codec runtime (one pool for the uplink decoder and the API).
    pub fn with_codecs(mut self, codecs: Codecs) -> Self {
        self.codecs = Some(codecs);
        self
    }

    /// Serves `/metrics` with `render`.
    pub fn with_metrics(mut self, render: MetricsRender) -> Self {
        self.metrics = Some(render);
        self
    }

    /// Uses an existing change channel (e.g. one the network server already listens on).
    pub fn with_changes(mut self, changes: broadcast::Sender<Change>) -> Self {
        self.changes = changes;
        self
    }

    /// A receiver of every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Tells open event streams that a key was revoked.
    pub(crate) fn key_revoked(&self) {
        self.revocations.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn notify(&self, change: Change) {
        // No receiver (e.g. in tests or before the server starts) is not an error.
        let _ = self.changes.send(change);
    }
}

/// Live events buffered per stream client; a client further behind is told how many
/// it missed (an SSE `lagged` event) and continues with the newest.
pub const LIVE_CAPACITY: usize = 1024;

/// Registers the help texts of the API metrics (call once after installing the
/// recorder).
pub fn describe_metrics() {
    metrics::describe_counter!(
        "lorikeet_api_requests_total",
        "API requests by method, route template and status"
    );
    metrics::describe_histogram!(
        "lorikeet_api_request_duration_seconds",
        metrics::Unit::Seconds,
        "API request latency by route template"
    );
    metrics::describe_counter!(
        "lorikeet_api_stream_lagged_total",
        "Live events an event-stream client missed because it fell behind"
    );
    metrics::describe_counter!(
        "lorikeet_api_not_yet_live_total",
        "Writes answered 503: stored, but not applied by the live state within the wait"
    );
}

/// The whole API as one warp filter.
pub fn routes(
    state: ApiState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::any()
        .and(warp::method())
        .and(warp::path::full())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(warp::body::stream())
        .and(warp::any().map(move || state.clone()))
        .then(
            |method: Method,
             path: warp::path::FullPath,
             query: String,
             headers: HeaderMap,
             remote: Option<std::net::SocketAddr>,
             body,
             state: ApiState| async move {
                handle(state, method, path.as_str(), &query, headers, remote, body).await
            },
        )
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    serve_filter(listener, routes(state), shutdown).await
}

/// A route serving only `GET /metrics`, for a separate monitoring address.
pub fn metrics_routes(
    render: MetricsRender,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::get()
        .and(warp::path("metrics"))
        .and(warp::path::end())
        .map(move || metrics_reply(&render))
}

fn metrics_reply(render: &MetricsRender) -> Response {
    let mut r = Response::new(render().into());
    r.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// What a handler answers.
#[derive(Debug)]
pub(crate) enum Out {
    /// A JSON body with a status.
    Json(StatusCode, Value),
    /// 204.
    NoContent,
    /// Already built (metrics text, the OpenAPI document).
    Raw(Response),
}

impl Out {
    pub(crate) fn ok(v: Value) -> Self {
        Out::Json(StatusCode::OK, v)
    }
    pub(crate) fn created(v: Value) -> Self {
        Out::Json(StatusCode::CREATED, v)
    }
}

/// `n` random bytes from the OS generator, as lower-case hex.
pub(crate) fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut r = warp::reply::with_status(warp::reply::json(v), status).into_response();
    r.headers_mut().insert(
        warp::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    r
}

/// A JSON body already serialised (stored event JSON is passed on as its text).
pub(crate) fn json_text_response(status: StatusCode, body: String) -> Response {
    let mut r = warp::reply::with_status(body, status).into_response();
    r.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        warp::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    r
}

fn error_response(e: &ApiError) -> Response {
    let mut r = json_response(e.status, &serde_json::json!({ "error": e.message }));
    if e.status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            warp::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
    }
    r
}

/// Reads the body, stopping with 413 past `limit` bytes.
async fn read_body<S, B>(headers: &HeaderMap, body: S, limit: usize) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let too_large = || {
        ApiError::too_large(format!(
            "the request body is larger than {limit} bytes ({} MiB)",
            limit / (1024 * 1024)
        ))
    };
    let declared = headers
        .get(warp::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
        if out.len() + chunk.remaining() > limit {
            return Err(too_large());
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(out)
}

async fn handle<S, B>(
    state: ApiState,
    method: Method,
    path: &str,
    query: &str,
    headers: HeaderMap,
    remote: Option<std::net::SocketAddr>,
    body: S,
) -> Response
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let start = Instant::now();
    if console::is_console(path) {
        let response = match read_body(&headers, body, MAX_BODY_BYTES).await {
            Ok(body) => console::serve(&state, &method, path, &headers, &body, remote).await,
            Err(e) => error_response(&e),
        };
        metrics::counter!(
            "lorikeet_api_requests_total",
            "method" => method.as_str().to_string(),
            "route" => "console",
            "status" => response.status().as_u16().to_string()
        )
        .increment(1);
        return response;
    }
    let (template, result) = match router::find(&method, path) {
        router::Match::Found {
            route,
            template,
            params,
        } => (
            template,
            run(
                &state, &method, route, &params, query, &headers, remote, body,
            )
            .await,
        ),
        router::Match::WrongMethod { template, allowed } => {
            let allow = allowed
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let mut r = error_response(&ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: format!("{method} is not allowed on {template}; use {allow}"),
            });
            if let Ok(v) = HeaderValue::from_str(&allow) {
                r.headers_mut().insert(warp::http::header::ALLOW, v);
            }
            (template, Ok(Out::Raw(r)))
        }
        router::Match::NotFound => (
            "unknown",
            Err(ApiError::not_found(format!(
                "no endpoint {method} {path}; /api/v1/openapi.json lists them all"
            ))),
        ),
    };
    // Read your writes: a change is answered once it is live, not merely stored.
    let result = match (result, &state.applied) {
        (Ok(out), Some(gate)) if method != Method::GET && method != Method::HEAD => {
            let target = state.storage.feed_signals().written();
            if gate.wait(target).await {
                Ok(out)
            } else {
                metrics::counter!("lorikeet_api_not_yet_live_total").increment(1);
                Err(ApiError::unavailable(format!(
                    "the change is stored but the network server has not applied it yet \
                     (waited {} s); it takes effect shortly, do not repeat it",
                    gate.timeout.as_secs_f32()
                )))
            }
        }
        (result, _) => result,
    };
    let response = match result {
        Ok(Out::Json(status, v)) => json_response(status, &v),
        Ok(Out::NoContent) => {
            warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response()
        }
        Ok(Out::Raw(r)) => r,
        Err(e) => error_response(&e),
    };
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "lorikeet_api_requests_total",
        "method" => method.as_str().to_string(),
        "route" => template,
        "status" => status
    )
    .increment(1);
    metrics::histogram!("lorikeet_api_request_duration_seconds", "route" => template)
        .record(start.elapsed().as_secs_f64());
    response
}

#[allow(clippy::too_many_arguments)]
async fn run<S, B>(
    state: &ApiState,
    method: &Method,
    route: RouteId,
    params: &[&str],
    query: &str,
    headers: &HeaderMap,
    remote: Option<std::net::SocketAddr>,
    body: S,
) -> Result<Out, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    match route {
        RouteId::Health => return Ok(Out::ok(serde_json::json!({ "status": "ok" }))),
        RouteId::OpenApi => {
            let mut r = Response::new(OPENAPI_JSON.into());
            r.headers_mut().insert(
                warp::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return Ok(Out::Raw(r));
        }
        RouteId::Metrics => {
            return match &state.metrics {
                Some(render) => Ok(Out::Raw(metrics_reply(render))),
                None => Err(ApiError::not_found(
                    "metrics are not served on this address",
                )),
            }
        }
        RouteId::Login => {
            let body = read_body(headers, body, MAX_BODY_BYTES).await?;
            return Ok(Out::Raw(
                login::api_login(state, headers, &body, remote).await?,
            ));
        }
        RouteId::Logout => return Ok(Out::Raw(login::api_logout(state, headers).await?)),
        _ => {}
    }
    let (principal, credential) = auth::authenticate_caller(state, method, headers).await?;
    let limit = match route {
        RouteId::DeviceImport => MAX_IMPORT_BODY_BYTES,
        _ => MAX_BODY_BYTES,
    };
    let body = read_body(headers, body, limit).await?;
    let query = input::Query::parse(query);
    let ctx = handlers::Ctx {
        state,
        principal,
        credential,
        access: route.access(),
        params,
        query: &query,
        body: &body,
    };
    handlers::dispatch(route, &ctx).await
}
