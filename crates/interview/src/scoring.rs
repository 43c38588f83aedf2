//! Scoring: from a finished transcript and the judge's per-answer assessments to dimension
//! scores, knockout and competency verdicts, skill scores, coverage and a recommendation.
//!
//! Everything here is a pure function of its inputs, iterated in job and transcript order and
//! never through a hash map, so the same inputs always give the same numbers (bit for bit).
//!
//! # Formulas
//! Per answer the judge gives specificity `s` (0-1), area coverage, depth `d` on the ladder
//! (none 0, surface 1/3, working 2/3, deep 1) and vague/evasive flags. Scores are then built
//! from *groups*: all answers to one question (the question itself, its adaptive follow-ups,
//! and for a blueprint its pre-written follow-ups).
//!
//! * Group specificity `S = (max s + mean s) / 2`: the best moment counts, but needing to be
//!   prodded for it costs something.
//! * Group coverage `C` = areas covered in any answer / areas of the question.
//! * Group depth `D` = the deepest rung reached.
//! * Group penalty `P = 1 - 0.4 * vague share - 0.6 * evasive share` (an answer counts once,
//!   as evasive if both): an all-vague question keeps 60 %, an all-evasive one 40 %.
//! * Question score `Q = 10 * (0.4 S + 0.3 C + 0.3 D) * P` (0-10).
//!
//! Dimensions, by their [`DimensionBasis`]:
//! * `questions`: mean `Q` over the asked questions and blueprints mapped to it.
//! * `all_answers`: mean over every answered question group of `10 * (0.6 D + 0.4 S) * P`.
//! * `communication`: mean over non-knockout answers of
//!   `10 * (0.30 fluency + 0.25 structure + 0.20 substance + 0.25 s)`, halved for an evasive
//!   answer, where fluency `= max(0, 1 - 8 * filler share)`, structure is half "sentences of
//!   6-35 words" and half "uses connectives such as because/for example/as a result", and
//!   substance is 1 for 12-250 words, less for terse or rambling answers.
//! * `blueprints`: mean over asked blueprints of `10 * (0.5 C + 0.3 D + 0.2 F) * P`, with `F`
//!   the share of its pre-written follow-ups that were answered.
//!
//! A dimension none of whose sources was asked is *not assessed* and left out of the
//! composite, whose weights are renormalised over the assessed dimensions (a call cut short
//! does not count unasked questions as failures; the risks list names the gap).
//!
//! Composite `= 10 * sum(weight * score) / sum(weight)` plus a bonus of 2 points per
//! demonstrated preferred skill (at most 5), capped at 100, rounded to one decimal.
//!
//! Recommendation: by [`Thresholds`](crate::job::Thresholds); any failed knockout forces `no`;
//! an unasked knockout or a failed must-have competency caps it at `maybe`.
//!
//! Skills: an answer is evidence of a skill when its text contains one of the skill's keywords
//! (whole words, plural `s`, or as a prefix for keywords of 5+ characters) or the judge named
//! a matching technology. Words are cut as the judge cuts them, so "node.js", "c#", "c++",
//! ".net" and "ci/cd" are one word each: the keyword "node" does not find "node.js". Per matching answer `a = (0.45 s + 0.40 d + 0.15 min(hits, 3)/3)`,
//! times 0.6 when vague, 0.4 when evasive; the skill scores `10 * (0.9 best + 0.1 second)`, so a
//! second answer that corroborates the best one adds a little.
//! A preferred skill is demonstrated by a matching answer with `s >= 0.4` that is neither
//! vague nor evasive. A competency passes on a matching answer with `s >= 0.5`, depth at least
//! working, neither vague nor evasive.
//!
//! Monotonic by construction: every score rises with specificity, coverage and depth and falls
//! with vagueness and evasion.

use serde::{Deserialize, Serialize};

use crate::job::{Blueprint, DimensionBasis, Item, Job, KnockoutRule, Question, Skill};
use crate::transcript::{Speaker, Transcript, Turn, TurnKind};
use crate::words::word_spans;

/// Bonus points on the 0-100 composite per demonstrated preferred skill.
const PREFERRED_BONUS: f64 = 2.0;
/// Most bonus points preferred skills can add in total.
const PREFERRED_BONUS_CAP: f64 = 5.0;
/// Evidence quotes kept per dimension, skill or competency.
const QUOTES_PER_ITEM: usize = 2;
/// Longest quote in words; longer sentences are cut into windows of this size.
const MAX_QUOTE_WORDS: usize = 40;

/// A rung on the surface/working/deep ladder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Depth {
    /// No real content on the subject.
    #[default]
    None,
    /// Knows the words (e.g. "I'd add an index").
    Surface,
    /// Uses it independently (e.g. reads a query plan, adds the right composite index).
    Working,
    /// Owns it: trade-offs, failure modes, reasoning beyond the textbook.
    Deep,
}

impl Depth {
    /// The rung as a fraction: none 0, surface 1/3, working 2/3, deep 1.
    pub fn value(self) -> f64 {
        match self {
            Depth::None => 0.0,
            Depth::Surface => 1.0 / 3.0,
            Depth::Working => 2.0 / 3.0,
            Depth::Deep => 1.0,
        }
    }
}

/// The judge's reading of one candidate answer: the interviewer's judge produces these, the
/// scorer consumes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerAssessment {
    /// Index of the candidate turn in the transcript.
    pub turn_index: usize,
    /// Job item answered: a question, blueprint, blueprint follow-up, knockout or skill id.
    /// Answers to adaptive follow-ups carry their parent question's id.
    pub question_id: String,
    /// Concrete past work, numbers, named technologies: 0 (generic) to 1 (very specific).
    pub specificity: f32,
    /// Each knowledge area of the question and whether the answer covered it.
    pub coverage: Vec<(String, bool)>,
    /// How deep the answer went.
    pub depth: Depth,
    /// Talks around the subject without committing to anything concrete.
    pub vague: bool,
    /// Avoids the question ("I'd rather not say", changes the subject).
    pub evasive: bool,
    /// Technologies the candidate named, as said.
    pub named_technologies: Vec<String>,
    /// Numbers and measurements the candidate gave, as said ("40%", "2 million").
    pub numbers: Vec<String>,
    /// Years of experience the candidate claimed, for `min_years` knockouts.
    pub years_claimed: Option<f32>,
    /// A clear yes (true) or no (false), for `must_confirm` knockouts.
    pub affirmative: Option<bool>,
}

/// The hiring recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recommendation {
    /// Below the `maybe` threshold, or a knockout failed.
    No,
    /// Worth a human look.
    Maybe,
    /// Advance.
    Yes,
    /// Advance with priority.
    StrongYes,
}

impl Recommendation {
    /// Every recommendation, strongest first.
    pub const ALL: [Recommendation; 4] = [
        Recommendation::StrongYes,
        Recommendation::Yes,
        Recommendation::Maybe,
        Recommendation::No,
    ];

    /// The label used in JSON, e.g. `strong_yes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Recommendation::No => "no",
            Recommendation::Maybe => "maybe",
            Recommendation::Yes => "yes",
            Recommendation::StrongYes => "strong_yes",
        }
    }
}

/// A verbatim quote from a candidate turn, with where it was said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Exact substring of the candidate turn's text.
    pub quote: String,
    /// Index of the turn in the transcript.
    pub turn: usize,
    /// Estimated start of the quote on the call clock (by its position within the turn).
    pub start_ms: u64,
    /// Estimated end of the quote on the call clock.
    pub end_ms: u64,
}

/// Score of one rubric dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimensionScore {
    /// Dimension id.
    pub id: String,
    /// Dimension name.
    pub name: String,
    /// Weight in percent.
    pub weight: u32,
    /// Whether anything in the interview could score it.
    pub assessed: bool,
    /// 0-10, one decimal; 0 when not assessed.
    pub score: f64,
    /// How the score came about, in one sentence.
    pub rationale: String,
    /// The quotes the score rests on.
    pub evidence: Vec<Evidence>,
}

/// Verdict on one knockout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnockoutResult {
    /// Knockout id.
    pub id: String,
    /// The question.
    pub question: String,
    /// The fail rule in words.
    pub fail_if: String,
    /// Whether the interviewer asked it.
    pub asked: bool,
    /// Whether the candidate met it; a knockout failed when it was asked and not passed.
    pub passed: bool,
    /// What decided it.
    pub detail: String,
    /// The candidate's words.
    pub evidence: Vec<Evidence>,
}

/// Verdict on one must-have competency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompetencyResult {
    /// Competency id.
    pub id: String,
    /// Competency name.
    pub name: String,
    /// Whether a specific, deep enough answer showed it.
    pub passed: bool,
    /// The candidate's words.
    pub evidence: Vec<Evidence>,
}

/// Score of one required skill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkillScore {
    /// Skill id.
    pub id: String,
    /// Skill name.
    pub name: String,
    /// 0-10, one decimal.
    pub score: f64,
    /// The candidate's words.
    pub evidence: Vec<Evidence>,
}

/// Verdict on one preferred skill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferredSkillResult {
    /// Skill id.
    pub id: String,
    /// Skill name.
    pub name: String,
    /// Whether a specific answer showed it.
    pub demonstrated: bool,
    /// The candidate's words.
    pub evidence: Vec<Evidence>,
}

/// What a coverage row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// A custom question.
    Question,
    /// A blueprint with its pre-written follow-ups.
    Blueprint,
}

/// How far one question got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionCoverage {
    /// Question or blueprint id.
    pub question_id: String,
    /// The question as asked.
    pub text: String,
    /// Custom question or blueprint.
    pub kind: QuestionKind,
    /// Whether the interviewer asked it.
    pub asked: bool,
    /// Whether the candidate answered at all.
    pub answered: bool,
    /// Follow-ups asked (adaptive or pre-written).
    pub follow_ups: usize,
    /// Knowledge areas covered in any answer, in job order.
    pub areas_covered: Vec<String>,
    /// Knowledge areas never covered, in job order.
    pub areas_missed: Vec<String>,
    /// Deepest rung reached.
    pub depth: Depth,
    /// Question score `Q` (0-10, one decimal; see the module docs).
    pub score: f64,
}

/// Everything the scorer decides about one interview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scorecard {
    /// Weighted composite, 0-100, one decimal.
    pub overall_score: f64,
    /// The recommendation.
    pub recommendation: Recommendation,
    /// Why, in one sentence.
    pub recommendation_reason: String,
    /// One entry per rubric dimension, in rubric order.
    pub dimensions: Vec<DimensionScore>,
    /// One entry per knockout, in job order.
    pub knockouts: Vec<KnockoutResult>,
    /// One entry per must-have competency.
    pub competencies: Vec<CompetencyResult>,
    /// One entry per required skill.
    pub required_skills: Vec<SkillScore>,
    /// One entry per preferred skill.
    pub preferred_skills: Vec<PreferredSkillResult>,
    /// One entry per custom question, then per blueprint.
    pub coverage: Vec<QuestionCoverage>,
}

/// Assessments that do not fit the transcript they claim to assess.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScoringError {
    /// An assessment points past the end of the transcript.
    #[error(
        "assessment for turn {turn_index} ({question_id}) points past the transcript's {turns} \
         turns; assessments must come from the same transcript"
    )]
    TurnOutOfRange {
        /// The index given.
        turn_index: usize,
        /// The question it claims to answer.
        question_id: String,
        /// Turns in the transcript.
        turns: usize,
    },
    /// An assessment points at an interviewer turn.
    #[error(
        "assessment for turn {turn_index} points at an interviewer turn; only candidate answers are assessed"
    )]
    NotAnAnswer {
        /// The index given.
        turn_index: usize,
    },
    /// Two assessments for the same turn would count the answer twice.
    #[error("turn {turn_index} is assessed twice; give one assessment per candidate turn")]
    DuplicateAssessment {
        /// The index given twice.
        turn_index: usize,
    },
}

/// Scores an interview. Fails only when the assessments do not fit the transcript.
pub fn score(
    job: &Job,
    transcript: &Transcript,
    assessments: &[AnswerAssessment],
) -> Result<Scorecard, ScoringError> {
    let answers = Answers::new(transcript, assessments)?;

    let question_groups: Vec<Group> = job
        .questions
        .iter()
        .map(|q| Group::question(q, transcript, &answers))
        .collect();
    let blueprint_groups: Vec<Group> = job
        .blueprints
        .iter()
        .map(|b| Group::blueprint(b, transcript, &answers))
        .collect();

    let knockouts: Vec<KnockoutResult> = job
        .knockouts
        .iter()
        .map(|k| knockout(k, transcript, &answers))
        .collect();
    // Answers about the subject matter; knockout answers ("yes", "five years") and answers to
    // ids the job does not know (a greeting, the candidate's own questions) are left out.
    let technical: Vec<&Answer> = answers
        .all
        .iter()
        .filter(|a| {
            matches!(
                job.item(&a.assessment.question_id),
                Some(
                    Item::Question(_)
                        | Item::Blueprint(_)
                        | Item::BlueprintFollowUp { .. }
                        | Item::RequiredSkill(_)
                        | Item::PreferredSkill(_)
                        | Item::Competency(_)
                )
            )
        })
        .collect();

    let dimensions: Vec<DimensionScore> = job
        .dimensions
        .iter()
        .map(|d| {
            let (score, rationale, evidence) = match d.basis {
                DimensionBasis::Questions => {
                    let mapped: Vec<&Group> = question_groups
                        .iter()
                        .filter(|g| g.dimension.as_deref() == Some(d.id.as_str()))
                        .chain(
                            blueprint_groups
                                .iter()
                                .filter(|g| g.dimension.as_deref() == Some(d.id.as_str())),
                        )
                        .collect();
                    questions_dimension(&mapped)
                }
                DimensionBasis::AllAnswers => {
                    let groups: Vec<&Group> =
                        question_groups.iter().chain(&blueprint_groups).collect();
                    depth_dimension(&groups, job, &technical)
                }
                DimensionBasis::Communication => communication_dimension(&technical),
                DimensionBasis::Blueprints => blueprint_dimension(&blueprint_groups),
            };
            DimensionScore {
                id: d.id.clone(),
                name: d.name.clone(),
                weight: d.weight,
                assessed: score.is_some(),
                score: round1(score.unwrap_or(0.0)),
                rationale,
                evidence,
            }
        })
        .collect();

    let competencies: Vec<CompetencyResult> = job
        .competencies
        .iter()
        .map(|c| {
            let matching = matching_answers(&c.keywords, &technical);
            let passed = matching.iter().any(|(a, _)| {
                let x = &a.assessment;
                specificity(x) >= 0.5 && x.depth >= Depth::Working && !x.vague && !x.evasive
            });
            CompetencyResult {
                id: c.id.clone(),
                name: c.name.clone(),
                passed,
                evidence: keyword_evidence(&matching, &c.keywords),
            }
        })
        .collect();

    let required_skills: Vec<SkillScore> = job
        .required_skills
        .iter()
        .map(|s| required_skill(s, &technical))
        .collect();
    let preferred_skills: Vec<PreferredSkillResult> = job
        .preferred_skills
        .iter()
        .map(|s| {
            let matching = matching_answers(&s.keywords, &technical);
            let demonstrated = matching.iter().any(|(a, _)| {
                let x = &a.assessment;
                specificity(x) >= 0.4 && !x.vague && !x.evasive
            });
            PreferredSkillResult {
                id: s.id.clone(),
                name: s.name.clone(),
                demonstrated,
                evidence: keyword_evidence(&matching, &s.keywords),
            }
        })
        .collect();

    let coverage: Vec<QuestionCoverage> = question_groups
        .iter()
        .chain(&blueprint_groups)
        .map(Group::coverage)
        .collect();

    let (weighted, weights) = dimensions
        .iter()
        .filter(|d| d.assessed)
        .fold((0.0, 0.0), |(sum, w), d| {
            (sum + f64::from(d.weight) * d.score, w + f64::from(d.weight))
        });
    let base = if weights > 0.0 {
        10.0 * weighted / weights
    } else {
        0.0
    };
    let demonstrated = preferred_skills.iter().filter(|p| p.demonstrated).count() as f64;
    let bonus = (PREFERRED_BONUS * demonstrated).min(PREFERRED_BONUS_CAP);
    let overall_score = round1((base + bonus).min(100.0));

    let (recommendation, recommendation_reason) =
        recommend(job, overall_score, &knockouts, &competencies);

    Ok(Scorecard {
        overall_score,
        recommendation,
        recommendation_reason,
        dimensions,
        knockouts,
        competencies,
        required_skills,
        preferred_skills,
        coverage,
    })
}

fn recommend(
    job: &Job,
    overall: f64,
    knockouts: &[KnockoutResult],
    competencies: &[CompetencyResult],
) -> (Recommendation, String) {
    if let Some(failed) = knockouts.iter().find(|k| k.asked && !k.passed) {
        return (
            Recommendation::No,
            format!(
                "Knockout \"{}\" failed: {} ({}).",
                failed.id, failed.fail_if, failed.detail
            ),
        );
    }
    let t = job.thresholds;
    let by_score = if overall >= f64::from(t.strong_yes) {
        Recommendation::StrongYes
    } else if overall >= f64::from(t.yes) {
        Recommendation::Yes
    } else if overall >= f64::from(t.maybe) {
        Recommendation::Maybe
    } else {
        Recommendation::No
    };
    let mut reason = format!(
        "Composite {overall}/100 against thresholds strong_yes {}, yes {}, maybe {}.",
        t.strong_yes, t.yes, t.maybe
    );
    let unasked: Vec<&str> = knockouts
        .iter()
        .filter(|k| !k.asked)
        .map(|k| k.id.as_str())
        .collect();
    let failed: Vec<&str> = competencies
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.id.as_str())
        .collect();
    if by_score > Recommendation::Maybe && !(unasked.is_empty() && failed.is_empty()) {
        if !unasked.is_empty() {
            reason.push_str(&format!(
                " Capped at maybe: knockouts not asked ({}).",
                unasked.join(", ")
            ));
        }
        if !failed.is_empty() {
            reason.push_str(&format!(
                " Capped at maybe: must-have competencies not shown ({}).",
                failed.join(", ")
            ));
        }
        return (Recommendation::Maybe, reason);
    }
    (by_score, reason)
}

/// An assessed answer: its first turn and the turns that went on with it
/// ([`Transcript::continued_answer`]), judged as one.
struct Answer<'a> {
    index: usize,
    /// The turns, each with its index, the first first.
    parts: Vec<(usize, &'a Turn)>,
    /// The words of all its turns.
    text: String,
    assessment: &'a AnswerAssessment,
}

/// The assessments, checked against the transcript and in transcript order.
struct Answers<'a> {
    all: Vec<Answer<'a>>,
}

impl<'a> Answers<'a> {
    fn new(
        transcript: &'a Transcript,
        assessments: &'a [AnswerAssessment],
    ) -> Result<Answers<'a>, ScoringError> {
        let mut all: Vec<Answer<'a>> = Vec::with_capacity(assessments.len());
        for assessment in assessments {
            let index = assessment.turn_index;
            let turn = transcript
                .turns
                .get(index)
                .ok_or_else(|| ScoringError::TurnOutOfRange {
                    turn_index: index,
                    question_id: assessment.question_id.clone(),
                    turns: transcript.turns.len(),
                })?;
            if turn.speaker != Speaker::Candidate {
                return Err(ScoringError::NotAnAnswer { turn_index: index });
            }
            if all.iter().any(|a| a.index == index) {
                return Err(ScoringError::DuplicateAssessment { turn_index: index });
            }
            let mut parts = vec![(index, turn)];
            for (next, later) in transcript.turns.iter().enumerate().skip(index + 1) {
                match transcript.continued_answer(next) {
                    Some(before) if parts.last().is_some_and(|&(last, _)| last == before) => {
                        parts.push((next, later));
                    }
                    _ if later.speaker == Speaker::Candidate => break,
                    _ => {}
                }
            }
            let text = parts
                .iter()
                .map(|(_, part)| part.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            all.push(Answer {
                index,
                parts,
                text,
                assessment,
            });
        }
        all.sort_by_key(|a| a.index);
        Ok(Answers { all })
    }

    fn for_ids(&self, ids: &[&str]) -> Vec<&Answer<'a>> {
        self.all
            .iter()
            .filter(|a| ids.contains(&a.assessment.question_id.as_str()))
            .collect()
    }
}

/// Specificity clamped to 0-1 (a NaN from a broken judge counts as 0).
fn specificity(a: &AnswerAssessment) -> f64 {
    let s = f64::from(a.specificity);
    if s.is_nan() { 0.0 } else { s.clamp(0.0, 1.0) }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// All answers to one question or blueprint, with what the transcript says about it.
struct Group<'a> {
    id: &'a str,
    text: &'a str,
    kind: QuestionKind,
    dimension: Option<String>,
    areas: &'a [String],
    depth_cues: Vec<&'a str>,
    asked: bool,
    answered: bool,
    follow_ups: usize,
    /// Pre-written follow-ups of a blueprint, and how many got an answer.
    prewritten: (usize, usize),
    answers: Vec<&'a Answer<'a>>,
}

impl<'a> Group<'a> {
    fn question(
        question: &'a Question,
        transcript: &Transcript,
        answers: &'a Answers<'a>,
    ) -> Group<'a> {
        let ids = [question.id.as_str()];
        Group {
            id: &question.id,
            text: &question.text,
            kind: QuestionKind::Question,
            dimension: Some(question.dimension.clone()),
            areas: &question.areas,
            depth_cues: cues(&question.depth),
            asked: asked(transcript, &ids),
            answered: answered(transcript, &ids),
            follow_ups: count_turns(transcript, &ids, TurnKind::FollowUp),
            prewritten: (0, 0),
            answers: answers.for_ids(&ids),
        }
    }

    fn blueprint(
        blueprint: &'a Blueprint,
        transcript: &Transcript,
        answers: &'a Answers<'a>,
    ) -> Group<'a> {
        let ids: Vec<&str> = std::iter::once(blueprint.id.as_str())
            .chain(blueprint.follow_ups.iter().map(|f| f.id.as_str()))
            .collect();
        let prewritten_answered = blueprint
            .follow_ups
            .iter()
            .filter(|f| answered(transcript, &[f.id.as_str()]))
            .count();
        Group {
            id: &blueprint.id,
            text: &blueprint.text,
            kind: QuestionKind::Blueprint,
            dimension: blueprint.dimension.clone(),
            areas: &blueprint.areas,
            depth_cues: cues(&blueprint.depth),
            asked: asked(transcript, &ids[..1]),
            answered: answered(transcript, &ids),
            follow_ups: count_turns(transcript, &ids, TurnKind::FollowUp)
                + count_turns(transcript, &ids, TurnKind::BlueprintFollowUp),
            prewritten: (blueprint.follow_ups.len(), prewritten_answered),
            answers: answers.for_ids(&ids),
        }
    }

    /// `S`, or 0 with no answers.
    fn specificity(&self) -> f64 {
        let values: Vec<f64> = self
            .answers
            .iter()
            .map(|a| specificity(a.assessment))
            .collect();
        let max = values.iter().copied().fold(0.0, f64::max);
        (max + mean(values).unwrap_or(0.0)) / 2.0
    }

    fn covered(&self) -> Vec<bool> {
        self.areas
            .iter()
            .map(|area| {
                self.answers.iter().any(|a| {
                    a.assessment.coverage.iter().any(|(name, covered)| {
                        *covered && name.trim().eq_ignore_ascii_case(area.trim())
                    })
                })
            })
            .collect()
    }

    /// `C`.
    fn coverage_share(&self) -> f64 {
        let covered = self.covered();
        if covered.is_empty() {
            0.0
        } else {
            covered.iter().filter(|&&c| c).count() as f64 / covered.len() as f64
        }
    }

    /// `D`.
    fn depth(&self) -> Depth {
        self.answers
            .iter()
            .map(|a| a.assessment.depth)
            .max()
            .unwrap_or_default()
    }

    /// `P`.
    fn penalty(&self) -> f64 {
        if self.answers.is_empty() {
            return 1.0;
        }
        let n = self.answers.len() as f64;
        let evasive = self.answers.iter().filter(|a| a.assessment.evasive).count() as f64;
        let vague = self
            .answers
            .iter()
            .filter(|a| a.assessment.vague && !a.assessment.evasive)
            .count() as f64;
        1.0 - 0.4 * vague / n - 0.6 * evasive / n
    }

    fn vague_or_evasive(&self) -> usize {
        self.answers
            .iter()
            .filter(|a| a.assessment.vague || a.assessment.evasive)
            .count()
    }

    /// `Q`.
    fn score(&self) -> f64 {
        if self.answers.is_empty() {
            return 0.0;
        }
        10.0 * (0.4 * self.specificity() + 0.3 * self.coverage_share() + 0.3 * self.depth().value())
            * self.penalty()
    }

    fn coverage(&self) -> QuestionCoverage {
        let covered = self.covered();
        let pick = |want: bool| {
            self.areas
                .iter()
                .zip(&covered)
                .filter(|(_, c)| **c == want)
                .map(|(a, _)| a.clone())
                .collect()
        };
        QuestionCoverage {
            question_id: self.id.to_string(),
            text: self.text.to_string(),
            kind: self.kind,
            asked: self.asked,
            answered: self.answered,
            follow_ups: self.follow_ups,
            areas_covered: pick(true),
            areas_missed: pick(false),
            depth: self.depth(),
            score: round1(self.score()),
        }
    }

    /// Words that make a sentence of this group good evidence: its areas and depth cues.
    fn hints(&self) -> Vec<&'a str> {
        self.areas
            .iter()
            .map(String::as_str)
            .chain(self.depth_cues.iter().copied())
            .collect()
    }
}

fn cues(depth: &crate::job::DepthCues) -> Vec<&str> {
    depth
        .working
        .iter()
        .chain(&depth.deep)
        .map(String::as_str)
        .collect()
}

fn asked(transcript: &Transcript, ids: &[&str]) -> bool {
    transcript.turns.iter().any(|t| {
        t.speaker == Speaker::Interviewer
            && matches!(t.kind, TurnKind::Question | TurnKind::Knockout)
            && t.question_id.as_deref().is_some_and(|id| ids.contains(&id))
    })
}

fn answered(transcript: &Transcript, ids: &[&str]) -> bool {
    transcript.turns.iter().any(|t| {
        t.speaker == Speaker::Candidate
            && !t.text.trim().is_empty()
            && t.question_id.as_deref().is_some_and(|id| ids.contains(&id))
    })
}

fn count_turns(transcript: &Transcript, ids: &[&str], kind: TurnKind) -> usize {
    transcript
        .turns
        .iter()
        .filter(|t| t.kind == kind && t.question_id.as_deref().is_some_and(|id| ids.contains(&id)))
        .count()
}

fn questions_dimension(groups: &[&Group]) -> (Option<f64>, String, Vec<Evidence>) {
    let asked: Vec<&&Group> = groups
        .iter()
        .filter(|g| g.asked || !g.answers.is_empty())
        .collect();
    if asked.is_empty() {
        return (
            None,
            "Not assessed: none of its questions was asked.".to_string(),
            Vec::new(),
        );
    }
    let score = mean(asked.iter().map(|g| g.score()));
    let answered = asked.iter().filter(|g| !g.answers.is_empty()).count();
    let (covered, total) = asked.iter().fold((0, 0), |(c, t), g| {
        let cov = g.covered();
        (c + cov.iter().filter(|&&x| x).count(), t + cov.len())
    });
    let depth = asked.iter().map(|g| g.depth()).max().unwrap_or_default();
    let weak: usize = asked.iter().map(|g| g.vague_or_evasive()).sum();
    let missed: Vec<String> = asked
        .iter()
        .flat_map(|g| g.coverage().areas_missed)
        .collect();
    let mut rationale = format!(
        "{answered} of {} question(s) answered; covered {covered} of {total} knowledge areas; \
         deepest answer {}",
        asked.len(),
        depth_label(depth)
    );
    if weak > 0 {
        rationale.push_str(&format!("; {weak} vague or evasive answer(s)"));
    }
    if !missed.is_empty() {
        rationale.push_str(&format!("; missed: {}", missed.join("; ")));
    }
    rationale.push('.');
    let answers: Vec<(&Answer, Vec<&str>)> = asked
        .iter()
        .flat_map(|g| g.answers.iter().map(|a| (*a, g.hints())))
        .collect();
    (score, rationale, best_evidence(&answers, false))
}

fn depth_dimension(
    groups: &[&Group],
    job: &Job,
    technical: &[&Answer],
) -> (Option<f64>, String, Vec<Evidence>) {
    // Answers to skill questions form groups of their own, by id.
    let mut extra_ids: Vec<&str> = Vec::new();
    for a in technical {
        let id = a.assessment.question_id.as_str();
        let in_groups = groups.iter().any(|g| {
            g.id == id
                || matches!(job.item(id), Some(Item::BlueprintFollowUp { blueprint, .. }) if blueprint.id == g.id)
        });
        if !in_groups && !extra_ids.contains(&id) {
            extra_ids.push(id);
        }
    }
    let mut per_group: Vec<(f64, Depth)> = groups
        .iter()
        .filter(|g| !g.answers.is_empty())
        .map(|g| {
            (
                10.0 * (0.6 * g.depth().value() + 0.4 * g.specificity()) * g.penalty(),
                g.depth(),
            )
        })
        .collect();
    for id in &extra_ids {
        let answers: Vec<&&Answer> = technical
            .iter()
            .filter(|a| a.assessment.question_id == *id)
            .collect();
        let group = Group {
            id,
            text: "",
            kind: QuestionKind::Question,
            dimension: None,
            areas: &[],
            depth_cues: Vec::new(),
            asked: true,
            answered: true,
            follow_ups: 0,
            prewritten: (0, 0),
            answers: answers.into_iter().copied().collect(),
        };
        per_group.push((
            10.0 * (0.6 * group.depth().value() + 0.4 * group.specificity()) * group.penalty(),
            group.depth(),
        ));
    }
    if per_group.is_empty() {
        return (
            None,
            "Not assessed: no technical question was answered.".to_string(),
            Vec::new(),
        );
    }
    let count = |d: Depth| per_group.iter().filter(|(_, x)| *x == d).count();
    let rationale = format!(
        "Across {} answered question(s): {} deep, {} working, {} surface, {} without depth; mean \
         specificity {:.2}.",
        per_group.len(),
        count(Depth::Deep),
        count(Depth::Working),
        count(Depth::Surface),
        count(Depth::None),
        mean(technical.iter().map(|a| specificity(a.assessment))).unwrap_or(0.0)
    );
    // Evidence from the deepest answers.
    let deepest = technical
        .iter()
        .map(|a| a.assessment.depth)
        .max()
        .unwrap_or_default();
    let answers: Vec<(&Answer, Vec<&str>)> = technical
        .iter()
        .filter(|a| a.assessment.depth == deepest)
        .map(|a| (*a, group_hints(job, &a.assessment.question_id)))
        .collect();
    (
        mean(per_group.iter().map(|(s, _)| *s)),
        rationale,
        best_evidence(&answers, false),
    )
}

fn group_hints<'a>(job: &'a Job, id: &str) -> Vec<&'a str> {
    let (areas, depth) = match job.item(id) {
        Some(Item::Question(q)) => (&q.areas, &q.depth),
        Some(Item::Blueprint(b)) | Some(Item::BlueprintFollowUp { blueprint: b, .. }) => {
            (&b.areas, &b.depth)
        }
        Some(Item::RequiredSkill(s)) | Some(Item::PreferredSkill(s)) => {
            return s.keywords.iter().map(String::as_str).collect();
        }
        _ => return Vec::new(),
    };
    areas
        .iter()
        .map(String::as_str)
        .chain(cues(depth))
        .collect()
}

const FILLERS: [&str; 10] = [
    "um",
    "uh",
    "erm",
    "er",
    "uhm",
    "hmm",
    "basically",
    "you know",
    "i mean",
    "kind of",
];
const CONNECTIVES: [&str; 12] = [
    "because",
    "so that",
    "which meant",
    "for example",
    "for instance",
    "as a result",
    "instead",
    "first",
    "then",
    "trade-off",
    "tradeoff",
    "but",
];

/// Communication quality of one answer, 0-1 (see the module docs).
fn communication_of(text: &str, a: &AnswerAssessment) -> f64 {
    let words = word_spans(text);
    if words.is_empty() {
        return 0.0;
    }
    let lower = text.to_lowercase();
    let fillers = FILLERS
        .iter()
        .map(|f| count_phrase(&lower, f))
        .sum::<usize>() as f64;
    let fluency = (1.0 - 8.0 * fillers / words.len() as f64).max(0.0);
    let sentences = sentences(text);
    let per_sentence = words.len() as f64 / sentences.len().max(1) as f64;
    let sentence_ok = if (6.0..=35.0).contains(&per_sentence) {
        1.0
    } else if per_sentence < 6.0 {
        per_sentence / 6.0
    } else {
        (35.0 / per_sentence).max(0.3)
    };
    let connectives = CONNECTIVES
        .iter()
        .filter(|c| count_phrase(&lower, c) > 0)
        .count() as f64;
    let structure = 0.5 * sentence_ok + 0.5 * (connectives / 2.0).min(1.0);
    let n = words.len() as f64;
    let substance = if n < 12.0 {
        n / 12.0
    } else if n <= 250.0 {
        1.0
    } else {
        (1.0 - (n - 250.0) / 500.0).max(0.5)
    };
    let quality = 0.30 * fluency + 0.25 * structure + 0.20 * substance + 0.25 * specificity(a);
    if a.evasive { quality * 0.5 } else { quality }
}

fn communication_dimension(technical: &[&Answer]) -> (Option<f64>, String, Vec<Evidence>) {
    if technical.is_empty() {
        return (
            None,
            "Not assessed: no answers beyond the knockouts.".to_string(),
            Vec::new(),
        );
    }
    let score = mean(
        technical
            .iter()
            .map(|a| 10.0 * communication_of(&a.text, a.assessment)),
    );
    let (words_total, fillers) = technical.iter().fold((0usize, 0usize), |(w, f), a| {
        let lower = a.text.to_lowercase();
        (
            w + word_spans(&a.text).len(),
            f + FILLERS
                .iter()
                .map(|x| count_phrase(&lower, x))
                .sum::<usize>(),
        )
    });
    let sentence_count: usize = technical.iter().map(|a| sentences(&a.text).len()).sum();
    let evasive = technical.iter().filter(|a| a.assessment.evasive).count();
    let mut rationale = format!(
        "{} answer(s), {words_total} words; filler words {:.1}%; {:.0} words per sentence on average",
        technical.len(),
        100.0 * fillers as f64 / words_total.max(1) as f64,
        words_total as f64 / sentence_count.max(1) as f64
    );
    if evasive > 0 {
        rationale.push_str(&format!("; {evasive} evasive answer(s)"));
    }
    rationale.push('.');
    let answers: Vec<(&Answer, Vec<&str>)> = technical
        .iter()
        .map(|a| (*a, CONNECTIVES.to_vec()))
        .collect();
    (score, rationale, best_evidence(&answers, false))
}

fn blueprint_dimension(groups: &[Group]) -> (Option<f64>, String, Vec<Evidence>) {
    let asked: Vec<&Group> = groups
        .iter()
        .filter(|g| g.asked || !g.answers.is_empty())
        .collect();
    if asked.is_empty() {
        return (
            None,
            "Not assessed: no blueprint question was asked.".to_string(),
            Vec::new(),
        );
    }
    let per_blueprint = |g: &Group| {
        if g.answers.is_empty() {
            return 0.0;
        }
        let (total, answered) = g.prewritten;
        let f = if total == 0 {
            1.0
        } else {
            answered as f64 / total as f64
        };
        10.0 * (0.5 * g.coverage_share() + 0.3 * g.depth().value() + 0.2 * f) * g.penalty()
    };
    let (covered, total) = asked.iter().fold((0, 0), |(c, t), g| {
        let cov = g.covered();
        (c + cov.iter().filter(|&&x| x).count(), t + cov.len())
    });
    let (fu_total, fu_answered) = asked
        .iter()
        .fold((0, 0), |(t, a), g| (t + g.prewritten.0, a + g.prewritten.1));
    let rationale = format!(
        "{} of {} blueprint(s) asked; covered {covered} of {total} knowledge areas; {fu_answered} \
         of {fu_total} pre-written follow-ups answered.",
        asked.len(),
        groups.len()
    );
    let answers: Vec<(&Answer, Vec<&str>)> = asked
        .iter()
        .flat_map(|g| g.answers.iter().map(|a| (*a, g.hints())))
        .collect();
    (
        mean(asked.iter().map(|g| per_blueprint(g))),
        rationale,
        best_evidence(&answers, false),
    )
}

fn knockout(
    k: &crate::job::Knockout,
    transcript: &Transcript,
    answers: &Answers,
) -> KnockoutResult {
    let ids = [k.id.as_str()];
    let was_asked = asked(transcript, &ids);
    let group = answers.for_ids(&ids);
    let (passed, detail, deciding) = match k.rule() {
        KnockoutRule::MinYears(min) => {
            let claim = group
                .iter()
                .rev()
                .find_map(|a| a.assessment.years_claimed.map(|y| (y, *a)));
            match claim {
                Some((years, a)) if years >= min => {
                    (true, format!("stated {years} years, needs {min}"), Some(a))
                }
                Some((years, a)) => (false, format!("stated {years} years, needs {min}"), Some(a)),
                None if group.is_empty() => (false, "no answer".to_string(), None),
                None => (
                    false,
                    "no number of years given".to_string(),
                    group.last().copied(),
                ),
            }
        }
        KnockoutRule::MustConfirm => {
            let said = group
                .iter()
                .rev()
                .find_map(|a| a.assessment.affirmative.map(|y| (y, *a)));
            match said {
                Some((true, a)) => (true, "confirmed".to_string(), Some(a)),
                Some((false, a)) => (false, "said no".to_string(), Some(a)),
                None if group.is_empty() => (false, "no answer".to_string(), None),
                None => (false, "no clear yes".to_string(), group.last().copied()),
            }
        }
    };
    let (passed, detail) = if was_asked || !group.is_empty() {
        (passed, detail)
    } else {
        (false, "not asked".to_string())
    };
    let evidence = deciding
        .map(|a| {
            let hints: Vec<&str> = a
                .assessment
                .numbers
                .iter()
                .map(String::as_str)
                .chain(["year", "yes", "no"])
                .collect();
            best_evidence(&[(a, hints)], false)
                .into_iter()
                .take(1)
                .collect()
        })
        .unwrap_or_default();
    KnockoutResult {
        id: k.id.clone(),
        question: k.question.clone(),
        fail_if: k.fail_if.clone(),
        asked: was_asked || !group.is_empty(),
        passed,
        detail,
        evidence,
    }
}

/// Answers that mention any keyword, with the number of distinct keywords they hit.
fn matching_answers<'a>(
    keywords: &[String],
    technical: &[&'a Answer<'a>],
) -> Vec<(&'a Answer<'a>, usize)> {
    technical
        .iter()
        .filter_map(|a| {
            let lower = a.text.to_lowercase();
            let hits = keywords
                .iter()
                .filter(|k| {
                    let k = k.to_lowercase();
                    mentions(&lower, &k)
                        || a.assessment
                            .named_technologies
                            .iter()
                            .any(|t| mentions(&t.to_lowercase(), &k))
                })
                .count();
            (hits > 0).then_some((*a, hits))
        })
        .collect()
}

fn required_skill(skill: &Skill, technical: &[&Answer]) -> SkillScore {
    let matching = matching_answers(&skill.keywords, technical);
    let mut values: Vec<f64> = matching
        .iter()
        .map(|(a, hits)| {
            let x = a.assessment;
            let raw =
                0.45 * specificity(x) + 0.40 * x.depth.value() + 0.15 * (*hits).min(3) as f64 / 3.0;
            raw * if x.evasive {
                0.4
            } else if x.vague {
                0.6
            } else {
                1.0
            }
        })
        .collect();
    values.sort_by(|a, b| b.total_cmp(a));
    let best = values.first().copied().unwrap_or(0.0);
    let second = values.get(1).copied().unwrap_or(0.0);
    SkillScore {
        id: skill.id.clone(),
        name: skill.name.clone(),
        score: round1(10.0 * (0.9 * best + 0.1 * second)),
        evidence: keyword_evidence(&matching, &skill.keywords),
    }
}

fn keyword_evidence(matching: &[(&Answer, usize)], keywords: &[String]) -> Vec<Evidence> {
    let hints: Vec<&str> = keywords.iter().map(String::as_str).collect();
    let answers: Vec<(&Answer, Vec<&str>)> =
        matching.iter().map(|(a, _)| (*a, hints.clone())).collect();
    best_evidence(&answers, true)
}

fn depth_label(depth: Depth) -> &'static str {
    match depth {
        Depth::None => "without depth",
        Depth::Surface => "at surface level",
        Depth::Working => "at working level",
        Depth::Deep => "deep",
    }
}

/// The best sentences of these answers as evidence: sentences with numbers, named
/// technologies and the hint words (areas, cues, keywords) rank first; ties go to the earlier
/// sentence so the choice is stable. With `require_hint` (skill and competency evidence) only
/// sentences that mention a hint qualify, as long as any does.
fn best_evidence(answers: &[(&Answer, Vec<&str>)], require_hint: bool) -> Vec<Evidence> {
    let mut candidates: Vec<(f64, usize, usize, usize, Evidence)> = Vec::new();
    for (answer, hints) in answers {
        let hint_words = hint_words(hints);
        for &(index, turn) in &answer.parts {
            let text = &turn.text;
            for (start, end) in sentences(text) {
                let sentence = &text[start..end];
                let lower = sentence.to_lowercase();
                let n_words = word_spans(sentence).len();
                let digits = sentence.chars().any(|c| c.is_ascii_digit())
                    || answer
                        .assessment
                        .numbers
                        .iter()
                        .any(|n| !n.is_empty() && sentence.contains(n.as_str()));
                let techs = answer
                    .assessment
                    .named_technologies
                    .iter()
                    .filter(|t| !t.is_empty() && lower.contains(&t.to_lowercase()))
                    .count()
                    .min(2);
                let hits = hint_words
                    .iter()
                    .filter(|w| mentions(&lower, w))
                    .count()
                    .min(3);
                let mut rank = 2.0 * f64::from(u8::from(digits)) + 1.5 * techs as f64 + hits as f64;
                rank *= if n_words < 6 { 0.3 } else { 1.0 };
                rank += specificity(answer.assessment);
                candidates.push((rank, hits, index, start, quote(index, turn, start, end)));
            }
        }
    }
    if require_hint && candidates.iter().any(|c| c.1 > 0) {
        candidates.retain(|c| c.1 > 0);
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.2.cmp(&b.2)).then(a.3.cmp(&b.3)));
    let mut chosen: Vec<Evidence> = Vec::new();
    for (_, _, _, _, evidence) in candidates {
        if chosen.len() == QUOTES_PER_ITEM {
            break;
        }
        // The same sentence said twice is one piece of evidence.
        if !chosen.iter().any(|c| c.quote == evidence.quote) {
            chosen.push(evidence);
        }
    }
    chosen
}

/// Content words (5+ letters) of the hint phrases, lower-case, deduplicated in order.
fn hint_words(hints: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for hint in hints {
        let lower = hint.to_lowercase();
        let phrase_words: Vec<&str> = word_spans(&lower)
            .into_iter()
            .map(|(s, e)| &lower[s..e])
            .collect();
        let candidates: Vec<String> = if phrase_words.len() <= 1 {
            vec![lower.trim().to_string()]
        } else {
            phrase_words
                .iter()
                .filter(|w| w.len() >= 5)
                .map(|w| w.to_string())
                .collect()
        };
        for word in candidates {
            if !word.is_empty() && !out.contains(&word) {
                out.push(word);
            }
        }
    }
    out
}

/// The words `start..end` of the turn at `index` as evidence.
fn quote(index: usize, turn: &Turn, start: usize, end: usize) -> Evidence {
    let len = turn.text.len().max(1) as u64;
    let span = turn.end_ms.saturating_sub(turn.start_ms);
    Evidence {
        quote: turn.text[start..end].to_string(),
        turn: index,
        start_ms: turn.start_ms + span * start as u64 / len,
        end_ms: turn.start_ms + span * end as u64 / len,
    }
}

/// Byte ranges of the sentences of `text`, trimmed, split after `.`, `!` or `?` followed by
/// whitespace; sentences longer than [`MAX_QUOTE_WORDS`] are cut into word windows. Every range
/// is a slice of `text`, so quotes stay verbatim.
fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut raw = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let at_boundary = matches!(c, '.' | '!' | '?')
            && chars.peek().is_none_or(|(_, next)| next.is_whitespace());
        if at_boundary {
            raw.push((start, i + c.len_utf8()));
            start = i + c.len_utf8();
        }
    }
    raw.push((start, text.len()));
    let mut out = Vec::new();
    for (s, e) in raw {
        let words = word_spans(&text[s..e]);
        if words.is_empty() {
            continue;
        }
        for chunk in words.chunks(MAX_QUOTE_WORDS) {
            let first = s + chunk[0].0;
            let last = if chunk.len() == words.len() {
                // The whole sentence: keep its closing punctuation.
                s + text[s..e].trim_end().len()
            } else {
                s + chunk[chunk.len() - 1].1
            };
            out.push((first, last));
        }
    }
    out
}

/// Where the words of a text begin and end, to tell a whole-word match from part of a word.
/// Words are the judge's ([`word_spans`]): "node.js", "c#" and "ci/cd" are one word each, so
/// "node" is not found in "node.js" here either.
struct WordBounds(Vec<(usize, usize)>);

impl WordBounds {
    fn of(text: &str) -> WordBounds {
        WordBounds(word_spans(text))
    }

    fn starts_word(&self, at: usize) -> bool {
        self.0.iter().any(|&(start, _)| start == at)
    }

    fn ends_word(&self, at: usize) -> bool {
        self.0.iter().any(|&(_, end)| end == at)
    }
}

/// Whether `phrase` (lower-case) occurs in `text` (lower-case) starting at the start of a word
/// and ending at the end of one, or followed by a plural `s`/`es` or a possessive `'s` (which
/// the words keep: "api's"), or anywhere when it is a stem of 5+ characters (so "denormaliz"
/// finds "denormalized").
fn mentions(text: &str, phrase: &str) -> bool {
    let phrase = phrase.trim();
    if phrase.is_empty() {
        return false;
    }
    let bounds = WordBounds::of(text);
    let mut from = 0;
    while let Some(pos) = text[from..].find(phrase) {
        let start = from + pos;
        let end = start + phrase.len();
        let rest = &text[end..];
        let after_ok = bounds.ends_word(end)
            || ["s", "es", "'s", "’s"]
                .iter()
                .any(|suffix| rest.starts_with(suffix) && bounds.ends_word(end + suffix.len()))
            || phrase.chars().count() >= 5;
        if bounds.starts_word(start) && after_ok {
            return true;
        }
        from = start + text[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// How often `phrase` occurs in `text` as whole words.
fn count_phrase(text: &str, phrase: &str) -> usize {
    let bounds = WordBounds::of(text);
    let mut count = 0;
    let mut from = 0;
    while let Some(pos) = text[from..].find(phrase) {
        let start = from + pos;
        let end = start + phrase.len();
        if bounds.starts_word(start) && bounds.ends_word(end) {
            count += 1;
        }
        from = end;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slices<'a>(text: &'a str, ranges: &[(usize, usize)]) -> Vec<&'a str> {
        ranges.iter().map(|&(s, e)| &text[s..e]).collect()
    }

    #[test]
    fn sentences_are_verbatim_slices() {
        let text =
            "  We cut p95 from 4.2 s to 120 ms. Why? Because of an index!  And then… ünïcode ok ";
        assert_eq!(
            slices(text, &sentences(text)),
            [
                "We cut p95 from 4.2 s to 120 ms.",
                "Why?",
                "Because of an index!",
                "And then… ünïcode ok"
            ]
        );
        assert!(sentences("   ").is_empty());
    }

    #[test]
    fn long_sentences_are_cut_into_windows() {
        let text = (0..100)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let parts = slices(&text, &sentences(&text));
        assert_eq!(parts.len(), 3);
        assert!(parts[0].starts_with("w0 ") && parts[0].ends_with("w39"));
        assert!(parts[2].starts_with("w80 ") && parts[2].ends_with("w99"));
    }

    #[test]
    fn keywords_match_whole_words_plurals_and_long_stems() {
        assert!(mentions("we exposed three apis", "api"));
        assert!(mentions("the api, versioned", "api"));
        assert!(!mentions("rapid delivery", "api"));
        assert!(!mentions("capital", "api"));
        assert!(mentions("we denormalized the table", "denormaliz"));
        assert!(mentions("explain analyze showed it", "explain analyze"));
        assert!(!mentions("unexplained", "explain"));
        assert!(mentions("n+1 queries", "n+1"));
        assert!(mentions("the api's latency", "api"));
    }

    #[test]
    fn technology_names_are_the_same_words_to_the_scoring_and_the_judge() {
        use crate::judge::text::{Phrase, Text};

        let answer = "we ported node.js services to c# and c++, then .net, with ci/cd";
        let judged = Text::new(answer);
        let scored: Vec<&str> = word_spans(answer)
            .into_iter()
            .map(|(start, end)| &answer[start..end])
            .collect();
        let read: Vec<&str> = judged.words.iter().map(|w| w.original).collect();
        assert_eq!(scored, read);
        for keyword in ["node.js", "c#", "c++", ".net", "ci/cd"] {
            assert!(scored.contains(&keyword), "{keyword}");
            assert!(mentions(answer, keyword), "{keyword}");
            assert!(judged.contains(&Phrase::loose(keyword)), "{keyword}");
        }
        for part in ["node", "js", "c", "net", "ci", "cd"] {
            assert!(!mentions(answer, part), "{part}");
            assert!(!judged.contains(&Phrase::loose(part)), "{part}");
        }
    }

    #[test]
    fn fillers_count_whole_words_only() {
        assert_eq!(count_phrase("um, so um we, you know, summed it", "um"), 2);
        assert_eq!(count_phrase("you know, you knowledge", "you know"), 1);
    }

    #[test]
    fn communication_prefers_structured_specific_answers() {
        let assessment = |specificity, evasive| AnswerAssessment {
            turn_index: 0,
            question_id: "q".into(),
            specificity,
            coverage: vec![],
            depth: Depth::Working,
            vague: false,
            evasive,
            named_technologies: vec![],
            numbers: vec![],
            years_claimed: None,
            affirmative: None,
        };
        let clear = "We moved reports to a queue because the API timed out. For example, the \
                     monthly export took 90 seconds; as a result we answered in 200 ms instead.";
        let rambling =
            "Um, so, uh, basically, you know, we kind of, um, did stuff, uh, with things.";
        let clear_score = communication_of(clear, &assessment(0.8, false));
        let rambling_score = communication_of(rambling, &assessment(0.2, false));
        assert!(
            clear_score > rambling_score + 0.3,
            "{clear_score} vs {rambling_score}"
        );
        assert!(communication_of(clear, &assessment(0.8, true)) < clear_score);
    }

    #[test]
    fn depth_ladder_is_ordered() {
        assert!(
            Depth::None < Depth::Surface
                && Depth::Surface < Depth::Working
                && Depth::Working < Depth::Deep
        );
        assert_eq!(
            serde_json::to_value(Depth::Working).unwrap(),
            serde_json::json!("working")
        );
        assert_eq!(
            serde_json::to_value(Recommendation::StrongYes).unwrap(),
            serde_json::json!("strong_yes")
        );
    }
}
