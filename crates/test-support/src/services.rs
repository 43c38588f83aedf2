//! The services some suites run against (a PostgreSQL server, an OpenAI-compatible LLM
//! server), named by environment variables. `cargo test` on a developer's machine skips what
//! has no service; CI (`scripts/test`) starts them all and sets `VIVA_TEST_REQUIRE_SERVICES=1`,
//! so there a missing one fails instead of passing unseen.

use std::io::Write;
use std::sync::Mutex;

/// Set to `1` to make a missing service a failure rather than a skip.
pub const REQUIRE_SERVICES: &str = "VIVA_TEST_REQUIRE_SERVICES";

/// The variables already reported missing in this test process, so a suite of many cases
/// prints its note once.
static NOTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The URL in `variable`, the service a test runs against. When it is unset: with
/// `VIVA_TEST_REQUIRE_SERVICES=1` the test fails, saying how to start the service (`start`,
/// e.g. `scripts/postgres-test-server`); otherwise `None`, after a note on stderr that the
/// tests needing it are skipped.
pub fn service_url(variable: &str, start: &str) -> Option<String> {
    if let Some(url) = std::env::var(variable).ok().filter(|url| !url.is_empty()) {
        return Some(url);
    }
    let how = format!("{variable}=$({start})");
    if std::env::var(REQUIRE_SERVICES).is_ok_and(|value| value == "1") {
        panic!(
            "{variable} is not set and {REQUIRE_SERVICES}=1 requires the service: run with {how}"
        );
    }
    let mut noted = NOTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !noted.iter().any(|seen| seen == variable) {
        noted.push(variable.to_owned());
        // Straight to stderr: the test harness captures `eprintln!` of passing tests, and a
        // skip nobody sees would read as a pass.
        let _ = writeln!(
            std::io::stderr(),
            "note: {variable} is not set, so the tests that need it pass without running; \
             run them with {how}"
        );
    }
    None
}
