//! The `postgres` integration: each `up` event with a decoded `object` becomes rows
//! of Lorikeet's own `measurements` table (on Postgres or SQLite alike), one per
//! numeric field, for the console's charts (`GET /api/v1/devices/{devEui}/measurements`).
//!
//! Fields are named as the InfluxDB integration names them
//! (`lorikeet_service::integration::flatten_object`); numbers are kept, booleans
//! become 0 and 1, strings and nulls are skipped. The row time is the uplink's
//! receive time (the event's `time`). Other events, uplinks without an object
//! and uplinks already older than the retention (the upkeep would delete them)
//! have nothing to write and count as delivered.
//!
//! The event id is part of each row's key, so a retried delivery writes nothing
//! twice. Writes go through the storage like any other upkeep write, never on
//! the uplink path.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lorikeet_service::integration::{flatten_object, is_field_name, FieldValue, PostgresConfig};
use lorikeet_storage::{Integration, MeasurementBatch, Storage};
use uuid::Uuid;

use crate::error::{DeliveryError, TargetError};
use crate::sink::{Out, Sending, Sink};

/// A `postgres` integration's sink.
pub(crate) struct MeasurementSink {
    storage: Arc<dyn Storage>,
    application_id: Uuid,
    retention: TimeDelta,
}

impl fmt::Debug for MeasurementSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeasurementSink")
            .field("application_id", &self.application_id)
            .field("retention_days", &self.retention.num_days())
            .finish()
    }
}

impl MeasurementSink {
    /// Parses and checks the integration's settings.
    pub(crate) fn new(i: &Integration, storage: Arc<dyn Storage>) -> Result<Self, TargetError> {
        let config: PostgresConfig = serde_json::from_value(i.config.clone())
            .map_err(|e| TargetError::Config(e.to_string()))?;
        config.check().map_err(TargetError::Config)?;
        Ok(MeasurementSink {
            storage,
            application_id: i.application_id,
            retention: TimeDelta::days(i64::from(config.retention_days)),
        })
    }
}

/// What one `up` event stores.
#[derive(Debug, PartialEq)]
pub(crate) struct UpFields {
    /// The uplink's receive time.
    time: DateTime<Utc>,
    /// (flattened name, value).
    fields: Vec<(String, f64)>,
}

/// The rows of one `up` event body; `None` when it has no decoded object or no
/// time.
pub(crate) fn numeric_fields(body: &serde_json::Value) -> Option<UpFields> {
    let object = body.get("object").filter(|o| o.is_object())?;
    let time = body
        .get("time")
        .and_then(serde_json::Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())?
        .with_timezone(&Utc);
    let fields = flatten_object(object)
        .into_iter()
        .filter(|(name, _)| is_field_name(name))
        .filter_map(|(name, v)| match v {
            FieldValue::Number(f) => Some((name, f)),
            FieldValue::Bool(b) => Some((name, if b { 1.0 } else { 0.0 })),
            FieldValue::Text(_) => None,
        })
        .collect();
    Some(UpFields { time, fields })
}

impl Sink for MeasurementSink {
    fn send(&self, out: Out, timeout: Duration) -> Sending {
        let rows = if out.kind == "up" {
            serde_json::from_slice(&out.body)
                .ok()
                .and_then(|body| numeric_fields(&body))
        } else {
            None
        };
        let storage = self.storage.clone();
        let (application_id, retention) = (self.application_id, self.retention);
        Box::pin(async move {
            let Some(UpFields { time, fields }) = rows else {
                return Ok(());
            };
            if fields.is_empty() || time < Utc::now() - retention {
                return Ok(());
            }
            let batch = MeasurementBatch {
                application_id,
                dev_eui: out.dev_eui,
                time,
                event_id: out.event_id,
                fields,
            };
            let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            // Dropped at the timeout, the transaction rolls back: the retry writes it all.
            match tokio::time::timeout(timeout, storage.write_measurements(&batch)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(DeliveryError::Storage(e.to_string())),
                Err(_) => Err(DeliveryError::Timeout { timeout_ms }),
            }
        })
    }

    fn describe(&self) -> String {
        format!("measurements of application {}", self.application_id)
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_booleans_are_kept() {
        let body = json!({
            "time": "2026-12-07T12:00:00.5Z",
            "object": {"temperatureSensor": {"1": 21.5}, "door": "open", "ok": true,
                       "off": false, "list": [1, 2], "none": null, "bad\u{0}": 1}
        });
        let UpFields { time, fields } = numeric_fields(&body).unwrap();
        assert_eq!(time.to_rfc3339(), "2026-12-07T12:00:00.500+00:00");
        assert_eq!(
            fields,
            [
                ("list_0".to_owned(), 1.0),
                ("list_1".to_owned(), 2.0),
                ("off".to_owned(), 0.0),
                ("ok".to_owned(), 1.0),
                ("temperatureSensor_1".to_owned(), 21.5),
            ]
        );
        assert_eq!(
            numeric_fields(&json!({"time": "2026-12-07T12:00:00Z"})),
            None
        );
        assert_eq!(
            numeric_fields(&json!({"time": "yesterday", "object": {"a": 1}})),
            None
        );
        assert_eq!(
            numeric_fields(&json!({"time": "2026-12-07T12:00:00Z", "object": [1]})),
            None
        );
    }
}
