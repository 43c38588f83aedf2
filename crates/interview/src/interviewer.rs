//! The interviewer: runs one candidate's interview for a job, turn by turn, like a good human
//! screener.
//!
//! Flow: a greeting with the recording and AI notice; the knockouts; the recruiter's questions
//! in order, each with adaptive follow-ups chosen by a [`Policy`]; the blueprints, each with
//! its pre-written follow-ups (the same for everyone, so no adaptive ones); the required skills
//! no answer has shown yet; the candidate's own questions; the closing.
//!
//! The interviewer never reads a clock: the caller passes call-clock milliseconds with every
//! event, so the same events always give the same prompts. It keeps to the job's duration: a
//! follow-up is only asked when the time left covers it *and* everything not asked yet; when
//! time runs short it drops follow-ups, asks first what has no score yet (knockouts, questions
//! of rubric dimensions with no answer, a first blueprint, skills with no evidence), and closes
//! before the end.
//!
//! # Turn contract
//! Every [`Prompt`] returned (by [`Interviewer::start`], [`Interviewer::on_answer`] or
//! [`Interviewer::on_silence`]) is one interviewer turn and every `on_answer` call is one
//! candidate turn; the caller writes them to the transcript in that order, with the prompt's
//! `kind` and `question_id` and, for the answer, the `question_id` of the prompt it answers
//! ([`Interviewer::answering`]). A prompt the candidate talked over is written with the words
//! they heard of it, and not at all if they heard none ([`Interviewer::on_interrupted`]); one
//! talked over within its first words leaves the answer before it open, and the next answer
//! is filed under the same item as its rest ([`Transcript::continued_answer`]). The
//! [`AnswerAssessment::turn_index`] values refer to that transcript.
//!
//! [`Transcript::continued_answer`]: crate::Transcript::continued_answer

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::job::{Item, Job, KnockoutRule};
use crate::judge::text::{Phrase, Text};
use crate::judge::{Judge, Judgement};
use crate::policy::{self, Decision, FollowUpKind, Policy, Situation};
use crate::scoring::{AnswerAssessment, Depth};
use crate::transcript::{TurnKind, resumes_answer};

/// Time kept for the closing words at the end of the budget.
const CLOSING_RESERVE_MS: u64 = 30_000;
/// Rough time one part of the interview takes, spoken question and answer together.
const KNOCKOUT_MS: u64 = 40_000;
const QUESTION_MS: u64 = 150_000;
const BLUEPRINT_MS: u64 = 90_000;
const FOLLOW_UP_MS: u64 = 60_000;
const SKILL_MS: u64 = 90_000;
const CANDIDATE_QUESTIONS_MS: u64 = 90_000;
/// Shortest time worth starting another question in.
const MIN_QUESTION_MS: u64 = 45_000;
/// Silence after a prompt before a gentle nudge, and after the nudge before moving on. The
/// caller reports silence measured from the end of the interviewer's last prompt.
pub const NUDGE_AFTER_MS: u64 = 8_000;
/// See [`NUDGE_AFTER_MS`].
pub const MOVE_ON_AFTER_MS: u64 = 12_000;
/// A single answer longer than this is wrapped up politely, whatever its word count.
const LONG_ANSWER_MS: u64 = 150_000;
/// Times a question is repeated on request before moving on.
const MAX_REPEATS: u8 = 2;
/// Adaptive follow-ups on a required-skill question (it is already a catch-up question).
const SKILL_FOLLOW_UPS: u8 = 1;

/// Something the interviewer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// What the turn is for.
    pub kind: TurnKind,
    /// The job item it belongs to, if any; answers to it carry the same id.
    pub question_id: Option<String>,
    /// The words to speak. Planned questions appear verbatim as their own sentence(s), so
    /// speech synthesized ahead of time from [`Interviewer::upcoming_questions`] can be reused.
    pub text: String,
}

/// What the interviewer does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Say this and wait for the candidate.
    Say(Prompt),
    /// Say these closing words; the interview is over.
    Finish(Prompt),
}

impl Next {
    /// The prompt to speak, whichever it is.
    pub fn prompt(&self) -> &Prompt {
        match self {
            Next::Say(p) | Next::Finish(p) => p,
        }
    }
}

/// One part of the interview plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Knockout(usize),
    Question(usize),
    Blueprint(usize),
    Skill(usize),
    CandidateQuestions,
}

/// Where the conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Greeting,
    Step(usize),
}

/// The item being asked about and what has happened on it.
#[derive(Debug, Clone)]
struct Current {
    stage: Stage,
    /// Id answers are filed under (changes for each pre-written blueprint follow-up).
    question_id: Option<String>,
    /// The item's main question.
    question: String,
    /// The last question asked on it, repeated on request.
    last_asked: String,
    /// Kind of the last question prompt, reused when repeating it.
    last_kind: TurnKind,
    follow_ups: Vec<FollowUpKind>,
    /// The judge's readings of the answers to this item so far.
    judgements: Vec<Judgement>,
    quoted: Vec<String>,
    covered: BTreeSet<String>,
    /// Next pre-written follow-up of a blueprint.
    blueprint_next: usize,
    nudged: bool,
    repeats: u8,
    clarified: bool,
    steered: bool,
    /// The candidate asked for a moment at the greeting.
    waited: bool,
    /// Rounds of the candidate's own questions.
    rounds: u8,
}

impl Current {
    fn new(stage: Stage, question_id: Option<String>, question: String, kind: TurnKind) -> Current {
        Current {
            stage,
            question_id,
            last_asked: question.clone(),
            question,
            last_kind: kind,
            follow_ups: Vec::new(),
            judgements: Vec::new(),
            quoted: Vec::new(),
            covered: BTreeSet::new(),
            blueprint_next: 0,
            nudged: false,
            repeats: 0,
            clarified: false,
            steered: false,
            waited: false,
            rounds: 0,
        }
    }
}

/// Runs one interview. Deterministic: the same answers and times give the same prompts (with
/// the built-in policy).
pub struct Interviewer {
    judge: Arc<Judge>,
    job: Arc<Job>,
    candidate: Option<String>,
    policy: Box<dyn Policy>,
    plan: Vec<Step>,
    started_ms: u64,
    progress: Progress,
    /// The interview as it stood before the last answer, while the reply to it may still be
    /// talked over from its first words ([`resumes_answer`]).
    before_answer: Option<Box<BeforeAnswer>>,
    /// The answer the candidate went on with after talking over the reply: the next answer
    /// is its rest.
    resumed: Option<Answer>,
}

/// Everything an answer changes.
#[derive(Debug, Clone)]
struct Progress {
    done: Vec<bool>,
    current: Current,
    /// Turns so far, interviewer's and candidate's: the next turn's index in the transcript.
    turns: usize,
    assessments: Vec<AnswerAssessment>,
    skills_shown: BTreeSet<String>,
    dimensions_answered: BTreeSet<String>,
    blueprint_asked: bool,
    interrupted: bool,
    closing: Option<Prompt>,
}

/// An answer the candidate may not have finished, and the interview before it.
#[derive(Debug)]
struct BeforeAnswer {
    progress: Progress,
    answer: Answer,
}

/// What the candidate said in answer so far.
#[derive(Debug)]
struct Answer {
    text: String,
    start_ms: u64,
    /// Where its first part is in the transcript.
    turn_index: usize,
}

impl std::fmt::Debug for Interviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interviewer")
            .field("job", &self.job.id)
            .field("stage", &self.progress.current.stage)
            .field("turns", &self.progress.turns)
            .field("finished", &self.progress.closing.is_some())
            .finish_non_exhaustive()
    }
}

impl Interviewer {
    /// Starts an interview at `now_ms` on the call clock: returns the interviewer and its
    /// greeting (with the recording and AI notice), which is turn 0.
    pub fn start(
        judge: Arc<Judge>,
        candidate_name: Option<String>,
        policy: Box<dyn Policy>,
        now_ms: u64,
    ) -> (Interviewer, Prompt) {
        let job = Arc::clone(judge.job());
        let mut plan: Vec<Step> = Vec::new();
        plan.extend((0..job.knockouts.len()).map(Step::Knockout));
        plan.extend((0..job.questions.len()).map(Step::Question));
        plan.extend((0..job.blueprints.len()).map(Step::Blueprint));
        plan.extend((0..job.required_skills.len()).map(Step::Skill));
        plan.push(Step::CandidateQuestions);
        let candidate = candidate_name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        let greeting = greeting_text(&job, candidate.as_deref());
        let done = vec![false; plan.len()];
        let mut interviewer = Interviewer {
            judge,
            job,
            candidate,
            policy,
            plan,
            started_ms: now_ms,
            progress: Progress {
                done,
                current: Current::new(Stage::Greeting, None, greeting.clone(), TurnKind::Greeting),
                turns: 0,
                assessments: Vec::new(),
                skills_shown: BTreeSet::new(),
                dimensions_answered: BTreeSet::new(),
                blueprint_asked: false,
                interrupted: false,
                closing: None,
            },
            before_answer: None,
            resumed: None,
        };
        let prompt = interviewer.prompt(TurnKind::Greeting, None, greeting);
        (interviewer, prompt)
    }

    /// The job item the candidate is answering now (file their turn under this id).
    pub fn answering(&self) -> Option<&str> {
        self.progress.current.question_id.as_deref()
    }

    /// The candidate finished a turn saying `text`, from `start_ms` to `end_ms` on the call
    /// clock. After the interview has finished this returns the closing again and changes
    /// nothing.
    pub fn on_answer(&mut self, text: &str, start_ms: u64, end_ms: u64) -> Next {
        if let Some(closing) = &self.progress.closing {
            return Next::Finish(closing.clone());
        }
        let answer = match self.resumed.take() {
            Some(first) => Answer {
                text: format!("{} {text}", first.text),
                ..first
            },
            None => Answer {
                text: text.to_owned(),
                start_ms,
                turn_index: self.progress.turns,
            },
        };
        let (whole, start_ms, turn_index) =
            (answer.text.clone(), answer.start_ms, answer.turn_index);
        self.before_answer = Some(Box::new(BeforeAnswer {
            progress: self.progress.clone(),
            answer,
        }));
        let text = whole.as_str();
        self.progress.turns += 1;
        let after_interruption = std::mem::take(&mut self.progress.interrupted);
        let question_id = self.progress.current.question_id.clone();
        let judgement = self.judge.judge(question_id.as_deref(), text);
        let is_answer = judgement.is_answer(after_interruption);
        if is_answer && let Some(id) = &question_id {
            self.progress
                .assessments
                .push(judgement.assessment(turn_index, id));
            self.note_evidence(id, text, &judgement);
        }
        tracing::debug!(
            turn = turn_index,
            question = question_id.as_deref().unwrap_or("-"),
            specificity = judgement.specificity,
            vague = judgement.vague,
            depth = ?judgement.depth,
            "candidate answer judged"
        );

        let now = end_ms.max(start_ms);
        if self.time_left(now) <= CLOSING_RESERVE_MS {
            return self.finish(true);
        }
        if judgement.repeat_request || (after_interruption && !is_answer) {
            return self.repeat(&judgement, text, after_interruption, now);
        }
        self.progress.current.repeats = 0;
        // "Would you like me to repeat the question?" - "Yes, please."
        if self.progress.current.nudged
            && judgement.word_count <= 4
            && judgement.affirmation == Some(true)
        {
            self.progress.current.nudged = false;
            let question = self.progress.current.last_asked.clone();
            return self.say(TurnKind::Clarification, format!("Of course. {question}"));
        }
        self.progress.current.nudged = false;

        let mut lead = Vec::new();
        if !judgement.banned_topics.is_empty() {
            let off_subject = judgement.depth == Depth::None || judgement.word_count < 25;
            // Re-ask a question the candidate only used to raise the topic; their own questions
            // at the end and the greeting just get the steer before going on.
            let asking = matches!(
                self.progress.current.stage,
                Stage::Step(index) if self.plan[index] != Step::CandidateQuestions
            );
            if off_subject && asking && !self.progress.current.steered {
                self.progress.current.steered = true;
                let question = self.progress.current.last_asked.clone();
                return self.say(
                    TurnKind::Steer,
                    format!("{STEER} Coming back to my question: {question}"),
                );
            }
            lead.push(STEER.to_string());
        }
        let long = judgement.long_answer || end_ms.saturating_sub(start_ms) > LONG_ANSWER_MS;
        if long {
            lead.push(LONG_ANSWER.to_string());
        }

        match self.progress.current.stage {
            Stage::Greeting => {
                if judgement.affirmation == Some(false) && !self.progress.current.waited && !long {
                    self.progress.current.waited = true;
                    return self.say(TurnKind::Notice, NOT_READY.to_string());
                }
                lead.push(BEGIN.to_string());
                self.advance(now, lead)
            }
            Stage::Step(index) => match self.plan[index] {
                Step::Knockout(k) => self.after_knockout(k, &judgement, now, lead),
                Step::Question(_) | Step::Skill(_) => {
                    if judgement.dont_know && !long {
                        lead.push(UPFRONT.to_string());
                    }
                    let follow_up = !long && !judgement.dont_know;
                    self.after_question(text, &judgement, now, lead, follow_up)
                }
                Step::Blueprint(b) => {
                    if judgement.dont_know && !long {
                        lead.push(UPFRONT.to_string());
                    }
                    self.after_blueprint(b, now, lead, long)
                }
                Step::CandidateQuestions => self.after_candidate_question(&judgement, now, lead),
            },
        }
    }

    /// The candidate has said nothing for `silent_ms` since the interviewer's last prompt
    /// finished (or since they last spoke). The first report past [`NUDGE_AFTER_MS`] draws a
    /// gentle nudge; after a nudge, a report past [`MOVE_ON_AFTER_MS`] moves on. Returns `None`
    /// when it is not yet time to say anything, or the interview is over.
    pub fn on_silence(&mut self, now_ms: u64, silent_ms: u64) -> Option<Next> {
        let next = self.after_silence(now_ms, silent_ms);
        if next.is_some() {
            // The line now said is no reply to the answer.
            self.before_answer = None;
        }
        next
    }

    fn after_silence(&mut self, now_ms: u64, silent_ms: u64) -> Option<Next> {
        if self.progress.closing.is_some() {
            return None;
        }
        if self.time_left(now_ms) <= CLOSING_RESERVE_MS {
            return Some(self.finish(true));
        }
        if !self.progress.current.nudged {
            if silent_ms < NUDGE_AFTER_MS {
                return None;
            }
            self.progress.current.nudged = true;
            let text = match self.progress.current.stage {
                Stage::Greeting => NUDGE_GREETING,
                _ => NUDGE_QUESTION,
            };
            return Some(self.say(TurnKind::Nudge, text.to_string()));
        }
        if silent_ms < MOVE_ON_AFTER_MS {
            return None;
        }
        self.progress.current.nudged = false;
        let lead = vec![MOVE_ON.to_string()];
        Some(match self.progress.current.stage {
            Stage::Step(index) => match self.plan[index] {
                // Pre-written blueprint follow-ups are still asked to everyone.
                Step::Blueprint(b) => self.after_blueprint(b, now_ms, lead, false),
                Step::CandidateQuestions => self.finish(false),
                _ => self.advance(now_ms, lead),
            },
            Stage::Greeting => self.advance(now_ms, lead),
        })
    }

    /// The candidate talked over the last prompt after hearing `heard` of it (nothing, when
    /// they spoke before it played); playback stopped at `heard_until_ms`.
    ///
    /// Talked over within its first words ([`resumes_answer`]), a reply to an answer began
    /// while the candidate was only pausing: the interview goes back to before that answer,
    /// and the next one is its rest, judged whole. Otherwise, once a word of the line was
    /// heard, a bare "sorry, go on" in reply gets the question again instead of counting as
    /// an answer.
    pub fn on_interrupted(&mut self, heard_until_ms: u64, heard: &str) {
        match self.before_answer.take() {
            Some(before) if resumes_answer(heard) => {
                tracing::debug!(heard_until_ms, heard, "candidate went on with their answer");
                let BeforeAnswer { progress, answer } = *before;
                // The transcript holds the answer so far, then what was heard of the reply.
                let turns = progress.turns + 1 + usize::from(!heard.trim().is_empty());
                self.progress = Progress { turns, ..progress };
                self.resumed = Some(answer);
            }
            // Not a word of the line was heard: it is no turn of the transcript, and what the
            // candidate says next is no reply to it.
            _ if heard.trim().is_empty() => {
                self.progress.turns = self.progress.turns.saturating_sub(1);
            }
            _ => {
                tracing::debug!(heard_until_ms, "interviewer interrupted");
                self.progress.interrupted = true;
            }
        }
    }

    /// The judge's assessment of every scored answer so far, in order.
    pub fn assessments(&self) -> &[AnswerAssessment] {
        &self.progress.assessments
    }

    /// Whether the closing has been said.
    pub fn is_finished(&self) -> bool {
        self.progress.closing.is_some()
    }

    /// The planned questions not asked yet, verbatim as they will be spoken (adaptive
    /// follow-ups cannot be known in advance), ending with the closing words. Used to
    /// synthesize speech ahead of time.
    pub fn upcoming_questions(&self) -> Vec<String> {
        if self.progress.closing.is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Stage::Step(index) = self.progress.current.stage
            && let Step::Blueprint(b) = self.plan[index]
        {
            let follow_ups = &self.job.blueprints[b].follow_ups;
            out.extend(
                follow_ups
                    .iter()
                    .skip(self.progress.current.blueprint_next)
                    .map(|f| f.text.clone()),
            );
        }
        for (index, step) in self.plan.iter().enumerate() {
            if self.progress.done[index] {
                continue;
            }
            match *step {
                Step::Blueprint(b) => {
                    let blueprint = &self.job.blueprints[b];
                    out.push(blueprint.text.clone());
                    out.extend(blueprint.follow_ups.iter().map(|f| f.text.clone()));
                }
                Step::Skill(s)
                    if self
                        .progress
                        .skills_shown
                        .contains(&self.job.required_skills[s].id) => {}
                _ => out.push(self.step_question(*step)),
            }
        }
        out.push(self.closing_text(false));
        out
    }

    fn after_knockout(
        &mut self,
        k: usize,
        judgement: &Judgement,
        now: u64,
        mut lead: Vec<String>,
    ) -> Next {
        let knockout = &self.job.knockouts[k];
        let unclear = match knockout.rule() {
            KnockoutRule::MinYears(_) => judgement.years_claimed.is_none(),
            KnockoutRule::MustConfirm => judgement.affirmation.is_none(),
        };
        if unclear && !self.progress.current.clarified {
            self.progress.current.clarified = true;
            let text = match knockout.rule() {
                KnockoutRule::MinYears(_) => HOW_MANY_YEARS.to_string(),
                KnockoutRule::MustConfirm => confirm_again(&knockout.question),
            };
            self.progress.current.last_asked = text.clone();
            lead.push(text);
            return self.say(TurnKind::Clarification, lead.join(" "));
        }
        lead.push(acknowledgement(self.progress.turns).to_string());
        self.advance(now, lead)
    }

    fn after_question(
        &mut self,
        answer: &str,
        judgement: &Judgement,
        now: u64,
        mut lead: Vec<String>,
        may_follow_up: bool,
    ) -> Next {
        for area in judgement.covered_areas() {
            self.progress.current.covered.insert(area.to_string());
        }
        let Some(question_id) = self.progress.current.question_id.clone() else {
            return self.advance(now, lead);
        };
        let limit = match self.job.item(&question_id) {
            Some(Item::Question(q)) => self.job.follow_up_limit(q),
            _ => SKILL_FOLLOW_UPS.min(self.job.max_follow_ups),
        };
        let asked = self.progress.current.follow_ups.len();
        let left = usize::from(limit).saturating_sub(asked);
        let time_for_one = self.time_left(now) >= self.time_needed() + FOLLOW_UP_MS;
        if may_follow_up && left > 0 && time_for_one {
            let uncovered: Vec<String> = match self.job.item(&question_id) {
                Some(Item::Question(q)) => q
                    .areas
                    .iter()
                    .filter(|a| !self.progress.current.covered.contains(*a))
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            };
            let situation = Situation {
                job: &self.job,
                question_id: &question_id,
                question: &self.progress.current.question,
                last_asked: &self.progress.current.last_asked,
                answer,
                judgement,
                earlier: &self.progress.current.judgements,
                uncovered_areas: &uncovered,
                asked: &self.progress.current.follow_ups,
                quoted: &self.progress.current.quoted,
                follow_ups_left: u8::try_from(left).unwrap_or(u8::MAX),
            };
            let decision = self.policy.decide(&situation);
            self.progress.current.judgements.push(judgement.clone());
            if let Decision::Ask { kind, question } = decision {
                let question = question.trim().to_string();
                if !question.is_empty() {
                    tracing::debug!(question = %question_id, ?kind, "adaptive follow-up");
                    self.progress
                        .current
                        .quoted
                        .extend(policy::quoted_mentions(&question, judgement));
                    self.progress.current.follow_ups.push(kind);
                    self.progress.current.last_asked = question.clone();
                    self.progress.current.last_kind = TurnKind::FollowUp;
                    self.progress.current.clarified = false;
                    self.progress.current.steered = false;
                    lead.push(question);
                    return self.say(TurnKind::FollowUp, lead.join(" "));
                }
            }
        }
        if lead.is_empty() {
            lead.push(acknowledgement(self.progress.turns).to_string());
        }
        self.advance(now, lead)
    }

    fn after_blueprint(&mut self, b: usize, now: u64, mut lead: Vec<String>, long: bool) -> Next {
        let blueprint = &self.job.blueprints[b];
        let next = self.progress.current.blueprint_next;
        // A pre-written follow-up must fit with everything not asked yet; a long monologue
        // already used its time.
        let fits = self.time_left(now) >= self.time_needed() + FOLLOW_UP_MS;
        if let Some(follow_up) = blueprint.follow_ups.get(next)
            && fits
            && !long
        {
            let (id, text) = (follow_up.id.clone(), follow_up.text.clone());
            self.progress.current.blueprint_next += 1;
            self.progress.current.question_id = Some(id);
            self.progress.current.last_asked = text.clone();
            self.progress.current.last_kind = TurnKind::BlueprintFollowUp;
            self.progress.current.clarified = false;
            self.progress.current.steered = false;
            if lead.is_empty() {
                lead.push(acknowledgement(self.progress.turns).to_string());
            }
            lead.push(text);
            return self.say(TurnKind::BlueprintFollowUp, lead.join(" "));
        }
        if lead.is_empty() {
            lead.push(acknowledgement(self.progress.turns).to_string());
        }
        self.advance(now, lead)
    }

    fn after_candidate_question(
        &mut self,
        judgement: &Judgement,
        now: u64,
        mut lead: Vec<String>,
    ) -> Next {
        self.progress.current.rounds += 1;
        let has_question = judgement.asks_question && judgement.affirmation != Some(false);
        if has_question && judgement.banned_topics.is_empty() {
            lead.push(QUESTION_NOTED.to_string());
        }
        let wants_to_ask = judgement.affirmation == Some(true) && judgement.word_count <= 6;
        let time_for_more = self.time_left(now) >= CANDIDATE_QUESTIONS_MS / 2 + CLOSING_RESERVE_MS;
        if self.progress.current.rounds < 3 && time_for_more && (has_question || wants_to_ask) {
            let ask = if wants_to_ask && !has_question {
                GO_AHEAD
            } else {
                ANYTHING_ELSE
            };
            lead.push(ask.to_string());
            return self.say(TurnKind::CandidateQuestions, lead.join(" "));
        }
        self.finish_with(lead, false)
    }

    /// Repeats the last question (or, when the candidate did not understand it, puts it
    /// another way); after [`MAX_REPEATS`] requests, moves on.
    fn repeat(&mut self, judgement: &Judgement, text: &str, interrupted: bool, now: u64) -> Next {
        self.progress.current.repeats += 1;
        if self.progress.current.repeats > MAX_REPEATS {
            self.progress.current.repeats = 0;
            let lead = vec![NEXT_QUESTION.to_string()];
            return match self.progress.current.stage {
                Stage::Step(index) => match self.plan[index] {
                    Step::Blueprint(b) => self.after_blueprint(b, now, lead, false),
                    Step::CandidateQuestions => self.finish(false),
                    _ => self.advance(now, lead),
                },
                Stage::Greeting => self.advance(now, lead),
            };
        }
        let question = self.progress.current.last_asked.clone();
        let misunderstood = {
            let words = Text::new(text);
            ["mean", "rephrase", "understand"]
                .iter()
                .any(|w| words.contains(&Phrase::loose(w)))
        };
        let areas: Vec<String> = match self
            .progress
            .current
            .question_id
            .as_deref()
            .and_then(|id| self.job.item(id))
        {
            Some(Item::Question(q)) if misunderstood => q.areas.clone(),
            Some(Item::Blueprint(b)) if misunderstood => b.areas.clone(),
            _ => Vec::new(),
        };
        let text = if interrupted && !judgement.repeat_request {
            format!("{NO_PROBLEM} {question}")
        } else if let Some(example) = for_example(&areas) {
            format!("{ANOTHER_WAY} {question} {example}")
        } else {
            format!("{OF_COURSE} {question}")
        };
        let kind = if interrupted && !judgement.repeat_request {
            self.progress.current.last_kind
        } else {
            TurnKind::Clarification
        };
        self.say(kind, text)
    }

    /// Moves to the next part of the plan, saying `lead` first.
    fn advance(&mut self, now: u64, mut lead: Vec<String>) -> Next {
        let Some(index) = self.next_step(now) else {
            return self.finish_with(lead, self.time_left(now) < CANDIDATE_QUESTIONS_MS);
        };
        self.progress.done[index] = true;
        let step = self.plan[index];
        let (kind, question_id) = match step {
            Step::Knockout(k) => (TurnKind::Knockout, Some(self.job.knockouts[k].id.clone())),
            Step::Question(q) => (TurnKind::Question, Some(self.job.questions[q].id.clone())),
            Step::Blueprint(b) => {
                self.progress.blueprint_asked = true;
                (TurnKind::Question, Some(self.job.blueprints[b].id.clone()))
            }
            Step::Skill(s) => (
                TurnKind::Question,
                Some(self.job.required_skills[s].id.clone()),
            ),
            Step::CandidateQuestions => (TurnKind::CandidateQuestions, None),
        };
        let question = self.step_question(step);
        self.progress.current = Current::new(
            Stage::Step(index),
            question_id.clone(),
            question.clone(),
            kind,
        );
        lead.push(question);
        self.say(kind, lead.join(" "))
    }

    /// The next step to ask: in plan order while time allows everything left; when it does
    /// not, what has no score yet, as long as a question still fits before the closing.
    fn next_step(&self, now: u64) -> Option<usize> {
        let left = self.time_left(now);
        let open: Vec<usize> = (0..self.plan.len())
            .filter(|&i| !self.progress.done[i] && !self.skill_already_shown(self.plan[i]))
            .collect();
        if left >= self.time_needed() {
            return open.first().copied();
        }
        if left < MIN_QUESTION_MS + CLOSING_RESERVE_MS {
            return None;
        }
        let unscored = |i: &usize| match self.plan[*i] {
            Step::Knockout(_) => 0,
            Step::Question(q) => {
                if self
                    .progress
                    .dimensions_answered
                    .contains(&self.job.questions[q].dimension)
                {
                    4
                } else {
                    1
                }
            }
            Step::Blueprint(_) if !self.progress.blueprint_asked => 2,
            Step::Skill(_) => 3,
            Step::Blueprint(_) => 4,
            Step::CandidateQuestions => 5,
        };
        let best = open.iter().min_by_key(|i| (unscored(i), **i)).copied()?;
        if self.plan[best] == Step::CandidateQuestions
            && left < CANDIDATE_QUESTIONS_MS + CLOSING_RESERVE_MS
        {
            return None;
        }
        Some(best)
    }

    fn skill_already_shown(&self, step: Step) -> bool {
        matches!(step, Step::Skill(s) if self.progress.skills_shown.contains(&self.job.required_skills[s].id))
    }

    /// Time the steps not started yet will take, plus the closing.
    fn time_needed(&self) -> u64 {
        let steps: u64 = (0..self.plan.len())
            .filter(|&i| !self.progress.done[i] && !self.skill_already_shown(self.plan[i]))
            .map(|i| match self.plan[i] {
                Step::Knockout(_) => KNOCKOUT_MS,
                Step::Question(_) => QUESTION_MS,
                Step::Blueprint(b) => {
                    BLUEPRINT_MS + FOLLOW_UP_MS * self.job.blueprints[b].follow_ups.len() as u64
                }
                Step::Skill(_) => SKILL_MS,
                Step::CandidateQuestions => CANDIDATE_QUESTIONS_MS,
            })
            .sum();
        steps + CLOSING_RESERVE_MS
    }

    fn time_left(&self, now: u64) -> u64 {
        let budget = u64::from(self.job.duration_minutes) * 60_000;
        budget.saturating_sub(now.saturating_sub(self.started_ms))
    }

    fn step_question(&self, step: Step) -> String {
        step_question(&self.job, step)
    }

    /// Records what an answer showed, for choosing catch-up questions when time is short.
    fn note_evidence(&mut self, question_id: &str, text: &str, judgement: &Judgement) {
        match self.job.item(question_id) {
            Some(Item::Question(q)) => {
                self.progress
                    .dimensions_answered
                    .insert(q.dimension.clone());
            }
            Some(Item::Knockout(_)) | None => return,
            _ => {}
        }
        if judgement.vague || judgement.evasive {
            return;
        }
        let words = Text::new(text);
        for skill in &self.job.required_skills {
            if skill
                .keywords
                .iter()
                .any(|k| words.contains(&Phrase::loose(k)))
            {
                self.progress.skills_shown.insert(skill.id.clone());
            }
        }
    }

    fn closing_text(&self, out_of_time: bool) -> String {
        closing_text(self.candidate.as_deref(), out_of_time)
    }

    fn finish(&mut self, out_of_time: bool) -> Next {
        self.finish_with(Vec::new(), out_of_time)
    }

    fn finish_with(&mut self, mut lead: Vec<String>, out_of_time: bool) -> Next {
        lead.push(self.closing_text(out_of_time));
        let prompt = self.prompt(TurnKind::Closing, None, lead.join(" "));
        self.progress.closing = Some(prompt.clone());
        self.progress.current.question_id = None;
        Next::Finish(prompt)
    }

    fn say(&mut self, kind: TurnKind, text: String) -> Next {
        let question_id = self.progress.current.question_id.clone();
        Next::Say(self.prompt(kind, question_id, text))
    }

    fn prompt(&mut self, kind: TurnKind, question_id: Option<String>, text: String) -> Prompt {
        self.progress.turns += 1;
        Prompt {
            kind,
            question_id,
            text,
        }
    }
}

/// Polite steer away from a banned topic; the topic itself is never named or discussed.
const STEER: &str = "I'm sorry, that's not something I can discuss in this interview.";
/// The fixed things the interviewer says between questions.
const NOT_READY: &str = "No problem, take a moment. Just tell me when you're ready.";
const BEGIN: &str = "Great, let's begin.";
const UPFRONT: &str = "That's fine, thank you for being upfront.";
const NUDGE_GREETING: &str = "Can you hear me? Just say when you're ready to begin.";
const NUDGE_QUESTION: &str = "Take your time. Would you like me to repeat the question?";
const MOVE_ON: &str = "Let's move on.";
const NEXT_QUESTION: &str = "Let's move on to the next question.";
const NO_PROBLEM: &str = "No problem.";
const OF_COURSE: &str = "Of course.";
const ANOTHER_WAY: &str = "Sure, let me put it another way.";
const HOW_MANY_YEARS: &str = "Roughly how many years would you say that is?";
const GO_AHEAD: &str = "Of course, go ahead.";
const QUESTION_NOTED: &str =
    "Thank you for asking. I've noted your question so the hiring team can answer it properly.";
const ANYTHING_ELSE: &str = "Is there anything else you'd like to ask?";
const LONG_ANSWER: &str =
    "Thank you, that's a lot of useful detail. In the interest of time, let's move on.";
const ACKNOWLEDGEMENTS: [&str; 4] = [
    "Thank you.",
    "Thanks, that's helpful.",
    "Got it, thank you.",
    "Okay, thank you.",
];

/// Every line the interviewer says word for word to any candidate of `job`, whatever they
/// answer: the greeting and closings (without a name), every planned question and follow-up,
/// the built-in adaptive follow-ups that quote nobody, and the fixed phrases between them.
/// What can be synthesized before the first candidate calls; follow-ups that quote the
/// candidate or that a language model words, and the sentences that name the candidate,
/// cannot be.
pub fn planned_lines(job: &Job) -> Vec<String> {
    let mut lines = vec![greeting_text(job, None)];
    for knockout in &job.knockouts {
        lines.push(knockout.question.clone());
        if knockout.rule() == KnockoutRule::MustConfirm {
            lines.push(confirm_again(&knockout.question));
        }
    }
    for question in &job.questions {
        lines.push(question.text.clone());
        lines.extend(for_example(&question.areas));
    }
    for blueprint in &job.blueprints {
        lines.push(blueprint.text.clone());
        lines.extend(for_example(&blueprint.areas));
        lines.extend(blueprint.follow_ups.iter().map(|f| f.text.clone()));
    }
    lines.extend((0..job.required_skills.len()).map(|s| step_question(job, Step::Skill(s))));
    lines.push(step_question(job, Step::CandidateQuestions));
    lines.extend(policy::planned_follow_ups(job));
    lines.extend(
        [
            STEER,
            NO_PROBLEM,
            OF_COURSE,
            ANOTHER_WAY,
            NOT_READY,
            BEGIN,
            UPFRONT,
            NUDGE_GREETING,
            NUDGE_QUESTION,
            MOVE_ON,
            NEXT_QUESTION,
            HOW_MANY_YEARS,
            GO_AHEAD,
            ANYTHING_ELSE,
            LONG_ANSWER,
            QUESTION_NOTED,
        ]
        .into_iter()
        .chain(ACKNOWLEDGEMENTS)
        .map(str::to_owned),
    );
    lines.push(closing_text(None, false));
    lines.push(closing_text(None, true));
    lines
}

/// A knockout question asked again after an answer that was neither yes nor no.
fn confirm_again(question: &str) -> String {
    format!("Just so I have it right: {question}")
}

/// Two of an item's knowledge areas as examples, for a candidate who did not understand it.
fn for_example(areas: &[String]) -> Option<String> {
    match areas {
        [first, second, ..] => Some(format!(
            "For example, you could talk about {first} or {second}."
        )),
        _ => None,
    }
}

fn greeting_text(job: &Job, candidate: Option<&str>) -> String {
    let hello = match candidate {
        Some(name) => format!("Hello {name}, and thank you for joining."),
        None => "Hello, and thank you for joining.".to_string(),
    };
    format!(
        "{hello} I'm Viva, an AI interviewer, and I'll run your interview for the {} role \
         today. Before we begin: this call is recorded and transcribed, and the hiring team \
         will review the recording, the transcript and an AI-generated assessment. It will \
         take about {} minutes. Are you ready to begin?",
        job.title, job.duration_minutes
    )
}

fn step_question(job: &Job, step: Step) -> String {
    match step {
        Step::Knockout(k) => job.knockouts[k].question.clone(),
        Step::Question(q) => job.questions[q].text.clone(),
        Step::Blueprint(b) => job.blueprints[b].text.clone(),
        Step::Skill(s) => format!(
            "Tell me about a time your work involved {}: what was the problem, and what did you \
             do?",
            inline_name(&job.required_skills[s].name)
        ),
        Step::CandidateQuestions => {
            "That's all the questions I have. Do you have any questions about the role or the \
             team?"
                .to_string()
        }
    }
}

fn closing_text(candidate: Option<&str>, out_of_time: bool) -> String {
    let thanks = match candidate {
        Some(name) => format!("Thank you, {name}, that's the end of our interview."),
        None => "Thank you, that's the end of our interview.".to_string(),
    };
    let time = if out_of_time {
        "We've reached the end of our time, so let's stop here. "
    } else {
        ""
    };
    format!(
        "{time}{thanks} The hiring team will review it and get back to you about next steps. \
         Have a great day!"
    )
}

/// A neutral thank-you between items (never praise or criticism: every candidate hears the
/// same range), varied by turn number.
fn acknowledgement(turn: usize) -> &'static str {
    ACKNOWLEDGEMENTS[turn % ACKNOWLEDGEMENTS.len()]
}

/// A skill name inside a sentence: "Database optimization" -> "database optimization", but
/// "API design" keeps its acronym.
fn inline_name(name: &str) -> String {
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            first.to_lowercase().chain(name.chars().skip(1)).collect()
        }
        _ => name.to_string(),
    }
}
