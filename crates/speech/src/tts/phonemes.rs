//! Piper's phoneme alphabet: a sentence's IPA with its punctuation kept, and the ids the voice
//! model reads, following Piper's own phonemizer so the voice hears what it was trained on.

use std::collections::HashMap;

use tracing::debug;

use super::TtsError;
use super::espeak::Espeak;
use super::text;

/// Beginning of utterance.
const BOS: char = '^';
/// End of utterance.
const EOS: char = '$';
/// Put after every phoneme (Piper's "intersperse pad").
const PAD: char = '_';

/// Precomposed letters espeak-ng can emit whose canonical decomposition (NFD) is what Piper
/// feeds its voices: Piper normalizes phonemes to NFD, so "ç" reaches the model as "c" and a
/// combining cedilla.
const DECOMPOSITIONS: &[(char, &str)] = &[
    ('ç', "c\u{327}"),
    ('ã', "a\u{303}"),
    ('ẽ', "e\u{303}"),
    ('ĩ', "i\u{303}"),
    ('õ', "o\u{303}"),
    ('ũ', "u\u{303}"),
];

/// IPA for one piece of text, clause by clause, with each clause's closing punctuation
/// appended as Piper does (a space follows it when more speech follows). `None` when the piece
/// holds nothing to pronounce, such as bare punctuation.
pub(crate) fn piece_phonemes(
    espeak: &mut Espeak,
    voice: &str,
    piece: &str,
) -> Result<Option<String>, TtsError> {
    let mut phonemes = String::new();
    let mut pronounced = false;
    for clause in text::clauses(piece) {
        let words = without_language_flags(&espeak.phonemes(voice, clause.words)?);
        let words = words.trim();
        if !words.is_empty() {
            pronounced = true;
            phonemes.push_str(words);
        }
        if let Some(end) = clause.end {
            phonemes.push(end.symbol());
        }
        phonemes.push(' ');
    }
    let phonemes = phonemes.trim_end();
    Ok(pronounced.then(|| phonemes.to_owned()))
}

/// espeak-ng marks a switch to another language's rules inside a word list as "(fr)" ...
/// "(en)"; the markers are not sounds, so Piper drops them.
pub(super) fn without_language_flags(phonemes: &str) -> String {
    let mut out = String::with_capacity(phonemes.len());
    let mut rest = phonemes;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        match rest[open..].find(')') {
            Some(close) => rest = &rest[open + close + 1..],
            None => {
                rest = &rest[open..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The voice's `phoneme_id_map`: which ids the model reads for each phoneme symbol.
#[derive(Debug)]
pub(crate) struct PhonemeIds {
    ids: HashMap<char, Vec<i64>>,
}

impl PhonemeIds {
    /// Builds the map from the voice config's `phoneme_id_map`. Fails with a message naming
    /// the offending key when a key is not one symbol or a required marker is missing.
    pub(crate) fn new(map: HashMap<String, Vec<i64>>) -> Result<PhonemeIds, String> {
        let mut ids = HashMap::with_capacity(map.len());
        for (symbol, symbol_ids) in map {
            let mut chars = symbol.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => ids.insert(c, symbol_ids),
                _ => {
                    return Err(format!(
                        "phoneme_id_map key {symbol:?} is not a single symbol"
                    ));
                }
            };
        }
        for marker in [BOS, EOS, PAD] {
            if !ids.contains_key(&marker) {
                return Err(format!("phoneme_id_map has no {marker:?} entry"));
            }
        }
        Ok(PhonemeIds { ids })
    }

    /// The model input for one utterance: `^ _ p1 _ p2 _ ... pn _ $`. Symbols the voice does
    /// not know are left out (with a debug log) rather than failing the sentence.
    pub(crate) fn utterance(&self, phonemes: &str) -> Vec<i64> {
        let pad = &self.ids[&PAD];
        let mut out = Vec::with_capacity(2 * phonemes.len() + 3);
        out.extend_from_slice(&self.ids[&BOS]);
        out.extend_from_slice(pad);
        for phoneme in phonemes.chars().flat_map(decomposed) {
            match self.ids.get(&phoneme) {
                Some(ids) => {
                    out.extend_from_slice(ids);
                    out.extend_from_slice(pad);
                }
                None => debug!(?phoneme, "voice has no id for phoneme; skipped"),
            }
        }
        out.extend_from_slice(&self.ids[&EOS]);
        out
    }
}

fn decomposed(c: char) -> impl Iterator<Item = char> {
    let decomposition = DECOMPOSITIONS
        .iter()
        .find(|&&(precomposed, _)| precomposed == c)
        .map(|&(_, parts)| parts);
    let (single, parts) = match decomposition {
        Some(parts) => (None, parts.chars()),
        None => (Some(c), "".chars()),
    };
    single.into_iter().chain(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> PhonemeIds {
        let entries = [
            ("_", 0),
            ("^", 1),
            ("$", 2),
            (" ", 3),
            ("?", 13),
            (",", 8),
            ("c", 16),
            ("h", 20),
            ("a", 14),
            ("\u{327}", 140),
        ];
        PhonemeIds::new(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), vec![v]))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn utterance_is_framed_and_padded_like_piper() {
        assert_eq!(
            map().utterance("ha ?"),
            [1, 0, 20, 0, 14, 0, 3, 0, 13, 0, 2]
        );
        assert_eq!(map().utterance(""), [1, 0, 2]);
    }

    #[test]
    fn unknown_phonemes_are_skipped() {
        assert_eq!(map().utterance("hɐa"), [1, 0, 20, 0, 14, 0, 2]);
        assert_eq!(map().utterance("😀"), [1, 0, 2]);
    }

    #[test]
    fn precomposed_letters_are_decomposed() {
        assert_eq!(map().utterance("ç"), [1, 0, 16, 0, 140, 0, 2]);
    }

    #[test]
    fn rejects_maps_the_voice_cannot_use() {
        let missing_pad = HashMap::from([("^".to_owned(), vec![1]), ("$".to_owned(), vec![2])]);
        assert!(PhonemeIds::new(missing_pad).unwrap_err().contains("'_'"));
        let long_key = HashMap::from([("ab".to_owned(), vec![1])]);
        assert!(PhonemeIds::new(long_key).unwrap_err().contains("\"ab\""));
    }

    #[test]
    fn language_flags_are_dropped() {
        assert_eq!(without_language_flags("(fr)ʒə(en) ænd"), "ʒə ænd");
        assert_eq!(without_language_flags("unclosed (fr"), "unclosed (fr");
    }

    #[test]
    fn a_question_keeps_its_question_mark() {
        let mut espeak = Espeak::lock().unwrap();
        let phonemes = piece_phonemes(
            &mut espeak,
            "en-us",
            "How do you approach database optimization?",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            phonemes,
            "hˌaʊ dˈuː juː ɐpɹˈoʊtʃ dˈeɪɾəbˌeɪs ˌɑːptɪmᵻzˈeɪʃən?"
        );
    }

    #[test]
    fn clause_punctuation_is_followed_by_a_space() {
        let mut espeak = Espeak::lock().unwrap();
        let phonemes = piece_phonemes(&mut espeak, "en-us", "First, why?")
            .unwrap()
            .unwrap();
        assert_eq!(phonemes, "fˈɜːst, wˈaɪ?");
    }

    #[test]
    fn bare_punctuation_has_nothing_to_pronounce() {
        let mut espeak = Espeak::lock().unwrap();
        assert_eq!(piece_phonemes(&mut espeak, "en-us", "?!").unwrap(), None);
        assert_eq!(
            piece_phonemes(&mut espeak, "en-us", "... , ;").unwrap(),
            None
        );
    }
}
