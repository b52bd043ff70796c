//! Runs the body of the `api_bodies` cargo-fuzz target (`fuzz/`, nightly only)
//! over its committed seed corpus, so that the stable suite exercises it: a seed
//! that breaks an invariant fails here, named by its file. The long runs are
//! `scripts/fuzz` (docs/security.md, "Fuzzing").

use std::path::PathBuf;

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

#[test]
fn api_bodies_seeds() {
    for (name, bytes) in corpus("api_bodies") {
        let Ok(checked) = std::panic::catch_unwind(|| lorikeet_api::fuzzing::check(&bytes)) else {
            panic!("fuzz target api_bodies fails on {name}");
        };
        assert_eq!(
            checked.is_ok(),
            !name.contains("/reject-"),
            "{name}: accepted ({checked:?})"
        );
    }
}
