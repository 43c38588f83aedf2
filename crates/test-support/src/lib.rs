//! What Viva's tests share, written once: scratch directories, the models `scripts/setup`
//! installs, the test services (PostgreSQL, an LLM server), a canned HTTP endpoint, replaying
//! the kept fuzz inputs, the sipp SIP peer, VP8/WebM fixtures (camera frames, ffprobe's view
//! of a file), and (feature `browser`) a headless Chromium driven over DevTools.
//!
//! A dev-dependency of the workspace's crates. Apart from the browser's fake microphone, which
//! resamples with `viva-media`, it depends on none of them, so any crate's unit tests can use
//! it without a second copy of the crate under test.

#[cfg(feature = "browser")]
pub mod browser;
pub mod fuzz;
pub mod http;
pub mod models;
pub mod net;
pub mod services;
pub mod sipp;
pub mod video;

mod scratch;

pub use scratch::scratch_dir;
/// What [`scratch_dir`] returns, for tests that keep one in a struct.
pub use tempfile::TempDir;
