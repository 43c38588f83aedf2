//! How to say the words of a technical interview.
//!
//! espeak-ng reads many names of the trade wrongly ("SaaS" as "saa-ess", Redis as "ri-deez",
//! PostgreSQL as "postger-ess-queue-ell"); an interviewer who mispronounces the stack sounds
//! like they don't know it. Before phonemizing, such words are respelled the way engineers say
//! them. The spoken text changes; the transcript keeps the original words.

use std::borrow::Cow;

/// (word as written, respelling espeak-ng reads right). Matched as whole words, case-sensitively,
/// so "Go" the language and "go" the verb are not confused with each other.
const RESPELLINGS: &[(&str, &str)] = &[
    ("SaaS", "sass"),
    ("PaaS", "pass"),
    ("IaaS", "eye-ass"),
    ("Redis", "redd-iss"),
    ("PostgreSQL", "post-gress-Q-L"),
    ("Postgres", "post-gress"),
    ("MySQL", "my-S-Q-L"),
    ("SQLite", "S-Q-lite"),
    ("Kubernetes", "koo-ber-net-eez"),
    ("k8s", "koo-ber-net-eez"),
    ("nginx", "engine-X"),
    ("OAuth", "oh-auth"),
    ("GraphQL", "graph-Q-L"),
    ("gRPC", "G-R-P-C"),
    ("JSON", "jason"),
    ("YAML", "yammel"),
    ("CI/CD", "C-I C-D"),
    ("Kafka", "kahf-ka"),
    ("RabbitMQ", "rabbit em queue"),
    ("FastAPI", "fast-A-P-I"),
    ("Node.js", "node-J-S"),
    // espeak-ng drops the "dem" ("eye-d-m-potent").
    ("idempotent", "eyedem-potent"),
    ("idempotency", "eyedem-potency"),
    ("Idempotent", "eyedem-potent"),
    ("Idempotency", "eyedem-potency"),
    ("memcached", "mem-cash-dee"),
    // espeak-ng's own readings were heard back as "this synchronous task", "the
    // last-exertion", "JAGR", "the BZM".
    ("asynchronous", "ay-synchronous"),
    ("Elasticsearch", "elastic-search"),
    // "yay-ger" is read "yay-jer".
    ("Jaeger", "yay-gur"),
    ("Debezium", "deh-bee-zium"),
    ("sharding", "shard-ing"),
    ("webhook", "web-hook"),
];

/// `text` with every listed word respelled for pronunciation.
pub(crate) fn respell(text: &str) -> Cow<'_, str> {
    if !RESPELLINGS.iter().any(|(word, _)| text.contains(word)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    'scan: while !rest.is_empty() {
        let at_word_start = out.chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        if at_word_start {
            for (word, spoken) in RESPELLINGS {
                if let Some(after) = rest.strip_prefix(word)
                    && after.chars().next().is_none_or(|c| !c.is_alphanumeric())
                {
                    out.push_str(spoken);
                    rest = after;
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respells_whole_words_only() {
        assert_eq!(
            respell("a growing SaaS platform on Redis, PostgreSQL and Kubernetes?"),
            "a growing sass platform on redd-iss, post-gress-Q-L and koo-ber-net-eez?"
        );
        assert_eq!(respell("SaaSy Rediscover"), "SaaSy Rediscover");
        assert_eq!(respell("APIs in JSON."), "APIs in jason.");
        assert_eq!(
            respell("Idempotent writes, idempotency keys."),
            "eyedem-potent writes, eyedem-potency keys."
        );
        assert!(matches!(respell("plain words"), Cow::Borrowed(_)));
    }
}
