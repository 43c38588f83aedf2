//! Bad input from the network: malformed SIP, broken or unacceptable SDP, retransmitted
//! INVITEs, RTP from strangers and garbage on the media port; and INVITEs the server has no
//! room for. Driven by a hand-written UAC so every byte is under the test's control.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::*;
use tokio::net::UdpSocket;
use tokio::time::timeout;
use viva_call::CallOutput;
use viva_media::PcmFrame;
use viva_transport_sip::proto::rtp::{RtpHeader, build_rtp, parse_rtp};
use viva_transport_sip::proto::sdp::parse_sdp_text;

/// A minimal SIP user agent over UDP: one dialog, messages written by hand.
struct RawUac {
    socket: UdpSocket,
    server: SocketAddr,
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    cseq: u32,
}

/// A response as text, with its status code.
struct Response {
    status: u16,
    text: String,
}

impl Response {
    fn body(&self) -> &str {
        self.text.split("\r\n\r\n").nth(1).unwrap_or_default()
    }

    fn to_tag(&self) -> Option<String> {
        let to = self
            .text
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("to:"))?;
        let tag = to.split(";tag=").nth(1)?;
        Some(tag.split([';', '>', ' ']).next()?.trim().to_string())
    }
}

impl RawUac {
    async fn new(server: SocketAddr, name: &str) -> RawUac {
        RawUac {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            server,
            call_id: format!("{name}-{}", rand::random::<u32>()),
            from_tag: format!("{}", rand::random::<u32>()),
            to_tag: None,
            cseq: 1,
        }
    }

    fn local(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    fn request(&self, method: &str, branch: &str, body: Option<(&str, &str)>) -> String {
        let local = self.local();
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let cseq_method = if method == "ACK" { "ACK" } else { method };
        let (content, body) = match body {
            Some((content_type, body)) => (format!("Content-Type: {content_type}\r\n"), body),
            None => (String::new(), ""),
        };
        format!(
            "{method} sip:4711@{server} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
             From: <sip:tester@{local}>;tag={from}\r\n\
             To: <sip:4711@{server}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {cseq_method}\r\n\
             Contact: <sip:tester@{local}>\r\n\
             Max-Forwards: 70\r\n\
             {content}Content-Length: {len}\r\n\r\n{body}",
            server = self.server,
            from = self.from_tag,
            call_id = self.call_id,
            cseq = self.cseq,
            len = body.len(),
        )
    }

    async fn send(&self, text: &str) {
        self.socket
            .send_to(text.as_bytes(), self.server)
            .await
            .unwrap();
    }

    async fn recv(&self, limit: Duration) -> Option<Response> {
        let mut buf = vec![0u8; 65_535];
        let (len, _) = timeout(limit, self.socket.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        let text = String::from_utf8_lossy(&buf[..len]).to_string();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        Some(Response { status, text })
    }

    /// Sends an INVITE and returns its final response (after any provisional ones).
    async fn invite(&mut self, sdp: &str) -> Response {
        let branch = format!("inv{}", self.cseq);
        let request = self.request("INVITE", &branch, Some(("application/sdp", sdp)));
        self.send(&request).await;
        self.final_response().await
    }

    async fn final_response(&mut self) -> Response {
        loop {
            let response = self
                .recv(Duration::from_secs(10))
                .await
                .expect("a response");
            if response.status >= 200 {
                if let Some(tag) = response.to_tag() {
                    self.to_tag = Some(tag);
                }
                return response;
            }
        }
    }

    async fn ack(&self) {
        let branch = format!("ack{}", self.cseq);
        self.send(&self.request("ACK", &branch, None)).await;
    }

    async fn bye(&mut self) -> u16 {
        self.cseq += 1;
        let branch = format!("bye{}", self.cseq);
        self.send(&self.request("BYE", &branch, None)).await;
        self.final_response().await.status
    }
}

fn offer(media: SocketAddr, formats: &str, rtpmaps: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {formats}\r\n{rtpmaps}",
        ip = media.ip(),
        port = media.port()
    )
}

fn pcmu_offer(media: SocketAddr) -> String {
    offer(media, "0", "a=rtpmap:0 PCMU/8000\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sip_is_ignored_and_calls_still_work() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let server = endpoint.udp_addr().unwrap();
    let junk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let garbage: Vec<Vec<u8>> = vec![
        (0..=255u8).collect(),
        b"INVITE sip:x SIP/2.0\r\n\r\n".to_vec(),
        b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: nonsense\r\nCSeq: abc\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKnope\r\n\r\n".to_vec(),
        vec![b'A'; 60_000],
        b"\r\n\r\n".to_vec(),
    ];
    for datagram in &garbage {
        junk.send_to(datagram, server).await.unwrap();
    }
    // An INVITE whose Content-Length promises more than it carries.
    let liar = RawUac::new(server, "liar").await;
    let request = liar
        .request("INVITE", "liar1", Some(("application/sdp", "v=0\r\n")))
        .replace("Content-Length: 5", "Content-Length: 500");
    liar.send(&request).await;

    // OPTIONS are answered, and a real call goes through afterwards.
    let uac = RawUac::new(server, "options").await;
    uac.send(&uac.request("OPTIONS", "opt1", None)).await;
    let options = uac
        .recv(Duration::from_secs(5))
        .await
        .expect("OPTIONS answered");
    assert_eq!(options.status, 200);
    assert!(
        options.text.contains("INVITE"),
        "Allow lists INVITE: {}",
        options.text
    );

    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut caller = RawUac::new(server, "after-junk").await;
    let answer = caller
        .invite(&pcmu_offer(media.local_addr().unwrap()))
        .await;
    assert_eq!(answer.status, 200);
    caller.ack().await;
    let call = next_call(&mut incoming, Duration::from_secs(5)).await;
    assert_eq!(call.dialled, "4711");
    assert_eq!(caller.bye().await, 200);
    let _ = liar.recv(Duration::from_millis(10)).await;
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_sdp_is_refused_with_488() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let server = endpoint.udp_addr().unwrap();
    let media: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let cases = [
        (
            "broken",
            "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio notaport RTP/AVP 0\r\n".to_string(),
        ),
        (
            "no audio",
            "v=0\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n".to_string(),
        ),
        ("g722 only", offer(media, "9", "a=rtpmap:9 G722/8000\r\n")),
        ("srtp", offer(media, "0", "").replace("RTP/AVP", "RTP/SAVP")),
        (
            "binary",
            String::from_utf8_lossy(&[0xC3, 0x28, 0xFF, 0x00]).to_string(),
        ),
    ];
    for (name, sdp) in cases {
        let mut uac = RawUac::new(server, name).await;
        let response = uac.invite(&sdp).await;
        assert_eq!(response.status, 488, "{name}: {}", response.text);
        uac.ack().await;
    }
    assert!(
        timeout(Duration::from_millis(300), incoming.recv())
            .await
            .is_err(),
        "no call is handed over"
    );
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_invites_and_registers_from_one_address_gets_503_after_its_burst() {
    let settings = viva_transport_sip::SipSettings {
        source_rate: viva_transport_sip::SourceRate {
            per_second: 1,
            burst: 5,
        },
        ..loopback_settings()
    };
    let (endpoint, mut incoming) = start(settings).await;
    let server = endpoint.udp_addr().unwrap();
    // 60 INVITEs with unusable SDP (each answered 488 while admitted) and 60 REGISTERs, all
    // from one address within a few milliseconds.
    let mut statuses = Vec::new();
    for i in 0..60 {
        let mut uac = RawUac::new(server, &format!("flood{i}")).await;
        statuses.push(uac.invite("v=0\r\n").await.status);
        uac.ack().await;
        // Its own socket: a retransmitted INVITE response must not pass for this one's.
        let mut registrar = RawUac::new(server, &format!("register{i}")).await;
        let register = registrar
            .request("REGISTER", &format!("reg{i}"), None)
            .replacen("REGISTER sip:4711@", "REGISTER sip:", 1);
        registrar.send(&register).await;
        let response = registrar.final_response().await;
        if response.status == 503 {
            assert!(
                response.text.contains("Retry-After: "),
                "503 says when to retry: {}",
                response.text
            );
        }
        statuses.push(response.status);
    }
    let refused = statuses.iter().filter(|s| **s == 503).count();
    let admitted = statuses.len() - refused;
    // A burst of 5 plus at most a couple more earned during the run.
    assert!(
        (5..=8).contains(&admitted),
        "{admitted} admitted of {}: {statuses:?}",
        statuses.len()
    );
    // Another address is not affected (127.0.0.2 is loopback too).
    let other = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let mut uac = RawUac::new(server, "other").await;
    uac.socket = other;
    let response = uac
        .invite(&pcmu_offer("127.0.0.2:40000".parse().unwrap()))
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    uac.ack().await;
    let call = timeout(Duration::from_secs(5), incoming.recv())
        .await
        .expect("the call from the other address is handed over")
        .unwrap();
    assert_eq!(call.source.to_string(), "127.0.0.2");
    assert_eq!(call.trunk, None);
    assert_eq!(uac.bye().await, 200);
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_room_for_a_call_an_invite_gets_503_with_retry_after_before_it_rings() {
    let full = Arc::new(AtomicBool::new(true));
    let room = {
        let full = Arc::clone(&full);
        move || match full.load(Ordering::Relaxed) {
            true => Err(Duration::from_secs(120)),
            false => Ok(()),
        }
    };
    let (endpoint, mut incoming) = start_with_room(loopback_settings(), room).await;
    let server = endpoint.udp_addr().unwrap();
    let media: SocketAddr = "127.0.0.1:40002".parse().unwrap();

    let uac = RawUac::new(server, "full").await;
    let request = uac.request(
        "INVITE",
        "full1",
        Some(("application/sdp", &pcmu_offer(media))),
    );
    uac.send(&request).await;
    let mut responses = Vec::new();
    let refused = loop {
        let response = uac.recv(Duration::from_secs(10)).await.expect("a response");
        responses.push(response.status);
        if response.status >= 200 {
            break response;
        }
    };
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert!(
        refused.text.contains("Retry-After: 120\r\n"),
        "the 503 says when to call again: {}",
        refused.text
    );
    assert!(
        !responses.contains(&180),
        "a refused call never rings: {responses:?}"
    );
    uac.ack().await;
    assert!(
        timeout(Duration::from_millis(500), incoming.recv())
            .await
            .is_err(),
        "no call is handed over"
    );

    // Once a call ends the room is back, and the next caller is answered.
    full.store(false, Ordering::Relaxed);
    let mut uac = RawUac::new(server, "room").await;
    let answer = uac.invite(&pcmu_offer(media)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    uac.ack().await;
    let call = next_call(&mut incoming, Duration::from_secs(5)).await;
    assert_eq!(uac.bye().await, 200);
    drop(call);
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retransmitted_invite_makes_one_call() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let server = endpoint.udp_addr().unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut uac = RawUac::new(server, "dup").await;
    let invite = uac.request(
        "INVITE",
        "dup1",
        Some(("application/sdp", &pcmu_offer(media.local_addr().unwrap()))),
    );
    // The same INVITE three times, as a lossy network's retransmissions would deliver it.
    for _ in 0..3 {
        uac.send(&invite).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let answer = uac.final_response().await;
    assert_eq!(answer.status, 200);
    uac.ack().await;
    let first = next_call(&mut incoming, Duration::from_secs(5)).await;
    // A late retransmission after the ACK is absorbed too.
    uac.send(&invite).await;
    assert!(
        timeout(Duration::from_secs(1), incoming.recv())
            .await
            .is_err(),
        "exactly one call"
    );
    assert_eq!(uac.bye().await, 200);
    drop(first);
    endpoint.shutdown().await;
}

/// Builds a PCMU packet of `code` bytes.
fn pcmu_packet(sequence: u16, ssrc: u32, code: u8) -> Vec<u8> {
    build_rtp(
        &RtpHeader {
            marker: sequence == 0,
            payload_type: 0,
            sequence,
            timestamp: u32::from(sequence) * 160,
            ssrc,
        },
        &[code; 160],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_follows_the_real_source_and_ignores_strangers_and_garbage() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let server = endpoint.udp_addr().unwrap();
    // The caller is "behind NAT": its SDP names `signalled`, but its RTP comes from `real`.
    let signalled = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let real = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut uac = RawUac::new(server, "nat").await;
    let answer = uac
        .invite(&pcmu_offer(signalled.local_addr().unwrap()))
        .await;
    assert_eq!(answer.status, 200);
    uac.ack().await;
    let our_media = parse_sdp_text(answer.body()).unwrap().rtp_target();
    let mut call = next_call(&mut incoming, Duration::from_secs(5)).await.call;

    // 1.2 s of silence from the real source; loud packets and garbage from a stranger.
    let sender = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for sequence in 0..60u16 {
            tick.tick().await;
            real.send_to(&pcmu_packet(sequence, 7, 0xFF), our_media)
                .await
                .unwrap();
            if sequence >= 5 {
                stranger
                    .send_to(&pcmu_packet(sequence, 7, 0x80), our_media)
                    .await
                    .unwrap();
                stranger.send_to(&[0xDE, 0xAD], our_media).await.unwrap();
                stranger.send_to(&[0x40; 40], our_media).await.unwrap();
            }
        }
        real
    });
    let received = drain(&mut call, Duration::from_millis(1_500)).await;
    let real = sender.await.unwrap();
    assert!(received.frames >= 60, "{received:?}");
    assert_eq!(
        received.loud_frames, 0,
        "the stranger's loud audio never arrives"
    );

    // Interviewer audio goes back to where the caller's RTP came from, not to the SDP address.
    for n in 0..5u64 {
        let frame = PcmFrame::new(vec![0.25; 160], 8_000, Duration::from_millis(20 * n)).unwrap();
        call.outbound.send(CallOutput::Audio(frame)).await.unwrap();
    }
    let mut buf = [0u8; 2048];
    let mut packets = Vec::new();
    while let Ok(Ok((len, _))) = timeout(Duration::from_millis(300), real.recv_from(&mut buf)).await
    {
        if let Ok(packet) = parse_rtp(&buf[..len]) {
            packets.push(packet.header);
        }
    }
    assert_eq!(packets.len(), 5, "{packets:?}");
    assert!(packets[0].marker && packets[1..].iter().all(|p| !p.marker));
    assert!(
        packets
            .windows(2)
            .all(|w| w[1].sequence == w[0].sequence.wrapping_add(1))
    );
    assert!(
        packets
            .windows(2)
            .all(|w| w[1].timestamp == w[0].timestamp.wrapping_add(160))
    );
    let mut nothing = [0u8; 64];
    assert!(
        timeout(
            Duration::from_millis(100),
            signalled.recv_from(&mut nothing)
        )
        .await
        .is_err(),
        "nothing goes to the signalled address once the real source is known"
    );

    assert_eq!(uac.bye().await, 200);
    assert!(drain(&mut call, Duration::from_secs(3)).await.hung_up);
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_band_tones_become_keys() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let server = endpoint.udp_addr().unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut uac = RawUac::new(server, "inband").await;
    // No telephone-event offered: keys can only come as tones in the audio.
    let answer = uac.invite(&pcmu_offer(media.local_addr().unwrap())).await;
    assert_eq!(answer.status, 200);
    assert!(!answer.body().contains("telephone-event"));
    uac.ack().await;
    let our_media = parse_sdp_text(answer.body()).unwrap().rtp_target();
    let mut call = next_call(&mut incoming, Duration::from_secs(5)).await.call;

    // Silence, key 9 for 100 ms, silence, key # for 100 ms, silence: 1 s in all.
    let mut audio = vec![0.0f32; 1_600];
    audio.extend(viva_media::dtmf::tone('9', 8_000, 100).unwrap());
    audio.extend(vec![0.0; 1_600]);
    audio.extend(viva_media::dtmf::tone('#', 8_000, 100).unwrap());
    audio.extend(vec![0.0; 3_200]);
    let codes = viva_media::G711Law::MuLaw.encode(
        &audio
            .iter()
            .map(|&s| viva_media::f32_to_i16(s))
            .collect::<Vec<_>>(),
    );
    let sender = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for (sequence, chunk) in codes.chunks(160).enumerate() {
            tick.tick().await;
            let header = RtpHeader {
                marker: sequence == 0,
                payload_type: 0,
                sequence: sequence as u16,
                timestamp: sequence as u32 * 160,
                ssrc: 99,
            };
            media
                .send_to(&build_rtp(&header, chunk), our_media)
                .await
                .unwrap();
        }
    });
    let received = drain(&mut call, Duration::from_millis(1_500)).await;
    sender.await.unwrap();
    assert_eq!(received.keys, vec!['9', '#'], "{received:?}");
    assert_eq!(uac.bye().await, 200);
    endpoint.shutdown().await;
}
