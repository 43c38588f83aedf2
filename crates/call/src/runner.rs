//! Runs a [`Conversation`] on a live [`Call`]: feeds it audio, events and the results of the
//! heavy work it asks for, on a [`Clock`].
//!
//! Speech recognition, synthesis and the interviewer's decisions run on blocking threads (the
//! speech engines bound how many at once), never on the task that paces the outbound audio.

use std::collections::{HashMap, VecDeque};
use std::future::pending;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::{Instrument, error, info_span, warn};
use viva_media::{Channels, MediaError, WavWriter};
use viva_speech::{
    SpeechToText, SpokenSentence, Tts, TtsError, TurnModel, VAD_SAMPLE_RATE, Vocabulary,
};

use crate::CallError;
use crate::clock::{Clock, Sleep};
use crate::conversation::{
    Action, AskId, CallEnd, Conversation, DialogueEvent, Heard, JobId, LineId, TurnTaking,
};
use crate::dialogue::{Dialogue, Reply, Turn, TurnSink};
use crate::latency::{CallObserver, TurnLatency};
use crate::port::{Call, CallInput, CallOutput};

/// How many upcoming lines are synthesized into the voice cache at each chance (those already
/// there cost nothing).
const PREPARE_AHEAD: usize = 3;
/// The recording is made durable about once a second of audio.
const FLUSH_EVERY: usize = VAD_SAMPLE_RATE as usize;

/// The speech models calls use: load once per process, clone freely (clones share models).
#[derive(Clone)]
pub struct SpeechEngines {
    /// Speech to text (whisper), with its bounded worker pool.
    pub stt: SpeechToText,
    /// The interviewer's voice.
    pub tts: Arc<Tts>,
    /// Judges whether a candidate's pause ends their turn (Smart Turn); without it the wait
    /// depends on the words alone.
    pub turn_model: Option<Arc<TurnModel>>,
}

/// Who and what takes part in one call besides the transport.
pub struct CallSetup {
    /// The interviewer.
    pub dialogue: Box<dyn Dialogue>,
    /// Receives the live transcript turn by turn.
    pub transcript: Box<dyn TurnSink>,
    /// Where to write the stereo recording (16 kHz WAV, candidate left, interviewer right),
    /// if anywhere.
    pub recording: Option<PathBuf>,
    /// When turns end and barge-ins count.
    pub turn_taking: TurnTaking,
    /// Told each reply's timing and each hole in the interviewer's audio as they happen.
    pub observer: Arc<dyn CallObserver>,
    /// The terms the candidate is likely to say (the job's), prepared once for the call's
    /// speech to text and used for every utterance.
    pub vocabulary: Vocabulary,
}

/// What happened on a call.
#[derive(Debug)]
pub struct CallSummary {
    /// Who ended the call.
    pub ended: CallEnd,
    /// Every turn, in order (the same the transcript sink received).
    pub turns: Vec<Turn>,
    /// One entry per candidate turn that was answered (or overtaken).
    pub latencies: Vec<TurnLatency>,
    /// The recording failed part-way (the call went on; the file keeps what was flushed).
    pub recording_error: Option<CallError>,
    /// How long the call lasted on its clock, from the start of [`converse`] to its end.
    pub length: std::time::Duration,
}

/// Runs the interview on `call` until the interviewer finishes or the caller hangs up.
///
/// Everything is timed by `clock`; the work is traced in a `call` span carrying `call_id`,
/// with a `turn` span per candidate turn.
///
/// # Errors
/// Setup problems: the recording cannot be created, the transport's output rate or the
/// turn-taking settings are unusable. The interviewer panicking ends the call with
/// [`CallError::InterviewerFailed`].
pub async fn converse(
    call: Call,
    setup: CallSetup,
    speech: &SpeechEngines,
    clock: Arc<dyn Clock>,
) -> Result<CallSummary, CallError> {
    let span = info_span!("call", call_id = %call.id);
    run(call, setup, speech.clone(), clock)
        .instrument(span)
        .await
}

async fn run(
    mut call: Call,
    setup: CallSetup,
    speech: SpeechEngines,
    clock: Arc<dyn Clock>,
) -> Result<CallSummary, CallError> {
    let started = clock.now();
    let mut conversation = Conversation::new(setup.turn_taking, call.output_rate, started)?;
    if speech.turn_model.is_some() {
        conversation.judge_turns();
    }
    let recorder = setup.recording.map(Recorder::start).transpose()?;
    let (work_tx, mut work_rx) = mpsc::unbounded_channel();
    let mut runner = Runner {
        speech,
        vocabulary: setup.vocabulary,
        clock: Arc::clone(&clock),
        outbound: call.outbound.clone(),
        work: work_tx,
        dialogue: Some(setup.dialogue),
        dialogue_queue: VecDeque::new(),
        sink: setup.transcript,
        observer: setup.observer,
        recorder,
        speaking: HashMap::new(),
        transcribing: HashMap::new(),
        preparing: false,
        summary: CallSummary {
            ended: CallEnd::HungUp,
            turns: Vec::new(),
            latencies: Vec::new(),
            recording_error: None,
            length: std::time::Duration::ZERO,
        },
        failed: None,
    };
    let mut inbound_open = true;
    loop {
        let now = clock.now();
        while let Some(action) = conversation.poll_action(now) {
            if let Some(input) = runner.dispatch(action) {
                conversation.on_input(input, now);
            }
        }
        if conversation.is_finished() || runner.failed.is_some() {
            break;
        }
        let deadline: Sleep = match conversation.poll_timeout() {
            Some(at) => clock.sleep_until(at),
            None => Box::pin(pending()),
        };
        tokio::select! {
            input = call.inbound.recv(), if inbound_open => {
                let input = input.unwrap_or_else(|| {
                    inbound_open = false;
                    CallInput::HangUp
                });
                conversation.on_input(input, clock.now());
            }
            Some(done) = work_rx.recv() => runner.apply(done, &mut conversation),
            () = deadline => {}
        }
    }
    runner.summary.length = clock.now().saturating_sub(started);
    runner.finish().await
}

/// Results of background work, delivered when they are due on the clock.
enum Done {
    Transcribed {
        job: JobId,
        heard: Heard,
    },
    TurnJudged {
        job: JobId,
        complete_probability: f32,
    },
    Dialogue {
        /// `None` when the interviewer panicked.
        dialogue: Option<Box<dyn Dialogue>>,
        response: DialogueResponse,
    },
    Voice {
        line: LineId,
        sentence: SpokenSentence,
    },
    VoiceEnd {
        line: LineId,
    },
    /// The upcoming lines are in the voice cache.
    Prepared,
}

enum DialogueCall {
    Ask(AskId, DialogueEvent),
    Interrupted { at_ms: u64, heard: String },
    Upcoming,
}

/// What the interviewer gave back for one [`DialogueCall`].
enum DialogueResponse {
    Reply(AskId, Option<Reply>),
    Told,
    Upcoming(Vec<String>),
}

struct Runner {
    speech: SpeechEngines,
    /// What this call's candidate is likely to say, for every transcription.
    vocabulary: Vocabulary,
    clock: Arc<dyn Clock>,
    outbound: mpsc::Sender<CallOutput>,
    work: mpsc::UnboundedSender<Done>,
    /// `None` while a call to it runs on a blocking thread.
    dialogue: Option<Box<dyn Dialogue>>,
    dialogue_queue: VecDeque<DialogueCall>,
    sink: Box<dyn TurnSink>,
    observer: Arc<dyn CallObserver>,
    recorder: Option<Recorder>,
    speaking: HashMap<LineId, AbortHandle>,
    transcribing: HashMap<JobId, AbortHandle>,
    preparing: bool,
    summary: CallSummary,
    failed: Option<CallError>,
}

impl Runner {
    /// Carries out one action; returns an input for the conversation when the transport
    /// turned out to be gone.
    fn dispatch(&mut self, action: Action) -> Option<CallInput> {
        match action {
            Action::Send(output) => return self.send(output),
            Action::Transcribe {
                job,
                audio,
                start_ms,
            } => self.transcribe(job, audio, start_ms),
            Action::CancelTranscription { job } => {
                // Dropping the transcription's future stops whisper.
                if let Some(task) = self.transcribing.remove(&job) {
                    task.abort();
                }
            }
            Action::JudgeTurn { job, audio } => self.judge_turn(job, audio),
            Action::Ask { ask, event } => self.call_dialogue(DialogueCall::Ask(ask, event)),
            Action::Interrupted { at_ms, heard } => {
                self.call_dialogue(DialogueCall::Interrupted { at_ms, heard });
            }
            Action::Speak { line, text } => self.speak(line, &text),
            Action::StopSpeaking { line } => {
                if let Some(task) = self.speaking.remove(&line) {
                    task.abort();
                }
            }
            Action::Prepare => {
                if !self.preparing {
                    self.preparing = true;
                    self.call_dialogue(DialogueCall::Upcoming);
                }
            }
            Action::Record { left, right } => {
                if let Some(recorder) = &self.recorder {
                    recorder.write(left, right);
                }
            }
            Action::Turn(turn) => {
                self.sink.on_turn(&turn);
                self.summary.turns.push(turn);
            }
            Action::Latency(latency) => {
                self.observer.turn_answered(&latency);
                self.summary.latencies.push(latency);
            }
            Action::AudioGap(gap) => self.observer.audio_gap(gap),
            Action::Finished(end) => self.summary.ended = end,
        }
        None
    }

    fn send(&mut self, output: CallOutput) -> Option<CallInput> {
        match self.outbound.try_send(output) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!("the transport is not taking audio; a frame was dropped");
                None
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Some(CallInput::HangUp),
        }
    }

    fn apply(&mut self, done: Done, conversation: &mut Conversation) {
        let now = self.clock.now();
        match done {
            Done::Transcribed { job, heard } => {
                self.transcribing.remove(&job);
                conversation.on_transcript(job, heard, now);
            }
            Done::TurnJudged {
                job,
                complete_probability,
            } => conversation.on_turn_judged(job, complete_probability),
            Done::Dialogue { dialogue, response } => {
                let Some(dialogue) = dialogue else {
                    self.failed = Some(CallError::InterviewerFailed);
                    return;
                };
                self.dialogue = Some(dialogue);
                match response {
                    DialogueResponse::Reply(ask, reply) => conversation.on_reply(ask, reply, now),
                    DialogueResponse::Told => {}
                    DialogueResponse::Upcoming(lines) => self.prepare(lines),
                }
                self.pump_dialogue();
            }
            Done::Voice { line, sentence } => {
                let rate = self.speech.tts.sample_rate();
                conversation.on_voice(line, &sentence, rate, now);
            }
            Done::VoiceEnd { line } => {
                self.speaking.remove(&line);
                conversation.on_voice_end(line);
            }
            Done::Prepared => self.preparing = false,
        }
    }

    fn transcribe(&mut self, job: JobId, audio: Vec<f32>, start_ms: u64) {
        let stt = self.speech.stt.clone();
        let vocabulary = self.vocabulary.clone();
        let clock = Arc::clone(&self.clock);
        let work = self.work.clone();
        let task = tokio::spawn(
            async move {
                let started = clock.now();
                let busy = Instant::now();
                let heard = match stt.transcribe_utterance(audio, start_ms, &vocabulary).await {
                    Ok(segments) => Heard {
                        text: segments
                            .iter()
                            .map(|s| s.text.trim())
                            .collect::<Vec<_>>()
                            .join(" "),
                        closing: segments.last().and_then(|s| s.closing),
                    },
                    Err(error) => {
                        error!(%error, "speech recognition failed; the words are lost");
                        Heard::default()
                    }
                };
                let busy = busy.elapsed();
                tracing::debug!(
                    started_ms = started.as_millis() as u64,
                    busy_ms = busy.as_millis() as u64,
                    text = heard.text,
                    closing = heard.closing,
                    "transcribed"
                );
                clock.sleep_until(clock.work_done_at(started, busy)).await;
                let _ = work.send(Done::Transcribed { job, heard });
            }
            .in_current_span(),
        );
        self.transcribing.insert(job, task.abort_handle());
    }

    fn judge_turn(&mut self, job: JobId, audio: Vec<f32>) {
        let Some(model) = self.speech.turn_model.clone() else {
            return;
        };
        let clock = Arc::clone(&self.clock);
        let work = self.work.clone();
        tokio::spawn(
            async move {
                let started = clock.now();
                let busy = Instant::now();
                let judged = tokio::task::spawn_blocking(move || model.judge(&audio)).await;
                let busy = busy.elapsed();
                let judgement = match judged {
                    Ok(Ok(judgement)) => judgement,
                    Ok(Err(error)) => {
                        // The words alone decide this pause.
                        warn!(%error, "the end-of-turn model failed");
                        return;
                    }
                    Err(panic) => {
                        error!(%panic, "the end-of-turn model panicked");
                        return;
                    }
                };
                tracing::debug!(
                    started_ms = started.as_millis() as u64,
                    busy_ms = busy.as_millis() as u64,
                    probability = judgement.complete_probability,
                    "turn judged"
                );
                clock.sleep_until(clock.work_done_at(started, busy)).await;
                let _ = work.send(Done::TurnJudged {
                    job,
                    complete_probability: judgement.complete_probability,
                });
            }
            .in_current_span(),
        );
    }

    fn call_dialogue(&mut self, call: DialogueCall) {
        self.dialogue_queue.push_back(call);
        self.pump_dialogue();
    }

    /// Starts the next queued interviewer call if none is running.
    fn pump_dialogue(&mut self) {
        if self.dialogue.is_none() || self.dialogue_queue.is_empty() {
            return;
        }
        let (Some(mut dialogue), Some(call)) =
            (self.dialogue.take(), self.dialogue_queue.pop_front())
        else {
            return;
        };
        let clock = Arc::clone(&self.clock);
        let work = self.work.clone();
        tokio::spawn(
            async move {
                let started = clock.now();
                let busy = Instant::now();
                let result = tokio::task::spawn_blocking(move || {
                    let response = match call {
                        DialogueCall::Ask(ask, event) => {
                            DialogueResponse::Reply(ask, ask_dialogue(dialogue.as_mut(), event))
                        }
                        DialogueCall::Interrupted { at_ms, heard } => {
                            dialogue.on_interrupted(at_ms, &heard);
                            DialogueResponse::Told
                        }
                        DialogueCall::Upcoming => DialogueResponse::Upcoming(dialogue.upcoming()),
                    };
                    (dialogue, response)
                })
                .await;
                clock
                    .sleep_until(clock.work_done_at(started, busy.elapsed()))
                    .await;
                let done = match result {
                    Ok((dialogue, response)) => Done::Dialogue {
                        dialogue: Some(dialogue),
                        response,
                    },
                    Err(panic) => {
                        error!(%panic, "the interviewer failed; ending the call");
                        Done::Dialogue {
                            dialogue: None,
                            response: DialogueResponse::Told,
                        }
                    }
                };
                let _ = work.send(done);
            }
            .in_current_span(),
        );
    }

    /// Synthesizes `text`, streaming each sentence as it is ready (sentences in the voice
    /// cache are ready at once).
    fn speak(&mut self, line: LineId, text: &str) {
        let tts = Arc::clone(&self.speech.tts);
        let clock = Arc::clone(&self.clock);
        let work = self.work.clone();
        let text = text.to_owned();
        let task = tokio::spawn(
            async move {
                let started = clock.now();
                let busy = Instant::now();
                // Read the stream eagerly (the synthesis thread must never wait for this
                // task: on a virtual clock time stands still while it runs) and release each
                // sentence when it is due.
                let mut stream: SentenceStream = Some(tts.stream(text, Instant::now()));
                let mut due: VecDeque<(Duration, Done)> = VecDeque::new();
                loop {
                    let next = due.front().map(|&(at, _)| at);
                    tokio::select! {
                        biased;
                        item = recv(&mut stream), if stream.is_some() => {
                            let at = clock.work_done_at(started, busy.elapsed());
                            match item {
                                Some(Ok(sentence)) => due.push_back((at, Done::Voice { line, sentence })),
                                Some(Err(error)) => warn!(%error, "an interviewer sentence could not be synthesized and is skipped"),
                                None => due.push_back((at, Done::VoiceEnd { line })),
                            }
                        }
                        () = clock.sleep_until(next.unwrap_or_default()), if next.is_some() => {
                            if let Some((_, done)) = due.pop_front() {
                                let _ = work.send(done);
                            }
                        }
                        else => break,
                    }
                }
            }
            .in_current_span(),
        );
        self.speaking.insert(line, task.abort_handle());
    }

    /// Puts the next upcoming lines into the voice cache, after everything someone is waiting
    /// to hear.
    fn prepare(&mut self, lines: Vec<String>) {
        let upcoming: Vec<String> = lines
            .into_iter()
            .filter(|text| !text.trim().is_empty())
            .take(PREPARE_AHEAD)
            .collect();
        let tts = Arc::clone(&self.speech.tts);
        let clock = Arc::clone(&self.clock);
        let work = self.work.clone();
        tokio::spawn(
            async move {
                let started = clock.now();
                let busy = Instant::now();
                let _ = tokio::task::spawn_blocking(move || {
                    for text in upcoming {
                        if let Err(error) = tts.prepare(&text) {
                            warn!(%error, text, "could not prepare a planned line");
                        }
                    }
                })
                .await;
                clock
                    .sleep_until(clock.work_done_at(started, busy.elapsed()))
                    .await;
                let _ = work.send(Done::Prepared);
            }
            .in_current_span(),
        );
    }

    async fn finish(mut self) -> Result<CallSummary, CallError> {
        for (_, task) in self.speaking.drain() {
            task.abort();
        }
        if self.failed.is_some() {
            let _ = self.outbound.try_send(CallOutput::HangUp);
        }
        if let Some(recorder) = self.recorder.take() {
            self.summary.recording_error = recorder.close().await.err();
        }
        match self.failed {
            Some(error) => Err(error),
            None => Ok(self.summary),
        }
    }
}

fn ask_dialogue(dialogue: &mut dyn Dialogue, event: DialogueEvent) -> Option<Reply> {
    match event {
        DialogueEvent::Opening { now_ms } => Some(Reply::Say(dialogue.opening(now_ms))),
        DialogueEvent::Answer {
            text,
            start_ms,
            end_ms,
        } => Some(dialogue.on_answer(&text, start_ms, end_ms)),
        DialogueEvent::Silence { now_ms, silent_ms } => dialogue.on_silence(now_ms, silent_ms),
    }
}

type SentenceStream = Option<mpsc::Receiver<Result<SpokenSentence, TtsError>>>;

/// The next item of a synthesis stream; at its end the stream becomes `None`.
async fn recv(stream: &mut SentenceStream) -> Option<Result<SpokenSentence, TtsError>> {
    let receiver = stream.as_mut()?;
    let item = receiver.recv().await;
    if item.is_none() {
        *stream = None;
    }
    item
}

/// Writes the recording on its own thread: flushing waits for the disk, which the call's
/// timing must never do.
struct Recorder {
    blocks: std_mpsc::Sender<(Vec<f32>, Vec<f32>)>,
    thread: JoinHandle<Result<(), CallError>>,
}

impl Recorder {
    fn start(path: PathBuf) -> Result<Self, CallError> {
        let failed = |source: MediaError, path: &PathBuf| CallError::Recording {
            path: path.clone(),
            source,
        };
        let mut writer = WavWriter::create(&path, VAD_SAMPLE_RATE, Channels::Stereo)
            .map_err(|e| failed(e, &path))?;
        let (blocks, received) = std_mpsc::channel::<(Vec<f32>, Vec<f32>)>();
        let thread = std::thread::Builder::new()
            .name("call-recording".to_owned())
            .spawn(move || {
                let mut unflushed = 0;
                for (left, right) in received {
                    writer
                        .write_stereo(&left, &right)
                        .map_err(|e| failed(e, &path))?;
                    unflushed += left.len();
                    if unflushed >= FLUSH_EVERY {
                        writer.flush().map_err(|e| failed(e, &path))?;
                        unflushed = 0;
                    }
                }
                writer.finalize().map_err(|e| failed(e, &path))
            })
            .map_err(|_| CallError::RecorderLost)?;
        Ok(Self { blocks, thread })
    }

    fn write(&self, left: Vec<f32>, right: Vec<f32>) {
        // A failed writer has stopped receiving; its error is reported when the call ends.
        let _ = self.blocks.send((left, right));
    }

    async fn close(self) -> Result<(), CallError> {
        drop(self.blocks);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Err(CallError::RecorderLost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_can_move_between_worker_threads() {
        fn requires_send<T: Send>(_: &T) {}
        // Compiling this is the test: a server spawns each call on a multi-thread runtime.
        fn check(call: Call, setup: CallSetup, speech: &SpeechEngines, clock: Arc<dyn Clock>) {
            let call = converse(call, setup, speech, clock);
            requires_send(&call);
        }
        let _ = check;
    }
}
