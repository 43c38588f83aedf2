//! What the SIP transport does with bytes a far end controls, one function per fuzz target:
//! SIP datagrams, SDP bodies, DTMF INFO bodies and RTP datagrams (through a call's real
//! `RtpSession`). Where the transport reads something itself, the harness calls the
//! transport's own function (`viva_transport_sip::fuzzing`, `proto`), never a copy of it.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets`) and the stable regression test
//! `crates/transport-sip/tests/fuzz_corpus.rs`, which includes this file with `#[path]`, so the
//! kept corpus is replayed through exactly the calls the fuzzer made. Each function panics only
//! when the code under test breaks one of its promises (a crash, or a property asserted here);
//! every input, however broken, must otherwise return. The `bool` each returns says whether the
//! input was accepted as the real thing, which the regression test checks for the seed inputs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, UNIX_EPOCH};

use rsipstack::dialog::DialogId;
use rsipstack::dialog::authenticate::verify_digest;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::typed::Authorization;
use rsipstack::sip::{Method, Request, Response, SipMessage, StatusCodeKind, Transport};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transport::SipConnection;
use viva_call::{CallInput, CallOutput};
use viva_media::PcmFrame;
use viva_transport_sip::fuzzing::{call_id, is_in_dialog, parties};
use viva_transport_sip::proto::dtmf_info::parse_dtmf_info;
use viva_transport_sip::proto::rtp::{RTP_HEADER_LEN, RtpHeader, build_rtp, parse_rtp};
use viva_transport_sip::proto::sdp::{
    AudioCodec, Direction, LocalAudio, Negotiated, accept_answer, answer_offer, parse_sdp,
    write_answer,
};
use viva_transport_sip::proto::session::{
    MediaPort, RtpSession, SAMPLE_RATE, SessionOutput, Transmit,
};

/// The keys DTMF can carry.
const KEYS: &str = "0123456789*#ABCD";

/// The payload type the transport offers for telephone-events, and most peers use.
const TELEPHONE_EVENT_PT: u8 = 101;

/// Where the datagrams come from, for the `received`/`rport` Via rewriting.
fn source() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 5060)
}

/// This side's media endpoint, as written into answers.
fn local_audio() -> LocalAudio {
    LocalAudio {
        session_id: 4_242,
        session_version: 1,
        address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        port: 40_000,
    }
}

/// One SIP datagram, through what the UDP listener, the transaction layer and the call code do
/// with it: rsipstack's parse (`SipMessage::try_from`), the `received`/`rport` rewrite of the
/// top Via, transaction and dialog keys, then what the transport reads: caller and dialled
/// user, the Authorization header (parse and digest check, as admission does), and the body,
/// as SDP (INVITE, UPDATE, ACK, 2xx responses) or as a DTMF key (INFO).
///
/// Returns whether the datagram reached the transport's code (parsed, with transaction keys).
pub fn sip_datagram(data: &[u8]) -> bool {
    let Ok(message) = SipMessage::try_from(data) else {
        return false;
    };
    // The TCP listener rewrites Via the same way, with the transport's own rule for
    // `received`; both paths run.
    let over_tcp = SipConnection::update_msg_received(message.clone(), source(), Transport::Tcp);
    let Ok(message) = SipConnection::update_msg_received(message, source(), Transport::Udp) else {
        return false;
    };
    drop(over_tcp);
    // What goes back out is serialised from the parsed headers (responses echo them).
    let _ = message.to_bytes();
    match &message {
        SipMessage::Request(request) => request_reaches_transport(request),
        SipMessage::Response(response) => response_reaches_transport(response),
    }
}

fn request_reaches_transport(request: &Request) -> bool {
    if TransactionKey::from_request(request, TransactionRole::Server).is_err() {
        // The endpoint drops requests it cannot key; the transport never sees them.
        return false;
    }
    let _ = DialogId::try_from((request, TransactionRole::Server));
    let _ = request.cseq_header().map(|c| c.value().to_string());
    let _ = (call_id(request), is_in_dialog(request), parties(request));
    if request.method == Method::Invite
        && let Some(header) = request.authorization_header()
    {
        let raw = header.value();
        if let Ok(authorization) = Authorization::parse(raw) {
            let _ = verify_digest(&authorization, "trunk-password", &request.method, raw);
        }
    }
    if !request.body.is_empty() {
        match request.method {
            Method::Invite | Method::Update => {
                sdp_offer(&request.body);
            }
            Method::Ack => {
                let _ = parse_sdp(&request.body).and_then(|answer| accept_answer(&answer));
            }
            Method::Info => {
                let content_type = request.header_value("Content-Type").unwrap_or_default();
                dtmf_key(&content_type, &request.body);
            }
            _ => {}
        }
    }
    true
}

fn response_reaches_transport(response: &Response) -> bool {
    if TransactionKey::from_response(response, TransactionRole::Client).is_err() {
        return false;
    }
    let _code = u16::from(response.status_code.clone());
    let _ = response
        .to_header()
        .ok()
        .and_then(|to| to.tag().ok().flatten());
    if response.status_code.kind() == StatusCodeKind::Successful && !response.body.is_empty() {
        let _ = parse_sdp(&response.body).and_then(|answer| accept_answer(&answer));
    }
    true
}

/// An SDP offer, answered the way an inbound INVITE or a re-INVITE is: parse, choose the
/// codec, write the answer. The answer must read back (as the far end would read it) as what
/// was negotiated: same codec, payload types and media address, and the far end's own
/// direction.
///
/// Returns whether the offer was answerable.
pub fn sdp_offer(body: &[u8]) -> bool {
    let Ok(offer) = parse_sdp(body) else {
        return false;
    };
    let _ = (
        offer.rtp_target(),
        offer.rtcp_target(),
        offer.telephone_event(),
    );
    // The same description read as an answer to this side's offer (outbound calls).
    let _ = accept_answer(&offer);
    let Ok(negotiated) = answer_offer(&offer) else {
        return false;
    };
    let local = local_audio();
    let answer = write_answer(&local, &negotiated);
    let heard = parse_sdp(answer.as_bytes())
        .and_then(|description| accept_answer(&description))
        .unwrap_or_else(|e| {
            panic!("the answer written for an accepted offer does not read back: {e}\n{answer}")
        });
    assert_eq!(
        (
            heard.codec,
            heard.payload_type,
            heard.telephone_event,
            heard.remote_rtp
        ),
        (
            negotiated.codec,
            negotiated.payload_type,
            negotiated.telephone_event,
            SocketAddr::new(local.address, local.port),
        ),
        "the answer written for an accepted offer reads back as something else:\n{answer}"
    );
    assert_eq!(
        heard.direction, offer.direction,
        "the answer's direction does not mirror the offer's:\n{answer}"
    );
    true
}

/// A DTMF INFO request: the input's first line is the `Content-Type`, the rest the body.
///
/// Returns whether a key was read; a key is always one of 0-9, *, #, A-D.
pub fn dtmf_info(data: &[u8]) -> bool {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(newline) => (&data[..newline], &data[newline + 1..]),
        None => (data, &[][..]),
    };
    dtmf_key(&String::from_utf8_lossy(content_type), body)
}

fn dtmf_key(content_type: &str, body: &[u8]) -> bool {
    match parse_dtmf_info(content_type, body) {
        Ok(key) => {
            assert!(KEYS.contains(key), "DTMF INFO gave key {key:?}");
            true
        }
        Err(_) => false,
    }
}

/// A stream of RTP datagrams on a call's media port, each preceded by its length in one byte
/// (the last one runs to the end of the input), through the call's real `RtpSession`, one
/// datagram every 20 ms of made-up time, each answered by 20 ms of interviewer audio (whose
/// party clock restarts now and then, as when the PIN prompt hands over to the interview). The
/// call negotiated PCMA if the first datagram is PCMA RTP, else PCMU, with telephone-events.
///
/// Properties checked: a parsed packet's payload lies within the datagram after the header;
/// building a packet from the parsed header and payload parses back to the same; what the
/// session sends is RTP of one SSRC with consecutive sequence numbers and timestamps that never
/// go back, or RTCP that is never taken for RTP (they share the port with rtcp-mux peers);
/// caller audio comes in 20 ms frames at 8 kHz; keys are keypad keys.
///
/// Returns whether at least one datagram parsed as RTP.
pub fn rtp_stream(data: &[u8]) -> bool {
    let datagrams = length_prefixed(data);
    let first_is_pcma = datagrams
        .first()
        .and_then(|d| parse_rtp(d).ok())
        .is_some_and(|p| p.header.payload_type == 8);
    let codec = if first_is_pcma {
        AudioCodec::Pcma
    } else {
        AudioCodec::Pcmu
    };
    let caller = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 4_000);
    let negotiated = Negotiated {
        codec,
        payload_type: codec.static_payload_type(),
        telephone_event: Some(TELEPHONE_EVENT_PT),
        direction: Direction::SendRecv,
        remote_rtp: caller,
        remote_rtcp: SocketAddr::new(caller.ip(), caller.port() + 1),
    };
    let start = Instant::now();
    let mut now = start;
    let mut session = RtpSession::new(negotiated, start, UNIX_EPOCH);
    let mut sent = SentStream::default();
    let mut parsed_any = false;
    for (n, datagram) in datagrams.iter().enumerate() {
        now += Duration::from_millis(20);
        while session.poll_timeout() <= now {
            let due = session.poll_timeout();
            session.handle_timeout(due);
            sent.check(&mut session);
        }
        if let Ok(packet) = parse_rtp(datagram) {
            parsed_any = true;
            assert!(
                packet.payload.len() <= datagram.len() - RTP_HEADER_LEN,
                "RTP payload of {} bytes from a {}-byte datagram",
                packet.payload.len(),
                datagram.len()
            );
            let rebuilt = build_rtp(&packet.header, packet.payload);
            let reparsed = parse_rtp(&rebuilt).expect("a built RTP packet parses");
            assert_eq!(reparsed, packet, "RTP packet changed on a round trip");
        }
        session.on_datagram(MediaPort::Rtp, caller, datagram, now);
        sent.check(&mut session);

        // A new party every 64 frames, its clock starting at zero, after an end of speech.
        if n % 64 == 63 {
            session.on_call_output(CallOutput::EndOfSpeech, now);
        }
        let party_time = Duration::from_millis(20 * (n % 64) as u64);
        let frame =
            PcmFrame::new(vec![0.25; 160], SAMPLE_RATE, party_time).expect("8 kHz is a valid rate");
        session.on_call_output(CallOutput::Audio(frame), now);
        sent.check(&mut session);
    }
    session.close(now);
    sent.check(&mut session);
    parsed_any
}

/// Splits `[len][datagram][len][datagram]...`; the last datagram runs to the end.
fn length_prefixed(data: &[u8]) -> Vec<&[u8]> {
    let mut datagrams = Vec::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (datagram, tail) = tail.split_at(usize::from(len).min(tail.len()));
        datagrams.push(datagram);
        rest = tail;
    }
    datagrams
}

/// What the session has sent so far, to check the next packets against.
#[derive(Default)]
struct SentStream {
    last: Option<RtpHeader>,
}

impl SentStream {
    /// Checks and consumes everything the session asks for.
    fn check(&mut self, session: &mut RtpSession) {
        while let Some(output) = session.poll_output() {
            match output {
                SessionOutput::Transmit(Transmit {
                    port: MediaPort::Rtp,
                    datagram,
                    ..
                }) => {
                    let packet = parse_rtp(&datagram).expect("the session sends valid RTP");
                    assert_eq!(packet.payload.len(), 160, "one 20 ms G.711 payload");
                    if let Some(last) = self.last {
                        let header = packet.header;
                        assert_eq!(header.ssrc, last.ssrc, "the SSRC changed");
                        assert_eq!(
                            header.sequence,
                            last.sequence.wrapping_add(1),
                            "sequence numbers skip"
                        );
                        assert!(
                            (header.timestamp.wrapping_sub(last.timestamp) as i32) > 0,
                            "RTP timestamp went from {} back to {}",
                            last.timestamp,
                            header.timestamp
                        );
                    }
                    self.last = Some(packet.header);
                }
                SessionOutput::Transmit(Transmit {
                    port: MediaPort::Rtcp,
                    datagram,
                    ..
                }) => {
                    assert_eq!(datagram.len() % 4, 0, "RTCP not 32-bit aligned");
                    assert!(
                        parse_rtp(&datagram).is_err(),
                        "an RTCP packet this side sends parses as RTP"
                    );
                }
                SessionOutput::Conversation(CallInput::Audio(frame)) => {
                    assert_eq!(frame.sample_rate(), SAMPLE_RATE);
                    assert_eq!(frame.samples().len(), 160, "caller frames are 20 ms");
                }
                SessionOutput::Conversation(CallInput::Dtmf(key)) => {
                    assert!(KEYS.contains(key), "the session gave key {key:?}");
                }
                SessionOutput::Conversation(CallInput::HangUp) | SessionOutput::Event(_) => {}
            }
        }
    }
}
