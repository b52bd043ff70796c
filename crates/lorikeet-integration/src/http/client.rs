//! One webhook request: `POST <url>?event=<type>`, the configured headers,
//! `Content-Type: application/json` and, with a secret, the signature. Every step is
//! bounded in time and size, because endpoints may hang, trickle, redirect or answer
//! with endless bodies.

use std::error::Error as _;
use std::time::Duration;

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::{redirect, Client, Response};

use super::target::WebhookTarget;
use crate::error::DeliveryError;
use crate::signature::{sign, SIGNATURE_HEADER};

/// Most bytes of a successful response read (and thrown away) so the connection can
/// be reused; a longer body is cut off by closing the connection.
const MAX_DRAIN_BYTES: usize = 64 << 10;
/// Most bytes of an error response kept for `last_error`.
const MAX_ERROR_BODY: usize = 200;
/// How long reading the rest of a response may take once its status is known.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// The shared HTTP client: no redirects (a redirected POST is ambiguous; it counts as
/// a failure with its status), connection reuse per host, our user agent.
pub(crate) fn build_client(timeout: Duration, pool_per_host: usize) -> Result<Client, String> {
    Client::builder()
        .redirect(redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(pool_per_host)
        .tcp_keepalive(Duration::from_secs(30))
        .user_agent(concat!("lorikeet/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// Sends one event. `Ok(status)` for a 2xx answer: delivered.
pub(crate) async fn post_event(
    client: &Client,
    target: &WebhookTarget,
    event_type: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<u16, DeliveryError> {
    let mut request = client
        .post(target.url_for(event_type))
        .timeout(timeout)
        .headers(target.headers().clone())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(secret) = target.secret() {
        request = request.header(SIGNATURE_HEADER, sign(secret, &body));
    }
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
    if status.is_success() {
        // Delivered, whatever the body does now.
        let _ = tokio::time::timeout(BODY_READ_TIMEOUT, drain(response, MAX_DRAIN_BYTES)).await;
        return Ok(status.as_u16());
    }
    let body = tokio::time::timeout(BODY_READ_TIMEOUT, read_prefix(response, MAX_ERROR_BODY))
        .await
        .unwrap_or_default();
    let mut text = sanitize(&String::from_utf8_lossy(&body), MAX_ERROR_BODY);
    if status.is_redirection() {
        text = "redirects are not followed; configure the final URL".into();
    }
    Err(DeliveryError::Status {
        status: status.as_u16(),
        body: text,
    })
}

fn classify(e: &reqwest::Error, timeout_ms: u64) -> DeliveryError {
    if e.is_timeout() {
        return DeliveryError::Timeout { timeout_ms };
    }
    // The URL may carry a token in its query: keep it out of stored errors.
    let mut msg = String::new();
    let mut source = e.source();
    while let Some(s) = source {
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&s.to_string());
        source = s.source();
    }
    if msg.is_empty() {
        msg = "unknown error".into();
    }
    let msg = sanitize(&msg, 300);
    if e.is_connect() {
        DeliveryError::Connect(msg)
    } else {
        DeliveryError::Request(msg)
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

async fn read_prefix(mut r: Response, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < max {
        match r.chunk().await {
            Ok(Some(c)) => out.extend_from_slice(&c[..c.len().min(max - out.len())]),
            _ => break,
        }
    }
    out
}

/// One line of printable text, at most `max` characters.
fn sanitize(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_makes_one_short_line() {
        assert_eq!(sanitize("a\nb\r\n", 10), "a b");
        assert_eq!(sanitize("ééééé", 3), "ééé");
    }
}
