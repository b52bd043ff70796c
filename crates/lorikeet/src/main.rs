//! The `lorikeet` binary: command line, logging, metrics and signal handling around
//! [`lorikeet::start`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lorikeet::config::{Config, LogFormat};

mod sim;

/// Lorikeet: a LoRaWAN network server and application server in one binary.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (embedded SQLite by default; see examples/lorikeet.toml).
    Serve {
        /// A TOML configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Simulate gateways and devices against a running server and report throughput,
    /// loss and latency (docs/benchmarks.md).
    ///
    /// Runs the `lorikeet-sim` binary found next to this one or on PATH (build it with
    /// `cargo build --release -p lorikeet-sim`); `lorikeet sim --help` shows its options.
    #[command(disable_help_flag = true)]
    Sim {
        /// Passed to `lorikeet-sim` as they are.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate {
        /// A TOML configuration file (only `[database]` is used).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn load(path: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    match Config::load(path, std::env::vars()) {
        Ok(l) => {
            init_logging(&l.config);
            for w in &l.warnings {
                tracing::warn!("{w}");
            }
            Ok(l.config)
        }
        Err(e) => {
            eprintln!("lorikeet: configuration error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        // No runtime: on Unix this process becomes the simulator.
        Command::Sim { args } => sim::run(args),
        Command::Serve { config } => match load(config.as_deref()) {
            Ok(config) => block_on(serve(config)),
            Err(code) => code,
        },
        Command::Migrate { config } => match load(config.as_deref()) {
            Ok(config) => block_on(migrate(config)),
            Err(code) => code,
        },
    }
}

fn block_on(task: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(task),
        Err(e) => {
            eprintln!("lorikeet: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: Config) -> ExitCode {
    // `connect` applies every pending migration.
    match lorikeet_storage::connect_with(&config.database.url, config.database.connect_options())
        .await
    {
        Ok(s) => {
            s.close().await;
            tracing::info!(
                "database {} is up to date",
                lorikeet_storage::redact_url(&config.database.url)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "lorikeet: cannot migrate the database {}: {e}",
                lorikeet_storage::redact_url(&config.database.url)
            );
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    let metrics = match lorikeet::prometheus::install() {
        Ok(render) => Some(render),
        Err(e) => {
            tracing::warn!("metrics disabled: {e}");
            None
        }
    };
    let token_source = admin_token_source(&config);
    let server = match lorikeet::start(config, metrics).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lorikeet: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "lorikeet is running: API http://{} (admin token {token_source}), Semtech UDP on {}",
        server.api_addr, server.udp_addr
    );
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Where the admin token comes from, for the start-up line: the first thing a new
/// operator needs to make an API call.
fn admin_token_source(config: &Config) -> String {
    if !config.api.admin_token.is_empty() {
        // The environment overrides the file; both land in api.admin_token.
        if std::env::var("LORIKEET_API_ADMIN_TOKEN").is_ok_and(|v| !v.is_empty()) {
            "from LORIKEET_API_ADMIN_TOKEN".to_owned()
        } else {
            "from api.admin_token of the config file".to_owned()
        }
    } else {
        let file = &config.api.admin_token_file;
        format!(
            "in {}",
            std::path::absolute(file)
                .unwrap_or_else(|_| file.clone())
                .display()
        )
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_logging(config: &Config) {
    // The level was validated with the config.
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stdout.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match config.log.format {
        LogFormat::Json => builder.with_ansi(false).json().init(),
        LogFormat::Human => builder.with_ansi(colour(&std::io::stdout())).init(),
    }
}

/// Colour codes only for a terminal: a file or a pipe gets plain text. `NO_COLOR`
/// (any non-empty value) turns them off on a terminal too.
fn colour(stream: &impl std::io::IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
