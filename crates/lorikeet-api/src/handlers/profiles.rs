//! Device profiles.

use chrono::Utc;
use lorikeet_ns::mac::{AdrRegistry, ProfileMacSettings};
use lorikeet_storage::{Change, DeviceProfile, PayloadCodec};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{page_out, probe, Ctx};
use crate::error::ApiError;
use crate::input::{self, CODEC_TYPES, MAC_VERSIONS, REGIONS, REG_PARAMS_REVISIONS};
use crate::Out;

pub(super) fn profile_json(p: &DeviceProfile) -> Value {
    let codec = match &p.payload_codec {
        PayloadCodec::JavaScript { script } => json!({ "type": "javascript", "script": script }),
        other => json!({ "type": other.type_name() }),
    };
    json!({
        "id": p.id,
        "tenantId": p.tenant_id,
        "name": p.name,
        "description": p.description,
        "region": p.region,
        "macVersion": p.mac_version,
        "regParamsRevision": p.reg_params_revision,
        "supportsOtaa": p.supports_otaa,
        "supportsClassC": p.supports_class_c,
        "adrEnabled": p.adr_enabled,
        "rx1Delay": p.rx1_delay,
        "rx1DrOffset": p.rx1_dr_offset,
        "rx2Dr": p.rx2_dr,
        "rx2FrequencyHz": p.rx2_frequency_hz,
        "payloadCodec": codec,
        "macSettings": p.mac_settings,
        "createdAt": p.created_at,
        "updatedAt": p.updated_at,
    })
}

fn default_true() -> bool {
    true
}
fn default_rx1_delay() -> u64 {
    1
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CodecBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    script: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileBody {
    name: String,
    #[serde(default)]
    description: String,
    tenant_id: Option<String>,
    region: String,
    mac_version: String,
    reg_params_revision: String,
    #[serde(default = "default_true")]
    supports_otaa: bool,
    #[serde(default)]
    supports_class_c: bool,
    #[serde(default = "default_true")]
    adr_enabled: bool,
    #[serde(default = "default_rx1_delay")]
    rx1_delay: u64,
    #[serde(default)]
    rx1_dr_offset: u64,
    rx2_dr: Option<u64>,
    rx2_frequency_hz: Option<u64>,
    payload_codec: Option<CodecBody>,
    mac_settings: Option<Value>,
}

fn small(field: &str, v: u64, max: u64) -> Result<u8, ApiError> {
    if v > max {
        return Err(ApiError::bad_request(format!(
            "{field} must be from 0 to {max}, got {v}"
        )));
    }
    u8::try_from(v).map_err(|_| ApiError::bad_request(format!("{field} is out of range")))
}

/// Validates a body into a profile with the given identity.
fn build(
    b: ProfileBody,
    id: Uuid,
    tenant_id: Uuid,
    created_at: chrono::DateTime<Utc>,
) -> Result<DeviceProfile, ApiError> {
    let name = input::name("name", &b.name)?;
    input::one_of("region", &b.region, REGIONS)?;
    input::one_of("macVersion", &b.mac_version, MAC_VERSIONS)?;
    input::one_of(
        "regParamsRevision",
        &b.reg_params_revision,
        REG_PARAMS_REVISIONS,
    )?;
    let rx1_delay = small("rx1Delay", b.rx1_delay, 15)?;
    let rx1_dr_offset = small("rx1DrOffset", b.rx1_dr_offset, 7)?;
    let rx2_dr = b.rx2_dr.map(|v| small("rx2Dr", v, 15)).transpose()?;
    let rx2_frequency_hz = match b.rx2_frequency_hz {
        None => None,
        Some(f) if (100_000_000..=1_000_000_000).contains(&f) => Some(f as u32),
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "rx2FrequencyHz must be in hertz between 100000000 and 1000000000, got {f} \
                 (e.g. 869525000 for 869.525 MHz)"
            )))
        }
    };
    let payload_codec = match b.payload_codec {
        None => PayloadCodec::None,
        Some(c) => {
            input::one_of("payloadCodec.type", &c.kind, CODEC_TYPES)?;
            if c.kind == "javascript" && c.script.trim().is_empty() {
                return Err(ApiError::bad_request(
                    "payloadCodec.script is required when payloadCodec.type is javascript",
                ));
            }
            PayloadCodec::from_parts(&c.kind, c.script).ok_or_else(ApiError::internal)?
        }
    };
    let mac_settings = match b.mac_settings {
        None => json!({}),
        Some(v @ Value::Object(_)) => {
            // Checked with the network server's own reader so that what is accepted
            // here is exactly what the core will use.
            let parsed: ProfileMacSettings = serde_json::from_value(v.clone())
                .map_err(|e| ApiError::bad_request(format!("macSettings: {e}")))?;
            parsed
                .validate(AdrRegistry::default().names())
                .map_err(ApiError::bad_request)?;
            v
        }
        Some(_) => return Err(ApiError::bad_request("macSettings must be a JSON object")),
    };
    Ok(DeviceProfile {
        id,
        tenant_id,
        name,
        description: b.description,
        region: b.region,
        mac_version: b.mac_version,
        reg_params_revision: b.reg_params_revision,
        supports_otaa: b.supports_otaa,
        supports_class_c: b.supports_class_c,
        adr_enabled: b.adr_enabled,
        rx1_delay,
        rx1_dr_offset,
        rx2_dr,
        rx2_frequency_hz,
        payload_codec,
        mac_settings,
        created_at,
        updated_at: lorikeet_storage::now(),
    })
}

pub(super) async fn create(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let b: ProfileBody = ctx.body()?;
    let tenant_hint = b.tenant_id.clone();
    // Validate the body before looking anything up, so bad input is always a 400.
    let mut p = build(b, Uuid::new_v4(), Uuid::nil(), lorikeet_storage::now())?;
    p.tenant_id = ctx.target_tenant(tenant_hint.as_deref()).await?;
    p.created_at = p.updated_at;
    ctx.state.storage.create_device_profile(&p).await?;
    ctx.state.notify(Change::ProfileChanged(p.id));
    Ok(Out::created(json!({ "id": p.id })))
}

pub(super) async fn list(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let page = input::page(ctx.query)?;
    let filter = ctx.principal.list_filter(ctx.query.uuid("tenantId")?)?;
    let items = ctx
        .state
        .storage
        .list_device_profiles(filter, probe(page))
        .await?;
    Ok(page_out(items.iter().map(profile_json).collect(), page))
}

pub(super) async fn get(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("device profile")?;
    Ok(Out::ok(profile_json(&ctx.profile(id).await?)))
}

pub(super) async fn update(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("device profile")?;
    let old = ctx.profile(id).await?;
    let b: ProfileBody = ctx.body()?;
    if let Some(t) = b.tenant_id.as_deref() {
        if input::uuid("tenantId", t)? != old.tenant_id {
            return Err(ApiError::bad_request("tenantId cannot be changed"));
        }
    }
    let p = build(b, old.id, old.tenant_id, old.created_at)?;
    if !ctx.state.storage.update_device_profile(&p).await? {
        return Err(ApiError::not_found(format!(
            "device profile {id} not found"
        )));
    }
    ctx.state.notify(Change::ProfileChanged(id));
    Ok(Out::ok(profile_json(&p)))
}

pub(super) async fn delete(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("device profile")?;
    ctx.profile(id).await?;
    if !ctx.state.storage.delete_device_profile(id).await? {
        return Err(ApiError::not_found(format!(
            "device profile {id} not found"
        )));
    }
    ctx.state.notify(Change::ProfileChanged(id));
    Ok(Out::NoContent)
}

/// The checks [`create`]/[`update`] make of their body before any lookup, for the
/// `api_bodies` fuzz target; an accepted profile, read back as `GET` shows it
/// ([`profile_json`]) and sent again as a `PUT` body, is accepted as the same profile.
pub(super) fn fuzz_body(body: &[u8]) -> Result<DeviceProfile, ApiError> {
    let b: ProfileBody = input::json(body)?;
    b.tenant_id
        .as_deref()
        .map(|t| input::uuid("tenantId", t))
        .transpose()?;
    let created_at = chrono::DateTime::UNIX_EPOCH;
    let p = build(b, Uuid::nil(), Uuid::nil(), created_at)?;
    let shown = serde_json::to_vec(&profile_json(&p)).map_err(|_| ApiError::internal())?;
    let again = build(input::json(&shown)?, p.id, p.tenant_id, created_at).unwrap_or_else(|e| {
        panic!(
            "GET output {} is refused as a PUT body: {e}",
            String::from_utf8_lossy(&shown)
        )
    });
    assert_eq!(
        DeviceProfile {
            updated_at: p.updated_at,
            ..again
        },
        p,
        "a profile changed when its GET output was PUT back"
    );
    Ok(p)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TestDecodeBody {
    f_port: u8,
    /// The payload in hex (spaces and colons allowed).
    bytes: String,
    /// A script to try instead of the profile's (the codec editor before saving).
    script: Option<String>,
}

/// Which runtime a test decode uses: one of its own per profile, never the one live
/// uplinks use, so a test cannot leave globals behind for real frames.
fn test_scope(profile: Uuid) -> u128 {
    profile.as_u128() ^ (1 << 127)
}

/// `POST /api/v1/device-profiles/{id}/test-decode`: runs the profile's codec (or
/// the given script) on sample bytes, with the same limits as live uplinks.
pub(super) async fn test_decode(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("device profile")?;
    let b: TestDecodeBody = ctx.body()?;
    if !(1..=223).contains(&b.f_port) {
        return Err(ApiError::bad_request(format!(
            "fPort {} is not an application port (1..=223)",
            b.f_port
        )));
    }
    let clean: String = b
        .bytes
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let bytes = decode_hex(&clean)
        .ok_or_else(|| ApiError::bad_request(format!("bytes {:?} is not hex", b.bytes)))?;
    if bytes.len() > 242 {
        return Err(ApiError::bad_request(format!(
            "bytes is {} bytes long; an uplink carries at most 242",
            bytes.len()
        )));
    }
    let p = ctx.profile(id).await?;
    let codec = match (b.script, &p.payload_codec) {
        (Some(script), _) => lorikeet_codec::CodecConfig::JavaScript {
            script,
            scope: test_scope(p.id),
        },
        (None, PayloadCodec::JavaScript { script }) => lorikeet_codec::CodecConfig::JavaScript {
            script: script.clone(),
            scope: test_scope(p.id),
        },
        (None, PayloadCodec::CayenneLpp) => lorikeet_codec::CodecConfig::CayenneLpp,
        (None, PayloadCodec::None) => {
            return Err(ApiError::bad_request(
                "the profile has no codec (payloadCodec type none); set one, or send a script",
            ))
        }
    };
    let Some(codecs) = ctx.state.codecs.as_ref() else {
        return Err(ApiError::unavailable("the codec runtime is not running"));
    };
    let input = lorikeet_codec::UplinkInput {
        bytes,
        f_port: b.f_port,
        recv_time: std::time::SystemTime::now(),
        variables: Default::default(),
    };
    match codecs.decode_uplink(&codec, input).await {
        Ok(Some(d)) => Ok(Out::ok(json!({"object": d.object, "warnings": d.warnings}))),
        Ok(None) => Err(ApiError::internal()),
        // The codec's own message (syntax error with line, exception, timeout, …):
        // what the editor shows.
        Err(e) => Err(ApiError::bad_request(format!("the codec failed: {e}"))),
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}
