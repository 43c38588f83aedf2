//! The optional LLM policy against a real local model behind a real OpenAI-compatible server
//! (start one with `scripts/llm-test-server` and pass its base URL in `VIVA_TEST_LLM_URL`),
//! and its fallback to the built-in policy when the endpoint is dead, too slow, or answers
//! garbage. Asserts behaviour, not wording, nor speed: `cargo bench -p viva-interview` measures
//! how long the fallbacks take.

mod agent_common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_common::{Run, Script, VAGUE, VAGUE_DEFAULT, interview, interview_with, judge};
use viva_interview::{
    BuiltInPolicy, Decision, Interviewer, Judge, Judgement, LlmConfig, LlmError, LlmPolicy, Policy,
    Situation, TurnKind,
};
use viva_test_support::http::CannedHttp;
use viva_test_support::net::free_tcp_port;
use viva_test_support::services::service_url;

/// The real server's base URL. Without one the tests on the real model pass without running
/// (with a note), unless `VIVA_TEST_REQUIRE_SERVICES=1` (CI) makes that a failure.
fn llm_url() -> Option<String> {
    service_url("VIVA_TEST_LLM_URL", "scripts/llm-test-server")
}

fn policy(base_url: &str, timeout: Duration) -> LlmPolicy {
    LlmPolicy::new(LlmConfig {
        base_url: base_url.to_string(),
        model: "test".to_string(),
        timeout,
        api_key: Some("not-needed-locally".to_string()),
    })
    .unwrap()
}

const QUESTION: &str =
    "How do you approach database optimization? Share a specific example with metrics.";
const VAGUE_ANSWER: &str = "I think it's really important to follow best practices. Usually you want to make sure queries are fast and it depends on the use case.";

/// A vague answer to the database question and what the interviewer knows at that point.
struct Case {
    judge: Arc<Judge>,
    judgement: Judgement,
    uncovered: Vec<String>,
}

impl Case {
    fn new() -> Case {
        let judge = judge();
        let judgement = judge.judge(Some("db_optimization"), VAGUE_ANSWER);
        let uncovered = judgement
            .areas
            .iter()
            .filter(|a| !a.covered)
            .map(|a| a.area.clone())
            .collect();
        Case {
            judge,
            judgement,
            uncovered,
        }
    }

    fn situation(&self) -> Situation<'_> {
        Situation {
            job: self.judge.job(),
            question_id: "db_optimization",
            question: QUESTION,
            last_asked: QUESTION,
            answer: VAGUE_ANSWER,
            judgement: &self.judgement,
            earlier: &[],
            uncovered_areas: &self.uncovered,
            asked: &[],
            quoted: &[],
            follow_ups_left: 3,
        }
    }
}

fn built_in(case: &Case) -> Decision {
    BuiltInPolicy.decide(&case.situation())
}

fn assert_question(text: &str) {
    let text = text.trim();
    assert!(text.ends_with('?'), "not a question: {text:?}");
    assert!(text.split_whitespace().count() >= 4, "too short: {text:?}");
    assert!(
        !text.to_lowercase().contains("the candidate"),
        "third person: {text:?}"
    );
}

#[test]
fn a_real_model_writes_one_follow_up_question() {
    let Some(url) = llm_url() else { return };
    let case = Case::new();
    let mut llm = policy(&url, Duration::from_secs(60));
    let started = Instant::now();
    let decision = llm.ask(&case.situation());
    let elapsed = started.elapsed();
    eprintln!("LLM decision in {} ms: {decision:?}", elapsed.as_millis());
    match decision {
        Ok(Decision::Ask { question, .. }) => assert_question(&question),
        other => panic!("expected a follow-up question for a vague answer, got {other:?}"),
    }
}

#[test]
fn an_interview_on_the_real_model_follows_up_then_moves_on() {
    let Some(url) = llm_url() else { return };
    let (mut interviewer, _) = Interviewer::start(
        judge(),
        None,
        Box::new(policy(&url, Duration::from_secs(60))),
        0,
    );
    interviewer.on_answer("Yes, ready.", 1_000, 2_000);
    interviewer.on_answer("About six years designing APIs.", 5_000, 7_000);
    let mut next = interviewer.on_answer("Yes, I can.", 9_000, 10_000);
    assert_eq!(next.prompt().question_id.as_deref(), Some("api_design"));
    // The built-in policy's follow-ups for the same answers, to tell the model's apart.
    let built_in: Vec<String> = built_in_run()
        .prompts
        .into_iter()
        .filter(|p| p.kind == TurnKind::FollowUp)
        .map(|p| p.text)
        .collect();
    let mut now = 12_000;
    let mut follow_ups = Vec::new();
    let started = Instant::now();
    for answer in VAGUE_DEFAULT.iter().cycle().take(6) {
        next = interviewer.on_answer(answer, now, now + 10_000);
        now += 20_000;
        if next.prompt().kind != TurnKind::FollowUp {
            break;
        }
        follow_ups.push(next.prompt().text.clone());
    }
    eprintln!(
        "{} follow-ups in {} ms: {follow_ups:#?}",
        follow_ups.len(),
        started.elapsed().as_millis()
    );
    assert!(
        !follow_ups.is_empty(),
        "the vague answers drew no follow-up"
    );
    assert!(follow_ups.len() <= 3, "more follow-ups than the job allows");
    for f in &follow_ups {
        assert_question(f);
    }
    assert!(
        follow_ups.iter().any(|f| !built_in.contains(f)),
        "every follow-up came from the fallback"
    );
    // And the interview moves on to the next question.
    assert_eq!(next.prompt().kind, TurnKind::Question);
    assert_eq!(
        next.prompt().question_id.as_deref(),
        Some("db_optimization")
    );
}

/// Prompts of a run with the built-in policy and the same scripted candidate.
fn built_in_run() -> Run {
    interview(&mut Script::new(VAGUE, VAGUE_DEFAULT), 1)
}

#[test]
fn a_dead_endpoint_falls_back_and_the_interview_goes_on() {
    // A port that was just free: nothing listens there.
    let port = free_tcp_port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let case = Case::new();
    let mut llm = policy(&url, Duration::from_secs(5));
    assert!(matches!(
        llm.ask(&case.situation()),
        Err(LlmError::Transport { .. })
    ));
    assert_eq!(llm.decide(&case.situation()), built_in(&case));

    let log = Arc::new(Mutex::new(Vec::new()));
    let run = interview_with(
        &mut Script::new(VAGUE, VAGUE_DEFAULT),
        1,
        Box::new(policy(&url, Duration::from_secs(5))),
        log,
    );
    assert_eq!(
        run.prompts,
        built_in_run().prompts,
        "the candidate hears the built-in policy"
    );
}

#[test]
fn a_slow_endpoint_times_out_falls_back_and_is_rested() {
    // An endpoint that takes three seconds for anything, like a model stuck on a long prompt.
    let (url, endpoint) = fake_server_with_delay(
        vec![(200, decision("deeper", "What would break first?"))],
        Duration::from_secs(3),
    );
    let case = Case::new();
    let mut llm = policy(&url, Duration::from_millis(300));
    // The endpoint would answer after three seconds; a timeout error means it was not waited
    // for.
    let error = llm.ask(&case.situation()).unwrap_err();
    assert!(matches!(error, LlmError::Timeout { .. }), "{error}");
    // Through the policy: a timeout falls back, and the next two decisions do not ask the
    // endpoint at all.
    let mut llm = policy(&url, Duration::from_millis(300));
    let before = endpoint.served();
    assert_eq!(llm.decide(&case.situation()), built_in(&case));
    assert_eq!(llm.decide(&case.situation()), built_in(&case));
    assert_eq!(llm.decide(&case.situation()), built_in(&case));
    // The server counts a request once it has read it; the timed-out one may still be on its
    // way.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(endpoint.served(), before + 1);
}

/// A fake endpoint answering every request with the next of `bodies` (cycling), to produce
/// exactly the broken outputs a real model or proxy can send; returns its base URL.
fn fake_server(bodies: Vec<(u16, String)>) -> (String, CannedHttp) {
    fake_server_with_delay(bodies, Duration::ZERO)
}

/// [`fake_server`] that waits `delay` before each response.
fn fake_server_with_delay(bodies: Vec<(u16, String)>, delay: Duration) -> (String, CannedHttp) {
    let endpoint = CannedHttp::start(bodies, delay);
    (format!("{}/v1", endpoint.base), endpoint)
}

/// A chat completion whose message content is `content`.
fn completion(content: &str) -> String {
    serde_json::json!({"choices": [{"message": {"role": "assistant", "content": content}}]})
        .to_string()
}

fn decision(kind: &str, question: &str) -> String {
    completion(&serde_json::json!({"decision": kind, "area": "", "question": question}).to_string())
}

#[test]
fn garbage_and_unusable_output_fall_back() {
    let case = Case::new();
    let cases: Vec<((u16, String), &str)> = vec![
        ((200, "this is not json".into()), "invalid"),
        ((200, "{\"id\": 1}".into()), "invalid"),
        (
            (
                200,
                completion("Sure! Here is a follow-up: what did you index?"),
            ),
            "invalid",
        ),
        ((200, completion("{\"decision\": \"deeper\"")), "invalid"),
        ((500, "{\"error\": \"model crashed\"}".into()), "status"),
        ((200, decision("teleport", "What now?")), "unusable"),
        ((200, decision("deeper", "")), "unusable"),
        (
            (200, decision("deeper", "Tell me more about indexes.")),
            "unusable",
        ),
        (
            (
                200,
                decision("deeper", "How did the candidate measure the query time?"),
            ),
            "unusable",
        ),
        (
            (
                200,
                decision(
                    "deeper",
                    "What salary range are you looking for in this role?",
                ),
            ),
            "unusable",
        ),
        ((200, decision("concrete_example", QUESTION)), "unusable"),
        (
            (200, decision("deeper", &format!("{}?", "Why ".repeat(80)))),
            "unusable",
        ),
        (
            (
                200,
                decision("deeper", "Which index? Why? What changed? What broke?"),
            ),
            "unusable",
        ),
    ];
    for ((status, body), expected) in cases {
        let (url, endpoint) = fake_server(vec![(status, body.clone())]);
        let mut llm = policy(&url, Duration::from_secs(5));
        let error = llm.ask(&case.situation()).unwrap_err();
        let kind = match error {
            LlmError::InvalidResponse { .. } => "invalid",
            LlmError::Status { .. } => "status",
            LlmError::Unusable { .. } => "unusable",
            ref other => panic!("{body}: unexpected {other}"),
        };
        assert_eq!(kind, expected, "{body}: {error}");
        assert_eq!(llm.decide(&case.situation()), built_in(&case), "{body}");
        assert_eq!(endpoint.served(), 2);
    }
}

#[test]
fn a_flaky_model_is_used_when_it_works_and_replaced_when_it_does_not() {
    // Alternately a good follow-up and garbage, mid-interview.
    let good = "What did the query plan show before and after your change?";
    let (url, endpoint) = fake_server(vec![
        (200, decision("deeper", good)),
        (200, "garbage".into()),
    ]);
    let log = Arc::new(Mutex::new(Vec::new()));
    let run = interview_with(
        &mut Script::new(VAGUE, VAGUE_DEFAULT),
        1,
        Box::new(policy(&url, Duration::from_secs(5))),
        log,
    );
    assert!(endpoint.served() >= 2);
    assert_eq!(run.prompts.last().unwrap().kind, TurnKind::Closing);
    let follow_ups: Vec<&str> = run
        .prompts
        .iter()
        .filter(|p| p.kind == TurnKind::FollowUp)
        .map(|p| p.text.as_str())
        .collect();
    assert!(
        follow_ups.contains(&good),
        "the model's follow-up was never used"
    );
    assert!(
        follow_ups.iter().any(|f| *f != good),
        "no turn fell back to the built-in policy"
    );
    for f in follow_ups {
        assert_question(f);
    }
}

#[test]
fn https_and_nonsense_configurations_are_refused_up_front() {
    let config = |url: &str, timeout| LlmConfig {
        base_url: url.to_string(),
        model: "m".to_string(),
        timeout,
        api_key: None,
    };
    let error =
        LlmPolicy::new(config("https://api.example.com/v1", Duration::from_secs(5))).unwrap_err();
    assert!(error.to_string().contains("without TLS"), "{error}");
    assert!(LlmPolicy::new(config("127.0.0.1:8080", Duration::from_secs(5))).is_err());
    assert!(LlmPolicy::new(config("http://127.0.0.1:8080/v1", Duration::ZERO)).is_err());
}
