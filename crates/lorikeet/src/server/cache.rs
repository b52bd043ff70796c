//! The in-memory view of provisioning: what the network-server loop and the
//! application task hold, how it is loaded at start, and the updates that keep it
//! in step with the database (sent by the change-feed follower, `follow.rs`, which
//! does the database reads, so neither loop ever waits on the database).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use lorikeet_app::DeviceInfo;
use lorikeet_codec::{CodecConfig, Codecs, DownlinkInput};
use lorikeet_lorawan::Eui64;
use lorikeet_ns as ns;
use lorikeet_storage::{self as st, Storage, StoreError};
use tracing::warn;
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

/// Who owns a gateway and whether it is private: what decides whether a device's
/// events may show it (see `app::hide_private_gateways`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayOwner {
    /// The owning tenant.
    pub tenant_id: Uuid,
    /// Hidden from other tenants' events.
    pub private: bool,
}

impl GatewayOwner {
    /// The owner of a stored gateway.
    pub fn of(g: &st::Gateway) -> Self {
        GatewayOwner {
            tenant_id: g.tenant_id,
            private: g.private,
        }
    }
}

/// Which parts of a device a feed batch changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parts {
    /// Its root keys.
    pub keys: bool,
    /// Its session (ABP activation).
    pub session: bool,
    /// Its downlink queue.
    pub queue: bool,
}

/// An update for the network-server loop.
#[derive(Debug)]
pub enum NsUpdate {
    /// A device as stored now. A device the core does not hold yet is added whole;
    /// one it holds gets its provisioned settings and the `parts` that changed (its
    /// session, counters and join state in memory are newer than the database's).
    Device {
        /// The device with its keys, session and queue as stored.
        device: Box<ns::Device>,
        /// What changed besides the settings.
        parts: Parts,
        /// Queue items whose object could not be encoded (id, why).
        refused: Vec<(Uuid, String)>,
    },
    /// A device is gone.
    Remove(Eui64),
    /// A profile changed.
    Profile(Arc<ns::DeviceProfile>),
    /// A gateway's location changed, or (`None`) the gateway is gone.
    Gateway(Eui64, Option<super::ns_loop::GatewayLocation>),
    /// Everything before this feed position has been sent: report it applied.
    Applied(st::FeedPosition),
}

/// An update for the application side.
#[derive(Debug)]
pub enum AppUpdate {
    /// Set or replace a device's entry.
    Device(Eui64, AppDevice),
    /// Remove a device.
    Remove(Eui64),
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
    /// A gateway was created or changed, or (`None`) is gone.
    Gateway(Eui64, Option<GatewayOwner>),
    /// Everything before this feed position has been sent: report it applied.
    Applied(st::FeedPosition),
}

/// Everything loaded at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Tenants, applications and profiles (the follower keeps them current).
    pub catalog: Catalog,
    /// Devices for the core.
    pub devices: Vec<ns::Device>,
    /// Devices for the application side.
    pub app: HashMap<Eui64, AppDevice>,
    /// Gateways to register with the listener.
    pub gateways: Vec<st::Gateway>,
    /// Queue items whose object could not be encoded, per device.
    pub refused: Vec<(Eui64, Vec<(Uuid, String)>)>,
}

/// Tenants, applications and profiles by id: what a device's events and its core
/// entry are built from.
#[derive(Debug, Default)]
pub struct Catalog {
    pub(crate) tenants: HashMap<Uuid, st::Tenant>,
    pub(crate) applications: HashMap<Uuid, st::Application>,
    pub(crate) profiles: HashMap<Uuid, st::DeviceProfile>,
    /// The core's view of each usable profile.
    pub(crate) ns_profiles: HashMap<Uuid, Arc<ns::DeviceProfile>>,
}

pub use lorikeet_service::codec_config;

pub(crate) fn app_device(
    d: &st::Device,
    profile: &st::DeviceProfile,
    app: &st::Application,
    tenant: &st::Tenant,
) -> AppDevice {
    AppDevice {
        profile_id: profile.id,
        info: Arc::new(convert::device_info(d, profile, app, tenant)),
        application_id: app.id,
        codec: Arc::new(codec_config(&profile.payload_codec, profile.id)),
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
    let mut ctx = Catalog::default();
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
            let (items, refused) =
                encode_queue(codecs, &codec_config(&p.payload_codec, p.id), &q).await;
            device.queue = items.into();
            if !refused.is_empty() {
                out.refused.push((d.dev_eui, refused));
            }
        }
        out.devices.push(device);
        out.app.insert(d.dev_eui, app_device(&d, p, a, t));
    }
    out.gateways = storage.load_all_gateways().await?;
    out.catalog = ctx;
    Ok(out)
}
