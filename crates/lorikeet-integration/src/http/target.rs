//! A webhook endpoint as parsed from an HTTP integration's stored config: done once
//! when the integration is loaded or changes, never per event.

use std::fmt;
use std::net::IpAddr;

use lorikeet_storage::{HttpIntegrationConfig, Integration, IntegrationOwner};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;
use uuid::Uuid;

use crate::error::TargetError;

/// Headers a configuration may not set: they describe the connection or the body,
/// which are ours to decide (`Content-Type` and the signature are set by us after the
/// configured headers, so configuring them is allowed but has no effect).
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

/// A parsed HTTP integration.
#[derive(Clone)]
pub struct WebhookTarget {
    /// The integration.
    pub integration_id: Uuid,
    /// Its application.
    pub application_id: Uuid,
    /// Who set it: decides which addresses it may reach.
    pub owner: IntegrationOwner,
    url: Url,
    headers: HeaderMap,
    secret: Option<Vec<u8>>,
}

impl fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values (tokens) and the secret stay out of logs.
        f.debug_struct("WebhookTarget")
            .field("integration_id", &self.integration_id)
            .field("application_id", &self.application_id)
            .field("owner", &self.owner)
            .field("url", &redacted_url(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

/// The URL without credentials and query (which may carry tokens), for logs.
pub(crate) fn redacted_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}

impl WebhookTarget {
    /// Parses and checks the integration's config ([`HttpIntegrationConfig`] JSON).
    pub fn from_integration(i: &Integration) -> Result<Self, TargetError> {
        let config: HttpIntegrationConfig = serde_json::from_value(i.config.clone())
            .map_err(|e| TargetError::Config(e.to_string()))?;
        let bad_url = |reason: &str| TargetError::Url {
            url: config.url.clone(),
            reason: reason.into(),
        };
        let url = Url::parse(config.url.trim()).map_err(|e| bad_url(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad_url("only http:// and https:// are supported"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad_url("no host"));
        }
        if url.query_pairs().any(|(k, _)| k == "event") {
            return Err(bad_url("the `event` query parameter is ours to set"));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let bad = |reason: String| TargetError::Header {
                name: name.clone(),
                reason,
            };
            let n =
                HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| bad(e.to_string()))?;
            if FORBIDDEN_HEADERS.contains(&n.as_str()) {
                return Err(bad("set by the HTTP client, not configurable".into()));
            }
            let mut v = HeaderValue::from_str(value.trim()).map_err(|e| bad(e.to_string()))?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        Ok(WebhookTarget {
            integration_id: i.id,
            application_id: i.application_id,
            owner: i.owner,
            url,
            headers,
            secret: config
                .signing_secret
                .filter(|s| !s.is_empty())
                .map(String::into_bytes),
        })
    }

    /// `<url>?event=<type>` (appended to any query the URL already has).
    pub fn url_for(&self, event_type: &str) -> Url {
        let mut u = self.url.clone();
        u.query_pairs_mut().append_pair("event", event_type);
        u
    }

    /// The host when it is an IP address (no lookup, so the guard checks it before
    /// the request; a name is checked by the client's resolver).
    pub fn ip_host(&self) -> Option<IpAddr> {
        match self.url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        }
    }

    /// The configured headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The signing secret, if any.
    pub fn secret(&self) -> Option<&[u8]> {
        self.secret.as_deref()
    }

    /// The endpoint for logs (no credentials, no query).
    pub fn display_url(&self) -> String {
        redacted_url(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use lorikeet_storage::IntegrationKind;
    use serde_json::json;

    fn integration(config: serde_json::Value) -> Integration {
        Integration {
            id: Uuid::new_v4(),
            application_id: Uuid::new_v4(),
            kind: IntegrationKind::Http,
            owner: IntegrationOwner::Tenant,
            config,
            last_delivered_at: None,
            last_error: None,
            last_error_at: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn parses_url_headers_and_secret() {
        let t = WebhookTarget::from_integration(&integration(json!({
            "url": "https://user:pw@example.com/hook?token=abc",
            "headers": {"Authorization": "Bearer t0ken", "X-Custom": "1"},
            "signingSecret": "s3cret"
        })))
        .unwrap();
        assert_eq!(
            t.url_for("up").as_str(),
            "https://user:pw@example.com/hook?token=abc&event=up"
        );
        assert_eq!(t.headers()["authorization"], "Bearer t0ken");
        assert_eq!(t.secret(), Some(&b"s3cret"[..]));
        let dbg = format!("{t:?}");
        for secret in ["t0ken", "s3cret", "abc", "pw"] {
            assert!(!dbg.contains(secret), "{secret} leaked into {dbg}");
        }
        assert_eq!(t.display_url(), "https://example.com/hook");
    }

    #[test]
    fn plain_url_gets_event_query() {
        let t =
            WebhookTarget::from_integration(&integration(json!({"url": "http://127.0.0.1:9/x"})))
                .unwrap();
        assert_eq!(
            t.url_for("txack").as_str(),
            "http://127.0.0.1:9/x?event=txack"
        );
        assert_eq!(t.secret(), None);
    }

    #[test]
    fn rejects_unusable_configs() {
        for (config, what) in [
            (json!({}), "config"),
            (json!({"url": 5}), "config"),
            (json!({"url": "ftp://x/"}), "url"),
            (json!({"url": "not a url"}), "url"),
            (json!({"url": "http://x/?event=up"}), "url"),
            (
                json!({"url": "http://x/", "headers": {"bad name": "v"}}),
                "header",
            ),
            (
                json!({"url": "http://x/", "headers": {"X-A": "line\nbreak"}}),
                "header",
            ),
            (
                json!({"url": "http://x/", "headers": {"Host": "evil"}}),
                "header",
            ),
        ] {
            let e = WebhookTarget::from_integration(&integration(config.clone())).unwrap_err();
            let got = match e {
                TargetError::Config(_) => "config",
                TargetError::Url { .. } => "url",
                TargetError::Header { .. } => "header",
            };
            assert_eq!(got, what, "{config}");
        }
    }
}
