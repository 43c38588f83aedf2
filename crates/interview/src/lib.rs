//! The interview engine: jobs and their validation, the interviewer agent and its policies,
//! the transcript, scoring and the report.
// The modules are private and this root is the surface: a type the surface hands out but
// forgets to re-export would be unnameable for its users.
#![warn(unnameable_types)]

mod embedding;
mod html;
mod interviewer;
mod job;
mod judge;
mod llm;
mod policy;
mod report;
mod scoring;
mod transcript;
mod words;

pub use embedding::{EmbedError, Embedder, SentenceEmbedding};
pub use html::{HtmlOptions, render_html};
pub use interviewer::{Interviewer, MOVE_ON_AFTER_MS, NUDGE_AFTER_MS, Next, Prompt, planned_lines};
pub use job::{
    BannedTopic, Blueprint, Competency, DepthCues, Dimension, DimensionBasis, FollowUp, Job,
    JobError, JobErrors, Knockout, KnockoutRule, MAX_VOCABULARY_TERM_CHARS, MAX_VOCABULARY_TERMS,
    Problem, Question, Skill, Thresholds,
};
pub use judge::{
    AreaCoverage, Judge, Judgement, Mention, ON_TOPIC_SIMILARITY, Reasoning, Specifics,
};
pub use llm::{LlmConfig, LlmError, LlmPolicy};
pub use policy::{BuiltInPolicy, Decision, FollowUpKind, Policy, Situation};
pub use report::{EndOfCall, Report, ReportContext, Versions};
pub use scoring::{
    AnswerAssessment, CompetencyResult, Depth, DimensionScore, Evidence, KnockoutResult,
    PreferredSkillResult, QuestionCoverage, QuestionKind, Recommendation, Scorecard, ScoringError,
    SkillScore,
};
pub use transcript::{
    Speaker, Transcript, TranscriptError, TranscriptLog, Turn, TurnKind, resumes_answer,
    write_atomically,
};
