//! The answer judge on the shipped job with the real sentence-embedding model (`models/minilm`,
//! installed by `scripts/setup`): what it makes of strong, vague, echoing and evasive answers,
//! knockout answers, and banned topics.

mod agent_common;

use agent_common::judge;
use viva_interview::{Depth, Judgement, ON_TOPIC_SIMILARITY};

const STRONG_API: &str = "At Acme I designed the public billing API that about 300 customer integrations depended on. We versioned it in the URL and only made additive changes, so old clients kept working, and we deprecated fields with a six month notice. Every write endpoint took an idempotency key because our clients retried on timeouts, and before that we had seen duplicate invoices. Errors followed one JSON problem format with stable error codes. We used cursor pagination instead of offsets because offset pages drifted when rows were inserted. Latency at p99 went from 800 ms to 120 ms after we added a read replica.";
const VAGUE_API: &str = "I think API design is really important. Usually you want to follow best practices and make sure the API is easy to use and well documented. It depends on the use case, but generally you should think about versioning and things like that. You want good error handling and security and so on.";
const ECHO_API: &str = "A challenging API I designed had a lot of key considerations and trade-offs. The key considerations were the design of the API and the trade-offs of the API design. You have to consider the trade-offs carefully when designing a challenging API, and the considerations are very important for an API.";
const STRONG_CACHE: &str = "We put Redis in front of PostgreSQL for the product catalogue, which served 20k requests per second. We cached only read-heavy entities with a low change rate and measured the hit rate, which was 94%. Invalidation was event driven: every write published an event and the consumer deleted the key, with a 10 minute TTL as a safety net. The trade-off was stale reads for a few hundred milliseconds, which the business accepted. We also added request coalescing to avoid a thundering herd when hot keys expired.";
const VAGUE_CACHE: &str = "Caching is very important for high-traffic applications. You should cache the data that is used a lot and make sure the cache is invalidated when needed. There are different caching strategies and they all have trade-offs. It depends on the application really.";

fn covered(j: &Judgement) -> Vec<&str> {
    j.covered_areas().collect()
}

#[test]
fn strong_answers_are_specific_deep_and_cover_areas() {
    let j = judge().judge(Some("api_design"), STRONG_API);
    assert!(j.specificity >= 0.8, "{}", j.specificity);
    assert_eq!(j.depth, Depth::Deep);
    assert!(!j.vague && !j.evasive);
    assert_eq!(
        covered(&j),
        [
            "versioning and backward compatibility",
            "error contracts and status codes",
            "pagination",
            "idempotency of retried writes"
        ]
    );
    assert!(j.specifics.measurements.iter().any(|m| m == "800 ms"));
    assert!(j.specifics.past_work.iter().any(|p| p == "I designed"));
    assert!(j.mentions.iter().any(|m| m.text == "idempotency key"));

    let j = judge().judge(Some("caching"), STRONG_CACHE);
    assert_eq!(j.specifics.technologies, ["Redis", "PostgreSQL"]);
    assert_eq!(j.depth, Depth::Deep);
    assert_eq!(covered(&j).len(), 5);
    assert_eq!(j.mentions.first().map(|m| m.text.as_str()), Some("Redis"));
}

#[test]
fn vague_answers_that_name_the_areas_do_not_cover_them() {
    // Similarity alone would call these covered: the vague answers echo the area words.
    let j = judge().judge(Some("api_design"), VAGUE_API);
    let versioning = &j.areas[0];
    assert!(
        versioning.similarity > 0.5 && versioning.term_hit,
        "{versioning:?}"
    );
    assert!(covered(&j).is_empty(), "{:?}", covered(&j));
    assert!(j.vague && j.vagueness >= 0.5);
    assert!(j.specificity < 0.2);
    assert!(j.depth <= Depth::Surface);
    assert!(
        j.hedges
            .iter()
            .any(|h| h == "it depends" || h == "It depends")
    );

    let j = judge().judge(Some("caching"), VAGUE_CACHE);
    assert!(j.areas.iter().any(|a| a.similarity > 0.6));
    assert!(covered(&j).is_empty());
    assert!(j.vague);
}

#[test]
fn echoing_the_question_or_changing_the_subject_is_not_an_answer() {
    let echo = judge().judge(Some("api_design"), ECHO_API);
    assert!(covered(&echo).is_empty());
    assert_eq!(echo.depth, Depth::None);
    let off = judge().judge(
        Some("api_design"),
        "I really enjoy hiking and cooking on the weekends, and last summer I travelled through Italy.",
    );
    assert_eq!(off.depth, Depth::None);
    assert!(off.evasive);
    assert!(off.areas.iter().all(|a| a.similarity < ON_TOPIC_SIMILARITY));
}

#[test]
fn a_short_specific_answer_to_a_blueprint_follow_up_is_judged_against_its_blueprint() {
    let j = judge().judge(
        Some("cache_invalidation"),
        "We deleted the Redis key in the same code path that committed the write, after the \
         commit, and used a short TTL to bound staleness if a delete was lost.",
    );
    assert_eq!(j.areas.len(), 5, "the caching blueprint's areas");
    assert_eq!(covered(&j), ["cache invalidation"]);
    assert!(j.depth >= Depth::Working);
}

#[test]
fn dont_know_and_repeat_requests_are_recognised_only_when_short() {
    let j = judge().judge(Some("api_design"), "Hmm, I don't know, honestly.");
    assert!(j.dont_know && j.evasive && !j.vague);
    let j = judge().judge(Some("api_design"), "Sorry, could you repeat the question?");
    assert!(j.repeat_request && !j.is_answer(false));
    let long = format!("I don't know if this counts, but {STRONG_API}");
    assert!(!judge().judge(Some("api_design"), &long).dont_know);
    let j = judge().judge(
        Some("api_design"),
        "We repeated the load test with 10k users.",
    );
    assert!(
        !j.repeat_request,
        "a long enough sentence about repeating is an answer"
    );
    assert!(judge().judge(Some("api_design"), "Pass.").dont_know);
    assert!(
        !judge()
            .judge(
                Some("api_design"),
                "We pass the token to the gateway and it checks the scopes."
            )
            .dont_know
    );
}

#[test]
fn years_of_experience_pick_the_claim_about_the_subject() {
    let years = |text: &str| judge().judge(Some("api_experience"), text).years_claimed;
    assert_eq!(
        years(
            "I've been building backend services for about eight years, and for the last five years I've mostly been designing REST APIs."
        ),
        Some(5.0)
    );
    assert_eq!(years("5+ years."), Some(5.0));
    assert_eq!(years("Two and a half years, give or take."), Some(2.5));
    assert_eq!(years("About a decade designing APIs."), Some(10.0));
    assert_eq!(years("A couple of years."), Some(2.0));
    assert_eq!(years("Quite a while, honestly."), None);
}

#[test]
fn yes_and_no_are_read_with_their_usual_traps() {
    let yes = |text: &str| judge().judge(Some("start_date"), text).affirmation;
    assert_eq!(yes("Yes, my notice period is two weeks."), Some(true));
    assert_eq!(yes("Sure, no problem."), Some(true));
    assert_eq!(yes("I can start right away."), Some(true));
    assert_eq!(
        yes("Unfortunately I have a three month notice period."),
        Some(false)
    );
    assert_eq!(yes("No, I couldn't."), Some(false));
    assert_eq!(yes("I could not, sadly."), Some(false));
    assert_eq!(yes("Yes, but I can't before March."), None);
    assert_eq!(yes("I'd have to make sure with my manager."), None);
}

#[test]
fn banned_topics_are_matched_as_words_and_not_quoted_back() {
    let j = judge().judge(
        Some("api_design"),
        "We designed the API with Kafka events. What's the salary range, and is there a bonus?",
    );
    assert_eq!(j.banned_topics, ["compensation"]);
    let j = judge().judge(
        Some("api_design"),
        "Sagas with compensating actions kept the services consistent.",
    );
    assert!(
        j.banned_topics.is_empty(),
        "compensating is not compensation"
    );
    let j = judge().judge(
        Some("api_design"),
        "My side project runs on Kafka. At work we used Redis.",
    );
    assert_eq!(j.banned_topics, ["unrelated_projects"]);
    let mentioned: Vec<&str> = j.mentions.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(mentioned, ["Redis"]);
}

#[test]
fn long_answers_are_flagged() {
    let ramble = "We talked about the API for a long time. ".repeat(40);
    assert!(judge().judge(Some("api_design"), &ramble).long_answer);
    assert!(!judge().judge(Some("api_design"), STRONG_API).long_answer);
}

#[test]
fn judging_is_deterministic() {
    for (id, text) in [
        ("api_design", STRONG_API),
        ("caching", VAGUE_CACHE),
        ("api_design", ECHO_API),
    ] {
        assert_eq!(judge().judge(Some(id), text), judge().judge(Some(id), text));
    }
}

#[test]
fn assessments_carry_the_judgement() {
    let j = judge().judge(Some("api_design"), STRONG_API);
    let a = j.assessment(7, "api_design");
    assert_eq!(a.turn_index, 7);
    assert_eq!(a.question_id, "api_design");
    assert_eq!(a.depth, Depth::Deep);
    assert_eq!(a.coverage.len(), 5);
    assert_eq!(a.coverage.iter().filter(|(_, c)| *c).count(), 4);
    assert_eq!(a.numbers, j.specifics.measurements);
    let k = judge()
        .judge(Some("api_experience"), "Six years.")
        .assessment(3, "api_experience");
    assert_eq!(k.years_claimed, Some(6.0));
    assert!(!k.vague, "a bare number is a complete knockout answer");
}
