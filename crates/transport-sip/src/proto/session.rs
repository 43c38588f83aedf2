//! One call's RTP session, free of I/O: datagrams, the conversation's output and the time go
//! in; datagrams to send, caller audio and keys for the conversation, and events come out.
//!
//! What it does with them: it latches onto where the caller's RTP really comes from
//! (symmetric RTP, for callers behind NAT) and replies there; it puts the caller's G.711
//! packets through the jitter buffer and hands out one 8 kHz frame every 20 ms, with silence
//! where the stream has not started, stalled or is on hold; it takes DTMF keys out of RFC 4733
//! telephone-events, or out of the audio itself while the caller sends none; it sends the
//! interviewer's frames as G.711 on one continuous RTP timeline whatever clock the frames were
//! stamped on; and it sends RTCP reports every few seconds and a BYE at the end.
//!
//! Time is an input (str0m's rule): every call takes `now`, and [`RtpSession::poll_timeout`]
//! says when the session next wants [`RtpSession::handle_timeout`]. The socket loop
//! (`media.rs`) only moves bytes, frames and timers; the tests run calls on made-up instants.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::{debug, info, trace, warn};
use viva_call::{CallInput, CallOutput, PHONE_RATE, frame_samples};
use viva_media::{InBandDetector, JitterBuffer, PcmFrame, TelephoneEventReceiver};

use crate::proto::rtcp::{ReceptionStats, ReportBlock, SenderInfo, build_goodbye, build_report};
use crate::proto::rtp::{RtpError, RtpHeader, build_rtp, is_stun, parse_rtp};
use crate::proto::sdp::{Direction, Negotiated};

/// G.711's sample rate: the rate of the call's audio in both directions.
pub const SAMPLE_RATE: u32 = PHONE_RATE;
/// Samples in one 20 ms frame (and one RTP packet).
const FRAME_SAMPLES: usize = frame_samples(SAMPLE_RATE);
/// Frame period.
const FRAME: Duration = Duration::from_millis(viva_call::FRAME_MS as u64);
/// How long caller audio waits in the jitter buffer: covers typical internet jitter while
/// keeping the conversation's reaction time short.
const PLAYOUT_DELAY_MS: u32 = 60;
/// How often RTCP reports go out (RFC 3550 suggests 5 s as the minimum interval).
const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// No RTP for this long on a two-way (not held) call: the line is dead.
const MEDIA_TIMEOUT: Duration = Duration::from_secs(60);
/// At most one log line per this interval for each kind of ignored packet.
const LOG_INTERVAL: Duration = Duration::from_secs(5);
/// Comfort noise (RFC 3389): expected during silence, ignored without a log line.
const COMFORT_NOISE_PT: u8 = 13;
/// The canonical name in this side's RTCP (RFC 3550 6.5.1).
const CNAME: &str = "viva";

/// Which of a call's two media sockets a datagram arrived on or leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaPort {
    /// The even port: RTP (and whatever else peers send there: STUN, multiplexed RTCP).
    Rtp,
    /// The odd port next to it: RTCP.
    Rtcp,
}

/// A datagram the session wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The socket to send from.
    pub port: MediaPort,
    /// Where to.
    pub destination: SocketAddr,
    /// The datagram.
    pub datagram: Vec<u8>,
}

/// Why the media side wants the call to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// The conversation asked to hang up (`CallOutput::HangUp`, or it dropped the call).
    HangUpRequested,
    /// No RTP arrived for a minute on a two-way call: the line is dead.
    Dead,
}

/// What the session asks its owner to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionOutput {
    /// Send a datagram.
    Transmit(Transmit),
    /// Hand caller audio or a key to the conversation. Audio may be dropped when the
    /// conversation is behind (say so with [`RtpSession::on_caller_audio_dropped`]); a key
    /// should wait for room, since it matters more than 20 ms of audio.
    Conversation(CallInput),
    /// Tell the call's signalling.
    Event(MediaEvent),
}

/// Rate-limits a kind of log line.
#[derive(Debug)]
struct LogLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    fn new() -> Self {
        LogLimiter {
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(count of suppressed lines)` when a line may be logged now.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < LOG_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// The caller's stream as received.
#[derive(Debug)]
struct Incoming {
    ssrc: u32,
    stats: ReceptionStats,
}

/// The interviewer's stream as sent: one SSRC, one sequence-number space and one timeline for
/// the whole SIP call, however many parties (the PIN prompt, then the interview) feed it.
#[derive(Debug)]
struct Outgoing {
    ssrc: u32,
    sequence: u16,
    /// RTP timestamp of the session's start (RFC 3550: a random origin).
    timestamp_origin: u32,
    /// Where a packet that follows the last one without a gap starts, in samples since the
    /// session started.
    next_position: u64,
    /// While a talkspurt goes on: the time on the party's own clock the next frame of it
    /// would carry. `None` when the next frame starts a talkspurt (marker bit).
    talkspurt: Option<Duration>,
    packets: u32,
    octets: u32,
}

impl Outgoing {
    /// Places a frame stamped `frame_time` on the party's clock, `samples` long, on the
    /// session's timeline, `elapsed` samples after the session started: where its first
    /// sample goes, and whether it starts a talkspurt.
    ///
    /// Each party stamps frames on a clock of its own that starts at zero (the PIN prompt's,
    /// then the conversation's), so those stamps cannot be the RTP timestamps: a new party
    /// would send the far end back in time. They only space the frames of one talkspurt (a
    /// pause inside it still advances the timeline, but never past real time); a talkspurt
    /// starts where the session's own clock is, and never before the end of the last packet,
    /// so the timeline only moves forward.
    fn place(&mut self, frame_time: Duration, samples: usize, elapsed: u64) -> (u64, bool) {
        let contiguous = self.next_position;
        let (position, starts_talkspurt) = match self.talkspurt {
            Some(expected) if frame_time >= expected => {
                let pause = samples_in(frame_time - expected);
                let position = contiguous
                    .saturating_add(pause)
                    .min(contiguous.max(elapsed));
                (position, false)
            }
            // A new talkspurt, or a frame from before the last one's end: a new party, whose
            // first frame starts a talkspurt of its own even if nobody said the last one ended.
            _ => (contiguous.max(elapsed), true),
        };
        self.talkspurt = Some(frame_time + samples_duration(samples));
        self.next_position = position + samples as u64;
        (position, starts_talkspurt)
    }

    /// The RTP timestamp of a sample `position` samples after the session started.
    fn timestamp(&self, position: u64) -> u32 {
        self.timestamp_origin.wrapping_add(position as u32)
    }
}

/// One SIP call's RTP and RTCP, as a state machine over datagrams and time. See the
/// [module](self) for what it does.
///
/// Drive it like this: feed every datagram to [`on_datagram`](Self::on_datagram), every
/// [`CallOutput`] to [`on_call_output`](Self::on_call_output), call
/// [`handle_timeout`](Self::handle_timeout) when [`poll_timeout`](Self::poll_timeout) is
/// reached, and after each of these drain [`poll_output`](Self::poll_output).
#[derive(Debug)]
pub struct RtpSession {
    negotiated: Negotiated,
    started: Instant,
    /// The wall-clock time at `started`, for the NTP timestamps of sender reports.
    started_wall: SystemTime,
    /// Where the caller's RTP actually comes from (symmetric RTP): replies go there.
    latched: Option<SocketAddr>,
    /// Where the caller's RTCP comes from, once seen.
    latched_rtcp: Option<SocketAddr>,
    incoming: Option<Incoming>,
    jitter: JitterBuffer,
    telephone_events: TelephoneEventReceiver,
    tones: InBandDetector,
    /// Once the caller sends RFC 4733 events, in-band detection would only double them.
    events_seen: bool,
    frames_emitted: u64,
    last_rtp: Instant,
    dead_reported: bool,
    next_frame_tick: Instant,
    next_report: Instant,
    outgoing: Outgoing,
    wrong_rate_logged: bool,
    dropped_frames: u64,
    conversation_gone: bool,
    stranger_log: LogLimiter,
    malformed_log: LogLimiter,
    payload_log: LogLimiter,
    overflow_log: LogLimiter,
    outputs: VecDeque<SessionOutput>,
}

impl RtpSession {
    /// A session for the media both sides `negotiated`, starting `now`, when the wall clock
    /// reads `wall_clock` (only sender reports need it). The outgoing stream's SSRC, sequence
    /// numbers and timestamps start at random values (RFC 3550).
    pub fn new(negotiated: Negotiated, now: Instant, wall_clock: SystemTime) -> Self {
        RtpSession {
            negotiated,
            started: now,
            started_wall: wall_clock,
            latched: None,
            latched_rtcp: None,
            incoming: None,
            jitter: JitterBuffer::new(SAMPLE_RATE, PLAYOUT_DELAY_MS),
            telephone_events: TelephoneEventReceiver::new(),
            tones: InBandDetector::new(SAMPLE_RATE),
            events_seen: false,
            frames_emitted: 0,
            last_rtp: now,
            dead_reported: false,
            next_frame_tick: now,
            next_report: now + RTCP_INTERVAL,
            outgoing: Outgoing {
                ssrc: rand::random(),
                sequence: rand::random(),
                timestamp_origin: rand::random(),
                next_position: 0,
                talkspurt: None,
                packets: 0,
                octets: 0,
            },
            wrong_rate_logged: false,
            dropped_frames: 0,
            conversation_gone: false,
            stranger_log: LogLimiter::new(),
            malformed_log: LogLimiter::new(),
            payload_log: LogLimiter::new(),
            overflow_log: LogLimiter::new(),
            outputs: VecDeque::new(),
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<SessionOutput> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due: the next 20 ms frame of
    /// caller audio, or the next RTCP report.
    pub fn poll_timeout(&self) -> Instant {
        self.next_frame_tick.min(self.next_report)
    }

    /// Does what is due at `now`: caller audio from the jitter buffer (or silence), the media
    /// timeout, an RTCP report. Ticks missed while the owner was busy are skipped, not made up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_frame_tick {
            self.next_frame_tick = next_tick(self.started, FRAME, now);
            self.play_due(now);
            // Only a live two-way call must carry RTP: a held caller may send nothing.
            if !self.dead_reported
                && self.negotiated.direction == Direction::SendRecv
                && now.saturating_duration_since(self.last_rtp) > MEDIA_TIMEOUT
            {
                warn!(
                    seconds = MEDIA_TIMEOUT.as_secs(),
                    "no RTP from the caller; ending the call"
                );
                self.dead_reported = true;
                self.outputs
                    .push_back(SessionOutput::Event(MediaEvent::Dead));
            }
        }
        if now >= self.next_report {
            self.next_report = next_tick(self.started + RTCP_INTERVAL, RTCP_INTERVAL, now);
            if let Some(report) = self.report(now, build_report) {
                self.outputs.push_back(SessionOutput::Transmit(report));
            }
        }
    }

    /// A datagram arrived on `port` from `from`.
    pub fn on_datagram(
        &mut self,
        port: MediaPort,
        from: SocketAddr,
        datagram: &[u8],
        now: Instant,
    ) {
        match port {
            MediaPort::Rtp => self.on_rtp(from, datagram, now),
            MediaPort::Rtcp => self.on_rtcp(from),
        }
    }

    /// The conversation said something to the caller.
    pub fn on_call_output(&mut self, output: CallOutput, now: Instant) {
        match output {
            CallOutput::Audio(frame) => self.send_frame(&frame, now),
            // Frames are sent as they come, so nothing is queued here to drop; the next frame
            // starts a talkspurt.
            CallOutput::EndOfSpeech | CallOutput::ClearPlayback => {
                self.outgoing.talkspurt = None;
            }
            CallOutput::HangUp => {
                self.outputs
                    .push_back(SessionOutput::Event(MediaEvent::HangUpRequested));
            }
        }
    }

    /// The conversation is gone (it dropped its end of the call): the call should end. Said
    /// once however often it is noticed.
    pub fn on_conversation_gone(&mut self) {
        if !self.conversation_gone {
            self.conversation_gone = true;
            self.outputs
                .push_back(SessionOutput::Event(MediaEvent::HangUpRequested));
        }
    }

    /// A frame of caller audio could not be handed over: the conversation is behind, and
    /// dropping audio keeps the media real-time.
    pub fn on_caller_audio_dropped(&mut self, now: Instant) {
        self.dropped_frames += 1;
        if let Some(suppressed) = self.overflow_log.allow(now) {
            warn!(
                suppressed,
                "conversation is not keeping up; dropped caller audio"
            );
        }
    }

    /// Applies a renegotiated session (re-INVITE: hold, resume, codec or address change).
    pub fn renegotiate(&mut self, negotiated: Negotiated, now: Instant) {
        if negotiated.remote_rtp != self.negotiated.remote_rtp {
            // The caller moved its media: learn its source again.
            self.latched = None;
            self.latched_rtcp = None;
        }
        if negotiated.codec != self.negotiated.codec {
            // Different codec, possibly different sender state: start the buffer afresh.
            self.jitter = JitterBuffer::new(SAMPLE_RATE, PLAYOUT_DELAY_MS);
        }
        info!(
            remote = %negotiated.remote_rtp,
            codec = negotiated.codec.encoding_name(),
            direction = ?negotiated.direction,
            "media renegotiated"
        );
        self.negotiated = negotiated;
        // Whatever was sent before a hold, the next frame starts a new talkspurt.
        self.outgoing.talkspurt = None;
        // A resumed call gets the full media timeout again.
        self.last_rtp = now;
    }

    /// Ends the session (call it last): a last report with an RTCP BYE goes out, and what the
    /// media did is logged.
    pub fn close(&mut self, now: Instant) {
        if let Some(goodbye) = self.report(now, build_goodbye) {
            self.outputs.push_back(SessionOutput::Transmit(goodbye));
        }
        let stats = self.jitter.stats();
        info!(
            received = stats.received,
            late = stats.late,
            duplicate = stats.duplicate,
            concealed = stats.concealed,
            discarded = stats.discarded,
            sent = self.outgoing.packets,
            dropped_frames = self.dropped_frames,
            "media stopped"
        );
    }

    /// Milliseconds since the session started: the jitter buffer's clock.
    fn ms_at(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_millis() as u64
    }

    /// Samples since the session started: the RTP clock.
    fn samples_at(&self, now: Instant) -> u64 {
        samples_in(now.saturating_duration_since(self.started))
    }

    fn on_rtp(&mut self, from: SocketAddr, datagram: &[u8], now: Instant) {
        if is_stun(datagram) {
            // NAT keepalives (RFC 5389) of phones that hold their binding open this way.
            trace!(%from, "ignoring STUN on the RTP port");
            return;
        }
        let packet = match parse_rtp(datagram) {
            Ok(packet) => packet,
            Err(RtpError::Rtcp { packet_type }) => {
                // RTCP multiplexed onto the RTP port (RFC 5761); incoming RTCP is not read.
                trace!(%from, packet_type, "ignoring RTCP on the RTP port");
                return;
            }
            Err(e) => {
                if let Some(suppressed) = self.malformed_log.allow(now) {
                    warn!(%from, error = %e, suppressed, "ignoring malformed RTP");
                }
                return;
            }
        };
        match self.latched {
            Some(latched) if latched != from => {
                // The signalled address is authoritative over an earlier guess.
                if from == self.negotiated.remote_rtp {
                    info!(%from, previous = %latched, "caller media moved to its signalled address");
                    self.latched = Some(from);
                } else {
                    if let Some(suppressed) = self.stranger_log.allow(now) {
                        warn!(%from, expected = %latched, suppressed, "ignoring RTP from an unexpected address");
                    }
                    return;
                }
            }
            Some(_) => {}
            None => {
                if from != self.negotiated.remote_rtp {
                    info!(%from, signalled = %self.negotiated.remote_rtp, "caller media comes from another address (NAT); replying there");
                }
                self.latched = Some(from);
            }
        }
        self.last_rtp = now;
        let header = packet.header;

        if self.incoming.as_ref().is_none_or(|i| i.ssrc != header.ssrc) {
            if self.incoming.is_some() {
                debug!(
                    ssrc = header.ssrc,
                    "caller stream restarted with a new SSRC"
                );
                self.jitter = JitterBuffer::new(SAMPLE_RATE, PLAYOUT_DELAY_MS);
            }
            self.incoming = Some(Incoming {
                ssrc: header.ssrc,
                stats: ReceptionStats::new(header.ssrc, header.sequence),
            });
        }
        let arrival = self.samples_at(now) as u32;
        if let Some(incoming) = self.incoming.as_mut() {
            incoming
                .stats
                .on_packet(header.sequence, header.timestamp, arrival);
        }

        if Some(header.payload_type) == self.negotiated.telephone_event {
            if let Some(key) = self.telephone_events.push(header.timestamp, packet.payload) {
                info!(%key, "DTMF (RFC 4733)");
                self.events_seen = true;
                self.deliver(CallInput::Dtmf(key));
            }
            return;
        }
        if header.payload_type == self.negotiated.payload_type {
            if !self.negotiated.direction.receives() {
                return;
            }
            let samples: Vec<f32> = self
                .negotiated
                .codec
                .law()
                .decode(packet.payload)
                .into_iter()
                .map(viva_media::i16_to_f32)
                .collect();
            let now_ms = self.ms_at(now);
            self.jitter.push(header.sequence, samples, now_ms);
            return;
        }
        if header.payload_type != COMFORT_NOISE_PT
            && let Some(suppressed) = self.payload_log.allow(now)
        {
            warn!(
                payload_type = header.payload_type,
                negotiated = self.negotiated.payload_type,
                suppressed,
                "ignoring RTP with a payload type that was not negotiated"
            );
        }
    }

    fn on_rtcp(&mut self, from: SocketAddr) {
        // Only the caller's own RTCP (same host as its RTP) redirects our reports.
        if self.latched.is_some_and(|rtp| rtp.ip() == from.ip()) {
            self.latched_rtcp = Some(from);
        }
    }

    /// Emits the caller audio due now: jitter-buffered frames, and silence where the stream
    /// has not started, stalled or is on hold, so the conversation gets a frame every 20 ms.
    fn play_due(&mut self, now: Instant) {
        let now_ms = self.ms_at(now);
        for samples in self.jitter.pop_due(now_ms) {
            self.emit(samples);
        }
        let due = now_ms / FRAME.as_millis() as u64;
        // One frame of slack: the buffer's schedule and this tick are not phase-locked.
        while self.frames_emitted + 1 < due {
            self.emit(vec![0.0; FRAME_SAMPLES]);
        }
    }

    fn emit(&mut self, samples: Vec<f32>) {
        if !self.events_seen {
            for key in self.tones.push(&samples) {
                info!(%key, "DTMF (in-band)");
                self.deliver(CallInput::Dtmf(key));
            }
        }
        let timestamp = FRAME * self.frames_emitted as u32;
        self.frames_emitted += 1;
        match PcmFrame::new(samples, SAMPLE_RATE, timestamp) {
            Ok(frame) => self.deliver(CallInput::Audio(frame)),
            Err(e) => warn!(error = %e, "cannot build caller audio frame"),
        }
    }

    fn deliver(&mut self, input: CallInput) {
        if !self.conversation_gone {
            self.outputs.push_back(SessionOutput::Conversation(input));
        }
    }

    /// Sends one interviewer frame as G.711 RTP (one packet per 20 ms of it).
    fn send_frame(&mut self, frame: &PcmFrame, now: Instant) {
        if frame.sample_rate() != SAMPLE_RATE {
            if !self.wrong_rate_logged {
                warn!(
                    rate = frame.sample_rate(),
                    "interviewer audio is not 8 kHz; dropping it"
                );
                self.wrong_rate_logged = true;
            }
            return;
        }
        if !self.negotiated.direction.sends() {
            return;
        }
        let destination = self.latched.unwrap_or(self.negotiated.remote_rtp);
        if destination.ip().is_unspecified() || destination.port() == 0 {
            return;
        }
        let samples = frame.to_i16();
        let elapsed = self.samples_at(now);
        let (position, starts_talkspurt) =
            self.outgoing
                .place(frame.timestamp(), samples.len(), elapsed);
        let law = self.negotiated.codec.law();
        for (index, chunk) in samples.chunks(FRAME_SAMPLES).enumerate() {
            let header = RtpHeader {
                // The first packet of a talkspurt carries the marker bit (RFC 3551 4.1).
                marker: index == 0 && starts_talkspurt,
                payload_type: self.negotiated.payload_type,
                sequence: self.outgoing.sequence,
                timestamp: self
                    .outgoing
                    .timestamp(position + (index * FRAME_SAMPLES) as u64),
                ssrc: self.outgoing.ssrc,
            };
            let payload = law.encode(chunk);
            self.outgoing.sequence = self.outgoing.sequence.wrapping_add(1);
            self.outgoing.packets = self.outgoing.packets.wrapping_add(1);
            self.outgoing.octets = self.outgoing.octets.wrapping_add(payload.len() as u32);
            self.outputs.push_back(SessionOutput::Transmit(Transmit {
                port: MediaPort::Rtp,
                destination,
                datagram: build_rtp(&header, &payload),
            }));
        }
    }

    /// An RTCP compound packet made by `build` (a report, or the last one with a BYE) for the
    /// caller's RTCP address, if there is one to send to.
    fn report(
        &mut self,
        now: Instant,
        build: fn(u32, Option<&SenderInfo>, Option<&ReportBlock>, &str) -> Vec<u8>,
    ) -> Option<Transmit> {
        let destination = match (self.latched_rtcp, self.latched) {
            (Some(rtcp), _) => rtcp,
            // The caller's RTP came from elsewhere than signalled (NAT): its RTCP is most
            // likely next to the port it really uses.
            (None, Some(rtp)) if rtp != self.negotiated.remote_rtp => {
                SocketAddr::new(rtp.ip(), rtp.port().saturating_add(1))
            }
            _ => self.negotiated.remote_rtcp,
        };
        if destination.ip().is_unspecified() || destination.port() == 0 {
            return None;
        }
        let sender = (self.outgoing.packets > 0).then(|| SenderInfo {
            ntp_timestamp: ntp_timestamp(
                self.started_wall + now.saturating_duration_since(self.started),
            ),
            // The same instant on the RTP clock: the session's timeline follows its own time.
            rtp_timestamp: self.outgoing.timestamp(self.samples_at(now)),
            packets: self.outgoing.packets,
            octets: self.outgoing.octets,
        });
        let block = self.incoming.as_mut().map(|i| i.stats.report_block());
        Some(Transmit {
            port: MediaPort::Rtcp,
            destination,
            datagram: build(self.outgoing.ssrc, sender.as_ref(), block.as_ref(), CNAME),
        })
    }
}

/// The first instant of the grid `origin + k * period` after `now` (or `origin` itself while
/// it lies ahead): missed ticks are skipped.
fn next_tick(origin: Instant, period: Duration, now: Instant) -> Instant {
    if now < origin {
        return origin;
    }
    let periods = now.duration_since(origin).as_nanos() / period.as_nanos() + 1;
    origin + Duration::from_nanos((period.as_nanos() * periods) as u64)
}

/// Whole samples at [`SAMPLE_RATE`] in `duration`.
fn samples_in(duration: Duration) -> u64 {
    (duration.as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000) as u64
}

/// How long `samples` last at [`SAMPLE_RATE`].
fn samples_duration(samples: usize) -> Duration {
    Duration::from_nanos(samples as u64 * 1_000_000_000 / u64::from(SAMPLE_RATE))
}

/// A wall-clock time as a 64-bit NTP timestamp (seconds since 1900, 32.32 fixed point).
fn ntp_timestamp(wall_clock: SystemTime) -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let since_unix = wall_clock.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_unix.as_secs() + NTP_UNIX_OFFSET;
    let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

#[cfg(test)]
mod tests;
