//! `lorikeet sim`: provisions devices, gateways and a webhook through a running
//! Lorikeet's API, runs the load generator against its Semtech UDP port, receives
//! the webhooks itself and reports what it measured.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use lorikeet_lorawan::NetId;
use serde_json::json;
use tokio::sync::watch;

use super::load::{self, LoadConfig, PayloadKind};
use super::provision::{self, Activation, ProvisionConfig};
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

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimRunError {
    /// A bad option.
    #[error("{0}")]
    Usage(String),
    /// Provisioning through the API failed.
    #[error("provisioning: {0}")]
    Provision(#[from] provision::ProvisionError),
    /// Sockets.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

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

    // The receiver first, so the webhook can point at it.
    let mut secret_bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret_bytes);
    let secret = hex::encode(secret_bytes);
    let tracker: Arc<Tracker> = Tracker::new(Some(secret.clone()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let hook_addr = webhook::serve(args.webhook_bind, tracker.clone(), stop_rx).await?;

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
    let provisioned = provision::provision(&ProvisionConfig {
        api: args.api.trim_end_matches('/').to_owned(),
        token,
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
        dev_eui_base: args.dev_eui_base,
        gateway_base: args.gateway_base,
        net_id,
        concurrency: 16,
    })
    .await?;

    let cfg = LoadConfig {
        server: args.udp,
        gateways: provisioned.gateways,
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
    let report = load::run(cfg, provisioned.devices, tracker).await;
    let _ = stop_tx.send(true);
    Ok(report?)
}

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
    }
}
