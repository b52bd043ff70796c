//! Settings of the broker integrations (issue 22), checked in one place: the API
//! checks a body with them before storing it, and the delivery engine parses the
//! stored settings with them when it builds the integration's sink.
//!
//! Subject, topic and routing-key templates may use `{applicationId}`, `{devEui}`
//! and `{event}`.

use lorikeet_lorawan::Eui64;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 3] = ["{applicationId}", "{devEui}", "{event}"];

/// The default NATS subject: one subject per application, device and event type.
pub const DEFAULT_NATS_SUBJECT: &str = "lorikeet.{applicationId}.{devEui}.{event}";

/// Longest template accepted.
const MAX_TEMPLATE: usize = 256;

/// Settings of a NATS JetStream integration (`POST …/integrations/nats`).
///
/// A password given in the URL is moved into `password` before the settings are
/// stored (sealed like every secret, never shown by `GET`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NatsConfig {
    /// `nats://[user@]host[:port]` or `tls://…` (the port defaults to 4222).
    pub url: String,
    /// Subject template (default [`DEFAULT_NATS_SUBJECT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Subject to take downlink commands from (may use `{applicationId}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_subject: Option<String>,
    /// Require TLS (also implied by a `tls://` URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
    /// The password of the URL's user (write-only in the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A token instead of user and password (write-only in the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// A checked NATS URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsAddress {
    /// Host name or IP literal.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS required.
    pub tls: bool,
    /// The user, if the URL names one.
    pub user: Option<String>,
}

/// Moves the password of `url` out of it (the URL keeps the user name).
pub fn take_url_password(url: &mut String) -> Result<Option<String>, String> {
    let mut u = url::Url::parse(url.trim())
        .map_err(|e| format!("url {:?} is not a valid URL: {e}", redact(url)))?;
    let Some(p) = u.password() else {
        return Ok(None);
    };
    let p = percent_decode(p)?;
    // Only URLs without a host cannot lose their password; check() refuses those.
    let _ = u.set_password(None);
    *url = u.to_string();
    Ok(Some(p))
}

impl NatsConfig {
    /// Checks the URL and the templates; the address to connect to.
    pub fn check(&self) -> Result<NatsAddress, String> {
        let url = url::Url::parse(self.url.trim())
            .map_err(|e| format!("url {:?} is not a valid URL: {e}", redact(&self.url)))?;
        let tls = match url.scheme() {
            "nats" => self.tls.unwrap_or(false),
            "tls" => true,
            _ => {
                return Err(format!(
                    "url {:?} must start with nats:// or tls://",
                    redact(&self.url)
                ))
            }
        };
        if url.password().is_some() {
            // The API moves it into `password` first (take_url_password).
            return Err("url: give the password as password, not in the URL".into());
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("url {:?} needs a host, e.g. nats://broker:4222", self.url))?;
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(format!("url {:?}: only nats://[user@]host:port", self.url));
        }
        let user = match url.username() {
            "" => None,
            u => Some(percent_decode(u)?),
        };
        if self.token.is_some() && user.is_some() {
            return Err("give either a user (and password) or a token, not both".into());
        }
        if self.password.is_some() && user.is_none() {
            return Err(
                "password needs a user in the URL, e.g. nats://lorikeet@broker:4222".into(),
            );
        }
        for (field, v) in [("password", &self.password), ("token", &self.token)] {
            if v.as_deref().is_some_and(|v| v.is_empty() || v.len() > 1024) {
                return Err(format!("{field} must have 1 to 1024 bytes"));
            }
        }
        if let Some(s) = &self.subject {
            check_subject("subject", s, false)?;
        }
        if let Some(s) = &self.command_subject {
            check_subject("commandSubject", s, true)?;
            if s.contains("{devEui}") || s.contains("{event}") {
                return Err(
                    "commandSubject may use {applicationId} only (the device is named in each command)"
                        .into(),
                );
            }
        }
        Ok(NatsAddress {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: url.port().unwrap_or(4222),
            tls,
            user,
        })
    }

    /// The subject commands are read from, if any.
    pub fn command_subject_for(&self, application_id: Uuid) -> Option<String> {
        self.command_subject
            .as_deref()
            .map(|s| s.replace("{applicationId}", &application_id.to_string()))
    }

    /// The subject of one event.
    pub fn subject_for(&self, application_id: Uuid, dev_eui: Eui64, event: &str) -> String {
        render(
            self.subject.as_deref().unwrap_or(DEFAULT_NATS_SUBJECT),
            application_id,
            dev_eui,
            event,
        )
    }
}

/// Fills in a template.
pub fn render(template: &str, application_id: Uuid, dev_eui: Eui64, event: &str) -> String {
    template
        .replace("{applicationId}", &application_id.to_string())
        .replace("{devEui}", &dev_eui.to_string())
        .replace("{event}", event)
}

/// A NATS subject template: dot-separated tokens of printable characters without
/// spaces, placeholders only among [`PLACEHOLDERS`]; wildcards (`*`, `>`) only where
/// subscribing (`wildcards`).
fn check_subject(field: &str, template: &str, wildcards: bool) -> Result<(), String> {
    let rest = placeholders_filled(field, template)?;
    for token in rest.split('.') {
        if token.is_empty() {
            return Err(format!(
                "{field} {template:?} has an empty token (\"..\", or a dot at an end)"
            ));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{field} {template:?} contains a space or control character"
            ));
        }
        let wild = token == "*" || token == ">";
        if (wild && !wildcards) || (!wild && token.contains(['*', '>'])) {
            return Err(format!(
                "{field} {template:?}: wildcards (* and >) are not allowed here"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nats(url: &str, subject: Option<&str>) -> NatsConfig {
        NatsConfig {
            url: url.into(),
            subject: subject.map(Into::into),
            command_subject: None,
            tls: None,
            password: None,
            token: None,
        }
    }

    #[test]
    fn nats_settings() {
        let a = nats("nats://broker.example.com", None).check().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("broker.example.com", 4222));
        let c = nats("nats://10.0.0.1:4333", Some("iot.{devEui}.{event}"));
        assert_eq!(c.check().unwrap().port, 4333);
        let app = Uuid::from_u128(7);
        let dev = Eui64::from_u64(0x0102);
        assert_eq!(c.subject_for(app, dev, "up"), "iot.0000000000000102.up");
        assert_eq!(
            nats("nats://h", None).subject_for(app, dev, "join"),
            format!("lorikeet.{app}.0000000000000102.join")
        );
        for (cfg, needle) in [
            (nats("http://h", None), "nats://"),
            (nats("nats://u:p@h", None), "password"),
            (nats("nats://", None), "host"),
            (nats("nats://h/x", None), "only nats://[user@]host:port"),
            (nats("nats://h", Some("a..b")), "empty token"),
            (nats("nats://h", Some("a.{dev}")), "unknown placeholder"),
            (nats("nats://h", Some("a.*")), "wildcards"),
            (nats("nats://h", Some("a b")), "space"),
            (nats("nats://h", Some("")), "1 to"),
        ] {
            let e = cfg.check().unwrap_err();
            assert!(e.contains(needle), "{cfg:?}: {e}");
        }
        let a = nats("tls://u@h:4443", None).check().unwrap();
        assert!(a.tls);
        assert_eq!((a.user.as_deref(), a.port), (Some("u"), 4443));
        let mut url = "nats://lk:s%40cret@h".to_owned();
        assert_eq!(
            take_url_password(&mut url).unwrap().as_deref(),
            Some("s@cret")
        );
        assert_eq!(url, "nats://lk@h");
        let token_and_user = NatsConfig {
            token: Some("t".into()),
            ..nats("nats://u@h", None)
        };
        assert!(token_and_user.check().unwrap_err().contains("not both"));
        let password_alone = NatsConfig {
            password: Some("p".into()),
            ..nats("nats://h", None)
        };
        assert!(password_alone.check().unwrap_err().contains("needs a user"));
        let mut with_commands = nats("nats://h", None);
        with_commands.command_subject = Some("lorikeet.*.*.command".into());
        assert!(with_commands.check().is_ok());
    }
}

/// Settings of an InfluxDB integration (`POST …/integrations/influxdb`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InfluxConfig {
    /// `http(s)://host:port` of the server.
    pub url: String,
    /// 1 (`/write`, database + retention policy) or 2 (`/api/v2/write`, org + bucket).
    pub version: u8,
    /// v1: the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// v1: the retention policy (default: the database's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<String>,
    /// v2: the organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// v2: the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// v2: the API token (write-only in the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// v1: user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// v1: password (write-only in the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The measurement's name (default `device_frame`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<String>,
}

/// The measurement when none is configured.
pub const DEFAULT_MEASUREMENT: &str = "device_frame";

impl InfluxConfig {
    /// Checks the settings; the URL to write to.
    pub fn check(&self) -> Result<url::Url, String> {
        let base = url::Url::parse(self.url.trim())
            .map_err(|e| format!("url {:?} is not a valid URL: {e}", self.url))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none_or(str::is_empty) {
            return Err(format!(
                "url {:?} must be http:// or https:// with a host, e.g. http://influx:8086",
                self.url
            ));
        }
        if !base.username().is_empty() || base.password().is_some() || base.query().is_some() {
            return Err(
                "url: give credentials as username/password or token, not in the URL".into(),
            );
        }
        let name = |field: &str, v: &Option<String>| -> Result<Option<String>, String> {
            match v {
                Some(s) if s.trim().is_empty() || s.len() > 256 || s.contains(['\0', '\n']) => Err(
                    format!("{field} must have 1 to 256 characters and no line breaks"),
                ),
                other => Ok(other.clone()),
            }
        };
        let mut url = base.clone();
        let path = format!("{}/", base.path().trim_end_matches('/'));
        match self.version {
            1 => {
                let db = name("database", &self.database)?.ok_or("version 1 needs database")?;
                if self.org.is_some() || self.bucket.is_some() || self.token.is_some() {
                    return Err("org, bucket and token are for version 2".into());
                }
                if self.password.is_some() && self.username.is_none() {
                    return Err("password needs a username".into());
                }
                url.set_path(&format!("{path}write"));
                let mut q = url.query_pairs_mut();
                q.append_pair("db", &db).append_pair("precision", "ns");
                if let Some(rp) = name("retentionPolicy", &self.retention_policy)? {
                    q.append_pair("rp", &rp);
                }
            }
            2 => {
                let org = name("org", &self.org)?.ok_or("version 2 needs org")?;
                let bucket = name("bucket", &self.bucket)?.ok_or("version 2 needs bucket")?;
                name("token", &self.token)?.ok_or("version 2 needs token")?;
                if self.database.is_some() || self.retention_policy.is_some() {
                    return Err("database and retentionPolicy are for version 1".into());
                }
                url.set_path(&format!("{path}api/v2/write"));
                url.query_pairs_mut()
                    .append_pair("org", &org)
                    .append_pair("bucket", &bucket)
                    .append_pair("precision", "ns");
            }
            v => return Err(format!("version {v} is not 1 or 2")),
        }
        name("username", &self.username)?;
        if let Some(m) = &self.measurement {
            if m.is_empty() || m.len() > 128 || m.chars().any(char::is_control) {
                return Err("measurement must have 1 to 128 printable characters".into());
            }
        }
        Ok(url)
    }
}

/// A leaf of a decoded `object` ([`flatten_object`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// A finite number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Text(&'a str),
}

/// The leaves of a decoded `object`, each named by its path joined with `_`
/// (`{"a": {"b": 1}, "l": [2, 3]}` gives `a_b`, `l_0`, `l_1`), in key order.
/// Nulls and non-finite numbers are left out. The naming every integration that
/// stores fields one by one (InfluxDB, the measurements table) shares.
pub fn flatten_object(object: &serde_json::Value) -> Vec<(String, FieldValue<'_>)> {
    use serde_json::Value;
    fn walk<'a>(prefix: &str, v: &'a Value, out: &mut Vec<(String, FieldValue<'a>)>) {
        let key = |k: &str| {
            if prefix.is_empty() {
                k.to_owned()
            } else {
                format!("{prefix}_{k}")
            }
        };
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    walk(&key(k), v, out);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(&key(&i.to_string()), v, out);
                }
            }
            Value::Number(n) => {
                if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
                    out.push((prefix.to_owned(), FieldValue::Number(f)));
                }
            }
            Value::Bool(b) => out.push((prefix.to_owned(), FieldValue::Bool(*b))),
            Value::String(s) => out.push((prefix.to_owned(), FieldValue::Text(s))),
            Value::Null => {}
        }
    }
    let mut out = Vec::new();
    walk("", object, &mut out);
    out
}

/// An `up` event as one InfluxDB line: the measurement; tags `devEui`,
/// `application`, `deviceName`, `fPort`; every decoded `object` field (flattened by
/// [`flatten_object`]: numbers as floats, booleans, strings) plus `rssi`, `snr`
/// (best reception) and `fCnt`; the event's time in ns. `None` for other events
/// and for uplinks without a decoded object.
pub fn up_event_line(measurement: &str, body: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let object = body.get("object").filter(|o| o.is_object())?;
    let info = body.get("deviceInfo")?;
    let mut fields: Vec<(String, String)> = flatten_object(object)
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                FieldValue::Number(f) => format!("{f:?}"),
                FieldValue::Bool(b) => b.to_string(),
                FieldValue::Text(s) => {
                    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
                }
            };
            (k, v)
        })
        .collect();
    let best = body.get("rxInfo").and_then(Value::as_array).and_then(|rx| {
        rx.iter().max_by(|a, b| {
            let r = |v: &Value| v.get("rssi").and_then(Value::as_f64).unwrap_or(f64::MIN);
            r(a).total_cmp(&r(b))
        })
    });
    if let Some(r) = best.and_then(|b| b.get("rssi")).and_then(Value::as_i64) {
        fields.push(("rssi".into(), format!("{r}i")));
    }
    if let Some(s) = best.and_then(|b| b.get("snr")).and_then(Value::as_f64) {
        fields.push(("snr".into(), format!("{s:?}")));
    }
    if let Some(f) = body.get("fCnt").and_then(Value::as_u64) {
        fields.push(("fCnt".into(), format!("{f}i")));
    }
    if fields.is_empty() {
        return None;
    }
    let tag = |s: &str| escape(s, &[',', '=', ' ']);
    let mut line = escape(measurement, &[',', ' ']);
    for (k, v) in [
        ("devEui", info.get("devEui")),
        ("application", info.get("applicationName")),
        ("deviceName", info.get("deviceName")),
    ] {
        if let Some(v) = v.and_then(Value::as_str).filter(|s| !s.is_empty()) {
            line.push_str(&format!(",{k}={}", tag(v)));
        }
    }
    if let Some(p) = body.get("fPort").and_then(Value::as_u64) {
        line.push_str(&format!(",fPort={p}"));
    }
    line.push(' ');
    line.push_str(
        &fields
            .iter()
            .map(|(k, v)| format!("{}={v}", tag(k)))
            .collect::<Vec<_>>()
            .join(","),
    );
    let ns = body
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| t.timestamp_nanos_opt());
    if let Some(ns) = ns {
        line.push_str(&format!(" {ns}"));
    }
    Some(line)
}

/// Backslash-escapes `chars` (and backslashes before them) for line protocol.
fn escape(s: &str, chars: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if chars.contains(&c) {
            out.push('\\');
        }
        // Line breaks cannot be escaped in line protocol: they end the line.
        out.push(if c == '\n' || c == '\r' { ' ' } else { c });
    }
    out
}

#[cfg(test)]
mod influx_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn up_events_become_lines() {
        let body = json!({
            "time": "2026-12-07T12:00:00.5Z", "fCnt": 7, "fPort": 2,
            "deviceInfo": {"devEui": "0102030405060708", "applicationName": "cold rooms",
                           "deviceName": "room=1"},
            "object": {"temperatureSensor": {"1": 21.5}, "door": "open \"A\"", "ok": true,
                       "list": [1, 2], "none": null},
            "rxInfo": [{"rssi": -90, "snr": 1.5}, {"rssi": -60, "snr": 9.0}]
        });
        let line = up_event_line("device_frame", &body).unwrap();
        assert_eq!(
            line,
            "device_frame,devEui=0102030405060708,application=cold\\ rooms,deviceName=room\\=1,fPort=2 \
             door=\"open \\\"A\\\"\",list_0=1.0,list_1=2.0,ok=true,temperatureSensor_1=21.5,\
             rssi=-60i,snr=9.0,fCnt=7i 1796644800500000000"
        );
        assert_eq!(
            up_event_line("m", &json!({"deviceInfo": {}})),
            None,
            "no object"
        );
    }

    #[test]
    fn influx_settings() {
        let v1 = InfluxConfig {
            url: "http://influx:8086".into(),
            version: 1,
            database: Some("lora".into()),
            retention_policy: Some("week".into()),
            org: None,
            bucket: None,
            token: None,
            username: None,
            password: None,
            measurement: None,
        };
        assert_eq!(
            v1.check().unwrap().as_str(),
            "http://influx:8086/write?db=lora&precision=ns&rp=week"
        );
        let v2 = InfluxConfig {
            version: 2,
            database: None,
            retention_policy: None,
            org: Some("acme".into()),
            bucket: Some("b".into()),
            token: Some("t".into()),
            ..v1.clone()
        };
        assert_eq!(
            v2.check().unwrap().as_str(),
            "http://influx:8086/api/v2/write?org=acme&bucket=b&precision=ns"
        );
        for (c, needle) in [
            (
                InfluxConfig {
                    database: None,
                    ..v1.clone()
                },
                "needs database",
            ),
            (
                InfluxConfig {
                    version: 3,
                    ..v1.clone()
                },
                "not 1 or 2",
            ),
            (
                InfluxConfig {
                    token: None,
                    ..v2.clone()
                },
                "needs token",
            ),
            (
                InfluxConfig {
                    url: "influx:8086".into(),
                    ..v1.clone()
                },
                "http",
            ),
            (
                InfluxConfig {
                    password: Some("p".into()),
                    ..v1.clone()
                },
                "needs a username",
            ),
            (
                InfluxConfig {
                    org: Some("o".into()),
                    ..v1.clone()
                },
                "version 2",
            ),
        ] {
            let e = c.check().unwrap_err();
            assert!(e.contains(needle), "{c:?}: {e}");
        }
    }
}

/// The longest retention a `postgres` integration may ask for (ten years).
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// The longest field name the measurements table keeps, in bytes.
pub const MAX_FIELD_NAME: usize = 256;

/// Whether a flattened field name can be stored and asked for by name: 1 to
/// [`MAX_FIELD_NAME`] bytes without control characters (Postgres text cannot hold
/// NUL, and an index entry has a size limit). The sink skips other fields, the
/// API refuses to look for them.
pub fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_FIELD_NAME && !name.chars().any(char::is_control)
}

/// Settings of a `postgres` integration (`POST …/integrations/postgres`): decoded
/// measurements into Lorikeet's own database, kept `retention_days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostgresConfig {
    /// How long rows are kept, 1 to [`MAX_RETENTION_DAYS`] days.
    pub retention_days: u32,
}

impl PostgresConfig {
    /// Checks the retention.
    pub fn check(&self) -> Result<(), String> {
        if (1..=MAX_RETENTION_DAYS).contains(&self.retention_days) {
            Ok(())
        } else {
            Err(format!(
                "retentionDays must be a whole number from 1 to {MAX_RETENTION_DAYS}, got {}",
                self.retention_days
            ))
        }
    }
}

#[cfg(test)]
mod postgres_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_flatten_to_named_leaves() {
        let o = json!({"a": {"b": 1, "c": [true, null, "x"]}, "n": 2.5, "z": null});
        assert_eq!(
            flatten_object(&o),
            [
                ("a_b".to_owned(), FieldValue::Number(1.0)),
                ("a_c_0".to_owned(), FieldValue::Bool(true)),
                ("a_c_2".to_owned(), FieldValue::Text("x")),
                ("n".to_owned(), FieldValue::Number(2.5)),
            ]
        );
    }

    #[test]
    fn field_names() {
        assert!(is_field_name("temperatureSensor_1"));
        assert!(is_field_name(&"x".repeat(MAX_FIELD_NAME)));
        for bad in ["", "a\u{0}b", "line\nbreak"] {
            assert!(!is_field_name(bad), "{bad:?}");
        }
        assert!(!is_field_name(&"x".repeat(MAX_FIELD_NAME + 1)));
    }

    #[test]
    fn postgres_settings() {
        let parse = |v: serde_json::Value| serde_json::from_value::<PostgresConfig>(v);
        assert!(parse(json!({"retentionDays": 30})).unwrap().check().is_ok());
        assert!(parse(json!({"retentionDays": 3650}))
            .unwrap()
            .check()
            .is_ok());
        for bad in [0, 3651] {
            let e = parse(json!({ "retentionDays": bad }))
                .unwrap()
                .check()
                .unwrap_err();
            assert!(e.contains("1 to 3650"), "{e}");
        }
        for body in [
            json!({}),
            json!({"retentionDays": 30, "extra": 1}),
            json!({"retentionDays": "30"}),
            json!({"retentionDays": -1}),
            json!({"retentionDays": 1.5}),
        ] {
            assert!(parse(body.clone()).is_err(), "{body}");
        }
    }
}

/// The default AMQP routing key.
pub const DEFAULT_AMQP_ROUTING_KEY: &str =
    "application.{applicationId}.device.{devEui}.event.{event}";

/// Settings of a RabbitMQ (AMQP 0-9-1) integration (`POST …/integrations/amqp`).
///
/// A password given in the URL is moved into `password` before the settings are
/// stored, so it is sealed like every other secret and never shown by `GET`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmqpConfig {
    /// `amqp://user@host:port/vhost` or `amqps://…` (port 5672 / 5671 by default).
    pub url: String,
    /// The exchange events are published to (it must exist).
    pub exchange: String,
    /// Routing-key template (default [`DEFAULT_AMQP_ROUTING_KEY`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    /// A queue to take downlink commands from (it must exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_queue: Option<String>,
    /// The password (write-only in the API; may be given in the URL instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A checked AMQP URL, without its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpAddress {
    /// `amqps`.
    pub tls: bool,
    /// Host name or IP literal.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Virtual host (`/` by default).
    pub vhost: String,
    /// User name (`guest` when the URL has none, as RabbitMQ's clients do).
    pub username: String,
}

impl AmqpConfig {
    /// Moves a password in the URL into `password` (the URL keeps the user name).
    pub fn take_url_password(&mut self) -> Result<(), String> {
        if let Some(p) = take_url_password(&mut self.url)? {
            self.password = Some(p);
        }
        Ok(())
    }

    /// Checks the URL, exchange and templates; the address to connect to.
    pub fn check(&self) -> Result<AmqpAddress, String> {
        let url = url::Url::parse(self.url.trim())
            .map_err(|e| format!("url {:?} is not a valid URL: {e}", redact(&self.url)))?;
        let tls = match url.scheme() {
            "amqp" => false,
            "amqps" => true,
            _ => {
                return Err(format!(
                    "url {:?} must start with amqp:// or amqps://",
                    redact(&self.url)
                ))
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| "url needs a host, e.g. amqp://user@rabbitmq:5672/%2f".to_owned())?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err("url: query parameters are not supported".into());
        }
        let path = url.path();
        let vhost = match path.strip_prefix('/').unwrap_or(path) {
            "" => "/".to_owned(),
            v if v.contains('/') => {
                return Err(format!(
                    "url path {path:?}: the virtual host is one path segment (encode / as %2f)"
                ))
            }
            v => percent_decode(v)?,
        };
        let username = if url.username().is_empty() {
            "guest".to_owned()
        } else {
            percent_decode(url.username())?
        };
        check_amqp_name("exchange", &self.exchange)?;
        if let Some(q) = &self.command_queue {
            check_amqp_name("commandQueue", q)?;
        }
        if let Some(k) = &self.routing_key {
            check_template("routingKey", k, |c| !c.is_control())?;
        }
        if self.password.as_deref().is_some_and(|p| p.len() > 1024) {
            return Err("password is longer than 1024 bytes".into());
        }
        Ok(AmqpAddress {
            tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: url.port().unwrap_or(if tls { 5671 } else { 5672 }),
            vhost,
            username,
        })
    }

    /// The routing key of one event.
    pub fn routing_key_for(&self, application_id: Uuid, dev_eui: Eui64, event: &str) -> String {
        render(
            self.routing_key
                .as_deref()
                .unwrap_or(DEFAULT_AMQP_ROUTING_KEY),
            application_id,
            dev_eui,
            event,
        )
    }
}

/// The URL with any password replaced by `***` (for messages).
pub fn redact(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.trim().to_owned(),
        Err(_) => "(not a URL)".to_owned(),
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "url has a malformed %-escape".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "url: an escaped part is not UTF-8".to_owned())
}

/// An exchange or queue name: 1 to 127 of `A-Z a-z 0-9 - _ . :` (RabbitMQ's rule).
fn check_amqp_name(field: &str, name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 127
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        return Err(format!(
            "{field} {name:?} must have 1 to 127 of the characters A-Z a-z 0-9 - _ . :"
        ));
    }
    Ok(())
}

/// `template` with its placeholders filled with `x` (what the rest of it is checked
/// on), after checking its length and that it uses only [`PLACEHOLDERS`].
fn placeholders_filled(field: &str, template: &str) -> Result<String, String> {
    if template.is_empty() || template.len() > MAX_TEMPLATE {
        return Err(format!("{field} must have 1 to {MAX_TEMPLATE} characters"));
    }
    let mut rest = template.to_owned();
    for p in PLACEHOLDERS {
        rest = rest.replace(p, "x");
    }
    if let Some(i) = rest.find(['{', '}']) {
        return Err(format!(
            "{field} {template:?}: unknown placeholder near character {i} (use {})",
            PLACEHOLDERS.join(", ")
        ));
    }
    Ok(rest)
}

/// A template of known placeholders whose other characters pass `allowed`.
fn check_template(
    field: &str,
    template: &str,
    allowed: impl Fn(char) -> bool,
) -> Result<(), String> {
    let rest = placeholders_filled(field, template)?;
    if let Some(c) = rest.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "{field} {template:?}: character {c:?} is not allowed"
        ));
    }
    Ok(())
}

/// SASL settings of a Kafka integration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaSasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// User name.
    pub username: String,
    /// Password (write-only in the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The SASL mechanisms a Kafka integration may use.
pub const KAFKA_SASL_MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// Settings of a Kafka integration (`POST …/integrations/kafka`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// Topic template (the topic must exist unless the cluster creates topics).
    pub topic: String,
    /// Connect with TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
    /// SASL authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<KafkaSasl>,
}

/// Most bootstrap brokers accepted.
const MAX_BROKERS: usize = 16;

impl KafkaConfig {
    /// Checks the settings; the brokers as (host, port).
    pub fn check(&self) -> Result<Vec<(String, u16)>, String> {
        if self.brokers.is_empty() || self.brokers.len() > MAX_BROKERS {
            return Err(format!("brokers must list 1 to {MAX_BROKERS} host:port"));
        }
        let mut out = Vec::with_capacity(self.brokers.len());
        for b in &self.brokers {
            let b = b.trim();
            let (host, port) = b
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok().filter(|p| *p > 0)?)))
                .ok_or_else(|| format!("broker {b:?} must be host:port, e.g. kafka:9092"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty()
                || host.len() > 253
                || host.contains([',', '/', ' ', '@'])
                || host.chars().any(char::is_control)
            {
                return Err(format!("broker {b:?} has no usable host"));
            }
            out.push((host.to_owned(), port));
        }
        // Kafka's topic rule: 1 to 249 of [a-zA-Z0-9._-] (placeholders render within it).
        check_template("topic", &self.topic, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
        })?;
        if let Some(s) = &self.sasl {
            if !KAFKA_SASL_MECHANISMS.contains(&s.mechanism.as_str()) {
                return Err(format!(
                    "sasl.mechanism {:?} is not one of {}",
                    s.mechanism,
                    KAFKA_SASL_MECHANISMS.join(", ")
                ));
            }
            if s.username.is_empty() || s.username.len() > 256 {
                return Err("sasl.username must have 1 to 256 characters".into());
            }
            if s.password.as_deref().is_none_or(str::is_empty) {
                return Err("sasl.password is required".into());
            }
        }
        Ok(out)
    }

    /// The topic of one event.
    pub fn topic_for(&self, application_id: Uuid, dev_eui: Eui64, event: &str) -> String {
        render(&self.topic, application_id, dev_eui, event)
    }
}

#[cfg(test)]
mod broker_tests {
    use super::*;

    fn amqp(url: &str) -> AmqpConfig {
        AmqpConfig {
            url: url.into(),
            exchange: "amq.topic".into(),
            routing_key: None,
            command_queue: None,
            password: None,
        }
    }

    #[test]
    fn amqp_settings() {
        let a = amqp("amqp://rabbit.example.com").check().unwrap();
        assert_eq!(
            a,
            AmqpAddress {
                tls: false,
                host: "rabbit.example.com".into(),
                port: 5672,
                vhost: "/".into(),
                username: "guest".into()
            }
        );
        let a = amqp("amqps://iot@10.0.0.1/%2f").check().unwrap();
        assert_eq!((a.tls, a.port, a.vhost.as_str()), (true, 5671, "/"));
        assert_eq!(a.username, "iot");
        assert_eq!(amqp("amqp://h:5999/farm").check().unwrap().vhost, "farm");
        let mut c = amqp("amqp://user:p%40ss@h/v");
        c.take_url_password().unwrap();
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        assert_eq!(c.url, "amqp://user@h/v");
        assert_eq!(redact("amqp://u:secret@h/"), "amqp://u:***@h/");
        let app = Uuid::from_u128(7);
        let dev = Eui64::from_u64(0x0102);
        assert_eq!(
            c.routing_key_for(app, dev, "up"),
            format!("application.{app}.device.0000000000000102.event.up")
        );
        for (cfg, needle) in [
            (amqp("http://h"), "amqp://"),
            (amqp("amqp://h/a/b"), "one path segment"),
            (amqp("amqp://h/?heartbeat=5"), "query"),
            (
                AmqpConfig {
                    exchange: "bad name".into(),
                    ..amqp("amqp://h")
                },
                "exchange",
            ),
            (
                AmqpConfig {
                    exchange: String::new(),
                    ..amqp("amqp://h")
                },
                "exchange",
            ),
            (
                AmqpConfig {
                    routing_key: Some("a.{dev}".into()),
                    ..amqp("amqp://h")
                },
                "unknown placeholder",
            ),
            (
                AmqpConfig {
                    command_queue: Some("q/1".into()),
                    ..amqp("amqp://h")
                },
                "commandQueue",
            ),
        ] {
            let e = cfg.check().unwrap_err();
            assert!(e.contains(needle), "{cfg:?}: {e}");
        }
    }

    fn kafka(brokers: &[&str], topic: &str) -> KafkaConfig {
        KafkaConfig {
            brokers: brokers.iter().map(|s| (*s).to_owned()).collect(),
            topic: topic.into(),
            tls: None,
            sasl: None,
        }
    }

    #[test]
    fn kafka_settings() {
        let c = kafka(&["k1:9092", "[::1]:9093"], "lorikeet.{event}");
        assert_eq!(
            c.check().unwrap(),
            vec![("k1".to_owned(), 9092), ("::1".to_owned(), 9093)]
        );
        assert_eq!(
            c.topic_for(Uuid::from_u128(1), Eui64::from_u64(1), "up"),
            "lorikeet.up"
        );
        for (cfg, needle) in [
            (kafka(&[], "t"), "brokers"),
            (kafka(&["k1"], "t"), "host:port"),
            (kafka(&["k1:0"], "t"), "host:port"),
            (kafka(&[":9092"], "t"), "no usable host"),
            (kafka(&["k1:9092"], "a/b"), "not allowed"),
            (kafka(&["k1:9092"], ""), "1 to"),
            (kafka(&["k1:9092"], "t.{dev}"), "unknown placeholder"),
            (
                KafkaConfig {
                    sasl: Some(KafkaSasl {
                        mechanism: "GSSAPI".into(),
                        username: "u".into(),
                        password: Some("p".into()),
                    }),
                    ..kafka(&["k:1"], "t")
                },
                "sasl.mechanism",
            ),
            (
                KafkaConfig {
                    sasl: Some(KafkaSasl {
                        mechanism: "PLAIN".into(),
                        username: "u".into(),
                        password: None,
                    }),
                    ..kafka(&["k:1"], "t")
                },
                "sasl.password",
            ),
        ] {
            let e = cfg.check().unwrap_err();
            assert!(e.contains(needle), "{cfg:?}: {e}");
        }
    }
}
