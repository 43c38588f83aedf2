//! Reading a spoken answer: words, sentences and phrase matching that tolerate the small
//! variations of speech-to-text output (plurals, "-ing" forms, stray capitals).

use crate::words::split_words;

/// One word of an answer, with where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Word<'a> {
    /// The word as transcribed.
    pub original: &'a str,
    /// Lower case with typographic apostrophes made plain.
    pub lower: String,
    /// Index of the sentence it belongs to.
    pub sentence: usize,
    /// First word of its sentence (its capital letter says nothing about it being a name).
    pub sentence_start: bool,
}

/// An answer cut into sentences and words.
#[derive(Debug)]
pub(crate) struct Text<'a> {
    /// Sentences, trimmed, in order.
    pub sentences: Vec<&'a str>,
    /// Words of all sentences, in order.
    pub words: Vec<Word<'a>>,
}

impl<'a> Text<'a> {
    pub fn new(answer: &'a str) -> Text<'a> {
        let sentences = split_sentences(answer);
        let mut words = Vec::new();
        for (index, sentence) in sentences.iter().enumerate() {
            for (position, original) in split_words(sentence).into_iter().enumerate() {
                words.push(Word {
                    original,
                    lower: normalise(original),
                    sentence: index,
                    sentence_start: position == 0,
                });
            }
        }
        Text { sentences, words }
    }

    /// Number of words.
    pub fn word_count(&self) -> usize {
        self.words.len()
    }

    /// Every place `phrase` occurs, as the index of its first word (see [`Matching`]).
    pub fn find(&self, phrase: &Phrase) -> Vec<usize> {
        let n = phrase.words.len();
        if n == 0 || self.words.len() < n {
            return Vec::new();
        }
        (0..=self.words.len() - n)
            .filter(|&start| {
                phrase.words.iter().enumerate().all(|(offset, want)| {
                    let word = &self.words[start + offset];
                    // A phrase does not run across a sentence end.
                    word.sentence == self.words[start].sentence
                        && phrase.matching.matches(&word.lower, want)
                })
            })
            .collect()
    }

    /// Whether `phrase` occurs anywhere.
    pub fn contains(&self, phrase: &Phrase) -> bool {
        !self.find(phrase).is_empty()
    }

    /// The answer's own words for `count` words starting at `start`.
    pub fn span(&self, start: usize, count: usize) -> String {
        self.words[start..start + count]
            .iter()
            .map(|w| w.original)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Lower-case sentence text with plain apostrophes, for regular expressions.
    pub fn lower_sentence(&self, index: usize) -> String {
        normalise(self.sentences[index])
    }
}

/// How strictly a phrase's words must match an answer's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Matching {
    /// Word for word.
    Exact,
    /// Word for word, give or take a plural ("bonus" finds "bonuses", not "bonusing").
    Plural,
    /// Stems and prefixes too (see [`word_matches`]).
    Stem,
}

impl Matching {
    fn matches(self, word: &str, want: &str) -> bool {
        match self {
            Matching::Exact => word == want,
            Matching::Plural => is_plural_of(word, want),
            Matching::Stem => word_matches(word, want),
        }
    }
}

/// A phrase to look for, pre-split into lower-case words.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Phrase {
    pub words: Vec<String>,
    pub matching: Matching,
}

impl Phrase {
    fn new(text: &str, matching: Matching) -> Phrase {
        Phrase {
            words: split_words(text).into_iter().map(normalise).collect(),
            matching,
        }
    }

    /// A phrase whose words may carry an ending ("cache" finds "caches", "caching").
    pub fn loose(text: &str) -> Phrase {
        Phrase::new(text, Matching::Stem)
    }

    /// A phrase whose words may be plural, nothing more: for phrases whose stems mean other
    /// things ("compensation" must not find "compensating").
    pub fn plural(text: &str) -> Phrase {
        Phrase::new(text, Matching::Plural)
    }

    /// A phrase matched word for word.
    pub fn exact(text: &str) -> Phrase {
        Phrase::new(text, Matching::Exact)
    }
}

/// `word` is `want` or its plural.
fn is_plural_of(word: &str, want: &str) -> bool {
    word == want
        || word.strip_suffix('s').is_some_and(|w| w == want)
        || word.strip_suffix("es").is_some_and(|w| w == want)
        || (want.ends_with('y')
            && word
                .strip_suffix("ies")
                .is_some_and(|w| w.len() + 1 == want.len() && want.starts_with(w)))
}

/// Whether an answer word matches a wanted word. Short wanted words (an acronym like "api" or
/// "slo", or "rest") must match whole, give or take a plural, so "rest" does not find
/// "restart"; longer ones match as prefixes so a stem like "idempoten" finds "idempotency".
/// Both sides are stemmed first so "caching" meets "cache" and "retries" meets "retry".
pub(crate) fn word_matches(word: &str, want: &str) -> bool {
    if word == want {
        return true;
    }
    if want.chars().count() <= 4 {
        return is_plural_of(word, want);
    }
    let (word, want_stem) = (stem(word), stem(want));
    word.starts_with(want) || word.starts_with(&want_stem)
}

/// A crude English stem: enough to make "caching"/"cache", "retries"/"retry" and
/// "invalidation"/"invalidate" ("invalidat") meet on a common prefix.
fn stem(word: &str) -> String {
    for (suffix, replacement) in [
        ("ies", "y"),
        ("ied", "y"),
        ("ation", "at"),
        ("ing", ""),
        ("ed", ""),
        ("es", ""),
        ("e", ""),
        ("s", ""),
    ] {
        if let Some(base) = word.strip_suffix(suffix)
            && base.chars().count() >= 3
        {
            return format!("{base}{replacement}");
        }
    }
    word.to_string()
}

/// Lower case, typographic apostrophes made plain.
pub(crate) fn normalise(word: &str) -> String {
    word.to_lowercase().replace(['’', '‘'], "'")
}

/// Sentences end at `.`, `!`, `?` followed by a space (not "node.js" or "99.9"), or at a line
/// break.
fn split_sentences(text: &str) -> Vec<&str> {
    let mut sentences = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let end_mark = matches!(b, b'.' | b'!' | b'?')
            && bytes
                .get(i + 1)
                .is_none_or(|next| next.is_ascii_whitespace());
        if end_mark || b == b'\n' {
            push_trimmed(&mut sentences, &text[start..=i]);
            start = i + 1;
        }
    }
    push_trimmed(&mut sentences, &text[start..]);
    sentences
}

fn push_trimmed<'a>(out: &mut Vec<&'a str>, piece: &'a str) {
    let piece = piece.trim();
    if piece.chars().any(char::is_alphanumeric) {
        out.push(piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_on_terminators_not_inside_names_or_numbers() {
        let text = Text::new("We used Node.js. Uptime went to 99.9%! Why? Because\nretries.");
        assert_eq!(
            text.sentences,
            [
                "We used Node.js.",
                "Uptime went to 99.9%!",
                "Why?",
                "Because",
                "retries."
            ]
        );
        assert!(text.words[0].sentence_start && !text.words[1].sentence_start);
    }

    #[test]
    fn loose_phrases_tolerate_endings_but_short_words_match_whole() {
        let text = Text::new(
            "Caching hot rows, we restarted pods and retried APIs with idempotency keys.",
        );
        assert!(text.contains(&Phrase::loose("cache")));
        assert!(text.contains(&Phrase::loose("retry")));
        assert!(text.contains(&Phrase::loose("api")));
        assert!(text.contains(&Phrase::loose("idempoten")));
        assert!(text.contains(&Phrase::loose("idempotency key")));
        assert!(text.contains(&Phrase::loose("pod")));
        assert!(!text.contains(&Phrase::loose("rest")));
        assert!(!text.contains(&Phrase::exact("cache")));
    }

    #[test]
    fn plural_phrases_take_plurals_only() {
        let text = Text::new("Sagas with compensating actions; two bonuses; salaries.");
        assert!(!text.contains(&Phrase::plural("compensation")));
        assert!(text.contains(&Phrase::plural("bonus")));
        assert!(text.contains(&Phrase::plural("salary")));
        assert!(!text.contains(&Phrase::plural("sag")));
    }

    #[test]
    fn phrases_do_not_cross_sentences() {
        let text = Text::new("We added a query. Plan was simple.");
        assert!(!text.contains(&Phrase::loose("query plan")));
    }

    #[test]
    fn span_returns_the_answers_own_words() {
        let text = Text::new("We added Circuit Breakers to the gateway.");
        let at = text.find(&Phrase::loose("circuit breaker"));
        assert_eq!(at, [2]);
        assert_eq!(text.span(2, 2), "Circuit Breakers");
    }
}
