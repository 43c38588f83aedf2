//! One caller: a CPaaS media stream that names its interview by PIN, then a phone's audio in
//! real time (a 20 ms frame every 20 ms, silence between answers) and a candidate who answers
//! once the interviewer's reply has played out and a second of silence followed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

use super::answers::{Answer, FRAME_BYTES, SILENCE};
use super::playout::{FRAME, Playout};

/// How long a caller waits for the interviewer to say anything before giving up on the call.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Replies of at least this many frames (2 s) tell the pace the server sends audio at.
const PACE_FRAMES: usize = 100;

/// The interviewer's response to one answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Response {
    /// Which answer of the set was given (its index).
    pub answer: usize,
    /// From the frame where the answer's speech ends to the interviewer's first frame
    /// received.
    pub latency: Duration,
}

/// What one caller measured.
#[derive(Debug, Default)]
pub(super) struct SessionFigures {
    /// One per answer given, in order.
    pub responses: Vec<Response>,
    /// Replies heard (the opening included), and how many had holes or were cut short.
    pub replies: usize,
    pub late: usize,
    pub cut_short: usize,
    /// The interviewer audio of the replies long enough to tell the server's pace by (after
    /// each reply's first frame), and the time it took to arrive.
    pub audio: Duration,
    pub arrival: Duration,
    /// Why the call ended before its answers were all given, if it did.
    pub ended_early: Option<String>,
}

impl SessionFigures {
    fn count(&mut self, reply: &Playout) {
        if reply.frames() == 0 {
            return;
        }
        self.replies += 1;
        self.late += usize::from(reply.was_late());
        self.cut_short += usize::from(reply.was_cut_short());
        if reply.frames() >= PACE_FRAMES {
            // The span runs from the first frame's arrival: it covers the audio after it.
            self.audio += FRAME * (reply.frames() - 1) as u32;
            self.arrival += reply.arrival_span();
        }
    }
}

/// What the reader task saw, stamped with its arrival (offset from the call's start).
enum Heard {
    Media(Duration),
    Mark(String),
    Clear(Duration),
    Closed,
}

/// Calls in with `pin` and gives `turns` answers, cycling through `answers` from `first`.
pub(super) async fn run(
    stream_url: &str,
    pin: &str,
    stream_sid: String,
    answers: Arc<Vec<Answer>>,
    first: usize,
    turns: usize,
) -> SessionFigures {
    let mut figures = SessionFigures::default();
    if let Err(reason) = call(
        stream_url,
        pin,
        &stream_sid,
        &answers,
        first,
        turns,
        &mut figures,
    )
    .await
    {
        figures.ended_early = Some(reason);
    }
    figures
}

async fn call(
    stream_url: &str,
    pin: &str,
    sid: &str,
    answers: &[Answer],
    first: usize,
    turns: usize,
    figures: &mut SessionFigures,
) -> Result<(), String> {
    let (socket, _) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async(stream_url),
    )
    .await
    .map_err(|_| "the media stream did not connect within 10 s".to_owned())?
    .map_err(|e| format!("the media stream did not connect: {e}"))?;
    let (mut sink, mut stream) = socket.split();
    let started = Instant::now();
    let send = |text: String| Message::text(text);
    sink.send(send(
        json!({ "event": "connected", "protocol": "Call", "version": "1.0.0" }).to_string(),
    ))
    .await
    .map_err(|e| format!("sending `connected`: {e}"))?;
    sink.send(send(start_event(sid, pin)))
        .await
        .map_err(|e| format!("sending `start`: {e}"))?;

    // Arrivals are stamped as they are read, apart from the pacing below.
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(message) = stream.next().await {
            let at = started.elapsed();
            let text = match message {
                Ok(Message::Text(text)) => text,
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            let Ok(event) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let item = match event["event"].as_str() {
                Some("media") => Heard::Media(at),
                Some("mark") => Heard::Mark(event["mark"]["name"].as_str().unwrap_or("").into()),
                Some("clear") => Heard::Clear(at),
                _ => continue,
            };
            if heard_tx.send(item).is_err() {
                return;
            }
        }
        let _ = heard_tx.send(Heard::Closed);
    });

    let mut caller = Caller {
        reply: Playout::default(),
        awaiting_reply: None,
        answer: None,
        answered: 0,
        marks: VecDeque::new(),
    };
    let mut tick = tokio::time::interval(FRAME);
    // A late tick sends the frames it owes at once, as a phone's steady clock would have.
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut chunk: u64 = 0;
    let outcome = loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = started.elapsed();
                if caller.answer.is_none() && caller.reply.is_over(now) {
                    if caller.answered == turns {
                        break Ok(());
                    }
                    let answer = &answers[(first + caller.answered) % answers.len()];
                    caller.answer = Some((answer, 0));
                }
                if let Some(waiting) = caller.awaiting_reply
                    && now - waiting > REPLY_TIMEOUT
                {
                    break Err(format!("no reply within {} s of answer {}", REPLY_TIMEOUT.as_secs(), caller.answered));
                }
                if caller.awaiting_reply.is_none() && caller.reply.first_frame().is_none() && now > REPLY_TIMEOUT {
                    break Err(format!("the interviewer said nothing within {} s", REPLY_TIMEOUT.as_secs()));
                }
                let (payload, speech_ended) = caller.next_frame();
                let media = json!({
                    "event": "media",
                    "sequenceNumber": (chunk + 3).to_string(),
                    "media": {
                        "track": "inbound",
                        "chunk": (chunk + 1).to_string(),
                        "timestamp": (chunk * 20).to_string(),
                        "payload": BASE64.encode(payload),
                    },
                    "streamSid": sid,
                });
                chunk += 1;
                if let Err(e) = sink.send(send(media.to_string())).await {
                    break Err(format!("the server closed the stream: {e}"));
                }
                if speech_ended {
                    // The end of the answer's speech (its tail still follows): the reply heard
                    // so far is complete, the next one's latency runs from here.
                    figures.count(&caller.reply);
                    caller.reply = Playout::default();
                    caller.awaiting_reply = Some(started.elapsed());
                    caller.answered += 1;
                }
                while let Some((due, _)) = caller.marks.front()
                    && *due <= now
                {
                    let Some((_, name)) = caller.marks.pop_front() else { break };
                    // As a CPaaS does once the audio before the mark has played.
                    let echo = json!({ "event": "mark", "streamSid": sid, "mark": { "name": name } });
                    if sink.send(send(echo.to_string())).await.is_err() {
                        break;
                    }
                }
            }
            item = heard.recv() => match item {
                Some(Heard::Media(at)) => {
                    if let Some(sent) = caller.awaiting_reply.take() {
                        figures.responses.push(Response {
                            // The answer whose speech ended last.
                            answer: (first + caller.answered - 1) % answers.len(),
                            latency: at.saturating_sub(sent),
                        });
                    }
                    caller.reply.frame(at);
                }
                Some(Heard::Mark(name)) => {
                    let due = caller.reply.ends_at().unwrap_or_default();
                    caller.marks.push_back((due, name));
                }
                Some(Heard::Clear(at)) => caller.reply.clear(at),
                Some(Heard::Closed) | None => {
                    break Err(format!("the server ended the call after {} answer(s)", caller.answered));
                }
            }
        }
    };
    figures.count(&caller.reply);
    let stop =
        json!({ "event": "stop", "streamSid": sid, "stop": { "callSid": format!("CA{sid}") } });
    let _ = sink.send(send(stop.to_string())).await;
    let _ = sink.close().await;
    reader.abort();
    outcome
}

/// The caller's side of the conversation.
struct Caller<'a> {
    /// The interviewer's reply being heard.
    reply: Playout,
    /// When the last answer's speech ended, until the reply's first frame.
    awaiting_reply: Option<Duration>,
    /// The answer being spoken and its next frame.
    answer: Option<(&'a Answer, usize)>,
    answered: usize,
    /// Marks to echo once playback reaches them.
    marks: VecDeque<(Duration, String)>,
}

impl<'a> Caller<'a> {
    /// The frame to send now, and whether the answer's speech ends in it.
    fn next_frame(&mut self) -> (&'a [u8], bool) {
        const QUIET: [u8; FRAME_BYTES] = [SILENCE; FRAME_BYTES];
        let Some((answer, next)) = self.answer else {
            return (&QUIET, false);
        };
        let last = next + 1 == answer.frames.len();
        self.answer = (!last).then_some((answer, next + 1));
        (&answer.frames[next], next == answer.speech_end)
    }
}

fn start_event(sid: &str, pin: &str) -> String {
    json!({
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "streamSid": sid,
            "accountSid": "ACbench",
            "callSid": format!("CA{sid}"),
            "tracks": ["inbound"],
            "customParameters": { "pin": pin },
            "mediaFormat": { "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1 },
        },
        "streamSid": sid,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller<'static> {
        Caller {
            reply: Playout::default(),
            awaiting_reply: None,
            answer: None,
            answered: 0,
            marks: VecDeque::new(),
        }
    }

    #[test]
    fn a_caller_sends_silence_then_each_answer_frame_once_then_silence() {
        let answer = Box::leak(Box::new(Answer {
            name: "answer".to_owned(),
            frames: (1..=4).map(|n| vec![n; FRAME_BYTES]).collect(),
            speech_end: 2,
        }));
        let mut caller = caller();
        let (quiet, last) = caller.next_frame();
        assert!(quiet.iter().all(|&b| b == SILENCE) && quiet.len() == FRAME_BYTES && !last);
        caller.answer = Some((answer, 0));
        let sent: Vec<(u8, bool)> = (0..5)
            .map(|_| {
                let (frame, ended) = caller.next_frame();
                (frame[0], ended)
            })
            .collect();
        // One frame a tick: the frame where the speech ends is flagged, the tail follows, and
        // silence after it at once.
        assert_eq!(
            sent,
            [
                (1, false),
                (2, false),
                (3, true),
                (4, false),
                (SILENCE, false)
            ]
        );
        assert!(caller.answer.is_none());
    }

    #[test]
    fn the_start_event_names_the_interview_by_pin_in_phone_format() {
        let start: Value = serde_json::from_str(&start_event("MZ1", "0123456789")).unwrap();
        assert_eq!(start["event"], "start");
        assert_eq!(start["start"]["customParameters"]["pin"], "0123456789");
        assert_eq!(start["start"]["mediaFormat"]["encoding"], "audio/x-mulaw");
        assert_eq!(start["start"]["mediaFormat"]["sampleRate"], 8000);
        assert_eq!(start["streamSid"], "MZ1");
    }
}
