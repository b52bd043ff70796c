//! The application side: turns the core's events into integration events (decrypting
//! and decoding uplinks), and hands them to storage, which writes each event and its
//! outbox rows in one transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use lorikeet_app::{DeviceClass, EventType, IntegrationEvent};
use lorikeet_lorawan::Eui64;
use lorikeet_ns as ns;
use lorikeet_storage::{EventKind, NewEvent, WriteOp};
use tokio::sync::{broadcast, mpsc};
use tracing::debug;

use super::cache::{AppDevice, AppUpdate};
use super::convert;

/// An event as stored and delivered, for live subscribers.
#[derive(Debug, Clone)]
pub struct Published {
    /// The device.
    pub dev_eui: Eui64,
    /// Its application.
    pub application_id: uuid::Uuid,
    /// The event.
    pub event: IntegrationEvent,
}

/// The application task's state.
#[derive(Debug)]
pub struct AppTask {
    pub(crate) devices: HashMap<Eui64, AppDevice>,
    pub(crate) events: mpsc::Receiver<ns::Event>,
    pub(crate) updates: mpsc::Receiver<AppUpdate>,
    pub(crate) writer: mpsc::Sender<WriteOp>,
    pub(crate) live: broadcast::Sender<Published>,
}

fn kind(t: EventType) -> EventKind {
    match t {
        EventType::Up => EventKind::Up,
        EventType::Join => EventKind::Join,
        EventType::Ack => EventKind::Ack,
        EventType::Txack => EventKind::TxAck,
        EventType::Status => EventKind::Status,
        EventType::Log => EventKind::Log,
        EventType::Location => EventKind::Location,
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

impl AppTask {
    /// Runs until the core's event channel closes (shutdown), then returns.
    pub async fn run(mut self) {
        loop {
            tokio::select! {
                biased;
                Some(u) = self.updates.recv() => self.apply(u),
                e = self.events.recv() => match e {
                    Some(e) => self.handle(e).await,
                    None => break,
                },
            }
        }
        // Drain updates that raced with shutdown; nothing else to do.
        while self.updates.try_recv().is_ok() {}
    }

    fn apply(&mut self, u: AppUpdate) {
        match u {
            AppUpdate::Device(dev_eui, d) => {
                self.devices.insert(dev_eui, d);
            }
            AppUpdate::Remove(dev_eui) => {
                self.devices.remove(&dev_eui);
            }
            AppUpdate::Retain(keep) => self.devices.retain(|k, _| keep.contains(k)),
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

    async fn handle(&mut self, e: ns::Event) {
        let dev_eui = dev_eui_of(&e);
        let Some(dev) = self.devices.get(&dev_eui) else {
            debug!(%dev_eui, "event for a device without application context; dropped");
            metrics::counter!("lorikeet_events_dropped_total", "reason" => "unknown_device")
                .increment(1);
            return;
        };
        let info = (*dev.info).clone();
        let application_id = dev.application_id;
        let now = SystemTime::now();
        let mut out = Vec::with_capacity(2);
        match &e {
            ns::Event::Up(up) => {
                let data = lorikeet_app::decrypt_uplink_payload(up);
                let object = None;
                out.push(lorikeet_app::up_event(
                    up,
                    info,
                    &data,
                    object,
                    &dev.region_config_id,
                ));
                let at = up.rx_info.first().map_or(now, |r| r.ns_time);
                let _ = self
                    .writer
                    .send(WriteOp::DeviceSeen {
                        dev_eui,
                        at: convert::utc(at),
                    })
                    .await;
            }
            other => {
                if let Some(ev) = lorikeet_app::other_event(other, info, now) {
                    out.push(ev);
                }
            }
        }
        for ev in out {
            metrics::counter!("lorikeet_events_total", "type" => ev.kind.as_str()).increment(1);
            let op = WriteOp::InsertEvent(NewEvent {
                dev_eui,
                application_id,
                kind: kind(ev.kind),
                payload: ev.body.clone(),
                created_at: convert::utc(now),
            });
            let _ = self.writer.send(op).await;
            let _ = self.live.send(Published {
                dev_eui,
                application_id,
                event: ev,
            });
        }
    }
}
