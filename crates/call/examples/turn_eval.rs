//! Measures end-of-speech marks and end-of-turn decisions on recorded answers.
//!
//! Give complete answers after `--complete` and answers with a thinking pause in the middle
//! after `--pause` (16 kHz mono WAVs, each with silence after its speech). For each it finds
//! the candidate's first pause the way a call does (a pause of at least 320 ms, judged at its
//! first silent frame) and prints:
//! - the real end of speech (the last 20 ms frame within 30 dB of the clip's loudest and
//!   10 dB above its quietest tenth: the load client's measure), the detector's last voiced
//!   frame before the pause, and the refined mark ([`Talkspurt`]), in ms;
//! - what the end-of-turn model judges and how long it took, what whisper heard up to the
//!   pause and how sure it was of the closing mark;
//! - the wait a call chooses ([`TurnTaking::end_of_turn_after`]) and, for a thinking pause,
//!   when the candidate speaks again.
//!
//! Then, per group, the waits and the clips whose turn would have ended before the candidate
//! went on (a cut-in: in a thinking pause, or between a complete answer's sentences).
//!
//! ```sh
//! VIVA_TEST_WHISPER=models/whisper/ggml-tiny.en.bin VIVA_TEST_TURN_MODEL=models/smart-turn/smart-turn-v3.2-cpu.onnx \
//!     VIVA_TEST_ORT_LIB=models/onnxruntime/libonnxruntime.so \
//!     cargo run --release -p viva-call --example turn_eval -- --complete A.wav... --pause B.wav...
//! ```

use std::ops::Range;
use std::path::PathBuf;
use std::time::Instant;

use viva_call::{Heard, TurnTaking};
use viva_speech::{
    SpeechToText, SttConfig, Talkspurt, TurnModel, VAD_FRAME_SAMPLES, Vocabulary, VoiceActivity,
    level_db,
};

/// A pause this long (320 ms) is one the turn-taking acts on; shorter ones are dips between
/// words.
const LONG_PAUSE_FRAMES: usize = 20;
/// Audio kept before the first voiced frame (the call's preroll).
const PREROLL: usize = 240 * 16;

#[derive(Default)]
struct Group {
    /// The wait chosen for each clip, in ms.
    waits: Vec<u64>,
    /// Clips whose turn would end before the candidate goes on.
    cut_in: Vec<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = |var: &str| -> Result<PathBuf, String> {
        std::env::var_os(var)
            .map(PathBuf::from)
            .ok_or_else(|| format!("{var} is not set: run scripts/setup and point it at the file"))
    };
    let model = TurnModel::load(&path("VIVA_TEST_TURN_MODEL")?, &path("VIVA_TEST_ORT_LIB")?)?;
    let stt = SpeechToText::load(&SttConfig::new(path("VIVA_TEST_WHISPER")?))?;
    let turns = TurnTaking::default();
    model.judge(&[0.0; 16_000])?; // ONNX Runtime allocates on the first run
    println!(
        "group\tfile\treal_end_ms\tlast_voiced_ms\tmark_ms\tprobability\tjudge_ms\tclosing\twait_ms\tresumed_ms\ttext"
    );
    let (mut complete, mut pauses) = (Group::default(), Group::default());
    let mut is_pause = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--complete" => is_pause = Some(false),
            "--pause" => is_pause = Some(true),
            file => {
                let Some(is_pause) = is_pause else {
                    return Err("give --complete or --pause before the files".into());
                };
                let Some(clip) = Clip::find(read_wav(file)?) else {
                    println!("{file}\tno pause found");
                    continue;
                };
                let audio = &clip.audio[clip.heard.clone()];
                let started = Instant::now();
                let judgement = model.judge(audio)?;
                let judge_ms = started.elapsed().as_secs_f64() * 1e3;
                let segments =
                    stt.transcribe_utterance_blocking(audio, 0, &Vocabulary::default())?;
                let text: Vec<&str> = segments.iter().map(|s| s.text.trim()).collect();
                let heard = Heard {
                    text: text.join(" "),
                    closing: segments.last().and_then(|s| s.closing),
                };
                let wait = turns.end_of_turn_after(&heard, Some(judgement.complete_probability));
                let wait_ms = wait.as_millis() as u64;
                // The turn ends after the wait, and never before the detector let go.
                let ends = (clip.mark + wait_ms).max(clip.last_voiced + 16);
                let group = if is_pause { &mut pauses } else { &mut complete };
                group.waits.push(wait_ms);
                // A complete answer can pause too (between its sentences): ending the turn
                // there is as much a cut-in as in a thinking pause.
                let cut_in = match clip.resumed {
                    Some(resumed) => ends < resumed,
                    None => is_pause,
                };
                if cut_in {
                    group.cut_in.push(file.to_owned());
                }
                println!(
                    "{}\t{file}\t{}\t{}\t{}\t{:.3}\t{judge_ms:.0}\t{}\t{wait_ms}\t{}\t{}",
                    if is_pause { "pause" } else { "complete" },
                    clip.real_end,
                    clip.last_voiced,
                    clip.mark,
                    judgement.complete_probability,
                    heard.closing.map_or("-".into(), |p| format!("{p:.3}")),
                    clip.resumed.map_or("-".into(), |r| r.to_string()),
                    heard.text
                );
            }
        }
    }
    for (name, group) in [("complete", &mut complete), ("pause", &mut pauses)] {
        if group.waits.is_empty() {
            continue;
        }
        group.waits.sort_unstable();
        let clips = group.waits.len();
        let long = group.waits.iter().filter(|&&w| w > 1000).count();
        println!(
            "# {name}: {clips} clips, wait median {} ms, {long} of {clips} waited over 1 s",
            group.waits[clips / 2]
        );
        println!(
            "# {name}: {} of {clips} cut in on: {}",
            group.cut_in.len(),
            group.cut_in.join(" ")
        );
    }
    Ok(())
}

/// One answer's first pause, as a call finds it; times in ms from the clip's start.
struct Clip {
    audio: Vec<f32>,
    /// The samples a call transcribes and judges: from the preroll before the first voiced
    /// frame to the pause's check.
    heard: Range<usize>,
    real_end: u64,
    last_voiced: u64,
    mark: u64,
    /// The first voiced frame after the pause, if the candidate goes on.
    resumed: Option<u64>,
}

impl Clip {
    fn find(audio: Vec<f32>) -> Option<Clip> {
        let mut scores = Vec::new();
        VoiceActivity::new().push(&audio, &mut scores);
        let frame_level =
            |i: usize| level_db(&audio[i * VAD_FRAME_SAMPLES..(i + 1) * VAD_FRAME_SAMPLES]);
        let ms = |samples: usize| samples as u64 / 16;
        let mut talkspurt: Option<Talkspurt> = None;
        let mut first_voiced = 0;
        let mut silent = 0;
        let mut pause_at = None;
        let mut resumed = None;
        for (i, &score) in scores.iter().enumerate() {
            let end = (i + 1) * VAD_FRAME_SAMPLES;
            let voiced = score >= 0.5;
            if pause_at.is_some() {
                if voiced {
                    resumed = Some(ms(i * VAD_FRAME_SAMPLES));
                    break;
                }
            } else if voiced {
                silent = 0;
                match &mut talkspurt {
                    Some(t) => t.voiced(end as u64, frame_level(i)),
                    None => {
                        first_voiced = i * VAD_FRAME_SAMPLES;
                        talkspurt = Some(Talkspurt::new(end as u64, frame_level(i)));
                    }
                }
            } else if let Some(t) = &mut talkspurt {
                // A call counts the silent frames too: they tell the line's background.
                t.unvoiced(frame_level(i));
                silent += 1;
                if silent == LONG_PAUSE_FRAMES {
                    // Judged as the pause begins: at its first silent frame, as a call does.
                    pause_at = Some(end - (LONG_PAUSE_FRAMES - 1) * VAD_FRAME_SAMPLES);
                }
            }
        }
        let (talkspurt, pause_at) = (talkspurt?, pause_at?);
        // Checked pause_check after the voice's level fell, whether or not the detector
        // still holds on: a hold past that is kept out of what is heard.
        let check = talkspurt.level_end() as usize
            + TurnTaking::default().pause_check.as_millis() as usize * 16;
        Some(Clip {
            heard: first_voiced.saturating_sub(PREROLL)..check.min(audio.len()),
            real_end: ms(real_end(&audio[..pause_at])),
            last_voiced: talkspurt.last_voiced() / 16,
            mark: talkspurt.speech_end(VAD_FRAME_SAMPLES as u64) / 16,
            resumed,
            audio,
        })
    }
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
