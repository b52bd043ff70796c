//! Provisioning a simulation through Lorikeet's API: an application with a webhook,
//! a device profile, the gateways and the devices (OTAA keys or ABP sessions); and
//! removing them again afterwards.
//!
//! Everything a run creates is noted in [`Created`] as the API confirms it, so the
//! removal takes away exactly that: objects that already existed (a `409`, e.g.
//! gateways kept by an earlier `--keep` run) are used but left alone.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use lorikeet_lorawan::crypto::SessionKeys;
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64, NetId};
use serde_json::{json, Value};

use super::device::SimDevice;

/// How devices get their session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Over the air.
    Otaa,
    /// By personalisation.
    Abp,
}

/// What to create.
#[derive(Debug, Clone)]
pub struct ProvisionConfig {
    /// Number of devices.
    pub devices: usize,
    /// Number of gateways.
    pub gateways: usize,
    /// OTAA or ABP.
    pub activation: Activation,
    /// MAC version, e.g. "1.0.3" or "1.1.0".
    pub mac_version: String,
    /// Profile codec JSON, e.g. `{"type":"cayenne_lpp"}`.
    pub codec: Value,
    /// Where the server should POST events; `None` for no webhook.
    pub webhook_url: Option<String>,
    /// Webhook signing secret.
    pub signing_secret: Option<String>,
    /// More integrations of the application: (kind, settings JSON).
    pub integrations: Vec<(String, Value)>,
    /// First DevEUI (devices are numbered from it).
    pub dev_eui_base: u64,
    /// First gateway EUI.
    pub gateway_base: u64,
    /// The server's NetID (ABP addresses are taken from its block).
    pub net_id: NetId,
    /// Requests in flight.
    pub concurrency: usize,
}

/// What was created.
#[derive(Debug)]
pub struct Provisioned {
    /// The application.
    pub application_id: String,
    /// The gateways.
    pub gateways: Vec<Eui64>,
    /// The devices, ready to simulate.
    pub devices: Vec<SimDevice>,
    /// Devices that existed already (`409`): used as they are, in their own
    /// application, and never removed by this run.
    pub existing_devices: usize,
    /// Gateways that existed already, likewise.
    pub existing_gateways: usize,
}

/// Why an API request failed. Both variants name the request's full URL, so a wrong
/// `--api` shows in the message.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The API could not be reached (or answered garbage).
    #[error("{method} {url}: {}", error_chain(.source))]
    Http {
        /// The method.
        method: reqwest::Method,
        /// The URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The API refused a request.
    #[error("{method} {url} answered {status}: {body}")]
    Refused {
        /// The method.
        method: reqwest::Method,
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The error body.
        body: String,
    },
    /// Stopped on request (Ctrl-C) before this request was sent.
    #[error("interrupted")]
    Interrupted,
    /// Not sent because another request of the same step failed first.
    #[error("skipped after an earlier failure")]
    Skipped,
}

/// An error and its causes, `: `-separated: reqwest's own message leaves out the
/// cause that matters ("Connection refused").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// An answer of the API.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
}

/// A client of Lorikeet's API.
#[derive(Debug)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// A client for the API at `base` (e.g. `http://127.0.0.1:8080`) with `token`.
    pub fn new(base: &str, token: &str) -> Result<Api, ProvisionError> {
        let base = base.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|source| ProvisionError::Http {
                method: reqwest::Method::GET,
                url: base.clone(),
                source,
            })?;
        Ok(Api {
            http,
            base,
            token: token.to_owned(),
        })
    }

    /// The windows the server's scheduler skipped on `gateways`, by reason, summed from
    /// `lorikeet_gateway_downlinks_refused_total{by="scheduler"}` at `metrics_url`;
    /// empty when it cannot be read (e.g. `/metrics` served elsewhere). The server
    /// exports these every second, so the last second of a run is waited for.
    pub async fn scheduler_refusals(
        &self,
        metrics_url: &str,
        gateways: &[Eui64],
    ) -> std::collections::BTreeMap<String, u64> {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let text = match self
            .http
            .get(metrics_url)
            .bearer_auth(&self.token)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
            _ => return Default::default(),
        };
        scheduler_refusals_in(&text, gateways)
    }

    /// An integration's delivery state: (backlog, lastError).
    pub async fn integration_state(
        &self,
        application_id: &str,
        kind: &str,
    ) -> Result<(i64, Option<String>), ProvisionError> {
        let r = self
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/applications/{application_id}/integrations/{kind}"),
                None,
            )
            .await?;
        Ok((
            r.body["backlog"].as_i64().unwrap_or(i64::MAX),
            r.body["lastError"].as_str().map(str::to_owned),
        ))
    }

    /// Checks that the API answers and takes the token, without changing anything.
    pub async fn check(&self) -> Result<(), ProvisionError> {
        self.send(reqwest::Method::GET, "/api/v1/applications?limit=1", None)
            .await
            .map(|_| ())
    }

    /// Sends a request; `2xx` and `409` (already exists) are answers, the rest errors.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Reply, ProvisionError> {
        self.send_within(method, path, body, None).await
    }

    /// [`Api::send`] with its own timeout instead of the client's 30 s.
    async fn send_within(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        timeout: Option<Duration>,
    ) -> Result<Reply, ProvisionError> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        if let Some(body) = &body {
            req = req.json(body);
        }
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        let r = req.send().await.map_err(|source| ProvisionError::Http {
            method: method.clone(),
            url: url.clone(),
            source: source.without_url(),
        })?;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        if !(200..300).contains(&status) && status != 409 {
            return Err(ProvisionError::Refused {
                method,
                url,
                status,
                body: text,
            });
        }
        Ok(Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        })
    }

    /// Deletes `path` (waiting up to `timeout`); gone already (`404`) counts as done.
    async fn delete(&self, path: &str, timeout: Duration) -> Result<(), ProvisionError> {
        match self
            .send_within(reqwest::Method::DELETE, path, None, Some(timeout))
            .await
        {
            Ok(_) | Err(ProvisionError::Refused { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// What a run created on the server and has not removed yet.
#[derive(Debug, Default)]
pub struct Created(Mutex<CreatedInner>);

#[derive(Debug, Default, Clone)]
struct CreatedInner {
    /// Application id and name.
    application: Option<(String, String)>,
    /// Devices created in it (they go with it).
    devices: usize,
    /// Whether its webhook was created (it goes with it).
    webhook: bool,
    profile: Option<String>,
    gateways: Vec<Eui64>,
}

impl Created {
    fn lock(&self) -> MutexGuard<'_, CreatedInner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the webhook is among it.
    pub fn has_webhook(&self) -> bool {
        self.lock().webhook
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        let c = self.lock();
        c.application.is_none() && c.profile.is_none() && c.gateways.is_empty()
    }
}

impl fmt::Display for Created {
    /// A list for people: what is on the server, with its ids.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.lock().clone();
        let mut parts = Vec::new();
        if let Some((id, name)) = &c.application {
            let webhook = if c.webhook { " and its webhook" } else { "" };
            parts.push(format!(
                "application {name} ({id}) with {} devices{webhook}",
                c.devices
            ));
        }
        if let Some(id) = &c.profile {
            parts.push(format!("device profile {id}"));
        }
        // Noted in the order the API answered.
        let mut gateways = c.gateways.clone();
        gateways.sort_unstable();
        match gateways.as_slice() {
            [] => {}
            [g] => parts.push(format!("gateway {g}")),
            [first, .., last] => parts.push(format!(
                "{} gateways between {first} and {last}",
                gateways.len()
            )),
        }
        if parts.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// One provisioning run's requests: they stop being sent once `stop` is set (from
/// outside) or one of them failed, and every creation the API confirms is noted.
struct Session<'a> {
    api: &'a Api,
    created: &'a Created,
    stop: &'a AtomicBool,
    failed: AtomicBool,
}

impl Session<'_> {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Reply, ProvisionError> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(ProvisionError::Interrupted);
        }
        if self.failed.load(Ordering::Relaxed) {
            return Err(ProvisionError::Skipped);
        }
        let r = self.api.send(method, path, Some(body)).await;
        if r.is_err() {
            self.failed.store(true, Ordering::Relaxed);
        }
        r
    }
}

/// The outcome of requests run side by side: every request has finished (none is
/// dropped in flight, so [`Created`] is exact); the first real error wins.
fn settle<T>(results: Vec<Result<T, ProvisionError>>) -> Result<Vec<T>, ProvisionError> {
    let mut out = Vec::with_capacity(results.len());
    let mut first: Option<ProvisionError> = None;
    for r in results {
        match r {
            Ok(v) => out.push(v),
            Err(e) => {
                let better = match (&first, &e) {
                    (None, _) => true,
                    (Some(ProvisionError::Skipped | ProvisionError::Interrupted), e) => {
                        !matches!(e, ProvisionError::Skipped | ProvisionError::Interrupted)
                    }
                    _ => false,
                };
                if better {
                    first = Some(e);
                }
            }
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The root keys every simulated OTAA device uses (derived from its DevEUI, so a
/// later run can rebuild them).
pub fn app_key_for(dev_eui: Eui64) -> Aes128Key {
    let mut k = [0x2bu8; 16];
    k[..8].copy_from_slice(&dev_eui.0);
    Aes128Key::from_bytes(k)
}

fn nwk_key_for(dev_eui: Eui64) -> Aes128Key {
    let mut k = [0x3cu8; 16];
    k[8..].copy_from_slice(&dev_eui.0);
    Aes128Key::from_bytes(k)
}

/// Creates everything through the API, noting each creation in `created` (which
/// then holds what to remove, also when this fails). Setting `stop` makes it send no
/// further request; the ones in flight finish, and it returns
/// [`ProvisionError::Interrupted`].
pub async fn provision(
    api: &Api,
    cfg: &ProvisionConfig,
    created: &Created,
    stop: &AtomicBool,
) -> Result<Provisioned, ProvisionError> {
    let client = Session {
        api,
        created,
        stop,
        failed: AtomicBool::new(false),
    };
    let post = reqwest::Method::POST;
    let suffix = format!("{:x}", cfg.dev_eui_base);
    let name = format!("sim-{suffix}");
    let app = client
        .send(
            post.clone(),
            "/api/v1/applications",
            json!({ "name": name }),
        )
        .await?;
    let application_id = app.body["id"].as_str().unwrap_or_default().to_owned();
    if !application_id.is_empty() {
        created.lock().application = Some((application_id.clone(), name.clone()));
    }
    let v11 = cfg.mac_version.starts_with("1.1");
    let profile = client
        .send(
            post.clone(),
            "/api/v1/device-profiles",
            json!({
                "name": name,
                "region": "EU868",
                "macVersion": cfg.mac_version,
                "regParamsRevision": "RP002-1.0.3",
                "supportsOtaa": cfg.activation == Activation::Otaa,
                "supportsClassC": false,
                "adrEnabled": false,
                "payloadCodec": cfg.codec,
            }),
        )
        .await?;
    let profile_id = profile.body["id"].clone();
    if let Some(id) = profile_id.as_str() {
        created.lock().profile = Some(id.to_owned());
    }
    if let Some(url) = &cfg.webhook_url {
        let mut body = json!({"url": url, "headers": {}});
        if let Some(s) = &cfg.signing_secret {
            body["signingSecret"] = json!(s);
        }
        client
            .send(
                post.clone(),
                &format!("/api/v1/applications/{application_id}/integrations/http"),
                body,
            )
            .await?;
        created.lock().webhook = true;
    }
    for (kind, settings) in &cfg.integrations {
        // Removed with the application.
        client
            .send(
                post.clone(),
                &format!("/api/v1/applications/{application_id}/integrations/{kind}"),
                settings.clone(),
            )
            .await?;
    }
    let gateways: Vec<Eui64> = (0..cfg.gateways as u64)
        .map(|i| Eui64::from_u64(cfg.gateway_base + i))
        .collect();
    let results = stream::iter(gateways.iter().map(|g| {
        let body = json!({"gatewayId": g.to_string(), "name": format!("sim-gw-{g}")});
        let client = &client;
        let post = post.clone();
        async move {
            let r = client.send(post, "/api/v1/gateways", body).await?;
            let existed = r.status == 409;
            if !existed {
                client.created.lock().gateways.push(*g);
            }
            Ok(existed)
        }
    }))
    .buffer_unordered(cfg.concurrency.max(1))
    .collect::<Vec<Result<bool, ProvisionError>>>()
    .await;
    let existing_gateways = settle(results)?.into_iter().filter(|e| *e).count();
    let (prefix, mask) = cfg.net_id.dev_addr_prefix();
    let results = stream::iter(0..cfg.devices as u64)
        .map(|i| {
            let client = &client;
            let profile_id = profile_id.clone();
            let application_id = application_id.clone();
            async move {
                let dev_eui = Eui64::from_u64(cfg.dev_eui_base + i);
                let r = client
                    .send(
                        reqwest::Method::POST,
                        "/api/v1/devices",
                        json!({
                            "devEui": dev_eui.to_string(),
                            "joinEui": "0000000000000000",
                            "name": format!("sim-{dev_eui}"),
                            "applicationId": application_id,
                            "deviceProfileId": profile_id,
                        }),
                    )
                    .await?;
                let existed = r.status == 409;
                if !existed {
                    client.created.lock().devices += 1;
                }
                let device = match cfg.activation {
                    Activation::Otaa => {
                        let app_key = app_key_for(dev_eui);
                        let nwk_key = v11.then(|| nwk_key_for(dev_eui));
                        let mut keys = json!({"appKey": app_key.expose_hex()});
                        if let Some(k) = &nwk_key {
                            keys["nwkKey"] = json!(k.expose_hex());
                        }
                        client
                            .send(
                                reqwest::Method::PUT,
                                &format!("/api/v1/devices/{dev_eui}/keys"),
                                keys,
                            )
                            .await?;
                        SimDevice::otaa(dev_eui, Eui64::default(), app_key, nwk_key)
                    }
                    Activation::Abp => {
                        let dev_addr = DevAddr::from_u32(prefix | ((i as u32 + 1) & !mask));
                        let keys = if v11 {
                            SessionKeys {
                                f_nwk_s_int_key: app_key_for(dev_eui),
                                s_nwk_s_int_key: nwk_key_for(dev_eui),
                                nwk_s_enc_key: app_key_for(Eui64::from_u64(!dev_eui.to_u64())),
                                app_s_key: nwk_key_for(Eui64::from_u64(!dev_eui.to_u64())),
                            }
                        } else {
                            SessionKeys::from_1_0(app_key_for(dev_eui), nwk_key_for(dev_eui))
                        };
                        let mut body = json!({
                            "devAddr": dev_addr.to_string(),
                            "appSKey": keys.app_s_key.expose_hex(),
                        });
                        if v11 {
                            body["nwkSEncKey"] = json!(keys.nwk_s_enc_key.expose_hex());
                            body["sNwkSIntKey"] = json!(keys.s_nwk_s_int_key.expose_hex());
                            body["fNwkSIntKey"] = json!(keys.f_nwk_s_int_key.expose_hex());
                        } else {
                            body["nwkSKey"] = json!(keys.f_nwk_s_int_key.expose_hex());
                        }
                        client
                            .send(
                                reqwest::Method::POST,
                                &format!("/api/v1/devices/{dev_eui}/activate"),
                                body,
                            )
                            .await?;
                        SimDevice::abp(dev_eui, dev_addr, keys, v11, 0)
                    }
                };
                Ok::<_, ProvisionError>((device, existed))
            }
        })
        .buffered(cfg.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let (devices, existed): (Vec<SimDevice>, Vec<bool>) = settle(results)?.into_iter().unzip();
    Ok(Provisioned {
        application_id,
        gateways,
        devices,
        existing_devices: existed.into_iter().filter(|e| *e).count(),
        existing_gateways,
    })
}

/// Removes what `created` holds: the application (with its devices and webhook), the
/// device profile, the gateways. Each removal is struck off `created` when the API
/// confirms it, so after an error `created` says what is left.
pub async fn remove(api: &Api, created: &Created) -> Result<(), ProvisionError> {
    const SHORT: Duration = Duration::from_secs(30);
    let application = created.lock().application.clone();
    if let Some((id, _)) = application {
        // Its devices and their events go with it in one request: after a long run
        // that takes a while, and a client that gave up could cut it short.
        api.delete(
            &format!("/api/v1/applications/{id}"),
            Duration::from_secs(600),
        )
        .await?;
        let mut c = created.lock();
        c.application = None;
        c.devices = 0;
        c.webhook = false;
    }
    let profile = created.lock().profile.clone();
    if let Some(id) = profile {
        api.delete(&format!("/api/v1/device-profiles/{id}"), SHORT)
            .await?;
        created.lock().profile = None;
    }
    let gateways = created.lock().gateways.clone();
    let results = stream::iter(gateways.into_iter().map(|g| async move {
        api.delete(&format!("/api/v1/gateways/{g}"), SHORT).await?;
        created.lock().gateways.retain(|x| *x != g);
        Ok(())
    }))
    .buffer_unordered(16)
    .collect::<Vec<Result<(), ProvisionError>>>()
    .await;
    settle(results).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_real_error_wins() {
        let refused = || ProvisionError::Refused {
            method: reqwest::Method::POST,
            url: "http://x/api/v1/devices".into(),
            status: 400,
            body: "bad".into(),
        };
        let r = settle::<()>(vec![
            Ok(()),
            Err(ProvisionError::Skipped),
            Err(refused()),
            Err(ProvisionError::Interrupted),
        ]);
        assert!(matches!(
            r,
            Err(ProvisionError::Refused { status: 400, .. })
        ));
        let r = settle::<()>(vec![Err(ProvisionError::Interrupted), Ok(())]);
        assert!(matches!(r, Err(ProvisionError::Interrupted)));
        assert_eq!(settle(vec![Ok(1), Ok(2)]).unwrap(), [1, 2]);
    }

    #[test]
    fn created_lists_what_is_left() {
        let c = Created::default();
        assert!(c.is_empty());
        assert_eq!(c.to_string(), "nothing");
        {
            let mut i = c.lock();
            i.application = Some(("a1".into(), "sim-70".into()));
            i.devices = 20;
            i.webhook = true;
            i.profile = Some("p1".into());
            i.gateways = vec![Eui64::from_u64(2), Eui64::from_u64(3), Eui64::from_u64(1)];
        }
        assert!(!c.is_empty());
        assert_eq!(
            c.to_string(),
            "application sim-70 (a1) with 20 devices and its webhook, device profile p1, \
             3 gateways between 0000000000000001 and 0000000000000003"
        );
    }
}

/// Sums `lorikeet_gateway_downlinks_refused_total{by="scheduler"}` samples of
/// `gateways` in a Prometheus text exposition, by their `reason` label.
pub fn scheduler_refusals_in(
    text: &str,
    gateways: &[Eui64],
) -> std::collections::BTreeMap<String, u64> {
    let ids: std::collections::HashSet<String> = gateways.iter().map(|g| g.to_string()).collect();
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("lorikeet_gateway_downlinks_refused_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels.split(',').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k.trim() == name).then(|| v.trim().trim_matches('"').to_owned())
            })
        };
        if label("by").as_deref() != Some("scheduler")
            || !label("gateway").is_some_and(|g| ids.contains(&g))
        {
            continue;
        }
        let (Some(reason), Ok(n)) = (label("reason"), value.trim().parse::<f64>()) else {
            continue;
        };
        *out.entry(reason).or_insert(0) += n as u64;
    }
    out
}

#[cfg(test)]
mod metrics_tests {
    use super::*;

    #[test]
    fn scheduler_refusals_are_summed_for_our_gateways_only() {
        let ours = Eui64::from_u64(0x0102_0304_0506_0708);
        let text = format!(
            "# HELP lorikeet_gateway_downlinks_refused_total x\n\
             lorikeet_gateway_downlinks_refused_total{{gateway=\"{ours}\",by=\"scheduler\",reason=\"collision\"}} 3\n\
             lorikeet_gateway_downlinks_refused_total{{gateway=\"{ours}\",by=\"gateway\",reason=\"TOO_LATE\"}} 2\n\
             lorikeet_gateway_downlinks_refused_total{{gateway=\"ffffffffffffffff\",by=\"scheduler\",reason=\"collision\"}} 9\n\
             lorikeet_gateway_downlinks_refused_total{{gateway=\"{ours}\",by=\"scheduler\",reason=\"duty_cycle\"}} 1\n"
        );
        let m = scheduler_refusals_in(&text, &[ours]);
        assert_eq!(m.get("collision"), Some(&3));
        assert_eq!(m.get("duty_cycle"), Some(&1));
        assert_eq!(m.len(), 2);
    }
}
