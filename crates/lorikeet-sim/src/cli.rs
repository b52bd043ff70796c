//! `lorikeet sim`: provisions devices, gateways and a webhook through a running
//! Lorikeet's API, runs the load generator against its Semtech UDP port, receives
//! the webhooks itself, reports what it measured and removes what it provisioned.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use lorikeet_lorawan::{Eui64, NetId};
use serde_json::json;
use tokio::sync::watch;

use super::gateway::SimGateway;
use super::load::{self, LoadConfig, PayloadKind};
use super::provision::{self, Activation, Api, Created, ProvisionConfig, ProvisionError};
use super::report::Report;
use super::webhook::{self, Tracker};

/// How simulated devices activate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActivationArg {
    /// Join over the air (JoinRequest / JoinAccept through the server).
    Otaa,
    /// Sessions written through the API.
    Abp,
}

/// `lorikeet sim` options.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// The server's API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// Bearer token for the API (default: read from --token-file).
    #[arg(long, env = "LORIKEET_SIM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the admin token (what `lorikeet serve` generated).
    #[arg(long, default_value = "lorikeet-admin-token")]
    pub token_file: PathBuf,
    /// The server's Semtech UDP address.
    #[arg(long, default_value = "127.0.0.1:1700")]
    pub udp: SocketAddr,
    /// Simulated devices.
    #[arg(long, default_value_t = 100)]
    pub devices: usize,
    /// Simulated gateways (each with its own UDP socket).
    #[arg(long, default_value_t = 3)]
    pub gateways: usize,
    /// Uplinks per second over all devices (0: as fast as possible).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Length of the measured phase, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// How many gateways hear each uplink, `MIN-MAX` (picked per uplink).
    #[arg(long, default_value = "1-2", value_parser = parse_copies)]
    pub copies: (usize, usize),
    /// Share of uplinks sent confirmed, 0..1.
    #[arg(long, default_value_t = 0.1)]
    pub confirmed: f64,
    /// OTAA or ABP.
    #[arg(long, value_enum, default_value_t = ActivationArg::Otaa)]
    pub activation: ActivationArg,
    /// LoRaWAN version of the devices: 1.0.3 or 1.1.0.
    #[arg(long, default_value = "1.0.3")]
    pub mac_version: String,
    /// Uplink payload: `cayenne` (decoded by the server) or `raw:N` (N random bytes).
    #[arg(long, default_value = "cayenne", value_parser = parse_payload)]
    pub payload: PayloadKind,
    /// Joins per second while devices join.
    #[arg(long, default_value_t = 200.0)]
    pub join_rate: f64,
    /// Seconds to wait for late webhooks after the measured phase.
    #[arg(long, default_value_t = 3.0)]
    pub drain: f64,
    /// Where the simulator's webhook receiver listens; the server must reach it.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub webhook_bind: SocketAddr,
    /// First DevEUI (hex); runs with different bases do not collide.
    #[arg(long, default_value = "70b3d57e50000000", value_parser = parse_hex_u64)]
    pub dev_eui_base: u64,
    /// First gateway EUI (hex).
    #[arg(long, default_value = "70b3d57e5a000000", value_parser = parse_hex_u64)]
    pub gateway_base: u64,
    /// The server's NetID (ABP addresses come from its block).
    #[arg(long, default_value = "000000")]
    pub net_id: String,
    /// Rate phases instead of --rate/--duration, e.g. `60000:5,15000:10` (uplinks
    /// per second : seconds): an overload, then the normal rate. Rates must be > 0.
    #[arg(long, value_parser = parse_phases)]
    pub phases: Option<Phases>,
    /// Generator tasks.
    #[arg(long, default_value_t = 2)]
    pub shards: usize,
    /// Most rxpk per PUSH_DATA (lora_pkt_fwd sends up to 8 packets received in one
    /// concentrator poll together); 1 sends every reception on its own.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub rxpk_per_push: u8,
    /// The server's process id, for its memory use (default: a local `lorikeet serve`, if found).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print the report as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Keep what the run provisioned (application, devices, webhook, profile,
    /// gateways) on the server; by default it is removed at the end, also after an
    /// error or Ctrl-C.
    #[arg(long)]
    pub keep: bool,
    /// The server's Prometheus `/metrics` (default: on the --api address), read at the
    /// end for the windows its scheduler skipped on the simulated gateways.
    #[arg(long)]
    pub metrics: Option<String>,
    /// An integration to add to the run's application beside its webhook, as
    /// `KIND=JSON`, e.g. `amqp={"url":"amqp://guest:guest@127.0.0.1:5672/%2f","exchange":"amq.topic"}`
    /// or `kafka={"brokers":["127.0.0.1:9092"],"topic":"lorikeet.{event}"}`; repeatable.
    /// The report says how long each took to deliver the run's events.
    #[arg(long = "integration", value_name = "KIND=JSON", value_parser = parse_integration)]
    pub integrations: Vec<Integration>,
}

/// An `--integration`: its kind and settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    /// `amqp`, `kafka`, `nats`, `influxdb`, `postgres`.
    pub kind: String,
    /// The body of `POST …/integrations/{kind}`.
    pub settings: serde_json::Value,
}

fn parse_integration(s: &str) -> Result<Integration, String> {
    let (kind, json) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected KIND=JSON"))?;
    let kind = kind.trim();
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_lowercase()) || kind == "http" {
        return Err(format!(
            "{kind:?}: an integration kind such as amqp, kafka, nats, influxdb (the run's webhook is its own)"
        ));
    }
    let settings: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("{kind}: settings are not JSON: {e}"))?;
    if !settings.is_object() {
        return Err(format!("{kind}: settings must be a JSON object"));
    }
    Ok(Integration {
        kind: kind.to_owned(),
        settings,
    })
}

/// Rate phases: (uplinks per second, seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Phases(pub Vec<(f64, f64)>);

fn parse_phases(s: &str) -> Result<Phases, String> {
    s.split(',')
        .map(|p| {
            let (rate, secs) = p
                .split_once(':')
                .ok_or_else(|| format!("phase {p:?}: expected RATE:SECONDS"))?;
            let rate: f64 = rate
                .trim()
                .parse()
                .map_err(|_| format!("phase {p:?}: rate is not a number"))?;
            let secs: f64 = secs
                .trim()
                .parse()
                .map_err(|_| format!("phase {p:?}: seconds is not a number"))?;
            if !(rate > 0.0 && rate.is_finite() && secs > 0.0 && secs <= 86_400.0) {
                return Err(format!(
                    "phase {p:?}: the rate must be above 0 and the length 0..86400 s"
                ));
            }
            Ok((rate, secs))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Phases)
}

fn parse_copies(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: usize = a
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: expected MIN-MAX"))?;
    let b: usize = b
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: expected MIN-MAX"))?;
    if a == 0 || b < a {
        return Err(format!("{s:?}: need 1 <= MIN <= MAX"));
    }
    Ok((a, b))
}

fn parse_payload(s: &str) -> Result<PayloadKind, String> {
    if s == "cayenne" {
        return Ok(PayloadKind::Cayenne);
    }
    match s.strip_prefix("raw:").map(str::parse::<usize>) {
        Some(Ok(n)) if n <= 222 => Ok(PayloadKind::Raw(n)),
        _ => Err(format!("{s:?}: expected cayenne or raw:N with N <= 222")),
    }
}

fn parse_hex_u64(s: &str) -> Result<u64, String> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("{s:?}: {e}"))
}

/// Why a simulation could not run. Every message about a connection names its address.
#[derive(Debug, thiserror::Error)]
pub enum SimRunError {
    /// A bad option.
    #[error("{0}")]
    Usage(String),
    /// The API check before provisioning failed (nothing was created).
    #[error("the API is not usable (--api, --token): {0}")]
    Api(#[source] ProvisionError),
    /// The Semtech UDP check before provisioning failed (nothing was created).
    #[error("no Semtech UDP server at {addr} (--udp): {source}")]
    Udp {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The webhook receiver could not listen.
    #[error("cannot listen for webhooks on {addr} (--webhook-bind): {source}")]
    Webhook {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Provisioning through the API failed.
    #[error("provisioning: {0}")]
    Provision(#[source] ProvisionError),
    /// The load generator failed (its message names the server's address).
    #[error("{0}")]
    Load(#[source] std::io::Error),
    /// Stopped by Ctrl-C.
    #[error("interrupted")]
    Interrupted,
    /// The run was measured but what it provisioned could not all be removed.
    #[error("removing what the run provisioned: {source}; left on the server: {left}")]
    Cleanup {
        /// Why.
        source: ProvisionError,
        /// What is left, for people.
        left: String,
        /// The run's report.
        report: Box<Report>,
    },
}

/// How long the Semtech UDP check waits for a PULL_ACK or a refusal. Lorikeet does
/// not answer an unknown gateway, so a good address costs this much.
const UDP_PROBE_WAIT: Duration = Duration::from_millis(500);

/// A local `lorikeet serve` process, if exactly one is visible.
fn find_server_pid() -> Option<u32> {
    let mut found = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        let is_lorikeet = args.first().is_some_and(|a| a.ends_with(b"lorikeet"));
        if is_lorikeet && args.get(1).is_some_and(|a| *a == b"serve") {
            if found.is_some() {
                return None;
            }
            found = Some(pid);
        }
    }
    found
}

/// Runs a whole simulation and returns its report.
pub async fn run(args: SimArgs) -> Result<Report, SimRunError> {
    run_until(args, std::future::pending()).await
}

/// Like [`run`], stopping early when `interrupt` completes (the binary passes Ctrl-C):
/// no new request or uplink is sent, what was provisioned is removed (unless
/// `--keep`) and the result is [`SimRunError::Interrupted`].
pub async fn run_until(
    args: SimArgs,
    interrupt: impl Future<Output = ()>,
) -> Result<Report, SimRunError> {
    if !(0.0..=1.0).contains(&args.confirmed) {
        return Err(SimRunError::Usage("--confirmed must be within 0..1".into()));
    }
    if args.devices == 0 || args.gateways == 0 {
        return Err(SimRunError::Usage(
            "--devices and --gateways must be at least 1".into(),
        ));
    }
    if args.copies.1 > args.gateways {
        return Err(SimRunError::Usage(format!(
            "--copies {}-{} needs at least {} gateways",
            args.copies.0, args.copies.1, args.copies.1
        )));
    }
    if !matches!(args.mac_version.as_str(), "1.0.3" | "1.1.0") {
        return Err(SimRunError::Usage(
            "--mac-version must be 1.0.3 or 1.1.0".into(),
        ));
    }
    let net_id = u32::from_str_radix(&args.net_id, 16)
        .ok()
        .and_then(|n| NetId::from_u32(n).ok())
        .ok_or_else(|| {
            SimRunError::Usage(format!("--net-id {:?} is not 6 hex digits", args.net_id))
        })?;
    let token = match &args.token {
        Some(t) => t.clone(),
        None => std::fs::read_to_string(&args.token_file)
            .map(|t| t.trim().to_owned())
            .map_err(|e| {
                SimRunError::Usage(format!(
                    "no --token and cannot read {}: {e}",
                    args.token_file.display()
                ))
            })?,
    };

    // Both ends are checked before anything is created. A gateway EUI the run never
    // provisions: the check must not claim a simulated gateway's downlink address.
    let api = Api::new(&args.api, &token).map_err(SimRunError::Api)?;
    api.check().await.map_err(SimRunError::Api)?;
    let probe_id = Eui64::from_u64(args.gateway_base.wrapping_sub(1));
    SimGateway::probe(probe_id, args.udp, UDP_PROBE_WAIT)
        .await
        .map_err(|source| SimRunError::Udp {
            addr: args.udp,
            source,
        })?;

    // The receiver first, so the webhook can point at it.
    let mut secret_bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret_bytes);
    let secret = hex::encode(secret_bytes);
    let tracker: Arc<Tracker> = Tracker::new(Some(secret.clone()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let hook_addr = webhook::serve(args.webhook_bind, tracker.clone(), stop_rx)
        .await
        .map_err(|source| SimRunError::Webhook {
            addr: args.webhook_bind,
            source,
        })?;

    let codec = match args.payload {
        PayloadKind::Cayenne => json!({"type": "cayenne_lpp"}),
        PayloadKind::Raw(_) => json!({"type": "none"}),
    };
    if !args.quiet {
        eprintln!(
            "lorikeet sim: provisioning {} devices and {} gateways through {}",
            args.devices, args.gateways, args.api
        );
    }
    let pcfg = ProvisionConfig {
        devices: args.devices,
        gateways: args.gateways,
        activation: match args.activation {
            ActivationArg::Otaa => Activation::Otaa,
            ActivationArg::Abp => Activation::Abp,
        },
        mac_version: args.mac_version.clone(),
        codec,
        webhook_url: Some(format!("http://{hook_addr}/sim")),
        signing_secret: Some(secret),
        integrations: args
            .integrations
            .iter()
            .map(|i| (i.kind.clone(), i.settings.clone()))
            .collect(),
        dev_eui_base: args.dev_eui_base,
        gateway_base: args.gateway_base,
        net_id,
        concurrency: 16,
    };
    let created = Created::default();
    let stop = AtomicBool::new(false);
    tokio::pin!(interrupt);

    let provisioning = provision::provision(&api, &pcfg, &created, &stop);
    tokio::pin!(provisioning);
    let provisioned = tokio::select! {
        r = &mut provisioning => r.map_err(SimRunError::Provision),
        () = &mut interrupt => {
            // Requests in flight finish, so `created` knows all that exists.
            stop.store(true, Ordering::Relaxed);
            let _ = provisioning.await;
            Err(SimRunError::Interrupted)
        }
    };
    let outcome = match provisioned {
        Ok(p) => {
            // E.g. kept by an earlier `--keep` run with the same bases.
            if p.existing_devices > 0 {
                eprintln!(
                    "lorikeet sim: warning: {} of the devices existed already; they stay in \
                     their own application, so their uplinks go to its webhook, not to this \
                     run's receiver (they count as lost), and the end does not remove them. \
                     Use another --dev-eui-base, or delete them.",
                    p.existing_devices
                );
            }
            if p.existing_gateways > 0 {
                eprintln!(
                    "lorikeet sim: note: {} of the gateways existed already; they are used and \
                     not removed at the end. The server refuses their PULL_DATA for \
                     gateway.address_takeover_silence_s (30 s by default) after another \
                     forwarder last used them: wait, or use another --gateway-base.",
                    p.existing_gateways
                );
            }
            let gateway_ids = p.gateways.clone();
            let cfg = LoadConfig {
                server: args.udp,
                gateways: p.gateways,
                rate_per_s: args.rate.max(0.0),
                duration: Duration::from_secs_f64(args.duration.max(0.1)),
                copies: args.copies,
                confirmed_share: args.confirmed,
                payload: args.payload,
                f_port: 10,
                join_rate_per_s: args.join_rate.max(1.0),
                drain: Duration::from_secs_f64(args.drain.max(0.0)),
                rate_phases: args
                    .phases
                    .clone()
                    .map(|p| p.0)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(r, s)| (r, Duration::from_secs_f64(s)))
                    .collect(),
                shards: args.shards.max(1),
                rxpk_per_push: usize::from(args.rxpk_per_push),
                progress: !args.quiet,
                server_pid: args.server_pid.or_else(find_server_pid),
            };
            let metrics_url = args
                .metrics
                .clone()
                .unwrap_or_else(|| format!("{}/metrics", args.api.trim_end_matches('/')));
            // Each integration's backlog is watched from the end of the sending on,
            // beside the load, so its drain time is not rounded up to the load's
            // own wait for late webhooks.
            let sending = if cfg.rate_phases.is_empty() {
                cfg.duration
            } else {
                cfg.rate_phases.iter().map(|(_, d)| *d).sum()
            };
            let watch = match Api::new(&args.api, &token) {
                Ok(watcher) if !args.integrations.is_empty() => {
                    Some(tokio::spawn(watch_integrations(
                        watcher,
                        p.application_id.clone(),
                        args.integrations.clone(),
                        std::time::Instant::now(),
                        sending,
                    )))
                }
                _ => None,
            };
            tokio::select! {
                r = load::run(cfg, p.devices, tracker) => match r {
                    Ok(mut report) => {
                        report.refused_by_scheduler =
                            api.scheduler_refusals(&metrics_url, &gateway_ids).await;
                        if let Some(w) = watch {
                            let events = report.uplinks_delivered
                                + report.duplicate_deliveries
                                + report.other_events.values().sum::<u64>();
                            report.integrations = w
                                .await
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(kind, drained, last_error)| crate::report::IntegrationRun {
                                    kind,
                                    events,
                                    drained_after_s: drained,
                                    events_per_s: drained.map(|t| events as f64 / t.max(1e-3)),
                                    last_error,
                                })
                                .collect();
                        }
                        Ok(report)
                    }
                    Err(e) => Err(SimRunError::Load(e)),
                },
                () = &mut interrupt => {
                    if !args.quiet {
                        eprintln!();
                    }
                    Err(SimRunError::Interrupted)
                }
            }
        }
        Err(e) => Err(e),
    };

    // The webhook receiver stays up until the webhook is gone: the server would
    // otherwise retry into a closed port meanwhile.
    let cleanup = if args.keep {
        if !args.quiet && !created.is_empty() {
            eprintln!("lorikeet sim: kept on the server (--keep): {created}");
            if created.has_webhook() {
                eprintln!(
                    "lorikeet sim: the webhook points at http://{hook_addr}/sim, which closes now"
                );
            }
        }
        Ok(())
    } else {
        if !args.quiet && !created.is_empty() {
            eprintln!("lorikeet sim: removing {created}");
        }
        provision::remove(&api, &created).await
    };
    let _ = stop_tx.send(true);
    match (outcome, cleanup) {
        (outcome, Ok(())) => outcome,
        (Ok(report), Err(source)) => Err(SimRunError::Cleanup {
            source,
            left: created.to_string(),
            report: Box::new(report),
        }),
        (Err(e), Err(source)) => {
            // The run's own error is the result; this one must not go unseen.
            eprintln!(
                "lorikeet sim: removing what the run provisioned: {source}; left on the server: {created}"
            );
            Err(e)
        }
    }
}

/// For each integration: seconds from `started` until its backlog was empty once
/// the sending (`sending` long) was over, and its last error. Polled every 50 ms
/// for at most [`INTEGRATION_WAIT`] after the sending.
async fn watch_integrations(
    api: Api,
    application_id: String,
    integrations: Vec<Integration>,
    started: std::time::Instant,
    sending: Duration,
) -> Vec<(String, Option<f64>, Option<String>)> {
    tokio::time::sleep_until(tokio::time::Instant::from_std(started + sending)).await;
    let deadline = tokio::time::Instant::now() + INTEGRATION_WAIT;
    let mut out = Vec::new();
    for i in &integrations {
        let mut last_error;
        let mut drained = None;
        loop {
            match api.integration_state(&application_id, &i.kind).await {
                Ok((0, e)) => {
                    last_error = e;
                    drained = Some(started.elapsed().as_secs_f64());
                    break;
                }
                Ok((_, e)) => last_error = e,
                Err(e) => last_error = Some(e.to_string()),
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        out.push((i.kind.clone(), drained, last_error));
    }
    out
}

/// Longest wait for an integration's backlog to empty after the load.
const INTEGRATION_WAIT: Duration = Duration::from_secs(120);

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimArgs,
    }

    #[test]
    fn the_command_line_parses() {
        Cli::command().debug_assert();
        let c = Cli::try_parse_from(["sim", "--phases", "60000:5,12000:8", "--rxpk-per-push", "1"])
            .unwrap();
        assert_eq!(
            c.args.phases,
            Some(Phases(vec![(60000.0, 5.0), (12000.0, 8.0)]))
        );
        assert_eq!(c.args.rxpk_per_push, 1);
        assert!(Cli::try_parse_from(["sim", "--rxpk-per-push", "0"]).is_err());
        assert!(Cli::try_parse_from(["sim", "--phases", "0:1"]).is_err());
    }

    use super::*;

    #[test]
    fn option_parsers() {
        assert_eq!(
            parse_phases("60000:5, 15000:10"),
            Ok(Phases(vec![(60000.0, 5.0), (15000.0, 10.0)]))
        );
        assert!(parse_phases("0:5").is_err());
        assert!(parse_phases("100").is_err());
        assert!(parse_phases("100:x").is_err());
        assert_eq!(parse_copies("1-3"), Ok((1, 3)));
        assert_eq!(parse_copies("2"), Ok((2, 2)));
        assert!(parse_copies("0-1").is_err());
        assert!(parse_copies("3-1").is_err());
        assert_eq!(parse_payload("cayenne"), Ok(PayloadKind::Cayenne));
        assert_eq!(parse_payload("raw:12"), Ok(PayloadKind::Raw(12)));
        assert!(parse_payload("raw:300").is_err());
        assert!(parse_payload("lpp").is_err());
        assert_eq!(parse_hex_u64("0x10"), Ok(16));
        let i = parse_integration(r#"amqp={"url":"amqp://h","exchange":"x"}"#).unwrap();
        assert_eq!(i.kind, "amqp");
        assert_eq!(i.settings["exchange"], "x");
        assert!(parse_integration("amqp").is_err());
        assert!(parse_integration("amqp={").is_err());
        assert!(parse_integration("amqp=[1]").is_err());
        assert!(parse_integration(r#"http={"url":"x"}"#).is_err());
    }
}
