//! Cutting interviewer text into the pieces the voice speaks one at a time, and each piece
//! into clauses whose closing punctuation shapes the intonation.
//!
//! Sentences are the streaming unit: the first one is synthesized and played while the rest
//! are still being synthesized. A sentence that runs long is cut again at its commas and
//! semicolons, and the very first piece of a reply is kept shorter still, because the
//! listener waits for all of it before hearing anything.

use std::ops::Range;

/// A sentence longer than this (in bytes, which is characters for English) is cut at its
/// clause breaks. 100 characters is about 6-7 s of speech, synthesized well within the time
/// the piece before it takes to play.
const LONG_SENTENCE: usize = 100;

/// The same limit for the first piece of a reply, whose synthesis time is the silence before
/// the interviewer starts talking: 40 characters is about 2.5 s of speech, around 100-200 ms
/// of synthesis on a small CPU.
const FIRST_PIECE: usize = 40;

/// A clause with no punctuation at all longer than this is cut at a word boundary, so a
/// run-on input cannot make one inference call arbitrarily large.
const LONGEST_CLAUSE: usize = 240;

/// Words before a period that do not end a sentence whatever follows them.
const NON_TERMINAL_ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "cf", "approx", "dept",
];

/// The punctuation that closes a clause, which the voice hears as a symbol of its own: it is
/// what makes a question rise and a list continue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClauseEnd {
    Period,
    Question,
    Exclamation,
    Comma,
    Colon,
    Semicolon,
}

impl ClauseEnd {
    /// The symbol in Piper's phoneme alphabet, as Piper's own phonemizer appends it.
    pub(crate) fn symbol(self) -> char {
        match self {
            ClauseEnd::Period => '.',
            ClauseEnd::Question => '?',
            ClauseEnd::Exclamation => '!',
            ClauseEnd::Comma => ',',
            ClauseEnd::Colon => ':',
            ClauseEnd::Semicolon => ';',
        }
    }

    fn ends_sentence(self) -> bool {
        matches!(
            self,
            ClauseEnd::Period | ClauseEnd::Question | ClauseEnd::Exclamation
        )
    }
}

/// A stretch of words and the punctuation that closes it (`None` when the text just stops).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Clause<'a> {
    pub(crate) words: &'a str,
    pub(crate) end: Option<ClauseEnd>,
}

/// One punctuation mark (with any closing quotes or brackets) that breaks the text.
#[derive(Clone, Debug)]
struct Break {
    /// The bytes of the mark itself, excluded from the clause before it.
    mark: Range<usize>,
    /// `None` for a paragraph break, which ends a sentence without punctuation.
    end: Option<ClauseEnd>,
    ends_sentence: bool,
}

/// Cuts `text` into the pieces to synthesize one after another, in order, trimmed and
/// non-empty: sentences, with long ones cut again at clause breaks.
pub(crate) fn sentences(text: &str) -> Vec<&str> {
    let breaks = breaks(text);
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut inner_breaks = Vec::new();
    for brk in &breaks {
        if brk.ends_sentence {
            push_sentence(text, start..brk.mark.end, &inner_breaks, &mut pieces);
            start = brk.mark.end;
            inner_breaks.clear();
        } else {
            inner_breaks.push(brk.mark.end);
        }
    }
    push_sentence(text, start..text.len(), &inner_breaks, &mut pieces);
    pieces
}

/// Pushes one sentence, cut at its clause breaks (`cuts`, byte offsets after each mark) when
/// it is longer than the limit for the piece at hand; short clauses stay merged so the
/// prosody stays natural.
fn push_sentence<'a>(text: &'a str, range: Range<usize>, cuts: &[usize], out: &mut Vec<&'a str>) {
    let limit = |out: &Vec<&str>| {
        if out.is_empty() {
            FIRST_PIECE
        } else {
            LONG_SENTENCE
        }
    };
    let mut start = range.start;
    let mut last_cut = None;
    for &cut in cuts {
        if cut - start > limit(out)
            && let Some(previous) = last_cut.filter(|&previous| previous > start)
        {
            push_trimmed(&text[start..previous], out);
            start = previous;
        }
        last_cut = Some(cut);
    }
    if range.end - start > limit(out)
        && let Some(previous) = last_cut.filter(|&previous| previous > start)
    {
        push_trimmed(&text[start..previous], out);
        start = previous;
    }
    push_trimmed(&text[start..range.end], out);
}

fn push_trimmed<'a>(piece: &'a str, out: &mut Vec<&'a str>) {
    let piece = piece.trim();
    if !piece.is_empty() {
        out.push(piece);
    }
}

/// Cuts one piece into clauses at its punctuation; the words exclude the closing mark.
/// Clauses without any punctuation longer than [`LONGEST_CLAUSE`] are cut between words.
pub(crate) fn clauses(piece: &str) -> Vec<Clause<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for brk in breaks(piece) {
        push_clause(&piece[start..brk.mark.start], brk.end, &mut out);
        start = brk.mark.end;
    }
    push_clause(&piece[start..], None, &mut out);
    out
}

fn push_clause<'a>(words: &'a str, end: Option<ClauseEnd>, out: &mut Vec<Clause<'a>>) {
    let mut words = words.trim();
    while words.len() > LONGEST_CLAUSE {
        let mut cut = LONGEST_CLAUSE;
        while !words.is_char_boundary(cut) {
            cut -= 1;
        }
        let cut = words[..cut]
            .rfind(char::is_whitespace)
            .filter(|&at| at > 0)
            .unwrap_or(cut);
        out.push(Clause {
            words: words[..cut].trim(),
            end: None,
        });
        words = words[cut..].trim_start();
    }
    if !words.is_empty() || end.is_some() {
        out.push(Clause { words, end });
    }
}

/// Finds every punctuation mark that breaks `text`, in order.
fn breaks(text: &str) -> Vec<Break> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(text.len(), |&(at, _)| at);
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if is_spaced_dash(&chars, i) {
            out.push(Break {
                mark: at..byte_at(i + 1),
                end: Some(ClauseEnd::Comma),
                ends_sentence: false,
            });
            i += 1;
            continue;
        }
        if c == '\n' && is_paragraph_break(&chars, i) {
            out.push(Break {
                mark: at..byte_at(i + 1),
                end: None,
                ends_sentence: true,
            });
            i += 1;
            continue;
        }
        if !is_clause_punctuation(c) {
            i += 1;
            continue;
        }
        // The run of punctuation and closing quotes/brackets that makes one mark: "?!", "...", `?"`.
        let mut j = i;
        while j < chars.len() && (is_clause_punctuation(chars[j].1) || is_closer(chars[j].1)) {
            j += 1;
        }
        let followed_by_space = chars.get(j).is_none_or(|&(_, next)| next.is_whitespace());
        if !followed_by_space {
            // "3.5", "Node.js", "1,000", "10:30": punctuation inside a token.
            i = j;
            continue;
        }
        let run: Vec<char> = chars[i..j].iter().map(|&(_, c)| c).collect();
        let end = clause_end(&run);
        let next_word_lowercase = chars[j..]
            .iter()
            .find(|(_, c)| !c.is_whitespace())
            .is_some_and(|&(_, c)| c.is_lowercase());
        let abbreviation = end == ClauseEnd::Period
            && run[0] == '.'
            && run[1..].iter().all(|&c| is_closer(c))
            && is_abbreviation(&text[..at], &out);
        if abbreviation {
            i = j;
            continue;
        }
        out.push(Break {
            mark: at..byte_at(j),
            end: Some(end),
            // "He asked "why?" and left" goes on after the question mark.
            ends_sentence: end.ends_sentence() && !next_word_lowercase,
        });
        i = j;
    }
    out
}

fn clause_end(run: &[char]) -> ClauseEnd {
    if run.contains(&'?') {
        ClauseEnd::Question
    } else if run.contains(&'!') {
        ClauseEnd::Exclamation
    } else {
        match run.first() {
            Some(',') => ClauseEnd::Comma,
            Some(':') => ClauseEnd::Colon,
            Some(';') => ClauseEnd::Semicolon,
            _ => ClauseEnd::Period,
        }
    }
}

fn is_clause_punctuation(c: char) -> bool {
    matches!(c, '.' | '?' | '!' | ',' | ';' | ':' | '…')
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | '”' | '’' | ')' | ']' | '»')
}

/// A dash standing between spaces ("the team — what") is a pause, like a comma.
fn is_spaced_dash(chars: &[(usize, char)], i: usize) -> bool {
    matches!(chars[i].1, '—' | '–' | '-')
        && i > 0
        && chars[i - 1].1.is_whitespace()
        && chars.get(i + 1).is_some_and(|&(_, c)| c.is_whitespace())
}

/// A newline followed (after optional blanks) by another newline.
fn is_paragraph_break(chars: &[(usize, char)], i: usize) -> bool {
    chars[i + 1..]
        .iter()
        .take_while(|(_, c)| c.is_whitespace())
        .any(|&(_, c)| c == '\n')
}

/// Whether the word right before a period (at the end of `before`) is an abbreviation that
/// does not end a sentence: a title ("Dr."), a dotted initialism ("e.g.", "U.S."), or the
/// number of a list item at the start of a sentence ("1. Describe ...").
fn is_abbreviation(before: &str, earlier_breaks: &[Break]) -> bool {
    let word_start = before
        .rfind(|c: char| c.is_whitespace() || c == '(' || c == '"')
        .map_or(0, |at| at + 1);
    let word = &before[word_start..];
    if word.is_empty() {
        return false;
    }
    let lower = word.to_lowercase();
    if NON_TERMINAL_ABBREVIATIONS.contains(&lower.as_str()) {
        return true;
    }
    let dotted_initialism = word.contains('.')
        && word
            .split('.')
            .all(|part| part.chars().count() == 1 && part.chars().all(char::is_alphabetic));
    if dotted_initialism {
        return true;
    }
    let sentence_start = earlier_breaks
        .iter()
        .rev()
        .find(|brk| brk.ends_sentence)
        .map_or(0, |brk| brk.mark.end);
    word.chars().all(|c| c.is_ascii_digit()) && before[sentence_start..word_start].trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_plain_sentences_and_keeps_their_punctuation() {
        assert_eq!(
            sentences("Thanks for joining. How do you approach database optimization? Great!"),
            [
                "Thanks for joining.",
                "How do you approach database optimization?",
                "Great!"
            ]
        );
    }

    #[test]
    fn does_not_split_abbreviations_decimals_or_dotted_names() {
        // Each reply starts with "Okay." so the short-first-piece rule stays out of the way.
        let text = "Okay. Dr. Smith used Node.js, e.g. with Express, for 3.5 years. Next question.";
        assert_eq!(
            sentences(text),
            [
                "Okay.",
                "Dr. Smith used Node.js, e.g. with Express, for 3.5 years.",
                "Next question."
            ]
        );
        assert_eq!(
            sentences("Okay. Compare Postgres vs. MySQL, i.e. PostgreSQL 16. Why?"),
            [
                "Okay.",
                "Compare Postgres vs. MySQL, i.e. PostgreSQL 16.",
                "Why?"
            ]
        );
        assert_eq!(
            sentences("We serve 1,000,000 users at 10:30 daily."),
            ["We serve 1,000,000 users at 10:30 daily."]
        );
    }

    #[test]
    fn a_lowercase_word_after_a_question_mark_continues_the_sentence() {
        assert_eq!(
            sentences("He asked \"why?\" and left. Then what?"),
            ["He asked \"why?\" and left.", "Then what?"]
        );
    }

    #[test]
    fn closing_quotes_stay_with_their_sentence() {
        assert_eq!(
            sentences("She said \"ship it.\" We did."),
            ["She said \"ship it.\"", "We did."]
        );
    }

    #[test]
    fn a_numbered_list_item_is_not_a_sentence_of_its_own() {
        assert_eq!(
            sentences("1. Describe your last project. 2. Name one risk."),
            ["1. Describe your last project.", "2. Name one risk."]
        );
    }

    #[test]
    fn paragraph_breaks_end_sentences_without_punctuation() {
        assert_eq!(
            sentences("Welcome to the interview\n\nLet's begin"),
            ["Welcome to the interview", "Let's begin"]
        );
        assert_eq!(sentences("A line that\nwraps"), ["A line that\nwraps"]);
    }

    #[test]
    fn long_sentences_are_cut_at_clause_breaks_into_short_pieces() {
        let text = "When you joined the payments team, the service was timing out under load, \
                    the database was at capacity, and nobody owned the on-call rotation; \
                    how did you decide what to fix first?";
        let pieces = sentences(text);
        assert_eq!(pieces[0], "When you joined the payments team,");
        assert!(pieces.len() >= 3, "{pieces:?}");
        assert!(
            pieces.iter().all(|p| p.len() <= LONG_SENTENCE),
            "{pieces:?}"
        );
        assert_eq!(
            pieces.join(" "),
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        assert!(pieces.last().is_some_and(|p| p.ends_with('?')));
    }

    #[test]
    fn the_first_piece_of_a_reply_is_kept_short() {
        assert_eq!(
            sentences(
                "Thanks, that gives me a clear picture of your last project. Next, tell me more."
            ),
            [
                "Thanks,",
                "that gives me a clear picture of your last project.",
                "Next, tell me more."
            ]
        );
        // Only at a clause break: a long first sentence without one stays whole.
        assert_eq!(
            sentences("How do you approach database optimization when queries slow down?"),
            ["How do you approach database optimization when queries slow down?"]
        );
    }

    #[test]
    fn nothing_to_say_gives_no_pieces() {
        assert!(sentences("").is_empty());
        assert!(sentences("   \n\n  ").is_empty());
        assert_eq!(sentences("?!"), ["?!"]);
    }

    #[test]
    fn clauses_carry_their_closing_punctuation() {
        assert_eq!(
            clauses("First, tell me: why Rust; why now?"),
            [
                Clause {
                    words: "First",
                    end: Some(ClauseEnd::Comma)
                },
                Clause {
                    words: "tell me",
                    end: Some(ClauseEnd::Colon)
                },
                Clause {
                    words: "why Rust",
                    end: Some(ClauseEnd::Semicolon)
                },
                Clause {
                    words: "why now",
                    end: Some(ClauseEnd::Question)
                },
            ]
        );
        assert_eq!(
            clauses("Really?!"),
            [Clause {
                words: "Really",
                end: Some(ClauseEnd::Question)
            }]
        );
        assert_eq!(
            clauses("Wait... ok"),
            [
                Clause {
                    words: "Wait",
                    end: Some(ClauseEnd::Period)
                },
                Clause {
                    words: "ok",
                    end: None
                },
            ]
        );
    }

    #[test]
    fn spaced_dashes_pause_like_commas_but_hyphens_do_not() {
        assert_eq!(
            clauses("your role — what did you own in the follow-up?"),
            [
                Clause {
                    words: "your role",
                    end: Some(ClauseEnd::Comma)
                },
                Clause {
                    words: "what did you own in the follow-up",
                    end: Some(ClauseEnd::Question)
                },
            ]
        );
    }

    #[test]
    fn abbreviations_stay_inside_their_clause() {
        assert_eq!(
            clauses("Ask Dr. Smith, e.g. today."),
            [
                Clause {
                    words: "Ask Dr. Smith",
                    end: Some(ClauseEnd::Comma)
                },
                Clause {
                    words: "e.g. today",
                    end: Some(ClauseEnd::Period)
                },
            ]
        );
    }

    #[test]
    fn run_on_text_is_cut_between_words() {
        let text = "word ".repeat(200);
        let clauses = clauses(&text);
        assert!(clauses.len() >= 4);
        assert!(clauses.iter().all(|c| c.words.len() <= LONGEST_CLAUSE));
        assert!(
            clauses
                .iter()
                .all(|c| c.words.split(' ').all(|w| w == "word"))
        );
        let multibyte = "é".repeat(500);
        assert!(
            super::clauses(&multibyte)
                .iter()
                .all(|c| c.words.len() <= LONGEST_CLAUSE)
        );
    }
}
