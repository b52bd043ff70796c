//! The `lorikeet` binary: command line, configuration and wiring.

mod config;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};

/// Lorikeet: a LoRaWAN network server and application server in one binary.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// A TOML configuration file (see examples/lorikeet.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            let loaded = match Config::load(config.as_deref(), std::env::vars()) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("lorikeet: configuration error: {e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(&loaded.config);
            for w in &loaded.warnings {
                tracing::warn!("{w}");
            }
            tracing::warn!(
                "the server components (gateway listener, storage, API) are not built yet; \
                 only the LoRaWAN core library exists so far"
            );
            ExitCode::SUCCESS
        }
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
