//! Alert rules (pure): their kinds and parameters, the decisions that fire and
//! resolve alerts (with hysteresis, so a value hovering at a threshold does not
//! flap), the silence timers, and the `alert` event JSON. The server's alert task
//! feeds observations and the time in, and stores and delivers what comes out.

pub mod expr;
pub mod silence;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::event::DeviceInfo;
pub use expr::{Expr, ExprError, Uplink};

/// The kinds of rule, by their API name.
pub const KINDS: [&str; 5] = [
    "device_silent",
    "gateway_offline",
    "battery_below",
    "field",
    "integration_failing",
];

/// A rule's kind with its parsed parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// No uplink from a device for longer than `after`.
    DeviceSilent {
        /// The silence allowed.
        after: TimeDelta,
    },
    /// No PULL_DATA / PUSH_DATA from a gateway for longer than `after`.
    GatewayOffline {
        /// The silence allowed.
        after: TimeDelta,
    },
    /// DevStatusAns battery below `percent`; resolves at `percent + hysteresis`.
    BatteryBelow {
        /// Threshold in percent.
        percent: f64,
        /// How far above the threshold the battery must come back.
        hysteresis: f64,
    },
    /// A condition on decoded uplinks; resolves after `clear_after` uplinks in a
    /// row where it is false.
    Field {
        /// The parsed condition.
        expr: Expr,
        /// Its text.
        expression: String,
        /// False readings in a row that resolve the alert.
        clear_after: u32,
    },
    /// An integration's backlog above `backlog_above`, or its deliveries failing
    /// (an error and no success) for longer than `failing_for`.
    IntegrationFailing {
        /// Backlog threshold; resolves at half of it.
        backlog_above: u64,
        /// How long deliveries may fail.
        failing_for: TimeDelta,
    },
}

/// Why a rule's parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamsError(pub String);

/// Longest time a rule may wait (a year).
const MAX_SECONDS: u64 = 366 * 24 * 3600;

impl RuleKind {
    /// Parses `params` for rule `kind` (one of [`KINDS`]). Unknown parameters are
    /// refused, so a typo is an error rather than a rule that never fires.
    pub fn parse(kind: &str, params: &Value) -> Result<RuleKind, ParamsError> {
        let empty = Map::new();
        let m = match params {
            Value::Object(m) => m,
            Value::Null => &empty,
            _ => return Err(ParamsError("params must be a JSON object".into())),
        };
        let allowed: &[&str] = match kind {
            "device_silent" | "gateway_offline" => &["seconds", "minutes"],
            "battery_below" => &["percent", "hysteresis"],
            "field" => &["expression", "clearAfter"],
            "integration_failing" => &["backlogAbove", "minutes", "seconds"],
            other => {
                return Err(ParamsError(format!(
                    "unknown kind {other:?} (expected one of {})",
                    KINDS.join(", ")
                )))
            }
        };
        if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ParamsError(format!(
                "params.{k} is not a parameter of {kind} rules (they take {})",
                allowed.join(", ")
            )));
        }
        Ok(match kind {
            "device_silent" => RuleKind::DeviceSilent {
                after: duration(m, true)?,
            },
            "gateway_offline" => {
                let after = duration(m, true)?;
                // The network server records a gateway's last-seen time every 30 s
                // (not per packet): a shorter limit would fire on gateways that are
                // fine.
                if after < TimeDelta::seconds(60) {
                    return Err(ParamsError(
                        "gateway_offline needs at least 60 seconds (gateways' last-seen times are recorded every 30 s)"
                            .into(),
                    ));
                }
                RuleKind::GatewayOffline { after }
            }
            "battery_below" => {
                let percent = number(m, "percent")?
                    .ok_or_else(|| ParamsError("params.percent is required".into()))?;
                if !(0.0..=100.0).contains(&percent) {
                    return Err(ParamsError("params.percent must be within 0..100".into()));
                }
                let hysteresis = number(m, "hysteresis")?.unwrap_or(5.0);
                if !(0.0..=50.0).contains(&hysteresis) {
                    return Err(ParamsError(
                        "params.hysteresis must be within 0..50 (percentage points)".into(),
                    ));
                }
                RuleKind::BatteryBelow {
                    percent,
                    hysteresis,
                }
            }
            "field" => {
                let expression = match m.get("expression") {
                    Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                    _ => {
                        return Err(ParamsError(
                            "params.expression is required: a condition such as \"object.temperature > 30\""
                                .into(),
                        ))
                    }
                };
                let expr = Expr::parse(&expression)
                    .map_err(|e| ParamsError(format!("params.expression: {e}")))?;
                let clear_after = match number(m, "clearAfter")? {
                    None => 2,
                    Some(n) if n.fract() == 0.0 && (1.0..=1000.0).contains(&n) => n as u32,
                    Some(_) => {
                        return Err(ParamsError(
                            "params.clearAfter must be a whole number within 1..1000".into(),
                        ))
                    }
                };
                RuleKind::Field {
                    expr,
                    expression,
                    clear_after,
                }
            }
            _ => {
                let backlog_above = match number(m, "backlogAbove")? {
                    None => 1000,
                    Some(n) if n.fract() == 0.0 && (1.0..=1e12).contains(&n) => n as u64,
                    Some(_) => {
                        return Err(ParamsError(
                            "params.backlogAbove must be a whole number of at least 1".into(),
                        ))
                    }
                };
                let failing_for = if m.contains_key("seconds") || m.contains_key("minutes") {
                    duration(m, true)?
                } else {
                    TimeDelta::minutes(15)
                };
                RuleKind::IntegrationFailing {
                    backlog_above,
                    failing_for,
                }
            }
        })
    }

    /// The API name.
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::DeviceSilent { .. } => "device_silent",
            RuleKind::GatewayOffline { .. } => "gateway_offline",
            RuleKind::BatteryBelow { .. } => "battery_below",
            RuleKind::Field { .. } => "field",
            RuleKind::IntegrationFailing { .. } => "integration_failing",
        }
    }

    /// What the rule's alerts are about.
    pub fn subject_type(&self) -> SubjectType {
        match self {
            RuleKind::DeviceSilent { .. }
            | RuleKind::BatteryBelow { .. }
            | RuleKind::Field { .. } => SubjectType::Device,
            RuleKind::GatewayOffline { .. } => SubjectType::Gateway,
            RuleKind::IntegrationFailing { .. } => SubjectType::Integration,
        }
    }
}

fn number(m: &Map<String, Value>, key: &str) -> Result<Option<f64>, ParamsError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| ParamsError(format!("params.{key} is not a usable number"))),
        Some(_) => Err(ParamsError(format!("params.{key} must be a number"))),
    }
}

fn duration(m: &Map<String, Value>, required: bool) -> Result<TimeDelta, ParamsError> {
    let (s, mi) = (number(m, "seconds")?, number(m, "minutes")?);
    let secs = match (s, mi) {
        (Some(_), Some(_)) => {
            return Err(ParamsError(
                "give params.seconds or params.minutes, not both".into(),
            ))
        }
        (Some(s), None) => s,
        (None, Some(m)) => m * 60.0,
        (None, None) if required => {
            return Err(ParamsError(
                "params.minutes (or params.seconds) is required".into(),
            ))
        }
        (None, None) => 0.0,
    };
    if !(1.0..=MAX_SECONDS as f64).contains(&secs) {
        return Err(ParamsError(format!(
            "the time must be between 1 second and {} days",
            MAX_SECONDS / 86_400
        )));
    }
    Ok(TimeDelta::milliseconds((secs * 1000.0).round() as i64))
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectType {
    /// A device (DevEUI).
    Device,
    /// A gateway (gateway EUI).
    Gateway,
    /// An application's integration (its id).
    Integration,
}

impl SubjectType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectType::Device => "device",
            SubjectType::Gateway => "gateway",
            SubjectType::Integration => "integration",
        }
    }
}

/// The state kept for a firing alert between observations.
#[derive(Debug, Clone, PartialEq)]
pub struct Open {
    /// The alert's id.
    pub id: Uuid,
    /// When it fired.
    pub fired_at: DateTime<Utc>,
    /// False readings in a row (field rules).
    pub clear_count: u32,
}

/// What an observation does to a (rule, subject) pair.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Nothing changes.
    None,
    /// The alert fires, with this message.
    Fire(String),
    /// The firing alert resolves, with this message.
    Resolve(String),
}

/// A battery reading (DevStatusAns) against a `battery_below` rule. Readings
/// without a level (external power, or unknown) change nothing.
pub fn judge_battery(
    percent: f64,
    hysteresis: f64,
    level: Option<f64>,
    open: Option<&Open>,
) -> Transition {
    let Some(level) = level else {
        return Transition::None;
    };
    match open {
        None if level < percent => {
            Transition::Fire(format!("battery at {level:.0} % (below {percent} %)"))
        }
        Some(_) if level >= percent + hysteresis => Transition::Resolve(format!(
            "battery back at {level:.0} % (at least {} %)",
            percent + hysteresis
        )),
        _ => Transition::None,
    }
}

/// An uplink against a `field` rule. `open` is updated (its count of false
/// readings in a row).
pub fn judge_field(
    expr: &Expr,
    expression: &str,
    clear_after: u32,
    up: &Uplink<'_>,
    open: Option<&mut Open>,
) -> Transition {
    let Some(result) = expr.test(up) else {
        return Transition::None;
    };
    let shown = expr
        .first_path()
        .and_then(|(root, path)| {
            Expr::path_value(*root, path, up).map(|v| {
                let name = std::iter::once(root.name().to_owned())
                    .chain(path.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(".");
                format!(" ({name} = {v})")
            })
        })
        .unwrap_or_default();
    match (open, result) {
        (None, true) => Transition::Fire(format!("{expression} is true{shown}")),
        (None, false) => Transition::None,
        (Some(o), true) => {
            o.clear_count = 0;
            Transition::None
        }
        (Some(o), false) => {
            o.clear_count += 1;
            if o.clear_count >= clear_after {
                Transition::Resolve(format!(
                    "{expression} has been false for {} uplink(s){shown}",
                    o.clear_count
                ))
            } else {
                Transition::None
            }
        }
    }
}

/// A gateway's last-seen time against a `gateway_offline` rule. A gateway never
/// heard is not offline (it was never online).
pub fn judge_gateway(
    after: TimeDelta,
    last_seen: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    open: Option<&Open>,
) -> Transition {
    let Some(seen) = last_seen else {
        return Transition::None;
    };
    match open {
        None if now - seen > after => Transition::Fire(format!(
            "gateway not heard for {} (since {})",
            human(now - seen),
            seen.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
        // Heard again after it fired: back online.
        Some(o) if seen > o.fired_at => Transition::Resolve(format!(
            "gateway heard again at {}",
            seen.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
        _ => Transition::None,
    }
}

/// An integration's delivery state against an `integration_failing` rule: fires
/// when the backlog is above the threshold or deliveries have failed (an error
/// newer than the last success) for longer than allowed; resolves when the backlog
/// is at most half the threshold and deliveries succeed again.
pub fn judge_integration(
    backlog_above: u64,
    failing_for: TimeDelta,
    backlog: u64,
    failing_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    open: Option<&Open>,
) -> Transition {
    let failing_long = failing_since.is_some_and(|s| now - s > failing_for);
    match open {
        None if backlog > backlog_above => Transition::Fire(format!(
            "{backlog} events waiting for delivery (more than {backlog_above})"
        )),
        None if failing_long => Transition::Fire(format!(
            "deliveries failing for {}",
            human(now - failing_since.unwrap_or(now))
        )),
        Some(_) if backlog <= backlog_above / 2 && failing_since.is_none() => {
            Transition::Resolve(format!("delivering again ({backlog} waiting)"))
        }
        _ => Transition::None,
    }
}

/// A duration for messages: `90 s`, `12 min`, `3 h`.
pub fn human(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    if s < 120 {
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s / 60)
    } else {
        format!("{} h", s / 3600)
    }
}

/// The `alert` event (webhook `?event=alert`, MQTT `…/event/alert`) for an alert
/// about a device: its state change, with the usual `deviceInfo`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertEventJson {
    /// The alert's id (the same for its firing and its resolution).
    pub id: Uuid,
    /// When this state change happened.
    pub time: DateTime<Utc>,
    /// The device.
    pub device_info: DeviceInfo,
    /// The rule.
    pub rule_id: Uuid,
    /// The rule's name.
    pub rule_name: String,
    /// The rule's kind.
    pub kind: &'static str,
    /// `firing` or `resolved`.
    pub state: &'static str,
    /// What it is about: the DevEUI.
    pub subject: String,
    /// Why it fired, or why it resolved.
    pub message: String,
    /// When it fired.
    pub fired_at: DateTime<Utc>,
    /// When it resolved (resolved only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
}

impl AlertEventJson {
    /// The event as stored and delivered.
    pub fn event(&self) -> crate::IntegrationEvent {
        crate::IntegrationEvent {
            kind: crate::EventType::Alert,
            body: serde_json::to_value(self).unwrap_or(Value::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn open() -> Open {
        Open {
            id: Uuid::from_u128(1),
            fired_at: t(0),
            clear_count: 0,
        }
    }

    #[test]
    fn params_parse_with_clear_errors() {
        assert_eq!(
            RuleKind::parse("device_silent", &json!({"minutes": 60})).unwrap(),
            RuleKind::DeviceSilent {
                after: TimeDelta::hours(1)
            }
        );
        assert_eq!(
            RuleKind::parse("device_silent", &json!({"seconds": 2.5})).unwrap(),
            RuleKind::DeviceSilent {
                after: TimeDelta::milliseconds(2500)
            }
        );
        assert_eq!(
            RuleKind::parse("battery_below", &json!({"percent": 20})).unwrap(),
            RuleKind::BatteryBelow {
                percent: 20.0,
                hysteresis: 5.0
            }
        );
        assert!(matches!(
            RuleKind::parse("field", &json!({"expression": "object.t > 3"})).unwrap(),
            RuleKind::Field { clear_after: 2, .. }
        ));
        assert_eq!(
            RuleKind::parse("integration_failing", &json!({})).unwrap(),
            RuleKind::IntegrationFailing {
                backlog_above: 1000,
                failing_for: TimeDelta::minutes(15)
            }
        );
        for (kind, params, needle) in [
            ("nope", json!({}), "unknown kind"),
            ("device_silent", json!({}), "required"),
            (
                "device_silent",
                json!({"minutes": 1, "seconds": 1}),
                "not both",
            ),
            (
                "device_silent",
                json!({"minuts": 1}),
                "params.minuts is not a parameter",
            ),
            ("device_silent", json!({"seconds": 0}), "between 1 second"),
            ("device_silent", json!({"seconds": "5"}), "must be a number"),
            ("device_silent", json!([1]), "JSON object"),
            (
                "gateway_offline",
                json!({"seconds": 59}),
                "at least 60 seconds",
            ),
            ("battery_below", json!({"percent": 120}), "0..100"),
            ("battery_below", json!({}), "percent is required"),
            (
                "field",
                json!({"expression": "temperature > 3"}),
                "unknown name",
            ),
            ("field", json!({}), "expression is required"),
            (
                "field",
                json!({"expression": "object.t > 1", "clearAfter": 0.5}),
                "whole number",
            ),
            (
                "integration_failing",
                json!({"backlogAbove": -1}),
                "at least 1",
            ),
        ] {
            let e = RuleKind::parse(kind, &params).unwrap_err();
            assert!(e.0.contains(needle), "{kind} {params}: {e}");
        }
    }

    #[test]
    fn battery_has_hysteresis() {
        let mut state: Option<Open> = None;
        let mut fired = 0;
        let mut resolved = 0;
        // Hovering around 20 % with 5 points of hysteresis: one alert, no flapping.
        for level in [30.0, 19.0, 21.0, 19.5, 22.0, 24.9, 19.0, 25.0, 24.0] {
            match judge_battery(20.0, 5.0, Some(level), state.as_ref()) {
                Transition::Fire(m) => {
                    assert!(m.contains("below 20"), "{m}");
                    fired += 1;
                    state = Some(open());
                }
                Transition::Resolve(_) => {
                    resolved += 1;
                    state = None;
                }
                Transition::None => {}
            }
        }
        assert_eq!((fired, resolved), (1, 1));
        assert_eq!(judge_battery(20.0, 5.0, None, None), Transition::None);
    }

    #[test]
    fn field_resolves_after_false_readings_in_a_row() {
        let expr = Expr::parse("object.t > 30").unwrap();
        let reading = |v: f64| json!({ "t": v });
        let mut state: Option<Open> = None;
        let mut log = Vec::new();
        for v in [20.0, 31.0, 29.0, 32.0, 29.0, 28.0, 27.0] {
            let obj = reading(v);
            let up = Uplink {
                object: Some(&obj),
                ..Uplink::default()
            };
            match judge_field(&expr, "object.t > 30", 2, &up, state.as_mut()) {
                Transition::Fire(m) => {
                    assert!(m.contains("object.t = 31"), "{m}");
                    state = Some(open());
                    log.push(('F', v));
                }
                Transition::Resolve(_) => {
                    state = None;
                    log.push(('R', v));
                }
                Transition::None => {}
            }
        }
        assert_eq!(log, vec![('F', 31.0), ('R', 28.0)]);
        // A reading without the field changes nothing.
        let mut o = open();
        let obj = json!({"other": 1});
        let up = Uplink {
            object: Some(&obj),
            ..Uplink::default()
        };
        assert_eq!(
            judge_field(&expr, "x", 1, &up, Some(&mut o)),
            Transition::None
        );
    }

    #[test]
    fn gateways_and_integrations() {
        let after = TimeDelta::seconds(60);
        assert_eq!(judge_gateway(after, None, t(1000), None), Transition::None);
        assert_eq!(
            judge_gateway(after, Some(t(0)), t(60), None),
            Transition::None
        );
        assert!(matches!(
            judge_gateway(after, Some(t(0)), t(61), None),
            Transition::Fire(_)
        ));
        let o = open();
        assert_eq!(
            judge_gateway(after, Some(t(0)), t(500), Some(&o)),
            Transition::None
        );
        assert!(matches!(
            judge_gateway(after, Some(t(1)), t(500), Some(&o)),
            Transition::Resolve(_)
        ));
        let f = TimeDelta::minutes(5);
        assert!(matches!(
            judge_integration(100, f, 101, None, t(0), None),
            Transition::Fire(_)
        ));
        assert_eq!(
            judge_integration(100, f, 100, None, t(0), None),
            Transition::None
        );
        assert_eq!(
            judge_integration(100, f, 0, Some(t(0)), t(300), None),
            Transition::None
        );
        assert!(matches!(
            judge_integration(100, f, 0, Some(t(0)), t(301), None),
            Transition::Fire(_)
        ));
        assert_eq!(
            judge_integration(100, f, 51, None, t(0), Some(&o)),
            Transition::None,
            "hysteresis: half the threshold"
        );
        assert_eq!(
            judge_integration(100, f, 10, Some(t(0)), t(1), Some(&o)),
            Transition::None,
            "still failing"
        );
        assert!(matches!(
            judge_integration(100, f, 50, None, t(0), Some(&o)),
            Transition::Resolve(_)
        ));
    }
}
