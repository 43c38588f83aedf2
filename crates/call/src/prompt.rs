//! The phone prompt: what a caller hears before their interview starts, and the PIN they
//! type. The keypad logic ([`PinPad`]) is pure; [`ask_for_pin`] plays the prompts on a live
//! call, timed by a [`Clock`], and asks the caller of this function whether a PIN opens an
//! interview, so the prompt knows nothing of interviews, databases or guessing limits.

use std::future::Future;
use std::time::Duration;

use viva_media::PcmFrame;
use viva_speech::{Tts, TtsError};

use crate::clock::Clock;
use crate::port::{Call, CallInput, CallOutput, FRAME_MS, frame_samples};

/// Wrong or missing PINs before the call is ended politely.
const PIN_ATTEMPTS: u32 = 3;
/// How long the caller may take to type the PIN after a prompt (or since the last key).
pub const KEY_TIMEOUT: Duration = Duration::from_secs(12);
/// Silence between two prompts.
const PAUSE: Duration = Duration::from_millis(200);

/// Collects a PIN from keypad presses: digits until `#` or the last digit of a full PIN;
/// `*` starts over.
#[derive(Debug)]
pub struct PinPad {
    digits: String,
    length: usize,
}

impl PinPad {
    /// A keypad for PINs of `length` digits (shorter ones end with `#`).
    pub fn new(length: usize) -> Self {
        Self {
            digits: String::new(),
            length,
        }
    }

    /// A key was pressed; returns the PIN typed when it is complete.
    pub fn press(&mut self, key: char) -> Option<String> {
        match key {
            '0'..='9' => {
                self.digits.push(key);
                (self.digits.len() == self.length).then(|| std::mem::take(&mut self.digits))
            }
            '#' if !self.digits.is_empty() => Some(std::mem::take(&mut self.digits)),
            '*' => {
                self.digits.clear();
                None
            }
            _ => None,
        }
    }

    /// Whether any digit has been typed since the last PIN.
    pub fn is_empty(&self) -> bool {
        self.digits.is_empty()
    }
}

/// The prompts, synthesized once at the phone's rate.
pub struct PromptAudio {
    rate: u32,
    pin_digits: usize,
    welcome: Vec<f32>,
    retry: Vec<f32>,
    connecting: Vec<f32>,
    goodbye: Vec<f32>,
    locked_out: Vec<f32>,
    at_capacity: Vec<f32>,
}

impl PromptAudio {
    /// Speaks every prompt with `tts` at `rate` (the calls' output rate), for PINs of
    /// `pin_digits` digits.
    pub fn synthesize(tts: &Tts, rate: u32, pin_digits: usize) -> Result<Self, TtsError> {
        let say = |text: &str| -> Result<Vec<f32>, TtsError> {
            let audio = tts.synthesize(text)?;
            // A voice's rate and a phone's are both multiples of 50 Hz: resampling works.
            Ok(viva_media::resample(&audio, tts.sample_rate(), rate).unwrap_or_default())
        };
        Ok(Self {
            rate,
            pin_digits,
            welcome: say(&format!(
                "Hello, and welcome to your interview. This call is recorded. \
                 Please enter your {pin_digits} digit interview PIN, followed by the hash key."
            ))?,
            retry: say(
                "Sorry, that PIN was not recognised. Please enter it again, followed by the hash key.",
            )?,
            connecting: say("Thank you. Your interview starts now.")?,
            goodbye: say(
                "Sorry, we could not find your interview. Please check your PIN with the recruiter. Goodbye.",
            )?,
            locked_out: say(
                "Sorry, there have been too many wrong PINs. Please try again later. Goodbye.",
            )?,
            at_capacity: say(
                "Sorry, all our interviewers are busy right now. Please call again in a few minutes. Goodbye.",
            )?,
        })
    }

    /// The rate the prompts were made for.
    pub fn rate(&self) -> u32 {
        self.rate
    }
}

/// What a typed PIN opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck<T> {
    /// This interview, which the call now joins.
    Opens(T),
    /// Nothing that can be joined now.
    NoMatch,
    /// Too many wrong PINs: this one was not checked.
    LockedOut,
    /// The PIN is right, but the server carries as many calls as it can right now.
    AtCapacity,
}

/// How the prompt ended without an interview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptEnd {
    /// The caller hung up.
    HungUp,
    /// No PIN opened anything after every attempt, or PIN entry is locked out; the caller
    /// heard why, and the call should be hung up.
    NoPin,
    /// The server had no room for the interview; the caller heard so, and the call should be
    /// hung up.
    AtCapacity,
}

/// Greets the caller and reads PINs until `check` opens an interview: up to three attempts,
/// each prompt playable over (a key press stops it). `locked_out`: the caller is locked out
/// before typing anything, and is told so at once.
///
/// Every prompt is a talkspurt of its own: frames on the `clock`, then
/// [`CallOutput::EndOfSpeech`] (or [`CallOutput::ClearPlayback`] when a key cut it short).
pub async fn ask_for_pin<T, F, Fut>(
    call: &mut Call,
    clock: &dyn Clock,
    audio: &PromptAudio,
    locked_out: bool,
    mut check: F,
) -> Result<T, PromptEnd>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = PinCheck<T>>,
{
    let mut prompt = Prompt {
        call,
        clock,
        position: clock.now(),
    };
    if locked_out {
        prompt.play(&audio.locked_out).await?;
        return Err(PromptEnd::NoPin);
    }
    let mut say = &audio.welcome;
    for _ in 0..PIN_ATTEMPTS {
        let typed = prompt.play(say).await?;
        say = &audio.retry;
        let Some(pin) = prompt.read_pin(typed, audio.pin_digits).await? else {
            continue;
        };
        match check(pin).await {
            PinCheck::Opens(opened) => {
                prompt.play(&audio.connecting).await?;
                return Ok(opened);
            }
            PinCheck::NoMatch => tracing::info!("a caller entered an unknown PIN"),
            PinCheck::LockedOut => {
                prompt.play(&audio.locked_out).await?;
                return Err(PromptEnd::NoPin);
            }
            PinCheck::AtCapacity => {
                prompt.play(&audio.at_capacity).await?;
                return Err(PromptEnd::AtCapacity);
            }
        }
    }
    prompt.play(&audio.goodbye).await?;
    Err(PromptEnd::NoPin)
}

/// Tells a caller the server has no room for their call ("all our interviewers are busy,
/// please call again in a few minutes"); the call should be hung up after it. Waits a moment
/// after the last word, so a far end that plays from a buffer (a CPaaS) gets it all out
/// before the hang-up.
pub async fn turn_away(
    call: &mut Call,
    clock: &dyn Clock,
    audio: &PromptAudio,
) -> Result<(), PromptEnd> {
    let mut prompt = Prompt {
        call,
        clock,
        position: clock.now(),
    };
    prompt.play(&audio.at_capacity).await?;
    clock.sleep_until(prompt.position).await;
    Ok(())
}

/// Plays prompts and reads keys on one call.
struct Prompt<'a> {
    call: &'a mut Call,
    clock: &'a dyn Clock,
    /// Where the next prompt frame goes on the clock.
    position: Duration,
}

impl Prompt<'_> {
    /// Plays `audio` in real time; stops early when the caller presses a key (which is
    /// returned, so typing over the prompt works).
    async fn play(&mut self, audio: &[f32]) -> Result<Option<char>, PromptEnd> {
        let rate = self.call.output_rate;
        let frame = Duration::from_millis(u64::from(FRAME_MS));
        self.position = self.position.max(self.clock.now());
        for chunk in audio.chunks(frame_samples(rate)) {
            let due = self.clock.sleep_until(self.position);
            tokio::pin!(due);
            loop {
                tokio::select! {
                    () = &mut due => break,
                    input = self.call.inbound.recv() => match input {
                        Some(CallInput::Dtmf(key)) => {
                            let _ = self.call.outbound.send(CallOutput::ClearPlayback).await;
                            return Ok(Some(key));
                        }
                        Some(CallInput::Audio(_)) => {}
                        Some(CallInput::HangUp) | None => return Err(PromptEnd::HungUp),
                    },
                }
            }
            let mut samples = chunk.to_vec();
            samples.resize(frame_samples(rate), 0.0);
            let Ok(frame_out) = PcmFrame::new(samples, rate, self.position) else {
                continue;
            };
            self.position += frame;
            if self
                .call
                .outbound
                .send(CallOutput::Audio(frame_out))
                .await
                .is_err()
            {
                return Err(PromptEnd::HungUp);
            }
        }
        let _ = self.call.outbound.send(CallOutput::EndOfSpeech).await;
        self.position += PAUSE;
        Ok(None)
    }

    /// The next key, or None after [`KEY_TIMEOUT`] of quiet.
    async fn key(&mut self) -> Result<Option<char>, PromptEnd> {
        let deadline = self.clock.sleep_until(self.clock.now() + KEY_TIMEOUT);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => return Ok(None),
                input = self.call.inbound.recv() => match input {
                    Some(CallInput::Dtmf(key)) => return Ok(Some(key)),
                    Some(CallInput::Audio(_)) => {}
                    Some(CallInput::HangUp) | None => return Err(PromptEnd::HungUp),
                },
            }
        }
    }

    /// Reads one PIN: keys until the pad completes one, or None on a timeout.
    async fn read_pin(
        &mut self,
        first: Option<char>,
        digits: usize,
    ) -> Result<Option<String>, PromptEnd> {
        let mut pad = PinPad::new(digits);
        let mut next = first;
        loop {
            let key = match next.take() {
                Some(key) => key,
                None => match self.key().await? {
                    Some(key) => key,
                    None if pad.is_empty() => return Ok(None),
                    // Typed some digits, then stopped: try what is there.
                    None => return Ok(pad.press('#')),
                },
            };
            if let Some(pin) = pad.press(key) {
                return Ok(Some(pin));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Mutex;

    use super::*;
    use crate::clock::{ComputeTime, VirtualClock};
    use crate::port::CallPeer;

    fn typed(keys: &str) -> Vec<String> {
        let mut pad = PinPad::new(10);
        keys.chars().filter_map(|k| pad.press(k)).collect()
    }

    #[test]
    fn a_pin_ends_with_hash_or_its_last_digit() {
        assert_eq!(typed("1234567890"), ["1234567890"]);
        assert_eq!(
            typed("1234567890#"),
            ["1234567890"],
            "a hash after a full PIN adds nothing"
        );
        assert_eq!(typed("123456#"), ["123456"], "shorter PINs end with #");
        assert_eq!(typed("#"), Vec::<String>::new());
        assert_eq!(typed("12*0987654321"), ["0987654321"], "star starts over");
        assert_eq!(
            typed("1A2B3C4D5D67890"),
            ["1234567890"],
            "letters are ignored"
        );
        assert_eq!(typed("11111111112222222222"), ["1111111111", "2222222222"]);
    }

    /// Prompts of a given length in frames (a tone, so frames are easy to count).
    fn audio(frames: usize) -> PromptAudio {
        let prompt = || vec![0.2; frames * 160];
        PromptAudio {
            rate: 8_000,
            pin_digits: 4,
            welcome: prompt(),
            retry: prompt(),
            connecting: prompt(),
            goodbye: prompt(),
            locked_out: prompt(),
            at_capacity: prompt(),
        }
    }

    /// Collects what the caller side hears, (time, output) in order, until the call is
    /// dropped; the call's channel is bounded, so this must run while the prompt plays.
    fn record(
        peer: CallPeer,
        clock: Arc<VirtualClock>,
    ) -> (
        tokio::sync::mpsc::Sender<CallInput>,
        tokio::task::JoinHandle<Vec<(Duration, CallOutput)>>,
    ) {
        let CallPeer {
            inbound,
            mut outbound,
        } = peer;
        let recorder = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(output) = outbound.recv().await {
                seen.push((clock.now(), output));
            }
            seen
        });
        (inbound, recorder)
    }

    fn talkspurts(seen: &[(Duration, CallOutput)]) -> Vec<usize> {
        let mut spurts = vec![0];
        for (_, output) in seen {
            match output {
                CallOutput::Audio(_) => *spurts.last_mut().unwrap() += 1,
                CallOutput::EndOfSpeech | CallOutput::ClearPlayback => spurts.push(0),
                CallOutput::HangUp => {}
            }
        }
        spurts.pop();
        spurts
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_caller_types_over_the_welcome_and_is_let_in() {
        let clock = Arc::new(VirtualClock::start(ComputeTime::Free).unwrap());
        let (mut call, peer) = Call::pair("sip", 8_000);
        let audio = audio(50);
        let (keys, recorder) = record(peer, clock.clone());
        // The line stays up after the typing (a dropped sender is a hang-up).
        let _line = keys.clone();
        let typist = {
            let clock = clock.clone();
            tokio::spawn(async move {
                // Half a second into the one-second welcome, four keys 300 ms apart.
                for (n, key) in "4711".chars().enumerate() {
                    clock
                        .sleep_until(Duration::from_millis(490 + 300 * n as u64))
                        .await;
                    keys.send(CallInput::Dtmf(key)).await.unwrap();
                }
            })
        };
        let checked = Arc::new(Mutex::new(Vec::new()));
        let opened = {
            let checked = checked.clone();
            ask_for_pin(&mut call, clock.as_ref(), &audio, false, |pin| {
                let checked = checked.clone();
                async move {
                    checked.lock().await.push(pin.clone());
                    if pin == "4711" {
                        PinCheck::Opens("interview-7")
                    } else {
                        PinCheck::NoMatch
                    }
                }
            })
            .await
        };
        assert_eq!(opened, Ok("interview-7"));
        assert_eq!(*checked.lock().await, ["4711"]);
        typist.await.unwrap();
        drop(call);
        let seen = recorder.await.unwrap();
        // The welcome cut off by the first key (25 frames in half a second), then the whole
        // "starts now" prompt.
        assert_eq!(talkspurts(&seen), [25, 50]);
        assert!(matches!(seen[25].1, CallOutput::ClearPlayback));
        assert!(matches!(seen.last().unwrap().1, CallOutput::EndOfSpeech));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn silence_and_wrong_pins_end_with_a_goodbye_after_three_attempts() {
        let clock = Arc::new(VirtualClock::start(ComputeTime::Free).unwrap());
        let (mut call, peer) = Call::pair("sip", 8_000);
        let audio = audio(10);
        let (_keys, recorder) = record(peer, clock.clone());
        // The caller never types: each attempt waits the key timeout after its prompt.
        let ended = ask_for_pin(
            &mut call,
            clock.as_ref(),
            &audio,
            false,
            |_pin: String| async { PinCheck::<()>::NoMatch },
        )
        .await;
        assert_eq!(ended, Err(PromptEnd::NoPin));
        // Three prompts (their last frame goes out at 180 ms), each followed by the key
        // timeout, then the goodbye.
        let last_frame = Duration::from_millis(180);
        let expected = 3 * (last_frame + KEY_TIMEOUT) + last_frame;
        // Tokio's timers round each sleep up to the next millisecond.
        assert!(
            clock.now() >= expected && clock.now() < expected + Duration::from_millis(50),
            "{:?}",
            clock.now()
        );
        drop(call);
        assert_eq!(talkspurts(&recorder.await.unwrap()), [10, 10, 10, 10]);
    }

    async fn never_checked(_pin: String) -> PinCheck<()> {
        panic!("a locked-out caller's PIN is never checked")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_locked_out_caller_is_told_at_once_and_a_hang_up_ends_the_prompt() {
        let clock = Arc::new(VirtualClock::start(ComputeTime::Free).unwrap());
        let (mut call, peer) = Call::pair("sip", 8_000);
        let audio = audio(10);
        let (keys, recorder) = record(peer, clock.clone());
        let ended = ask_for_pin(&mut call, clock.as_ref(), &audio, true, never_checked).await;
        assert_eq!(ended, Err(PromptEnd::NoPin));
        keys.send(CallInput::HangUp).await.unwrap();
        let hung_up: Result<(), _> = ask_for_pin(
            &mut call,
            clock.as_ref(),
            &audio,
            false,
            |_pin: String| async { PinCheck::NoMatch },
        )
        .await;
        assert_eq!(hung_up, Err(PromptEnd::HungUp));
        drop(call);
        assert_eq!(talkspurts(&recorder.await.unwrap())[0], 10);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_caller_with_no_room_hears_so_and_nothing_after() {
        let clock = Arc::new(VirtualClock::start(ComputeTime::Free).unwrap());
        let (mut call, peer) = Call::pair("stream", 8_000);
        let audio = audio(10);
        let (_keys, recorder) = record(peer, clock.clone());
        turn_away(&mut call, clock.as_ref(), &audio).await.unwrap();
        // The whole prompt was out (its last frame at 180 ms) and the pause after it passed.
        assert!(
            clock.now() >= Duration::from_millis(180) + PAUSE,
            "{:?}",
            clock.now()
        );
        drop(call);
        assert_eq!(talkspurts(&recorder.await.unwrap()), [10]);

        // Typed at the prompt: a right PIN on a full server is told so, not asked again.
        let (mut call, peer) = Call::pair("sip", 8_000);
        let (keys, recorder) = record(peer, clock.clone());
        for key in "1234".chars() {
            keys.send(CallInput::Dtmf(key)).await.unwrap();
        }
        let ended: Result<(), _> = ask_for_pin(
            &mut call,
            clock.as_ref(),
            &audio,
            false,
            |_pin: String| async { PinCheck::AtCapacity },
        )
        .await;
        assert_eq!(ended, Err(PromptEnd::AtCapacity));
        drop(call);
        // The welcome, cut short by the first key, then the whole "busy" prompt.
        let spurts = talkspurts(&recorder.await.unwrap());
        assert!(spurts.len() == 2 && spurts[1] == 10, "{spurts:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_lock_out_met_while_typing_ends_the_call_politely() {
        let clock = Arc::new(VirtualClock::start(ComputeTime::Free).unwrap());
        let (mut call, peer) = Call::pair("sip", 8_000);
        let audio = audio(10);
        let (keys, _recorder) = record(peer, clock.clone());
        for key in "1234".chars() {
            keys.send(CallInput::Dtmf(key)).await.unwrap();
        }
        let ended: Result<(), _> = ask_for_pin(
            &mut call,
            clock.as_ref(),
            &audio,
            false,
            |pin: String| async move {
                assert_eq!(pin, "1234");
                PinCheck::LockedOut
            },
        )
        .await;
        assert_eq!(ended, Err(PromptEnd::NoPin));
    }
}
