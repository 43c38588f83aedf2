//! A browser call while it runs: the tasks that carry media between the peer connection and
//! the conversation, and the single way the call ends.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rtc::peer_connection::transport::RTCDtlsTransportState;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, Span};
use viva_call::{CallInput, CallOutput};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::transport::DtlsTransport;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};

use crate::caller_audio::CallerAudio;
use crate::interviewer_voice::VoicePacketizer;
use crate::packet_order::PacketOrder;
use crate::recording::CallRecording;
use crate::vp8::{Vp8Assembler, Vp8Packet};

/// How long the connection may stay `disconnected` (ICE lost the browser) before the call is
/// given up: ICE often recovers from a short network blip by itself.
const DISCONNECTED_GRACE: Duration = Duration::from_secs(4);

/// How often the DTLS transport is checked for a `close_notify` from the browser (a closed
/// tab), which the peer connection state does not reflect.
const TRANSPORT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The least time between two key frame requests while the camera recording waits for one.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);

/// What the peer connection reports, forwarded from its driver to the call's supervisor.
pub(crate) enum PeerEvent {
    State(RTCPeerConnectionState),
    Track(Arc<dyn TrackRemote>),
}

/// The peer connection's event handler. It only forwards: handlers run on the connection's
/// driver, which must never wait on the call.
pub(crate) struct PeerEvents {
    pub events: mpsc::UnboundedSender<PeerEvent>,
    pub gathered: watch::Sender<bool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PeerEvents {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.events.send(PeerEvent::State(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.events.send(PeerEvent::Track(track));
    }
}

/// Locks a mutex whose data stays valid even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One browser call's peer connection while it runs: what every task of the call shares.
pub(crate) struct PeerSession {
    pub peer: Arc<dyn PeerConnection>,
    /// Where caller audio and the final hang-up go; taken when the call ends.
    caller: Mutex<Option<mpsc::Sender<CallInput>>>,
    recording: Option<Arc<Mutex<CallRecording>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    ending: AtomicBool,
    ended: watch::Sender<bool>,
    /// Set once ICE and DTLS are up: media sent before then is lost.
    connected: watch::Sender<bool>,
    span: Span,
}

impl PeerSession {
    pub fn new(
        peer: Arc<dyn PeerConnection>,
        caller: mpsc::Sender<CallInput>,
        recording: Option<CallRecording>,
        span: Span,
    ) -> Arc<Self> {
        Arc::new(PeerSession {
            peer,
            caller: Mutex::new(Some(caller)),
            recording: recording.map(|recording| Arc::new(Mutex::new(recording))),
            tasks: Mutex::new(Vec::new()),
            ending: AtomicBool::new(false),
            ended: watch::channel(false).0,
            connected: watch::channel(false).0,
            span,
        })
    }

    pub fn has_ended(&self) -> bool {
        self.ending.load(Ordering::SeqCst)
    }

    /// Resolves true once media flows, false if the call ends first.
    pub async fn connected(&self) -> bool {
        let mut connected = self.connected.subscribe();
        let mut ended = self.ended.subscribe();
        loop {
            if *connected.borrow_and_update() {
                return true;
            }
            if *ended.borrow_and_update() {
                return false;
            }
            tokio::select! {
                changed = connected.changed() => if changed.is_err() { return false },
                changed = ended.changed() => if changed.is_err() { return false },
            }
        }
    }

    /// Runs `task` in the call's span until the call ends.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task.instrument(self.span.clone()));
        let mut tasks = lock(&self.tasks);
        if self.has_ended() {
            // Registered after the shutdown collected the tasks: stop it here instead.
            handle.abort();
        } else {
            tasks.retain(|task| !task.is_finished());
            tasks.push(handle);
        }
    }

    /// Ends the call (once, whoever asks first): stops the media tasks, closes the peer
    /// connection, finishes the recording and tells the conversation `HangUp`. The returned
    /// future resolves when all of that is done; the work runs in its own task, so it
    /// completes even if the caller's future is dropped.
    pub fn end(
        self: &Arc<Self>,
        reason: &'static str,
    ) -> impl Future<Output = ()> + Send + 'static {
        if !self.ending.swap(true, Ordering::SeqCst) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(
                        Arc::clone(self)
                            .shut_down(reason)
                            .instrument(self.span.clone()),
                    );
                }
                Err(_) => {
                    tracing::error!(
                        reason,
                        "browser call dropped outside a Tokio runtime; it cannot be closed"
                    );
                    self.ended.send_replace(true);
                }
            }
        }
        let mut ended = self.ended.subscribe();
        async move {
            let _ = ended.wait_for(|ended| *ended).await;
        }
    }

    async fn shut_down(self: Arc<Self>, reason: &'static str) {
        tracing::info!(reason, "browser call ending");
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        if let Err(err) = self.peer.close().await {
            tracing::warn!(%err, "closing the peer connection failed");
        }
        if let Some(recording) = self.recording.clone() {
            let finished = tokio::task::spawn_blocking(move || lock(&recording).finish()).await;
            match finished {
                Ok(Ok(())) => tracing::info!("video recording finished"),
                Ok(Err(err)) => tracing::error!(%err, "could not finish the video recording"),
                Err(err) => tracing::error!(%err, "finishing the video recording panicked"),
            }
        }
        let caller = lock(&self.caller).take();
        if let Some(caller) = caller {
            match caller.try_send(CallInput::HangUp) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                // The conversation is behind; deliver the hang-up after what it still has.
                Err(mpsc::error::TrySendError::Full(hang_up)) => {
                    tokio::spawn(async move {
                        let _ = caller.send(hang_up).await;
                    });
                }
            }
        }
        self.ended.send_replace(true);
    }

    /// Watches the connection and starts a task per incoming track, until the call ends.
    pub async fn supervise(
        self: Arc<Self>,
        mut events: mpsc::UnboundedReceiver<PeerEvent>,
        transport: Option<Arc<dyn DtlsTransport>>,
        record_camera: bool,
    ) {
        let mut disconnected_since: Option<Instant> = None;
        let mut heard_caller = false;
        let mut check = tokio::time::interval(TRANSPORT_CHECK_INTERVAL);
        let reason = loop {
            tokio::select! {
                event = events.recv() => match event {
                    None => break "the peer connection stopped",
                    Some(PeerEvent::State(state)) => {
                        tracing::debug!(%state, "connection state");
                        match state {
                            RTCPeerConnectionState::Connected => {
                                disconnected_since = None;
                                self.connected.send_replace(true);
                            }
                            RTCPeerConnectionState::Disconnected => {
                                disconnected_since.get_or_insert_with(Instant::now);
                            }
                            RTCPeerConnectionState::Failed => break "the connection failed",
                            RTCPeerConnectionState::Closed => break "the connection closed",
                            _ => {}
                        }
                    }
                    Some(PeerEvent::Track(track)) => {
                        self.start_track(track, &mut heard_caller, record_camera).await;
                    }
                },
                _ = check.tick() => {
                    if disconnected_since.is_some_and(|since| since.elapsed() >= DISCONNECTED_GRACE) {
                        break "the browser stayed disconnected";
                    }
                    if let Some(transport) = &transport
                        && matches!(
                            transport.state().await,
                            Ok(RTCDtlsTransportState::Closed | RTCDtlsTransportState::Failed)
                        )
                    {
                        break "the browser closed the connection";
                    }
                }
            }
        };
        self.end(reason).await;
    }

    async fn start_track(
        self: &Arc<Self>,
        track: Arc<dyn TrackRemote>,
        heard_caller: &mut bool,
        record_camera: bool,
    ) {
        let kind = track.kind().await;
        let ssrc = track.ssrcs().await.first().copied();
        let mime_type = match ssrc {
            Some(ssrc) => track.codec(ssrc).await.map(|codec| codec.mime_type),
            None => None,
        };
        tracing::info!(%kind, ?mime_type, "browser track started");
        match kind {
            RtpCodecKind::Audio if !*heard_caller => {
                *heard_caller = true;
                let Some(caller) = lock(&self.caller).clone() else {
                    return;
                };
                let recording = self.recording.clone();
                self.spawn(listen_to_caller(track, caller, recording));
            }
            RtpCodecKind::Video
                if record_camera
                    && mime_type
                        .as_deref()
                        .is_none_or(|mime| mime.eq_ignore_ascii_case("video/VP8")) =>
            {
                if let (Some(recording), Some(ssrc)) = (self.recording.clone(), ssrc) {
                    self.spawn(record_camera_frames(track, ssrc, recording));
                }
            }
            _ => {
                tracing::debug!(%kind, "ignoring this browser track");
                // Read it anyway so the connection's queue for it does not fill up.
                self.spawn(async move { while track.poll().await.is_some() {} });
            }
        }
    }

    /// Carries the conversation's commands to the browser. The call ends when the
    /// conversation hangs up, or drops its side of the call without a word (it failed).
    pub async fn speak(
        self: Arc<Self>,
        mut commands: mpsc::Receiver<CallOutput>,
        track: Arc<TrackLocalStaticRTP>,
        mut voice: VoicePacketizer,
    ) {
        let mut unsent = 0u64;
        while let Some(command) = commands.recv().await {
            match command {
                CallOutput::Audio(frame) => match voice.packetize(&frame) {
                    Ok(packets) => {
                        for packet in packets {
                            if let Err(err) = track.write_rtp(packet).await {
                                unsent += 1;
                                if unsent == 1 {
                                    tracing::debug!(%err, "interviewer audio not sent: the browser is not connected yet");
                                }
                            }
                        }
                    }
                    Err(err) => tracing::warn!(%err, "dropping an interviewer audio frame"),
                },
                CallOutput::EndOfSpeech | CallOutput::ClearPlayback => voice.end_talkspurt(),
                CallOutput::HangUp => {
                    self.end("the conversation hung up").await;
                    return;
                }
            }
        }
        self.end("the conversation dropped the call").await;
    }
}

/// Decodes the candidate's microphone for the conversation (and copies its packets into the
/// recording).
async fn listen_to_caller(
    track: Arc<dyn TrackRemote>,
    caller: mpsc::Sender<CallInput>,
    recording: Option<Arc<Mutex<CallRecording>>>,
) {
    let mut audio = match CallerAudio::new() {
        Ok(audio) => audio,
        Err(err) => {
            tracing::error!(%err, "cannot decode the candidate's microphone");
            return;
        }
    };
    let mut conversation_listening = true;
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        if let Some(recording) = &recording {
            lock(recording).add_audio(packet.header.timestamp, Instant::now(), &packet.payload);
        }
        let frames = audio.push(
            packet.header.sequence_number,
            packet.header.timestamp,
            &packet.payload,
        );
        for frame in frames {
            if conversation_listening && caller.send(CallInput::Audio(frame)).await.is_err() {
                tracing::debug!("the conversation stopped listening; still recording");
                conversation_listening = false;
            }
        }
    }
}

/// Puts the candidate's VP8 camera frames back together for the recording, asking the browser
/// for a key frame whenever the recording needs one.
async fn record_camera_frames(
    track: Arc<dyn TrackRemote>,
    media_ssrc: u32,
    recording: Arc<Mutex<CallRecording>>,
) {
    let mut order = PacketOrder::new();
    let mut assembler = Vp8Assembler::new();
    let mut last_request: Option<Instant> = None;
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        let arrival = Instant::now();
        let vp8 = Vp8Packet {
            marker: packet.header.marker,
            timestamp: packet.header.timestamp,
            payload: packet.payload.to_vec(),
        };
        for item in order.push(packet.header.sequence_number, arrival, vp8) {
            if let Some(frame) = assembler.push(item) {
                lock(&recording).add_video(frame, arrival);
            }
        }
        if assembler.needs_keyframe()
            && last_request.is_none_or(|at| arrival.duration_since(at) >= KEYFRAME_REQUEST_INTERVAL)
        {
            last_request = Some(arrival);
            let request = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            if let Err(err) = track.write_rtcp(vec![Box::new(request)]).await {
                tracing::debug!(%err, "could not ask the browser for a key frame");
            }
        }
    }
}
