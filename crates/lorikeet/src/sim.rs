//! `lorikeet sim`: runs the simulator, which is a binary of its own (`lorikeet-sim`,
//! crate `lorikeet-sim`) so that the server carries neither the simulator nor what
//! only the simulator needs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The simulator's file name.
const SIM_BIN: &str = if cfg!(windows) {
    "lorikeet-sim.exe"
} else {
    "lorikeet-sim"
};

/// Runs `lorikeet-sim` with `args` (on Unix, this process becomes it, so its exit
/// code and signals are the caller's); when there is none, says how to build it.
pub(crate) fn run(args: Vec<OsString>) -> ExitCode {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let Some(sim) = find(exe_dir.as_deref(), std::env::var_os("PATH")) else {
        let place = match &exe_dir {
            Some(d) => format!("in {} or on PATH", d.display()),
            None => "on PATH".to_owned(),
        };
        // A debug build's neighbour is a debug build.
        let profile = match exe_dir.as_deref().and_then(Path::file_name) {
            Some(n) if n == "debug" => "",
            _ => " --release",
        };
        eprintln!(
            "lorikeet sim: the simulator is a separate binary, {SIM_BIN}, and there is none {place}. \
             Build it with `cargo build{profile} -p lorikeet-sim` (cargo puts it next to lorikeet)."
        );
        return ExitCode::FAILURE;
    };
    let mut command = Command::new(&sim);
    command.args(args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        // Only returns on failure.
        let e = command.exec();
        eprintln!("lorikeet sim: cannot run {}: {e}", sim.display());
        ExitCode::FAILURE
    }
    #[cfg(not(unix))]
    match command.status() {
        Ok(status) => match status.code() {
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            None => ExitCode::FAILURE,
        },
        Err(e) => {
            eprintln!("lorikeet sim: cannot run {}: {e}", sim.display());
            ExitCode::FAILURE
        }
    }
}

/// `lorikeet-sim` next to this executable, else the first on `path`.
fn find(exe_dir: Option<&Path>, path: Option<OsString>) -> Option<PathBuf> {
    let beside = exe_dir.map(|d| d.join(SIM_BIN));
    let on_path = path
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(SIM_BIN));
    beside.into_iter().chain(on_path).find(|p| p.is_file())
}
