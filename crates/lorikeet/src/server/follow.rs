//! The change-feed follower: keeps the live state (the network-server loop, the
//! application task, the gateway registry, the webhook worker) in step with the
//! database of record.
//!
//! It reads the feed strictly in order from the position the start-up load was
//! taken at (`Storage::changes_after`), re-reads what each batch of entries names
//! (devices in a few batched queries), hands the results to the loops, and once both
//! loops have applied the batch publishes its position on `applied`. API writes
//! wait for that position before answering (read your writes). A notification (a
//! commit in this process, a Postgres NOTIFY from another) only says "read more";
//! the follower also reads on a short timer, so a lost notification delays nothing
//! for long and loses nothing. There is no full reload after start-up: the feed is
//! the only path, whatever the rate of changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use lorikeet_codec::Codecs;
use lorikeet_lorawan::Eui64;
use lorikeet_storage::{self as st, Change, Changed, FeedEntry, FeedPosition, Storage};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::cache::{self, AppUpdate, Catalog, NsUpdate, Parts};
use super::convert::{self, Regions};
use super::ns_loop::GatewayLocation;

/// Entries read per round.
const BATCH: u32 = 2_048;
/// How often the feed is read without a notification (changes by another process
/// whose notification was lost, or Postgres without LISTEN).
const POLL: Duration = Duration::from_millis(500);
/// Pause before reading again when committed entries wait for an older
/// transaction still running (Postgres).
const UNORDERED_RETRY: Duration = Duration::from_millis(5);

/// Where the follower's results go, and where it reports progress.
#[derive(Debug)]
pub struct Sinks {
    /// To the network-server loop.
    pub ns: mpsc::Sender<NsUpdate>,
    /// Positions the network-server loop has applied.
    pub ns_applied: watch::Receiver<FeedPosition>,
    /// To the application side.
    pub app: mpsc::Sender<AppUpdate>,
    /// Positions the application side has applied.
    pub app_applied: watch::Receiver<FeedPosition>,
    /// To the gateway listener.
    pub gateways: lorikeet_gateway::GatewayHandle,
    /// The codec pool (to encode downlinks queued as objects by older versions).
    pub codecs: Codecs,
    /// Integration changes, for the webhook worker.
    pub integrations: broadcast::Sender<Change>,
    /// The position the whole live state has applied (API writes wait on it).
    pub applied: watch::Sender<FeedPosition>,
}

/// The follower's state.
#[derive(Debug)]
pub struct Follower {
    /// The store.
    pub storage: Arc<dyn Storage>,
    /// Band plans for profiles.
    pub regions: Regions,
    /// Tenants, applications and profiles as last read.
    pub catalog: Catalog,
    /// Where the results go.
    pub sinks: Sinks,
    /// The last position applied.
    pub cursor: FeedPosition,
}

/// What one batch of entries names, deduplicated.
#[derive(Debug, Default)]
struct Batch {
    tenants: BTreeSet<Uuid>,
    applications: BTreeSet<Uuid>,
    profiles: BTreeSet<Uuid>,
    devices: BTreeMap<Eui64, DeviceChange>,
    gateways: BTreeSet<Eui64>,
    integrations: BTreeSet<Uuid>,
}

#[derive(Debug, Default, Clone, Copy)]
struct DeviceChange {
    /// The parts besides the device row (settings are always taken).
    parts: Parts,
}

impl Batch {
    fn of(entries: &[FeedEntry]) -> Self {
        let mut b = Batch::default();
        for e in entries {
            let Some(c) = e.changed else {
                continue;
            };
            match c {
                Changed::Tenant(id) => {
                    b.tenants.insert(id);
                }
                Changed::Application(id) => {
                    b.applications.insert(id);
                }
                Changed::DeviceProfile(id) => {
                    b.profiles.insert(id);
                }
                Changed::Device(e) => {
                    b.devices.entry(e).or_default();
                }
                Changed::DeviceKeys(e) => b.devices.entry(e).or_default().parts.keys = true,
                Changed::Session(e) => b.devices.entry(e).or_default().parts.session = true,
                Changed::Queue(e) => b.devices.entry(e).or_default().parts.queue = true,
                Changed::Gateway(e) => {
                    b.gateways.insert(e);
                }
                Changed::Integration(app) => {
                    b.integrations.insert(app);
                }
                // Read per request by the API: nothing live to update.
                Changed::ApiKey(_) => {}
            }
        }
        b
    }
}

impl Follower {
    /// Follows the feed until shutdown.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let signals = self.storage.clone();
        let mut failures: u32 = 0;
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.storage.changes_after(self.cursor, BATCH).await {
                Ok(page) => {
                    failures = 0;
                    let n = page.entries.len();
                    if let Some(last) = page.entries.last().map(|e| e.position) {
                        if let Err(e) = self.apply(&page.entries).await {
                            // The database is the record: read the same entries again.
                            warn!(
                                entries = n,
                                "could not apply provisioning changes, retrying: {e}"
                            );
                            if pause(&mut shutdown, Duration::from_millis(200)).await {
                                return;
                            }
                            continue;
                        }
                        self.cursor = last;
                        if !self.confirm(last, &mut shutdown).await {
                            return;
                        }
                        metrics::counter!("lorikeet_feed_entries_applied_total")
                            .increment(n as u64);
                        debug!(entries = n, position = %last, "provisioning changes applied");
                    }
                    if page.more {
                        if n == 0 && pause(&mut shutdown, UNORDERED_RETRY).await {
                            return;
                        }
                        continue;
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = Duration::from_millis(100 * u64::from(failures.min(50)));
                    if failures.is_power_of_two() {
                        warn!(failures, "cannot read the change feed, retrying: {e}");
                    }
                    if pause(&mut shutdown, wait).await {
                        return;
                    }
                    continue;
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = signals.feed_signals().changed() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Tells both loops everything up to `at` was sent, waits until both applied it,
    /// then publishes it. False on shutdown.
    async fn confirm(&mut self, at: FeedPosition, shutdown: &mut watch::Receiver<bool>) -> bool {
        if self.sinks.ns.send(NsUpdate::Applied(at)).await.is_err()
            || self.sinks.app.send(AppUpdate::Applied(at)).await.is_err()
        {
            return false;
        }
        let (ns_rx, app_rx) = (&mut self.sinks.ns_applied, &mut self.sinks.app_applied);
        let ns = async { ns_rx.wait_for(|p| *p >= at).await.map(|_| ()) };
        let app = async { app_rx.wait_for(|p| *p >= at).await.map(|_| ()) };
        tokio::select! {
            _ = shutdown.changed() => return false,
            r = async { tokio::try_join!(ns, app) } => if r.is_err() { return false },
        }
        self.sinks.applied.send_replace(at);
        true
    }

    /// Re-reads what `entries` name and sends it on. An error leaves the cursor
    /// where it was: the same entries are read again.
    async fn apply(&mut self, entries: &[FeedEntry]) -> Result<(), st::StoreError> {
        let b = Batch::of(entries);
        let storage = self.storage.clone();
        for id in &b.tenants {
            match storage.get_tenant(*id).await? {
                Some(t) => {
                    let _ = self
                        .sinks
                        .app
                        .send(AppUpdate::Tenant {
                            id: t.id,
                            name: t.name.clone(),
                        })
                        .await;
                    self.catalog.tenants.insert(t.id, t);
                }
                None => {
                    self.catalog.tenants.remove(id);
                }
            }
        }
        for id in &b.applications {
            match storage.get_application(*id).await? {
                Some(a) => {
                    let _ = self
                        .sinks
                        .app
                        .send(AppUpdate::Application {
                            id: a.id,
                            name: a.name.clone(),
                        })
                        .await;
                    self.catalog.applications.insert(a.id, a);
                }
                None => {
                    self.catalog.applications.remove(id);
                }
            }
        }
        for id in &b.profiles {
            match storage.get_device_profile(*id).await? {
                Some(p) => {
                    match convert::profile(&p, &mut self.regions) {
                        Ok(np) => {
                            self.catalog.ns_profiles.insert(p.id, np.clone());
                            let _ = self.sinks.ns.send(NsUpdate::Profile(np)).await;
                        }
                        Err(e) => {
                            warn!(profile = %id, "device profile unusable: {e}");
                            self.catalog.ns_profiles.remove(id);
                        }
                    }
                    let _ = self
                        .sinks
                        .app
                        .send(AppUpdate::Profile {
                            id: p.id,
                            name: p.name.clone(),
                            codec: Arc::new(cache::codec_config(&p.payload_codec, p.id)),
                            region_config_id: Arc::from(p.region.to_ascii_lowercase()),
                            class_c: p.supports_class_c,
                        })
                        .await;
                    self.catalog.profiles.insert(p.id, p);
                }
                None => {
                    self.catalog.profiles.remove(id);
                    self.catalog.ns_profiles.remove(id);
                }
            }
        }
        if !b.devices.is_empty() {
            self.devices(&b.devices).await?;
        }
        for id in &b.gateways {
            match storage.get_gateway(*id).await? {
                Some(g) => {
                    self.sinks
                        .gateways
                        .upsert_gateway(*id, lorikeet_gateway::GatewayPolicy::default());
                    let _ = self
                        .sinks
                        .app
                        .send(AppUpdate::Gateway(*id, Some(cache::GatewayOwner::of(&g))))
                        .await;
                    let location = GatewayLocation::of(&g);
                    let _ = self
                        .sinks
                        .ns
                        .send(NsUpdate::Gateway(*id, Some(location)))
                        .await;
                }
                None => {
                    self.sinks.gateways.remove_gateway(*id);
                    let _ = self.sinks.app.send(AppUpdate::Gateway(*id, None)).await;
                    let _ = self.sinks.ns.send(NsUpdate::Gateway(*id, None)).await;
                }
            }
        }
        for app in &b.integrations {
            let _ = self
                .sinks
                .integrations
                .send(Change::IntegrationChanged(*app));
        }
        Ok(())
    }

    /// Reloads the named devices (a few queries for the whole batch) and sends each
    /// on, or its removal.
    async fn devices(
        &mut self,
        changes: &BTreeMap<Eui64, DeviceChange>,
    ) -> Result<(), st::StoreError> {
        let euis: Vec<Eui64> = changes.keys().copied().collect();
        let states = self.storage.device_states(&euis).await?;
        let mut found = BTreeSet::new();
        for s in states {
            let dev_eui = s.device.dev_eui;
            found.insert(dev_eui);
            let change = changes.get(&dev_eui).copied().unwrap_or_default();
            let d = &s.device;
            let (Some(p), Some(np), Some(a)) = (
                self.catalog.profiles.get(&d.device_profile_id),
                self.catalog.ns_profiles.get(&d.device_profile_id),
                self.catalog.applications.get(&d.application_id),
            ) else {
                warn!(%dev_eui, "device's profile or application unusable or unknown: not served");
                self.remove(dev_eui).await;
                continue;
            };
            let Some(t) = self.catalog.tenants.get(&a.tenant_id) else {
                self.remove(dev_eui).await;
                continue;
            };
            let app = cache::app_device(d, p, a, t);
            let mut device =
                convert::device(d, np.clone(), s.keys.as_ref(), s.session.as_ref(), &[]);
            let (items, refused) = cache::encode_queue(
                &self.sinks.codecs,
                &cache::codec_config(&p.payload_codec, p.id),
                &s.queue,
            )
            .await;
            device.queue = items.into();
            let _ = self.sinks.app.send(AppUpdate::Device(dev_eui, app)).await;
            // A device the core does not hold yet is added whole; otherwise only its
            // settings and the parts the entries name are taken.
            let parts = change.parts;
            let _ = self
                .sinks
                .ns
                .send(NsUpdate::Device {
                    device: Box::new(device),
                    parts,
                    refused,
                })
                .await;
        }
        for dev_eui in euis.into_iter().filter(|e| !found.contains(e)) {
            self.remove(dev_eui).await;
        }
        Ok(())
    }

    async fn remove(&self, dev_eui: Eui64) {
        let _ = self.sinks.app.send(AppUpdate::Remove(dev_eui)).await;
        let _ = self.sinks.ns.send(NsUpdate::Remove(dev_eui)).await;
    }
}

/// Sleeps `d`; true if shutdown was asked for meanwhile.
async fn pause(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = shutdown.changed() => true,
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
    }
}

/// Logs where the follower starts.
pub fn started(at: FeedPosition) {
    info!(position = %at, "following the change feed");
}
