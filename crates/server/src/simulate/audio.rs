//! `viva simulate --audio`: the scripted candidate speaks every answer (with the local voice,
//! over an 8 kHz line) into the real conversation loop: VAD, end-of-turn detection, speech to
//! text, the interviewer, speech synthesis and barge-in logic all run as in a live call. The
//! call runs on a virtual clock that charges the real compute time, so it takes less time
//! than the interview would, yet latencies are what a caller would experience.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc::{UnboundedReceiver, error::TryRecvError, unbounded_channel};
use viva_call::{
    Call, CallInput, CallOutput, CallPeer, CallSetup, Clock, ComputeTime, SpeechEngines,
    TurnTaking, VirtualClock, converse, response_percentile,
};
use viva_interview::{Judge, Speaker, Transcript, TranscriptLog, Turn, TurnKind};
use viva_media::{PcmFrame, resample};
use viva_speech::{Tts, word_errors};

use super::ScriptedCandidate;
use crate::cli::SimulateArgs;
use crate::config::Config;
use crate::engines;
use crate::interview_call::{InterviewDialogue, TranscriptSink};

/// The simulated candidate is on a phone line: the hardest audio the loop must handle.
const LINE_RATE: u32 = 8_000;
/// How long the candidate thinks after the interviewer stops.
const THINKING: Duration = Duration::from_millis(600);
/// A simulation that runs longer than this (on the call clock) is stopped.
const LONGEST_CALL: Duration = Duration::from_secs(90 * 60);

/// The turn log written during the simulated call, in the output directory.
const TRANSCRIPT_LOG: &str = "transcript.jsonl";

/// Runs the interview as a call and returns its transcript, as written during the call.
pub fn run(
    config: &Config,
    args: &SimulateArgs,
    judge: Arc<Judge>,
    candidate: ScriptedCandidate,
) -> anyhow::Result<Transcript> {
    let out = &args.out;
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output directory {}", out.display()))?;
    // A fresh call: a log left by an earlier run in the same directory would be continued.
    let log = out.join(TRANSCRIPT_LOG);
    let _ = std::fs::remove_file(&log);
    let tts = Arc::new(engines::text_to_speech(config)?);
    let speech = SpeechEngines {
        stt: engines::speech_to_text(config)?,
        tts: Arc::clone(&tts),
        turn_model: engines::turn_model(config),
    };
    let vocabulary = speech
        .stt
        .vocabulary(&judge.job().vocabulary, judge.job().vocabulary_terms())?;
    let name = candidate.script.candidate.name.clone();
    let (turns_tx, turns_rx) = unbounded_channel();
    let setup = CallSetup {
        dialogue: Box::new(InterviewDialogue::start(
            judge,
            name,
            engines::policy(config)?,
        )),
        transcript: Box::new(TranscriptSink::open(&log)?.with_observer(turns_tx)),
        recording: Some(out.join("recording.wav")),
        turn_taking: TurnTaking::default(),
        vocabulary,
        // A simulation prints its own figures; there is no operator's /metrics to feed.
        observer: Arc::new(()),
    };

    // The virtual clock pauses Tokio's time, which needs a current-thread runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (summary, said) = runtime.block_on(async {
        let clock: Arc<dyn Clock> = Arc::new(VirtualClock::start(ComputeTime::Measured)?);
        let (call, peer) = Call::pair("simulation", LINE_RATE);
        let (summary, said) = tokio::join!(
            converse(call, setup, &speech, Arc::clone(&clock)),
            caller(peer, clock, &tts, candidate, turns_rx)
        );
        anyhow::Ok((summary?, said?))
    })?;
    if let Some(err) = summary.recording_error {
        anyhow::bail!("the recording failed during the call: {err}");
    }

    let transcript = TranscriptLog::recover(&log)?;
    let heard: Vec<&str> = transcript
        .turns
        .iter()
        .filter(|t| t.speaker == Speaker::Candidate)
        .map(|t| t.text.as_str())
        .collect();
    let (errors, words) = word_errors(&said.join(" "), &heard.join(" "));
    let percentile =
        |p| response_percentile(&summary.latencies, p).map_or(f64::NAN, |ms| ms as f64);
    println!(
        "audio call: {} answers spoken, WER {:.1} % ({errors}/{words} words); response latency p50 {:.0} ms, p95 {:.0} ms ({} turns)",
        said.len(),
        errors as f64 * 100.0 / words.max(1) as f64,
        percentile(50),
        percentile(95),
        summary.latencies.len()
    );
    Ok(transcript)
}

/// The candidate's side of the line: a 20 ms frame every 20 ms, silence except while
/// answering; each interviewer line (seen in the live transcript) gets the script's next
/// answer for it, spoken after a moment's thought. Returns the answers spoken.
async fn caller(
    mut peer: CallPeer,
    clock: Arc<dyn Clock>,
    tts: &Tts,
    mut script: ScriptedCandidate,
    mut turns: UnboundedReceiver<Turn>,
) -> anyhow::Result<Vec<String>> {
    let frame_len = (LINE_RATE / 50) as usize;
    let mut said = Vec::new();
    let mut next_answer: Option<(Duration, Vec<f32>)> = None;
    let mut speaking: Option<(Vec<f32>, usize)> = None;
    for k in 0u32.. {
        let frame_start = Duration::from_millis(20 * u64::from(k));
        if frame_start > LONGEST_CALL {
            break;
        }
        clock
            .sleep_until(frame_start + Duration::from_millis(20))
            .await;
        loop {
            match peer.outbound.try_recv() {
                Ok(CallOutput::HangUp) | Err(TryRecvError::Disconnected) => return Ok(said),
                // What the interviewer says is in the live transcript; the audio is not needed.
                Ok(_) => {}
                Err(TryRecvError::Empty) => break,
            }
        }
        while let Ok(turn) = turns.try_recv() {
            if turn.speaker != Speaker::Interviewer || turn.kind == TurnKind::Closing {
                continue;
            }
            let key = turn
                .question_id
                .clone()
                .unwrap_or_else(|| turn.kind.as_str().to_owned());
            if let Some(answer) = script.answer_for(key) {
                let voice = tts.synthesize(&answer)?;
                let audio = resample(&voice, tts.sample_rate(), LINE_RATE)?;
                said.push(answer);
                next_answer = Some((frame_start + THINKING, audio));
            }
        }
        if speaking.is_none()
            && next_answer
                .as_ref()
                .is_some_and(|(at, _)| *at <= frame_start)
        {
            speaking = next_answer.take().map(|(_, audio)| (audio, 0));
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
        let frame = PcmFrame::new(samples, LINE_RATE, frame_start)?;
        if peer.inbound.send(CallInput::Audio(frame)).await.is_err() {
            break;
        }
    }
    Ok(said)
}
