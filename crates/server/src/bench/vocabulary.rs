//! `viva bench vocabulary`: are the technical terms of an answer heard right?
//!
//! Interview answers full of backend vocabulary (each term in `[brackets]`, kept in
//! `config/bench/`) are spoken with Viva's own voice, then transcribed as a live call would,
//! at 16 kHz and through a simulated 8 kHz mu-law phone line, in three ways: as before
//! (nothing expected), with the job's terms as whisper's decoder prompt, and with the job's
//! terms biasing decoding and its listed terms checked afterwards (what calls use). Per way: term recall, WER and transcription
//! latency. Terms heard where they were not said are counted as invented, which must be none:
//! in sentences of the terms' sound-alikes ("salary", "red is") and in the answers themselves
//! ("Debezium reads" must not become "Debezium Redis").

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use viva_interview::Job;
use viva_media::resample;
use viva_speech::{
    SpeechRegionConfig, SpeechToText, Tts, VAD_SAMPLE_RATE, Vocabulary, find_speech, word_errors,
};

use super::{ms, percentiles, phone_line};
use crate::cli::BenchVocabularyArgs;
use crate::config::Config;
use crate::engines;

const ANSWERS: &str = include_str!("../../../../config/bench/vocabulary-answers.txt");
const SOUND_ALIKES: &str = include_str!("../../../../config/bench/vocabulary-sound-alikes.txt");

/// One sentence as said, and the terms in it.
#[derive(Debug, PartialEq)]
struct Sentence {
    text: String,
    terms: Vec<String>,
}

/// A sentence spoken and put on each line.
struct Spoken {
    sentence: Sentence,
    wide: Vec<f32>,
    phone: Vec<f32>,
}

/// How the candidate is connected.
#[derive(Clone, Copy)]
enum Line {
    /// A browser: 16 kHz and more.
    Wide,
    /// A phone: 8 kHz G.711 mu-law.
    Phone,
}

impl Line {
    fn name(self) -> &'static str {
        match self {
            Line::Wide => "16 kHz",
            Line::Phone => "8 kHz mu-law",
        }
    }
}

impl Spoken {
    fn audio(&self, line: Line) -> &[f32] {
        match line {
            Line::Wide => &self.wide,
            Line::Phone => &self.phone,
        }
    }
}

#[derive(Default)]
struct Figures {
    terms: usize,
    heard: usize,
    word_errors: usize,
    words: usize,
    latencies: Vec<Duration>,
    misses: Vec<String>,
    invented: Vec<String>,
}

pub fn run(config: &Config, args: &BenchVocabularyArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let answers = parse_sentences(&read_or(args.answers.as_deref(), ANSWERS)?);
    let sound_alikes = parse_sentences(&read_or(args.sound_alikes.as_deref(), SOUND_ALIKES)?);
    if let Some(s) = sound_alikes.iter().find(|s| !s.terms.is_empty()) {
        bail!("a sound-alike sentence must hold no [term]: {}", s.text);
    }
    let job = Job::load(&args.job).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let stt = engines::speech_to_text(config)?;
    let tts = engines::text_to_speech(config)?;
    let started = Instant::now();
    let vocabulary = stt.vocabulary(&job.vocabulary, job.vocabulary_terms())?;
    let prepared_in = started.elapsed();
    println!(
        "viva bench vocabulary: {} answers ({} terms), {} sound-alike sentences, {} run(s); \
         model {}; job {}: {} terms biased (prepared in {:.1} ms)",
        answers.len(),
        answers.iter().map(|a| a.terms.len()).sum::<usize>(),
        sound_alikes.len(),
        args.runs,
        stt.model_path().display(),
        args.job.display(),
        vocabulary.terms().len(),
        ms(prepared_in),
    );
    // The terms that can be invented: every one the answers say, and every one the job lists.
    let mut every_term: Vec<String> = answers.iter().flat_map(|a| a.terms.clone()).collect();
    for term in &job.vocabulary {
        if !every_term.iter().any(|t| t.eq_ignore_ascii_case(term)) {
            every_term.push(term.clone());
        }
    }
    let unexpected: Vec<&String> = every_term
        .iter()
        .filter(|t| {
            !job.vocabulary_terms()
                .iter()
                .any(|v| v.eq_ignore_ascii_case(t))
        })
        .collect();
    if !unexpected.is_empty() {
        println!("(terms the job does not list: {unexpected:?})");
    }

    let answers = speak(&tts, answers)?;
    let sound_alikes = speak(&tts, sound_alikes)?;
    let ways = [
        ("as before", Vocabulary::default()),
        ("prompt", vocabulary.as_prompt()),
        ("bias + check", vocabulary.clone()),
    ];
    println!(
        "\n| line | way | term recall | WER | latency p50 | p50 ratio | latency p95 | invented terms |\n|---|---|---|---|---|---|---|---|"
    );
    for line in [Line::Wide, Line::Phone] {
        let mut baseline = None;
        for (way, vocabulary) in &ways {
            let mut figures = measure(&stt, vocabulary, &answers, line, args.runs, &every_term)?;
            for sentence in &sound_alikes {
                let (heard, _) = transcribe(&stt, sentence.audio(line), vocabulary)?;
                figures
                    .invented
                    .extend(invented(&sentence.sentence, &heard, &every_term));
            }
            // The p95 shows the slow runs: an utterance whisper looped on, or decoded again.
            let (p50, p95) = percentiles(&mut figures.latencies.clone());
            let base = *baseline.get_or_insert(p50);
            println!(
                "| {} | {way} | {:.1} % ({}/{}) | {:.1} % | {p50:.0} ms | {:.2} | {p95:.0} ms | {} |",
                line.name(),
                figures.heard as f64 * 100.0 / figures.terms.max(1) as f64,
                figures.heard,
                figures.terms,
                figures.word_errors as f64 * 100.0 / figures.words.max(1) as f64,
                p50 / base,
                figures.invented.len(),
            );
            for miss in figures.misses.iter().chain(&figures.invented) {
                println!("|   | {miss} |");
            }
        }
    }
    Ok(())
}

fn read_or(path: Option<&Path>, shipped: &str) -> anyhow::Result<String> {
    match path {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        }
        None => Ok(shipped.to_owned()),
    }
}

/// One sentence a line, `#` comments and blank lines skipped, terms in `[brackets]`.
fn parse_sentences(text: &str) -> Vec<Sentence> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let terms = line
                .split('[')
                .skip(1)
                .filter_map(|s| s.split_once(']').map(|(term, _)| term.to_owned()))
                .collect();
            Sentence {
                text: line.replace(['[', ']'], ""),
                terms,
            }
        })
        .collect()
}

/// Each sentence in Viva's voice, trimmed to its speech like a live utterance.
fn speak(tts: &Tts, sentences: Vec<Sentence>) -> anyhow::Result<Vec<Spoken>> {
    sentences
        .into_iter()
        .map(|sentence| {
            let mut samples = Vec::new();
            for spoken in tts.sentences(&sentence.text) {
                samples.extend(spoken?.samples);
            }
            let samples = resample(&samples, tts.sample_rate(), VAD_SAMPLE_RATE)?;
            let regions = find_speech(&samples, &SpeechRegionConfig::default());
            let (Some(first), Some(last)) = (regions.first(), regions.last()) else {
                bail!("the VAD finds no speech in \"{}\"", sentence.text);
            };
            let wide = samples[first.start..last.end].to_vec();
            let phone = phone_line(&wide)?;
            Ok(Spoken {
                sentence,
                wide,
                phone,
            })
        })
        .collect()
}

fn transcribe(
    stt: &SpeechToText,
    audio: &[f32],
    vocabulary: &Vocabulary,
) -> anyhow::Result<(String, Duration)> {
    let started = Instant::now();
    let segments = stt.transcribe_utterance_blocking(audio, 0, vocabulary)?;
    let took = started.elapsed();
    let text: Vec<&str> = segments.iter().map(|s| s.text.trim()).collect();
    Ok((text.join(" "), took))
}

fn measure(
    stt: &SpeechToText,
    vocabulary: &Vocabulary,
    answers: &[Spoken],
    line: Line,
    runs: usize,
    every_term: &[String],
) -> anyhow::Result<Figures> {
    let mut figures = Figures::default();
    for answer in answers {
        let (heard, took) = transcribe(stt, answer.audio(line), vocabulary)?;
        figures.latencies.push(took);
        for _ in 1..runs {
            figures
                .latencies
                .push(transcribe(stt, answer.audio(line), vocabulary)?.1);
        }
        let (errors, words) = word_errors(&answer.sentence.text, &heard);
        figures.word_errors += errors;
        figures.words += words;
        for term in &answer.sentence.terms {
            figures.terms += 1;
            if mentions(&heard, term) {
                figures.heard += 1;
            } else {
                figures.misses.push(format!("missed {term}: \"{heard}\""));
            }
        }
        figures
            .invented
            .extend(invented(&answer.sentence, &heard, every_term));
    }
    Ok(figures)
}

/// The terms heard in `heard` that `said` does not say.
fn invented(said: &Sentence, heard: &str, terms: &[String]) -> Vec<String> {
    terms
        .iter()
        .filter(|term| mentions(heard, term) && !mentions(&said.text, term))
        .map(|term| format!("invented {term}: \"{}\" -> \"{heard}\"", said.text))
        .collect()
}

/// Whether `text` says `term`, ignoring case and punctuation. The words heard may split the
/// term only where its own spelling does ("Rabbit MQ", "dead letter queue"), so "red is" is
/// not "Redis".
fn mentions(text: &str, term: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let (term, boundaries) = term_parts(term);
    if term.is_empty() {
        return false;
    }
    (0..words.len()).any(|start| {
        let mut joined = String::new();
        for word in &words[start..] {
            joined.push_str(word);
            if joined == term {
                return true;
            }
            if !term.starts_with(&joined) || !boundaries.contains(&joined.len()) {
                return false;
            }
        }
        false
    })
}

/// A term in lower case without separators, and the offsets where its spelling allows a
/// split: at punctuation and spaces, and where lower case turns to upper ("RabbitMQ").
fn term_parts(term: &str) -> (String, Vec<usize>) {
    let mut joined = String::new();
    let mut boundaries = Vec::new();
    let mut previous_lower = false;
    for c in term.chars() {
        if !c.is_alphanumeric() {
            boundaries.push(joined.len());
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower {
            boundaries.push(joined.len());
        }
        previous_lower = c.is_lowercase();
        joined.extend(c.to_lowercase());
    }
    (joined, boundaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_carry_their_bracketed_terms() {
        let parsed =
            parse_sentences("# comment\n\nWe ran [Celery] on [RabbitMQ].\nNo terms here.\n");
        assert_eq!(
            parsed,
            [
                Sentence {
                    text: "We ran Celery on RabbitMQ.".into(),
                    terms: vec!["Celery".into(), "RabbitMQ".into()],
                },
                Sentence {
                    text: "No terms here.".into(),
                    terms: vec![],
                },
            ]
        );
    }

    #[test]
    fn shipped_sets_parse_and_sound_alikes_name_no_term() {
        let answers = parse_sentences(ANSWERS);
        assert!(answers.len() >= 20);
        assert!(answers.iter().all(|a| !a.terms.is_empty()));
        assert!(
            parse_sentences(SOUND_ALIKES)
                .iter()
                .all(|s| s.terms.is_empty())
        );
    }

    #[test]
    fn terms_are_found_however_they_are_split() {
        assert!(mentions("we used rabbit MQ there", "RabbitMQ"));
        assert!(mentions("we used RabbitMQ there", "RabbitMQ"));
        assert!(mentions("Celery, mostly.", "Celery"));
        assert!(mentions("the dead letter queue", "dead-letter queue"));
        assert!(mentions("the dead-letter queue", "dead-letter queue"));
        assert!(!mentions("my salary", "Celery"));
        assert!(!mentions("Redistribution", "Redis"));
        assert!(!mentions("red is fine", "Redis"));
        assert!(!mentions("a web book", "webhook"));
        assert!(!mentions("rab bitmq", "RabbitMQ"));
    }
}
