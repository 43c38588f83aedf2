//! The screening report recruiters read: the [`Scorecard`] plus strengths, risks, a suggested
//! next step and the versions of everything that produced it.
//!
//! [`Report::to_json`] is byte-identical for identical inputs: fields serialize in declaration
//! order, lists in job and transcript order, maps are `BTreeMap`s, and no clock is read (a
//! completion time is only included when the caller passes one in).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::job::Job;
use crate::scoring::{
    self, AnswerAssessment, DimensionScore, PreferredSkillResult, QuestionKind, Recommendation,
    Scorecard, ScoringError, SkillScore,
};
use crate::transcript::{Speaker, Transcript};

/// Dimension or skill scores (0-10) at or above this are called out as strengths.
const STRENGTH_AT: f64 = 7.5;
/// Dimension scores (0-10) below this are called out as risks.
const RISK_BELOW: f64 = 5.0;
/// Required-skill scores (0-10) below this are called out as risks.
const SKILL_RISK_BELOW: f64 = 4.0;
/// Most strengths listed; the report is read in a minute, not studied.
const MAX_STRENGTHS: usize = 5;

/// What the caller knows about the interview that the transcript does not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportContext {
    /// Candidate's name, if known.
    pub candidate: Option<String>,
    /// When the interview ended (e.g. RFC 3339), if the caller wants it in the report.
    pub completed_at: Option<String>,
    /// How the call ended, when a live call ended.
    pub ended: Option<EndOfCall>,
    /// The call's length as the call measured it; `None`: from the transcript's first turn
    /// to its last.
    pub call_length_ms: Option<u64>,
    /// Models that took part, by role, e.g. `"stt" -> "whisper tiny.en q8_0"`.
    pub models: BTreeMap<String, String>,
}

/// How a live call ended, in the report's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndOfCall {
    /// For programs: `reached_closing`, `ended_by_candidate`, `connection_lost`, ...
    pub reason: String,
    /// For people: "ended by the candidate".
    pub description: String,
}

/// Which configuration and software produced a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    /// Job id.
    pub job_id: String,
    /// Fingerprint of the job file ([`Job::fingerprint`]).
    pub job_fingerprint: String,
    /// Version of Viva.
    pub viva: String,
    /// Models by role.
    pub models: BTreeMap<String, String>,
}

/// The screening report (`report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Candidate's name, if known.
    pub candidate: Option<String>,
    /// Job title.
    pub job_title: String,
    /// When the interview ended, if given.
    pub completed_at: Option<String>,
    /// How the call ended, for a live call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<EndOfCall>,
    /// The call's length in milliseconds (without a live call: from the first turn's start
    /// to the last turn's end).
    pub duration_ms: u64,
    /// The scores, knockouts, skills and coverage (flattened into the report's JSON).
    #[serde(flatten)]
    pub scorecard: Scorecard,
    /// What went well.
    pub strengths: Vec<String>,
    /// What to worry about.
    pub risks: Vec<String>,
    /// What the hiring team should do next.
    pub next_step: String,
    /// What produced this report.
    pub versions: Versions,
}

impl Report {
    /// Scores the interview and writes up the report.
    pub fn build(
        job: &Job,
        transcript: &Transcript,
        assessments: &[AnswerAssessment],
        context: &ReportContext,
    ) -> Result<Report, ScoringError> {
        let card = scoring::score(job, transcript, assessments)?;
        let vague_answers = assessments
            .iter()
            .filter(|a| a.vague || a.evasive)
            .filter(|a| {
                transcript
                    .turns
                    .get(a.turn_index)
                    .is_some_and(|t| t.speaker == Speaker::Candidate)
            })
            .count();
        let strengths = strengths(
            &card.dimensions,
            &card.required_skills,
            &card.preferred_skills,
        );
        let risks = risks(&card, job, vague_answers);
        let next_step = next_step(&card, job);
        let transcript_span = transcript.turns.first().map_or(0, |first| {
            let end = transcript
                .turns
                .iter()
                .map(|t| t.end_ms)
                .max()
                .unwrap_or(first.start_ms);
            end.saturating_sub(first.start_ms)
        });
        Ok(Report {
            candidate: context.candidate.clone(),
            job_title: job.title.clone(),
            completed_at: context.completed_at.clone(),
            ended: context.ended.clone(),
            duration_ms: context.call_length_ms.unwrap_or(transcript_span),
            scorecard: card,
            strengths,
            risks,
            next_step,
            versions: Versions {
                job_id: job.id.clone(),
                job_fingerprint: job.fingerprint().to_string(),
                viva: env!("CARGO_PKG_VERSION").to_string(),
                models: context.models.clone(),
            },
        })
    }

    /// The report as pretty-printed JSON; identical inputs give identical bytes.
    pub fn to_json(&self) -> String {
        // Plain structs of strings, numbers and BTreeMaps: serialization cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

fn strengths(
    dimensions: &[DimensionScore],
    skills: &[SkillScore],
    preferred: &[PreferredSkillResult],
) -> Vec<String> {
    let mut strong: Vec<&DimensionScore> = dimensions
        .iter()
        .filter(|d| d.assessed && d.score >= STRENGTH_AT)
        .collect();
    // Highest first; the sort is stable, so equal scores keep rubric order.
    strong.sort_by(|a, b| b.score.total_cmp(&a.score));
    // A few dimensions first, then room for skills and bonus skills, so the list shows the
    // breadth of what went well rather than five dimensions at 9/10.
    let mut out: Vec<String> = strong
        .iter()
        .take(MAX_STRENGTHS - 2)
        .map(|d| format!("Strong {} ({}/10)", d.name, d.score))
        .collect();
    let mut skilled: Vec<&SkillScore> = skills.iter().filter(|s| s.score >= STRENGTH_AT).collect();
    skilled.sort_by(|a, b| b.score.total_cmp(&a.score));
    out.extend(
        preferred
            .iter()
            .filter(|p| p.demonstrated)
            .map(|p| format!("Bonus: {} experience shown", p.name)),
    );
    out.extend(
        skilled
            .iter()
            .map(|s| format!("{} demonstrated with specifics ({}/10)", s.name, s.score)),
    );
    out.truncate(MAX_STRENGTHS);
    out
}

fn risks(card: &scoring::Scorecard, job: &Job, vague_answers: usize) -> Vec<String> {
    let mut out = Vec::new();
    for k in &card.knockouts {
        if !k.asked {
            out.push(format!("Knockout not asked: {}", k.question));
        } else if !k.passed {
            out.push(format!("Knockout failed: {} ({})", k.fail_if, k.detail));
        }
    }
    for c in card.competencies.iter().filter(|c| !c.passed) {
        out.push(format!("Must-have not shown: {}", c.name));
    }
    for d in &card.dimensions {
        if !d.assessed {
            out.push(format!("{} not assessed", d.name));
        } else if d.score < RISK_BELOW {
            out.push(format!("Weak {} ({}/10)", d.name, d.score));
        }
    }
    for s in card
        .required_skills
        .iter()
        .filter(|s| s.score < SKILL_RISK_BELOW)
    {
        out.push(format!("{} barely demonstrated ({}/10)", s.name, s.score));
    }
    for c in &card.coverage {
        if c.kind == QuestionKind::Question && c.asked && !c.answered {
            out.push(format!(
                "No answer to \"{}\"",
                question_text(job, &c.question_id)
            ));
        } else if c.answered && c.areas_covered.is_empty() {
            out.push(format!(
                "{}: covered none of its {} knowledge areas",
                c.question_id,
                c.areas_missed.len()
            ));
        } else if c.answered && c.areas_missed.len() > c.areas_covered.len() {
            // Areas may contain commas themselves, so list them with semicolons.
            out.push(format!(
                "{}: did not cover {}",
                c.question_id,
                c.areas_missed.join("; ")
            ));
        }
    }
    if vague_answers >= 2 {
        out.push(format!("{vague_answers} vague or evasive answers"));
    }
    out
}

fn question_text<'a>(job: &'a Job, id: &'a str) -> &'a str {
    job.questions
        .iter()
        .find(|q| q.id == id)
        .map_or(id, |q| q.text.as_str())
}

fn next_step(card: &scoring::Scorecard, job: &Job) -> String {
    if let Some(k) = card.knockouts.iter().find(|k| k.asked && !k.passed) {
        return format!(
            "Do not advance: the candidate did not meet the knockout \"{}\" ({}).",
            k.fail_if, k.detail
        );
    }
    // The weakest assessed dimensions are what a next round should probe.
    let mut assessed: Vec<&DimensionScore> =
        card.dimensions.iter().filter(|d| d.assessed).collect();
    assessed.sort_by(|a, b| a.score.total_cmp(&b.score));
    let focus: Vec<&str> = assessed.iter().take(2).map(|d| d.name.as_str()).collect();
    let focus = if focus.is_empty() {
        "the unassessed areas".to_string()
    } else {
        focus.join(" and ")
    };
    match card.recommendation {
        Recommendation::StrongYes => {
            format!("Advance to the technical round with priority; use it to confirm {focus}.")
        }
        Recommendation::Yes => {
            format!("Advance to the technical round, probing {focus} more deeply.")
        }
        Recommendation::Maybe => format!(
            "Have a recruiter review the transcript before deciding; the open questions are {focus}."
        ),
        Recommendation::No => format!(
            "Do not advance: the composite score {} is below the maybe threshold of {}.",
            card.overall_score, job.thresholds.maybe
        ),
    }
}
