//! The words of what a candidate says, cut one way for every reader: the judge matches its
//! phrases on them and the scoring matches skill keywords, counts words and cuts quotes with
//! them, so "node.js" or "c#" is one word to both and a keyword means the same thing to each.

/// Byte ranges `(start, end)` of the words of `text`, in order.
///
/// Words keep inner `.`, `-`, `/` and `'` ("node.js", "read-through", "ci/cd", "req/s",
/// "don't"), the `+`/`#` of "c++", "c#", "5+", "n+1", and a `.` that opens a name (".net");
/// any other character ends a word.
pub(crate) fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let is_core = |c: char| c.is_alphanumeric() || c == '+' || c == '#';
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    for (k, &(at, c)) in chars.iter().enumerate() {
        let next = chars.get(k + 1).map(|&(_, next)| next);
        let joiner = matches!(c, '.' | '-' | '/' | '\'' | '’')
            && start.is_some()
            && next.is_some_and(char::is_alphanumeric);
        // The last dot of an ellipsis ("so...next") does not open a name.
        let opens_name = c == '.'
            && start.is_none()
            && next.is_some_and(char::is_alphabetic)
            && (k == 0 || chars[k - 1].1 != '.');
        if is_core(c) || joiner || opens_name {
            start.get_or_insert(at);
        } else if let Some(s) = start.take() {
            words.push((s, at));
        }
    }
    if let Some(s) = start {
        words.push((s, text.len()));
    }
    words
}

/// The words of `text` (see [`word_spans`]).
pub(crate) fn split_words(text: &str) -> Vec<&str> {
    word_spans(text)
        .into_iter()
        .map(|(start, end)| &text[start..end])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_technical_punctuation() {
        assert_eq!(
            split_words(
                "We moved Node.js to C++ and C#, 5+ years; n+1 queries, don't read-through."
            ),
            [
                "We",
                "moved",
                "Node.js",
                "to",
                "C++",
                "and",
                "C#",
                "5+",
                "years",
                "n+1",
                "queries",
                "don't",
                "read-through"
            ]
        );
    }

    #[test]
    fn technology_names_are_one_word_each() {
        assert_eq!(
            split_words("node.js, c# (c++), .net; ci/cd."),
            ["node.js", "c#", "c++", ".net", "ci/cd"]
        );
        assert_eq!(
            split_words("ASP.NET and .NET Core"),
            ["ASP.NET", "and", ".NET", "Core"]
        );
        // Dots that open no name: an ellipsis, a decimal, a sentence end.
        assert_eq!(
            split_words("so...next .5 done. Then"),
            ["so", "next", "5", "done", "Then"]
        );
    }

    #[test]
    fn spans_are_byte_ranges_of_the_text() {
        let text = "Ünïcode café, c#";
        let spans = word_spans(text);
        assert_eq!(spans.len(), 3);
        assert_eq!(&text[spans[2].0..spans[2].1], "c#");
    }
}
