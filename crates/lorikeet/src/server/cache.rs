//! The in-memory view of provisioning: loaded once at start, then kept in step with
//! the API's change notifications by a loader task that does the database reads, so
//! the network-server loop never waits on the database.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use lorikeet_app::DeviceInfo;
use lorikeet_codec::{CodecConfig, Codecs, DownlinkInput};
use lorikeet_lorawan::Eui64;
use lorikeet_ns as ns;
use lorikeet_storage::{self as st, Change, Storage, StoreError};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::convert::{self, Regions};

/// What the application side needs per device.
#[derive(Debug, Clone)]
pub struct AppDevice {
    /// Its profile.
    pub profile_id: Uuid,
    /// `deviceInfo` of its events.
    pub info: Arc<DeviceInfo>,
    /// Its application.
    pub application_id: Uuid,
    /// Its profile's codec.
    pub codec: Arc<CodecConfig>,
    /// `regionConfigId`, e.g. `eu868`.
    pub region_config_id: Arc<str>,
}

/// An update for the network-server loop.
#[derive(Debug)]
pub enum NsUpdate {
    /// A device was created or changed: add it, or update its settings.
    Device(Box<ns::Device>),
    /// Root keys changed.
    Keys(Eui64, Option<ns::RootKeys>),
    /// A session was written from outside (ABP activation).
    Session(Eui64, Option<Box<ns::Session>>),
    /// The queue changed: the items to send, and those refused (id, why).
    Queue(Eui64, Vec<ns::QueueItem>, Vec<(Uuid, String)>),
    /// A device is gone.
    Remove(Eui64),
    /// A profile changed.
    Profile(Arc<ns::DeviceProfile>),
    /// Forget every device not in the set (after a resynchronisation).
    Retain(HashSet<Eui64>),
    /// A gateway's location changed, or (`None`) the gateway is gone.
    Gateway(Eui64, Option<super::ns_loop::GatewayLocation>),
}

/// An update for the application side.
#[derive(Debug)]
pub enum AppUpdate {
    /// Set or replace a device's entry.
    Device(Eui64, AppDevice),
    /// Remove a device.
    Remove(Eui64),
    /// Forget every device not in the set.
    Retain(HashSet<Eui64>),
    /// A profile was renamed or its codec changed.
    Profile {
        /// Profile id.
        id: Uuid,
        /// New name.
        name: String,
        /// New codec.
        codec: Arc<CodecConfig>,
        /// `regionConfigId`.
        region_config_id: Arc<str>,
        /// Whether devices run in Class C.
        class_c: bool,
    },
    /// An application was renamed.
    Application {
        /// Application id.
        id: Uuid,
        /// New name.
        name: String,
    },
    /// A tenant was renamed.
    Tenant {
        /// Tenant id.
        id: Uuid,
        /// New name.
        name: String,
    },
}

/// Everything loaded at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Devices for the core.
    pub devices: Vec<ns::Device>,
    /// Devices for the application side.
    pub app: HashMap<Eui64, AppDevice>,
    /// Gateways to register with the listener.
    pub gateways: Vec<st::Gateway>,
    /// Queue items whose object could not be encoded, per device.
    pub refused: Vec<(Eui64, Vec<(Uuid, String)>)>,
}

/// Context tables, keyed by id.
#[derive(Debug, Default)]
struct Context {
    tenants: HashMap<Uuid, st::Tenant>,
    applications: HashMap<Uuid, st::Application>,
    profiles: HashMap<Uuid, st::DeviceProfile>,
    ns_profiles: HashMap<Uuid, Arc<ns::DeviceProfile>>,
}

pub use lorikeet_service::codec_config;

fn app_device(
    d: &st::Device,
    profile: &st::DeviceProfile,
    app: &st::Application,
    tenant: &st::Tenant,
) -> AppDevice {
    AppDevice {
        profile_id: profile.id,
        info: Arc::new(convert::device_info(d, profile, app, tenant)),
        application_id: app.id,
        codec: Arc::new(codec_config(&profile.payload_codec)),
        region_config_id: Arc::from(profile.region.to_ascii_lowercase()),
    }
}

/// A device's queue for the core: items queued as an `object` are encoded with the
/// profile's codec; those that fail are returned separately with the reason.
pub async fn encode_queue(
    codecs: &Codecs,
    codec: &CodecConfig,
    items: &[st::QueueItem],
) -> (Vec<ns::QueueItem>, Vec<(Uuid, String)>) {
    let mut ok = Vec::with_capacity(items.len());
    let mut refused = Vec::new();
    for q in items {
        let mut item = convert::queue_item(q);
        if let (Some(object), true) = (&q.object, q.data.is_empty()) {
            let input = DownlinkInput {
                object: object.clone(),
                f_port: Some(q.f_port),
                variables: BTreeMap::new(),
            };
            match codecs.encode_downlink(codec, input).await {
                Ok(enc) => {
                    item.data = enc.bytes;
                    item.f_port = enc.f_port.unwrap_or(q.f_port);
                }
                Err(e) => {
                    metrics::counter!("lorikeet_codec_errors_total", "direction" => "downlink")
                        .increment(1);
                    refused.push((q.id, format!("encoding the queued object failed: {e}")));
                    continue;
                }
            }
        }
        ok.push(item);
    }
    (ok, refused)
}

/// Loads every device, session, key, queue item and gateway.
pub async fn load_all(
    storage: &dyn Storage,
    regions: &mut Regions,
    codecs: &Codecs,
) -> Result<Loaded, StoreError> {
    let mut ctx = Context::default();
    for t in storage.load_all_tenants().await? {
        ctx.tenants.insert(t.id, t);
    }
    for a in storage.load_all_applications().await? {
        ctx.applications.insert(a.id, a);
    }
    for p in storage.load_all_device_profiles().await? {
        match convert::profile(&p, regions) {
            Ok(np) => {
                ctx.ns_profiles.insert(p.id, np);
            }
            Err(e) => {
                warn!(profile = %p.id, "device profile unusable, its devices are not served: {e}")
            }
        }
        ctx.profiles.insert(p.id, p);
    }
    // The large tables are read side by side: the database sends one while we
    // decode another.
    let (sessions, keys, queue_items, devices) = tokio::try_join!(
        storage.load_all_sessions(),
        storage.load_all_device_keys(),
        storage.load_all_queue_items(),
        storage.load_all_devices(),
    )?;
    let mut sessions: HashMap<Eui64, st::DeviceSession> =
        sessions.into_iter().map(|s| (s.dev_eui, s)).collect();
    let mut keys: HashMap<Eui64, st::DeviceKeys> =
        keys.into_iter().map(|k| (k.dev_eui, k)).collect();
    let mut queues: HashMap<Eui64, Vec<st::QueueItem>> = HashMap::new();
    for q in queue_items {
        queues.entry(q.dev_eui).or_default().push(q);
    }
    let mut out = Loaded::default();
    out.devices.reserve(devices.len());
    out.app.reserve(devices.len());
    for d in devices {
        let (Some(p), Some(np), Some(a)) = (
            ctx.profiles.get(&d.device_profile_id),
            ctx.ns_profiles.get(&d.device_profile_id),
            ctx.applications.get(&d.application_id),
        ) else {
            continue;
        };
        let Some(t) = ctx.tenants.get(&a.tenant_id) else {
            continue;
        };
        let k = keys.remove(&d.dev_eui);
        let s = sessions.remove(&d.dev_eui);
        let q = queues.remove(&d.dev_eui).unwrap_or_default();
        let mut device = convert::device(&d, np.clone(), k.as_ref(), s.as_ref(), &[]);
        if !q.is_empty() {
            let (items, refused) = encode_queue(codecs, &codec_config(&p.payload_codec), &q).await;
            device.queue = items.into();
            if !refused.is_empty() {
                out.refused.push((d.dev_eui, refused));
            }
        }
        out.devices.push(device);
        out.app.insert(d.dev_eui, app_device(&d, p, a, t));
    }
    out.gateways = storage.load_all_gateways().await?;
    Ok(out)
}

/// Reads one device completely.
async fn load_device(
    storage: &dyn Storage,
    regions: &mut Regions,
    codecs: &Codecs,
    dev_eui: Eui64,
) -> Result<Option<(ns::Device, AppDevice, Vec<(Uuid, String)>)>, StoreError> {
    let Some(c) = storage.get_device_context(dev_eui).await? else {
        return Ok(None);
    };
    let np = match convert::profile(&c.profile, regions) {
        Ok(p) => p,
        Err(e) => {
            warn!(%dev_eui, "device profile unusable: {e}");
            return Ok(None);
        }
    };
    let keys = storage.get_device_keys(dev_eui).await?;
    let session = storage.get_session(dev_eui).await?;
    let queue = storage.get_queue(dev_eui).await?;
    let mut d = convert::device(&c.device, np, keys.as_ref(), session.as_ref(), &[]);
    let (items, refused) =
        encode_queue(codecs, &codec_config(&c.profile.payload_codec), &queue).await;
    d.queue = items.into();
    let a = app_device(&c.device, &c.profile, &c.application, &c.tenant);
    Ok(Some((d, a, refused)))
}

/// Where the loader sends what it read.
#[derive(Debug, Clone)]
pub struct Sinks {
    /// To the network-server loop.
    pub ns: mpsc::Sender<NsUpdate>,
    /// To the application side.
    pub app: mpsc::Sender<AppUpdate>,
    /// To the gateway listener.
    pub gateways: lorikeet_gateway::GatewayHandle,
    /// The codec pool (to encode downlinks queued as objects).
    pub codecs: Codecs,
}

/// Follows the API's changes until shutdown, reloading what changed.
pub async fn follow_changes(
    storage: Arc<dyn Storage>,
    mut regions: Regions,
    mut changes: broadcast::Receiver<Change>,
    sinks: Sinks,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let change = tokio::select! {
            _ = shutdown.changed() => return,
            c = changes.recv() => c,
        };
        let change = match change {
            Ok(c) => c,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!("missed {n} provisioning changes; reloading every device");
                if let Err(e) = resync(&*storage, &mut regions, &sinks).await {
                    warn!("resync failed: {e}");
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        debug!(?change, "provisioning change");
        // A failed read is retried a few times: the change is in the database already.
        for attempt in 0..3 {
            match apply_change(&*storage, &mut regions, &sinks, &change).await {
                Ok(()) => break,
                Err(e) => {
                    warn!(
                        ?change,
                        attempt, "could not load a provisioning change: {e}"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
        }
    }
}

async fn send_device(sinks: &Sinks, d: ns::Device, a: AppDevice) {
    let dev_eui = d.dev_eui;
    let _ = sinks.app.send(AppUpdate::Device(dev_eui, a)).await;
    let _ = sinks.ns.send(NsUpdate::Device(Box::new(d))).await;
}

async fn remove_device(sinks: &Sinks, dev_eui: Eui64) {
    let _ = sinks.app.send(AppUpdate::Remove(dev_eui)).await;
    let _ = sinks.ns.send(NsUpdate::Remove(dev_eui)).await;
}

async fn apply_change(
    storage: &dyn Storage,
    regions: &mut Regions,
    sinks: &Sinks,
    change: &Change,
) -> Result<(), StoreError> {
    match change {
        Change::DeviceChanged(dev_eui) => {
            match load_device(storage, regions, &sinks.codecs, *dev_eui).await? {
                Some((d, a, refused)) => {
                    let items: Vec<ns::QueueItem> = d.queue.iter().cloned().collect();
                    send_device(sinks, d, a).await;
                    if !refused.is_empty() {
                        let _ = sinks
                            .ns
                            .send(NsUpdate::Queue(*dev_eui, items, refused))
                            .await;
                    }
                }
                None => remove_device(sinks, *dev_eui).await,
            }
        }
        Change::DeviceDeleted(dev_eui) => remove_device(sinks, *dev_eui).await,
        Change::DeviceKeysChanged(dev_eui) => {
            let keys = storage.get_device_keys(*dev_eui).await?;
            let root = keys.as_ref().map(|k| convert::join_parts(k).0);
            let _ = sinks.ns.send(NsUpdate::Keys(*dev_eui, root)).await;
        }
        Change::SessionChanged(dev_eui) => {
            let s = storage.get_session(*dev_eui).await?;
            let s = s.as_ref().map(|s| Box::new(convert::session(s)));
            let _ = sinks.ns.send(NsUpdate::Session(*dev_eui, s)).await;
        }
        Change::QueueChanged(dev_eui) => {
            let q = storage.get_queue(*dev_eui).await?;
            let codec = if q.iter().any(|i| i.object.is_some() && i.data.is_empty()) {
                match storage.get_device_context(*dev_eui).await? {
                    Some(c) => codec_config(&c.profile.payload_codec),
                    None => return Ok(()),
                }
            } else {
                CodecConfig::None
            };
            let (items, refused) = encode_queue(&sinks.codecs, &codec, &q).await;
            let _ = sinks
                .ns
                .send(NsUpdate::Queue(*dev_eui, items, refused))
                .await;
        }
        Change::ProfileChanged(id) => {
            if let Some(p) = storage.get_device_profile(*id).await? {
                match convert::profile(&p, regions) {
                    Ok(np) => {
                        let _ = sinks.ns.send(NsUpdate::Profile(np)).await;
                    }
                    Err(e) => warn!(profile = %id, "device profile unusable: {e}"),
                }
                let _ = sinks
                    .app
                    .send(AppUpdate::Profile {
                        id: p.id,
                        name: p.name.clone(),
                        codec: Arc::new(codec_config(&p.payload_codec)),
                        region_config_id: Arc::from(p.region.to_ascii_lowercase()),
                        class_c: p.supports_class_c,
                    })
                    .await;
            }
        }
        Change::ApplicationChanged(id) => {
            if let Some(a) = storage.get_application(*id).await? {
                let _ = sinks
                    .app
                    .send(AppUpdate::Application {
                        id: a.id,
                        name: a.name,
                    })
                    .await;
            }
        }
        Change::TenantChanged(id) => {
            if let Some(t) = storage.get_tenant(*id).await? {
                let _ = sinks
                    .app
                    .send(AppUpdate::Tenant {
                        id: t.id,
                        name: t.name,
                    })
                    .await;
            }
        }
        Change::ApplicationDeleted(_) | Change::TenantDeleted(_) => {
            resync(storage, regions, sinks).await?;
        }
        Change::GatewayChanged(id) => {
            if let Some(g) = storage.get_gateway(*id).await? {
                sinks
                    .gateways
                    .upsert_gateway(*id, lorikeet_gateway::GatewayPolicy::default());
                let location = super::ns_loop::GatewayLocation::of(&g);
                let _ = sinks.ns.send(NsUpdate::Gateway(*id, Some(location))).await;
            }
        }
        Change::GatewayDeleted(id) => {
            sinks.gateways.remove_gateway(*id);
            let _ = sinks.ns.send(NsUpdate::Gateway(*id, None)).await;
        }
        // Integrations are read by the delivery workers themselves.
        Change::IntegrationChanged(_) => {}
    }
    Ok(())
}

/// Reloads every device: adds and updates those present, removes the rest.
async fn resync(
    storage: &dyn Storage,
    regions: &mut Regions,
    sinks: &Sinks,
) -> Result<(), StoreError> {
    let loaded = load_all(storage, regions, &sinks.codecs).await?;
    let present: HashSet<Eui64> = loaded.devices.iter().map(|d| d.dev_eui).collect();
    info!(devices = present.len(), "provisioning resynchronised");
    let _ = sinks.ns.send(NsUpdate::Retain(present.clone())).await;
    let _ = sinks.app.send(AppUpdate::Retain(present)).await;
    for d in loaded.devices {
        let dev_eui = d.dev_eui;
        if let Some(a) = loaded.app.get(&dev_eui) {
            send_device(sinks, d, a.clone()).await;
        }
    }
    Ok(())
}
