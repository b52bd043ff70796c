//! Devices, their root keys and ABP activation.

use std::collections::BTreeMap;

use lorikeet_lorawan::Eui64;
use lorikeet_ns::device::{RxWindows, SessionState};
use lorikeet_storage::{
    Application, Change, Device, DeviceClass, DeviceFilter, DeviceProfile, DeviceSession, RootKeys,
};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{page_out, probe, Ctx};
use crate::error::ApiError;
use crate::input::{self, is_lorawan_1_1};
use crate::Out;

fn device_json(d: &Device) -> Value {
    json!({
        "devEui": d.dev_eui,
        "joinEui": d.join_eui,
        "tenantId": d.tenant_id,
        "applicationId": d.application_id,
        "deviceProfileId": d.device_profile_id,
        "name": d.name,
        "description": d.description,
        "tags": d.tags,
        "skipFcntCheck": d.skip_fcnt_check,
        "disabled": d.disabled,
        "deviceClassEnabled": d.device_class_enabled.as_str(),
        "lastSeenAt": d.last_seen_at,
        "createdAt": d.created_at,
        "updatedAt": d.updated_at,
    })
}

/// The short form used in lists (keeps pages small).
fn device_list_json(d: &Device) -> Value {
    json!({
        "devEui": d.dev_eui,
        "name": d.name,
        "applicationId": d.application_id,
        "deviceProfileId": d.device_profile_id,
        "disabled": d.disabled,
        "lastSeenAt": d.last_seen_at,
    })
}

/// The body of `POST /devices` and `PUT /devices/{devEui}` (and of an import row).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeviceBody {
    dev_eui: Option<String>,
    join_eui: String,
    name: String,
    #[serde(default)]
    description: String,
    application_id: String,
    device_profile_id: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    skip_fcnt_check: bool,
    #[serde(default)]
    disabled: bool,
}

/// A [`DeviceBody`] whose own fields are valid; its application and profile are
/// still to be looked up.
pub(super) struct DeviceFields {
    join_eui: Eui64,
    name: String,
    description: String,
    /// The application named.
    pub application_id: Uuid,
    /// The device profile named.
    pub device_profile_id: Uuid,
    tags: BTreeMap<String, String>,
    skip_fcnt_check: bool,
    disabled: bool,
}

impl DeviceBody {
    /// The DevEUI a new device must name.
    pub(super) fn required_dev_eui(&self) -> Result<Eui64, ApiError> {
        let Some(raw) = self.dev_eui.as_deref() else {
            return Err(ApiError::bad_request("devEui is required"));
        };
        input::eui("devEui", raw)
    }

    /// Checks the fields that need no lookup.
    pub(super) fn fields(self) -> Result<DeviceFields, ApiError> {
        Ok(DeviceFields {
            join_eui: input::eui("joinEui", &self.join_eui)?,
            name: input::name("name", &self.name)?,
            application_id: input::uuid("applicationId", &self.application_id)?,
            device_profile_id: input::uuid("deviceProfileId", &self.device_profile_id)?,
            description: self.description,
            tags: self.tags,
            skip_fcnt_check: self.skip_fcnt_check,
            disabled: self.disabled,
        })
    }
}

impl DeviceFields {
    /// The device, given its application and profile (both visible to the caller):
    /// they must be of one tenant, which becomes the device's. A new device's
    /// times are now; an update keeps its own (see [`update`]).
    pub(super) fn device(
        self,
        dev_eui: Eui64,
        app: &Application,
        profile: &DeviceProfile,
    ) -> Result<Device, ApiError> {
        if app.tenant_id != profile.tenant_id {
            return Err(ApiError::bad_request(format!(
                "device profile {} belongs to another tenant than application {}; use a \
                 profile of the application's tenant",
                profile.id, app.id
            )));
        }
        let now = lorikeet_storage::now();
        Ok(Device {
            dev_eui,
            join_eui: self.join_eui,
            tenant_id: app.tenant_id,
            application_id: app.id,
            device_profile_id: profile.id,
            name: self.name,
            description: self.description,
            tags: self.tags,
            skip_fcnt_check: self.skip_fcnt_check,
            disabled: self.disabled,
            device_class_enabled: DeviceClass::A,
            last_seen_at: None,
            created_at: now,
            updated_at: now,
        })
    }
}

/// Validates the body and resolves its application and profile (visible, same tenant).
async fn build(ctx: &Ctx<'_>, b: DeviceBody, dev_eui: Eui64) -> Result<Device, ApiError> {
    let f = b.fields()?;
    let app = ctx.application(f.application_id).await?;
    let profile = ctx.profile(f.device_profile_id).await?;
    f.device(dev_eui, &app, &profile)
}

pub(super) async fn create(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let b: DeviceBody = ctx.body()?;
    let dev_eui = b.required_dev_eui()?;
    let d = build(ctx, b, dev_eui).await?;
    ctx.state.storage.create_device(&d).await?;
    ctx.state.notify(Change::DeviceChanged(dev_eui));
    Ok(Out::created(json!({ "devEui": dev_eui })))
}

pub(super) async fn list(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let page = input::page(ctx.query)?;
    let application_id = ctx.query.uuid("applicationId")?;
    if let Some(a) = application_id {
        ctx.application(a).await?;
    }
    let filter = DeviceFilter {
        tenant_id: ctx.principal.list_filter(ctx.query.uuid("tenantId")?)?,
        application_id,
    };
    let items = ctx.state.storage.list_devices(filter, probe(page)).await?;
    Ok(page_out(items.iter().map(device_list_json).collect(), page))
}

pub(super) async fn get(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    Ok(Out::ok(device_json(&ctx.device(dev_eui).await?)))
}

pub(super) async fn update(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    let old = ctx.device(dev_eui).await?;
    let b: DeviceBody = ctx.body()?;
    if let Some(raw) = b.dev_eui.as_deref() {
        let body_eui = input::eui("devEui", raw)?;
        if body_eui != dev_eui {
            return Err(ApiError::bad_request(format!(
                "devEui in the body ({body_eui}) differs from the path ({dev_eui}); a DevEUI \
                 cannot be changed"
            )));
        }
    }
    let mut d = build(ctx, b, dev_eui).await?;
    d.created_at = old.created_at;
    d.last_seen_at = old.last_seen_at;
    d.device_class_enabled = old.device_class_enabled;
    if !ctx.state.storage.update_device(&d).await? {
        return Err(ApiError::not_found(format!("device {dev_eui} not found")));
    }
    ctx.state.notify(Change::DeviceChanged(dev_eui));
    Ok(Out::ok(device_json(&d)))
}

pub(super) async fn delete(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    ctx.device(dev_eui).await?;
    if !ctx.state.storage.delete_device(dev_eui).await? {
        return Err(ApiError::not_found(format!("device {dev_eui} not found")));
    }
    ctx.state.notify(Change::DeviceDeleted(dev_eui));
    Ok(Out::NoContent)
}

/// The body of `PUT /devices/{devEui}/keys` (and an import row's `keys`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct KeysBody {
    app_key: Option<String>,
    nwk_key: Option<String>,
}

impl KeysBody {
    /// The root keys, checked against the device profile's MAC version (which
    /// decides whether a NwkKey is required or refused).
    pub(super) fn root_keys(&self, profile: &DeviceProfile) -> Result<RootKeys, ApiError> {
        let Some(app_key) = self.app_key.as_deref() else {
            return Err(ApiError::bad_request("appKey is required"));
        };
        let app_key = input::key("appKey", app_key)?;
        let nwk_key = self
            .nwk_key
            .as_deref()
            .map(|k| input::key("nwkKey", k))
            .transpose()?;
        match (is_lorawan_1_1(&profile.mac_version), &nwk_key) {
            (true, None) => Err(ApiError::bad_request(format!(
                "nwkKey is required: the device profile's macVersion is {}",
                profile.mac_version
            ))),
            (false, Some(_)) => Err(ApiError::bad_request(format!(
                "nwkKey is only used by LoRaWAN 1.1 devices; the device profile's macVersion \
                 is {}, so send appKey alone",
                profile.mac_version
            ))),
            _ => Ok(RootKeys { app_key, nwk_key }),
        }
    }
}

pub(super) async fn put_keys(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    let b: KeysBody = ctx.body()?;
    let d = ctx.device(dev_eui).await?;
    let profile = ctx.profile(d.device_profile_id).await?;
    let keys = b.root_keys(&profile)?;
    ctx.state
        .storage
        .set_device_keys(dev_eui, &keys.app_key, keys.nwk_key.as_ref())
        .await?;
    ctx.state.notify(Change::DeviceKeysChanged(dev_eui));
    Ok(Out::NoContent)
}

pub(super) async fn get_keys(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    ctx.device(dev_eui).await?;
    let Some(k) = ctx.state.storage.get_device_keys(dev_eui).await? else {
        return Err(ApiError::not_found(format!(
            "device {dev_eui} has no root keys; set them with PUT /api/v1/devices/{dev_eui}/keys"
        )));
    };
    Ok(Out::ok(json!({
        "appKey": MASKED_KEY,
        "nwkKey": k.nwk_key.as_ref().map(|_| MASKED_KEY),
    })))
}

/// What the API returns in place of a key: keys are write-only (a `GET` says that
/// one is set, never what it is; `docs/api.md`).
pub(crate) const MASKED_KEY: &str = "********************************";

/// The body of `POST /devices/{devEui}/activate` (and an import row's `activation`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ActivateBody {
    dev_addr: String,
    app_s_key: String,
    nwk_s_key: Option<String>,
    nwk_s_enc_key: Option<String>,
    s_nwk_s_int_key: Option<String>,
    f_nwk_s_int_key: Option<String>,
    #[serde(default)]
    f_cnt_up: u32,
    #[serde(default)]
    n_f_cnt_down: u32,
    #[serde(default)]
    a_f_cnt_down: u32,
    /// Receive-window overrides; by default the profile's settings, else the
    /// region's defaults (an ABP device is configured with them out of band).
    rx1_delay: Option<u32>,
    rx1_dr_offset: Option<u32>,
    rx2_dr: Option<u32>,
    rx2_frequency_hz: Option<u64>,
}

/// The receive windows an ABP session starts with: the body's overrides, else the
/// device profile's settings, else the region's defaults. Every field is set, so
/// RX2 and Class C downlinks never go out on an unset frequency.
fn abp_rx_windows(b: &ActivateBody, profile: &DeviceProfile) -> Result<RxWindows, ApiError> {
    let region = lorikeet_region::build_region(&profile.region, &Default::default())
        .map_err(|e| ApiError::bad_request(format!("the device profile's region: {e}")))?;
    let (default_hz, default_dr) = region.rx2_default();
    let small = |field: &str, v: u32, max: u32| -> Result<u8, ApiError> {
        u8::try_from(v)
            .ok()
            .filter(|v| u32::from(*v) <= max)
            .ok_or_else(|| ApiError::bad_request(format!("{field} must be 0..={max}, got {v}")))
    };
    let rx1_delay_s = match b.rx1_delay {
        Some(0) => {
            return Err(ApiError::bad_request(
                "rx1Delay must be 1..=15 seconds, got 0",
            ))
        }
        Some(v) => small("rx1Delay", v, 15)?,
        None => profile.rx1_delay.clamp(1, 15),
    };
    let rx1_dr_offset = match b.rx1_dr_offset {
        Some(v) => small("rx1DrOffset", v, 7)?,
        None => profile.rx1_dr_offset,
    };
    let rx2_dr = match b.rx2_dr {
        Some(v) => small("rx2Dr", v, 15)?,
        None => profile.rx2_dr.unwrap_or(default_dr),
    };
    if !region
        .data_rates()
        .iter()
        .any(|e| e.dr == rx2_dr && e.direction.allows(false))
    {
        return Err(ApiError::bad_request(format!(
            "rx2Dr {rx2_dr} is not a downlink data rate of {}",
            profile.region
        )));
    }
    let rx2_frequency_hz = match b.rx2_frequency_hz {
        Some(f) => {
            let (lo, hi) = region.frequency_range_hz();
            u32::try_from(f)
                .ok()
                .filter(|f| (lo..=hi).contains(f))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "rx2FrequencyHz must be in hertz inside {}'s band {lo}..={hi}, got {f}",
                        profile.region
                    ))
                })?
        }
        None => profile.rx2_frequency_hz.unwrap_or(default_hz),
    };
    Ok(RxWindows {
        rx1_delay_s,
        rx1_dr_offset,
        rx2_dr,
        rx2_frequency_hz,
    })
}

fn activation_json(s: &DeviceSession) -> Value {
    let state: SessionState = serde_json::from_str(&s.ns_state).unwrap_or_default();
    json!({
        "devAddr": s.dev_addr,
        "appSKey": MASKED_KEY,
        "nwkSEncKey": MASKED_KEY,
        "sNwkSIntKey": MASKED_KEY,
        "fNwkSIntKey": MASKED_KEY,
        "fCntUp": s.f_cnt_up,
        "nFCntDown": s.n_f_cnt_down,
        "aFCntDown": s.a_f_cnt_down,
        "rx1Delay": state.rx1_delay_s.max(1),
        "rx1DrOffset": state.rx1_dr_offset,
        "rx2Dr": state.rx2_dr,
        "rx2FrequencyHz": state.rx2_frequency_hz,
    })
}

impl ActivateBody {
    /// The ABP session of `dev_eui`, checked against its device profile: the MAC
    /// version decides which network session keys are required, the region which
    /// receive windows are valid.
    pub(super) fn session(
        &self,
        dev_eui: Eui64,
        profile: &DeviceProfile,
    ) -> Result<DeviceSession, ApiError> {
        let b = self;
        let dev_addr = input::dev_addr("devAddr", &b.dev_addr)?;
        let app_s_key = input::key("appSKey", &b.app_s_key)?;
        let split = [&b.nwk_s_enc_key, &b.s_nwk_s_int_key, &b.f_nwk_s_int_key];
        let (f_nwk, s_nwk, nwk_enc) = if is_lorawan_1_1(&profile.mac_version) {
            if b.nwk_s_key.is_some() {
                return Err(ApiError::bad_request(format!(
                    "nwkSKey is for LoRaWAN 1.0.x; the device profile's macVersion is {}, so \
                     send nwkSEncKey, sNwkSIntKey and fNwkSIntKey",
                    profile.mac_version
                )));
            }
            let (Some(enc), Some(s_int), Some(f_int)) = (
                b.nwk_s_enc_key.as_deref(),
                b.s_nwk_s_int_key.as_deref(),
                b.f_nwk_s_int_key.as_deref(),
            ) else {
                return Err(ApiError::bad_request(format!(
                    "nwkSEncKey, sNwkSIntKey and fNwkSIntKey are all required: the device \
                     profile's macVersion is {}",
                    profile.mac_version
                )));
            };
            (
                input::key("fNwkSIntKey", f_int)?,
                input::key("sNwkSIntKey", s_int)?,
                input::key("nwkSEncKey", enc)?,
            )
        } else {
            if split.iter().any(|k| k.is_some()) {
                return Err(ApiError::bad_request(format!(
                    "nwkSEncKey, sNwkSIntKey and fNwkSIntKey are for LoRaWAN 1.1; the device \
                     profile's macVersion is {}, so send nwkSKey",
                    profile.mac_version
                )));
            }
            let Some(nwk) = b.nwk_s_key.as_deref() else {
                return Err(ApiError::bad_request(format!(
                    "nwkSKey is required: the device profile's macVersion is {}",
                    profile.mac_version
                )));
            };
            let k = input::key("nwkSKey", nwk)?;
            (k.clone(), k.clone(), k)
        };
        let rx = abp_rx_windows(b, profile)?;
        let state = SessionState {
            rx1_delay_s: rx.rx1_delay_s,
            rx1_dr_offset: rx.rx1_dr_offset,
            rx2_dr: rx.rx2_dr,
            rx2_frequency_hz: rx.rx2_frequency_hz,
            ..SessionState::default()
        };
        Ok(DeviceSession {
            dev_eui,
            dev_addr,
            mac_version: profile.mac_version.clone(),
            f_nwk_s_int_key: f_nwk,
            s_nwk_s_int_key: s_nwk,
            nwk_s_enc_key: nwk_enc,
            app_s_key,
            f_cnt_up: b.f_cnt_up,
            n_f_cnt_down: b.n_f_cnt_down,
            a_f_cnt_down: b.a_f_cnt_down,
            conf_f_cnt: 0,
            ns_state: serde_json::to_string(&state).map_err(|_| ApiError::internal())?,
            updated_at: lorikeet_storage::now(),
        })
    }
}

pub(super) async fn activate(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    let b: ActivateBody = ctx.body()?;
    let d = ctx.device(dev_eui).await?;
    let profile = ctx.profile(d.device_profile_id).await?;
    let session = b.session(dev_eui, &profile)?;
    ctx.state.storage.activate_session(&session).await?;
    ctx.state.notify(Change::SessionChanged(dev_eui));
    Ok(Out::ok(activation_json(&session)))
}

pub(super) async fn get_activation(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    ctx.device(dev_eui).await?;
    let Some(s) = ctx.state.storage.get_session(dev_eui).await? else {
        return Err(ApiError::not_found(format!(
            "device {dev_eui} is not activated (no session yet: it has not joined and was not \
             activated by ABP)"
        )));
    };
    Ok(Out::ok(activation_json(&s)))
}

/// What the `api_bodies` fuzz target checks a body as.
#[derive(Debug, Clone, Copy)]
pub(super) enum FuzzBody {
    /// `POST /devices` (a DevEUI is required).
    Create,
    /// `PUT /devices/{devEui}` (the DevEUI may be left out).
    Update,
    /// `PUT /devices/{devEui}/keys`.
    Keys,
    /// `POST /devices/{devEui}/activate`.
    Activate,
}

/// The checks the device handlers make of their body, given the device's
/// application and profile (as the handlers look them up), for the `api_bodies`
/// fuzz target. An accepted device, read back as `GET` shows it ([`device_json`])
/// and sent again as a `PUT` body, is accepted as the same device; accepted root
/// keys have a NwkKey exactly for LoRaWAN 1.1; an accepted ABP session has receive
/// windows that are valid for the profile's region.
pub(super) fn fuzz_body(
    kind: FuzzBody,
    body: &[u8],
    app: &Application,
    profile: &DeviceProfile,
) -> Result<(), ApiError> {
    let dev_eui = Eui64::from_u64(0x0102_0304_0506_0708);
    match kind {
        FuzzBody::Create | FuzzBody::Update => {
            let b: DeviceBody = input::json(body)?;
            let dev_eui = match kind {
                FuzzBody::Create => b.required_dev_eui()?,
                _ => match b.dev_eui.as_deref() {
                    Some(raw) => input::eui("devEui", raw)?,
                    None => dev_eui,
                },
            };
            let d = b.fields()?.device(dev_eui, app, profile)?;
            let shown = serde_json::to_vec(&device_json(&d)).map_err(|_| ApiError::internal())?;
            let b2: DeviceBody = input::json(&shown)?;
            assert_eq!(b2.required_dev_eui().ok(), Some(dev_eui));
            let again = b2
                .fields()
                .and_then(|f| f.device(dev_eui, app, profile))
                .unwrap_or_else(|e| {
                    panic!(
                        "GET output {} is refused as a PUT body: {e}",
                        String::from_utf8_lossy(&shown)
                    )
                });
            assert_eq!(
                Device {
                    created_at: d.created_at,
                    updated_at: d.updated_at,
                    ..again
                },
                d,
                "a device changed when its GET output was PUT back"
            );
        }
        FuzzBody::Keys => {
            let keys = input::json::<KeysBody>(body)?.root_keys(profile)?;
            assert_eq!(keys.nwk_key.is_some(), is_lorawan_1_1(&profile.mac_version));
        }
        FuzzBody::Activate => {
            let s = input::json::<ActivateBody>(body)?.session(dev_eui, profile)?;
            let state: SessionState =
                serde_json::from_str(&s.ns_state).expect("the stored session state reads back");
            let region = lorikeet_region::build_region(&profile.region, &Default::default())
                .expect("a session was made, so the region exists");
            let (lo, hi) = region.frequency_range_hz();
            assert!((1..=15).contains(&state.rx1_delay_s), "{state:?}");
            assert!(state.rx1_dr_offset <= 7, "{state:?}");
            assert!(
                region
                    .data_rates()
                    .iter()
                    .any(|e| e.dr == state.rx2_dr && e.direction.allows(false)),
                "{state:?}"
            );
            assert!(
                (lo..=hi).contains(&state.rx2_frequency_hz) || profile.rx2_frequency_hz.is_some(),
                "{state:?}"
            );
        }
    }
    Ok(())
}
