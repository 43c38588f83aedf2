//! What the SIP transport does with bytes a far end controls, one function per fuzz target:
//! SIP datagrams, SDP bodies, DTMF INFO bodies and RTP datagrams.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets`) and the stable regression test
//! `crates/transport-sip/tests/fuzz_corpus.rs`, which includes this file with `#[path]`, so the
//! kept corpus is replayed through exactly the calls the fuzzer made. Each function panics only
//! when the code under test breaks one of its promises (a crash, or a property asserted here);
//! every input, however broken, must otherwise return. The `bool` each returns says whether the
//! input was accepted as the real thing, which the regression test checks for the seed inputs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rsipstack::dialog::DialogId;
use rsipstack::dialog::authenticate::verify_digest;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::typed::Authorization;
use rsipstack::sip::{Method, Request, Response, SipMessage, StatusCodeKind, Transport};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transport::SipConnection;
use viva_media::{G711Law, TelephoneEventReceiver};
use viva_transport_sip::proto::dtmf_info::parse_dtmf_info;
use viva_transport_sip::proto::rtcp::{ReceptionStats, SenderInfo, build_report};
use viva_transport_sip::proto::rtp::{RTP_HEADER_LEN, build_rtp, parse_rtp};
use viva_transport_sip::proto::sdp::{
    LocalAudio, accept_answer, answer_offer, parse_sdp, write_answer,
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
    let _call_id = request
        .call_id_header()
        .map(|h| h.value().to_string())
        .unwrap_or_default();
    let _in_dialog = request
        .to_header()
        .ok()
        .and_then(|to| to.tag().ok().flatten())
        .is_some();
    let _caller = request
        .from_header()
        .ok()
        .and_then(|from| from.typed().ok())
        .map(|from| match from.uri.user() {
            Some(user) => user.to_string(),
            None => from.uri.to_string(),
        });
    let _dialled = request.uri.user().unwrap_or_default().to_string();
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
/// (the last one runs to the end of the input), through what the media path does with them:
/// parse, reception statistics and RTCP reports, telephone-events, G.711 decoding.
///
/// Properties checked: a parsed packet's payload lies within the datagram after the header;
/// building a packet from the parsed header and payload parses back to the same; the RTCP
/// reports sent are never taken for RTP (they share the port with rtcp-mux peers); keys are
/// keypad keys; a G.711 payload decodes to one sample per byte.
///
/// Returns whether at least one datagram parsed as RTP.
pub fn rtp_stream(data: &[u8]) -> bool {
    let mut stats: Option<ReceptionStats> = None;
    let mut events = TelephoneEventReceiver::new();
    let mut parsed_any = false;
    let mut rest = data;
    let mut arrival: u32 = 0;
    while let Some((&len, tail)) = rest.split_first() {
        let (datagram, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        // 20 ms apart on the 8 kHz clock.
        arrival = arrival.wrapping_add(160);
        let Ok(packet) = parse_rtp(datagram) else {
            continue;
        };
        parsed_any = true;
        assert!(
            packet.payload.len() <= datagram.len() - RTP_HEADER_LEN,
            "RTP payload of {} bytes from a {}-byte datagram",
            packet.payload.len(),
            datagram.len()
        );
        let header = packet.header;
        let rebuilt = build_rtp(&header, packet.payload);
        let reparsed = parse_rtp(&rebuilt).expect("a built RTP packet parses");
        assert_eq!(
            reparsed.header, header,
            "RTP header changed on a round trip"
        );
        assert_eq!(
            reparsed.payload, packet.payload,
            "RTP payload changed on a round trip"
        );

        let stats = match &mut stats {
            Some(stats) if stats.ssrc() == header.ssrc => stats,
            other => other.insert(ReceptionStats::new(header.ssrc, header.sequence)),
        };
        stats.on_packet(header.sequence, header.timestamp, arrival);
        if arrival.is_multiple_of(160 * 8) {
            let block = stats.report_block();
            let sender = SenderInfo {
                ntp_timestamp: u64::from(arrival) << 16,
                rtp_timestamp: arrival,
                packets: arrival / 160,
                octets: arrival,
            };
            for sender in [None, Some(&sender)] {
                let report = build_report(0x5EED, sender, Some(&block), "viva@192.0.2.10");
                assert_eq!(report.len() % 4, 0, "RTCP report not 32-bit aligned");
                assert!(
                    parse_rtp(&report).is_err(),
                    "an RTCP report this side sends parses as RTP"
                );
            }
        }

        match header.payload_type {
            TELEPHONE_EVENT_PT => {
                if let Some(key) = events.push(header.timestamp, packet.payload) {
                    assert!(KEYS.contains(key), "telephone-event gave key {key:?}");
                }
            }
            0 | 8 => {
                let law = if header.payload_type == 0 {
                    G711Law::MuLaw
                } else {
                    G711Law::ALaw
                };
                assert_eq!(law.decode(packet.payload).len(), packet.payload.len());
            }
            _ => {}
        }
    }
    parsed_any
}
