//! An optional follow-up policy that asks a language model through an OpenAI-compatible
//! `/chat/completions` endpoint (llama.cpp's server, vLLM, Ollama, a hosted API).
//!
//! The model gets a short prompt (the question, the answer, the judge's notes) and must reply
//! with JSON matching a schema: a decision and the follow-up question. The schema goes in the
//! standard `response_format: {"type": "json_schema", ...}`; servers that only know the older
//! `{"type": "json_object", "schema": ...}` form (llama-cpp-python's) reject that at once, and
//! the policy then switches to the older form for the rest of the interview. Every call is time-boxed. Whatever goes wrong (the endpoint is down, too slow,
//! answers garbage, or writes something unusable: empty, not a question, too long, two
//! questions, a banned topic, "the candidate" in the third person, the original question
//! restated) the turn falls back to [`BuiltInPolicy`] with a logged warning, and the candidate
//! hears a normal follow-up either way.
//!
//! Plain `http://` only: the HTTP client is built without TLS to keep the dependency tree
//! small; run the model locally or behind a TLS-terminating proxy on the same host.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::judge::text::{Phrase, Text};
use crate::policy::{BuiltInPolicy, Decision, FollowUpKind, Policy, Situation};

/// Longest follow-up accepted, in characters: one spoken question, not a lecture.
const MAX_QUESTION_CHARS: usize = 300;
/// Shortest follow-up accepted, in words.
const MIN_QUESTION_WORDS: usize = 4;
/// Words of the answer sent to the model; a long answer is cut (prompt cost dominates latency
/// on small models: ~175 tokens/s on 2 cores).
const MAX_ANSWER_WORDS: usize = 160;
/// Tokens the model may generate: a decision, an area and one question.
const MAX_TOKENS: u32 = 120;
/// Decisions the model is skipped for after it timed out or could not be reached: a server
/// that is down, or still generating for the request it was abandoned on (llama.cpp servers
/// finish a generation after the client gave up), would only make the next turn wait too.
const REST_AFTER_FAILURE: u8 = 2;

/// Where and how to reach the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmConfig {
    /// Base URL including the API version, e.g. `http://127.0.0.1:8080/v1`;
    /// `/chat/completions` is appended.
    pub base_url: String,
    /// Model name sent with each request (local servers often ignore it).
    pub model: String,
    /// Longest wait for one decision, connection included; then the built-in policy decides.
    pub timeout: Duration,
    /// Sent as `Authorization: Bearer ...` when set.
    pub api_key: Option<String>,
}

/// Why the model's decision could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The configuration cannot work.
    #[error("LLM policy configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The endpoint did not answer within the timeout.
    #[error(
        "LLM endpoint {url} did not answer within {timeout:?}; raise the timeout or use a faster model"
    )]
    Timeout {
        /// The URL called.
        url: String,
        /// The timeout in force.
        timeout: Duration,
    },
    /// The endpoint could not be reached or the exchange failed.
    #[error(
        "cannot use LLM endpoint {url}: {source}; check that the server is running and the base URL is right"
    )]
    Transport {
        /// The URL called.
        url: String,
        /// What the HTTP client said.
        source: ureq::Error,
    },
    /// The endpoint answered with an HTTP error.
    #[error("LLM endpoint {url} answered HTTP {status}: {body}")]
    Status {
        /// The URL called.
        url: String,
        /// HTTP status code.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// The response is not a chat completion carrying the requested JSON.
    #[error("LLM endpoint {url} sent an invalid response: {reason}")]
    InvalidResponse {
        /// The URL called.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The model's decision is well formed but cannot be said to a candidate.
    #[error("LLM follow-up rejected: {reason}")]
    Unusable {
        /// Why.
        reason: String,
    },
}

/// The JSON the model must produce.
#[derive(Debug, Deserialize)]
struct ModelDecision {
    decision: String,
    #[serde(default)]
    area: String,
    #[serde(default)]
    question: String,
}

#[derive(Debug, Deserialize)]
struct ChatCompletion {
    choices: Vec<Choice>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
}

/// How the JSON schema is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SchemaStyle {
    /// OpenAI's `{"type": "json_schema", "json_schema": {"name", "strict", "schema"}}`.
    JsonSchema,
    /// `{"type": "json_object", "schema": ...}`, as llama-cpp-python and Anyscale take it.
    JsonObject,
}

/// A follow-up policy backed by a language model, with the built-in policy as the fallback
/// for every turn the model cannot serve.
pub struct LlmPolicy {
    config: LlmConfig,
    url: String,
    agent: ureq::Agent,
    style: SchemaStyle,
    /// Decisions left to skip the model for, after a timeout or a connection failure.
    resting: u8,
    fallback: BuiltInPolicy,
}

impl std::fmt::Debug for LlmPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmPolicy")
            .field("url", &self.url)
            .field("model", &self.config.model)
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

impl LlmPolicy {
    /// Checks the configuration and prepares the HTTP client; no request is made yet.
    pub fn new(config: LlmConfig) -> Result<LlmPolicy, LlmError> {
        let base = config.base_url.trim().trim_end_matches('/');
        if base.starts_with("https://") {
            return Err(LlmError::Config {
                reason: format!(
                    "base URL {base} uses https, but Viva's LLM client is built without TLS; \
                     use a local http:// endpoint or a TLS-terminating proxy on this host"
                ),
            });
        }
        if !base.starts_with("http://") {
            return Err(LlmError::Config {
                reason: format!(
                    "base URL {base:?} must start with http://, e.g. http://127.0.0.1:8080/v1"
                ),
            });
        }
        if config.timeout.is_zero() {
            return Err(LlmError::Config {
                reason: "the timeout must be more than zero".to_string(),
            });
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(LlmPolicy {
            url: format!("{base}/chat/completions"),
            config,
            agent,
            style: SchemaStyle::JsonSchema,
            resting: 0,
            fallback: BuiltInPolicy,
        })
    }

    /// Asks the model, without fallback: the decision, or why it cannot be used.
    pub fn ask(&mut self, s: &Situation<'_>) -> Result<Decision, LlmError> {
        match self.ask_once(s) {
            Err(LlmError::Status { status, body, .. })
                if self.style == SchemaStyle::JsonSchema
                    && (400..600).contains(&status)
                    && body.contains("response_format") =>
            {
                tracing::info!(
                    url = %self.url,
                    "LLM endpoint does not take json_schema response formats; using json_object"
                );
                self.style = SchemaStyle::JsonObject;
                self.ask_once(s)
            }
            other => other,
        }
    }

    fn ask_once(&self, s: &Situation<'_>) -> Result<Decision, LlmError> {
        let body = self.request_body(s);
        let mut request = self.agent.post(&self.url);
        if let Some(key) = &self.config.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut response = request.send_json(&body).map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        if status != 200 {
            let text = response
                .body_mut()
                .read_to_string()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            return Err(LlmError::Status {
                url: self.url.clone(),
                status,
                body: text,
            });
        }
        let completion: ChatCompletion = response.body_mut().read_json().map_err(|e| match e {
            ureq::Error::Timeout(_) => self.transport(e),
            other => LlmError::InvalidResponse {
                url: self.url.clone(),
                reason: other.to_string(),
            },
        })?;
        let content = completion
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .ok_or_else(|| LlmError::InvalidResponse {
                url: self.url.clone(),
                reason: "no message content in the first choice".to_string(),
            })?;
        let decision: ModelDecision =
            serde_json::from_str(content.trim()).map_err(|e| LlmError::InvalidResponse {
                url: self.url.clone(),
                reason: format!(
                    "content is not the requested JSON ({e}): {}",
                    snippet(&content)
                ),
            })?;
        usable(decision, s)
    }

    fn transport(&self, error: ureq::Error) -> LlmError {
        match error {
            ureq::Error::Timeout(_) => LlmError::Timeout {
                url: self.url.clone(),
                timeout: self.config.timeout,
            },
            source => LlmError::Transport {
                url: self.url.clone(),
                source,
            },
        }
    }

    fn request_body(&self, s: &Situation<'_>) -> serde_json::Value {
        let job = s.job;
        let banned: Vec<&str> = job.banned_topics.iter().map(|t| t.name.as_str()).collect();
        // Everything that is the same for every turn goes in the system message, which servers
        // cache as a prompt prefix: on small CPU models prompt evaluation is most of the wait.
        let system = format!(
            "You are an interviewer screening candidates for the role: {}. After each answer \
             you decide whether to ask one follow-up and write it. Decision \
             \"concrete_example\" if the answer lacks a real example from their own work, \
             \"uncovered_area\" to ask about one area not covered yet (name it in \"area\"), \
             \"deeper\" to probe trade-offs, failure modes or measurements, \"move_on\" if the \
             answer is complete. Write the follow-up in \"question\" (empty for move_on): one \
             short question, to the candidate as \"you\". Never talk about: {}. Never praise, \
             criticise or reveal any assessment.",
            job.title,
            if banned.is_empty() {
                "nothing in particular".to_string()
            } else {
                banned.join("; ")
            }
        );
        let j = s.judgement;
        let answer: Vec<&str> = s.answer.split_whitespace().take(MAX_ANSWER_WORDS).collect();
        let user = format!(
            "Question: {}\nLast asked: {}\nAnswer: {}\nNotes: {}; depth {:?}; areas not \
             covered yet: {}; follow-ups asked: {}",
            s.question,
            s.last_asked,
            answer.join(" "),
            if j.vague { "vague" } else { "not vague" },
            j.depth,
            if s.uncovered_areas.is_empty() {
                "none".to_string()
            } else {
                s.uncovered_areas.join("; ")
            },
            s.asked.len()
        );
        let schema = json!({
            "type": "object",
            "properties": {
                "decision": {
                    "type": "string",
                    "enum": ["concrete_example", "uncovered_area", "deeper", "move_on"]
                },
                "area": {"type": "string"},
                "question": {"type": "string"}
            },
            "required": ["decision", "area", "question"],
            "additionalProperties": false
        });
        let response_format = match self.style {
            SchemaStyle::JsonSchema => json!({
                "type": "json_schema",
                "json_schema": {"name": "follow_up", "strict": true, "schema": schema}
            }),
            SchemaStyle::JsonObject => json!({"type": "json_object", "schema": schema}),
        };
        json!({
            "model": self.config.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "temperature": 0,
            "seed": 0,
            "max_tokens": MAX_TOKENS,
            "response_format": response_format
        })
    }
}

impl Policy for LlmPolicy {
    fn decide(&mut self, s: &Situation<'_>) -> Decision {
        if self.resting > 0 {
            self.resting -= 1;
            tracing::debug!(
                question = s.question_id,
                "LLM endpoint resting after a failure"
            );
            return self.fallback.decide(s);
        }
        let started = Instant::now();
        match self.ask(s) {
            Ok(decision) => {
                tracing::debug!(
                    question = s.question_id,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "LLM follow-up decision"
                );
                decision
            }
            Err(error) => {
                if matches!(error, LlmError::Timeout { .. } | LlmError::Transport { .. }) {
                    self.resting = REST_AFTER_FAILURE;
                }
                tracing::warn!(
                    question = s.question_id,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    %error,
                    "LLM policy failed; the built-in policy decides this turn"
                );
                self.fallback.decide(s)
            }
        }
    }
}

/// Turns the model's JSON into a decision a candidate can hear, or says why not.
fn usable(m: ModelDecision, s: &Situation<'_>) -> Result<Decision, LlmError> {
    let reject = |reason: String| Err(LlmError::Unusable { reason });
    let kind = match m.decision.as_str() {
        "move_on" => return Ok(Decision::MoveOn),
        "concrete_example" => FollowUpKind::ConcreteExample,
        "deeper" => FollowUpKind::Deeper,
        "uncovered_area" => {
            let area = m.area.trim();
            // Keep the job's own wording of the area; the model's may drift.
            match s
                .uncovered_areas
                .iter()
                .find(|a| a.eq_ignore_ascii_case(area))
                .or_else(|| s.uncovered_areas.first())
            {
                Some(a) => FollowUpKind::UncoveredArea(a.clone()),
                None => FollowUpKind::Deeper,
            }
        }
        other => return reject(format!("unknown decision {other:?}")),
    };
    let question = m.question.trim().to_string();
    let words = Text::new(&question);
    if words.word_count() < MIN_QUESTION_WORDS {
        return reject(format!("follow-up too short: {question:?}"));
    }
    if question.chars().count() > MAX_QUESTION_CHARS {
        return reject(format!(
            "follow-up longer than {MAX_QUESTION_CHARS} characters"
        ));
    }
    if !question.ends_with('?') {
        return reject(format!("not a question: {}", snippet(&question)));
    }
    if question.matches('?').count() > 2 {
        return reject(format!("several questions at once: {}", snippet(&question)));
    }
    for third_person in [
        "the candidate",
        "candidate's",
        "the applicant",
        "the interviewee",
    ] {
        if words.contains(&Phrase::exact(third_person)) {
            return reject(format!(
                "speaks about the candidate in the third person: {}",
                snippet(&question)
            ));
        }
    }
    for topic in &s.job.banned_topics {
        if topic
            .triggers
            .iter()
            .any(|t| words.contains(&Phrase::plural(t)))
        {
            return reject(format!("touches the banned topic {}", topic.id));
        }
    }
    if restates(&question, s.question) || restates(&question, s.last_asked) {
        return reject(format!(
            "restates the question already asked: {}",
            snippet(&question)
        ));
    }
    Ok(Decision::Ask { kind, question })
}

/// Whether `a` is essentially `b` again: nearly the same words.
fn restates(a: &str, b: &str) -> bool {
    let set = |t: &str| -> std::collections::BTreeSet<String> {
        Text::new(t).words.into_iter().map(|w| w.lower).collect()
    };
    let (a, b) = (set(a), set(b));
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let shared = a.intersection(&b).count() as f32;
    let union = a.union(&b).count() as f32;
    shared / union >= 0.8
}

fn snippet(text: &str) -> String {
    let cut: String = text.chars().take(120).collect();
    if cut.len() < text.len() {
        format!("{cut}...")
    } else {
        cut
    }
}
