//! A `BrowserCall` against a plain webrtc-rs peer playing the browser, over loopback UDP.
//!
//! The "browser" sends a 440 Hz tone from its microphone (Opus) and, where a test asks, VP8
//! camera frames made by ffmpeg; it receives the interviewer's voice and decodes it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use viva_call::{Call, CallInput, CallOutput};
use viva_media::{Channels, OpusDecoder, OpusEncoder, PcmFrame};
use viva_test_support::scratch_dir;
use viva_test_support::video::{mkvinfo, probe, probe_counting_frames, vp8_test_pattern};
use viva_transport_webrtc::{BrowserCall, RemoteCandidate, WebRtcError, WebRtcSettings};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription,
};

const MIC_HZ: f32 = 440.0;
const VOICE_HZ: f32 = 660.0;

// ---------------------------------------------------------------------------------------
// The fake browser

struct BrowserEvents {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    heard: mpsc::UnboundedSender<rtp::Packet>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for BrowserEvents {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let heard = self.heard.clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                    let _ = heard.send(packet);
                }
            }
        });
    }
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn video(mime_type: &str, fmtp: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: mime_type.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: fmtp.to_owned(),
        rtcp_feedback: vec![RTCPFeedback {
            typ: "nack".to_owned(),
            parameter: "pli".to_owned(),
        }],
    }
}

const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// Which camera codecs the fake browser offers, in its order of preference.
#[derive(Clone, Copy, PartialEq)]
enum Camera {
    None,
    Vp8,
    H264ThenVp8,
    H264Only,
}

struct Browser {
    pc: Arc<dyn PeerConnection>,
    mic: Arc<TrackLocalStaticRTP>,
    mic_ssrc: u32,
    camera: Option<(Arc<TrackLocalStaticSample>, u32)>,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
    heard: mpsc::UnboundedReceiver<rtp::Packet>,
}

impl Browser {
    async fn new(camera: Camera) -> Browser {
        let mut engine = MediaEngine::default();
        engine
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: opus(),
                    payload_type: 111,
                },
                RtpCodecKind::Audio,
            )
            .unwrap();
        let vp8 = RTCRtpCodecParameters {
            rtp_codec: video("video/VP8", ""),
            payload_type: 96,
        };
        let h264 = RTCRtpCodecParameters {
            rtp_codec: video("video/H264", H264_FMTP),
            payload_type: 102,
        };
        let video_codecs = match camera {
            Camera::None => vec![],
            Camera::Vp8 => vec![vp8.clone()],
            Camera::H264ThenVp8 => vec![h264.clone(), vp8.clone()],
            Camera::H264Only => vec![h264.clone()],
        };
        let camera_codec = if camera == Camera::H264Only {
            h264.rtp_codec.clone()
        } else {
            vp8.rtp_codec.clone()
        };
        for codec in video_codecs {
            engine.register_codec(codec, RtpCodecKind::Video).unwrap();
        }
        let (gathered_tx, gathered) = watch::channel(false);
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (heard_tx, heard) = mpsc::unbounded_channel();
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(engine)
            .with_handler(Arc::new(BrowserEvents {
                gathered: gathered_tx,
                state: state_tx,
                heard: heard_tx,
            }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .unwrap();
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);

        let mic_ssrc = 0x1111_0000;
        let mic = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "browser".to_owned(),
            "mic".to_owned(),
            "mic".to_owned(),
            RtpCodecKind::Audio,
            vec![encoding(mic_ssrc, opus())],
        )));
        pc.add_track(Arc::clone(&mic) as Arc<dyn TrackLocal>)
            .await
            .unwrap();
        let camera = if camera == Camera::None {
            None
        } else {
            let ssrc = 0x2222_0000;
            let track = Arc::new(
                TrackLocalStaticSample::new(
                    Instant::now(),
                    MediaStreamTrack::new(
                        "browser".to_owned(),
                        "camera".to_owned(),
                        "camera".to_owned(),
                        RtpCodecKind::Video,
                        vec![encoding(ssrc, camera_codec)],
                    ),
                )
                .unwrap(),
            );
            pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
                .await
                .unwrap();
            if camera == Camera::H264ThenVp8 {
                // Like a browser preferring hardware H.264: H.264 first in the offer. Only the
                // video transceiver accepts video codecs.
                let mut accepted = 0;
                for transceiver in pc.get_transceivers().await {
                    let preferences = vec![h264.clone(), vp8.clone()];
                    if transceiver.set_codec_preferences(preferences).await.is_ok() {
                        accepted += 1;
                    }
                }
                assert_eq!(accepted, 1);
            }
            Some((track, ssrc))
        };
        Browser {
            pc,
            mic,
            mic_ssrc,
            camera,
            gathered,
            state,
            heard,
        }
    }

    /// The complete offer, candidates included (as the candidate page sends it).
    async fn offer(&mut self) -> String {
        let offer = self.pc.create_offer(None).await.unwrap();
        self.pc.set_local_description(offer).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.gathered.wait_for(|done| *done))
            .await
            .expect("the browser gathers its candidates")
            .unwrap();
        self.pc.local_description().await.unwrap().sdp
    }

    async fn accept(&mut self, answer_sdp: String) {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(answer_sdp).unwrap())
            .await
            .unwrap();
        tokio::time::timeout(
            Duration::from_secs(10),
            self.state
                .wait_for(|state| *state == RTCPeerConnectionState::Connected),
        )
        .await
        .expect("the browser connects to the server")
        .unwrap();
    }

    /// Speaks a tone into the microphone for `duration`, paced in real time.
    fn speak(&self, duration: Duration) -> tokio::task::JoinHandle<usize> {
        let mic = Arc::clone(&self.mic);
        let ssrc = self.mic_ssrc;
        let pc = Arc::clone(&self.pc);
        tokio::spawn(async move {
            let payload_type = payload_type_of(&pc, "audio/").await;
            let mut encoder = OpusEncoder::new().unwrap();
            let packets = (duration.as_millis() / 20) as usize;
            let mut ticker = tokio::time::interval(Duration::from_millis(20));
            for index in 0..packets {
                ticker.tick().await;
                let frame = tone(MIC_HZ, 0.5, index * 960, 960);
                let packet = rtp::Packet {
                    header: rtp::Header {
                        version: 2,
                        payload_type,
                        sequence_number: index as u16,
                        timestamp: (index * 960) as u32,
                        ssrc,
                        marker: index == 0,
                        ..Default::default()
                    },
                    payload: encoder.encode(&frame).unwrap().into(),
                };
                mic.write_rtp(packet).await.unwrap();
            }
            packets
        })
    }

    /// Films `frames` (VP8, from ffmpeg) at `fps`, paced in real time.
    fn film(&self, frames: Vec<Vec<u8>>, fps: u32) -> tokio::task::JoinHandle<()> {
        let (camera, ssrc) = self.camera.clone().expect("a browser with a camera");
        let pc = Arc::clone(&self.pc);
        tokio::spawn(async move {
            let payload_type = payload_type_of(&pc, "video/").await;
            let period = Duration::from_secs(1) / fps;
            let mut ticker = tokio::time::interval(period);
            for frame in frames {
                ticker.tick().await;
                camera
                    .write_sample(
                        ssrc,
                        payload_type,
                        &Sample {
                            data: frame.into(),
                            duration: period,
                            ..Sample::new(Instant::now())
                        },
                        &[],
                    )
                    .await
                    .unwrap();
            }
        })
    }
}

async fn payload_type_of(pc: &Arc<dyn PeerConnection>, prefix: &str) -> u8 {
    for sender in pc.get_senders().await {
        let parameters = sender.get_parameters().await.unwrap();
        if let Some(codec) = parameters.rtp_parameters.codecs.first()
            && codec.rtp_codec.mime_type.starts_with(prefix)
        {
            return codec.payload_type;
        }
    }
    panic!("no {prefix} sender negotiated");
}

fn encoding(ssrc: u32, codec: RTCRtpCodec) -> RTCRtpEncodingParameters {
    RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters {
            ssrc: Some(ssrc),
            ..Default::default()
        },
        codec,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------
// Signals and measurements

fn tone(freq: f32, amplitude: f32, start: usize, len: usize) -> Vec<f32> {
    (start..start + len)
        .map(|n| amplitude * (2.0 * std::f32::consts::PI * freq * n as f32 / 48_000.0).sin())
        .collect()
}

fn rms(samples: &[f32]) -> f32 {
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}

/// Frequency from upward zero crossings.
fn frequency(samples: &[f32]) -> f32 {
    let crossings = samples
        .windows(2)
        .filter(|pair| pair[0] < 0.0 && pair[1] >= 0.0)
        .count();
    crossings as f32 * 48_000.0 / samples.len() as f32
}

async fn connect(camera: Camera, video: Option<&Path>) -> (Browser, BrowserCall, Call) {
    let mut browser = Browser::new(camera).await;
    let offer = browser.offer().await;
    let (call, conversation, answer) =
        BrowserCall::answer(&WebRtcSettings::default(), "loopback-call", &offer, video)
            .await
            .expect("the server answers a browser offer");
    assert_eq!(conversation.id, "loopback-call");
    assert_eq!(conversation.output_rate, 48_000);
    browser.accept(answer).await;
    (browser, call, conversation)
}

/// Waits for the conversation's next hang-up; counts the audio frames before it.
async fn wait_for_hang_up(conversation: &mut Call, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, conversation.inbound.recv()).await {
            Ok(Some(CallInput::HangUp)) => return,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the call input closed without a HangUp"),
            Err(_) => panic!("no HangUp within {within:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_flows_both_ways() {
    let (mut browser, call, mut conversation) = connect(Camera::Vp8, None).await;

    // The candidate speaks for 1.5 s while the interviewer says two phrases with a pause.
    let speaking = browser.speak(Duration::from_millis(1_500));
    let outbound = conversation.outbound.clone();
    let interviewer = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(20));
        // 0.6 s of voice at 0-0.6 s, the conversation's end of speech, nothing for 0.4 s, then
        // 0.6 s more from 1.0 s on the call clock.
        for index in (0..30).chain(50..80) {
            ticker.tick().await;
            let samples = tone(VOICE_HZ, 0.5, index * 960, 960);
            let at = Duration::from_millis(20 * index as u64);
            let frame = PcmFrame::new(samples, 48_000, at).unwrap();
            outbound.send(CallOutput::Audio(frame)).await.unwrap();
            if index == 29 {
                outbound.send(CallOutput::EndOfSpeech).await.unwrap();
            }
        }
    });

    let mut heard_by_server: Vec<PcmFrame> = Vec::new();
    let collect_until = tokio::time::Instant::now() + Duration::from_millis(2_000);
    while let Ok(Some(input)) =
        tokio::time::timeout_at(collect_until, conversation.inbound.recv()).await
    {
        match input {
            CallInput::Audio(frame) => heard_by_server.push(frame),
            other => panic!("unexpected {other:?}"),
        }
    }
    let sent = speaking.await.unwrap();
    interviewer.await.unwrap();

    // The candidate's microphone: every frame 48 kHz, one continuous stream, the tone.
    assert!(
        heard_by_server.len() >= sent * 9 / 10,
        "the server heard {} of {sent} packets",
        heard_by_server.len()
    );
    assert!(heard_by_server.iter().all(|f| f.sample_rate() == 48_000));
    for pair in heard_by_server.windows(2) {
        assert_eq!(
            pair[0].end(),
            pair[1].timestamp(),
            "the stream has no holes"
        );
    }
    let samples: Vec<f32> = heard_by_server
        .iter()
        .flat_map(|f| f.samples().to_vec())
        .collect();
    let settled = &samples[4_800..];
    let level = rms(settled);
    assert!((0.28..0.42).contains(&level), "microphone level {level}");
    let hz = frequency(settled);
    assert!(
        (MIC_HZ - 10.0..MIC_HZ + 10.0).contains(&hz),
        "microphone tone {hz} Hz"
    );

    // The interviewer's voice at the browser: 60 packets, RTP time following the call clock.
    let mut packets = Vec::new();
    while let Ok(Some(packet)) =
        tokio::time::timeout(Duration::from_millis(500), browser.heard.recv()).await
    {
        packets.push(packet);
    }
    assert_eq!(packets.len(), 60, "interviewer packets at the browser");
    for pair in packets.windows(2) {
        let (a, b) = (&pair[0].header, &pair[1].header);
        assert_eq!(b.sequence_number, a.sequence_number.wrapping_add(1));
        let step = b.timestamp.wrapping_sub(a.timestamp);
        if b.marker {
            assert_eq!(step, 960 * 21, "the 400 ms pause is in the RTP timestamps");
        } else {
            assert_eq!(step, 960);
        }
    }
    assert_eq!(packets.iter().filter(|p| p.header.marker).count(), 2);
    let mut decoder = OpusDecoder::new(Channels::Mono).unwrap();
    let voice: Vec<f32> = packets
        .iter()
        .flat_map(|p| decoder.decode(&p.payload).unwrap())
        .collect();
    let settled = &voice[4_800..];
    let level = rms(settled);
    assert!((0.28..0.42).contains(&level), "interviewer level {level}");
    let hz = frequency(settled);
    assert!(
        (VOICE_HZ - 15.0..VOICE_HZ + 15.0).contains(&hz),
        "interviewer tone {hz} Hz"
    );

    call.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_hangs_up_exactly_once() {
    let (browser, call, mut conversation) = connect(Camera::None, None).await;
    let _speaking = browser.speak(Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    call.close().await;
    call.close().await;
    let mut hang_ups = 0;
    while let Ok(Some(input)) =
        tokio::time::timeout(Duration::from_secs(2), conversation.inbound.recv()).await
    {
        match input {
            CallInput::HangUp => hang_ups += 1,
            CallInput::Audio(_) => assert_eq!(hang_ups, 0, "no audio after the hang-up"),
            CallInput::Dtmf(_) => panic!("a browser call has no DTMF"),
        }
    }
    assert_eq!(hang_ups, 1);
    // The input closed (every sender dropped), so recv returned None, not a timeout.
    assert!(conversation.inbound.recv().await.is_none());
    // Signalling after the end is refused, not ignored.
    let late = call
        .add_remote_candidate(RemoteCandidate {
            candidate: String::new(),
            sdp_mid: Some("0".to_owned()),
            sdp_m_line_index: Some(0),
        })
        .await;
    assert!(matches!(late, Err(WebRtcError::Ended)), "{late:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_hanging_up_closes_the_connection() {
    let (browser, _call, mut conversation) = connect(Camera::None, None).await;
    conversation
        .outbound
        .send(CallOutput::HangUp)
        .await
        .unwrap();
    wait_for_hang_up(&mut conversation, Duration::from_secs(5)).await;
    let mut state = browser.state.clone();
    // The browser sees the server go away (DTLS close_notify, then ICE consent expiry).
    let closed = tokio::time::timeout(
        Duration::from_secs(30),
        state.wait_for(|state| {
            matches!(
                state,
                RTCPeerConnectionState::Disconnected
                    | RTCPeerConnectionState::Failed
                    | RTCPeerConnectionState::Closed
            )
        }),
    )
    .await
    .is_ok();
    assert!(closed, "the browser still sees {:?}", *state.borrow());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_dropping_its_call_ends_the_call() {
    let (_browser, call, conversation) = connect(Camera::None, None).await;
    drop(conversation);
    let candidate = || RemoteCandidate {
        candidate: String::new(),
        sdp_mid: None,
        sdp_m_line_index: None,
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    while call.add_remote_candidate(candidate()).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the call outlived its conversation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(matches!(
        call.add_remote_candidate(candidate()).await,
        Err(WebRtcError::Ended)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_leaving_hangs_up_and_keeps_a_playable_recording() {
    let scratch = scratch_dir("webrtc-loopback-leaving");
    let video = scratch.path().join("video.webm");
    let (browser, call, mut conversation) = connect(Camera::Vp8, Some(&video)).await;
    let speaking = browser.speak(Duration::from_secs(2));
    speaking.await.unwrap();
    browser.pc.close().await.unwrap();
    // Nobody calls close() on the server: the hang-up and the recording come from the
    // connection ending. The browser's DTLS close_notify makes that prompt (ICE alone would
    // take ~9 s to give up on a browser that vanished).
    wait_for_hang_up(&mut conversation, Duration::from_secs(4)).await;
    // The recording is finished before the hang-up is sent.
    let probe = probe(&video);
    assert_eq!(probe.codecs(), ["opus"], "no camera frames were sent");
    assert!(
        (1.7..2.4).contains(&probe.duration),
        "recording lasts {} s for 2 s of speech",
        probe.duration
    );
    drop(call);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_and_microphone_are_recorded_to_webm() {
    let scratch = scratch_dir("webrtc-loopback-camera");
    let video = scratch.path().join("video.webm");
    let fps = 15;
    let frames = vp8_test_pattern(scratch.path(), 3, fps);
    let sent_frames = frames.len() as u64;
    let (browser, call, mut conversation) = connect(Camera::Vp8, Some(&video)).await;
    let filming = browser.film(frames, fps);
    let speaking = browser.speak(Duration::from_secs(3));
    let listening = tokio::spawn(async move {
        while let Some(input) = conversation.inbound.recv().await {
            if input == CallInput::HangUp {
                break;
            }
        }
    });
    filming.await.unwrap();
    speaking.await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    call.close().await;
    listening.await.unwrap();

    let probe = probe_counting_frames(&video);
    let decoded = probe.stream("video").and_then(|video| video.frames);
    eprintln!(
        "recorded {:.3} s, {decoded:?} of {sent_frames} camera frames decode",
        probe.duration
    );
    assert_eq!(probe.codecs(), ["vp8", "opus"]);
    assert!(
        (2.7..3.5).contains(&probe.duration),
        "recording lasts {} s for a 3 s call",
        probe.duration
    );
    // mkvtoolnix reads the file too: header, picture size from the key frame, duration.
    let info_text = mkvinfo(&video);
    for expected in ["V_VP8", "A_OPUS", "Pixel width: 320", "Duration: 00:00:0"] {
        assert!(
            info_text.contains(expected),
            "mkvinfo lacks {expected:?}: {info_text}"
        );
    }
    let decoded = decoded.unwrap_or(0);
    assert!(
        decoded >= sent_frames * 9 / 10,
        "{decoded} of {sent_frames} camera frames decode from the recording"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp8_is_preferred_over_an_h264_first_offer() {
    let mut browser = Browser::new(Camera::H264ThenVp8).await;
    let offer = browser.offer().await;
    let video_line = |sdp: &str| {
        sdp.lines()
            .find(|line| line.starts_with("m=video"))
            .map(str::to_owned)
    };
    assert!(
        video_line(&offer).unwrap().ends_with(" 102 96"),
        "the browser lists H.264 first: {:?}",
        video_line(&offer)
    );
    let (call, _conversation, answer) =
        BrowserCall::answer(&WebRtcSettings::default(), "h264", &offer, None)
            .await
            .unwrap();
    let first_format = video_line(&answer)
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_owned();
    assert_eq!(first_format, "96", "answer: {answer}");
    call.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h264_only_camera_connects_and_the_recording_keeps_the_audio() {
    let scratch = scratch_dir("webrtc-loopback-h264");
    let video = scratch.path().join("video.webm");
    let (browser, call, mut conversation) = connect(Camera::H264Only, Some(&video)).await;
    browser.speak(Duration::from_secs(1)).await.unwrap();
    call.close().await;
    wait_for_hang_up(&mut conversation, Duration::from_secs(5)).await;
    let probe = probe(&video);
    assert_eq!(probe.codecs(), ["opus"]);
    assert!((0.8..1.3).contains(&probe.duration), "{} s", probe.duration);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signalling_is_an_error_not_a_panic() {
    let settings = WebRtcSettings::default();
    for garbage in ["", "hello", "v=0\r\nm=audio banana\r\n", "\u{0}\u{1}\u{2}"] {
        let result = BrowserCall::answer(&settings, "garbage", garbage, None).await;
        assert!(
            matches!(
                result,
                Err(WebRtcError::MalformedOffer { .. } | WebRtcError::NoAudioInOffer)
            ),
            "{garbage:?} gave {:?}",
            result.map(|(_, _, answer)| answer)
        );
    }

    let mut browser = Browser::new(Camera::None).await;
    let offer = browser.offer().await;
    let video_only: String = offer.replace("m=audio", "m=nothing");
    assert!(
        BrowserCall::answer(&settings, "no-audio", &video_only, None)
            .await
            .is_err()
    );

    let (call, _conversation, _answer) = BrowserCall::answer(&settings, "candidates", &offer, None)
        .await
        .unwrap();
    let bad = call
        .add_remote_candidate(RemoteCandidate {
            candidate: "candidate:garbage".to_owned(),
            sdp_mid: Some("0".to_owned()),
            sdp_m_line_index: Some(0),
        })
        .await;
    assert!(
        matches!(bad, Err(WebRtcError::MalformedCandidate { .. })),
        "{bad:?}"
    );
    let good = call
        .add_remote_candidate(RemoteCandidate {
            candidate: "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host".to_owned(),
            sdp_mid: Some("0".to_owned()),
            sdp_m_line_index: Some(0),
        })
        .await;
    assert!(good.is_ok(), "{good:?}");
    let end = call
        .add_remote_candidate(RemoteCandidate {
            candidate: String::new(),
            sdp_mid: None,
            sdp_m_line_index: None,
        })
        .await;
    assert!(end.is_ok(), "{end:?}");
    call.close().await;

    let unwritable = Path::new("/nonexistent-dir/video.webm");
    let result = BrowserCall::answer(&settings, "unwritable", &offer, Some(unwritable)).await;
    assert!(
        matches!(result, Err(WebRtcError::Recording { .. })),
        "{:?}",
        result.map(|(_, _, answer)| answer)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_reach_the_answer() {
    let mut browser = Browser::new(Camera::None).await;
    let offer = browser.offer().await;
    let settings = WebRtcSettings {
        public_ip: Some("203.0.113.7".parse().unwrap()),
        udp_ports: Some((47_311, 47_313)),
        ice_servers: vec![],
    };
    let (call, _conversation, answer) = BrowserCall::answer(&settings, "nat", &offer, None)
        .await
        .unwrap();
    let candidates: Vec<&str> = answer
        .lines()
        .filter(|line| line.starts_with("a=candidate:"))
        .collect();
    assert!(
        !candidates.is_empty(),
        "answer without candidates: {answer}"
    );
    for candidate in &candidates {
        let fields: Vec<&str> = candidate.split_whitespace().collect();
        assert_eq!(fields[4], "203.0.113.7", "{candidate}");
        let port: u16 = fields[5].parse().unwrap();
        assert!((47_311..=47_313).contains(&port), "{candidate}");
    }
    call.close().await;

    let bad = WebRtcSettings {
        udp_ports: Some((5_000, 4_000)),
        ..WebRtcSettings::default()
    };
    let result = BrowserCall::answer(&bad, "bad-ports", &offer, None).await;
    assert!(matches!(result, Err(WebRtcError::Settings { .. })));
}
