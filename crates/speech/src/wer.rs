//! Word error rate: how far a transcript is from what was said.
//!
//! Both sides are normalised first (lower case, no punctuation, numbers spelt out) so that
//! "Go forward 10 meters." matches "go forward ten meters".
//!
//! ```
//! use viva_speech::word_error_rate;
//! assert_eq!(word_error_rate("go forward ten meters", "Go forward 10 meters."), 0.0);
//! ```

/// Word errors (substitutions + deletions + insertions) divided by the reference's word count.
/// An empty reference gives 0 for an empty hypothesis and 1 otherwise.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let (errors, words) = word_errors(reference, hypothesis);
    if words == 0 {
        return if errors == 0 { 0.0 } else { 1.0 };
    }
    errors as f64 / words as f64
}

/// (edit distance in words, reference word count), for pooling WER over a set.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let (reference, hypothesis) = (normalize_words(reference), normalize_words(hypothesis));
    // "back end", "back-end" and "backend" are one word said one way.
    let hypothesis = join_compounds(hypothesis, &reference);
    let reference = join_compounds(reference, &hypothesis);
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut current = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = previous[j] + usize::from(r != h);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    (previous[hypothesis.len()], reference.len())
}

/// Joins neighbouring words of `words` that the other side writes as one word.
fn join_compounds(words: Vec<String>, other: &[String]) -> Vec<String> {
    let mut joined: Vec<String> = Vec::with_capacity(words.len());
    for word in words {
        if let Some(last) = joined.last_mut() {
            let compound = format!("{last}{word}");
            if other.contains(&compound) {
                *last = compound;
                continue;
            }
        }
        joined.push(word);
    }
    joined
}

/// Lower-case words without punctuation (hyphens split words), with whole numbers below a
/// million spelt out.
pub(crate) fn normalize_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for raw in text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
    {
        let word = raw.to_lowercase();
        match word.parse::<u32>() {
            Ok(n) if n < 1_000_000 => words.extend(spell(n).split(' ').map(str::to_owned)),
            _ => words.push(word),
        }
    }
    words
}

fn spell(n: u32) -> String {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 10] = [
        "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    match n {
        0..=19 => ONES[n as usize].to_owned(),
        20..=99 if n.is_multiple_of(10) => TENS[(n / 10) as usize].to_owned(),
        20..=99 => format!("{} {}", TENS[(n / 10) as usize], ONES[(n % 10) as usize]),
        100..=999 if n.is_multiple_of(100) => format!("{} hundred", ONES[(n / 100) as usize]),
        100..=999 => format!("{} hundred {}", ONES[(n / 100) as usize], spell(n % 100)),
        _ if n.is_multiple_of(1000) => format!("{} thousand", spell(n / 1000)),
        _ => format!("{} thousand {}", spell(n / 1000), spell(n % 1000)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_substitutions_insertions_deletions() {
        assert_eq!(word_errors("a b c d", "a x c d"), (1, 4));
        assert_eq!(word_errors("a b c d", "a b c"), (1, 4));
        assert_eq!(word_errors("a b c d", "a b c d e f"), (2, 4));
        assert_eq!(word_error_rate("", ""), 0.0);
        assert_eq!(word_error_rate("", "noise"), 1.0);
        assert_eq!(word_error_rate("hello there", ""), 1.0);
    }

    #[test]
    fn normalizes_case_punctuation_and_numbers() {
        assert_eq!(
            word_error_rate("It's 42 ms, OK?", "it's forty two ms ok"),
            0.0
        );
        assert_eq!(
            normalize_words("1500 requests, 2 001 users"),
            [
                "one", "thousand", "five", "hundred", "requests", "two", "one", "users"
            ]
        );
    }
}
