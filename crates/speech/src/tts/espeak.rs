//! The process-wide espeak-ng instance: phonemes for Piper, and plain synthesis for the
//! espeak-ng voice.
//!
//! espeak-ng keeps all of its state (selected voice, text decoder, output buffers) in globals
//! and is not thread-safe, so the one instance lives behind a mutex and every call goes through
//! [`Espeak::lock`].

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_short, c_uint, c_void};
use std::ptr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::TtsError;

/// `espeak_AUDIO_OUTPUT::AUDIO_OUTPUT_SYNCHRONOUS`: `espeak_Synth` returns once every sample
/// has been handed to the callback, on the calling thread.
const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
/// `espeakINITIALIZE_DONT_EXIT`: without it a missing espeak-ng-data calls `exit()`.
const INITIALIZE_DONT_EXIT: c_int = 0x8000;
const CHARS_UTF8: c_int = 1;
/// `phonememode` bit 1: IPA as UTF-8, the alphabet Piper voices are trained on.
const PHONEMES_IPA: c_int = 0x02;
/// `espeak_POSITION_TYPE::POS_CHARACTER`.
const POS_CHARACTER: c_int = 1;
const EE_OK: c_int = 0;

/// `t_espeak_callback`; the event list is not read, so it stays an opaque pointer.
type SynthCallback = unsafe extern "C" fn(*mut c_short, c_int, *mut c_void) -> c_int;

#[link(name = "espeak-ng")]
unsafe extern "C" {
    fn espeak_Initialize(
        output: c_int,
        buflength: c_int,
        path: *const c_char,
        options: c_int,
    ) -> c_int;
    fn espeak_SetSynthCallback(callback: SynthCallback);
    fn espeak_SetVoiceByName(name: *const c_char) -> c_int;
    fn espeak_TextToPhonemes(
        textptr: *mut *const c_void,
        textmode: c_int,
        phonememode: c_int,
    ) -> *const c_char;
    fn espeak_Synth(
        text: *const c_void,
        size: usize,
        position: c_uint,
        position_type: c_int,
        end_position: c_uint,
        flags: c_uint,
        unique_identifier: *mut c_uint,
        user_data: *mut c_void,
    ) -> c_int;
}

/// What espeak-ng remembers between calls.
struct EspeakState {
    sample_rate: u32,
    /// The voice last selected, so a call only reloads the voice when it changes.
    voice: Option<String>,
}

static ESPEAK: Mutex<Option<EspeakState>> = Mutex::new(None);

thread_local! {
    /// Samples of the synthesis in progress. Synchronous mode calls the callback on the thread
    /// that called `espeak_Synth`, which holds the lock, so a thread-local needs no pointer
    /// smuggled through `user_data`.
    static SYNTHESIZED: RefCell<Vec<i16>> = const { RefCell::new(Vec::new()) };
}

unsafe extern "C" fn collect_samples(
    wav: *mut c_short,
    count: c_int,
    _events: *mut c_void,
) -> c_int {
    if let Ok(count) = usize::try_from(count)
        && count > 0
        && !wav.is_null()
    {
        // SAFETY: espeak-ng hands over `count` valid samples at `wav` for the duration of the call.
        let samples = unsafe { std::slice::from_raw_parts(wav, count) };
        SYNTHESIZED.with(|buffer| {
            if let Ok(mut buffer) = buffer.try_borrow_mut() {
                buffer.extend_from_slice(samples);
            }
        });
    }
    0
}

/// Exclusive use of the process-wide espeak-ng.
pub(crate) struct Espeak {
    state: MutexGuard<'static, Option<EspeakState>>,
}

impl Espeak {
    /// Takes the espeak-ng lock, initializing espeak-ng on first use.
    pub(crate) fn lock() -> Result<Espeak, TtsError> {
        let mut state = ESPEAK.lock().unwrap_or_else(PoisonError::into_inner);
        if state.is_none() {
            // SAFETY: called with the lock held; a null path means espeak-ng's built-in data
            // directory, and DONT_EXIT turns a missing directory into an error return.
            let rate = unsafe {
                espeak_Initialize(
                    AUDIO_OUTPUT_SYNCHRONOUS,
                    0,
                    ptr::null(),
                    INITIALIZE_DONT_EXIT,
                )
            };
            let sample_rate = u32::try_from(rate)
                .ok()
                .filter(|&rate| rate > 0)
                .ok_or(TtsError::EspeakUnavailable)?;
            // SAFETY: the callback is a plain function that lives for the whole program.
            unsafe { espeak_SetSynthCallback(collect_samples) };
            *state = Some(EspeakState {
                sample_rate,
                voice: None,
            });
        }
        Ok(Espeak { state })
    }

    fn state(&mut self) -> &mut EspeakState {
        self.state
            .as_mut()
            .expect("Espeak is only built after initialization")
    }

    /// The rate of [`Espeak::synthesize`]'s output, in Hz.
    pub(crate) fn sample_rate(&mut self) -> u32 {
        self.state().sample_rate
    }

    /// Selects an espeak-ng voice (language) such as `en-us`, unless it is already selected.
    pub(crate) fn select_voice(&mut self, voice: &str) -> Result<(), TtsError> {
        let state = self.state();
        if state.voice.as_deref() == Some(voice) {
            return Ok(());
        }
        let unknown = || TtsError::EspeakVoice {
            voice: voice.to_owned(),
        };
        let name = CString::new(voice).map_err(|_| unknown())?;
        // SAFETY: `name` is a valid C string; the lock is held.
        if unsafe { espeak_SetVoiceByName(name.as_ptr()) } != EE_OK {
            state.voice = None;
            return Err(unknown());
        }
        state.voice = Some(voice.to_owned());
        Ok(())
    }

    /// IPA phonemes of `words` in `voice`'s language, words separated by spaces. espeak-ng
    /// returns one clause per call (it cuts at punctuation and abbreviations it recognises);
    /// the clauses are joined with spaces, since the caller already placed the punctuation
    /// that should be heard.
    pub(crate) fn phonemes(&mut self, voice: &str, words: &str) -> Result<String, TtsError> {
        self.select_voice(voice)?;
        let text = c_text(words);
        let mut cursor: *const c_void = text.as_ptr().cast();
        let mut phonemes = String::new();
        // Each call consumes at least one character, so this bound is never reached unless
        // espeak-ng misbehaves; it keeps a library bug from becoming a hang.
        for _ in 0..=words.len() {
            if cursor.is_null() {
                break;
            }
            // SAFETY: `cursor` points into `text`, which outlives the loop; espeak-ng advances
            // it or sets it to null at the end. The returned buffer is copied before the next call.
            let clause = unsafe { espeak_TextToPhonemes(&mut cursor, CHARS_UTF8, PHONEMES_IPA) };
            if clause.is_null() {
                break;
            }
            // SAFETY: espeak-ng returns a NUL-terminated string.
            let clause = unsafe { CStr::from_ptr(clause) }.to_string_lossy();
            let clause = clause.trim();
            if !clause.is_empty() {
                if !phonemes.is_empty() {
                    phonemes.push(' ');
                }
                phonemes.push_str(clause);
            }
        }
        Ok(phonemes)
    }

    /// Speaks `text` with espeak-ng's own formant synthesizer, at [`Espeak::sample_rate`].
    pub(crate) fn synthesize(&mut self, voice: &str, text: &str) -> Result<Vec<f32>, TtsError> {
        self.select_voice(voice)?;
        let text = c_text(text);
        SYNTHESIZED.with(|buffer| buffer.borrow_mut().clear());
        // SAFETY: `text` is a NUL-terminated UTF-8 string that outlives the call; synchronous
        // mode delivers every sample to `collect_samples` before returning.
        let status = unsafe {
            espeak_Synth(
                text.as_ptr().cast(),
                text.as_bytes_with_nul().len(),
                0,
                POS_CHARACTER,
                0,
                CHARS_UTF8 as c_uint,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let samples = SYNTHESIZED.with(|buffer| std::mem::take(&mut *buffer.borrow_mut()));
        if status != EE_OK {
            return Err(TtsError::EspeakSynthesis { code: status });
        }
        Ok(samples
            .into_iter()
            .map(|sample| f32::from(sample) / 32768.0)
            .collect())
    }
}

/// `text` as a C string; a NUL inside the text would cut it short, so it becomes a space.
fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', " ")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phonemizes_english_in_ipa() {
        let mut espeak =
            Espeak::lock().expect("espeak-ng must be installed (libespeak-ng1, espeak-ng-data)");
        let phonemes = espeak
            .phonemes("en-us", "How do you approach database optimization")
            .unwrap();
        assert_eq!(
            phonemes,
            "hˌaʊ dˈuː juː ɐpɹˈoʊtʃ dˈeɪɾəbˌeɪs ˌɑːptɪmᵻzˈeɪʃən"
        );
    }

    #[test]
    fn joins_clauses_espeak_cuts_itself() {
        let mut espeak = Espeak::lock().unwrap();
        let phonemes = espeak.phonemes("en-us", "Ask Dr. Smith").unwrap();
        assert_eq!(phonemes, "ˈæsk dˈɑːktɚ smˈɪθ");
    }

    #[test]
    fn odd_input_gives_no_phonemes_rather_than_failing() {
        let mut espeak = Espeak::lock().unwrap();
        assert_eq!(espeak.phonemes("en-us", "").unwrap(), "");
        assert_eq!(espeak.phonemes("en-us", "...?!").unwrap(), "");
        assert!(
            espeak
                .phonemes("en-us", "nul\0inside")
                .unwrap()
                .contains(' ')
        );
    }

    #[test]
    fn unknown_voice_is_reported_by_name() {
        let mut espeak = Espeak::lock().unwrap();
        let err = espeak.phonemes("xx-nonexistent", "hello").unwrap_err();
        assert!(err.to_string().contains("xx-nonexistent"), "{err}");
        // The instance still works afterwards.
        assert!(!espeak.phonemes("en-us", "hello").unwrap().is_empty());
    }

    #[test]
    fn synthesizes_audible_speech() {
        let mut espeak = Espeak::lock().unwrap();
        let rate = espeak.sample_rate();
        assert_eq!(rate, 22050);
        let samples = espeak.synthesize("en-us", "Hello there.").unwrap();
        let seconds = samples.len() as f32 / rate as f32;
        assert!((0.4..3.0).contains(&seconds), "{seconds} s");
        let rms = (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt();
        assert!(rms > 0.01, "rms {rms}");
    }
}
