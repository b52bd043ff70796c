//! The webhook worker: delivers each application's events to its webhook, in order
//! per device, with retries.
//!
//! - **Fresh events** are read straight from the events table, in id order, after
//!   each integration's cursor (one indexed read per page, no write per event). When
//!   the endpoint answers 2xx nothing is written at all, apart from the cursor a few
//!   times a second. This is the path a healthy endpoint keeps to.
//! - **Retries** go through the outbox: an event whose delivery failed is written
//!   there with its backoff, together with the device's later events (which must
//!   wait behind it), and the device stays on the outbox path until its chain is
//!   empty again. Only the oldest row of an (integration, device) chain is ever
//!   claimed, so order per device holds there too.
//! - Nothing here is on the uplink path. A slow or dead endpoint costs its own lane
//!   only: while it keeps failing, fresh events wait in the events table (the
//!   cursor stops) and only its retries probe it, one at a time.
//! - At least once: the cursor passes an event only once it was delivered, given up
//!   or written to the outbox, and an outbox row leaves only after a 2xx. A crash
//!   sends what was in flight again; the body, and so its `deduplicationId`, is the
//!   same every time.
//! - Integration settings are parsed once, when they change (the API's change
//!   broadcast), never per event.
//!
//! One process delivers a database's webhooks (the cursors are not shared between
//! processes).

pub(crate) mod client;
mod lanes;
pub mod target;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lorikeet_lorawan::Eui64;
use lorikeet_service::target::TargetGuard;
use lorikeet_storage::{Change, DeliveryCursor, OutboxItem, PendingEvent, SpillRow, Storage};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{broadcast, mpsc, watch, Notify};
use tracing::{info, warn};
use uuid::Uuid;

use crate::backoff::retry_delay;
use crate::config::WebhookConfig;
use crate::error::{DeliveryError, TargetError};
use crate::metrics as m;
use crate::ratelimit::LogLimiter;
use crate::sink::{self, Out, Sink};
use lanes::{Limits, Outcome, Scheduler};

/// How often one failing integration (or one kind of storage failure) may log.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// How often delivery cursors are saved while they move.
const CURSOR_SAVE_EVERY: Duration = Duration::from_millis(250);

/// Where a job came from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Read from the events table: its first attempt.
    Fresh {
        event_id: i64,
        created_at: DateTime<Utc>,
    },
    /// An outbox row (a retry, or an event waiting behind one).
    Outbox {
        id: i64,
        attempts: u32,
        lease_until: Instant,
    },
}

/// A delivery waiting in its lane.
struct Job {
    source: Source,
    event_id: i64,
    dev_eui: Eui64,
    kind: &'static str,
    body: Vec<u8>,
}

/// A finished request.
struct Done {
    lane: Uuid,
    source: Source,
    dev_eui: Eui64,
    /// `None`: not attempted (its lease ran short, or its integration went away).
    result: Option<Result<(), DeliveryError>>,
}

/// What the worker knows about an integration.
enum Known {
    Usable(Arc<dyn Sink>),
    Broken(TargetError),
}

/// One integration's reading of fresh events.
struct Feed {
    application_id: Uuid,
    /// The newest event id read.
    read_pos: i64,
    /// Fresh events read and not yet settled (waiting, in flight, or being written
    /// to the outbox): the cursor must not pass them.
    open: BTreeSet<i64>,
    /// The cursor as last saved.
    saved: i64,
    /// Devices whose events go through the outbox (their chain has rows).
    slow: HashSet<Eui64>,
    /// Devices with a fresh job in the lane, and the fresh jobs waiting behind it
    /// (one request per device at a time keeps the order).
    behind: HashMap<Eui64, VecDeque<Job>>,
    /// Jobs in `behind`.
    behind_count: usize,
    /// More events may be waiting past `read_pos`.
    more: bool,
    /// A successful delivery since the last save.
    delivered_at: Option<DateTime<Utc>>,
}

impl Feed {
    fn new(application_id: Uuid, cursor: i64) -> Self {
        Feed {
            application_id,
            read_pos: cursor,
            open: BTreeSet::new(),
            saved: cursor,
            slow: HashSet::new(),
            behind: HashMap::new(),
            behind_count: 0,
            more: true,
            delivered_at: None,
        }
    }

    /// Everything up to here is settled.
    fn cursor(&self) -> i64 {
        self.open.first().map_or(self.read_pos, |first| first - 1)
    }
}

/// The webhook worker. Build with [`WebhookWorker::new`], run with [`WebhookWorker::run`].
pub struct WebhookWorker {
    storage: Arc<dyn Storage>,
    config: WebhookConfig,
    shared: sink::Shared,
    targets: HashMap<Uuid, (DateTime<Utc>, Known)>,
    feeds: HashMap<Uuid, Feed>,
    /// Whether the devices with outbox rows were loaded (once, at start).
    chains_loaded: bool,
    sched: Scheduler<Job>,
    /// Claim again once this few rows are held.
    low_water: usize,
    /// Fresh events to move into the outbox before their feed's cursor may pass them.
    spill: Vec<SpillRow>,
    /// To the outcome writer (set while running).
    writes: Option<mpsc::UnboundedSender<Write>>,
    last_cursor_save: Instant,
    logs: LogLimiter<Uuid>,
    storage_logs: LogLimiter<&'static str>,
    rng: StdRng,
}

impl std::fmt::Debug for WebhookWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookWorker")
            .field("integrations", &self.targets.len())
            .field("held", &self.sched.held())
            .finish()
    }
}

impl WebhookWorker {
    /// A worker over `storage` (settings already validated); `guard` decides which
    /// addresses each integration may connect to (the SSRF guard, with the
    /// operator's allowlist).
    pub fn new(
        storage: Arc<dyn Storage>,
        config: WebhookConfig,
        guard: TargetGuard,
    ) -> Result<Self, String> {
        let clients = client::Clients::new(
            config.timeout(),
            config.concurrency_per_integration,
            guard.clone(),
            config.signature_version,
        )?;
        let limits = Limits {
            global: config.concurrency,
            per_lane: config.concurrency_per_integration,
            lane_queue: config.queue_per_integration,
            hold: config.concurrency
                + config
                    .queue_per_integration
                    .max(config.claim_batch as usize),
        };
        Ok(WebhookWorker {
            storage: storage.clone(),
            config,
            shared: sink::Shared {
                clients,
                guard,
                storage,
            },
            targets: HashMap::new(),
            feeds: HashMap::new(),
            chains_loaded: false,
            sched: Scheduler::new(limits),
            low_water: limits.hold / 2,
            spill: Vec::new(),
            writes: None,
            last_cursor_save: Instant::now(),
            logs: LogLimiter::new(LOG_EVERY),
            storage_logs: LogLimiter::new(LOG_EVERY),
            rng: StdRng::from_entropy(),
        })
    }

    /// Runs until `shutdown` turns true, then lets requests in flight finish for
    /// `webhook.shutdown_grace_ms` (the rest are sent again after a restart).
    ///
    /// `wake` is notified when new events were committed; `changes` is the API's
    /// change broadcast (integration settings are reloaded on
    /// [`Change::IntegrationChanged`] and when the broadcast lagged).
    pub async fn run(
        mut self,
        wake: Arc<Notify>,
        changes: broadcast::Receiver<Change>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        log_start(&self.config);
        self.reload().await;
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let (writes_tx, writes_rx) = mpsc::unbounded_channel::<Write>();
        let writer = tokio::spawn(write_outcomes(
            self.storage.clone(),
            writes_rx,
            wake.clone(),
        ));
        self.writes = Some(writes_tx);
        let mut changes = Some(changes);
        let mut poll = tokio::time::interval(Duration::from_millis(self.config.poll_interval_ms));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backlog = tokio::time::interval(Duration::from_secs(self.config.backlog_refresh_s));
        backlog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cursors = tokio::time::interval(CURSOR_SAVE_EVERY);
        cursors.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut claim_now = true;
        while !*shutdown.borrow() {
            while claim_now && self.sched.room() > 0 {
                claim_now = self.claim().await;
                self.start(&done_tx);
            }
            claim_now = false;
            self.read_feeds().await;
            self.flush_spill().await;
            self.start(&done_tx);
            tokio::select! {
                biased;
                r = shutdown.changed() => if r.is_err() { break },
                Some(first) = done_rx.recv() => {
                    let mut batch = vec![first];
                    while let Ok(d) = done_rx.try_recv() {
                        batch.push(d);
                    }
                    self.finish(batch, &done_tx);
                    // Claim when the lanes run low rather than after every batch, so
                    // claims stay large (one round trip for many rows). The outcome
                    // writer wakes us when delivered rows made their chains due.
                    claim_now = self.sched.held() <= self.low_water;
                }
                c = next_change(&mut changes) => {
                    match c {
                        Ok(Change::IntegrationChanged(_) | Change::ApplicationDeleted(_) | Change::TenantDeleted(_)) => self.reload().await,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => self.reload().await,
                        Err(broadcast::error::RecvError::Closed) => changes = None,
                    }
                    claim_now = true;
                }
                _ = wake.notified() => {
                    self.mark_more();
                    claim_now = self.sched.held() <= self.low_water;
                }
                _ = poll.tick() => {
                    self.mark_more();
                    claim_now = true;
                }
                _ = cursors.tick() => self.save_cursors(false),
                _ = backlog.tick() => self.refresh_backlog().await,
            }
        }
        // Shutdown: no new requests; let those in flight end within the grace time.
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.shutdown_grace_ms);
        while self.sched.in_flight() > 0 {
            match tokio::time::timeout_at(deadline, done_rx.recv()).await {
                Ok(Some(d)) => self.finish(vec![d], &done_tx),
                _ => break,
            }
        }
        if self.sched.in_flight() > 0 {
            warn!(
                in_flight = self.sched.in_flight(),
                "webhook requests still running at shutdown; they are sent again after a restart"
            );
        }
        self.flush_spill().await;
        self.save_cursors(true);
        // Let the outcomes reach the database (rows not written are sent again).
        self.writes = None;
        let _ = tokio::time::timeout_at(deadline + Duration::from_secs(1), writer).await;
    }

    /// The kind of an integration, for metric labels.
    fn kind_of(&self, lane: Uuid) -> &'static str {
        match self.targets.get(&lane) {
            Some((_, Known::Usable(sink))) => sink.kind(),
            _ => "unknown",
        }
    }

    /// Re-reads the integrations (on start and when the API changed one).
    async fn reload(&mut self) {
        let list = match self.storage.list_integrations(None).await {
            Ok(l) => l,
            Err(e) => {
                self.storage_error("list_integrations", &e);
                return;
            }
        };
        let mut next = HashMap::with_capacity(list.len());
        for i in list.iter().filter(|i| sink::delivered(i.kind)) {
            let changed = self
                .targets
                .get(&i.id)
                .is_none_or(|(updated, _)| *updated != i.updated_at);
            if changed {
                // New settings deserve a fresh start, not the old failure streak.
                self.sched.reset_failures(i.id);
            } else if let Some((updated, Known::Usable(sink))) = self.targets.get(&i.id) {
                // Unchanged: keep its sink and with it the broker connection.
                next.insert(i.id, (*updated, Known::Usable(sink.clone())));
                continue;
            }
            let known = match sink::build(i, &self.shared) {
                Ok(t) => Known::Usable(t),
                Err(e) => {
                    if changed {
                        warn!(integration = %i.id, application = %i.application_id, kind = i.kind.as_str(), "integration cannot be used: {e}");
                        // Its events wait in the events table (its cursor stays) until
                        // the settings are fixed; the API shows why.
                        let err = DeliveryError::Target(e.clone()).to_string();
                        if let Err(se) = self
                            .storage
                            .integration_failed(i.id, &err, Utc::now())
                            .await
                        {
                            self.storage_error("integration_failed", &se);
                        }
                    }
                    Known::Broken(e)
                }
            };
            next.insert(i.id, (i.updated_at, known));
        }
        let gone: Vec<Uuid> = self
            .targets
            .keys()
            .filter(|k| !next.contains_key(k))
            .copied()
            .collect();
        for id in gone {
            // Deleted with its outbox rows: what waits in memory has nothing to send.
            let dropped = self.sched.drain_lane(id);
            if !dropped.is_empty() {
                info!(integration = %id, rows = dropped.len(), "webhook deleted; its waiting events are dropped");
            }
            self.feeds.remove(&id);
            self.spill.retain(|r| r.integration_id != id);
            metrics::gauge!(m::BACKLOG, "integration" => id.to_string()).set(0.0);
        }
        self.targets = next;
        self.start_feeds(&list).await;
    }

    /// Starts reading fresh events for integrations that have no feed yet.
    async fn start_feeds(&mut self, list: &[lorikeet_storage::Integration]) {
        let new: Vec<&lorikeet_storage::Integration> = list
            .iter()
            .filter(|i| sink::delivered(i.kind) && !self.feeds.contains_key(&i.id))
            .collect();
        if new.is_empty() && self.chains_loaded {
            return;
        }
        let cursors = match self.storage.delivery_cursors().await {
            Ok(c) => c,
            Err(e) => {
                // Retried at the next reload or poll.
                self.storage_error("delivery_cursors", &e);
                return;
            }
        };
        let active = if self.chains_loaded {
            Vec::new()
        } else {
            match self.storage.outbox_active_chains().await {
                Ok(a) => a,
                Err(e) => {
                    self.storage_error("outbox_active_chains", &e);
                    return;
                }
            }
        };
        for i in new {
            if let Some(c) = cursors.iter().find(|c| c.integration_id == i.id) {
                self.feeds
                    .insert(i.id, Feed::new(i.application_id, c.delivered_through));
            }
        }
        for (integration, dev_eui) in active {
            if let Some(f) = self.feeds.get_mut(&integration) {
                f.slow.insert(dev_eui);
            }
        }
        self.chains_loaded = true;
    }

    fn mark_more(&mut self) {
        for f in self.feeds.values_mut() {
            f.more = true;
        }
    }

    /// Reads fresh events for every integration that has room for them and an
    /// endpoint worth trying (usable, not failing).
    async fn read_feeds(&mut self) {
        if !self.chains_loaded || self.feeds.len() < self.targets.len() {
            let list = match self.storage.list_integrations(None).await {
                Ok(l) => l,
                Err(e) => {
                    self.storage_error("list_integrations", &e);
                    return;
                }
            };
            self.start_feeds(&list).await;
        }
        let lane_cap = self.config.concurrency_per_integration + self.config.queue_per_integration;
        let ids: Vec<Uuid> = self.feeds.keys().copied().collect();
        for id in ids {
            loop {
                let usable = matches!(self.targets.get(&id), Some((_, Known::Usable(_))));
                let Some(feed) = self.feeds.get(&id) else {
                    break;
                };
                if !feed.more || !usable || self.sched.is_failing(id) {
                    break;
                }
                let room = self.sched.lane_free(id).saturating_sub(feed.behind_count);
                // Small reads cost a round trip each; wait until a fair share is free
                // (unless the lane is idle).
                let lane_idle = self.sched.lane_free(id) == lane_cap.min(self.sched.room())
                    && feed.behind_count == 0;
                if room == 0 || (room < lane_cap / 4 && !lane_idle) {
                    break;
                }
                let limit = room.min(self.config.claim_batch as usize);
                let (app, after) = (feed.application_id, feed.read_pos);
                let events = match self
                    .storage
                    .events_after(app, after, u32::try_from(limit).unwrap_or(u32::MAX))
                    .await
                {
                    Ok(e) => e,
                    Err(e) => {
                        self.storage_error("events_after", &e);
                        return;
                    }
                };
                let full = events.len() == limit;
                self.take_fresh(id, events);
                if let Some(f) = self.feeds.get_mut(&id) {
                    f.more = full;
                }
                if !full {
                    break;
                }
            }
        }
        metrics::gauge!(m::WEBHOOK_HELD).set(self.sched.held() as f64);
    }

    /// Routes freshly read events: into the lane, behind the device's job in the
    /// lane, or (for a device on the outbox path) into the outbox.
    fn take_fresh(&mut self, lane: Uuid, events: Vec<PendingEvent>) {
        let now = Utc::now();
        let max_age = self.max_age();
        let Some(feed) = self.feeds.get_mut(&lane) else {
            return;
        };
        for ev in events {
            if now - ev.created_at > max_age {
                metrics::counter!(m::WEBHOOK_EXPIRED).increment(1);
                feed.read_pos = ev.id;
                continue;
            }
            if feed.slow.contains(&ev.dev_eui) {
                feed.open.insert(ev.id);
                self.spill
                    .push(behind_retry(lane, ev.id, ev.dev_eui, ev.created_at, now));
                feed.read_pos = ev.id;
                continue;
            }
            let job = Job {
                source: Source::Fresh {
                    event_id: ev.id,
                    created_at: ev.created_at,
                },
                event_id: ev.id,
                dev_eui: ev.dev_eui,
                kind: ev.kind.as_str(),
                body: ev.body.into_bytes(),
            };
            if let Some(waiting) = feed.behind.get_mut(&ev.dev_eui) {
                waiting.push_back(job);
                feed.behind_count += 1;
            } else if let Err(job) = self.sched.offer(lane, job) {
                // No room after all: read it again later.
                drop(job);
                break;
            } else {
                feed.behind.insert(ev.dev_eui, VecDeque::new());
            }
            feed.open.insert(ev.id);
            feed.read_pos = ev.id;
        }
    }

    fn max_age(&self) -> chrono::Duration {
        chrono::Duration::seconds(
            i64::try_from(self.config.max_attempt_age_s).unwrap_or(i64::MAX / 1000),
        )
    }

    /// Writes the events waiting to go into the outbox; only then may their feeds'
    /// cursors pass them. On a storage error they are kept and written next time
    /// (their devices stay on the outbox path meanwhile, so order holds).
    async fn flush_spill(&mut self) {
        if self.spill.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.spill);
        match self.storage.outbox_spill(&rows, Utc::now()).await {
            Ok(()) => {
                for r in &rows {
                    if let Some(f) = self.feeds.get_mut(&r.integration_id) {
                        f.open.remove(&r.event_id);
                    }
                }
            }
            Err(e) => {
                self.storage_error("outbox_spill", &e);
                let mut rows = rows;
                rows.append(&mut self.spill);
                self.spill = rows;
            }
        }
    }

    /// Sends moved cursors to the outcome writer (every one with `all`).
    fn save_cursors(&mut self, all: bool) {
        let mut out = Vec::new();
        for (id, f) in &mut self.feeds {
            let cursor = f.cursor();
            if all || cursor > f.saved || f.delivered_at.is_some() {
                out.push(DeliveryCursor {
                    integration_id: *id,
                    delivered_through: cursor,
                    last_delivered_at: f.delivered_at.take(),
                });
                f.saved = cursor;
            }
        }
        self.last_cursor_save = Instant::now();
        if !out.is_empty() {
            self.write(Write::Cursors(out));
        }
    }

    /// Claims due outbox rows into the lanes. Returns whether more may be due right now.
    async fn claim(&mut self) -> bool {
        // Claim no more than the known lanes can take, so a busy single integration
        // does not claim rows only to hand them back.
        // (Rows of broken integrations fail at once and count like free room.)
        let fit: usize = self
            .targets
            .keys()
            .map(|id| self.sched.lane_free(*id))
            .sum();
        let max = fit
            .min(self.sched.room())
            .min(self.config.claim_batch as usize);
        if max == 0 {
            return false;
        }
        let now = Utc::now();
        let lease = self.config.lease();
        let lease_until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        let claimed = match self
            .storage
            .claim_outbox(now, lease_until, max as u32)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                self.storage_error("claim_outbox", &e);
                return false;
            }
        };
        for (integration, dev_eui) in &claimed.idle {
            // Everything of this device was delivered: its next events go fresh.
            if let Some(f) = self.feeds.get_mut(integration) {
                f.slow.remove(dev_eui);
            }
        }
        let items = claimed.items;
        let full = items.len() == max;
        let lease_until = Instant::now() + lease;
        let max_age = self.max_age();
        let mut expired = Vec::new();
        let mut release = Vec::new();
        for item in items {
            if let Some(f) = self.feeds.get_mut(&item.integration_id) {
                f.slow.insert(item.dev_eui);
            }
            if now - item.created_at > max_age {
                metrics::counter!(m::WEBHOOK_EXPIRED).increment(1);
                if let Some(held_back) = self
                    .logs
                    .allow(item.integration_id, std::time::Instant::now())
                {
                    warn!(
                        integration = %item.integration_id,
                        dev_eui = %item.dev_eui,
                        attempts = item.attempts,
                        last_error = item.last_error.as_deref().unwrap_or(""),
                        held_back,
                        "webhook event given up: not delivered within webhook.max_attempt_age_s"
                    );
                }
                expired.push(item.id);
                continue;
            }
            let unusable = match self.targets.get(&item.integration_id).map(|(_, k)| k) {
                Some(Known::Usable(_)) => None,
                Some(Known::Broken(e)) => Some(DeliveryError::Target(e.clone())),
                None => {
                    // Not an HTTP integration (or one this worker has not seen yet):
                    // retried with backoff, so a reload in between picks it up.
                    metrics::counter!(m::WEBHOOK_DEFERRED, "reason" => "unknown_integration")
                        .increment(1);
                    Some(DeliveryError::Unsupported(
                        "this integration is not delivered by the webhook worker",
                    ))
                }
            };
            if let Some(e) = unusable {
                let (integration, dev_eui) = (item.integration_id, item.dev_eui);
                self.schedule_retry(integration, item.id, dev_eui, item.attempts, &e);
                continue;
            }
            let job = job(&item, lease_until);
            if self.sched.offer(item.integration_id, job).is_err() {
                metrics::counter!(m::WEBHOOK_DEFERRED, "reason" => "lane_full").increment(1);
                release.push((item.integration_id, item.dev_eui));
            }
        }
        if !expired.is_empty() {
            let msg = format!(
                "gave up on {} event(s) not delivered within {} s",
                expired.len(),
                self.config.max_attempt_age_s
            );
            if let Err(e) = self.storage.outbox_expired(&expired, now, &msg).await {
                self.storage_error("outbox_expired", &e);
            }
        }
        if !release.is_empty() {
            let at = now + chrono::Duration::milliseconds(self.config.poll_interval_ms as i64);
            if let Err(e) = self.storage.outbox_release(&release, at).await {
                self.storage_error("outbox_release", &e);
            }
        }
        metrics::gauge!(m::WEBHOOK_HELD).set(self.sched.held() as f64);
        full && release.is_empty()
    }

    /// Starts every request the lanes allow.
    fn start(&mut self, done: &mpsc::UnboundedSender<Done>) {
        while let Some((lane, job)) = self.sched.next() {
            let timeout = self.config.timeout();
            let target = match self.targets.get(&lane) {
                Some((_, Known::Usable(t))) => match job.source {
                    Source::Outbox { lease_until, .. }
                        if Instant::now() + timeout > lease_until =>
                    {
                        // The lease would end mid-request: another worker may take the row.
                        metrics::counter!(m::WEBHOOK_DEFERRED, "reason" => "lease_short")
                            .increment(1);
                        None
                    }
                    _ => Some(t.clone()),
                },
                // Deleted or broken since it was read.
                _ => None,
            };
            let Some(target) = target else {
                let _ = done.send(Done {
                    lane,
                    source: job.source,
                    dev_eui: job.dev_eui,
                    result: None,
                });
                continue;
            };
            let done = done.clone();
            metrics::gauge!(m::WEBHOOK_IN_FLIGHT).increment(1.0);
            let sending = target.send(
                Out {
                    event_id: job.event_id,
                    dev_eui: job.dev_eui,
                    kind: job.kind,
                    body: job.body,
                },
                timeout,
            );
            tokio::spawn(async move {
                let started = Instant::now();
                let result = sending.await;
                metrics::histogram!(m::WEBHOOK_DURATION).record(started.elapsed().as_secs_f64());
                metrics::gauge!(m::WEBHOOK_IN_FLIGHT).decrement(1.0);
                let _ = done.send(Done {
                    lane,
                    source: job.source,
                    dev_eui: job.dev_eui,
                    result: Some(result),
                });
            });
        }
    }

    /// Takes the outcomes of finished requests: the lanes are updated and the next
    /// requests started at once; the database writes go to the outcome writer (or,
    /// for fresh events that must go to the outbox, to the spill list written before
    /// the next wait), so the endpoints are kept busy while they run.
    fn finish(&mut self, batch: Vec<Done>, done: &mpsc::UnboundedSender<Done>) {
        let mut failed = Vec::new();
        for d in batch {
            let outcome = match &d.result {
                Some(Ok(_)) => Outcome::Delivered,
                Some(Err(_)) => Outcome::Failed,
                None => Outcome::Skipped,
            };
            self.sched.finish(d.lane, outcome);
            match d.result {
                Some(Ok(_)) => {
                    metrics::counter!(m::WEBHOOK_REQUESTS, "result" => "delivered", "kind" => self.kind_of(d.lane)).increment(1);
                    match d.source {
                        Source::Fresh { event_id, .. } => {
                            self.fresh_settled(d.lane, d.dev_eui, event_id)
                        }
                        Source::Outbox { id, .. } => self.write(Write::Delivered(id)),
                    }
                }
                None => match d.source {
                    Source::Fresh {
                        event_id,
                        created_at,
                    } => {
                        // Its endpoint went away or broke since: the outbox retries it
                        // once the settings are usable again.
                        let at = Utc::now()
                            + chrono::Duration::milliseconds(self.config.poll_interval_ms as i64);
                        self.spill_to_outbox(d.lane, d.dev_eui, event_id, created_at, 0, at, None);
                    }
                    Source::Outbox { .. } => self.write(Write::Release(d.lane, d.dev_eui)),
                },
                Some(Err(e)) => {
                    metrics::counter!(m::WEBHOOK_REQUESTS, "result" => "failed", "kind" => self.kind_of(d.lane)).increment(1);
                    failed.push((d.lane, d.source, d.dev_eui, e));
                }
            }
        }
        for (lane, source, dev_eui, e) in failed {
            match source {
                Source::Outbox { id, attempts, .. } => {
                    self.schedule_retry(lane, id, dev_eui, attempts, &e)
                }
                Source::Fresh {
                    event_id,
                    created_at,
                } => {
                    let delay = self.log_failure(lane, dev_eui, 0, &e);
                    let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                    self.spill_to_outbox(
                        lane,
                        dev_eui,
                        event_id,
                        created_at,
                        1,
                        at,
                        Some(e.to_string()),
                    );
                }
            }
        }
        self.start(done);
        metrics::gauge!(m::WEBHOOK_HELD).set(self.sched.held() as f64);
    }

    /// A fresh event was delivered: the device's next waiting event takes its place.
    fn fresh_settled(&mut self, lane: Uuid, dev_eui: Eui64, event_id: i64) {
        let Some(feed) = self.feeds.get_mut(&lane) else {
            return;
        };
        feed.open.remove(&event_id);
        feed.delivered_at = Some(Utc::now());
        let next = match feed.behind.get_mut(&dev_eui) {
            Some(waiting) => waiting.pop_front(),
            None => None,
        };
        match next {
            Some(job) => {
                feed.behind_count -= 1;
                if let Err(job) = self.sched.offer(lane, job) {
                    // The slot just freed is taken: keep it first in line.
                    if let Some(waiting) = feed.behind.get_mut(&dev_eui) {
                        waiting.push_front(job);
                        feed.behind_count += 1;
                    }
                }
            }
            None => {
                feed.behind.remove(&dev_eui);
            }
        }
    }

    /// Moves a fresh event whose delivery failed (or could not be tried) into the
    /// outbox, with the device's events waiting behind it; the device stays on the
    /// outbox path until its chain is empty.
    #[allow(clippy::too_many_arguments)]
    fn spill_to_outbox(
        &mut self,
        lane: Uuid,
        dev_eui: Eui64,
        event_id: i64,
        created_at: DateTime<Utc>,
        attempts: u32,
        next_attempt_at: DateTime<Utc>,
        error: Option<String>,
    ) {
        let Some(feed) = self.feeds.get_mut(&lane) else {
            return;
        };
        feed.slow.insert(dev_eui);
        metrics::counter!(m::WEBHOOK_SPILLED, "reason" => "failed").increment(1);
        self.spill.push(SpillRow {
            integration_id: lane,
            event_id,
            dev_eui,
            attempts,
            next_attempt_at,
            last_error: error,
            created_at,
        });
        if let Some(waiting) = feed.behind.remove(&dev_eui) {
            feed.behind_count -= waiting.len();
            for job in waiting {
                if let Source::Fresh {
                    event_id,
                    created_at,
                } = job.source
                {
                    self.spill.push(behind_retry(
                        lane,
                        event_id,
                        dev_eui,
                        created_at,
                        next_attempt_at,
                    ));
                }
            }
        }
    }

    fn write(&self, w: Write) {
        if let Some(tx) = &self.writes {
            // The writer lives as long as the worker; a send error means shutdown,
            // and the row is simply sent again after its lease.
            let _ = tx.send(w);
        }
    }

    /// Counts and logs (rate-limited) a failed attempt; returns the backoff before
    /// the next one.
    fn log_failure(
        &mut self,
        integration: Uuid,
        dev_eui: Eui64,
        attempts: u32,
        e: &DeliveryError,
    ) -> Duration {
        metrics::counter!(m::WEBHOOK_FAILURES, "reason" => e.reason(), "kind" => self.kind_of(integration)).increment(1);
        let failures = attempts.saturating_add(1);
        let delay = retry_delay(
            failures,
            Duration::from_millis(self.config.backoff_base_ms),
            Duration::from_millis(self.config.backoff_max_ms),
            &mut self.rng,
        );
        if let Some(held_back) = self.logs.allow(integration, std::time::Instant::now()) {
            let url = match self.targets.get(&integration) {
                Some((_, Known::Usable(t))) => t.describe(),
                _ => String::new(),
            };
            warn!(
                %integration,
                %dev_eui,
                url,
                attempt = failures,
                retry_in_ms = delay.as_millis() as u64,
                one_at_a_time = self.sched.is_failing(integration),
                held_back,
                "webhook delivery failed: {e}"
            );
        }
        delay
    }

    /// Records a failed attempt of an outbox row and schedules the retry (written by
    /// the outcome writer).
    fn schedule_retry(
        &mut self,
        integration: Uuid,
        id: i64,
        dev_eui: Eui64,
        attempts: u32,
        e: &DeliveryError,
    ) {
        let delay = self.log_failure(integration, dev_eui, attempts, e);
        let now = Utc::now();
        self.write(Write::Failed {
            id,
            at: now,
            error: e.to_string(),
            next: now + chrono::Duration::from_std(delay).unwrap_or_default(),
        });
    }

    async fn refresh_backlog(&mut self) {
        let ids: Vec<Uuid> = self.targets.keys().copied().collect();
        for id in ids {
            match self.storage.outbox_backlog(id).await {
                Ok(n) => metrics::gauge!(m::BACKLOG, "integration" => id.to_string()).set(n as f64),
                Err(e) => {
                    self.storage_error("outbox_backlog", &e);
                    return;
                }
            }
        }
    }

    fn storage_error(&mut self, op: &'static str, e: &lorikeet_storage::StoreError) {
        metrics::counter!(m::STORAGE_ERRORS, "op" => op).increment(1);
        if let Some(held_back) = self.storage_logs.allow(op, std::time::Instant::now()) {
            warn!(op, held_back, "webhook delivery storage call failed: {e}");
        }
    }
}

/// A database write of the outcome writer.
enum Write {
    Delivered(i64),
    Release(Uuid, Eui64),
    Failed {
        id: i64,
        at: DateTime<Utc>,
        error: String,
        next: DateTime<Utc>,
    },
    Cursors(Vec<DeliveryCursor>),
}

/// Most outcomes written per round.
const MAX_WRITE_BATCH: usize = 2_048;

/// Writes delivery outcomes in batches (one transaction for all delivered rows of a
/// round), then wakes the worker: delivered rows made the next rows of their chains
/// due. Runs until the worker drops its sender and everything sent is written.
/// Retries a storage call while the database is unavailable (a transient error),
/// for up to [`OUTCOME_RETRY_FOR`]: a Postgres restart must not turn delivered
/// events into resends. Past that the outcome is given up, which is safe (the event
/// is delivered again: at least once) and keeps this queue from growing unbounded.
async fn while_unavailable<T, F, Fut>(mut call: F) -> Result<T, lorikeet_storage::StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, lorikeet_storage::StoreError>>,
{
    let give_up = tokio::time::Instant::now() + OUTCOME_RETRY_FOR;
    let mut delay = Duration::from_millis(25);
    loop {
        match call().await {
            Err(e) if e.is_transient() && tokio::time::Instant::now() + delay < give_up => {
                metrics::counter!("lorikeet_storage_retries_total").increment(1);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            r => return r,
        }
    }
}

/// See [`while_unavailable`].
const OUTCOME_RETRY_FOR: Duration = Duration::from_secs(60);

async fn write_outcomes(
    storage: Arc<dyn Storage>,
    mut rx: mpsc::UnboundedReceiver<Write>,
    wake: Arc<Notify>,
) {
    let mut logs: LogLimiter<&'static str> = LogLimiter::new(LOG_EVERY);
    let mut fail = |op: &'static str, e: &lorikeet_storage::StoreError| {
        metrics::counter!(m::STORAGE_ERRORS, "op" => op).increment(1);
        if let Some(held_back) = logs.allow(op, std::time::Instant::now()) {
            warn!(op, held_back, "webhook delivery storage call failed: {e}");
        }
    };
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_WRITE_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let mut delivered = Vec::new();
        let mut release = Vec::new();
        let mut cursors: HashMap<Uuid, DeliveryCursor> = HashMap::new();
        for w in batch {
            match w {
                Write::Delivered(id) => delivered.push(id),
                Write::Release(i, d) => release.push((i, d)),
                Write::Failed {
                    id,
                    at,
                    error,
                    next,
                } => {
                    if let Err(e) =
                        while_unavailable(|| storage.outbox_failed(id, at, &error, next)).await
                    {
                        fail("outbox_failed", &e);
                    }
                }
                Write::Cursors(list) => {
                    for c in list {
                        let e = cursors.entry(c.integration_id).or_insert(c);
                        e.delivered_through = e.delivered_through.max(c.delivered_through);
                        e.last_delivered_at = e.last_delivered_at.max(c.last_delivered_at);
                    }
                }
            }
        }
        let now = Utc::now();
        if let Err(e) = while_unavailable(|| storage.outbox_delivered(&delivered, now)).await {
            // They stay leased and are sent again when the lease ends: at least once.
            fail("outbox_delivered", &e);
        }
        if let Err(e) = while_unavailable(|| storage.outbox_release(&release, now)).await {
            fail("outbox_release", &e);
        }
        if !cursors.is_empty() {
            let list: Vec<DeliveryCursor> = cursors.into_values().collect();
            if let Err(e) = while_unavailable(|| storage.save_delivery_cursors(&list)).await {
                // Saved again with the next move; until then a restart resends.
                fail("save_delivery_cursors", &e);
            }
        }
        if !delivered.is_empty() || !release.is_empty() {
            wake.notify_one();
        }
    }
}

/// An event that must wait in the outbox behind an earlier event of its device
/// (counted as spilled).
fn behind_retry(
    integration_id: Uuid,
    event_id: i64,
    dev_eui: Eui64,
    created_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
) -> SpillRow {
    metrics::counter!(m::WEBHOOK_SPILLED, "reason" => "behind_retry").increment(1);
    SpillRow {
        integration_id,
        event_id,
        dev_eui,
        attempts: 0,
        next_attempt_at,
        last_error: None,
        created_at,
    }
}

fn job(item: &OutboxItem, lease_until: Instant) -> Job {
    Job {
        source: Source::Outbox {
            id: item.id,
            attempts: item.attempts,
            lease_until,
        },
        event_id: item.event_id,
        dev_eui: item.dev_eui,
        kind: item.kind.as_str(),
        // Serialised once per claim; the same bytes are signed and sent.
        body: item.body.clone().into_bytes(),
    }
}

async fn next_change(
    changes: &mut Option<broadcast::Receiver<Change>>,
) -> Result<Change, broadcast::error::RecvError> {
    match changes {
        Some(c) => c.recv().await,
        None => std::future::pending().await,
    }
}

/// Logs the effective webhook settings once at start-up.
pub(crate) fn log_start(config: &WebhookConfig) {
    info!(
        timeout_ms = config.timeout_ms,
        max_attempt_age_s = config.max_attempt_age_s,
        signature_version = ?config.signature_version,
        concurrency = config.concurrency,
        "webhook delivery started"
    );
}
