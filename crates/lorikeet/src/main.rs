//! The `lorikeet` binary: command line, configuration and wiring.

use clap::{Parser, Subcommand};

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
    Serve,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => {
            eprintln!(
                "lorikeet {}: the server components (gateway listener, storage, API) are not built yet; \
                 only the LoRaWAN core library exists so far.",
                env!("CARGO_PKG_VERSION")
            );
            Ok(())
        }
    }
}
