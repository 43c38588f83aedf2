//! Speech to text with whisper.cpp, loaded once and shared by a bounded pool of workers.
//!
//! One [`SpeechToText`] holds one copy of the model however many calls use it; clones are
//! cheap handles. Each worker owns a whisper state (its scratch buffers) and at most
//! `workers` transcriptions run at once. Each runs on the cores it leases from the machine's
//! core budget (up to `threads`), so the cores are never oversubscribed: ggml's spinning
//! threads turn oversubscription into multi-second stalls.
//!
//! Input is 16 kHz mono speech that the VAD has already found ([`crate::vad`]); whisper never
//! sees silence, and its stock inventions on noise are filtered ([`crate::hallucination`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), viva_speech::SttError> {
//! use viva_speech::{SpeechToText, SttConfig};
//! let stt = SpeechToText::load(&SttConfig::new("models/whisper/ggml-tiny.en.bin"))?;
//! let utterance = vec![0.0f32; 16_000]; // one second of 16 kHz speech from the VAD
//! let vocabulary = stt.vocabulary(["Kafka", "Celery", "RabbitMQ"], ["pagination"])?;
//! let segments = stt.transcribe_utterance(utterance, 0, &vocabulary).await?;
//! # Ok(()) }
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use serde::Serialize;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use crate::confirm::{Scorer, Sound, confirm_terms};
use crate::cores::{self, DueQueue};
use crate::hallucination::{is_invented, strip_annotations};
use crate::vad::{SpeechRegionConfig, VAD_SAMPLE_RATE, find_speech};
use crate::vocabulary::{ModelTokens, Vocabulary, bias_logits};
use crate::waits::{self, SpeechJob};

/// Magic number at the start of every whisper.cpp ggml model file ("ggml", little endian).
const GGML_MAGIC: u32 = 0x6767_6d6c;
/// Whisper's encoder sees 50 frames per second of audio (one per 320 samples at 16 kHz).
const SAMPLES_PER_ENCODER_FRAME: usize = 320;
/// A full whisper window: 30 s of audio.
const FULL_AUDIO_CTX: usize = 1500;
/// The audio whisper encodes at once (30 s); longer audio is decoded window by window.
const WINDOW_SAMPLES: usize = FULL_AUDIO_CTX * SAMPLES_PER_ENCODER_FRAME;
/// Encoder frames kept beyond the utterance when the context is trimmed (about 3.8 s), and the
/// smallest trimmed context (about 7.7 s). Whisper expects speech to be followed by padding:
/// measured on the speech set, a 1.3 s margin made tiny.en loop on repeated text (WER 164 %),
/// 2.6 s still looped on phone audio, and these values gave 5.8 % WER (the full window: 6.6 %)
/// at a fifth of the full window's latency.
const AUDIO_CTX_MARGIN: usize = 192;
const MIN_TRIMMED_AUDIO_CTX: usize = 384;
/// More words per second of audio than anyone speaks means whisper looped.
const MAX_WORDS_PER_SECOND: f32 = 6.0;
/// Whisper pads input shorter than this internally and does poorly on it.
const MIN_UTTERANCE_SAMPLES: usize = VAD_SAMPLE_RATE as usize / 4;

/// How to load and run the speech-to-text engine.
#[derive(Debug, Clone, PartialEq)]
pub struct SttConfig {
    /// A whisper.cpp ggml model file (made by `scripts/setup`).
    pub model: PathBuf,
    /// Spoken language as an ISO 639-1 code, or `auto` (multilingual models only).
    pub language: String,
    /// Transcriptions that may run at the same time.
    pub workers: usize,
    /// Most threads one transcription uses. It gets fewer when other speech jobs hold the
    /// cores or other processes keep them busy.
    pub threads: usize,
    /// Encode only as much audio context as the utterance needs (several times faster on
    /// short utterances; whisper normally encodes a full 30 s window).
    pub trim_context: bool,
}

impl SttConfig {
    /// English defaults sized to this machine: one worker per core, each allowed every core
    /// (a lone transcription on an idle machine uses them all; concurrent ones share them).
    pub fn new(model: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            model: model.into(),
            language: "en".to_owned(),
            workers: cores,
            threads: cores,
            trim_context: true,
        }
    }
}

/// One recognised word with its time on the input's clock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Word {
    pub word: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub probability: f32,
}

/// A stretch of recognised speech.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    pub words: Vec<Word>,
    /// How sure whisper was of the full stop, question or exclamation mark that closes the
    /// segment, `None` when it ends on a word or another mark. Whisper hears the voice's
    /// melody: a sentence the speaker left hanging gets a doubtful stop (0.2-0.9) where a
    /// finished one gets 0.9 and more, which tells a thinking pause from the end of a turn.
    #[serde(skip)]
    pub closing: Option<f32>,
}

/// The transcript of a whole recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    pub text: String,
    pub segments: Vec<Segment>,
}

impl Transcript {
    fn from_segments(segments: Vec<Segment>) -> Self {
        let text = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Self { text, segments }
    }
}

/// Why speech to text failed.
#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("speech model {path} is missing: run scripts/setup to download and convert it")]
    ModelMissing { path: PathBuf },
    #[error(
        "speech model {path} is not a usable whisper.cpp model ({reason}): run scripts/setup to rebuild it"
    )]
    ModelInvalid { path: PathBuf, reason: String },
    #[error("invalid speech-to-text setting: {0}")]
    Config(String),
    #[error("whisper failed: {0}")]
    Whisper(#[from] whisper_rs::WhisperError),
    #[error("speech-to-text worker stopped unexpectedly")]
    WorkerLost,
}

/// The speech-to-text engine; clone it freely, all clones share one model.
#[derive(Clone)]
pub struct SpeechToText {
    inner: Arc<Engine>,
}

struct Engine {
    // Field order matters: states borrow the context's model and must drop first.
    pool: StatePool,
    context: WhisperContext,
    model: PathBuf,
    language: String,
    threads: usize,
    trim_context: bool,
}

impl Engine {
    /// What starts a decoding without timestamps: start of transcript, then language and task
    /// for a multilingual model, then no timestamps.
    fn untimed_start(&self) -> Vec<i32> {
        let context = &self.context;
        let mut start = vec![context.token_sot()];
        if context.is_multilingual() {
            if let Some(id) = whisper_rs::get_lang_id(&self.language) {
                start.push(context.token_lang(id));
            }
            start.push(context.token_transcribe());
        }
        start.push(context.token_not());
        start
    }
}

/// Whisper states waiting for work; taking one waits, earliest due first, while all workers
/// are busy.
struct StatePool {
    idle: Mutex<Vec<WhisperState>>,
    waiting: DueQueue,
    size: usize,
}

impl StatePool {
    fn take(&self, due: Instant) -> WhisperState {
        self.waiting.wait_turn(due, |_| self.lock().pop())
    }

    fn give_back(&self, state: WhisperState) {
        self.lock().push(state);
        self.waiting.released();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WhisperState>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SpeechToText {
    /// Loads the model once and prepares `config.workers` workers.
    pub fn load(config: &SttConfig) -> Result<Self, SttError> {
        if config.workers == 0 || config.threads == 0 {
            return Err(SttError::Config(
                "workers and threads must be at least 1".to_owned(),
            ));
        }
        check_model_file(&config.model)?;
        route_whisper_logs();
        // Starts watching the machine's load now, so the first utterance can go wide.
        cores::machine();

        let path = config
            .model
            .to_str()
            .ok_or_else(|| SttError::ModelInvalid {
                path: config.model.clone(),
                reason: "the path is not valid UTF-8".to_owned(),
            })?;
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false);
        let context =
            WhisperContext::new_with_params(path, params).map_err(|e| SttError::ModelInvalid {
                path: config.model.clone(),
                reason: e.to_string(),
            })?;
        if config.language != "en" && !context.is_multilingual() {
            return Err(SttError::Config(format!(
                "language `{}` needs a multilingual model, but {} is English-only",
                config.language,
                config.model.display()
            )));
        }
        // A damaged file can get through loading and fail here, when buffers are sized from it.
        let states = (0..config.workers)
            .map(|_| context.create_state())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SttError::ModelInvalid {
                path: config.model.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            inner: Arc::new(Engine {
                pool: StatePool {
                    idle: Mutex::new(states),
                    waiting: DueQueue::new(),
                    size: config.workers,
                },
                context,
                model: config.model.clone(),
                language: config.language.clone(),
                threads: config.threads,
                trim_context: config.trim_context,
            }),
        })
    }

    /// The model file this engine runs.
    pub fn model_path(&self) -> &Path {
        &self.inner.model
    }

    /// How many transcriptions can run at once.
    pub fn workers(&self) -> usize {
        self.inner.pool.size
    }

    /// Prepares the words of the trade a call expects, once, for this model's tokenizer; pass
    /// the result to every transcription of the call. `listed` are the terms a person named
    /// (a job's `vocabulary`, `--vocabulary`); `mentioned` are words taken from the job's
    /// own text, of which only those whisper does not know as one token are kept.
    pub fn vocabulary(
        &self,
        listed: impl IntoIterator<Item = impl AsRef<str>>,
        mentioned: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<Vocabulary, SttError> {
        let terms: Vec<(String, bool)> = listed
            .into_iter()
            .map(|t| (t.as_ref().to_owned(), true))
            .chain(
                mentioned
                    .into_iter()
                    .map(|t| (t.as_ref().to_owned(), false)),
            )
            .collect();
        let context = &self.inner.context;
        let model = ModelTokens {
            n_vocab: usize::try_from(context.n_vocab()).unwrap_or(0),
            first_special: context.token_eot(),
        };
        // A token is at least one byte, so this bound is never too small (whisper-rs
        // mishandles an overflow of it).
        Ok(Vocabulary::prepare(
            terms,
            model,
            |text| context.tokenize(text, text.len() + 1),
            word_sound,
        )?)
    }

    /// Transcribes one utterance (16 kHz mono speech found by the VAD) without blocking the
    /// async runtime. `start_ms` places the result on the caller's clock; `vocabulary` (may
    /// be empty) is what the call expects to hear.
    ///
    /// Dropping the future (aborting its task) gives up the transcription: one still waiting
    /// for a worker or cores never runs, and a running one stops after its encoder pass
    /// (whisper.cpp looks at its abort callback only between passes), skipping the decoding
    /// and the term check. A call drops the transcript of a pause the candidate spoke on
    /// through, and another call's end of turn may be waiting for those cores.
    pub async fn transcribe_utterance(
        &self,
        audio: Vec<f32>,
        start_ms: u64,
        vocabulary: &Vocabulary,
    ) -> Result<Vec<Segment>, SttError> {
        let engine = self.clone();
        let vocabulary = vocabulary.clone();
        let abandoned = AbandonOnDrop(Arc::new(AtomicBool::new(false)));
        let flag = Arc::clone(&abandoned.0);
        let result = tokio::task::spawn_blocking(move || {
            engine.transcribe(&audio, start_ms, &vocabulary, &flag)
        })
        .await
        .map_err(|_| SttError::WorkerLost)?;
        drop(abandoned);
        result
    }

    /// Blocking form of [`Self::transcribe_utterance`]; waits for a free worker.
    pub fn transcribe_utterance_blocking(
        &self,
        audio: &[f32],
        start_ms: u64,
        vocabulary: &Vocabulary,
    ) -> Result<Vec<Segment>, SttError> {
        self.transcribe(audio, start_ms, vocabulary, &AtomicBool::new(false))
    }

    /// Transcribes `audio` unless `abandoned` is set first; what an abandoned run returns
    /// is never read.
    fn transcribe(
        &self,
        audio: &[f32],
        start_ms: u64,
        vocabulary: &Vocabulary,
        abandoned: &AtomicBool,
    ) -> Result<Vec<Segment>, SttError> {
        if audio.len() < MIN_UTTERANCE_SAMPLES {
            return Ok(Vec::new());
        }
        let due = Instant::now();
        let mut state = self.inner.pool.take(due);
        let mut cores = cores::machine().lease(self.inner.threads, due);
        waits::started(SpeechJob::Transcription, due);
        if abandoned.load(Ordering::Relaxed) {
            self.inner.pool.give_back(state);
            return Ok(Vec::new());
        }
        let trim_context = self.inner.trim_context;
        let run = Run {
            audio,
            start_ms,
            vocabulary,
            abandoned,
        };
        let mut result = self.run(&mut state, &run, cores.threads(), trim_context);
        if matches!(result, Ok(Decoded::Stalled)) {
            tracing::warn!(
                threads = cores.threads(),
                "transcription stalled: its cores were taken by other work; redoing it on one"
            );
            cores.narrow();
            result = self.run(&mut state, &run, 1, trim_context);
        }
        if trim_context && let Ok(Decoded::Looped(looped)) = &result {
            // The candidate's words stay out of a warning (debug logs may carry them).
            tracing::warn!(
                words = looped
                    .iter()
                    .map(|s| s.text.split_whitespace().count())
                    .sum::<usize>(),
                seconds = audio.len() as f32 / VAD_SAMPLE_RATE as f32,
                "whisper looped on a trimmed context; transcribing again with the full window"
            );
            result = self.run(&mut state, &run, 1, false);
        }
        drop(cores);
        self.inner.pool.give_back(state);
        result.map(|decoded| match decoded {
            Decoded::Heard(segments) | Decoded::Looped(segments) => segments,
            // Single-threaded runs have no deadline, so a stall is never the last run.
            Decoded::Stalled | Decoded::Abandoned => Vec::new(),
        })
    }

    /// Transcribes a whole 16 kHz mono recording: the VAD finds the speech, each stretch is
    /// transcribed on its own, and silence or noise gives an empty transcript.
    pub fn transcribe_recording(
        &self,
        audio: &[f32],
        vocabulary: &Vocabulary,
    ) -> Result<Transcript, SttError> {
        let mut segments = Vec::new();
        for region in find_speech(audio, &SpeechRegionConfig::default()) {
            let start_ms = samples_to_ms(region.start);
            segments.extend(self.transcribe_utterance_blocking(
                &audio[region],
                start_ms,
                vocabulary,
            )?);
        }
        Ok(Transcript::from_segments(segments))
    }

    fn run(
        &self,
        state: &mut WhisperState,
        run: &Run<'_>,
        threads: usize,
        trim_context: bool,
    ) -> Result<Decoded, SttError> {
        let engine = &*self.inner;
        let Run {
            audio, start_ms, ..
        } = *run;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(threads as i32);
        params.set_language(Some(engine.language.as_str()));
        params.set_translate(false);
        params.set_no_context(true);
        params.set_token_timestamps(true);
        // One segment per window: whisper then encodes an utterance of up to 30 s once,
        // instead of encoding again after its last timestamp (trailing silence, where it
        // invents), and the state keeps the audio the term check scores against.
        params.set_single_segment(true);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        if let Some(ctx) = trimmed_audio_ctx(audio.len()).filter(|_| trim_context) {
            params.set_audio_ctx(ctx as i32);
        }
        // A repeating decode stops at what the audio can hold, not at whisper's own limit
        // (about 220 tokens, a second or more); and is not decoded again at a higher
        // temperature: the full window, below, is the remedy for a loop.
        let max_tokens = max_tokens(audio.len());
        params.set_max_tokens(max_tokens as i32);
        params.set_temperature_inc(0.0);
        // A vocabulary prepared for another model's tokenizer would bias the wrong tokens,
        // or past the end of this model's logits.
        let n_vocab = usize::try_from(engine.context.n_vocab()).unwrap_or(0);
        let prepared = run.vocabulary.prepared().filter(|p| p.n_vocab == n_vocab);
        if prepared.is_none() && !run.vocabulary.is_empty() {
            tracing::warn!("the vocabulary was prepared for another model; it is ignored");
        }
        if let Some(prepared) = prepared.filter(|p| p.as_prompt) {
            params.set_tokens(&prepared.prompt);
        } else if let Some(prepared) = prepared {
            // SAFETY: whisper calls `bias_logits` with this pointer only while `full` below
            // runs, and `run.vocabulary` (holding `prepared`) outlives that call; the filter
            // only reads it.
            unsafe {
                params.set_filter_logits_callback(Some(bias_logits));
                params.set_filter_logits_callback_user_data(
                    std::ptr::from_ref(prepared).cast_mut().cast(),
                );
            }
        }
        let watchdog = Watchdog::new(audio.len(), threads > 1, run.abandoned);
        // SAFETY: whisper calls `Watchdog::check` with this pointer only while `full` below
        // runs, and `watchdog` outlives that call; `check` only reads it and stores to an
        // atomic.
        unsafe {
            params.set_abort_callback(Some(Watchdog::check));
            params.set_abort_callback_user_data(std::ptr::from_ref(&watchdog).cast_mut().cast());
        }
        let outcome = state.full(params, audio);
        if run.abandoned.load(Ordering::Relaxed) {
            return Ok(Decoded::Abandoned);
        }
        if watchdog.fired.load(Ordering::Relaxed) {
            return Ok(Decoded::Stalled);
        }
        outcome?;

        let eot = engine.context.token_eot();
        let end_of_audio = start_ms + samples_to_ms(audio.len());
        let mut segments = Vec::new();
        let mut probabilities = Vec::new();
        let mut most_no_speech = 0.0f32;
        let mut looped = false;
        for segment in state.as_iter() {
            most_no_speech = most_no_speech.max(segment.no_speech_probability());
            // Timestamps count toward the limit too.
            looped |= usize::try_from(segment.n_tokens()).unwrap_or(0) >= max_tokens;
            let seg_start = start_ms + centis_to_ms(segment.start_timestamp());
            let seg_end = (start_ms + centis_to_ms(segment.end_timestamp())).min(end_of_audio);
            let mut words = WordBuilder::default();
            let mut closing = None;
            for i in 0..segment.n_tokens() {
                let Some(token) = segment.get_token(i) else {
                    continue;
                };
                if token.token_id() >= eot {
                    continue; // timestamps, language and task markers
                }
                let data = token.token_data();
                let probability = token.token_probability();
                probabilities.push(probability);
                let bytes = token.to_bytes()?;
                closing = closes_sentence(bytes).then_some(probability);
                words.push_token(
                    bytes,
                    (start_ms + centis_to_ms(data.t0)).clamp(seg_start, seg_end),
                    (start_ms + centis_to_ms(data.t1)).clamp(seg_start, seg_end),
                    probability,
                );
            }
            let words = words.finish();
            let text = strip_annotations(&segment.to_str_lossy()?);
            if text.is_empty() {
                continue;
            }
            segments.push(Segment {
                start_ms: seg_start,
                end_ms: seg_end.max(seg_start),
                text,
                words,
                closing,
            });
        }

        looped |= is_runaway(&segments, audio.len());
        // One window was encoded, so the state still holds the audio the segments came from.
        if let Some(prepared) = prepared.filter(|p| !p.as_prompt && !p.spoken.is_empty())
            && !looped
            && audio.len() <= WINDOW_SAMPLES
        {
            let mut scorer = Scorer {
                context: &engine.context,
                state,
                start: engine.untimed_start(),
                threads,
            };
            let checks = confirm_terms(&mut segments, &prepared.spoken, &mut scorer, word_sound)?;
            for check in checks {
                tracing::debug!(
                    heard = %check.heard,
                    term = %check.term,
                    distance = check.distance,
                    gain = check.gain,
                    unreminded_gain = check.unreminded_gain,
                    confidence = check.confidence,
                    taken = check.taken,
                    "term checked"
                );
            }
        }

        let mean_probability = if probabilities.is_empty() {
            0.0
        } else {
            probabilities.iter().sum::<f32>() / probabilities.len() as f32
        };
        let text: String = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        if is_invented(&text, mean_probability, most_no_speech) {
            tracing::debug!(%text, mean_probability, most_no_speech, "dropped invented text");
            return Ok(Decoded::Heard(Vec::new()));
        }
        Ok(if looped {
            Decoded::Looped(segments)
        } else {
            Decoded::Heard(segments)
        })
    }
}

/// How a word or term sounds, for [`confirm_terms`]; `None` when espeak-ng cannot say (the
/// term is then only biased).
fn word_sound(words: &str) -> Option<Sound> {
    match crate::tts::sound_of(words) {
        Ok(ipa) => Some(Sound::from_ipa(&ipa)).filter(|s| !s.is_empty()),
        Err(e) => {
            tracing::debug!(error = %e, "no sound for {words:?}");
            None
        }
    }
}

/// How one whisper run over an utterance ended.
enum Decoded {
    Heard(Vec<Segment>),
    /// The watchdog stopped it: other work took its cores.
    Stalled,
    /// Nobody waits for its words any more.
    Abandoned,
    /// Whisper repeated itself past what the audio can hold; what it wrote.
    Looped(Vec<Segment>),
}

/// One utterance to transcribe, and what to expect in it.
struct Run<'a> {
    audio: &'a [f32],
    start_ms: u64,
    vocabulary: &'a Vocabulary,
    abandoned: &'a AtomicBool,
}

/// Stops a whisper run that nobody waits for any more, or a multi-threaded one that has
/// lost its cores. ggml's threads spin at every barrier, so when other work takes one of
/// their cores a transcription crawls (seconds instead of a fifth of a second); the core
/// budget avoids that inside this process, but another process can start mid-run. One thread
/// transcribes at about a tenth of real time here, so a multi-threaded run that takes more
/// than a fifth of its audio's length plus 200 ms is stopped and redone on one thread,
/// bounding the loss.
struct Watchdog<'a> {
    deadline: Option<Instant>,
    fired: AtomicBool,
    abandoned: &'a AtomicBool,
}

impl<'a> Watchdog<'a> {
    fn new(samples: usize, multi_threaded: bool, abandoned: &'a AtomicBool) -> Self {
        let audio = Duration::from_secs_f64(samples as f64 / f64::from(VAD_SAMPLE_RATE));
        Self {
            deadline: multi_threaded
                .then(|| Instant::now() + Duration::from_millis(200) + audio / 5),
            fired: AtomicBool::new(false),
            abandoned,
        }
    }

    /// whisper.cpp's abort callback: `true` stops the run.
    ///
    /// # Safety
    /// `data` must point to a live `Watchdog`.
    unsafe extern "C" fn check(data: *mut std::ffi::c_void) -> bool {
        // SAFETY: the caller passes the pointer `run` registered, valid for the run.
        let watchdog = unsafe { &*data.cast::<Watchdog>() };
        if watchdog.abandoned.load(Ordering::Relaxed) {
            return true;
        }
        let late = watchdog.deadline.is_some_and(|d| Instant::now() >= d);
        if late {
            watchdog.fired.store(true, Ordering::Relaxed);
        }
        late
    }
}

/// Sets its flag when dropped: the flag of a transcription whose future was dropped.
struct AbandonOnDrop(Arc<AtomicBool>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Encoder context covering `samples` of audio plus a margin, or `None` for a full window.
fn trimmed_audio_ctx(samples: usize) -> Option<usize> {
    let frames =
        (samples.div_ceil(SAMPLES_PER_ENCODER_FRAME) + AUDIO_CTX_MARGIN).max(MIN_TRIMMED_AUDIO_CTX);
    // Multiples of 64 keep ggml's matrix kernels on their fast paths.
    let ctx = frames.div_ceil(64) * 64;
    (ctx < FULL_AUDIO_CTX).then_some(ctx)
}

/// The tokens whisper may write for `samples` of audio: three for each word the audio can
/// hold (a term of the trade is up to four, "PgBouncer"; most words are one).
fn max_tokens(samples: usize) -> usize {
    let seconds = samples as f32 / VAD_SAMPLE_RATE as f32;
    (3.0 * (2.0 + seconds * MAX_WORDS_PER_SECOND)).ceil() as usize
}

/// Whether a transcript has more words than `samples` of audio can hold.
fn is_runaway(segments: &[Segment], samples: usize) -> bool {
    let words: usize = segments
        .iter()
        .map(|s| s.text.split_whitespace().count())
        .sum();
    let seconds = samples as f32 / VAD_SAMPLE_RATE as f32;
    words as f32 > 2.0 + seconds * MAX_WORDS_PER_SECOND
}

/// Whether a token is a mark that ends a sentence, perhaps inside a quote or brackets
/// ("..." trails off instead).
fn closes_sentence(token: &[u8]) -> bool {
    let token = token.trim_ascii();
    let mark = match token.split_last() {
        Some((b'"' | b'\'' | b')', mark)) => mark,
        _ => token,
    };
    matches!(mark, b"." | b"?" | b"!")
}

fn samples_to_ms(samples: usize) -> u64 {
    samples as u64 * 1000 / u64::from(VAD_SAMPLE_RATE)
}

fn centis_to_ms(centis: i64) -> u64 {
    centis.max(0) as u64 * 10
}

/// Joins whisper's sub-word tokens into words: a token starting with a space starts a new word,
/// punctuation stays attached to the word before it, bracketed annotations are dropped.
#[derive(Default)]
struct WordBuilder {
    words: Vec<Word>,
    bytes: Vec<u8>,
    current: Option<(u64, u64, f32, u32)>,
}

impl WordBuilder {
    fn push_token(&mut self, bytes: &[u8], start_ms: u64, end_ms: u64, probability: f32) {
        let starts_word = bytes.first() == Some(&b' ') || self.current.is_none();
        if starts_word {
            self.flush();
            self.current = Some((start_ms, end_ms, probability, 1));
        } else if let Some((_, end, sum, n)) = &mut self.current {
            *end = end_ms.max(*end);
            *sum += probability;
            *n += 1;
        }
        self.bytes.extend_from_slice(bytes);
    }

    fn flush(&mut self) {
        if let Some((start_ms, end_ms, sum, n)) = self.current.take() {
            let word = String::from_utf8_lossy(&self.bytes).trim().to_owned();
            self.bytes.clear();
            if !word.is_empty() {
                self.words.push(Word {
                    word,
                    start_ms,
                    end_ms: end_ms.max(start_ms),
                    probability: sum / n as f32,
                });
            }
        }
    }

    fn finish(mut self) -> Vec<Word> {
        self.flush();
        let mut inside = false;
        self.words.retain(|w| {
            let opens = w.word.starts_with('[') || w.word.starts_with('(');
            let closes = w.word.ends_with(']') || w.word.ends_with(')');
            let keep = !inside && !opens;
            inside = (inside || opens) && !closes;
            keep
        });
        self.words
    }
}

/// Fails early, with a message a user can act on, instead of letting whisper.cpp choke.
fn check_model_file(path: &Path) -> Result<(), SttError> {
    let mut file = std::fs::File::open(path).map_err(|_| SttError::ModelMissing {
        path: path.to_owned(),
    })?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic)
        .map_err(|_| SttError::ModelInvalid {
            path: path.to_owned(),
            reason: "the file is empty or truncated".to_owned(),
        })?;
    if u32::from_le_bytes(magic) != GGML_MAGIC {
        return Err(SttError::ModelInvalid {
            path: path.to_owned(),
            reason: "it does not start with the ggml magic number".to_owned(),
        });
    }
    let invalid = |reason: String| SttError::ModelInvalid {
        path: path.to_owned(),
        reason,
    };
    let mut header = [0u8; 4 * HPARAMS];
    file.read_exact(&mut header)
        .map_err(|_| invalid("the file ends inside its header".to_owned()))?;
    let hparams: Vec<i64> = header
        .chunks_exact(4)
        .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    check_hparams(&hparams).map_err(invalid)?;
    // The token embedding alone holds n_vocab x n_text_state weights, at least half a byte
    // each in the smallest quantization: a shorter file was cut off.
    let least = hparams[0] * hparams[6] / 2;
    let size = file.metadata().map_or(0, |m| m.len());
    if (size as i64) < least {
        return Err(invalid(format!(
            "it is {size} bytes, too short for the model its header describes (at least {least}): \
             a download or conversion was cut off"
        )));
    }
    Ok(())
}

/// The ggml whisper header's integers after the magic: n_vocab, n_audio_ctx, n_audio_state,
/// n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels,
/// ftype.
const HPARAMS: usize = 11;

/// whisper.cpp sizes its buffers from the header and, given zeros or absurd values, frees
/// memory it never allocated (a crash, not an error), so the header is checked first.
fn check_hparams(h: &[i64]) -> Result<(), String> {
    const NAMES: [&str; HPARAMS] = [
        "n_vocab",
        "n_audio_ctx",
        "n_audio_state",
        "n_audio_head",
        "n_audio_layer",
        "n_text_ctx",
        "n_text_state",
        "n_text_head",
        "n_text_layer",
        "n_mels",
        "ftype",
    ];
    // Far above every released whisper model, far below what overflows a buffer size.
    const LIMITS: [i64; HPARAMS] = [
        1 << 20,
        1 << 14,
        1 << 14,
        1 << 8,
        1 << 8,
        1 << 14,
        1 << 14,
        1 << 8,
        1 << 8,
        1 << 9,
        1 << 20,
    ];
    for ((name, &value), limit) in NAMES.iter().zip(h).zip(LIMITS) {
        // ftype carries a quantization version in its thousands and may be zero (f32).
        let least = if *name == "ftype" { 0 } else { 1 };
        if !(least..=limit).contains(&value) {
            return Err(format!(
                "its header gives {name} = {value}, not a whisper model"
            ));
        }
    }
    for (state, head) in [(h[2], h[3]), (h[6], h[7])] {
        if state % head != 0 {
            return Err(format!(
                "its header splits a width of {state} into {head} attention heads"
            ));
        }
    }
    Ok(())
}

/// whisper.cpp prints to stderr by default; send its messages through `tracing` instead.
fn route_whisper_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        whisper_rs::install_logging_hooks();
        // SAFETY: `whisper_log` is a plain function that lives as long as the process and
        // reads its text only during the call; it takes no user data.
        unsafe {
            whisper_rs::whisper_rs_sys::whisper_log_set(Some(whisper_log), std::ptr::null_mut())
        };
    });
}

/// whisper.cpp's messages, sent on as whisper-rs's own hook sends them, except one: a run
/// this crate stopped (a transcription nobody waits for any more, or one the watchdog
/// stopped) ends with "failed to encode" or "failed to decode" at error level, though
/// nothing failed. Those go to debug; the watchdog says why it stopped a run.
///
/// # Safety
/// `text` must be null or a NUL-terminated string, as whisper.cpp passes.
unsafe extern "C" fn whisper_log(
    level: whisper_rs::whisper_rs_sys::ggml_log_level,
    text: *const std::ffi::c_char,
    _: *mut std::ffi::c_void,
) {
    if text.is_null() {
        return;
    }
    // SAFETY: whisper.cpp passes a NUL-terminated string, valid during the call.
    let text = unsafe { std::ffi::CStr::from_ptr(text) }.to_string_lossy();
    let text = text.trim();
    if text.ends_with("failed to encode") || text.ends_with("failed to decode") {
        tracing::debug!(target: "whisper_rs", "{text} (stopped)");
        return;
    }
    match whisper_rs::GGMLLogLevel::from(level) {
        whisper_rs::GGMLLogLevel::Error => tracing::error!(target: "whisper_rs", "{text}"),
        whisper_rs::GGMLLogLevel::Warn => tracing::warn!(target: "whisper_rs", "{text}"),
        whisper_rs::GGMLLogLevel::Info => tracing::info!(target: "whisper_rs", "{text}"),
        _ => tracing::debug!(target: "whisper_rs", "{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_ctx_covers_the_utterance_with_a_margin() {
        assert_eq!(trimmed_audio_ctx(16_000), Some(384)); // the minimum
        assert_eq!(trimmed_audio_ctx(16_000 * 5), Some(448)); // 250 + 192 -> 448
        assert_eq!(trimmed_audio_ctx(16_000 * 27), None);
        for secs in 1..27 {
            if let Some(ctx) = trimmed_audio_ctx(16_000 * secs) {
                let covered = ctx * SAMPLES_PER_ENCODER_FRAME;
                assert!(covered >= 16_000 * secs + AUDIO_CTX_MARGIN * SAMPLES_PER_ENCODER_FRAME);
            }
        }
    }

    #[test]
    fn runaway_transcripts_are_recognised() {
        let segment = |text: &str| Segment {
            start_ms: 0,
            end_ms: 0,
            text: text.into(),
            words: vec![],
            closing: None,
        };
        let normal = [segment("How do you approach database optimization?")];
        assert!(!is_runaway(&normal, 16_000 * 2));
        let looped = [segment(
            &"How do you approach database optimization? ".repeat(4),
        )];
        assert!(is_runaway(&looped, 16_000 * 2));
    }

    #[test]
    fn the_token_limit_stops_a_loop_and_leaves_room_for_dense_speech() {
        // A fast speaker (3.5 words a second) naming terms of four tokens each, for 2 s.
        let dense = (3.5 * 2.0 * 4.0) as usize;
        assert!(max_tokens(16_000 * 2) > dense);
        // Well short of whisper's own limit (about 220 tokens) on a short answer.
        assert!(max_tokens(16_000 * 2) < 60);
    }

    #[test]
    fn only_a_stop_question_or_exclamation_mark_closes_a_sentence() {
        for token in [".", " .", "?", "!", ".\"", "?)"] {
            assert!(closes_sentence(token.as_bytes()), "{token:?}");
        }
        for token in ["...", ",", " -", " way", "\"", ""] {
            assert!(!closes_sentence(token.as_bytes()), "{token:?}");
        }
    }

    #[test]
    fn words_join_subword_tokens_and_keep_punctuation() {
        let mut b = WordBuilder::default();
        b.push_token(b" Post", 0, 100, 0.9);
        b.push_token(b"gre", 100, 200, 0.7);
        b.push_token(b"SQL", 200, 300, 0.8);
        b.push_token(b",", 300, 310, 0.9);
        b.push_token(b" Redis", 320, 500, 0.6);
        let words = b.finish();
        assert_eq!(words.len(), 2);
        assert_eq!(words[0].word, "PostgreSQL,");
        assert_eq!((words[0].start_ms, words[0].end_ms), (0, 310));
        assert!((words[0].probability - 0.825).abs() < 1e-6);
        assert_eq!(words[1].word, "Redis");
    }

    #[test]
    fn words_keep_multibyte_characters_split_across_tokens() {
        let mut b = WordBuilder::default();
        let cafe = " café".as_bytes();
        b.push_token(&cafe[..4], 0, 50, 1.0);
        b.push_token(&cafe[4..], 50, 90, 1.0);
        assert_eq!(b.finish()[0].word, "café");
    }

    #[test]
    fn annotation_words_are_dropped() {
        let mut b = WordBuilder::default();
        for w in [
            " [BLANK",
            "_AUDIO]",
            " yes",
            " (wind",
            " blowing)",
            " indeed",
        ] {
            b.push_token(w.as_bytes(), 0, 10, 1.0);
        }
        let words: Vec<String> = b.finish().into_iter().map(|w| w.word).collect();
        assert_eq!(words, ["yes", "indeed"]);
    }

    #[test]
    fn missing_and_corrupt_models_are_named() {
        let scratch = viva_test_support::scratch_dir("stt-models");
        let dir = scratch.path();
        let missing = dir.join("nope.bin");
        let err = SpeechToText::load(&SttConfig::new(&missing)).err().unwrap();
        assert!(matches!(err, SttError::ModelMissing { .. }));
        assert!(err.to_string().contains("scripts/setup"));

        let empty = dir.join("empty.bin");
        std::fs::write(&empty, b"").unwrap();
        let err = SpeechToText::load(&SttConfig::new(&empty)).err().unwrap();
        assert!(matches!(err, SttError::ModelInvalid { .. }), "{err}");

        let junk = dir.join("junk.bin");
        std::fs::write(&junk, b"not a model at all").unwrap();
        let err = SpeechToText::load(&SttConfig::new(&junk)).err().unwrap();
        assert!(err.to_string().contains("ggml magic"), "{err}");

        // A right magic with a zeroed header must be an error, not a crash: whisper.cpp
        // frees buffers it never allocated when handed one (a SIGSEGV every few runs).
        let zeroed = dir.join("zeroed.bin");
        let mut bytes = GGML_MAGIC.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 64]);
        std::fs::write(&zeroed, bytes).unwrap();
        let err = SpeechToText::load(&SttConfig::new(&zeroed)).err().unwrap();
        assert!(err.to_string().contains("n_vocab = 0"), "{err}");

        // The header of whisper tiny.en, then nothing: a download cut off.
        let truncated = dir.join("truncated.bin");
        let tiny_en: [i32; HPARAMS] = [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1];
        let mut bytes = GGML_MAGIC.to_le_bytes().to_vec();
        bytes.extend(tiny_en.iter().flat_map(|v| v.to_le_bytes()));
        bytes.extend_from_slice(&[0u8; 4096]);
        std::fs::write(&truncated, bytes).unwrap();
        let err = SpeechToText::load(&SttConfig::new(&truncated))
            .err()
            .unwrap();
        assert!(err.to_string().contains("cut off"), "{err}");
    }

    #[test]
    fn implausible_headers_are_refused() {
        let tiny_en = [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1];
        assert_eq!(check_hparams(&tiny_en), Ok(()));
        let mut absurd = tiny_en;
        absurd[4] = 1 << 30;
        assert!(
            check_hparams(&absurd)
                .unwrap_err()
                .contains("n_audio_layer")
        );
        let mut negative = tiny_en;
        negative[9] = -80;
        assert!(
            check_hparams(&negative)
                .unwrap_err()
                .contains("n_mels = -80")
        );
        let mut uneven = tiny_en;
        uneven[3] = 5;
        assert!(
            check_hparams(&uneven)
                .unwrap_err()
                .contains("attention heads")
        );
    }
}
