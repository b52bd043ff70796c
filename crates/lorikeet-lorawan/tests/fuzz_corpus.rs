//! Runs the bodies of the cargo-fuzz targets (`fuzz/`, nightly only) over their
//! committed seed corpus, so that the stable suite exercises them: a seed that
//! breaks an invariant fails here, named by its file. The long runs are
//! `scripts/fuzz` (docs/security.md, "Fuzzing").

use std::path::PathBuf;

use lorikeet_lorawan::fuzzing;

/// Every file of `fuzz/corpus/<target>/`, with its name; fails when there is none.
/// Seeds named `reject-*` are inputs the decoders must refuse, the others inputs
/// they must accept (so that the invariants behind acceptance run).
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let bytes = std::fs::read(&path).expect("a corpus file reads");
            (path.display().to_string(), bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no seeds", dir.display());
    files
}

fn run(target: &str, body: impl Fn(&[u8]) -> bool + std::panic::RefUnwindSafe) {
    for (name, bytes) in corpus(target) {
        let Ok(accepted) = std::panic::catch_unwind(|| body(&bytes)) else {
            panic!("fuzz target {target} fails on {name}");
        };
        assert_eq!(accepted, !name.contains("/reject-"), "{name}: accepted");
    }
}

#[test]
fn phy_payload_seeds() {
    run("phy_payload", fuzzing::phy_payload);
}

#[test]
fn mac_commands_seeds() {
    run("mac_commands", fuzzing::mac_commands);
}

#[test]
fn open_frames_seeds() {
    run("open_frames", fuzzing::open_frames);
}
