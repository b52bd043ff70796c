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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NatsConfig {
    /// `nats://host:port` (the port defaults to 4222).
    pub url: String,
    /// Subject template (default [`DEFAULT_NATS_SUBJECT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Subject to take downlink commands from (not read yet; stored for later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_subject: Option<String>,
}

/// The host and port of a checked NATS URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsAddress {
    /// Host name or IP literal.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl NatsConfig {
    /// Checks the URL and the templates; the address to connect to.
    pub fn check(&self) -> Result<NatsAddress, String> {
        let url = url::Url::parse(self.url.trim())
            .map_err(|e| format!("url {:?} is not a valid URL: {e}", self.url))?;
        if url.scheme() != "nats" {
            return Err(format!(
                "url {:?} must start with nats:// (TLS is not supported yet)",
                self.url
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "url: credentials in the URL are not supported yet (they would be shown by GET)"
                    .into(),
            );
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("url {:?} needs a host, e.g. nats://broker:4222", self.url))?;
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(format!("url {:?}: only nats://host:port", self.url));
        }
        if let Some(s) = &self.subject {
            check_subject("subject", s, false)?;
        }
        if let Some(s) = &self.command_subject {
            check_subject("commandSubject", s, true)?;
        }
        Ok(NatsAddress {
            host: host.to_owned(),
            port: url.port().unwrap_or(4222),
        })
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
            (nats("nats://u:p@h", None), "credentials"),
            (nats("nats://", None), "host"),
            (nats("nats://h/x", None), "only nats://host:port"),
            (nats("nats://h", Some("a..b")), "empty token"),
            (nats("nats://h", Some("a.{dev}")), "unknown placeholder"),
            (nats("nats://h", Some("a.*")), "wildcards"),
            (nats("nats://h", Some("a b")), "space"),
            (nats("nats://h", Some("")), "1 to"),
        ] {
            let e = cfg.check().unwrap_err();
            assert!(e.contains(needle), "{cfg:?}: {e}");
        }
        let mut with_commands = nats("nats://h", None);
        with_commands.command_subject = Some("lorikeet.*.*.command".into());
        assert!(with_commands.check().is_ok());
    }
}
