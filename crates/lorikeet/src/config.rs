//! Configuration: built-in defaults, then a TOML file, then `LORIKEET_<SECTION>_<KEY>`
//! environment variables, each layer overriding the one before.
//!
//! Everything is validated here, before any port is bound, and every error names the
//! key (or environment variable) that is wrong.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use lorikeet_gateway::GatewayConfig;
use lorikeet_lorawan::NetId;
use lorikeet_region::RegionConfig;
use serde::{Deserialize, Serialize};

/// Prefix of every environment variable that overrides a configuration key.
pub const ENV_PREFIX: &str = "LORIKEET_";

/// Environment variables with our prefix that are not configuration keys (used by the
/// test suite); they are neither applied nor warned about.
const NON_CONFIG_ENV: &[&str] = &["LORIKEET_TEST_POSTGRES_URL", "LORIKEET_REQUIRE_POSTGRES"];

/// The whole configuration of `lorikeet serve`. Its `Debug` shows no secret (the
/// admin token, KEKs and database passwords are redacted), so it may be logged.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where state is stored.
    pub database: DatabaseConfig,
    /// The REST API.
    pub api: ApiConfig,
    /// Prometheus metrics.
    pub monitoring: MonitoringConfig,
    /// The Semtech UDP listener.
    pub gateway: GatewayConfig,
    /// Network-server behaviour.
    pub network: NetworkConfig,
    /// Stored events.
    pub events: EventsConfig,
    /// Alert evaluation (`docs/alerts.md`).
    pub alerts: AlertsConfig,
    /// Payload codecs.
    pub codec: CodecSettings,
    /// MAC commands and ADR (`docs/network-server.md`).
    pub mac: lorikeet_ns::mac::MacConfig,
    /// Per-region channel settings, by region name (`[regions.US915]`).
    pub regions: BTreeMap<String, RegionConfig>,
    /// Webhook delivery (`docs/integrations.md`).
    pub webhook: lorikeet_integration::WebhookConfig,
    /// The MQTT integration; off while `server` is empty (`docs/integrations.md`).
    pub mqtt: lorikeet_integration::MqttConfig,
    /// Logging.
    pub log: LogConfig,
    /// The key-encryption key of the stored secrets (`docs/security.md`).
    pub security: SecurityConfig,
}

/// `[database]`
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (created if missing) or `postgres://user@host/db`.
    pub url: String,
    /// SQLite durability: `full` (default: a commit is on disk before anything that
    /// depends on it leaves, even across a power loss) or `normal` (faster; survives
    /// a killed process but a power loss can undo the last commits).
    pub sqlite_synchronous: SqliteSynchronous,
}

/// `[database] sqlite_synchronous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// `PRAGMA synchronous=FULL`.
    #[default]
    Full,
    /// `PRAGMA synchronous=NORMAL`.
    Normal,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://lorikeet.db".into(),
            sqlite_synchronous: SqliteSynchronous::Full,
        }
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &lorikeet_storage::redact_url(&self.url))
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .finish()
    }
}

impl DatabaseConfig {
    /// The storage options this section asks for.
    pub fn connect_options(&self) -> lorikeet_storage::ConnectOptions {
        lorikeet_storage::ConnectOptions {
            sqlite_sync: match self.sqlite_synchronous {
                SqliteSynchronous::Full => lorikeet_storage::SqliteSync::Full,
                SqliteSynchronous::Normal => lorikeet_storage::SqliteSync::Normal,
            },
        }
    }
}

/// `[api]`
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address the HTTP API listens on (a host name is resolved at load, see
    /// [`BIND_KEYS`]).
    pub bind: SocketAddr,
    /// Bearer token with all rights. Empty: read from (or generated into) `admin_token_file`.
    pub admin_token: String,
    /// File holding the generated admin token when `admin_token` is empty.
    pub admin_token_file: PathBuf,
    /// Read your writes: how long a write waits for the live state to apply it
    /// before answering 503 ("stored, not yet live").
    pub live_wait_ms: u64,
    /// How long a console sign-in lasts, in hours.
    pub session_hours: u32,
    /// Marks the console's session cookie `Secure` always (it is whenever a proxy in
    /// front sends `X-Forwarded-Proto: https`).
    pub secure_cookies: bool,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("bind", &self.bind)
            .field("admin_token", &redacted(&self.admin_token))
            .field("admin_token_file", &self.admin_token_file)
            .field("live_wait_ms", &self.live_wait_ms)
            .field("session_hours", &self.session_hours)
            .field("secure_cookies", &self.secure_cookies)
            .finish()
    }
}

/// What `Debug` shows of a secret: whether it is set.
fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() {
        ""
    } else {
        "<redacted>"
    }
}

/// `[security]`: the key-encryption key (KEK) that root keys, session keys and
/// integration secrets are stored encrypted under (`docs/security.md`). With none
/// configured, `./lorikeet-kek` is used, and generated at first start.
#[derive(Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// The KEK: 64 hex digits (32 bytes). Prefer `kek_file` or the environment
    /// (`LORIKEET_SECURITY_KEK`) to a value in a config file.
    pub kek: String,
    /// The KEK's id, stored beside every value it encrypts; empty: derived from the
    /// key (`kek-` and 8 hex digits).
    pub kek_id: String,
    /// A file holding the KEK (64 hex digits, or `ID:HEX`); it must exist. Used when
    /// `kek` is empty.
    pub kek_file: PathBuf,
    /// Former KEKs, which only decrypt, while `lorikeet keys rotate` re-encrypts
    /// their values under `kek`: each `ID:HEX`, or `HEX` for a derived id.
    pub previous_keks: Vec<String>,
    /// Networks (CIDR, e.g. `10.20.0.0/16`) every webhook may reach, whoever set it,
    /// cloud metadata addresses included. Empty: a tenant's webhooks reach public
    /// addresses only, the admin's also loopback and private ones (the SSRF guard).
    /// Env: `LORIKEET_SECURITY_ALLOWED_TARGET_NETWORKS`, comma-separated.
    pub allowed_target_networks: Vec<String>,
}

impl SecurityConfig {
    /// The webhook address policy of `allowed_target_networks`.
    pub fn target_policy(
        &self,
    ) -> Result<lorikeet_service::target::TargetPolicy, lorikeet_service::target::CidrError> {
        lorikeet_service::target::TargetPolicy::from_cidrs(&self.allowed_target_networks)
    }
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("allowed_target_networks", &self.allowed_target_networks)
            .field("kek", &redacted(&self.kek))
            .field("kek_id", &self.kek_id)
            .field("kek_file", &self.kek_file)
            .field(
                "previous_keks",
                &format!("<{} redacted>", self.previous_keks.len()),
            )
            .finish()
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: String::new(),
            admin_token_file: PathBuf::from("lorikeet-admin-token"),
            live_wait_ms: 10_000,
            session_hours: 12,
            secure_cookies: false,
        }
    }
}

/// `[monitoring]`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct MonitoringConfig {
    /// Separate address for `GET /metrics`; empty serves it on the API address.
    /// After loading it is empty or an IP socket address (host names are resolved).
    pub bind: String,
}

/// `[network]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Our LoRa Alliance NetID (hex); DevAddrs are allocated in its block.
    pub net_id: NetId,
    /// How long copies of one uplink from several gateways are collected, in ms.
    pub dedup_window_ms: u64,
    /// Class A windows to use: `rx1_then_rx2`, `rx1_only` or `rx2_only`.
    pub rx_window: RxWindow,
    /// Time a downlink needs to reach a gateway before its window, in ms; a window
    /// closer than this is skipped for the next one.
    pub downlink_lead_ms: u64,
    /// Largest accepted jump of a device's uplink frame counter.
    pub max_f_cnt_gap: u32,
    /// Most uplinks being deduplicated at once; beyond it new ones are shed (counted).
    pub max_open_uplinks: usize,
    /// Keep each gateway within the region's duty-cycle limit per sub-band (e.g.
    /// EU868: 1 % in 868.0-868.6 MHz, 10 % in 869.4-869.65 MHz), over a sliding hour.
    pub duty_cycle: bool,
    /// A stricter operator limit in percent for every limited sub-band; 0: the
    /// region's limits only.
    pub duty_cycle_cap_percent: f64,
    /// `log` events about refused uplinks (a bad MIC, a replayed frame counter, a
    /// refused JoinRequest) stored and delivered per DevAddr (DevEUI for joins) per
    /// minute; the rest are counted in `lorikeet_log_events_suppressed_total`.
    /// Anyone with a radio can cause them. 0: none.
    pub refused_uplink_logs_per_minute: u32,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            net_id: NetId([0, 0, 0]),
            dedup_window_ms: 200,
            rx_window: RxWindow::Rx1ThenRx2,
            downlink_lead_ms: 100,
            max_f_cnt_gap: 16_384,
            max_open_uplinks: 200_000,
            duty_cycle: true,
            duty_cycle_cap_percent: 0.0,
            refused_uplink_logs_per_minute: 5,
        }
    }
}

/// Which Class A receive windows downlinks use.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RxWindow {
    /// RX1, falling back to RX2.
    Rx1ThenRx2,
    /// RX1 only.
    Rx1Only,
    /// RX2 only.
    Rx2Only,
}

/// `[codec]`: limits of the JavaScript payload-codec sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodecSettings {
    /// Time budget of one decode or encode call, in ms.
    pub time_limit_ms: u64,
    /// Heap limit of one script's runtime, in bytes.
    pub memory_limit_bytes: usize,
    /// JavaScript stack limit, in bytes.
    pub stack_limit_bytes: usize,
    /// Compiled scripts kept per worker.
    pub max_cached_scripts: usize,
    /// JavaScript worker threads.
    pub workers: usize,
}

impl Default for CodecSettings {
    fn default() -> Self {
        let d = lorikeet_codec::CodecLimits::default();
        CodecSettings {
            time_limit_ms: d.time.as_millis() as u64,
            memory_limit_bytes: d.memory_bytes,
            stack_limit_bytes: d.stack_bytes,
            max_cached_scripts: d.max_cached_scripts,
            workers: d.workers,
        }
    }
}

impl CodecSettings {
    /// The codec crate's limits.
    pub fn limits(&self) -> lorikeet_codec::CodecLimits {
        lorikeet_codec::CodecLimits {
            time: std::time::Duration::from_millis(self.time_limit_ms),
            memory_bytes: self.memory_limit_bytes,
            stack_bytes: self.stack_limit_bytes,
            max_cached_scripts: self.max_cached_scripts,
            workers: self.workers,
        }
    }
}

/// `[events]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Stored events (and delivered outbox rows) older than this many days are deleted.
    pub retention_days: u32,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig { retention_days: 30 }
    }
}

/// `[alerts]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// How often rules are reloaded and silence, gateway and integration rules are
    /// checked; an alert fires at most this much after its condition holds.
    pub interval_ms: u64,
    /// Resolved alerts older than this many days are deleted.
    pub retention_days: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            interval_ms: 5_000,
            retention_days: 90,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `lorikeet=debug,info`.
    pub level: String,
    /// `human` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Human,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A configuration problem, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a bad key or value.
    #[error("config file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the key and line).
        message: String,
    },
    /// An environment variable has a value of the wrong type.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A value (from the file or the environment) has the wrong type; the message names the key.
    #[error("{0}")]
    Value(String),
    /// A `[regions.NAME]` section names an unknown region or holds bad channels.
    #[error("config section [regions.{name}]: {message}")]
    Region {
        /// The section name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("config key {key}: {message}")]
    Invalid {
        /// `section.key`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The outcome of loading: the configuration and non-fatal remarks to log once logging is up.
#[derive(Debug)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// E.g. environment variables with our prefix that match no key.
    pub warnings: Vec<String>,
}

impl Config {
    /// Loads defaults, then `file` (if any), then the given environment variables.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let mut value =
            toml::Value::try_from(Config::default()).map_err(|e| ConfigError::Invalid {
                key: "(defaults)",
                message: e.to_string(),
            })?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            // Parse the file on its own first: toml's errors then carry line numbers.
            let file_value: toml::Value = toml::from_str(&text).map_err(|e| ConfigError::File {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
            let _: Config = toml::from_str(&text).map_err(|e| ConfigError::File {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
            merge(&mut value, file_value);
        }
        let warnings = apply_env(&mut value, env)?;
        resolve_binds(&mut value)?;
        let config: Config = value.try_into().map_err(|e: toml::de::Error| {
            ConfigError::Value(e.to_string().replace('\n', " ").trim().to_owned())
        })?;
        config.validate()?;
        Ok(Loaded { config, warnings })
    }

    /// Checks rules that types alone do not express.
    fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                key: "database.url",
                message: format!("{url:?} is neither sqlite://PATH nor postgres://…"),
            });
        }
        if self.api.live_wait_ms == 0 || self.api.live_wait_ms > 600_000 {
            return Err(ConfigError::Invalid {
                key: "api.live_wait_ms",
                message: format!(
                    "{} is outside 1..=600000 ms (how long a write waits to be live)",
                    self.api.live_wait_ms
                ),
            });
        }
        if self.api.session_hours == 0 || self.api.session_hours > 24 * 90 {
            return Err(ConfigError::Invalid {
                key: "api.session_hours",
                message: format!(
                    "{} is outside 1..=2160 hours (how long a console sign-in lasts)",
                    self.api.session_hours
                ),
            });
        }
        if self.network.dedup_window_ms == 0 || self.network.dedup_window_ms > 2_000 {
            return Err(ConfigError::Invalid {
                key: "network.dedup_window_ms",
                message: format!(
                    "{} is outside 1..=2000 ms (the whole RX1 budget is 1000 ms)",
                    self.network.dedup_window_ms
                ),
            });
        }
        let cap = self.network.duty_cycle_cap_percent;
        if !(0.0..=100.0).contains(&cap) {
            return Err(ConfigError::Invalid {
                key: "network.duty_cycle_cap_percent",
                message: format!("{cap} is outside 0..=100 (0: the region's limits only)"),
            });
        }
        if !self.monitoring.bind.is_empty() && self.monitoring.bind.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::Invalid {
                key: "monitoring.bind",
                message: format!(
                    "{:?} is not an address like 127.0.0.1:9100",
                    self.monitoring.bind
                ),
            });
        }
        if let Err(e) = self.gateway.validate() {
            return Err(ConfigError::Invalid {
                key: "gateway",
                message: e.to_string(),
            });
        }
        for (name, region) in &self.regions {
            if let Err(e) = lorikeet_region::build_region(name, region) {
                return Err(ConfigError::Region {
                    name: name.clone(),
                    message: e.to_string(),
                });
            }
        }
        if let Err(e) = self.codec.limits().validate() {
            return Err(ConfigError::Invalid {
                key: "codec",
                message: e.to_string(),
            });
        }
        if let Err(e) = self
            .mac
            .validate(lorikeet_ns::mac::AdrRegistry::default().names())
        {
            return Err(ConfigError::Invalid {
                key: "mac",
                message: e.to_string(),
            });
        }
        let integrations = lorikeet_integration::IntegrationConfig {
            webhook: self.webhook.clone(),
            mqtt: self.mqtt.clone(),
        };
        if let Err(e) = integrations.validate() {
            return Err(ConfigError::Invalid {
                key: e.key,
                message: e.message,
            });
        }
        if self.events.retention_days == 0 {
            return Err(ConfigError::Invalid {
                key: "events.retention_days",
                message: "must be at least 1 day".into(),
            });
        }
        if !(100..=3_600_000).contains(&self.alerts.interval_ms) {
            return Err(ConfigError::Invalid {
                key: "alerts.interval_ms",
                message: "must be between 100 (0.1 s) and 3600000 (1 h)".into(),
            });
        }
        if self.alerts.retention_days == 0 {
            return Err(ConfigError::Invalid {
                key: "alerts.retention_days",
                message: "must be at least 1 day".into(),
            });
        }
        if let Err(e) = self.security.target_policy() {
            return Err(ConfigError::Invalid {
                key: "security.allowed_target_networks",
                message: e.to_string(),
            });
        }
        if let Err(message) = check_log_filter(&self.log.level) {
            return Err(ConfigError::Invalid {
                key: "log.level",
                message,
            });
        }
        crate::keys::validate(&self.security)
    }
}

/// Checks a `tracing` filter such as `info` or `lorikeet_gateway=debug,info`.
///
/// `EnvFilter` reads a bare word that is not a level as a target name: `verbose`
/// means "target verbose at TRACE, everything else off", which silently turns all
/// logging off. A bare word must therefore be a level; a target needs `=level`.
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    use tracing_subscriber::filter::LevelFilter;
    const HINT: &str = "use a level (off, error, warn, info, debug, trace), or target=level \
                        pairs with a default, e.g. \"lorikeet_gateway=debug,info\"";
    if let Err(e) = filter.parse::<tracing_subscriber::EnvFilter>() {
        return Err(format!("{filter:?} is not a log filter ({e}); {HINT}"));
    }
    let directives: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Err(format!("empty, which would log nothing; {HINT}"));
    }
    for d in directives {
        if d.contains(['[', '{']) {
            // Span and field filters: EnvFilter's own syntax check is all we do.
            continue;
        }
        let level = d.rsplit_once('=').map_or(d, |(_, level)| level);
        if level.parse::<LevelFilter>().is_err() {
            return Err(if d.contains('=') {
                format!("{d:?}: {level:?} is not a level; {HINT}")
            } else {
                format!("{d:?} is not a level (a bare word would name a target and turn everything else off); {HINT}")
            });
        }
    }
    Ok(())
}

/// The socket-address keys. Each may be written with a host name
/// (`localhost:8080`): it is resolved once, at load, to its first IPv4 address (or
/// its first address when it has no IPv4 one).
pub const BIND_KEYS: &[(&str, &str, &str)] = &[
    ("api", "bind", "api.bind"),
    ("monitoring", "bind", "monitoring.bind"),
    ("gateway", "udp_bind", "gateway.udp_bind"),
];

/// Replaces host names in the [`BIND_KEYS`] by an IP socket address.
fn resolve_binds(value: &mut toml::Value) -> Result<(), ConfigError> {
    for &(section, key, name) in BIND_KEYS {
        let Some(toml::Value::String(s)) = value.get_mut(section).and_then(|t| t.get_mut(key))
        else {
            continue;
        };
        if s.is_empty() || s.parse::<SocketAddr>().is_ok() {
            continue;
        }
        let addr =
            resolve_bind(s).map_err(|message| ConfigError::Invalid { key: name, message })?;
        *s = addr.to_string();
    }
    Ok(())
}

fn resolve_bind(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!(
            "{s:?} has no port: write HOST:PORT, e.g. 127.0.0.1:8080, 0.0.0.0:8080 (every interface) or localhost:8080"
        ));
    };
    let Ok(port) = port.parse::<u16>() else {
        return Err(format!("{s:?}: {port:?} is not a port number (0-65535)"));
    };
    if host.is_empty() {
        return Err(format!(
            "{s:?} has no host: write 0.0.0.0:{port} for every interface or 127.0.0.1:{port} for this machine only"
        ));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            format!("{s:?}: cannot resolve {host:?} ({e}); write an IP address such as 127.0.0.1:{port}")
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("{s:?}: {host:?} has no address"))
}

/// Recursively overlays `over` onto `base` (tables merge, everything else replaces).
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Applies `LORIKEET_<SECTION>_<KEY>` variables to the keys that exist in `value`,
/// parsing each according to the type of the value it replaces.
fn apply_env(
    value: &mut toml::Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    let toml::Value::Table(root) = value else {
        return Ok(warnings);
    };
    // Map every known "SECTION_KEY" to its place.
    let mut known: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (section, v) in root.iter() {
        if let toml::Value::Table(t) = v {
            for key in t.keys() {
                known.insert(
                    format!("{}_{}", section, key).to_ascii_uppercase(),
                    (section.clone(), key.clone()),
                );
            }
        }
    }
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !NON_CONFIG_ENV.contains(&k.as_str()))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let name = &var[ENV_PREFIX.len()..];
        let Some((section, key)) = known.get(name) else {
            warnings.push(format!(
                "environment variable {var} matches no configuration key; ignored"
            ));
            continue;
        };
        let Some(toml::Value::Table(t)) = root.get_mut(section) else {
            continue;
        };
        let Some(slot) = t.get_mut(key) else { continue };
        let parsed = parse_env_value(slot, &raw).map_err(|message| ConfigError::Env {
            var: var.clone(),
            message,
        })?;
        *slot = parsed;
    }
    Ok(warnings)
}

fn parse_env_value(current: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    Ok(match current {
        toml::Value::String(_) => toml::Value::String(raw.to_owned()),
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| format!("{raw:?} is not an integer"))?,
        ),
        toml::Value::Float(_) => toml::Value::Float(
            raw.trim()
                .parse()
                .map_err(|_| format!("{raw:?} is not a number"))?,
        ),
        toml::Value::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
            "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
            _ => return Err(format!("{raw:?} is not a boolean (true/false)")),
        },
        // Arrays: a TOML inline array, or comma-separated strings
        // (`10.0.0.0/8,fd00::/8`).
        toml::Value::Array(_) if !raw.trim_start().starts_with('[') => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
        // Tables (and arrays written as TOML): accept a TOML inline value.
        _ => {
            let doc: toml::Table = toml::from_str(&format!("v = {raw}"))
                .map_err(|e| format!("{raw:?} is not a TOML value: {e}"))?;
            doc.get("v")
                .cloned()
                .ok_or_else(|| "empty value".to_owned())?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = Config::load(None, env(&[])).unwrap().config;
        assert_eq!(c.database.url, "sqlite://lorikeet.db");
        assert_eq!(c.api.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.gateway.udp_bind.to_string(), "0.0.0.0:1700");
        assert_eq!(c.network.dedup_window_ms, 200);
        assert_eq!(c.network.net_id.to_string(), "000000");
    }

    #[test]
    fn gateway_edge_settings_from_the_environment() {
        let c = Config::load(None, env(&[])).unwrap().config;
        assert!(c.gateway.pin_address, "pinned by default");
        assert_eq!(c.network.refused_uplink_logs_per_minute, 5);
        let c = Config::load(
            None,
            env(&[
                ("LORIKEET_GATEWAY_PIN_ADDRESS", "false"),
                (
                    "LORIKEET_GATEWAY_RATE_LIMIT_PER_ADDRESS_DATAGRAMS_PER_S",
                    "0",
                ),
                ("LORIKEET_NETWORK_REFUSED_UPLINK_LOGS_PER_MINUTE", "2"),
            ]),
        )
        .unwrap()
        .config;
        assert!(!c.gateway.pin_address);
        assert_eq!(c.gateway.rate_limit_per_address_datagrams_per_s, 0);
        assert_eq!(c.network.refused_uplink_logs_per_minute, 2);
        let e = Config::load(
            None,
            env(&[("LORIKEET_GATEWAY_MAX_TRACKED_ADDRESSES", "0")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("max_tracked_addresses"), "{e}");
    }

    #[test]
    fn file_then_env_override() {
        let dir = std::env::temp_dir().join(format!("lorikeet-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.toml");
        std::fs::write(
            &path,
            "[network]\ndedup_window_ms = 150\nnet_id = \"00001A\"\n[api]\nbind = \"0.0.0.0:9000\"\n",
        )
        .unwrap();
        let loaded = Config::load(
            Some(&path),
            env(&[
                ("LORIKEET_NETWORK_DEDUP_WINDOW_MS", "300"),
                ("LORIKEET_DATABASE_URL", "postgres://x@h/db"),
                ("LORIKEET_GATEWAY_ALLOW_UNKNOWN", "true"),
                ("LORIKEET_TEST_POSTGRES_URL", "ignored"),
                ("LORIKEET_NO_SUCH_KEY", "1"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        let c = loaded.config;
        assert_eq!(c.network.dedup_window_ms, 300, "env beats file");
        assert_eq!(c.network.net_id.to_string(), "00001a", "file beats default");
        assert_eq!(c.api.bind.port(), 9000);
        assert_eq!(c.database.url, "postgres://x@h/db");
        assert!(c.gateway.allow_unknown);
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("LORIKEET_NO_SUCH_KEY"));
    }

    #[test]
    fn errors_name_the_key() {
        let e =
            Config::load(None, env(&[("LORIKEET_NETWORK_DEDUP_WINDOW_MS", "fast")])).unwrap_err();
        assert!(
            e.to_string().contains("LORIKEET_NETWORK_DEDUP_WINDOW_MS"),
            "{e}"
        );

        let e = Config::load(None, env(&[("LORIKEET_API_BIND", "localhost")])).unwrap_err();
        assert!(e.to_string().contains("api.bind"), "{e}");
        assert!(e.to_string().contains("no port"), "{e}");

        let e = Config::load(None, env(&[("LORIKEET_NETWORK_NET_ID", "12")])).unwrap_err();
        assert!(e.to_string().contains("net_id"), "{e}");

        let e = Config::load(None, env(&[("LORIKEET_NETWORK_DEDUP_WINDOW_MS", "0")])).unwrap_err();
        assert!(e.to_string().contains("network.dedup_window_ms"), "{e}");

        let e = Config::load(None, env(&[("LORIKEET_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(e.to_string().contains("database.url"), "{e}");

        let e = Config::load(None, env(&[("LORIKEET_MQTT_SERVER", "http://x")])).unwrap_err();
        assert!(e.to_string().contains("mqtt.server"), "{e}");
        let e = Config::load(None, env(&[("LORIKEET_WEBHOOK_TIMEOUT_MS", "5")])).unwrap_err();
        assert!(e.to_string().contains("webhook.timeout_ms"), "{e}");
        let ok = Config::load(
            None,
            env(&[("LORIKEET_MQTT_SERVER", "mqtt://127.0.0.1:1883")]),
        )
        .unwrap();
        assert!(ok.config.mqtt.enabled());
        let e = Config::load(None, env(&[("LORIKEET_MAC_MAX_MAC_RETRIES", "20")])).unwrap_err();
        assert!(e.to_string().contains("max_mac_retries"), "{e}");
        let e =
            Config::load(None, env(&[("LORIKEET_MAC_DEFAULT_ADR_ALGORITHM", "x")])).unwrap_err();
        assert!(e.to_string().contains("default_adr_algorithm"), "{e}");
        let ok = Config::load(
            None,
            env(&[("LORIKEET_MAC_ADR_INSTALLATION_MARGIN_DB", "5")]),
        )
        .unwrap();
        assert_eq!(ok.config.mac.adr_installation_margin_db, 5.0);

        let dir = std::env::temp_dir().join(format!("lorikeet-cfg-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("region.toml");
        std::fs::write(&path, "[regions.XX999]\n").unwrap();
        let e = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(e.to_string().contains("[regions.XX999]"), "{e}");
        std::fs::write(&path, "[regions.US915]\nenabled_sub_bands = [9]\n").unwrap();
        let e = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(e.to_string().contains("[regions.US915]"), "{e}");
        std::fs::write(&path, "[gateway]\nuplink_queue_capacity = 0\n").unwrap();
        let e = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(e.to_string().contains("gateway"), "{e}");

        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "[network]\ndedup_windw_ms = 100\n").unwrap();
        let e = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(e.to_string().contains("dedup_windw_ms"), "{e}");
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let kek = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let c = Config::load(
            None,
            env(&[
                ("LORIKEET_API_ADMIN_TOKEN", "the-admin-token-value"),
                ("LORIKEET_DATABASE_URL", "postgres://lk:hunter2@db/lorikeet"),
                ("LORIKEET_SECURITY_KEK", kek),
                (
                    "LORIKEET_SECURITY_PREVIOUS_KEKS",
                    &format!("[\"old:{kek}\"]"),
                ),
                ("LORIKEET_MQTT_USERNAME", "u"),
                ("LORIKEET_MQTT_PASSWORD", "mqtt-pass-value"),
            ]),
        )
        .unwrap()
        .config;
        assert_eq!(c.api.admin_token, "the-admin-token-value");
        assert_eq!(c.security.previous_keks.len(), 1);
        let shown = format!("{c:?} {c:#?}");
        for secret in [
            "the-admin-token-value",
            "hunter2",
            "00112233",
            "mqtt-pass-value",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("postgres://lk:***@db/lorikeet"), "{shown}");
        assert!(shown.contains("admin_token: \"<redacted>\""), "{shown}");
    }

    #[test]
    fn bind_addresses_take_host_names() {
        // localhost comes from the hosts file: no DNS query leaves the machine.
        let c = Config::load(
            None,
            env(&[
                ("LORIKEET_API_BIND", "localhost:8080"),
                ("LORIKEET_MONITORING_BIND", "localhost:9100"),
                ("LORIKEET_GATEWAY_UDP_BIND", "localhost:1700"),
            ]),
        )
        .unwrap()
        .config;
        assert_eq!(c.api.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.monitoring.bind, "127.0.0.1:9100");
        assert_eq!(c.gateway.udp_bind.to_string(), "127.0.0.1:1700");
        let c = Config::load(None, env(&[("LORIKEET_API_BIND", "[::1]:8080")]))
            .unwrap()
            .config;
        assert_eq!(c.api.bind.to_string(), "[::1]:8080");

        for (var, value, key, says) in [
            (
                "LORIKEET_API_BIND",
                "localhost:http",
                "api.bind",
                "not a port",
            ),
            ("LORIKEET_API_BIND", ":8080", "api.bind", "no host"),
            (
                "LORIKEET_MONITORING_BIND",
                "9100",
                "monitoring.bind",
                "no port",
            ),
            (
                "LORIKEET_GATEWAY_UDP_BIND",
                "localhost:99999",
                "gateway.udp_bind",
                "not a port",
            ),
        ] {
            let e = Config::load(None, env(&[(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains(says), "{value}: {e}");
        }
    }

    #[test]
    fn allowed_target_networks_from_env_and_checked() {
        let c = Config::load(
            None,
            env(&[(
                "LORIKEET_SECURITY_ALLOWED_TARGET_NETWORKS",
                "10.20.0.0/16, fd00:1::/64,169.254.169.254/32",
            )]),
        )
        .unwrap()
        .config;
        assert_eq!(
            c.security.allowed_target_networks,
            ["10.20.0.0/16", "fd00:1::/64", "169.254.169.254/32"]
        );
        assert_eq!(c.security.target_policy().unwrap().allowed().len(), 3);
        let c = Config::load(
            None,
            env(&[(
                "LORIKEET_SECURITY_ALLOWED_TARGET_NETWORKS",
                r#"["10.0.0.0/8"]"#,
            )]),
        )
        .unwrap()
        .config;
        assert_eq!(c.security.allowed_target_networks, ["10.0.0.0/8"]);
        let c = Config::load(
            None,
            env(&[("LORIKEET_SECURITY_ALLOWED_TARGET_NETWORKS", "")]),
        )
        .unwrap()
        .config;
        assert!(c.security.allowed_target_networks.is_empty());
        for bad in ["10.0.0.1/8", "10.0.0.0/40", "intranet", "10.0.0.0/8,nope"] {
            let e = Config::load(
                None,
                env(&[("LORIKEET_SECURITY_ALLOWED_TARGET_NETWORKS", bad)]),
            )
            .map(|_| ())
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("security.allowed_target_networks") && e.contains("CIDR"),
                "{bad}: {e}"
            );
        }
        let e = Config::load(None, env(&[("LORIKEET_WEBHOOK_SIGNATURE_VERSION", "v2")]))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("signature_version"), "{e}");
        let c = Config::load(
            None,
            env(&[("LORIKEET_WEBHOOK_SIGNATURE_VERSION", "legacy")]),
        )
        .unwrap()
        .config;
        assert_eq!(
            c.webhook.signature_version,
            lorikeet_integration::signature::SignatureVersion::Legacy
        );
    }

    #[test]
    fn a_log_level_that_logs_nothing_is_refused() {
        for good in [
            "info",
            "DEBUG",
            "off",
            "lorikeet_gateway=debug,info",
            "warn,lorikeet=trace",
            "info,[uplink{dev_eui=0102030405060708}]=debug",
        ] {
            Config::load(None, env(&[("LORIKEET_LOG_LEVEL", good)]))
                .unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "verbose",
            "lorikeet",
            "info,chatty",
            "lorikeet=loud",
            "",
            " , ",
        ] {
            let e = Config::load(None, env(&[("LORIKEET_LOG_LEVEL", bad)]))
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(e.contains("log.level"), "{bad:?}: {e}");
            assert!(
                e.contains("info"),
                "{bad:?}: the message suggests a level: {e}"
            );
        }
        let e = Config::load(None, env(&[("LORIKEET_LOG_LEVEL", "verbose")]))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"verbose\" is not a level"), "{e}");
    }

    #[test]
    fn example_config_is_valid_and_complete() {
        // examples/lorikeet.toml documents every key: it must load, and every default key must appear in it.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lorikeet.toml");
        let loaded = Config::load(Some(&path), env(&[])).unwrap();
        assert!(loaded.warnings.is_empty());
        let text = std::fs::read_to_string(&path).unwrap();
        let example: toml::Table = toml::from_str(&text).unwrap();
        let defaults = toml::Value::try_from(Config::default()).unwrap();
        for (section, v) in defaults.as_table().unwrap() {
            // Empty tables are open maps (e.g. [regions.NAME]); documented by example.
            let Some(keys) = v.as_table().filter(|t| !t.is_empty()) else {
                continue;
            };
            let ex = example
                .get(section)
                .and_then(|s| s.as_table())
                .unwrap_or_else(|| panic!("examples/lorikeet.toml lacks [{section}]"));
            for key in keys.keys() {
                assert!(
                    ex.contains_key(key),
                    "examples/lorikeet.toml lacks {section}.{key}"
                );
            }
        }
    }
}
