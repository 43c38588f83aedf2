//! The state machine on a virtual clock with fake speech: an energy VAD, a transcriber that
//! knows what was said when, a tone for a voice, and a scripted interviewer.

use std::collections::VecDeque;
use std::f32::consts::TAU;
use std::time::Duration;

use viva_media::PcmFrame;
use viva_speech::SpokenSentence;

use super::inbound::VoiceDetector;
use super::playback::FRAME;
use super::*;
use crate::dialogue::{Line, LineKind, Reply, Speaker, Turn};

const IN_RATE: u32 = 8_000;
const OUT_RATE: u32 = 8_000;
const VOICE_RATE: u32 = 22_050;
/// The fake voice speaks this long per word.
const WORD: Duration = Duration::from_millis(250);

fn ms_(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Speech is anything louder than a whisper.
#[derive(Default)]
struct EnergyVad {
    pending: Vec<f32>,
}

impl VoiceDetector for EnergyVad {
    fn push(&mut self, samples: &[f32], scores: &mut Vec<f32>) {
        self.pending.extend_from_slice(samples);
        let frames = self.pending.len() / VAD_FRAME_SAMPLES;
        for frame in self.pending.chunks_exact(VAD_FRAME_SAMPLES) {
            let rms = (frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32).sqrt();
            scores.push(if rms > 0.05 { 1.0 } else { 0.0 });
        }
        self.pending.drain(..frames * VAD_FRAME_SAMPLES);
    }
}

/// An energy VAD that holds on for a while after the voice stops, as a real detector's score
/// decays: the frames it still calls voiced are the quiet tail of the voice.
struct HangoverVad {
    energy: EnergyVad,
    hangover_frames: usize,
    held: usize,
}

impl VoiceDetector for HangoverVad {
    fn push(&mut self, samples: &[f32], scores: &mut Vec<f32>) {
        let from = scores.len();
        self.energy.push(samples, scores);
        for score in &mut scores[from..] {
            if *score > 0.5 {
                self.held = self.hangover_frames;
            } else if self.held > 0 {
                self.held -= 1;
                *score = 1.0;
            }
        }
    }
}

fn line(kind: LineKind, text: &str) -> Line {
    Line {
        kind,
        question_id: None,
        text: text.into(),
    }
}

fn say(text: &str) -> Reply {
    Reply::Say(line(LineKind::Question, text))
}

/// A stretch of candidate speech and the words the fake transcriber hears in it.
struct Burst {
    start: Duration,
    len: Duration,
    text: &'static str,
}

enum Pending {
    Transcript(JobId, Heard),
    Judged(JobId, f32),
    Reply(AskId, Option<Reply>),
    Voice(LineId, SpokenSentence),
    VoiceEnd(LineId),
}

/// A call on a virtual clock: the candidate's audio, fake engines with fixed delays, and a
/// scripted interviewer, all driven by the conversation's own timeouts.
struct Sim {
    conversation: Conversation,
    now: Duration,
    bursts: Vec<Burst>,
    /// Inbound frames with these indexes are never sent (a stalled transport).
    missing_frames: std::ops::Range<u64>,
    next_frame: u64,
    hung_up_at: Option<Duration>,
    pending: Vec<(Duration, u64, Pending)>,
    seq: u64,
    dialogue_free_at: Duration,
    stt_delay: Duration,
    /// The fake recognition's sureness of a sentence's closing mark.
    closing: f32,
    /// The fake end-of-turn model: a turn sounds surely complete (0.99) when its words end a
    /// sentence and unfinished (0.01) when not, unless `verdict` says otherwise.
    judge_delay: Duration,
    verdict: Option<f32>,
    /// When each transcription and judgement was asked for.
    transcriptions: Vec<Duration>,
    cancellations: Vec<Duration>,
    judgements: Vec<Duration>,
    decide_delay: Duration,
    voice_delay: Duration,
    answers: VecDeque<Reply>,
    silence_replies: VecDeque<Option<Reply>>,
    /// What the interviewer was told, in order, with the time it was asked.
    log: Vec<(Duration, String)>,
    frames: Vec<PcmFrame>,
    clears: Vec<Duration>,
    ends_of_speech: Vec<Duration>,
    hang_ups: usize,
    prepares: usize,
    turns: Vec<Turn>,
    latencies: Vec<TurnLatency>,
    left: Vec<f32>,
    right: Vec<f32>,
    finished: Option<CallEnd>,
    /// Steps in a row that did not move time on.
    idle_steps: u32,
    last_step_at: Duration,
}

impl Sim {
    fn new(answers: Vec<Reply>) -> Self {
        Self::with(TurnTaking::default(), answers)
    }

    fn with(config: TurnTaking, answers: Vec<Reply>) -> Self {
        Self::with_detector(config, answers, Box::<EnergyVad>::default())
    }

    /// A call whose detector holds on 240 ms after the voice, with pauses judged by the fake
    /// end-of-turn model.
    fn judged(answers: Vec<Reply>) -> Self {
        let detector = HangoverVad {
            energy: EnergyVad::default(),
            hangover_frames: 15,
            held: 0,
        };
        let mut sim = Self::with_detector(TurnTaking::default(), answers, Box::new(detector));
        sim.conversation.judge_turns();
        sim
    }

    fn with_detector(
        config: TurnTaking,
        answers: Vec<Reply>,
        detector: Box<dyn VoiceDetector>,
    ) -> Self {
        let conversation =
            Conversation::with_detector(config, OUT_RATE, Duration::ZERO, detector).unwrap();
        Self {
            conversation,
            now: Duration::ZERO,
            bursts: Vec::new(),
            missing_frames: 0..0,
            next_frame: 0,
            hung_up_at: None,
            pending: Vec::new(),
            seq: 0,
            dialogue_free_at: Duration::ZERO,
            stt_delay: ms_(150),
            closing: 0.97,
            judge_delay: ms_(50),
            verdict: None,
            transcriptions: Vec::new(),
            cancellations: Vec::new(),
            judgements: Vec::new(),
            decide_delay: ms_(20),
            voice_delay: ms_(60),
            answers: answers.into(),
            silence_replies: VecDeque::new(),
            log: Vec::new(),
            frames: Vec::new(),
            clears: Vec::new(),
            ends_of_speech: Vec::new(),
            hang_ups: 0,
            prepares: 0,
            turns: Vec::new(),
            latencies: Vec::new(),
            left: Vec::new(),
            right: Vec::new(),
            finished: None,
            idle_steps: 0,
            last_step_at: Duration::MAX,
        }
    }

    fn speak(&mut self, start: Duration, len: Duration, text: &'static str) {
        assert!(start >= self.now, "speech must be scheduled in the future");
        self.bursts.push(Burst { start, len, text });
    }

    fn candidate_sample(&self, t: Duration) -> f32 {
        let speaking = self
            .bursts
            .iter()
            .any(|b| t >= b.start && t < b.start + b.len);
        if speaking {
            0.3 * (TAU * 220.0 * t.as_secs_f32()).sin()
        } else {
            0.0
        }
    }

    /// What the fake transcriber hears in `start_ms` + `samples` of 16 kHz audio.
    fn heard(&self, start_ms: u64, samples: usize) -> String {
        let from = ms_(start_ms);
        let to = from + Duration::from_secs_f64(samples as f64 / 16_000.0);
        self.bursts
            .iter()
            .filter(|b| b.start < to && b.start + b.len > from)
            .map(|b| b.text)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn later(&mut self, at: Duration, what: Pending) {
        self.seq += 1;
        self.pending.push((at, self.seq, what));
    }

    fn drain(&mut self) {
        while let Some(action) = self.conversation.poll_action(self.now) {
            self.handle(action);
        }
    }

    fn handle(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::Send(CallOutput::Audio(frame)) => {
                assert!(
                    frame.timestamp() <= now,
                    "a frame was sent before it was due"
                );
                assert_eq!(frame.sample_rate(), OUT_RATE);
                assert_eq!(frame.samples().len(), 160);
                self.frames.push(frame);
            }
            Action::Send(CallOutput::ClearPlayback) => self.clears.push(now),
            Action::Send(CallOutput::EndOfSpeech) => self.ends_of_speech.push(now),
            Action::Send(CallOutput::HangUp) => self.hang_ups += 1,
            Action::Transcribe {
                job,
                audio,
                start_ms,
            } => {
                let text = self.heard(start_ms, audio.len());
                let closing = text.ends_with(['.', '?', '!']).then_some(self.closing);
                self.transcriptions.push(now);
                let heard = Heard { text, closing };
                self.later(now + self.stt_delay, Pending::Transcript(job, heard));
            }
            Action::CancelTranscription { job } => {
                self.pending
                    .retain(|(_, _, what)| !matches!(what, Pending::Transcript(j, _) if *j == job));
                self.cancellations.push(now);
            }
            Action::JudgeTurn { job, audio } => {
                let heard_from =
                    now.saturating_sub(Duration::from_secs_f64(audio.len() as f64 / 16_000.0));
                let text = self.heard(ms(heard_from), audio.len());
                let complete =
                    self.verdict
                        .unwrap_or_else(|| match text.ends_with(['.', '?', '!']) {
                            true => 0.99,
                            false => 0.01,
                        });
                self.judgements.push(now);
                self.later(now + self.judge_delay, Pending::Judged(job, complete));
            }
            Action::Ask { ask, event } => {
                let reply = match &event {
                    DialogueEvent::Opening { .. } => {
                        self.log.push((now, "opening".into()));
                        Some(Reply::Say(line(LineKind::Greeting, "Hello there.")))
                    }
                    DialogueEvent::Answer { text, .. } => {
                        self.log.push((now, format!("answer:{text}")));
                        Some(self.answers.pop_front().unwrap_or_else(|| say("Go on.")))
                    }
                    DialogueEvent::Silence { silent_ms, .. } => {
                        self.log.push((now, format!("silence:{silent_ms}")));
                        self.silence_replies.pop_front().flatten()
                    }
                };
                let at = self.dialogue_free_at.max(now) + self.decide_delay;
                self.dialogue_free_at = at;
                self.later(at, Pending::Reply(ask, reply));
            }
            Action::Interrupted { at_ms, heard } => {
                self.log.push((now, format!("interrupted:{at_ms}:{heard}")));
            }
            Action::Speak { line, text } => {
                let mut at = now;
                for sentence in text.split_inclusive(['.', '?', '!']) {
                    let words = sentence.split_whitespace().count() as u32;
                    let samples = (WORD * words).as_secs_f64() * f64::from(VOICE_RATE);
                    // A cosine: the first sample is at full level, so its onset is exact.
                    let samples = (0..samples as usize)
                        .map(|i| 0.3 * (TAU * 300.0 * i as f32 / VOICE_RATE as f32).cos())
                        .collect();
                    at += self.voice_delay;
                    let sentence = SpokenSentence {
                        text: sentence.trim().to_owned(),
                        samples,
                    };
                    self.later(at, Pending::Voice(line, sentence));
                }
                self.later(at, Pending::VoiceEnd(line));
            }
            Action::StopSpeaking { line } => self.pending.retain(
                |(_, _, p)| !matches!(p, Pending::Voice(l, _) | Pending::VoiceEnd(l) if *l == line),
            ),
            Action::Prepare => self.prepares += 1,
            Action::Record { left, right } => {
                assert_eq!(left.len(), right.len());
                self.left.extend(left);
                self.right.extend(right);
            }
            Action::Turn(turn) => self.turns.push(turn),
            Action::Latency(latency) => self.latencies.push(latency),
            // Holes are found by the playback's own tests; here synthesis is never late.
            Action::AudioGap(_) => {}
            Action::Finished(end) => self.finished = Some(end),
        }
    }

    /// Moves to the next event (no later than `limit`) and delivers it.
    fn step(&mut self, limit: Duration) {
        // A timeout that falls due again and again with nothing to do would spin a real
        // call's task: fail here instead of hanging the test.
        self.idle_steps = if self.now == self.last_step_at {
            self.idle_steps + 1
        } else {
            0
        };
        self.last_step_at = self.now;
        assert!(
            self.idle_steps < 10_000,
            "the conversation keeps asking to be woken at {:?} with nothing to do",
            self.now
        );
        self.drain();
        if self.finished.is_some() {
            self.now = limit;
            return;
        }
        let frame_due = ms_((self.next_frame + 1) * 20);
        let mut next = frame_due;
        if self.hung_up_at.is_some() {
            next = limit; // no more audio after a hang-up
        }
        if let Some(at) = self.conversation.poll_timeout() {
            next = next.min(at);
        }
        if let Some(&(at, _, _)) = self.pending.iter().min_by_key(|(at, seq, _)| (*at, *seq)) {
            next = next.min(at);
        }
        self.now = next.min(limit).max(self.now);
        if self.hung_up_at.is_none() && frame_due <= self.now {
            let index = self.next_frame;
            self.next_frame += 1;
            if !self.missing_frames.contains(&index) {
                let start = ms_(index * 20);
                let samples = (0..160)
                    .map(|i| self.candidate_sample(start + Duration::from_micros(i * 125)))
                    .collect();
                let frame = PcmFrame::new(samples, IN_RATE, start).unwrap();
                self.conversation
                    .on_input(CallInput::Audio(frame), self.now);
            }
        }
        loop {
            let due = self
                .pending
                .iter()
                .enumerate()
                .filter(|(_, (at, _, _))| *at <= self.now)
                .min_by_key(|(_, (at, seq, _))| (*at, *seq))
                .map(|(i, _)| i);
            let Some(index) = due else { break };
            let (_, _, what) = self.pending.remove(index);
            let now = self.now;
            match what {
                Pending::Transcript(job, heard) => self.conversation.on_transcript(job, heard, now),
                Pending::Judged(job, complete) => self.conversation.on_turn_judged(job, complete),
                Pending::Reply(ask, reply) => self.conversation.on_reply(ask, reply, now),
                Pending::Voice(line, sentence) => {
                    self.conversation.on_voice(line, &sentence, VOICE_RATE, now)
                }
                Pending::VoiceEnd(line) => self.conversation.on_voice_end(line),
            }
            self.drain();
        }
        self.drain();
    }

    fn run_until(&mut self, t: Duration) {
        while self.now < t {
            self.step(t);
        }
    }

    fn hang_up(&mut self) {
        self.hung_up_at = Some(self.now);
        self.conversation.on_input(CallInput::HangUp, self.now);
        self.drain();
    }

    /// Runs until the next turn by `speaker` and returns it.
    fn next_turn(&mut self, speaker: Speaker) -> Turn {
        let seen = self.turns.len();
        let limit = self.now + Duration::from_secs(120);
        while self.now < limit {
            if let Some(turn) = self.turns[seen..].iter().find(|t| t.speaker == speaker) {
                return turn.clone();
            }
            self.step(limit);
        }
        panic!(
            "no {speaker:?} turn within two minutes; turns: {:#?}",
            self.turns
        );
    }

    fn asked_at(&self, prefix: &str) -> Duration {
        self.log
            .iter()
            .find(|(_, what)| what.starts_with(prefix))
            .unwrap_or_else(|| panic!("never asked {prefix:?}: {:#?}", self.log))
            .0
    }

    fn told(&self) -> Vec<&str> {
        self.log.iter().map(|(_, what)| what.as_str()).collect()
    }

    /// After the greeting, says `first`, then `second` `gap` after `first` began (each for
    /// 1 s), and returns the candidate's turn and when `second` ended. The interviewer must
    /// have answered once: the pause did not end the turn.
    fn speak_across_a_pause(
        &mut self,
        first: &'static str,
        gap: Duration,
        second: &'static str,
    ) -> (Turn, Duration) {
        let greeting = self.next_turn(Speaker::Interviewer);
        let start = ms_(greeting.end_ms + 300);
        self.speak(start, ms_(1000), first);
        self.speak(start + gap, ms_(1000), second);
        let answer = self.next_turn(Speaker::Candidate);
        let answers = self
            .told()
            .iter()
            .filter(|t| t.starts_with("answer:"))
            .count();
        assert_eq!(answers, 1, "{:?}", self.told());
        (answer, start + gap + ms_(1000))
    }
}

fn ms_between(from: Duration, to: Duration) -> i64 {
    to.as_millis() as i64 - from.as_millis() as i64
}

/// The default end-of-turn silences, in ms.
fn end_of_turn() -> i64 {
    TurnTaking::default().end_of_turn.as_millis() as i64
}

fn end_of_turn_trailing() -> i64 {
    TurnTaking::default().end_of_turn_trailing.as_millis() as i64
}

#[test]
fn a_complete_answer_ends_the_turn_after_the_base_silence() {
    let mut sim = Sim::new(vec![say("Good. What did you measure?")]);
    let greeting = sim.next_turn(Speaker::Interviewer);
    assert_eq!(greeting.text, "Hello there.");
    assert_eq!(greeting.kind, Some(LineKind::Greeting));
    assert_eq!(
        greeting.end_ms - greeting.start_ms,
        500,
        "two words of the fake voice"
    );

    let start = ms_(greeting.end_ms + 500);
    sim.speak(start, ms_(1500), "I built a cache for the API.");
    let answer = sim.next_turn(Speaker::Candidate);
    assert_eq!(answer.text, "I built a cache for the API.");
    assert!(
        ms_between(start, ms_(answer.start_ms)).abs() <= 16,
        "{answer:?}"
    );
    let speech_end = start + ms_(1500);
    assert!(
        ms_between(speech_end, ms_(answer.end_ms)).abs() <= 16,
        "{answer:?}"
    );

    let asked = sim.asked_at("answer:");
    let wait = ms_between(speech_end, asked);
    assert!(
        (end_of_turn()..=end_of_turn() + 40).contains(&wait),
        "end of turn {wait} ms after the speech"
    );

    let reply = sim.next_turn(Speaker::Interviewer);
    assert_eq!(reply.text, "Good. What did you measure?");
    let latency = &sim.latencies[0];
    assert_eq!(latency.turn, 1);
    assert!(
        (end_of_turn()..=end_of_turn() + 20).contains(&(latency.end_of_turn_wait_ms() as i64)),
        "{latency:?}"
    );
    assert!(
        latency.transcribed_ms <= latency.end_of_turn_ms,
        "speculative STT was ready"
    );
    // Decision (20 ms) then the first sentence (60 ms), then the next whole millisecond.
    let response = latency.response_ms().unwrap() as i64;
    let expected = end_of_turn() + 80;
    assert!(
        (expected..=expected + 50).contains(&response),
        "{latency:?}"
    );
    assert_eq!(latency.first_audio_ms, Some(reply.start_ms));
    assert!(
        sim.prepares >= 2,
        "each line starting is a chance to prepare"
    );
}

#[test]
fn a_trailing_filler_waits_longer_for_the_rest_of_the_thought() {
    let mut sim = Sim::new(vec![]);
    let greeting = sim.next_turn(Speaker::Interviewer);
    let start = ms_(greeting.end_ms + 300);
    sim.speak(start, ms_(1200), "We moved sessions to Redis and um");
    let answer = sim.next_turn(Speaker::Candidate);
    assert_eq!(answer.text, "We moved sessions to Redis and um");
    let wait = ms_between(start + ms_(1200), sim.asked_at("answer:"));
    let trailing = end_of_turn_trailing();
    assert!(
        (trailing..=trailing + 40).contains(&wait),
        "waited {wait} ms"
    );
}

#[test]
fn a_thinking_pause_after_a_filler_keeps_one_turn() {
    let mut sim = Sim::new(vec![]);
    // A 1.2 s pause: past the base silence, within the trailing one.
    let (answer, ended) = sim.speak_across_a_pause(
        "We started with Postgres and",
        ms_(2200),
        "then moved the hot keys to Redis.",
    );
    assert_eq!(
        answer.text,
        "We started with Postgres and then moved the hot keys to Redis."
    );
    let wait = ms_between(ended, sim.asked_at("answer:"));
    assert!(
        (end_of_turn()..=end_of_turn() + 40).contains(&wait),
        "waited {wait} ms"
    );
}

#[test]
fn clicks_and_wordless_noise_are_not_turns() {
    let mut sim = Sim::new(vec![]);
    let greeting = sim.next_turn(Speaker::Interviewer);
    let t = ms_(greeting.end_ms + 500);
    sim.speak(t, ms_(60), "click"); // too short to be speech
    sim.speak(t + ms_(2000), ms_(600), ""); // a sigh: whisper hears no words
    sim.run_until(t + ms_(5000));
    assert!(
        sim.turns
            .iter()
            .all(|turn| turn.speaker == Speaker::Interviewer)
    );
    assert!(!sim.told().iter().any(|t| t.starts_with("answer:")));
}

/// The reply the barge-in tests talk over: 24 words, 6 s of the fake voice.
const LONG_LINE: &str = "Thanks for that. Now I would like to hear about a time when a release went \
                         badly wrong and what you changed in your process afterwards.";

#[test]
fn barge_in_stops_playback_within_200_ms_and_becomes_the_candidates_turn() {
    let mut sim = Sim::new(vec![say(LONG_LINE), say("Sure, go ahead.")]);
    let greeting = sim.next_turn(Speaker::Interviewer);
    sim.speak(ms_(greeting.end_ms + 300), ms_(1000), "I led the API work.");
    sim.next_turn(Speaker::Candidate);
    // Run until the long line is playing.
    while sim.latencies.is_empty() {
        sim.step(ms_(60_000));
    }
    let line_start = sim.latencies[0].first_audio_ms.unwrap();
    let onset = ms_(line_start + 1000);
    sim.speak(onset, ms_(1500), "Sorry, can I add something?");

    let cut = sim.next_turn(Speaker::Interviewer);
    assert!(cut.interrupted);
    assert_eq!(cut.start_ms, line_start);
    assert_eq!(sim.clears.len(), 1);
    let stop = ms_between(onset, sim.clears[0]);
    assert!(
        (0..=200).contains(&stop),
        "playback stopped {stop} ms after the onset"
    );
    assert!(ms_(cut.end_ms) <= onset + ms_(200), "{cut:?}");
    // About a second and a fifth of the line was heard: four or five words of it.
    assert!(LONG_LINE.starts_with(&cut.text), "{:?}", cut.text);
    let words = cut.text.split_whitespace().count();
    assert!((4..=5).contains(&words), "{:?}", cut.text);
    // No frame of the line after the stop.
    assert!(
        sim.frames
            .iter()
            .filter(|f| f.timestamp() > sim.clears[0])
            .all(|f| f.timestamp() > onset + ms_(1500)),
        "audio went on after the barge-in"
    );

    let answer = sim.next_turn(Speaker::Candidate);
    assert_eq!(answer.text, "Sorry, can I add something?");
    let told = sim.told();
    let interrupted = format!("interrupted:{}:{}", sim.clears[0].as_millis(), cut.text);
    assert_eq!(
        &told[told.len() - 2..],
        [interrupted.as_str(), "answer:Sorry, can I add something?"]
    );
    assert_eq!(sim.next_turn(Speaker::Interviewer).text, "Sure, go ahead.");
}

#[test]
fn speech_in_the_echo_guard_and_short_backchannels_do_not_barge_in() {
    let mut sim = Sim::new(vec![say(LONG_LINE)]);
    let greeting = sim.next_turn(Speaker::Interviewer);
    sim.speak(ms_(greeting.end_ms + 300), ms_(1000), "I led the API work.");
    sim.next_turn(Speaker::Candidate);
    while sim.latencies.is_empty() {
        sim.step(ms_(60_000));
    }
    let line_start = ms_(sim.latencies[0].first_audio_ms.unwrap());
    // A "mm-hm" mid-line, and 200 ms of speech right at the start (echo territory, of which
    // only the last 50 ms count).
    sim.speak(line_start + ms_(2000), ms_(80), "mm-hm");
    sim.speak(sim.now.max(line_start), ms_(200), "");
    let line = sim.next_turn(Speaker::Interviewer);
    assert!(!line.interrupted, "{line:?}");
    assert_eq!(line.text, LONG_LINE);
    assert!(sim.clears.is_empty());
}

#[test]
fn sustained_speech_from_the_start_of_playback_barges_in_after_the_echo_guard() {
    let mut sim = Sim::new(vec![say(LONG_LINE)]);
    let greeting = sim.next_turn(Speaker::Interviewer);
    sim.speak(ms_(greeting.end_ms + 300), ms_(1000), "I led the API work.");
    sim.next_turn(Speaker::Candidate);
    while sim.latencies.is_empty() {
        sim.step(ms_(60_000));
    }
    let line_start = ms_(sim.latencies[0].first_audio_ms.unwrap());
    sim.speak(sim.now.max(line_start), ms_(1000), "Wait, one more thing.");
    let cut = sim.next_turn(Speaker::Interviewer);
    assert!(cut.interrupted);
    let stop = ms_between(line_start, sim.clears[0]);
    // 150 ms of guard, 112 ms of counted speech, then the audio pipeline's delay.
    assert!(
        (262..=330).contains(&stop),
        "stopped {stop} ms into the line"
    );
}

#[test]
fn a_reply_overtaken_by_more_speech_is_dropped_and_reported_first() {
    let mut sim = Sim::new(vec![say("Noted. Next question."), say("Thanks.")]);
    sim.decide_delay = ms_(600); // a slow interviewer
    let greeting = sim.next_turn(Speaker::Interviewer);
    let first = ms_(greeting.end_ms + 300);
    sim.speak(first, ms_(1000), "First part.");
    // The candidate goes on 900 ms later: after the end of turn, before the reply.
    sim.speak(first + ms_(1900), ms_(1000), "Second part.");
    let second = sim.next_turn(Speaker::Candidate);
    assert_eq!(second.text, "First part.");
    let second = sim.next_turn(Speaker::Candidate);
    assert_eq!(second.text, "Second part.");
    let reply = sim.next_turn(Speaker::Interviewer);
    assert_eq!(reply.text, "Thanks.");
    let told = sim.told();
    assert_eq!(told[1], "answer:First part.");
    assert!(
        told[2].starts_with("interrupted:") && told[2].ends_with(':'),
        "{told:?}"
    );
    assert_eq!(told[3], "answer:Second part.");
    assert!(sim.turns.iter().all(|t| t.text != "Noted. Next question."));
    assert_eq!(
        sim.latencies[0].first_audio_ms, None,
        "the first reply never played"
    );
}

#[test]
fn long_silences_are_reported_at_each_interval_and_nudges_keep_the_clock() {
    let mut sim = Sim::new(vec![]);
    sim.silence_replies = VecDeque::from([
        Some(Reply::Say(line(LineKind::Nudge, "Take your time."))),
        None,
    ]);
    let greeting = sim.next_turn(Speaker::Interviewer);
    let end = ms_(greeting.end_ms);
    let nudge = sim.next_turn(Speaker::Interviewer);
    assert_eq!(nudge.kind, Some(LineKind::Nudge));
    assert_eq!(sim.asked_at("silence:8000"), end + ms_(8000));
    sim.run_until(end + ms_(24_500));
    let silences: Vec<(Duration, &str)> = sim
        .log
        .iter()
        .filter(|(_, what)| what.starts_with("silence:"))
        .map(|(at, what)| (*at - end, what.as_str()))
        .collect();
    assert_eq!(
        silences,
        [
            (ms_(8000), "silence:8000"),
            (ms_(16_000), "silence:16000"),
            (ms_(24_000), "silence:24000"),
        ]
    );
    // Speaking resets the silence clock.
    sim.speak(end + ms_(25_000), ms_(800), "Sorry, I was thinking.");
    let answer = sim.next_turn(Speaker::Candidate);
    let reply = sim.next_turn(Speaker::Interviewer);
    sim.run_until(ms_(reply.end_ms + 8_100));
    assert_eq!(sim.log.last().unwrap().0, ms_(reply.end_ms + 8_000));
    assert!(answer.end_ms < reply.start_ms);
}

#[test]
fn the_recording_lines_up_both_sides_with_the_transcript() {
    let mut sim = Sim::new(vec![say("Good. Tell me more.")]);
    // The transport stalls for 600 ms during the greeting; its audio resumes in step.
    sim.missing_frames = 10..40;
    let greeting = sim.next_turn(Speaker::Interviewer);
    let speech = ms_(greeting.end_ms + 400);
    sim.speak(speech, ms_(1000), "I led the API work.");
    sim.next_turn(Speaker::Candidate);
    let reply = sim.next_turn(Speaker::Interviewer);
    sim.run_until(ms_(reply.end_ms + 1000));
    sim.hang_up();
    assert_eq!(sim.finished, Some(CallEnd::HungUp));
    let total = sim.left.len();
    assert!(
        total >= (reply.end_ms as usize + 900) * 16,
        "recording of {total} samples"
    );

    for turn in sim
        .turns
        .iter()
        .filter(|t| t.speaker == Speaker::Interviewer)
    {
        let start = turn.start_ms as usize * 16;
        let end = turn.end_ms as usize * 16;
        assert!(
            sim.right[start - 160..start].iter().all(|&s| s == 0.0),
            "sound before {turn:?}"
        );
        assert!(
            sim.right[start].abs() > 0.1,
            "no sound at the start of {turn:?}"
        );
        // One voice at a time (resampling ripple at the edges stays well below a doubled level).
        assert!(sim.right[start..end].iter().all(|&s| s.abs() <= 0.4));
        assert!(
            sim.right[end..end + 160].iter().all(|&s| s == 0.0),
            "sound after {turn:?}"
        );
        assert!(
            sim.left[start..end].iter().all(|&s| s.abs() < 0.01),
            "candidate was silent"
        );
    }
    let speech_at = speech.as_millis() as usize * 16;
    let rms = |samples: &[f32]| {
        (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
    };
    assert!(rms(&sim.left[speech_at - 320..speech_at - 16]) < 0.005);
    assert!(rms(&sim.left[speech_at + 16..speech_at + 800]) > 0.15);
    assert!(
        sim.right[speech_at..speech_at + 16_000]
            .iter()
            .all(|&s| s == 0.0)
    );
}

#[test]
fn hanging_up_mid_answer_keeps_the_last_words() {
    let mut sim = Sim::new(vec![]);
    let greeting = sim.next_turn(Speaker::Interviewer);
    let start = ms_(greeting.end_ms + 300);
    sim.speak(start, ms_(2000), "I have to go, sorry.");
    sim.run_until(start + ms_(1500));
    sim.hang_up();
    sim.run_until(start + ms_(3000));
    assert_eq!(sim.finished, Some(CallEnd::HungUp));
    let last = sim.turns.last().unwrap();
    assert_eq!(
        (last.speaker, last.text.as_str()),
        (Speaker::Candidate, "I have to go, sorry.")
    );
    assert!(!sim.told().iter().any(|t| t.starts_with("answer:")));
    assert_eq!(
        sim.hang_ups, 0,
        "the caller hung up; the conversation does not"
    );
}

#[test]
fn the_closing_line_plays_to_the_end_then_hangs_up() {
    let closing = Reply::Finish(line(
        LineKind::Closing,
        "Thank you for your time today, goodbye.",
    ));
    let mut sim = Sim::new(vec![closing]);
    let greeting = sim.next_turn(Speaker::Interviewer);
    sim.speak(ms_(greeting.end_ms + 300), ms_(800), "No questions.");
    sim.next_turn(Speaker::Candidate);
    while sim.latencies.is_empty() {
        sim.step(ms_(60_000));
    }
    sim.speak(sim.now + ms_(300), ms_(800), "Bye!");
    let last = sim.next_turn(Speaker::Interviewer);
    assert!(!last.interrupted);
    assert_eq!(last.kind, Some(LineKind::Closing));
    sim.run_until(ms_(last.end_ms + 10));
    assert_eq!(sim.hang_ups, 1);
    assert_eq!(sim.finished, Some(CallEnd::Completed));
    assert!(sim.clears.is_empty());
}

#[test]
fn every_talkspurt_ends_with_one_end_of_speech_after_its_last_frame() {
    let mut sim = Sim::new(vec![say("Good. What did you measure?")]);
    // Synthesis slower than speech: the reply's second sentence comes after the first one
    // has played, so the reply is spoken in two talkspurts.
    sim.voice_delay = ms_(400);
    let greeting = sim.next_turn(Speaker::Interviewer);
    sim.speak(ms_(greeting.end_ms + 300), ms_(800), "I measured it.");
    sim.next_turn(Speaker::Candidate);
    let reply = sim.next_turn(Speaker::Interviewer);
    sim.run_until(ms_(reply.end_ms + 100));
    assert!(sim.clears.is_empty());

    // Split the frames where their timestamps jump: each run must end with exactly one end
    // of speech, sent once its last frame has played and before the next run starts.
    let mut runs: Vec<Vec<Duration>> = Vec::new();
    for frame in &sim.frames {
        let at = frame.timestamp();
        match runs.last_mut() {
            Some(run) if *run.last().unwrap() + FRAME == at => run.push(at),
            _ => runs.push(vec![at]),
        }
    }
    assert_eq!(
        runs.len(),
        3,
        "the greeting, then the reply in two parts: {:?}",
        runs.iter().map(|r| (r[0], r.len())).collect::<Vec<_>>()
    );
    assert_eq!(
        sim.ends_of_speech.len(),
        runs.len(),
        "{:?}",
        sim.ends_of_speech
    );
    for (i, (run, end)) in runs.iter().zip(&sim.ends_of_speech).enumerate() {
        let last_ends = *run.last().unwrap() + FRAME;
        assert!(
            *end >= last_ends && *end < last_ends + FRAME,
            "talkspurt {i} ended at {last_ends:?}, its end of speech came at {end:?}"
        );
        if let Some(next) = runs.get(i + 1) {
            assert!(
                *end <= next[0],
                "talkspurt {i}'s end came after the next one began"
            );
        }
    }
}

#[test]
fn a_callers_hello_does_not_cancel_the_greeting() {
    let mut sim = Sim::new(vec![]);
    sim.decide_delay = ms_(400);
    sim.speak(ms_(20), ms_(500), "Hello?");
    let greeting = sim.next_turn(Speaker::Interviewer);
    assert_eq!(greeting.text, "Hello there.");
    assert!(!greeting.interrupted);
}

#[test]
fn unusable_settings_are_refused() {
    let new = |config: TurnTaking, rate: u32| {
        Conversation::new(config, rate, Duration::ZERO)
            .err()
            .map(|e| e.to_string())
    };
    assert!(new(TurnTaking::default(), 48_000).is_none());
    assert!(
        new(TurnTaking::default(), 11_025)
            .unwrap()
            .contains("11025 Hz")
    );
    assert!(new(TurnTaking::default(), 0).is_some());
    let late_check = TurnTaking {
        pause_check: ms_(800),
        ..TurnTaking::default()
    };
    assert!(new(late_check, 8_000).unwrap().contains("pause_check"));
    let short_trailing = TurnTaking {
        end_of_turn_trailing: ms_(500),
        ..TurnTaking::default()
    };
    assert!(
        new(short_trailing, 8_000)
            .unwrap()
            .contains("end_of_turn_trailing")
    );
    let short_thinking = TurnTaking {
        end_of_turn_thinking: ms_(500),
        ..TurnTaking::default()
    };
    assert!(
        new(short_thinking, 8_000)
            .unwrap()
            .contains("end_of_turn_thinking")
    );
    let hasty = TurnTaking {
        end_of_turn_complete: ms_(100),
        ..TurnTaking::default()
    };
    assert!(new(hasty, 8_000).unwrap().contains("end_of_turn_complete"));
    let not_a_probability = TurnTaking {
        sure_closing: 1.5,
        ..TurnTaking::default()
    };
    assert!(
        new(not_a_probability, 8_000)
            .unwrap()
            .contains("sure_closing")
    );
    let less_than_sure = TurnTaking {
        certain_complete: 0.8,
        ..TurnTaking::default()
    };
    assert!(
        new(less_than_sure, 8_000)
            .unwrap()
            .contains("certain_complete")
    );
}

#[test]
fn a_call_with_no_caller_audio_still_records_the_interviewer() {
    let mut sim = Sim::new(vec![]);
    sim.missing_frames = 0..u64::MAX;
    let greeting = sim.next_turn(Speaker::Interviewer);
    sim.run_until(ms_(10_000));
    // Written up to two seconds ago, silence on the caller's side.
    assert_eq!(sim.left.len(), 8_000 * 16);
    let start = greeting.start_ms as usize * 16;
    assert!(sim.right[start].abs() > 0.1);
    assert!(sim.left.iter().all(|&s| s == 0.0));
}

#[test]
fn pauses_count_from_the_real_end_of_speech_not_the_detectors_hangover() {
    // The detector holds on 240 ms after the voice; the voice fades out in a tail 40 dB down
    // that the tone does not have, so the real end is where the tone stops.
    let detector = HangoverVad {
        energy: EnergyVad::default(),
        hangover_frames: 15,
        held: 0,
    };
    let mut sim = Sim::with_detector(TurnTaking::default(), vec![], Box::new(detector));
    let greeting = sim.next_turn(Speaker::Interviewer);
    let start = ms_(greeting.end_ms + 500);
    sim.speak(start, ms_(1500), "I built a cache for the API.");
    let answer = sim.next_turn(Speaker::Candidate);
    let speech_end = start + ms_(1500);
    assert!(
        ms_between(speech_end, ms_(answer.end_ms)).abs() <= 16,
        "{answer:?}"
    );
    let wait = ms_between(speech_end, sim.asked_at("answer:"));
    assert!(
        (end_of_turn()..=end_of_turn() + 40).contains(&wait),
        "end of turn {wait} ms after the speech"
    );
    sim.next_turn(Speaker::Interviewer);
    let latency = &sim.latencies[0];
    assert!(
        ms_between(speech_end, ms_(latency.speech_end_ms)).abs() <= 16,
        "the latency counts from the real end: {latency:?}"
    );
    // The transcription starts pause_check after the real end, though the detector holds on
    // until 256 ms: the transcript is ready long before the turn's wait is over.
    let check = speech_end + TurnTaking::default().pause_check;
    let asked = ms_between(check, sim.transcriptions[0]);
    assert!((0..=40).contains(&asked), "transcribed {asked} ms after");
    assert_eq!(
        sim.transcriptions.len(),
        1,
        "the hangover did not make it stale"
    );
}

#[test]
fn a_dip_the_detector_holds_through_is_transcribed_but_cancelled_when_the_voice_returns() {
    let mut sim = Sim::judged(vec![]);
    // Still transcribing the dip when the voice comes back.
    sim.stt_delay = ms_(400);
    let greeting = sim.next_turn(Speaker::Interviewer);
    let start = ms_(greeting.end_ms + 500);
    // A 220 ms dip after 4.5 s: long enough to check, too short for the detector (240 ms
    // of hangover) to let go, and past the length at which a part would be committed.
    sim.speak(start, ms_(4500), "First we profiled the service");
    let resumed = start + ms_(4720);
    sim.speak(resumed, ms_(1500), "and then we cached it.");
    let answer = sim.next_turn(Speaker::Candidate);
    // Had the dip's part been committed, its cancelled transcript would never come and the
    // turn would never end.
    assert_eq!(
        answer.text,
        "First we profiled the service and then we cached it."
    );
    assert_eq!(sim.cancellations.len(), 1, "{:?}", sim.cancellations);
    let cancelled = ms_between(resumed, sim.cancellations[0]);
    assert!(
        (0..=60).contains(&cancelled),
        "cancelled {cancelled} ms after the voice returned"
    );
    let dip_check = start + ms_(4500) + TurnTaking::default().pause_check;
    let asked = ms_between(dip_check, sim.transcriptions[0]);
    assert!(
        (0..=40).contains(&asked),
        "the dip transcribed {asked} ms after"
    );
    assert_eq!(sim.transcriptions.len(), 2, "the dip's and the answer's");
}

#[test]
fn a_turn_never_ends_while_the_detector_still_hears_a_voice() {
    // An answer judged complete may end 200 ms after the voice's level fell, but the detector
    // goes on hearing a voice for 320 ms (one too soft for the level's mark, say): the turn
    // waits until it lets go.
    let detector = HangoverVad {
        energy: EnergyVad::default(),
        hangover_frames: 20,
        held: 0,
    };
    let hasty = TurnTaking {
        end_of_turn_complete: ms_(200),
        ..TurnTaking::default()
    };
    let mut sim = Sim::with_detector(hasty, vec![], Box::new(detector));
    sim.conversation.judge_turns();
    // Transcript and judgement are ready long before.
    sim.stt_delay = ms_(20);
    sim.judge_delay = ms_(20);
    let greeting = sim.next_turn(Speaker::Interviewer);
    let start = ms_(greeting.end_ms + 500);
    sim.speak(start, ms_(1500), "I built a cache for the API.");
    sim.next_turn(Speaker::Candidate);
    let speech_end = start + ms_(1500);
    let wait = ms_between(speech_end, sim.asked_at("answer:"));
    assert!(
        (336..=400).contains(&wait),
        "end of turn {wait} ms after the speech, the detector let go at 336"
    );
}

#[test]
fn an_answer_judged_complete_ends_the_turn_sooner() {
    let mut sim = Sim::judged(vec![]);
    let greeting = sim.next_turn(Speaker::Interviewer);
    let start = ms_(greeting.end_ms + 500);
    sim.speak(start, ms_(1500), "I built a cache for the API.");
    let answer = sim.next_turn(Speaker::Candidate);
    assert_eq!(answer.text, "I built a cache for the API.");
    let speech_end = start + ms_(1500);
    let complete = TurnTaking::default().end_of_turn_complete.as_millis() as i64;
    let wait = ms_between(speech_end, sim.asked_at("answer:"));
    assert!(
        (complete..=complete + 40).contains(&wait),
        "end of turn {wait} ms after the speech"
    );
    assert_eq!(sim.judgements.len(), 1);
    assert_eq!(
        sim.judgements[0], sim.transcriptions[0],
        "judged and transcribed as the pause begins"
    );
}

#[test]
fn a_pause_after_a_doubtful_full_stop_is_waited_through() {
    // Whisper's doubt alone, or a milder doubt with the model's, or with a model that leans
    // to "finished" without being sure of it, or is sure without being certain (the phone
    // line's "We wrote the new servicing.", cut mid-way: 0.96 and 0.63).
    for (verdict, closing) in [(0.99, 0.3), (0.1, 0.7), (0.8, 0.8), (0.96, 0.63)] {
        let mut sim = Sim::judged(vec![]);
        sim.verdict = Some(verdict);
        sim.closing = closing;
        // No filler, no conjunction, a full stop: only the sound of it says the thought goes
        // on. A 1.5 s thinking pause.
        let (answer, _) = sim.speak_across_a_pause(
            "The main reason we moved was the cost.",
            ms_(2500),
            "Of the old cluster, I mean.",
        );
        assert_eq!(
            answer.text, "The main reason we moved was the cost. Of the old cluster, I mean.",
            "judged complete: {verdict}, full stop {closing}"
        );
    }
}

#[test]
fn an_unfinished_verdict_on_a_surely_closed_sentence_waits_the_usual_time() {
    let mut sim = Sim::judged(vec![]);
    sim.verdict = Some(0.1);
    let greeting = sim.next_turn(Speaker::Interviewer);
    let start = ms_(greeting.end_ms + 500);
    sim.speak(start, ms_(1500), "I built a cache for the API.");
    sim.next_turn(Speaker::Candidate);
    let usual = TurnTaking::default().end_of_turn.as_millis() as i64;
    let wait = ms_between(start + ms_(1500), sim.asked_at("answer:"));
    assert!(
        (usual..=usual + 40).contains(&wait),
        "end of turn {wait} ms after the speech"
    );
}

#[test]
fn a_pause_after_words_left_open_is_waited_through() {
    let mut sim = Sim::judged(vec![]);
    // No filler, no conjunction, and whisper closed no sentence. A 1.5 s thinking pause.
    let (answer, _) = sim.speak_across_a_pause(
        "The main reason we moved was",
        ms_(2500),
        "the cost of the old cluster.",
    );
    assert_eq!(
        answer.text,
        "The main reason we moved was the cost of the old cluster."
    );
    assert_eq!(sim.judgements.len(), 2, "each pause is judged once");
}

#[test]
fn a_judgement_overtaken_by_more_speech_is_ignored() {
    let mut sim = Sim::judged(vec![]);
    sim.judge_delay = ms_(500);
    let greeting = sim.next_turn(Speaker::Interviewer);
    let first = ms_(greeting.end_ms + 300);
    sim.speak(first, ms_(1000), "We cut the latency.");
    // Speech resumes 400 ms into the pause, before the judgement of it arrives.
    let second = first + ms_(1400);
    sim.speak(second, ms_(1000), "And so");
    sim.run_until(second + ms_(1000) + ms_(700));
    assert!(
        sim.told().iter().all(|t| !t.starts_with("answer:")),
        "the stale \"complete\" ended nothing: {:?}",
        sim.told()
    );
    let answer = sim.next_turn(Speaker::Candidate);
    assert_eq!(answer.text, "We cut the latency. And so");
    let wait = ms_between(second + ms_(1000), sim.asked_at("answer:"));
    assert!(
        wait >= end_of_turn_trailing(),
        "a trailing word waits however the sound was judged: {wait} ms"
    );
}
