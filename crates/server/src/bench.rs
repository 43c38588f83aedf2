//! `viva bench speech`: what this machine's speech pipeline achieves, in figures and ratios.
//!
//! Measures on a speech set of clips with known text (`NAME.wav` + `NAME.txt`; scripts/setup
//! installs real read speech under `models/speech-set`):
//! - STT: latency per utterance (p50/p95), real-time factor, WER on the clips as recorded and
//!   through a simulated phone line (8 kHz G.711 mu-law);
//! - TTS: time to first audio and real-time factor on interview sentences, and the WER of a
//!   TTS -> STT round trip;
//! - memory: resident size after loading, with concurrent jobs, and at peak.
//!
//! `viva bench load` (in [`load`]) measures whole phone interviews under concurrency instead;
//! `viva bench vocabulary` (in [`vocabulary`]) how well technical terms are heard.

pub mod load;
pub mod vocabulary;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use viva_media::{G711Law, decode_file, f32_to_i16, i16_to_f32, resample};
use viva_speech::{
    SpeechRegionConfig, SpeechToText, VAD_SAMPLE_RATE, Vocabulary, VoiceCacheConfig, find_speech,
    word_errors,
};

use crate::cli::BenchSpeechArgs;
use crate::config::Config;
use crate::engines;

/// Concurrent transcriptions started to show the model is held once.
const CONCURRENT_JOBS: usize = 4;

/// What an interviewer says in a real screening, one sentence a line: the sentences whose
/// TTS -> STT round trip is measured (the speech and call tests use the same set).
const INTERVIEWER_LINES: &str = include_str!("../../../config/interviewer-lines.txt");

struct Clip {
    name: String,
    samples: Vec<f32>,
    text: String,
    /// Where the speech ends in `samples`, as the set labels it (`NAME.lab`, the speech
    /// and silence marks the LibriVox clips come with), if it does.
    labelled_end: Option<usize>,
}

impl Clip {
    fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(VAD_SAMPLE_RATE)
    }
}

pub fn speech(config: &Config, args: &BenchSpeechArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let set = args
        .set
        .clone()
        .unwrap_or_else(|| config.models.dir.join("speech-set"));
    let clips = load_clips(&set)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "viva bench speech: {cores} cores, {} clips from {}, {} run(s)",
        clips.len(),
        set.display(),
        args.runs
    );

    let rss_start = memory_mib("VmRSS");
    let started = Instant::now();
    let stt = engines::speech_to_text(config)?;
    let load = started.elapsed();
    let rss_stt = memory_mib("VmRSS");
    println!("\n## Speech to text: {}", stt.model_path().display());
    println!(
        "load                 {:>8.0} ms, +{:.0} MiB resident",
        ms(load),
        rss_stt - rss_start
    );

    let phone: Vec<Clip> = clips
        .iter()
        .map(|c| {
            Ok(Clip {
                name: c.name.clone(),
                samples: phone_line(&c.samples)?,
                text: c.text.clone(),
                labelled_end: c.labelled_end,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let wide = measure_stt(&stt, &clips, args.runs)?;
    let narrow = measure_stt(&stt, &phone, 1)?;
    wide.print("16 kHz");
    println!(
        "WER 8 kHz mu-law     {:>8.1} % ({} words)",
        narrow.wer * 100.0,
        narrow.words
    );

    let rss_before = memory_mib("VmRSS");
    std::thread::scope(|scope| {
        for i in 0..CONCURRENT_JOBS {
            let stt = stt.clone();
            let clip = &clips[i % clips.len()];
            scope.spawn(move || {
                stt.transcribe_utterance_blocking(&clip.samples, 0, &Vocabulary::default())
            });
        }
    });
    let rss_after = memory_mib("VmRSS");
    println!(
        "{CONCURRENT_JOBS} concurrent jobs    {:>8.0} MiB resident before, {:.0} after ({} worker(s); model file {:.0} MiB)",
        rss_before,
        rss_after,
        stt.workers(),
        file_mib(stt.model_path())
    );

    println!("\n## Text to speech");
    let rss_before_tts = memory_mib("VmRSS");
    let started = Instant::now();
    // Nothing cached: every sentence of every run is synthesized, which is what is measured.
    let tts = engines::text_to_speech(config)?.with_cache(VoiceCacheConfig::disabled())?;
    println!(
        "voice                {} at {} Hz, loaded in {:.0} ms, +{:.0} MiB resident",
        tts.voice_name(),
        tts.sample_rate(),
        ms(started.elapsed()),
        memory_mib("VmRSS") - rss_before_tts
    );
    let mut first_audio = Vec::new();
    let mut synth_time = Duration::ZERO;
    let mut audio_seconds = 0.0;
    let mut round_trip = (0, 0);
    for _ in 0..args.runs {
        for sentence in INTERVIEWER_LINES.lines() {
            let started = Instant::now();
            let mut samples = Vec::new();
            for (i, spoken) in tts.sentences(sentence).enumerate() {
                if i == 0 {
                    first_audio.push(started.elapsed());
                }
                samples.extend(spoken?.samples);
            }
            synth_time += started.elapsed();
            audio_seconds += samples.len() as f64 / f64::from(tts.sample_rate());
            {
                let heard = resample(&samples, tts.sample_rate(), VAD_SAMPLE_RATE)?;
                let text = stt
                    .transcribe_recording(&heard, &Vocabulary::default())?
                    .text;
                let (errors, words) = word_errors(sentence, &text);
                round_trip.0 += errors;
                round_trip.1 += words;
            }
        }
    }
    let (p50, p95) = percentiles(&mut first_audio);
    println!(
        "first audio          {:>8.0} ms p50, {:.0} ms p95 (one sentence)",
        p50, p95
    );
    println!(
        "real-time factor     {:>8.3} ({:.2} s of audio in {:.2} s)",
        synth_time.as_secs_f64() / audio_seconds,
        audio_seconds,
        synth_time.as_secs_f64()
    );
    println!(
        "round trip WER       {:>8.1} % (TTS -> STT, {} words)",
        round_trip.0 as f64 * 100.0 / round_trip.1.max(1) as f64,
        round_trip.1
    );

    println!("\n## Memory");
    println!("resident now         {:>8.0} MiB", memory_mib("VmRSS"));
    println!("peak resident        {:>8.0} MiB", memory_mib("VmHWM"));
    Ok(())
}

struct SttFigures {
    latencies: Vec<Duration>,
    mid_latencies: Vec<Duration>,
    processing: Duration,
    audio_seconds: f64,
    wer: f64,
    words: usize,
}

impl SttFigures {
    fn print(mut self, label: &str) {
        let (p50, p95) = percentiles(&mut self.latencies);
        let (mid50, mid95) = percentiles(&mut self.mid_latencies);
        println!(
            "latency 2-10 s       {:>8.0} ms p50, {:.0} ms p95 ({} utterances)",
            p50,
            p95,
            self.latencies.len()
        );
        println!(
            "latency 3-5 s        {:>8.0} ms p50, {:.0} ms p95 ({} utterances)",
            mid50,
            mid95,
            self.mid_latencies.len()
        );
        println!(
            "real-time factor     {:>8.3} ({:.1} s of audio in {:.2} s)",
            self.processing.as_secs_f64() / self.audio_seconds,
            self.audio_seconds,
            self.processing.as_secs_f64()
        );
        println!(
            "WER {label:<16} {:>8.1} % ({} words)",
            self.wer * 100.0,
            self.words
        );
    }
}

/// Transcribes each clip as one utterance, the way the call loop hands them over.
fn measure_stt(stt: &SpeechToText, clips: &[Clip], runs: usize) -> anyhow::Result<SttFigures> {
    let mut figures = SttFigures {
        latencies: Vec::new(),
        mid_latencies: Vec::new(),
        processing: Duration::ZERO,
        audio_seconds: 0.0,
        wer: 0.0,
        words: 0,
    };
    let mut errors = 0;
    for run in 0..runs {
        for clip in clips {
            let started = Instant::now();
            let segments =
                stt.transcribe_utterance_blocking(&clip.samples, 0, &Vocabulary::default())?;
            let took = started.elapsed();
            figures.processing += took;
            figures.audio_seconds += clip.seconds();
            if (2.0..=10.0).contains(&clip.seconds()) {
                figures.latencies.push(took);
            }
            if (3.0..=5.0).contains(&clip.seconds()) {
                figures.mid_latencies.push(took);
            }
            if run == 0 {
                let text: Vec<&str> = segments.iter().map(|s| s.text.as_str()).collect();
                let (e, w) = word_errors(&clip.text, &text.join(" "));
                tracing::debug!(clip = %clip.name, errors = e, words = w, heard = %text.join(" "));
                errors += e;
                figures.words += w;
            }
        }
    }
    figures.wer = errors as f64 / figures.words.max(1) as f64;
    Ok(figures)
}

/// Loads `NAME.wav` + `NAME.txt` pairs at 16 kHz, trimmed to their speech like a live utterance.
fn load_clips(dir: &Path) -> anyhow::Result<Vec<Clip>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read the speech set {}: run scripts/setup to install it",
            dir.display()
        )
    })?;
    let mut wavs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    wavs.sort();
    let mut clips = Vec::new();
    for wav in wavs {
        let text_file = wav.with_extension("txt");
        let Ok(text) = std::fs::read_to_string(&text_file) else {
            continue;
        };
        let audio = decode_file(&wav)?;
        let samples = resample(&audio.samples, audio.sample_rate, VAD_SAMPLE_RATE)?;
        let regions = find_speech(&samples, &SpeechRegionConfig::default());
        let (Some(first), Some(last)) = (regions.first(), regions.last()) else {
            bail!("{}: the VAD finds no speech in it", wav.display());
        };
        let label = wav.with_extension("lab");
        let labelled_end = match std::fs::read_to_string(&label) {
            Ok(marks) => Some(
                labelled_speech_end(&marks)
                    .with_context(|| format!("{}: no end of speech in it", label.display()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", label.display())),
        }
        .map(|seconds| {
            ((seconds * f64::from(VAD_SAMPLE_RATE)) as usize).clamp(first.start, last.end)
                - first.start
        });
        clips.push(Clip {
            name: wav
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            samples: samples[first.start..last.end].to_vec(),
            text: text.trim().to_owned(),
            labelled_end,
        });
    }
    if clips.is_empty() {
        bail!(
            "{}: no NAME.wav + NAME.txt clips found: run scripts/setup",
            dir.display()
        );
    }
    Ok(clips)
}

/// The end of speech in a clip's label file, in seconds: the last "silence" mark after a
/// "speech" mark. Each line is `START END LABEL` (PocketSphinx's test data marks instants,
/// START = END).
fn labelled_speech_end(marks: &str) -> Option<f64> {
    let mut speaking = false;
    let mut end = None;
    for line in marks.lines() {
        let mut fields = line.split_whitespace();
        let (Some(at), Some(_), Some(label)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        match label {
            "speech" => speaking = true,
            "silence" if speaking => {
                end = at.parse().ok();
                speaking = false;
            }
            _ => {}
        }
    }
    end
}

/// What a caller on a phone line sounds like: 8 kHz G.711 mu-law, back to 16 kHz.
pub(crate) fn phone_line(samples: &[f32]) -> anyhow::Result<Vec<f32>> {
    let narrow = resample(samples, VAD_SAMPLE_RATE, 8000)?;
    let pcm: Vec<i16> = narrow.iter().map(|&s| f32_to_i16(s)).collect();
    let decoded = G711Law::MuLaw.decode(&G711Law::MuLaw.encode(&pcm));
    let narrow: Vec<f32> = decoded.into_iter().map(i16_to_f32).collect();
    Ok(resample(&narrow, 8000, VAD_SAMPLE_RATE)?)
}

/// (p50, p95) in milliseconds, nearest rank.
pub(crate) fn percentiles(values: &mut [Duration]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    values.sort();
    let rank =
        |p: f64| values[((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    (ms(rank(0.50)), ms(rank(0.95)))
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A field of /proc/self/status (VmRSS, VmHWM) in MiB.
fn memory_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn file_mib(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(f64::NAN, |m| m.len() as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(percentiles(&mut v), (10.0, 19.0));
        let mut one = vec![Duration::from_millis(7)];
        assert_eq!(percentiles(&mut one), (7.0, 7.0));
    }

    #[test]
    fn the_labelled_end_of_speech_is_the_last_silence_after_speech() {
        let marks = "0.235689\t0.235689\tspeech\n6.761690\t6.761690\tsilence\n";
        assert_eq!(labelled_speech_end(marks), Some(6.761690));
        let two = "0.1 0.1 speech\n1.5 1.5 silence\n2.0 2.0 speech\n3.25 3.25 silence\n";
        assert_eq!(labelled_speech_end(two), Some(3.25));
        assert_eq!(labelled_speech_end("0.5 0.5 silence\n"), None);
        assert_eq!(labelled_speech_end("not a label\n"), None);
    }
}
