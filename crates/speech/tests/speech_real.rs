//! Speech in both directions on the real models that `scripts/setup` installs: the converted
//! whisper tiny.en, the Piper voice through ONNX Runtime, and real read speech (LibriVox).
//!
//! Bounds (pooled over the set, tiny.en, greedy decoding):
//! - real read speech at 16 kHz: WER <= 15 % (measured about 7 %; LibriVox, 43 words)
//! - the same through an 8 kHz G.711 mu-law phone line: WER <= 20 %
//! - Piper -> whisper round trip of what an interviewer says in a real job's screening: WER
//!   <= 8 % (measured 5.2 %, the same every run; see the test for the spread behind the bound)
//! - silence and noise: no words at all.

use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use viva_media::{G711Law, decode_file, f32_to_i16, i16_to_f32, resample};
use viva_speech::{
    SpeechToText, SttConfig, SttError, Tts, TtsConfig, VAD_SAMPLE_RATE, Vocabulary, word_errors,
};
use viva_test_support::models::{model, speech_set as speech_clips};
use viva_test_support::scratch_dir;

/// Whisper runs in one process disturb each other: with another transcription running, 5 of
/// 40 transcriptions of one synthesized sentence came out different, 4 of them with the
/// sentence said twice (measured; alone, 12 of 12 agreed). So the tests that count words take
/// turns, and each measures only its own audio.
fn alone() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

fn stt() -> &'static SpeechToText {
    static STT: OnceLock<SpeechToText> = OnceLock::new();
    STT.get_or_init(|| {
        let model = model("whisper/ggml-tiny.en.bin");
        SpeechToText::load(&SttConfig::new(model)).expect("the converted tiny.en model loads")
    })
}

/// Whisper on one thread: its words depend only on the audio. The shared engine's thread
/// count follows the load on the machine, and a two-thread run that loses a core is stopped
/// and redone; across those paths one synthesized sentence was heard with 1 or with 11 word
/// errors (measured on a busy 2-core machine), which would drown what the round trip measures.
fn stt_one_thread() -> &'static SpeechToText {
    static STT: OnceLock<SpeechToText> = OnceLock::new();
    STT.get_or_init(|| one_thread_engine(1))
}

/// Whisper on one thread per transcription, `workers` at a time.
fn one_thread_engine(workers: usize) -> SpeechToText {
    let mut config = SttConfig::new(model("whisper/ggml-tiny.en.bin"));
    config.threads = 1;
    config.workers = workers;
    SpeechToText::load(&config).expect("the converted tiny.en model loads")
}

fn tts() -> &'static Tts {
    static TTS: OnceLock<Tts> = OnceLock::new();
    TTS.get_or_init(|| {
        Tts::load(&TtsConfig {
            voice: model("piper/en_US-joe-medium.onnx"),
            onnxruntime: model("onnxruntime/libonnxruntime.so"),
        })
        .unwrap()
    })
}

/// (16 kHz samples, reference text) for each clip of the real speech set.
fn speech_set() -> Vec<(String, Vec<f32>, String)> {
    speech_clips()
        .into_iter()
        .map(|wav| {
            let text = std::fs::read_to_string(wav.with_extension("txt")).unwrap();
            let audio = decode_file(&wav).unwrap();
            let samples = resample(&audio.samples, audio.sample_rate, VAD_SAMPLE_RATE).unwrap();
            (wav.display().to_string(), samples, text)
        })
        .collect()
}

fn phone_line(samples: &[f32]) -> Vec<f32> {
    let narrow = resample(samples, VAD_SAMPLE_RATE, 8000).unwrap();
    let pcm: Vec<i16> = narrow.iter().map(|&s| f32_to_i16(s)).collect();
    let coded = G711Law::MuLaw.encode(&pcm);
    let back: Vec<f32> = G711Law::MuLaw
        .decode(&coded)
        .into_iter()
        .map(i16_to_f32)
        .collect();
    resample(&back, 8000, VAD_SAMPLE_RATE).unwrap()
}

fn pooled_wer(clips: &[(String, Vec<f32>, String)]) -> f64 {
    let (mut errors, mut words) = (0, 0);
    for (name, samples, text) in clips {
        let heard = stt()
            .transcribe_recording(samples, &Vocabulary::default())
            .unwrap()
            .text;
        let (e, w) = word_errors(text, &heard);
        eprintln!("{name}: {e}/{w} errors: heard {heard:?}");
        errors += e;
        words += w;
    }
    errors as f64 / words as f64
}

#[test]
fn real_read_speech_is_transcribed() {
    let _turn = alone();
    let wer = pooled_wer(&speech_set());
    eprintln!("WER 16 kHz: {:.1} %", wer * 100.0);
    assert!(wer <= 0.15, "WER {wer:.3} above 15 %");
}

#[test]
fn telephone_quality_speech_is_transcribed() {
    let _turn = alone();
    let phone: Vec<_> = speech_set()
        .into_iter()
        .map(|(name, samples, text)| (name, phone_line(&samples), text))
        .collect();
    let wer = pooled_wer(&phone);
    eprintln!("WER 8 kHz mu-law: {:.1} %", wer * 100.0);
    assert!(wer <= 0.20, "WER {wer:.3} above 20 %");
}

#[test]
fn segments_and_words_carry_timestamps_on_the_recording_clock() {
    let _turn = alone();
    let (_, samples, _) = speech_set()
        .into_iter()
        .find(|(name, ..)| name.ends_with("librivox-0870.wav"))
        .unwrap();
    // Two seconds of silence before the speech must shift every timestamp by about 2 s.
    let mut shifted = vec![0.0f32; 2 * VAD_SAMPLE_RATE as usize];
    shifted.extend_from_slice(&samples);
    let transcript = stt()
        .transcribe_recording(&shifted, &Vocabulary::default())
        .unwrap();
    let first = &transcript.segments[0];
    assert!(
        first.start_ms >= 1700,
        "speech starts after the silence: {first:?}"
    );
    let duration_ms = shifted.len() as u64 * 1000 / u64::from(VAD_SAMPLE_RATE);
    for segment in &transcript.segments {
        assert!(segment.start_ms <= segment.end_ms && segment.end_ms <= duration_ms);
        assert!(!segment.words.is_empty());
        for pair in segment.words.windows(2) {
            assert!(
                pair[0].start_ms <= pair[1].start_ms,
                "words in order: {pair:?}"
            );
        }
        for word in &segment.words {
            assert!(word.start_ms >= segment.start_ms && word.end_ms <= segment.end_ms);
            assert!((0.0..=1.0).contains(&word.probability));
        }
    }
    let words: Vec<&str> = transcript.segments[0]
        .words
        .iter()
        .map(|w| w.word.as_str())
        .collect();
    assert!(
        words.join(" ").to_lowercase().contains("dashwood"),
        "{words:?}"
    );
}

#[test]
fn silence_and_noise_transcribe_to_nothing() {
    let _turn = alone();
    let rate = VAD_SAMPLE_RATE as usize;
    let silence = vec![0.0f32; 5 * rate];
    let mut state = 0x1234_5678_u32;
    let mut white = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as f32 / u32::MAX as f32 - 0.5
    };
    let white_noise: Vec<f32> = (0..5 * rate).map(|_| white() * 0.3).collect();
    // Pink-ish noise: a leaky integration of white noise.
    let mut level = 0.0f32;
    let pink_noise: Vec<f32> = (0..5 * rate)
        .map(|_| {
            level = 0.98 * level + 0.1 * white();
            level
        })
        .collect();
    // A steady hum (mains and its harmonics), as from a bad headset.
    let hum: Vec<f32> = (0..5 * rate)
        .map(|i| {
            let t = i as f32 / rate as f32;
            0.2 * (2.0 * std::f32::consts::PI * 50.0 * t).sin()
                + 0.1 * (2.0 * std::f32::consts::PI * 150.0 * t).sin()
        })
        .collect();
    for (name, audio) in [
        ("silence", silence),
        ("white noise", white_noise),
        ("pink noise", pink_noise),
        ("hum", hum),
    ] {
        let transcript = stt()
            .transcribe_recording(&audio, &Vocabulary::default())
            .unwrap();
        assert_eq!(transcript.text, "", "{name} gave words: {transcript:?}");
        assert!(transcript.segments.is_empty(), "{name}");
    }
}

#[test]
fn tts_to_stt_round_trip_of_interview_sentences() {
    let _turn = alone();
    let (mut errors, mut words) = (0, 0);
    for sentence in include_str!("../../../config/interviewer-lines.txt").lines() {
        let audio = tts().synthesize(sentence).unwrap();
        let heard = resample(&audio, tts().sample_rate(), VAD_SAMPLE_RATE).unwrap();
        let text = stt_one_thread()
            .transcribe_recording(&heard, &Vocabulary::default())
            .unwrap()
            .text;
        let (e, w) = word_errors(sentence, &text);
        if e > 0 {
            eprintln!("{e}/{w}: {sentence:?} -> {text:?}");
        }
        errors += e;
        words += w;
    }
    let wer = errors as f64 / words as f64;
    eprintln!("round trip WER: {:.1} %", wer * 100.0);
    // Synthesis is reproducible and whisper runs alone on one thread, so this is one fixed
    // measurement: 12 errors in 232 words (5.2 %) on every run (whisper on 2 threads of an
    // idle machine heard the same 12). What it could move by is the
    // spread between noise draws, measured one pass each on 2 cores: 1.7-6.0 % over ten other
    // noise pools, 2.2-10.0 % (one outlier; otherwise at most 6.9 %) over twenty runs of the
    // old randomly seeded voice. 8 % (18 errors) stays clear of all but that outlier, so a
    // different CPU's rounding cannot fail it, while a broken phonemizer or voice still does.
    assert!(wer <= 0.08, "round trip WER {wer:.3} above 8 %");
}

#[test]
fn concurrent_jobs_share_one_model_and_agree_with_sequential_runs() {
    let _turn = alone();
    // One thread per transcription, so that only the sharing differs between the two passes:
    // whisper's words change with its thread count (the order of its float sums), which the
    // shared engine picks by the load on the machine.
    static POOL: OnceLock<SpeechToText> = OnceLock::new();
    let stt = || POOL.get_or_init(|| one_thread_engine(2));
    let clips = speech_set();
    let text_of = |segments: Vec<viva_speech::Segment>| {
        segments
            .into_iter()
            .map(|s| s.text)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let sequential: Vec<String> = clips
        .iter()
        .map(|(_, s, _)| {
            text_of(
                stt()
                    .transcribe_utterance_blocking(s, 0, &Vocabulary::default())
                    .unwrap(),
            )
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let concurrent: Vec<String> = runtime.block_on(async {
        let jobs: Vec<_> = clips
            .iter()
            .map(|(_, s, _)| {
                let stt = stt().clone();
                let samples = s.clone();
                tokio::spawn(async move {
                    stt.transcribe_utterance(samples, 0, &Vocabulary::default())
                        .await
                })
            })
            .collect();
        let mut texts = Vec::new();
        for job in jobs {
            texts.push(text_of(job.await.unwrap().unwrap()));
        }
        texts
    });
    // Sharing the model must not change a word.
    for (a, b) in sequential.iter().zip(&concurrent) {
        assert_eq!(word_errors(a, b).0, 0, "{a:?} vs {b:?}");
    }
}

#[test]
fn a_corrupt_model_is_an_error_not_a_crash() {
    let scratch = scratch_dir("stt-corrupt");
    // The real model cut in half: right magic, missing tensors.
    let real = std::fs::read(model("whisper/ggml-tiny.en.bin")).unwrap();
    let half = scratch.path().join("half.bin");
    std::fs::write(&half, &real[..real.len() / 2]).unwrap();
    let err = SpeechToText::load(&SttConfig::new(&half)).err().unwrap();
    assert!(matches!(err, SttError::ModelInvalid { .. }), "{err}");
    assert!(err.to_string().contains("scripts/setup"), "{err}");
}

/// A transcription that goes wide and then loses its cores stalls (ggml's threads spin at
/// every barrier); the watchdog stops it and it is redone on one thread, so the words still
/// come out. The cores are taken here by busy threads of this process, which the core budget
/// counts as its own and so cannot see.
#[test]
fn a_transcription_that_loses_its_cores_still_gives_the_words() {
    let _turn = alone();
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let clips = speech_set();
    let stt = stt();
    let stop = Arc::new(AtomicBool::new(false));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hogs: Vec<_> = (0..cores)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let started = std::time::Instant::now();
    let heard: Vec<_> = clips
        .iter()
        .map(|(_, samples, _)| {
            stt.transcribe_recording(samples, &Vocabulary::default())
                .unwrap()
                .text
        })
        .collect();
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for hog in hogs {
        hog.join().unwrap();
    }
    let audio: f64 = clips
        .iter()
        .map(|(_, s, _)| s.len() as f64 / f64::from(VAD_SAMPLE_RATE))
        .sum();
    eprintln!(
        "{} clips, {audio:.1} s of audio, transcribed in {:.1} s with every core busy",
        clips.len(),
        elapsed.as_secs_f64()
    );
    let (errors, words) = clips
        .iter()
        .zip(&heard)
        .map(|((_, _, truth), text)| word_errors(truth, text))
        .fold((0, 0), |(e, w), (de, dw)| (e + de, w + dw));
    assert!(
        errors * 100 <= words * 15,
        "WER {errors}/{words}: {heard:?}"
    );
}

#[test]
fn a_transcription_nobody_waits_for_gives_up_its_turn() {
    let _turn = alone();
    // One worker: transcriptions take turns, earliest asked first.
    let stt = one_thread_engine(1);
    let clips = speech_set();
    let mut long: Vec<f32> = Vec::new();
    while long.len() < 20 * VAD_SAMPLE_RATE as usize {
        long.extend(clips.iter().flat_map(|(_, s, _)| s.iter().copied()));
    }
    long.truncate(20 * VAD_SAMPLE_RATE as usize);
    let short = clips[0].1.clone();
    let started = Instant::now();
    stt.transcribe_utterance_blocking(&long, 0, &Vocabulary::default())
        .unwrap();
    let whole = started.elapsed();
    let started = Instant::now();
    stt.transcribe_utterance_blocking(&short, 0, &Vocabulary::default())
        .unwrap();
    let alone = started.elapsed();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let third = runtime.block_on(async {
        let transcribe = |audio: Vec<f32>| {
            let stt = stt.clone();
            tokio::spawn(async move {
                stt.transcribe_utterance(audio, 0, &Vocabulary::default())
                    .await
            })
        };
        let first = transcribe(long.clone());
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The second waits for the worker, and nobody waits for it any more.
        let second = transcribe(long);
        tokio::time::sleep(Duration::from_millis(50)).await;
        second.abort();
        let started = Instant::now();
        let words = transcribe(short).await.unwrap().unwrap();
        assert!(!words.is_empty());
        assert!(!first.await.unwrap().unwrap().is_empty());
        started.elapsed()
    });
    eprintln!(
        "20 s transcribed in {} ms, a clip in {} ms; the clip, behind one of those and a \
         dropped one, in {} ms",
        whole.as_millis(),
        alone.as_millis(),
        third.as_millis()
    );
    // Behind the first alone the clip takes about one whole run more than alone; behind
    // both, two.
    assert!(
        third < alone + whole * 3 / 2,
        "the dropped transcription ran: the clip took {} ms (alone {} ms, a whole one {} ms)",
        third.as_millis(),
        alone.as_millis(),
        whole.as_millis()
    );
}
