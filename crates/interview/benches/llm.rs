//! How long an interview waits on the optional LLM policy: `cargo bench -p viva-interview`.
//!
//! Figures, not assertions: what a decision costs when the endpoint hangs past its timeout,
//! while the policy rests after a failure (it asks the built-in policy without waiting), and,
//! when `VIVA_TEST_LLM_URL` names a real model's server (`scripts/llm-test-server`), how long
//! that model takes to write a follow-up. The judge needs the sentence-embedding model that
//! `scripts/setup` installs.

#[path = "../tests/agent_common/mod.rs"]
mod agent_common;

use std::time::{Duration, Instant};

use viva_interview::{LlmConfig, LlmPolicy, Policy, Situation};
use viva_test_support::http::CannedHttp;

const QUESTION: &str =
    "How do you approach database optimization? Share a specific example with metrics.";
const VAGUE_ANSWER: &str = "I think it's really important to follow best practices. Usually you want to make sure queries are fast and it depends on the use case.";
/// The timeout the hanging endpoint is measured with.
const TIMEOUT: Duration = Duration::from_millis(300);
/// Decisions measured per figure.
const RUNS: u32 = 5;

fn policy(base_url: &str, timeout: Duration) -> LlmPolicy {
    LlmPolicy::new(LlmConfig {
        base_url: base_url.to_string(),
        model: "bench".to_string(),
        timeout,
        api_key: None,
    })
    .expect("a valid LLM configuration")
}

fn main() {
    let judge = agent_common::judge();
    let judgement = judge.judge(Some("db_optimization"), VAGUE_ANSWER);
    let uncovered: Vec<String> = judgement
        .areas
        .iter()
        .filter(|a| !a.covered)
        .map(|a| a.area.clone())
        .collect();
    let situation = Situation {
        job: judge.job(),
        question_id: "db_optimization",
        question: QUESTION,
        last_asked: QUESTION,
        answer: VAGUE_ANSWER,
        judgement: &judgement,
        earlier: &[],
        uncovered_areas: &uncovered,
        asked: &[],
        quoted: &[],
        follow_ups_left: 3,
    };
    hanging_endpoint(&situation);
    if let Ok(url) = std::env::var("VIVA_TEST_LLM_URL") {
        real_model(&url, &situation);
    } else {
        println!("real model: skipped (set VIVA_TEST_LLM_URL=$(scripts/llm-test-server))");
    }
}

/// An endpoint that answers after three seconds: the first decision waits out the timeout,
/// the next ones fall back at once while the policy rests.
fn hanging_endpoint(situation: &Situation<'_>) {
    let endpoint = CannedHttp::start(vec![(200, String::from("{}"))], Duration::from_secs(3));
    let url = format!("{}/v1", endpoint.base);
    let mut timed_out = Duration::ZERO;
    let mut resting = Duration::ZERO;
    for _ in 0..RUNS {
        let mut llm = policy(&url, TIMEOUT);
        let started = Instant::now();
        llm.decide(situation);
        timed_out += started.elapsed();
        let started = Instant::now();
        llm.decide(situation);
        resting += started.elapsed();
    }
    println!(
        "decision, endpoint hangs ({} ms timeout) {:>8.1} ms",
        TIMEOUT.as_millis(),
        (timed_out / RUNS).as_secs_f64() * 1e3
    );
    println!(
        "decision, policy resting after it        {:>8.1} us",
        (resting / RUNS).as_secs_f64() * 1e6
    );
}

/// The real model writing a follow-up question.
fn real_model(url: &str, situation: &Situation<'_>) {
    let mut llm = policy(url, Duration::from_secs(60));
    let mut took = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let asked = llm.ask(situation);
        took.push(started.elapsed());
        if let Err(err) = asked {
            println!("real model: {err}");
            return;
        }
    }
    took.sort();
    println!(
        "decision by the real model, median        {:>8.1} ms (of {RUNS}, {:.1}-{:.1} ms)",
        took[took.len() / 2].as_secs_f64() * 1e3,
        took[0].as_secs_f64() * 1e3,
        took[took.len() - 1].as_secs_f64() * 1e3
    );
}
