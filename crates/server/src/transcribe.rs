//! `viva transcribe FILE`: any supported audio file to text, JSON or WebVTT.

use std::fmt::Write as _;

use anyhow::bail;
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
    // Decode first: a bad file is reported without waiting for the model to load.
    let audio = decode_file(&args.file)?;
    if audio.samples.is_empty() {
        bail!("{}: the file contains no audio", args.file.display());
    }
    let samples = resample(&audio.samples, audio.sample_rate, VAD_SAMPLE_RATE)?;
    let stt = engines::speech_to_text(&config)?;
    let transcript = stt.transcribe_recording(&samples)?;
    print!("{}", render(&transcript, args.format)?);
    Ok(())
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
                },
                Segment {
                    start_ms: 3_723_004,
                    end_ms: 3_724_000,
                    text: "Second.".into(),
                    words: vec![],
                },
            ],
        };
        assert_eq!(
            webvtt(&transcript),
            "WEBVTT\n\n1\n00:00:01.500 --> 00:00:03.250\nHello there.\n\n2\n01:02:03.004 --> 01:02:04.000\nSecond.\n"
        );
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
