//! The alert task: evaluates the alert rules (`docs/alerts.md`) and stores and
//! delivers what fires and resolves. The decisions are the pure ones of
//! `lorikeet_app::alert`; this shell feeds them:
//!
//! - committed events from the live channel: an uplink resets the device's silence
//!   timer, resolves its silence alerts and is tested by `field` rules; a `status`
//!   event is checked against `battery_below` rules;
//! - a tick (`alerts.interval_ms`): rules are reloaded from the database (the
//!   record; no cache to invalidate), due silence timers are confirmed against the
//!   device's stored last-seen time before firing, and the few gateways and
//!   integrations are compared with their rules.
//!
//! An alert about a device is also an `alert` event of the device, written before
//! the alert row so that an alert is never stored without its event, and shown to
//! live subscribers (MQTT, event streams) once committed, like every event.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lorikeet_app::alert::silence::Scope;
use lorikeet_app::alert::silence::SilenceTracker;
use lorikeet_app::alert::{self, AlertEventJson, Open, RuleKind, SubjectType, Transition};
use lorikeet_app::EventType;
use lorikeet_lorawan::Eui64;
use lorikeet_storage::{
    Alert, AlertFilter, AlertRule, AlertState, EventKind, NewEvent, Page, Storage, WriteOp,
};
use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::app::Published;
use super::convert;
use super::writer::Producer;

/// A rule with its parsed kind.
#[derive(Debug)]
struct Rule {
    row: AlertRule,
    kind: RuleKind,
}

/// The alert task.
#[derive(Debug)]
pub struct AlertTask {
    /// The record: rules, devices, gateways, integrations.
    pub storage: Arc<dyn Storage>,
    /// Alert rows and events.
    pub writer: Producer,
    /// Committed events (input).
    pub events: broadcast::Receiver<Published>,
    /// Where alert events go once committed (MQTT, event streams).
    pub live: broadcast::Sender<Published>,
    /// How often rules are reloaded and timers checked.
    pub interval: Duration,
}

#[derive(Debug, Default)]
struct State {
    rules: HashMap<Uuid, Rule>,
    /// Application → tenant.
    apps: HashMap<Uuid, Uuid>,
    silence: SilenceTracker,
    /// Whether the devices' last-seen times are loaded into `silence`.
    silence_loaded: bool,
    /// Firing alerts by (rule, subject).
    open: HashMap<(Uuid, String), Open>,
    /// Alert events waiting for their commit.
    held: VecDeque<(u64, Published)>,
    /// Events were missed (lagged): check firing silence alerts against the database.
    resync: bool,
}

impl State {
    /// The ids of the rules whose kind `of_kind` accepts.
    fn rule_ids(&self, of_kind: impl Fn(&RuleKind) -> bool) -> Vec<Uuid> {
        self.rules
            .values()
            .filter(|r| of_kind(&r.kind))
            .map(|r| r.row.id)
            .collect()
    }
}

fn metric_firing(n: usize) {
    metrics::gauge!("lorikeet_alerts_firing").set(n as f64);
}

impl AlertTask {
    /// Runs until shutdown.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut st = State::default();
        // Firing alerts survive restarts: they are not fired again.
        match self
            .storage
            .list_alerts(
                AlertFilter {
                    state: Some(AlertState::Firing),
                    ..AlertFilter::default()
                },
                Page::ALL,
            )
            .await
        {
            Ok(alerts) => {
                for a in alerts {
                    st.open.insert(
                        (a.rule_id, a.subject),
                        Open {
                            id: a.id,
                            fired_at: a.fired_at,
                            clear_count: 0,
                        },
                    );
                }
            }
            Err(e) => warn!("alerts: cannot load the firing alerts: {e}"),
        }
        metric_firing(st.open.len());
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut committed = self.writer.watch_committed();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        break;
                    }
                }
                Ok(()) = committed.changed(), if !st.held.is_empty() => {
                    let upto = *committed.borrow_and_update();
                    self.publish(&mut st, upto);
                }
                r = self.events.recv() => match r {
                    Ok(p) => self.on_event(&mut st, p).await,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        metrics::counter!("lorikeet_alerts_events_missed_total").increment(n);
                        warn!(missed = n, "alerts fell behind the live events; checking firing silence alerts against the database");
                        st.resync = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => self.on_tick(&mut st).await,
            }
            let upto = *committed.borrow();
            self.publish(&mut st, upto);
        }
    }

    fn publish(&self, st: &mut State, committed: u64) {
        while st.held.front().is_some_and(|(seq, _)| *seq <= committed) {
            if let Some((_, p)) = st.held.pop_front() {
                let _ = self.live.send(p);
            }
        }
    }

    fn in_scope(st: &State, rule: &AlertRule, application_id: Uuid) -> bool {
        match rule.application_id {
            Some(a) => a == application_id,
            None => st.apps.get(&application_id) == Some(&rule.tenant_id),
        }
    }

    async fn on_event(&mut self, st: &mut State, p: Published) {
        if st.rules.is_empty() {
            return;
        }
        match p.kind {
            EventType::Up => {
                let now = lorikeet_storage::now();
                // The tracker holds exactly the silence rules.
                if st.silence.rule_ids().next().is_some() {
                    st.silence.seen(p.dev_eui, p.application_id, now);
                }
                let subject = p.dev_eui.to_string();
                let mut body: Option<serde_json::Value> = None;
                let ids: Vec<Uuid> = st
                    .rules
                    .values()
                    .filter(|r| Self::in_scope(st, &r.row, p.application_id))
                    .map(|r| r.row.id)
                    .collect();
                for id in ids {
                    let Some(rule) = st.rules.get(&id) else {
                        continue;
                    };
                    let t = match &rule.kind {
                        RuleKind::DeviceSilent { .. } => {
                            if st.open.contains_key(&(id, subject.clone())) {
                                Transition::Resolve("the device sent an uplink".into())
                            } else {
                                Transition::None
                            }
                        }
                        RuleKind::Field {
                            expr,
                            expression,
                            clear_after,
                        } => {
                            if body.is_none() {
                                body = serde_json::from_str(&p.body).ok();
                            }
                            let Some(b) = body.as_ref() else { continue };
                            let up = alert::Uplink::from_up_event(b);
                            alert::judge_field(
                                expr,
                                expression,
                                *clear_after,
                                &up,
                                st.open.get_mut(&(id, subject.clone())),
                            )
                        }
                        _ => Transition::None,
                    };
                    self.transition(
                        st,
                        id,
                        SubjectType::Device,
                        &subject,
                        Some(p.application_id),
                        t,
                    )
                    .await;
                }
            }
            EventType::Status => {
                let subject = p.dev_eui.to_string();
                let ids: Vec<Uuid> = st
                    .rules
                    .values()
                    .filter(|r| matches!(r.kind, RuleKind::BatteryBelow { .. }))
                    .filter(|r| Self::in_scope(st, &r.row, p.application_id))
                    .map(|r| r.row.id)
                    .collect();
                if ids.is_empty() {
                    return;
                }
                let Ok(b) = serde_json::from_str::<serde_json::Value>(&p.body) else {
                    return;
                };
                let unavailable = b["batteryLevelUnavailable"].as_bool().unwrap_or(false)
                    || b["externalPowerSource"].as_bool().unwrap_or(false);
                let level = (!unavailable).then(|| b["batteryLevel"].as_f64()).flatten();
                for id in ids {
                    let Some(Rule {
                        kind:
                            RuleKind::BatteryBelow {
                                percent,
                                hysteresis,
                            },
                        ..
                    }) = st.rules.get(&id)
                    else {
                        continue;
                    };
                    let t = alert::judge_battery(
                        *percent,
                        *hysteresis,
                        level,
                        st.open.get(&(id, subject.clone())),
                    );
                    self.transition(
                        st,
                        id,
                        SubjectType::Device,
                        &subject,
                        Some(p.application_id),
                        t,
                    )
                    .await;
                }
            }
            _ => {}
        }
    }

    async fn on_tick(&mut self, st: &mut State) {
        let now = lorikeet_storage::now();
        if let Err(e) = self.reload(st).await {
            warn!("alerts: cannot read the rules: {e}");
            return;
        }
        if st.rules.is_empty() {
            return;
        }
        // Silence timers that passed, confirmed against the record (an uplink this
        // task missed is in the device's last-seen time).
        for due in st.silence.due(now) {
            let Some(RuleKind::DeviceSilent { after }) =
                st.rules.get(&due.rule_id).map(|r| &r.kind)
            else {
                continue;
            };
            let after = *after;
            match self.storage.get_device(due.dev_eui).await {
                Ok(Some(d)) => match d.last_seen_at {
                    Some(seen) if seen > due.last_seen && now - seen <= after => {
                        st.silence.seen(due.dev_eui, d.application_id, seen);
                    }
                    _ => {
                        let msg = format!(
                            "no uplink for {} (last at {})",
                            alert::human(now - due.last_seen),
                            due.last_seen
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        );
                        let subject = due.dev_eui.to_string();
                        self.transition(
                            st,
                            due.rule_id,
                            SubjectType::Device,
                            &subject,
                            Some(d.application_id),
                            Transition::Fire(msg),
                        )
                        .await;
                    }
                },
                Ok(None) => st.silence.forget(due.dev_eui),
                Err(e) => {
                    // Try again on the next tick.
                    warn!("alerts: cannot read device {}: {e}", due.dev_eui);
                    if let Some(app) = st.silence.application_of(due.dev_eui) {
                        st.silence.seen(due.dev_eui, app, due.last_seen);
                    }
                }
            }
        }
        if std::mem::take(&mut st.resync) {
            self.resync_silence(st).await;
        }
        self.check_gateways(st, now).await;
        self.check_integrations(st, now).await;
    }

    /// Reloads the rules and applications; loads the devices' last-seen times the
    /// first time a silence rule exists.
    async fn reload(&mut self, st: &mut State) -> Result<(), lorikeet_storage::StoreError> {
        let rows = self.storage.list_alert_rules(None, None, Page::ALL).await?;
        if rows.is_empty() && st.rules.is_empty() {
            return Ok(());
        }
        for a in self.storage.load_all_applications().await? {
            st.apps.insert(a.id, a.tenant_id);
            st.silence.set_tenant(a.id, a.tenant_id);
        }
        let wants_silence = rows.iter().any(|r| r.kind == "device_silent");
        if wants_silence && !st.silence_loaded {
            let devices = self.storage.load_all_devices().await?;
            for d in devices {
                if let Some(seen) = d.last_seen_at {
                    st.silence.seen(d.dev_eui, d.application_id, seen);
                }
            }
            st.silence_loaded = true;
            info!(
                devices = st.silence.devices(),
                "alerts: silence timers loaded"
            );
        }
        let mut fresh = HashMap::with_capacity(rows.len());
        for row in rows {
            let kind = match RuleKind::parse(&row.kind, &row.params) {
                Ok(k) => k,
                Err(e) => {
                    // The API checks params; a row that fails here was written by
                    // something else. Skip it loudly rather than guess.
                    warn!(rule = %row.id, "alerts: rule skipped: {e}");
                    continue;
                }
            };
            let changed = st
                .rules
                .get(&row.id)
                .is_none_or(|old| old.row.updated_at != row.updated_at);
            if changed {
                if let RuleKind::DeviceSilent { after } = kind {
                    let scope = match row.application_id {
                        Some(a) => Scope::Application(a),
                        None => Scope::Tenant(row.tenant_id),
                    };
                    st.silence.upsert_rule(row.id, scope, after);
                } else {
                    st.silence.remove_rule(row.id);
                }
            }
            fresh.insert(row.id, Rule { row, kind });
        }
        let gone: Vec<Uuid> = st
            .rules
            .keys()
            .filter(|id| !fresh.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            st.silence.remove_rule(id);
            // Its alerts went with it (ON DELETE CASCADE).
            st.open.retain(|(rule, _), _| *rule != id);
        }
        st.rules = fresh;
        metric_firing(st.open.len());
        Ok(())
    }

    /// After missed events: firing silence alerts of devices heard since resolve.
    async fn resync_silence(&mut self, st: &mut State) {
        let firing: Vec<(Uuid, String, DateTime<Utc>)> = st
            .open
            .iter()
            .filter(|((rule, _), _)| {
                st.rules
                    .get(rule)
                    .is_some_and(|r| matches!(r.kind, RuleKind::DeviceSilent { .. }))
            })
            .map(|((rule, subject), o)| (*rule, subject.clone(), o.fired_at))
            .collect();
        for (rule, subject, fired_at) in firing {
            let Ok(eui) = subject.parse::<Eui64>() else {
                continue;
            };
            if let Ok(Some(d)) = self.storage.get_device(eui).await {
                if let Some(seen) = d.last_seen_at.filter(|s| *s > fired_at) {
                    st.silence.seen(eui, d.application_id, seen);
                    self.transition(
                        st,
                        rule,
                        SubjectType::Device,
                        &subject,
                        Some(d.application_id),
                        Transition::Resolve("the device sent an uplink".into()),
                    )
                    .await;
                }
            }
        }
    }

    async fn check_gateways(&mut self, st: &mut State, now: DateTime<Utc>) {
        let ids = st.rule_ids(|k| matches!(k, RuleKind::GatewayOffline { .. }));
        if ids.is_empty() {
            return;
        }
        let gateways = match self.storage.list_gateways(None, Page::ALL).await {
            Ok(g) => g,
            Err(e) => {
                warn!("alerts: cannot read the gateways: {e}");
                return;
            }
        };
        for id in ids {
            let Some(rule) = st.rules.get(&id) else {
                continue;
            };
            let RuleKind::GatewayOffline { after } = rule.kind else {
                continue;
            };
            let tenant = rule.row.tenant_id;
            let mut changes = Vec::new();
            for g in gateways.iter().filter(|g| g.tenant_id == tenant) {
                let subject = g.gateway_id.to_string();
                let t = alert::judge_gateway(
                    after,
                    g.last_seen_at,
                    now,
                    st.open.get(&(id, subject.clone())),
                );
                if t != Transition::None {
                    changes.push((subject, t));
                }
            }
            for (subject, t) in changes {
                self.transition(st, id, SubjectType::Gateway, &subject, None, t)
                    .await;
            }
        }
    }

    async fn check_integrations(&mut self, st: &mut State, now: DateTime<Utc>) {
        let ids = st.rule_ids(|k| matches!(k, RuleKind::IntegrationFailing { .. }));
        if ids.is_empty() {
            return;
        }
        let integrations = match self.storage.list_integrations(None).await {
            Ok(i) => i,
            Err(e) => {
                warn!("alerts: cannot read the integrations: {e}");
                return;
            }
        };
        let mut backlogs: HashMap<Uuid, u64> = HashMap::new();
        for id in ids {
            let Some(rule) = st.rules.get(&id) else {
                continue;
            };
            let RuleKind::IntegrationFailing {
                backlog_above,
                failing_for,
            } = rule.kind
            else {
                continue;
            };
            let row = rule.row.clone();
            let mut changes = Vec::new();
            for i in integrations
                .iter()
                .filter(|i| Self::in_scope(st, &row, i.application_id))
            {
                let backlog = match backlogs.get(&i.id) {
                    Some(b) => *b,
                    None => match self.storage.outbox_backlog(i.id).await {
                        Ok(b) => {
                            backlogs.insert(i.id, b);
                            b
                        }
                        Err(e) => {
                            warn!("alerts: cannot read integration {}'s backlog: {e}", i.id);
                            continue;
                        }
                    },
                };
                // Failing since the last success (or since it was set up).
                let failing_since = match (i.last_error_at, i.last_delivered_at) {
                    (Some(err), Some(ok)) if err > ok => Some(ok),
                    (Some(_), None) => Some(i.updated_at),
                    _ => None,
                };
                let subject = i.id.to_string();
                let t = alert::judge_integration(
                    backlog_above,
                    failing_for,
                    backlog,
                    failing_since,
                    now,
                    st.open.get(&(id, subject.clone())),
                );
                if t != Transition::None {
                    changes.push((subject, i.application_id, t));
                }
            }
            for (subject, app, t) in changes {
                self.transition(st, id, SubjectType::Integration, &subject, Some(app), t)
                    .await;
            }
        }
    }

    /// Carries out a decision: the alert row, and for devices the `alert` event.
    async fn transition(
        &mut self,
        st: &mut State,
        rule_id: Uuid,
        subject_type: SubjectType,
        subject: &str,
        application_id: Option<Uuid>,
        t: Transition,
    ) {
        let (firing, message) = match t {
            Transition::None => return,
            Transition::Fire(m) => (true, m),
            Transition::Resolve(m) => (false, m),
        };
        let Some(rule) = st.rules.get(&rule_id) else {
            return;
        };
        let rule_row = rule.row.clone();
        let kind = rule.kind.name();
        let now = lorikeet_storage::now();
        let key = (rule_id, subject.to_owned());
        let (id, fired_at) = if firing {
            if st.open.contains_key(&key) {
                return;
            }
            let id = Uuid::new_v4();
            st.open.insert(
                key,
                Open {
                    id,
                    fired_at: now,
                    clear_count: 0,
                },
            );
            (id, now)
        } else {
            match st.open.remove(&key) {
                Some(o) => (o.id, o.fired_at),
                None => return,
            }
        };
        metric_firing(st.open.len());
        let state = if firing { "firing" } else { "resolved" };
        metrics::counter!("lorikeet_alerts_total", "kind" => kind, "state" => state).increment(1);
        info!(rule = %rule_id, rule_name = %rule_row.name, kind, subject, state, %message, "alert {state}");
        // The device's event first: an alert row never exists without its event.
        if subject_type == SubjectType::Device {
            if let Ok(eui) = subject.parse::<Eui64>() {
                self.alert_event(
                    st, eui, &rule_row, kind, id, firing, &message, fired_at, now,
                )
                .await;
            }
        }
        let op = if firing {
            WriteOp::AlertFired(Alert {
                id,
                rule_id,
                rule_name: rule_row.name.clone(),
                kind: kind.to_owned(),
                tenant_id: rule_row.tenant_id,
                application_id,
                subject_type: subject_type.as_str().to_owned(),
                subject: subject.to_owned(),
                state: AlertState::Firing,
                message,
                resolve_message: None,
                fired_at,
                resolved_at: None,
            })
        } else {
            WriteOp::AlertResolved {
                id,
                at: now,
                message,
            }
        };
        let _ = self.writer.send(op).await;
    }

    #[allow(clippy::too_many_arguments)]
    async fn alert_event(
        &mut self,
        st: &mut State,
        dev_eui: Eui64,
        rule: &AlertRule,
        kind: &'static str,
        id: Uuid,
        firing: bool,
        message: &str,
        fired_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        let ctx = match self.storage.get_device_context(dev_eui).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                debug!(%dev_eui, "alert about a deleted device: no event");
                return;
            }
            Err(e) => {
                warn!(%dev_eui, "alerts: cannot read the device for its alert event: {e}");
                return;
            }
        };
        let ev = AlertEventJson {
            id,
            time: now,
            device_info: convert::device_info(
                &ctx.device,
                &ctx.profile,
                &ctx.application,
                &ctx.tenant,
            ),
            rule_id: rule.id,
            rule_name: rule.name.clone(),
            kind,
            state: if firing { "firing" } else { "resolved" },
            subject: dev_eui.to_string(),
            message: message.to_owned(),
            fired_at,
            resolved_at: (!firing).then_some(now),
        }
        .event();
        let body: Arc<str> = ev.body.to_string().into();
        let application_id = ctx.application.id;
        metrics::counter!("lorikeet_events_total", "type" => "alert").increment(1);
        let op = WriteOp::InsertEvent(NewEvent {
            dev_eui,
            application_id,
            kind: EventKind::Alert,
            payload: body.clone(),
            created_at: now,
        });
        if let Some(seq) = self.writer.send(op).await {
            st.held.push_back((
                seq,
                Published {
                    dev_eui,
                    application_id,
                    kind: EventType::Alert,
                    body,
                },
            ));
        }
    }
}
