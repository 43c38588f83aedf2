//! Terms of the trade whisper misheard, put back where the audio agrees.
//!
//! Biasing the decoder ([`crate::vocabulary`]) only tips near ties token by token; tiny.en
//! still writes "Jango" for Django, "DBZIM" for Debezium and "graphed UL" for GraphQL, because
//! each wrong piece was likelier at the moment it was chosen. After decoding, every run of one
//! to three words that holds a word whisper was unsure of, or wrote as a name ("Postgres QL"),
//! and *sounds* like a listed term (espeak-ng's IPA of both, a weighted edit distance) is a
//! candidate, and whisper itself settles it: its decoder scores the transcript with the words
//! as heard and with the term in their place, on the same encoded audio, over the words and
//! the one after them, with the terms in question as the text before (as a glossary prompt
//! would give them). The term replaces the words only when whisper, so reminded, finds it
//! nearly as likely as what it wrote (more nearly the less the sounds differ); a single word
//! whisper knows whole must come close to it without the reminder too. Where two terms
//! compete for the same words, the likelier wins. Other words heard with confidence are never
//! candidates: a "century" or "home" that was really said scores too close to Sentry or Helm
//! for the decoder alone to keep it.

use whisper_rs::{WhisperContext, WhisperState};

use crate::stt::{Segment, Word};

/// How much less likely (natural log) than the words as written a term may be and still
/// replace them: a greedy decoder can write words that, read whole, are a little likelier
/// than the term that was said ("graph on a" -0.01, "either potent" -0.65), but not much;
/// words really said that merely sound alike score lower ("retrys" for Redis -1.76, "Reads"
/// -2.76). Tuned on `config/bench/vocabulary-dev-*.txt` and the earlier held-out set
/// (`vocabulary-answers.txt`); `vocabulary-fresh-*.txt` was written after and held out.
const MARGIN: f32 = 1.0;
/// Words that sound all but the same as the term (a weighted edit distance up to
/// [`SAME_SOUND`]: "item potency" for idempotency, 0.04) leave the audio no say, and whisper
/// may find the term this much less likely and still be wrong (-1.5 to -1.7 there, "Engine
/// X" for nginx -1.5 to -2.9, "a night in potency" -1.8 to -2.4); words really said that
/// sound alike differ more ("retrys" for Redis, 0.43, -1.6 to -2.2) or score far lower
/// ("red. Is", 0.10, -5.1).
const SAME_SOUND_MARGIN: f32 = 3.0;
const SAME_SOUND: f32 = 0.11;
/// How much less likely a term may be than a word whisper knows whole, read without the
/// reminder (see [`confirm_terms`]). Told nothing of the term, whisper still finds a word
/// really said much likelier ("century" 4.1-5.5 nats over Sentry), a term it heard as a word
/// only a little ("centuries" for Sentry on the phone line, 2.2). Tuned on the fresh and
/// shipped sets (`config/bench/vocabulary-*.txt`): no held-out set is left for it.
const UNREMINDED_MARGIN: f32 = 3.0;
/// How unlike a term's sound a run of words may be and still be checked: the weighted edit
/// distance over the longer of the two. No right term in five sets was taken further off
/// than 0.38; at 0.44, Redis won by 14.8 nats over "Bredguous", a nonword whisper wrote for
/// "bridge was": words that are no words are no rival, so the sound alone must be close.
const MAX_DISTANCE: f32 = 0.40;
/// Only runs with a word whisper was this unsure of are checked: a misheard term leaves the
/// decoder guessing ("cough goth" 0.28, "Promecious" 0.39, "graph UL" 0.44), while a
/// sound-alike that was really said is heard with confidence ("century" 0.98, "home" 0.99).
const MAX_CONFIDENCE: f32 = 0.75;
/// Words a misheard term can have been split into ("Men Cash D").
const MAX_SPAN_WORDS: usize = 3;
/// Checks per utterance, the closest-sounding first: each costs a few decoder steps.
const MAX_CHECKS: usize = 4;

/// A term and how it sounds.
#[derive(Debug, Clone)]
pub(crate) struct SpokenTerm {
    pub(crate) text: String,
    pub(crate) sound: Sound,
}

/// The phonemes of some words, stress and spaces left out, as comparable units.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sound(Vec<char>);

impl Sound {
    /// Reads espeak-ng's IPA: stress, length, syllable and word marks carry no phoneme.
    pub(crate) fn from_ipa(ipa: &str) -> Sound {
        Sound(
            ipa.chars()
                .filter(|c| c.is_alphabetic() && !matches!(c, 'ˈ' | 'ˌ' | 'ː' | 'ˑ'))
                .collect(),
        )
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How unlike two sounds are, from 0 (the same) up: an edit distance where a vowel for
    /// another vowel, or a consonant for its voiced or unvoiced twin, costs half, and a vowel
    /// dropped or added costs half; divided by the longer sound's length.
    fn distance(&self, other: &Sound) -> f32 {
        let (a, b) = (&self.0, &other.0);
        if a.is_empty() || b.is_empty() {
            return f32::INFINITY;
        }
        let gap = |c: char| if is_vowel(c) { 0.5 } else { 1.0 };
        let mut previous: Vec<f32> = std::iter::once(0.0)
            .chain(b.iter().scan(0.0, |sum, &c| {
                *sum += gap(c);
                Some(*sum)
            }))
            .collect();
        for &x in a {
            let mut row = Vec::with_capacity(b.len() + 1);
            row.push(previous[0] + gap(x));
            for (j, &y) in b.iter().enumerate() {
                let best = (previous[j] + substitution(x, y))
                    .min(previous[j + 1] + gap(x))
                    .min(row[j] + gap(y));
                row.push(best);
            }
            previous = row;
        }
        previous[b.len()] / a.len().max(b.len()) as f32
    }
}

fn is_vowel(c: char) -> bool {
    "aeiouyæɑɒɔəɚɛɜɝɪʊʌɐɘɵɨʉøœɤɯ".contains(c)
}

fn substitution(x: char, y: char) -> f32 {
    const TWINS: &[(char, char)] = &[
        ('p', 'b'),
        ('t', 'd'),
        ('k', 'ɡ'),
        ('f', 'v'),
        ('s', 'z'),
        ('θ', 'ð'),
        ('ʃ', 'ʒ'),
        ('t', 'ɾ'),
        ('d', 'ɾ'),
        ('ɹ', 'ɚ'),
        ('m', 'n'),
        ('n', 'ŋ'),
    ];
    if x == y {
        0.0
    } else if (is_vowel(x) && is_vowel(y))
        || TWINS
            .iter()
            .any(|&(a, b)| (a, b) == (x, y) || (b, a) == (x, y))
    {
        0.5
    } else {
        1.0
    }
}

/// Words of a segment that may be a misheard term.
#[derive(Debug, Clone, PartialEq)]
struct Candidate {
    segment: usize,
    /// The words `first..=last` of the segment.
    first: usize,
    last: usize,
    term: usize,
    distance: f32,
    /// Whether the first word is an "a" that was "an" before the term: said before a vowel,
    /// its "n" is heard as the start of the next word ("an idempotency" as "a night in
    /// potency").
    article: bool,
}

/// Finds the runs of words that sound like a term without being it, closest first, among
/// those holding a word whisper was unsure of. `sound_of` gives a word's sound (`None` when
/// it has none).
fn candidates(
    segments: &[Segment],
    terms: &[SpokenTerm],
    mut sound_of: impl FnMut(&str) -> Option<Sound>,
) -> Vec<Candidate> {
    let mut found = Vec::new();
    for (s, segment) in segments.iter().enumerate() {
        let words: Vec<&str> = segment.words.iter().map(|w| bare(&w.word)).collect();
        let in_question: Vec<bool> = (0..words.len())
            .map(|i| segment.words[i].probability < MAX_CONFIDENCE || taken_for_a_name(segment, i))
            .collect();
        // Only words near one in question can be part of a checked run; espeak-ng is asked
        // about those alone.
        let sounds: Vec<Option<Sound>> = (0..words.len())
            .map(|i| {
                let near =
                    i.saturating_sub(MAX_SPAN_WORDS - 1)..(i + MAX_SPAN_WORDS).min(words.len());
                if in_question[near].contains(&true) {
                    sound_of(words[i])
                } else {
                    None
                }
            })
            .collect();
        let is_term: Vec<bool> = words
            .iter()
            .map(|w| terms.iter().any(|t| t.text.eq_ignore_ascii_case(w)))
            .collect();
        for first in 0..words.len() {
            let mut joined = Vec::new();
            for last in first..(first + MAX_SPAN_WORDS).min(words.len()) {
                let Some(sound) = &sounds[last] else { break };
                joined.extend_from_slice(&sound.0);
                if !in_question[first..=last].contains(&true) {
                    continue;
                }
                let heard = Sound(joined.clone());
                for (t, term) in terms.iter().enumerate() {
                    if !could_be(&words[first..=last], &is_term[first..=last], term) {
                        continue;
                    }
                    let (short, long) = (
                        heard.len().min(term.sound.len()),
                        heard.len().max(term.sound.len()),
                    );
                    if (short as f32) < long as f32 * (1.0 - MAX_DISTANCE) {
                        continue;
                    }
                    let distance = heard.distance(&term.sound);
                    if distance <= MAX_DISTANCE {
                        found.push(Candidate {
                            segment: s,
                            first,
                            last,
                            term: t,
                            distance,
                            article: false,
                        });
                    }
                    if first > 0
                        && words[first - 1].eq_ignore_ascii_case("a")
                        && term.sound.0.first().is_some_and(|&c| is_vowel(c))
                    {
                        let linked = Sound(
                            std::iter::once('n')
                                .chain(term.sound.0.iter().copied())
                                .collect(),
                        );
                        let distance = heard.distance(&linked);
                        if distance <= MAX_DISTANCE {
                            found.push(Candidate {
                                segment: s,
                                first: first - 1,
                                last,
                                term: t,
                                distance,
                                article: true,
                            });
                        }
                    }
                }
            }
        }
    }
    found.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    found.truncate(MAX_CHECKS);
    found
}

/// Whether `words` may be `term` misheard: a word that is itself a term was heard right, and
/// can only be part of a longer term split in two ("Postgres QL" for PostgreSQL); a word
/// that is the term with an ending ("Helms", "Kafka's") was heard right in another form, its
/// ending said.
fn could_be(words: &[&str], is_term: &[bool], term: &SpokenTerm) -> bool {
    let name = term.text.to_lowercase();
    if words.len() == 1 && (is_term[0] || words[0].to_lowercase().starts_with(&name)) {
        return false;
    }
    words.iter().zip(is_term).all(|(word, &is_term)| {
        let word = word.to_lowercase();
        !is_term || (word != name && name.contains(&word))
    })
}

/// Whether whisper wrote word `i` of `segment` as a name (capitalised inside a sentence, as
/// "Postgres" in "Postgres QL"): whisper writes a name it knows with confidence where the
/// audio is a term it does not know, so such a word is checked like an unsure one. Acronyms
/// ("TLS") and sentence starts are not taken for names.
fn taken_for_a_name(segment: &Segment, i: usize) -> bool {
    let Some(before) = i.checked_sub(1).map(|b| &segment.words[b].word) else {
        return false;
    };
    let mut letters = bare(&segment.words[i].word).chars();
    !before.trim_end().ends_with(['.', '?', '!'])
        && letters.next().is_some_and(char::is_uppercase)
        && letters.any(char::is_lowercase)
}

/// A word without the punctuation whisper attaches to it.
fn bare(word: &str) -> &str {
    word.trim_matches(|c: char| !c.is_alphanumeric())
}

/// The decoder, scoring text against the audio `state` last encoded.
pub(crate) struct Scorer<'a> {
    pub(crate) context: &'a WhisperContext,
    pub(crate) state: &'a mut WhisperState,
    /// What starts a transcription without timestamps: start of transcript, language and
    /// task for a multilingual model, no timestamps.
    pub(crate) start: Vec<i32>,
    pub(crate) threads: usize,
}

impl Scorer<'_> {
    /// The terms of `found` whisper spells in pieces, once each, as the text before the
    /// transcript (" Debezium, PgBouncer"): whisper finds a spelling it has just read likelier,
    /// as a person told what a conversation is about would. A term whisper writes as one
    /// token of its own (Helm) is left out: reminded of it, whisper heard it in a "home
    /// page". Only the terms in question, so it costs a few tokens.
    fn glossary(
        &self,
        found: &[Candidate],
        terms: &[SpokenTerm],
    ) -> Result<Vec<i32>, whisper_rs::WhisperError> {
        let mut names: Vec<&str> = Vec::new();
        for candidate in found {
            let name = terms[candidate.term].text.as_str();
            if !names.contains(&name) && self.tokens(&format!(" {name}"))?.len() > 1 {
                names.push(name);
            }
        }
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut glossary = vec![self.context.token_prev()];
        glossary.extend(self.tokens(&format!(" {}", names.join(", ")))?);
        Ok(glossary)
    }

    fn tokens(&self, text: &str) -> Result<Vec<i32>, whisper_rs::WhisperError> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        self.context.tokenize(text, text.len() + 1)
    }

    /// The log-probability of each of `continuations` following `text[..at]`. The decoder
    /// remembers the text it read, so after a first call (`fresh`) a later one for an
    /// earlier `at` reads only the token before it.
    fn score(
        &mut self,
        text: &[i32],
        at: usize,
        fresh: bool,
        continuations: &[Vec<i32>],
    ) -> Result<Vec<f32>, whisper_rs::WhisperError> {
        // whisper.cpp keeps logits of a batch's last token in the batch's last row, and
        // `get_logits` reads the first: the token before `at` is read on its own.
        if fresh && at > 1 {
            self.state.decode(&text[..at - 1], 0, self.threads)?;
        }
        self.state.decode(&text[at - 1..at], at - 1, self.threads)?;
        let after_text = self.state.get_logits()?.to_vec();
        let mut scores = Vec::with_capacity(continuations.len());
        for continuation in continuations {
            let mut total = 0.0;
            let mut logits = after_text.clone();
            for (i, &token) in continuation.iter().enumerate() {
                total += log_probability(&logits, token);
                if i + 1 < continuation.len() {
                    self.state.decode(&[token], at + i, self.threads)?;
                    logits = self.state.get_logits()?.to_vec();
                }
            }
            scores.push(total);
        }
        Ok(scores)
    }
}

fn log_probability(logits: &[f32], token: i32) -> f32 {
    let Some(&logit) = usize::try_from(token).ok().and_then(|t| logits.get(t)) else {
        return f32::NEG_INFINITY;
    };
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
    logit - max - sum.ln()
}

/// One term checked against the words it may have been heard as.
#[derive(Debug)]
pub(crate) struct Check {
    pub(crate) confidence: f32,
    pub(crate) heard: String,
    pub(crate) term: String,
    /// How unlike the words and the term sound ([`Sound::distance`]).
    pub(crate) distance: f32,
    /// The term's log-probability less the words', whisper reminded of the term.
    pub(crate) gain: f32,
    /// The same without the reminder, for a word whisper knows whole.
    pub(crate) unreminded_gain: Option<f32>,
    pub(crate) taken: bool,
}

/// Puts terms back where whisper, asked again, finds them nearly as likely as the words it
/// wrote. `segments` must come from the single window `scorer.state` last decoded.
pub(crate) fn confirm_terms(
    segments: &mut [Segment],
    terms: &[SpokenTerm],
    scorer: &mut Scorer<'_>,
    sound_of: impl FnMut(&str) -> Option<Sound>,
) -> Result<Vec<Check>, whisper_rs::WhisperError> {
    let found = candidates(segments, terms, sound_of);
    if found.is_empty() {
        return Ok(Vec::new());
    }
    // The transcript as whisper reads it without timestamps, after the terms in question as
    // its previous text, and where each word begins.
    let words: Vec<&Word> = segments.iter().flat_map(|s| &s.words).collect();
    let mut text = scorer.glossary(&found, terms)?;
    let reminder = text.len();
    text.extend(&scorer.start);
    let mut word_at = Vec::with_capacity(words.len() + 1);
    for word in &words {
        word_at.push(text.len());
        text.extend(scorer.tokens(&format!(" {}", word.word))?);
    }
    word_at.push(text.len());
    let first_word: Vec<usize> = segments
        .iter()
        .scan(0, |n, s| {
            let first = *n;
            *n += s.words.len();
            Some(first)
        })
        .collect();
    let limit = usize::try_from(scorer.context.n_text_ctx()).unwrap_or(0);

    // Later runs first: scoring one makes the decoder forget the text from its start on.
    let mut order: Vec<usize> = (0..found.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(first_word[found[i].segment] + found[i].first));
    let mut scored: Vec<Option<(f32, String)>> = vec![None; found.len()];
    let mut unreminded_gain: Vec<Option<f32>> = vec![None; found.len()];
    let mut unreminded = Vec::new();
    let mut fresh = true;
    for i in order {
        let candidate = &found[i];
        let (first, last) = (
            first_word[candidate.segment] + candidate.first,
            first_word[candidate.segment] + candidate.last,
        );
        let heard: Vec<&str> = words[first..=last]
            .iter()
            .map(|w| w.word.as_str())
            .collect();
        let sentence_goes_on = words
            .get(last + 1)
            .is_some_and(|next| !next.word.trim_start().starts_with(char::is_uppercase));
        let replaced = in_place_of(
            &heard.join(" "),
            &terms[candidate.term].text,
            candidate.article,
            sentence_goes_on,
        );
        // The word after the run tells whether the term fits what follows.
        let tail = match word_at.get(last + 2) {
            Some(&end) => text[word_at[last + 1]..end].to_vec(),
            None => vec![scorer.context.token_eot()],
        };
        let at = word_at[first];
        let mut as_heard = text[at..word_at[last + 1]].to_vec();
        as_heard.extend(&tail);
        let mut as_term = scorer.tokens(&format!(" {replaced}"))?;
        as_term.extend(&tail);
        if at + as_heard.len().max(as_term.len()) >= limit {
            continue;
        }
        let continuations = [as_heard, as_term];
        let scores = scorer.score(&text, at, fresh, &continuations)?;
        fresh = false;
        let gain = scores[1] - scores[0];
        scored[i] = Some((gain, replaced));
        if reminder > 0
            && gain >= -margin(candidate.distance)
            && first == last
            && !candidate.article
            && scorer
                .tokens(&format!(" {}", bare(&words[first].word)))?
                .len()
                == 1
        {
            unreminded.push((i, at, continuations));
        }
    }
    // A word whisper knows whole ("century", one token of its own) must come within
    // UNREMINDED_MARGIN of the term without the reminder too: reminded of Sentry, whisper
    // found it 3 nats likelier than a "century" really said. Scored last, since each reads
    // the transcript afresh.
    for (i, at, continuations) in unreminded {
        let scores = scorer.score(&text[reminder..], at - reminder, true, &continuations)?;
        unreminded_gain[i] = Some(scores[1] - scores[0]);
    }

    // The likeliest replacements first; a run overlapping one already replaced stays, so of
    // two terms competing for the same words ("idempotent", "idempotency") whisper's choice
    // wins.
    let mut ranked: Vec<(Candidate, f32, Option<f32>, String)> = found
        .into_iter()
        .zip(scored)
        .zip(unreminded_gain)
        .filter_map(|((candidate, scored), unreminded)| {
            scored.map(|(gain, replaced)| (candidate, gain, unreminded, replaced))
        })
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut checks = Vec::new();
    let mut taken: Vec<(Candidate, String)> = Vec::new();
    for (candidate, gain, unreminded_gain, replaced) in ranked {
        let span = &segments[candidate.segment].words[candidate.first..=candidate.last];
        let take = gain >= -margin(candidate.distance)
            && unreminded_gain.is_none_or(|gain| gain >= -UNREMINDED_MARGIN)
            && !taken.iter().any(|(t, _)| overlaps(t, &candidate));
        checks.push(Check {
            confidence: span.iter().map(|w| w.probability).fold(1.0, f32::min),
            heard: span
                .iter()
                .map(|w| w.word.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            term: terms[candidate.term].text.clone(),
            distance: candidate.distance,
            gain,
            unreminded_gain,
            taken: take,
        });
        if take {
            taken.push((candidate, replaced));
        }
    }
    // Replace from the end of each segment, so earlier word indexes stay valid.
    taken.sort_by_key(|(at, _)| std::cmp::Reverse((at.segment, at.first)));
    for (at, replaced) in taken {
        let segment = &mut segments[at.segment];
        let span = &segment.words[at.first..=at.last];
        let word = Word {
            word: replaced,
            start_ms: span[0].start_ms,
            end_ms: span[span.len() - 1].end_ms,
            probability: span.iter().map(|w| w.probability).sum::<f32>() / span.len() as f32,
        };
        segment.words.splice(at.first..=at.last, [word]);
        // The text is the words, as whisper wrote them, once its annotations are dropped.
        segment.text = segment
            .words
            .iter()
            .map(|w| w.word.as_str())
            .collect::<Vec<_>>()
            .join(" ");
    }
    Ok(checks)
}

/// The term written in place of the words `heard`, the punctuation around them kept around
/// it, after "an" if `article`. An initialism's last dot is its own, not the sentence's, when
/// the sentence goes on after it: "fast P.I. app" for FastAPI is "FastAPI app" (as "FastAPI.
/// app", ending a sentence whisper never heard end, it lost by 4.4 nats; it wins by as much).
fn in_place_of(heard: &str, term: &str, article: bool, sentence_goes_on: bool) -> String {
    let lead = &heard[..heard.find(char::is_alphanumeric).unwrap_or(0)];
    let trail_at = heard.rfind(char::is_alphanumeric).map_or(heard.len(), |i| {
        i + heard[i..].chars().next().map_or(1, char::len_utf8)
    });
    let mut trail = &heard[trail_at..];
    let last_word = heard.rsplit(' ').next().unwrap_or(heard);
    if sentence_goes_on && is_initialism(last_word.trim_end_matches([',', ';', ':'])) {
        trail = trail.strip_prefix('.').unwrap_or(trail);
    }
    let article = match (article, heard[lead.len()..].starts_with('A')) {
        (false, _) => "",
        (true, false) => "an ",
        (true, true) => "An ",
    };
    format!("{lead}{article}{term}{trail}")
}

/// Whether `word` is letters each followed by a dot, as whisper writes a run of letters it
/// heard spelled out ("P.I.").
fn is_initialism(word: &str) -> bool {
    let bytes = word.as_bytes();
    bytes.len() >= 4
        && bytes.len().is_multiple_of(2)
        && bytes
            .chunks(2)
            .all(|pair| pair[0].is_ascii_alphabetic() && pair[1] == b'.')
}

/// How much less likely than the words heard a term that sounds `distance` from them may
/// be and still replace them.
fn margin(distance: f32) -> f32 {
    if distance <= SAME_SOUND {
        SAME_SOUND_MARGIN
    } else {
        MARGIN
    }
}

fn overlaps(a: &Candidate, b: &Candidate) -> bool {
    a.segment == b.segment && a.first <= b.last && b.first <= a.last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_term_keeps_the_punctuation_around_the_words_but_not_an_initialisms_dot() {
        assert_eq!(in_place_of("Graph QL,", "GraphQL", false, true), "GraphQL,");
        assert_eq!(in_place_of("(Jango)", "Django", false, true), "(Django)");
        assert_eq!(in_place_of("fast P.I.", "FastAPI", false, true), "FastAPI");
        assert_eq!(
            in_place_of("fast P.I.,", "FastAPI", false, true),
            "FastAPI,"
        );
        // At the end of the sentence, the dot is both the initialism's and the sentence's.
        assert_eq!(
            in_place_of("fast P.I.", "FastAPI", false, false),
            "FastAPI."
        );
        assert_eq!(in_place_of("was Ok.", "Kafka", false, true), "Kafka.");
        assert_eq!(
            in_place_of("A night in potency", "idempotency", true, true),
            "An idempotency"
        );
    }

    /// espeak-ng's American English IPA for the words of these tests.
    fn ipa(words: &str) -> Option<Sound> {
        let ipa = match words.to_lowercase().as_str() {
            "sentry" => "sˈɛntɹi",
            "century" => "sˈɛntʃɚɹi",
            "salary" => "sˈæləɹi",
            "celery" => "sˈɛləɹi",
            "postgresql" => "pˈoʊstɡɹˈɛskjˈuːˈɛl",
            "postgres" => "pˈoʊstɡɹˈɛs",
            "ql" => "kjˌuːˈɛl",
            "in" => "ɪn",
            "we" => "wiː",
            "use" => "jˈuːz",
            "the" => "ðə",
            "every" => "ˈɛvɹi",
            "day" => "dˈeɪ",
            // As the voice's lexicon respells it ("kahf-ka"), which is what a call reads.
            "kafka" => "kˈɑːfkˈɑː",
            "cough" => "kˈɔf",
            "goth" => "ɡˈɑθ",
            "topic" => "tˈɑːpɪk",
            "helm" => "hˈɛlm",
            "helms" => "hˈɛlmz",
            "hellman" => "hˈɛlmən",
            "a" => "ɐ",
            "sends" => "sˈɛndz",
            "night" => "nˈaɪt",
            "potency" => "pˈoʊtənsi",
            "idempotency" => "ˈaɪdəmpˈoʊtənsi",
            "from" => "fɹʌm",
            _ => return None,
        };
        Some(Sound::from_ipa(ipa))
    }

    fn term(text: &str) -> SpokenTerm {
        SpokenTerm {
            text: text.to_owned(),
            sound: ipa(text).unwrap(),
        }
    }

    /// A segment of `(word, whisper's confidence)`.
    fn segment(words: &[(&str, f32)]) -> Segment {
        Segment {
            start_ms: 0,
            end_ms: 1000,
            text: words.iter().map(|w| w.0).collect::<Vec<_>>().join(" "),
            words: words
                .iter()
                .map(|&(word, probability)| Word {
                    word: word.to_owned(),
                    start_ms: 0,
                    end_ms: 0,
                    probability,
                })
                .collect(),
            closing: None,
        }
    }

    fn runs(segments: &[Segment], terms: &[SpokenTerm]) -> Vec<(String, String)> {
        candidates(segments, terms, ipa)
            .into_iter()
            .map(|c| {
                let words = &segments[c.segment].words[c.first..=c.last];
                let words: Vec<&str> = words.iter().map(|w| w.word.as_str()).collect();
                (words.join(" "), terms[c.term].text.clone())
            })
            .collect()
    }

    #[test]
    fn sound_alikes_are_close_and_other_words_are_not() {
        let d = |a: &str, b: &str| ipa(a).unwrap().distance(&ipa(b).unwrap());
        assert_eq!(d("sentry", "sentry"), 0.0);
        assert!(d("century", "sentry") < MAX_DISTANCE);
        assert!(
            d("salary", "celery") < d("century", "sentry"),
            "a vowel is half a consonant"
        );
        assert!(d("day", "kafka") > MAX_DISTANCE);
        assert!(d("topic", "sentry") > MAX_DISTANCE);
        // Symmetric, and stress marks carry nothing.
        assert_eq!(d("century", "sentry"), d("sentry", "century"));
        assert_eq!(Sound::from_ipa("sˈɛntɹi"), Sound::from_ipa("sɛntɹi"));
    }

    #[test]
    fn only_runs_whisper_was_unsure_of_are_checked() {
        let terms = [term("Sentry"), term("Kafka")];
        let unsure = [segment(&[("the", 0.9), ("century", 0.4), ("every", 0.95)])];
        let found = runs(&unsure, &terms);
        assert_eq!(
            found[0],
            ("century".into(), "Sentry".into()),
            "closest first"
        );
        assert!(found.iter().all(|(words, _)| words.contains("century")));
        let sure = [segment(&[("the", 0.9), ("century", 0.98), ("every", 0.95)])];
        assert!(runs(&sure, &terms).is_empty());
    }

    #[test]
    fn a_term_split_into_words_is_a_run_of_them() {
        let terms = [term("Kafka")];
        let heard = [segment(&[
            ("we", 0.9),
            ("cough", 0.3),
            ("goth", 0.3),
            ("topic", 0.9),
        ])];
        let found = runs(&heard, &terms);
        assert!(
            found.contains(&("cough goth".into(), "Kafka".into())),
            "{found:?}"
        );
        assert!(
            !found.iter().any(|(words, _)| words.contains("topic")),
            "{found:?}"
        );
    }

    #[test]
    fn a_term_heard_right_is_never_replaced_but_may_grow_into_a_longer_one() {
        let terms = [
            term("Celery"),
            term("Sentry"),
            term("PostgreSQL"),
            term("postgres"),
        ];
        // "celery" is a term: not a misheard Sentry, nor part of a run for one.
        let heard = [segment(&[
            ("use", 0.9),
            ("celery", 0.3),
            ("every", 0.9),
            ("day", 0.9),
        ])];
        assert!(
            runs(&heard, &terms).is_empty(),
            "{:?}",
            runs(&heard, &terms)
        );
        // "Postgres" is a term, and PostgreSQL begins with it.
        let heard = [segment(&[("in", 0.9), ("Postgres", 0.6), ("QL", 0.5)])];
        let found = runs(&heard, &terms);
        assert_eq!(
            found[0],
            ("Postgres QL".into(), "PostgreSQL".into()),
            "{found:?}"
        );
        assert!(
            !found.iter().any(|(words, _)| words == "Postgres"),
            "{found:?}"
        );
    }

    #[test]
    fn an_an_heard_as_a_goes_with_the_term_it_came_before() {
        let terms = [term("idempotency")];
        let heard = [segment(&[
            ("sends", 0.9),
            ("a", 0.9),
            ("night", 0.6),
            ("in", 0.7),
            ("potency", 0.6),
        ])];
        let found = candidates(&heard, &terms, ipa);
        let linked = found
            .iter()
            .find(|c| c.article)
            .unwrap_or_else(|| panic!("{found:?}"));
        assert_eq!((linked.first, linked.last), (1, 4));
        assert!(linked.distance <= SAME_SOUND, "{linked:?}");
        // After any other word there is no "an" to mend.
        let heard = [segment(&[
            ("the", 0.9),
            ("night", 0.6),
            ("in", 0.7),
            ("potency", 0.6),
        ])];
        let found = candidates(&heard, &terms, ipa);
        assert!(!found.iter().any(|c| c.article), "{found:?}");
    }

    #[test]
    fn a_term_with_an_ending_was_heard_right() {
        let terms = [term("Helm")];
        let heard = [segment(&[("Mr.", 0.9), ("Helms", 0.5), ("from", 0.9)])];
        assert!(
            runs(&heard, &terms).is_empty(),
            "{:?}",
            runs(&heard, &terms)
        );
        // A word merely sounding like it may be the term misheard.
        let heard = [segment(&[("with", 0.9), ("Hellman", 0.5), ("from", 0.9)])];
        assert_eq!(runs(&heard, &terms), [("Hellman".into(), "Helm".into())]);
    }

    #[test]
    fn a_name_inside_a_sentence_is_checked_however_sure_whisper_was() {
        let terms = [term("PostgreSQL"), term("postgres")];
        let named = [segment(&[("in", 0.9), ("Postgres", 0.9), ("QL", 0.9)])];
        let found = runs(&named, &terms);
        assert_eq!(
            found[0],
            ("Postgres QL".into(), "PostgreSQL".into()),
            "{found:?}"
        );
        // At the start of a sentence a capital says nothing, and an acronym is no name.
        for sure in [
            segment(&[("Postgres", 0.9), ("QL", 0.9)]),
            segment(&[("in.", 0.9), ("Postgres", 0.9), ("QL", 0.9)]),
            segment(&[("in", 0.9), ("POSTGRES", 0.9), ("QL", 0.9)]),
        ] {
            let found = runs(std::slice::from_ref(&sure), &terms);
            assert!(found.is_empty(), "{found:?}");
        }
    }

    #[test]
    fn checks_are_bounded_per_utterance() {
        let terms = [term("Sentry")];
        let many: Vec<(&str, f32)> = std::iter::repeat_n(("century", 0.4), 20).collect();
        assert_eq!(runs(&[segment(&many)], &terms).len(), MAX_CHECKS);
    }
}
