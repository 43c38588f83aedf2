//! The files `scripts/setup` installs for the tests that run the real models: the models
//! under the repository's `models/`, and the downloaded packages in its cache. A test that
//! needs one fails with the path it looked at and the command that installs it.

use std::path::{Path, PathBuf};

/// The command that installs every model and the speech set.
pub const SETUP: &str = "scripts/setup";

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("crates/test-support sits two levels below the repository root")
}

/// `models/` of the repository, where `scripts/setup` installs the models (and where
/// `viva serve` finds them by default).
pub fn models_dir() -> PathBuf {
    repo_root().join("models")
}

/// The installed model file or directory at `relative` under `models/`, e.g.
/// `whisper/ggml-tiny.en.bin`; fails the test naming the path and `scripts/setup` when it is
/// missing.
pub fn model(relative: &str) -> PathBuf {
    require(models_dir().join(relative))
}

/// The clip `models/speech-set/NAME.wav` of the real speech set (LibriVox read speech, with
/// its text beside it in `NAME.txt`).
pub fn speech_clip(name: &str) -> PathBuf {
    model(&format!("speech-set/{name}.wav"))
}

/// Every WAV of the real speech set, sorted by name; each has its text in a `.txt` file of the
/// same name.
pub fn speech_set() -> Vec<PathBuf> {
    let dir = model("speech-set");
    let mut wavs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .map(|entry| entry.expect("a readable speech set").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wav"))
        .collect();
    wavs.sort();
    assert!(
        wavs.len() >= 5,
        "the speech set in {} is incomplete ({} clips): run {SETUP}",
        dir.display(),
        wavs.len()
    );
    wavs
}

/// Where `scripts/setup` keeps what it downloaded (`$VIVA_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/viva`, else `~/.cache/viva`), the same lookup the script makes.
pub fn cache_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    var("VIVA_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| var("XDG_CACHE_HOME").map(|dir| PathBuf::from(dir).join("viva")))
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".cache/viva")))
        .expect("none of VIVA_CACHE_DIR, XDG_CACHE_HOME and HOME is set")
}

/// The file or directory at `relative` in the cache, e.g. `ct2/tiny.en`; fails the test naming
/// the path and `scripts/setup` when it is missing.
pub fn cached(relative: &str) -> PathBuf {
    require(cache_dir().join(relative))
}

fn require(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run {SETUP} to install it",
        path.display()
    );
    path
}
