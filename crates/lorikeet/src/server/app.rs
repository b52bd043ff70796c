//! The application side: turns the core's events into integration events (decrypting
//! and decoding uplinks), and hands them to the writer (webhooks read them from the
//! events table) and to the live subscribers (MQTT, the API's event streams).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::stream::{FuturesOrdered, StreamExt};
use lorikeet_app::{DeviceClass, EventType, IntegrationEvent};
use lorikeet_codec::{Codecs, UplinkInput};
use lorikeet_lorawan::Eui64;
use lorikeet_ns as ns;
use lorikeet_ns::output::LogLevel;
use lorikeet_storage::{EventKind, LinkSample, NewEvent, WriteOp};
use tokio::sync::{broadcast, mpsc};
use tracing::debug;

use super::cache::{AppDevice, AppUpdate, GatewayOwner};
use super::convert;
use super::writer::Producer;

/// An event as stored and delivered, for live subscribers.
#[derive(Debug, Clone)]
pub struct Published {
    /// The device.
    pub dev_eui: Eui64,
    /// Its application.
    pub application_id: uuid::Uuid,
    /// Event type.
    pub kind: EventType,
    /// The event JSON, serialised once for storage and every subscriber.
    pub body: Arc<str>,
}

/// Events being decoded at once; results are still emitted in arrival order.
const MAX_IN_FLIGHT: usize = 64;

/// The application task's state.
#[derive(Debug)]
pub struct AppTask {
    pub(crate) devices: HashMap<Eui64, AppDevice>,
    /// Each provisioned gateway's owner, for private gateways.
    pub(crate) gateways: HashMap<Eui64, GatewayOwner>,
    pub(crate) events: mpsc::Receiver<ns::Event>,
    pub(crate) updates: mpsc::Receiver<AppUpdate>,
    /// Event rows; live subscribers get an event once its row is committed.
    pub(crate) writer: Producer,
    pub(crate) live: broadcast::Sender<Published>,
    pub(crate) codecs: Codecs,
    /// The change-feed position this task has applied (read your writes).
    pub(crate) applied: tokio::sync::watch::Sender<lorikeet_storage::FeedPosition>,
}

pub(crate) fn kind(t: EventType) -> EventKind {
    match t {
        EventType::Up => EventKind::Up,
        EventType::Join => EventKind::Join,
        EventType::Ack => EventKind::Ack,
        EventType::Txack => EventKind::TxAck,
        EventType::Status => EventKind::Status,
        EventType::Log => EventKind::Log,
        EventType::Location => EventKind::Location,
        EventType::Alert => EventKind::Alert,
    }
}

fn dev_eui_of(e: &ns::Event) -> Eui64 {
    match e {
        ns::Event::Join { dev_eui, .. }
        | ns::Event::Ack { dev_eui, .. }
        | ns::Event::TxAck { dev_eui, .. }
        | ns::Event::Status { dev_eui, .. }
        | ns::Event::Log { dev_eui, .. } => *dev_eui,
        ns::Event::Up(u) => u.dev_eui,
    }
}

/// The id a `txack` event shows for another tenant's private gateway.
const HIDDEN_GATEWAY: Eui64 = Eui64([0; 8]);

/// Takes other tenants' private gateways out of an event for a device of `tenant`:
/// they leave `rxInfo` (as ChirpStack does with gateways that are private for
/// uplinks), so neither their id nor their location is shown, and a `txack`
/// through one names gateway `0000000000000000`. Gateways not provisioned (admitted
/// by `gateway.allow_unknown`) belong to no tenant and stay visible. The frame is
/// served all the same: privacy is about what events show, not about coverage.
pub(crate) fn hide_private_gateways(
    e: &mut ns::Event,
    tenant: uuid::Uuid,
    gateways: &HashMap<Eui64, GatewayOwner>,
) {
    let visible = |g: &Eui64| {
        gateways
            .get(g)
            .is_none_or(|o| !o.private || o.tenant_id == tenant)
    };
    match e {
        ns::Event::Up(up) => up.rx_info.retain(|r| visible(&r.gateway_id)),
        ns::Event::Join { rx_info, .. } => rx_info.retain(|r| visible(&r.gateway_id)),
        ns::Event::TxAck { gateway_id, .. } => {
            if !visible(gateway_id) {
                *gateway_id = HIDDEN_GATEWAY;
            }
        }
        ns::Event::Ack { .. } | ns::Event::Status { .. } | ns::Event::Log { .. } => {}
    }
}

/// One core event turned into what to store and deliver.
struct Prepared {
    dev_eui: Eui64,
    application_id: uuid::Uuid,
    seen_at: Option<SystemTime>,
    /// Each event's type and JSON text.
    events: Vec<(EventType, Arc<str>)>,
    /// Link health: an uplink's radio figures, or a DevStatusAns.
    health: Option<WriteOp>,
}

fn text(ev: IntegrationEvent) -> (EventType, Arc<str>) {
    (ev.kind, ev.body.to_string().into())
}

/// Builds the integration events of one core event (decrypting and decoding uplinks).
async fn prepare(e: ns::Event, dev: AppDevice, codecs: Codecs) -> Prepared {
    let dev_eui = dev_eui_of(&e);
    let now = SystemTime::now();
    let mut out = Prepared {
        dev_eui,
        application_id: dev.application_id,
        seen_at: None,
        events: Vec::with_capacity(1),
        health: None,
    };
    let info = || (*dev.info).clone();
    match &e {
        ns::Event::Up(up) => {
            let data = lorikeet_app::decrypt_uplink_payload(up);
            let recv_time = up.rx_info.first().map_or(now, |r| r.ns_time);
            out.seen_at = Some(recv_time);
            // The strongest copy: what the device's link is at best.
            if let Some(best) = up.rx_info.iter().max_by_key(|r| r.rssi_dbm) {
                out.health = Some(WriteOp::DeviceLink(LinkSample {
                    dev_eui,
                    at: convert::utc(recv_time),
                    f_cnt: up.f_cnt,
                    dr: up.dr,
                    rssi_dbm: best.rssi_dbm,
                    snr_db: best.snr_db,
                }));
            }
            let mut object = None;
            let mut problem: Option<(LogLevel, String)> = None;
            if let Some(f_port) = up.f_port.filter(|p| *p > 0) {
                let input = UplinkInput {
                    bytes: data.clone(),
                    f_port,
                    recv_time,
                    variables: BTreeMap::new(),
                };
                match codecs.decode_uplink(&dev.codec, input).await {
                    Ok(Some(d)) => {
                        object = Some(d.object);
                        if !d.warnings.is_empty() {
                            problem = Some((
                                LogLevel::Warning,
                                format!("codec warnings: {}", d.warnings.join("; ")),
                            ));
                        }
                    }
                    Ok(None) => {}
                    Err(err) => {
                        metrics::counter!("lorikeet_codec_errors_total", "direction" => "uplink")
                            .increment(1);
                        problem = Some((
                            LogLevel::Error,
                            format!("decoding the uplink failed: {err}"),
                        ));
                    }
                }
            }
            // The hot path: serialised straight from the event struct.
            let body =
                lorikeet_app::up_event_json(up, info(), &data, object, &dev.region_config_id, now);
            out.events.push((EventType::Up, body.into()));
            if let Some((level, description)) = problem {
                let context = BTreeMap::from([
                    (
                        "deduplication_id".to_owned(),
                        up.deduplication_id.to_string(),
                    ),
                    ("f_cnt".to_owned(), up.f_cnt.to_string()),
                ]);
                out.events.push(text(lorikeet_app::app_log_event(
                    info(),
                    level,
                    "UPLINK_CODEC",
                    description,
                    context,
                    now,
                )));
            }
        }
        other => {
            if let ns::Event::Status {
                margin_db,
                external_power_source,
                battery_level_percent,
                ..
            } = other
            {
                out.health = Some(WriteOp::DeviceStatus {
                    dev_eui,
                    at: convert::utc(now),
                    battery_percent: *battery_level_percent,
                    external_power: *external_power_source,
                    margin_db: *margin_db,
                });
            }
            if let Some(ev) = lorikeet_app::other_event(other, info(), now) {
                out.events.push(text(ev));
            }
        }
    }
    out
}

impl AppTask {
    /// Runs until the core's event channel closes (shutdown), then finishes what is
    /// being decoded and returns.
    pub async fn run(mut self) {
        let mut pending = FuturesOrdered::new();
        let mut held: VecDeque<(u64, Published)> = VecDeque::new();
        let mut committed = self.writer.watch_committed();
        loop {
            tokio::select! {
                biased;
                Some(u) = self.updates.recv() => self.apply(u),
                Ok(()) = committed.changed(), if !held.is_empty() => {
                    let upto = *committed.borrow_and_update();
                    self.publish(&mut held, upto);
                }
                Some(p) = pending.next(), if !pending.is_empty() => {
                    self.emit(p, &mut held).await;
                    // An idle writer may have committed already.
                    let upto = *committed.borrow();
                    self.publish(&mut held, upto);
                }
                e = self.events.recv(), if pending.len() < MAX_IN_FLIGHT => match e {
                    Some(mut e) => {
                        let dev_eui = dev_eui_of(&e);
                        match self.devices.get(&dev_eui) {
                            Some(dev) => {
                                hide_private_gateways(&mut e, dev.info.tenant_id, &self.gateways);
                                pending.push_back(prepare(e, dev.clone(), self.codecs.clone()));
                            }
                            None => {
                                debug!(%dev_eui, "event for a device without application context; dropped");
                                metrics::counter!("lorikeet_events_dropped_total", "reason" => "unknown_device")
                                    .increment(1);
                            }
                        }
                    }
                    None => break,
                },
            }
        }
        while let Some(p) = pending.next().await {
            self.emit(p, &mut held).await;
        }
        if let Some(&(last, _)) = held.back() {
            // Shutdown bounds this wait.
            let _ = committed.wait_for(|c| *c >= last).await;
            self.publish(&mut held, last);
        }
    }

    /// Publishes, in order, the held events whose rows are committed.
    fn publish(&self, held: &mut VecDeque<(u64, Published)>, committed: u64) {
        while held.front().is_some_and(|(seq, _)| *seq <= committed) {
            if let Some((_, p)) = held.pop_front() {
                let _ = self.live.send(p);
            }
        }
    }

    fn apply(&mut self, u: AppUpdate) {
        match u {
            AppUpdate::Device(dev_eui, d) => {
                self.devices.insert(dev_eui, d);
            }
            AppUpdate::Remove(dev_eui) => {
                self.devices.remove(&dev_eui);
            }
            AppUpdate::Applied(at) => {
                self.applied.send_replace(at);
            }
            AppUpdate::Gateway(id, Some(owner)) => {
                self.gateways.insert(id, owner);
            }
            AppUpdate::Gateway(id, None) => {
                self.gateways.remove(&id);
            }
            AppUpdate::Profile {
                id,
                name,
                codec,
                region_config_id,
                class_c,
            } => {
                for d in self.devices.values_mut().filter(|d| d.profile_id == id) {
                    let info = Arc::make_mut(&mut d.info);
                    info.device_profile_name.clone_from(&name);
                    info.device_class_enabled = if class_c {
                        DeviceClass::ClassC
                    } else {
                        DeviceClass::ClassA
                    };
                    d.codec = codec.clone();
                    d.region_config_id = region_config_id.clone();
                }
            }
            AppUpdate::Application { id, name } => {
                for d in self.devices.values_mut().filter(|d| d.application_id == id) {
                    Arc::make_mut(&mut d.info)
                        .application_name
                        .clone_from(&name);
                }
            }
            AppUpdate::Tenant { id, name } => {
                for d in self.devices.values_mut().filter(|d| d.info.tenant_id == id) {
                    Arc::make_mut(&mut d.info).tenant_name.clone_from(&name);
                }
            }
        }
    }

    async fn emit(&mut self, p: Prepared, held: &mut VecDeque<(u64, Published)>) {
        let now = convert::utc(SystemTime::now());
        if let Some(at) = p.seen_at {
            let _ = self
                .writer
                .send(WriteOp::DeviceSeen {
                    dev_eui: p.dev_eui,
                    at: convert::utc(at),
                })
                .await;
        }
        if let Some(op) = p.health {
            let _ = self.writer.send(op).await;
        }
        for (event_type, body) in p.events {
            metrics::counter!("lorikeet_events_total", "type" => event_type.as_str()).increment(1);
            let op = WriteOp::InsertEvent(NewEvent {
                dev_eui: p.dev_eui,
                application_id: p.application_id,
                kind: kind(event_type),
                payload: body.clone(),
                created_at: now,
            });
            // Nothing reaches a subscriber before its row is committed: what MQTT or
            // an event stream showed is in the database after any crash.
            let Some(seq) = self.writer.send(op).await else {
                continue;
            };
            held.push_back((
                seq,
                Published {
                    dev_eui: p.dev_eui,
                    application_id: p.application_id,
                    kind: event_type,
                    body,
                },
            ));
        }
    }
}
