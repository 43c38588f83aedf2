//! Measures end-of-speech marks and end-of-turn judgements on recorded answers.
//!
//! For each 16 kHz mono WAV given (an answer with silence after it, or one with a thinking
//! pause in the middle), it finds the candidate's first pause the way a call does (the
//! detector's first silent frame after speech) and prints:
//! - the real end of speech (the last 20 ms frame within 30 dB of the clip's loudest and
//!   10 dB above its quietest tenth: the load client's measure), the detector's last voiced
//!   frame before the pause, and the refined mark ([`Talkspurt`]), in ms;
//! - what the end-of-turn model judges and how long it took;
//! - what whisper heard up to the pause (the rule judges that text).
//!
//! ```sh
//! VIVA_TEST_WHISPER=models/whisper/ggml-tiny.en.bin VIVA_TEST_TURN_MODEL=models/smart-turn/smart-turn-v3.2-cpu.onnx \
//!     VIVA_TEST_ORT_LIB=models/onnxruntime/libonnxruntime.so \
//!     cargo run --release -p viva-speech --example turn_eval -- FILE.wav...
//! ```

use std::path::PathBuf;
use std::time::Instant;

use viva_speech::{
    SpeechToText, SttConfig, Talkspurt, TurnModel, VAD_FRAME_SAMPLES, Vocabulary, VoiceActivity,
    level_db,
};

/// Silence after the detector's last voiced frame before the turn is judged and transcribed.
const PAUSE_FRAMES: usize = 1;
/// A pause this long (320 ms) is one the turn-taking acts on; shorter ones are dips between
/// words.
const LONG_PAUSE_FRAMES: usize = 20;
/// Audio kept before the first voiced frame (the call's preroll).
const PREROLL: usize = 240 * 16;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = |var: &str| -> Result<PathBuf, String> {
        std::env::var_os(var)
            .map(PathBuf::from)
            .ok_or_else(|| format!("{var} is not set: run scripts/setup and point it at the file"))
    };
    let model = TurnModel::load(&path("VIVA_TEST_TURN_MODEL")?, &path("VIVA_TEST_ORT_LIB")?)?;
    let stt = SpeechToText::load(&SttConfig::new(path("VIVA_TEST_WHISPER")?))?;
    model.judge(&[0.0; 16_000])?; // ONNX Runtime allocates on the first run
    println!("file\treal_end_ms\tlast_voiced_ms\tmark_ms\tprobability\tjudge_ms\ttext");
    for file in std::env::args().skip(1) {
        let audio = read_wav(&file)?;
        let mut scores = Vec::new();
        VoiceActivity::new().push(&audio, &mut scores);
        let frame_level =
            |i: usize| level_db(&audio[i * VAD_FRAME_SAMPLES..(i + 1) * VAD_FRAME_SAMPLES]);
        // The first real pause (at least LONG_PAUSE_FRAMES of silence), judged as it begins:
        // at its first silent frame, as a call does.
        let mut talkspurt: Option<Talkspurt> = None;
        let mut first_voiced = 0;
        let mut silent = 0;
        let mut pause_at = None;
        for (i, &score) in scores.iter().enumerate() {
            let end = ((i + 1) * VAD_FRAME_SAMPLES) as u64;
            if score >= 0.5 {
                silent = 0;
                match &mut talkspurt {
                    Some(t) => t.voiced(end, frame_level(i)),
                    None => {
                        first_voiced = i * VAD_FRAME_SAMPLES;
                        talkspurt = Some(Talkspurt::new(end, frame_level(i)));
                    }
                }
            } else if talkspurt.is_some() {
                silent += 1;
                if silent == LONG_PAUSE_FRAMES {
                    pause_at =
                        Some(end as usize - (LONG_PAUSE_FRAMES - PAUSE_FRAMES) * VAD_FRAME_SAMPLES);
                    break;
                }
            }
        }
        let (Some(talkspurt), Some(pause_at)) = (talkspurt, pause_at) else {
            println!("{file}\tno pause found");
            continue;
        };
        let heard = &audio[first_voiced.saturating_sub(PREROLL)..pause_at];
        let started = Instant::now();
        let judgement = model.judge(heard)?;
        let judge_ms = started.elapsed().as_secs_f64() * 1e3;
        let text: Vec<String> = stt
            .transcribe_utterance_blocking(heard, 0, &Vocabulary::default())?
            .into_iter()
            .map(|s| s.text.trim().to_owned())
            .collect();
        let ms = |samples: u64| samples / 16;
        println!(
            "{file}\t{}\t{}\t{}\t{:.3}\t{judge_ms:.0}\t{}",
            ms(real_end(&audio[..pause_at]) as u64),
            ms(talkspurt.last_voiced()),
            ms(talkspurt.speech_end(VAD_FRAME_SAMPLES as u64)),
            judgement.complete_probability,
            text.join(" ")
        );
    }
    Ok(())
}

/// The load client's end of speech: the last 20 ms frame within 30 dB of the loudest and
/// 10 dB above the quietest tenth of frames.
fn real_end(audio: &[f32]) -> usize {
    let levels: Vec<f32> = audio.chunks(320).map(level_db).collect();
    let mut sorted = levels.clone();
    sorted.sort_by(f32::total_cmp);
    let floor = sorted[sorted.len() / 10];
    let top = sorted[sorted.len() - 1];
    levels
        .iter()
        .rposition(|&l| l >= top - 30.0 && l >= floor + 10.0)
        .map_or(0, |i| (i + 1) * 320)
}

fn read_wav(file: &str) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let mut reader = hound::WavReader::open(file)?;
    let spec = reader.spec();
    if spec.sample_rate != 16_000 || spec.channels != 1 {
        return Err(format!("{file}: expected 16 kHz mono").into());
    }
    Ok(reader
        .samples::<i16>()
        .map(|s| s.map(|s| f32::from(s) / 32768.0))
        .collect::<Result<_, _>>()?)
}
