//! Whisper's known inventions on non-speech, recognised and removed.
//!
//! The VAD gate keeps most silence and noise away from whisper, but breaths, clicks and
//! background voices still get through now and then. Whisper then produces one of a small
//! set of stock phrases learnt from subtitles, or an annotation in brackets. These checks are
//! deliberately narrow: a candidate who really says "thank you" is heard confidently, and
//! stock phrases are only dropped when whisper itself was unsure.

/// Phrases whisper emits on non-speech (compared after
/// [`normalize_words`](crate::wer::normalize_words)).
const STOCK_PHRASES: &[&str] = &[
    "thank you",
    "thank you very much",
    "thanks for watching",
    "thank you for watching",
    "thanks for listening",
    "please subscribe",
    "subscribe to my channel",
    "bye",
    "you",
    "so",
    "okay",
    "oh",
    "hmm",
    "the end",
];

/// Below this mean token probability a stock phrase is treated as invented.
const UNSURE_PROBABILITY: f32 = 0.6;
/// Above this no-speech probability a stock phrase is treated as invented.
const LIKELY_NO_SPEECH: f32 = 0.3;

/// Removes annotations such as `[BLANK_AUDIO]`, `(music)`, `*coughs*` and `♪` from a segment.
pub fn strip_annotations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut closing: Option<char> = None;
    for c in text.chars() {
        match closing {
            Some(end) if c == end => closing = None,
            Some(_) => {}
            None => match c {
                '[' => closing = Some(']'),
                '(' => closing = Some(')'),
                '*' => closing = Some('*'),
                '♪' | '♫' => {}
                _ => out.push(c),
            },
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a whole utterance's text is a stock phrase that whisper was not sure about.
pub fn is_invented(text: &str, mean_probability: f32, no_speech_probability: f32) -> bool {
    let normalized = crate::wer::normalize_words(text).join(" ");
    if normalized.is_empty() {
        return true;
    }
    STOCK_PHRASES.contains(&normalized.as_str())
        && (mean_probability < UNSURE_PROBABILITY || no_speech_probability > LIKELY_NO_SPEECH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_annotations() {
        assert_eq!(strip_annotations(" [BLANK_AUDIO]"), "");
        assert_eq!(
            strip_annotations("(wind blowing) I used Redis ♪ here"),
            "I used Redis here"
        );
        assert_eq!(strip_annotations("*coughs* yes"), "yes");
        assert_eq!(strip_annotations("plain words."), "plain words.");
    }

    #[test]
    fn stock_phrases_are_dropped_only_when_unsure() {
        assert!(is_invented(" Thank you.", 0.3, 0.1));
        assert!(is_invented("Thanks for watching!", 0.9, 0.5));
        assert!(!is_invented("Thank you.", 0.9, 0.05));
        assert!(!is_invented("I designed the billing API.", 0.2, 0.9));
        assert!(is_invented("  ", 0.9, 0.0));
    }
}
