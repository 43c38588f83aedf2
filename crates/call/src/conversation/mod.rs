//! The conversation as a sans-IO state machine: it is told what happened and what time it is,
//! and says what to do. No threads, no timers, no models: [`crate::runner`] does the work it
//! asks for, tests drive it on a virtual clock.
//!
//! The loop, per call:
//! - caller audio is resampled to 16 kHz, placed on the call clock and scored by the VAD;
//! - pauses are counted from the real end of the candidate's voice (the detector's last voiced
//!   frame comes 100-300 ms later, while its score decays), see [`viva_speech::Talkspurt`];
//! - as a pause begins, what they said so far is transcribed, so the text is ready when the
//!   turn ends, and (with [`Conversation::judge_turns`]) the end-of-turn model is asked whether
//!   the answer sounds finished ([`Action::JudgeTurn`]); a turn ends after a silence of
//!   [`TurnTaking::end_of_turn`] (or [`TurnTaking::end_of_turn_complete`] /
//!   [`TurnTaking::end_of_turn_thinking`] as the model judged and whisper's full stop agrees),
//!   or the longer [`TurnTaking::end_of_turn_trailing`] when the words trail off ("and",
//!   "um") or end on no mark at all;
//! - the transcript goes to the interviewer ([`Action::Ask`]), its reply is synthesized
//!   ([`Action::Speak`]) and played in 20 ms frames as they fall due;
//! - sustained candidate speech over the interviewer stops the playback (barge-in) and the
//!   candidate's speech becomes their turn;
//! - long silences are reported to the interviewer ([`TurnTaking::nudge_every`]);
//! - both directions are tapped into a stereo recording block by block ([`Action::Record`]).

mod inbound;
mod playback;
mod recording;
mod timeline;
mod utterance;

use std::collections::VecDeque;
use std::time::Duration;

use tracing::{Span, debug, info, info_span};
use viva_media::PcmFrame;
use viva_speech::{SpokenSentence, TURN_WINDOW_SAMPLES, VAD_FRAME_SAMPLES, VoiceActivity};

use self::inbound::{DetectorFrame, Inbound, VoiceDetector};
use self::playback::{Playback, Queued};
use self::recording::RecordingTap;
use self::timeline::{Pos, ceil_ms, ms, ms_at, pos_at, span, time_at};
use self::utterance::{PauseJudgement, Utterance, sounds_unfinished};
use crate::CallError;
use crate::dialogue::{Reply, Speaker, Turn};
use crate::latency::TurnLatency;
use crate::port::{CallInput, CallOutput};

/// Audio kept before the first voiced frame, so the first syllable is not clipped.
const PREROLL: Duration = Duration::from_millis(240);
/// Speech transcribed in one piece at most about this long before a pause commits it.
const COMMIT_AFTER: Duration = Duration::from_secs(4);
/// The recording waits at most this long for the caller's audio before writing silence.
const RECORDING_WAIT: Duration = Duration::from_secs(2);
/// Unvoiced frames shorter than this do not break a stretch of sustained speech.
const RUN_GAP: Duration = Duration::from_millis(48);

/// What recognition made of a stretch of the candidate's speech.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Heard {
    /// The words; empty when nothing intelligible was said, or when recognition failed.
    pub text: String,
    /// How sure recognition was of the full stop, question or exclamation mark closing the
    /// words (`viva_speech::Segment::closing`); `None` when they end on a word or another
    /// mark.
    pub closing: Option<f32>,
}

/// Turn-taking timings. The defaults suit a phone screening; all are on the call clock.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnTaking {
    /// VAD score at or above which a 16 ms frame counts as speech.
    pub speech_threshold: f32,
    /// Silence after which what was said so far is transcribed and judged (speculatively:
    /// speech may resume), and never before the detector has heard a silent frame. Shorter
    /// than `end_of_turn`, so the text is ready when the turn ends. Every silence here is
    /// counted from the real end of the candidate's voice.
    pub pause_check: Duration,
    /// Silence that ends a turn (when no end-of-turn model judged it).
    pub end_of_turn: Duration,
    /// Silence that ends a turn the end-of-turn model judged complete: at least
    /// `sure_complete` after a sentence whisper surely closed, at least `certain_complete`
    /// after one whose close it did not doubt.
    pub end_of_turn_complete: Duration,
    /// Silence that ends a turn left mid-sentence (a thinking pause): whisper doubted the
    /// mark closing it (below `doubtful_closing`), or the end-of-turn model was not certain
    /// it was complete (below `certain_complete`) and whisper was not sure of the mark either
    /// (below `sure_closing`). A doubtful verdict on a surely closed sentence waits
    /// `end_of_turn`.
    pub end_of_turn_thinking: Duration,
    /// The end-of-turn model's probability from which a pause is the end of the answer. The
    /// model was published with 0.5; on a phone line it gives 0.7-0.94 to a sentence cut
    /// mid-way, and a cut-in costs the candidate more than a longer wait.
    pub sure_complete: f32,
    /// The end-of-turn model's probability from which a pause is the end of the answer
    /// even when whisper was not sure of the closing mark (between `doubtful_closing` and
    /// `sure_closing`). On a phone line the model gives up to 0.97 to a sentence cut mid-way
    /// that whisper closed with a half-hearted full stop ("We wrote the new servicing.").
    pub certain_complete: f32,
    /// Whisper's probability for a sentence's closing mark ([`Heard::closing`]) under which
    /// the sentence was left hanging, whatever the end-of-turn model says.
    pub doubtful_closing: f32,
    /// Whisper's probability for a sentence's closing mark from which the sentence surely
    /// ended, whatever the end-of-turn model says.
    pub sure_closing: f32,
    /// Silence that ends a turn whose words trail off ("and", "so", "um", "because", "..."),
    /// whatever the model says.
    pub end_of_turn_trailing: Duration,
    /// Utterances with less voiced audio than this are clicks or noise, never transcribed.
    pub min_speech: Duration,
    /// Sustained candidate speech over the interviewer that stops playback (barge-in).
    pub barge_in: Duration,
    /// Speech heard in the first moments of interviewer playback does not count towards a
    /// barge-in (echo of the interviewer's own first syllables on a phone line).
    pub echo_guard: Duration,
    /// The interviewer is told about a candidate's silence at every multiple of this.
    pub nudge_every: Duration,
}

impl Default for TurnTaking {
    fn default() -> Self {
        Self {
            speech_threshold: 0.5,
            // The detector hears silence 60-70 ms after the real end (mean, measured on the
            // speech set and Piper answers, 16 kHz and 8 kHz mu-law); a little later, so the
            // gaps between words do not each start a transcription.
            pause_check: Duration::from_millis(160),
            end_of_turn: Duration::from_millis(600),
            end_of_turn_complete: Duration::from_millis(400),
            // Covers a 1.5 s thinking pause. Smart Turn alone calls half of the plainly
            // complete answers unfinished; whisper's doubt about the full stop must agree
            // (docs/speech.md, "Thinking pauses").
            end_of_turn_thinking: Duration::from_millis(1800),
            // Finished sentences got 0.91-0.99 (Piper answers), 0.61-0.96 (read speech, some
            // of it mid-sentence in its book); sentences cut mid-way 0.23-0.97, half under 0.7.
            doubtful_closing: 0.6,
            sure_closing: 0.9,
            // Measured with scripts/eval-turns on the development set (docs/speech.md,
            // "Thinking pauses"): 0.5 let 4-5 of 66 thinking pauses be cut in on, 0.9 1-3.
            sure_complete: 0.9,
            // Mid-sentence cuts that whisper closed with a stop of 0.6-0.9 got 0.91-0.97 on
            // the phone line, the short complete answers it closed so ("Go forward 10
            // meters.", 0.71) 0.986-0.989 (docs/speech.md, "Thinking pauses").
            certain_complete: 0.98,
            // Covers a 1.5 s thinking pause after "and", "um", "because".
            end_of_turn_trailing: Duration::from_millis(1800),
            min_speech: Duration::from_millis(160),
            barge_in: Duration::from_millis(112),
            echo_guard: Duration::from_millis(150),
            nudge_every: Duration::from_secs(8),
        }
    }
}

impl TurnTaking {
    /// The silence after the real end of speech that ends a turn with these words, as the
    /// end-of-turn model judged the pause (`None`: not judged, or not yet).
    ///
    /// ```
    /// use viva_call::{Heard, TurnTaking};
    ///
    /// let turns = TurnTaking::default();
    /// let heard = |text: &str, closing| Heard { text: text.into(), closing };
    /// // Trailing off: a long wait, whatever the model says.
    /// assert_eq!(turns.end_of_turn_after(&heard("We used Redis and", None), Some(0.99)), turns.end_of_turn_trailing);
    /// // The model hears it unfinished, and whisper doubted its full stop: a thinking pause.
    /// assert_eq!(turns.end_of_turn_after(&heard("We used Redis.", Some(0.7)), Some(0.1)), turns.end_of_turn_thinking);
    /// // The model leans to "finished" without being sure: the same.
    /// assert_eq!(turns.end_of_turn_after(&heard("We used Redis.", Some(0.7)), Some(0.8)), turns.end_of_turn_thinking);
    /// // Sure is not enough when whisper was not sure of the stop either; certain is.
    /// assert_eq!(turns.end_of_turn_after(&heard("We used Redis.", Some(0.7)), Some(0.95)), turns.end_of_turn_thinking);
    /// assert_eq!(turns.end_of_turn_after(&heard("We used Redis.", Some(0.7)), Some(0.99)), turns.end_of_turn_complete);
    /// // Whisper alone, when it much doubted the full stop.
    /// assert_eq!(turns.end_of_turn_after(&heard("We used Redis.", Some(0.3)), Some(0.99)), turns.end_of_turn_thinking);
    /// // The model alone is not believed.
    /// assert_eq!(turns.end_of_turn_after(&heard("We used Redis.", Some(0.97)), Some(0.1)), turns.end_of_turn);
    /// assert_eq!(turns.end_of_turn_after(&heard("We used Redis.", Some(0.97)), Some(0.99)), turns.end_of_turn_complete);
    /// ```
    pub fn end_of_turn_after(&self, heard: &Heard, complete_probability: Option<f32>) -> Duration {
        if sounds_unfinished(&heard.text) {
            return self.end_of_turn_trailing;
        }
        // Whisper hears the melody of the words it closes: a sentence the speaker left
        // hanging gets a doubtful full stop. Between doubtful and sure, the end-of-turn
        // model must agree: each alone misjudges some complete answers (Smart Turn on read
        // speech, whisper on a flat last word), both at once rarely.
        let closing = heard.closing.unwrap_or(0.0);
        if closing < self.doubtful_closing {
            return self.end_of_turn_thinking;
        }
        let surely_closed = closing >= self.sure_closing;
        match complete_probability {
            Some(p) if p >= self.certain_complete => self.end_of_turn_complete,
            Some(p) if p >= self.sure_complete && surely_closed => self.end_of_turn_complete,
            Some(_) if !surely_closed => self.end_of_turn_thinking,
            Some(_) | None => self.end_of_turn,
        }
    }

    fn check(&self) -> Result<(), CallError> {
        let invalid = |setting: &'static str, reason: &str| {
            Err(CallError::InvalidTurnTaking {
                setting,
                reason: reason.to_owned(),
            })
        };
        if !(0.0..=1.0).contains(&self.speech_threshold) {
            return invalid("speech_threshold", "must be between 0 and 1");
        }
        if self.pause_check.is_zero() || self.pause_check >= self.end_of_turn {
            return invalid(
                "pause_check",
                "must be above zero and shorter than end_of_turn",
            );
        }
        if self.end_of_turn_complete < self.pause_check {
            return invalid("end_of_turn_complete", "must be at least pause_check");
        }
        if !(0.0..=1.0).contains(&self.sure_complete) {
            return invalid("sure_complete", "must be a probability, from 0 to 1");
        }
        if !(self.sure_complete..=1.0).contains(&self.certain_complete) {
            return invalid("certain_complete", "must be from sure_complete to 1");
        }
        if !(0.0..=1.0).contains(&self.sure_closing) {
            return invalid("sure_closing", "must be a probability, from 0 to 1");
        }
        if !(0.0..=self.sure_closing).contains(&self.doubtful_closing) {
            return invalid("doubtful_closing", "must be from 0 to sure_closing");
        }
        if self.end_of_turn_thinking < self.end_of_turn {
            return invalid("end_of_turn_thinking", "must be at least end_of_turn");
        }
        if self.end_of_turn_trailing < self.end_of_turn {
            return invalid("end_of_turn_trailing", "must be at least end_of_turn");
        }
        if self.barge_in.is_zero() {
            return invalid("barge_in", "must be above zero");
        }
        if self.nudge_every < Duration::from_secs(1) {
            return invalid("nudge_every", "must be at least one second");
        }
        Ok(())
    }
}

/// Identifies a transcription the conversation asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobId(u64);

/// Identifies a question to the interviewer that needs a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AskId(u64);

/// Identifies an interviewer line being synthesized and played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineId(u64);

/// What the interviewer is asked to respond to (see [`crate::Dialogue`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogueEvent {
    /// The call started: the reply is the opening line.
    Opening {
        /// Call-clock time.
        now_ms: u64,
    },
    /// The candidate finished a turn.
    Answer {
        /// What they said.
        text: String,
        /// When their first word started, on the call clock.
        start_ms: u64,
        /// When their last word ended.
        end_ms: u64,
    },
    /// The candidate has been silent this long; the reply may be `None` (keep waiting).
    Silence {
        /// Call-clock time.
        now_ms: u64,
        /// Silence since the interviewer's last line (a multiple of the nudge interval).
        silent_ms: u64,
    },
}

/// Why the call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    /// The interviewer said its closing line and hung up.
    Completed,
    /// The caller hung up (or the transport went away).
    HungUp,
}

/// What the conversation needs done.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Pass this to the transport.
    Send(CallOutput),
    /// Transcribe 16 kHz `audio` that starts at `start_ms`, then call
    /// [`Conversation::on_transcript`].
    Transcribe {
        /// Identifies the result.
        job: JobId,
        /// 16 kHz mono speech.
        audio: Vec<f32>,
        /// Call-clock time of the first sample.
        start_ms: u64,
    },
    /// The transcript of a [`Action::Transcribe`] is no longer wanted (the candidate spoke
    /// on past its audio): give it up, so its cores go to work someone waits for;
    /// [`Conversation::on_transcript`] need not be called for it.
    CancelTranscription {
        /// The job given in [`Action::Transcribe`].
        job: JobId,
    },
    /// Judge whether the candidate's turn so far sounds finished (the end-of-turn model), then
    /// call [`Conversation::on_turn_judged`]. Asked as a pause begins; a judgement that fails
    /// or comes too late leaves the wait at [`TurnTaking::end_of_turn`].
    JudgeTurn {
        /// Identifies the result.
        job: JobId,
        /// The last 16 kHz audio of the turn, up to the pause (at most the model's window).
        audio: Vec<f32>,
    },
    /// Ask the interviewer, then call [`Conversation::on_reply`]. Asks must be answered in
    /// the order they are given.
    Ask {
        /// Identifies the reply.
        ask: AskId,
        /// What happened.
        event: DialogueEvent,
    },
    /// Tell the interviewer its last line was cut short ([`crate::Dialogue::on_interrupted`]),
    /// in order with the asks.
    Interrupted {
        /// When the candidate barged in.
        at_ms: u64,
        /// The words of the line played before that (empty if it never started).
        heard: String,
    },
    /// Synthesize `text` sentence by sentence: [`Conversation::on_voice`] per sentence, then
    /// [`Conversation::on_voice_end`].
    Speak {
        /// Identifies the sentences.
        line: LineId,
        /// The words.
        text: String,
    },
    /// The line is no longer wanted: stop synthesizing it.
    StopSpeaking {
        /// The line given in [`Action::Speak`].
        line: LineId,
    },
    /// The interviewer has started speaking and the CPU is free: a good moment to synthesize
    /// upcoming lines ahead of time.
    Prepare,
    /// The next stretch of the recording (16 kHz, candidate left, interviewer right),
    /// continuing the previous one.
    Record {
        /// The candidate.
        left: Vec<f32>,
        /// The interviewer, as played.
        right: Vec<f32>,
    },
    /// A turn is complete: the live transcript.
    Turn(Turn),
    /// How long one response took.
    Latency(TurnLatency),
    /// The interviewer's audio ran dry mid-line for this long: the next sentence came after
    /// the last one had played out, and the candidate heard a hole.
    AudioGap(Duration),
    /// The call is over; nothing more will be asked.
    Finished(CallEnd),
}

/// The conversation on one call.
pub struct Conversation {
    config: TurnTaking,
    output_rate: u32,
    inbound: Inbound,
    tap: RecordingTap,
    utterance: Option<Utterance>,
    run: Option<SpeechRun>,
    floor: Floor,
    silence: SilenceClock,
    /// The transcription in flight (one at a time per call: they queue for the same cores).
    transcribing: Option<JobId>,
    /// Whether pauses are judged by the end-of-turn model.
    judges_turns: bool,
    /// Asks whose reply is no longer wanted (the candidate spoke first), oldest first.
    stale: VecDeque<(AskId, u64)>,
    /// Asks held back until the stale ones are answered, so the interviewer hears of each
    /// interruption before the answer that followed it.
    deferred: VecDeque<Action>,
    actions: VecDeque<Action>,
    next_id: u64,
    turns: u32,
}

/// A stretch of voiced frames with no gap longer than [`RUN_GAP`].
#[derive(Debug, Clone, Copy)]
struct SpeechRun {
    start: Pos,
    last: Pos,
}

enum Floor {
    /// The interviewer is silent and waits for the candidate.
    Listening,
    /// The interviewer is deciding or saying something.
    Responding(Box<Response>),
    /// The caller hung up; the last words are being transcribed.
    Ending,
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseTo {
    Opening,
    Answer,
    Silence,
}

struct Response {
    to: ResponseTo,
    /// The ask whose reply is awaited.
    ask: Option<AskId>,
    latency: Option<LatencyDraft>,
    playback: Option<Playback>,
}

struct LatencyDraft {
    latency: TurnLatency,
    span: Span,
}

/// The candidate's silence since the interviewer's last real line (nudges do not count).
struct SilenceClock {
    since: Duration,
    next_nudge: Duration,
}

impl Conversation {
    /// Starts the conversation at `now`: the first action asks for the opening line.
    /// Interviewer audio will be sent at `output_rate` (a multiple of 50 Hz).
    pub fn new(config: TurnTaking, output_rate: u32, now: Duration) -> Result<Self, CallError> {
        Self::with_detector(config, output_rate, now, Box::new(VoiceActivity::new()))
    }

    pub(crate) fn with_detector(
        config: TurnTaking,
        output_rate: u32,
        now: Duration,
        detector: Box<dyn VoiceDetector>,
    ) -> Result<Self, CallError> {
        config.check()?;
        if output_rate == 0 || !output_rate.is_multiple_of(50) {
            return Err(CallError::OutputRate { rate: output_rate });
        }
        let mut conversation = Self {
            silence: SilenceClock {
                since: now,
                next_nudge: now + config.nudge_every,
            },
            config,
            output_rate,
            inbound: Inbound::new(detector),
            tap: RecordingTap::default(),
            utterance: None,
            run: None,
            floor: Floor::Listening,
            transcribing: None,
            judges_turns: false,
            stale: VecDeque::new(),
            deferred: VecDeque::new(),
            actions: VecDeque::new(),
            next_id: 0,
            turns: 0,
        };
        let ask = conversation.ask(DialogueEvent::Opening { now_ms: ms(now) });
        conversation.floor = Floor::Responding(Box::new(Response {
            to: ResponseTo::Opening,
            ask: Some(ask),
            latency: None,
            playback: None,
        }));
        Ok(conversation)
    }

    /// Judges every pause with the end-of-turn model ([`Action::JudgeTurn`]); without it the
    /// wait depends on the words alone.
    pub fn judge_turns(&mut self) {
        self.judges_turns = true;
    }

    /// Whether the call is over.
    pub fn is_finished(&self) -> bool {
        matches!(self.floor, Floor::Finished)
    }

    /// Something arrived from the transport.
    pub fn on_input(&mut self, input: CallInput, now: Duration) {
        match input {
            CallInput::Audio(frame) => self.on_audio(&frame, now),
            CallInput::Dtmf(digit) => {
                debug!(%digit, "DTMF key pressed (not used by the interview)")
            }
            CallInput::HangUp => self.hang_up(now),
        }
    }

    /// A transcription finished.
    pub fn on_transcript(&mut self, job: JobId, heard: Heard, now: Duration) {
        if self.transcribing == Some(job) {
            self.transcribing = None;
        }
        if let Some(utterance) = &mut self.utterance
            && utterance.transcribed(job, &heard, now)
        {
            let Heard { text, closing } = &heard;
            utterance
                .span
                .in_scope(|| debug!(text, closing, "heard so far"));
        }
    }

    /// The end-of-turn model's verdict on an [`Action::JudgeTurn`]: how likely the candidate
    /// sounds finished, in `[0, 1]`.
    pub fn on_turn_judged(&mut self, job: JobId, complete_probability: f32) {
        if let Some(utterance) = &mut self.utterance
            && utterance.judgement == Some(PauseJudgement::Awaited(job))
        {
            utterance.judgement = Some(PauseJudgement::Judged(complete_probability));
            utterance
                .span
                .in_scope(|| debug!(complete_probability, "end of turn judged"));
        }
    }

    /// The interviewer's reply to an [`Action::Ask`]: always a line for the opening and for
    /// answers, `None` to keep waiting after a silence.
    pub fn on_reply(&mut self, ask: AskId, reply: Option<Reply>, now: Duration) {
        if self.stale.front().is_some_and(|&(stale, _)| stale == ask) {
            self.on_stale_reply(reply.is_some());
            return;
        }
        if !matches!(&self.floor, Floor::Responding(r) if r.ask == Some(ask)) {
            return; // an ask that no longer matters (the call ended)
        }
        let line_id = LineId(self.next_id());
        let Floor::Responding(response) = &mut self.floor else {
            return;
        };
        response.ask = None;
        if let Some(draft) = &mut response.latency {
            draft.latency.decided_ms = Some(ms(now));
        }
        let Some(reply) = reply else {
            self.floor = Floor::Listening;
            return;
        };
        let closing = matches!(reply, Reply::Finish(_));
        let line = match reply {
            Reply::Say(line) | Reply::Finish(line) => line,
        };
        self.actions.push_back(Action::Speak {
            line: line_id,
            text: line.text.clone(),
        });
        response.playback = Some(Playback::new(line_id, line, closing, self.output_rate));
    }

    /// One synthesized sentence of a line, at `sample_rate`.
    pub fn on_voice(
        &mut self,
        line: LineId,
        sentence: &SpokenSentence,
        sample_rate: u32,
        now: Duration,
    ) {
        if let Some(playback) = self.playback_of(line) {
            match playback.queue(&sentence.text, &sentence.samples, sample_rate, ceil_ms(now)) {
                Queued::Started => self.actions.push_back(Action::Prepare),
                Queued::AfterGap(gap) => self.actions.push_back(Action::AudioGap(gap)),
                Queued::InTime | Queued::Skipped => {}
            }
        }
    }

    /// The line has no more sentences.
    pub fn on_voice_end(&mut self, line: LineId) {
        if let Some(playback) = self.playback_of(line) {
            playback.synthesis_done();
        }
    }

    /// The next thing to do at `now`, if any. Call until `None` after every input and when
    /// [`poll_timeout`](Self::poll_timeout) passes.
    pub fn poll_action(&mut self, now: Duration) -> Option<Action> {
        if self.actions.is_empty() {
            self.advance(now);
        }
        self.actions.pop_front()
    }

    /// When the conversation next has something to do if no input arrives; `None` when it
    /// only waits for input.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let mut next: Option<Duration> = None;
        let mut consider = |at: Duration| next = Some(next.map_or(at, |n| n.min(at)));
        if let Floor::Responding(response) = &self.floor
            && let Some(at) = response.playback.as_ref().and_then(Playback::deadline)
        {
            consider(at);
        }
        match (&self.utterance, &self.floor) {
            (Some(utterance), Floor::Responding(_)) => {
                consider(time_at(utterance.last_voiced()) + self.config.pause_check);
            }
            (Some(utterance), Floor::Listening) => {
                // What waits for audio not yet heard (the pause up to its check, the detector
                // letting go) is decided by the next audio frame: a timer for it would fall
                // due again and again with nothing to do. A caller whose audio stopped coming
                // has paused too: that one is the clock's.
                let stopped = time_at(utterance.last_voiced()) + self.config.pause_check;
                let check = self.pause_check_at(utterance);
                if utterance.needs_chunk() {
                    if self.transcribing.is_none() {
                        if self.inbound.scored_until() >= check {
                            consider(time_at(check));
                        }
                        consider(stopped);
                    }
                } else if let Some(heard) = utterance.heard() {
                    if self.inbound.scored_until() > utterance.last_voiced() {
                        let wait = self.end_of_turn_after(&heard, utterance.judgement);
                        consider(time_at(utterance.speech_end()) + wait);
                    } else {
                        consider(stopped);
                    }
                }
            }
            (None, Floor::Listening) => consider(self.silence.next_nudge),
            _ => {}
        }
        next
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn playback_of(&mut self, line: LineId) -> Option<&mut Playback> {
        match &mut self.floor {
            Floor::Responding(response) => response
                .playback
                .as_mut()
                .filter(|playback| playback.line_id == line),
            _ => None,
        }
    }

    fn ask(&mut self, event: DialogueEvent) -> AskId {
        let ask = AskId(self.next_id());
        let action = Action::Ask { ask, event };
        if self.stale.is_empty() {
            self.actions.push_back(action);
        } else {
            self.deferred.push_back(action);
        }
        ask
    }

    /// The reply to an ask that the candidate overtook arrived: tell the interviewer its line
    /// was never heard (if it had one), then release what waited for this.
    fn on_stale_reply(&mut self, had_line: bool) {
        let Some((_, at_ms)) = self.stale.pop_front() else {
            return;
        };
        if had_line {
            self.actions.push_back(Action::Interrupted {
                at_ms,
                heard: String::new(),
            });
        }
        while let Some(action) = self.deferred.pop_front() {
            let waits_again = matches!(&action, Action::Ask { ask, .. }
                if self.stale.iter().any(|&(stale, _)| stale == *ask));
            self.actions.push_back(action);
            if waits_again {
                break;
            }
        }
    }

    /// The silence after the real end of speech that ends a turn with these words, as the
    /// end-of-turn model judged its pause.
    fn end_of_turn_after(&self, heard: &Heard, judgement: Option<PauseJudgement>) -> Duration {
        let complete_probability = match judgement {
            Some(PauseJudgement::Judged(probability)) => Some(probability),
            Some(PauseJudgement::Awaited(_)) | None => None,
        };
        self.config.end_of_turn_after(heard, complete_probability)
    }

    /// When a pause is long enough to transcribe and judge what was said: `pause_check` after
    /// the real end of speech, whether or not the detector has let go. Its score decays for
    /// 100-500 ms after a voice (longest on phone audio), so the transcript is ready when
    /// the turn's wait ends instead of a transcription's time after the detector lets go.
    /// Many such pauses are the short dips between a speaker's phrases: their transcripts
    /// are not committed until the detector lets go ([`Utterance::settle`]), and are
    /// cancelled when the voice comes back.
    fn pause_check_at(&self, utterance: &Utterance) -> Pos {
        utterance.speech_end() + span(self.config.pause_check)
    }

    /// Whether the pause has been heard up to its check: the audio up to it was scored, or
    /// the caller's audio stopped coming and the clock says so.
    fn pause_heard(&self, utterance: &Utterance, now: Duration) -> bool {
        let check = self.pause_check_at(utterance);
        (self.inbound.scored_until() >= check && now >= time_at(check))
            || self.audio_stopped(utterance, now)
    }

    /// Whether the detector has let go of the voice: it scored a silent frame after the last
    /// voiced one (or the caller's audio stopped coming). A turn never ends before: a voice
    /// too soft for the level's mark is still heard by the detector.
    fn detector_let_go(&self, utterance: &Utterance, now: Duration) -> bool {
        self.inbound.scored_until() > utterance.last_voiced() || self.audio_stopped(utterance, now)
    }

    fn audio_stopped(&self, utterance: &Utterance, now: Duration) -> bool {
        now >= time_at(utterance.last_voiced()) + self.config.pause_check
    }

    fn on_audio(&mut self, frame: &PcmFrame, now: Duration) {
        if matches!(self.floor, Floor::Finished | Floor::Ending) {
            return;
        }
        let speaking = self.utterance.is_some()
            || self
                .run
                .is_some_and(|run| run.last + span(RUN_GAP) >= self.inbound.end());
        let Some(heard) = self.inbound.push(frame, now, speaking) else {
            return;
        };
        self.tap.candidate(heard.start, &heard.samples);
        for frame in heard.frames {
            if frame.score >= self.config.speech_threshold {
                self.on_voiced_frame(frame, now);
            } else if let Some(utterance) = &mut self.utterance {
                utterance.unvoiced(frame.level_db);
            }
        }
        let keep_from = self.utterance.as_ref().map_or_else(
            || self.inbound.end().saturating_sub(span(PREROLL)),
            |utterance| {
                let judged_from = self
                    .inbound
                    .end()
                    .saturating_sub(TURN_WINDOW_SAMPLES as Pos);
                if self.judges_turns {
                    utterance.audio_from().min(judged_from)
                } else {
                    utterance.audio_from()
                }
            },
        );
        self.inbound.forget_before(keep_from);
    }

    fn on_voiced_frame(&mut self, frame: DetectorFrame, now: Duration) {
        let end = frame.end;
        let start = end.saturating_sub(VAD_FRAME_SAMPLES as Pos);
        self.run = match self.run {
            Some(run) if start <= run.last + span(RUN_GAP) => Some(SpeechRun {
                start: run.start,
                last: end,
            }),
            _ => Some(SpeechRun { start, last: end }),
        };
        match &mut self.utterance {
            Some(utterance) => {
                if let Some(job) = utterance.voiced(end, frame.level_db)
                    && self.transcribing == Some(job)
                {
                    self.transcribing = None;
                    utterance.span.in_scope(|| {
                        debug!(
                            speech_end_ms = ms_at(utterance.speech_end()),
                            "the candidate went on; the pause's transcription is cancelled"
                        );
                    });
                    self.actions.push_back(Action::CancelTranscription { job });
                }
            }
            None => {
                let audio_start = start
                    .saturating_sub(span(PREROLL))
                    .max(self.inbound.kept_from());
                let turn_span = info_span!("turn", n = self.turns + 1, start_ms = ms_at(start));
                self.utterance = Some(Utterance::new(
                    start,
                    end,
                    frame.level_db,
                    audio_start,
                    turn_span,
                ));
            }
        }
        self.check_barge_in(now);
    }

    fn check_barge_in(&mut self, now: Duration) {
        let (Floor::Responding(response), Some(run)) = (&self.floor, self.run) else {
            return;
        };
        let mut counted_from = run.start;
        match &response.playback {
            Some(playback) if playback.closing => return,
            Some(playback) if playback.started().is_some() => {
                let started = playback.started().unwrap_or_default();
                counted_from = counted_from.max(pos_at(started + self.config.echo_guard));
            }
            // A caller's "hello?" before the greeting plays does not cancel the greeting.
            _ if response.to == ResponseTo::Opening => return,
            _ => {}
        }
        if run.last >= counted_from + span(self.config.barge_in) {
            self.barge_in(now);
        }
    }

    fn barge_in(&mut self, now: Duration) {
        let Floor::Responding(response) = std::mem::replace(&mut self.floor, Floor::Listening)
        else {
            return;
        };
        let at_ms = ms(now);
        let turn_span = self
            .utterance
            .as_ref()
            .map_or_else(Span::current, |u| u.span.clone());
        turn_span.in_scope(|| info!(at_ms, "candidate barged in"));
        if let Some(playback) = &response.playback {
            self.actions.push_back(Action::StopSpeaking {
                line: playback.line_id,
            });
            let heard = match playback.started() {
                Some(_) => {
                    self.actions
                        .push_back(Action::Send(CallOutput::ClearPlayback));
                    let heard = playback.heard();
                    // A line cut off before its first word was heard is no turn.
                    if !heard.is_empty() {
                        self.interviewer_turn(playback, heard.clone(), true, now);
                    }
                    heard
                }
                None => String::new(),
            };
            self.actions.push_back(Action::Interrupted { at_ms, heard });
        } else if let Some(ask) = response.ask {
            self.stale.push_back((ask, at_ms));
        }
        if let Some(draft) = response.latency {
            self.finish_latency(draft);
        }
        self.silence.reset(now, self.config.nudge_every);
    }

    fn hang_up(&mut self, now: Duration) {
        let floor = std::mem::replace(&mut self.floor, Floor::Ending);
        match floor {
            Floor::Finished | Floor::Ending => {
                self.floor = floor;
                return;
            }
            Floor::Responding(response) => {
                if let Some(playback) = &response.playback {
                    self.actions.push_back(Action::StopSpeaking {
                        line: playback.line_id,
                    });
                    if playback.started().is_some() {
                        let heard = playback.heard();
                        self.interviewer_turn(playback, heard, true, now);
                    }
                }
                if let Some(draft) = response.latency {
                    self.finish_latency(draft);
                }
            }
            Floor::Listening => {}
        }
        let has_words = self.utterance.as_ref().is_some_and(|u| {
            u.has_chunks() || self.frames_span(u.voiced_frames()) >= self.config.min_speech
        });
        if !has_words {
            self.utterance = None;
            self.finish(CallEnd::HungUp);
        }
    }

    fn frames_span(&self, frames: u32) -> Duration {
        time_at(Pos::from(frames) * VAD_FRAME_SAMPLES as Pos)
    }

    /// Everything that happens by itself at `now`: frames falling due, pauses growing into
    /// turn ends, silences growing into nudges, the recording catching up.
    fn advance(&mut self, now: Duration) {
        if self.is_finished() {
            return;
        }
        self.pace(now);
        self.check_utterance(now);
        self.check_silence(now);
        if !self.is_finished() {
            // Wait for the caller's audio to catch up, but not for ever: a transport that
            // sends nothing (a muted or one-way call) must not hold the recording in memory.
            let now_pos = pos_at(now);
            let until = self
                .tap
                .candidate_end()
                .min(now_pos)
                .max(now_pos.saturating_sub(span(RECORDING_WAIT)));
            if let Some((left, right)) = self.tap.take(until, false) {
                self.actions.push_back(Action::Record { left, right });
            }
        }
    }

    fn pace(&mut self, now: Duration) {
        let Floor::Responding(response) = &mut self.floor else {
            return;
        };
        let Some(playback) = &mut response.playback else {
            return;
        };
        while let Some(frame) = playback.next_frame(now) {
            if let Some(mut draft) = response.latency.take() {
                draft.latency.first_audio_ms = Some(ms(frame.at));
                log_latency(&draft);
                self.actions.push_back(Action::Latency(draft.latency));
            }
            self.tap.interviewer(pos_at(frame.at), &frame.recorded);
            let frame = PcmFrame::new(frame.samples, self.output_rate, frame.at)
                .expect("the output rate was checked to be non-zero");
            self.actions
                .push_back(Action::Send(CallOutput::Audio(frame)));
        }
        if playback.stops_speaking(now) {
            self.actions
                .push_back(Action::Send(CallOutput::EndOfSpeech));
        }
        if playback.finished(now) {
            self.finish_line(now);
        }
    }

    fn finish_line(&mut self, now: Duration) {
        let Floor::Responding(response) = std::mem::replace(&mut self.floor, Floor::Listening)
        else {
            return;
        };
        let Some(playback) = &response.playback else {
            return;
        };
        self.interviewer_turn(playback, playback.line.text.clone(), false, now);
        if let Some(draft) = response.latency {
            self.finish_latency(draft);
        }
        if playback.closing {
            self.actions.push_back(Action::Send(CallOutput::HangUp));
            self.finish(CallEnd::Completed);
        } else if response.to == ResponseTo::Silence {
            // A nudge keeps the silence clock running, so the next threshold comes on time.
            if self.silence.next_nudge <= now {
                self.silence.next_nudge = now + self.config.nudge_every;
            }
        } else {
            // From the end of the line's audio, however late this was noticed.
            let ended = playback.started().map_or(now, |_| playback.sent_until());
            self.silence.reset(ended, self.config.nudge_every);
        }
    }

    fn interviewer_turn(&mut self, playback: &Playback, text: String, cut: bool, now: Duration) {
        let (start, end) = match playback.started() {
            Some(started) => (started, playback.sent_until()),
            None => (now, now),
        };
        self.actions.push_back(Action::Turn(Turn {
            speaker: Speaker::Interviewer,
            kind: Some(playback.line.kind),
            question_id: playback.line.question_id.clone(),
            text,
            start_ms: ms(start),
            end_ms: ms(end),
            interrupted: cut,
        }));
    }

    fn check_utterance(&mut self, now: Duration) {
        let Some(utterance) = &self.utterance else {
            return;
        };
        match self.floor {
            Floor::Finished => {}
            Floor::Responding(_) => {
                // Speech over the interviewer that stopped short of a barge-in: a
                // backchannel ("mm-hm") or noise, not a turn.
                let silence = time_at(pos_at(now).saturating_sub(utterance.last_voiced()));
                if silence >= self.config.pause_check {
                    self.utterance = None;
                }
            }
            Floor::Ending => {
                if utterance.needs_chunk() && self.transcribing.is_none() {
                    // The caller hung up: no more voice will come.
                    self.transcribe_up_to(self.inbound.end(), true);
                }
                if let Some(heard) = self.utterance.as_ref().and_then(Utterance::heard) {
                    if let Some(utterance) = self.utterance.take() {
                        self.candidate_turn(&utterance, &heard.text);
                    }
                    self.finish(CallEnd::HungUp);
                }
            }
            Floor::Listening => {
                if !self.pause_heard(utterance, now) {
                    return;
                }
                let settled = self.detector_let_go(utterance, now);
                if settled && let Some(utterance) = &mut self.utterance {
                    utterance.settle();
                }
                let Some(utterance) = &self.utterance else {
                    return;
                };
                let voiced = self.frames_span(utterance.voiced_frames());
                if voiced < self.config.min_speech && !utterance.has_chunks() {
                    self.utterance = None;
                    return;
                }
                if self.judges_turns && utterance.judgement.is_none() {
                    self.judge_turn();
                }
                if let Some(utterance) = &self.utterance
                    && utterance.needs_chunk()
                    && self.transcribing.is_none()
                {
                    self.transcribe_up_to(self.inbound.end(), settled);
                }
                let Some(utterance) = &self.utterance else {
                    return;
                };
                let Some(heard) = utterance.heard() else {
                    return;
                };
                let silence = time_at(pos_at(now).saturating_sub(utterance.speech_end()));
                if heard.text.is_empty() {
                    // Whisper heard no words (a cough, a sigh): not a turn.
                    self.utterance = None;
                } else if silence >= self.end_of_turn_after(&heard, utterance.judgement)
                    && self.detector_let_go(utterance, now)
                {
                    self.end_of_turn(heard.text, now);
                }
            }
        }
    }

    /// Asks the end-of-turn model about the pause that has just begun.
    fn judge_turn(&mut self) {
        let job = JobId(self.next_id());
        let Some(utterance) = &mut self.utterance else {
            return;
        };
        let end = self.inbound.end();
        let from = utterance
            .start
            .saturating_sub(span(PREROLL))
            .max(end.saturating_sub(TURN_WINDOW_SAMPLES as Pos));
        utterance.judging(job, end);
        self.actions.push_back(Action::JudgeTurn {
            job,
            audio: self.inbound.audio(from, end),
        });
    }

    /// Transcribes the utterance's audio not yet committed, up to `end`; `settled` when the
    /// detector has let go of the voice, so a long part may be committed now.
    fn transcribe_up_to(&mut self, end: Pos, settled: bool) {
        let job = JobId(self.next_id());
        let Some(utterance) = &mut self.utterance else {
            return;
        };
        let from = utterance.audio_from();
        let audio = self.inbound.audio(from, end);
        utterance.add_chunk(job, end, span(COMMIT_AFTER), settled);
        utterance.span.in_scope(|| {
            debug!(
                from_ms = ms_at(from),
                to_ms = ms_at(end),
                speech_end_ms = ms_at(utterance.speech_end()),
                last_voiced_ms = ms_at(utterance.last_voiced()),
                settled,
                "transcribing"
            );
        });
        self.transcribing = Some(job);
        self.actions.push_back(Action::Transcribe {
            job,
            audio,
            start_ms: ms_at(from),
        });
    }

    fn end_of_turn(&mut self, text: String, now: Duration) {
        let Some(utterance) = self.utterance.take() else {
            return;
        };
        self.candidate_turn(&utterance, &text);
        let latency = TurnLatency {
            turn: self.turns,
            speech_end_ms: ms_at(utterance.speech_end()),
            end_of_turn_ms: ms(now),
            transcribed_ms: ms(utterance.text_ready_at.unwrap_or(now)),
            decided_ms: None,
            first_audio_ms: None,
        };
        let ask = self.ask(DialogueEvent::Answer {
            text,
            start_ms: ms_at(utterance.start),
            end_ms: ms_at(utterance.speech_end()),
        });
        self.floor = Floor::Responding(Box::new(Response {
            to: ResponseTo::Answer,
            ask: Some(ask),
            latency: Some(LatencyDraft {
                latency,
                span: utterance.span,
            }),
            playback: None,
        }));
    }

    fn candidate_turn(&mut self, utterance: &Utterance, text: &str) {
        if text.is_empty() {
            return;
        }
        self.turns += 1;
        utterance.span.in_scope(|| info!(text, "candidate turn"));
        self.actions.push_back(Action::Turn(Turn {
            speaker: Speaker::Candidate,
            kind: None,
            question_id: None,
            text: text.to_owned(),
            start_ms: ms_at(utterance.start),
            end_ms: ms_at(utterance.speech_end()),
            interrupted: false,
        }));
    }

    fn check_silence(&mut self, now: Duration) {
        if !matches!(self.floor, Floor::Listening)
            || self.utterance.is_some()
            || now < self.silence.next_nudge
        {
            return;
        }
        // The threshold reached, not the moment this was noticed: the interviewer hears
        // "8 s of silence", whatever the timer's granularity.
        let silent_ms = ms(self.silence.next_nudge.saturating_sub(self.silence.since));
        while self.silence.next_nudge <= now {
            self.silence.next_nudge += self.config.nudge_every;
        }
        let ask = self.ask(DialogueEvent::Silence {
            now_ms: ms(now),
            silent_ms,
        });
        self.floor = Floor::Responding(Box::new(Response {
            to: ResponseTo::Silence,
            ask: Some(ask),
            latency: None,
            playback: None,
        }));
    }

    fn finish_latency(&mut self, draft: LatencyDraft) {
        log_latency(&draft);
        self.actions.push_back(Action::Latency(draft.latency));
    }

    fn finish(&mut self, end: CallEnd) {
        if let Some((left, right)) = self.tap.take_all() {
            self.actions.push_back(Action::Record { left, right });
        }
        self.utterance = None;
        self.floor = Floor::Finished;
        self.actions.push_back(Action::Finished(end));
    }
}

impl SilenceClock {
    fn reset(&mut self, at: Duration, every: Duration) {
        self.since = at;
        self.next_nudge = at + every;
    }
}

fn log_latency(draft: &LatencyDraft) {
    let l = &draft.latency;
    let after = |t: Option<u64>| t.map(|t| t.saturating_sub(l.speech_end_ms));
    draft.span.in_scope(|| {
        info!(
            speech_end_ms = l.speech_end_ms,
            end_of_turn_wait_ms = l.end_of_turn_wait_ms(),
            transcribed_ms = after(Some(l.transcribed_ms)),
            decided_ms = after(l.decided_ms),
            first_audio_ms = after(l.first_audio_ms),
            "response latency after end of speech"
        );
    });
}

#[cfg(test)]
mod tests;
