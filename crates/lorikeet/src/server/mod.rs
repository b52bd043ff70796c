//! The running server: storage, the gateway listener, the network-server loop, the
//! application side, the batched writer and the API, wired together with channels.
//!
//! ```text
//!  UDP ─▶ gateway listener ─(bounded)─▶ ns loop ─▶ writer ─▶ storage
//!                 ▲                       │  └───▶ app task ─┘
//!                 └──── send_downlink ◀───┘
//!  API ─▶ storage ─(change broadcast)─▶ change loader ─▶ ns loop / app task
//! ```

pub mod alerts;
pub mod app;
pub mod cache;
pub mod convert;
pub mod follow;
pub mod ns_loop;
pub mod writer;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lorikeet_api::{ApiState, MetricsRender};
use lorikeet_codec::Codecs;
use lorikeet_gateway::GatewayPolicy;
use lorikeet_ns::{NetworkServer, NsConfig, RxWindowPolicy};
use lorikeet_storage::Storage;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{ApiConfig, Config, RxWindow};

/// Capacity of the channel from the core to the application side (events).
/// Deep enough to ride out a slow commit, short enough that what waits in it is
/// well under a second of work: under overload the excess is shed at the gateway
/// edge (counted) instead of queuing here, so latency recovers as soon as the load
/// falls, and memory stays bounded.
const APP_QUEUE: usize = 8_192;
/// Capacity of the writer's queue (about three ops per uplink); see [`APP_QUEUE`].
const WRITER_QUEUE: usize = 16_384;
/// How long shutdown waits for queued writes to reach the database.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(4);

/// A started server. Its `Debug` shows no secret.
pub struct Server {
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// Where the Semtech UDP listener listens.
    pub udp_addr: SocketAddr,
    /// The bearer token with all rights.
    pub admin_token: String,
    /// The store.
    pub storage: Arc<dyn Storage>,
    /// Live events (for tests and streaming endpoints).
    pub live: broadcast::Sender<app::Published>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    flush: Vec<JoinHandle<()>>,
    /// How long the tasks other than the flush may take to stop.
    rest_grace: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("api_addr", &self.api_addr)
            .field("udp_addr", &self.udp_addr)
            .field("admin_token", &"<redacted>")
            .field("storage", &self.storage.backend())
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

/// The admin token: configured, or read from (or generated into) the token file.
pub fn resolve_admin_token(api: &ApiConfig) -> Result<String> {
    if !api.admin_token.is_empty() {
        return Ok(api.admin_token.clone());
    }
    let path: &Path = &api.admin_token_file;
    if let Ok(t) = std::fs::read_to_string(path) {
        let t = t.trim().to_owned();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let mut bytes = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let token = hex::encode(bytes);
    write_private(path, &token).with_context(|| {
        format!(
            "cannot write the generated admin token to {}",
            path.display()
        )
    })?;
    info!(
        "generated an admin API token in {} (set api.admin_token or LORIKEET_API_ADMIN_TOKEN to choose one)",
        path.display()
    );
    Ok(token)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")
}

fn ns_config(config: &Config) -> NsConfig {
    let n = &config.network;
    NsConfig {
        net_id: n.net_id,
        dedup_window: Duration::from_millis(n.dedup_window_ms),
        max_open_uplinks: n.max_open_uplinks,
        rx_window: match n.rx_window {
            RxWindow::Rx1ThenRx2 => RxWindowPolicy::Rx1ThenRx2,
            RxWindow::Rx1Only => RxWindowPolicy::Rx1Only,
            RxWindow::Rx2Only => RxWindowPolicy::Rx2Only,
        },
        downlink_lead: Duration::from_millis(n.downlink_lead_ms),
        max_f_cnt_gap: n.max_f_cnt_gap,
        mac: config.mac.clone(),
        duty_cycle: n.duty_cycle,
        duty_cycle_cap: (n.duty_cycle_cap_percent > 0.0).then(|| n.duty_cycle_cap_percent / 100.0),
        refused_uplink_logs_per_minute: n.refused_uplink_logs_per_minute,
    }
}

/// Starts every part of the server. Ports are bound before this returns; errors name
/// what could not be opened.
pub async fn start(config: Config, metrics: Option<MetricsRender>) -> Result<Server> {
    let keks = crate::keys::resolve(&config.security, crate::keys::Generate::IfMissing, &[])?;
    let storage = match lorikeet_storage::connect_with(
        &config.database.url,
        config.database.connect_options(),
        keks.keyring.clone(),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            let refused = matches!(e, lorikeet_storage::StoreError::Kek(_));
            let mut context = format!(
                "cannot open the database {}",
                lorikeet_storage::redact_url(&config.database.url)
            );
            if refused && matches!(keks.source, crate::keys::KekSource::Generated(_)) {
                // The check runs before anything is encrypted: the new file is unused.
                keks.discard_generated();
                context.push_str(&format!(
                    " (no KEK is configured and ./{} did not exist here, so this start \
                     generated a new one, which cannot be the database's; it was removed again)",
                    crate::keys::LOCAL_KEK_FILE
                ));
            }
            return Err(anyhow::Error::new(e).context(context));
        }
    };
    keks.log();
    let admin_token = resolve_admin_token(&config.api)?;

    let codecs = Codecs::new(config.codec.limits()).context("cannot start the codec workers")?;
    let started = Instant::now();
    let mut regions = convert::Regions::new(&config.regions);
    // The feed position first, then everything: following the feed from there after
    // the load misses nothing (an entry already reflected is applied again, harmlessly).
    let feed_start = storage
        .feed_head()
        .await
        .context("cannot read the change feed")?;
    let mut loaded = cache::load_all(&*storage, &mut regions, &codecs)
        .await
        .context("cannot load devices from the database")?;
    info!(
        devices = loaded.devices.len(),
        gateways = loaded.gateways.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "state loaded"
    );

    let (listener, gw_events) = lorikeet_gateway::bind(config.gateway.clone())
        .await
        .with_context(|| {
            format!(
                "cannot bind the Semtech UDP listener on {}",
                config.gateway.udp_bind
            )
        })?;
    let udp_addr = listener.local_addr();
    let gateway = listener.handle();
    gateway.set_known_gateways(
        loaded
            .gateways
            .iter()
            .map(|g| (g.gateway_id, GatewayPolicy::default())),
    );
    let gateway_locations = loaded
        .gateways
        .iter()
        .map(|g| (g.gateway_id, ns_loop::GatewayLocation::of(g)))
        .collect();
    let gateway_owners = loaded
        .gateways
        .iter()
        .map(|g| (g.gateway_id, cache::GatewayOwner::of(g)))
        .collect();

    let api_listener = tokio::net::TcpListener::bind(config.api.bind)
        .await
        .with_context(|| format!("cannot bind the API on {}", config.api.bind))?;
    let api_addr = api_listener.local_addr()?;
    // Validated with the config; `?` only for a config that skipped `load`.
    let target_policy = config
        .security
        .target_policy()
        .context("security.allowed_target_networks")?;
    if !target_policy.allowed().is_empty() {
        info!(
            networks = ?target_policy.allowed().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "webhooks may reach these networks whoever set them (security.allowed_target_networks)"
        );
    }
    let target_guard = lorikeet_service::target::TargetGuard::new(
        target_policy,
        Arc::new(lorikeet_service::target::SystemResolver),
    );
    let mut api_state = ApiState::new(storage.clone(), Some(&admin_token))
        .with_codecs(codecs.clone())
        .with_target_guard(target_guard.clone())
        .with_sessions(config.api.session_hours, config.api.secure_cookies);
    let monitoring: Option<SocketAddr> = config.monitoring.bind.parse().ok();
    if let (Some(m), None) = (metrics.clone(), monitoring) {
        api_state = api_state.with_metrics(m);
    }
    let monitoring_listener = match monitoring {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind the metrics endpoint on {addr}"))?,
        ),
        None => None,
    };
    // Read your writes: API writes answer once the live state applied them.
    let (applied_tx, applied_rx) = watch::channel(feed_start);
    api_state = api_state.with_applied(lorikeet_api::AppliedGate::new(
        applied_rx,
        Duration::from_millis(config.api.live_wait_ms),
    ));
    // Integration changes reach the webhook worker from the feed follower.
    let (integration_tx, _) = broadcast::channel(1024);
    let webhook_changes = integration_tx.subscribe();
    let change_tx = integration_tx.clone();
    let stream_tx = api_state.live.clone();
    let (ns_applied_tx, ns_applied_rx) = watch::channel(feed_start);
    let (app_applied_tx, app_applied_rx) = watch::channel(feed_start);

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (producers, writer_queue) = writer::channel(WRITER_QUEUE, 3);
    let [ns_writes, app_writes, alert_writes]: [writer::Producer; 3] = producers
        .try_into()
        .map_err(|_| anyhow::anyhow!("writer producers"))?;
    let (app_tx, app_rx) = mpsc::channel(APP_QUEUE);
    let (ns_updates_tx, ns_updates_rx) = mpsc::channel(1024);
    let (app_updates_tx, app_updates_rx) = mpsc::channel(1024);
    let (live, _) = broadcast::channel(4096);

    let mut ns = NetworkServer::new(ns_config(&config));
    ns.reserve_devices(loaded.devices.len());
    for d in loaded.devices {
        ns.upsert_device(d);
    }
    for (dev_eui, refused) in loaded.refused {
        for (id, why) in refused {
            ns.refuse_queue_item(&dev_eui, id, why);
        }
    }

    let mut tasks = Vec::new();
    tasks.push((
        "event-streams",
        tokio::spawn(stream_bridge(
            live.subscribe(),
            stream_tx,
            shutdown_rx.clone(),
        )),
    ));
    tasks.push((
        "gateway",
        tokio::spawn(listener.run(stop(shutdown_rx.clone()))),
    ));
    tasks.push((
        "api",
        tokio::spawn(lorikeet_api::serve(
            api_listener,
            api_state,
            stop(shutdown_rx.clone()),
        )),
    ));
    if let (Some(l), Some(render)) = (monitoring_listener, metrics) {
        tasks.push((
            "monitoring",
            tokio::spawn(serve_metrics(l, render, stop(shutdown_rx.clone()))),
        ));
    }
    follow::started(feed_start);
    let listening = storage.clone();
    tasks.push((
        "feed-listen",
        tokio::spawn({
            let shutdown = shutdown_rx.clone();
            async move {
                tokio::select! {
                    _ = stop(shutdown) => {}
                    _ = listening.listen_for_changes() => {}
                }
            }
        }),
    ));
    tasks.push((
        "feed",
        tokio::spawn(
            follow::Follower {
                storage: storage.clone(),
                regions,
                catalog: std::mem::take(&mut loaded.catalog),
                sinks: follow::Sinks {
                    ns: ns_updates_tx,
                    ns_applied: ns_applied_rx,
                    app: app_updates_tx,
                    app_applied: app_applied_rx,
                    gateways: gateway.clone(),
                    codecs: codecs.clone(),
                    integrations: integration_tx,
                    applied: applied_tx,
                },
                cursor: feed_start,
            }
            .run(shutdown_rx.clone()),
        ),
    ));
    tasks.push((
        "event-format-migration",
        tokio::spawn(migrate_legacy_events(storage.clone(), shutdown_rx.clone())),
    ));
    tasks.push((
        "retention",
        tokio::spawn(retention(
            storage.clone(),
            config.events.retention_days,
            config.alerts.retention_days,
            shutdown_rx.clone(),
        )),
    ));
    tasks.push((
        "alerts",
        tokio::spawn(
            alerts::AlertTask {
                storage: storage.clone(),
                writer: alert_writes,
                events: live.subscribe(),
                live: live.clone(),
                interval: Duration::from_millis(config.alerts.interval_ms),
            }
            .run(shutdown_rx.clone()),
        ),
    ));
    let ns_task = tokio::spawn(
        ns_loop::NsLoop {
            ns,
            gateway,
            gw_events,
            updates: ns_updates_rx,
            writer: ns_writes,
            app: app_tx,
            gateway_locations,
            applied: ns_applied_tx,
        }
        .run(shutdown_rx.clone()),
    );
    let codecs_for_commands = codecs.clone();
    let app_task = tokio::spawn(
        app::AppTask {
            devices: loaded.app,
            gateways: gateway_owners,
            events: app_rx,
            updates: app_updates_rx,
            writer: app_writes,
            live: live.clone(),
            codecs,
            applied: app_applied_tx,
        }
        .run(),
    );
    let committed = Arc::new(tokio::sync::Notify::new());
    tasks.push((
        "broker-commands",
        tokio::spawn(lorikeet_integration::commands::run(
            lorikeet_integration::commands::CommandContext {
                storage: storage.clone(),
                codecs: Some(codecs_for_commands.clone()),
                changes: change_tx.clone(),
                guard: target_guard.clone(),
            },
            change_tx.subscribe(),
            shutdown_rx.clone(),
        )),
    ));
    let webhooks = lorikeet_integration::WebhookWorker::new(
        storage.clone(),
        config.webhook.clone(),
        target_guard,
    )
    .map_err(|e| anyhow::anyhow!("cannot start the webhook client: {e}"))?;
    tasks.push((
        "webhooks",
        tokio::spawn(webhooks.run(committed.clone(), webhook_changes, shutdown_rx.clone())),
    ));
    if config.mqtt.enabled() {
        let (mqtt_tx, mqtt_rx) = mpsc::channel(config.mqtt.max_queued.max(1));
        tasks.push((
            "mqtt-bridge",
            tokio::spawn(mqtt_bridge(live.subscribe(), mqtt_tx, shutdown_rx.clone())),
        ));
        tasks.push((
            "mqtt",
            tokio::spawn(lorikeet_integration::mqtt::run(
                config.mqtt.clone(),
                storage.clone(),
                Some(codecs_for_commands),
                change_tx,
                mqtt_rx,
                shutdown_rx.clone(),
            )),
        ));
    }
    let writer_task = tokio::spawn(writer::run(storage.clone(), writer_queue, committed));
    info!(%api_addr, %udp_addr, "lorikeet is running");
    Ok(Server {
        api_addr,
        udp_addr,
        admin_token,
        storage,
        live,
        shutdown: shutdown_tx,
        tasks,
        flush: vec![ns_task, app_task, writer_task],
        rest_grace: Duration::from_millis(config.webhook.shutdown_grace_ms + 1_500),
    })
}

impl Server {
    /// Stops intake, processes what the dedup window holds, flushes queued writes and
    /// returns, in two bounded stages that run at once: the core, the application
    /// task and the writer get [`SHUTDOWN_FLUSH`] to commit what was accepted (and
    /// send the frames and live events that waited for it); every other task (the
    /// webhook worker finishing requests in flight and saving its cursors, MQTT, the
    /// API) gets until `webhook.shutdown_grace_ms` + 1.5 s, or the flush bound if
    /// longer. Whatever is cut short is safe: uncommitted work was never acknowledged
    /// to anyone, and undelivered events are sent again after a restart.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let started = tokio::time::Instant::now();
        let flush_deadline = started + SHUTDOWN_FLUSH;
        let rest_deadline = started + self.rest_grace.max(SHUTDOWN_FLUSH);
        // Order matters: the core drains into the app side, both into the writer.
        for t in self.flush {
            if tokio::time::timeout_at(flush_deadline, t).await.is_err() {
                warn!(
                    "shutdown: pending writes did not finish within {SHUTDOWN_FLUSH:?} (the database is unavailable?); \
                     what was not committed was not acknowledged either"
                );
                break;
            }
        }
        let rest =
            futures_util::future::join_all(self.tasks.into_iter().map(|(name, t)| async move {
                if tokio::time::timeout_at(rest_deadline, t).await.is_err() {
                    warn!(task = name, "shutdown: task did not stop in time");
                }
            }));
        rest.await;
        self.storage.close().await;
        info!(took = ?started.elapsed(), "lorikeet stopped");
    }
}

/// The next live event for a bridge: `None` once shutdown is requested or the
/// stream closed, `Err(missed)` when this receiver fell behind by `missed` events.
async fn next_live(
    live: &mut broadcast::Receiver<app::Published>,
    stopped: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Option<Result<app::Published, u64>> {
    tokio::select! {
        _ = stopped => None,
        r = live.recv() => match r {
            Ok(p) => Some(Ok(p)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Err(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        },
    }
}

/// Feeds live events to the API's Server-Sent-Event streams while someone is listening.
async fn stream_bridge(
    mut live: broadcast::Receiver<app::Published>,
    tx: broadcast::Sender<lorikeet_api::LiveEvent>,
    shutdown: watch::Receiver<bool>,
) {
    let stopped = stop(shutdown);
    tokio::pin!(stopped);
    while let Some(received) = next_live(&mut live, stopped.as_mut()).await {
        let p = match received {
            Ok(p) => p,
            Err(missed) => {
                metrics::counter!("lorikeet_api_stream_lagged_total").increment(missed);
                continue;
            }
        };
        if tx.receiver_count() == 0 {
            continue;
        }
        let _ = tx.send(lorikeet_api::LiveEvent {
            dev_eui: p.dev_eui,
            application_id: p.application_id,
            kind: p.kind.as_str(),
            body: p.body,
        });
    }
}

/// Feeds live events to the MQTT publisher. Its queue is bounded
/// (`mqtt.max_queued`): while the broker is away the excess is dropped and counted
/// (MQTT delivery is at most once; the webhook outbox is the durable path).
async fn mqtt_bridge(
    mut live: broadcast::Receiver<app::Published>,
    tx: mpsc::Sender<lorikeet_integration::OutEvent>,
    shutdown: watch::Receiver<bool>,
) {
    use lorikeet_integration::metrics as im;
    let mut dropped: u64 = 0;
    let stopped = stop(shutdown);
    tokio::pin!(stopped);
    while let Some(received) = next_live(&mut live, stopped.as_mut()).await {
        let p = match received {
            Ok(p) => p,
            Err(missed) => {
                metrics::counter!(im::LIVE_LAGGED).increment(missed);
                warn!(missed, "the MQTT publisher fell behind the live events");
                continue;
            }
        };
        let ev = lorikeet_integration::OutEvent {
            application_id: p.application_id,
            dev_eui: p.dev_eui,
            kind: p.kind.as_str(),
            body: p.body.as_bytes().to_vec(),
        };
        match tx.try_send(ev) {
            Ok(()) if dropped > 0 => {
                info!(dropped, "MQTT publishing resumed");
                dropped = 0;
            }
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!(im::MQTT_DROPPED, "reason" => "queue_full").increment(1);
                if dropped == 0 {
                    warn!("MQTT queue full (broker away or slow): dropping events until it drains");
                }
                dropped += 1;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// Resolves once shutdown is requested (or the sender is gone).
async fn stop(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

fn metrics_route(
    render: MetricsRender,
) -> warp::filters::BoxedFilter<(warp::http::Response<String>,)> {
    use warp::Filter;
    warp::get()
        .and(warp::path::full())
        .map(move |path: warp::path::FullPath| {
            let (status, body) = if path.as_str() == "/metrics" {
                (200, render())
            } else {
                (
                    404,
                    "not found: the metrics endpoint is /metrics\n".to_owned(),
                )
            };
            warp::http::Response::builder()
                .status(status)
                .header("content-type", "text/plain; version=0.0.4")
                .body(body)
                .unwrap_or_default()
        })
        .boxed()
}

async fn serve_metrics(
    listener: tokio::net::TcpListener,
    render: MetricsRender,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    lorikeet_api::serve_filter(listener, metrics_route(render), shutdown).await;
}

/// Moves events stored in the previous format into the compact one, newest first,
/// in batches (each its own short transaction, so the live writes go on between
/// them); ends when none are left. Reads cover both formats meanwhile.
async fn migrate_legacy_events(storage: Arc<dyn Storage>, shutdown: watch::Receiver<bool>) {
    const BATCH: u32 = 2_000;
    let mut moved = 0u64;
    loop {
        if *shutdown.borrow() {
            return;
        }
        match storage.migrate_legacy_events(BATCH).await {
            Ok(0) => {
                if moved > 0 {
                    info!(moved, "events moved into the compact format");
                }
                return;
            }
            Ok(n) => {
                moved += n;
                metrics::counter!("lorikeet_storage_events_migrated_total").increment(n);
                if moved % 100_000 < n {
                    info!(moved, "moving stored events into the compact format");
                }
                tokio::task::yield_now().await;
            }
            Err(e) => {
                warn!("moving events into the compact format: {e} (retrying in 10 s)");
                tokio::select! {
                    _ = stop(shutdown.clone()) => return,
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                }
            }
        }
    }
}

/// Deletes stored events and delivered outbox rows past the retention period, and
/// keeps the measurements table (day partitions, per-application retention),
/// hourly and once at start.
async fn retention(
    storage: Arc<dyn Storage>,
    days: u32,
    alert_days: u32,
    shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = stop(shutdown.clone()) => return,
            _ = tick.tick() => {}
        }
        let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
        match storage.event_retention(chrono::Utc::now(), cutoff).await {
            Ok(r) => {
                if !r.partitions_dropped.is_empty() || r.rows_deleted > 0 {
                    info!(
                        days_dropped = ?r.partitions_dropped,
                        rows_deleted = r.rows_deleted,
                        "old events deleted"
                    );
                }
            }
            Err(e) => warn!("event retention: {e}"),
        }
        if let Err(e) = storage.delete_outbox_older_than(cutoff).await {
            warn!("outbox retention: {e}");
        }
        if let Err(e) = storage.delete_traffic_older_than(cutoff).await {
            warn!("uplink counter retention: {e}");
        }
        if let Err(e) = storage.delete_link_hours_older_than(cutoff).await {
            warn!("link history retention: {e}");
        }
        if let Err(e) = storage.delete_gateway_minutes_older_than(cutoff).await {
            warn!("gateway traffic retention: {e}");
        }
        // Change-feed entries were applied long ago (the follower runs seconds behind
        // at most); kept as long as events for whoever reads the feed later.
        if let Err(e) = storage.trim_changes(cutoff).await {
            warn!("change-feed retention: {e}");
        }
        let alert_cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(alert_days));
        if let Err(e) = storage.delete_alerts_resolved_before(alert_cutoff).await {
            warn!("alert retention: {e}");
        }
        measurement_upkeep(&*storage).await;
    }
}

/// The measurements' upkeep with each `postgres` integration's retention (its
/// settings parsed by the rule the API checked them with).
async fn measurement_upkeep(storage: &dyn Storage) {
    use lorikeet_service::integration::PostgresConfig;
    use lorikeet_storage::{IntegrationKind, MeasurementRetention};
    let integrations = match storage.list_integrations(None).await {
        Ok(l) => l,
        Err(e) => {
            warn!("measurement retention: {e}");
            return;
        }
    };
    let mut retention = Vec::new();
    for i in integrations
        .iter()
        .filter(|i| i.kind == IntegrationKind::Postgres)
    {
        match serde_json::from_value::<PostgresConfig>(i.config.clone()) {
            Ok(c) => retention.push(MeasurementRetention {
                application_id: i.application_id,
                days: c.retention_days,
            }),
            // Unreadable settings must not cost the application its rows: keep
            // them as long as anything is kept.
            Err(e) => {
                warn!(integration = %i.id, "postgres integration settings unreadable: {e}");
                retention.push(MeasurementRetention {
                    application_id: i.application_id,
                    days: lorikeet_service::integration::MAX_RETENTION_DAYS,
                });
            }
        }
    }
    match storage
        .measurement_upkeep(lorikeet_storage::now(), &retention)
        .await
    {
        Ok(done) => {
            if !done.partitions_created.is_empty() || !done.partitions_dropped.is_empty() {
                info!(
                    created = ?done.partitions_created,
                    dropped = ?done.partitions_dropped,
                    "measurement partitions"
                );
            }
            if done.rows_deleted > 0 {
                info!(deleted = done.rows_deleted, "old measurements deleted");
            }
        }
        Err(e) => warn!("measurement retention: {e}"),
    }
}
