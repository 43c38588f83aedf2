//! `viva bench load` end to end on the real models: it starts its own server, calls it, and
//! prints its table and JSON. Only the shape of the figures is checked, never their values:
//! timings are the benchmark's to report, not a test's to judge.

use std::process::Command;

use serde_json::Value;
use viva_test_support::models::repo_root;

#[test]
fn one_caller_two_answers_print_a_row_of_figures_and_json() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_viva"));
    command.current_dir(repo_root());
    for (key, _) in std::env::vars() {
        if key.starts_with("VIVA_") {
            command.env_remove(key);
        }
    }
    let output = command
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
}
