//! Browser calls over WebRTC: one `RTCPeerConnection` from the candidate's browser turned into
//! the conversation loop's [`viva_call::Call`].
//!
//! The server answers the browser's offer ([`BrowserCall::answer`]), and from then on:
//! - the candidate's microphone (Opus) is decoded into 48 kHz [`CallInput::Audio`] frames, with
//!   lost packets concealed so the stream stays continuous;
//! - the interviewer's [`CallOutput::Audio`] frames are encoded to Opus and sent as they come,
//!   with RTP timestamps that follow the call clock across pauses;
//! - the candidate's camera (VP8) and microphone are written to a WebM file as the call goes;
//! - a failed or closed connection becomes one [`CallInput::HangUp`].
//!
//! [`CallInput::Audio`]: viva_call::CallInput::Audio
//! [`CallInput::HangUp`]: viva_call::CallInput::HangUp
//! [`CallOutput::Audio`]: viva_call::CallOutput::Audio

mod caller_audio;
mod connection;
mod error;
mod interviewer_voice;
mod packet_order;
mod recording;
mod session;
mod vp8;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;
use viva_call::Call;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit, RTCSessionDescription};

pub use error::WebRtcError;
pub use recording::{RecordingError, RecordingRepair, repair_call_recording};

use interviewer_voice::VoicePacketizer;
use recording::{CallRecording, CameraTrack};
use session::{PeerEvents, PeerSession};

/// How long the answer waits for the server's ICE candidates (STUN/TURN ones take a round
/// trip); after that it goes out with the candidates gathered so far.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);

/// How the server's side of browser calls reaches the network.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct WebRtcSettings {
    /// Public IP announced instead of host addresses (1:1 NAT), if any.
    pub public_ip: Option<IpAddr>,
    /// UDP ports media may use (inclusive), if restricted. Each live call takes one.
    pub udp_ports: Option<(u16, u16)>,
    /// STUN/TURN servers.
    pub ice_servers: Vec<IceServer>,
}

/// A STUN or TURN server, as `RTCIceServer` in the browser.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct IceServer {
    /// `stun:HOST:PORT`, `turn:HOST:PORT?transport=udp`, ...
    pub urls: Vec<String>,
    /// TURN user name.
    pub username: Option<String>,
    /// TURN password.
    pub credential: Option<String>,
}

/// An ICE candidate the browser trickled, as `RTCIceCandidate.toJSON()` gives it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteCandidate {
    /// The `candidate:...` line; empty marks the end of the browser's candidates.
    pub candidate: String,
    /// The media section the candidate belongs to, by `a=mid`.
    pub sdp_mid: Option<String>,
    /// The media section the candidate belongs to, by position.
    pub sdp_m_line_index: Option<u16>,
}

/// A live browser call: the server's end of the candidate's `RTCPeerConnection`.
///
/// Dropping it ends the call like [`close`](Self::close) does (without waiting).
pub struct BrowserCall {
    session: Arc<PeerSession>,
    span: tracing::Span,
}

impl BrowserCall {
    /// Answers the browser's SDP offer. Gathers ICE before returning so the answer SDP
    /// carries the server's candidates. `video`: where to record the candidate's camera and
    /// mic as WebM (VP8 + Opus, passthrough, no re-encoding), written as the call goes.
    ///
    /// Returns the call, the conversation's [`Call`] (made with `Call::pair(call_id, 48_000)`)
    /// and the answer SDP for the browser.
    pub async fn answer(
        settings: &WebRtcSettings,
        call_id: &str,
        offer_sdp: &str,
        video: Option<&Path>,
    ) -> Result<(BrowserCall, Call, String), WebRtcError> {
        let span = tracing::info_span!("browser_call", call_id = %call_id);
        answer_in_span(settings, call_id, offer_sdp, video, span.clone())
            .instrument(span)
            .await
    }

    /// Applies an ICE candidate the browser trickled. An empty candidate (end of candidates)
    /// is accepted and changes nothing.
    pub async fn add_remote_candidate(
        &self,
        candidate: RemoteCandidate,
    ) -> Result<(), WebRtcError> {
        if self.session.has_ended() {
            return Err(WebRtcError::Ended);
        }
        let line = candidate.candidate.clone();
        let init = RTCIceCandidateInit {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_m_line_index,
            ..RTCIceCandidateInit::default()
        };
        self.session
            .peer
            .add_ice_candidate(init)
            .instrument(self.span.clone())
            .await
            .map_err(|err| WebRtcError::MalformedCandidate {
                candidate: line,
                detail: err.to_string(),
            })
    }

    /// Resolves once ICE and DTLS are up and media flows both ways, so a conversation started
    /// then loses none of its first words.
    ///
    /// # Errors
    /// [`WebRtcError::Ended`] if the call ends before it connects.
    pub async fn connected(&self) -> Result<(), WebRtcError> {
        if self.session.connected().await {
            Ok(())
        } else {
            Err(WebRtcError::Ended)
        }
    }

    /// Ends the peer connection and finalizes the video file. Idempotent.
    ///
    /// The conversation receives `CallInput::HangUp` (once per call, whoever ended it).
    pub async fn close(&self) {
        self.session.end("closed by the server").await;
    }
}

impl Drop for BrowserCall {
    fn drop(&mut self) {
        // Starts the shutdown; nothing here can wait for it.
        drop(self.session.end("the call handle was dropped"));
    }
}

impl std::fmt::Debug for BrowserCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserCall")
            .field("ended", &self.session.has_ended())
            .finish_non_exhaustive()
    }
}

async fn answer_in_span(
    settings: &WebRtcSettings,
    call_id: &str,
    offer_sdp: &str,
    video: Option<&Path>,
    span: tracing::Span,
) -> Result<(BrowserCall, Call, String), WebRtcError> {
    let offer = RTCSessionDescription::offer(offer_sdp.to_owned()).map_err(|err| {
        WebRtcError::MalformedOffer {
            detail: err.to_string(),
        }
    })?;
    if !connection::offers_audio(offer_sdp) {
        return Err(WebRtcError::NoAudioInOffer);
    }
    let (events_tx, events) = mpsc::unbounded_channel();
    let (gathered_tx, gathered) = watch::channel(false);
    let handler = Arc::new(PeerEvents {
        events: events_tx,
        gathered: gathered_tx,
    });
    let peer = connection::build(settings, handler).await?;
    match negotiate(settings, &peer, offer, gathered).await {
        Ok(negotiated) => start(peer, negotiated, events, call_id, video, span).await,
        Err(err) => {
            let _ = peer.close().await;
            Err(err)
        }
    }
}

/// What the offer/answer exchange settled.
struct Negotiated {
    answer_sdp: String,
    voice_track: Arc<TrackLocalStaticRTP>,
    voice: VoicePacketizer,
    transport: Option<Arc<dyn webrtc::peer_connection::transport::DtlsTransport>>,
    camera_codec: Option<String>,
}

async fn negotiate(
    settings: &WebRtcSettings,
    peer: &Arc<dyn PeerConnection>,
    offer: RTCSessionDescription,
    mut gathered: watch::Receiver<bool>,
) -> Result<Negotiated, WebRtcError> {
    let unusable = |err: webrtc::error::Error| WebRtcError::UnusableOffer {
        detail: err.to_string(),
    };
    peer.set_remote_description(offer).await.map_err(unusable)?;

    // Prefer VP8 for the camera (the recording keeps VP8). Only a video transceiver whose
    // offer includes VP8 accepts the preference; the others keep the offer's codecs, so an
    // H.264-only camera still connects.
    let mut prefers_vp8 = false;
    for transceiver in peer.get_transceivers().await {
        prefers_vp8 |= transceiver
            .set_codec_preferences(vec![connection::vp8_codec()])
            .await
            .is_ok();
    }
    if !prefers_vp8 {
        tracing::debug!("the browser offers no VP8 camera; keeping its codec order");
    }

    let ssrc = rand::random::<u32>();
    let voice_track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "viva".to_owned(),
        "interviewer-voice".to_owned(),
        "interviewer".to_owned(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: connection::opus_codec(),
            ..Default::default()
        }],
    )));
    let sender = peer
        .add_track(Arc::clone(&voice_track) as Arc<dyn TrackLocal>)
        .await
        .map_err(unusable)?;

    let answer = peer.create_answer(None).await.map_err(unusable)?;
    peer.set_local_description(answer).await.map_err(unusable)?;
    if tokio::time::timeout(GATHER_TIMEOUT, gathered.wait_for(|done| *done))
        .await
        .is_err()
    {
        tracing::warn!(
            "ICE gathering took over {GATHER_TIMEOUT:?} (unreachable STUN/TURN server?); \
             answering with the candidates found so far"
        );
    }
    let mut answer_sdp = peer
        .local_description()
        .await
        .ok_or_else(|| WebRtcError::PeerConnection {
            detail: "the answer disappeared after it was applied".to_owned(),
        })?
        .sdp;
    if let Some(public_ip) = settings.public_ip {
        answer_sdp = connection::announce_public_ip(&answer_sdp, public_ip);
    }

    let parameters = sender.get_parameters().await.map_err(unusable)?;
    let payload_type = parameters
        .rtp_parameters
        .codecs
        .iter()
        .find(|codec| codec.rtp_codec.mime_type.eq_ignore_ascii_case("audio/opus"))
        .map(|codec| codec.payload_type)
        .ok_or_else(|| WebRtcError::UnusableOffer {
            detail: "the audio section does not offer Opus".to_owned(),
        })?;
    let voice = VoicePacketizer::new(ssrc, payload_type, rand::random(), rand::random()).map_err(
        |err| WebRtcError::PeerConnection {
            detail: err.to_string(),
        },
    )?;
    let transport = sender.transport().await.ok().flatten();
    Ok(Negotiated {
        camera_codec: connection::answered_camera_codec(&answer_sdp),
        answer_sdp,
        voice_track,
        voice,
        transport,
    })
}

async fn start(
    peer: Arc<dyn PeerConnection>,
    negotiated: Negotiated,
    events: mpsc::UnboundedReceiver<session::PeerEvent>,
    call_id: &str,
    video: Option<&Path>,
    span: tracing::Span,
) -> Result<(BrowserCall, Call, String), WebRtcError> {
    let camera = match negotiated.camera_codec.as_deref() {
        Some(codec) if codec.eq_ignore_ascii_case("VP8") => CameraTrack::Vp8,
        Some(codec) => {
            if video.is_some() {
                tracing::warn!(
                    codec,
                    "the candidate's camera sends {codec}; the video recording keeps audio only (only VP8 is recorded)"
                );
            }
            CameraTrack::None
        }
        None => CameraTrack::None,
    };
    let recording = match video {
        Some(path) => match CallRecording::create(path, camera) {
            Ok(recording) => Some(recording),
            Err(source) => {
                let _ = peer.close().await;
                return Err(WebRtcError::Recording {
                    path: path.to_owned(),
                    source,
                });
            }
        },
        None => None,
    };
    let record_camera = recording.is_some() && camera == CameraTrack::Vp8;
    let (call, call_peer) = Call::pair(call_id, 48_000);
    let session = PeerSession::new(peer, call_peer.inbound, recording, span.clone());
    session.spawn(Arc::clone(&session).supervise(events, negotiated.transport, record_camera));
    session.spawn(Arc::clone(&session).speak(
        call_peer.outbound,
        negotiated.voice_track,
        negotiated.voice,
    ));
    tracing::info!(camera = ?negotiated.camera_codec, recording = video.is_some(), "browser call answered");
    Ok((BrowserCall { session, span }, call, negotiated.answer_sdp))
}
