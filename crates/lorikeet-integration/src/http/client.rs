//! One webhook request: `POST <url>?event=<type>`, the configured headers,
//! `Content-Type: application/json` and, with a secret, the signature (made when the
//! request is sent, so every retry carries a fresh timestamp). Every step is bounded
//! in time and size, because endpoints may hang, trickle, redirect or answer with
//! endless bodies.
//!
//! Where it connects is checked by the SSRF guard ([`lorikeet_service::target`]):
//! an IP host before the request, a name by the client's resolver, which resolves
//! it, checks every address and hands only checked addresses to the connector (a
//! name that resolved to a public address when the webhook was set and to a private
//! one now is refused: DNS rebinding). There is one client per owner (admin or
//! tenant), as the rule differs. Proxies from the environment are not used: a proxy
//! would resolve the name itself, past the guard.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lorikeet_service::target::{GuardError, IntegrationOwner, TargetGuard, TargetRefused};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::{redirect, Client, Response};

use super::target::WebhookTarget;
use crate::error::DeliveryError;
use crate::signature::{sign_header, SignatureVersion, SIGNATURE_HEADER};

/// Most bytes of a response read (and thrown away) so the connection can be reused;
/// a longer body is cut off by closing the connection.
const MAX_DRAIN_BYTES: usize = 64 << 10;
/// How long reading the rest of a response may take once its status is known.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// The clients of the worker: one per owner, each resolving through the guard.
#[derive(Clone)]
pub(crate) struct Clients {
    admin: Client,
    tenant: Client,
    guard: TargetGuard,
    signature: SignatureVersion,
}

impl Clients {
    pub(crate) fn new(
        timeout: Duration,
        pool_per_host: usize,
        guard: TargetGuard,
        signature: SignatureVersion,
    ) -> Result<Self, String> {
        let build = |owner| build_client(timeout, pool_per_host, guard.clone(), owner);
        Ok(Clients {
            admin: build(IntegrationOwner::Admin)?,
            tenant: build(IntegrationOwner::Tenant)?,
            guard,
            signature,
        })
    }

    fn for_owner(&self, owner: IntegrationOwner) -> &Client {
        match owner {
            IntegrationOwner::Admin => &self.admin,
            IntegrationOwner::Tenant => &self.tenant,
        }
    }
}

/// Resolves webhook hosts through the guard for one owner.
struct GuardedResolver {
    guard: TargetGuard,
    owner: IntegrationOwner,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let owner = self.owner;
        Box::pin(async move {
            match guard.resolve(owner, name.as_str()).await {
                Ok(ips) => {
                    // Port 0: the connector puts the URL's port in.
                    let addrs: Addrs = Box::new(
                        ips.into_iter()
                            .map(|ip| std::net::SocketAddr::new(ip, 0))
                            .collect::<Vec<_>>()
                            .into_iter(),
                    );
                    Ok(addrs)
                }
                // Boxed as themselves, so `classify` finds them in the error chain.
                Err(GuardError::Refused(r)) => Err(Box::new(r) as _),
                Err(e) => Err(Box::new(e) as _),
            }
        })
    }
}

/// A client: no redirects (a redirected POST is ambiguous; it counts as a failure
/// with its status), no proxy, connection reuse per host, our user agent, and the
/// guard as its resolver.
fn build_client(
    timeout: Duration,
    pool_per_host: usize,
    guard: TargetGuard,
    owner: IntegrationOwner,
) -> Result<Client, String> {
    Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { guard, owner }))
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(pool_per_host)
        .tcp_keepalive(Duration::from_secs(30))
        .user_agent(concat!("lorikeet/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Sends one event. `Ok(status)` for a 2xx answer: delivered.
pub(crate) async fn post_event(
    clients: &Clients,
    target: &WebhookTarget,
    event_type: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<u16, DeliveryError> {
    let mut headers = target.headers().clone();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(secret) = target.secret() {
        // Signed now, not when the event was stored: a retry gets a fresh timestamp.
        let signature = sign_header(clients.signature, secret, unix_now(), &body);
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(SIGNATURE_HEADER.as_bytes()),
            HeaderValue::from_str(&signature),
        ) {
            headers.insert(name, value);
        }
    }
    post_guarded(
        clients,
        target.owner,
        &target.url_for(event_type),
        headers,
        body,
        timeout,
    )
    .await
}

/// One POST of `body` to `url` for an integration of `owner`, through the guard
/// (an IP host is checked here, a name by the client's resolver), bounded in time;
/// `Ok(status)` for a 2xx answer. The answer's body is read only to reuse the
/// connection.
pub(crate) async fn post_guarded(
    clients: &Clients,
    owner: IntegrationOwner,
    url: &reqwest::Url,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<u16, DeliveryError> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        _ => None,
    };
    if let Some(ip) = ip {
        clients.guard.check_ip(owner, ip)?;
    }
    let request = clients
        .for_owner(owner)
        .post(url.clone())
        .timeout(timeout)
        .headers(headers);
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    // reqwest enforces `timeout` itself; the outer bound is a belt for the braces.
    let sent = tokio::time::timeout(
        timeout + Duration::from_millis(500),
        request.body(body).send(),
    )
    .await;
    let response = match sent {
        Err(_) => return Err(DeliveryError::Timeout { timeout_ms }),
        Ok(Err(e)) => return Err(classify(&e, timeout_ms)),
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    // The body is read only to reuse the connection, never kept: whoever set the
    // target sees the error (`lastError`), and the body is the endpoint's to fill.
    let _ = tokio::time::timeout(BODY_READ_TIMEOUT, drain(response, MAX_DRAIN_BYTES)).await;
    if status.is_success() {
        return Ok(status.as_u16());
    }
    Err(DeliveryError::Status {
        status: status.as_u16(),
        redirect: status.is_redirection(),
    })
}

/// The class of a failed request, in words of our own: nothing the endpoint sent
/// (a TLS alert's text, a malformed header) reaches the stored error, and neither
/// does the URL (its query may carry a token).
fn classify(e: &reqwest::Error, timeout_ms: u64) -> DeliveryError {
    if e.is_timeout() {
        return DeliveryError::Timeout { timeout_ms };
    }
    let mut io_kind = None;
    let mut class = None;
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<TargetRefused>() {
            return DeliveryError::Refused(r.clone());
        }
        if let Some(g) = s.downcast_ref::<GuardError>() {
            class.get_or_insert(match g {
                GuardError::Refused(r) => return DeliveryError::Refused(r.clone()),
                GuardError::Resolve { .. } | GuardError::NoAddress { .. } => {
                    "cannot resolve the host"
                }
                GuardError::Timeout { .. } => "resolving the host timed out",
            });
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_parse() {
                class.get_or_insert("invalid HTTP response");
            } else if h.is_incomplete_message() {
                class.get_or_insert("connection closed before the response was complete");
            }
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        source = s.source();
    }
    use std::io::ErrorKind as K;
    let class = class.unwrap_or(match io_kind {
        Some(K::ConnectionRefused) => "connection refused",
        Some(K::ConnectionReset) => "connection reset",
        Some(K::ConnectionAborted) => "connection aborted",
        Some(K::TimedOut) => "timed out",
        Some(K::HostUnreachable) => "host unreachable",
        Some(K::NetworkUnreachable) => "network unreachable",
        Some(K::AddrNotAvailable) => "address not available",
        Some(K::BrokenPipe) => "connection closed",
        Some(K::UnexpectedEof) => "connection closed",
        // rustls reports handshake failures as InvalidData.
        Some(K::InvalidData) => "TLS or protocol error",
        Some(_) => "I/O error",
        None => "request failed",
    });
    if e.is_connect() {
        DeliveryError::Connect(class.into())
    } else {
        DeliveryError::Request(class.into())
    }
}

async fn drain(mut r: Response, max: usize) {
    let mut read = 0;
    while read < max {
        match r.chunk().await {
            Ok(Some(c)) => read += c.len(),
            _ => return,
        }
    }
}
