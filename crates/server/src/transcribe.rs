//! `viva transcribe FILE`: any supported audio file to text, JSON or WebVTT, optionally
//! expecting a job's terms (`--job`) or a list of them (`--vocabulary`), as live calls do.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use viva_interview::{Job, MAX_VOCABULARY_TERM_CHARS, MAX_VOCABULARY_TERMS};
use viva_media::{decode_file, resample};
use viva_speech::{Transcript, VAD_SAMPLE_RATE};

use crate::cli::{TranscribeArgs, TranscriptFormat};
use crate::config::Config;
use crate::engines;

pub fn run(mut config: Config, args: &TranscribeArgs) -> anyhow::Result<()> {
    if let Some(model) = &args.model {
        config.stt.model = model.clone();
    }
    if let Some(language) = &args.language {
        config.stt.language = language.clone();
    }
    // Read the inputs first: a bad file or term is reported without waiting for the model.
    let (listed, mentioned) = expected_terms(args)?;
    let audio = decode_file(&args.file)?;
    if audio.samples.is_empty() {
        bail!("{}: the file contains no audio", args.file.display());
    }
    let samples = resample(&audio.samples, audio.sample_rate, VAD_SAMPLE_RATE)?;
    let stt = engines::speech_to_text(&config)?;
    let vocabulary = stt.vocabulary(&listed, &mentioned)?;
    tracing::debug!(terms = ?vocabulary.terms(), "expected terms");
    let transcript = stt.transcribe_recording(&samples, &vocabulary)?;
    print!("{}", render(&transcript, args.format)?);
    Ok(())
}

/// The terms named (`--vocabulary`, then the job's `vocabulary`), and the words of the
/// job's text.
fn expected_terms(args: &TranscribeArgs) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut listed = match &args.vocabulary {
        Some(list) => parse_vocabulary(list).context("--vocabulary")?,
        None => Vec::new(),
    };
    let mut mentioned = Vec::new();
    if let Some(path) = &args.job {
        // The job's errors name the file, the field and what to do.
        let job = Job::load(path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
        listed.extend(job.vocabulary.iter().cloned());
        mentioned = job.vocabulary_terms();
    }
    Ok((listed, mentioned))
}

/// "Kafka, Celery, RabbitMQ" -> the terms, bounded as a job's `vocabulary` list is.
fn parse_vocabulary(list: &str) -> anyhow::Result<Vec<String>> {
    let terms: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if terms.is_empty() {
        bail!("no terms given: write them comma-separated, e.g. \"Kafka, Celery, RabbitMQ\"");
    }
    if terms.len() > MAX_VOCABULARY_TERMS {
        bail!(
            "{} terms given, at most {MAX_VOCABULARY_TERMS} allowed",
            terms.len()
        );
    }
    if let Some(term) = terms
        .iter()
        .find(|t| t.chars().count() > MAX_VOCABULARY_TERM_CHARS)
    {
        bail!(
            "\"{term}\" is longer than {MAX_VOCABULARY_TERM_CHARS} characters: is a comma missing?"
        );
    }
    if let Some(term) = terms.iter().find(|t| t.chars().any(char::is_control)) {
        bail!("{term:?} contains a control character");
    }
    Ok(terms)
}

fn render(transcript: &Transcript, format: TranscriptFormat) -> anyhow::Result<String> {
    Ok(match format {
        TranscriptFormat::Text if transcript.text.is_empty() => String::new(),
        TranscriptFormat::Text => format!("{}\n", transcript.text),
        TranscriptFormat::Json => format!("{}\n", serde_json::to_string_pretty(transcript)?),
        TranscriptFormat::Vtt => webvtt(transcript),
    })
}

/// WebVTT with one cue per segment.
pub fn webvtt(transcript: &Transcript) -> String {
    let mut out = String::from("WEBVTT\n");
    for (i, segment) in transcript.segments.iter().enumerate() {
        let _ = write!(
            out,
            "\n{}\n{} --> {}\n{}\n",
            i + 1,
            vtt_time(segment.start_ms),
            vtt_time(segment.end_ms),
            segment.text
        );
    }
    out
}

fn vtt_time(ms: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use viva_speech::Segment;

    #[test]
    fn webvtt_has_cues_with_timestamps() {
        let transcript = Transcript {
            text: "Hello there. Second.".into(),
            segments: vec![
                Segment {
                    start_ms: 1_500,
                    end_ms: 3_250,
                    text: "Hello there.".into(),
                    words: vec![],
                    closing: None,
                },
                Segment {
                    start_ms: 3_723_004,
                    end_ms: 3_724_000,
                    text: "Second.".into(),
                    words: vec![],
                    closing: None,
                },
            ],
        };
        assert_eq!(
            webvtt(&transcript),
            "WEBVTT\n\n1\n00:00:01.500 --> 00:00:03.250\nHello there.\n\n2\n01:02:03.004 --> 01:02:04.000\nSecond.\n"
        );
    }

    #[test]
    fn vocabulary_lists_are_split_trimmed_and_bounded() {
        assert_eq!(
            parse_vocabulary(" Kafka, Celery,,RabbitMQ ,").unwrap(),
            ["Kafka", "Celery", "RabbitMQ"]
        );
        let err = parse_vocabulary(" , ").unwrap_err().to_string();
        assert!(err.contains("comma-separated"), "{err}");
        let many = vec!["x"; MAX_VOCABULARY_TERMS + 1].join(",");
        let err = parse_vocabulary(&many).unwrap_err().to_string();
        assert!(err.contains("at most 200"), "{err}");
        let run_on = "Kafka Celery RabbitMQ Redis Grafana Prometheus webhook idempotent PostgreSQL";
        let err = parse_vocabulary(run_on).unwrap_err().to_string();
        assert!(err.contains("comma missing"), "{err}");
        assert!(parse_vocabulary("Kafka\u{0}").is_err());
    }

    #[test]
    fn a_bad_job_file_is_named_with_its_field() {
        let scratch = viva_test_support::scratch_dir("transcribe-job");
        let job = scratch.path().join("job.toml");
        std::fs::write(&job, "id = \"x\"\nvocabulary = \"Kafka\"\n").unwrap();
        let args = TranscribeArgs {
            file: "answer.wav".into(),
            format: TranscriptFormat::Text,
            model: None,
            language: None,
            job: Some(job.clone()),
            vocabulary: Some("Celery".into()),
        };
        let err = expected_terms(&args).unwrap_err().to_string();
        assert!(err.starts_with(&job.display().to_string()), "{err}");
        let missing = TranscribeArgs {
            job: Some(scratch.path().join("nope.toml")),
            ..args
        };
        let err = expected_terms(&missing).unwrap_err().to_string();
        assert!(err.contains("cannot read the job file"), "{err}");
    }

    #[test]
    fn empty_transcript_prints_nothing_as_text() {
        let empty = Transcript {
            text: String::new(),
            segments: vec![],
        };
        assert_eq!(render(&empty, TranscriptFormat::Text).unwrap(), "");
        let json: serde_json::Value =
            serde_json::from_str(&render(&empty, TranscriptFormat::Json).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"text": "", "segments": []}));
    }
}
