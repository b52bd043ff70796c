//! A Postgres cluster owned by one test (`initdb` + `pg_ctl` in a temporary
//! directory, on a free loopback port), so the test can stop and start the database
//! under a running server.
//!
//! The binaries are looked up at run time (`/usr/lib/postgresql/<version>/bin`, the
//! newest first, then `pg_config --bindir`). `initdb` refuses to run as root: as
//! root the cluster belongs to, and runs as, the `postgres` user (through `runuser`).
//! Without the binaries the test is skipped with a warning, or fails when
//! `LORIKEET_REQUIRE_POSTGRES=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// A running (or stopped) test-owned cluster; removed when dropped.
#[derive(Debug)]
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    /// The run-as user when the test runs as root.
    as_user: Option<String>,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    bin.join("initdb").exists().then_some(bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unavailable(why: &str) -> Option<PgCluster> {
    let required = std::env::var("LORIKEET_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let msg = format!(
        "cannot run a test-owned Postgres cluster: {why}. Install the Postgres server \
         binaries (initdb, pg_ctl; e.g. apt-get install postgresql)."
    );
    if required {
        panic!("LORIKEET_REQUIRE_POSTGRES=1 but {msg}");
    }
    eprintln!("WARNING: skipping this test: {msg}");
    None
}

impl PgCluster {
    /// `initdb` in a fresh temporary directory and `pg_ctl start` on a free port;
    /// `None` (after a warning) when no Postgres binaries are installed and
    /// `LORIKEET_REQUIRE_POSTGRES` is not `1`.
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = bin_dir() else {
            return unavailable("no initdb under /usr/lib/postgresql/*/bin or pg_config --bindir");
        };
        let as_user = if is_root() {
            if Command::new("id")
                .arg("postgres")
                .output()
                .map_or(true, |o| !o.status.success())
            {
                return unavailable("running as root and there is no postgres user to run it as");
            }
            Some("postgres".to_owned())
        } else {
            None
        };
        reap_orphans(&bin, as_user.as_deref());
        let dir = super::binary::fresh_dir("pgcluster");
        if let Some(user) = &as_user {
            let ok = Command::new("chown")
                .args([user.as_str(), &dir.display().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown {user} {}", dir.display());
        }
        let mut c = PgCluster {
            dir,
            bin,
            as_user,
            port: 0,
        };
        let data = c.data();
        let out = c.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        // A port is taken just before the start; another process could grab it in
        // between, so a failed start tries another.
        for _ in 0..5 {
            c.port = free_port();
            if c.try_start() {
                return Some(c);
            }
        }
        panic!("the test cluster does not start:\n{}", c.log());
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        self.try_run(tool, args)
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"))
    }

    fn try_run(&self, tool: &str, args: &[&str]) -> std::io::Result<Output> {
        let exe = self.bin.join(tool);
        let mut cmd = match &self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args)
            .current_dir(&self.dir)
            .env_remove("PGDATA")
            .output()
    }

    fn try_start(&self) -> bool {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=100",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log").display().to_string();
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &opts,
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        out.status.success()
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl stop -m fast`: the server ends every session ("terminating connection
    /// due to administrator command") and shuts down; returns once it is down.
    pub fn stop_fast(&self) {
        let out = self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
        assert!(out.status.success(), "pg_ctl stop: {}", text(&out));
    }

    /// Starts the stopped cluster again on the same port; returns once it accepts
    /// connections.
    pub fn start_again(&self) {
        assert!(self.try_start(), "pg_ctl start:\n{}", self.log());
    }

    /// The cluster's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }

    /// Waits until a TCP connection to the port succeeds (or `timeout`).
    pub fn wait_port(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The directory of the cluster (its data, socket and log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Stops and removes the clusters of test processes that are gone (killed before
/// their `Drop` ran, e.g. by a test timeout): `pg_ctl` starts Postgres as a daemon,
/// which outlives the test.
fn reap_orphans(bin: &Path, as_user: Option<&str>) {
    // Whether a process lives is read from /proc (Linux); elsewhere nothing is reaped.
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // fresh_dir names: lorikeet-pgcluster-<pid>-<n>
        let Some(pid) = name
            .strip_prefix("lorikeet-pgcluster-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let data = e.path().join("data").display().to_string();
        let exe = bin.join("pg_ctl");
        let mut cmd = match as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let _ = cmd
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
        super::binary::remove_dir(&e.path());
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.try_run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        super::binary::remove_dir(&self.dir);
    }
}
