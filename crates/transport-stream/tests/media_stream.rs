//! A CPaaS media stream over a real WebSocket: a tokio-tungstenite server runs `accept`, and a
//! tokio-tungstenite client plays the CPaaS (setup, a spoken WAV as 20 ms mu-law chunks, keys,
//! junk, stop) and listens to what the interviewer plays back.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{Sink, SinkExt, Stream, StreamExt, future};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use viva_call::{CallInput, CallOutput};
use viva_media::{G711Law, PcmFrame, decode_file, f32_to_i16, resample};
use viva_test_support::models::speech_clip;
use viva_transport_stream::{MediaStream, StreamError, WsFrame, accept};

type Cpaas = WebSocketStream<MaybeTlsStream<TcpStream>>;

const STREAM_SID: &str = "MZ00000000000000000000000000000001";
const CALL_SID: &str = "CA00000000000000000000000000000001";
/// Long enough for anything in these tests, short enough that a hang fails the test.
const PATIENCE: Duration = Duration::from_secs(30);

/// The spoken test clip (7.1 s of read speech) at the phone rate.
fn speech_8k() -> Vec<f32> {
    let clip = decode_file(&speech_clip("librivox-0870")).unwrap();
    resample(&clip.samples, clip.sample_rate, 8_000).unwrap()
}

fn mulaw(samples: &[f32]) -> Vec<u8> {
    let pcm: Vec<i16> = samples.iter().map(|&s| f32_to_i16(s)).collect();
    G711Law::MuLaw.encode(&pcm)
}

fn rms(samples: &[f32]) -> f64 {
    let energy: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    (energy / samples.len().max(1) as f64).sqrt()
}

/// The server side: one WebSocket, adapted to `WsFrame`s and handed to `accept`.
async fn serve_one() -> (SocketAddr, JoinHandle<Result<MediaStream, StreamError>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        accept(adapt(ws), "call-1").await
    });
    (addr, server)
}

fn adapt(
    ws: WebSocketStream<TcpStream>,
) -> impl Stream<Item = WsFrame> + Sink<WsFrame> + Send + Unpin + 'static {
    Box::pin(
        ws.filter_map(|message| {
            future::ready(match message {
                Ok(Message::Text(text)) => Some(WsFrame::Text(text.to_string())),
                Ok(Message::Binary(bytes)) => Some(WsFrame::Binary(bytes.to_vec())),
                Ok(Message::Close(_)) | Err(_) => Some(WsFrame::Close),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => None,
            })
        })
        .with(|frame: WsFrame| {
            future::ready(Ok::<_, tungstenite::Error>(match frame {
                WsFrame::Text(text) => Message::text(text),
                WsFrame::Binary(bytes) => Message::binary(bytes),
                WsFrame::Close => Message::Close(None),
            }))
        }),
    )
}

async fn connect(addr: SocketAddr) -> Cpaas {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/media"))
        .await
        .unwrap();
    ws
}

async fn send(ws: &mut Cpaas, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

fn start_message(media_format: Value) -> Value {
    json!({
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": STREAM_SID,
        "start": {
            "accountSid": "AC00000000000000000000000000000001",
            "streamSid": STREAM_SID,
            "callSid": CALL_SID,
            "tracks": ["inbound"],
            "customParameters": { "pin": "123456" },
            "mediaFormat": media_format,
        },
    })
}

/// Opens a stream the way a CPaaS does: `connected`, then `start` for 8 kHz mu-law.
async fn set_up(ws: &mut Cpaas) {
    send(
        ws,
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
    )
    .await;
    send(
        ws,
        start_message(json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})),
    )
    .await;
}

fn media_message(
    sequence: usize,
    chunk: usize,
    timestamp_ms: u64,
    track: &str,
    payload: &[u8],
) -> Value {
    json!({
        "event": "media",
        "sequenceNumber": sequence.to_string(),
        "streamSid": STREAM_SID,
        "media": {
            "track": track,
            "chunk": chunk.to_string(),
            "timestamp": timestamp_ms.to_string(),
            "payload": BASE64.encode(payload),
        },
    })
}

/// Everything the conversation receives until the transport lets go of the call.
async fn everything_heard(stream: &mut MediaStream) -> Vec<CallInput> {
    let mut heard = Vec::new();
    while let Some(input) = timeout(PATIENCE, stream.call.inbound.recv())
        .await
        .expect("the transport ends the call's input")
    {
        heard.push(input);
    }
    heard
}

#[tokio::test]
async fn a_cpaas_call_reaches_the_conversation_as_continuous_audio_keys_and_one_hang_up() {
    let speech = speech_8k();
    let codes = mulaw(&speech);
    let (addr, server) = serve_one().await;
    let mut cpaas = connect(addr).await;
    set_up(&mut cpaas).await;
    let mut stream = timeout(PATIENCE, server).await.unwrap().unwrap().unwrap();
    assert_eq!(stream.stream_sid, STREAM_SID);
    assert_eq!(stream.call_sid.as_deref(), Some(CALL_SID));
    assert_eq!(
        stream.parameters.get("pin").map(String::as_str),
        Some("123456")
    );
    assert_eq!(stream.call.output_rate, 8_000);
    assert_eq!(stream.call.id, "call-1");

    let chunks: Vec<Vec<u8>> = codes.chunks(160).map(<[u8]>::to_vec).collect();
    let caller = tokio::spawn(async move {
        for (index, chunk) in chunks.iter().enumerate() {
            // `start` was message 1.
            let message = media_message(index + 2, index + 1, index as u64 * 20, "inbound", chunk);
            send(&mut cpaas, message).await;
            // Bursts of ten chunks (200 ms of audio) every 50 ms: four times real time.
            if index % 10 == 9 {
                sleep(Duration::from_millis(50)).await;
            }
            if index == 99 {
                // Junk a careless or hostile peer might send; none of it may disturb the call.
                let junk = [
                    Message::text("{\"event\":\"media\",\"media\":{\"payload\":"),
                    Message::text("not json at all"),
                    Message::text(json!({"event": "transcript", "text": "hi"}).to_string()),
                    Message::text(
                        json!({"event": "media", "media": {"payload": "@@not base64@@"}})
                            .to_string(),
                    ),
                    Message::text(
                        media_message(0, 0, 2_000, "inbound", &vec![0x55; 60_000]).to_string(),
                    ),
                    Message::text(json!({"event": "dtmf", "dtmf": {"digit": "55"}}).to_string()),
                    Message::binary(vec![0xFF; 320]),
                    Message::Ping(vec![1, 2, 3].into()),
                    Message::text(media_message(0, 0, 2_000, "outbound", &[0x00; 160]).to_string()),
                ];
                for message in junk {
                    cpaas.send(message).await.unwrap();
                }
            }
            if index == 199 {
                send(
                    &mut cpaas,
                    json!({"event": "dtmf", "streamSid": STREAM_SID, "sequenceNumber": "500",
                           "dtmf": {"track": "inbound_track", "digit": "5"}}),
                )
                .await;
            }
        }
        send(
            &mut cpaas,
            json!({"event": "stop", "streamSid": STREAM_SID,
                   "stop": {"accountSid": "AC1", "callSid": CALL_SID}}),
        )
        .await;
        cpaas
    });

    let heard = everything_heard(&mut stream).await;
    let mut cpaas = caller.await.unwrap();

    let mut frames = Vec::new();
    let mut keys = Vec::new();
    let mut hang_ups = Vec::new();
    for (position, input) in heard.iter().enumerate() {
        match input {
            CallInput::Audio(frame) => frames.push(frame.clone()),
            CallInput::Dtmf(key) => keys.push((*key, frames.len())),
            CallInput::HangUp => hang_ups.push(position),
        }
    }
    assert_eq!(
        hang_ups,
        [heard.len() - 1],
        "one hang-up, the last thing heard"
    );
    assert_eq!(
        keys,
        [('5', 200)],
        "the key, after exactly the audio sent before it"
    );

    for (index, frame) in frames.iter().enumerate() {
        assert_eq!(frame.sample_rate(), 8_000);
        assert_eq!(frame.samples().len(), 160, "frame {index}");
        assert_eq!(
            frame.timestamp(),
            Duration::from_millis(20 * index as u64),
            "frame {index}"
        );
    }
    let heard_audio: Vec<f32> = frames.iter().flat_map(|f| f.samples().to_vec()).collect();
    assert_eq!(heard_audio.len(), codes.len().div_ceil(160) * 160);
    let duration = frames.last().unwrap().end();
    assert!(
        (duration.as_secs_f64() - 7.1).abs() < 0.03,
        "heard {duration:?} of a 7.1 s clip"
    );
    let sent: Vec<i16> = G711Law::MuLaw.decode(&codes);
    let got: Vec<i16> = heard_audio.iter().map(|&s| f32_to_i16(s)).collect();
    assert!(
        got[..sent.len()] == sent[..],
        "every sample arrives unchanged and in order"
    );
    assert!(
        got[sent.len()..].iter().all(|&s| s == 0),
        "the last frame is padded with silence"
    );
    let (original, received) = (rms(&speech), rms(&heard_audio));
    assert!(original > 0.02, "the clip is speech, RMS {original}");
    assert!(
        (received / original - 1.0).abs() < 0.03,
        "energy heard {received:.4} vs sent {original:.4}"
    );

    // The conversation ends the call: the transport closes the WebSocket.
    stream.call.outbound.send(CallOutput::HangUp).await.unwrap();
    let closed = timeout(PATIENCE, async {
        while let Some(Ok(message)) = cpaas.next().await {
            if let Message::Close(_) = message {
                return true;
            }
        }
        false
    });
    assert!(closed.await.unwrap(), "the CPaaS sees the close");
}

/// What the CPaaS side received, in order, after setup.
#[derive(Debug, PartialEq)]
enum Played {
    Media(Vec<u8>),
    Mark(String),
    Clear,
    Closed,
}

async fn listen_to_interviewer(mut cpaas: Cpaas) -> Vec<Played> {
    let mut played = Vec::new();
    while let Some(message) = cpaas.next().await {
        match message {
            Ok(Message::Text(text)) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(message["streamSid"], STREAM_SID, "{message}");
                played.push(match message["event"].as_str().unwrap() {
                    "media" => Played::Media(
                        BASE64
                            .decode(message["media"]["payload"].as_str().unwrap())
                            .unwrap(),
                    ),
                    "mark" => Played::Mark(message["mark"]["name"].as_str().unwrap().to_owned()),
                    "clear" => Played::Clear,
                    other => panic!("unexpected event {other}: {message}"),
                });
            }
            Ok(Message::Close(_)) => played.push(Played::Closed),
            Ok(other) => panic!("unexpected message {other:?}"),
            // The server dropped the connection after its close: the stream is over.
            Err(_) => break,
        }
    }
    played
}

fn frame_at(samples: &[f32], ms: u64) -> PcmFrame {
    PcmFrame::new(samples.to_vec(), 8_000, Duration::from_millis(ms)).unwrap()
}

#[tokio::test]
async fn interviewer_audio_goes_back_as_media_with_marks_clear_and_a_close() {
    let speech = speech_8k();
    let (addr, server) = serve_one().await;
    let mut cpaas = connect(addr).await;
    set_up(&mut cpaas).await;
    let mut stream = timeout(PATIENCE, server).await.unwrap().unwrap().unwrap();
    let listener = tokio::spawn(listen_to_interviewer(cpaas));
    let out = stream.call.outbound.clone();

    // A one-second sentence, paced in real time, then the conversation's end of speech: the
    // mark follows the sentence's last media.
    let sentence = &speech[8_000..16_000];
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    for (index, samples) in sentence.chunks(160).enumerate() {
        pace.tick().await;
        let frame = frame_at(samples, 1_000 + 20 * index as u64);
        out.send(CallOutput::Audio(frame)).await.unwrap();
    }
    out.send(CallOutput::EndOfSpeech).await.unwrap();
    sleep(Duration::from_millis(400)).await;
    // A second talkspurt, cut short by the candidate: its mark, then the clear.
    for index in 0..25u64 {
        let samples = &speech[16_000 + 160 * index as usize..][..160];
        out.send(CallOutput::Audio(frame_at(samples, 3_000 + 20 * index)))
            .await
            .unwrap();
    }
    out.send(CallOutput::ClearPlayback).await.unwrap();
    // A third with its end of speech, then one frame with none before the interview ends:
    // a gap in the frames' stamps alone makes no mark.
    for index in 0..10u64 {
        let samples = &speech[24_000 + 160 * index as usize..][..160];
        out.send(CallOutput::Audio(frame_at(samples, 5_000 + 20 * index)))
            .await
            .unwrap();
    }
    out.send(CallOutput::EndOfSpeech).await.unwrap();
    out.send(CallOutput::Audio(frame_at(&speech[30_000..30_160], 6_000)))
        .await
        .unwrap();
    out.send(CallOutput::HangUp).await.unwrap();

    let played = timeout(PATIENCE, listener).await.unwrap().unwrap();
    let shape: Vec<String> = played
        .iter()
        .map(|played| match played {
            Played::Media(_) => "media".to_owned(),
            Played::Mark(name) => format!("mark {name}"),
            Played::Clear => "clear".to_owned(),
            Played::Closed => "closed".to_owned(),
        })
        .collect();
    let mut expected = vec!["media".to_owned(); 50];
    expected.push("mark talkspurt-1".into());
    expected.extend(vec!["media".to_owned(); 25]);
    expected.extend(["mark talkspurt-2".into(), "clear".into()]);
    expected.extend(vec!["media".to_owned(); 10]);
    expected.push("mark talkspurt-3".into());
    expected.extend(["media".into(), "closed".into()]);
    assert_eq!(shape, expected);

    // The first sentence comes back as the same audio, through mu-law.
    let payloads: Vec<u8> = played[..50]
        .iter()
        .flat_map(|played| match played {
            Played::Media(payload) => {
                assert_eq!(payload.len(), 160, "one 20 ms payload per message");
                payload.clone()
            }
            other => panic!("expected media, got {other:?}"),
        })
        .collect();
    let sent = mulaw(sentence);
    assert!(payloads == sent, "the payloads are the sentence in mu-law");
    let decoded: Vec<f32> = G711Law::MuLaw
        .decode(&payloads)
        .into_iter()
        .map(viva_media::i16_to_f32)
        .collect();
    let noise: Vec<f32> = decoded.iter().zip(sentence).map(|(a, b)| a - b).collect();
    let snr_db = 20.0 * (rms(sentence) / rms(&noise)).log10();
    assert!(
        snr_db > 30.0,
        "decoded audio matches the sentence: SNR {snr_db:.1} dB"
    );

    // Once the socket is closed the transport lets go of the call without a word.
    assert!(everything_heard(&mut stream).await.is_empty());
}

#[tokio::test]
async fn a_caller_that_vanishes_is_one_hang_up_and_holes_are_filled() {
    let speech = speech_8k();
    let codes = mulaw(&speech[..8_000]);
    let (addr, server) = serve_one().await;
    let mut cpaas = connect(addr).await;
    set_up(&mut cpaas).await;
    let mut stream = timeout(PATIENCE, server).await.unwrap().unwrap().unwrap();

    // 100-byte payloads (12.5 ms) with millisecond timestamps; payloads 20-23 (50 ms) are lost.
    for (index, chunk) in codes.chunks(100).enumerate() {
        if (20..24).contains(&index) {
            continue;
        }
        let timestamp_ms = index as u64 * 100 / 8;
        send(
            &mut cpaas,
            media_message(index + 2, index + 1, timestamp_ms, "inbound", chunk),
        )
        .await;
    }
    // The connection drops: no `stop`, no close handshake.
    drop(cpaas);

    let heard = everything_heard(&mut stream).await;
    assert_eq!(heard.last(), Some(&CallInput::HangUp));
    assert_eq!(
        heard
            .iter()
            .filter(|input| **input == CallInput::HangUp)
            .count(),
        1
    );
    let samples: Vec<i16> = heard
        .iter()
        .filter_map(|input| match input {
            CallInput::Audio(frame) => Some(frame.to_i16()),
            _ => None,
        })
        .flatten()
        .collect();
    // 8000 samples sent, 400 lost and filled: all of it arrives, the hole silent.
    assert_eq!(samples.len(), 8_000);
    let sent = G711Law::MuLaw.decode(&codes);
    assert!(samples[..2_000] == sent[..2_000]);
    assert!(samples[2_000..2_400].iter().all(|&s| s == 0));
    assert!(samples[2_400..] == sent[2_400..]);
}

#[tokio::test]
async fn streams_that_cannot_be_bridged_are_refused_with_the_reason() {
    // A-law offered.
    let (addr, server) = serve_one().await;
    let mut cpaas = connect(addr).await;
    send(
        &mut cpaas,
        start_message(json!({"encoding": "audio/x-alaw", "sampleRate": 8000, "channels": 1})),
    )
    .await;
    let err = timeout(PATIENCE, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, StreamError::UnsupportedFormat { .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("audio/x-alaw at 8000 Hz with 1 channel(s)"),
        "{message}"
    );
    assert!(
        message.contains("configure the CPaaS stream for 8 kHz mu-law"),
        "{message}"
    );
    let next = timeout(PATIENCE, cpaas.next()).await.unwrap();
    assert!(
        matches!(next, Some(Ok(Message::Close(_)))),
        "the socket is closed: {next:?}"
    );

    // Junk and call events before `start` are ignored; then the CPaaS gives up.
    let (addr, server) = serve_one().await;
    let mut cpaas = connect(addr).await;
    send(
        &mut cpaas,
        json!({"event": "connected", "protocol": "Call"}),
    )
    .await;
    send(&mut cpaas, media_message(2, 1, 0, "inbound", &[0xFF; 160])).await;
    cpaas.send(Message::text("{{{")).await.unwrap();
    cpaas.send(Message::binary(vec![0; 16])).await.unwrap();
    cpaas.close(None).await.unwrap();
    let err = timeout(PATIENCE, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, StreamError::ClosedBeforeStart), "{err}");

    // A `start` without a stream id.
    let (addr, server) = serve_one().await;
    let mut cpaas = connect(addr).await;
    send(
        &mut cpaas,
        json!({"event": "start", "start": {"callSid": CALL_SID}}),
    )
    .await;
    let err = timeout(PATIENCE, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, StreamError::BadStart { .. }), "{err}");
    assert!(err.to_string().contains("streamSid"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_socket_that_never_starts_is_turned_away() {
    let (addr, server) = serve_one().await;
    let mut cpaas = connect(addr).await;
    send(
        &mut cpaas,
        json!({"event": "connected", "protocol": "Call"}),
    )
    .await;
    // Paused time jumps ahead while everyone waits: the ten seconds pass at once.
    let err = server.await.unwrap().unwrap_err();
    assert!(
        matches!(err, StreamError::NoStart { waited } if waited == Duration::from_secs(10)),
        "{err}"
    );
    assert!(err.to_string().contains("within 10 s"), "{err}");
    let next = cpaas.next().await;
    assert!(
        matches!(next, Some(Ok(Message::Close(_)))),
        "the socket is closed: {next:?}"
    );
}
