//! The recruiter's job configuration: what the interview asks and how answers are scored.
//!
//! A job is a TOML file in `config/jobs/`. [`Job::load`] parses it with unknown keys rejected,
//! then validates it and reports *every* problem at once, each with the file, the field path
//! (e.g. `questions[2].id`) and what to do, so a recruiter fixes a file in one pass.
//!
//! Ids: every knockout, competency, skill, question, blueprint, blueprint follow-up and banned
//! topic has an id, and these share one namespace because any of them can appear as a
//! transcript turn's `question_id`. Rubric dimensions have their own namespace: they are only
//! ever named by a question's `dimension`, so a question `api_design` may feed a dimension
//! `api_design`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Adaptive follow-ups allowed per question when the job does not say.
const DEFAULT_MAX_FOLLOW_UPS: u8 = 2;
/// Upper bound for adaptive follow-ups per question: past this a screen turns into an
/// interrogation and the time budget collapses.
pub const MAX_FOLLOW_UPS_LIMIT: u8 = 5;
/// Interview lengths a screening call can sensibly have, in minutes.
const DURATION_RANGE: (u32, u32) = (5, 180);
/// Largest `min_years` a knockout may demand.
const MAX_MIN_YEARS: f32 = 50.0;
/// Bounds of the `vocabulary` list: enough for a stack's names, short enough that every
/// utterance of every call stays cheap to bias.
pub const MAX_VOCABULARY_TERMS: usize = 200;
pub const MAX_VOCABULARY_TERM_CHARS: usize = 64;

/// A validated job configuration. Built only by [`Job::load`] or [`Job::from_toml`], so every
/// `Job` in the program has passed validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Stable identifier of the job, e.g. `backend-developer`; quoted in reports.
    pub id: String,
    /// Job title as the candidate hears it.
    pub title: String,
    /// Two or three sentences on who the role needs; the interviewer calibrates on it.
    pub role_brief: String,
    /// What the company does and its stack, so questions can reference it naturally.
    #[serde(default)]
    pub company_context: String,
    /// Language of the interview as a BCP 47 tag, e.g. `en`.
    pub language: String,
    /// Time budget of the whole call in minutes.
    pub duration_minutes: u32,
    /// Speaking style of the interviewer; never overrides fairness rules.
    #[serde(default)]
    pub tone: String,
    /// Extra guidance for scoring, passed to an LLM judge when one is configured.
    #[serde(default)]
    pub evaluation_notes: String,
    /// Adaptive follow-ups per question unless the question sets its own (0..=5).
    #[serde(default = "default_max_follow_ups")]
    pub max_follow_ups: u8,
    /// Subjects the interviewer steers away from.
    #[serde(default)]
    pub banned_topics: Vec<BannedTopic>,
    /// Deal-breakers asked early; failing one forces a `no`.
    #[serde(default)]
    pub knockouts: Vec<Knockout>,
    /// Must-have competencies, judged pass/fail.
    #[serde(default)]
    pub competencies: Vec<Competency>,
    /// Required skills, each scored 0-10.
    #[serde(default)]
    pub required_skills: Vec<Skill>,
    /// Preferred skills, a bonus when demonstrated.
    #[serde(default)]
    pub preferred_skills: Vec<Skill>,
    /// The recruiter's own questions, asked in this order.
    #[serde(default)]
    pub questions: Vec<Question>,
    /// Deep-dive questions whose follow-ups are asked to every candidate.
    #[serde(default)]
    pub blueprints: Vec<Blueprint>,
    /// Technical terms candidates will say that the job's other fields may not name, e.g.
    /// `["Celery", "RabbitMQ", "Grafana"]`: speech recognition is biased toward them and the
    /// job's own terms (see [`Job::vocabulary_terms`]).
    #[serde(default)]
    pub vocabulary: Vec<String>,
    /// The scoring rubric; weights are integer percent summing to 100.
    pub dimensions: Vec<Dimension>,
    /// Composite scores at which each recommendation starts.
    pub thresholds: Thresholds,
    #[serde(skip)]
    fingerprint: String,
    #[serde(skip)]
    source: PathBuf,
}

fn default_max_follow_ups() -> u8 {
    DEFAULT_MAX_FOLLOW_UPS
}

/// A subject the interviewer must not discuss, recognised by trigger phrases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BannedTopic {
    /// Identifier, e.g. `compensation`.
    pub id: String,
    /// What the topic is, e.g. "Salary, equity and compensation".
    pub name: String,
    /// Lower-case words or phrases that mean the conversation touched the topic.
    pub triggers: Vec<String>,
}

/// A deal-breaker question with a rule a machine can check.
///
/// In TOML exactly one rule is given: `min_years = 3` (fail when the candidate states fewer
/// years, or none) or `must_confirm = true` (fail unless the candidate says yes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Knockout {
    /// Identifier, e.g. `api_experience`.
    pub id: String,
    /// The question as asked.
    pub question: String,
    /// The rule in words for the report, e.g. "Less than 3 years designing APIs".
    pub fail_if: String,
    // Private: validation guarantees exactly one of these is set; read them through `rule()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_years: Option<f32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    must_confirm: bool,
}

impl Knockout {
    /// The fail rule of this knockout.
    pub fn rule(&self) -> KnockoutRule {
        match self.min_years {
            Some(years) => KnockoutRule::MinYears(years),
            // Validation rejects a knockout with neither rule, so this is `must_confirm = true`.
            None => KnockoutRule::MustConfirm,
        }
    }
}

/// How a knockout answer is checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KnockoutRule {
    /// Fail when the candidate claims fewer than this many years, or gives no number.
    MinYears(f32),
    /// Fail unless the candidate clearly says yes.
    MustConfirm,
}

/// A must-have competency, judged pass/fail from the whole interview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Competency {
    /// Identifier, e.g. `robust_apis`.
    pub id: String,
    /// Short name.
    pub name: String,
    /// What passing looks like.
    #[serde(default)]
    pub description: String,
    /// Words and phrases whose presence in a specific answer is evidence of the competency.
    pub keywords: Vec<String>,
}

/// A required or preferred skill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skill {
    /// Identifier, e.g. `kafka`.
    pub id: String,
    /// Short name.
    pub name: String,
    /// Words and phrases whose presence in an answer is evidence of the skill.
    pub keywords: Vec<String>,
}

/// One of the recruiter's questions, asked in order with adaptive follow-ups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Identifier, e.g. `api_design`.
    pub id: String,
    /// The question as asked.
    pub text: String,
    /// Knowledge areas a complete answer touches, as short phrases.
    pub areas: Vec<String>,
    /// Id of the rubric dimension this question is scored into.
    pub dimension: String,
    /// Overrides the job's `max_follow_ups` for this question (0..=5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_follow_ups: Option<u8>,
    /// Cues for the surface/working/deep ladder.
    #[serde(default)]
    pub depth: DepthCues,
}

/// Phrases that signal each rung of the depth ladder for one question.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthCues {
    /// Cues of knowing the basics, e.g. "CRUD endpoints".
    #[serde(default)]
    pub surface: Vec<String>,
    /// Cues of independent use, e.g. "pagination".
    #[serde(default)]
    pub working: Vec<String>,
    /// Cues of owning the subject, e.g. "idempotency key".
    #[serde(default)]
    pub deep: Vec<String>,
}

impl DepthCues {
    fn phrases(&self) -> impl Iterator<Item = &String> {
        self.surface.iter().chain(&self.working).chain(&self.deep)
    }
}

/// A deep-dive question with pre-written follow-ups asked to every candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blueprint {
    /// Identifier, e.g. `caching`.
    pub id: String,
    /// The question as asked.
    pub text: String,
    /// Knowledge areas a complete answer (with its follow-ups) touches.
    pub areas: Vec<String>,
    /// Follow-ups asked in order to every candidate.
    #[serde(default)]
    pub follow_ups: Vec<FollowUp>,
    /// Optionally also score this blueprint into a `questions` dimension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension: Option<String>,
    /// Cues for the surface/working/deep ladder.
    #[serde(default)]
    pub depth: DepthCues,
}

/// A pre-written follow-up of a blueprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    /// Identifier, e.g. `cache_invalidation`.
    pub id: String,
    /// The follow-up as asked.
    pub text: String,
}

/// One weighted dimension of the scoring rubric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    /// Identifier, e.g. `api_design`.
    pub id: String,
    /// Name shown in the report.
    pub name: String,
    /// Weight in integer percent; all weights sum to 100.
    pub weight: u32,
    /// What the dimension measures.
    #[serde(default)]
    pub description: String,
    /// Which evidence the score is computed from.
    #[serde(default)]
    pub basis: DimensionBasis,
}

/// Which part of the interview a dimension is scored from (see `scoring` for the formulas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DimensionBasis {
    /// Answers to the questions and blueprints whose `dimension` names this one.
    #[default]
    Questions,
    /// Every technical answer (questions and blueprints), weighted towards depth.
    AllAnswers,
    /// How clearly every answer is put: structure, filler words, concreteness.
    Communication,
    /// Coverage and depth of the blueprint questions and their follow-ups.
    Blueprints,
}

impl DimensionBasis {
    fn as_str(self) -> &'static str {
        match self {
            DimensionBasis::Questions => "questions",
            DimensionBasis::AllAnswers => "all_answers",
            DimensionBasis::Communication => "communication",
            DimensionBasis::Blueprints => "blueprints",
        }
    }
}

/// Composite scores (0-100) at which each recommendation starts; below `maybe` is `no`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Lowest score for `strong_yes`.
    pub strong_yes: u32,
    /// Lowest score for `yes`.
    pub yes: u32,
    /// Lowest score for `maybe`.
    pub maybe: u32,
}

/// Anything in a job that can be asked about or referenced by id from a transcript.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Item<'a> {
    /// A knockout question.
    Knockout(&'a Knockout),
    /// A must-have competency.
    Competency(&'a Competency),
    /// A required skill.
    RequiredSkill(&'a Skill),
    /// A preferred skill.
    PreferredSkill(&'a Skill),
    /// A custom question.
    Question(&'a Question),
    /// A blueprint question.
    Blueprint(&'a Blueprint),
    /// A pre-written follow-up, with the blueprint it belongs to.
    BlueprintFollowUp {
        /// The blueprint.
        blueprint: &'a Blueprint,
        /// The follow-up.
        follow_up: &'a FollowUp,
    },
    /// A banned topic.
    BannedTopic(&'a BannedTopic),
}

impl Job {
    /// Reads, parses and validates a job file.
    pub fn load(path: impl AsRef<Path>) -> Result<Job, JobErrors> {
        let path = path.as_ref();
        match std::fs::read_to_string(path) {
            Ok(text) => Job::from_toml(&text, path),
            Err(err) => Err(JobErrors::single(JobError {
                file: path.to_path_buf(),
                field: String::new(),
                line: None,
                problem: Problem::Unreadable {
                    reason: err.to_string(),
                },
            })),
        }
    }

    /// Parses and validates job TOML; `origin` names the file in errors and the report.
    pub fn from_toml(text: &str, origin: impl Into<PathBuf>) -> Result<Job, JobErrors> {
        let origin = origin.into();
        let mut job = parse(text, &origin)?;
        let problems = validate(&job);
        if !problems.is_empty() {
            return Err(JobErrors {
                errors: problems
                    .into_iter()
                    .map(|(field, problem)| JobError {
                        file: origin.clone(),
                        field,
                        line: None,
                        problem,
                    })
                    .collect(),
            });
        }
        job.fingerprint = fingerprint(text.as_bytes());
        job.source = origin;
        Ok(job)
    }

    /// Fingerprint of the exact file contents (`fnv1a64:` + 16 hex digits), recorded in
    /// reports so a score can be traced to the configuration that produced it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The file this job was loaded from (or the origin given to [`Job::from_toml`]).
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The words a candidate for this job is likely to say that speech recognition should
    /// expect: the `vocabulary` list as written, then every word of the skills, keywords,
    /// knowledge areas, depth cues, questions and company context, once each (the first
    /// spelling wins). The speech engine keeps only the ones it would otherwise have to guess.
    pub fn vocabulary_terms(&self) -> Vec<String> {
        let phrases = self
            .required_skills
            .iter()
            .chain(&self.preferred_skills)
            .flat_map(|s| std::iter::once(&s.name).chain(&s.keywords))
            .chain(self.competencies.iter().flat_map(|c| &c.keywords))
            .chain(self.knockouts.iter().map(|k| &k.question))
            .chain(self.questions.iter().flat_map(|q| {
                std::iter::once(&q.text)
                    .chain(&q.areas)
                    .chain(q.depth.phrases())
            }))
            .chain(self.blueprints.iter().flat_map(|b| {
                std::iter::once(&b.text)
                    .chain(&b.areas)
                    .chain(b.follow_ups.iter().map(|f| &f.text))
                    .chain(b.depth.phrases())
            }))
            .chain(std::iter::once(&self.company_context));
        let words = phrases.flat_map(|p| p.split_whitespace()).map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && !"+#".contains(c))
                .trim_end_matches('.')
        });
        let mut terms: Vec<String> = Vec::new();
        for term in self
            .vocabulary
            .iter()
            .map(|t| t.trim())
            .chain(words)
            .filter(|t| !t.is_empty())
        {
            if !terms.iter().any(|known| known.eq_ignore_ascii_case(term)) {
                terms.push(term.to_owned());
            }
        }
        terms
    }

    /// Adaptive follow-ups allowed for a question: its own limit, else the job's.
    pub fn follow_up_limit(&self, question: &Question) -> u8 {
        question.max_follow_ups.unwrap_or(self.max_follow_ups)
    }

    /// Looks up anything with an id in the shared namespace (not rubric dimensions).
    pub(crate) fn item(&self, id: &str) -> Option<Item<'_>> {
        self.items()
            .find(|(item_id, _, _)| *item_id == id)
            .map(|(_, _, item)| item)
    }

    /// The rubric dimension with this id.
    pub fn dimension(&self, id: &str) -> Option<&Dimension> {
        self.dimensions.iter().find(|d| d.id == id)
    }

    /// Every id-bearing item with its id and its field path, in file order.
    fn items(&self) -> impl Iterator<Item = (&str, String, Item<'_>)> {
        let knockouts = self
            .knockouts
            .iter()
            .enumerate()
            .map(|(i, k)| (k.id.as_str(), format!("knockouts[{i}]"), Item::Knockout(k)));
        let competencies = self.competencies.iter().enumerate().map(|(i, c)| {
            (
                c.id.as_str(),
                format!("competencies[{i}]"),
                Item::Competency(c),
            )
        });
        let required = self.required_skills.iter().enumerate().map(|(i, s)| {
            (
                s.id.as_str(),
                format!("required_skills[{i}]"),
                Item::RequiredSkill(s),
            )
        });
        let preferred = self.preferred_skills.iter().enumerate().map(|(i, s)| {
            (
                s.id.as_str(),
                format!("preferred_skills[{i}]"),
                Item::PreferredSkill(s),
            )
        });
        let questions = self
            .questions
            .iter()
            .enumerate()
            .map(|(i, q)| (q.id.as_str(), format!("questions[{i}]"), Item::Question(q)));
        let blueprints = self.blueprints.iter().enumerate().flat_map(|(i, b)| {
            std::iter::once((
                b.id.as_str(),
                format!("blueprints[{i}]"),
                Item::Blueprint(b),
            ))
            .chain(b.follow_ups.iter().enumerate().map(move |(j, f)| {
                (
                    f.id.as_str(),
                    format!("blueprints[{i}].follow_ups[{j}]"),
                    Item::BlueprintFollowUp {
                        blueprint: b,
                        follow_up: f,
                    },
                )
            }))
        });
        let banned = self.banned_topics.iter().enumerate().map(|(i, t)| {
            (
                t.id.as_str(),
                format!("banned_topics[{i}]"),
                Item::BannedTopic(t),
            )
        });
        knockouts
            .chain(competencies)
            .chain(required)
            .chain(preferred)
            .chain(questions)
            .chain(blueprints)
            .chain(banned)
    }
}

/// FNV-1a, 64 bit: a fingerprint for telling configurations apart, not a security hash.
fn fingerprint(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{hash:016x}")
}

/// One thing wrong with a job file.
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    /// The job file.
    pub file: PathBuf,
    /// Field path, e.g. `questions[2].id`; empty for whole-file problems such as syntax.
    pub field: String,
    /// 1-based line, when the parser knows it.
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub problem: Problem,
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        match (self.field.is_empty(), self.line) {
            (false, Some(line)) => write!(f, "{} (line {line}): ", self.field)?,
            (false, None) => write!(f, "{}: ", self.field)?,
            (true, Some(line)) => write!(f, "line {line}: ")?,
            (true, None) => {}
        }
        write!(f, "{}", self.problem)
    }
}

impl std::error::Error for JobError {}

/// What is wrong with one field of a job file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The file could not be read at all.
    #[error("cannot read the job file: {reason}; check the path and its permissions")]
    Unreadable {
        /// What the operating system said.
        reason: String,
    },
    /// The file is not valid TOML.
    #[error("TOML syntax error: {message}")]
    Syntax {
        /// The parser's message.
        message: String,
    },
    /// Valid TOML of the wrong shape: an unknown key, a missing field or a wrong type.
    #[error("{message}")]
    Schema {
        /// The deserializer's message, e.g. "unknown field `colour`, expected one of ...".
        message: String,
    },
    /// A text or list entry that must say something is empty.
    #[error("must not be empty")]
    Empty,
    /// A list that needs entries has none.
    #[error("needs at least one entry: {hint}")]
    EmptyList {
        /// What the list is for.
        hint: &'static str,
    },
    /// An id with characters that would break URLs, anchors or file names.
    #[error(
        "\"{id}\" is not a valid id: use 1-64 lowercase letters, digits, '_' or '-', starting \
         with a letter"
    )]
    BadId {
        /// The offending id.
        id: String,
    },
    /// Two items share an id.
    #[error("duplicate id \"{id}\" (also {first})")]
    DuplicateId {
        /// The repeated id.
        id: String,
        /// Field path of the first item with that id, e.g. `knockouts[0]`.
        first: String,
    },
    /// A number outside its allowed range.
    #[error("{value} is out of range; allowed {min}..={max}")]
    OutOfRange {
        /// The value given.
        value: String,
        /// Smallest allowed value.
        min: String,
        /// Largest allowed value.
        max: String,
    },
    /// The rubric weights do not add up to 100.
    #[error("dimension weights sum to {sum}; they must sum to 100 (percent)")]
    WeightsSum {
        /// The actual sum.
        sum: u32,
    },
    /// A reference to a rubric dimension that does not exist.
    #[error("names no rubric dimension: \"{name}\"; known dimensions: {known}")]
    UnknownDimension {
        /// The name used.
        name: String,
        /// The dimension ids that exist, comma-separated.
        known: String,
    },
    /// A question points at a dimension that is not scored from mapped questions.
    #[error(
        "dimension \"{name}\" is scored from {basis}, not from the questions that name it; \
         point this at a dimension with basis = \"questions\""
    )]
    NotQuestionBasis {
        /// The dimension id.
        name: String,
        /// Its basis.
        basis: &'static str,
    },
    /// A dimension that nothing in the interview can ever score.
    #[error("this dimension can never be scored: {hint}")]
    UnscoredDimension {
        /// What to add.
        hint: String,
    },
    /// Recommendation thresholds that do not descend.
    #[error(
        "thresholds must descend within 0..=100: strong_yes ({strong_yes}) > yes ({yes}) > \
         maybe ({maybe})"
    )]
    ThresholdsOrder {
        /// The given strong_yes threshold.
        strong_yes: u32,
        /// The given yes threshold.
        yes: u32,
        /// The given maybe threshold.
        maybe: u32,
    },
    /// A knockout with no fail rule, or with two.
    #[error("needs exactly one fail rule: `min_years = N` or `must_confirm = true`")]
    KnockoutRule,
    /// A list with more entries, or an entry with more characters, than allowed.
    #[error("{what}: {count} given, at most {max} allowed")]
    TooLong {
        /// What was counted, e.g. "terms".
        what: &'static str,
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Text with a control character (a tab, a newline, a NUL) where one word is expected.
    #[error("contains a control character (tab, newline, ...); write the term on one line")]
    ControlCharacter,
    /// A language that is not a BCP 47 tag.
    #[error("\"{value}\" is not a language tag such as \"en\" or \"pt-BR\"")]
    BadLanguage {
        /// The value given.
        value: String,
    },
}

/// Every problem found in a job file; `Display` prints one per line.
#[derive(Debug, Clone, PartialEq)]
pub struct JobErrors {
    errors: Vec<JobError>,
}

impl JobErrors {
    fn single(error: JobError) -> JobErrors {
        JobErrors {
            errors: vec![error],
        }
    }

    /// The problems, in file order as far as known.
    pub fn errors(&self) -> &[JobError] {
        &self.errors
    }
}

impl fmt::Display for JobErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for JobErrors {}

/// TOML to `Job`, with the field path and line of the first syntax or shape error.
fn parse(text: &str, origin: &Path) -> Result<Job, JobErrors> {
    let error = |field: String, span: Option<std::ops::Range<usize>>, problem| {
        JobErrors::single(JobError {
            file: origin.to_path_buf(),
            field,
            line: span.map(|s| line_of(text, s.start)),
            problem,
        })
    };
    let deserializer = toml::Deserializer::parse(text).map_err(|e| {
        error(
            String::new(),
            e.span(),
            Problem::Syntax {
                message: e.message().trim().to_string(),
            },
        )
    })?;
    serde_path_to_error::deserialize::<_, Job>(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        let inner = e.into_inner();
        error(
            field,
            inner.span(),
            Problem::Schema {
                message: inner.message().trim().to_string(),
            },
        )
    })
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('a'..='z'))
        && id.len() <= 64
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
}

fn valid_language(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_lowercase()));
    primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Collects every semantic problem as (field path, problem).
fn validate(job: &Job) -> Vec<(String, Problem)> {
    let mut v = Validator::default();

    v.id("id", &job.id);
    v.text("title", &job.title);
    v.text("role_brief", &job.role_brief);
    if !valid_language(&job.language) {
        v.push(
            "language",
            Problem::BadLanguage {
                value: job.language.clone(),
            },
        );
    }
    v.range(
        "duration_minutes",
        job.duration_minutes,
        DURATION_RANGE.0,
        DURATION_RANGE.1,
    );
    v.range(
        "max_follow_ups",
        job.max_follow_ups,
        0,
        MAX_FOLLOW_UPS_LIMIT,
    );

    for (i, topic) in job.banned_topics.iter().enumerate() {
        let at = format!("banned_topics[{i}]");
        v.text(&format!("{at}.name"), &topic.name);
        v.phrases(
            &format!("{at}.triggers"),
            &topic.triggers,
            "the phrases that reveal the topic",
        );
    }
    for (i, knockout) in job.knockouts.iter().enumerate() {
        let at = format!("knockouts[{i}]");
        v.text(&format!("{at}.question"), &knockout.question);
        v.text(&format!("{at}.fail_if"), &knockout.fail_if);
        match (knockout.min_years, knockout.must_confirm) {
            (Some(years), false) => {
                if !(years > 0.0 && years <= MAX_MIN_YEARS) {
                    v.push(
                        format!("{at}.min_years"),
                        Problem::OutOfRange {
                            value: years.to_string(),
                            min: "0 (exclusive)".to_string(),
                            max: MAX_MIN_YEARS.to_string(),
                        },
                    );
                }
            }
            (None, true) => {}
            _ => v.push(at, Problem::KnockoutRule),
        }
    }
    for (i, competency) in job.competencies.iter().enumerate() {
        let at = format!("competencies[{i}]");
        v.text(&format!("{at}.name"), &competency.name);
        v.phrases(
            &format!("{at}.keywords"),
            &competency.keywords,
            "the words that evidence it",
        );
    }
    for (list, skills) in [
        ("required_skills", &job.required_skills),
        ("preferred_skills", &job.preferred_skills),
    ] {
        for (i, skill) in skills.iter().enumerate() {
            let at = format!("{list}[{i}]");
            v.text(&format!("{at}.name"), &skill.name);
            v.phrases(
                &format!("{at}.keywords"),
                &skill.keywords,
                "the words that evidence it",
            );
        }
    }

    if job.vocabulary.len() > MAX_VOCABULARY_TERMS {
        v.push(
            "vocabulary",
            Problem::TooLong {
                what: "terms",
                count: job.vocabulary.len(),
                max: MAX_VOCABULARY_TERMS,
            },
        );
    }
    for (i, term) in job.vocabulary.iter().enumerate() {
        let at = format!("vocabulary[{i}]");
        v.text(&at, term);
        let chars = term.chars().count();
        if chars > MAX_VOCABULARY_TERM_CHARS {
            v.push(
                at,
                Problem::TooLong {
                    what: "characters",
                    count: chars,
                    max: MAX_VOCABULARY_TERM_CHARS,
                },
            );
        } else if term.chars().any(char::is_control) {
            v.push(at, Problem::ControlCharacter);
        }
    }

    if job.questions.is_empty() && job.blueprints.is_empty() {
        v.push(
            "questions",
            Problem::EmptyList {
                hint: "a job needs at least one [[questions]] or [[blueprints]] entry",
            },
        );
    }
    for (i, question) in job.questions.iter().enumerate() {
        let at = format!("questions[{i}]");
        v.text(&format!("{at}.text"), &question.text);
        v.phrases(
            &format!("{at}.areas"),
            &question.areas,
            "the knowledge areas a good answer covers",
        );
        v.dimension_ref(job, &format!("{at}.dimension"), &question.dimension);
        if let Some(limit) = question.max_follow_ups {
            v.range(
                &format!("{at}.max_follow_ups"),
                limit,
                0,
                MAX_FOLLOW_UPS_LIMIT,
            );
        }
        v.depth_cues(&format!("{at}.depth"), &question.depth);
    }
    for (i, blueprint) in job.blueprints.iter().enumerate() {
        let at = format!("blueprints[{i}]");
        v.text(&format!("{at}.text"), &blueprint.text);
        v.phrases(
            &format!("{at}.areas"),
            &blueprint.areas,
            "the knowledge areas a good answer covers",
        );
        for (j, follow_up) in blueprint.follow_ups.iter().enumerate() {
            v.text(&format!("{at}.follow_ups[{j}].text"), &follow_up.text);
        }
        if let Some(dimension) = &blueprint.dimension {
            v.dimension_ref(job, &format!("{at}.dimension"), dimension);
        }
        v.depth_cues(&format!("{at}.depth"), &blueprint.depth);
    }

    // One namespace for everything a transcript can reference.
    let mut seen: Vec<(&str, String)> = Vec::new();
    for (id, at, _) in job.items() {
        if !v.id(&format!("{at}.id"), id) {
            continue;
        }
        match seen.iter().find(|(other, _)| *other == id) {
            Some((_, first)) => v.push(
                format!("{at}.id"),
                Problem::DuplicateId {
                    id: id.to_string(),
                    first: first.clone(),
                },
            ),
            None => seen.push((id, at)),
        }
    }

    validate_rubric(job, &mut v);
    v.problems
}

fn validate_rubric(job: &Job, v: &mut Validator) {
    if job.dimensions.is_empty() {
        v.push(
            "dimensions",
            Problem::EmptyList {
                hint: "the rubric needs at least one [[dimensions]] entry",
            },
        );
    }
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (i, dimension) in job.dimensions.iter().enumerate() {
        let at = format!("dimensions[{i}]");
        if v.id(&format!("{at}.id"), &dimension.id) {
            match seen.iter().find(|(id, _)| *id == dimension.id) {
                Some((_, first)) => v.push(
                    format!("{at}.id"),
                    Problem::DuplicateId {
                        id: dimension.id.clone(),
                        first: format!("dimensions[{first}]"),
                    },
                ),
                None => seen.push((&dimension.id, i)),
            }
        }
        v.text(&format!("{at}.name"), &dimension.name);
        v.range(&format!("{at}.weight"), dimension.weight, 1, 100);
        match dimension.basis {
            DimensionBasis::Questions => {
                let mapped = job.questions.iter().any(|q| q.dimension == dimension.id)
                    || job
                        .blueprints
                        .iter()
                        .any(|b| b.dimension.as_deref() == Some(dimension.id.as_str()));
                if !mapped {
                    v.push(
                        format!("{at}.basis"),
                        Problem::UnscoredDimension {
                            hint: format!(
                                "no question or blueprint has dimension = \"{}\"; map one to it \
                                 or choose another basis",
                                dimension.id
                            ),
                        },
                    );
                }
            }
            DimensionBasis::Blueprints if job.blueprints.is_empty() => v.push(
                format!("{at}.basis"),
                Problem::UnscoredDimension {
                    hint: "basis = \"blueprints\" but the job has no [[blueprints]]".to_string(),
                },
            ),
            _ => {}
        }
    }
    let sum: u32 = job.dimensions.iter().map(|d| d.weight).sum();
    if !job.dimensions.is_empty() && sum != 100 {
        v.push("dimensions", Problem::WeightsSum { sum });
    }
    let t = job.thresholds;
    if !(t.strong_yes <= 100 && t.strong_yes > t.yes && t.yes > t.maybe) {
        v.push(
            "thresholds",
            Problem::ThresholdsOrder {
                strong_yes: t.strong_yes,
                yes: t.yes,
                maybe: t.maybe,
            },
        );
    }
}

#[derive(Default)]
struct Validator {
    problems: Vec<(String, Problem)>,
}

impl Validator {
    fn push(&mut self, field: impl Into<String>, problem: Problem) {
        self.problems.push((field.into(), problem));
    }

    fn text(&mut self, field: &str, text: &str) {
        if text.trim().is_empty() {
            self.push(field, Problem::Empty);
        }
    }

    /// Returns whether the id is well formed.
    fn id(&mut self, field: &str, id: &str) -> bool {
        if id.is_empty() {
            self.push(field, Problem::Empty);
            false
        } else if !valid_id(id) {
            self.push(field, Problem::BadId { id: id.to_string() });
            false
        } else {
            true
        }
    }

    fn phrases(&mut self, field: &str, phrases: &[String], hint: &'static str) {
        if phrases.is_empty() {
            self.push(field, Problem::EmptyList { hint });
        }
        for (i, phrase) in phrases.iter().enumerate() {
            self.text(&format!("{field}[{i}]"), phrase);
        }
    }

    fn range<T: PartialOrd + fmt::Display>(&mut self, field: &str, value: T, min: T, max: T) {
        if value < min || value > max {
            self.push(
                field,
                Problem::OutOfRange {
                    value: value.to_string(),
                    min: min.to_string(),
                    max: max.to_string(),
                },
            );
        }
    }

    fn depth_cues(&mut self, field: &str, cues: &DepthCues) {
        for (rung, list) in [
            ("surface", &cues.surface),
            ("working", &cues.working),
            ("deep", &cues.deep),
        ] {
            for (i, cue) in list.iter().enumerate() {
                self.text(&format!("{field}.{rung}[{i}]"), cue);
            }
        }
    }

    fn dimension_ref(&mut self, job: &Job, field: &str, name: &str) {
        match job.dimension(name) {
            None => self.push(
                field,
                Problem::UnknownDimension {
                    name: name.to_string(),
                    known: job
                        .dimensions
                        .iter()
                        .map(|d| d.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                },
            ),
            Some(d) if d.basis != DimensionBasis::Questions => self.push(
                field,
                Problem::NotQuestionBasis {
                    name: name.to_string(),
                    basis: d.basis.as_str(),
                },
            ),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small valid job that each test breaks in one or more ways.
    const MINIMAL: &str = r#"
id = "test-job"
title = "Backend Developer"
role_brief = "Builds APIs."
language = "en"
duration_minutes = 30

[[knockouts]]
id = "api_experience"
question = "How many years have you designed APIs?"
fail_if = "Less than 3 years"
min_years = 3

[[knockouts]]
id = "start_date"
question = "Can you start within a month?"
fail_if = "Cannot start within a month"
must_confirm = true

[[questions]]
id = "api_design"
text = "Describe an API you designed."
areas = ["versioning", "pagination"]
dimension = "api"

[[questions]]
id = "db"
text = "How do you optimise a database?"
areas = ["indexes"]
dimension = "api"

[[blueprints]]
id = "caching"
text = "How would you cache?"
areas = ["invalidation"]
[[blueprints.follow_ups]]
id = "cache_invalidation"
text = "How do you invalidate?"

[[dimensions]]
id = "api"
name = "API Design"
weight = 60

[[dimensions]]
id = "communication"
name = "Communication"
weight = 40
basis = "communication"

[thresholds]
strong_yes = 80
yes = 65
maybe = 50
"#;

    fn errors_of(text: &str) -> Vec<JobError> {
        match Job::from_toml(text, "jobs/x.toml") {
            Ok(_) => panic!("expected validation errors"),
            Err(errors) => errors.errors().to_vec(),
        }
    }

    fn fields(errors: &[JobError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn minimal_job_loads_with_fingerprint_and_rules() {
        let job = Job::from_toml(MINIMAL, "jobs/x.toml").unwrap();
        assert_eq!(job.knockouts[0].rule(), KnockoutRule::MinYears(3.0));
        assert_eq!(job.knockouts[1].rule(), KnockoutRule::MustConfirm);
        assert_eq!(job.max_follow_ups, DEFAULT_MAX_FOLLOW_UPS);
        assert!(job.fingerprint().starts_with("fnv1a64:"));
        assert_eq!(job.fingerprint().len(), "fnv1a64:".len() + 16);
        assert_eq!(job.source(), Path::new("jobs/x.toml"));
        assert!(matches!(
            job.item("cache_invalidation"),
            Some(Item::BlueprintFollowUp { blueprint, .. }) if blueprint.id == "caching"
        ));
        assert!(matches!(job.item("db"), Some(Item::Question(q)) if q.text.contains("database")));
        assert!(job.item("api").is_none(), "dimensions are not items");
    }

    #[test]
    fn fingerprint_changes_with_content() {
        let a = Job::from_toml(MINIMAL, "a.toml").unwrap();
        let b = Job::from_toml(&MINIMAL.replace("Builds APIs.", "Builds APIs!"), "a.toml").unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        // Known FNV-1a 64 vectors.
        assert_eq!(fingerprint(b""), "fnv1a64:cbf29ce484222325");
        assert_eq!(fingerprint(b"a"), "fnv1a64:af63dc4c8601ec8c");
    }

    #[test]
    fn duplicate_ids_across_kinds_name_both_places() {
        let text = MINIMAL.replace("id = \"db\"", "id = \"api_experience\"");
        let errors = errors_of(&text);
        assert_eq!(fields(&errors), ["questions[1].id"]);
        assert_eq!(
            errors[0].to_string(),
            "jobs/x.toml: questions[1].id: duplicate id \"api_experience\" (also knockouts[0])"
        );
        let text = MINIMAL.replace("id = \"cache_invalidation\"", "id = \"caching\"");
        let errors = errors_of(&text);
        assert_eq!(fields(&errors), ["blueprints[0].follow_ups[0].id"]);
    }

    #[test]
    fn weights_must_sum_to_100() {
        let errors = errors_of(&MINIMAL.replace("weight = 40", "weight = 30"));
        assert_eq!(fields(&errors), ["dimensions"]);
        assert_eq!(errors[0].problem, Problem::WeightsSum { sum: 90 });
    }

    #[test]
    fn follow_up_limits_are_range_checked() {
        let text = MINIMAL
            .replace(
                "duration_minutes = 30",
                "duration_minutes = 30\nmax_follow_ups = 6",
            )
            .replace(
                "dimension = \"api\"\n\n[[questions]]",
                "dimension = \"api\"\nmax_follow_ups = 9\n\n[[questions]]",
            );
        let errors = errors_of(&text);
        assert_eq!(
            fields(&errors),
            ["max_follow_ups", "questions[0].max_follow_ups"]
        );
        assert!(
            errors[0]
                .to_string()
                .ends_with("6 is out of range; allowed 0..=5")
        );
    }

    #[test]
    fn unknown_keys_report_path_and_line() {
        let text = MINIMAL.replace(
            "areas = [\"indexes\"]",
            "areas = [\"indexes\"]\ncolour = \"red\"",
        );
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "questions[1].colour");
        let expected_line = text.lines().position(|l| l.starts_with("colour")).unwrap() + 1;
        assert_eq!(errors[0].line, Some(expected_line));
        assert!(
            errors[0].to_string().contains("unknown field `colour`"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn syntax_errors_report_the_line() {
        let text = MINIMAL.replace("language = \"en\"", "language = \"en");
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1);
        assert!(matches!(errors[0].problem, Problem::Syntax { .. }));
        let expected_line = text
            .lines()
            .position(|l| l.starts_with("language"))
            .unwrap()
            + 1;
        assert_eq!(errors[0].line, Some(expected_line));
    }

    #[test]
    fn wrong_types_and_missing_fields_are_schema_errors() {
        let errors = errors_of(&MINIMAL.replace("weight = 60", "weight = \"sixty\""));
        assert_eq!(fields(&errors), ["dimensions[0].weight"]);
        let errors = errors_of(&MINIMAL.replace("title = \"Backend Developer\"\n", ""));
        assert!(
            matches!(&errors[0].problem, Problem::Schema { message } if message.contains("title"))
        );
    }

    #[test]
    fn empty_texts_and_lists_are_reported_each() {
        let text = MINIMAL
            .replace("text = \"Describe an API you designed.\"", "text = \"  \"")
            .replace("areas = [\"indexes\"]", "areas = []")
            .replace(
                "areas = [\"invalidation\"]",
                "areas = [\"invalidation\", \"\"]",
            )
            .replace("fail_if = \"Less than 3 years\"", "fail_if = \"\"");
        let errors = errors_of(&text);
        assert_eq!(
            fields(&errors),
            [
                "knockouts[0].fail_if",
                "questions[0].text",
                "questions[1].areas",
                "blueprints[0].areas[1]"
            ]
        );
    }

    #[test]
    fn dimension_references_are_checked() {
        let text = MINIMAL.replacen("dimension = \"api\"", "dimension = \"apis\"", 1);
        let errors = errors_of(&text);
        assert_eq!(fields(&errors), ["questions[0].dimension"]);
        assert!(
            errors[0]
                .to_string()
                .contains("known dimensions: api, communication")
        );

        let text = MINIMAL.replacen("dimension = \"api\"", "dimension = \"communication\"", 1);
        let errors = errors_of(&text);
        assert_eq!(fields(&errors), ["questions[0].dimension"]);
        assert!(matches!(
            errors[0].problem,
            Problem::NotQuestionBasis { .. }
        ));

        // A questions-basis dimension nothing maps to could never be scored.
        let text = MINIMAL.replace("basis = \"communication\"", "");
        assert_eq!(fields(&errors_of(&text)), ["dimensions[1].basis"]);
    }

    #[test]
    fn thresholds_must_descend() {
        let errors = errors_of(&MINIMAL.replace("yes = 65", "yes = 85"));
        assert_eq!(fields(&errors), ["thresholds"]);
        let errors = errors_of(&MINIMAL.replace("strong_yes = 80", "strong_yes = 120"));
        assert_eq!(fields(&errors), ["thresholds"]);
    }

    #[test]
    fn knockouts_need_exactly_one_rule() {
        let text = MINIMAL.replace("must_confirm = true", "must_confirm = true\nmin_years = 2");
        assert_eq!(fields(&errors_of(&text)), ["knockouts[1]"]);
        let text = MINIMAL.replace("min_years = 3", "must_confirm = false");
        assert_eq!(fields(&errors_of(&text)), ["knockouts[0]"]);
        let text = MINIMAL.replace("min_years = 3", "min_years = -1");
        assert_eq!(fields(&errors_of(&text)), ["knockouts[0].min_years"]);
    }

    #[test]
    fn ids_and_language_are_well_formed() {
        let text = MINIMAL
            .replace("id = \"db\"", "id = \"Db Question\"")
            .replace("language = \"en\"", "language = \"English\"");
        let errors = errors_of(&text);
        assert_eq!(fields(&errors), ["language", "questions[1].id"]);
    }

    #[test]
    fn every_problem_is_reported_at_once_one_per_line() {
        let text = MINIMAL
            .replace("weight = 40", "weight = 10")
            .replace("id = \"db\"", "id = \"api_design\"")
            .replace("yes = 65", "yes = 95");
        let errors = Job::from_toml(&text, "jobs/x.toml").unwrap_err();
        assert_eq!(errors.errors().len(), 3);
        let rendered = errors.to_string();
        assert_eq!(rendered.lines().count(), 3);
        assert!(rendered.lines().all(|l| l.starts_with("jobs/x.toml: ")));
    }

    #[test]
    fn vocabulary_terms_put_the_list_first_then_the_jobs_own_words_once() {
        let text = MINIMAL.replace(
            "duration_minutes = 30",
            "duration_minutes = 30\nvocabulary = [\"Celery\", \" RabbitMQ \", \"dead-letter queue\"]",
        );
        let job = Job::from_toml(&text, "jobs/x.toml").unwrap();
        let terms = job.vocabulary_terms();
        assert_eq!(
            terms[..3],
            ["Celery", "RabbitMQ", "dead-letter queue"].map(String::from)
        );
        for word in [
            "API",
            "designed",
            "versioning",
            "pagination",
            "indexes",
            "invalidate",
        ] {
            assert!(
                terms.iter().any(|t| t == word),
                "{word} missing from {terms:?}"
            );
        }
        // Punctuation is trimmed and each word comes once whatever its case.
        assert!(
            !terms.iter().any(|t| t.ends_with('?') || t.ends_with('.')),
            "{terms:?}"
        );
        assert_eq!(
            terms
                .iter()
                .filter(|t| t.eq_ignore_ascii_case("how"))
                .count(),
            1
        );
    }

    #[test]
    fn vocabulary_entries_are_bounded_and_one_line_each() {
        let list: Vec<String> = (0..=MAX_VOCABULARY_TERMS)
            .map(|i| format!("\"t{i}\""))
            .collect();
        let text = MINIMAL.replace(
            "duration_minutes = 30",
            &format!("duration_minutes = 30\nvocabulary = [{}]", list.join(", ")),
        );
        let errors = errors_of(&text);
        assert_eq!(fields(&errors), ["vocabulary"]);
        assert!(
            errors[0]
                .to_string()
                .ends_with("terms: 201 given, at most 200 allowed")
        );

        let long = "x".repeat(MAX_VOCABULARY_TERM_CHARS + 1);
        let text = MINIMAL.replace(
            "duration_minutes = 30",
            &format!(
                "duration_minutes = 30\nvocabulary = [\"Kafka\", \"\", \"{long}\", \"a\\tb\"]"
            ),
        );
        let errors = errors_of(&text);
        assert_eq!(
            fields(&errors),
            ["vocabulary[1]", "vocabulary[2]", "vocabulary[3]"]
        );
        assert_eq!(errors[0].problem, Problem::Empty);
        assert!(errors[1].to_string().contains("65 given, at most 64"));
        assert_eq!(errors[2].problem, Problem::ControlCharacter);
    }

    #[test]
    fn missing_file_is_reported_with_its_path() {
        let errors = Job::load("/nonexistent/viva/job.toml").unwrap_err();
        assert!(
            errors
                .to_string()
                .starts_with("/nonexistent/viva/job.toml: cannot read the job file")
        );
    }
}
