//! Judging a candidate's answer with no network and no randomness.
//!
//! The [`Judge`] reads one answer to one job item and measures what a good screener listens
//! for: concrete past work (first person, past tense), numbers with units, named
//! technologies, measured outcomes ([`Judgement::specificity`]); which of the question's
//! knowledge areas the answer really covers ([`AreaCoverage`]); where it sits on the
//! surface/working/deep ladder ([`Depth`]); hedging and generic claims
//! ([`Judgement::vagueness`]); and the things people do on calls: "I don't know", "can you
//! repeat that?", straying into a banned topic, talking for five minutes, claiming years of
//! experience, saying yes or no.
//!
//! Area coverage combines two signals because neither is enough alone: a sentence embedding
//! (all-MiniLM-L6-v2) says an answer sentence is *about* an area, but an on-topic answer that
//! only echoes the question scores nearly as high as a real one. So an area counts as covered
//! only when the answer is similar enough to it **and** either uses one of the area's own terms
//! (one the question did not already say) in a sentence about the candidate's own work, or its
//! most similar sentence is itself specific (a name, a number, something they did).
//!
//! The same answer to the same item always gives the same [`Judgement`].

mod lexicon;
pub(crate) mod text;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::embedding::{EmbedError, Embedder, SentenceEmbedding};
use crate::job::{DepthCues, Item, Job, KnockoutRule};
use crate::scoring::{AnswerAssessment, Depth};
use crate::transcript::{Speaker, Transcript};
use crate::words::split_words;
use text::{Phrase, Text, word_matches};

/// Best-sentence similarity above which an answer is about an area at all.
pub const ON_TOPIC_SIMILARITY: f32 = 0.25;
/// Best-sentence similarity needed, with a grounded term or a specific sentence, for an area
/// to be covered. Measured on the shipped job: strong one-sentence answers reach 0.32-0.45 on
/// their area, unrelated specific sentences stay under 0.21; vague answers often reach 0.6-0.86
/// by echoing the area's words, which is why similarity alone never covers an area.
const AREA_SIMILARITY: f32 = 0.30;
/// Words above which an answer is too long for a screening call (about two minutes of speech).
pub const LONG_ANSWER_WORDS: usize = 260;
/// At most this many sentences of one answer are embedded; a monologue is cut, not refused.
const MAX_SENTENCES: usize = 40;
/// Answers at most this long can be a bare "I don't know" or "can you repeat that?".
const SHORT_ANSWER_WORDS: usize = 30;

/// How one knowledge area of the question was covered by one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AreaCoverage {
    /// The area as written in the job.
    pub area: String,
    /// Best cosine similarity between the area and one sentence of the answer.
    pub similarity: f32,
    /// The answer uses one of the area's own terms that the question did not say.
    pub term_hit: bool,
    /// Judged covered: similar enough, and backed by a term used about the candidate's own
    /// work or by a specific sentence.
    pub covered: bool,
}

/// Something the candidate named that a follow-up can quote back to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mention {
    /// As it should be said back: a technology's usual spelling, or the candidate's own words.
    pub text: String,
    /// A named technology (rather than a concept from the job's depth cues).
    pub technology: bool,
}

/// The concrete details found in an answer, quoted as said.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Specifics {
    /// First-person accounts of past work: "we migrated", "I built".
    pub past_work: Vec<String>,
    /// Numbers with units: "40%", "200 ms", "3 million requests".
    pub measurements: Vec<String>,
    /// Named technologies, in their usual spelling.
    pub technologies: Vec<String>,
    /// Other names (capitalised words, acronyms) such as products, companies, protocols.
    pub names: Vec<String>,
    /// Results: "reduced", "went from", "fixed".
    pub outcomes: Vec<String>,
}

/// Reasoning moves found in an answer, the raw material of the depth rung.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reasoning {
    /// Gives reasons ("because", "so that").
    pub reasons: bool,
    /// Weighs costs ("trade-off", "downside").
    pub trade_offs: bool,
    /// Talks about how it breaks ("race condition", "outage").
    pub failure_modes: bool,
    /// Names options it rejected ("instead of", "we considered").
    pub alternatives: bool,
    /// Measured ("p99", "benchmarked", or a number with a unit).
    pub measured: bool,
    /// The job's depth cues the answer used, with their rung.
    pub cues: Vec<(Depth, String)>,
}

impl Reasoning {
    /// How many different reasoning moves were made (0-5).
    pub fn moves(&self) -> usize {
        [
            self.reasons,
            self.trade_offs,
            self.failure_modes,
            self.alternatives,
            self.measured,
        ]
        .iter()
        .filter(|&&m| m)
        .count()
    }
}

/// Everything the judge concluded about one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// Words in the answer.
    pub word_count: usize,
    /// 0 (nothing concrete) to 1 (first-person past work with numbers, names and outcomes).
    pub specificity: f32,
    /// What made it specific.
    pub specifics: Specifics,
    /// 0 (direct) to 1 (hedges and generic claims throughout).
    pub vagueness: f32,
    /// Hedges found, as said.
    pub hedges: Vec<String>,
    /// Coverage of each knowledge area of the item, in the job's order (empty for items
    /// without areas, such as knockouts).
    pub areas: Vec<AreaCoverage>,
    /// The rung reached; [`Depth::None`] when the answer is not about the question at all.
    pub depth: Depth,
    /// The reasoning moves behind the rung.
    pub reasoning: Reasoning,
    /// Talks around the subject: mostly hedges and generic claims, or nothing concrete and no
    /// depth (never set for knockout answers, where "five years" is a complete answer).
    pub vague: bool,
    /// Avoids the question: "I don't know", or nothing about the subject at all.
    pub evasive: bool,
    /// A short "I don't know" / "I'd rather skip this" with nothing concrete in it.
    pub dont_know: bool,
    /// "Can you repeat that?" or "what do you mean?" rather than an answer.
    pub repeat_request: bool,
    /// Ids of the job's banned topics the answer touched, in the job's order.
    pub banned_topics: Vec<String>,
    /// Longer than `LONG_ANSWER_WORDS` (260 words).
    pub long_answer: bool,
    /// Years of experience claimed ("five years", "5+ years"), the one nearest the subject of
    /// a knockout question when several are given.
    pub years_claimed: Option<f32>,
    /// A clear yes (`Some(true)`) or no (`Some(false)`); `None` when unclear or hedged.
    pub affirmation: Option<bool>,
    /// The candidate asked something (in the part of the call for their questions).
    pub asks_question: bool,
    /// Technologies and concepts named, in order, for follow-ups in the candidate's words.
    pub mentions: Vec<Mention>,
}

impl Judgement {
    /// Whether this turn is an answer to be scored. Asking for the question again is not, nor
    /// is a bare "sorry, go on" right after talking over the interviewer.
    pub fn is_answer(&self, after_interruption: bool) -> bool {
        let acknowledgement = after_interruption
            && self.word_count <= 4
            && self.specifics.technologies.is_empty()
            && self.specifics.measurements.is_empty();
        !self.repeat_request && !acknowledgement && self.word_count > 0
    }

    /// The scorer's view of this answer, for the candidate turn `turn_index` answering
    /// `question_id`.
    pub fn assessment(&self, turn_index: usize, question_id: &str) -> AnswerAssessment {
        AnswerAssessment {
            turn_index,
            question_id: question_id.to_string(),
            specificity: self.specificity,
            coverage: self
                .areas
                .iter()
                .map(|a| (a.area.clone(), a.covered))
                .collect(),
            depth: self.depth,
            vague: self.vague,
            evasive: self.evasive,
            named_technologies: self.specifics.technologies.clone(),
            numbers: self.specifics.measurements.clone(),
            years_claimed: self.years_claimed,
            affirmative: self.affirmation,
        }
    }

    /// Areas judged covered, in the job's order.
    pub fn covered_areas(&self) -> impl Iterator<Item = &str> {
        self.areas
            .iter()
            .filter(|a| a.covered)
            .map(|a| a.area.as_str())
    }
}

/// A knowledge area with what is precomputed for it.
#[derive(Debug)]
struct Area {
    text: String,
    embedding: SentenceEmbedding,
    /// The area's words that its question does not already contain.
    terms: Vec<Phrase>,
}

/// What an item is judged against.
#[derive(Debug, Default)]
struct Target {
    areas: Vec<Area>,
    cues: Vec<(Depth, Phrase, String)>,
}

/// Judges answers to one job's items. Built once per job (it embeds every knowledge area up
/// front) and shared by all interviews of that job.
pub struct Judge {
    job: Arc<Job>,
    embedder: Arc<Embedder>,
    targets: BTreeMap<String, Target>,
    banned: Vec<(String, Vec<Phrase>)>,
}

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge")
            .field("job", &self.job.id)
            .field("targets", &self.targets.len())
            .finish_non_exhaustive()
    }
}

impl Judge {
    /// Prepares judging for `job`: embeds the knowledge areas of every question, blueprint and
    /// required skill.
    pub fn new(job: Arc<Job>, embedder: Arc<Embedder>) -> Result<Judge, EmbedError> {
        let mut plans: Vec<(String, &str, Vec<String>, Option<&DepthCues>)> = Vec::new();
        for q in &job.questions {
            plans.push((q.id.clone(), &q.text, q.areas.clone(), Some(&q.depth)));
        }
        for b in &job.blueprints {
            plans.push((b.id.clone(), &b.text, b.areas.clone(), Some(&b.depth)));
        }
        for s in &job.required_skills {
            plans.push((s.id.clone(), "", vec![s.name.clone()], None));
        }
        // One batch per item keeps every area's vector independent of the rest of the job.
        let mut targets = BTreeMap::new();
        for (id, question, areas, cues) in plans {
            let texts: Vec<&str> = areas.iter().map(String::as_str).collect();
            let embeddings = embedder.embed(&texts)?;
            let question_words = Text::new(question);
            let areas = areas
                .iter()
                .zip(embeddings)
                .map(|(area, embedding)| Area {
                    terms: novel_terms(area, &question_words),
                    text: area.clone(),
                    embedding,
                })
                .collect();
            let mut target = Target {
                areas,
                cues: Vec::new(),
            };
            if let Some(cues) = cues {
                for (depth, list) in [
                    (Depth::Surface, &cues.surface),
                    (Depth::Working, &cues.working),
                    (Depth::Deep, &cues.deep),
                ] {
                    for cue in list {
                        target.cues.push((depth, Phrase::loose(cue), cue.clone()));
                    }
                }
            }
            targets.insert(id, target);
        }
        // Skills are also recognised by their keywords.
        for skill in &job.required_skills {
            if let Some(target) = targets.get_mut(&skill.id)
                && let Some(area) = target.areas.first_mut()
            {
                area.terms
                    .extend(skill.keywords.iter().map(|k| Phrase::loose(k)));
            }
        }
        let banned = job
            .banned_topics
            .iter()
            .map(|t| {
                (
                    t.id.clone(),
                    t.triggers.iter().map(|p| Phrase::plural(p)).collect(),
                )
            })
            .collect();
        Ok(Judge {
            job,
            embedder,
            targets,
            banned,
        })
    }

    /// The job this judge was built for.
    pub fn job(&self) -> &Arc<Job> {
        &self.job
    }

    /// Judges `answer` as an answer to the job item `question_id` (a question, blueprint,
    /// blueprint follow-up, required skill or knockout id; `None` for small talk such as the
    /// greeting or the candidate's own questions).
    pub fn judge(&self, question_id: Option<&str>, answer: &str) -> Judgement {
        let text = Text::new(answer);
        let item = question_id.and_then(|id| self.job.item(id));
        let target = match item {
            Some(Item::BlueprintFollowUp { blueprint, .. }) => self.targets.get(&blueprint.id),
            _ => question_id.and_then(|id| self.targets.get(id)),
        };

        let facts = sentence_facts(&text);
        let specifics = specifics(&text);
        let specificity = specificity_of(&specifics);
        let (hedges, vagueness) = vagueness(&text, &facts);
        let areas = target.map_or_else(Vec::new, |t| self.coverage(t, &text, &facts));
        let reasoning = reasoning(&text, &facts, target, !specifics.measurements.is_empty());
        let on_topic = areas.iter().any(|a| a.similarity >= ON_TOPIC_SIMILARITY);
        let depth = depth(&reasoning, &areas, on_topic, &specifics);

        let words = text.word_count();
        let short = words <= SHORT_ANSWER_WORDS;
        let says_dont_know = lexicon::DONT_KNOW.iter().any(|p| {
            let phrase = Phrase::exact(p);
            // A one-word "pass" or "skip" only declines when it is nearly all that was said.
            if phrase.words.len() == 1 && p.len() <= 4 {
                words <= 6 && text.contains(&phrase)
            } else {
                text.contains(&phrase)
            }
        });
        let dont_know = says_dont_know && short && specificity < 0.25;
        let repeat_request = words <= 15
            && lexicon::REPEAT_REQUESTS
                .iter()
                .any(|p| text.contains(&Phrase::plural(p)));
        // Sentences that stray into a banned topic: their words are never quoted back.
        let mut banned_topics = Vec::new();
        let mut banned_sentences = Vec::new();
        for (id, triggers) in &self.banned {
            let hits: Vec<usize> = triggers
                .iter()
                .flat_map(|t| text.find(t))
                .map(|at| text.words[at].sentence)
                .collect();
            if !hits.is_empty() {
                banned_topics.push(id.clone());
                banned_sentences.extend(hits);
            }
        }
        let quotable = |at: usize| !banned_sentences.contains(&text.words[at].sentence);
        let subject = match item {
            Some(Item::Knockout(k)) if matches!(k.rule(), KnockoutRule::MinYears(_)) => {
                Some(k.question.as_str())
            }
            _ => None,
        };
        let mut mentions: Vec<Mention> = Vec::new();
        for (at, name) in technology_matches(&text) {
            if quotable(at) && !mentions.iter().any(|m| m.text == name) {
                mentions.push(Mention {
                    text: name.to_string(),
                    technology: true,
                });
            }
        }
        if let Some(target) = target {
            let mut spans: Vec<(usize, String)> = Vec::new();
            for (rung, phrase, _) in &target.cues {
                if *rung == Depth::Surface {
                    continue;
                }
                if let Some(&at) = text.find(phrase).iter().find(|&&at| quotable(at)) {
                    let last = &text.words[at + phrase.words.len() - 1].lower;
                    // "You mentioned deprecated" does not work; only noun-like spans are kept.
                    if !is_past(last) {
                        spans.push((at, text.span(at, phrase.words.len())));
                    }
                }
            }
            spans.sort();
            for (_, span) in spans {
                if !mentions.iter().any(|m| m.text.eq_ignore_ascii_case(&span)) {
                    mentions.push(Mention {
                        text: span,
                        technology: false,
                    });
                }
            }
        }
        let knockout = matches!(item, Some(Item::Knockout(_)));
        let vague = !knockout
            && !dont_know
            && words >= 5
            && (vagueness >= 0.4 || (specificity < 0.2 && depth <= Depth::Surface));
        // Off the subject altogether (for an item with knowledge areas) counts as evasion.
        let evasive = dont_know || (!areas.is_empty() && depth == Depth::None && words >= 5);

        Judgement {
            word_count: words,
            specificity,
            specifics,
            vagueness,
            hedges,
            areas,
            depth,
            reasoning,
            vague,
            evasive,
            dont_know,
            repeat_request,
            banned_topics,
            long_answer: words > LONG_ANSWER_WORDS,
            years_claimed: years_claimed(&text, subject),
            affirmation: affirmation(&text),
            asks_question: asks_question(answer, &text),
            mentions,
        }
    }

    /// Judges every scored answer of a finished transcript: candidate turns that answer a job
    /// item (`question_id` names one) and are answers by [`Judgement::is_answer`], each with
    /// the turns that went on with it ([`Transcript::continued_answer`]). Gives the same
    /// assessments the [`Interviewer`](crate::interviewer::Interviewer) made live, so a
    /// report can be rebuilt from the transcript alone.
    pub fn assess_transcript(&self, transcript: &Transcript) -> Vec<AnswerAssessment> {
        // Each answer whole: its first turn and the text of every turn that went on with it.
        let mut answers: Vec<(usize, String)> = Vec::new();
        for (index, turn) in transcript.turns.iter().enumerate() {
            if turn.speaker != Speaker::Candidate {
                continue;
            }
            if transcript.continued_answer(index).is_some()
                && let Some((_, text)) = answers.last_mut()
            {
                text.push(' ');
                text.push_str(&turn.text);
            } else {
                answers.push((index, turn.text.clone()));
            }
        }
        let mut out = Vec::new();
        for (index, text) in answers {
            let Some(id) = transcript.turns[index].question_id.as_deref() else {
                continue;
            };
            if self.job.item(id).is_none() {
                continue;
            }
            let after_interruption = index
                .checked_sub(1)
                .and_then(|i| transcript.turns.get(i))
                .is_some_and(|t| t.speaker == Speaker::Interviewer && t.interrupted);
            let judgement = self.judge(Some(id), &text);
            if judgement.is_answer(after_interruption) {
                out.push(judgement.assessment(index, id));
            }
        }
        out
    }

    fn coverage(&self, target: &Target, text: &Text, facts: &[SentenceFacts]) -> Vec<AreaCoverage> {
        let sentences: Vec<&str> = text.sentences.iter().take(MAX_SENTENCES).copied().collect();
        let embedded = match self.embedder.embed(&sentences) {
            Ok(e) => e,
            Err(err) => {
                // Terms and specificity still judge the answer; the interview must go on.
                tracing::warn!(error = %err, "sentence embedding failed; judging coverage by terms only");
                Vec::new()
            }
        };
        target
            .areas
            .iter()
            .map(|area| {
                let (best, similarity) = embedded
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (i, e.cosine(&area.embedding)))
                    .fold(
                        (None, 0.0f32),
                        |acc, (i, s)| {
                            if s > acc.1 { (Some(i), s) } else { acc }
                        },
                    );
                let term_sentences: Vec<usize> = area
                    .terms
                    .iter()
                    .flat_map(|t| text.find(t))
                    .map(|at| text.words[at].sentence)
                    .collect();
                let term_hit = !term_sentences.is_empty();
                // Naming the area in a generic claim ("you should think about versioning")
                // is not covering it; saying it about one's own work, or concretely, is.
                let grounded_term = term_sentences.iter().any(|&i| facts[i].grounded);
                let specific_term = term_sentences.iter().any(|&i| facts[i].specific);
                let covered = if embedded.is_empty() {
                    specific_term
                } else {
                    (similarity >= AREA_SIMILARITY
                        && (grounded_term || best.is_some_and(|i| facts[i].specific)))
                        || (similarity >= ON_TOPIC_SIMILARITY && specific_term)
                };
                AreaCoverage {
                    area: area.text.clone(),
                    similarity,
                    term_hit,
                    covered,
                }
            })
            .collect()
    }
}

/// Content words of an area that its question does not contain; if the question says them
/// all, all of the area's content words.
fn novel_terms(area: &str, question: &Text) -> Vec<Phrase> {
    let content: Vec<String> = split_words(area)
        .into_iter()
        .map(text::normalise)
        .filter(|w| w.chars().count() > 2 && !lexicon::STOPWORDS.contains(&w.as_str()))
        .collect();
    let in_question = |w: &str| {
        question
            .words
            .iter()
            .any(|q| word_matches(&q.lower, w) || word_matches(w, &q.lower))
    };
    let novel: Vec<&String> = content.iter().filter(|w| !in_question(w)).collect();
    let chosen: Vec<&String> = if novel.is_empty() {
        content.iter().collect()
    } else {
        novel
    };
    chosen.into_iter().map(|w| Phrase::loose(w)).collect()
}

static MEASUREMENT: LazyLock<Regex> = LazyLock::new(|| {
    let numbers = number_words_pattern();
    let units = r"%|percent|per ?cent|x\b|times\b|ms\b|milliseconds?|seconds?|secs?\b|s\b|minutes?|mins?\b|hours?|hrs?\b|days?|weeks?|months?|years?|requests?|req/s|rps\b|qps\b|tps\b|transactions|users|customers|tenants|clients|rows|records|events|messages|jobs|tasks|queries|calls|gb\b|tb\b|mb\b|kb\b|gigabytes?|terabytes?|megabytes?|nodes|servers|instances|machines|pods|shards|partitions|replicas|services|microservices|engineers|people|developers|teams|endpoints|tables|dollars|euros|connections|threads|workers|consumers|regions";
    Regex::new(&format!(
        r"(?x)
        \$\s?\d[\d,.]*\s*(?:k|m|million|thousand|billion)?
        | \bp(?:50|90|95|99|999)\b
        | \b\d+(?:\.\d+)?k\b
        | (?:\b\d[\d,.]*|\b(?:{numbers})\b)\s*(?:\+|plus)?\s*(?:k\b|million|thousand|billion|hundred)?\s*(?:{units})"
    ))
    .unwrap_or_else(|e| unreachable!("measurement pattern is valid: {e}"))
});

static YEARS: LazyLock<Regex> = LazyLock::new(|| {
    let numbers = number_words_pattern();
    Regex::new(&format!(
        r"(?x)
        \b(?P<num>\d+(?:\.\d+)?|{numbers})\s*(?:\+|plus)?\s*(?P<half>and_a_half\s+)?(?:years?|yrs?)\b
        | \b(?P<special>a\ decade|half\ a\ year|a\ year)\b"
    ))
    .unwrap_or_else(|e| unreachable!("years pattern is valid: {e}"))
});

static CLAUSE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[,;:]|\band\b|\bbut\b|\bwhile\b|\bthough\b")
        .unwrap_or_else(|e| unreachable!("clause pattern is valid: {e}"))
});

/// Number words, longest first so "a couple of" wins over "a couple".
fn number_words_pattern() -> String {
    let mut words: Vec<&str> = lexicon::NUMBER_WORDS
        .iter()
        .map(|(w, _)| *w)
        .filter(|w| !w.contains("year") && !w.contains("decade"))
        .collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    words
        .iter()
        .map(|w| w.replace(' ', r"\ "))
        .collect::<Vec<_>>()
        .join("|")
}

fn number_value(word: &str) -> Option<f32> {
    word.parse::<f32>().ok().or_else(|| {
        lexicon::NUMBER_WORDS
            .iter()
            .find(|(w, _)| *w == word)
            .map(|(_, v)| *v)
    })
}

fn specifics(text: &Text) -> Specifics {
    let mut s = Specifics::default();
    // First-person past work: a subject, at most two adverbs, a past-tense verb.
    for (i, w) in text.words.iter().enumerate() {
        if !lexicon::FIRST_PERSON.contains(&w.lower.as_str()) {
            continue;
        }
        let mut j = i + 1;
        while j < text.words.len()
            && j <= i + 3
            && text.words[j].sentence == w.sentence
            && lexicon::ADVERBS.contains(&text.words[j].lower.as_str())
            && !is_past(&text.words[j].lower)
        {
            j += 1;
        }
        if let Some(verb) = text.words.get(j)
            && verb.sentence == w.sentence
            && is_past(&verb.lower)
        {
            s.past_work.push(text.span(i, j + 1 - i));
        }
    }
    for i in 0..text.sentences.len() {
        let lower = text.lower_sentence(i);
        s.measurements.extend(
            MEASUREMENT
                .find_iter(&lower)
                .map(|m| m.as_str().trim().to_string()),
        );
    }
    s.technologies = technologies(text);
    for w in &text.words {
        let first = w.original.chars().next().unwrap_or(' ');
        let letters = w.original.chars().filter(|c| c.is_alphabetic()).count();
        let acronym = letters >= 2 && w.original.chars().all(|c| !c.is_lowercase());
        let name = first.is_uppercase() && (!w.sentence_start || acronym);
        if name
            && letters >= 2
            && !lexicon::NOT_NAMES.contains(&w.lower.as_str())
            && !is_technology_word(&w.lower)
            && !s.names.iter().any(|n| n.eq_ignore_ascii_case(w.original))
        {
            s.names.push(w.original.to_string());
        }
    }
    for phrase in lexicon::OUTCOMES {
        let p = Phrase::exact(phrase);
        for at in text.find(&p) {
            s.outcomes.push(text.span(at, p.words.len()));
        }
    }
    s
}

fn is_past(word: &str) -> bool {
    if lexicon::IRREGULAR_PAST.contains(&word) {
        return true;
    }
    word.len() >= 5 && word.ends_with("ed") && !lexicon::NOT_PAST.contains(&word)
}

/// Every technology named, as (word index, usual spelling), in order of appearance.
fn technology_matches(text: &Text) -> Vec<(usize, &'static str)> {
    let mut found: Vec<(usize, &'static str)> = lexicon::TECHNOLOGIES
        .iter()
        .flat_map(|(name, spellings)| {
            spellings
                .iter()
                .flat_map(|s| text.find(&Phrase::exact(s)))
                .map(move |at| (at, *name))
        })
        .collect();
    found.sort();
    found
}

/// Named technologies, each once, in order of first mention.
fn technologies(text: &Text) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (_, name) in technology_matches(text) {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// Whether a word is one of the single-word spellings of a technology.
fn is_technology_word(lower: &str) -> bool {
    lexicon::TECHNOLOGIES
        .iter()
        .any(|(_, spellings)| spellings.contains(&lower))
}

/// Weighted blend of the four kinds of concreteness, each saturating quickly: two numbers are
/// plenty for a spoken answer.
fn specificity_of(s: &Specifics) -> f32 {
    let saturate = |n: usize, enough: usize| n.min(enough) as f32 / enough as f32;
    let named = s.technologies.len() + s.names.len();
    0.30 * saturate(s.past_work.len(), 3)
        + 0.25 * saturate(s.measurements.len(), 2)
        + 0.25 * saturate(named, 3)
        + 0.20 * saturate(s.outcomes.len(), 1)
}

/// What kind of statement each sentence is.
#[derive(Debug, Clone, Copy)]
struct SentenceFacts {
    /// First-person past work, a named technology or a number with a unit.
    specific: bool,
    /// Specific, or a plain statement about the speaker's own work or a past event, without
    /// hedging or generalising ("in our API errors carry a stable code", "every incident got
    /// a postmortem").
    grounded: bool,
    /// A generic claim with nothing concrete: "you should", "it depends", "various".
    generic: bool,
}

fn sentence_facts(text: &Text) -> Vec<SentenceFacts> {
    let tech_sentences: Vec<usize> = technology_matches(text)
        .into_iter()
        .map(|(at, _)| text.words[at].sentence)
        .collect();
    (0..text.sentences.len())
        .map(|index| {
            let words: Vec<&text::Word> =
                text.words.iter().filter(|w| w.sentence == index).collect();
            let lower: Vec<&str> = words.iter().map(|w| w.lower.as_str()).collect();
            let past_work = lower
                .windows(2)
                .any(|pair| lexicon::FIRST_PERSON.contains(&pair[0]) && is_past(pair[1]))
                || lower.windows(3).any(|w| {
                    lexicon::FIRST_PERSON.contains(&w[0])
                        && lexicon::ADVERBS.contains(&w[1])
                        && is_past(w[2])
                });
            let specific = past_work
                || tech_sentences.contains(&index)
                || MEASUREMENT.is_match(&text.lower_sentence(index));
            let sentence = Text::new(text.sentences[index]);
            let hedged = lexicon::HEDGES
                .iter()
                .any(|h| sentence.contains(&Phrase::exact(h)));
            let generalising = lower.iter().any(|w| lexicon::GENERIC_MARKERS.contains(w));
            let personal = lower.iter().any(|w| lexicon::FIRST_PERSON_ANY.contains(w))
                || lower.iter().any(|w| is_past(w));
            SentenceFacts {
                specific,
                grounded: specific || (personal && !generalising && !hedged),
                generic: !specific && (generalising || hedged),
            }
        })
        .collect()
}

/// Hedges found, and a 0-1 score: half the rate of hedges per sentence, half the share of
/// sentences that are generic claims with nothing concrete in them.
fn vagueness(text: &Text, facts: &[SentenceFacts]) -> (Vec<String>, f32) {
    let mut hedges = Vec::new();
    for hedge in lexicon::HEDGES {
        let p = Phrase::exact(hedge);
        for at in text.find(&p) {
            hedges.push(text.span(at, p.words.len()));
        }
    }
    let sentences = text.sentences.len();
    if sentences == 0 {
        return (hedges, 0.0);
    }
    let generic = facts.iter().filter(|f| f.generic).count();
    let rate = (hedges.len() as f32 / sentences as f32).min(1.0);
    let score = 0.5 * rate + 0.5 * generic as f32 / sentences as f32;
    (hedges, score)
}

fn reasoning(
    text: &Text,
    facts: &[SentenceFacts],
    target: Option<&Target>,
    has_measurement: bool,
) -> Reasoning {
    let any = |list: &[&str]| list.iter().any(|p| text.contains(&Phrase::exact(p)));
    let mut cues = Vec::new();
    if let Some(target) = target {
        for (depth, phrase, cue) in &target.cues {
            // Naming a working or deep concept in a generic claim ("you should think about
            // versioning") does not place the answer on that rung.
            let counts = text
                .find(phrase)
                .into_iter()
                .any(|at| *depth == Depth::Surface || facts[text.words[at].sentence].grounded);
            if counts {
                cues.push((*depth, cue.clone()));
            }
        }
    }
    Reasoning {
        reasons: any(lexicon::REASONS),
        trade_offs: any(lexicon::TRADE_OFFS),
        failure_modes: lexicon::FAILURE_MODES
            .iter()
            .any(|p| text.contains(&Phrase::loose(p))),
        alternatives: any(lexicon::ALTERNATIVES),
        measured: has_measurement || any(lexicon::MEASUREMENTS),
        cues,
    }
}

fn depth(
    reasoning: &Reasoning,
    areas: &[AreaCoverage],
    on_topic: bool,
    specifics: &Specifics,
) -> Depth {
    let deep_cue = reasoning.cues.iter().any(|(d, _)| *d == Depth::Deep);
    let working_cue = reasoning.cues.iter().any(|(d, _)| *d == Depth::Working);
    let surface_cue = reasoning.cues.iter().any(|(d, _)| *d == Depth::Surface);
    let moves = reasoning.moves();
    let covered = areas.iter().filter(|a| a.covered).count();
    let specific = specificity_of(specifics);
    if (deep_cue && moves >= 2)
        || moves >= 4
        || (deep_cue && covered >= 2 && moves >= 1)
        || (moves >= 3 && covered >= 2 && specific >= 0.5)
    {
        Depth::Deep
    } else if working_cue
        || deep_cue
        || moves >= 2
        || covered >= 2
        || (covered >= 1 && moves >= 1 && specific >= 0.25)
    {
        Depth::Working
    } else if on_topic || surface_cue || covered >= 1 || !specifics.technologies.is_empty() {
        Depth::Surface
    } else {
        Depth::None
    }
}

/// The years claim nearest the knockout's subject: each claim scores the question's content
/// words in its clause ("eight years in backend, and five years designing APIs": the second);
/// the best wins, the first on a tie.
fn years_claimed(text: &Text, subject: Option<&str>) -> Option<f32> {
    let subject_words: Vec<String> = subject
        .map(|q| {
            split_words(q)
                .into_iter()
                .map(text::normalise)
                .filter(|w| {
                    w.len() > 3
                        && !lexicon::STOPWORDS.contains(&w.as_str())
                        && !w.starts_with("year")
                })
                .collect()
        })
        .unwrap_or_default();
    let mut best: Option<(usize, f32)> = None;
    for i in 0..text.sentences.len() {
        // "two and a half years" must not be cut into clauses at its "and".
        let lower = text.lower_sentence(i).replace(" and a half", " and_a_half");
        for clause in CLAUSE.split(&lower) {
            let relevance = split_words(clause)
                .into_iter()
                .filter(|w| {
                    subject_words
                        .iter()
                        .any(|s| word_matches(w, s) || word_matches(s, w))
                })
                .count();
            for caps in YEARS.captures_iter(clause) {
                let value = if let Some(special) = caps.name("special") {
                    match special.as_str() {
                        "a decade" => 10.0,
                        "half a year" => 0.5,
                        _ => 1.0,
                    }
                } else {
                    let Some(n) = caps.name("num").and_then(|m| number_value(m.as_str())) else {
                        continue;
                    };
                    n + if caps.name("half").is_some() {
                        0.5
                    } else {
                        0.0
                    }
                };
                if best.is_none_or(|(r, _)| relevance > r) {
                    best = Some((relevance, value));
                }
            }
        }
    }
    best.map(|(_, v)| v)
}

/// A clear yes or no. Phrases that contain a "no" but mean yes ("no problem") count as yes,
/// "I could not" is not "I could", and single words only count near the start of a sentence
/// ("make sure" is not a yes). An answer with both ("yes, but I can't before March") is unclear.
fn affirmation(text: &Text) -> Option<bool> {
    let near_start = |at: usize| {
        let sentence = text.words[at].sentence;
        text.words[..at]
            .iter()
            .rev()
            .take_while(|w| w.sentence == sentence)
            .count()
            < 3
    };
    let occurrences = |list: &[&str]| -> Vec<(usize, usize)> {
        list.iter()
            .flat_map(|p| {
                let phrase = Phrase::exact(p);
                let len = phrase.words.len();
                text.find(&phrase)
                    .into_iter()
                    .filter(move |&at| len > 1 || near_start(at))
                    .map(move |at| (at, len))
            })
            .collect()
    };
    let yes: Vec<(usize, usize)> = occurrences(lexicon::YES)
        .into_iter()
        .filter(|&(at, len)| text.words.get(at + len).is_none_or(|w| w.lower != "not"))
        .collect();
    let no = occurrences(lexicon::NO)
        .into_iter()
        .any(|(at, _)| !yes.iter().any(|&(y, _)| y == at));
    match (!yes.is_empty(), no) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

fn asks_question(raw: &str, text: &Text) -> bool {
    const OPENERS: &[&str] = &[
        "what", "how", "when", "who", "where", "why", "is", "are", "do", "does", "can", "could",
        "will", "would",
    ];
    raw.contains('?')
        || text
            .words
            .iter()
            .any(|w| w.sentence_start && OPENERS.contains(&w.lower.as_str()))
}
