//! Replaying the kept fuzz inputs on the stable toolchain, through the very harness the fuzz
//! targets run (`fuzz/src/*.rs`, included by the regression tests with `#[path]`), so a
//! regression on any input the fuzzer once reached fails `cargo test`.
//!
//! Under `fuzz/`: `corpus/<target>` (what the fuzzer kept), `seeds/<target>` (hand-written
//! inputs named `valid-*` or `bad-*`) and `artifacts-found/<target>` (inputs that crashed a
//! target once).

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use crate::models::repo_root;

/// A fuzz target's body: runs one input, says whether it parsed.
pub type Harness = fn(&[u8]) -> bool;

/// The cargo-fuzz project, beside the crates.
fn fuzz_dir() -> PathBuf {
    repo_root().join("fuzz")
}

/// The files of one target under `fuzz/<kind>/<target>`, sorted, with their bytes; none if the
/// directory is absent.
pub fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable corpus directory").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = fs::read(&path).expect("readable corpus file");
            (path, bytes)
        })
        .collect()
}

/// Runs every input through `run`; fails naming each input that panicked and how.
pub fn replay(what: &str, files: &[(PathBuf, Vec<u8>)], run: Harness) {
    let failures: Vec<String> = files
        .iter()
        .filter_map(|(path, bytes)| {
            catch_unwind(AssertUnwindSafe(|| run(bytes)))
                .err()
                .map(|panic| format!("{}: {}", path.display(), panic_message(&*panic)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{what}: {} of {} inputs panic:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "non-text panic".into())
}

/// Replays corpus and seeds of `target` (which must not be empty), and checks that seeds
/// named `valid-*` are accepted and `bad-*` rejected.
pub fn check_target(target: &str, run: Harness) {
    let corpus = inputs("corpus", target);
    let seeds = inputs("seeds", target);
    assert!(
        !corpus.is_empty() && !seeds.is_empty(),
        "fuzz/corpus/{target} and fuzz/seeds/{target} must hold the kept inputs"
    );
    replay(&format!("fuzz/corpus/{target}"), &corpus, run);
    replay(&format!("fuzz/seeds/{target}"), &seeds, run);
    for (path, bytes) in &seeds {
        assert_eq!(
            run(bytes),
            seed_is_valid(path),
            "seed {} should be {}",
            path.display(),
            if seed_is_valid(path) {
                "accepted"
            } else {
                "rejected"
            }
        );
    }
}

/// What a seed's name says about it: `valid-*` is accepted, `bad-*` rejected.
fn seed_is_valid(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if name.starts_with("valid-") {
        true
    } else if name.starts_with("bad-") {
        false
    } else {
        panic!("seed {} is named neither valid-* nor bad-*", path.display());
    }
}

/// Replays the crash reproducers of each of `targets`: every input that once crashed a target
/// must run through without a panic now.
pub fn check_crashes_are_fixed(targets: &[(&str, Harness)]) {
    for &(target, run) in targets {
        replay(
            &format!(
                "crash reproducers in fuzz/artifacts-found/{target} (found by `cargo fuzz run \
                 {target}`; see fuzz/README.md) still crash"
            ),
            &inputs("artifacts-found", target),
            run,
        );
    }
}
