//! Provisioning a simulation through Lorikeet's API: an application with a webhook,
//! a device profile, the gateways and the devices (OTAA keys or ABP sessions).

use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
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
    /// API base URL, e.g. `http://127.0.0.1:8080`.
    pub api: String,
    /// Bearer token.
    pub token: String,
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
}

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The API could not be reached.
    #[error("API request to {path} failed: {source}")]
    Http {
        /// The path.
        path: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The API refused a request.
    #[error("API {path} answered {status}: {body}")]
    Refused {
        /// The path.
        path: String,
        /// HTTP status.
        status: u16,
        /// The error body.
        body: String,
    },
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, ProvisionError> {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(|source| ProvisionError::Http {
                path: path.to_owned(),
                source,
            })?;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        if !(200..300).contains(&status) && status != 409 {
            return Err(ProvisionError::Refused {
                path: path.to_owned(),
                status,
                body: text,
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
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

/// Creates everything through the API.
pub async fn provision(cfg: &ProvisionConfig) -> Result<Provisioned, ProvisionError> {
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|source| ProvisionError::Http {
                path: String::new(),
                source,
            })?,
        base: cfg.api.trim_end_matches('/').to_owned(),
        token: cfg.token.clone(),
    };
    let post = reqwest::Method::POST;
    let suffix = format!("{:x}", cfg.dev_eui_base);
    let app = client
        .send(
            post.clone(),
            "/api/v1/applications",
            json!({"name": format!("sim-{suffix}")}),
        )
        .await?;
    let application_id = app["id"].as_str().unwrap_or_default().to_owned();
    let v11 = cfg.mac_version.starts_with("1.1");
    let profile = client
        .send(
            post.clone(),
            "/api/v1/device-profiles",
            json!({
                "name": format!("sim-{suffix}"),
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
    }
    let gateways: Vec<Eui64> = (0..cfg.gateways as u64)
        .map(|i| Eui64::from_u64(cfg.gateway_base + i))
        .collect();
    stream::iter(gateways.iter().map(|g| {
        let body = json!({"gatewayId": g.to_string(), "name": format!("sim-gw-{g}")});
        client.send(post.clone(), "/api/v1/gateways", body)
    }))
    .buffer_unordered(cfg.concurrency.max(1))
    .try_collect::<Vec<_>>()
    .await?;

    let (prefix, mask) = cfg.net_id.dev_addr_prefix();
    let devices: Vec<SimDevice> = stream::iter(0..cfg.devices as u64)
        .map(|i| {
            let client = &client;
            let profile_id = profile["id"].clone();
            let application_id = application_id.clone();
            async move {
                let dev_eui = Eui64::from_u64(cfg.dev_eui_base + i);
                client
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
                Ok::<_, ProvisionError>(device)
            }
        })
        .buffered(cfg.concurrency.max(1))
        .try_collect()
        .await?;
    Ok(Provisioned {
        application_id,
        gateways,
        devices,
    })
}
