//! One call's RTP: caller audio from the media port to 20 ms `CallInput::Audio` frames, the
//! interviewer's frames back out as G.711 packets, DTMF from RFC 4733 events and in-band tones,
//! and a receiver/sender report every few seconds.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{Instrument, debug, info, warn};
use viva_call::{CallInput, CallOutput};
use viva_media::{InBandDetector, JitterBuffer, PcmFrame, TelephoneEventReceiver};

use crate::ports::MediaSockets;
use crate::proto::rtcp::{ReceptionStats, SenderInfo, build_report};
use crate::proto::rtp::{RtpHeader, build_rtp, parse_rtp};
use crate::proto::sdp::{Direction, Negotiated};

/// G.711 sample rate, and the rate of the call's audio in both directions.
pub(crate) const SAMPLE_RATE: u32 = 8_000;
/// Samples in one 20 ms frame.
const FRAME_SAMPLES: usize = 160;
/// Frame period.
const FRAME: Duration = Duration::from_millis(20);
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
/// Largest datagram read; RTP for telephony is far smaller.
const MAX_DATAGRAM: usize = 2048;

/// Why the media side wants the call to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MediaEvent {
    /// The conversation asked to hang up (`CallOutput::HangUp` or it dropped the call).
    HangUpRequested,
    /// No RTP arrived for [`MEDIA_TIMEOUT`].
    Dead,
}

/// Controls a running media task.
pub(crate) struct MediaHandle {
    session: watch::Sender<Negotiated>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MediaHandle {
    /// Applies a renegotiated session (re-INVITE: hold, resume, codec or address change).
    pub(crate) fn update(&self, negotiated: Negotiated) {
        self.session.send_replace(negotiated);
    }

    /// Stops the media task and waits for it (closing the sockets and releasing the ports).
    pub(crate) async fn stop(self) {
        self.stop.send_replace(true);
        if let Err(e) = self.task.await {
            warn!(error = %e, "media task failed");
        }
    }
}

/// The channels between the media task, the conversation and the call's signalling.
pub(crate) struct MediaChannels {
    /// Caller audio and DTMF to the conversation.
    pub(crate) inbound: mpsc::Sender<CallInput>,
    /// Interviewer audio and commands from the conversation.
    pub(crate) outbound: mpsc::Receiver<CallOutput>,
    /// Hang-up requests to the call's signalling.
    pub(crate) events: mpsc::UnboundedSender<MediaEvent>,
}

/// Starts the media of one call.
pub(crate) fn start(
    sockets: MediaSockets,
    negotiated: Negotiated,
    channels: MediaChannels,
    span: tracing::Span,
) -> MediaHandle {
    let (session_tx, session_rx) = watch::channel(negotiated);
    let (stop_tx, stop_rx) = watch::channel(false);
    let media = Media::new(sockets, negotiated, channels);
    let task = tokio::spawn(media.run(session_rx, stop_rx).instrument(span));
    MediaHandle {
        session: session_tx,
        stop: stop_tx,
        task,
    }
}

/// Rate-limits a kind of log line.
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
            Some(last) if now.duration_since(last) < LOG_INTERVAL => {
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
struct Incoming {
    ssrc: u32,
    stats: ReceptionStats,
}

struct Media {
    sockets: MediaSockets,
    negotiated: Negotiated,
    channels: MediaChannels,
    started: Instant,
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
    // Outbound stream state (RFC 3550: random origins).
    ssrc: u32,
    sequence: u16,
    timestamp_origin: u32,
    /// Packets have gone out since the interviewer last stopped: the next one continues the
    /// talkspurt (no marker bit).
    speaking: bool,
    last_timestamp: u32,
    packets_sent: u32,
    octets_sent: u32,
    wrong_rate_logged: bool,
    dropped_frames: u64,
    stranger_log: LogLimiter,
    malformed_log: LogLimiter,
    payload_log: LogLimiter,
    overflow_log: LogLimiter,
    conversation_gone: bool,
}

impl Media {
    fn new(sockets: MediaSockets, negotiated: Negotiated, channels: MediaChannels) -> Self {
        let now = Instant::now();
        Media {
            sockets,
            negotiated,
            channels,
            started: now,
            latched: None,
            latched_rtcp: None,
            incoming: None,
            jitter: JitterBuffer::new(SAMPLE_RATE, PLAYOUT_DELAY_MS),
            telephone_events: TelephoneEventReceiver::new(),
            tones: InBandDetector::new(SAMPLE_RATE),
            events_seen: false,
            frames_emitted: 0,
            last_rtp: now,
            ssrc: rand::random(),
            sequence: rand::random(),
            timestamp_origin: rand::random(),
            speaking: false,
            last_timestamp: 0,
            packets_sent: 0,
            octets_sent: 0,
            wrong_rate_logged: false,
            dropped_frames: 0,
            stranger_log: LogLimiter::new(),
            malformed_log: LogLimiter::new(),
            payload_log: LogLimiter::new(),
            overflow_log: LogLimiter::new(),
            conversation_gone: false,
        }
    }

    async fn run(
        mut self,
        mut session: watch::Receiver<Negotiated>,
        mut stop: watch::Receiver<bool>,
    ) {
        info!(
            local_port = self.sockets.rtp_port(),
            remote = %self.negotiated.remote_rtp,
            codec = self.negotiated.codec.encoding_name(),
            telephone_event = ?self.negotiated.telephone_event,
            "media started"
        );
        let mut frame_tick = tokio::time::interval(FRAME);
        frame_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut report_tick =
            tokio::time::interval_at(Instant::now() + RTCP_INTERVAL, RTCP_INTERVAL);
        report_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut rtp_buf = vec![0u8; MAX_DATAGRAM];
        let mut rtcp_buf = vec![0u8; MAX_DATAGRAM];
        let mut media_dead_reported = false;

        loop {
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
                received = self.sockets.rtp.recv_from(&mut rtp_buf) => match received {
                    Ok((len, from)) => self.on_rtp(&rtp_buf[..len], from).await,
                    // ICMP port unreachable and the like surface here; the next send retries.
                    Err(e) => debug!(error = %e, "RTP receive error"),
                },
                received = self.sockets.rtcp.recv_from(&mut rtcp_buf) => {
                    if let Ok((_, from)) = received {
                        self.on_rtcp(from);
                    }
                }
                _ = frame_tick.tick() => {
                    self.play_due().await;
                    // Only a live two-way call must carry RTP: a held caller may send nothing.
                    if !media_dead_reported
                        && self.negotiated.direction == Direction::SendRecv
                        && self.last_rtp.elapsed() > MEDIA_TIMEOUT
                    {
                        warn!(seconds = MEDIA_TIMEOUT.as_secs(), "no RTP from the caller; ending the call");
                        media_dead_reported = true;
                        let _ = self.channels.events.send(MediaEvent::Dead);
                    }
                }
                _ = report_tick.tick() => self.send_report().await,
                output = self.channels.outbound.recv(), if !self.conversation_gone => match output {
                    Some(CallOutput::Audio(frame)) => self.send_frame(&frame).await,
                    // Frames are sent as they come, so nothing is queued here to drop; the
                    // next frame starts a talkspurt.
                    Some(CallOutput::EndOfSpeech | CallOutput::ClearPlayback) => {
                        self.speaking = false;
                    }
                    Some(CallOutput::HangUp) => {
                        let _ = self.channels.events.send(MediaEvent::HangUpRequested);
                    }
                    None => {
                        self.conversation_gone = true;
                        let _ = self.channels.events.send(MediaEvent::HangUpRequested);
                    }
                },
                changed = session.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let negotiated = *session.borrow_and_update();
                    self.renegotiate(negotiated);
                }
            }
        }
        let stats = self.jitter.stats();
        info!(
            received = stats.received,
            late = stats.late,
            duplicate = stats.duplicate,
            concealed = stats.concealed,
            discarded = stats.discarded,
            sent = self.packets_sent,
            dropped_frames = self.dropped_frames,
            "media stopped"
        );
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn renegotiate(&mut self, negotiated: Negotiated) {
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
        self.speaking = false;
        // A resumed call gets the full media timeout again.
        self.last_rtp = Instant::now();
    }

    async fn on_rtp(&mut self, datagram: &[u8], from: SocketAddr) {
        let now = Instant::now();
        let packet = match parse_rtp(datagram) {
            Ok(packet) => packet,
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
        let arrival = (self.now_ms() * u64::from(SAMPLE_RATE) / 1000) as u32;
        if let Some(incoming) = self.incoming.as_mut() {
            incoming
                .stats
                .on_packet(header.sequence, header.timestamp, arrival);
        }

        if Some(header.payload_type) == self.negotiated.telephone_event {
            if let Some(key) = self.telephone_events.push(header.timestamp, packet.payload) {
                info!(%key, "DTMF (RFC 4733)");
                self.events_seen = true;
                self.deliver(CallInput::Dtmf(key)).await;
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
            let now_ms = self.now_ms();
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
    async fn play_due(&mut self) {
        let now_ms = self.now_ms();
        for samples in self.jitter.pop_due(now_ms) {
            self.emit(samples).await;
        }
        let due = now_ms / FRAME.as_millis() as u64;
        // One frame of slack: the buffer's schedule and this tick are not phase-locked.
        while self.frames_emitted + 1 < due {
            self.emit(vec![0.0; FRAME_SAMPLES]).await;
        }
    }

    async fn emit(&mut self, samples: Vec<f32>) {
        if !self.events_seen {
            for key in self.tones.push(&samples) {
                info!(%key, "DTMF (in-band)");
                self.deliver(CallInput::Dtmf(key)).await;
            }
        }
        let timestamp = FRAME * self.frames_emitted as u32;
        self.frames_emitted += 1;
        let frame = match PcmFrame::new(samples, SAMPLE_RATE, timestamp) {
            Ok(frame) => frame,
            Err(e) => {
                warn!(error = %e, "cannot build caller audio frame");
                return;
            }
        };
        match self.channels.inbound.try_send(CallInput::Audio(frame)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                // The conversation is behind; dropping audio keeps media real-time.
                self.dropped_frames += 1;
                if let Some(suppressed) = self.overflow_log.allow(Instant::now()) {
                    warn!(
                        suppressed,
                        "conversation is not keeping up; dropped caller audio"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.conversation_ended(),
        }
    }

    /// Sends a key or other event to the conversation, waiting for room: events matter more
    /// than a frame of audio.
    async fn deliver(&mut self, input: CallInput) {
        if self.channels.inbound.send(input).await.is_err() {
            self.conversation_ended();
        }
    }

    fn conversation_ended(&mut self) {
        if !self.conversation_gone {
            self.conversation_gone = true;
            let _ = self.channels.events.send(MediaEvent::HangUpRequested);
        }
    }

    /// Sends one interviewer frame as G.711 RTP, continuing the RTP clock from the frame's
    /// place on the call clock so that a pause advances the timestamps too.
    async fn send_frame(&mut self, frame: &PcmFrame) {
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
        let target = self.latched.unwrap_or(self.negotiated.remote_rtp);
        if target.ip().is_unspecified() || target.port() == 0 {
            return;
        }
        // The first packet of a talkspurt carries the marker bit (RFC 3551 section 4.1).
        let continuous = std::mem::replace(&mut self.speaking, true);
        let offset =
            (frame.timestamp().as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000) as u32;
        let samples = frame.to_i16();
        let law = self.negotiated.codec.law();
        for (index, chunk) in samples.chunks(FRAME_SAMPLES).enumerate() {
            let timestamp = self
                .timestamp_origin
                .wrapping_add(offset)
                .wrapping_add((index * FRAME_SAMPLES) as u32);
            let header = RtpHeader {
                marker: index == 0 && !continuous,
                payload_type: self.negotiated.payload_type,
                sequence: self.sequence,
                timestamp,
                ssrc: self.ssrc,
            };
            let payload = law.encode(chunk);
            let datagram = build_rtp(&header, &payload);
            self.sequence = self.sequence.wrapping_add(1);
            self.last_timestamp = timestamp;
            match self.sockets.rtp.send_to(&datagram, target).await {
                Ok(_) => {
                    self.packets_sent = self.packets_sent.wrapping_add(1);
                    self.octets_sent = self.octets_sent.wrapping_add(payload.len() as u32);
                }
                Err(e) => debug!(%target, error = %e, "RTP send failed"),
            }
        }
    }

    async fn send_report(&mut self) {
        let rtcp_target = match (self.latched_rtcp, self.latched) {
            (Some(rtcp), _) => rtcp,
            (None, Some(rtp)) if rtp != self.negotiated.remote_rtp => {
                SocketAddr::new(rtp.ip(), rtp.port().saturating_add(1))
            }
            _ => self.negotiated.remote_rtcp,
        };
        if rtcp_target.ip().is_unspecified() || rtcp_target.port() == 0 {
            return;
        }
        let sender = (self.packets_sent > 0).then(|| SenderInfo {
            ntp_timestamp: ntp_now(),
            rtp_timestamp: self.last_timestamp,
            packets: self.packets_sent,
            octets: self.octets_sent,
        });
        let block = self.incoming.as_mut().map(|i| i.stats.report_block());
        let report = build_report(self.ssrc, sender.as_ref(), block.as_ref(), "viva");
        if let Err(e) = self.sockets.rtcp.send_to(&report, rtcp_target).await {
            debug!(target = %rtcp_target, error = %e, "RTCP send failed");
        }
    }
}

/// The current wall-clock time as a 64-bit NTP timestamp (seconds since 1900, 32.32 fixed).
fn ntp_now() -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let since_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_unix.as_secs() + NTP_UNIX_OFFSET;
    let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}
