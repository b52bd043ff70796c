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
    /// Key-encryption keys of the stored secrets (docs/security.md).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Users of the web console (docs/console.md).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a console user. The password is the first line of standard input (at
    /// least 8 characters). Works whether the server is running or not.
    ///
    /// Example: `echo "$PASSWORD" | lorikeet user create --admin --email ops@example.com`
    Create {
        /// A TOML configuration file (only `[database]` is used).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The user's email: their sign-in name.
        #[arg(long, value_name = "EMAIL")]
        email: Option<String>,
        /// The email, as an argument instead of --email.
        #[arg(value_name = "EMAIL", conflicts_with = "email")]
        email_arg: Option<String>,
        /// A global administrator: every tenant, users, the whole server.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print a new random key-encryption key (64 hex digits) for [security] kek or a
    /// kek_file.
    Generate,
    /// Re-encrypt every stored secret under the current KEK ([security] kek), reading
    /// those under the KEKs of [security] previous_keks and --from; then the old
    /// KEKs are no longer needed. Online on Postgres: servers keep running (restart
    /// them with the new kek first). On SQLite, stop the server first.
    Rotate {
        /// A TOML configuration file (`[database]` and `[security]` are used).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// A file holding a previous KEK (`HEX` or `ID:HEX`), in addition to
        /// [security] previous_keks; may be repeated.
        #[arg(long, value_name = "FILE")]
        from: Vec<PathBuf>,
        /// Rows per transaction.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch: u32,
    },
    /// Count the stored secrets under each KEK.
    Status {
        /// A TOML configuration file (`[database]` and `[security]` are used).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// A file holding a previous KEK; may be repeated.
        #[arg(long, value_name = "FILE")]
        from: Vec<PathBuf>,
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
        Command::Keys {
            command: KeysCommand::Generate,
        } => {
            println!("{}", *lorikeet::keys::generate_hex());
            ExitCode::SUCCESS
        }
        Command::Keys {
            command:
                KeysCommand::Rotate {
                    config,
                    from,
                    batch,
                },
        } => match load(config.as_deref()) {
            Ok(config) => block_on(keys(config, from, Some(batch))),
            Err(code) => code,
        },
        Command::Keys {
            command: KeysCommand::Status { config, from },
        } => match load(config.as_deref()) {
            Ok(config) => block_on(keys(config, from, None)),
            Err(code) => code,
        },
        Command::User {
            command:
                UserCommand::Create {
                    config,
                    email,
                    email_arg,
                    admin,
                },
        } => {
            let Some(email) = email.or(email_arg) else {
                eprintln!("lorikeet: user create needs the user's email (--email EMAIL)");
                return ExitCode::from(2);
            };
            match load(config.as_deref()) {
                Ok(config) => block_on(create_user(config, email, admin)),
                Err(code) => code,
            }
        }
    }
}

/// `user create`: the password from the first line of stdin, hashed here; the
/// user stored beside a running server or not.
async fn create_user(config: Config, email: String, admin: bool) -> ExitCode {
    let fail = |what: &str| {
        eprintln!("lorikeet: {what}");
        ExitCode::FAILURE
    };
    let email = match lorikeet_api::input::email("email", &email) {
        Ok(e) => e,
        Err(e) => return fail(&e.message),
    };
    let mut line = zeroize::Zeroizing::new(String::new());
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        return fail(&format!(
            "cannot read the password from standard input: {e}"
        ));
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if let Err(e) = lorikeet_api::password::check_new("the password (standard input)", password) {
        return fail(&e.message);
    }
    let hash = match lorikeet_api::password::hash_blocking(password) {
        Ok(h) => h,
        Err(e) => return fail(&format!("cannot hash the password: {e}")),
    };
    let url = lorikeet_storage::redact_url(&config.database.url);
    let storage = match lorikeet_storage::connect_beside(
        &config.database.url,
        config.database.connect_options(),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot open the database {url}: {e}")),
    };
    let now = lorikeet_storage::now();
    let user = lorikeet_storage::User {
        id: uuid::Uuid::new_v4(),
        email: email.clone(),
        is_admin: admin,
        roles: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    let code = match storage.create_user(&user, &hash).await {
        Ok(()) => {
            println!(
                "created {}user {email} (id {}); sign in at /login",
                if admin { "administrator " } else { "" },
                user.id
            );
            ExitCode::SUCCESS
        }
        Err(lorikeet_storage::StoreError::Duplicate { .. }) => {
            fail(&format!("a user with the email {email} already exists"))
        }
        Err(e) => fail(&format!("cannot store the user in {url}: {e}")),
    };
    storage.close().await;
    code
}

/// `keys rotate` (with a batch size) or `keys status`.
async fn keys(config: Config, from: Vec<PathBuf>, rotate: Option<u32>) -> ExitCode {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        eprintln!("lorikeet: {what}: {e:#}");
        ExitCode::FAILURE
    };
    let keks =
        match lorikeet::keys::resolve(&config.security, lorikeet::keys::Generate::Never, &from) {
            Ok(k) => k,
            Err(e) => return fail("key-encryption keys", &format!("{e:#}")),
        };
    let url = lorikeet_storage::redact_url(&config.database.url);
    let storage = match lorikeet_storage::connect_with(
        &config.database.url,
        config.database.connect_options(),
        keks.keyring.clone(),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot open the database {url}"), &e),
    };
    let current = keks.keyring.current_id().to_owned();
    let code = match rotate {
        Some(batch) => match storage.rotate_keys(batch).await {
            Ok(r) => {
                println!(
                    "every stored secret ({} values) is encrypted under KEK '{}'; {} were \
                     re-encrypted, in {} passes",
                    r.census.by_kek.get(&r.kek_id).copied().unwrap_or(0),
                    r.kek_id,
                    r.resealed,
                    r.passes
                );
                if !r.retired.is_empty() {
                    let ids: Vec<String> = r.retired.iter().map(|i| format!("'{i}'")).collect();
                    println!(
                        "no value is encrypted under {} any more: remove it from \
                         [security] previous_keks (and --from) and keep a backup only as \
                         long as your database backups that need it",
                        ids.join(", ")
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail("key rotation stopped", &e),
        },
        None => match storage.key_census().await {
            Ok(c) => {
                println!("current KEK: '{current}'");
                for (id, n) in &c.by_kek {
                    println!("{n} values encrypted under KEK '{id}'");
                }
                if c.plain > 0 {
                    println!("{} values not encrypted yet", c.plain);
                }
                if c.unknown > 0 {
                    println!("{} values in an unknown format", c.unknown);
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail("cannot count the stored secrets", &e),
        },
    };
    storage.close().await;
    code
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
    // The schema only: no KEK is needed (the server encrypts what is left plain).
    match lorikeet_storage::migrate(&config.database.url, config.database.connect_options()).await {
        Ok(()) => {
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
