//! Phone interviews: a caller types their interview's PIN at the [prompt](viva_call::prompt),
//! then the interview runs on the call exactly as in a browser; and the server can dial a
//! candidate. The same way in for SIP calls and CPaaS media streams.

use viva_call::prompt::{PinCheck, PromptEnd, ask_for_pin};
use viva_call::{Call, CallOutput, SystemClock};
use viva_store::{Interview, Timestamp};
use viva_transport_sip::{DialError, DialProgress, IncomingCall};

use crate::admission::{Carrier, Refusal};
use crate::live::{Claim, JoinError};
use crate::metrics::CallTransport;
use crate::pins::{PinCaller, PinRefusal};
use crate::state::AppState;

/// What a PIN (or an interview id) that may be joined by phone opens.
pub enum Opened {
    /// The interview, held for this call (with its seat, if the call is to start it).
    Held(Box<Interview>, Claim),
    /// The interview has not started and every seat is taken: the caller is told to call
    /// again. Only a right PIN gets here, so it tells a guesser nothing a join would not.
    AtCapacity,
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

/// Answers a phone call: asks for the PIN and runs the interview it opens on the call.
/// `job` restricts the PINs accepted to interviews for one job (a per-job number).
async fn answer(state: AppState, mut call: Call, caller: PinCaller, job: Option<String>) {
    let clock = SystemClock::start();
    // A caller already locked out is told at once instead of typing in vain.
    let locked_out = state.pins.refuse_if_locked_out(&caller);
    let opened = ask_for_pin(&mut call, &clock, &state.prompts, locked_out, |pin| {
        let (state, caller, job) = (&state, &caller, job.as_deref());
        async move {
            match state
                .pins
                .open(caller, || open_by_pin(state, &pin, job))
                .await
            {
                Ok(Opened::Held(interview, claim)) => PinCheck::Opens((interview, claim)),
                Ok(Opened::AtCapacity) => {
                    state.live.turned_away(CallTransport::Sip);
                    PinCheck::AtCapacity
                }
                Err(PinRefusal::NoMatch) => PinCheck::NoMatch,
                Err(PinRefusal::LockedOut(_)) => PinCheck::LockedOut,
            }
        }
    })
    .await;
    match opened {
        Ok((interview, mut claim)) => run(&state, call, &interview, &mut claim).await,
        Err(PromptEnd::HungUp) => {
            tracing::info!("the caller hung up before their interview started");
        }
        Err(PromptEnd::NoPin) => {
            tracing::info!(?caller, "no PIN opened an interview: ending the call");
            let _ = call.outbound.send(CallOutput::HangUp).await;
        }
        Err(PromptEnd::AtCapacity) => {
            let _ = call.outbound.send(CallOutput::HangUp).await;
        }
    }
}

/// What a PIN opens for this call, if it may be joined by phone now. Every reason it may not
/// (no such PIN, over, held by another connection, another job) is the same `None`: a caller
/// learns nothing about PINs that do not open.
pub async fn open_by_pin(state: &AppState, pin: &str, job: Option<&str>) -> Option<Opened> {
    let interview = state.store.interview_by_pin(pin).await.ok().flatten()?;
    hold(state, interview, job)
}

/// `interview`, held for a new phone connection, if it may be joined by phone now.
pub fn hold(state: &AppState, interview: Interview, job: Option<&str>) -> Option<Opened> {
    let claimed = state
        .live
        .may_join(&interview, Carrier::Phone, job)
        .and_then(|()| state.live.claim(&interview.id, state.next_connection()));
    match claimed {
        Ok(claim) => Some(Opened::Held(Box::new(interview), claim)),
        Err(Refusal::AtCapacity) => Some(Opened::AtCapacity),
        Err(_) => None,
    }
}

/// Runs `interview` on a phone `call` whose connection holds it by `claim`, until the call
/// lets go of the connection: the interview ended, or the caller hung up (they may call back
/// within the grace period; the claim is released for that).
pub async fn run(state: &AppState, call: Call, interview: &Interview, claim: &mut Claim) {
    match state
        .live
        .join(interview, claim, call, Carrier::Phone)
        .await
    {
        Ok(joined) => {
            let _ = joined.released.await;
            tracing::info!(interview_id = %interview.id, "the phone call left the interview");
        }
        Err(err) => {
            // The call was handed over and dropped with the error: the transport hangs up.
            let reason = match err {
                JoinError::Refused(refusal) => format!("{refusal:?}"),
                JoinError::Failed(err) => format!("{err:#}"),
            };
            tracing::warn!(interview_id = %interview.id, reason, "cannot run the phone interview");
        }
    }
}

/// Calls the candidate (the interview held by `claim`, with the seat of its call) and, once
/// answered, runs the interview on the call. Where the call got is kept as the interview's
/// dial status.
pub async fn dial(state: AppState, interview: Interview, target: String, mut claim: Claim) {
    let Some(sip) = state.sip.clone() else {
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
            run(&state, call, &interview, &mut claim).await;
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
        }
    }
}
