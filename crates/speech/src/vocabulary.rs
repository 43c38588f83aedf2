//! The words of the trade a call expects, so whisper writes "Celery" and not "salary".
//!
//! Whisper tiny.en spells backend jargon by ear ("RabbitMQ" -> "Ravittemq", "Grafana" ->
//! "graph on a"). A [`Vocabulary`] is prepared once per job (or call) from the job's own
//! terms, then biases decoding of every utterance: whisper.cpp hands each decoding step's
//! logits to a filter, and a trie of the terms' token sequences raises the next token of a
//! term whose beginning was just decoded (contextual biasing). The first token of a term gets
//! only a small raise, so a term wins only where the audio already makes it a close second:
//! "salary" said stays "salary". Words whisper writes as one token need no help and are left
//! out, so common words are never pushed.

use std::collections::HashSet;
use std::sync::Arc;

use crate::confirm::{Sound, SpokenTerm};

/// How far the first token of a term is raised, in logits (natural-log odds). Small: it may
/// only tip a near tie, never outvote what was clearly said.
const START_BOOST: f32 = 2.0;
/// How far the next token of a term is raised once its beginning has been decoded.
const CONTINUE_BOOST: f32 = 5.0;
/// Terms kept, and tokens per term: a job's vocabulary is a few hundred words at most, and
/// a bound keeps a huge file from costing every utterance.
pub const MAX_VOCABULARY_TERMS: usize = 500;
const MAX_TERM_TOKENS: usize = 12;
/// The longest decoder prompt made of the terms (the first ones: a job's own list comes
/// first). Whisper's decoder reads the whole prompt before every utterance.
const PROMPT_TOKENS: usize = 64;

/// Terms prepared for one whisper model's tokenizer; cheap to clone. The default is empty
/// and changes nothing.
#[derive(Clone, Default)]
pub struct Vocabulary {
    inner: Option<Arc<Prepared>>,
}

impl std::fmt::Debug for Vocabulary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.terms()).finish()
    }
}

pub(crate) struct Prepared {
    /// The terms that are biased, as given.
    terms: Vec<String>,
    pub(crate) trie: TokenTrie,
    /// The model's vocabulary size (the length of each logits row) and its first special
    /// token (end of text; timestamps and markers come after it).
    pub(crate) n_vocab: usize,
    first_special: i32,
    /// The terms as a decoder prompt ("Kafka, Celery, ..."), and whether to use that instead
    /// of the logits filter.
    pub(crate) prompt: Vec<i32>,
    pub(crate) as_prompt: bool,
    /// The listed terms with their sounds, single-token ones too, for putting back misheard
    /// terms after decoding ([`crate::confirm`]).
    pub(crate) spoken: Vec<SpokenTerm>,
}

impl Vocabulary {
    /// Prepares `terms` with `tokenize` (text to token ids, the model's tokenizer). Each term
    /// comes with whether a person listed it as a word of the trade, rather than it being
    /// taken from the job's sentences. Terms whisper already writes as one token are not
    /// biased; lower-case terms are also biased capitalised ("celery" -> "Celery"), because
    /// whisper capitalises names. Listed terms are also checked after decoding
    /// ([`crate::confirm`]) by their sound, from `sound_of` (`None`: not checked); words
    /// taken from sentences are not, since a job's prose holds ordinary words ("services")
    /// that whisper would then be asked to find everywhere.
    pub(crate) fn prepare<E, S: AsRef<str>>(
        terms: impl IntoIterator<Item = (S, bool)>,
        model: ModelTokens,
        mut tokenize: impl FnMut(&str) -> Result<Vec<i32>, E>,
        mut sound_of: impl FnMut(&str) -> Option<Sound>,
    ) -> Result<Self, E> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut spoken: Vec<SpokenTerm> = Vec::new();
        let mut kept: Vec<String> = Vec::new();
        // Each kept term as whisper writes it inside a sentence, for the prompt.
        let mut written: Vec<Vec<i32>> = Vec::new();
        let mut sequences = Vec::new();
        for (term, listed) in terms {
            let term = term.as_ref().trim();
            if term.is_empty()
                || (kept.len() >= MAX_VOCABULARY_TERMS && spoken.len() >= MAX_VOCABULARY_TERMS)
                || !seen.insert(term.to_lowercase())
            {
                continue;
            }
            let mut spellings = vec![term.to_owned()];
            if !term.chars().any(char::is_uppercase) {
                let mut chars = term.chars();
                if let Some(first) = chars.next() {
                    spellings.push(first.to_uppercase().chain(chars).collect());
                }
            }
            let mut as_written = None;
            // Past the bound the term is only checked, not biased.
            if kept.len() < MAX_VOCABULARY_TERMS {
                for (i, spelling) in spellings.iter().enumerate() {
                    // Whisper writes a word inside a sentence with its leading space.
                    let tokens = tokenize(&format!(" {spelling}"))?;
                    if i == 0 && tokens.len() < 2 {
                        // A word whisper writes in one token it knows, capitalised or not.
                        break;
                    }
                    if (2..=MAX_TERM_TOKENS).contains(&tokens.len()) {
                        as_written.get_or_insert_with(|| tokens.clone());
                        sequences.push(tokens);
                    }
                }
            }
            if listed
                && spoken.len() < MAX_VOCABULARY_TERMS
                && let Some(sound) = sound_of(term)
            {
                spoken.push(SpokenTerm {
                    text: term.to_owned(),
                    sound,
                });
            }
            if let Some(tokens) = as_written {
                kept.push(term.to_owned());
                written.push(tokens);
            }
        }
        if kept.is_empty() && spoken.is_empty() {
            return Ok(Self::default());
        }
        // The prompt lists the terms: " Celery, RabbitMQ, Kafka".
        let comma = tokenize(",")?;
        let mut prompt: Vec<i32> = Vec::new();
        for (i, tokens) in written.iter().enumerate() {
            let separator = if i == 0 { &[][..] } else { &comma[..] };
            if prompt.len() + separator.len() + tokens.len() > PROMPT_TOKENS {
                break;
            }
            prompt.extend(separator);
            prompt.extend(tokens);
        }
        Ok(Self {
            inner: Some(Arc::new(Prepared {
                terms: kept,
                trie: TokenTrie::new(&sequences),
                n_vocab: model.n_vocab,
                first_special: model.first_special,
                prompt,
                as_prompt: false,
                spoken,
            })),
        })
    }

    /// The terms that bias recognition (those whisper would otherwise have to guess).
    pub fn terms(&self) -> &[String] {
        self.inner.as_deref().map_or(&[], |p| &p.terms)
    }

    /// Whether this vocabulary biases nothing.
    pub fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    /// The same terms given to whisper as a decoder prompt instead of biasing its logits
    /// (what `viva bench vocabulary` compares).
    pub fn as_prompt(&self) -> Vocabulary {
        Vocabulary {
            inner: self.inner.as_ref().map(|p| {
                Arc::new(Prepared {
                    terms: p.terms.clone(),
                    trie: p.trie.clone(),
                    prompt: p.prompt.clone(),
                    as_prompt: true,
                    spoken: p.spoken.clone(),
                    ..**p
                })
            }),
        }
    }

    pub(crate) fn prepared(&self) -> Option<&Prepared> {
        self.inner.as_deref()
    }
}

/// What the logits filter needs to know of the model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModelTokens {
    pub(crate) n_vocab: usize,
    pub(crate) first_special: i32,
}

/// Token sequences of the terms, sharing common prefixes.
#[derive(Clone)]
pub(crate) struct TokenTrie {
    /// Node 0 is the root; each node lists (token, child node).
    children: Vec<Vec<(i32, usize)>>,
    /// Longest sequence: how far back a term's beginning can be.
    depth: usize,
}

impl TokenTrie {
    fn new(sequences: &[Vec<i32>]) -> Self {
        let mut trie = Self {
            children: vec![Vec::new()],
            depth: 0,
        };
        for sequence in sequences {
            trie.depth = trie.depth.max(sequence.len());
            let mut node = 0;
            for &token in sequence {
                node = match trie.child(node, token) {
                    Some(next) => next,
                    None => {
                        trie.children.push(Vec::new());
                        let next = trie.children.len() - 1;
                        trie.children[node].push((token, next));
                        next
                    }
                };
            }
        }
        trie
    }

    fn child(&self, node: usize, token: i32) -> Option<usize> {
        self.children[node]
            .iter()
            .find(|(t, _)| *t == token)
            .map(|(_, n)| *n)
    }

    /// Raises in `logits` the tokens that begin a term, and, where the text decoded so far
    /// ends inside a term, the tokens that continue it. `decoded` is this segment's tokens;
    /// ids at or above `first_special` (timestamps, markers) end the text before them.
    pub(crate) fn bias(&self, decoded: &[i32], first_special: i32, logits: &mut [f32]) {
        let text_start = decoded
            .iter()
            .rposition(|&t| t >= first_special)
            .map_or(0, |i| i + 1);
        let text = &decoded[text_start..];
        let mut raise = |token: i32, boost: f32, raised: &mut Vec<i32>| {
            if let Some(logit) = usize::try_from(token).ok().and_then(|i| logits.get_mut(i))
                && !raised.contains(&token)
            {
                *logit += boost;
                raised.push(token);
            }
        };
        // A token continuing a term gets the larger raise once, however many terms share it.
        let mut raised = Vec::new();
        for start in text.len().saturating_sub(self.depth)..text.len() {
            let mut node = Some(0);
            for &token in &text[start..] {
                node = node.and_then(|n| self.child(n, token));
            }
            if let Some(node) = node {
                for &(token, _) in &self.children[node] {
                    raise(token, CONTINUE_BOOST, &mut raised);
                }
            }
        }
        for &(token, _) in &self.children[0] {
            raise(token, START_BOOST, &mut raised);
        }
    }
}

/// whisper.cpp's logits filter, called at every decoding step of every decoder.
///
/// # Safety
/// `user_data` must point to a live [`Prepared`]; `tokens` to `n_tokens` token records and
/// `logits` to `n_vocab` floats, which whisper.cpp guarantees during `whisper_full`.
pub(crate) unsafe extern "C" fn bias_logits(
    _context: *mut whisper_rs::WhisperSysContext,
    _state: *mut whisper_rs::WhisperSysState,
    tokens: *const whisper_rs::WhisperTokenData,
    n_tokens: std::os::raw::c_int,
    logits: *mut f32,
    user_data: *mut std::ffi::c_void,
) {
    // SAFETY: see the function's contract.
    let prepared = unsafe { &*user_data.cast::<Prepared>() };
    let decoded: Vec<i32> = match usize::try_from(n_tokens) {
        // SAFETY: whisper.cpp passes its sequence's tokens, `n_tokens` of them.
        Ok(n) if n > 0 => unsafe { std::slice::from_raw_parts(tokens, n) }
            .iter()
            .map(|t| t.id)
            .collect(),
        _ => Vec::new(),
    };
    // SAFETY: `logits` holds one float per vocabulary entry.
    let logits = unsafe { std::slice::from_raw_parts_mut(logits, prepared.n_vocab) };
    prepared.trie.bias(&decoded, prepared.first_special, logits);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake tokenizer: " Celery" -> [1, 2], " Cel" alone is [1], " salary" is one token.
    fn fake_tokens(text: &str) -> Result<Vec<i32>, ()> {
        Ok(match text {
            " Celery" => vec![1, 2],
            " Redis" => vec![3, 4],
            " Red" => vec![3],
            " RabbitMQ" => vec![5, 6, 7],
            " Rabbit" => vec![5],
            " kafka" => vec![8, 9],
            " Kafka" => vec![10, 9],
            " salary" => vec![11],
            " Salary" => vec![12],
            "," => vec![13],
            _ => return Err(()),
        })
    }

    const SPECIAL: i32 = 100;
    const MODEL: ModelTokens = ModelTokens {
        n_vocab: 200,
        first_special: SPECIAL,
    };

    fn prepare(terms: &[&str]) -> Result<Vocabulary, ()> {
        Vocabulary::prepare(terms.iter().map(|t| (t, false)), MODEL, fake_tokens, |_| {
            None
        })
    }

    fn biased(vocabulary: &Vocabulary, decoded: &[i32]) -> Vec<f32> {
        let mut logits = vec![0.0; 20];
        vocabulary
            .prepared()
            .unwrap()
            .trie
            .bias(decoded, SPECIAL, &mut logits);
        logits
    }

    #[test]
    fn single_token_words_are_left_alone_and_lower_case_terms_get_capitals() {
        let v = prepare(&["Celery", "salary", "kafka", " ", "Celery"]).unwrap();
        assert_eq!(v.terms(), ["Celery", "kafka"]);
        let logits = biased(&v, &[]);
        // Term beginnings get the small raise: " Cel", " kaf", " Kaf".
        for token in [1, 8, 10] {
            assert_eq!(logits[token], START_BOOST, "token {token}");
        }
        assert_eq!(logits[11], 0.0, "salary is never pushed");
        assert_eq!(logits[2], 0.0, "a continuation alone is not raised");

        let only_common = prepare(&["salary"]).unwrap();
        assert!(only_common.is_empty());
        assert!(prepare(&["Nope"]).is_err());
    }

    #[test]
    fn a_decoded_beginning_raises_its_continuation() {
        let v = prepare(&["Celery", "RabbitMQ", "Redis"]).unwrap();
        // "... Cel" -> "ery" strongly.
        let logits = biased(&v, &[SPECIAL, 11, 1]);
        assert_eq!(logits[2], CONTINUE_BOOST);
        assert_eq!(logits[6], 0.0, "MQ continues Rabbit, not Cel");
        // "... Rabbit" -> "M", then "... Rabbit M" -> "Q".
        assert_eq!(biased(&v, &[5])[6], CONTINUE_BOOST);
        let logits = biased(&v, &[5, 6]);
        assert_eq!(logits[7], CONTINUE_BOOST);
        assert_eq!(logits[6], 0.0);
        // Beginnings are always slightly raised, once each.
        assert_eq!(logits[1], START_BOOST);
        assert_eq!(logits[3], START_BOOST);
    }

    #[test]
    fn a_timestamp_ends_the_text_a_term_can_continue() {
        let v = prepare(&["Celery"]).unwrap();
        // " Cel" belongs to the previous segment: the timestamp after it cuts the term.
        assert_eq!(biased(&v, &[1, SPECIAL])[2], 0.0);
        assert_eq!(biased(&v, &[SPECIAL, 1])[2], CONTINUE_BOOST);
    }

    #[test]
    fn suppressed_and_unknown_tokens_stay_as_they_are() {
        let v = prepare(&["Celery"]).unwrap();
        let mut logits = vec![f32::NEG_INFINITY; 2];
        v.prepared().unwrap().trie.bias(&[1], SPECIAL, &mut logits);
        assert_eq!(
            logits[1],
            f32::NEG_INFINITY,
            "a suppressed beginning stays suppressed"
        );
        // Token 2 is past the end of this (too short) vocabulary: ignored, no panic.
        assert_eq!(logits.len(), 2);
    }

    #[test]
    fn the_term_count_is_bounded() {
        let many: Vec<String> = (0..MAX_VOCABULARY_TERMS + 10)
            .map(|i| format!("term{i}"))
            .collect();
        let v = Vocabulary::prepare(
            many.iter().map(|t| (t, false)),
            MODEL,
            |_| Ok::<_, ()>(vec![1, 2]),
            |_| None,
        )
        .unwrap();
        assert_eq!(v.terms().len(), MAX_VOCABULARY_TERMS);
    }
}
