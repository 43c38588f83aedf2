//! Scratch directories for a test's files.

use tempfile::TempDir;

/// A fresh, empty directory for one test's files, named after `name` (and unique, so tests
/// running side by side never share one). It is removed when the returned value is dropped,
/// also when the test panics; `TempDir::keep` keeps it, e.g. to look at a failed run's logs.
pub fn scratch_dir(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("viva-{name}-"))
        .tempdir()
        .unwrap_or_else(|err| panic!("cannot create a scratch directory for {name}: {err}"))
}
