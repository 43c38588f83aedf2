//! The CPaaS media-stream message protocol: JSON text messages over a WebSocket, as the
//! widespread "media streams" API defines them.
//!
//! Inbound (from the CPaaS): `connected`, `start` (stream and call ids, `customParameters`,
//! `mediaFormat`), `media` (base64 mu-law with `track`, `chunk`, `timestamp`), `dtmf`, `mark`
//! (a mark we sent has been played) and `stop`. Outbound (to the CPaaS): `media` (audio to
//! play), `mark` (tell me when playback gets here) and `clear` (drop the audio queued for
//! playing).
//!
//! Pure parsing and formatting, no I/O. Parsing is lenient where CPaaS dialects differ (numbers
//! sent as strings or as numbers, padded or unpadded base64, unknown fields) and strict where a
//! mistake would corrupt the call (the media format, DTMF keys, the payload).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde_json::{Value, json};

/// The largest text message read at all (64 KiB): a `media` message that size carries about
/// six seconds of audio, many times what any CPaaS puts in one message (20 ms is usual).
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The only audio the protocol carries on phone calls: G.711 mu-law, 8 kHz, mono.
pub(crate) const MULAW_ENCODING: &str = "audio/x-mulaw";
pub(crate) const MULAW_SAMPLE_RATE: u64 = 8_000;
pub(crate) const MULAW_CHANNELS: u64 = 1;

/// Standard base64 that also takes payloads without their `=` padding, which some CPaaS
/// dialects send.
const PAYLOAD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One message from the CPaaS, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inbound {
    /// The WebSocket is up; `start` follows.
    Connected {
        protocol: Option<String>,
        version: Option<String>,
    },
    /// The stream's metadata: who is calling and in what format.
    Start(Start),
    /// A piece of call audio.
    Media(Media),
    /// The caller pressed a key (`0-9`, `*`, `#`, `A-D`).
    Dtmf(char),
    /// Playback reached a mark we sent.
    Mark(String),
    /// The call ended: no more messages follow.
    Stop,
}

/// The `start` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    pub stream_sid: String,
    pub call_sid: Option<String>,
    /// `customParameters`, with numbers and booleans turned into their text.
    pub parameters: BTreeMap<String, String>,
    pub format: MediaFormat,
}

/// The audio format a stream announces, with what it leaves out filled in from the protocol's
/// only format (mu-law, 8 kHz, mono).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MediaFormat {
    pub encoding: String,
    pub sample_rate: u64,
    pub channels: u64,
}

impl MediaFormat {
    /// Whether this is 8 kHz mono mu-law, the only format a phone call is bridged in.
    pub fn is_phone_mulaw(&self) -> bool {
        self.encoding.eq_ignore_ascii_case(MULAW_ENCODING)
            && self.sample_rate == MULAW_SAMPLE_RATE
            && self.channels == MULAW_CHANNELS
    }
}

impl fmt::Display for MediaFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {} Hz with {} channel(s)",
            self.encoding, self.sample_rate, self.channels
        )
    }
}

/// A `media` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Media {
    /// `inbound` (the caller) or `outbound` (what the call plays); absent means inbound.
    pub track: Option<String>,
    /// The payload's position in the stream, in milliseconds from its start, if sent.
    pub timestamp_ms: Option<u64>,
    /// The decoded payload: one mu-law code per sample.
    pub mulaw: Vec<u8>,
}

impl Media {
    /// Whether this is the caller's audio (and not the far end's own playback, which a
    /// "both tracks" stream also sends).
    pub fn is_caller(&self) -> bool {
        self.track
            .as_deref()
            .is_none_or(|track| track.eq_ignore_ascii_case("inbound"))
    }
}

/// Why a text message could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProtocolError {
    #[error("message of {bytes} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge { bytes: usize },
    #[error("not a media-stream message (a JSON object with an `event`): {0}")]
    NotJson(serde_json::Error),
    #[error("unknown event `{0}`")]
    UnknownEvent(String),
    #[error("malformed `{event}` message: {reason}")]
    Malformed { event: &'static str, reason: String },
}

impl ProtocolError {
    /// A short name for the kind of problem, to count and rate-limit log lines by.
    pub fn kind(&self) -> &'static str {
        match self {
            ProtocolError::TooLarge { .. } => "oversized message",
            ProtocolError::NotJson(_) => "malformed message",
            ProtocolError::UnknownEvent(_) => "unknown event",
            ProtocolError::Malformed { event, .. } => event,
        }
    }

    fn malformed(event: &'static str, reason: impl fmt::Display) -> Self {
        ProtocolError::Malformed {
            event,
            reason: reason.to_string(),
        }
    }
}

/// Reads one text message from the CPaaS.
pub(crate) fn parse(text: &str) -> Result<Inbound, ProtocolError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge { bytes: text.len() });
    }
    // First only the event name, so a malformed known event is told apart from an unknown one.
    let head: Head = serde_json::from_str(text).map_err(ProtocolError::NotJson)?;
    match head.event.as_str() {
        "connected" => {
            let message: ConnectedMessage = from_json("connected", text)?;
            Ok(Inbound::Connected {
                protocol: message.protocol,
                version: message.version,
            })
        }
        "start" => parse_start(from_json("start", text)?).map(Inbound::Start),
        "media" => parse_media(from_json("media", text)?).map(Inbound::Media),
        "dtmf" => {
            let message: DtmfMessage = from_json("dtmf", text)?;
            dtmf_key(&message.dtmf.digit).map(Inbound::Dtmf)
        }
        "mark" => {
            let message: MarkMessage = from_json("mark", text)?;
            Ok(Inbound::Mark(message.mark.name))
        }
        "stop" => Ok(Inbound::Stop),
        other => Err(ProtocolError::UnknownEvent(other.to_owned())),
    }
}

/// A `media` message playing one piece of mu-law audio.
pub(crate) fn media_message(stream_sid: &str, mulaw: &[u8]) -> String {
    json!({
        "event": "media",
        "streamSid": stream_sid,
        "media": { "payload": PAYLOAD_BASE64.encode(mulaw) },
    })
    .to_string()
}

/// A `mark` message: the CPaaS echoes it back once everything sent before it has played.
pub(crate) fn mark_message(stream_sid: &str, name: &str) -> String {
    json!({
        "event": "mark",
        "streamSid": stream_sid,
        "mark": { "name": name },
    })
    .to_string()
}

/// A `clear` message: drop the audio queued for playing (the caller barged in).
pub(crate) fn clear_message(stream_sid: &str) -> String {
    json!({ "event": "clear", "streamSid": stream_sid }).to_string()
}

fn from_json<'a, T: Deserialize<'a>>(
    event: &'static str,
    text: &'a str,
) -> Result<T, ProtocolError> {
    serde_json::from_str(text).map_err(|err| ProtocolError::malformed(event, err))
}

fn parse_start(message: StartMessage) -> Result<Start, ProtocolError> {
    let stream_sid = message
        .start
        .stream_sid
        .or(message.stream_sid)
        .filter(|sid| !sid.is_empty())
        .ok_or_else(|| ProtocolError::malformed("start", "it has no `streamSid`"))?;
    let format = match message.start.media_format {
        Some(format) => MediaFormat {
            encoding: format.encoding.unwrap_or_else(|| MULAW_ENCODING.to_owned()),
            sample_rate: number("start", "mediaFormat.sampleRate", format.sample_rate)?
                .unwrap_or(MULAW_SAMPLE_RATE),
            channels: number("start", "mediaFormat.channels", format.channels)?
                .unwrap_or(MULAW_CHANNELS),
        },
        None => MediaFormat {
            encoding: MULAW_ENCODING.to_owned(),
            sample_rate: MULAW_SAMPLE_RATE,
            channels: MULAW_CHANNELS,
        },
    };
    let parameters = message
        .start
        .custom_parameters
        .into_iter()
        .filter_map(|(name, value)| {
            let text = match value {
                Value::Null => return None,
                Value::String(text) => text,
                other => other.to_string(),
            };
            Some((name, text))
        })
        .collect();
    Ok(Start {
        stream_sid,
        call_sid: message.start.call_sid.filter(|sid| !sid.is_empty()),
        parameters,
        format,
    })
}

fn parse_media(message: MediaMessage) -> Result<Media, ProtocolError> {
    let mulaw = PAYLOAD_BASE64
        .decode(message.media.payload.as_bytes())
        .map_err(|err| {
            ProtocolError::malformed("media", format!("payload is not base64: {err}"))
        })?;
    Ok(Media {
        track: message.media.track,
        timestamp_ms: number("media", "timestamp", message.media.timestamp)?,
        mulaw,
    })
}

/// A count the protocol may send as a JSON number or as a decimal string.
fn number(
    event: &'static str,
    field: &str,
    value: Option<NumberOrText>,
) -> Result<Option<u64>, ProtocolError> {
    match value {
        None => Ok(None),
        Some(NumberOrText::Number(n)) => Ok(Some(n)),
        Some(NumberOrText::Text(text)) => text.trim().parse().map(Some).map_err(|_| {
            ProtocolError::malformed(event, format!("`{field}` is {text:?}, not a whole number"))
        }),
    }
}

fn dtmf_key(digit: &str) -> Result<char, ProtocolError> {
    let mut chars = digit.chars();
    match (chars.next(), chars.next()) {
        (Some(key), None) if key.is_ascii_digit() || matches!(key, '*' | '#') => Ok(key),
        (Some(key @ ('A'..='D' | 'a'..='d')), None) => Ok(key.to_ascii_uppercase()),
        _ => Err(ProtocolError::malformed(
            "dtmf",
            format!("{digit:?} is not a DTMF key (0-9, *, #, A-D)"),
        )),
    }
}

#[derive(Deserialize)]
struct Head {
    event: String,
}

#[derive(Deserialize)]
struct ConnectedMessage {
    protocol: Option<String>,
    version: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartMessage {
    stream_sid: Option<String>,
    start: StartBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartBody {
    stream_sid: Option<String>,
    call_sid: Option<String>,
    #[serde(default)]
    custom_parameters: BTreeMap<String, Value>,
    media_format: Option<MediaFormatBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaFormatBody {
    encoding: Option<String>,
    sample_rate: Option<NumberOrText>,
    channels: Option<NumberOrText>,
}

#[derive(Deserialize)]
struct MediaMessage {
    media: MediaBody,
}

#[derive(Deserialize)]
struct MediaBody {
    track: Option<String>,
    timestamp: Option<NumberOrText>,
    payload: String,
}

#[derive(Deserialize)]
struct DtmfMessage {
    dtmf: DtmfBody,
}

#[derive(Deserialize)]
struct DtmfBody {
    digit: String,
}

#[derive(Deserialize)]
struct MarkMessage {
    mark: MarkBody,
}

#[derive(Deserialize)]
struct MarkBody {
    name: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(u64),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(payload: &str, extra: &str) -> String {
        format!(
            r#"{{"event":"media","sequenceNumber":"3","streamSid":"MZ1",
                "media":{{"track":"inbound","chunk":"1","timestamp":"5","payload":"{payload}"{extra}}}}}"#
        )
    }

    #[test]
    fn reads_the_setup_messages_of_a_stream() {
        let connected = parse(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#);
        assert_eq!(
            connected.unwrap(),
            Inbound::Connected {
                protocol: Some("Call".into()),
                version: Some("1.0.0".into())
            }
        );
        let start = parse(
            r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1",
                "start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1",
                  "tracks":["inbound"],
                  "customParameters":{"pin":"123456","attempt":2,"vip":true,"none":null},
                  "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#,
        )
        .unwrap();
        let Inbound::Start(start) = start else {
            panic!("not a start: {start:?}");
        };
        assert_eq!(start.stream_sid, "MZ1");
        assert_eq!(start.call_sid.as_deref(), Some("CA1"));
        assert!(start.format.is_phone_mulaw());
        let expected: BTreeMap<String, String> =
            [("attempt", "2"), ("pin", "123456"), ("vip", "true")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        assert_eq!(start.parameters, expected);
    }

    #[test]
    fn start_format_is_read_from_numbers_or_text_and_defaults_to_phone_mulaw() {
        let start = |body: &str| match parse(&format!(
            r#"{{"event":"start","streamSid":"MZ9","start":{body}}}"#
        )) {
            Ok(Inbound::Start(start)) => Ok(start),
            Ok(other) => panic!("not a start: {other:?}"),
            Err(err) => Err(err),
        };
        // The stream id may sit only at the top level, and the format may be left out.
        let bare = start("{}").unwrap();
        assert_eq!(bare.stream_sid, "MZ9");
        assert_eq!(bare.call_sid, None);
        assert!(bare.format.is_phone_mulaw());

        let alaw = start(
            r#"{"mediaFormat":{"encoding":"audio/x-alaw","sampleRate":"8000","channels":"1"}}"#,
        )
        .unwrap();
        assert!(!alaw.format.is_phone_mulaw());
        assert_eq!(
            alaw.format.to_string(),
            "audio/x-alaw at 8000 Hz with 1 channel(s)"
        );

        let wideband =
            start(r#"{"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":16000}}"#).unwrap();
        assert_eq!(wideband.format.sample_rate, 16_000);
        assert!(!wideband.format.is_phone_mulaw());
        let stereo = start(r#"{"mediaFormat":{"channels":2}}"#).unwrap();
        assert!(!stereo.format.is_phone_mulaw());
        let upper = start(r#"{"mediaFormat":{"encoding":"AUDIO/X-MULAW"}}"#).unwrap();
        assert!(upper.format.is_phone_mulaw());

        let err = start(r#"{"mediaFormat":{"sampleRate":"fast"}}"#).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Malformed { event: "start", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("sampleRate"), "{err}");
    }

    #[test]
    fn a_start_without_a_stream_id_or_body_is_malformed() {
        for text in [
            r#"{"event":"start","start":{"callSid":"CA1"}}"#,
            r#"{"event":"start","streamSid":"","start":{}}"#,
            r#"{"event":"start","streamSid":"MZ1"}"#,
            r#"{"event":"start","streamSid":"MZ1","start":{"customParameters":["pin"]}}"#,
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                matches!(err, ProtocolError::Malformed { event: "start", .. }),
                "{text}: {err}"
            );
            assert_eq!(err.kind(), "start");
        }
    }

    #[test]
    fn media_payloads_are_decoded_with_or_without_padding() {
        let padded = parse(&media("/wB/gA==", "")).unwrap();
        let expected = Media {
            track: Some("inbound".into()),
            timestamp_ms: Some(5),
            mulaw: vec![0xFF, 0x00, 0x7F, 0x80],
        };
        assert_eq!(padded, Inbound::Media(expected.clone()));
        assert_eq!(
            parse(&media("/wB/gA", "")).unwrap(),
            Inbound::Media(expected)
        );

        // Some encoders escape the slash; numbers may come as numbers.
        let escaped =
            parse(r#"{"event":"media","media":{"timestamp":40,"chunk":3,"payload":"\/w=="}}"#)
                .unwrap();
        let Inbound::Media(escaped) = escaped else {
            panic!("not media: {escaped:?}");
        };
        assert_eq!(escaped.mulaw, vec![0xFF]);
        assert_eq!(escaped.timestamp_ms, Some(40));
        assert!(escaped.is_caller(), "no track means the caller's");
    }

    #[test]
    fn only_the_inbound_track_is_the_caller() {
        let track = |name: &str| Media {
            track: Some(name.into()),
            timestamp_ms: None,
            mulaw: Vec::new(),
        };
        assert!(track("inbound").is_caller());
        assert!(!track("outbound").is_caller());
        assert!(!track("inbound_track_2").is_caller());
    }

    #[test]
    fn bad_media_is_reported_not_decoded() {
        for (text, needle) in [
            (media("not base64!", ""), "not base64"),
            (media("/w==", r#","timestamp":"soon""#), "duplicate field"),
            (
                r#"{"event":"media","media":{"timestamp":"soon","payload":"/w=="}}"#.to_owned(),
                "whole number",
            ),
            (r#"{"event":"media","media":{}}"#.to_owned(), "payload"),
            (r#"{"event":"media"}"#.to_owned(), "media"),
        ] {
            let err = parse(&text).unwrap_err();
            assert!(
                matches!(err, ProtocolError::Malformed { event: "media", .. }),
                "{text}: {err}"
            );
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn oversized_messages_are_refused_before_parsing() {
        let payload = "A".repeat(MAX_MESSAGE_BYTES);
        let err = parse(&media(&payload, "")).unwrap_err();
        assert!(matches!(err, ProtocolError::TooLarge { .. }), "{err}");
        assert_eq!(err.kind(), "oversized message");
        // Just under the limit still parses: 60 KiB of base64 is 45 KiB of audio.
        let payload = "/wB/".repeat(60 * 1024 / 4);
        let Inbound::Media(big) = parse(&media(&payload, "")).unwrap() else {
            panic!("not media");
        };
        assert_eq!(big.mulaw.len(), 45 * 1024);
    }

    #[test]
    fn keys_events_and_stop_are_understood() {
        let dtmf = |digit: &str| {
            parse(&format!(
                r#"{{"event":"dtmf","streamSid":"MZ1","dtmf":{{"track":"inbound_track","digit":"{digit}"}}}}"#
            ))
        };
        for (digit, key) in [
            ("5", '5'),
            ("0", '0'),
            ("*", '*'),
            ("#", '#'),
            ("a", 'A'),
            ("D", 'D'),
        ] {
            assert_eq!(dtmf(digit).unwrap(), Inbound::Dtmf(key));
        }
        for digit in ["", "12", "E", "x", "½"] {
            let err = dtmf(digit).unwrap_err();
            assert!(
                matches!(err, ProtocolError::Malformed { event: "dtmf", .. }),
                "{err}"
            );
        }
        assert_eq!(
            parse(r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"talkspurt-3"}}"#).unwrap(),
            Inbound::Mark("talkspurt-3".into())
        );
        assert_eq!(
            parse(r#"{"event":"stop","streamSid":"MZ1","stop":{"callSid":"CA1"}}"#).unwrap(),
            Inbound::Stop
        );
    }

    #[test]
    fn junk_is_told_apart_from_unknown_events() {
        for text in [
            "",
            "hello",
            "[1,2]",
            r#"{"event":5}"#,
            r#"{"media":{}}"#,
            "{\"event\":\"med",
        ] {
            let err = parse(text).unwrap_err();
            assert!(matches!(err, ProtocolError::NotJson(_)), "{text:?}: {err}");
            assert_eq!(err.kind(), "malformed message");
        }
        let err = parse(r#"{"event":"transcription","text":"hi"}"#).unwrap_err();
        assert!(matches!(&err, ProtocolError::UnknownEvent(name) if name == "transcription"));
        assert_eq!(err.to_string(), "unknown event `transcription`");
    }

    #[test]
    fn outbound_messages_have_the_protocol_shape() {
        let sid = "MZ\"quoted\"";
        let media: Value = serde_json::from_str(&media_message(sid, &[0xFF, 0x00, 0x7F])).unwrap();
        assert_eq!(
            media,
            json!({"event": "media", "streamSid": sid, "media": {"payload": "/wB/"}})
        );
        let mark: Value = serde_json::from_str(&mark_message(sid, "talkspurt-1")).unwrap();
        assert_eq!(
            mark,
            json!({"event": "mark", "streamSid": sid, "mark": {"name": "talkspurt-1"}})
        );
        let clear: Value = serde_json::from_str(&clear_message(sid)).unwrap();
        assert_eq!(clear, json!({"event": "clear", "streamSid": sid}));
    }

    #[test]
    fn what_we_send_reads_back() {
        let codes: Vec<u8> = (0..=255).collect();
        let Inbound::Media(media) = parse(&media_message("MZ1", &codes)).unwrap() else {
            panic!("not media");
        };
        assert_eq!(media.mulaw, codes);
        assert_eq!(
            parse(&mark_message("MZ1", "end")).unwrap(),
            Inbound::Mark("end".into())
        );
    }
}
