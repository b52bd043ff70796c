//! Bulk import: `POST /api/v1/devices/import` creates or updates up to
//! [`MAX_IMPORT_ROWS`] devices, with their root keys and ABP activation, all or
//! nothing. Each row is checked by the same functions as the single-device
//! endpoints (`devices.rs`); every bad row is named before anything is written,
//! then the whole import is one provisioning transaction.

use std::collections::HashMap;

use lorikeet_lorawan::Eui64;
use lorikeet_storage::{
    Application, Change, DeviceProfile, ImportOutcome, ImportRefusal, ImportRow,
};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;
use warp::http::StatusCode;

use super::devices::{ActivateBody, DeviceBody, DeviceFields, KeysBody};
use super::Ctx;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::Out;

/// The most devices one import takes.
pub const MAX_IMPORT_ROWS: usize = 10_000;

#[derive(Deserialize)]
struct ImportBody {
    /// Parsed one by one, so a malformed row is named rather than failing the body.
    devices: Vec<Value>,
}

/// One row: the body of `POST /devices`, with the bodies of `PUT .../keys` and
/// `POST .../activate` beside it.
#[derive(Deserialize)]
struct RowBody {
    #[serde(flatten)]
    device: DeviceBody,
    keys: Option<KeysBody>,
    activation: Option<ActivateBody>,
}

/// A bad row: its index in `devices` and why.
struct BadRow {
    index: usize,
    error: String,
}

/// Applications and profiles already looked up (an import names a few, many times).
#[derive(Default)]
struct Lookups {
    applications: HashMap<Uuid, Result<Application, ApiError>>,
    profiles: HashMap<Uuid, Result<DeviceProfile, ApiError>>,
}

impl Lookups {
    async fn application(&mut self, ctx: &Ctx<'_>, id: Uuid) -> Result<Application, ApiError> {
        if let Some(a) = self.applications.get(&id) {
            return a.clone();
        }
        let a = ctx.application(id).await;
        self.applications.insert(id, a.clone());
        a
    }

    async fn profile(&mut self, ctx: &Ctx<'_>, id: Uuid) -> Result<DeviceProfile, ApiError> {
        if let Some(p) = self.profiles.get(&id) {
            return p.clone();
        }
        let p = ctx.profile(id).await;
        self.profiles.insert(id, p.clone());
        p
    }
}

pub(super) async fn import(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let body: ImportBody = ctx.body()?;
    let total = body.devices.len();
    if total > MAX_IMPORT_ROWS {
        return Err(ApiError::bad_request(format!(
            "an import takes at most {MAX_IMPORT_ROWS} devices, got {total}; split it into \
             several requests"
        )));
    }
    let mut rows = Vec::with_capacity(total);
    // The index in `devices` of each row in `rows`.
    let mut index_of = Vec::with_capacity(total);
    let mut bad = Vec::new();
    let mut first_row: HashMap<Eui64, usize> = HashMap::with_capacity(total);
    let mut lookups = Lookups::default();
    for (index, raw) in body.devices.into_iter().enumerate() {
        match check_row(ctx, &mut lookups, &mut first_row, index, raw).await {
            Ok(row) => {
                rows.push(row);
                index_of.push(index);
            }
            Err(e) => bad.push(BadRow {
                index,
                error: e.message,
            }),
        }
    }
    let refused = if bad.is_empty() {
        match ctx.state.storage.import_devices(&rows).await? {
            ImportOutcome::Imported(counts) => {
                for r in &rows {
                    let dev_eui = r.device.dev_eui;
                    ctx.state.notify(Change::DeviceChanged(dev_eui));
                    if r.keys.is_some() {
                        ctx.state.notify(Change::DeviceKeysChanged(dev_eui));
                    }
                    if r.session.is_some() {
                        ctx.state.notify(Change::SessionChanged(dev_eui));
                    }
                }
                return Ok(Out::ok(json!({
                    "created": counts.created,
                    "updated": counts.updated,
                })));
            }
            ImportOutcome::Refused(refused) => refused,
        }
    } else {
        // Nothing is written, but the answer names every bad row.
        ctx.state.storage.import_refusals(&rows).await?
    };
    for r in refused {
        bad.push(BadRow {
            index: index_of.get(r.row).copied().unwrap_or_default(),
            error: refusal_message(&ctx.principal, &r),
        });
    }
    bad.sort_by_key(|b| b.index);
    let error = format!(
        "{} of {total} devices {} invalid; nothing was imported (the rows say why)",
        bad.len(),
        if bad.len() == 1 { "is" } else { "are" }
    );
    let rows: Vec<Value> = bad
        .into_iter()
        .map(|b| json!({"index": b.index, "error": b.error}))
        .collect();
    Ok(Out::Json(
        StatusCode::BAD_REQUEST,
        json!({"error": error, "rows": rows}),
    ))
}

/// Checks one row as the single-device endpoints check their bodies, the keys and
/// activation against the row's own device profile.
async fn check_row(
    ctx: &Ctx<'_>,
    lookups: &mut Lookups,
    first_row: &mut HashMap<Eui64, usize>,
    index: usize,
    raw: Value,
) -> Result<ImportRow, ApiError> {
    let row = parse_row(first_row, index, raw)?;
    let app = lookups.application(ctx, row.fields.application_id).await?;
    let profile = lookups.profile(ctx, row.fields.device_profile_id).await?;
    row.finish(&app, &profile)
}

/// A row whose own fields are valid; its application and profile are still to be
/// looked up.
struct ParsedRow {
    dev_eui: Eui64,
    fields: DeviceFields,
    keys: Option<KeysBody>,
    activation: Option<ActivateBody>,
}

/// The checks of a row that need no lookup (the DevEUI must not be in an earlier row).
fn parse_row(
    first_row: &mut HashMap<Eui64, usize>,
    index: usize,
    raw: Value,
) -> Result<ParsedRow, ApiError> {
    if !raw.is_object() {
        return Err(ApiError::bad_request(format!(
            "each device must be a JSON object, got {}",
            kind_of(&raw)
        )));
    }
    let row: RowBody = serde_json::from_value(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid device: {e}")))?;
    let dev_eui = row.device.required_dev_eui()?;
    if let Some(first) = first_row.get(&dev_eui) {
        return Err(ApiError::bad_request(format!(
            "devEui {dev_eui} is already in row {first}; each device may appear once"
        )));
    }
    first_row.insert(dev_eui, index);
    Ok(ParsedRow {
        dev_eui,
        fields: row.device.fields()?,
        keys: row.keys,
        activation: row.activation,
    })
}

impl ParsedRow {
    /// The row, given its application and profile (visible to the caller).
    fn finish(self, app: &Application, profile: &DeviceProfile) -> Result<ImportRow, ApiError> {
        let dev_eui = self.dev_eui;
        let device = self.fields.device(dev_eui, app, profile)?;
        let keys = self
            .keys
            .map(|k| k.root_keys(profile))
            .transpose()
            .map_err(|e| within("keys", e))?;
        let session = self
            .activation
            .map(|a| a.session(dev_eui, profile))
            .transpose()
            .map_err(|e| within("activation", e))?;
        Ok(ImportRow {
            device,
            keys,
            session,
        })
    }
}

/// The checks [`import`] makes of its body and of each row, with every row's
/// application and profile given (as the lookups would find them), for the
/// `api_bodies` fuzz target: the indexes of the bad rows, or the body's error.
pub(super) fn fuzz_body(
    body: &[u8],
    app: &Application,
    profile: &DeviceProfile,
) -> Result<Vec<usize>, ApiError> {
    let body: ImportBody = crate::input::json(body)?;
    if body.devices.len() > MAX_IMPORT_ROWS {
        return Err(ApiError::bad_request("too many devices"));
    }
    let mut first_row = HashMap::new();
    let mut bad = Vec::new();
    for (index, raw) in body.devices.into_iter().enumerate() {
        if let Err(e) = parse_row(&mut first_row, index, raw).and_then(|r| r.finish(app, profile)) {
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "row {index}: {e}");
            bad.push(index);
        }
    }
    Ok(bad)
}

/// An error of a row's nested object, named by it.
fn within(what: &str, e: ApiError) -> ApiError {
    ApiError::bad_request(format!("{what}: {}", e.message))
}

/// Why a device of another tenant is refused. A tenant key learns that the DevEUI
/// is taken (as `POST /devices` tells it with 409), not by whom.
fn refusal_message(principal: &Principal, r: &ImportRefusal) -> String {
    match principal {
        Principal::Admin => format!(
            "device {} already exists in tenant {}; an import does not move devices between \
             tenants (delete it there first)",
            r.dev_eui, r.tenant_id
        ),
        Principal::Tenant(_) | Principal::User(_) => {
            format!("device {} already exists in another tenant", r.dev_eui)
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
