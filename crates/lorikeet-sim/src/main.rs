//! `lorikeet-sim` (also run as `lorikeet sim`): simulated gateways and devices against
//! a running server, reporting throughput, loss and latency (docs/benchmarks.md).

use std::process::ExitCode;

use clap::Parser;
use lorikeet_sim::cli::{self, SimArgs};

/// Simulate gateways and devices against a running server and report throughput,
/// loss and latency (docs/benchmarks.md).
#[derive(Debug, Parser)]
#[command(name = "lorikeet-sim", version)]
struct Cli {
    #[command(flatten)]
    args: SimArgs,
}

fn main() -> ExitCode {
    let args = Cli::parse().args;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lorikeet sim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = args.json;
    match runtime.block_on(cli::run(args)) {
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
