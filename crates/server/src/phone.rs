//! Phone interviews: callers identify their interview by typing its PIN, then the interview
//! runs on the call exactly as in a browser; and the server can dial a candidate.
//!
//! The keypad logic ([`PinPad`]) is pure; [`Greeter`] plays the prompts on a live call.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use viva_call::{Call, CallInput, CallOutput, FRAME_MS};
use viva_media::PcmFrame;
use viva_speech::tts::Tts;
use viva_store::{Interview, PIN_DIGITS, Status, Timestamp};
use viva_transport_sip::{DialError, DialProgress, IncomingCall};

use crate::live::{Carrier, ConnectionId};
use crate::pins::{PinCaller, PinRefusal};
use crate::serve::AppState;

/// Phone audio: 8 kHz G.711 or mu-law media streams.
pub const PHONE_RATE: u32 = 8_000;
/// Wrong or missing PINs before the call is ended politely.
const PIN_ATTEMPTS: u32 = 3;
/// How long the caller may take to type the PIN after a prompt (or since the last key).
const KEY_TIMEOUT: Duration = Duration::from_secs(12);

/// Collects a PIN from keypad presses: digits until `#` or the last digit of a full PIN;
/// `*` starts over.
#[derive(Debug, Default)]
pub struct PinPad {
    digits: String,
}

impl PinPad {
    /// A key was pressed; returns the PIN typed when it is complete.
    pub fn press(&mut self, key: char) -> Option<String> {
        match key {
            '0'..='9' => {
                self.digits.push(key);
                (self.digits.len() == PIN_DIGITS).then(|| std::mem::take(&mut self.digits))
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

// The welcome prompt says how many digits to type.
const _: () = assert!(
    PIN_DIGITS == 10,
    "update the welcome prompt's \"ten digit\""
);

/// The phone prompts, synthesized once at 8 kHz.
pub struct Prompts {
    welcome: Vec<f32>,
    retry: Vec<f32>,
    connecting: Vec<f32>,
    goodbye: Vec<f32>,
    locked_out: Vec<f32>,
}

impl Prompts {
    pub fn synthesize(tts: &Tts) -> anyhow::Result<Prompts> {
        let say = |text: &str| -> anyhow::Result<Vec<f32>> {
            let audio = tts.synthesize(text)?;
            Ok(viva_media::resample(&audio, tts.sample_rate(), PHONE_RATE)?)
        };
        Ok(Prompts {
            welcome: say(
                "Hello, and welcome to your interview. This call is recorded. \
                 Please enter your ten digit interview PIN, followed by the hash key.",
            )?,
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
        })
    }
}

/// Why the greeting ended without an interview.
enum Unmatched {
    /// The caller hung up.
    HungUp,
    /// No usable PIN after every attempt, or PIN entry is locked out.
    NoPin,
}

/// Plays prompts and reads keys on one phone call, before the interview takes it over.
struct Greeter<'a> {
    call: &'a mut Call,
    /// Where the next prompt frame goes on the call clock.
    position: Duration,
}

impl Greeter<'_> {
    /// Plays `audio`, paced in real time; stops early when the caller presses a key (which is
    /// returned, so typing over the prompt works).
    async fn play(&mut self, audio: &[f32]) -> Result<Option<char>, Unmatched> {
        let samples_per_frame = (PHONE_RATE * FRAME_MS / 1000) as usize;
        let start = Instant::now();
        for (i, chunk) in audio.chunks(samples_per_frame).enumerate() {
            let due = start + Duration::from_millis(u64::from(FRAME_MS) * i as u64);
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(due) => break,
                    input = self.call.inbound.recv() => match input {
                        Some(CallInput::Dtmf(key)) => {
                            let _ = self.call.outbound.send(CallOutput::ClearPlayback).await;
                            return Ok(Some(key));
                        }
                        Some(CallInput::Audio(_)) => {}
                        Some(CallInput::HangUp) | None => return Err(Unmatched::HungUp),
                    },
                }
            }
            let Ok(frame) = PcmFrame::new(chunk.to_vec(), PHONE_RATE, self.position) else {
                continue;
            };
            self.position += Duration::from_millis(u64::from(FRAME_MS));
            if self
                .call
                .outbound
                .send(CallOutput::Audio(frame))
                .await
                .is_err()
            {
                return Err(Unmatched::HungUp);
            }
        }
        // A pause between prompts on the call clock, so the transport sees a new talkspurt.
        self.position += Duration::from_millis(200);
        Ok(None)
    }

    /// The next key, or None after [`KEY_TIMEOUT`] of quiet.
    async fn key(&mut self) -> Result<Option<char>, Unmatched> {
        let deadline = Instant::now() + KEY_TIMEOUT;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return Ok(None),
                input = self.call.inbound.recv() => match input {
                    Some(CallInput::Dtmf(key)) => return Ok(Some(key)),
                    Some(CallInput::Audio(_)) => {}
                    Some(CallInput::HangUp) | None => return Err(Unmatched::HungUp),
                },
            }
        }
    }

    /// Reads one PIN: keys until the pad completes one, or None on a timeout.
    async fn read_pin(&mut self, first: Option<char>) -> Result<Option<String>, Unmatched> {
        let mut pad = PinPad::default();
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

/// Answers every incoming SIP call, each on its own task.
pub async fn answer_calls(
    state: AppState,
    mut incoming: tokio::sync::mpsc::Receiver<IncomingCall>,
) {
    while let Some(incoming) = incoming.recv().await {
        let job = state.config.sip.numbers.get(&incoming.dialled).cloned();
        tracing::info!(caller = %incoming.caller, dialled = %incoming.dialled, ?job, "incoming phone call");
        let caller = pin_caller(&incoming);
        tokio::spawn(answer(state.clone(), incoming.call, caller, job));
    }
}

/// Who is typing PINs on a SIP call: through a trunk every caller comes from the trunk's
/// address, so the caller's number tells them apart; a call from elsewhere is its address.
fn pin_caller(incoming: &IncomingCall) -> PinCaller {
    match &incoming.trunk {
        Some(trunk) if !incoming.caller.is_empty() => {
            PinCaller::Number(format!("{trunk}:{}", incoming.caller))
        }
        _ => PinCaller::Address(incoming.source),
    }
}

/// Answers a phone call: asks for the PIN and runs the interview it names on the call.
/// `job` restricts the PINs accepted to interviews for one job (a per-job number).
pub async fn answer(state: AppState, mut call: Call, caller: PinCaller, job: Option<String>) {
    let prompts = Arc::clone(&state.prompts);
    let matched = greet(&state, &mut call, &prompts, &caller, job.as_deref()).await;
    match matched {
        Ok(interview) => start_interview(&state, call, &interview).await,
        Err(Unmatched::HungUp) => {
            tracing::info!("the caller hung up before their interview started");
        }
        Err(Unmatched::NoPin) => {
            tracing::info!("no valid PIN: ending the call");
            let _ = call.outbound.send(CallOutput::HangUp).await;
        }
    }
}

async fn greet(
    state: &AppState,
    call: &mut Call,
    prompts: &Prompts,
    caller: &PinCaller,
    job: Option<&str>,
) -> Result<Interview, Unmatched> {
    let mut greeter = Greeter {
        call,
        position: Duration::ZERO,
    };
    // A caller already locked out is told at once instead of typing in vain; the call counts
    // as an attempt refused.
    if state.pins.refuse_if_locked_out(caller) {
        tracing::info!(?caller, "a locked-out caller called: ending the call");
        greeter.play(&prompts.locked_out).await?;
        return Err(Unmatched::NoPin);
    }
    let mut prompt = &prompts.welcome;
    for _ in 0..PIN_ATTEMPTS {
        let typed = greeter.play(prompt).await?;
        prompt = &prompts.retry;
        let Some(pin) = greeter.read_pin(typed).await? else {
            continue;
        };
        match state
            .pins
            .open(caller, || find_by_pin(state, &pin, job))
            .await
        {
            Ok(interview) => {
                greeter.play(&prompts.connecting).await?;
                return Ok(interview);
            }
            Err(PinRefusal::NoMatch) => tracing::info!("a caller entered an unknown PIN"),
            Err(PinRefusal::LockedOut(_)) => {
                greeter.play(&prompts.locked_out).await?;
                return Err(Unmatched::NoPin);
            }
        }
    }
    greeter.play(&prompts.goodbye).await?;
    Err(Unmatched::NoPin)
}

/// The interview a PIN opens, if it may be joined by phone now.
pub async fn find_by_pin(state: &AppState, pin: &str, job: Option<&str>) -> Option<Interview> {
    let interview = state.store.interview_by_pin(pin).await.ok().flatten()?;
    let joinable = interview.status == Status::Scheduled
        || (interview.status == Status::InProgress && !state.live.is_claimed(&interview.id));
    (joinable && job.is_none_or(|job| job == interview.job)).then_some(interview)
}

/// Runs `interview` on a phone `call` that is already connected.
pub async fn start_interview(state: &AppState, call: Call, interview: &Interview) {
    let conn = state.next_connection.fetch_add(1, Ordering::Relaxed);
    if !state.live.claim(&interview.id, conn) {
        tracing::warn!(interview_id = %interview.id, "the interview is already live elsewhere");
        let _ = call.outbound.send(CallOutput::HangUp).await;
        return;
    }
    run_claimed(state, call, interview, conn).await;
}

/// Runs `interview` on `call` for connection `conn`, which holds the interview's claim, and
/// releases it when the call lets go of this connection: the interview ended, or the caller
/// hung up (they may call back within the grace period, and then need the claim).
async fn run_claimed(state: &AppState, call: Call, interview: &Interview, conn: ConnectionId) {
    let carrier = Carrier::Phone;
    match state.live.join(interview, carrier).await {
        Ok(live) => {
            let released = live.attach(conn, call, carrier);
            let _ = released.await;
            tracing::info!(interview_id = %interview.id, "the phone call left the interview");
        }
        Err(err) => {
            tracing::warn!(interview_id = %interview.id, ?err, "cannot start the phone interview");
            let _ = call.outbound.send(CallOutput::HangUp).await;
        }
    }
    state.live.release(&interview.id, conn);
}

/// Calls the candidate (the interview's claim is held by `conn`) and, once answered, runs the
/// interview on the call. Where the call got is kept as the interview's dial status.
pub async fn dial(state: AppState, interview: Interview, target: String, conn: ConnectionId) {
    let Some(sip) = state.sip.clone() else {
        state.live.release(&interview.id, conn);
        return;
    };
    let record = |status: &'static str| {
        let store = state.store.clone();
        let id = interview.id.clone();
        async move {
            if let Err(err) = store.set_dial_status(&id, status, Timestamp::now()).await {
                tracing::warn!(%err, "cannot record the dial status");
            }
        }
    };
    let (progress_tx, mut progress) = tokio::sync::mpsc::unbounded_channel();
    let dialing = sip.dial(&interview.id, &target, progress_tx);
    tokio::pin!(dialing);
    let result = loop {
        tokio::select! {
            result = &mut dialing => break result,
            Some(step) = progress.recv() => {
                if let DialProgress::Ringing = step {
                    record("ringing").await;
                }
            }
        }
    };
    match result {
        Ok(call) => {
            record("answered").await;
            run_claimed(&state, call, &interview, conn).await;
        }
        Err(err) => {
            let status = match err {
                DialError::Busy => "busy",
                DialError::NoAnswer | DialError::Timeout => "no_answer",
                DialError::Rejected(_) => "rejected",
                _ => "failed",
            };
            tracing::info!(interview_id = %interview.id, %err, status, "the candidate's phone did not answer");
            record(status).await;
            state.live.release(&interview.id, conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &str) -> Vec<String> {
        let mut pad = PinPad::default();
        keys.chars().filter_map(|k| pad.press(k)).collect()
    }

    #[test]
    fn a_pin_ends_with_hash_or_its_last_digit() {
        assert_eq!(PIN_DIGITS, 10);
        assert_eq!(typed("1234567890"), ["1234567890"]);
        assert_eq!(
            typed("1234567890#"),
            ["1234567890"],
            "a hash after a full PIN adds nothing"
        );
        assert_eq!(
            typed("123456#"),
            ["123456"],
            "older, shorter PINs end with #"
        );
        assert_eq!(typed("#"), Vec::<String>::new());
        assert_eq!(typed("12*0987654321"), ["0987654321"], "star starts over");
        assert_eq!(
            typed("1A2B3C4D5D67890"),
            ["1234567890"],
            "letters are ignored"
        );
        assert_eq!(typed("11111111112222222222"), ["1111111111", "2222222222"]);
    }
}
