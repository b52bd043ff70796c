//! The `lorikeet` binary: command line, logging, metrics and signal handling around
//! [`lorikeet::start`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use lorikeet::config::{Config, LogFormat};

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
    Sim(Box<lorikeet::sim::cli::SimArgs>),
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
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lorikeet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve { config } => {
            let config = match load(config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            runtime.block_on(serve(config))
        }
        Command::Sim(args) => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
                )
                .with_writer(std::io::stderr)
                .try_init();
            let json = args.json;
            match runtime.block_on(lorikeet::sim::cli::run(*args)) {
                Ok(report) => {
                    if json {
                        match serde_json::to_string_pretty(&report) {
                            Ok(s) => println!("{s}"),
                            Err(e) => {
                                eprintln!("lorikeet sim: {e}");
                                return ExitCode::FAILURE;
                            }
                        }
                    } else {
                        print!("{report}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("lorikeet sim: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate { config } => {
            let config = match load(config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            runtime.block_on(async {
                // `connect` applies every pending migration.
                match lorikeet_storage::connect(&config.database.url).await {
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
            })
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    let metrics = match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
        Ok(handle) => {
            lorikeet_gateway::describe_metrics();
            lorikeet_integration::metrics::describe_metrics();
            let render: lorikeet_api::MetricsRender = Arc::new(move || handle.render());
            Some(render)
        }
        Err(e) => {
            tracing::warn!("metrics disabled: {e}");
            None
        }
    };
    let server = match lorikeet::start(config, metrics).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lorikeet: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "lorikeet is running: API http://{} (admin token in {}), Semtech UDP on {}",
        server.api_addr,
        if std::env::var("LORIKEET_API_ADMIN_TOKEN").is_ok() {
            "LORIKEET_API_ADMIN_TOKEN".to_string()
        } else {
            "the configured admin_token_file or api.admin_token".to_string()
        },
        server.udp_addr
    );
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
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
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}
