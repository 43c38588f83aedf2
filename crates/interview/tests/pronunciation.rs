//! The interviewer says the shipped job's words right: every planned line (knockouts,
//! questions, blueprints and their follow-ups), and each term of the job's `vocabulary` in a
//! sentence, spoken in Viva's voice and heard back by whisper expecting the job's terms (as
//! an engineer listening for them would), keeps every term it says. A term espeak-ng
//! mispronounces needs a respelling in the speech crate's lexicon.

use std::path::PathBuf;

use viva_interview::Job;
use viva_media::resample;
use viva_speech::{SpeechToText, SttConfig, Tts, TtsConfig, VAD_SAMPLE_RATE, Vocabulary};
use viva_test_support::models::model;

fn shipped_job() -> Job {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/jobs/backend-developer.toml");
    Job::load(path).unwrap_or_else(|e| panic!("{e}"))
}

/// The words of `text`, without punctuation.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// What whisper hears of `line` in Viva's voice.
fn round_trip(tts: &Tts, stt: &SpeechToText, vocabulary: &Vocabulary, line: &str) -> String {
    let mut samples = Vec::new();
    for sentence in tts.sentences(line) {
        samples.extend(sentence.unwrap().samples);
    }
    let heard = resample(&samples, tts.sample_rate(), VAD_SAMPLE_RATE).unwrap();
    stt.transcribe_recording(&heard, vocabulary).unwrap().text
}

#[test]
fn every_planned_line_and_vocabulary_term_is_heard_back() {
    let job = shipped_job();
    let tts = Tts::load(&TtsConfig {
        voice: model("piper/en_US-joe-medium.onnx"),
        onnxruntime: model("onnxruntime/libonnxruntime.so"),
    })
    .unwrap();
    // One thread: whisper's words then depend only on the audio.
    let mut config = SttConfig::new(model("whisper/ggml-tiny.en.bin"));
    config.threads = 1;
    config.workers = 1;
    let stt = SpeechToText::load(&config).unwrap();
    let vocabulary = stt
        .vocabulary(&job.vocabulary, job.vocabulary_terms())
        .unwrap();

    let planned = job
        .knockouts
        .iter()
        .map(|k| k.question.clone())
        .chain(job.questions.iter().map(|q| q.text.clone()))
        .chain(job.blueprints.iter().flat_map(|b| {
            std::iter::once(b.text.clone()).chain(b.follow_ups.iter().map(|f| f.text.clone()))
        }));
    let in_a_sentence = job
        .vocabulary
        .iter()
        .map(|term| format!("Tell me how you have used {term} in production."));
    let mut misses = Vec::new();
    let mut checked = 0;
    for line in planned.chain(in_a_sentence) {
        // The terms of the line whisper would have to get right (single-token words aside).
        let said = words(&line);
        let terms: Vec<&String> = vocabulary
            .terms()
            .iter()
            .filter(|t| {
                let term = words(t);
                said.windows(term.len().max(1))
                    .any(|w| w == term.as_slice())
            })
            .collect();
        if terms.is_empty() {
            continue;
        }
        let heard = round_trip(&tts, &stt, &vocabulary, &line);
        // How whisper spaces a name ("Postgres QL", "open telemetry") is its spelling, not
        // the voice's pronunciation: words are compared run together.
        let heard_run_together = words(&heard).concat();
        for term in terms {
            checked += 1;
            if !heard_run_together.contains(&words(term).concat()) {
                misses.push(format!("{term}: \"{line}\" heard as \"{heard}\""));
            }
        }
    }
    assert!(
        checked >= job.vocabulary.len(),
        "only {checked} terms checked"
    );
    // Terms no respelling has yet made whisper tiny.en write back. Any other term missed
    // fails. "idempotent" is heard in "The webhook handler is idempotent."
    // (crates/speech/tests/vocabulary_real.rs) but not after "have used". asynchronous,
    // Grafana, Jaeger, Debezium and memcached were listed here too; all are heard back now.
    const STILL_MISHEARD: &[&str] = &["idempotent"];
    let unexpected: Vec<&String> = misses
        .iter()
        .filter(|m| {
            !STILL_MISHEARD
                .iter()
                .any(|t| m.starts_with(&format!("{t}:")))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} of {checked} terms not heard back: {unexpected:#?}",
        unexpected.len()
    );
    for term in STILL_MISHEARD {
        if !misses.iter().any(|m| m.starts_with(&format!("{term}:"))) {
            println!("{term} is now heard back: take it off STILL_MISHEARD");
        }
    }
}
