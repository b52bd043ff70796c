//! Running the real `lorikeet` binary, as an operator does: its own working
//! directory, configuration from the environment, logs to a file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A fresh, empty directory under the system's temp dir (removed by [`Served::stop`]
/// or [`remove_dir`]).
pub fn fresh_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "lorikeet-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes a directory made by [`fresh_dir`].
pub fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// `lorikeet ARGS` in `dir`, with every inherited `LORIKEET_*` variable (and
/// `NO_COLOR`) removed and `env` set; stdout and stderr go to files in `dir`.
pub fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lorikeet"));
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("LORIKEET_") || k == "NO_COLOR" || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(std::fs::File::create(dir.join("stdout.log")).unwrap());
    cmd.stderr(std::fs::File::create(dir.join("stderr.log")).unwrap());
    cmd
}

/// A running `lorikeet serve`.
pub struct Served {
    /// Shared with [`Killer`]s.
    child: Arc<Mutex<Child>>,
    /// Its working directory.
    pub dir: PathBuf,
    /// `127.0.0.1:PORT` of the API.
    pub api_addr: String,
    /// `127.0.0.1:PORT` of the Semtech UDP listener.
    pub udp_addr: std::net::SocketAddr,
}

/// Starts `lorikeet serve` in `dir` with the defaults, except that the API and the
/// UDP listener bind loopback port 0, and `env`. Waits (up to 60 s) for its
/// start-up line.
pub fn serve(dir: &Path, env: &[(&str, &str)]) -> Served {
    let mut all = vec![
        ("LORIKEET_API_BIND", "127.0.0.1:0"),
        ("LORIKEET_GATEWAY_UDP_BIND", "127.0.0.1:0"),
    ];
    all.extend_from_slice(env);
    let mut child = command(dir, &["serve"], &all).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stderr = read(dir, "stderr.log");
        // Only whole lines: the server may be writing this one while it is read.
        if let Some(line) = stderr
            .split_inclusive('\n')
            .filter_map(|l| l.strip_suffix('\n'))
            .find(|l| l.starts_with("lorikeet is running: API http://"))
        {
            let api_addr = line["lorikeet is running: API http://".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            let udp_addr = line.rsplit(' ').next().unwrap().parse().unwrap();
            return Served {
                child: Arc::new(Mutex::new(child)),
                dir: dir.to_owned(),
                api_addr,
                udp_addr,
            };
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "lorikeet serve exited ({status}) before it was running:\n{stderr}\n{}",
                read(dir, "stdout.log")
            );
        }
        assert!(
            Instant::now() < deadline,
            "lorikeet serve did not start in 60 s:\n{stderr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Served {
    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// The log so far (`lorikeet serve` logs to stdout).
    pub fn log(&self) -> String {
        read(&self.dir, "stdout.log")
    }

    /// The start-up line and other messages for the operator.
    pub fn stderr(&self) -> String {
        read(&self.dir, "stderr.log")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `kill -9`, now.
    pub fn kill9(&self) {
        let _ = self.child().kill();
    }

    /// A handle that can `kill -9` the process from any task or thread, at once (a
    /// system call, no helper process).
    pub fn killer(&self) -> Killer {
        Killer(self.child.clone())
    }

    /// Waits (up to 20 s) for the process to end after something else killed it, and
    /// keeps its logs as `stdout.N.log` and `stderr.N.log` (so the directory can serve
    /// again); returns the exit status.
    pub fn reap(self, n: u32) -> ExitStatus {
        let status = wait(&mut self.child(), Duration::from_secs(20));
        for f in ["stdout", "stderr"] {
            let _ = std::fs::rename(
                self.dir.join(format!("{f}.log")),
                self.dir.join(format!("{f}.{n}.log")),
            );
        }
        status
    }

    /// SIGTERM, then [`Served::reap`]: the directory and its logs stay.
    pub fn terminate(self, n: u32) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        self.reap(n)
    }

    /// SIGTERM, then waits for a clean exit; returns (log, stderr).
    pub fn stop(self) -> (String, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let status = wait(&mut self.child(), Duration::from_secs(20));
        let out = (self.log(), self.stderr());
        assert!(
            status.success(),
            "lorikeet serve exited with {status}:\n{}\n{}",
            out.1,
            out.0
        );
        remove_dir(&self.dir);
        out
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // A failed test: do not leave the server running.
        let mut child = self.child();
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Kills a [`Served`] process with SIGKILL (it cannot flush or clean up anything).
#[derive(Clone)]
pub struct Killer(Arc<Mutex<Child>>);

impl Killer {
    /// `kill -9`, now; the process id, or `None` when it had already been reaped.
    pub fn kill9(&self) -> Option<u32> {
        let mut child = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        child.kill().ok().map(|()| child.id())
    }
}

/// Waits for `child` to exit, killing it after `timeout`.
pub fn wait(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lorikeet did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A file of `dir` as text ("" when missing).
pub fn read(dir: &Path, name: &str) -> String {
    std::fs::read(dir.join(name))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
