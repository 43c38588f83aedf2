//! The RTP session on made-up time: every instant is computed from a start, nothing sleeps and
//! no socket is opened, so each test runs a call of seconds or minutes in microseconds and
//! gives the same result every run.

use std::io::Write;
use std::sync::{Arc, Mutex};

use viva_media::{G711Law, TelephoneEvent, f32_to_i16};

use super::*;
use crate::proto::rtp::RtpPacket;
use crate::proto::sdp::AudioCodec;

/// Where the caller's SDP says its media is.
fn signalled() -> SocketAddr {
    "192.0.2.7:4000".parse().unwrap()
}

fn negotiated() -> Negotiated {
    Negotiated {
        codec: AudioCodec::Pcmu,
        payload_type: 0,
        telephone_event: Some(101),
        direction: Direction::SendRecv,
        remote_rtp: signalled(),
        remote_rtcp: "192.0.2.7:4001".parse().unwrap(),
    }
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// One call's session and everything it asked for, with the time each was asked.
struct Line {
    session: RtpSession,
    start: Instant,
    now: Instant,
    outputs: Vec<(Duration, SessionOutput)>,
}

/// What the session sent, read back.
struct Sent {
    at: Duration,
    destination: SocketAddr,
    header: RtpHeader,
}

impl Line {
    fn new(negotiated: Negotiated) -> Line {
        let start = Instant::now();
        Line {
            session: RtpSession::new(negotiated, start, UNIX_EPOCH + Duration::from_secs(1 << 30)),
            start,
            now: start,
            outputs: Vec::new(),
        }
    }

    /// Runs the session's timers up to `at` after the start, as the socket loop would.
    fn run_until(&mut self, at: Duration) {
        let until = self.start + at;
        while self.session.poll_timeout() <= until {
            self.now = self.session.poll_timeout();
            self.session.handle_timeout(self.now);
            self.drain();
        }
        self.now = until;
    }

    /// An RTP-port datagram from `from` at `at`.
    fn receive(&mut self, at: Duration, from: SocketAddr, datagram: &[u8]) {
        self.run_until(at);
        self.session
            .on_datagram(MediaPort::Rtp, from, datagram, self.now);
        self.drain();
    }

    /// The conversation's `output` at `at`.
    fn hear(&mut self, at: Duration, output: CallOutput) {
        self.run_until(at);
        self.session.on_call_output(output, self.now);
        self.drain();
    }

    fn drain(&mut self) {
        let at = self.now - self.start;
        while let Some(output) = self.session.poll_output() {
            self.outputs.push((at, output));
        }
    }

    fn caller_frames(&self) -> Vec<&PcmFrame> {
        self.outputs
            .iter()
            .filter_map(|(_, output)| match output {
                SessionOutput::Conversation(CallInput::Audio(frame)) => Some(frame),
                _ => None,
            })
            .collect()
    }

    fn keys(&self) -> String {
        self.outputs
            .iter()
            .filter_map(|(_, output)| match output {
                SessionOutput::Conversation(CallInput::Dtmf(key)) => Some(*key),
                _ => None,
            })
            .collect()
    }

    fn events(&self) -> Vec<(Duration, MediaEvent)> {
        self.outputs
            .iter()
            .filter_map(|(at, output)| match output {
                SessionOutput::Event(event) => Some((*at, *event)),
                _ => None,
            })
            .collect()
    }

    fn transmits(&self, port: MediaPort) -> Vec<(Duration, &Transmit)> {
        self.outputs
            .iter()
            .filter_map(|(at, output)| match output {
                SessionOutput::Transmit(transmit) if transmit.port == port => Some((*at, transmit)),
                _ => None,
            })
            .collect()
    }

    fn sent_rtp(&self) -> Vec<Sent> {
        self.transmits(MediaPort::Rtp)
            .into_iter()
            .map(|(at, transmit)| {
                let RtpPacket { header, payload } =
                    parse_rtp(&transmit.datagram).expect("the session sends valid RTP");
                assert_eq!(payload.len(), FRAME_SAMPLES);
                Sent {
                    at,
                    destination: transmit.destination,
                    header,
                }
            })
            .collect()
    }
}

/// A 20 ms PCMU packet of one repeated code.
fn pcmu(sequence: u16, ssrc: u32, code: u8) -> Vec<u8> {
    pcmu_samples(sequence, ssrc, &[code; FRAME_SAMPLES])
}

fn pcmu_samples(sequence: u16, ssrc: u32, codes: &[u8]) -> Vec<u8> {
    let header = RtpHeader {
        marker: sequence == 0,
        payload_type: 0,
        sequence,
        timestamp: u32::from(sequence) * FRAME_SAMPLES as u32,
        ssrc,
    };
    build_rtp(&header, codes)
}

/// 20 ms of interviewer audio stamped `at` on the party's own clock.
fn interviewer(at: Duration) -> CallOutput {
    CallOutput::Audio(PcmFrame::new(vec![0.25; FRAME_SAMPLES], SAMPLE_RATE, at).unwrap())
}

/// A caller's RTP from `from`: `packets` silent packets 20 ms apart from `first_ms`.
fn talk(line: &mut Line, from: SocketAddr, first_ms: u64, packets: u16) {
    for sequence in 0..packets {
        line.receive(
            ms(first_ms + 20 * u64::from(sequence)),
            from,
            &pcmu(sequence, 7, 0xFF),
        );
    }
}

#[test]
fn latches_onto_the_first_valid_source_and_replies_there() {
    let mut line = Line::new(negotiated());
    let behind_nat: SocketAddr = "198.51.100.9:31000".parse().unwrap();
    let stranger: SocketAddr = "203.0.113.66:5004".parse().unwrap();
    // Garbage first: it teaches nothing about where the caller is.
    line.receive(ms(5), stranger, &[0xDE, 0xAD]);
    // The caller's real source (NAT), then a stranger's loud audio on the same stream.
    for sequence in 0..50u16 {
        let at = ms(10 + 20 * u64::from(sequence));
        line.receive(at, behind_nat, &pcmu(sequence, 7, 0xFF));
        line.receive(at, stranger, &pcmu(sequence + 1000, 8, 0x80));
    }
    line.hear(ms(1_000), interviewer(ms(1_000)));
    line.run_until(ms(1_100));
    assert!(
        line.caller_frames()
            .iter()
            .all(|frame| frame.samples().iter().all(|&s| s == 0.0)),
        "the stranger's loud audio never reaches the conversation"
    );
    // The signalled address is authoritative over the guess.
    line.receive(ms(1_110), signalled(), &pcmu(50, 7, 0xFF));
    line.hear(ms(1_120), interviewer(ms(1_020)));
    let sent = line.sent_rtp();
    let destinations: Vec<SocketAddr> = sent.iter().map(|s| s.destination).collect();
    assert_eq!(destinations, [behind_nat, signalled()]);
}

#[test]
fn reorders_conceals_and_paces_caller_audio_through_the_jitter_buffer() {
    let mut line = Line::new(negotiated());
    // Packet n is a constant level telling it apart; 2 and 3 swap, 6 is lost.
    let level = |sequence: u16| {
        let code = G711Law::MuLaw.encode(&[1_000 * (i16::try_from(sequence).unwrap() + 1)])[0];
        let decoded = viva_media::i16_to_f32(G711Law::MuLaw.decode(&[code])[0]);
        (code, decoded)
    };
    let order = [0u16, 1, 3, 2, 4, 5, 7, 8, 9, 10, 11];
    for (slot, &sequence) in order.iter().enumerate() {
        let (code, _) = level(sequence);
        line.receive(
            ms(100 + 20 * slot as u64),
            signalled(),
            &pcmu(sequence, 7, code),
        );
    }
    line.run_until(ms(2_000));
    let frames = line.caller_frames();
    // A frame every 20 ms, one frame of slack, stamped on the caller's continuous stream.
    assert_eq!(frames.len(), 2_000 / 20 - 1);
    for (n, frame) in frames.iter().enumerate() {
        assert_eq!(frame.sample_rate(), SAMPLE_RATE);
        assert_eq!(frame.samples().len(), FRAME_SAMPLES);
        assert_eq!(frame.timestamp(), ms(20 * n as u64));
    }
    let mut heard: Vec<Option<u16>> = frames
        .iter()
        .filter(|frame| frame.samples().iter().any(|&s| s != 0.0))
        .map(|frame| {
            (0..12).find(|&sequence| frame.samples() == [level(sequence).1; FRAME_SAMPLES])
        })
        .collect();
    // After the last packet the stream fades out: not what is checked here.
    heard.truncate(heard.iter().position(|h| *h == Some(11)).unwrap() + 1);
    // In order; the lost packet concealed (a fading copy of the one before), then the rest.
    assert_eq!(
        heard,
        [
            Some(0),
            Some(1),
            Some(2),
            Some(3),
            Some(4),
            Some(5),
            None,
            Some(7),
            Some(8),
            Some(9),
            Some(10),
            Some(11)
        ]
    );
}

/// A caller sending 20 ms PCMU packets back to back.
struct Caller {
    sequence: u16,
    at: Duration,
}

impl Caller {
    fn send(&mut self, line: &mut Line, codes: &[u8]) {
        for chunk in codes.chunks(FRAME_SAMPLES) {
            line.receive(self.at, signalled(), &pcmu_samples(self.sequence, 7, chunk));
            self.sequence += 1;
            self.at += FRAME;
        }
    }
}

/// A key as a 100 ms tone and 200 ms of silence, in PCMU.
fn tone(key: char) -> Vec<u8> {
    let mut audio = viva_media::dtmf::tone(key, SAMPLE_RATE, 100).unwrap();
    audio.extend(vec![0.0; 1_600]);
    let pcm: Vec<i16> = audio.into_iter().map(f32_to_i16).collect();
    G711Law::MuLaw.encode(&pcm)
}

#[test]
fn keys_come_from_telephone_events_and_from_tones_until_events_arrive() {
    let mut line = Line::new(negotiated());
    let mut caller = Caller {
        sequence: 0,
        at: ms(0),
    };
    // An in-band 4 while the caller sends no telephone-events.
    caller.send(&mut line, &tone('4'));
    line.run_until(caller.at + ms(200));
    assert_eq!(line.keys(), "4");

    // A 5 as RFC 4733 events: start, updates, three end packets, all of one press.
    caller.at += ms(300);
    for (n, end) in [false, false, false, true, true, true]
        .into_iter()
        .enumerate()
    {
        let event = TelephoneEvent::new('5', end, 10, 160 * (n as u16 + 1)).unwrap();
        let header = RtpHeader {
            marker: n == 0,
            payload_type: 101,
            sequence: caller.sequence,
            timestamp: 80_000,
            ssrc: 7,
        };
        line.receive(
            caller.at,
            signalled(),
            &build_rtp(&header, &event.to_bytes()),
        );
        caller.sequence += 1;
        caller.at += FRAME;
    }
    // Tones now would only double keys the events carry: an in-band 9 is not reported.
    caller.send(&mut line, &tone('9'));
    line.run_until(caller.at + ms(1_000));
    assert_eq!(line.keys(), "45");
}

#[test]
fn reports_go_out_every_five_seconds_to_the_callers_rtcp() {
    let mut line = Line::new(negotiated());
    let behind_nat: SocketAddr = "198.51.100.9:31000".parse().unwrap();
    let callers_rtcp: SocketAddr = "198.51.100.9:40000".parse().unwrap();
    // Nothing heard yet: the report goes to the signalled RTCP address, as a receiver report.
    line.run_until(ms(4_999));
    assert!(line.transmits(MediaPort::Rtcp).is_empty());
    line.run_until(ms(5_000));
    // The caller's RTP comes from elsewhere (NAT): its RTCP is presumed next to it.
    talk(&mut line, behind_nat, 5_000, 100);
    for n in 0..50 {
        line.hear(ms(7_000 + 20 * n), interviewer(ms(20 * n)));
    }
    line.run_until(ms(10_500));
    // Then the caller's own RTCP shows where it really is.
    line.session.on_datagram(
        MediaPort::Rtcp,
        callers_rtcp,
        &[0x80, 201, 0, 1, 0, 0, 0, 7],
        line.now,
    );
    line.run_until(ms(15_000));
    let reports = line.transmits(MediaPort::Rtcp);
    let summary: Vec<(Duration, SocketAddr, u8)> = reports
        .iter()
        .map(|(at, transmit)| (*at, transmit.destination, transmit.datagram[1]))
        .collect();
    assert_eq!(
        summary,
        [
            (ms(5_000), negotiated().remote_rtcp, 201),
            (ms(10_000), "198.51.100.9:31001".parse().unwrap(), 200),
            (ms(15_000), callers_rtcp, 200),
        ]
    );
    // A receiver report about nothing has no block; later ones report on the caller's SSRC.
    assert_eq!(reports[0].1.datagram[0], 0x80);
    assert_eq!(&reports[1].1.datagram[28..32], &7u32.to_be_bytes());

    // The sender report names the instant it was sent on the RTP clock and the wall clock.
    let first = &line.sent_rtp()[0];
    assert_eq!(first.at, ms(7_000));
    let origin = first.header.timestamp.wrapping_sub(7_000 * 8);
    let sender_report = &reports[1].1.datagram;
    let rtp_timestamp = u32::from_be_bytes(sender_report[16..20].try_into().unwrap());
    assert_eq!(rtp_timestamp, origin.wrapping_add(10_000 * 8));
    let ntp = u64::from_be_bytes(sender_report[8..16].try_into().unwrap());
    assert_eq!(ntp >> 32, (1 << 30) + 2_208_988_800 + 10);
    let packets = u32::from_be_bytes(sender_report[20..24].try_into().unwrap());
    assert_eq!(packets, 50);
    let ssrc = first.header.ssrc;

    // The end: a last report, then a BYE for the stream the call sent.
    line.session.close(line.now);
    line.drain();
    let goodbye = &line.transmits(MediaPort::Rtcp).last().unwrap().1.datagram;
    assert_eq!(goodbye[1], 200);
    let bye = &goodbye[goodbye.len() - 8..];
    assert_eq!(&bye[..4], &[0x81, 203, 0, 1]);
    assert_eq!(&bye[4..], &ssrc.to_be_bytes());
}

/// Sends `frames` interviewer frames in real time from `at`, stamped with their sending time.
fn say(line: &mut Line, at: &mut u64, frames: u64) {
    for _ in 0..frames {
        line.hear(ms(*at), interviewer(ms(*at)));
        *at += 20;
    }
}

#[test]
fn each_talkspurt_starts_with_the_marker_bit() {
    let mut line = Line::new(negotiated());
    let mut at = 0;
    say(&mut line, &mut at, 3);
    line.hear(ms(at), CallOutput::EndOfSpeech);
    say(&mut line, &mut at, 2);
    // A barge-in ends the talkspurt too.
    line.hear(ms(at), CallOutput::ClearPlayback);
    say(&mut line, &mut at, 2);
    // So does a hold and resume.
    line.session.renegotiate(negotiated(), line.now);
    say(&mut line, &mut at, 2);
    let sent = line.sent_rtp();
    let markers: Vec<bool> = sent.iter().map(|s| s.header.marker).collect();
    assert_eq!(
        markers,
        [true, false, false, true, false, true, false, true, false]
    );
    assert!(
        sent.windows(2)
            .all(|w| w[1].header.sequence == w[0].header.sequence.wrapping_add(1)),
        "one sequence-number space"
    );
    assert!(
        sent.windows(2)
            .all(|w| w[1].header.timestamp == w[0].header.timestamp.wrapping_add(160)),
        "frames sent in real time stay 160 samples apart"
    );
}

/// Linphone's complaint: the PIN prompt plays for 8 s, then the interview starts, and its
/// frames are stamped on the conversation's own clock, from zero. The RTP timestamps must
/// carry on from where the prompt left them, with the same SSRC and sequence numbers.
#[test]
fn the_interview_continues_the_prompts_timeline() {
    let mut line = Line::new(negotiated());
    // The prompt: 8 s of frames stamped on its clock (which started with the call).
    for n in 0..400u64 {
        line.hear(ms(20 * n), interviewer(ms(20 * n)));
    }
    line.hear(ms(8_000), CallOutput::EndOfSpeech);
    // The interview, half a second later: its own clock starts at zero.
    for n in 0..100u64 {
        line.hear(ms(8_500 + 20 * n), interviewer(ms(20 * n)));
    }
    line.hear(ms(10_500), CallOutput::EndOfSpeech);
    // A party whose clock runs far ahead of the call (a conversation joined late) cannot push
    // the timeline ahead of the call either.
    for n in 0..10u64 {
        line.hear(ms(11_000 + 20 * n), interviewer(ms(300_000 + 20 * n)));
    }
    // A party that starts over without an end of speech still starts a talkspurt.
    for n in 0..5u64 {
        line.hear(ms(12_000 + 20 * n), interviewer(ms(20 * n)));
    }
    let sent = line.sent_rtp();
    assert_eq!(sent.len(), 515);
    let talkspurts: Vec<usize> = (0..sent.len()).filter(|&i| sent[i].header.marker).collect();
    assert_eq!(talkspurts, [0, 400, 500, 510]);
    let ssrc = sent[0].header.ssrc;
    assert!(sent.iter().all(|s| s.header.ssrc == ssrc), "one SSRC");
    assert!(
        sent.windows(2)
            .all(|w| w[1].header.sequence == w[0].header.sequence.wrapping_add(1)),
        "one sequence-number space"
    );
    let origin = sent[0].header.timestamp;
    // Each packet's timestamp is its sending time on the session's clock, in samples.
    for s in &sent {
        let elapsed = s.header.timestamp.wrapping_sub(origin);
        assert_eq!(
            u128::from(elapsed),
            s.at.as_millis() * 8,
            "packet sent at {:?}",
            s.at
        );
    }
}

#[test]
fn a_pause_inside_a_talkspurt_advances_the_timeline_but_never_past_real_time() {
    let mut line = Line::new(negotiated());
    line.hear(ms(1_000), interviewer(ms(0)));
    // The party's clock says 200 ms passed (and so did real time).
    line.hear(ms(1_200), interviewer(ms(200)));
    // The party's clock says 5 s passed, but only 20 ms did.
    line.hear(ms(1_220), interviewer(ms(5_200)));
    // Frames handed over late in a burst keep their spacing.
    line.hear(ms(1_400), interviewer(ms(5_220)));
    line.hear(ms(1_400), interviewer(ms(5_240)));
    let sent = line.sent_rtp();
    let origin = sent[0].header.timestamp;
    let offsets: Vec<u32> = sent
        .iter()
        .map(|s| s.header.timestamp.wrapping_sub(origin))
        .collect();
    assert_eq!(offsets, [0, 1_600, 1_760, 1_920, 2_080]);
    assert!(sent.iter().skip(1).all(|s| !s.header.marker));
}

/// Linphone's other complaint: its STUN keepalives on the RTP port were logged as malformed
/// RTP. They, and RTCP multiplexed onto the RTP port, are expected traffic: no warning, no
/// latching, no audio.
#[test]
fn stun_keepalives_and_muxed_rtcp_are_no_malformed_rtp() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();
    let elsewhere: SocketAddr = "198.51.100.9:31000".parse().unwrap();
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    stun.extend_from_slice(&[0x5A; 12]);
    let receiver_report = [0x80, 201, 0, 1, 0, 0, 0, 7];
    let mut line = Line::new(negotiated());
    tracing::subscriber::with_default(subscriber, || {
        for n in 0..20 {
            line.receive(ms(25 * n), elsewhere, &stun);
            line.receive(ms(25 * n + 10), elsewhere, &receiver_report);
        }
        line.hear(ms(600), interviewer(ms(600)));
    });
    let text = logs.text();
    assert!(!text.contains("WARN"), "{text}");
    assert!(text.contains("ignoring STUN on the RTP port"), "{text}");
    assert!(text.contains("ignoring RTCP on the RTP port"), "{text}");
    assert_eq!(
        line.sent_rtp()[0].destination,
        signalled(),
        "neither latches the session"
    );
    assert!(
        line.caller_frames()
            .iter()
            .all(|f| f.samples().iter().all(|&s| s == 0.0))
    );

    // Garbage still is reported, once per interval.
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        line.receive(ms(700), elsewhere, &[0x40; 40]);
        line.receive(ms(720), elsewhere, &[0x40; 40]);
    });
    assert_eq!(logs.text().matches("ignoring malformed RTP").count(), 1);
}

/// Collects log lines in memory.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_silent_line_is_dead_after_a_minute_unless_held() {
    let mut line = Line::new(negotiated());
    talk(&mut line, signalled(), 0, 10);
    line.run_until(Duration::from_secs(120));
    let events = line.events();
    assert_eq!(events.len(), 1, "said once: {events:?}");
    let (at, event) = events[0];
    assert_eq!(event, MediaEvent::Dead);
    // A minute after the last packet (at 180 ms), on the next frame tick.
    assert!(at > ms(60_180) && at <= ms(60_200), "{at:?}");

    let mut held = Line::new(negotiated());
    held.session.renegotiate(
        Negotiated {
            direction: Direction::Inactive,
            ..negotiated()
        },
        held.now,
    );
    held.run_until(Duration::from_secs(120));
    assert!(held.events().is_empty());
    // And nothing is sent to a held caller.
    held.hear(Duration::from_secs(120), interviewer(ms(0)));
    assert!(held.sent_rtp().is_empty());
}

#[test]
fn a_hang_up_or_a_vanished_conversation_ends_the_call_once() {
    let mut line = Line::new(negotiated());
    line.hear(ms(100), CallOutput::HangUp);
    assert_eq!(line.events(), [(ms(100), MediaEvent::HangUpRequested)]);

    let mut line = Line::new(negotiated());
    line.run_until(ms(100));
    line.session.on_conversation_gone();
    line.session.on_conversation_gone();
    line.drain();
    let frames_before = line.caller_frames().len();
    line.run_until(ms(1_000));
    assert_eq!(line.events(), [(ms(100), MediaEvent::HangUpRequested)]);
    assert_eq!(
        line.caller_frames().len(),
        frames_before,
        "no audio for a conversation that is gone"
    );
}

#[test]
fn interviewer_audio_at_another_rate_is_dropped() {
    let mut line = Line::new(negotiated());
    let wideband = PcmFrame::new(vec![0.25; 320], 16_000, ms(0)).unwrap();
    line.hear(ms(0), CallOutput::Audio(wideband));
    assert!(line.sent_rtp().is_empty());
}
