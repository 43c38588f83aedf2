//! The live conversation loop: one interview over one [`Call`], whatever network carries it.
//!
//! A transport turns its network call into a [`Call`] (audio frames in, audio frames out, a
//! few events). [`converse`] runs the interview on it in real time: it listens (resampling,
//! VAD, end-of-turn detection that tolerates thinking pauses), transcribes each turn, asks the
//! interviewer ([`Dialogue`]), speaks the reply sentence by sentence, lets the candidate barge
//! in, taps the transcript ([`TurnSink`]) and a stereo recording, and measures each response
//! ([`TurnLatency`]).
//!
//! The decisions live in [`Conversation`], a sans-IO state machine that is told the time;
//! [`converse`] drives it on a [`Clock`]: [`SystemClock`] for live calls, [`VirtualClock`] to
//! run a whole call faster than real time in tests and simulations.
//!
//! ```no_run
//! use std::sync::Arc;
//! use viva_call::{Call, CallInput, CallSetup, SpeechEngines, SystemClock};
//! # async fn demo(
//! #     speech: SpeechEngines,
//! #     setup: CallSetup,
//! #     first_packet: viva_media::PcmFrame,
//! # ) -> Result<(), viva_call::CallError> {
//! // A transport makes a call at its own rate (8 kHz for a phone line) and keeps the peer end.
//! let (call, mut peer) = Call::pair("call-42", 8_000);
//! tokio::spawn(async move {
//!     // ... decode RTP into frames and send them; play what comes back ...
//!     peer.inbound.send(CallInput::Audio(first_packet)).await.ok();
//!     while let Some(output) = peer.outbound.recv().await { /* packetize, send */ }
//! });
//! let summary = viva_call::converse(call, setup, &speech, Arc::new(SystemClock::start())).await?;
//! println!("{} turns, ended by {:?}", summary.turns.len(), summary.ended);
//! # Ok(()) }
//! ```
//!
//! To simulate a call, run it and the simulated caller on a current-thread runtime with a
//! [`VirtualClock`] (`VirtualClock::start(ComputeTime::Measured)`), and have the caller time
//! its frames with the same clock.
//!
//! Around the conversation: [`relay()`] lets one conversation outlive the connections that
//! carry it (a reload, a phone call that fell and calls back), and [`prompt`] greets a phone
//! caller and reads their PIN before the interview starts. Both run on a [`Clock`] too.

#![warn(missing_docs)]

mod clock;
mod conversation;
mod dialogue;
mod error;
mod latency;
mod port;
pub mod prompt;
mod relay;
mod runner;

pub use clock::{Clock, ComputeTime, Sleep, SystemClock, VirtualClock};
pub use conversation::{
    Action, AskId, CallEnd, Conversation, DialogueEvent, Heard, JobId, LineId, TurnTaking,
};
pub use dialogue::{Dialogue, Line, LineKind, Reply, Speaker, Turn, TurnSink};
pub use error::CallError;
pub use latency::{CallObserver, TurnLatency, response_percentile};
pub use port::{
    Call, CallInput, CallOutput, CallPeer, FRAME_MS, MAX_GAP_FILL, PHONE_RATE, frame_samples,
};
pub use relay::{ConnectionId, Departure, RelayHandle, relay};
pub use runner::{CallSetup, CallSummary, SpeechEngines, converse};
