//! The webhook worker: claims due rows of the durable outbox, sends them through one
//! lane per integration, and writes each outcome back.
//!
//! - Nothing here is on the uplink path: events reach the outbox with their own
//!   transaction, and the worker only reads it. A slow or dead endpoint costs its
//!   own lane and the retry schedule of its own rows, nothing else.
//! - Order per device comes from the outbox chains: only the oldest undelivered row
//!   of an (integration, device) pair is ever claimed, so the next one is sent only
//!   after it was delivered (or given up).
//! - At least once: a row leaves the outbox only after a 2xx. A crash between the
//!   request and that write sends the row again after the lease; the body, and so
//!   its `deduplicationId`, is the same every time.
//! - Integration settings are parsed once, when they change (the API's change
//!   broadcast), never per event.

mod client;
mod lanes;
pub mod target;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lorikeet_lorawan::Eui64;
use lorikeet_storage::{Change, IntegrationKind, OutboxItem, Storage};
use rand::rngs::StdRng;
use rand::SeedableRng;
use reqwest::Client;
use tokio::sync::{broadcast, mpsc, watch, Notify};
use tracing::{info, warn};
use uuid::Uuid;

use crate::backoff::retry_delay;
use crate::config::WebhookConfig;
use crate::error::{DeliveryError, TargetError};
use crate::metrics as m;
use crate::ratelimit::LogLimiter;
use lanes::{Limits, Outcome, Scheduler};
use target::WebhookTarget;

/// How often one failing integration (or one kind of storage failure) may log.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// A claimed row waiting in its lane.
struct Job {
    id: i64,
    dev_eui: Eui64,
    kind: &'static str,
    body: Vec<u8>,
    attempts: u32,
    lease_until: Instant,
}

/// A finished request.
struct Done {
    lane: Uuid,
    id: i64,
    dev_eui: Eui64,
    attempts: u32,
    /// `None`: not attempted (its lease ran short, or its integration went away).
    result: Option<Result<u16, DeliveryError>>,
}

/// What the worker knows about an HTTP integration.
enum Known {
    Usable(Arc<WebhookTarget>),
    Broken(TargetError),
}

/// The webhook worker. Build with [`WebhookWorker::new`], run with [`WebhookWorker::run`].
pub struct WebhookWorker {
    storage: Arc<dyn Storage>,
    config: WebhookConfig,
    client: Client,
    targets: HashMap<Uuid, (DateTime<Utc>, Known)>,
    sched: Scheduler<Job>,
    /// Claim again once this few rows are held.
    low_water: usize,
    /// To the outcome writer (set while running).
    writes: Option<mpsc::UnboundedSender<Write>>,
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
    /// A worker over `storage` (settings already validated).
    pub fn new(storage: Arc<dyn Storage>, config: WebhookConfig) -> Result<Self, String> {
        let client = client::build_client(config.timeout(), config.concurrency_per_integration)?;
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
            storage,
            config,
            client,
            targets: HashMap::new(),
            sched: Scheduler::new(limits),
            low_water: limits.hold / 2,
            writes: None,
            logs: LogLimiter::new(LOG_EVERY),
            storage_logs: LogLimiter::new(LOG_EVERY),
            rng: StdRng::from_entropy(),
        })
    }

    /// Runs until `shutdown` turns true, then lets requests in flight finish for
    /// `webhook.shutdown_grace_ms` (the rest come back after their lease).
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
        let mut claim_now = true;
        while !*shutdown.borrow() {
            while claim_now && self.sched.room() > 0 {
                claim_now = self.claim().await;
                self.start(&done_tx);
            }
            claim_now = false;
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
                _ = wake.notified() => claim_now = self.sched.held() <= self.low_water,
                _ = poll.tick() => claim_now = true,
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
        // Let the outcomes reach the database (rows not written are sent again).
        self.writes = None;
        let _ = tokio::time::timeout_at(deadline + Duration::from_secs(1), writer).await;
    }

    /// Re-reads the HTTP integrations (on start and when the API changed one).
    async fn reload(&mut self) {
        let list = match self.storage.list_integrations(None).await {
            Ok(l) => l,
            Err(e) => {
                self.storage_error("list_integrations", &e);
                return;
            }
        };
        let mut next = HashMap::with_capacity(list.len());
        for i in list.iter().filter(|i| i.kind == IntegrationKind::Http) {
            let changed = self
                .targets
                .get(&i.id)
                .is_none_or(|(updated, _)| *updated != i.updated_at);
            if changed {
                // New settings deserve a fresh start, not the old failure streak.
                self.sched.reset_failures(i.id);
            }
            let known = match WebhookTarget::from_integration(i) {
                Ok(t) => Known::Usable(Arc::new(t)),
                Err(e) => {
                    if changed {
                        warn!(integration = %i.id, application = %i.application_id, "webhook cannot be used: {e}");
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
                info!(integration = %id, rows = dropped.len(), "webhook deleted; its waiting rows are dropped");
            }
            metrics::gauge!(m::BACKLOG, "integration" => id.to_string()).set(0.0);
        }
        self.targets = next;
    }

    /// Claims due rows into the lanes. Returns whether more may be due right now.
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
        let items = match self
            .storage
            .claim_outbox(now, lease_until, max as u32)
            .await
        {
            Ok(items) => items,
            Err(e) => {
                self.storage_error("claim_outbox", &e);
                return false;
            }
        };
        let full = items.len() == max;
        let lease_until = Instant::now() + lease;
        let max_age = chrono::Duration::seconds(
            i64::try_from(self.config.max_attempt_age_s).unwrap_or(i64::MAX / 1000),
        );
        let mut expired = Vec::new();
        let mut release = Vec::new();
        for item in items {
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
                Some((_, Known::Usable(t))) if Instant::now() + timeout <= job.lease_until => {
                    Some(t.clone())
                }
                Some((_, Known::Usable(_))) => {
                    // The lease would end mid-request: another worker may take the row.
                    metrics::counter!(m::WEBHOOK_DEFERRED, "reason" => "lease_short").increment(1);
                    None
                }
                // Deleted or broken since it was claimed.
                _ => None,
            };
            let Some(target) = target else {
                let _ = done.send(Done {
                    lane,
                    id: job.id,
                    dev_eui: job.dev_eui,
                    attempts: job.attempts,
                    result: None,
                });
                continue;
            };
            let client = self.client.clone();
            let done = done.clone();
            metrics::gauge!(m::WEBHOOK_IN_FLIGHT).increment(1.0);
            tokio::spawn(async move {
                let started = Instant::now();
                let result =
                    client::post_event(&client, &target, job.kind, job.body, timeout).await;
                metrics::histogram!(m::WEBHOOK_DURATION).record(started.elapsed().as_secs_f64());
                metrics::gauge!(m::WEBHOOK_IN_FLIGHT).decrement(1.0);
                let _ = done.send(Done {
                    lane,
                    id: job.id,
                    dev_eui: job.dev_eui,
                    attempts: job.attempts,
                    result: Some(result),
                });
            });
        }
    }

    /// Takes the outcomes of finished requests: the lanes are updated and the next
    /// requests started at once; the database writes go to the outcome writer, so
    /// the endpoints are kept busy while they run (they concern other chains than
    /// the rows just started).
    fn finish(&mut self, batch: Vec<Done>, done: &mpsc::UnboundedSender<Done>) {
        let mut failed = Vec::new();
        for d in batch {
            match d.result {
                Some(Ok(_)) => {
                    self.sched.finish(d.lane, Outcome::Delivered);
                    metrics::counter!(m::WEBHOOK_REQUESTS, "result" => "delivered").increment(1);
                    self.write(Write::Delivered(d.id));
                }
                None => {
                    self.sched.finish(d.lane, Outcome::Skipped);
                    self.write(Write::Release(d.lane, d.dev_eui));
                }
                Some(Err(e)) => {
                    self.sched.finish(d.lane, Outcome::Failed);
                    metrics::counter!(m::WEBHOOK_REQUESTS, "result" => "failed").increment(1);
                    failed.push((d.lane, d.id, d.dev_eui, d.attempts, e));
                }
            }
        }
        self.start(done);
        for (lane, id, dev_eui, attempts, e) in failed {
            self.schedule_retry(lane, id, dev_eui, attempts, &e);
        }
        metrics::gauge!(m::WEBHOOK_HELD).set(self.sched.held() as f64);
    }

    fn write(&self, w: Write) {
        if let Some(tx) = &self.writes {
            // The writer lives as long as the worker; a send error means shutdown,
            // and the row is simply sent again after its lease.
            let _ = tx.send(w);
        }
    }

    /// Records a failed attempt and schedules the retry (written by the outcome writer).
    fn schedule_retry(
        &mut self,
        integration: Uuid,
        id: i64,
        dev_eui: Eui64,
        attempts: u32,
        e: &DeliveryError,
    ) {
        metrics::counter!(m::WEBHOOK_FAILURES, "reason" => e.reason()).increment(1);
        let failures = attempts.saturating_add(1);
        let delay = retry_delay(
            failures,
            Duration::from_millis(self.config.backoff_base_ms),
            Duration::from_millis(self.config.backoff_max_ms),
            &mut self.rng,
        );
        if let Some(held_back) = self.logs.allow(integration, std::time::Instant::now()) {
            let url = match self.targets.get(&integration) {
                Some((_, Known::Usable(t))) => t.display_url(),
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
            warn!(op, held_back, "webhook outbox storage call failed: {e}");
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
}

/// Most outcomes written per round.
const MAX_WRITE_BATCH: usize = 2_048;

/// Writes delivery outcomes in batches (one transaction for all delivered rows of a
/// round), then wakes the worker: delivered rows made the next rows of their chains
/// due. Runs until the worker drops its sender and everything sent is written.
async fn write_outcomes(
    storage: Arc<dyn Storage>,
    mut rx: mpsc::UnboundedReceiver<Write>,
    wake: Arc<Notify>,
) {
    let mut logs: LogLimiter<&'static str> = LogLimiter::new(LOG_EVERY);
    let mut fail = |op: &'static str, e: &lorikeet_storage::StoreError| {
        metrics::counter!(m::STORAGE_ERRORS, "op" => op).increment(1);
        if let Some(held_back) = logs.allow(op, std::time::Instant::now()) {
            warn!(op, held_back, "webhook outbox storage call failed: {e}");
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
                    if let Err(e) = storage.outbox_failed(id, at, &error, next).await {
                        fail("outbox_failed", &e);
                    }
                }
            }
        }
        let now = Utc::now();
        if let Err(e) = storage.outbox_delivered(&delivered, now).await {
            // They stay leased and are sent again when the lease ends: at least once.
            fail("outbox_delivered", &e);
        }
        if let Err(e) = storage.outbox_release(&release, now).await {
            fail("outbox_release", &e);
        }
        if !delivered.is_empty() || !release.is_empty() {
            wake.notify_one();
        }
    }
}

fn job(item: &OutboxItem, lease_until: Instant) -> Job {
    Job {
        id: item.id,
        dev_eui: item.dev_eui,
        kind: item.kind.as_str(),
        // Serialised once per claim; the same bytes are signed and sent.
        body: serde_json::to_vec(&item.payload).unwrap_or_default(),
        attempts: item.attempts,
        lease_until,
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
        concurrency = config.concurrency,
        "webhook delivery started"
    );
}
