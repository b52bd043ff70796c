//! `GET /api/v1/devices/{devEui}/measurements`: a device's decoded values (written
//! by the `postgres` integration) over a time range, downsampled by the database
//! to at most `points` buckets per field.

use chrono::TimeDelta;
use lorikeet_service::integration::{is_field_name, MAX_FIELD_NAME};
use lorikeet_storage::MeasurementQuery;
use serde_json::{json, Value};

use super::Ctx;
use crate::error::ApiError;
use crate::Out;

/// The longest range one request may ask for: the longest retention.
const MAX_RANGE: TimeDelta = TimeDelta::days(3650);

/// Buckets when `points` is not given, and the most a request may ask for.
const DEFAULT_POINTS: u64 = 100;
const MAX_POINTS: u64 = 1000;

/// Field names one request may name.
const MAX_FIELDS: usize = 100;

pub(super) async fn get(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    let (from, to) = ctx.query.time_range(lorikeet_storage::now(), MAX_RANGE)?;
    let points = ctx.query.number("points", DEFAULT_POINTS, 1, MAX_POINTS)?;
    let fields = fields(ctx.query.get("field"))?;
    ctx.device(dev_eui).await?;
    let series = ctx
        .state
        .storage
        .measurement_series(&MeasurementQuery {
            dev_eui,
            from,
            to,
            buckets: u32::try_from(points).unwrap_or(1000),
            fields,
        })
        .await?;
    let series: Vec<Value> = series
        .into_iter()
        .map(|s| {
            let points: Vec<Value> = s
                .points
                .iter()
                .map(|p| {
                    json!({
                        "time": p.start,
                        "avg": p.avg,
                        "min": p.min,
                        "max": p.max,
                        "count": p.count,
                    })
                })
                .collect();
            json!({ "field": s.field, "points": points })
        })
        .collect();
    Ok(Out::ok(json!({
        "devEui": dev_eui.to_string(),
        "from": from,
        "to": to,
        "points": points,
        "series": series,
    })))
}

/// `field=a,b` (comma-separated; blank names ignored): the fields to return,
/// empty for all.
fn fields(raw: Option<&str>) -> Result<Vec<String>, ApiError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let mut out: Vec<String> = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !is_field_name(name) {
            return Err(ApiError::bad_request(format!(
                "field {name:?} is not a field name (at most {MAX_FIELD_NAME} bytes, \
                 no control characters)"
            )));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    }
    if out.len() > MAX_FIELDS {
        return Err(ApiError::bad_request(format!(
            "field may name at most {MAX_FIELDS} fields, got {}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::fields;

    #[test]
    fn field_lists() {
        assert_eq!(fields(None).unwrap(), Vec::<String>::new());
        assert_eq!(
            fields(Some(" temperature, humidity,,temperature ")).unwrap(),
            ["temperature", "humidity"]
        );
        assert_eq!(fields(Some(",")).unwrap(), Vec::<String>::new());
        assert!(fields(Some("a\u{0}b")).is_err());
        assert!(fields(Some(&"x".repeat(300))).is_err());
        let many: Vec<String> = (0..101).map(|i| format!("f{i}")).collect();
        assert!(fields(Some(&many.join(","))).is_err());
    }
}
