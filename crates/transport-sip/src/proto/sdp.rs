//! SDP offer/answer for one G.711 audio stream (RFC 4566, RFC 3264).
//!
//! The parser is deliberately small and lenient: it reads only what a phone call needs (the
//! first `m=audio` section, its connection address, payload formats, direction, RTCP port)
//! and skips every other line, so the odd SDP real trunks send still works, while anything
//! structurally unusable is an error rather than a panic.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use thiserror::Error;
use viva_media::G711Law;

/// Dynamic payload type this side offers for RFC 4733 telephone-events.
pub const OFFERED_TELEPHONE_EVENT: u8 = 101;

/// Packet duration this side sends and asks for.
const PTIME_MS: u32 = 20;

/// Which way media flows, from the point of view of the side that wrote the SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways (the default).
    SendRecv,
    /// The writer only sends (e.g. it put the call on hold with music).
    SendOnly,
    /// The writer only receives.
    RecvOnly,
    /// No media either way (held).
    Inactive,
}

impl Direction {
    /// The direction the other side answers with (RFC 3264 section 6.1).
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// Whether the side with this direction sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side with this direction receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attribute(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// The audio codecs this transport speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// G.711 mu-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl AudioCodec {
    /// The companding law to encode and decode with.
    pub fn law(self) -> G711Law {
        match self {
            AudioCodec::Pcmu => G711Law::MuLaw,
            AudioCodec::Pcma => G711Law::ALaw,
        }
    }

    /// The static RTP payload type (RFC 3551).
    pub fn static_payload_type(self) -> u8 {
        match self {
            AudioCodec::Pcmu => 0,
            AudioCodec::Pcma => 8,
        }
    }

    /// The encoding name in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
        }
    }
}

/// One payload format listed on the `m=audio` line, with its `a=rtpmap` if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFormat {
    /// RTP payload type.
    pub payload_type: u8,
    /// Encoding name from `a=rtpmap` (e.g. `PCMU`, `telephone-event`).
    pub encoding: Option<String>,
    /// Clock rate from `a=rtpmap`.
    pub clock_rate: Option<u32>,
}

impl PayloadFormat {
    /// The G.711 codec this format is, if it is one at 8 kHz.
    pub fn codec(&self) -> Option<AudioCodec> {
        match (&self.encoding, self.clock_rate) {
            (Some(name), rate) if rate.is_none_or(|r| r == 8000) => {
                if name.eq_ignore_ascii_case("PCMU") {
                    Some(AudioCodec::Pcmu)
                } else if name.eq_ignore_ascii_case("PCMA") {
                    Some(AudioCodec::Pcma)
                } else {
                    None
                }
            }
            (Some(_), _) => None,
            // Static payload types need no rtpmap (RFC 3551).
            (None, _) => match self.payload_type {
                0 => Some(AudioCodec::Pcmu),
                8 => Some(AudioCodec::Pcma),
                _ => None,
            },
        }
    }

    /// Whether this format is RFC 4733 telephone-events at 8 kHz.
    pub fn is_telephone_event(&self) -> bool {
        self.encoding
            .as_deref()
            .is_some_and(|name| name.eq_ignore_ascii_case("telephone-event"))
            && self.clock_rate.is_none_or(|rate| rate == 8000)
    }
}

/// The audio stream a far end described in its offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioDescription {
    /// Where the far end wants RTP (media-level `c=` over session-level).
    pub address: IpAddr,
    /// RTP port; 0 means the stream is rejected or removed.
    pub port: u16,
    /// RTCP port from `a=rtcp` (RFC 3605), if given; otherwise RTP port + 1.
    pub rtcp_port: Option<u16>,
    /// Payload formats in the far end's order of preference.
    pub formats: Vec<PayloadFormat>,
    /// The far end's direction; `c=0.0.0.0` (RFC 2543 hold) counts as not receiving.
    pub direction: Direction,
}

impl AudioDescription {
    /// Where to send RTP.
    pub fn rtp_target(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    /// Where to send RTCP.
    pub fn rtcp_target(&self) -> SocketAddr {
        let port = self
            .rtcp_port
            .unwrap_or_else(|| self.port.saturating_add(1));
        SocketAddr::new(self.address, port)
    }

    /// The payload type of telephone-events, if listed.
    pub fn telephone_event(&self) -> Option<u8> {
        self.formats
            .iter()
            .find(|f| f.is_telephone_event())
            .map(|f| f.payload_type)
    }
}

/// Why an SDP body cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// The body is not UTF-8 text.
    #[error("SDP body is not UTF-8 text")]
    NotText,
    /// A line this parser needs is malformed.
    #[error("SDP line {line} (`{text}`) is malformed: {reason}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The line, shortened.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No `m=audio` section.
    #[error("SDP has no audio stream (no `m=audio` line)")]
    NoAudio,
    /// The audio stream uses a profile other than plain RTP (e.g. SRTP).
    #[error("SDP audio stream uses profile `{0}`; only RTP/AVP (unencrypted RTP) is supported")]
    UnsupportedProfile(String),
    /// No connection address for the audio stream.
    #[error("SDP audio stream has no connection address (`c=` line)")]
    NoConnection,
    /// The audio stream was rejected or removed (port 0).
    #[error("SDP audio stream is disabled (port 0)")]
    StreamDisabled,
    /// None of the offered codecs is PCMU or PCMA at 8 kHz.
    #[error("SDP offers no codec this server speaks (PCMU or PCMA at 8 kHz); offered: {0}")]
    NoCommonCodec(String),
}

/// Parses the first audio stream of an SDP body.
pub fn parse_sdp(body: &[u8]) -> Result<AudioDescription, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    parse_sdp_text(text)
}

/// Parses the first audio stream of an SDP text.
pub fn parse_sdp_text(text: &str) -> Result<AudioDescription, SdpError> {
    let mut session_address: Option<IpAddr> = None;
    let mut session_direction = Direction::SendRecv;
    let mut audio: Option<AudioSection> = None;
    // Once past the first audio section, later sections are skipped.
    let mut section = Section::Session;

    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r').trim();
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        let bad = |reason| SdpError::BadLine {
            line: index + 1,
            text: line.chars().take(80).collect(),
            reason,
        };
        match kind {
            "m" => {
                section = if audio.is_none() && value.starts_with("audio ") {
                    if let Some(proto) = value.split_whitespace().nth(2)
                        && !is_plain_rtp(proto)
                    {
                        return Err(SdpError::UnsupportedProfile(
                            proto.chars().take(40).collect(),
                        ));
                    }
                    audio = Some(AudioSection::parse(value).map_err(bad)?);
                    Section::Audio
                } else {
                    Section::Other
                };
            }
            "c" => {
                let address = parse_connection(value).map_err(bad)?;
                match section {
                    Section::Session => session_address = Some(address),
                    Section::Audio => {
                        if let Some(audio) = audio.as_mut() {
                            audio.address = Some(address);
                        }
                    }
                    Section::Other => {}
                }
            }
            "a" => {
                let (name, attribute_value) = match value.split_once(':') {
                    Some((name, v)) => (name, Some(v)),
                    None => (value, None),
                };
                if let Some(direction) = Direction::from_attribute(name) {
                    match section {
                        Section::Session => session_direction = direction,
                        Section::Audio => {
                            if let Some(audio) = audio.as_mut() {
                                audio.direction = Some(direction);
                            }
                        }
                        Section::Other => {}
                    }
                    continue;
                }
                if section != Section::Audio {
                    continue;
                }
                let Some(audio) = audio.as_mut() else {
                    continue;
                };
                match (name, attribute_value) {
                    ("rtpmap", Some(v)) => audio.apply_rtpmap(v).map_err(bad)?,
                    ("rtcp", Some(v)) => {
                        let port = v.split_whitespace().next().unwrap_or_default();
                        audio.rtcp_port = Some(port.parse().map_err(|_| bad("bad RTCP port"))?);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    let audio = audio.ok_or(SdpError::NoAudio)?;
    let address = audio
        .address
        .or(session_address)
        .ok_or(SdpError::NoConnection)?;
    let mut direction = audio.direction.unwrap_or(session_direction);
    if address.is_unspecified() {
        // RFC 2543 hold: "send nothing to me".
        direction = match direction {
            Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
            Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
        };
    }
    Ok(AudioDescription {
        address,
        port: audio.port,
        rtcp_port: audio.rtcp_port,
        formats: audio.formats,
        direction,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Session,
    Audio,
    Other,
}

/// The audio section while it is being read.
struct AudioSection {
    port: u16,
    formats: Vec<PayloadFormat>,
    address: Option<IpAddr>,
    rtcp_port: Option<u16>,
    direction: Option<Direction>,
}

impl AudioSection {
    /// Reads `audio <port>[/<count>] <proto> <fmt>...`.
    fn parse(value: &str) -> Result<AudioSection, &'static str> {
        let mut fields = value.split_whitespace().skip(1);
        let port = fields.next().ok_or("no port")?;
        let port = port.split('/').next().unwrap_or_default();
        let port: u16 = port.parse().map_err(|_| "bad port")?;
        // The profile was checked by the caller (`is_plain_rtp`).
        fields.next().ok_or("no transport protocol")?;
        let mut formats = Vec::new();
        for format in fields {
            let payload_type: u8 = format.parse().map_err(|_| "bad payload type")?;
            if payload_type > 127 {
                return Err("payload type above 127");
            }
            formats.push(PayloadFormat {
                payload_type,
                encoding: None,
                clock_rate: None,
            });
        }
        Ok(AudioSection {
            port,
            formats,
            address: None,
            rtcp_port: None,
            direction: None,
        })
    }

    /// Applies `a=rtpmap:<pt> <name>/<rate>[/<channels>]` to the listed format.
    fn apply_rtpmap(&mut self, value: &str) -> Result<(), &'static str> {
        let (payload_type, mapping) = value.split_once(' ').ok_or("rtpmap without encoding")?;
        let payload_type: u8 = payload_type
            .trim()
            .parse()
            .map_err(|_| "bad rtpmap payload type")?;
        let mut parts = mapping.trim().split('/');
        let name = parts.next().unwrap_or_default().to_string();
        let clock_rate = match parts.next() {
            Some(rate) => Some(rate.parse().map_err(|_| "bad rtpmap clock rate")?),
            None => None,
        };
        // An rtpmap for a format not on the m= line is ignored, as RFC 4566 leaves it unused.
        if let Some(format) = self
            .formats
            .iter_mut()
            .find(|f| f.payload_type == payload_type)
        {
            format.encoding = Some(name);
            format.clock_rate = clock_rate;
        }
        Ok(())
    }
}

/// Whether an `m=` transport protocol is unencrypted RTP (with or without RTCP feedback).
fn is_plain_rtp(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/AVP") || proto.eq_ignore_ascii_case("RTP/AVPF")
}

/// Reads `IN IP4 <address>[/ttl]` or `IN IP6 <address>`.
fn parse_connection(value: &str) -> Result<IpAddr, &'static str> {
    let mut fields = value.split_whitespace();
    if fields.next() != Some("IN") {
        return Err("network type is not IN");
    }
    let address_type = fields.next().ok_or("no address type")?;
    let address = fields.next().ok_or("no address")?;
    let address = address.split('/').next().unwrap_or_default();
    let ip: IpAddr = address
        .parse()
        .map_err(|_| "address is not an IP literal")?;
    match (address_type, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        _ => Err("address does not match its address type"),
    }
}

/// What both sides agreed on for the call's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec both directions use.
    pub codec: AudioCodec,
    /// Its payload type on this call.
    pub payload_type: u8,
    /// The telephone-event payload type, if both sides support RFC 4733.
    pub telephone_event: Option<u8>,
    /// This side's direction.
    pub direction: Direction,
    /// Where the far end wants RTP.
    pub remote_rtp: SocketAddr,
    /// Where the far end wants RTCP.
    pub remote_rtcp: SocketAddr,
}

/// Answers a far end's offer: the caller's first codec this side speaks, telephone-events if
/// offered, and the reverse of the caller's direction.
pub fn answer_offer(offer: &AudioDescription) -> Result<Negotiated, SdpError> {
    choose(offer, offer.direction.reversed())
}

/// Reads the far end's answer to this side's offer ([`write_offer`]): the first codec it
/// chose, telephone-events if it kept them.
pub fn accept_answer(answer: &AudioDescription) -> Result<Negotiated, SdpError> {
    choose(answer, answer.direction.reversed())
}

fn choose(remote: &AudioDescription, direction: Direction) -> Result<Negotiated, SdpError> {
    if remote.port == 0 {
        return Err(SdpError::StreamDisabled);
    }
    let (format, codec) = remote
        .formats
        .iter()
        .find_map(|f| f.codec().map(|codec| (f, codec)))
        .ok_or_else(|| SdpError::NoCommonCodec(describe_formats(&remote.formats)))?;
    Ok(Negotiated {
        codec,
        payload_type: format.payload_type,
        telephone_event: remote.telephone_event(),
        direction,
        remote_rtp: remote.rtp_target(),
        remote_rtcp: remote.rtcp_target(),
    })
}

fn describe_formats(formats: &[PayloadFormat]) -> String {
    if formats.is_empty() {
        return "nothing".into();
    }
    let names: Vec<String> = formats
        .iter()
        .map(|f| match (&f.encoding, f.clock_rate) {
            (Some(name), Some(rate)) => format!("{name}/{rate}"),
            (Some(name), None) => name.clone(),
            (None, _) => format!("payload type {}", f.payload_type),
        })
        .collect();
    names.join(", ")
}

/// This side's audio endpoint, as written into its SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAudio {
    /// `o=` session id: fixed for the call.
    pub session_id: u64,
    /// `o=` version: incremented whenever the description changes.
    pub session_version: u64,
    /// Address announced for RTP (public IP behind 1:1 NAT).
    pub address: IpAddr,
    /// The call's RTP port (RTCP on the next one).
    pub port: u16,
}

/// Writes an offer: PCMU, PCMA and telephone-events, send and receive.
pub fn write_offer(local: &LocalAudio) -> String {
    let mut sdp = session_header(local);
    let te = OFFERED_TELEPHONE_EVENT;
    let _ = write!(
        sdp,
        "m=audio {} RTP/AVP 0 8 {te}\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:{te} telephone-event/8000\r\n\
         a=fmtp:{te} 0-15\r\n\
         a=ptime:{PTIME_MS}\r\n\
         a=sendrecv\r\n",
        local.port
    );
    sdp
}

/// Writes the answer matching `negotiated` (or a re-offer of the current session when the far
/// end sent a re-INVITE without SDP).
pub fn write_answer(local: &LocalAudio, negotiated: &Negotiated) -> String {
    let mut sdp = session_header(local);
    let pt = negotiated.payload_type;
    let _ = write!(sdp, "m=audio {} RTP/AVP {pt}", local.port);
    if let Some(te) = negotiated.telephone_event {
        let _ = write!(sdp, " {te}");
    }
    let _ = write!(
        sdp,
        "\r\na=rtpmap:{pt} {}/8000\r\n",
        negotiated.codec.encoding_name()
    );
    if let Some(te) = negotiated.telephone_event {
        let _ = write!(
            sdp,
            "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-15\r\n"
        );
    }
    let _ = write!(
        sdp,
        "a=ptime:{PTIME_MS}\r\na={}\r\n",
        negotiated.direction.attribute()
    );
    sdp
}

fn session_header(local: &LocalAudio) -> String {
    let family = match local.address {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    };
    format!(
        "v=0\r\n\
         o=viva {} {} IN {family} {}\r\n\
         s=viva\r\n\
         c=IN {family} {}\r\n\
         t=0 0\r\n",
        local.session_id, local.session_version, local.address, local.address
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
        c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

    const BARESIP_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\n\
        t=0 0\r\na=tool:baresip\r\nm=audio 10000 RTP/AVP 96 8 0 101\r\nb=AS:64\r\n\
        a=rtpmap:96 opus/48000/2\r\na=fmtp:96 stereo=1\r\na=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n\
        a=rtcp:10001\r\na=sendrecv\r\nm=video 10002 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n\
        a=sendonly\r\n";

    #[test]
    fn parses_sipp_offer() {
        let offer = parse_sdp(SIPP_OFFER.as_bytes()).unwrap();
        assert_eq!(offer.address, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(offer.port, 6000);
        assert_eq!(offer.direction, Direction::SendRecv);
        assert_eq!(offer.rtcp_target().port(), 6001);
        let negotiated = answer_offer(&offer).unwrap();
        assert_eq!(negotiated.codec, AudioCodec::Pcmu);
        assert_eq!(negotiated.payload_type, 0);
        assert_eq!(negotiated.telephone_event, None);
        assert_eq!(negotiated.remote_rtp, "127.0.0.1:6000".parse().unwrap());
    }

    #[test]
    fn prefers_the_callers_first_supported_codec_and_keeps_telephone_events() {
        let offer = parse_sdp(BARESIP_OFFER.as_bytes()).unwrap();
        assert_eq!(offer.formats.len(), 4);
        assert_eq!(offer.rtcp_port, Some(10001));
        // The video section's sendonly must not leak into audio.
        assert_eq!(offer.direction, Direction::SendRecv);
        let negotiated = answer_offer(&offer).unwrap();
        assert_eq!(negotiated.codec, AudioCodec::Pcma);
        assert_eq!(negotiated.payload_type, 8);
        assert_eq!(negotiated.telephone_event, Some(101));
        assert_eq!(negotiated.direction, Direction::SendRecv);
        assert_eq!(negotiated.remote_rtcp.port(), 10001);
    }

    #[test]
    fn dynamic_payload_type_for_g711_is_honoured() {
        let sdp =
            "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 112\r\na=rtpmap:112 pcmu/8000\r\n";
        let negotiated = answer_offer(&parse_sdp_text(sdp).unwrap()).unwrap();
        assert_eq!(negotiated.codec, AudioCodec::Pcmu);
        assert_eq!(negotiated.payload_type, 112);
    }

    #[test]
    fn no_common_codec_names_what_was_offered() {
        let sdp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 9 96\r\n\
            a=rtpmap:9 G722/8000\r\na=rtpmap:96 opus/48000/2\r\n";
        let err = answer_offer(&parse_sdp_text(sdp).unwrap()).unwrap_err();
        assert_eq!(err, SdpError::NoCommonCodec("G722/8000, opus/48000".into()));
        // PCMU at 16 kHz is not G.711.
        let sdp = "c=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 0\r\na=rtpmap:0 PCMU/16000\r\n";
        assert!(matches!(
            answer_offer(&parse_sdp_text(sdp).unwrap()),
            Err(SdpError::NoCommonCodec(_))
        ));
    }

    #[test]
    fn hold_offers_get_matching_answers() {
        let held = SIPP_OFFER.replace(
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=rtpmap:0 PCMU/8000\r\na=sendonly\r\n",
        );
        let negotiated = answer_offer(&parse_sdp_text(&held).unwrap()).unwrap();
        assert_eq!(negotiated.direction, Direction::RecvOnly);
        assert!(!negotiated.direction.sends());

        let inactive = format!("{SIPP_OFFER}a=inactive\r\n");
        let negotiated = answer_offer(&parse_sdp_text(&inactive).unwrap()).unwrap();
        assert_eq!(negotiated.direction, Direction::Inactive);

        // Session-level direction applies when the media section has none.
        let session_level = SIPP_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
        let negotiated = answer_offer(&parse_sdp_text(&session_level).unwrap()).unwrap();
        assert_eq!(negotiated.direction, Direction::RecvOnly);

        // RFC 2543 hold.
        let old_hold = SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        let negotiated = answer_offer(&parse_sdp_text(&old_hold).unwrap()).unwrap();
        assert_eq!(negotiated.direction, Direction::RecvOnly);
    }

    #[test]
    fn media_level_connection_overrides_session_level() {
        let sdp =
            "v=0\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\nc=IN IP4 10.0.0.2\r\n";
        let offer = parse_sdp_text(sdp).unwrap();
        assert_eq!(offer.address, "10.0.0.2".parse::<IpAddr>().unwrap());
        let sdp6 = "c=IN IP6 2001:db8::1\r\nm=audio 4000 RTP/AVP 8\r\n";
        assert_eq!(
            parse_sdp_text(sdp6).unwrap().address,
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn rejects_unusable_descriptions() {
        assert_eq!(parse_sdp(&[0xFF, 0xFE]), Err(SdpError::NotText));
        assert_eq!(
            parse_sdp_text("v=0\r\nc=IN IP4 1.2.3.4\r\n"),
            Err(SdpError::NoAudio)
        );
        assert_eq!(
            parse_sdp_text("v=0\r\nm=audio 4000 RTP/AVP 0\r\n"),
            Err(SdpError::NoConnection)
        );
        assert!(matches!(
            parse_sdp_text("c=IN IP4 host.example\r\nm=audio 4000 RTP/AVP 0\r\n"),
            Err(SdpError::BadLine { line: 1, .. })
        ));
        assert!(matches!(
            parse_sdp_text("c=IN IP4 1.2.3.4\r\nm=audio 99999 RTP/AVP 0\r\n"),
            Err(SdpError::BadLine { line: 2, .. })
        ));
        assert_eq!(
            parse_sdp_text("c=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/SAVP 0\r\n"),
            Err(SdpError::UnsupportedProfile("RTP/SAVP".into()))
        );
        let disabled = parse_sdp_text("c=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n").unwrap();
        assert_eq!(answer_offer(&disabled), Err(SdpError::StreamDisabled));
    }

    #[test]
    fn offer_and_answer_round_trip_through_the_parser() {
        let local = LocalAudio {
            session_id: 42,
            session_version: 1,
            address: "192.0.2.1".parse().unwrap(),
            port: 30_000,
        };
        let offer = parse_sdp_text(&write_offer(&local)).unwrap();
        assert_eq!(offer.rtp_target(), "192.0.2.1:30000".parse().unwrap());
        assert_eq!(offer.telephone_event(), Some(OFFERED_TELEPHONE_EVENT));
        let codecs: Vec<_> = offer.formats.iter().filter_map(|f| f.codec()).collect();
        assert_eq!(codecs, vec![AudioCodec::Pcmu, AudioCodec::Pcma]);

        let negotiated = answer_offer(&parse_sdp(BARESIP_OFFER.as_bytes()).unwrap()).unwrap();
        let answer_text = write_answer(&local, &negotiated);
        assert!(answer_text.contains("m=audio 30000 RTP/AVP 8 101\r\n"));
        assert!(answer_text.contains("o=viva 42 1 IN IP4 192.0.2.1\r\n"));
        let answer = parse_sdp_text(&answer_text).unwrap();
        let accepted = accept_answer(&answer).unwrap();
        assert_eq!(accepted.codec, AudioCodec::Pcma);
        assert_eq!(accepted.telephone_event, Some(101));
        assert_eq!(accepted.remote_rtp, "192.0.2.1:30000".parse().unwrap());
    }

    #[test]
    fn garbage_never_panics() {
        let seeds = [SIPP_OFFER, BARESIP_OFFER];
        for seed in seeds {
            let bytes = seed.as_bytes();
            for cut in 0..bytes.len() {
                let _ = parse_sdp(&bytes[..cut]);
                let mut flipped = bytes.to_vec();
                flipped[cut] ^= 0x5A;
                let _ = parse_sdp(&flipped);
            }
        }
    }
}
