//! Whole calls on the real models (`scripts/setup` installs them): a candidate voice
//! (the Piper voice, resampled to a phone's 8 kHz or WebRTC's 48 kHz) talks to the live
//! conversation loop through a `Call`, on a virtual clock that charges the real compute time
//! of recognition, synthesis and decisions, so the latencies are those of this machine.
//!
//! Run alone (`cargo test --release -p viva-call --test call_real -- --nocapture`) to see the
//! latencies; the tests share the machine's cores, so they run one at a time.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc::error::TryRecvError;
use viva_call::{
    Call, CallEnd, CallInput, CallOutput, CallPeer, CallSetup, CallSummary, Clock, ComputeTime,
    Dialogue, Line, LineKind, Reply, Speaker, SpeechEngines, SystemClock, Turn, TurnSink,
    TurnTaking, VirtualClock, converse, response_percentile,
};
use viva_media::{PcmFrame, resample};
use viva_speech::{SpeechToText, SttConfig, Tts, TtsConfig, TurnModel, Vocabulary, word_errors};
use viva_test_support::models::model;
use viva_test_support::scratch_dir;

/// The cores are shared: calls measured at the same time would slow each other down.
static ONE_CALL_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn engines() -> SpeechEngines {
    static ENGINES: OnceLock<SpeechEngines> = OnceLock::new();
    ENGINES
        .get_or_init(|| {
            let mut config = SttConfig::new(model("whisper/ggml-tiny.en.bin"));
            if let Some(threads) = std::env::var("VIVA_STT_THREADS")
                .ok()
                .and_then(|t| t.parse().ok())
            {
                config.threads = threads;
            }
            let stt = SpeechToText::load(&config).expect("the converted tiny.en model loads");
            let tts = Tts::load(&TtsConfig {
                voice: model("piper/en_US-joe-medium.onnx"),
                onnxruntime: model("onnxruntime/libonnxruntime.so"),
            })
            .expect("the Piper voice loads");
            let turn_model = TurnModel::load(
                &model("smart-turn/smart-turn-v3.2-cpu.onnx"),
                &model("onnxruntime/libonnxruntime.so"),
            )
            .expect("the end-of-turn model loads");
            SpeechEngines {
                stt,
                tts: Arc::new(tts),
                turn_model: Some(Arc::new(turn_model)),
            }
        })
        .clone()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn line(kind: LineKind, text: &str) -> Line {
    Line {
        kind,
        question_id: None,
        text: text.into(),
    }
}

/// What the interviewer was told: (call-clock ms, event).
type Told = Arc<Mutex<Vec<(u64, String)>>>;

/// An interviewer reading from a script, logging what it is told.
struct ScriptedInterviewer {
    opening: Line,
    replies: VecDeque<Reply>,
    nudges: VecDeque<Option<Reply>>,
    log: Told,
}

impl ScriptedInterviewer {
    fn new(opening: &str, replies: Vec<Reply>) -> (Self, Told) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let interviewer = Self {
            opening: line(LineKind::Greeting, opening),
            replies: replies.into(),
            nudges: VecDeque::new(),
            log: Arc::clone(&log),
        };
        (interviewer, log)
    }

    fn note(&self, at: u64, what: String) {
        self.log.lock().unwrap().push((at, what));
    }
}

impl Dialogue for ScriptedInterviewer {
    fn opening(&mut self, _now_ms: u64) -> Line {
        self.opening.clone()
    }

    fn on_answer(&mut self, text: &str, _start_ms: u64, end_ms: u64) -> Reply {
        self.note(end_ms, format!("answer:{text}"));
        self.replies
            .pop_front()
            .unwrap_or_else(|| Reply::Finish(line(LineKind::Closing, "Thank you, goodbye.")))
    }

    fn on_silence(&mut self, now_ms: u64, silent_ms: u64) -> Option<Reply> {
        self.note(now_ms, format!("silence:{silent_ms}"));
        self.nudges.pop_front().flatten()
    }

    fn on_interrupted(&mut self, at_ms: u64, heard: &str) {
        self.note(at_ms, format!("interrupted:{heard}"));
    }

    /// The planned questions, without the acknowledgements ("Thanks.") said before them,
    /// as an interviewer plans them.
    fn upcoming(&self) -> Vec<String> {
        self.replies
            .iter()
            .map(|r| {
                let text = &r.line().text;
                ["Great. ", "Thanks. "]
                    .iter()
                    .find_map(|ack| text.strip_prefix(ack))
                    .unwrap_or(text)
                    .to_owned()
            })
            .collect()
    }
}

/// The live transcript, as a store would receive it.
struct Transcript(Arc<Mutex<Vec<Turn>>>);

impl TurnSink for Transcript {
    fn on_turn(&mut self, turn: &Turn) {
        self.0.lock().unwrap().push(turn.clone());
    }
}

/// When the candidate starts an answer.
#[derive(Clone, Copy)]
enum Cue {
    /// After this many interviewer lines have ended (300 ms without audio), and a pause.
    AfterLines { lines: usize, think: Duration },
    /// This long after the interviewer's next line starts: talking over it.
    OverLine { after: Duration },
}

struct Answer {
    audio: Vec<f32>,
    cue: Cue,
}

/// What the candidate did and heard, on the call clock.
#[derive(Default, Debug)]
struct CandidateLog {
    /// (first audible sample, last audible sample) of each answer.
    spoken: Vec<(Duration, Duration)>,
    /// Start time of every interviewer frame received.
    frames: Vec<Duration>,
    clears: Vec<Duration>,
    /// `EndOfSpeech` commands received: one per interviewer talkspurt.
    ends_of_speech: usize,
    hung_up: Option<Duration>,
}

/// Speech pieces joined by pauses, at `rate`.
fn voice(parts: &[(&str, Duration)], rate: u32) -> Answer {
    let tts = engines().tts;
    let mut audio = Vec::new();
    for (text, pause) in parts {
        let speech = tts.synthesize(text).unwrap();
        audio.extend(resample(&speech, tts.sample_rate(), rate).unwrap());
        audio.extend(vec![0.0; (pause.as_secs_f64() * f64::from(rate)) as usize]);
    }
    Answer {
        audio,
        cue: Cue::AfterLines {
            lines: 1,
            think: ms(500),
        },
    }
}

/// First and last sample index louder than a quiet voice (5 ms windows).
fn audible(audio: &[f32], rate: u32) -> (usize, usize) {
    let window = rate as usize / 200;
    let loud: Vec<usize> = audio
        .chunks(window)
        .enumerate()
        .filter(|(_, w)| (w.iter().map(|s| s * s).sum::<f32>() / w.len() as f32).sqrt() > 0.02)
        .map(|(i, _)| i * window)
        .collect();
    (
        loud.first().copied().unwrap_or(0),
        loud.last().map_or(0, |&i| i + window),
    )
}

/// Plays the candidate into the call: a 20 ms frame every 20 ms (silence between answers),
/// starting each answer on its cue, until the call ends.
async fn candidate(
    mut peer: CallPeer,
    clock: Arc<dyn Clock>,
    rate: u32,
    mut answers: VecDeque<Answer>,
) -> CandidateLog {
    let frame_len = rate as usize / 50;
    let mut log = CandidateLog::default();
    let mut speaking: Option<(Vec<f32>, usize)> = None;
    let mut line_start: Option<Duration> = None;
    let mut heard_until = Duration::ZERO;
    let mut lines_ended = 0;
    let mut start_at: Option<Duration> = None;
    for k in 0u64.. {
        let frame_start = ms(20 * k);
        let now = frame_start + ms(20);
        clock.sleep_until(now).await;
        loop {
            match peer.outbound.try_recv() {
                Ok(CallOutput::Audio(frame)) => {
                    line_start.get_or_insert(frame.timestamp());
                    heard_until = frame.end();
                    log.frames.push(frame.timestamp());
                }
                Ok(CallOutput::ClearPlayback) => log.clears.push(now),
                Ok(CallOutput::EndOfSpeech) => log.ends_of_speech += 1,
                Ok(CallOutput::HangUp) | Err(TryRecvError::Disconnected) => {
                    log.hung_up = Some(now);
                    return log;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        if line_start.is_some() && now >= heard_until + ms(300) {
            line_start = None;
            lines_ended += 1;
        }
        if speaking.is_none() {
            let due = match answers.front().map(|a| a.cue) {
                Some(Cue::AfterLines { lines, think }) if lines_ended >= lines => {
                    *start_at.get_or_insert(now + think) <= frame_start
                }
                Some(Cue::OverLine { after }) => {
                    line_start.is_some_and(|s| frame_start >= s + after)
                }
                _ => false,
            };
            if let Some(answer) = due.then(|| answers.pop_front()).flatten() {
                let (first, last) = audible(&answer.audio, rate);
                let at =
                    |i: usize| frame_start + Duration::from_secs_f64(i as f64 / f64::from(rate));
                log.spoken.push((at(first), at(last)));
                speaking = Some((answer.audio, 0));
                lines_ended = 0;
                start_at = None;
            }
        }
        let mut samples = vec![0.0; frame_len];
        if let Some((audio, played)) = &mut speaking {
            let take = frame_len.min(audio.len() - *played);
            samples[..take].copy_from_slice(&audio[*played..*played + take]);
            *played += take;
            if *played == audio.len() {
                speaking = None;
            }
        }
        let frame = PcmFrame::new(samples, rate, frame_start).unwrap();
        if peer.inbound.send(CallInput::Audio(frame)).await.is_err() || k > 50 * 600 {
            return log;
        }
    }
    log
}

/// Runs one call: the candidate on one side, the loop on the other, on a virtual clock.
async fn call(
    id: &str,
    rate: u32,
    interviewer: ScriptedInterviewer,
    answers: Vec<Answer>,
    recording: Option<PathBuf>,
) -> (CallSummary, CandidateLog, Vec<Turn>) {
    let clock = Arc::new(VirtualClock::start(ComputeTime::Measured).unwrap());
    call_on(clock, id, rate, interviewer, answers, recording).await
}

async fn call_on(
    clock: Arc<dyn Clock>,
    id: &str,
    rate: u32,
    interviewer: ScriptedInterviewer,
    answers: Vec<Answer>,
    recording: Option<PathBuf>,
) -> (CallSummary, CandidateLog, Vec<Turn>) {
    // RUST_LOG=viva_call=debug shows the call's turns, transcriptions and latencies.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (call, peer) = Call::pair(id, rate);
    let transcript = Arc::new(Mutex::new(Vec::new()));
    let setup = CallSetup {
        dialogue: Box::new(interviewer),
        transcript: Box::new(Transcript(Arc::clone(&transcript))),
        recording,
        turn_taking: TurnTaking::default(),
        vocabulary: Vocabulary::default(),
        observer: Arc::new(()),
    };
    let speech = engines();
    let (summary, heard) = tokio::join!(
        converse(call, setup, &speech, Arc::clone(&clock)),
        candidate(peer, clock, rate, answers.into())
    );
    let turns = transcript.lock().unwrap().clone();
    (summary.expect("the call runs"), heard, turns)
}

fn print_latencies(name: &str, summary: &CallSummary, heard: &CandidateLog) {
    for l in &summary.latencies {
        eprintln!(
            "{name} turn {}: end of turn +{} ms, transcript +{} ms, decision {:?}, first audio {:?} (ms after VAD speech end)",
            l.turn,
            l.end_of_turn_wait_ms(),
            l.transcribed_ms as i64 - l.speech_end_ms as i64,
            l.decided_ms.map(|d| d - l.speech_end_ms),
            l.response_ms()
        );
    }
    // From the real end of each answer to the next interviewer frame.
    let mut acoustic: Vec<u64> = heard
        .spoken
        .iter()
        .filter_map(|&(_, end)| {
            heard
                .frames
                .iter()
                .find(|&&f| f > end)
                .map(|&f| (f - end).as_millis() as u64)
        })
        .collect();
    acoustic.sort_unstable();
    let pick = |p: usize| acoustic.get((p * acoustic.len()).div_ceil(100).max(1) - 1);
    eprintln!(
        "{name}: response latency p50 {:?} ms, p95 {:?} ms (VAD end of speech -> first audio); \
         from the acoustic end of speech: p50 {:?} ms, p95 {:?} ms, over {} turns",
        response_percentile(&summary.latencies, 50),
        response_percentile(&summary.latencies, 95),
        pick(50),
        pick(95),
        acoustic.len()
    );
}

fn candidate_texts(turns: &[Turn]) -> Vec<&str> {
    turns
        .iter()
        .filter(|t| t.speaker == Speaker::Candidate)
        .map(|t| t.text.as_str())
        .collect()
}

fn read_recording(path: &Path) -> (Vec<f32>, Vec<f32>) {
    let mut reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate), (2, 16_000));
    let samples: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

fn rms(samples: &[f32]) -> f32 {
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}

const ANSWERS: &[&[&str]] = &[
    &["Yes, I'm ready when you are."],
    &["I have spent about six years designing public and internal APIs."],
    &["Yes, I could start within a month. My notice period is three weeks."],
    &[
        "At my last company I designed the billing API. The key trade off was between strict \
         versioning and fast iteration, so we put explicit versions in the URL.",
    ],
    // A thinking pause after "and, um": one turn, not two.
    &[
        "We had a slow reporting query and, um...",
        "we added a covering index, which cut the time from four seconds to two hundred milliseconds.",
    ],
    &[
        "We moved the background jobs to a queue with retries and a dead letter queue, so failures became visible.",
    ],
    &[
        "I would draw the service boundaries around business capabilities, and each service owns its data.",
    ],
    &["No, I think you covered everything. Thank you."],
];

#[tokio::test(flavor = "current_thread")]
async fn an_interview_over_a_phone_line_is_heard_answered_and_recorded() {
    let _alone = ONE_CALL_AT_A_TIME.lock().await;
    let rate = 8_000;
    let answers: Vec<Answer> = ANSWERS
        .iter()
        .enumerate()
        .map(|(i, parts)| {
            // The thinking pause: 0.8 s of silence after Piper's own 0.2 s.
            let parts: Vec<(&str, Duration)> = parts.iter().map(|p| (*p, ms(800))).collect();
            let mut answer = voice(&parts, rate);
            answer.cue = Cue::AfterLines {
                lines: 1,
                think: ms(300 + 150 * (i as u64 % 4)),
            };
            answer
        })
        .collect();
    let questions: Vec<&str> = include_str!("../../../config/interviewer-lines.txt")
        .lines()
        .collect();
    let replies = vec![
        Reply::Say(line(LineKind::Knockout, questions[2])),
        Reply::Say(line(
            LineKind::Knockout,
            &format!("Great. {}", questions[3]),
        )),
        Reply::Say(line(LineKind::Question, questions[4])),
        Reply::Say(line(
            LineKind::Question,
            &format!("Thanks. {}", questions[5]),
        )),
        Reply::Say(line(LineKind::Question, questions[7])),
        Reply::Say(line(LineKind::Question, questions[8])),
        Reply::Say(line(LineKind::Question, questions[19])),
        Reply::Finish(line(LineKind::Closing, questions[20])),
    ];
    let (interviewer, log) = ScriptedInterviewer::new(questions[0], replies);
    let scratch = scratch_dir("call-phone");
    let recording = scratch.path().join("call.wav");
    let (summary, heard, transcript) = call(
        "phone-call",
        rate,
        interviewer,
        answers,
        Some(recording.clone()),
    )
    .await;
    print_latencies("phone", &summary, &heard);

    assert_eq!(summary.ended, CallEnd::Completed);
    // Every interviewer line ends its talkspurt explicitly (a line whose synthesis ran dry
    // mid-way may end two).
    let lines = summary
        .turns
        .iter()
        .filter(|t| t.speaker == Speaker::Interviewer)
        .count();
    assert!(
        heard.ends_of_speech >= lines,
        "{} ends of speech for {lines} lines",
        heard.ends_of_speech
    );
    assert!(
        summary.recording_error.is_none(),
        "{:?}",
        summary.recording_error
    );
    assert_eq!(
        transcript, summary.turns,
        "the sink saw every turn as it happened"
    );
    let said: Vec<String> = candidate_texts(&summary.turns)
        .iter()
        .map(|t| t.to_string())
        .collect();
    for text in &said {
        eprintln!("heard: {text}");
    }
    assert_eq!(said.len(), ANSWERS.len(), "one turn per answer: {said:#?}");
    let (mut errors, mut words) = (0, 0);
    for (heard, parts) in said.iter().zip(ANSWERS) {
        let (e, w) = word_errors(&parts.join(" "), heard);
        errors += e;
        words += w;
    }
    let wer = errors as f64 / words as f64;
    eprintln!(
        "phone: candidate WER {:.1} % over {words} words",
        wer * 100.0
    );
    assert!(wer <= 0.15, "WER {wer:.3}");
    let told = log.lock().unwrap();
    assert_eq!(
        told.iter()
            .filter(|(_, t)| t.starts_with("answer:"))
            .count(),
        ANSWERS.len()
    );
    assert!(
        !told
            .iter()
            .any(|(_, t)| t.starts_with("interrupted") || t.starts_with("silence"))
    );
    assert_eq!(summary.latencies.len(), ANSWERS.len());
    assert!(summary.latencies.iter().all(|l| l.first_audio_ms.is_some()));

    // The recording: each side where the transcript says, silence where nobody spoke.
    let (left, right) = read_recording(&recording);
    let last = summary.turns.last().unwrap();
    assert!(left.len() >= last.end_ms as usize * 16);
    for turn in &summary.turns {
        let (start, end) = (turn.start_ms as usize * 16, turn.end_ms as usize * 16);
        let (own, other) = match turn.speaker {
            Speaker::Interviewer => (&right, &left),
            Speaker::Candidate => (&left, &right),
        };
        assert!(
            rms(&own[start..end]) > 0.02,
            "{turn:?} is silent in the recording"
        );
        assert!(rms(&other[start..end]) < 0.01, "crosstalk during {turn:?}");
        if turn.speaker == Speaker::Interviewer {
            // Exactly what was played: nothing just before or after the line.
            assert!(
                right[start.saturating_sub(320)..start]
                    .iter()
                    .all(|&s| s == 0.0)
            );
            assert!(
                right[end..(end + 320).min(right.len())]
                    .iter()
                    .all(|&s| s == 0.0)
            );
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn barging_in_over_webrtc_audio_stops_the_interviewer_within_200_ms() {
    let _alone = ONE_CALL_AT_A_TIME.lock().await;
    let rate = 48_000;
    let long_question = "Tell me about a time you improved service reliability. What was your \
                         strategy, what did you measure before and after the change, and how \
                         did the team change the way it worked afterwards?";
    let mut ready = voice(&[("Sure, let's start.", Duration::ZERO)], rate);
    ready.cue = Cue::AfterLines {
        lines: 1,
        think: ms(400),
    };
    let mut interruption = voice(
        &[(
            "Sorry, could you repeat that? The line is noisy.",
            Duration::ZERO,
        )],
        rate,
    );
    interruption.cue = Cue::OverLine { after: ms(1000) };
    let (interviewer, log) = ScriptedInterviewer::new(
        "Hi, I'm your interviewer today.",
        vec![
            Reply::Say(line(LineKind::Question, long_question)),
            Reply::Finish(line(
                LineKind::Closing,
                "Of course. Let's stop here for today, thank you.",
            )),
        ],
    );
    let scratch = scratch_dir("call-barge-in");
    let recording = scratch.path().join("call.wav");
    let (summary, heard, _) = call(
        "webrtc-call",
        rate,
        interviewer,
        vec![ready, interruption],
        Some(recording.clone()),
    )
    .await;

    assert_eq!(summary.ended, CallEnd::Completed);
    let cut = summary
        .turns
        .iter()
        .find(|t| t.interrupted)
        .expect("the long question was interrupted");
    let onset = heard.spoken[1].0;
    assert_eq!(heard.clears.len(), 1, "{heard:?}");
    let stop = heard.clears[0].saturating_sub(onset).as_millis();
    eprintln!(
        "barge-in: speech onset at {} ms, playback cleared {stop} ms later, interviewer audio \
         ends at {} ms; heard {:?}",
        onset.as_millis(),
        cut.end_ms,
        cut.text
    );
    assert!(
        heard.clears[0] > onset && stop <= 200,
        "stopped {stop} ms after the onset"
    );
    assert!(ms(cut.end_ms) <= onset + ms(200), "{cut:?}");
    assert!(
        long_question.starts_with(&cut.text) && !cut.text.is_empty(),
        "{:?}",
        cut.text
    );
    // No audio of the question after the stop: the next frames are the closing line's.
    let next_line = summary
        .turns
        .iter()
        .find(|t| t.kind == Some(LineKind::Closing))
        .unwrap();
    assert!(
        heard
            .frames
            .iter()
            .all(|&f| f < heard.clears[0] || f >= ms(next_line.start_ms))
    );
    let said = candidate_texts(&summary.turns);
    assert_eq!(said.len(), 2, "{said:?}");
    let (errors, words) = word_errors("Sorry, could you repeat that? The line is noisy.", said[1]);
    assert!(errors * 4 <= words, "heard {:?}", said[1]);
    let told: Vec<String> = log.lock().unwrap().iter().map(|(_, t)| t.clone()).collect();
    let interrupted = told
        .iter()
        .position(|t| t.starts_with("interrupted:"))
        .unwrap();
    assert!(told[interrupted + 1].starts_with("answer:"), "{told:?}");

    // The recording's interviewer side goes silent where the playback stopped.
    let (_, right) = read_recording(&recording);
    let (cut_end, resume) = (cut.end_ms as usize * 16, next_line.start_ms as usize * 16);
    assert!(
        rms(&right[cut_end - 1600..cut_end]) > 0.02,
        "the question was playing"
    );
    assert!(right[cut_end..resume].iter().all(|&s| s == 0.0));
}

#[tokio::test(flavor = "current_thread")]
async fn a_silent_candidate_is_nudged_and_then_answers() {
    let _alone = ONE_CALL_AT_A_TIME.lock().await;
    let rate = 8_000;
    let mut ready = voice(&[("Yes, I'm ready.", Duration::ZERO)], rate);
    ready.cue = Cue::AfterLines {
        lines: 1,
        think: ms(400),
    };
    // Silent through the question; answers after the nudge.
    let mut late = voice(
        &[(
            "About six years, mostly building payment services.",
            Duration::ZERO,
        )],
        rate,
    );
    late.cue = Cue::AfterLines {
        lines: 2,
        think: ms(600),
    };
    let (mut interviewer, log) = ScriptedInterviewer::new(
        "Hi, are you ready to begin?",
        vec![
            Reply::Say(line(
                LineKind::Knockout,
                "How many years have you spent designing APIs?",
            )),
            Reply::Finish(line(LineKind::Closing, "Thanks, that's all for today.")),
        ],
    );
    interviewer.nudges = VecDeque::from([Some(Reply::Say(line(
        LineKind::Nudge,
        "No problem, take your time.",
    )))]);
    let (summary, _, _) = call("nudge-call", rate, interviewer, vec![ready, late], None).await;

    assert_eq!(summary.ended, CallEnd::Completed);
    let question = summary
        .turns
        .iter()
        .find(|t| t.kind == Some(LineKind::Knockout))
        .unwrap();
    let told = log.lock().unwrap().clone();
    let silence = told
        .iter()
        .find(|(_, t)| t.starts_with("silence:"))
        .expect("the interviewer heard of the silence");
    assert_eq!(silence.1, "silence:8000");
    // Timers wake on the runtime's millisecond ticks.
    assert!(silence.0.abs_diff(question.end_ms + 8000) <= 2, "{told:?}");
    let nudge = summary
        .turns
        .iter()
        .find(|t| t.kind == Some(LineKind::Nudge))
        .expect("a nudge was spoken");
    assert!(nudge.start_ms >= question.end_ms + 8000);
    let said = candidate_texts(&summary.turns);
    assert_eq!(said.len(), 2, "{said:?}");
    let (errors, words) = word_errors(
        "About six years, mostly building payment services.",
        said[1],
    );
    assert!(errors * 3 <= words, "heard {:?}", said[1]);
    let answer = summary
        .turns
        .iter()
        .find(|t| t.speaker == Speaker::Candidate && t.start_ms > nudge.end_ms);
    assert!(answer.is_some(), "the answer came after the nudge");
}

/// `text` said in one breath, then cut after the word `after` (where whisper's word times
/// put the gap between it and the next, at its quietest 10 ms) and `pause` of silence put
/// there: a thinking pause mid-sentence, with the melody of a sentence that goes on.
fn voice_with_pause(text: &str, after: &str, pause: Duration, rate: u32) -> Answer {
    let tts = engines().tts;
    let speech = resample(&tts.synthesize(text).unwrap(), tts.sample_rate(), 16_000).unwrap();
    let segments = engines()
        .stt
        .transcribe_utterance_blocking(&speech, 0, &Vocabulary::default())
        .unwrap();
    let words: Vec<_> = segments.iter().flat_map(|s| &s.words).collect();
    let at = words
        .iter()
        .position(|w| w.word.trim_matches(|c: char| !c.is_alphanumeric()) == after)
        .unwrap_or_else(|| panic!("whisper did not hear {after:?}: {words:?}"));
    let gap_ms = (words[at].end_ms + words[at + 1].start_ms) / 2;
    let gap = gap_ms as usize * 16;
    let window = 160;
    let quietest = (gap.saturating_sub(1280)..gap + 1280 - window)
        .step_by(window / 2)
        .min_by(|&a, &b| rms(&speech[a..a + window]).total_cmp(&rms(&speech[b..b + window])))
        .unwrap()
        + window / 2;
    let mut audio = speech[..quietest].to_vec();
    audio.extend(vec![0.0; (pause.as_secs_f64() * 16_000.0) as usize]);
    audio.extend_from_slice(&speech[quietest..]);
    Answer {
        audio: resample(&audio, 16_000, rate).unwrap(),
        cue: Cue::AfterLines {
            lines: 1,
            think: ms(400),
        },
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_thinking_pause_mid_sentence_is_not_cut_in_on() {
    let _alone = ONE_CALL_AT_A_TIME.lock().await;
    let rate = 8_000;
    let ready = voice(&[("Yes, I'm ready.", Duration::ZERO)], rate);
    let said = "I would keep the sessions in memory on each server at first, and move them to a \
                shared cache when traffic grows.";
    // No filler, no conjunction before the pause: only the sound says the sentence goes on.
    let answer = voice_with_pause(said, "server", ms(1500), rate);
    let (interviewer, _) = ScriptedInterviewer::new(
        "Hi, are you ready to begin?",
        vec![
            Reply::Say(line(
                LineKind::Question,
                "Where would you keep user sessions in a new web service?",
            )),
            Reply::Finish(line(LineKind::Closing, "Thanks, that's all for today.")),
        ],
    );
    let (summary, _, _) = call(
        "thinking-call",
        rate,
        interviewer,
        vec![ready, answer],
        None,
    )
    .await;

    assert_eq!(summary.ended, CallEnd::Completed);
    let heard = candidate_texts(&summary.turns);
    assert_eq!(
        heard.len(),
        2,
        "the pause did not end the answer: {heard:?}"
    );
    let (errors, words) = word_errors(said, heard[1]);
    assert!(
        errors * 4 <= words,
        "one answer, both halves: {:?}",
        heard[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_call_runs_on_the_real_clock() {
    let _alone = ONE_CALL_AT_A_TIME.lock().await;
    let rate = 16_000;
    let mut answer = voice(
        &[("Yes, I can start within a month.", Duration::ZERO)],
        rate,
    );
    answer.cue = Cue::AfterLines {
        lines: 1,
        think: ms(400),
    };
    let (interviewer, _) = ScriptedInterviewer::new(
        "If you were offered the role, could you start within a month?",
        vec![Reply::Finish(line(
            LineKind::Closing,
            "Great, thank you. Goodbye.",
        ))],
    );
    let wall = std::time::Instant::now();
    let (summary, heard, _) = call_on(
        Arc::new(SystemClock::start()),
        "live-call",
        rate,
        interviewer,
        vec![answer],
        None,
    )
    .await;
    print_latencies("real clock", &summary, &heard);
    assert_eq!(summary.ended, CallEnd::Completed);
    let said = candidate_texts(&summary.turns);
    assert_eq!(said.len(), 1, "{said:?}");
    let (errors, words) = word_errors("Yes, I can start within a month.", said[0]);
    assert!(errors * 4 <= words, "heard {:?}", said[0]);
    // It really took the call's own time: the last turn ended when the wall clock says.
    let last = summary.turns.last().unwrap();
    assert!(wall.elapsed() >= ms(last.end_ms));
}
