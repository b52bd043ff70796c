//! `lorikeet-sim` (also run as `lorikeet sim`): simulated gateways and devices against
//! a running server, reporting throughput, loss and latency (docs/benchmarks.md).

use std::process::ExitCode;

use clap::Parser;
use lorikeet_sim::cli::{self, SimArgs, SimRunError};
use lorikeet_sim::Report;

/// Simulate gateways and devices against a running server and report throughput,
/// loss and latency (docs/benchmarks.md).
#[derive(Debug, Parser)]
#[command(name = "lorikeet-sim", version)]
struct Cli {
    #[command(flatten)]
    args: SimArgs,
}

/// The exit code of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells
/// report a Ctrl-C).
const INTERRUPTED: u8 = 130;

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
    // The first Ctrl-C (or SIGTERM) stops the run and lets it remove what it
    // provisioned; a second one ends the process at once.
    let (interrupted_tx, interrupted_rx) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(async move {
        let Some(mut signals) = Signals::new() else {
            return;
        };
        signals.next().await;
        let _ = interrupted_tx.send(());
        signals.next().await;
        eprintln!(
            "\nlorikeet sim: interrupted again; what the run provisioned may be left on the server"
        );
        std::process::exit(i32::from(INTERRUPTED));
    });
    let interrupt = async move {
        if interrupted_rx.await.is_err() {
            // No signal handling: nothing interrupts.
            std::future::pending::<()>().await;
        }
    };
    match runtime.block_on(cli::run_until(args, interrupt)) {
        Ok(report) => print_report(&report, json),
        Err(SimRunError::Interrupted) => {
            eprintln!("lorikeet sim: interrupted");
            ExitCode::from(INTERRUPTED)
        }
        Err(e) => {
            if let SimRunError::Cleanup { report, .. } = &e {
                // The measurement itself is good: show it before the error.
                let _ = print_report(report, json);
            }
            eprintln!("lorikeet sim: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT and, on Unix, SIGTERM.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// `None` when the handlers cannot be installed.
    fn new() -> Option<Signals> {
        Some(Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok()?,
        })
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            r = tokio::signal::ctrl_c() => {
                if r.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The report on stdout, as a table or as JSON.
fn print_report(report: &Report, json: bool) -> ExitCode {
    if json {
        match serde_json::to_string_pretty(report) {
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
