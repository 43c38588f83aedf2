//! Follow-up policies: after an answer to a question that allows adaptive follow-ups, what
//! does the interviewer do next?
//!
//! The [`Interviewer`](crate::interviewer::Interviewer) owns the flow and the hard limits
//! (follow-ups per question, the time budget, repeats, silences, banned topics); a policy only
//! chooses between moving on and one follow-up, and words it. [`BuiltInPolicy`] needs no
//! network and is deterministic; [`LlmPolicy`](crate::llm::LlmPolicy) asks a language model
//! and falls back to the built-in policy whenever the model fails.

use crate::job::Job;
use crate::judge::{Judgement, Mention};

/// What a follow-up is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUpKind {
    /// The answer stayed general: ask for one real situation, what they did, what came of it.
    ConcreteExample,
    /// A knowledge area of the question is still untouched: ask about it.
    UncoveredArea(String),
    /// The answer was solid: go one rung deeper (trade-offs, failure modes, alternatives,
    /// measurement).
    Deeper,
}

/// A policy's choice after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Enough on this question.
    MoveOn,
    /// Ask one follow-up.
    Ask {
        /// What the follow-up is for.
        kind: FollowUpKind,
        /// The follow-up as it will be spoken: one question, addressed to the candidate.
        question: String,
    },
}

/// Everything a policy may look at to decide on a follow-up.
#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    /// The job being interviewed for.
    pub job: &'a Job,
    /// Id of the question (custom question or required skill) being followed up.
    pub question_id: &'a str,
    /// The question as first asked.
    pub question: &'a str,
    /// What the interviewer said last (the question, or the last follow-up).
    pub last_asked: &'a str,
    /// The candidate's latest answer.
    pub answer: &'a str,
    /// The judge's reading of that answer.
    pub judgement: &'a Judgement,
    /// The judge's readings of the earlier answers to this question (before its follow-ups),
    /// oldest first.
    pub earlier: &'a [Judgement],
    /// Knowledge areas of the question not covered by any answer to it so far, in job order.
    pub uncovered_areas: &'a [String],
    /// Follow-ups already asked on this question, in order.
    pub asked: &'a [FollowUpKind],
    /// Things the candidate named that earlier follow-ups already quoted back.
    pub quoted: &'a [String],
    /// Follow-ups still allowed on this question; always at least 1 when a policy is asked.
    pub follow_ups_left: u8,
}

/// Decides on follow-ups. Implementations must be cheap to call on the interview's thread or
/// bounded in time (the LLM policy is time-boxed).
pub trait Policy: Send {
    /// Chooses what to do after `situation.answer`.
    fn decide(&mut self, situation: &Situation<'_>) -> Decision;
}

/// How many follow-ups a question may draw from answers of each quality: vague answers use the
/// whole allowance, solid ones a couple, strong ones a single probe one level deeper.
const SOLID_ANSWER_FOLLOW_UPS: usize = 2;
const STRONG_ANSWER_FOLLOW_UPS: usize = 1;

/// Specificity at or above which an answer counts as strong (with working depth or better).
const STRONG_SPECIFICITY: f32 = 0.55;
/// Specificity below which an answer needs a concrete example.
const WEAK_SPECIFICITY: f32 = 0.3;

/// The deterministic, offline policy driven by the judge's reading of the answer.
///
/// The question is classed by the best of its answers so far, so a strong candidate's short,
/// focused reply to a follow-up does not restart the probing, and a vague start that turns
/// concrete after one follow-up is not pressed further:
/// * Weak (the latest answer vague or not specific, and none was strong): ask for a concrete
///   example, then for uncovered areas, then one rung deeper, up to the whole allowance.
/// * Solid: probe an uncovered area, then go deeper; at most two follow-ups.
/// * Strong (an answer specific with working depth or better): one probe one rung deeper,
///   then move on.
///
/// Follow-ups quote the candidate's own words ("You mentioned Redis — ...") when the answer
/// named something not quoted yet. Wording variants are picked by a hash of the situation, so
/// the same transcript always gets the same words.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltInPolicy;

impl Policy for BuiltInPolicy {
    fn decide(&mut self, s: &Situation<'_>) -> Decision {
        let j = s.judgement;
        let asked = s.asked.len();
        let strong = s.earlier.iter().chain([j]).any(|a| {
            !a.vague
                && a.specificity >= STRONG_SPECIFICITY
                && a.depth >= crate::scoring::Depth::Working
        });
        let weak = !strong && (j.vague || j.specificity < WEAK_SPECIFICITY);
        let allowance = if weak {
            asked + usize::from(s.follow_ups_left)
        } else if strong {
            STRONG_ANSWER_FOLLOW_UPS
        } else {
            SOLID_ANSWER_FOLLOW_UPS
        };
        if asked >= allowance || s.follow_ups_left == 0 {
            return Decision::MoveOn;
        }
        let next_area = s
            .uncovered_areas
            .iter()
            .find(|area| {
                !s.asked
                    .iter()
                    .any(|k| matches!(k, FollowUpKind::UncoveredArea(a) if a == *area))
            })
            .cloned();
        let asked_example = s.asked.contains(&FollowUpKind::ConcreteExample);
        let kind = if weak && !asked_example {
            FollowUpKind::ConcreteExample
        } else if strong {
            FollowUpKind::Deeper
        } else if let Some(area) = next_area {
            FollowUpKind::UncoveredArea(area)
        } else {
            FollowUpKind::Deeper
        };
        let question = phrase(&kind, s);
        Decision::Ask { kind, question }
    }
}

/// The built-in follow-ups' fixed wordings. [`planned_follow_ups`] lists them for the voice
/// cache, so a follow-up that quotes nobody is heard as soon as it is decided.
const CONCRETE_EXAMPLE: [&str; 2] = [
    "Can you give me a concrete example from a project you worked on: what the situation was, \
     what you did yourself, and how it turned out?",
    "Could you make that concrete with one real situation from your work: what happened, what \
     you did, and what the result was?",
];
/// Follows "You mentioned ...", a sentence of its own.
const WALK_ME_THROUGH: &str = "Can you walk me through one specific time you used it: what the \
     situation was, what you did yourself, and how it turned out?";
const TRADE_OFFS: &str = "what trade-offs did you weigh there, and what did you give up?";
const FAILURE_MODES: &str =
    "what went wrong along the way, or what would break first under much heavier load?";
const ALTERNATIVES: &str = "what alternatives did you consider, and why did you rule them out?";
const MEASURED: &str = "how did you measure whether it worked, and what did the numbers show?";
const AT_TEN_TIMES: &str =
    "if you had to build it again at ten times the scale, what would you change first?";

/// The two wordings of a follow-up on an untouched knowledge area.
fn uncovered_area_questions(area: &str) -> [String; 2] {
    [
        format!("What about {area}? How have you handled that in your own work?"),
        format!("How have you dealt with {area} in a system you worked on?"),
    ]
}

/// A deeper probe's body as a question of its own.
fn capitalised(body: &str) -> String {
    let mut chars = body.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Every follow-up the built-in policy can ask any candidate of `job` in the same words: all
/// but the ones that quote the candidate. The language-model policy words its own, but falls
/// back to these.
pub(crate) fn planned_follow_ups(job: &Job) -> Vec<String> {
    let mut lines: Vec<String> = CONCRETE_EXAMPLE
        .into_iter()
        .chain([WALK_ME_THROUGH])
        .map(str::to_owned)
        .chain(
            [
                TRADE_OFFS,
                FAILURE_MODES,
                ALTERNATIVES,
                MEASURED,
                AT_TEN_TIMES,
            ]
            .map(capitalised),
        )
        .collect();
    for question in &job.questions {
        lines.extend(
            question
                .areas
                .iter()
                .flat_map(|a| uncovered_area_questions(a)),
        );
    }
    lines
}

/// Words a built-in follow-up of `kind` for this situation.
pub(crate) fn phrase(kind: &FollowUpKind, s: &Situation<'_>) -> String {
    let j = s.judgement;
    let variant = variant(s);
    match kind {
        FollowUpKind::ConcreteExample => match mention(j, s.quoted, true) {
            Some(m) => format!("You mentioned {m}. {WALK_ME_THROUGH}"),
            None => CONCRETE_EXAMPLE[variant % 2].to_string(),
        },
        FollowUpKind::UncoveredArea(area) => match mention(j, s.quoted, true) {
            Some(m) => format!("You mentioned {m} — how did you approach {area} there?"),
            None => uncovered_area_questions(area)
                .into_iter()
                .nth(variant % 2)
                .unwrap_or_default(),
        },
        FollowUpKind::Deeper => {
            // Concepts ("circuit breaker") make better probes than tool names ("Prometheus").
            let target = mention(j, s.quoted, false);
            let r = &j.reasoning;
            let missing: Vec<&str> = [
                (r.trade_offs, TRADE_OFFS),
                (r.failure_modes, FAILURE_MODES),
                (r.alternatives, ALTERNATIVES),
                (r.measured, MEASURED),
            ]
            .into_iter()
            .filter(|(done, _)| !done)
            .map(|(_, body)| body)
            .collect();
            let body = if missing.is_empty() {
                AT_TEN_TIMES
            } else {
                missing[variant % missing.len()]
            };
            match target {
                Some(m) => format!("You mentioned {m} — {body}"),
                None => capitalised(body),
            }
        }
    }
}

/// The first thing the candidate named that no earlier follow-up quoted: a named technology
/// when `technology` (what did you do with it), else a concept from the job's depth cues (how
/// deep does it go), falling back to the other kind.
fn mention(j: &Judgement, quoted: &[String], technology: bool) -> Option<String> {
    let fresh = |m: &&Mention| !quoted.iter().any(|q| q.eq_ignore_ascii_case(&m.text));
    j.mentions
        .iter()
        .filter(fresh)
        .find(|m| m.technology == technology)
        .or_else(|| j.mentions.iter().find(fresh))
        .map(|m| m.text.clone())
}

/// A small deterministic number from the situation, to vary wording without randomness.
fn variant(s: &Situation<'_>) -> usize {
    // FNV-1a over the question id and the follow-up count: stable across runs and platforms.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in s.question_id.bytes().chain([s.asked.len() as u8]) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % 1024) as usize
}

/// The candidate's mentions a follow-up quotes back, so later follow-ups pick fresh ones.
pub(crate) fn quoted_mentions(question: &str, j: &Judgement) -> Vec<String> {
    let lower = question.to_lowercase();
    j.mentions
        .iter()
        .filter(|m| lower.contains(&m.text.to_lowercase()))
        .map(|m| m.text.clone())
        .collect()
}
