//! InfluxDB integration: each `up` event with a decoded `object` becomes one point
//! (line protocol, `lorikeet_service::integration::up_event_line`) written over
//! HTTP to v1 (`/write`, database + retention policy, user/password) or v2
//! (`/api/v2/write`, org + bucket, token). Other events, and uplinks without a
//! decoded object, have nothing to write and count as delivered.
//!
//! A point is identified by its measurement, tags and time, so writing one again (a
//! retry after a lost answer) replaces it: retries never duplicate data.
//! The write goes through the webhook clients, so the SSRF guard applies as for
//! webhooks. Points of events sent while a write runs go out together in the next
//! one (`batch.rs`, at most [`MAX_BATCH`] lines).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use lorikeet_service::integration::{up_event_line, InfluxConfig, DEFAULT_MEASUREMENT};
use lorikeet_storage::Integration;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;

use crate::batch::Batcher;
use crate::error::TargetError;
use crate::http::client::{post_guarded, Clients};
use crate::sink::{Out, Sending, Sink};

/// Most points in one write (InfluxDB suggests batches of 5,000 or fewer).
const MAX_BATCH: usize = 1_000;

/// An InfluxDB integration's sink.
pub(crate) struct InfluxSink {
    url: Url,
    measurement: String,
    writes: Batcher<String>,
}

impl fmt::Debug for InfluxSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token and password stay out of logs.
        f.debug_struct("InfluxSink")
            .field("url", &self.describe())
            .finish_non_exhaustive()
    }
}

impl InfluxSink {
    /// Parses and checks the integration's settings.
    pub(crate) fn new(i: &Integration, clients: Clients) -> Result<Self, TargetError> {
        let config: InfluxConfig = serde_json::from_value(i.config.clone())
            .map_err(|e| TargetError::Config(e.to_string()))?;
        let url = config.check().map_err(TargetError::Config)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        let auth = match (&config.token, &config.username) {
            (Some(t), _) => Some(format!("Token {t}")),
            (None, Some(u)) => {
                let pair = format!("{u}:{}", config.password.as_deref().unwrap_or(""));
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
            (None, None) => None,
        };
        if let Some(a) = auth {
            let mut v = HeaderValue::from_str(&a).map_err(|_| {
                TargetError::Config("token or password is not a valid header value".into())
            })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let owner = i.owner;
        let target = url.clone();
        let writes = Batcher::new(MAX_BATCH, move |lines: Vec<String>, timeout| {
            let (clients, url, headers) = (clients.clone(), target.clone(), headers.clone());
            Box::pin(async move {
                post_guarded(
                    &clients,
                    owner,
                    &url,
                    headers,
                    lines.join("\n").into_bytes(),
                    timeout,
                )
                .await
                .map(drop)
            })
        });
        Ok(InfluxSink {
            url,
            measurement: config
                .measurement
                .unwrap_or_else(|| DEFAULT_MEASUREMENT.to_owned()),
            writes,
        })
    }
}

impl Sink for InfluxSink {
    fn send(&self, out: Out, timeout: Duration) -> Sending {
        let line = if out.kind == "up" {
            serde_json::from_slice(&out.body)
                .ok()
                .and_then(|body| up_event_line(&self.measurement, &body))
        } else {
            None
        };
        let writes = self.writes.clone();
        Box::pin(async move {
            let Some(line) = line else {
                return Ok(());
            };
            writes.submit(line, timeout).await
        })
    }

    fn describe(&self) -> String {
        let mut u = self.url.clone();
        u.set_query(None);
        u.to_string()
    }

    fn kind(&self) -> &'static str {
        "influxdb"
    }
}
