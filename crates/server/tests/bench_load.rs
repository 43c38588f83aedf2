//! `viva bench load` and `viva bench soak` end to end on the real models: each starts its own
//! server, calls it, and prints its figures and JSON. Timings are the benchmark's to report,
//! not a test's to judge: only their shape is checked. What a soak must leave behind (no
//! failed call, no interview stuck, no descriptors kept) is checked, on a short one; the hour
//! is run by hand (docs/capacity.md).

use std::process::Command;

use serde_json::Value;
use viva_test_support::models::repo_root;

/// `viva ARGS` from the top of the checkout, with none of this environment's settings.
fn viva() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_viva"));
    command.current_dir(repo_root());
    for (key, _) in std::env::vars() {
        if key.starts_with("VIVA_") {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn one_caller_two_answers_print_a_row_of_figures_and_json() {
    let output = viva()
        .args(["bench", "load", "--sessions", "1", "--turns", "2", "--json"])
        .output()
        .expect("viva runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "viva bench load failed: {stderr}");
    eprintln!("{stderr}");

    // The table's row for one session: numbers in every column.
    let row = stderr
        .lines()
        .find(|l| l.starts_with("| 1 |"))
        .unwrap_or_else(|| panic!("no row for 1 session in: {stderr}"));
    let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
    assert_eq!(cells.len(), 6, "{row}");
    let numbers = |cell: &str| -> Vec<f64> {
        cell.split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap_or_else(|_| panic!("{s} in {row}")))
            .collect()
    };
    let response = numbers(cells[1]);
    assert!(
        response.len() == 2 && cells[1].ends_with(" s"),
        "p50 / p95: {row}"
    );
    assert!(response[0] > 0.0 && response[0] <= response[1], "{row}");
    let late = numbers(cells[2]);
    // The opening and the replies to the two answers.
    assert_eq!(late.len(), 2, "late audio: {row}");
    assert_eq!(late[1], 3.0, "three replies heard: {row}");
    assert_eq!(numbers(cells[3]).len(), 1, "cut short: {row}");
    assert!(
        cells[4].ends_with('%') && numbers(cells[4]).len() == 1,
        "CPU: {row}"
    );
    assert!(
        cells[5].ends_with("MB") && numbers(cells[5])[0] > 0.0,
        "RSS: {row}"
    );

    let results: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"));
    let run = &results["runs"][0];
    assert_eq!(run["sessions"], 1, "{results}");
    assert_eq!(run["answers"], 2, "{results}");
    assert!(run["response_ms"]["p50"].is_number(), "{results}");
    assert!(run["server"]["cpu_percent"].is_number(), "{results}");
    assert!(
        run["server"]["latency_log_p50_ms"]["first_audio"].is_number(),
        "the server's latency log was read: {results}"
    );
    // The server's /metrics was read: every answer was transcribed, so waits were observed.
    assert!(
        run["server"]["transcription_wait_ms"]["p95"].is_number(),
        "{results}"
    );
    assert!(run["server"]["audio_gaps"].is_number(), "{results}");
    assert!(run["server"]["rss_mib_per_call"].is_number(), "{results}");
}

#[test]
fn a_short_soak_fails_no_call_and_gives_back_what_it_took() {
    let output = viva()
        .args([
            "bench",
            "soak",
            "--calls",
            "2",
            "--minutes",
            "1",
            "--turns",
            "2",
            "--sample-secs",
            "10",
            "--json",
        ])
        .output()
        .expect("viva runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "viva bench soak failed: {stderr}");
    eprintln!("{stderr}");
    let soak: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"));
    // Each caller calls again once it hangs up: more calls than callers in a minute.
    assert!(soak["calls"].as_u64().unwrap() > 2, "{soak}");
    assert_eq!(soak["ended_early"], serde_json::json!([]), "{soak}");
    assert_eq!(soak["outcomes"]["failed"], 0.0, "{soak}");
    // The callers hang up: every interview the server counted ended, abandoned.
    assert_eq!(
        soak["outcomes"]["abandoned"],
        soak["calls"].as_f64().unwrap(),
        "{soak}"
    );
    assert_eq!(
        soak["settled"], true,
        "an interview was left in progress: {soak}"
    );
    // A few files are opened once, on first use, and kept (the database's write-ahead log
    // and its index, the voice cache): more than that is a leak.
    let descriptors = &soak["descriptors"];
    assert!(
        descriptors["after"].as_u64().unwrap() <= descriptors["before"].as_u64().unwrap() + 4,
        "descriptors kept after the calls: {soak}"
    );
    assert!(soak["rss_mib"]["peak"].as_f64().unwrap() > 0.0, "{soak}");
    assert!(soak["samples"].as_array().unwrap().len() >= 6, "{soak}");
}
