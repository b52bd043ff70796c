//! `lorikeet sim` runs the separate `lorikeet-sim` binary: the one next to `lorikeet`
//! first, then the one on PATH, with the arguments as given and its exit code; with
//! neither, it says how to build it.
//!
//! A stand-in `lorikeet-sim` (a shell script echoing its arguments) shows what the real
//! one would receive; the real binary is not built for this crate's tests.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh directory holding a copy of the `lorikeet` binary (a hard link when possible).
fn bin_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sim-command-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let exe = dir.join("bin/lorikeet");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_lorikeet"), &exe).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_lorikeet"), &exe).unwrap();
    }
    std::fs::create_dir_all(dir.join("path")).unwrap();
    dir
}

/// A `lorikeet-sim` in `dir` that prints `tag` and its arguments, one a line, and exits 7.
fn fake_sim(dir: &Path, tag: &str) {
    let p = dir.join("lorikeet-sim");
    std::fs::write(
        &p,
        format!("#!/bin/sh\necho {tag}\nfor a in \"$@\"; do echo \"$a\"; done\nexit 7\n"),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn lorikeet_sim(dir: &Path, args: &[&str]) -> Output {
    Command::new(dir.join("bin/lorikeet"))
        .arg("sim")
        .args(args)
        // Only the test's own directory: no `lorikeet-sim` installed elsewhere counts.
        .env("PATH", dir.join("path"))
        .output()
        .unwrap()
}

#[test]
fn runs_the_simulator_next_to_it_with_the_arguments_and_its_exit_code() {
    let dir = bin_dir("beside");
    fake_sim(&dir.join("bin"), "beside");
    fake_sim(&dir.join("path"), "on-path");
    let args = [
        "--help",
        "--udp",
        "127.0.0.1:9",
        "--devices=5",
        "-x",
        "two words",
    ];
    let out = lorikeet_sim(&dir, &args);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut expected = vec!["beside"];
    expected.extend(args);
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn falls_back_to_the_one_on_path() {
    let dir = bin_dir("path");
    fake_sim(&dir.join("path"), "on-path");
    let out = lorikeet_sim(&dir, &["--devices", "3"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["on-path", "--devices", "3"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_a_simulator_it_says_how_to_build_one() {
    let dir = bin_dir("missing");
    let out = lorikeet_sim(&dir, &["--devices", "3"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("cargo build --release -p lorikeet-sim"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&dir.join("bin").display().to_string()),
        "names where it looked: {stderr}"
    );
    assert!(out.stdout.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
